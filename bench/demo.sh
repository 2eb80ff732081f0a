#!/usr/bin/env bash
# The main job's demo: pktkit runs on two kinds of interface at once, each
# wired to a real Linux peer in a network namespace this script makes:
#   tap0 (TAP)       <-> Linux in ns A, 192.0.2.0/24
#   afp0 (AF_PACKET) <-> veth <-> Linux in ns B, 198.51.100.0/24
# Linux pings pktkit on both, then sends 4 MiB through pktkit's TCP echo
# service and checks every byte comes back. Everything is removed at exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${PKTKIT:-$root/target/release/pktkit}
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, TAP)"; exit 2; }
[ -x "$bin" ] || { echo "demo: build first: cargo build --release -p pktkit"; exit 2; }

id=$$
A=pkdA$id; B=pkdB$id
log=$(mktemp)
cleanup() {
    [ -n "${pk:-}" ] && kill -INT "$pk" 2>/dev/null && wait "$pk" 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

ip netns add "$A"; ip netns add "$B"
ip -n "$A" link set lo up; ip -n "$B" link set lo up
# The AF_PACKET side: a veth pair with one end in each namespace.
ip -n "$A" link add vdemo type veth peer name vpeer netns "$B"
ip -n "$A" link set vdemo up
ip -n "$B" addr add 198.51.100.1/24 dev vpeer
ip -n "$B" link set vpeer up
# Linux hands AF_PACKET its own unsegmented (TSO/GSO) frames on a veth; a
# real wire never carries those, so the peer segments in software here.
ip netns exec "$B" ethtool -K vpeer tso off gso off >/dev/null

echo "== pktkit run (in $A)"
ip netns exec "$A" "$bin" -v run \
    -d tap,ifname=tdemo -d afpacket,ifname=vdemo \
    --ip tap0=192.0.2.2/24 --ip afp0=198.51.100.2/24 \
    --serve echo,discard >"$log" 2>&1 &
pk=$!
for _ in $(seq 50); do ip -n "$A" link show tdemo >/dev/null 2>&1 && break; sleep 0.1; done
ip -n "$A" addr add 192.0.2.1/24 dev tdemo
ip -n "$A" link set tdemo up
sleep 0.5

echo "== Linux pings pktkit over TAP and over AF_PACKET"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 192.0.2.2
ip netns exec "$B" ping -c 3 -i 0.2 -W 2 198.51.100.2

echo "== 4 MiB through pktkit's TCP echo service (port 7), over AF_PACKET"
ip netns exec "$B" python3 - <<'PY'
import os, socket, hashlib, time
data = os.urandom(4 << 20)
s = socket.create_connection(("198.51.100.2", 7), timeout=20)
t0 = time.time()
got = bytearray()
sent = 0
s.setblocking(False)
while len(got) < len(data):
    if sent < len(data):
        try:
            sent += s.send(data[sent:sent + 65536])
        except BlockingIOError:
            pass
    try:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    except BlockingIOError:
        time.sleep(0.0005)
    if time.time() - t0 > 60:
        break
dt = time.time() - t0
ok = bytes(got) == data
print(f"echoed {len(got)} of {len(data)} bytes in {dt:.2f} s "
      f"({len(data) * 8 / dt / 1e6:.1f} Mbit/s each way), identical: {ok}")
raise SystemExit(0 if ok else 1)
PY

echo "== stop pktkit: its per-interface counters"
kill -INT "$pk"; wait "$pk" || true; pk=
cat "$log"
