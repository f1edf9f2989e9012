#!/usr/bin/env bash
# Installs everything the checks need on a fresh machine. Idempotent.
set -euo pipefail

log() { printf '==> %s\n' "$*"; }

# QEMU runs the firmware image on the reference board (mps2-an386).
if ! command -v qemu-system-arm >/dev/null; then
  log "installing qemu-system-arm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
fi

log "rust components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# The Cortex-M target: rustup first, Debian's packaged toolchain as fallback
# (ci/nostd.sh then builds core with -Zbuild-std).
if ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
  if ! rustup target add thumbv7em-none-eabihf; then
    log "rustup could not add thumbv7em-none-eabihf; installing Debian's toolchain"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src >/dev/null
  fi
fi

# Fuzzing runs on nightly with cargo-fuzz.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
