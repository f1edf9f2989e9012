#!/usr/bin/env bash
# dca for Windows: cross-built with Debian's mingw-w64, linted for that
# target, then run under Wine (`dca --version`, a snapshot of a recording,
# and `dca service` against Wine's service control manager).
# Under CI=true a missing peer fails the run; elsewhere it skips, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
skip() {
  [ "${CI:-}" = true ] && fail "$1 (ci/setup.sh installs it)"
  log "SKIP: $1 (ci/setup.sh installs it)"
  exit 0
}

triple=x86_64-pc-windows-gnu
command -v x86_64-w64-mingw32-gcc >/dev/null || skip "x86_64-w64-mingw32-gcc is missing"
rustup target list --installed | grep -qx "$triple" || skip "the Rust target $triple is missing"
# Debian's wine64 package puts its loader here, not on PATH.
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine=$(command -v wine64 || command -v wine || true)
[ -n "$wine" ] && [ -x "$wine" ] || skip "wine64 is missing"

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
target=${CARGO_TARGET_DIR:-$PWD/target}
corpus=${DCA_CORPUS:-../shared/corpus}
recording=$corpus/librenms/snmprec/brother.snmprec
[ -f "$recording" ] || fail "$recording is missing (set DCA_CORPUS)"

start=$SECONDS
cargo build --release --locked -p dca-host --target "$triple"
log "cross-build: $((SECONDS - start)) s"
cargo clippy --release --locked -p dca-host --target "$triple" -- -D warnings

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$target/$triple/release/dca.exe" "$tmp/"
# Rust's standard library draws randomness from ProcessPrng in
# bcryptprimitives.dll, which Wine 8 (Debian 12) lacks. A stand-in beside
# dca.exe (loaded first from the program's directory) forwards it to
# RtlGenRandom. Wine only: Windows 10 and later have the real one.
cat >"$tmp/prng.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
EOF
x86_64-w64-mingw32-gcc -shared -O2 -o "$tmp/bcryptprimitives.dll" "$tmp/prng.c" -ladvapi32

export WINEPREFIX=$tmp/wine WINEDEBUG=-all
# Wine's server and services outlive the commands: end this prefix's.
wineserver=$(dirname "$wine")/wineserver
trap '"$wineserver" -k 2>/dev/null || true; rm -rf "$tmp"' EXIT
run() { (cd "$tmp" && timeout 120 "$wine" ./dca.exe "$@"); }

log "wine: dca --version"
version=$(run --version) || fail "dca.exe --version"
echo "$version"
[[ $version == "dca "* ]] || fail "dca.exe --version printed: $version"

log "wine: dca snapshot $recording"
run snapshot "Z:$(realpath "$recording")" >"$tmp/snapshot.json" || fail "dca.exe snapshot"
grep -q '"serial":"000A5J431816"' "$tmp/snapshot.json" ||
  fail "the snapshot lacks the recording's serial: $(head -c 400 "$tmp/snapshot.json")"
head -c 300 "$tmp/snapshot.json"
echo

# Wine's service control manager stands in for Windows': install without a
# configuration (not started), then with one (its cloud, the sample's, does
# not answer, so the agent waits to enroll: running), then uninstall, which
# stops it through the control handler.
expect() {
  local want=$1 rc=0
  shift
  run "$@" >"$tmp/out.txt" 2>&1 || rc=$?
  cat "$tmp/out.txt"
  [ "$rc" = "$want" ] || fail "dca.exe $* exited $rc, not $want"
}
log "wine: dca service"
expect 4 service status
expect 0 service install
expect 3 service status
expect 0 service uninstall
mkdir -p "$WINEPREFIX/drive_c/ProgramData/OpenDCA"
# The sample with a token of its own: what install takes as configured.
sed 's/dcat_replace_me/dcat_wine_check/' shells/host/packaging/dca.toml \
  >"$WINEPREFIX/drive_c/ProgramData/OpenDCA/dca.toml"
expect 0 service install
# Running once the process has registered its handler: ask until it says so.
for _ in $(seq 30); do
  rc=0
  run service status >"$tmp/out.txt" 2>&1 || rc=$?
  [ "$rc" = 0 ] && break
done
cat "$tmp/out.txt"
[ "$rc" = 0 ] || fail "the service did not reach Running (status exit $rc)"
expect 0 service uninstall
# uninstall returns once the agent has stopped: its process is gone.
if pgrep -f 'dca.exe service run' >/dev/null; then fail "the service's dca.exe still runs"; fi
expect 4 service status
# Started by hand, not by the manager, the entry point says so.
expect 2 service run
log "windows checks passed"
