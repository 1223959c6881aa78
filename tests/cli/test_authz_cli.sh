#!/usr/bin/env bash
# meshgate authz check / config validate: exit codes and output lines.
source "$(dirname "$0")/../lib.sh"
D=$TESTS_TOP/tests/data
if [ ! -x "$MESHGATE" ]; then not_ok "build/meshgate exists (run make)"; tap_exit; fi

# run CMD...: sets out (stdout), err (stderr), rc
run() { out=$("$@" 2>/tmp/authz_cli_err.$$); rc=$?; err=$(cat /tmp/authz_cli_err.$$); rm -f /tmp/authz_cli_err.$$; }
authz() { run "$MESHGATE" authz check "$@"; }

authz --config $D/policy/order.yaml --workload-namespace prod --principal cluster.local/ns/prod/sa/frontend
expect_eq "allow by policy: exit 0" "$rc" 0
expect_eq "allow by policy: line" "$out" "ALLOW prod/allow-frontend audit"

authz --config $D/policy/order.yaml --workload-namespace prod --principal spiffe://cluster.local/ns/prod/sa/admin
expect_eq "deny by policy: exit 3" "$rc" 3
expect_eq "deny by policy: line" "$out" "DENY prod/deny-admin audit"

authz --config $D/policy/order.yaml --workload-namespace prod
expect_eq "plaintext peer denied: exit 3" "$rc" 3
expect_eq "plaintext peer denied: line" "$out" "DENY (no ALLOW policy matched) audit"

authz --config $D/policy/order.yaml --workload-namespace dev
expect_eq "no ALLOW applies: exit 0" "$rc" 0
expect_eq "no ALLOW applies: line" "$out" "ALLOW (no ALLOW policy applies)"

# several files; L7 flags; labels; headers
authz --config $D/policy/order.yaml --config $D/policy/match.yaml --workload-namespace m \
	--workload-label app=http --method GET --path '/api/v1?x' --host a.example.com
expect_eq "L7 allow across files: exit 0" "$rc" 0
expect_eq "L7 allow across files: line" "$out" "ALLOW m/http"
authz --config $D/policy/match.yaml --workload-namespace m --workload-label app=http --dest-port 8443
expect_eq "L7 ALLOW never matches on tcp" "$rc" 3
authz --config $D/policy/match.yaml --workload-namespace m --workload-label app=when \
	--source-ip 198.18.4.4 --sni api.example.com --header X-Env=stage-1 --dest-port 443
expect_eq "when conditions with header: exit 0" "$rc" 0
authz --config $D/policy/match.yaml --workload-namespace m --workload-label app=when \
	--source-ip 198.18.4.4 --sni api.example.com --header X-Env=stage-old --dest-port 443
expect_eq "when notValues excludes: exit 3" "$rc" 3
authz --config $D/policy/match.yaml --workload-namespace m --workload-label app=namespaces --source-namespace team-q
expect_eq "--source-namespace: exit 0" "$rc" 0
case $err in *"using principal cluster.local/ns/team-q/sa/default"*) ok "--source-namespace note";; *) not_ok "--source-namespace note ($err)";; esac

# dry-run
authz --config $D/policy/dry_run.yaml --workload-namespace d --principal td/ns/b/sa/b
expect_eq "dry-run deny not enforced: exit 0" "$rc" 0
expect_eq "dry-run line" "$out" "ALLOW (no ALLOW policy applies) dry-run: would have denied by d/try-deny-b"

# errors: exit 2 with FILE:LINE: field: message on stderr
authz --config $D/policy/bad.yaml --workload-namespace b
expect_eq "bad policy file: exit 2" "$rc" 2
case $err in *"policy/bad.yaml:5: spec.action: CUSTOM (external authorization) is not supported"*) ok "bad policy: FILE:LINE: field message";; *) not_ok "bad policy message ($err)";; esac
expect_eq "bad policy: nothing on stdout" "$out" ""
authz --config $D/policy/none.yaml --workload-namespace b
expect_eq "missing file: exit 2" "$rc" 2
case $err in *"none.yaml: cannot read: No such file or directory"*) ok "missing file message";; *) not_ok "missing file message ($err)";; esac
authz --workload-namespace b
expect_eq "no --config: exit 2" "$rc" 2
authz --config $D/policy/order.yaml
expect_eq "no --workload-namespace: exit 2" "$rc" 2
authz --config $D/policy/order.yaml --workload-namespace b --dest-port 99999
expect_eq "bad --dest-port: exit 2" "$rc" 2
authz --config $D/policy/order.yaml --workload-namespace b --bogus x
expect_eq "unknown option: exit 2" "$rc" 2

# a full appliance config works for authz check too
authz --config $D/config/good/edge.yaml --workload-namespace production --workload-label app=backend-api \
	--principal cluster.local/ns/production/sa/frontend --method GET --path /api/x
expect_eq "appliance file: exit 0" "$rc" 0
expect_eq "appliance file: line" "$out" "ALLOW production/allow-frontend"

# config validate
run "$MESHGATE" config validate --config $D/config/good/edge.yaml
expect_eq "config validate good: exit 0" "$rc" 0
case $out in *"good/edge.yaml: ok"*) ok "config validate good: FILE: ok";; *) not_ok "config validate good output ($out)";; esac
run "$MESHGATE" config validate --config $D/config/bad/edge.yaml
expect_eq "config validate bad: exit 2" "$rc" 2
case $err in *"bad/edge.yaml:16: spec.listeners[0].listen: must be a port number 1-65535, got \"84433\""*) ok "config validate bad: listen message";; *) not_ok "config validate bad message ($err)";; esac
tap_exit
