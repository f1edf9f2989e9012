#!/usr/bin/env bash
# The no_std gate: dca-core builds for Cortex-M with neither std nor alloc in
# its dependency graph, and the firmware image runs the codec under QEMU.
set -euo pipefail
target=thumbv7em-none-eabihf

# Crates allowed in dca-core's normal dependency graph: each must be no_std
# without alloc. Adding a dependency means adding it here, deliberately.
# sha2 and its digest-0.10 family name batches by content (the generation
# embedded-tls uses, so the firmware links one copy).
allowed='^(dca-core|heapless|hash32|byteorder|stable_deref_trait|minicbor|httparse|sha2|digest|block-buffer|crypto-common|generic-array|typenum|cfg-if)$'
deps=$(cargo tree -p dca-core -e normal --target "$target" --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(printf '%s\n' "$deps" | grep -Ev "$allowed" || true)
if [ -n "$bad" ]; then
  echo "dca-core depends on crates not vetted as no_std without alloc:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
# ...and none of them may have its std or alloc feature switched on.
if cargo tree -p dca-core -e normal,features --target "$target" | grep -E 'feature "(std|alloc)"'; then
  echo "a dependency of dca-core is built with std or alloc" >&2
  exit 1
fi
# SNMPv3's USM adds the RustCrypto primitives of the same generation
# embedded-tls links (digest 0.10, cipher 0.4), each no_std without alloc.
allowed_usm='^(md-5|sha1|hmac|subtle|aes|des|cfb-mode|cbc|cipher|inout|zeroize)$'
deps=$(cargo tree -p dca-core --features usm -e normal --target "$target" --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(printf '%s\n' "$deps" | grep -Ev "$allowed" | grep -Ev "$allowed_usm" || true)
if [ -n "$bad" ]; then
  echo "dca-core with usm depends on crates not vetted as no_std without alloc:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
if cargo tree -p dca-core --features usm -e normal,features --target "$target" | grep -E 'feature "(std|alloc)"'; then
  echo "a dependency of dca-core (usm) is built with std or alloc" >&2
  exit 1
fi

image=firmware/target/$target/release/dca-firmware
# Flash (.text + .rodata + .data) and static RAM (.data + .bss) of the image
# as `size` counts them; the image itself reports its stack's high-water mark.
flash() { size -A "$image" | awk '$1 ~ /^\.(text|rodata|data)$/ {n += $2} END {print n}'; }
ram() { size -A "$image" | awk '$1 ~ /^\.(data|bss)$/ {n += $2} END {print n}'; }
if rustup target list --installed | grep -qx "$target"; then
  cargo build -p dca-core --target "$target" --locked
  cargo build -p dca-core --target "$target" --locked --release
  cargo build -p dca-core --target "$target" --locked --release --features usm
  # The image with SNMPv3 (USM) first, only measured (it does not fit the
  # budget yet); then the reference image, which the QEMU checks run.
  (cd firmware && cargo build --release --locked --features snmpv3)
  usm_flash=$(flash) usm_ram=$(ram)
  (cd firmware && cargo build --release --locked)
  echo "firmware with SNMPv3 (USM): flash $usm_flash bytes, static RAM $usm_ram bytes; USM costs $((usm_flash - $(flash))) bytes of flash and $((usm_ram - $(ram))) of static RAM"
  echo "firmware flash: $(flash) bytes (budget 262144); static RAM: $(ram) bytes (the agent adds its stack)"
  # Flash by crate: where the image's bytes go (functions and constants).
  echo "firmware flash by crate (bytes):"
  nm -S --size-sort -C "$image" | python3 -c '
import collections, sys
size = collections.Counter()
for line in sys.stdin:
    part = line.rstrip("\n").split(" ", 3)
    if len(part) == 4 and part[2] in "tTrR":
        size[part[3].lstrip("<").split("::")[0]] += int(part[1], 16)
for name, n in size.most_common(12):
    print(f"  {n:7d}  {name}")'
  # What takes the room (the agent adds its stack's high-water mark, which
  # ci/firmware-net.sh reports and holds to the budget).
  largest() {
    nm -S --size-sort -C "$image" | grep -E " [$1] " | tail -n "$2" | sort -k2,2r |
      while read -r _ size _ name; do printf '  %7d  %s\n' "$((16#$size))" "$name"; done
  }
  echo "largest statics (bytes):"
  largest bBdD 8
  echo "largest functions (bytes):"
  largest tT 5
else
  # Fallback documented in ECOSYSTEM.md: Debian's toolchain with build-std.
  lld=$(ls "$(rustc --print sysroot)"/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld)
  export RUSTC_BOOTSTRAP=1 CARGO_TARGET_THUMBV7EM_NONE_EABIHF_LINKER="$lld"
  /usr/bin/cargo build -p dca-core --target "$target" -Zbuild-std=core
  (cd firmware && /usr/bin/cargo build --release -Zbuild-std=core)
fi

# The firmware's library crates test on the host (their .cargo/config.toml
# picks the host target): the driver against its register model, the
# cloud's TLS trust in handshakes with rustls, the flash journal under power
# cuts at every write; and build for the device.
for crate in lan9118 cloud-tls flash-journal; do
  (cd "firmware/$crate" && cargo test --locked && cargo build --release --locked --target "$target")
done

# No `alloc` or `std` crate may be linked into the firmware image.
if grep -aq 'liballoc\|alloc::alloc::\|__rust_alloc' "$image" ; then
  echo "the firmware image links an allocator" >&2
  exit 1
fi

# Run it: the image exits through semihosting with success only if the
# codec, sync, timer and entropy checks held. QEMU is bounded in time. Its
# output is defmt frames (the firmware logs with defmt-semihosting), decoded
# with the image's own string table by defmt-print (ci/setup.sh installs it).
if ! command -v defmt-print >/dev/null; then
  echo "defmt-print is missing (cargo install defmt-print --locked; see ci/setup.sh)" >&2
  exit 1
fi
frames=$(mktemp)
trap 'rm -f "$frames"' EXIT
status=0
timeout 60 qemu-system-arm -machine mps2-an386 -nographic \
  -semihosting-config enable=on,target=native -kernel "$image" >"$frames" || status=$?
# Decode whatever arrived, also after a failure: a panic's message is in it.
out=$(defmt-print --show-skipped-frames -e "$image" <"$frames")
echo "$out"
if [ "$status" -ne 0 ]; then
  echo "the firmware failed under QEMU (exit status $status)" >&2
  exit 1
fi
grep -q 'codec round trip ok' <<<"$out"
grep -q 'sync round trip ok' <<<"$out"
grep -q 'timer check ok' <<<"$out"
grep -q 'entropy check ok' <<<"$out"
grep -q 'stack high-water mark' <<<"$out"
