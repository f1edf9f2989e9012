#!/usr/bin/env bash
# The firmware on a real network stack: the image boots under QEMU on a tap
# in a network namespace this script makes, takes an address from dnsmasq,
# reads its provisioning block (written by `dca provision`), sweeps the
# corpus printers and a generated fleet with faults (all `dca-sim serve`),
# and logs one line per printer. The printers it reports, with their serials
# and total pages, must be exactly those `dca scan` finds from the same
# namespace. The printers answer with up to 4,000 octets, so long answers
# arrive in IP fragments the firmware must reassemble (the script counts
# them). A second run does the same while
# 100,000 garbage datagrams hit every UDP port of the guest, with oversized
# and malformed Ethernet frames among them. A third boots with no DHCP server
# (the block's static address must take over) and has its link cut and
# restored in the middle of the sweep.
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
timeout 1800 cargo build --release --locked -p dca-sim -p dca-host -p dca-cloud
if [ ! -d "$corpus/librenms/snmprec" ]; then
  echo "firmware-net: no corpus at $corpus/librenms/snmprec (set DCA_CORPUS)" >&2
  exit 1
fi
missing=()
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v ip >/dev/null || missing+=(iproute2)
command -v openssl >/dev/null || missing+=(openssl)
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
# Room for oversized frames on the wire (the flood sends some); IP traffic
# keeps the usual 1500 through the route's MTU, so that long answers are
# fragmented as on any Ethernet.
ip -n "$ns" link set tap0 mtu 9000
ip -n "$ns" link set br0 mtu 9000
ip -n "$ns" link set tap0 up
ip -n "$ns" link set br0 up
ip -n "$ns" route replace 10.77.0.0/24 dev br0 src 10.77.0.1 mtu lock 1500
ip -n "$ns" route add local 10.77.0.64/26 dev lo
ip -n "$ns" route add local 10.77.1.0/26 dev lo

# DHCP only (port 0: no DNS), with its own files.
timeout 1800 ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null \
  --port=0 --interface=br0 --bind-interfaces --except-interface=lo \
  --dhcp-range=10.77.0.10,10.77.0.20,1h --dhcp-option=option:router,10.77.0.1 \
  --dhcp-leasefile="$tmp/leases" --pid-file="$tmp/dnsmasq.pid" --user=root \
  --log-dhcp --log-facility="$tmp/dnsmasq.log" &
dnsmasq_pid=$!
pids+=("$dnsmasq_pid")

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
  {"devices": "prn-00008", "too_big_above": 8},
  {"devices": "prn-00009", "quirks": ["long-lengths", "padded-integers"]},
  {"devices": "prn-00010", "lost_above": 1000}
]
EOF
timeout 1800 ip netns exec "$ns" "$sim" serve --recordings "$corpus/librenms/snmprec" \
  --bind 10.77.0.64/26 --port 161 --max-response 4000 \
  --map "$tmp/corpus-map.json" 2>"$tmp/sim-corpus.log" &
pids+=($!)
timeout 1800 ip netns exec "$ns" "$sim" serve --generate 20 --seed 7 --time-scale 0 \
  --scenario "$tmp/scenario.json" --bind 10.77.1.0/26 --port 161 --max-response 4000 \
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
# The third boot: the generated fleet only, an address of its own for when
# DHCP stays silent, and two sweeps, the second right after the first (the
# walk slot and the socket reused).
"$dca" provision --targets 10.77.1.0/26 --sweeps 2 --schedule 1 --port 161 \
  --static 10.77.0.50/24@10.77.0.1 --out "$tmp/prov-static.bin"

# The garbage sender: $1 datagrams at $2 per second to every UDP port
# 1024-65535 of $3 in turn, from the gateway's address and from every printer
# address (on ports the printers do not use), random bytes, some of them
# shaped like the start of an SNMP message.
cat >"$tmp/flood.py" <<'EOF'
import random, signal, socket, struct, sys, time
count, rate, dst = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
# QEMU's default MAC for the guest's NIC, and the bridge's own.
guest_mac = bytes.fromhex("525400123456")
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("br0", 0))
bridge_mac = raw.getsockname()[4]
def bad_frame(i):
    """Every tenth: an oversized frame (longer than Ethernet allows, short
    enough for QEMU to deliver), a runt, or a frame of unknown or broken
    protocol, all addressed to the guest."""
    kind = i // 10 % 4
    head = guest_mac + bridge_mac
    if kind == 0:
        return head + b"\x08\x00" + rng.randbytes(rng.randint(1520, 2000))
    if kind == 1:
        return head + b"\x08\x00" + rng.randbytes(rng.randint(0, 20))
    if kind == 2:
        return head + struct.pack("!H", rng.randint(0x0600, 0xffff)) + rng.randbytes(rng.randint(46, 1500))
    # IPv4 with a header that lies about its lengths.
    ip = bytes([0x45, 0, 0xff, 0xff]) + rng.randbytes(16)
    return head + b"\x08\x00" + ip + rng.randbytes(rng.randint(0, 600))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
rng = random.Random(7)
sources = ["10.77.0.1"] + [f"10.77.0.{i}" for i in range(64, 128)] + [f"10.77.1.{i}" for i in range(64)]
socks = []
for a in sources:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 0))
    s.setblocking(False)
    socks.append(s)
sent = errors = frames = 0
start = time.monotonic()
try:
    for i in range(count):
        if i % 10 == 9:
            try:
                raw.send(bad_frame(i))
                frames += 1
            except OSError:
                errors += 1
            continue
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
    print(f"flood: {sent} datagrams and {frames} bad frames sent ({errors} refused by the local stack) in {time.monotonic() - start:.1f} s")
EOF

# Counts the IPv4 fragments that cross br0 towards the guest's MAC until
# SIGTERM, then writes the count to $1 (proof that the guest had to
# reassemble answers).
cat >"$tmp/fragments.py" <<'EOF'
import signal, socket, sys
guest_mac = bytes.fromhex("525400123456")
# ETH_P_ALL: frames the namespace sends reach only such sockets.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("br0", 0))
count = 0
def done(*_):
    open(sys.argv[1], "w").write(f"{count}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    frame = s.recv(65535)
    if frame[:6] != guest_mac or frame[12:14] != b"\x08\x00":
        continue
    flags_offset = int.from_bytes(frame[20:22], "big")
    if flags_offset & 0x3fff:
        count += 1
EOF

# One ICMP echo to $1, answered within a second or not (no ping binary needed).
cat >"$tmp/ping.py" <<'EOF'
import select, socket, struct, sys
def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
body = b"dca-fwnet"
head = struct.pack("!BBHHH", 8, 0, 0, 0x77, 1)
packet = struct.pack("!BBHHH", 8, 0, checksum(head + body + b"\0"), 0x77, 1) + body
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(packet, (sys.argv[1], 0))
while select.select([s], [], [], 1.0)[0]:
    data, (src, _) = s.recvfrom(2048)
    icmp = data[(data[0] & 0x0f) * 4:]
    if src == sys.argv[1] and icmp[0] == 0 and icmp[4:6] == b"\x00\x77":
        sys.exit(0)
sys.exit(1)
EOF

# The comparison: the printers the firmware logged against the reference.
cat >"$tmp/compare.py" <<'EOF'
import json, re, sys
reference, log, label = sys.argv[1], sys.argv[2], sys.argv[3]
# Only the reference's printers whose address starts with this; and how
# many sweeps the block asked for.
prefix = sys.argv[4] if len(sys.argv) > 4 else ""
expected_sweeps = int(sys.argv[5]) if len(sys.argv) > 5 else 1
ref = {}
for line in open(reference):
    if not line.strip():
        continue
    j = json.loads(line)
    if not j.get("printer"):
        continue
    addr = j["address"].rsplit(":", 1)[0]
    if not addr.startswith(prefix):
        continue
    total = next((c["value"] for c in j["counters"] if c["name"] == "total"), None)
    ref[addr] = (j["identity"]["serial"] or "", None if total is None else str(total))
line_re = re.compile(r'\bprinter (\d+\.\d+\.\d+\.\d+)\b(.*)$')
field = lambda name, rest: re.search(name + r'=("(?:[^"\\]|\\.)*"|\S+)', rest)
# Each sweep's printers: the lines between "sweep N started" and the next.
sweeps, dup, done, current = {}, [], [], 0
for line in open(log, errors="replace"):
    started = re.search(r"\bsweep (\d+) started\b", line)
    if started:
        current = int(started.group(1))
        sweeps.setdefault(current, {})
        continue
    m = line_re.search(line)
    if m:
        addr, rest = m.group(1), m.group(2)
        s, t = field("serial", rest), field("total", rest)
        serial = json.loads(s.group(1)) if s and s.group(1).startswith('"') else (s.group(1) if s else "")
        total = t.group(1) if t and t.group(1) not in ("-", "none", "None") else None
        fw = sweeps.setdefault(current, {})
        if addr in fw:
            dup.append(addr)
        fw[addr] = (serial, total)
    elif re.search(r"\bsweep \d+ done\b", line):
        done.append(line.strip())
key = lambda a: tuple(int(x) for x in a.split("."))
bad = 0
for n, fw in sorted(sweeps.items()):
    print(f"{label}: sweep {n}: {len(ref)} printers in the reference, {len(fw)} logged by the firmware")
    rows = []
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
        rows.append((a, r, f, verdict))
    # The whole table for the first sweep; later ones only where they differ.
    show = lambda x, i: "-" if x is None or x[i] is None else x[i]
    listed = [row for row in rows if n == min(sweeps) or row[3] != "ok"]
    if listed:
        print(f"{'address':<15} {'serial (dca scan)':<20} {'serial (firmware)':<20} {'total (dca scan)':>16} {'total (firmware)':>16}  verdict")
    for a, r, f, verdict in listed:
        print(f"{a:<15} {show(r, 0):<20} {show(f, 0):<20} {show(r, 1):>16} {show(f, 1):>16}  {verdict}")
if dup:
    print(f"{label}: logged more than once in a sweep: {' '.join(sorted(set(dup), key=key))}")
    bad += 1
if len(done) != expected_sweeps or len(sweeps) != expected_sweeps:
    print(f"{label}: {len(done)} sweeps done and {len(sweeps)} started, {expected_sweeps} expected")
    bad += 1
for line in done:
    print(f"{label}: firmware: {line}")
print(f"{label}: {'PASS' if bad == 0 else f'FAIL ({bad} differences)'}")
sys.exit(1 if bad else 0)
EOF
python3 - "$tmp/reference.jsonl" <<'EOF'
import json, sys
n = sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l).get("printer"))
if n == 0:
    sys.exit("firmware-net: the reference scan found no printers")
EOF

# One boot of the firmware: provisioned with block $2, on tap0, until it
# exits after its sweep; its printers are compared with those of the
# reference whose address starts with $4. Mode $3: "plain"; "flood" (garbage
# hits the guest's address from its DHCPACK on); "static" (no DHCP server,
# and the link goes down and up again during the sweep).
boot() {
  local label=$1 prov=$2 mode=$3 prefix=${4:-} sweeps=${5:-1} acks status=0 qemu addr="" flooder=""
  acks=$(grep -c 'DHCPACK' "$tmp/dnsmasq.log" 2>/dev/null || true)
  : >"$tmp/$label.frames"
  timeout 600 ip netns exec "$ns" qemu-system-arm -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$image" \
    -device loader,file="$prov",addr=0x003FF000,force-raw=on \
    -nic tap,id=net0,ifname=tap0,script=no,downscript=no,model=lan9118 \
    -monitor unix:"$tmp/$label.monitor",server,nowait \
    >"$tmp/$label.frames" 2>"$tmp/$label.qemu.log" &
  qemu=$!
  pids+=("$qemu")
  local i
  if [ "$mode" = flood ]; then
    # The guest's address: the first DHCPACK after this boot began.
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
      ip netns exec "$ns" timeout 120 python3 "$tmp/flood.py" "$flood_count" "$flood_rate" "$addr" &
      flooder=$!
      pids+=("$flooder")
    fi
  elif [ "$mode" = static ]; then
    # Up once it answers a ping on its static address (smoltcp answers
    # echo requests); then, while it sweeps, the cable is pulled for 3 s.
    for ((i = 0; i < 60; i++)); do
      in_ns timeout 5 python3 "$tmp/ping.py" 10.77.0.50 && { addr=10.77.0.50; break; }
      kill -0 "$qemu" 2>/dev/null || break
    done
    if [ -z "$addr" ]; then
      echo "$label: the guest never answered on its static address" >&2
    else
      sleep 2
      echo "$label: link down for 3 s"
      monitor "$tmp/$label.monitor" "set_link net0 off"
      sleep 3
      monitor "$tmp/$label.monitor" "set_link net0 on"
      echo "$label: link up"
    fi
  fi
  wait "$qemu" || status=$?
  local flood_short=0
  if [ -n "$flooder" ]; then
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
  python3 "$tmp/compare.py" "$tmp/reference.jsonl" "$tmp/$label.log" "$label" "$prefix" "$sweeps" || ok=1
  if [ "$status" -ne 0 ]; then
    echo "$label: the firmware failed under QEMU (exit status $status)" >&2
    ok=1
  fi
  if [ "$mode" = flood ]; then
    if [ -z "$addr" ] || [ "$flood_short" -ne 0 ]; then ok=1; fi
    # The bad frames reached the driver and were dropped there.
    if ! grep -qE 'driver rx .*dropped: [1-9][0-9]* oversized' "$tmp/$label.log"; then
      echo "$label: the driver saw no oversized frame" >&2
      ok=1
    fi
  fi
  if [ "$mode" = static ]; then
    [ -n "$addr" ] || ok=1
    local want
    for want in 'using the static address 10.77.0.50/24' 'agent: link down' 'agent: link up'; do
      if ! grep -q "$want" "$tmp/$label.log"; then
        echo "$label: the log lacks \"$want\"" >&2
        ok=1
      fi
    done
  fi
  footprint "$label" || ok=1
  return "$ok"
}

# One command to the QEMU monitor at socket $1.
monitor() {
  timeout 10 python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.5)
s.close()
' "$1" "$2"
}

# The agent's own memory figures, and the budget: 256 KiB of flash and
# 128 KiB of RAM (static + the stack's high-water mark, as the agent ran).
footprint() {
  local line flash ram
  line=$(grep -oE 'flash [0-9]+ bytes, static RAM [0-9]+ bytes, stack high-water mark [0-9]+' "$tmp/$1.log" | tail -1 || true)
  if [ -z "$line" ]; then
    echo "$1: the firmware did not report its footprint" >&2
    return 1
  fi
  flash=$(awk '{print $2}' <<<"$line")
  ram=$(($(awk '{print $6}' <<<"$line") + $(awk '{print $11}' <<<"$line")))
  echo "$1: agent footprint: flash $flash bytes, RAM $ram bytes (budget 262144 and 131072)"
  if [ "$flash" -gt 262144 ] || [ "$ram" -gt 131072 ]; then
    echo "$1: over the firmware's budget" >&2
    return 1
  fi
}

# The boots to run (all by default; a subset while working on one).
boots=${FWNET_BOOTS:-plain flood static delivery refusals powercut}
want_boot() { [[ " $boots " == *" $1 "* ]]; }
# shellcheck source=ci/firmware-net-cloud.sh
source ci/firmware-net-cloud.sh

result=0
if want_boot delivery; then
  delivery_boot || result=1
fi
if want_boot refusals; then
  refusal_boots || result=1
fi
if want_boot powercut; then
  powercut_boots || result=1
fi
if want_boot plain; then
  # Not through in_ns: a function run in the background is a subshell, and
  # a signal to it would not reach the sniffer.
  ip netns exec "$ns" timeout 900 python3 "$tmp/fragments.py" "$tmp/fragments.count" &
  sniffer=$!
  pids+=("$sniffer")
  boot plain "$tmp/prov.bin" plain || result=1
  kill "$sniffer" 2>/dev/null || true
  wait "$sniffer" 2>/dev/null || true
  fragments=$(cat "$tmp/fragments.count" 2>/dev/null || echo 0)
  echo "plain: $fragments IP fragments reached the guest (answers it had to reassemble)"
  if [ "$fragments" -eq 0 ]; then
    echo "plain: no answer was fragmented, so reassembly went untested" >&2
    result=1
  fi
fi
if want_boot flood; then
  boot flood "$tmp/prov.bin" flood || result=1
fi
if want_boot static; then
  # No DHCP from here on.
  kill "$dnsmasq_pid" 2>/dev/null || true
  wait "$dnsmasq_pid" 2>/dev/null || true
  boot static "$tmp/prov-static.bin" static 10.77.1. 2 || result=1
fi
if [ "$result" -ne 0 ]; then
  echo "firmware-net: FAILED; DHCP as dnsmasq saw it:" >&2
  grep -E 'DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK)' "$tmp/dnsmasq.log" >&2 || true
fi
exit "$result"
