# End-to-end topology (source it after tests/lib.sh):
#
#   netns mge-cli                 root namespace                 netns mge-up
#   198.18.0.1 mge-c0 <-veth-> mge-c1 [meshgate DPDK af_packet]
#                                 [meshgate DPDK af_packet] mge-u1 <-veth-> mge-u0 198.18.1.10
#                                 outside 198.18.0.2 / inside 198.18.1.2
#
# E2E_DRIVER (default net_af_packet) is the DPDK driver of meshgate's two ports.
# Everything is created here and deleted by e2e_teardown (trap). Addresses are
# in 198.18.0.0/15 only; no routes leave the machine.
# One e2e topology per machine at a time (the names are fixed): scripts from
# other checkouts on the same machine wait here instead of tearing ours down.
exec 9>/run/lock/meshgate-e2e.lock
flock 9

E2E_PKI=$TESTS_TOP/build/pki
E2E_WORK=${E2E_WORK:-$TESTS_TOP/build/e2e}
E2E_MG_PID=
E2E_UP_PID=
NS_CLI=mge-cli
NS_UP=mge-up
MG_OUT=198.18.0.2
MG_IN=198.18.1.2
UP_IP=198.18.1.10

e2e_teardown() {
	[ -n "$E2E_MG_PID" ] && kill "$E2E_MG_PID" 2>/dev/null && wait "$E2E_MG_PID" 2>/dev/null
	[ -n "$E2E_UP_PID" ] && kill "$E2E_UP_PID" 2>/dev/null
	[ -n "${E2E_NGINX_PID:-}" ] && kill "$E2E_NGINX_PID" 2>/dev/null
	topo_teardown mge
	E2E_MG_PID= E2E_UP_PID= E2E_NGINX_PID=
	return 0
}

e2e_setup() {
	e2e_teardown
	mkdir -p "$E2E_WORK"
	bash "$TESTS_TOP/tests/pki/gen.sh" "$E2E_PKI" >/dev/null
	topo_setup mge 198.18.0.1 $UP_IP
	# E2E_MTU (jumbo frames): the namespace ends; meshgate sets its own ends
	# from the ports' mtu (e2e_write_config)
	if [ -n "${E2E_MTU:-}" ]; then
		ip -n $NS_CLI link set mge-c0 mtu "$E2E_MTU"
		ip -n $NS_UP link set mge-u0 mtu "$E2E_MTU"
	fi
}

e2e_start_upstream() {
	ip netns exec $NS_UP python3 "$TESTS_TOP/tests/e2e/upstream.py" $UP_IP >"$E2E_WORK/upstream.log" 2>&1 &
	E2E_UP_PID=$!
	for _ in $(seq 200); do grep -q ready "$E2E_WORK/upstream.log" 2>/dev/null && return 0; sleep 0.1; done
	echo "# upstream did not start"; cat "$E2E_WORK/upstream.log"; return 1
}

# e2e_start_nginx: a real nginx in the upstream namespace on $UP_IP:8081
# serving $E2E_WORK/www (keep-alive, HEAD, chunked request bodies).
E2E_NGINX_PID=
e2e_start_nginx() {
	local d=$E2E_WORK/nginx
	mkdir -p "$d/logs" "$E2E_WORK/www"
	cat >"$d/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
error_log $d/logs/error.log;
pid $d/nginx.pid;
events { worker_connections 256; }
http {
  access_log $d/logs/access.log;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fcgi;
  uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  keepalive_requests 1000;
  server {
    listen $UP_IP:8081;
    root $E2E_WORK/www;
    location /echo-headers { return 200 "xfcc=\$http_x_forwarded_client_cert proto=\$http_x_forwarded_proto\\n"; }
  }
}
NGX
	ip netns exec $NS_UP nginx -c "$d/nginx.conf" -p "$d" >"$d/logs/stdout" 2>&1 &
	E2E_NGINX_PID=$!
	for _ in $(seq 50); do
		ip netns exec $NS_UP bash -c "exec 3<>/dev/tcp/$UP_IP/8081" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# nginx did not start"; cat "$d/logs/error.log" "$d/logs/stdout"; return 1
}

# e2e_start_meshgate CONFIG [extra args]: starts meshgate, waits for "ready".
e2e_start_meshgate() {
	local cfg=$1; shift
	"$MESHGATE" run --config "$cfg" --console none "$@" >"$E2E_WORK/meshgate.log" 2>&1 &
	E2E_MG_PID=$!
	e2e_wait_ready
}

# e2e_wait_ready: until meshgate ($E2E_MG_PID) says ready; 1 if it died or hung.
e2e_wait_ready() {
	for _ in $(seq 300); do
		grep -q 'meshgate: ready' "$E2E_WORK/meshgate.log" 2>/dev/null && return 0
		kill -0 $E2E_MG_PID 2>/dev/null || break
		sleep 0.1
	done
	echo "# meshgate did not start:"; sed 's/^/#   /' "$E2E_WORK/meshgate.log"; return 1
}

# Writes the standard appliance config to $E2E_WORK/edge.yaml; extra YAML
# documents (policies) are appended from stdin.
e2e_write_config() {
	local f=$E2E_WORK/edge.yaml
	cat >"$f" <<YAML
apiVersion: meshgate.dev/v1alpha1
kind: Appliance
metadata: {name: edge-e2e}
spec:
  trustDomain: cluster.local
  identity: {certificateChain: $E2E_PKI/gateway-chain.pem, privateKey: $E2E_PKI/gateway.key}
  trustBundles:
    - {trustDomain: cluster.local, roots: $E2E_PKI/ca.pem}
    - {trustDomain: other.example, roots: $E2E_PKI/otherdomain-ca.pem}
  dpdk: {args: ["--no-huge", "-m", "256"]}
  ports:
    - {name: outside, device: "${E2E_DRIVER:-net_af_packet}0,iface=mge-c1", address: $MG_OUT/24${E2E_MTU:+, mtu: $E2E_MTU}}
    - {name: inside, device: "${E2E_DRIVER:-net_af_packet}1,iface=mge-u1", address: $MG_IN/24${E2E_MTU:+, mtu: $E2E_MTU}}
  services:
    - {name: backend-api, namespace: production, labels: {app: backend-api}, endpoints: ["$UP_IP:8080"]}
    - {name: hasher, namespace: production, labels: {app: hasher}, endpoints: ["$UP_IP:9000"]}
    - {name: echo, namespace: production, labels: {app: echo}, endpoints: ["$UP_IP:9001"]}
    - {name: nowhere, namespace: production, labels: {app: nowhere}, endpoints: ["$UP_IP:9999"]}
${E2E_EXTRA_SERVICES:-}
  listeners:
    - {name: backend, port: outside, listen: 8443, protocol: http, service: backend-api}
    - {name: hasher, port: outside, listen: 9443, protocol: tcp, service: hasher}
    - {name: echo, port: outside, listen: 9444, protocol: tcp, service: echo}
    - {name: nowhere-http, port: outside, listen: 8444, protocol: http, service: nowhere}
${E2E_EXTRA_LISTENERS:-}
${E2E_EXTRA_SPEC:-}
YAML
	cat >>"$f"
	echo "$f"
}

# cli_curl IDENTITY [curl args...]: curl from the client namespace with the
# named client certificate ("none" for no certificate).
cli_curl() {
	local id=$1; shift
	local cert=()
	[ "$id" != none ] && cert=(--cert "$E2E_PKI/$id.pem" --key "$E2E_PKI/$id.key")
	ip netns exec $NS_CLI curl -sS --max-time 30 --cacert "$E2E_PKI/ca.pem" "${cert[@]}" \
		--resolve meshgate.test:8443:$MG_OUT --resolve meshgate.test:8444:$MG_OUT "$@"
}

# blob_sha256 N: the sha256 the upstream's GET /blob/N body must have
# (byte i is i % 251).
blob_sha256() {
	python3 -c "import hashlib;p=bytes(i%251 for i in range(251*4096));n=$1;h=hashlib.sha256();s=0
while s<n: c=p[:min(len(p),n-s)];h.update(c);s+=len(c)
print(h.hexdigest())"
}

# concurrent_gets N: N curl processes at once, each its own connection and
# handshake as prod/sa/frontend; prints how many got 200 with the upstream's
# body.
concurrent_gets() {
	local i okc=0 pids=()
	rm -f "$E2E_WORK"/conc.*
	for i in $(seq "$1"); do
		cli_curl frontend -o "$E2E_WORK/conc.$i" -w '%{http_code}' "https://meshgate.test:8443/?c=$i" \
			>"$E2E_WORK/conc.$i.code" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq "$1"); do
		[ "$(cat "$E2E_WORK/conc.$i.code")" = 200 ] && grep -q "hello from upstream" "$E2E_WORK/conc.$i" && okc=$((okc + 1))
	done
	echo "$okc"
}

# mg_cpu_pct SECONDS: meshgate's CPU use over the next SECONDS, in percent of
# a core (user + system, whole percent).
mg_cpu_pct() {
	local t0 t1
	t0=$(awk '{print $14 + $15}' /proc/$E2E_MG_PID/stat)
	sleep "$1"
	t1=$(awk '{print $14 + $15}' /proc/$E2E_MG_PID/stat)
	echo $(( (t1 - t0) * 100 / $(getconf CLK_TCK) / $1 ))
}

# avg_rx NS DEV CMD...: runs CMD and prints the average bytes per packet
# that DEV in namespace NS received meanwhile (a kernel-segmented frame
# counts once per segment, a frame taken whole counts once).
avg_rx() {
	local ns=$1 dev=$2; shift 2
	local st=/sys/class/net/$dev/statistics b0 p0 b1 p1
	b0=$(ip netns exec "$ns" cat $st/rx_bytes) p0=$(ip netns exec "$ns" cat $st/rx_packets)
	"$@"
	b1=$(ip netns exec "$ns" cat $st/rx_bytes) p1=$(ip netns exec "$ns" cat $st/rx_packets)
	echo $(((b1 - b0) / (p1 - p0 > 0 ? p1 - p0 : 1)))
}

# cli_sclient PORT IDENTITY: openssl s_client handshake output (stdin closed).
cli_sclient() {
	local port=$1 id=$2
	local cert=()
	[ "$id" != none ] && cert=(-cert "$E2E_PKI/$id.pem" -key "$E2E_PKI/$id.key")
	echo | timeout 10 ip netns exec $NS_CLI openssl s_client -connect $MG_OUT:$port \
		-CAfile "$E2E_PKI/ca.pem" "${cert[@]}" 2>&1
}

# e2e_start_meshgate_console CONFIG: like e2e_start_meshgate, with the serial
# console on stdin fed from a FIFO (fd 7) so e2e_console can drive it.
e2e_start_meshgate_console() {
	local cfg=$1 fifo=$E2E_WORK/console.in
	rm -f "$fifo"; mkfifo "$fifo"
	"$MESHGATE" run --config "$cfg" --console stdio <"$fifo" >"$E2E_WORK/meshgate.log" 2>&1 &
	E2E_MG_PID=$!
	exec 7>"$fifo"
	e2e_wait_ready
}

# e2e_console CMD: what the console printed for one command.
e2e_console() {
	local mark="__end_$RANDOM" before
	before=$(wc -c <"$E2E_WORK/meshgate.log")
	echo "$1" >&7
	echo "$mark" >&7
	for _ in $(seq 50); do
		tail -c +"$((before + 1))" "$E2E_WORK/meshgate.log" | grep -q "$mark" && break
		sleep 0.1
	done
	tail -c +"$((before + 1))" "$E2E_WORK/meshgate.log"
}

# e2e_counter NAME: a value from the console's `show counters`.
e2e_counter() {
	e2e_console "show counters" | grep -F "$1 " | grep -Eo '[0-9]+$' | tail -1
}
