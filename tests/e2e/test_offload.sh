#!/usr/bin/env bash
# Offloads on af_packet ports. Sending: meshgate gathers a flow's
# consecutive segments into frames of up to 64 KB and hands them to the
# kernel with a segmentation request (net/tcp_coalesce.h, drivers/port.c).
#  - with the veth's offload on (the default), the client's and upstream's
#    stacks take those frames whole; 32 MB each way arrive intact;
#  - with meshgate's veth end lacking checksum offload, the kernel cuts
#    every frame into MSS segments and computes their checksums, which the
#    receiving stack verifies: the data arrives intact in <= 1514-byte frames;
#  - a client that offers a small MSS (536) gets segments of that size;
#  - the console counts the frames, the segments in them, and refusals;
#  - receive offload: with the client's and upstream's own offloads on, their
#    64 KB frames arrive whole in meshgate's receive ring, and frames whose
#    checksums the kernel never computed are taken; 32 MB each way intact;
#  - with offload the port sends through a ring of its own too: one packet
#    socket receives on each interface and one sends, the driver's socket is
#    closed; the link state is the interface's (down while it is down, and
#    traffic resumes once it is up);
#  - `offload: false` on a port turns both off (at start: a reload that
#    changes it is refused like any change to the ports), and the driver's
#    socket carries the port.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.sh"
trap e2e_teardown EXIT
trap "exit 130" INT TERM
e2e_setup
e2e_start_upstream || exit 1
cfg=$(e2e_write_config </dev/null)
e2e_start_meshgate_console "$cfg" || exit 1

ctr() { e2e_counter "port_$1{port=$2}"; }
# IF: "RECEIVING SENDING", the packet sockets meshgate holds on interface IF
# (bound to a protocol: receiving; to none: sending only)
socks() {
	local idx ino=" " f l
	idx=$(cat "/sys/class/net/$1/ifindex")
	for f in /proc/"$E2E_MG_PID"/fd/*; do
		l=$(readlink "$f") && case $l in socket:*) ino+="${l//[^0-9]/} ";; esac
	done
	awk -v i="$idx" -v ino="$ino" 'NR > 1 && $5 == i && index(ino, " " $9 " ") {
		if ($4 == "0000") s++; else r++ } END { print r + 0, s + 0 }' "/proc/$E2E_MG_PID/net/packet"
}
expect_eq "outside port: one packet socket receives, one sends (the driver's is closed)" "$(socks mge-c1)" "1 1"
expect_eq "inside port: one packet socket receives, one sends" "$(socks mge-u1)" "1 1"
n=33554432
want=$(blob_sha256 $n)
dl() { cli_curl frontend -o "$E2E_WORK/off.dl" "https://meshgate.test:8443/blob/$1"; }

# --- download with the veth's offload on: frames taken whole
f0=$(ctr tx_gso_frames outside) s0=$(ctr tx_gso_segments outside) p0=$(ctr tx_packets outside)
avg=$(avg_rx $NS_CLI mge-c0 dl $n)
f1=$(ctr tx_gso_frames outside) s1=$(ctr tx_gso_segments outside) p1=$(ctr tx_packets outside)
expect_eq "32 MB download arrives intact (sha256)" "$(sha256sum "$E2E_WORK/off.dl" | cut -d' ' -f1)" "$want"
frames=$((f1 - f0)) segs=$((s1 - s0))
check "meshgate sent the download as offload frames ($frames frames, $segs segments)" \
	test "$frames" -gt 100 -a "$segs" -gt $((n / 1460 / 2))
check "several segments to a frame ($((segs / (frames > 0 ? frames : 1))) on average)" test "$segs" -ge $((4 * frames))
check "the client's stack took them whole (average $avg bytes per packet)" test "$avg" -gt 6000
check "port tx_packets counts the segments ($((p1 - p0)))" test $((p1 - p0)) -ge "$segs"
expect_eq "no frame refused" "$(ctr tx_gso_refused outside)" 0

# --- upload: the inside port gathers the upstream's segments the same way
head -c $n /dev/urandom >"$E2E_WORK/off.up"
up_want=$(sha256sum "$E2E_WORK/off.up" | cut -d' ' -f1)
ul() { cli_curl frontend -H 'Expect:' --data-binary @"$E2E_WORK/off.up" https://meshgate.test:8443/sha256 >"$E2E_WORK/off.ul"; }
f0=$(ctr tx_gso_frames inside)
ul
expect_eq "32 MB upload arrives intact (sha256)" "$(tr -d '\n' <"$E2E_WORK/off.ul")" "$up_want"
check "the inside port sent offload frames ($(($(ctr tx_gso_frames inside) - f0)))" \
	test $(($(ctr tx_gso_frames inside) - f0)) -gt 100

# --- meshgate's end without checksum offload: the kernel segments and
# checksums in software, the client verifies every segment
ethtool -K mge-c1 tx off >/dev/null
check "meshgate's outside veth end has no checksum offload now" \
	sh -c "ethtool -k mge-c1 | grep -q '^tx-checksumming: off'"
f0=$(ctr tx_gso_frames outside)
avg=$(avg_rx $NS_CLI mge-c0 dl $n)
expect_eq "32 MB download cut and checksummed by the kernel arrives intact" \
	"$(sha256sum "$E2E_WORK/off.dl" | cut -d' ' -f1)" "$want"
check "it arrived in wire-sized frames (average $avg bytes)" test "$avg" -le 1514 -a "$avg" -gt 1000
check "still sent as offload frames ($(($(ctr tx_gso_frames outside) - f0)))" \
	test $(($(ctr tx_gso_frames outside) - f0)) -gt 100

# --- a client offering MSS 536: segments of 536 bytes
ip -n $NS_CLI route replace 198.18.0.0/24 dev mge-c0 advmss 536
m=4194304
avg=$(avg_rx $NS_CLI mge-c0 dl $m)
expect_eq "4 MB download to an MSS-536 client arrives intact" \
	"$(sha256sum "$E2E_WORK/off.dl" | cut -d' ' -f1)" "$(blob_sha256 $m)"
check "segments kept to the client's MSS (average $avg bytes per frame)" test "$avg" -le $((536 + 54)) -a "$avg" -gt 400
ip -n $NS_CLI route replace 198.18.0.0/24 dev mge-c0
ethtool -K mge-c1 tx on >/dev/null

# --- receive offload: the client and upstream with their own offloads on
# (a veth's defaults). Their frames carry checksums that were never computed
# and their 64 KB segmentation frames arrive whole: meshgate's own receive
# ring takes both, and lwIP does not check what the kernel vouches for.
peer_offload() {
	ip netns exec $NS_CLI ethtool -K mge-c0 tx $1 tso $1 gso $1 >/dev/null &&
		ip netns exec $NS_UP ethtool -K mge-u0 tx $1 tso $1 gso $1 >/dev/null
}
peer_offload on
check "the client's and upstream's veth ends offload checksums now" \
	sh -c "ip netns exec $NS_CLI ethtool -k mge-c0 | grep -q '^tx-checksumming: on'"
r0=$(ctr rx_offload_frames inside) q0=$(ctr rx_packets inside)
dl $n
expect_eq "peers' offloads on: 32 MB download arrives intact" "$(sha256sum "$E2E_WORK/off.dl" | cut -d' ' -f1)" "$want"
r=$(($(ctr rx_offload_frames inside) - r0)) q=$(($(ctr rx_packets inside) - q0))
check "the upstream's frames came in whole ($r of $q frames larger than 1514 bytes)" test "$r" -gt 100
r0=$(ctr rx_offload_frames outside)
ul
expect_eq "peers' offloads on: 32 MB upload arrives intact" "$(tr -d '\n' <"$E2E_WORK/off.ul")" "$up_want"
r=$(($(ctr rx_offload_frames outside) - r0))
check "the client's frames came in whole ($r frames larger than 1514 bytes)" test "$r" -gt 100
expect_eq "peers' offloads on: 20 concurrent handshakes and requests" "$(concurrent_gets 20)" 20
expect_eq "no frame cut short (rx_too_long, both ports)" "$(($(ctr rx_too_long inside) + $(ctr rx_too_long outside)))" 0
expect_eq "no frame over 65535 bytes refused (rx_oversize, both ports)" \
	"$(($(ctr rx_oversize inside) + $(ctr rx_oversize outside)))" 0
peer_offload off

expect_eq "no frame refused" "$(ctr tx_gso_refused outside)" 0
kill -0 $E2E_MG_PID 2>/dev/null && ok "meshgate still running" || not_ok "meshgate died"

# --- the link state is the interface's; sending resumes after it was down
check "status: outside link up" grep -Eq '^  outside +link up' <<<"$(e2e_console status)"
ip link set mge-c1 down
check "status: outside link down while mge-c1 is down" grep -Eq '^  outside +link down' <<<"$(e2e_console status)"
ip link set mge-c1 up
for _ in $(seq 30); do grep -Eq '^  outside +link up' <<<"$(e2e_console status)" && break; sleep 0.1; done
check "status: outside link up again" grep -Eq '^  outside +link up' <<<"$(e2e_console status)"
dl 4194304
expect_eq "after the link came back: 4 MB download intact" "$(sha256sum "$E2E_WORK/off.dl" | cut -d' ' -f1)" \
	"$(blob_sha256 4194304)"

# --- `offload: false`: a reload cannot change it (ports are fixed at start)
cp "$cfg" "$E2E_WORK/off-orig.yaml"
sed -i 's|\(address: [0-9./]*\)}|\1, offload: false}|' "$cfg"
check "test config turns offload off on both ports" test "$(grep -c 'offload: false' "$cfg")" -eq 2
out=$(e2e_console reload)
check "a reload that changes offload is refused ($(grep -m1 -o 'ports cannot change[^;]*' <<<"$out"))" \
	grep -q "spec.ports: ports cannot change at run time" <<<"$out"
f0=$(ctr tx_gso_frames outside)
dl 4194304
check "the running configuration keeps offloading ($(($(ctr tx_gso_frames outside) - f0)) frames)" \
	test $(($(ctr tx_gso_frames outside) - f0)) -gt 10

# --- started with it: every segment its own frame, the transfer intact
kill "$E2E_MG_PID"; wait "$E2E_MG_PID" 2>/dev/null; E2E_MG_PID=
exec 7>&-
e2e_start_meshgate_console "$cfg" || exit 1
avg=$(avg_rx $NS_CLI mge-c0 dl $n)
expect_eq "offload: false: 32 MB download arrives intact" "$(sha256sum "$E2E_WORK/off.dl" | cut -d' ' -f1)" "$want"
expect_eq "offload: false: no offload frames" "$(ctr tx_gso_frames outside)" 0
check "offload: false: the client received segment-sized frames (average $avg bytes)" test "$avg" -le 1514
expect_eq "offload: false: the driver's socket alone receives and sends" "$(socks mge-c1)" "1 0"
cp "$E2E_WORK/off-orig.yaml" "$cfg"
tap_exit
