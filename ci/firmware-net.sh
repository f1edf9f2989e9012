#!/usr/bin/env bash
# The firmware on a real network stack: the image boots under QEMU on a tap
# in a network namespace this script makes, takes an address from dnsmasq,
# reads its provisioning block (written by `dca provision`), sweeps the
# corpus printers and a generated fleet with faults (all `dca-sim serve`),
# and logs one line per printer. The printers it reports, with their serials
# and total pages, must be exactly those `dca scan` finds from the same
# namespace. A second run does the same while 100,000 garbage datagrams hit
# every UDP port of the guest.
#
# Needs root (namespaces, a tap) and the firmware image (ci/nostd.sh builds
# it); builds dca and dca-sim (release) itself. Every long step is bounded by
# `timeout`; the trap kills what the script started and deletes the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

target=thumbv7em-none-eabihf
image=${FIRMWARE_IMAGE:-firmware/target/$target/release/dca-firmware}
dca=target/release/dca
sim=target/release/dca-sim
corpus=${DCA_CORPUS:-../shared/corpus}
flood_count=${FLOOD_COUNT:-100000}
# Datagrams per second: all of them must arrive while the firmware sweeps.
flood_rate=${FLOOD_RATE:-10000}

if [ ! -f "$image" ]; then
  echo "firmware-net: $image is missing (bash ci/nostd.sh builds it)" >&2
  exit 1
fi
timeout 1800 cargo build --release --locked -p dca-sim -p dca-host
if [ ! -d "$corpus/librenms/snmprec" ]; then
  echo "firmware-net: no corpus at $corpus/librenms/snmprec (set DCA_CORPUS)" >&2
  exit 1
fi
missing=()
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "firmware-net: installing ${missing[*]}"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v defmt-print >/dev/null; then
  echo "firmware-net: installing defmt-print"
  timeout 900 cargo install defmt-print --version 1.2.0 --locked --quiet
fi

ns=dca-fwnet-$$
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Run inside the namespace; every such process is bounded too.
in_ns() { ip netns exec "$ns" "$@"; }
# Wait up to $2 seconds for file $1 to exist and be non-empty.
await_file() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  echo "firmware-net: $1 did not appear within $2 s" >&2
  return 1
}

# The lab: br0 (10.77.0.1/24) with tap0 for QEMU; two blocks of printer
# addresses local to the namespace, one on the guest's subnet (reached by
# ARP on br0) and one behind the gateway 10.77.0.1.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev br0
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" link set tap0 master br0
ip -n "$ns" link set tap0 up
ip -n "$ns" link set br0 up
ip -n "$ns" route add local 10.77.0.64/26 dev lo
ip -n "$ns" route add local 10.77.1.0/26 dev lo

# DHCP only (port 0: no DNS), with its own files.
timeout 1800 ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null \
  --port=0 --interface=br0 --bind-interfaces --except-interface=lo \
  --dhcp-range=10.77.0.10,10.77.0.20,1h --dhcp-option=option:router,10.77.0.1 \
  --dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" --user=root \
  --log-dhcp --log-facility="$tmp/dnsmasq.log" &
pids+=($!)

# The printers: the corpus on the guest's subnet; a generated fleet with
# frozen clocks (so a reading does not change between the reference scan and
# the firmware's sweep) and per-device faults behind the gateway.
cat >"$tmp/scenario.json" <<'EOF'
[
  {"devices": "prn-00001", "v1_only": true},
  {"devices": "prn-00002", "v1_only": true},
  {"devices": "prn-00003", "no_bulk": true},
  {"devices": "prn-00004", "no_bulk": true},
  {"devices": "prn-00005", "loss": 0.1},
  {"devices": "prn-00006", "loss": 0.1},
  {"devices": "prn-00007", "delay_ms": 150, "jitter_ms": 100},
  {"devices": "prn-00008", "too_big_above": 8}
]
EOF
timeout 1800 ip netns exec "$ns" "$sim" serve --recordings "$corpus/librenms/snmprec" \
  --bind 10.77.0.64/26 --port 161 --map "$tmp/corpus-map.json" 2>"$tmp/sim-corpus.log" &
pids+=($!)
timeout 1800 ip netns exec "$ns" "$sim" serve --generate 20 --seed 7 --time-scale 0 \
  --scenario "$tmp/scenario.json" --bind 10.77.1.0/26 --port 161 \
  --map "$tmp/fleet-map.json" 2>"$tmp/sim-fleet.log" &
pids+=($!)
await_file "$tmp/corpus-map.json" 30
await_file "$tmp/fleet-map.json" 30
count() { python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$1"; }
echo "firmware-net: serving $(count "$tmp/corpus-map.json") recordings on 10.77.0.64/26 and $(count "$tmp/fleet-map.json") generated printers on 10.77.1.0/26"

# The reference: the host agent's scan from inside the namespace, with
# retries enough that the lossy devices are found.
in_ns timeout 120 "$dca" scan 10.77.0.64/26 10.77.1.0/26 --port 161 --retries 3 --json \
  >"$tmp/reference.jsonl" 2>"$tmp/scan.log"
cat "$tmp/scan.log"

"$dca" provision --targets 10.77.0.64/26,10.77.1.0/26 --sweeps 1 --port 161 --out "$tmp/prov.bin"

# The garbage sender: $1 datagrams at $2 per second to every UDP port
# 1024-65535 of $3 in turn, from the gateway's address and from every printer
# address (on ports the printers do not use), random bytes, some of them
# shaped like the start of an SNMP message.
cat >"$tmp/flood.py" <<'EOF'
import random, signal, socket, sys, time
count, rate, dst = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
rng = random.Random(7)
sources = ["10.77.0.1"] + [f"10.77.0.{i}" for i in range(64, 128)] + [f"10.77.1.{i}" for i in range(64)]
socks = []
for a in sources:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 0))
    s.setblocking(False)
    socks.append(s)
sent = errors = 0
start = time.monotonic()
try:
    for i in range(count):
        n = rng.randint(1, 1400)
        body = rng.randbytes(n)
        if i % 4 == 0:
            body = b"\x30\x82" + body
        port = 1024 + i % (65536 - 1024)
        try:
            socks[i % len(socks)].sendto(body, (dst, port))
            sent += 1
        except OSError:
            errors += 1
        ahead = (i + 1) / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
finally:
    print(f"flood: {sent} datagrams sent ({errors} refused by the local stack) in {time.monotonic() - start:.1f} s")
EOF

# The comparison: the printers the firmware logged against the reference.
cat >"$tmp/compare.py" <<'EOF'
import json, re, sys
reference, log, label = sys.argv[1], sys.argv[2], sys.argv[3]
ref = {}
for line in open(reference):
    if not line.strip():
        continue
    j = json.loads(line)
    if not j.get("printer"):
        continue
    addr = j["address"].rsplit(":", 1)[0]
    total = next((c["value"] for c in j["counters"] if c["name"] == "total"), None)
    ref[addr] = (j["identity"]["serial"] or "", None if total is None else str(total))
line_re = re.compile(r'\bprinter (\d+\.\d+\.\d+\.\d+)\b(.*)$')
field = lambda name, rest: re.search(name + r'=("(?:[^"\\]|\\.)*"|\S+)', rest)
fw, dup, done = {}, [], None
for line in open(log, errors="replace"):
    m = line_re.search(line)
    if m:
        addr, rest = m.group(1), m.group(2)
        s, t = field("serial", rest), field("total", rest)
        serial = json.loads(s.group(1)) if s and s.group(1).startswith('"') else (s.group(1) if s else "")
        total = t.group(1) if t and t.group(1) not in ("-", "none", "None") else None
        if addr in fw:
            dup.append(addr)
        fw[addr] = (serial, total)
    elif re.search(r"\bsweep \d+ done\b", line):
        done = line.strip()
key = lambda a: tuple(int(x) for x in a.split("."))
bad = 0
print(f"{label}: {len(ref)} printers in the reference, {len(fw)} logged by the firmware")
print(f"{'address':<15} {'serial (dca scan)':<20} {'serial (firmware)':<20} {'total (dca scan)':>16} {'total (firmware)':>16}  verdict")
for a in sorted(set(ref) | set(fw), key=key):
    r, f = ref.get(a), fw.get(a)
    if r is None:
        verdict = "only in the firmware"
    elif f is None:
        verdict = "MISSING from the firmware"
    elif r != f:
        verdict = "DIFFERENT"
    else:
        verdict = "ok"
    bad += verdict != "ok"
    show = lambda x, i: "-" if x is None or x[i] is None else x[i]
    print(f"{a:<15} {show(r, 0):<20} {show(f, 0):<20} {show(r, 1):>16} {show(f, 1):>16}  {verdict}")
if dup:
    print(f"{label}: logged more than once: {' '.join(sorted(set(dup), key=key))}")
    bad += 1
if done is None:
    print(f"{label}: the firmware never logged 'sweep N done'")
    bad += 1
else:
    print(f"{label}: firmware: {done}")
print(f"{label}: {'PASS' if bad == 0 else f'FAIL ({bad} differences)'}")
sys.exit(1 if bad else 0)
EOF
python3 - "$tmp/reference.jsonl" <<'EOF'
import json, sys
n = sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l).get("printer"))
if n == 0:
    sys.exit("firmware-net: the reference scan found no printers")
EOF

# One boot of the firmware: provisioned, on tap0, until it exits after its
# sweep. With "flood", garbage hits the guest's address from its DHCPACK on.
boot() {
  local label=$1 flood=${2:-} acks status=0 qemu addr=""
  acks=$(grep -c 'DHCPACK' "$tmp/dnsmasq.log" 2>/dev/null || true)
  : >"$tmp/$label.frames"
  timeout 600 ip netns exec "$ns" qemu-system-arm -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$image" \
    -device loader,file="$tmp/prov.bin",addr=0x003FF000,force-raw=on \
    -nic tap,ifname=tap0,script=no,downscript=no,model=lan9118 \
    >"$tmp/$label.frames" 2>"$tmp/$label.qemu.log" &
  qemu=$!
  pids+=("$qemu")
  if [ -n "$flood" ]; then
    # The guest's address: the first DHCPACK after this boot began.
    local i
    for ((i = 0; i < 600; i++)); do
      addr=$(grep 'DHCPACK' "$tmp/dnsmasq.log" 2>/dev/null | tail -n +$((acks + 1)) |
        grep -oE '10\.77\.0\.[0-9]+' | head -1 || true)
      [ -n "$addr" ] && break
      kill -0 "$qemu" 2>/dev/null || break
      sleep 0.1
    done
    if [ -z "$addr" ]; then
      echo "$label: the guest took no address by DHCP, so there was nothing to flood" >&2
    else
      echo "$label: flooding $addr with $flood_count datagrams at $flood_rate/s"
      in_ns timeout 120 python3 "$tmp/flood.py" "$flood_count" "$flood_rate" "$addr" &
      pids+=($!)
      local flooder=$!
    fi
  fi
  wait "$qemu" || status=$?
  local flood_short=0
  if [ -n "${flooder:-}" ]; then
    # Every datagram must have gone out while the firmware ran.
    if kill -0 "$flooder" 2>/dev/null; then
      kill "$flooder" 2>/dev/null || true
      flood_short=1
    fi
    wait "$flooder" || true
    if [ "$flood_short" -ne 0 ]; then
      echo "$label: the firmware stopped before the flood was over (raise FLOOD_RATE)" >&2
    fi
  fi
  # Decode whatever arrived, also after a failure: a panic's message is in it.
  timeout 60 defmt-print --show-skipped-frames -e "$image" <"$tmp/$label.frames" >"$tmp/$label.log" 2>&1 || true
  echo "---- $label: firmware log"
  cat "$tmp/$label.log"
  [ -s "$tmp/$label.qemu.log" ] && sed 's/^/qemu: /' "$tmp/$label.qemu.log"
  echo "----"
  local ok=0
  python3 "$tmp/compare.py" "$tmp/reference.jsonl" "$tmp/$label.log" "$label" || ok=1
  if [ "$status" -ne 0 ]; then
    echo "$label: the firmware failed under QEMU (exit status $status)" >&2
    ok=1
  fi
  if [ -n "$flood" ] && { [ -z "$addr" ] || [ "$flood_short" -ne 0 ]; }; then ok=1; fi
  return "$ok"
}

result=0
boot plain || result=1
boot flood flood || result=1
if [ "$result" -ne 0 ]; then
  echo "firmware-net: FAILED; DHCP as dnsmasq saw it:" >&2
  grep -E 'DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK)' "$tmp/dnsmasq.log" >&2 || true
fi
exit "$result"
