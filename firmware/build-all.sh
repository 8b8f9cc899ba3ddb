#!/usr/bin/env bash
# Builds every firmware crate for its target (CI runs this). Each crate lives outside the
# workspace with its own .cargo/config.toml, so it is built from its own folder.
set -euo pipefail
cd "$(dirname "$0")"

rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf

# The adapter library itself, for a Cortex-M4F and the RP2040's Cortex-M0+ (with and without TLS).
(cd .. && cargo build -p thinger-embassy --target thumbv7em-none-eabihf)
(cd .. && cargo build -p thinger-embassy --target thumbv7em-none-eabihf --no-default-features)
(cd .. && cargo build -p thinger-embassy --target thumbv7em-none-eabihf --features tls-rsa)
(cd .. && cargo build -p thinger-embassy --target thumbv6m-none-eabi)

echo "== size-core (thumbv7em-none-eabihf)"
(cd size-core && cargo build --release --bins && cargo build --profile release-z --bins)

echo "== pico-w-boot (thumbv6m-none-eabi: the embassy-boot bootloader, must fit its 24 KiB - 256 B)"
(cd pico-w-boot && cargo build --release)

echo "== pico-w (thumbv6m-none-eabi)"
(cd pico-w && cargo build --release && cargo build --release --no-default-features --features plain-tcp)

echo "== esp32c3 (riscv32imc-unknown-none-elf: Wi-Fi, TLS with RSA chains to the cloud)"
(cd esp32c3 && cargo build --release)

echo "firmware: all crates built"
