#!/usr/bin/env bash
# compare-dpdk.sh: pktkit's forwarding loop side by side with dpdk-testpmd's.
#
# Two set-ups, each run in alternating rounds (testpmd, pktkit, testpmd, ...)
# so that drift on a shared machine hits both alike:
#
#  null      Two null ports forwarded into each other by one core:
#              dpdk-testpmd --vdev net_null0 --vdev net_null1 --forward-mode=io
#              pktkit bench fwd --ports null,null
#            Figure: packets received per second on both ports together. For
#            testpmd that is the sum of the per-port "Rx-pps" lines printed by
#            --stats-period 1 (averaged over the periods after a warm-up);
#            pktkit's "mpps" is defined the same way (see kit/src/bench.rs).
#
#  afpacket  Real frames through the kernel. In a fresh network namespace,
#            two veth pairs a0<->a1 and b0<->b1. One generator (testpmd in
#            txonly mode on an af_packet port on a1, 64-byte UDP frames
#            addressed to a0, pinned to the other CPU) feeds a0 for the whole
#            section. The forwarder under test, pinned to its CPU, forwards
#            a0 -> b0 (and b0 -> a0, which stays idle):
#              dpdk-testpmd --vdev net_af_packet0,iface=a0 --vdev net_af_packet1,iface=b0
#              pktkit bench fwd --port afpacket,ifname=a0 --port afpacket,ifname=b0
#            Figure: frames arriving at b1 per second (b1's rx_packets counter
#            over a window inside the forwarder's steady state), which needs
#            no cooperation from either forwarder. The forwarder's own figure
#            and the generator's rate are printed too: when both forwarders
#            reach the generator's rate the ratio says only "at least equal".
#
# Usage: bench/compare-dpdk.sh [-s SECONDS] [-r ROUNDS] [-b BURST]
#                              [--only null|afpacket] [--hugepages] [--no-build]
#   -s SECONDS   measured seconds per run (default 10)
#   -r ROUNDS    rounds per set-up, each one testpmd run and one pktkit run (default 3)
#   -b BURST     burst size for both (default 32)
#   --only X     run only the null or only the afpacket set-up
#   --hugepages  reserve 2 MiB huge pages for the run (restored afterwards):
#                testpmd then runs on hugetlbfs and pktkit's pool picks them up
#   --no-build   use the existing target/release/pktkit (or $PKTKIT)
# Environment: CARGO_TARGET_DIR (where the release build lands), PKTKIT (the
# binary to run), FWD_CPU / GEN_CPU (default 1 / 0), AFP_IFOPT (the
# pktkit afpacket option naming the interface, default "ifname").
#
# Needs root (apt, network namespaces, huge pages). Installs Debian's DPDK
# (dpdk, dpdk-dev: dpdk-testpmd) when missing.

set -euo pipefail

RUN_SECONDS=10
ROUNDS=3
BURST=32
ONLY=""
HUGE=0
BUILD=1
FWD_CPU=${FWD_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
AFP_IFOPT=${AFP_IFOPT:-ifname}
# testpmd periods (1 s each) left out at the start of a run.
SKIP_PERIODS=2

usage() {
	sed -n 's/^# \{0,1\}//; /^Usage:/,/^Needs root/p' "$0"
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	-s | --seconds) RUN_SECONDS=$2; shift 2 ;;
	-r | --rounds) ROUNDS=$2; shift 2 ;;
	-b | --burst) BURST=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--hugepages) HUGE=1; shift ;;
	--no-build) BUILD=0; shift ;;
	-h | --help) usage 0 ;;
	*) echo "unknown argument: $1" >&2; usage 2 ;;
	esac
done
case "$ONLY" in "" | null | afpacket) ;; *) echo "--only takes null or afpacket" >&2; exit 2 ;; esac
for n in "$RUN_SECONDS" "$ROUNDS" "$BURST"; do
	case "$n" in '' | *[!0-9]* | 0) echo "not a positive integer: '$n'" >&2; exit 2 ;; esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "compare-dpdk.sh needs root (apt, netns, huge pages)" >&2
	exit 1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKTKIT=${PKTKIT:-${CARGO_TARGET_DIR:-$ROOT/target}/release/pktkit}
WORK=$(mktemp -d /tmp/pktkit-bench.XXXXXX)
TAG="pkb$$"
NS=""
HUGE_SAVED=""
HUGE_DIR=""
BG_PIDS=()

cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -INT "$pid" 2>/dev/null || true
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$NS" ]; then
		ip netns del "$NS" 2>/dev/null || true
	fi
	if [ -n "$HUGE_DIR" ]; then
		umount "$HUGE_DIR" 2>/dev/null || true
	fi
	if [ -n "$HUGE_SAVED" ]; then
		echo "$HUGE_SAVED" >/proc/sys/vm/nr_hugepages || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

ensure_dpdk() {
	if command -v dpdk-testpmd >/dev/null; then
		return
	fi
	log "installing Debian's DPDK (dpdk, dpdk-dev)"
	apt-get install -y dpdk dpdk-dev >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y dpdk dpdk-dev >/dev/null; }
}

build_pktkit() {
	if [ "$BUILD" = 1 ]; then
		log "building pktkit (release)"
		(cd "$ROOT" && cargo build --release -p pktkit >&2)
	fi
	if [ ! -x "$PKTKIT" ]; then
		log "no pktkit binary at $PKTKIT"
		exit 1
	fi
}

# Reserves 512 2 MiB pages and mounts a private hugetlbfs for testpmd.
setup_hugepages() {
	HUGE_SAVED=$(cat /proc/sys/vm/nr_hugepages)
	echo 512 >/proc/sys/vm/nr_hugepages
	local got
	got=$(cat /proc/sys/vm/nr_hugepages)
	if [ "$got" -lt 256 ]; then
		log "could reserve only $got huge pages; need 256"
		exit 1
	fi
	HUGE_DIR=$WORK/huge
	mkdir -p "$HUGE_DIR"
	mount -t hugetlbfs -o pagesize=2M nodev "$HUGE_DIR"
	log "reserved $got huge pages of 2 MiB"
}

# EAL memory arguments; $1 = MiB of memory when not on huge pages.
eal_mem() {
	if [ "$HUGE" = 1 ]; then
		echo "--huge-dir $HUGE_DIR --huge-unlink -m $1"
	else
		echo "--no-huge -m $1"
	fi
}

# Mean over the periods after the warm-up of the per-period sum of the
# "Rx-pps" lines of a testpmd --stats-period log; $2 = ports per period.
testpmd_rx_pps() {
	grep -a 'Rx-pps:' "$1" | awk -v ports="$2" -v skip="$SKIP_PERIODS" '
		{ sum[int((NR - 1) / ports)] += $2; n = int((NR - 1) / ports) + 1 }
		END {
			# the last period may be cut short by the stop: drop it
			last = (NR % ports == 0) ? n - 1 : n - 2
			t = 0; c = 0
			for (i = skip; i < last; i++) { t += sum[i]; c++ }
			if (c == 0) { print "nan"; exit }
			printf "%.0f\n", t / c
		}'
}

# The value of a numeric key of a one-line JSON object.
json_num() {
	sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"
}

# "median min max" of the numbers given.
stats() {
	printf '%s\n' "$@" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.3f %.3f %.3f\n", m, v[1], v[NR]
		}'
}

# Prints the summary of one set-up; $1 = name, then the dpdk and pktkit figure lists.
summary() {
	local name=$1 d p
	d=$(stats $2)
	p=$(stats $3)
	read -r dm dmin dmax <<<"$d"
	read -r pm pmin pmax <<<"$p"
	printf '%-8s median Mpps: dpdk-testpmd %.3f (%.3f..%.3f)  pktkit %.3f (%.3f..%.3f)  pktkit/dpdk %.3f\n' \
		"$name" "$dm" "$dmin" "$dmax" "$pm" "$pmin" "$pmax" \
		"$(awk -v a="$pm" -v b="$dm" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')"
}

# --- null ------------------------------------------------------------------

run_null() {
	local r dpdk_all="" pk_all="" log dpps dmpps out pmpps
	log "null: $ROUNDS rounds of $RUN_SECONDS s, burst $BURST, forwarding on CPU $FWD_CPU"
	for r in $(seq 1 "$ROUNDS"); do
		log=$WORK/testpmd-null-$r.log
		# -l: main lcore first (prints stats), forwarding lcore second.
		# shellcheck disable=SC2046
		timeout -s INT $((RUN_SECONDS + SKIP_PERIODS + 4)) \
			dpdk-testpmd $(eal_mem 1024) --no-pci --file-prefix "$TAG" \
			--vdev net_null0 --vdev net_null1 -l "$GEN_CPU,$FWD_CPU" -- \
			--forward-mode=io --burst="$BURST" --stats-period 1 >"$log" 2>&1 || true
		dpps=$(testpmd_rx_pps "$log" 2)
		if [ "$dpps" = nan ]; then
			log "testpmd gave no figures; its log:"
			tail -20 "$log" >&2
			exit 1
		fi
		dmpps=$(awk -v x="$dpps" 'BEGIN { printf "%.3f", x / 1e6 }')

		out=$(taskset -c "$FWD_CPU" "$PKTKIT" bench fwd --ports null,null \
			--burst "$BURST" --seconds "$RUN_SECONDS" --json 2>"$WORK/pktkit.err") || {
			log "pktkit bench fwd failed (exit $?):"
			cat "$WORK/pktkit.err" >&2
			exit 1
		}
		pmpps=$(json_num "$out" mpps)
		printf 'null     round %d: dpdk-testpmd %8.3f Mpps   pktkit %8.3f Mpps   (pktkit: %s)\n' \
			"$r" "$dmpps" "$pmpps" "$out"
		dpdk_all="$dpdk_all $dmpps"
		pk_all="$pk_all $pmpps"
	done
	summary null "$dpdk_all" "$pk_all"
}

# --- af_packet -------------------------------------------------------------

ns() { ip netns exec "$NS" "$@"; }

b1_rx() { ns cat /sys/class/net/b1/statistics/rx_packets; }

now() { date +%s.%N; }

# Frames per second arriving at b1 between $1 and $1 + $2 seconds after now.
b1_rate_window() {
	local c1 c2 t1 t2
	sleep "$1"
	c1=$(b1_rx); t1=$(now)
	sleep "$2"
	c2=$(b1_rx); t2=$(now)
	awk -v c="$((c2 - c1))" -v t1="$t1" -v t2="$t2" 'BEGIN { printf "%.0f\n", c / (t2 - t1) }'
}

setup_netns() {
	NS="$TAG-afp"
	ip netns add "$NS"
	ns ip link add a0 type veth peer name a1
	ns ip link add b0 type veth peer name b1
	# No IPv6 or other chatter: only generated frames cross the veths.
	ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	for i in a0 a1 b0 b1; do
		ns ip link set "$i" up
	done
}

run_afpacket() {
	local r window=$((RUN_SECONDS > 1 ? RUN_SECONDS - 1 : 1)) a0_mac gen_log gen_secs gen_pid
	local dpdk_all="" pk_all="" log dpps d_b1 out p_b1 pmpps gen_pps pid
	setup_netns
	a0_mac=$(ns cat /sys/class/net/a0/address)
	log "afpacket: $ROUNDS rounds of $RUN_SECONDS s, burst $BURST, forwarder on CPU $FWD_CPU, generator on CPU $GEN_CPU (netns $NS)"

	# The generator runs for the whole section: two forwarder runs per round.
	gen_log=$WORK/testpmd-gen.log
	gen_secs=$((ROUNDS * 2 * (RUN_SECONDS + 6) + 10))
	# lcores 0 and 1 (main, forwarding) both on GEN_CPU.
	# shellcheck disable=SC2046
	# Started directly (not through the ns function) so that $! is the
	# process a signal must reach: ip netns exec and timeout both exec or
	# forward, so SIGINT lands in testpmd, which then stops cleanly.
	ip netns exec "$NS" timeout -s INT "$gen_secs" dpdk-testpmd $(eal_mem 256) --no-pci \
		--file-prefix "$TAG-gen" --lcores "0@$GEN_CPU,1@$GEN_CPU" \
		--vdev net_af_packet0,iface=a1,qdisc_bypass=1 -- \
		--forward-mode=txonly --txpkts=64 --burst="$BURST" --eth-peer="0,$a0_mac" \
		--total-num-mbufs=16384 --stats-period 1 >"$gen_log" 2>&1 &
	gen_pid=$!
	BG_PIDS+=("$gen_pid")
	sleep 4

	for r in $(seq 1 "$ROUNDS"); do
		log=$WORK/testpmd-afp-$r.log
		# shellcheck disable=SC2046
		ip netns exec "$NS" timeout -s INT $((RUN_SECONDS + SKIP_PERIODS + 4)) dpdk-testpmd $(eal_mem 512) --no-pci \
			--file-prefix "$TAG-fwd" -l "$GEN_CPU,$FWD_CPU" \
			--vdev "net_af_packet0,iface=a0,qdisc_bypass=1" \
			--vdev "net_af_packet1,iface=b0,qdisc_bypass=1" -- \
			--forward-mode=io --burst="$BURST" --total-num-mbufs=16384 \
			--stats-period 1 >"$log" 2>&1 &
		pid=$!
		BG_PIDS+=("$pid")
		d_b1=$(b1_rate_window 2 "$window")
		wait "$pid" || true
		dpps=$(testpmd_rx_pps "$log" 2)

		out=$(ns taskset -c "$FWD_CPU" "$PKTKIT" bench fwd \
			--port "afpacket,$AFP_IFOPT=a0" --port "afpacket,$AFP_IFOPT=b0" \
			--burst "$BURST" --seconds "$RUN_SECONDS" --json >"$WORK/pktkit-afp.json" 2>"$WORK/pktkit.err" &
			pid=$!
			b1_rate_window 2 "$window" >"$WORK/b1"
			status=0
			wait "$pid" || status=$?
			cat "$WORK/pktkit-afp.json"
			exit "$status") || {
			log "pktkit bench fwd on af_packet failed: $out"
			cat "$WORK/pktkit.err" >&2
			exit 1
		}
		p_b1=$(cat "$WORK/b1")
		pmpps=$(json_num "$out" mpps)
		gen_pps=$(testpmd_tx_pps_last "$gen_log")
		printf 'afpacket round %d: at b1 dpdk-testpmd %8.3f Mpps  pktkit %8.3f Mpps   (own figures: testpmd rx %.3f Mpps, pktkit rx %.3f Mpps; generator %.3f Mpps)\n' \
			"$r" "$(mpps "$d_b1")" "$(mpps "$p_b1")" "$(mpps "$dpps")" "$pmpps" "$(mpps "$gen_pps")"
		dpdk_all="$dpdk_all $(mpps "$d_b1")"
		pk_all="$pk_all $(mpps "$p_b1")"
	done
	kill -INT "$gen_pid" 2>/dev/null || true
	wait "$gen_pid" || true
	summary afpacket "$dpdk_all" "$pk_all"
}

mpps() { awk -v x="$1" 'BEGIN { printf "%.3f", x / 1e6 }'; }

# The generator's latest full-period Tx-pps.
testpmd_tx_pps_last() {
	grep -a 'Tx-pps:' "$1" | tail -2 | head -1 | awk '{ print $2 }'
}

# --- main ------------------------------------------------------------------

ensure_dpdk
build_pktkit
if [ "$HUGE" = 1 ]; then
	setup_hugepages
fi
log "dpdk-testpmd: $(dpkg-query -W -f '${Version}' dpdk 2>/dev/null || echo unknown); pktkit: $PKTKIT; huge pages: $([ "$HUGE" = 1 ] && echo yes || echo no)"
if [ -z "$ONLY" ] || [ "$ONLY" = null ]; then
	run_null
fi
if [ -z "$ONLY" ] || [ "$ONLY" = afpacket ]; then
	run_afpacket
fi
