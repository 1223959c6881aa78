#!/usr/bin/env bash
# Jumbo frames: ports with `mtu: 9000` carry 9000-byte IP packets both ways
# (meshgate sets its af_packet interfaces' MTU and advertises an 8960-byte
# MSS), large transfers arrive intact, and a short client that offers a
# smaller MSS is still served within it. (test_offload covers the same with
# the ends' segmentation offload on.)
set -u
. "$(dirname "$0")/../lib.sh"
export E2E_MTU=9000
. "$(dirname "$0")/lib.sh"
trap e2e_teardown EXIT
trap "exit 130" INT TERM
e2e_setup
e2e_start_upstream || exit 1
cfg=$(e2e_write_config </dev/null)
e2e_start_meshgate "$cfg" || exit 1
expect_eq "meshgate set its outside interface to MTU 9000" "$(cat /sys/class/net/mge-c1/mtu)" 9000
expect_eq "meshgate set its inside interface to MTU 9000" "$(cat /sys/class/net/mge-u1/mtu)" 9000

# Frame sizes as they would be on a wire: meshgate's veth ends without
# checksum (hence segmentation) offload, so the kernel cuts meshgate's
# offload frames into segments before the other end counts them.
no_offload() { ethtool -K mge-c1 tx off >/dev/null && ethtool -K mge-u1 tx off >/dev/null; }
check "meshgate's veth ends set without checksum and segmentation offload" no_offload

# --- download: upstream -> meshgate -> client, 32 MB, checked byte for byte
n=33554432
want=$(blob_sha256 $n)
dl() { cli_curl frontend -o "$E2E_WORK/jumbo.dl" "https://meshgate.test:8443/blob/$n"; }
avg=$(avg_rx $NS_CLI mge-c0 dl)
expect_eq "32 MB download through jumbo frames arrives intact (sha256)" \
	"$(sha256sum "$E2E_WORK/jumbo.dl" | cut -d' ' -f1)" "$want"
check "the client received jumbo frames (average $avg bytes per frame)" test "$avg" -gt 4000

# --- upload: client -> meshgate -> upstream, 32 MB
head -c $n /dev/urandom >"$E2E_WORK/jumbo.up"
want=$(sha256sum "$E2E_WORK/jumbo.up" | cut -d' ' -f1)
ul() { cli_curl frontend -H 'Expect:' --data-binary @"$E2E_WORK/jumbo.up" https://meshgate.test:8443/sha256 >"$E2E_WORK/jumbo.ul"; }
avg=$(avg_rx $NS_UP mge-u0 ul)
expect_eq "32 MB upload through jumbo frames arrives intact (sha256)" "$(tr -d '\n' <"$E2E_WORK/jumbo.ul")" "$want"
check "the upstream received jumbo frames (average $avg bytes per frame)" test "$avg" -gt 4000

# --- a client whose route says MTU 1500 offers MSS 1460: meshgate keeps to it
ip -n $NS_CLI route replace 198.18.0.0/24 dev mge-c0 mtu 1500
dl2() { cli_curl frontend -o "$E2E_WORK/jumbo.dl2" "https://meshgate.test:8443/blob/4194304"; }
avg=$(avg_rx $NS_CLI mge-c0 dl2)
expect_eq "4 MB download to an MSS-1460 client is complete" "$(stat -c %s "$E2E_WORK/jumbo.dl2")" 4194304
check "meshgate kept to the client's MSS (average $avg bytes per frame)" test "$avg" -le 1514
ip -n $NS_CLI route replace 198.18.0.0/24 dev mge-c0

# --- an MTU out of range is refused at load with FILE:LINE: field
bad=$E2E_WORK/jumbo-bad.yaml
sed 's/mtu: 9000}/mtu: 9216}/' "$cfg" >"$bad"
out=$("$MESHGATE" config validate "$bad" 2>&1); rc=$?
expect_eq "config validate refuses mtu 9216" "$rc" 2
check "the error names the file, line and field ($out)" grep -q "jumbo-bad.yaml:[0-9]*:.*spec.ports\[0\].mtu" <<<"$out"
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "the running meshgate keeps serving" "$code" 200

# --- ring frames too small for the MTU: refused at start with the reason
kill "$E2E_MG_PID"; wait "$E2E_MG_PID" 2>/dev/null; E2E_MG_PID=
small=$E2E_WORK/jumbo-small.yaml
sed 's/iface=mge-c1"/iface=mge-c1,framesz=2048"/' "$cfg" >"$small"
out=$(timeout 30 "$MESHGATE" run --config "$small" --console none 2>&1); rc=$?
check "framesz too small for MTU 9000 is refused at start (exit $rc)" test "$rc" -ne 0
check "the error names the port, framesz and MTU ($(grep -m1 framesz <<<"$out"))" \
	grep -q "spec.ports\[0\].device: port outside: framesz=2048 .* does not fit MTU 9000 frames" <<<"$out"
