#!/usr/bin/env bash
# Builds the firmware size probes, prints their flash and static RAM as a Markdown table and
# checks the core's share against the committed budget (size-budget.txt).
#
#   firmware/size-core: `core` (thinger-core + 4 resources) and `baseline` (same runtime,
#   buffers and loop without the SDK), for opt-level "s" (profile release) and "z"
#   (profile release-z), on thumbv7em-none-eabihf (Cortex-M4F), thumbv6m-none-eabi
#   (Cortex-M0+, Pico W class, no FPU) and riscv32imc-unknown-none-elf (ESP32-C3 class);
#   the core's share is core - baseline.
#   firmware/pico-w: the example firmware (skipped with --core-only).
#
# flash = vectors/boot2/init + .text + .rodata + .data (initial values live in flash);
# static RAM = .data + .bss. Sections are read with `size -A` (Debian binutils; llvm-size
# works the same way).
#
# Budget: every line of size-budget.txt names a target, an opt level and the flash and
# static RAM the core share may use; the script exits 1 when a measured share is more than
# 2% above its line (BUDGET_SLACK_PERCENT overrides the 2).
set -euo pipefail
cd "$(dirname "$0")"

core_only=false
[[ "${1:-}" == "--core-only" ]] && core_only=true
slack=${BUDGET_SLACK_PERCENT:-2}
TARGETS=(thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf)

SIZE=${SIZE:-}
if [[ -z "$SIZE" ]]; then
    for candidate in size llvm-size arm-none-eabi-size; do
        if command -v "$candidate" >/dev/null; then SIZE=$candidate; break; fi
    done
fi
[[ -n "$SIZE" ]] || { echo "no size tool found (install binutils or llvm)" >&2; exit 1; }

rustup target add "${TARGETS[@]}" >/dev/null 2>&1 || true

# section NAME FILE -> size in bytes (0 when absent)
section() {
    "$SIZE" -A "$2" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}

# require FILE...: stop unless each binary exists (a missing one must not measure as 0 B).
require() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || { echo "error: no binary at $f (CARGO_TARGET_DIR must be absolute, or unset)" >&2; exit 1; }
    done
}

# measure FILE -> "text rodata data bss flash ram"
measure() {
    local text=0 name ro data bss
    # Code-like sections in flash: Cortex-M vectors and RP2040 boot2, riscv-rt init and
    # trap code, unwind tables if any.
    for name in .boot2 .vector_table .init .init.rust .trap .text .eh_frame; do
        text=$((text + $(section "$name" "$1")))
    done
    ro=$(section .rodata "$1")
    data=$(section .data "$1")
    bss=$(section .bss "$1")
    echo "$text $ro $data $bss $((text + ro + data)) $((data + bss))"
}

# Where cargo puts the probe: CARGO_TARGET_DIR when set (absolute), else size-core/target.
size_target=${CARGO_TARGET_DIR:-size-core/target}

# Measured core shares, "target opt flash ram" per line, for the budget check.
shares=$(mktemp)
trap 'rm -f "$shares"' EXIT

echo "| target | binary | opt-level | text (+vectors, init) | rodata | data | bss | flash | static RAM |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"

for target in "${TARGETS[@]}"; do
    (
        cd size-core
        for profile in release release-z; do
            cargo build --quiet --profile "$profile" --bins --target "$target"
        done
    )
    for profile in release release-z; do
        level=s; [[ $profile == release-z ]] && level=z
        dir=$size_target/$target/$profile
        require "$dir/core" "$dir/baseline"
        read -r ct cr cd cb cf cram <<<"$(measure "$dir/core")"
        read -r bt br bd bb bf bram <<<"$(measure "$dir/baseline")"
        echo "| $target | size-core \`core\` (thinger-core + 4 resources) | $level | $ct | $cr | $cd | $cb | $cf | $cram |"
        echo "| $target | size-core \`baseline\` (no SDK) | $level | $bt | $br | $bd | $bb | $bf | $bram |"
        echo "| $target | **core share** (core − baseline) | $level | $((ct - bt)) | $((cr - br)) | $((cd - bd)) | $((cb - bb)) | **$((cf - bf))** | **$((cram - bram))** |"
        echo "$target $level $((cf - bf)) $((cram - bram))" >>"$shares"
    done
done

if ! $core_only && [[ -d pico-w ]]; then
    elf=${CARGO_TARGET_DIR:-pico-w/target}/thumbv6m-none-eabi/release/pico-w
    (cd pico-w && cargo build --quiet --release --no-default-features --features plain-tcp)
    require "$elf"
    read -r qt qr qd qb qf qram <<<"$(measure "$elf")"
    (cd pico-w && cargo build --quiet --release)
    read -r pt pr pd pb pf pram <<<"$(measure "$elf")"
    echo "| thumbv6m-none-eabi | pico-w example, TLS (default) | z | $pt | $pr | $pd | $pb | $pf | $pram |"
    echo "| thumbv6m-none-eabi | pico-w example, plain TCP (\`--no-default-features --features plain-tcp\`) | z | $qt | $qr | $qd | $qb | $qf | $qram |"
    echo "| thumbv6m-none-eabi | **TLS share** (TLS − plain TCP) | z | $((pt - qt)) | $((pr - qr)) | $((pd - qd)) | $((pb - qb)) | **$((pf - qf))** | **$((pram - qram))** |"
    blob=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cyw43-firmware-0.1.0/dist/cyw43-firmware -name '43439A0*.bin' ! -name '*btfw*' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    echo
    echo "The pico-w rodata includes the CYW43439 radio firmware and CLM blobs ($blob bytes)."
fi

# Budget check: measured share vs. size-budget.txt, with $slack % of slack.
echo
echo "Budget (size-budget.txt, fails above +$slack %):"
over=0
while read -r target level budget_flash budget_ram; do
    [[ -z "$target" || "$target" == \#* ]] && continue
    flash='' ram=''
    read -r flash ram < <(awk -v t="$target" -v l="$level" '$1 == t && $2 == l { print $3, $4 }' "$shares") || true
    [[ -n "${flash:-}" ]] || { echo "  $target $level: not measured" >&2; over=1; continue; }
    verdict=ok
    if ((flash * 100 > budget_flash * (100 + slack))) || ((ram * 100 > budget_ram * (100 + slack))); then
        verdict="OVER BUDGET"
        over=1
    fi
    echo "  $target $level: flash $flash / $budget_flash B, static RAM $ram / $budget_ram B: $verdict"
done <size-budget.txt
exit "$over"
