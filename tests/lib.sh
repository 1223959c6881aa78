# Shared helpers for shell tests (source it). TAP-style output that
# tests/run-suite.sh counts: "ok - NAME" / "not ok - NAME".
# Network tests use namespaces and veths they create and delete themselves,
# with addresses in 198.18.0.0/15 only.
TESTS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESHGATE=${MESHGATE:-$TESTS_TOP/build/meshgate}
_tap_failed=0
ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; _tap_failed=1; }
# check NAME CMD...: runs CMD, ok if it exits 0
check()  { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
# expect_eq NAME GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi; }
tap_exit() { exit $_tap_failed; }

# The AuthorizationPolicy most tests serve: only prod/sa/frontend may call the
# service labelled app=backend-api in namespace production (a YAML document).
policy_frontend_only() {
	cat <<'YAML'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: frontend-only, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: ALLOW
  rules:
    - from: [{source: {principals: ["cluster.local/ns/prod/sa/frontend"]}}]
YAML
}

# The two-namespace topology of the af_packet tests, named by a prefix P:
#
#   netns P-cli  P-c0 <-veth-> P-c1   root namespace (meshgate's af_packet ports)
#   netns P-up   P-u0 <-veth-> P-u1
#
# topo_setup P CLI_ADDR UP_ADDR (each ADDR/24 on the namespace end; more
# addresses can be added after). The root-namespace ends come up without
# IPv6; the namespace ends keep a veth's offloads (64 KB frames, checksums
# left to the kernel), which meshgate's af_packet ports take whole
# (receive offload) -- unless TOPO_PEER_OFFLOAD=off: then they compute
# checksums and segment themselves, which DPDK's own af_packet and AF_XDP
# receive paths need. topo_teardown P kills what runs in the namespaces
# and deletes them. Addresses must be in 198.18.0.0/15.
topo_teardown() {
	local p=$1 ns
	for ns in $p-up $p-cli; do ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null; done
	ip link del $p-c1 2>/dev/null
	ip link del $p-u1 2>/dev/null
	ip netns del $p-cli 2>/dev/null
	ip netns del $p-up 2>/dev/null
	return 0
}

topo_setup() {
	local p=$1 cli=$2 up=$3 l
	ip netns add $p-cli && ip netns add $p-up || return 1
	ip link add $p-c1 type veth peer name $p-c0 netns $p-cli || return 1
	ip link add $p-u1 type veth peer name $p-u0 netns $p-up || return 1
	for l in $p-c1 $p-u1; do
		sysctl -qw net.ipv6.conf.$l.disable_ipv6=1 2>/dev/null
		ip link set $l up
	done
	ip -n $p-cli link set lo up
	ip -n $p-cli addr add $cli/24 dev $p-c0
	ip -n $p-cli link set $p-c0 up
	ip -n $p-up link set lo up
	ip -n $p-up addr add $up/24 dev $p-u0
	ip -n $p-up link set $p-u0 up
	if [ "${TOPO_PEER_OFFLOAD:-on}" = off ]; then
		ip netns exec $p-cli ethtool -K $p-c0 tx off tso off gso off >/dev/null 2>&1
		ip netns exec $p-up ethtool -K $p-u0 tx off tso off gso off >/dev/null 2>&1
	fi
	return 0
}
