#!/usr/bin/env bash
# The policy engine on the live data path (issue: Istio policy engine):
#   - L7 rules on an http listener: the same identity gets GET allowed and
#     POST denied by a method rule, and a DENY by path;
#   - a dry-run DENY lets traffic through, is logged as "would_deny" and is
#     counted;
#   - a live reload (SIGHUP) revoking an identity closes that identity's open
#     connection while another identity's transfer on the same listener
#     continues intact; a bad reload is refused and the old set keeps serving;
#   - an L7 policy on a tcp listener draws a load-time warning naming it;
#   - PeerAuthentication: a PERMISSIVE port takes plaintext and mTLS, a
#     plaintext peer has no identity (never matches principals), STRICT ports
#     refuse plaintext, a DISABLE port takes plaintext only.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.sh"
trap 'e2e_teardown; exec 7>&- 2>/dev/null' EXIT
trap "exit 130" INT TERM
e2e_setup
e2e_start_upstream || exit 1

policies() {   # $1 = principals allowed on the echo listener (YAML list items)
cat <<YAML
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: read-only, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: ALLOW
  rules:
    - from: [{source: {principals: ["cluster.local/ns/prod/sa/frontend", "cluster.local/ns/prod/sa/other"]}}]
      to: [{operation: {methods: ["GET", "HEAD"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: DENY
  rules:
    - to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: would-block-other
  namespace: production
  annotations: {istio.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: DENY
  rules:
    - from: [{source: {principals: ["cluster.local/ns/prod/sa/other"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-callers, namespace: production}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
    - from: [{source: {principals: [$1]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: hasher-get-only, namespace: production}
spec:
  selector: {matchLabels: {app: hasher}}
  action: ALLOW
  rules:
    - to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-legacy-sni, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: DENY
  rules:
    - when: [{key: connection.sni, values: ["legacy.*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: public-blobs, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: ALLOW
  rules:
    - to: [{operation: {methods: ["GET"], paths: ["/blob/*"]}}]
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: backend-mtls, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  mtls: {mode: STRICT}
  portLevelMtls:
    8445: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: echo-plain-port, namespace: production}
spec:
  selector: {matchLabels: {app: echo}}
  portLevelMtls:
    9445: {mode: DISABLE}
YAML
}
export E2E_EXTRA_LISTENERS='    - {name: backend-permissive, port: outside, listen: 8445, protocol: http, service: backend-api}
    - {name: echo-plain, port: outside, listen: 9445, protocol: tcp, service: echo}'
cfg=$(policies '"cluster.local/ns/prod/sa/frontend", "cluster.local/ns/prod/sa/other"' | e2e_write_config)

e2e_start_meshgate_console "$cfg" || exit 1
check "meshgate starts" grep -q 'meshgate: ready' "$E2E_WORK/meshgate.log"
check "load-time warning names the L7 policy on a tcp listener" \
	grep -q 'production/hasher-get-only.*tcp listener "hasher"' "$E2E_WORK/meshgate.log"
counter() { e2e_counter "$1"; }

# --- L7: same identity, GET allowed, POST denied by the method rule
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "GET by frontend allowed by methods rule" "$code" 200
out=$(cli_curl frontend -X POST --data x -w '\n%{http_code}' https://meshgate.test:8443/sha256)
expect_eq "POST by frontend denied (no ALLOW rule matches POST)" "$out" "RBAC: access denied
403"
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/admin/users?x=1)
expect_eq "GET /admin/... denied by the path DENY" "$code" 403
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/?admin=1)
expect_eq "query string is not part of the path" "$code" 200
check "decision logged with the deciding policy" \
	grep -q '"method":"POST".*"response_code":403,"decision":"deny","policy":null' "$E2E_WORK/meshgate.log"
check "path DENY logged with its policy" \
	grep -q '"path":"/admin/users?x=1".*"decision":"deny","policy":"production/no-admin"' "$E2E_WORK/meshgate.log"

# --- connection.sni from the ClientHello
code=$(cli_curl frontend -k -o /dev/null -w '%{http_code}' --resolve legacy.meshgate.test:8443:$MG_OUT https://legacy.meshgate.test:8443/)
expect_eq "when connection.sni matches legacy.*: denied" "$code" 403
check "SNI denial names its policy" grep -q '"kind":"request".*"decision":"deny","policy":"production/no-legacy-sni"' "$E2E_WORK/meshgate.log"

# --- dry-run DENY: traffic passes, logged and counted
before=$(counter dry_run_would_deny)
body=$(cli_curl other https://meshgate.test:8443/)
check "dry-run DENY lets other through (200 from upstream)" grep -q 'hello from upstream' <<<"$body"
check "dry-run hit logged as would_deny by the policy" \
	grep -q '"spiffe_id":"spiffe://cluster.local/ns/prod/sa/other".*"decision":"allow".*"dry_run":{"action":"deny","policy":"production/would-block-other"}' "$E2E_WORK/meshgate.log"
after=$(counter dry_run_would_deny)
expect_eq "dry-run hit counted (dry_run_would_deny +1)" "$((after - ${before:-0}))" 1

# --- PeerAuthentication
plain_curl() { ip netns exec $NS_CLI curl -sS --max-time 10 "$@"; }
out=$(plain_curl -w '\n%{http_code}' http://$MG_OUT:8445/)
expect_eq "PERMISSIVE port: plaintext peer has no identity, principals never match -> 403" "$out" "RBAC: access denied
403"
n=$(plain_curl http://$MG_OUT:8445/blob/1000 | wc -c)
expect_eq "PERMISSIVE port: plaintext GET allowed by a rule without principals" "$n" 1000
check "plaintext connection logged without TLS (tls_version null)" grep -q '"listener":"backend-permissive".*"tls_version":null' "$E2E_WORK/meshgate.log"
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' --resolve meshgate.test:8445:$MG_OUT https://meshgate.test:8445/)
expect_eq "PERMISSIVE port: mTLS peer still identified and allowed" "$code" 200
plain_curl -o /dev/null http://$MG_OUT:8443/ 2>/dev/null
rc=$?
check "STRICT port: plaintext HTTP refused (curl exit $rc)" test "$rc" -ne 0
out=$(ip netns exec $NS_CLI bash -c "exec 3<>/dev/tcp/$MG_OUT/9445; printf hello >&3; timeout 3 cat <&3" 2>&1)
expect_eq "DISABLE port: plaintext peer evaluated without identity and closed (ALLOW needs principals)" "$out" ""
check "DISABLE port denial logged" grep -q '"listener":"echo-plain".*"decision":"deny".*"tls_version":null' "$E2E_WORK/meshgate.log"

# --- a reload while a handshake is half done: it completes with the
# credentials it started with (they stay alive until the handshake timeout)
tc=$TESTS_TOP/tests/e2e/tlsclient.py
python3 "$tc" --netns $NS_CLI --host $MG_OUT --port 9444 --pki "$E2E_PKI" --id frontend \
	--pause-in-handshake 2 --stream 1 >"$E2E_WORK/paused.out" 2>&1 &
pp=$!
for _ in $(seq 100); do grep -q paused "$E2E_WORK/paused.out" && break; sleep 0.05; done
kill -HUP $E2E_MG_PID
for _ in $(seq 100); do grep -q 'reload: generation 2' "$E2E_WORK/meshgate.log" && break; sleep 0.05; done
check "reload happened while the handshake was paused" grep -q 'reload: generation 2' "$E2E_WORK/meshgate.log"
wait $pp
check "the half-done handshake completed after the reload and data flowed" grep -Eq '^ok [1-9]' "$E2E_WORK/paused.out"

# --- live reload: revoke `other` on the echo listener while both stream
python3 "$tc" --netns $NS_CLI --host $MG_OUT --port 9444 --pki "$E2E_PKI" --id frontend --stream 8 >"$E2E_WORK/stream.frontend" 2>&1 &
sf=$!
python3 "$tc" --netns $NS_CLI --host $MG_OUT --port 9444 --pki "$E2E_PKI" --id other --stream 8 >"$E2E_WORK/stream.other" 2>&1 &
so=$!
sleep 2.5
policies '"cluster.local/ns/prod/sa/frontend"' | e2e_write_config >/dev/null
kill -HUP $E2E_MG_PID
wait $so; rc_o=$?
wait $sf; rc_f=$?
check "reload reports one connection closed by the new policy" \
	grep -q 'reload: generation 3 in service.*1 connection closed by the new policy' "$E2E_WORK/meshgate.log"
expect_eq "revoked identity's open stream was closed" "$rc_o" 1
check "other's stream broke after data flowed" grep -Eq '^broken [1-9][0-9]*' "$E2E_WORK/stream.other"
expect_eq "frontend's stream continued intact through the reload" "$rc_f" 0
check "frontend's stream moved data" grep -Eq '^ok [1-9][0-9]{4,}' "$E2E_WORK/stream.frontend"
check "revocation counted as policy_revoked" grep -q '"listener":"echo","spiffe_id":"spiffe://cluster.local/ns/prod/sa/other".*"refusal":"policy_revoked"' "$E2E_WORK/meshgate.log"
out=$(cli_sclient 9444 other)
check "new connection of the revoked identity refused with access_denied" grep -qi 'access denied' <<<"$out"

# --- a broken reload is refused; the old set keeps serving
cp "$cfg" "$E2E_WORK/good.yaml"
sed -i 's/action: ALLOW/action: MAYBE/' "$cfg"
kill -HUP $E2E_MG_PID
for _ in $(seq 50); do grep -q 'reload refused' "$E2E_WORK/meshgate.log" && break; sleep 0.1; done
check "bad reload refused with FILE:LINE: field" grep -Eq "$cfg:[0-9]+: spec.action: " "$E2E_WORK/meshgate.log"
check "refusal says the old generation keeps serving" grep -q 'reload refused: the configuration in service (generation 3) is unchanged' "$E2E_WORK/meshgate.log"
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "old policies still serve after the refused reload" "$code" 200
check "meshgate still running" kill -0 $E2E_MG_PID
tap_exit
