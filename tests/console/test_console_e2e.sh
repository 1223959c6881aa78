#!/usr/bin/env bash
# The serial console of a real meshgate, driven as an operator would, while
# traffic flows through it:
#
#   netns mgc-cli                 root namespace                 netns mgc-up
#   198.18.16.1 mgc-c0 <-veth-> mgc-c1 [meshgate DPDK af_packet]
#                                 [meshgate DPDK af_packet] mgc-u1 <-veth-> mgc-u0 198.18.17.10
#                                 outside 198.18.16.2 / inside 198.18.17.2
#
# meshgate runs with --console pty and a console password; a python client
# (console_client.py) types commands into the pty. Covered: login (wrong
# password refused, right one accepted), help, status, every show command,
# authz check (same line as the CLI, running policies and --config), log
# level, a refused reload of a broken config (FILE:LINE error shown, the
# old generation keeps serving while a curl loop keeps succeeding), a good
# reload (generation 2, the new policy in force), drain (new connections
# refused, an open one finishes), shutdown (exit 0). Then a second run with
# the console on a stdin pipe (line mode). Everything created here is
# deleted on exit.
set -u
. "$(dirname "$0")/../lib.sh"
# the mgc-* names are per machine: another checkout running this test
# waits here instead of tearing our topology down
exec 9>/run/lock/meshgate-console-e2e.lock
flock 9

W=$TESTS_TOP/build/console-e2e
PKI=$W/pki
NS_CLI=mgc-cli
NS_UP=mgc-up
MG_OUT=198.18.16.2
MG_IN=198.18.17.2
UP_IP=198.18.17.10
MG_PID= UP_PID= LOOP_PID= SLOW_PID=
CLIENT=$TESTS_TOP/tests/console/console_client.py

teardown() {
	for p in $LOOP_PID $SLOW_PID; do kill "$p" 2>/dev/null; done
	[ -n "$MG_PID" ] && kill "$MG_PID" 2>/dev/null && wait "$MG_PID" 2>/dev/null
	[ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null
	topo_teardown mgc
	MG_PID= UP_PID= LOOP_PID= SLOW_PID=
	return 0
}
trap teardown EXIT
trap "exit 130" INT TERM

setup() {
	teardown
	mkdir -p "$W"
	bash "$TESTS_TOP/tests/pki/gen.sh" "$PKI" >/dev/null
	topo_setup mgc 198.18.16.1 $UP_IP
}

start_upstream() {
	ip netns exec $NS_UP python3 "$TESTS_TOP/tests/e2e/upstream.py" $UP_IP >"$W/upstream.log" 2>&1 &
	UP_PID=$!
	for _ in $(seq 50); do grep -q ready "$W/upstream.log" 2>/dev/null && return 0; sleep 0.1; done
	echo "# upstream did not start"; cat "$W/upstream.log"; return 1
}

# write_config FILE [EXTRA-POLICY-YAML on stdin]
write_config() {
	cat >"$1" <<YAML
apiVersion: meshgate.dev/v1alpha1
kind: Appliance
metadata: {name: console-e2e}
spec:
  trustDomain: cluster.local
  identity: {certificateChain: $PKI/gateway-chain.pem, privateKey: $PKI/gateway.key}
  trustBundles:
    - {trustDomain: cluster.local, roots: $PKI/ca.pem}
  dpdk: {args: ["--no-huge", "-m", "256"]}
  console: {passwordHash: "$HASH"}
  ports:
    - {name: outside, device: "net_af_packet0,iface=mgc-c1", address: $MG_OUT/24}
    - {name: inside, device: "net_af_packet1,iface=mgc-u1", address: $MG_IN/24}
  services:
    - {name: backend-api, namespace: production, labels: {app: backend-api}, endpoints: ["$UP_IP:8080"]}
    - {name: echo, namespace: production, labels: {app: echo}, endpoints: ["$UP_IP:9001"]}
  listeners:
    - {name: backend, port: outside, listen: 8443, protocol: http, service: backend-api}
    - {name: echo, port: outside, listen: 9444, protocol: tcp, service: echo}
$(policy_frontend_only)
YAML
	cat >>"$1"
}

cli_curl() { # IDENTITY curl-args...
	local id=$1; shift
	ip netns exec $NS_CLI curl -sS --max-time 20 --cacert "$PKI/ca.pem" \
		--cert "$PKI/$id.pem" --key "$PKI/$id.key" --resolve meshgate.test:8443:$MG_OUT "$@"
}

# con [CLIENT-OPTIONS] CMD...: the console's answer; also kept in
# build/console-e2e/transcript.txt for a human to read
con() {
	local o rc
	o=$(timeout 60 python3 "$CLIENT" "$PTS" "$@"); rc=$?
	printf '>>> %s\n%s\n' "$*" "$o" >>"$W/transcript.txt"
	printf '%s\n' "$o"
	return $rc
}

# has NAME TEXT PATTERN: ok when the (extended) regex matches a line
has() { if grep -qE -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1"; echo "$2" | sed 's/^/#   /' | head -40; fi; }

# ---------------------------------------------------------------- start
setup
rm -f "$W/transcript.txt"
start_upstream || exit 1
HASH=$(printf 'op3rator pass\n' | "$MESHGATE" console hash-password --iterations 1000)
has "console hash-password prints a salted hash" "$HASH" '^pbkdf2-sha256\$1000\$'
CFG=$W/console.yaml
write_config "$CFG" </dev/null
GOOD=$W/good.yaml
cp "$CFG" "$GOOD"

"$MESHGATE" run --config "$CFG" --console pty >"$W/meshgate.log" 2>&1 &
MG_PID=$!
PTS=
for _ in $(seq 150); do
	PTS=$(sed -n 's/^meshgate: console on //p' "$W/meshgate.log")
	[ -n "$PTS" ] && break
	kill -0 $MG_PID 2>/dev/null || break
	sleep 0.1
done
if [ -z "$PTS" ] || [ ! -c "$PTS" ]; then
	not_ok "meshgate starts with its console on a pty"; sed 's/^/#   /' "$W/meshgate.log"; exit 1
fi
ok "meshgate starts with its console on a pty ($PTS)"
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "traffic flows before any console command" "$code" 200

# ---------------------------------------------------------------- login
out=$(con --password 'wrong guess'); rc=$?
expect_eq "login: a wrong password is refused" "$rc" 2
has "login: says so and when to retry" "$out" 'wrong password \(next attempt in 1 s\)'
sleep 1.2   # past the 1 s back-off, or the right password is throttled too
out=$(con --password 'op3rator pass' help); rc=$?
expect_eq "login: the right password is accepted" "$rc" 0
has "login: logged in" "$out" '^logged in'
[ $rc = 0 ] || exit 1   # every later command would be taken for a password
has "help: lists the module commands with their help" "$out" 'show connections +open connections'
missing=
for cmd in status "show listeners" "show services" "show connections" "show policies" "show certs" \
	"show counters" "authz check" reload "log level" drain shutdown help; do
	grep -q "^  $cmd" <<<"$out" || missing+=" '$cmd'"
done
expect_eq "help lists every command" "${missing:-none missing}" "none missing"
out=$(con "log level error")
has "log level error: only notices on the console" "$out" '^log level error: notices only'

# ---------------------------------------------------------------- status, show
out=$(con status)
has "status: version and uptime" "$out" '^meshgate [^ ]+  uptime [0-9]+h[0-9]{2}m[0-9]{2}s'
has "status: config generation 1 and the file" "$out" "config generation 1 \\($CFG\\)"
has "status: port line as the image test greps it" "$out" '(net0|port|link).*\bup\b'
has "status: port rx/tx" "$out" '^  outside +link up .* rx [1-9][0-9]* pkts .* tx [1-9][0-9]* pkts'
has "status: port drops" "$out" '^ +drops rx [0-9]+ .* tx [0-9]+ '
has "status: connection pool in use / size" "$out" '^  connections +[0-9]+ / 4096 in use'
has "status: lwIP pools" "$out" '^  lwip tcp pcbs +[0-9]+ / [0-9]+ in use'
has "status: the TCP pcb index and its counters" "$out" \
	'^  tcp pcb index +[0-9]+ indexed; segments: [0-9]+ moved to the front, [0-9]+ there already, [0-9]+ unknown; [0-9]+ repaired, [1-9][0-9]* rebuilds'
has "status: console and password state" "$out" "^console pty $PTS \\(interactive\\), password required, log level error"

out=$(con "show listeners")
has "show listeners: http listener" "$out" "^backend +$MG_OUT:8443 +http +outside +production/backend-api"
has "show listeners: tcp listener" "$out" "^echo +$MG_OUT:9444 +tcp +outside +production/echo"
out=$(con "show services")
has "show services: labels and endpoints" "$out" "^production/backend-api  labels app=backend-api  endpoints $UP_IP:8080"
out=$(con "show policies")
has "show policies: policy, action, file:line, applies to" "$out" \
	"^production/frontend-only ALLOW  \\($CFG:[0-9]+\\)"
has "show policies: applies to the service" "$out" '^    applies to: production/backend-api$'
has "show policies: totals" "$out" '^1 authorization policy, 0 peer authentications'
out=$(con "show certs")
has "show certs: gateway SPIFFE ID" "$out" '^  identity   spiffe://cluster.local/ns/meshgate/sa/gateway'
has "show certs: expiry in days" "$out" '^  not after  [0-9-]+ [0-9:]+ UTC  \(in [0-9]+ days'
has "show certs: trust bundle" "$out" "^trust domain cluster.local: 1 root from $PKI/ca.pem"

# a live connection: a slow request holds one open
cli_curl frontend -o "$W/slow1.out" -w '%{http_code}' https://meshgate.test:8443/slow/4000 >"$W/slow1.code" 2>&1 &
SLOW_PID=$!
seen=
for _ in $(seq 40); do
	out=$(con "show connections")
	grep -q 'spiffe://cluster.local/ns/prod/sa/frontend production/backend-api' <<<"$out" && { seen=1; break; }
	sleep 0.1
done
has "show connections: peer, SPIFFE ID, service, bytes, age" "$out" \
	'^[0-9]+ 198\.18\.16\.1:[0-9]+ spiffe://cluster.local/ns/prod/sa/frontend production/backend-api open in=[0-9]+ out=[0-9]+ age=[0-9]+s$'
has "show connections: count and pool" "$out" '^[1-9][0-9]* open connections? \(pool 4096\)'
wait $SLOW_PID; SLOW_PID=
expect_eq "the slow request completes" "$(cat "$W/slow1.code")" 200

cli_curl other -o /dev/null https://meshgate.test:8443/ 2>/dev/null
out=$(con "show counters")
has "show counters: policy decisions" "$out" '^policy_deny [1-9]'
has "show counters: refusals by reason" "$out" '^refused\{reason=policy_denied\} [0-9]+$'
has "show counters: TLS failures by error" "$out" '^tls_handshake_failed\{error=[a-z_]+\} [0-9]+$'
has "show counters: port counters" "$out" '^port_rx_packets\{port=outside\} [1-9]'
has "show counters: console counters" "$out" '^console_login_failed 1$'

# ---------------------------------------------------------------- authz check
q=(--workload-namespace production --workload-label app=backend-api --principal cluster.local/ns/prod/sa/frontend --method GET --path /x)
want=$("$MESHGATE" authz check --config "$CFG" "${q[@]}")
out=$(con "authz check ${q[*]}")
expect_eq "authz check: running policies give the CLI's line" "$out" "$want"
has "authz check: ALLOW by the policy" "$out" '^ALLOW production/frontend-only$'
out=$(con "authz check --workload-namespace production --workload-label app=backend-api --principal spiffe://cluster.local/ns/prod/sa/other")
expect_eq "authz check: another identity is denied" "$out" "DENY (no ALLOW policy matched)"
out=$(con "authz check --workload-namespace production --workload-label app=backend-api --source-namespace team-q")
has "authz check: --source-namespace note as the CLI prints it" "$out" \
	'^note: --source-namespace without --principal: using principal cluster.local/ns/team-q/sa/default$'
out=$(con "authz check --workload-namespace production --dest-port 99999")
has "authz check: bad flag explained" "$out" '^error: --dest-port wants a port number 1-65535, got "99999"'
has "authz check: usage shown" "$out" '^usage: authz check \[--config FILE \.\.\.\] --workload-namespace NS'
out=$(con "authz check --config $TESTS_TOP/tests/data/policy/order.yaml --workload-namespace prod --principal cluster.local/ns/prod/sa/admin")
expect_eq "authz check --config: evaluates those files like the CLI" "$out" \
	"$("$MESHGATE" authz check --config "$TESTS_TOP/tests/data/policy/order.yaml" --workload-namespace prod --principal cluster.local/ns/prod/sa/admin)"
out=$(con "authz check --config $TESTS_TOP/tests/data/policy/bad.yaml --workload-namespace b")
has "authz check --config: FILE:LINE errors of a bad file" "$out" \
	'policy/bad.yaml:5: spec.action: CUSTOM \(external authorization\) is not supported'

# ---------------------------------------------------------------- log level
out=$(con "log level info")
has "log level info" "$out" '^log level info: every access-log line'
cli_curl frontend -o /dev/null https://meshgate.test:8443/?logged=1
# the access line arrives while no client is attached: it waits in the pty
pending=
for _ in $(seq 30); do
	pending+=$(con --pending)
	grep -q '"kind":"connection".*"spiffe_id":"spiffe://cluster.local/ns/prod/sa/frontend"' <<<"$pending" && break
	sleep 0.1
done
has "log level info: the access line appears on the console" "$pending" \
	'"kind":"connection".*"spiffe_id":"spiffe://cluster.local/ns/prod/sa/frontend".*"decision":"allow"'
has "log level info: the prompt is redrawn after it" "$pending" '^.?meshgate> '
out=$(con "log level warn")
has "log level warn" "$out" '^log level warn: denials, refusals'
grep -q '"kind":"connection"' "$W/meshgate.log" && ok "access log also goes to stdout when the console is a pty" \
	|| not_ok "access log on stdout with a pty console"
has "bad log level gives the usage" "$(con 'log level loud')" '^usage: log level \[error\|warn\|info\]'

# ---------------------------------------------------------------- reload
# a curl loop through meshgate for the whole reload sequence
rm -f "$W/loop.codes"
(
	while :; do
		cli_curl frontend -o /dev/null -w '%{http_code}\n' https://meshgate.test:8443/ >>"$W/loop.codes" 2>/dev/null \
			|| echo fail >>"$W/loop.codes"
		sleep 0.05
	done
) &
LOOP_PID=$!
for _ in $(seq 50); do [ -s "$W/loop.codes" ] && break; sleep 0.1; done

# loop_more N: waits until the curl loop has made N more requests
loop_more() {
	local want=$(( $(wc -l <"$W/loop.codes") + $1 ))
	for _ in $(seq 300); do [ "$(wc -l <"$W/loop.codes")" -ge $want ] && return 0; sleep 0.1; done
	return 1
}
loop_more 2
sed -i 's/listen: 8443/listen: 84433/' "$CFG"
line=$(grep -n 'listen: 84433' "$CFG" | cut -d: -f1)
out=$(con reload)
has "reload of a broken config: FILE:LINE: field: message" "$out" \
	"^$CFG:$line: spec\\.listeners\\[0\\]\\.listen: must be a port number 1-65535, got \"84433\""
has "reload of a broken config: refused, old generation serves" "$out" \
	'^reload refused: the configuration in service \(generation 1\) is unchanged'
out=$(con status)
has "status after the refused reload: still generation 1" "$out" 'config generation 1 '
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "the old config keeps serving after the refused reload" "$code" 200
loop_more 3

# a good config with one more policy: frontend may no longer POST
write_config "$CFG" <<'YAML'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-post, namespace: production}
spec:
  selector: {matchLabels: {app: backend-api}}
  action: DENY
  rules:
    - to: [{operation: {methods: ["POST"]}}]
YAML
out=$(con reload)
has "good reload: generation 2 in service" "$out" '^reload: generation 2 in service \(2 policies\)'
out=$(con status)
has "status after the good reload: generation 2" "$out" "config generation 2 \\($CFG\\)"
out=$(con "authz check --workload-namespace production --workload-label app=backend-api --principal cluster.local/ns/prod/sa/frontend --method POST --path /x")
expect_eq "authz check sees the reloaded policies" "$out" "DENY production/no-post"
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' -X POST -d x https://meshgate.test:8443/)
expect_eq "the reloaded policy is enforced (POST denied)" "$code" 403
loop_more 3
kill $LOOP_PID; wait $LOOP_PID 2>/dev/null; LOOP_PID=
# one snapshot: a curl the killed loop had started may still append a line
codes=$(cat "$W/loop.codes")
total=$(grep -c . <<<"$codes")
good=$(grep -c '^200$' <<<"$codes")
echo "# traffic loop during the reloads: $good of $total requests 200"
if [ "$total" -ge 5 ] && [ "$good" = "$total" ]; then ok "traffic kept succeeding through both reloads ($good/$total)"
else not_ok "traffic through the reloads: $good of $total 200 ($(sort <<<"$codes" | uniq -c | tr '\n' ' '))"; fi

# ---------------------------------------------------------------- drain, shutdown
cli_curl frontend -o "$W/slow2.out" -w '%{http_code}' https://meshgate.test:8443/slow/3000 >"$W/slow2.code" 2>&1 &
SLOW_PID=$!
for _ in $(seq 40); do
	con "show connections" | grep -q 'production/backend-api' && break
	sleep 0.1
done
out=$(con drain)
has "drain: listeners closed, the open connection will finish" "$out" \
	'^draining: listeners closed, new connections refused; 1 open connection will finish'
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/ 2>/dev/null)
expect_eq "drain: a new connection is refused" "$code" 000
out=$(con status)
has "status shows DRAINING" "$out" 'DRAINING'
wait $SLOW_PID; SLOW_PID=
expect_eq "drain: the open connection finished normally" "$(cat "$W/slow2.code")" 200
for _ in $(seq 50); do
	out=$(con status)
	grep -qE '^  connections +0 / ' <<<"$out" && break
	sleep 0.1
done
has "drain: the pool empties" "$out" '^  connections +0 / 4096 in use'
out=$(con "show counters")
has "show counters after the drain: no connection open" "$out" '^connections_open 0$'

out=$(con --until "shutting down (0 connections open)" shutdown)
has "shutdown: acknowledged" "$out" '^shutting down \(0 connections open\)'
rc=
for _ in $(seq 100); do kill -0 $MG_PID 2>/dev/null || break; sleep 0.1; done
wait $MG_PID; rc=$?; MG_PID=
expect_eq "shutdown: meshgate exits 0" "$rc" 0

# ---------------------------------------------------------------- stdin pipe
cp "$GOOD" "$CFG"
out=$(printf 'op3rator pass\nstatus\nshutdown\n' | timeout 60 "$MESHGATE" run --config "$CFG" 2>&1); rc=$?
expect_eq "pipe console: meshgate exits 0 after shutdown" "$rc" 0
has "pipe console: line mode asks for the password" "$out" '^password: '
has "pipe console: the password logs in" "$out" 'logged in'
if grep -q 'op3rator' <<<"$out"; then not_ok "pipe console: password not echoed"; else ok "pipe console: password not echoed"; fi
if grep -q 'meshgate> ' <<<"$out"; then not_ok "pipe console: no prompt in line mode"; else ok "pipe console: no prompt in line mode"; fi
HASH=""
write_config "$CFG" </dev/null
sed -i '/passwordHash: ""/d' "$CFG"
out=$(printf 'status\nshow listeners\nbogus\nshutdown\n' | timeout 60 "$MESHGATE" run --config "$CFG" 2>&1); rc=$?
expect_eq "pipe console without password: exits 0 after shutdown" "$rc" 0
has "pipe console: status" "$out" '(net0|port|link).*\bup\b'
has "pipe console: show listeners" "$out" "^backend +$MG_OUT:8443"
has "pipe console: unknown command" "$out" "^error: unknown command 'bogus'"
has "pipe console: shutdown" "$out" '^shutting down \(0 connections open\)'

# stdin is a terminal (the image's ttyS0 case): prompt, editing, terminal restored
cat >"$W/term_console.py" <<'EOF'
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
buf = b""
def expect(want, timeout=60):
    global buf
    end = time.time() + timeout
    while want not in buf:
        if time.time() > end:
            sys.exit("timeout waiting for %r; got %r" % (want, buf[-2000:]))
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    i = buf.index(want) + len(want)
    got, buf = buf[:i], buf[i:]
    return got
expect(b"meshgate> ")
lflag = termios.tcgetattr(fd)[3]
assert not (lflag & termios.ECHO) and not (lflag & termios.ICANON), "stdin not raw while running"
os.write(fd, b"stat\x7f\x7fatus\r")           # two backspaces: "status"
got = expect(b"\r\nmeshgate> ")
assert b"link up" in got, got
os.write(fd, b"shutdown\r")
expect(b"shutting down")
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
lflag = termios.tcgetattr(fd)[3]
assert (lflag & termios.ECHO) and (lflag & termios.ICANON), "terminal not restored"
print("tty ok")
EOF
if out=$(timeout 90 python3 "$W/term_console.py" "$MESHGATE" run --config "$CFG" 2>&1); then
	ok "stdin terminal: prompt, line editing, status, shutdown exits 0, terminal restored"
else
	not_ok "stdin terminal console"; echo "$out" | tail -5 | sed 's/^/#   /'
fi

# a malformed password hash is a FILE:LINE error, at start and on reload
sed 's/^  dpdk:/  console: {passwordHash: "pbkdf2-sha256$1000$bad$bad"}\n  dpdk:/' "$CFG" >"$W/badhash.yaml"
out=$("$MESHGATE" config validate --config "$W/badhash.yaml" 2>&1); rc=$?
expect_eq "bad password hash: config validate exits 2" "$rc" 2
has "bad password hash: FILE:LINE: spec.console.passwordHash" "$out" \
	"^$W/badhash.yaml:[0-9]+: spec\\.console\\.passwordHash: "
tap_exit
