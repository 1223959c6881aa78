#!/usr/bin/env bash
# `make run`'s embedded demo default, as a newcomer meets it: meshgate with no
# --config brings up a net_tap port (host interface mg-demo, 198.18.3.0/24),
# generates a demo PKI in the state directory, serves the built-in demo
# service, and prints curl commands; those commands give 200 for the demo
# client identity, 403 for the intruder, and a refused handshake without a
# client certificate.
set -u
. "$(dirname "$0")/../lib.sh"
exec 9>/run/lock/meshgate-demo.lock   # the demo's tap name is fixed
flock 9
work=$TESTS_TOP/build/demo-test
state=$work/state
mg_pid=
cleanup() {
	[ -n "$mg_pid" ] && kill "$mg_pid" 2>/dev/null && wait "$mg_pid" 2>/dev/null
	ip link del mg-demo 2>/dev/null
	return 0
}
trap cleanup EXIT
trap "exit 130" INT TERM
rm -rf "$work"
mkdir -p "$work"

"$TESTS_TOP/build/meshgate" run --console none --state-dir "$state" >"$work/meshgate.log" 2>&1 &
mg_pid=$!
for _ in $(seq 200); do
	grep -q 'meshgate: ready' "$work/meshgate.log" && break
	kill -0 $mg_pid 2>/dev/null || break
	sleep 0.1
done
check "demo starts and says ready" grep -q 'meshgate: ready' "$work/meshgate.log"
check "demo's idle waits are event-driven on the tap queue" \
	grep -Eq 'event-driven polling: idle waits on [1-9][0-9]* descriptors?$' "$work/meshgate.log"
for f in ca.pem gateway.pem gateway.key client.pem client.key intruder.pem intruder.key; do
	[ -s "$state/$f" ] || { not_ok "demo PKI file $f generated"; continue; }
done
check "demo PKI generated in the state directory" test -s "$state/client.pem"
check "gateway key is private (mode 600)" test "$(stat -c %a "$state/gateway.key")" = 600

# Run the exact commands meshgate printed.
allowed=$(grep -A1 '# allowed' "$work/meshgate.log" | tail -1 | sed 's/^ *//')
denied=$(grep -A1 '# denied' "$work/meshgate.log" | tail -1 | sed 's/^ *//')
nocert=$(grep -A1 '# no client certificate' "$work/meshgate.log" | tail -1 | sed 's/^ *//')
check "printed commands use curl" bash -c "[[ '$allowed' == curl* && '$denied' == curl* && '$nocert' == curl* ]]"
body=$(eval "$allowed -sS --max-time 10")
check "printed allowed command: 200 from the demo service" grep -q 'Hello from the meshgate demo service demo/hello' <<<"$body"
check "the demo names the caller's SPIFFE ID" grep -q 'spiffe://cluster.local/ns/demo/sa/client' <<<"$body"
code=$(eval "$denied -s -o '$work/denied.out' -w '%{http_code}' --max-time 10")
expect_eq "printed denied command: 403" "$code" 403
check "denied body is RBAC: access denied" grep -qx 'RBAC: access denied' "$work/denied.out"
eval "$nocert -sS --max-time 10" >/dev/null 2>"$work/nocert.err"
rc=$?
expect_eq "printed no-certificate command: handshake refused (curl exit 35)" "$rc" 35
check "refusal is a TLS alert" grep -q 'alert' "$work/nocert.err"
quiet_ping() { ping -q -c 1 -W 2 "$1" >/dev/null 2>&1; }
check "ping answered on the demo port" quiet_ping 198.18.3.2
status_cmd=$(grep -A1 '# the admin console' "$work/meshgate.log" | tail -1 | sed 's/^ *//')
metrics_cmd=$(grep -A2 '# the admin console' "$work/meshgate.log" | tail -1 | sed 's/^ *//')
out=$(eval "$status_cmd -sS --max-time 10")
check "printed admin command: status JSON from the admin console" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d' "$out"
out=$(eval "$metrics_cmd -sS --max-time 10")
check "printed metrics command: Istio series counted the demo requests" grep -q '^istio_requests_total{.*response_code="200".*} [1-9]' <<<"$out"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$state/ca.pem" --cert "$state/intruder.pem" --key "$state/intruder.key" https://198.18.3.2:9443/api/v1/status)
expect_eq "admin console refuses the intruder identity" "$code" 403

# A second start reuses the PKI (does not regenerate the CA).
sum=$(sha256sum "$state/ca.pem")
kill "$mg_pid"; wait "$mg_pid" 2>/dev/null; rc=$?
expect_eq "SIGTERM stops the demo cleanly" "$rc" 0
"$TESTS_TOP/build/meshgate" run --console none --state-dir "$state" >"$work/meshgate2.log" 2>&1 &
mg_pid=$!
for _ in $(seq 200); do grep -q 'meshgate: ready' "$work/meshgate2.log" && break; sleep 0.1; done
expect_eq "restart keeps the demo CA" "$(sha256sum "$state/ca.pem")" "$sum"
body=$(eval "$allowed -sS --max-time 10")
check "allowed again after restart" grep -q 'Hello from the meshgate demo service' <<<"$body"
tap_exit
