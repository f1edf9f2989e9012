#!/usr/bin/env bash
# Installs everything the checks need on a fresh machine. Idempotent.
set -euo pipefail

log() { printf '==> %s\n' "$*"; }

# Debian packages: QEMU runs the firmware on the reference board
# (mps2-an386); net-snmp's tools check the simulator.
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v snmpbulkwalk >/dev/null || missing+=(snmp)
# net-snmp's agent: the peer of the SNMPv3 tests (every USM pairing).
command -v snmpd >/dev/null || missing+=(snmpd)
# Peers of the discovery benchmark (cargo bench -p dca-host --bench fleet).
command -v onesixtyone >/dev/null || missing+=(onesixtyone)
command -v braa >/dev/null || missing+=(braa)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
# Peers of the cloud tests: an HTTP proxy that tunnels with CONNECT, and an
# independent HTTPS client; sqlite3 is the peer of the ingest benchmark.
command -v tinyproxy >/dev/null || missing+=(tinyproxy)
command -v curl >/dev/null || missing+=(curl)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
# DHCP for the firmware on its test network (ci/firmware-net.sh); the -base
# package has the binary without a system service.
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
# A real browser for Device Web Access (cloud-stub/tests/browser.rs):
# headless Chromium driven through ChromeDriver.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# snmpsim 1.2.2, the second reference for the simulator. It refuses to run
# as root and then drops to nobody, who cannot read a Python under /root: so
# a venv of Debian's python3 in /opt. It needs pysmi, which it does not
# declare.
snmpsim=/opt/dca-snmpsim
if [ ! -x "$snmpsim/bin/snmpsim-command-responder" ]; then
  log "installing snmpsim into $snmpsim"
  /usr/bin/python3 -m venv "$snmpsim"
  "$snmpsim/bin/pip" install -q snmpsim==1.2.2 pysmi
  chmod -R a+rX "$snmpsim"
fi
# snmpsim's SNMPv3 privacy needs the cryptography package (without it every
# encrypted request fails with "Decryption error").
if ! "$snmpsim/bin/python" -c 'import cryptography' 2>/dev/null; then
  log "installing cryptography into $snmpsim (SNMPv3 privacy)"
  "$snmpsim/bin/pip" install -q cryptography
  chmod -R a+rX "$snmpsim"
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

# The firmware logs defmt frames over semihosting; ci/nostd.sh decodes them.
if ! command -v defmt-print >/dev/null; then
  log "installing defmt-print"
  cargo install defmt-print --version 1.2.0 --locked --quiet
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

# Peers of ci/service.sh: systemd-analyze verifies and scores the unit
# `dca service install` writes; cargo-deb builds the .deb (pinned).
if ! command -v systemd-analyze >/dev/null; then
  log "installing systemd (systemd-analyze)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb 3.8.0" ]; then
  log "installing cargo-deb 3.8.0"
  cargo install cargo-deb --version 3.8.0 --locked --quiet
fi

# Peers of ci/windows.sh: mingw-w64 links dca.exe, Wine runs it.
win=()
command -v x86_64-w64-mingw32-gcc >/dev/null || win+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || win+=(wine64)
if [ ${#win[@]} -gt 0 ]; then
  log "installing ${win[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${win[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
  log "adding the Rust target x86_64-pc-windows-gnu"
  rustup target add x86_64-pc-windows-gnu
fi
