#!/usr/bin/env bash
# The agent as a system service:
# 1. `dca service install --unit-dir` writes the systemd unit; systemd-analyze
#    verifies it and scores its sandbox (exposure must stay below 2.0).
# 2. The .deb (cargo-deb): installed with dpkg, its files and modes checked,
#    the service started when systemd is PID 1, then purged and checked gone.
# Under CI=true a missing peer fails the run; elsewhere it skips, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
need() {
  if ! command -v "$1" >/dev/null; then
    [ "${CI:-}" = true ] && fail "$1 is missing (ci/setup.sh installs it)"
    log "SKIP: $1 is missing (ci/setup.sh installs it)"
    exit 0
  fi
}
need systemd-analyze
need dpkg
need cargo-deb
[ "$(id -u)" = 0 ] || fail "installing the .deb needs root"

# The highest exposure score (systemd-analyze security, 0 to 10) allowed.
max_exposure=2.0
sample=shells/host/packaging/dca.toml
target=${CARGO_TARGET_DIR:-$PWD/target}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log "building dca (release)"
cargo build --release --locked -p dca-host
dca=$(realpath "$target/release/dca")

log "dca service install --unit-dir $tmp"
"$dca" service install --unit-dir "$tmp" --config /etc/opendca/dca.toml
unit=$tmp/opendca.service
grep -qx "ExecStart=$dca run --config \${CREDENTIALS_DIRECTORY}/dca.toml" "$unit" ||
  fail "$unit does not run $dca: $(grep ExecStart= "$unit")"

# verify loads the unit as systemd would, and checks that ExecStart's binary
# exists (it is the one just built). Anything it says is a failure.
verify() {
  local out
  if ! out=$(systemd-analyze verify "$1" 2>&1) || [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify $1"
  fi
  log "systemd-analyze verify $1: clean"
}
verify "$unit"

# The score line: "→ Overall exposure level for opendca.service: 1.0 OK 🙂".
systemd-analyze security --offline=true "$unit" >"$tmp/security.txt" ||
  fail "systemd-analyze security: $(tail -3 "$tmp/security.txt")"
line=$(grep 'Overall exposure level' "$tmp/security.txt") ||
  fail "no exposure score in: $(cat "$tmp/security.txt")"
echo "$line"
score=$(sed -E 's/.*: ([0-9.]+) .*/\1/' <<<"$line")
awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s < m) }' ||
  fail "exposure $score is not below $max_exposure: $(grep '✗' "$tmp/security.txt")"

log "the .deb"
[ -f "$sample" ] || fail "$sample (the sample configuration the .deb ships) is missing"
# A package left by an earlier run on this machine would hide what this one does.
if dpkg-query -W opendca >/dev/null 2>&1; then dpkg --purge opendca >/dev/null; fi
[ ! -e /usr/bin/dca ] || fail "/usr/bin/dca exists and is not the package's: remove it first"
cargo deb --locked -p dca-host --no-build --output "$tmp/" >"$tmp/cargo-deb.log" 2>&1 ||
  fail "cargo deb: $(cat "$tmp/cargo-deb.log")"
deb=$(ls "$tmp"/opendca_*.deb)
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"

dpkg -i "$deb"
mode() {
  local got
  got=$(stat -c '%a %U:%G' "$1") || fail "$1 is missing"
  [ "$got" = "$2" ] || fail "$1 is $got, not $2"
  log "$1: $got"
}
mode /usr/bin/dca "755 root:root"
mode /lib/systemd/system/opendca.service "644 root:root"
mode /etc/opendca/dca.toml "600 root:root"
mode /etc/opendca "755 root:root"
cmp -s "$sample" /etc/opendca/dca.toml || fail "/etc/opendca/dca.toml is not the sample"
dpkg-query --showformat='${Conffiles}\n' -W opendca | grep -q ' /etc/opendca/dca.toml ' ||
  fail "/etc/opendca/dca.toml is not a conffile"
/usr/bin/dca --version
verify /lib/systemd/system/opendca.service
# Unconfigured (the sample as shipped), the package must not have enabled it.
[ ! -e /etc/systemd/system/multi-user.target.wants/opendca.service ] ||
  fail "the package enabled the service with the sample configuration"

if [ -d /run/systemd/system ]; then
  log "systemd is PID 1: starting opendca"
  systemctl start opendca
  systemctl status --no-pager opendca || true
  systemctl stop opendca
else
  log "systemd is not PID 1 here (PID 1 is $(ps -p 1 -o comm=)): not starting the service"
fi

files=$(dpkg-query -L opendca)
dpkg --purge opendca
dpkg-query -W opendca >/dev/null 2>&1 && fail "opendca is still known to dpkg after --purge"
left=()
for f in $files /etc/opendca /var/lib/opendca /var/lib/private/opendca /var/log/private/opendca; do
  case $f in
  # Directories other packages share.
  / | /etc | /usr | /usr/bin | /usr/share | /usr/share/doc | /lib | /lib/systemd | /lib/systemd/system) continue ;;
  esac
  [ -e "$f" ] && left+=("$f")
done
[ ${#left[@]} -eq 0 ] || fail "left after dpkg --purge: ${left[*]}"
log "dpkg --purge opendca removed every file"
log "service checks passed"
