# The firmware delivering to the cloud, in the lab ci/firmware-net.sh built
# (sourced by it: its namespace, printers, reference scan and helpers).
#
# - delivery: the device boots while dca-cloud is down, sweeps the corpus
#   printers, fails to enroll, and keeps its readings; the cloud starts; the
#   device enrolls, delivers, takes two tasks and reports their results. The
#   cloud must then hold for the device's customer exactly the devices, page
#   counts and supplies the host agent's `dca push` of the same printers
#   gives another customer.
# - refusals: a block whose pin is not the cloud's key, a token already
#   used, and a CA-mode block facing a chain in which a CA:FALSE
#   certificate signs the server's: each refused with the reason logged, and
#   nothing reaches the cloud.
# - powercut: twenty cuts at seeded random moments, then every journaled
#   batch stored exactly once.

cloud_bin=$PWD/target/release/dca-cloud
image_path=$(realpath "$image")
clouddir=$tmp/cloud
mkdir -p "$clouddir"

# Decodes what the guest of boot $1 has logged so far.
live_log() {
  timeout 60 defmt-print -e "$image" <"$tmp/$1.frames" 2>/dev/null || true
}

# Waits up to $3 seconds for the log of boot $1 to match $2 (grep -E).
await_log() {
  local i
  for ((i = 0; i < $3; i++)); do
    live_log "$1" | grep -qE "$2" && return 0
    sleep 1
  done
  echo "$1: the firmware never logged /$2/ within $3 s" >&2
  return 1
}

# Waits up to $2 seconds for command $1 (a string) to succeed.
await_cmd() {
  local i
  for ((i = 0; i < $2; i++)); do
    eval "$1" && return 0
    sleep 1
  done
  echo "firmware-net: \"$1\" did not hold within $2 s" >&2
  return 1
}

# dca-cloud on 10.77.0.1:$1 with database $2 and extra arguments.
start_cloud() {
  local port=$1 db=$2
  shift 2
  ip netns exec "$ns" timeout 1800 "$cloud_bin" serve --listen "10.77.0.1:$port" --db "$db" \
    --poll-interval 5 "$@" >>"$db.log" 2>&1 &
  cloud_pid=$!
  pids+=("$cloud_pid")
  await_cmd "grep -q 'key pin' '$db.log'" 30
}

stop_cloud() {
  kill "$cloud_pid" 2>/dev/null || true
  wait "$cloud_pid" 2>/dev/null || true
}

# Starts QEMU on block $2 for boot $1 in the background (qemu_pid). The
# guest's flash (journal, identity) is kept in files of directory $3
# (default: one of the boot's own), which outlive the QEMU process.
start_guest() {
  local dir=${3:-$tmp/$1.flash}
  mkdir -p "$dir"
  : >"$tmp/$1.frames"
  (cd "$dir" && exec timeout 900 ip netns exec "$ns" qemu-system-arm -machine mps2-an386 \
    -nographic -semihosting-config enable=on,target=native -kernel "$image_path" \
    -device loader,file="$2",addr=0x003FF000,force-raw=on \
    -nic tap,id=net0,ifname=tap0,script=no,downscript=no,model=lan9118 \
    >>"$tmp/$1.frames" 2>>"$tmp/$1.qemu.log") &
  qemu_pid=$!
  pids+=("$qemu_pid")
}

# Cuts the guest's power (SIGKILL to QEMU) and shows its log.
stop_guest() {
  pkill -KILL -P "$qemu_pid" 2>/dev/null || true
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  live_log "$1" >"$tmp/$1.log"
  echo "---- $1: firmware log"
  cat "$tmp/$1.log"
  [ -s "$tmp/$1.qemu.log" ] && sed 's/^/qemu: /' "$tmp/$1.qemu.log"
  echo "----"
}

token_for() {
  "$cloud_bin" token create --customer "$1" --db "$2" | tail -1
}

delivery_boot() {
  local db=$clouddir/cloud.db ok=0 pin token agent
  # The cloud's key, made at its first start; then it is stopped, so the
  # device boots with no cloud to reach.
  start_cloud 8443 "$db" --name 10.77.0.1 || return 1
  pin=$(grep -oE 'key pin \(sha256 of the public key\) [0-9a-f]{64}' "$db.log" | awk '{print $NF}')
  stop_cloud
  token=$(token_for device "$db")
  "$dca" provision --targets 10.77.0.64/26 --sweeps 0 --schedule 3600 --port 161 \
    --cloud https://10.77.0.1:8443 --pin "$pin" --token "$token" --out "$tmp/prov-cloud.bin"
  start_guest delivery "$tmp/prov-cloud.bin"
  await_log delivery 'enrollment not done' 240 || ok=1
  if [ "$ok" -eq 0 ]; then
    echo "delivery: the device could not reach the cloud; starting it"
    start_cloud 8443 "$db" --name 10.77.0.1 || ok=1
    # It enrolls once its first sweep is over.
    await_cmd "'$cloud_bin' agent list --db '$db' | grep -q 'customer=device'" 400 || ok=1
  fi
  if [ "$ok" -eq 0 ]; then
    agent=$("$cloud_bin" agent list --db "$db" | awk '/customer=device/ {print $1; exit}')
    # One corpus printer, for poll_device.
    local one
    one=$(python3 -c 'import json, sys
print(next(json.loads(l)["address"].rsplit(":", 1)[0] for l in open(sys.argv[1]) if l.strip()
           and json.loads(l).get("printer") and json.loads(l)["address"].startswith("10.77.0.")))' \
      "$tmp/reference.jsonl")
    # Quieter first (no line per printer), then a poll that shows it; new
    # targets and a rescan of them; a new schedule.
    "$cloud_bin" task create --agent "$agent" --kind set_log_level --arg warn --db "$db"
    "$cloud_bin" task create --agent "$agent" --kind poll_device --arg "$one" --db "$db"
    "$cloud_bin" task create --agent "$agent" --kind set_targets --arg 10.77.1.11-12 --db "$db"
    "$cloud_bin" task create --agent "$agent" --kind rescan --db "$db"
    "$cloud_bin" task create --agent "$agent" --kind set_schedule --arg 600 --db "$db"
    await_cmd "[ \$('$cloud_bin' task list --db '$db' | grep -c ': ok: ') -eq 5 ]" 240 || ok=1
    "$cloud_bin" task list --db "$db"
    # Every corpus printer delivered (the reference scan's count), and the
    # two the new targets hold.
    local want
    want=$(python3 -c 'import json, sys
print(2 + sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l).get("printer")
          and json.loads(l)["address"].startswith("10.77.0.")))' "$tmp/reference.jsonl")
    await_cmd "[ \$('$cloud_bin' devices --db '$db' --json | grep -c '\"customer\":\"device\"') -eq $want ]" 180 || ok=1
  fi
  stop_guest delivery
  grep -q 'delivery: enrolled as agent' "$tmp/delivery.log" || ok=1
  # The poll (sweep 2) ran at level warn: no printer line in it; the
  # rescan (sweep 3) swept the new targets.
  if [ "$(sed -n '/sweep 2 started/,/sweep 2 done/p' "$tmp/delivery.log" | grep -c '^printer ')" -ne 0 ] ||
    ! grep -q 'sweep 2 done: 1 printers' "$tmp/delivery.log"; then
    echo "delivery: the poll after set_log_level warn is missing or still logs its printer" >&2
    ok=1
  fi
  if ! grep -q 'sweep 3 done: 2 printers' "$tmp/delivery.log"; then
    echo "delivery: the rescan after set_targets did not sweep the new targets" >&2
    ok=1
  fi
  footprint delivery || ok=1

  # The same fleet through the host agent, into another customer.
  local state=$tmp/host-state
  in_ns timeout 60 "$dca" enroll --cloud https://10.77.0.1:8443 --pin "$pin" \
    --token "$(token_for host "$db")" --state-dir "$state" || ok=1
  in_ns timeout 180 "$dca" push 10.77.0.64/26 10.77.1.11-12 --port 161 --retries 3 \
    --state-dir "$state" || ok=1
  "$cloud_bin" devices --db "$db" --json >"$tmp/cloud-devices.jsonl"
  python3 - "$tmp/cloud-devices.jsonl" <<'EOF' || ok=1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {"device": {}, "host": {}}
for r in rows:
    by.setdefault(r["customer"], {})[r["key"]] = r
dev, host = by["device"], by["host"]
bad = 0
if not host:
    print("delivery: the host agent delivered nothing"); bad += 1
for key in sorted(set(dev) | set(host)):
    d, h = dev.get(key), host.get(key)
    if d is None or h is None:
        print(f"delivery: {key} only in {'host' if d is None else 'device'}"); bad += 1
        continue
    for field in ("model", "serial", "counters", "supplies"):
        if d[field] != h[field]:
            print(f"delivery: {key} {field}: device {d[field]!r}, host {h[field]!r}"); bad += 1
print(f"delivery: {len(dev)} devices from the firmware, {len(host)} from the host agent: "
      + ("PASS" if bad == 0 else f"FAIL ({bad} differences)"))
sys.exit(1 if bad else 0)
EOF
  stop_cloud
  return "$ok"
}

# A CA whose CA:FALSE certificate signs the server's: embedded-tls's own
# chain check would accept it.
forge_chain() {
  local d=$clouddir/forged
  mkdir -p "$d"
  (
    cd "$d"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key root.key
    key mid.key
    key server.key
    openssl req -x509 -new -key root.key -subj /CN=forged-root -days 30 -out root.pem \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    openssl req -new -key mid.key -subj /CN=not-a-ca -out mid.csr
    printf 'basicConstraints=critical,CA:FALSE\n' >mid.ext
    openssl x509 -req -in mid.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 \
      -extfile mid.ext -out mid.pem 2>/dev/null
    openssl req -new -key server.key -subj /CN=10.77.0.1 -out server.csr
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:10.77.0.1\n' >server.ext
    openssl x509 -req -in server.csr -CA mid.pem -CAkey mid.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.pem 2>/dev/null
    cat server.pem mid.pem >chain.pem
  )
}

refusal_boots() {
  local db=$clouddir/refusals.db ok=0 before
  start_cloud 8443 "$db" --name 10.77.0.1 || return 1
  "$dca" provision --targets 10.77.1.11 --sweeps 0 --schedule 3600 --port 161 \
    --cloud https://10.77.0.1:8443 --pin "$(printf 'ab%.0s' {1..32})" \
    --token "$(token_for wrong-pin "$db")" --out "$tmp/prov-wrong-pin.bin"
  start_guest wrong-pin "$tmp/prov-wrong-pin.bin"
  await_log wrong-pin "refusing the cloud's certificate: the server's key matches no pin" 120 || ok=1
  stop_guest wrong-pin

  # A token someone already used (here the host agent): refused by the
  # cloud, said so, nothing delivered under it.
  local pin used
  pin=$(grep -oE 'key pin \(sha256 of the public key\) [0-9a-f]{64}' "$db.log" | awk '{print $NF}' | tail -1)
  used=$(token_for used-token "$db")
  in_ns timeout 60 "$dca" enroll --cloud https://10.77.0.1:8443 --pin "$pin" --token "$used" \
    --state-dir "$tmp/used-token-state" || ok=1
  "$dca" provision --targets 10.77.1.11 --sweeps 0 --schedule 3600 --port 161 \
    --cloud https://10.77.0.1:8443 --pin "$pin" --token "$used" --out "$tmp/prov-used-token.bin"
  start_guest used-token "$tmp/prov-used-token.bin"
  await_log used-token "the cloud refused the enrollment token" 120 || ok=1
  stop_guest used-token
  stop_cloud

  forge_chain
  start_cloud 8444 "$db" --cert "$clouddir/forged/chain.pem" --key "$clouddir/forged/server.key" || ok=1
  "$dca" provision --targets 10.77.1.11 --sweeps 0 --schedule 3600 --port 161 \
    --cloud https://10.77.0.1:8444 --ca "$clouddir/forged/root.pem" \
    --token "$(token_for forged "$db")" --out "$tmp/prov-forged.bin"
  start_guest forged "$tmp/prov-forged.bin"
  await_log forged "refusing the cloud's certificate: a certificate that is not a CA signed another" 120 || ok=1
  stop_guest forged
  stop_cloud
  # No device enrolled or delivered anything: the one agent is the host's.
  before=$("$cloud_bin" agent list --db "$db" | wc -l)
  if [ "$before" -ne 1 ] || [ -n "$("$cloud_bin" devices --db "$db" --json)" ]; then
    echo "refusals: the cloud holds an agent or a device from a refused device" >&2
    "$cloud_bin" agent list --db "$db" >&2
    ok=1
  fi
  for l in wrong-pin used-token forged; do
    if grep -q 'delivery: enrolled' "$tmp/$l.log"; then
      echo "$l: the device enrolled with a server it should have refused" >&2
      ok=1
    fi
  done
  [ "$ok" -eq 0 ] && echo "refusals: PASS"
  return "$ok"
}

# Twenty power cuts at seeded random moments of collection and delivery,
# each followed by a boot on the same flash; then a boot that runs one
# sweep and stops once everything is delivered. Every batch any boot logged
# as journaled must then be in the cloud, and no reading stored twice.
powercut_boots() {
  local db=$clouddir/powercut.db ok=0 pin seed delays i=0 d dir=$tmp/powercut.flash token
  start_cloud 8445 "$db" --name 10.77.0.1 || return 1
  pin=$(grep -oE 'key pin \(sha256 of the public key\) [0-9a-f]{64}' "$db.log" | awk '{print $NF}')
  token=$(token_for powercut "$db")
  "$dca" provision --targets 10.77.1.11-20 --sweeps 0 --schedule 10 --port 161 \
    --cloud https://10.77.0.1:8445 --pin "$pin" --token "$token" --out "$tmp/prov-powercut.bin"
  "$dca" provision --targets 10.77.1.11-20 --sweeps 1 --schedule 10 --port 161 \
    --cloud https://10.77.0.1:8445 --pin "$pin" --token "$token" --out "$tmp/prov-powercut-last.bin"
  seed=${POWERCUT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
  delays=$(python3 -c 'import random, sys
r = random.Random(int(sys.argv[1]))
print(" ".join(f"{r.uniform(3, 30):.1f}" for _ in range(20)))' "$seed")
  echo "powercut: seed $seed (POWERCUT_SEED=$seed repeats them): cuts after $delays s"
  for d in $delays; do
    i=$((i + 1))
    start_guest "powercut-$i" "$tmp/prov-powercut.bin" "$dir"
    sleep "$d"
    pkill -KILL -P "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    live_log "powercut-$i" >"$tmp/powercut-$i.log"
    echo "powercut: cut $i after $d s: $(grep -c 'journaled at position' "$tmp/powercut-$i.log") batches journaled, $(grep -c 'delivered:' "$tmp/powercut-$i.log") delivered; last: $(grep -v '^printer' "$tmp/powercut-$i.log" | tail -1 | cut -c1-110)"
  done
  start_guest powercut-last "$tmp/prov-powercut-last.bin" "$dir"
  local status=0
  wait "$qemu_pid" || status=$?
  live_log powercut-last >"$tmp/powercut-last.log"
  echo "---- powercut-last: firmware log"
  grep -v '^printer' "$tmp/powercut-last.log"
  echo "----"
  if [ "$status" -ne 0 ] || ! grep -q 'delivery: done' "$tmp/powercut-last.log"; then
    echo "powercut: the last boot did not end with everything delivered (status $status)" >&2
    ok=1
  fi
  cat "$tmp"/powercut-*.log >"$tmp/powercut-all.log"
  python3 - "$tmp/powercut-all.log" "$db" <<'EOF' || ok=1
import re, sqlite3, sys
log, db = sys.argv[1], sys.argv[2]
journaled = set(re.findall(r"delivery: batch ([0-9a-f]{16}) of \d+ bytes journaled",
                           open(log, errors="replace").read()))
c = sqlite3.connect(db)
held = {bytes(d).hex()[:16]: n for d, n in c.execute(
    "SELECT b.digest, b.readings FROM batches b JOIN customers k ON k.id = b.customer_id "
    "WHERE k.name = 'powercut'")}
bad = 0
for b in sorted(journaled - set(held)):
    print(f"powercut: batch {b} was journaled and never stored")
    bad += 1
dups = c.execute("""SELECT COUNT(*) FROM (
    SELECT r.device_id, r.boot_id, r.mono_ms, r.counter, COUNT(DISTINCT r.batch_id) n
    FROM readings r JOIN batches b ON b.id = r.batch_id JOIN customers k ON k.id = b.customer_id
    WHERE k.name = 'powercut' GROUP BY 1, 2, 3, 4 HAVING n > 1)""").fetchone()[0]
if dups:
    print(f"powercut: {dups} readings stored in more than one batch")
    bad += 1
print(f"powercut: {len(journaled)} batches journaled across the boots, {len(held)} held by the "
      f"cloud ({sum(held.values())} readings), none twice: "
      + ("PASS" if bad == 0 and journaled else f"FAIL ({bad})"))
sys.exit(1 if bad or not journaled else 0)
EOF
  footprint powercut-last || ok=1
  stop_cloud
  return "$ok"
}
