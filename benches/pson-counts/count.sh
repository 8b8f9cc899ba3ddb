#!/usr/bin/env bash
# Instruction counts per operation under callgrind: runs `pson_count OP N` at N=LOW and
# N=HIGH and prints (Ir(HIGH) - Ir(LOW)) / (HIGH - LOW), so start-up and set-up cancel out.
# Usage: bash benches/pson-counts/count.sh [OP...] (all operations without arguments;
# `pson_count list` prints them). Builds the counter with the bench profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOW=${LOW:-1000}
HIGH=${HIGH:-11000}
cargo build -q --profile bench -p pson-counts --bin pson_count
bin="${CARGO_TARGET_DIR:-target}/release/pson_count"
[ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-target}/bench/pson_count"
ops=("$@")
[ ${#ops[@]} -gt 0 ] || mapfile -t ops < <("$bin" list)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir() {
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" >/dev/null 2>&1 || return 1
    awk '/^summary:/ {print $2}' "$tmp/out"
}
printf '%-26s %12s\n' operation instructions
for op in "${ops[@]}"; do
    # Fewer iterations for the big rows (map1000/..., array10000/...); the difference
    # still divides out exactly.
    div=1
    if [[ "$op" =~ ^[a-z]+([0-9]+)/ ]] && (( BASH_REMATCH[1] > 100 )); then div=$((BASH_REMATCH[1] / 100)); fi
    lo=$((LOW / div)); hi=$((HIGH / div))
    [ "$lo" -ge 2 ] || { lo=2; hi=$((2 + (HIGH - LOW) / div)); }
    if ! low=$(ir "$op" "$lo") || ! high=$(ir "$op" "$hi"); then
        printf '%-26s %12s\n' "$op" "skipped"
        continue
    fi
    awk -v op="$op" -v a="$low" -v b="$high" -v n=$((hi - lo)) 'BEGIN { printf "%-26s %12.1f\n", op, (b - a) / n }'
done
