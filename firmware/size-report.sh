#!/usr/bin/env bash
# Builds the firmware size probes and prints their flash and static RAM as a Markdown table.
#
#   firmware/size-core: `core` (thinger-core + 4 resources) and `baseline` (same runtime,
#   buffers and loop without the SDK), for opt-level "s" (profile release) and "z"
#   (profile release-z); the core's share is core - baseline.
#   firmware/pico-w: the example firmware (skipped with --core-only).
#
# flash = .boot2 + .vector_table + .text + .rodata + .data (initial values live in flash);
# static RAM = .data + .bss. Sections are read with `size -A` (Debian binutils; llvm-size
# works the same way).
set -euo pipefail
cd "$(dirname "$0")"

core_only=false
[[ "${1:-}" == "--core-only" ]] && core_only=true

SIZE=${SIZE:-}
if [[ -z "$SIZE" ]]; then
    for candidate in arm-none-eabi-size size llvm-size; do
        if command -v "$candidate" >/dev/null; then SIZE=$candidate; break; fi
    done
fi
[[ -n "$SIZE" ]] || { echo "no size tool found (install binutils or llvm)" >&2; exit 1; }

rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || true

# section NAME FILE -> size in bytes (0 when absent)
section() {
    "$SIZE" -A "$2" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}

# measure FILE -> "text rodata data bss flash ram"
measure() {
    local vt text ro data bss boot2
    boot2=$(section .boot2 "$1")
    vt=$(( $(section .vector_table "$1") + boot2 ))
    text=$(section .text "$1")
    ro=$(section .rodata "$1")
    data=$(section .data "$1")
    bss=$(section .bss "$1")
    echo "$((vt + text)) $ro $data $bss $((vt + text + ro + data)) $((data + bss))"
}

echo "| binary | opt-level | text (+vectors, boot2) | rodata | data | bss | flash | static RAM |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"

(
    cd size-core
    for profile in release release-z; do
        cargo build --quiet --profile "$profile" --bins
    done
)
for profile in release release-z; do
    level=s; [[ $profile == release-z ]] && level=z
    dir=size-core/target/thumbv7em-none-eabihf/$profile
    read -r ct cr cd cb cf cram <<<"$(measure "$dir/core")"
    read -r bt br bd bb bf bram <<<"$(measure "$dir/baseline")"
    echo "| size-core \`core\` (thinger-core + 4 resources) | $level | $ct | $cr | $cd | $cb | $cf | $cram |"
    echo "| size-core \`baseline\` (no SDK) | $level | $bt | $br | $bd | $bb | $bf | $bram |"
    echo "| **core share** (core − baseline) | $level | $((ct - bt)) | $((cr - br)) | $((cd - bd)) | $((cb - bb)) | **$((cf - bf))** | **$((cram - bram))** |"
done

if ! $core_only && [[ -d pico-w ]]; then
    rustup target add thumbv6m-none-eabi >/dev/null 2>&1 || true
    elf=pico-w/target/thumbv6m-none-eabi/release/pico-w
    (cd pico-w && cargo build --quiet --release --no-default-features --features plain-tcp)
    read -r qt qr qd qb qf qram <<<"$(measure "$elf")"
    (cd pico-w && cargo build --quiet --release)
    read -r pt pr pd pb pf pram <<<"$(measure "$elf")"
    echo "| pico-w example, TLS (default) | z | $pt | $pr | $pd | $pb | $pf | $pram |"
    echo "| pico-w example, plain TCP (\`--no-default-features --features plain-tcp\`) | z | $qt | $qr | $qd | $qb | $qf | $qram |"
    echo "| **TLS share** (TLS − plain TCP) | z | $((pt - qt)) | $((pr - qr)) | $((pd - qd)) | $((pb - qb)) | **$((pf - qf))** | **$((pram - qram))** |"
    blob=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cyw43-firmware-0.1.0/dist/cyw43-firmware -name '43439A0*.bin' ! -name '*btfw*' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    echo
    echo "The pico-w rodata includes the CYW43439 radio firmware and CLM blobs ($blob bytes)."
fi
