#!/usr/bin/env bash
# drivers/port.c + net/ on real DPDK virtual ports, driven by
# build/tests/tools/port_echo (DPDK port + lwIP ARP/ICMP + TCP echo):
#   - net_af_packet on a veth whose peer sits in netns mgp-cli: ping, a 1 MB
#     TCP echo checked by sha256, a larger echo for throughput, port stats;
#   - a bad device string: one clear error line and a non-zero exit;
#   - net_tap: ping from a namespace holding the tap.
# Addresses 198.18.8.0/24 only; everything created here is deleted on exit.
set -u
source "$(dirname "$0")/../lib.sh"
exec 9>/run/lock/meshgate-platform.lock   # fixed netns names: one run per machine
flock 9
TOP=$TESTS_TOP
ECHO=$TOP/build/tests/tools/port_echo
NS=mgp-cli
TNS=mgp-tns
SRV=198.18.8.2
CLI=198.18.8.1
work=$(mktemp -d /tmp/mgp-port.XXXXXX)
echo_pid=

stop_echo() {
	if [ -n "$echo_pid" ]; then
		kill -TERM "$echo_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$echo_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$echo_pid" 2>/dev/null
		wait "$echo_pid" 2>/dev/null
		echo_pid=
	fi
}
cleanup() {
	stop_echo
	ip netns del $NS 2>/dev/null
	ip netns del $TNS 2>/dev/null
	ip link del mgp-a 2>/dev/null
	ip link del mgp-tap 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# start_echo DEVICE LOGNAME: runs port_echo in the background, waits for ready
start_echo() {
	"$ECHO" --device "$1" --addr $SRV/24 --port 7 --seconds 100 >"$work/$2.out" 2>"$work/$2.err" &
	echo_pid=$!
	for _ in $(seq 100); do
		grep -q '^port_echo: ready' "$work/$2.out" 2>/dev/null && return 0
		kill -0 "$echo_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "# port_echo did not start:"; sed 's/^/#   /' "$work/$2.err"
	return 1
}
quiet() { "$@" >/dev/null 2>&1; }
# stat NAME LOGNAME: a counter from port_echo's closing stats line
stat() { grep '^port_echo: stats' "$work/$2.out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

cat >"$work/echo_client.py" <<'PY'
import hashlib, os, socket, sys, threading, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(n)
s = socket.create_connection((host, port), timeout=30)
t0 = time.monotonic()
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
th = threading.Thread(target=send, daemon=True)
th.start()
h = hashlib.sha256()
got = 0
try:
    while True:
        b = s.recv(262144)
        if not b:
            break
        h.update(b)
        got += len(b)
except socket.timeout:
    print("timeout after %d bytes" % got, file=sys.stderr)
dt = time.monotonic() - t0
th.join(5)
print(hashlib.sha256(data).hexdigest(), h.hexdigest(), got, "%.1f" % (got / dt / 1e6))
PY

if [ "$(id -u)" != 0 ]; then not_ok "test_port needs root (netns, veth, DPDK)"; tap_exit; fi
if ! make -C "$TOP" --no-print-directory build/tests/tools/port_echo >"$work/build.log" 2>&1; then
	not_ok "build port_echo"; sed 's/^/#   /' "$work/build.log" | tail -20; tap_exit
fi
ok "build port_echo"

# A leftover from an interrupted run would make every step below fail.
ip netns del $NS 2>/dev/null; ip netns del $TNS 2>/dev/null
ip link del mgp-a 2>/dev/null; ip link del mgp-tap 2>/dev/null

# ------------------------------------------------ af_packet over a veth
ip netns add $NS
ip link add mgp-a type veth peer name mgp-b
ip link set mgp-b netns $NS
sysctl -qw net.ipv6.conf.mgp-a.disable_ipv6=1 2>/dev/null
ip link set mgp-a up
ip -n $NS link set lo up
ip -n $NS addr add $CLI/24 dev mgp-b
ip -n $NS link set mgp-b up
# The veth would hand af_packet partial checksums and 64 KB GSO frames.
check "client veth: tx checksum offload off" quiet ip netns exec $NS ethtool -K mgp-b tx off

if start_echo net_af_packet0,iface=mgp-a afp; then
	ok "port_echo opens net_af_packet0,iface=mgp-a"
	check "ping over af_packet" quiet ip netns exec $NS ping -c 3 -i 0.2 -W 2 -q $SRV
	read -r want got bytes mbps < <(ip netns exec $NS timeout 60 python3 "$work/echo_client.py" $SRV 7 1048576 2>"$work/client.err")
	expect_eq "TCP echo 1 MB: sha256 matches" "${got:-none}" "${want:-x}"
	expect_eq "TCP echo 1 MB: byte count" "${bytes:-0}" 1048576
	read -r want got bytes mbps < <(ip netns exec $NS timeout 60 python3 "$work/echo_client.py" $SRV 7 67108864 2>>"$work/client.err")
	expect_eq "TCP echo 64 MB: sha256 matches" "${got:-none}" "${want:-x}"
	echo "# af_packet echo throughput: ${mbps:-?} MB/s each way (64 MB echoed)"
	afp_pid=$echo_pid
	stop_echo
	check "clean exit removes the DPDK runtime dir" test ! -e /var/run/dpdk/meshgate-$afp_pid
	grep '^port_echo: stats' "$work/afp.out" | sed 's/^/# /'
	rx=$(stat rx_packets afp); tx=$(stat tx_packets afp); echoed=$(stat echoed_bytes afp)
	check "port stats: rx_packets > 0" test "${rx:-0}" -gt 0
	check "port stats: tx_packets > 0" test "${tx:-0}" -gt 0
	check "port stats: link up" test "$(stat link_up afp)" = 1
	check "echoed bytes counted" test "${echoed:-0}" -ge $((1048576 + 67108864))
	check "no lwIP pbuf shortage" test "$(stat rx_no_pbuf afp)" = 0
else
	not_ok "port_echo opens net_af_packet0,iface=mgp-a"
fi
[ -s "$work/client.err" ] && sed 's/^/# client: /' "$work/client.err"

# ------------------------------------------------ bad device string
# run_bad NAME ARGS...: runs port_echo expecting failure; sets rc, pid
run_bad() {
	local name=$1; shift
	"$ECHO" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	pid=$!
	wait $pid
	rc=$?
	sed 's/^/# /' "$work/$name.err"
}
run_bad bad --device net_af_packet0,iface=mgp-nonexistent --addr $SRV/24 --seconds 5
check "bad device: non-zero exit" test $rc -ne 0
expect_eq "bad device: exactly one error line" "$(wc -l <"$work/bad.err")" 1
check "bad device: says what to check" grep -q "check the device string.*interface exists" "$work/bad.err"
check "bad device: names the device" grep -q "mgp-nonexistent" "$work/bad.err"
check "bad device: no DPDK runtime dir left" test ! -e /var/run/dpdk/meshgate-$pid
run_bad bad2 --device net_nosuchdriver0 --addr $SRV/24 --seconds 5
check "unknown driver: non-zero exit, one line" test $rc -ne 0 -a "$(wc -l <"$work/bad2.err")" = 1
run_bad bad3 --device net_ring0 --addr $SRV/24 --seconds 5 -- --no-such-eal-option
check "bad EAL option: non-zero exit, one line" test $rc -ne 0 -a "$(wc -l <"$work/bad3.err")" = 1
check "bad EAL option: named" grep -q -- "--no-such-eal-option" "$work/bad3.err"
check "bad EAL option: no DPDK runtime dir left" test ! -e /var/run/dpdk/meshgate-$pid

# ------------------------------------------------ net_tap
if start_echo net_tap0,iface=mgp-tap tap; then
	ok "port_echo opens net_tap0,iface=mgp-tap"
	ip netns add $TNS
	ip link set mgp-tap netns $TNS
	ip -n $TNS link set lo up
	ip -n $TNS addr add $CLI/24 dev mgp-tap
	ip -n $TNS link set mgp-tap up
	check "ping over net_tap" quiet ip netns exec $TNS ping -c 3 -i 0.2 -W 2 -q $SRV
	stop_echo
	check "tap port stats: rx_packets > 0" test "$(stat rx_packets tap)" -gt 0
	check "tap removed on close" bash -c "! ip -n $TNS link show mgp-tap >/dev/null 2>&1"
else
	not_ok "port_echo opens net_tap0,iface=mgp-tap"
fi

tap_exit
