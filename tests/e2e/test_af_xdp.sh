#!/usr/bin/env bash
# meshgate's ports on DPDK's AF_XDP driver (net_af_xdp) instead of
# af_packet: the same veth topology and checks of the data path (policy,
# large transfers both ways, keep-alive, concurrency), segmentation offload
# through a packet socket beside the XDP one, event-driven idle waits on the
# XDP sockets, and an MTU the driver cannot take refused at start with the
# port, the value and the device's range.
set -u
. "$(dirname "$0")/../lib.sh"
export E2E_DRIVER=net_af_xdp
. "$(dirname "$0")/lib.sh"
trap e2e_teardown EXIT
trap "exit 130" INT TERM
# DPDK's AF_XDP driver cannot tell a checksum the kernel left undone: the
# client and upstream send full checksums in wire-sized segments
TOPO_PEER_OFFLOAD=off
e2e_setup
e2e_start_upstream || exit 1
cfg=$(policy_frontend_only | e2e_write_config)
e2e_start_meshgate_console "$cfg" || exit 1
check "both ports are net_af_xdp" grep -q 'device: "net_af_xdp1,iface=mge-u1"' "$cfg"

# idle: the loop sleeps in ppoll() on the two ports' XDP sockets and the
# serial console (stdin here)
check "idle waits are event-driven on both ports' XDP sockets and the console" \
	grep -q 'event-driven polling: idle waits on 3 descriptors' "$E2E_WORK/meshgate.log"
pct=$(mg_cpu_pct 3)
check "idle CPU under 5% of a core (${pct}%)" test "$pct" -lt 5

body=$(cli_curl frontend https://meshgate.test:8443/)
case $body in
*"hello from upstream"*"URI=spiffe://cluster.local/ns/prod/sa/frontend"*) ok "allowed identity -> 200 with the upstream body and XFCC" ;;
*) not_ok "allowed identity (got: $body)" ;;
esac
code=$(cli_curl other -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "other identity -> 403" "$code" 403

n=33554432
want=$(blob_sha256 $n)
cli_curl frontend -o "$E2E_WORK/xdp.dl" "https://meshgate.test:8443/blob/$n"
expect_eq "32 MB download arrives intact (sha256)" "$(sha256sum "$E2E_WORK/xdp.dl" | cut -d' ' -f1)" "$want"
frames=$(e2e_counter 'port_tx_gso_frames{port=outside}')
check "it left as segmentation-offload frames through the packet socket beside the XDP one ($frames)" \
	test "${frames:-0}" -gt 100
expect_eq "no offload frame refused" "$(e2e_counter 'port_tx_gso_refused{port=outside}')" 0
head -c $n /dev/urandom >"$E2E_WORK/xdp.up"
got=$(cli_curl frontend -H 'Expect:' --data-binary @"$E2E_WORK/xdp.up" https://meshgate.test:8443/sha256)
expect_eq "32 MB upload arrives intact (sha256)" "$got" "$(sha256sum "$E2E_WORK/xdp.up" | cut -d' ' -f1)"

urls=(); for _ in $(seq 50); do urls+=(https://meshgate.test:8443/); done
# receive polls are not system calls: the driver's preferred busy polling
# (a recvfrom per poll) is off unless the device string asks for it
strace -f -qq -c -e trace=recvfrom -o "$E2E_WORK/xdp.strace" -p "$E2E_MG_PID" &
st=$!
sleep 1
n=$(cli_curl frontend -s -o /dev/null -w '%{http_code}\n' "${urls[@]}" | grep -c 200)
kill -INT $st; wait $st 2>/dev/null
expect_eq "50 keep-alive requests on one connection" "$n" 50
calls=$(awk '$NF == "recvfrom" {print $4}' "$E2E_WORK/xdp.strace"); calls=${calls:-0}
check "receive polls made $calls recvfrom calls for 50 requests (no busy-poll syscalls)" test "$calls" -lt 50
expect_eq "20 concurrent connections all correct" "$(concurrent_gets 20)" 20
kill -0 $E2E_MG_PID 2>/dev/null && ok "meshgate still running" || not_ok "meshgate died"

# --- an MTU the driver cannot take: refused at start, naming port and range
kill "$E2E_MG_PID"; wait "$E2E_MG_PID" 2>/dev/null; E2E_MG_PID=
big=$E2E_WORK/xdp-mtu.yaml
sed 's|iface=mge-c1", address: \([0-9./]*\)}|iface=mge-c1", address: \1, mtu: 9000}|' "$cfg" >"$big"
check "test config asks MTU 9000 on the outside port" grep -q 'mge-c1", address: .*, mtu: 9000}' "$big"
out=$(timeout 60 "$MESHGATE" run --config "$big" --console none 2>&1); rc=$?
check "MTU 9000 on net_af_xdp is refused at start (exit $rc)" test "$rc" -ne 0
check "the error names the port, the MTU and the device's range ($(grep -m1 'MTU 9000' <<<"$out"))" \
	grep -q "port outside: cannot set MTU 9000 on net_af_xdp0 .*the device takes [0-9]*-[0-9]*" <<<"$out"
tap_exit
