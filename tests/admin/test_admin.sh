#!/usr/bin/env bash
# The HTTP admin console end to end: meshgate in a netns topology serves its
# admin listener over lwIP + BearSSL; traffic from curl; /metrics checked by
# promtool and against the traffic sent; the access log to a UDP syslog
# collector; headless chromium logs in and sees the connection and the
# service-graph edge (screenshot in build/test-artifacts/); refusals.
#
#   netns mga-cli 198.18.20.1 (+.3) mga-c0 <-veth-> mga-c1 [meshgate outside 198.18.20.2]
#   netns mga-up  198.18.21.10      mga-u0 <-veth-> mga-u1 [meshgate inside  198.18.21.2]
set -u
. "$(dirname "$0")/../lib.sh"
exec 9>/run/lock/meshgate-admin.lock   # fixed netns names: one run per machine
flock 9
NS_CLI=mga-cli
NS_UP=mga-up
MG_OUT=198.18.20.2
MG_IN=198.18.21.2
UP_IP=198.18.21.10
ADMIN_PORT=9943
PASSWORD='correct horse battery'
WORK=$TESTS_TOP/build/admin-test
PKI=$WORK/pki
ART=$TESTS_TOP/build/test-artifacts
MG_PID=
PIDS=()

teardown() {
	[ -n "$MG_PID" ] && kill "$MG_PID" 2>/dev/null && wait "$MG_PID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	topo_teardown mga
	MG_PID=
	return 0
}
trap teardown EXIT
trap "exit 130" INT TERM

for tool in promtool chromium chromedriver curl openssl python3; do
	command -v $tool >/dev/null || { not_ok "$tool installed (make test-deps)"; tap_exit; }
done

teardown
rm -rf "$WORK"; mkdir -p "$WORK" "$ART"
bash "$TESTS_TOP/tests/pki/gen.sh" "$PKI" >/dev/null
topo_setup mga 198.18.20.1 $UP_IP
ip -n $NS_CLI addr add 198.18.20.3/24 dev mga-c0

ip netns exec $NS_UP python3 "$TESTS_TOP/tests/e2e/upstream.py" $UP_IP >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
ip netns exec $NS_UP python3 "$TESTS_TOP/tests/admin/syslog_collector.py" $UP_IP 5514 "$WORK/syslog.log" >"$WORK/collector.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q ready "$WORK/upstream.log" 2>/dev/null && grep -q ready "$WORK/collector.log" && break; sleep 0.1; done

hash=$(printf '%s\n' "$PASSWORD" | "$MESHGATE" console hash-password --iterations 1000)
appliance() { # $1 = extra policy YAML
	cat <<YAML
apiVersion: meshgate.dev/v1alpha1
kind: Appliance
metadata: {name: admin-e2e}
spec:
  trustDomain: cluster.local
  identity: {certificateChain: $PKI/gateway-chain.pem, privateKey: $PKI/gateway.key}
  trustBundles:
    - {trustDomain: cluster.local, roots: $PKI/ca.pem}
  dpdk: {args: ["--no-huge", "-m", "256"]}
  ports:
    - {name: outside, device: "net_af_packet0,iface=mga-c1", address: $MG_OUT/24}
    - {name: inside, device: "net_af_packet1,iface=mga-u1", address: $MG_IN/24}
  services:
    - {name: backend-api, namespace: production, labels: {app: backend-api}, endpoints: ["$UP_IP:8080"]}
    - {name: echo, namespace: production, labels: {app: echo}, endpoints: ["$UP_IP:9001"]}
  listeners:
    - {name: backend, port: outside, listen: 8443, protocol: http, service: backend-api}
    - {name: echo, port: outside, listen: 9444, protocol: tcp, service: echo}
  admin:
    port: outside
    listen: $ADMIN_PORT
    allowedPrincipals: ["cluster.local/ns/dev/sa/tool"]
    passwordHash: "$hash"
    sessionTtl: 30m
  accessLog:
    console: true
    syslog: $UP_IP:5514
$(policy_frontend_only)
$1
YAML
}
appliance "" >"$WORK/admin.yaml"
"$MESHGATE" run --config "$WORK/admin.yaml" --console none >"$WORK/meshgate.log" 2>&1 &
MG_PID=$!
for _ in $(seq 100); do
	grep -q 'meshgate: ready' "$WORK/meshgate.log" 2>/dev/null && break
	kill -0 $MG_PID 2>/dev/null || break
	sleep 0.1
done
grep -q 'admin console: https://198.18.20.2:9943/' "$WORK/meshgate.log" \
	&& ok "meshgate starts with the admin listener" \
	|| { not_ok "meshgate start"; sed 's/^/#   /' "$WORK/meshgate.log"; tap_exit; }

# curl from the client namespace; $1 = identity (none = no certificate)
ccurl() {
	local id=$1; shift
	local cert=()
	[ "$id" != none ] && cert=(--cert "$PKI/$id.pem" --key "$PKI/$id.key")
	ip netns exec $NS_CLI curl -sS --max-time 20 --cacert "$PKI/ca.pem" "${cert[@]}" \
		--resolve meshgate.test:8443:$MG_OUT --resolve meshgate.test:$ADMIN_PORT:$MG_OUT "$@"
}
ADMIN=https://meshgate.test:$ADMIN_PORT

# ---- traffic: 5 allowed requests, 2 denied, one long-lived tcp connection
N_OK=5 N_DENY=2
for _ in $(seq $N_OK); do ccurl frontend -o /dev/null -w '%{http_code}\n' https://meshgate.test:8443/; done >"$WORK/codes"
for _ in $(seq $N_DENY); do ccurl other -o /dev/null -w '%{http_code}\n' https://meshgate.test:8443/; done >>"$WORK/codes"
expect_eq "traffic: $N_OK x 200 and $N_DENY x 403" "$(sort "$WORK/codes" | uniq -c | tr -s ' ' | tr '\n' ,)" " 5 200, 2 403,"
mkfifo "$WORK/hold"
( sleep 120 >"$WORK/hold" ) &
PIDS+=($!)
ip netns exec $NS_CLI openssl s_client -quiet -connect $MG_OUT:9444 -CAfile "$PKI/ca.pem" \
	-cert "$PKI/frontend.pem" -key "$PKI/frontend.key" <"$WORK/hold" >"$WORK/hold.out" 2>&1 &
PIDS+=($!)

# ---- refusals
code=$(ccurl none -o "$WORK/unauth.json" -w '%{http_code}' $ADMIN/api/v1/dashboard)
expect_eq "no certificate, no session: /api/v1/dashboard -> 401" "$code" 401
code=$(ccurl none -o /dev/null -w '%{http_code}' $ADMIN/metrics)
expect_eq "no certificate, no session: /metrics -> 401" "$code" 401
code=$(ccurl other -o "$WORK/forbidden.json" -w '%{http_code}' $ADMIN/api/v1/dashboard)
expect_eq "mTLS with a SPIFFE ID not in allowedPrincipals -> 403" "$code" 403
grep -q 'not in spec.admin.allowedPrincipals' "$WORK/forbidden.json" && ok "403 body names the reason" || not_ok "403 body: $(cat "$WORK/forbidden.json")"
code=$(ccurl other-ca -o "$WORK/otherca.json" -w '%{http_code}' $ADMIN/api/v1/dashboard)
expect_eq "certificate from an untrusted CA -> 403" "$code" 403
grep -q 'client certificate refused: unknown_ca' "$WORK/otherca.json" && ok "403 names the certificate problem" || not_ok "untrusted CA body: $(cat "$WORK/otherca.json")"
code=$(ccurl expired -o /dev/null -w '%{http_code}' $ADMIN/metrics)
expect_eq "expired certificate -> 403" "$code" 403
code=$(ccurl none -o /dev/null -w '%{http_code}' $ADMIN/healthz)
expect_eq "/healthz open to probes" "$code" 200
code=$(ccurl none -o /dev/null -w '%{http_code}' $ADMIN/readyz)
expect_eq "/readyz open to probes" "$code" 200

# ---- /metrics over mTLS by an allowed principal, parsed by promtool
# mval NAME label=value...: sum of the samples of NAME matching every label
mval() {
	python3 - "$WORK/metrics.txt" "$@" <<'PY'
import re, sys
path, name, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
total = 0
for line in open(path):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line.strip())
    if not m or m.group(1) != name:
        continue
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        total += float(m.group(4))
print(int(total) if total == int(total) else total)
PY
}
# fetched until every finished connection is counted closed (their
# close_notify linger ends within ~2 s); admin requests are not in istio_*
for _ in $(seq 20); do
	ccurl ns-dev -o "$WORK/metrics.txt" -w '%{http_code}' $ADMIN/metrics >"$WORK/metrics.code"
	[ "$(mval istio_tcp_connections_closed_total destination_service_name=backend-api)" = $((N_OK + N_DENY)) ] && break
	sleep 0.5
done
expect_eq "allowed principal (mTLS): /metrics -> 200" "$(cat "$WORK/metrics.code")" 200
lint=$(promtool check metrics <"$WORK/metrics.txt" 2>&1); rc=$?
lint=$(grep -v 'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"' <<<"$lint" | grep -v '^$')
if { [ $rc = 0 ] || [ $rc = 3 ]; } && [ -z "$lint" ]; then ok "promtool check metrics accepts /metrics"
else not_ok "promtool check metrics (rc $rc): $lint"; fi

FRONT=spiffe://cluster.local/ns/prod/sa/frontend
OTHER=spiffe://cluster.local/ns/prod/sa/other
expect_eq "istio_requests_total frontend -> backend-api 200" \
	"$(mval istio_requests_total source_principal=$FRONT destination_service_name=backend-api response_code=200 reporter=destination connection_security_policy=mutual_tls source_workload_namespace=prod destination_service_namespace=production)" $N_OK
expect_eq "istio_requests_total other -> backend-api 403" \
	"$(mval istio_requests_total source_principal=$OTHER destination_service_name=backend-api response_code=403)" $N_DENY
expect_eq "istio_request_duration_milliseconds_count frontend" \
	"$(mval istio_request_duration_milliseconds_count source_principal=$FRONT response_code=200)" $N_OK
expect_eq "istio_tcp_connections_opened_total to backend-api" \
	"$(mval istio_tcp_connections_opened_total destination_service_name=backend-api)" $((N_OK + N_DENY))
expect_eq "istio_tcp_connections_closed_total to backend-api" \
	"$(mval istio_tcp_connections_closed_total destination_service_name=backend-api)" $((N_OK + N_DENY))
expect_eq "istio_tcp_connections_opened_total: the open echo connection" \
	"$(mval istio_tcp_connections_opened_total source_principal=$FRONT destination_service_name=echo)" 1
sent=$(mval istio_tcp_sent_bytes_total source_principal=$FRONT destination_service_name=backend-api)
[ "$sent" -gt $((N_OK * 100)) ] 2>/dev/null && ok "istio_tcp_sent_bytes_total counts response bytes ($sent)" || not_ok "istio_tcp_sent_bytes_total ($sent)"
expect_eq "meshgate_policy_decisions_total production/frontend-only allow" \
	"$(mval meshgate_policy_decisions_total policy=production/frontend-only action=allow)" $N_OK
expect_eq "meshgate_policy_decisions_total deny (no ALLOW matched)" \
	"$(mval meshgate_policy_decisions_total action=deny)" $N_DENY
expect_eq "meshgate_refusals_total policy_denied" "$(mval meshgate_refusals_total reason=policy_denied)" $N_DENY
expect_eq "meshgate_refusals_total admin_unauthenticated" "$(mval meshgate_refusals_total reason=admin_unauthenticated)" 2
expect_eq "meshgate_refusals_total admin_forbidden" "$(mval meshgate_refusals_total reason=admin_forbidden)" 1
expect_eq "meshgate_refusals_total admin_bad_client_cert" "$(mval meshgate_refusals_total reason=admin_bad_client_cert)" 2
expect_eq "meshgate_tls_handshakes_total ok" "$(mval meshgate_tls_handshakes_total result=ok)" $((N_OK + N_DENY + 1))
expect_eq "meshgate_pool_size connections" "$(mval meshgate_pool_size pool=connections)" 4096
rx=$(mval meshgate_port_rx_packets_total port=outside)
[ "$rx" -gt 50 ] 2>/dev/null && ok "meshgate_port_rx_packets_total outside ($rx)" || not_ok "port rx packets ($rx)"

# one keep-alive connection, three statuses: each request counted under its
# own response_code (the series is kept per connection and status)
ka=$(ccurl frontend -s -w '%{http_code} ' -o /dev/null https://meshgate.test:8443/ \
	-o /dev/null https://meshgate.test:8443/missing -o /dev/null https://meshgate.test:8443/?again)
expect_eq "keep-alive connection: 200 404 200" "$ka" "200 404 200 "
for _ in $(seq 20); do
	ccurl ns-dev -o "$WORK/metrics.txt" $ADMIN/metrics
	[ "$(mval istio_tcp_connections_closed_total destination_service_name=backend-api)" = $((N_OK + N_DENY + 1)) ] && break
	sleep 0.5
done
expect_eq "istio_requests_total frontend 200 after the keep-alive connection" \
	"$(mval istio_requests_total source_principal=$FRONT destination_service_name=backend-api response_code=200)" $((N_OK + 2))
expect_eq "istio_requests_total frontend 404, with every label" \
	"$(mval istio_requests_total source_principal=$FRONT destination_service_name=backend-api response_code=404 reporter=destination connection_security_policy=mutual_tls source_workload_namespace=prod destination_service_namespace=production)" 1

# the admin pool gauge counts the scrape's own connection once the earlier
# admin connections have closed (their close_notify linger ends within ~2 s):
# a count that leaked or went below zero never reads 1
for _ in $(seq 20); do
	ccurl ns-dev -o "$WORK/metrics2.txt" $ADMIN/metrics
	adm=$(grep '^meshgate_pool_in_use{pool="admin_connections"}' "$WORK/metrics2.txt" | awk '{print $2}')
	[ "$adm" = 1 ] && break
	sleep 0.5
done
expect_eq "meshgate_pool_in_use admin_connections: the scrape's own" "$adm" 1

# ---- password login, cookie flags, session use
code=$(ccurl none -o /dev/null -w '%{http_code}' --data-urlencode 'password=wrong' $ADMIN/api/v1/login)
expect_eq "wrong password -> 401" "$code" 401
ccurl none -D "$WORK/login.hdr" -o "$WORK/login.json" --data-urlencode "password=$PASSWORD" $ADMIN/api/v1/login
cookie=$(grep -i '^set-cookie:' "$WORK/login.hdr" | tr -d '\r')
case $cookie in
*"mg_session="*"Secure"*"HttpOnly"*"SameSite=Strict"*) ok "login sets the session cookie Secure; HttpOnly; SameSite=Strict" ;;
*) not_ok "session cookie flags: $cookie" ;;
esac
token=$(sed -n 's/.*mg_session=\([0-9a-f]*\);.*/\1/ip' <<<"$cookie")
ccurl none -b "mg_session=$token" -o "$WORK/dash.json" $ADMIN/api/v1/dashboard
python3 - "$WORK/dash.json" "$FRONT" $((N_OK + 3)) <<'PY' && ok "session: /api/v1/dashboard shows the open connection and the graph edge" || not_ok "dashboard JSON: $(head -c 600 "$WORK/dash.json")"
import json, sys
d = json.load(open(sys.argv[1])); front = sys.argv[2]; nreq = int(sys.argv[3])
conns = [c for c in d["connections"] if c["spiffe_id"] == front and c["service"] == "production/echo"]
edges = [e for e in d["graph"] if e["source"] == front and e["service"] == "production/backend-api" and e["requests"] == nreq]
assert conns and edges and d["status"]["name"] == "admin-e2e", (conns, edges)
PY
# change the last hex digit to another one (a token that ends in 0, "forged"
# with 0, is the real one: a failure in 1 run of 16)
last=${token: -1}; [ "$last" = 0 ] && alt=1 || alt=0
code=$(ccurl none -b "mg_session=${token%?}$alt" -o /dev/null -w '%{http_code}' $ADMIN/api/v1/status)
[ "$code" = 401 ] && ok "a forged session cookie -> 401" || not_ok "forged cookie -> $code"

# ---- config upload: a broken one is refused with file:line, a good one applied
printf 'apiVersion: meshgate.dev/v1alpha1\nkind: Appliance\nmetadata: {name: x}\nspec:\n  trustDomain: cluster.local\n  listeners: 7\n' >"$WORK/bad.yaml"
code=$(ccurl ns-dev -o "$WORK/bad.json" -w '%{http_code}' -H 'content-type: application/yaml' --data-binary @"$WORK/bad.yaml" $ADMIN/api/v1/config)
expect_eq "broken config upload -> 400" "$code" 400
python3 - "$WORK/bad.json" <<'PY' && ok "upload errors are JSON with file:line:field" || not_ok "upload errors: $(cat "$WORK/bad.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["applied"] is False
e = [x for x in d["errors"] if x["field"] == "spec.listeners"]
assert e and e[0]["file"] == "upload" and e[0]["line"] == 6, d
PY
code=$(ccurl ns-dev -o /dev/null -w '%{http_code}' -H 'transfer-encoding: chunked' --data-binary @"$WORK/bad.yaml" $ADMIN/api/v1/config)
expect_eq "chunked upload -> 411" "$code" 411
code=$(ccurl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "old config keeps serving after the refused upload" "$code" 200
appliance '---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny-frontend, namespace: production, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: DENY
  rules:
    - from: [{source: {principals: ["cluster.local/ns/prod/sa/frontend"]}}]' >"$WORK/good.yaml"
code=$(ccurl ns-dev -o "$WORK/good.json" -w '%{http_code}' -H 'content-type: application/yaml' --data-binary @"$WORK/good.yaml" $ADMIN/api/v1/config)
expect_eq "good config upload -> 200" "$code" 200
grep -q '"applied":true,"generation":2' "$WORK/good.json" && ok "upload applied atomically: generation 2" || not_ok "upload result: $(cat "$WORK/good.json")"
code=$(ccurl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "dry-run DENY policy does not block" "$code" 200
ccurl ns-dev -o "$WORK/events.json" $ADMIN/api/v1/events
grep -q '"kind":"dry-run: would deny".*"policy":"production/dry-deny-frontend"' "$WORK/events.json" \
	&& ok "dry-run hit listed in /api/v1/events" || not_ok "events: $(head -c 400 "$WORK/events.json")"
grep -q '"kind":"deny","age_s":[0-9]*,"spiffe_id":"spiffe://cluster.local/ns/prod/sa/other"' "$WORK/events.json" \
	&& ok "enforced denial listed in /api/v1/events" || not_ok "events deny: $(head -c 400 "$WORK/events.json")"

# ---- access log: console JSON lines and RFC 5424 datagrams
grep -q '^{"time":"[0-9T:.-]*Z","kind":"request","peer":"198.18.20.1:[0-9]*","listener":"backend","spiffe_id":"spiffe://cluster.local/ns/prod/sa/frontend".*"response_code":200' "$WORK/meshgate.log" \
	&& ok "access log: request line on the console" || not_ok "console access log"
sleep 0.5
grep -q '^<134>1 [0-9T:.-]*Z admin-e2e meshgate - access - {"time":.*"kind":"request".*"response_code":403' "$WORK/syslog.log" \
	&& ok "access log: RFC 5424 datagram at the syslog collector" || not_ok "syslog: $(head -2 "$WORK/syslog.log")"
n_sys=$(grep -c '"kind":"connection"' "$WORK/syslog.log")
[ "$n_sys" -ge $((N_OK + N_DENY)) ] && ok "access log: one connection line per closed connection ($n_sys)" || not_ok "syslog connection lines: $n_sys"

# ---- headless chromium: log in, see the connection and the graph edge
ip netns exec $NS_CLI chromedriver --port=9515 >"$WORK/chromedriver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do ip netns exec $NS_CLI curl -s http://127.0.0.1:9515/status 2>/dev/null | grep -q '"ready":\s*true' && break; sleep 0.2; done
if ip netns exec $NS_CLI timeout 120 python3 "$TESTS_TOP/tests/admin/dashboard.py" \
	"https://$MG_OUT:$ADMIN_PORT/" "$PASSWORD" "$ART/admin-dashboard.png" \
	"$FRONT" "production/echo" "production/backend-api" "production/frontend-only" >"$WORK/chromium.out" 2>&1; then
	ok "chromium: login, live connection and service-graph edge shown"
else
	not_ok "chromium dashboard"; sed 's/^/#   /' "$WORK/chromium.out" | head -40
fi
[ -s "$ART/admin-dashboard.png" ] && [ "$(head -c 8 "$ART/admin-dashboard.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] \
	&& ok "dashboard screenshot saved: build/test-artifacts/admin-dashboard.png" || not_ok "screenshot"

# ---- login rate limit (from a second client address, after the browser)
codes=
for _ in 1 2 3 4; do
	codes+=$(ccurl none --interface 198.18.20.3 -o /dev/null -w '%{http_code} ' --data-urlencode 'password=nope' $ADMIN/api/v1/login)
done
code=$(ccurl none --interface 198.18.20.3 -o /dev/null -w '%{http_code}' --data-urlencode "password=$PASSWORD" $ADMIN/api/v1/login)
expect_eq "login attempts rate-limited per address (3 free failures, then 429, even for the right password)" "$codes$code" "401 401 401 429 429"
sleep 1.1   # the overall limit (ADMIN_LOGIN_PER_SECOND) is per second
code=$(ccurl none -o /dev/null -w '%{http_code}' --data-urlencode "password=$PASSWORD" $ADMIN/api/v1/login)
expect_eq "another address still logs in" "$code" 200

kill -0 $MG_PID 2>/dev/null && ok "meshgate still running" || not_ok "meshgate died"

# ---- shutdown with the echo connection still open: it is closed and logged
# (to the admin console's metrics too, which must outlive the proxy)
kill -TERM $MG_PID
wait $MG_PID
rc=$?
MG_PID=
expect_eq "SIGTERM with a connection open: meshgate exits 0" "$rc" 0
grep -q '^meshgate: shutting down (1 connection open)' "$WORK/meshgate.log" \
	&& ok "shutdown names the open connection" || not_ok "shutdown line: $(tail -3 "$WORK/meshgate.log")"
n=$(sed -n '/^meshgate: shutting down/,$p' "$WORK/meshgate.log" | grep -c '"kind":"connection".*"listener":"echo"')
expect_eq "the open connection's access-log line is written at shutdown" "$n" 1
tap_exit
