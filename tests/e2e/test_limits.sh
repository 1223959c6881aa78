#!/usr/bin/env bash
# Limits hold under hostile or excess load, and nothing already running is
# lost: a peer that never finishes its handshake is dropped at the handshake
# timeout and counted; an idle connection is closed at the idle timeout; a
# full connection pool refuses new connections and counts them while the
# connections it holds keep working; once they end, service resumes.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.sh"
trap 'e2e_teardown; exec 7>&- 2>/dev/null' EXIT
trap "exit 130" INT TERM
e2e_setup
e2e_start_upstream || exit 1
export E2E_EXTRA_SPEC='  limits: {maxConnections: 3, handshakeTimeoutMs: 1500, idleTimeoutMs: 4000}'
cfg=$(e2e_write_config </dev/null)
e2e_start_meshgate_console "$cfg" || exit 1
check "meshgate starts with a 3-connection pool" grep -q 'pool 3 connections' "$E2E_WORK/meshgate.log"

# --- a peer that connects and never speaks: dropped at the handshake timeout
t0=$(date +%s%N)
ip netns exec $NS_CLI bash -c "exec 3<>/dev/tcp/$MG_OUT/9444; timeout 10 cat <&3 >/dev/null" 2>/dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "silent peer closed by the handshake timeout (after ${ms} ms, limit 1500)" test "$ms" -ge 1400 -a "$ms" -lt 9000
expect_eq "handshake timeout counted" "$(e2e_counter 'refused{reason=handshake_timeout}')" 1

# --- pool full: three streams hold the pool, a fourth connection is refused
tc=$TESTS_TOP/tests/e2e/tlsclient.py
pids=()
for i in 1 2 3; do
	python3 "$tc" --netns $NS_CLI --host $MG_OUT --port 9444 --pki "$E2E_PKI" --id frontend --stream 5 >"$E2E_WORK/hold.$i" 2>&1 &
	pids+=($!)
done
sleep 1.5
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/ 2>/dev/null)
check "fourth connection refused while the pool is full (got '$code')" test "$code" != 200
n=$(e2e_counter 'refused{reason=pool_exhausted}')
check "pool exhaustion counted ($n)" test "${n:-0}" -ge 1
wait "${pids[@]}"
held=$(cat "$E2E_WORK"/hold.* | grep -c '^ok ')
expect_eq "the three connections in the pool kept working, intact" "$held" 3
sleep 0.5
code=$(cli_curl frontend -o /dev/null -w '%{http_code}' https://meshgate.test:8443/)
expect_eq "service resumes once the pool has room" "$code" 200

# --- idle timeout: an mTLS connection that goes quiet is closed
t0=$(date +%s%N)
ip netns exec $NS_CLI python3 - "$MG_OUT" "$E2E_PKI" <<'PY' >"$E2E_WORK/idle.out" 2>&1
import socket, ssl, sys
host, pki = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/frontend.pem", pki + "/frontend.key")
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection((host, 9444), timeout=12))
s.sendall(b"ping")
assert s.recv(4) == b"ping"
try:
    print("closed" if s.recv(1) == b"" else "data")
except (ssl.SSLError, OSError) as e:
    print("closed", e)
PY
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "idle connection was closed by meshgate" grep -q '^closed' "$E2E_WORK/idle.out"
check "idle connection closed by the idle timeout (after ${ms} ms, limit 4000)" test "$ms" -ge 3500 -a "$ms" -lt 8500
expect_eq "idle timeout counted" "$(e2e_counter 'refused{reason=idle_timeout}')" 1
check "meshgate still running" kill -0 $E2E_MG_PID
tap_exit
