#!/usr/bin/env bash
# Egress area end to end: meshgate's inside port (DPDK af_packet on a veth)
# with the DNS responder, the egress TLS splice and the packet filter,
# against real clients in a namespace: dig for declared, undeclared and
# malformed queries; curl https://allowed.example resolved by meshgate's DNS
# to an address of its egress range (240.240.0.0/16, routed to meshgate) and
# spliced (TLS not terminated: the server's own
# certificate reaches curl) to a TLS server in an "internet" namespace; an
# undeclared host refused; a TCP SYN scan of ports 1-1024 (one hand-made SYN
# per port, so the filter's counters can be compared with exactly what was
# sent), a spoofed source, a direct connection attempt to an outside address,
# ping allowed by an ICMP rule.
#
#   netns mgx-in  198.18.28.10 mgx-i0 <-veth-> mgx-i1 [meshgate inside 198.18.28.1]
#   netns mgx-net 198.18.30.10 mgx-o0 <-veth-> mgx-o1 [meshgate outside 198.18.30.1]
#
# Then a second run in ALLOW_ANY mode: unknown names relayed to a resolver in
# the "internet" namespace (and a reply for another question with the right
# id is not relayed).
#
set -u
. "$(dirname "$0")/../lib.sh"
exec 9>/run/lock/meshgate-egress.lock   # fixed netns names: one run per machine
flock 9
NS=mgx-in
NET=mgx-net
GW=198.18.28.1
OUT=198.18.30.1
SRV=198.18.30.10
CLI=198.18.28.10
WORK=$TESTS_TOP/build/egress-e2e
PKI=$WORK/pki
MG_PID=

teardown() {
	[ -n "$MG_PID" ] && kill "$MG_PID" 2>/dev/null && wait "$MG_PID" 2>/dev/null
	MG_PID=
	ip netns pids $NS 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns pids $NET 2>/dev/null | xargs -r kill 2>/dev/null
	ip link del mgx-i1 2>/dev/null
	ip link del mgx-o1 2>/dev/null
	ip netns del $NS 2>/dev/null
	ip netns del $NET 2>/dev/null
	return 0
}
trap teardown EXIT
trap "exit 130" INT TERM

if ! command -v dig >/dev/null; then
	not_ok "dig is installed (bind9-dnsutils, make test-deps)"
	tap_exit
fi
teardown
mkdir -p "$WORK"
bash "$TESTS_TOP/tests/pki/gen.sh" "$PKI" >/dev/null
ip netns add $NS
ip link add mgx-i1 type veth peer name mgx-i0 netns $NS
sysctl -qw net.ipv6.conf.mgx-i1.disable_ipv6=1 2>/dev/null
ip link set mgx-i1 up
ip netns exec $NS sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
ip -n $NS link set lo up
ip -n $NS addr add $CLI/24 dev mgx-i0
ip -n $NS link set mgx-i0 up
ip -n $NS route add 198.18.31.0/24 via $GW
ip -n $NS route add 240.240.0.0/16 via $GW
ip netns exec $NS ethtool -K mgx-i0 tx off tso off gso off >/dev/null 2>&1
ip netns add $NET
ip link add mgx-o1 type veth peer name mgx-o0 netns $NET
sysctl -qw net.ipv6.conf.mgx-o1.disable_ipv6=1 2>/dev/null
ip link set mgx-o1 up
ip -n $NET link set lo up
ip -n $NET addr add $SRV/24 dev mgx-o0
ip -n $NET link set mgx-o0 up
ip netns exec $NET ethtool -K mgx-o0 tx off tso off gso off >/dev/null 2>&1
# the "internet" TLS server, with its own certificate for allowed.example
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=allowed.example -addext subjectAltName=DNS:allowed.example \
	-keyout "$WORK/srv.key" -out "$WORK/srv.pem" >/dev/null 2>&1
ip netns exec $NET openssl s_server -accept 443 -cert "$WORK/srv.pem" -key "$WORK/srv.key" -www -quiet \
	>"$WORK/s_server.log" 2>&1 &
echo "plain http upstream" >"$WORK/index.txt"
ip netns exec $NET python3 -m http.server 80 --bind $SRV --directory "$WORK" >"$WORK/http.log" 2>&1 &

cat >"$WORK/egress.yaml" <<YAML
apiVersion: meshgate.dev/v1alpha1
kind: Appliance
metadata: {name: egress-e2e}
spec:
  trustDomain: cluster.local
  identity: {certificateChain: $PKI/gateway-chain.pem, privateKey: $PKI/gateway.key}
  trustBundles: [{trustDomain: cluster.local, roots: $PKI/ca.pem}]
  dpdk: {args: ["--no-huge", "-m", "256"]}
  ports:
    # framecnt: the SYN scan below sends 1,024 frames in one burst; a ring of
    # 2,048 holds them all even if meshgate is slow to wake (512 by default:
    # 713 of 1,024 counted once on a loaded machine)
    - {name: inside, device: "net_af_packet0,iface=mgx-i1,framecnt=2048", address: $GW/24}
    - {name: outside, device: "net_af_packet1,iface=mgx-o1", address: $OUT/24}
  services:
    - {name: hello, namespace: demo, labels: {app: hello}, demo: true}
  listeners:
    - {name: hello, port: inside, listen: 8443, protocol: http, service: hello}
  admin: {port: inside, listen: 9943, allowedPrincipals: ["cluster.local/ns/prod/sa/frontend"]}
  egress:
    ports: [inside]
    outsidePort: outside
    addressRange: 240.240.0.0/16
    dns: {unknownAnswer: NXDOMAIN, ttl: 20}
  networkPolicies:
    - name: inside-admin
      ports: [inside]
      policyTypes: [Ingress]
      ingress:
        - from: [{ipBlock: {cidr: $CLI/32}}]
          ports: [{protocol: TCP, port: 22}]
        - from: [{ipBlock: {cidr: 198.18.28.0/24}}]
          ports: [{protocol: ICMP}]
        - from: [{ipBlock: {cidr: $CLI/32}}]
          ports: [{protocol: TCP, port: 9943}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: allowed, namespace: egress}
spec:
  hosts: [allowed.example, "*.cdn.example"]
  resolution: STATIC
  endpoints: [{address: $SRV}]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-blocked-cdn, namespace: egress}
spec:
  action: DENY
  rules:
    - when: [{key: connection.sni, values: ["blocked.cdn.example"]}]
YAML

"$MESHGATE" run --config "$WORK/egress.yaml" --console none >"$WORK/meshgate.log" 2>&1 &
MG_PID=$!
for _ in $(seq 100); do
	grep -q 'meshgate: ready' "$WORK/meshgate.log" 2>/dev/null && break
	kill -0 $MG_PID 2>/dev/null || break
	sleep 0.1
done
if ! grep -q 'meshgate: ready' "$WORK/meshgate.log"; then
	not_ok "meshgate starts with egress + networkPolicies"
	sed 's/^/#   /' "$WORK/meshgate.log"
	tap_exit
fi
ok "meshgate starts with egress + networkPolicies"

in_ns() { ip netns exec $NS "$@"; }
DIG=(dig +time=2 +tries=1 +norecurse @$GW)

# --- DNS
a=$(in_ns "${DIG[@]}" +short allowed.example A)
case $a in 240.240.*.*) ok "dig allowed.example -> $a (from the egress range)";;
	*) not_ok "dig allowed.example: got '$a'";; esac
a2=$(in_ns "${DIG[@]}" +short allowed.example A)
expect_eq "the address of a host is stable" "$a2" "$a"
w=$(in_ns "${DIG[@]}" +short img.cdn.example A)
case $w in 240.240.*.*) [ "$w" != "$a" ] && ok "dig img.cdn.example (wildcard) -> $w" || not_ok "wildcard got $w";;
	*) not_ok "dig img.cdn.example: got '$w'";; esac
t=$(in_ns "${DIG[@]}" +tcp +short allowed.example A)
expect_eq "dig +tcp allowed.example -> the same address (DNS over TCP)" "$t" "$a"
st=$(in_ns "${DIG[@]}" +tcp undeclared.example A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
expect_eq "dig +tcp undeclared.example -> NXDOMAIN" "$st" "NXDOMAIN"
st=$(in_ns "${DIG[@]}" undeclared.example A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
expect_eq "undeclared name -> NXDOMAIN" "$st" "NXDOMAIN"
st=$(in_ns "${DIG[@]}" cdn.example A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
expect_eq "*.cdn.example does not cover cdn.example" "$st" "NXDOMAIN"
out=$(in_ns "${DIG[@]}" allowed.example AAAA)
st=$(echo "$out" | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
n=$(echo "$out" | sed -n 's/.*ANSWER: \([0-9]*\).*/\1/p')
expect_eq "AAAA of a declared name -> NOERROR, no answer" "$st/$n" "NOERROR/0"
# malformed: a question name that points at itself (compression loop)
r=$(in_ns python3 "$TESTS_TOP/tests/egress/pkt.py" dns $GW 424201000001000000000000c00c00010001)
expect_eq "compression loop -> FORMERR with the query's id" "${r:0:8}" "42428101"
# a 64-byte label
r=$(in_ns python3 "$TESTS_TOP/tests/egress/pkt.py" dns $GW "43430100000100000000000040$(printf '61%.0s' $(seq 64))0000010001")
expect_eq "64-byte label -> FORMERR" "${r:0:8}" "43438101"
r=$(in_ns python3 "$TESTS_TOP/tests/egress/pkt.py" dns $GW 0102)
expect_eq "3-byte garbage -> no answer" "$r" "timeout"

# --- the TLS splice
for _ in $(seq 30); do in_ns true && ip netns exec $NET ss -ltn 2>/dev/null | grep -q ':443 ' && break; sleep 0.1; done
body=$(in_ns curl -sS --max-time 10 --cacert "$WORK/srv.pem" --resolve allowed.example:443:$a https://allowed.example/ 2>&1)
case $body in *s_server*) ok "curl https://allowed.example through the gateway reaches the server";;
	*) not_ok "curl https://allowed.example: $(echo "$body" | head -3)";; esac
want=$(openssl x509 -in "$WORK/srv.pem" -noout -fingerprint -sha256)
got=$(echo | in_ns timeout 10 openssl s_client -connect $a:443 -servername allowed.example 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256 2>/dev/null)
expect_eq "the server's own certificate reaches the client (TLS not terminated)" "$got" "$want"
if in_ns curl -sS --max-time 10 -k --resolve evil.example:443:$a https://evil.example/ >/dev/null 2>&1; then
	not_ok "an undeclared host is refused"
else
	ok "an undeclared host is refused"
fi
# AuthorizationPolicy applies to egress: the same engine, by SNI here
c1=$(in_ns "${DIG[@]}" +short img.cdn.example A)
c2=$(in_ns "${DIG[@]}" +short blocked.cdn.example A)
if in_ns curl -sS --max-time 10 -k --resolve img.cdn.example:443:$c1 https://img.cdn.example/ 2>&1 | grep -q s_server; then
	ok "img.cdn.example (declared, no policy against it) is spliced"
else
	not_ok "img.cdn.example is spliced"
fi
if in_ns curl -sS --max-time 10 -k --resolve blocked.cdn.example:443:$c2 https://blocked.cdn.example/ >/dev/null 2>&1; then
	not_ok "blocked.cdn.example refused by the DENY AuthorizationPolicy"
else
	ok "blocked.cdn.example refused by the DENY AuthorizationPolicy"
fi
for _ in $(seq 20); do grep -q '"sni":"blocked.cdn.example".*"decision":"policy-denied","policy":"egress/no-blocked-cdn"' "$WORK/meshgate.log" && break; sleep 0.1; done
check "egress refusal logged with the deciding policy" \
	grep -q '"sni":"blocked.cdn.example".*"decision":"policy-denied","policy":"egress/no-blocked-cdn"' "$WORK/meshgate.log"
# a reload re-checks open splices: one whose host is no longer declared is
# reset, another carries on
(sleep 6) | in_ns openssl s_client -quiet -connect $a:443 -servername allowed.example >/dev/null 2>&1 &
keep=$!
(sleep 6) | in_ns openssl s_client -quiet -connect $c1:443 -servername img.cdn.example >/dev/null 2>&1 &
gone=$!
sleep 1.5
cp "$WORK/egress.yaml" "$WORK/egress.keep.yaml"
sed -i 's/^  hosts: \[allowed.example, "\*.cdn.example"\]$/  hosts: [allowed.example]/' "$WORK/egress.yaml"
kill -HUP $MG_PID
for _ in $(seq 30); do kill -0 $gone 2>/dev/null || break; sleep 0.1; done
if kill -0 $gone 2>/dev/null; then not_ok "reload resets the splice to a host no longer declared"; else ok "reload resets the splice to a host no longer declared"; fi
check "the splice still declared carries on through the reload" kill -0 $keep
check "revocation logged" grep -q '"sni":"img.cdn.example".*"decision":"revoked-by-reload"' "$WORK/meshgate.log"
cp "$WORK/egress.keep.yaml" "$WORK/egress.yaml"
kill -HUP $MG_PID
kill $keep $gone 2>/dev/null; wait $keep $gone 2>/dev/null
body=$(in_ns curl -sS --max-time 10 --resolve allowed.example:80:$a http://allowed.example/index.txt 2>&1)
expect_eq "plain HTTP to allowed.example, routed by its Host header" "$body" "plain http upstream"
if in_ns curl -sS --max-time 10 --resolve evil.example:80:$GW http://evil.example/index.txt >/dev/null 2>&1; then
	not_ok "plain HTTP to an undeclared Host is refused"
else
	ok "plain HTTP to an undeclared Host is refused"
fi
if in_ns curl -sS --max-time 10 -k https://$GW/ >/dev/null 2>&1; then
	not_ok "a ClientHello without a server name is refused"
else
	ok "a ClientHello without a server name is refused"
fi

# --- filter
check "listener 8443 reachable through the filter" \
	in_ns timeout 5 bash -c "exec 3<>/dev/tcp/$GW/8443"
ping_ok=$(in_ns ping -c 3 -i 0.2 -W 2 $GW 2>/dev/null | grep -c 'bytes from')
expect_eq "ping allowed by the ICMP rule" "$ping_ok" "3"
in_ns python3 "$TESTS_TOP/tests/egress/pkt.py" syn $CLI $GW 1-1024
in_ns python3 "$TESTS_TOP/tests/egress/pkt.py" syn 198.18.28.11 $GW 22
in_ns python3 "$TESTS_TOP/tests/egress/pkt.py" syn $CLI 198.18.31.99 443
sleep 1

# --- the egress, DNS and filter counters in /metrics (admin console, mTLS)
in_ns curl -sS --max-time 10 --cacert "$PKI/ca.pem" --cert "$PKI/frontend.pem" --key "$PKI/frontend.key" \
	--resolve meshgate.test:9943:$GW https://meshgate.test:9943/metrics >"$WORK/metrics.txt" 2>"$WORK/metrics.err"
check "/metrics passes promtool check metrics" bash -c "test -s '$WORK/metrics.txt' && promtool check metrics <'$WORK/metrics.txt' >/dev/null 2>&1"
check "/metrics counts the policy-denied egress connection" \
	grep -q '^meshgate_egress_connections_total{outcome="policy_denied"} 1$' "$WORK/metrics.txt"
check "/metrics counts spliced egress connections" \
	grep -Eq '^meshgate_egress_connections_total\{outcome="spliced"\} [1-9]' "$WORK/metrics.txt"
check "/metrics counts DNS NXDOMAIN answers on the inside port" \
	grep -Eq '^meshgate_dns_messages_total\{port="inside",result="nxdomain"\} [1-9]' "$WORK/metrics.txt"
check "/metrics has the filter verdicts per port, direction and reason" \
	grep -Eq '^meshgate_filter_packets_total\{port="inside",direction="ingress",reason="[a-z_]+"\} [1-9]' "$WORK/metrics.txt"

kill $MG_PID
wait $MG_PID 2>/dev/null
MG_PID=
grep -E '^(filter|filter-rule|dns|egress|egress-splice|egress-nat) ' "$WORK/meshgate.log" | sed 's/^/# /'
line=$(grep '^filter inside ingress ' "$WORK/meshgate.log")
dd=$(echo "$line" | sed -n 's/.* default-deny=\([0-9]*\).*/\1/p')
# 1024 SYNs minus 22 (rule), 53 (DNS over TCP port), 80 and 443 (egress
# ports), plus the spoofed source's SYN to 22 and the SYN to an outside address
expect_eq "default-deny count = SYNs sent to closed ports" "$dd" "1022"
r0=$(sed -n 's/^filter-rule inside-admin ingress\[0\] packets=\([0-9]*\)$/\1/p' "$WORK/meshgate.log")
expect_eq "rule ingress[0] (TCP 22 from $CLI/32) counted the one SYN" "$r0" "1"
r1=$(sed -n 's/^filter-rule inside-admin ingress\[1\] packets=\([0-9]*\)$/\1/p' "$WORK/meshgate.log")
# a rule counts the packets it admitted; the 2nd and 3rd echo request (same
# id) ride the flow the first one opened and count as established
expect_eq "rule ingress[1] (ICMP) counted the first echo request" "$r1" "1"
est=$(echo "$line" | sed -n 's/.* established=\([0-9]*\).*/\1/p')
[ "${est:-0}" -ge 2 ] && ok "established flows counted ($est)" || not_ok "established flows counted (got '$est')"
for want in spliced=6 refused=4 policy_denied=1; do
	case " $(grep '^egress-splice ' "$WORK/meshgate.log") " in *" $want "*) ok "splice counter $want";;
		*) not_ok "splice counter $want";; esac
done
check "the refusal is logged with its reason" grep -q '"sni":"evil.example".*"decision":"host not declared by any ServiceEntry"' "$WORK/meshgate.log"
check "the allowed connection is logged with its bytes" grep -q '"sni":"allowed.example".*"decision":"allowed","policy":"","bytes_out":[1-9]' "$WORK/meshgate.log"
check "... with the egress-range address the client connected to" grep -q "\"sni\":\"allowed.example\",\"destination\":\"$a:443\"" "$WORK/meshgate.log"
nat=$(grep '^egress-nat ' "$WORK/meshgate.log")
case $nat in *" clash=0 "*) ok "egress-range connections rewritten both ways ($nat)";; *) not_ok "egress-nat: $nat";; esac
dl=$(sed -n 's/^dns inside \(.*\)$/\1/p' "$WORK/meshgate.log")
for want in answered=6 nodata=1 nxdomain=3 formerr=2 dropped=1 tcp_refused=0; do
	case " $dl " in *" $want "*) ok "dns counter $want";; *) not_ok "dns counter $want (got: $dl)";; esac
done

# --- resolution: DNS needs the upstream resolver: refused at load otherwise
{ cat "$WORK/egress.yaml"; printf -- '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: dynamic, namespace: egress}\nspec:\n  hosts: [dyn.example]\n  resolution: DNS\n  ports: [{number: 443, name: tls, protocol: TLS}]\n'; } >"$WORK/bad-dyn.yaml"
out=$("$MESHGATE" config validate --config "$WORK/bad-dyn.yaml" 2>&1); rc=$?
expect_eq "resolution DNS without dns.upstream: config validate exits 2" "$rc" 2
check "... naming FILE:LINE: spec.resolution" grep -Eq "bad-dyn.yaml:[0-9]+: spec.resolution: DNS resolution needs spec.egress.dns.upstream" <<<"$out"

# --- ALLOW_ANY: unknown names go to the upstream resolver
ip netns exec $NET python3 "$TESTS_TOP/tests/egress/dns_upstream.py" $SRV 198.18.30.77 $SRV >"$WORK/resolver.log" 2>&1 &
sed -e 's/^    dns: {unknownAnswer: NXDOMAIN, ttl: 20}$/    mode: ALLOW_ANY\n    dns: {upstream: '$SRV', ttl: 20}/' \
	-e '/^  networkPolicies:/,/^---$/{/^---$/!d}' "$WORK/egress.yaml" >"$WORK/allow-any.yaml"
# a ServiceEntry that meshgate resolves itself (resolution: DNS, no endpoints)
cat >>"$WORK/allow-any.yaml" <<YAML
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dynamic, namespace: egress}
spec:
  hosts: [dyn.example]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
YAML
rm -f "$WORK/console.fifo"
mkfifo "$WORK/console.fifo"
"$MESHGATE" run --config "$WORK/allow-any.yaml" --console stdio <"$WORK/console.fifo" >"$WORK/meshgate-any.log" 2>&1 &
MG_PID=$!
exec 7>"$WORK/console.fifo"
for _ in $(seq 100); do
	grep -q 'meshgate: ready' "$WORK/meshgate-any.log" 2>/dev/null && grep -q ready "$WORK/resolver.log" && break
	sleep 0.1
done
d=$(in_ns "${DIG[@]}" +short other.example A)
expect_eq "ALLOW_ANY: unknown name answered by the upstream resolver" "$d" "198.18.30.77"
d=$(in_ns "${DIG[@]}" +short allowed.example A)
case $d in 240.240.*.*) ok "ALLOW_ANY: declared name still answered by meshgate ($d)";;
	*) not_ok "ALLOW_ANY: declared name still answered by meshgate (got '$d')";; esac
d=$(in_ns "${DIG[@]}" +short twice.example A)
expect_eq "ALLOW_ANY: only the reply to the question asked is relayed" "$d" "198.18.30.77"
d=$(in_ns "${DIG[@]}" +tcp +short other.example A)
expect_eq "ALLOW_ANY over TCP: unknown name forwarded, answer on the same connection" "$d" "198.18.30.77"
out=$(in_ns python3 - "$GW" <<'PY'
# two queries pipelined on one TCP connection: a forwarded one, then a local
# one; the answers come back in the order asked
import socket, struct, sys
def q(i, name):
    body = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(body)) + body
s = socket.create_connection((sys.argv[1], 53), timeout=5)
s.sendall(q(0x1111, "far.example") + q(0x2222, "allowed.example"))
buf = b""
ids = []
while len(ids) < 2:
    d = s.recv(4096)
    if not d:
        break
    buf += d
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
        n = struct.unpack("!H", buf[:2])[0]
        ids.append("%04x" % struct.unpack("!H", buf[2:4])[0])
        buf = buf[2 + n:]
print(" ".join(ids))
PY
)
expect_eq "ALLOW_ANY over TCP: pipelined answers stay in order behind a forwarded one" "$out" "1111 2222"
# resolution: DNS: meshgate resolves dyn.example itself and splices there
d=$(in_ns "${DIG[@]}" +short dyn.example A)
case $d in 240.240.*.*) ok "resolution DNS entry: clients get a gateway address ($d)";;
	*) not_ok "resolution DNS entry: gateway address (got '$d')";; esac
for i in 1 2; do
	body=$(in_ns curl -sS --max-time 10 -k --resolve dyn.example:443:$d https://dyn.example/ 2>&1)
	case $body in *s_server*) ok "dyn.example ($i): spliced to the address meshgate resolved";;
		*) not_ok "dyn.example ($i): $(echo "$body" | head -3)";; esac
done
n=$(grep -c '^query dyn' "$WORK/resolver.log")
expect_eq "meshgate asked the resolver for dyn.example once (the answer is cached)" "$n" "1"
check "resolved splice logged with the resolver's address as upstream" \
	grep -q "\"sni\":\"dyn.example\".*\"upstream\":\"$SRV:443\",\"decision\":\"allowed\"" "$WORK/meshgate-any.log"
# ALLOW_ANY carries an undeclared destination out, to the address dialled
ip -n $NS route add 198.18.30.0/24 via $GW 2>/dev/null
body=$(in_ns curl -sS --max-time 10 -k --resolve other.example:443:$SRV https://other.example/ 2>&1)
case $body in *s_server*) ok "ALLOW_ANY: undeclared https://other.example spliced to the address dialled";;
	*) not_ok "ALLOW_ANY splice: $(echo "$body" | head -3)";; esac
for _ in $(seq 20); do grep -q '"sni":"other.example".*"decision":"allowed-any"' "$WORK/meshgate-any.log" && break; sleep 0.1; done
check "ALLOW_ANY connection logged as allowed-any" grep -q "\"sni\":\"other.example\",\"destination\":\"$SRV:443\".*\"decision\":\"allowed-any\"" "$WORK/meshgate-any.log"
if in_ns curl -sS --max-time 5 -k https://$OUT/ >/dev/null 2>&1; then
	not_ok "ALLOW_ANY never splices to meshgate's own address"
else
	ok "ALLOW_ANY never splices to meshgate's own address"
fi
echo "show egress" >&7
sleep 0.5
echo "shutdown" >&7
for _ in $(seq 50); do kill -0 $MG_PID 2>/dev/null || break; sleep 0.1; done
exec 7>&-
kill $MG_PID 2>/dev/null
wait $MG_PID 2>/dev/null
MG_PID=
n=$(grep -c '^dns-forward sent=4 ' "$WORK/meshgate-any.log")
expect_eq "console 'show egress' prints the counters (and shutdown again)" "$n" "2"
fl=$(grep '^dns-forward ' "$WORK/meshgate-any.log" | tail -1)
echo "# $fl"
for want in sent=4 answered=4 mismatch=1; do
	case " $fl " in *" $want "*) ok "forward counter $want";; *) not_ok "forward counter $want (got: $fl)";; esac
done
tap_exit
