# Benchmark topology (source after tests/lib.sh). Everything is created here
# and deleted by bench_teardown; addresses are in 198.18.24.0/24 and
# 198.18.25.0/24 only; no route leaves the machine.
#
#   netns mgb-cli                 netns mgb-gw                        netns mgb-up
#   198.18.24.1 mgb-c0 <-veth-> mgb-c1  [gateway under test]  mgb-u1 <-veth-> mgb-u0 198.18.25.10
#                                 meshgate: DPDK af_packet on mgb-c1/mgb-u1,
#                                           lwIP 198.18.24.2 / 198.18.25.2
#                                 nginx, HAProxy: kernel TCP 198.18.24.3 / 198.18.25.3
#
# One gateway runs at a time, pinned to CPU $BENCH_GW_CPU; the load generator
# (mgbench) and the upstream (nginx, plain HTTP) share CPU $BENCH_CLIENT_CPU.
# The namespace side of each veth keeps a veth's offloads (64 KB frames,
# checksums left to the kernel) unless BENCH_PEER_OFFLOAD=off; the kernel
# peers see the very same links.
BENCH_WORK=${BENCH_WORK:-$TESTS_TOP/build/bench}
BENCH_PKI=$TESTS_TOP/build/pki
BENCH_GW_CPU=${BENCH_GW_CPU:-1}
BENCH_MTU=${BENCH_MTU:-1500}
BENCH_PEER_OFFLOAD=${BENCH_PEER_OFFLOAD:-on}
BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
# One bench topology per machine at a time (fixed names): a second run (another
# checkout's suite, say) waits here instead of tearing this one down.
exec 8>/run/lock/meshgate-bench.lock
flock 8

NS_CLI=mgb-cli
NS_GW=mgb-gw
NS_UP=mgb-up
MGB_CLI_IP=198.18.24.1
MGB_MG_IP=198.18.24.2
MGB_MG_IN=198.18.25.2
MGB_K_IP=198.18.24.3
MGB_K_IN=198.18.25.3
MGB_UP_IP=198.18.25.10
BENCH_UP_PID=
BENCH_GW_PID=

bench_stop_gateway() {
	if [ -n "$BENCH_GW_PID" ]; then
		kill "$BENCH_GW_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$BENCH_GW_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$BENCH_GW_PID" 2>/dev/null
		wait "$BENCH_GW_PID" 2>/dev/null
	fi
	BENCH_GW_PID=
	ip netns pids $NS_GW 2>/dev/null | xargs -r kill 2>/dev/null
	return 0
}

bench_teardown() {
	bench_stop_gateway
	[ -n "$BENCH_UP_PID" ] && kill "$BENCH_UP_PID" 2>/dev/null && wait "$BENCH_UP_PID" 2>/dev/null
	BENCH_UP_PID=
	for ns in $NS_CLI $NS_GW $NS_UP; do
		ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
	done
	sleep 0.2
	for ns in $NS_CLI $NS_GW $NS_UP; do
		ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del $ns 2>/dev/null
	done
	return 0
}

bench_setup() {
	bench_teardown
	# 10,000 idle connections: the gateways (HAProxy needs 2 fds per
	# connection and checks at start) and the client need many descriptors.
	ulimit -Hn 262144 2>/dev/null; ulimit -n "$(ulimit -Hn)"
	mkdir -p "$BENCH_WORK"
	bash "$TESTS_TOP/tests/pki/gen.sh" "$BENCH_PKI" >/dev/null || return 1
	ip netns add $NS_CLI && ip netns add $NS_GW && ip netns add $NS_UP || return 1
	ip link add mgb-c1 netns $NS_GW type veth peer name mgb-c0 netns $NS_CLI || return 1
	ip link add mgb-u1 netns $NS_GW type veth peer name mgb-u0 netns $NS_UP || return 1
	for ns in $NS_CLI $NS_GW $NS_UP; do ip -n $ns link set lo up; done
	ip netns exec $NS_GW sysctl -qw net.ipv4.ip_forward=0
	ip netns exec $NS_GW sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip -n $NS_GW addr add $MGB_K_IP/24 dev mgb-c1
	ip -n $NS_GW addr add $MGB_K_IN/24 dev mgb-u1
	ip -n $NS_GW link set mgb-c1 up
	ip -n $NS_GW link set mgb-u1 up
	ip -n $NS_CLI addr add $MGB_CLI_IP/24 dev mgb-c0
	ip -n $NS_CLI link set mgb-c0 up
	ip -n $NS_UP addr add $MGB_UP_IP/24 dev mgb-u0
	ip -n $NS_UP link set mgb-u0 up
	# --mtu: every end of both veths (jumbo frames for all gateways alike)
	ip -n $NS_GW link set mgb-c1 mtu "$BENCH_MTU"
	ip -n $NS_GW link set mgb-u1 mtu "$BENCH_MTU"
	ip -n $NS_CLI link set mgb-c0 mtu "$BENCH_MTU"
	ip -n $NS_UP link set mgb-u0 mtu "$BENCH_MTU"
	# --peer-offload off: the client's and upstream's ends send full
	# checksums in wire-sized segments (what DPDK's af_packet and AF_XDP
	# drivers need); on: a veth's defaults, 64 KB frames with checksums
	# left undone (meshgate's own receive ring takes them)
	if [ "$BENCH_PEER_OFFLOAD" = off ]; then
		ip netns exec $NS_CLI ethtool -K mgb-c0 tx off tso off gso off >/dev/null 2>&1
		ip netns exec $NS_UP ethtool -K mgb-u0 tx off tso off gso off >/dev/null 2>&1
	fi
	# Many short connections from one client address: a wide port range.
	ip netns exec $NS_CLI sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
	ip netns exec $NS_GW sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
	ip netns exec $NS_GW sysctl -qw net.core.somaxconn=4096
	ip netns exec $NS_GW sysctl -qw net.ipv4.tcp_max_syn_backlog=4096
	cat "$BENCH_PKI/gateway-chain.pem" "$BENCH_PKI/gateway.key" >"$BENCH_WORK/gateway-combined.pem"
	chmod 600 "$BENCH_WORK/gateway-combined.pem"
}

# The upstream: nginx (plain HTTP, one worker) on the client CPU.
#   /      "ok\n" (3 bytes)       /bulk  a $BENCH_BULK_MB MB file (sendfile)
bench_start_upstream() {
	local d=$BENCH_WORK/upstream
	mkdir -p "$d/logs" "$d/www"
	if [ ! -s "$d/www/bulk" ] || [ "$(stat -c %s "$d/www/bulk")" != $((BENCH_BULK_MB << 20)) ]; then
		head -c $((BENCH_BULK_MB << 20)) /dev/urandom >"$d/www/bulk"
	fi
	chmod -R a+rX "$d/www"
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
error_log $d/logs/error.log warn;
pid $d/nginx.pid;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path $d/tmp-body; proxy_temp_path $d/tmp-proxy;
  fastcgi_temp_path $d/tmp-fcgi; uwsgi_temp_path $d/tmp-uwsgi; scgi_temp_path $d/tmp-scgi;
  sendfile on; tcp_nopush on;
  keepalive_requests 1000000; keepalive_timeout 600s;
  server {
    listen $MGB_UP_IP:8080 backlog=4096;
    location = / { default_type text/plain; return 200 "ok\n"; }
    location = /bulk { default_type application/octet-stream; alias $d/www/bulk; }
  }
}
EOF
	ip netns exec $NS_UP taskset -c "$BENCH_CLIENT_CPU" nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' \
		>"$d/logs/stdout.log" 2>&1 &
	BENCH_UP_PID=$!
	for _ in $(seq 50); do
		ip netns exec $NS_UP bash -c "exec 3<>/dev/tcp/$MGB_UP_IP/8080" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# upstream nginx did not start"; cat "$d/logs/"*; return 1
}

# Writes meshgate's configuration, its ports on DPDK driver $1 (default
# net_af_packet); echoes the file.
bench_config_meshgate() {
	local f=$BENCH_WORK/meshgate.yaml drv=${1:-net_af_packet} opts=
	[ "$drv" = net_af_packet ] && opts=${BENCH_AFP_OPTS:-}
	[ "$drv" = net_af_xdp ] && opts=${BENCH_XDP_OPTS:-}
	# only when not the default, so that older builds (meshgate-VARIANT) read it
	local MG_MTU_YAML=
	[ "$BENCH_MTU" != 1500 ] && MG_MTU_YAML=", mtu: $BENCH_MTU"
	cat >"$f" <<YAML
apiVersion: meshgate.dev/v1alpha1
kind: Appliance
metadata: {name: edge-bench}
spec:
  trustDomain: cluster.local
  identity: {certificateChain: $BENCH_PKI/gateway-chain.pem, privateKey: $BENCH_PKI/gateway.key}
  trustBundles:
    - {trustDomain: cluster.local, roots: $BENCH_PKI/ca.pem}
  dpdk: {args: ["--no-huge", "-m", "${BENCH_MG_MEM_MB:-256}"]}
  ports:
    - {name: outside, device: "${drv}0,iface=mgb-c1$opts", address: $MGB_MG_IP/24$MG_MTU_YAML}
    - {name: inside, device: "${drv}1,iface=mgb-u1$opts", address: $MGB_MG_IN/24$MG_MTU_YAML}
  services:
    - {name: upstream, namespace: bench, labels: {app: upstream}, endpoints: ["$MGB_UP_IP:8080"]}
  listeners:
    - {name: bench, port: outside, listen: 8443, protocol: http, service: upstream}
  limits: {maxConnections: $((BENCH_IDLE_CONNS + 2048)), idleTimeoutMs: 600000}
YAML
	echo "$f"
}

bench_config_nginx() {
	local d=$BENCH_WORK/nginx-gw
	mkdir -p "$d/logs"
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
error_log $d/logs/error.log warn;
pid $d/nginx.pid;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
  access_log $d/logs/access.log combined buffer=64k flush=1s;
  client_body_temp_path $d/tmp-body; proxy_temp_path $d/tmp-proxy;
  fastcgi_temp_path $d/tmp-fcgi; uwsgi_temp_path $d/tmp-uwsgi; scgi_temp_path $d/tmp-scgi;
  keepalive_requests 1000000; keepalive_timeout 600s;
  upstream up { server $MGB_UP_IP:8080; keepalive 64; }
  server {
    listen $MGB_K_IP:8443 ssl backlog=4096;
    ssl_certificate $BENCH_PKI/gateway-chain.pem;
    ssl_certificate_key $BENCH_PKI/gateway.key;
    ssl_client_certificate $BENCH_PKI/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1;
    ssl_session_cache shared:SSL:10m; ssl_session_tickets off;  # resumption by session ID, as meshgate
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
	echo "$d/nginx.conf"
}

bench_haproxy_maxconn() {
	local cap=$((($(ulimit -Hn) - 40) / 2))
	local want=$((BENCH_IDLE_CONNS + 100))
	echo $((want < cap ? want : cap))
}

bench_config_haproxy() {
	local d=$BENCH_WORK/haproxy-gw
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
global
  nbthread 1
  # HAProxy reserves two descriptors per connection: with this machine's
  # hard fd limit (20,000, no CAP_SYS_RESOURCE) it holds at most ~9,990.
  maxconn $(bench_haproxy_maxconn)
  tune.ssl.default-dh-param 2048
  ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2 no-tls-tickets
  ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305
  ssl-default-bind-curves X25519:P-256
  tune.ssl.cachesize 20000
defaults
  mode http
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
  option http-keep-alive
  http-reuse always
frontend fe
  bind $MGB_K_IP:8443 ssl crt $BENCH_WORK/gateway-combined.pem ca-file $BENCH_PKI/ca.pem verify required
  default_backend be
backend be
  server up $MGB_UP_IP:8080
EOF
	echo "$d/haproxy.cfg"
}

# bench_start_gateway NAME: starts it in mgb-gw pinned to one core; sets
# BENCH_GW_PID and BENCH_GW_IP. Returns 1 if it does not come up.
bench_start_gateway() {
	local name=$1 cfg log=$BENCH_WORK/$1.log
	case $name in
	meshgate*)
		# "meshgate" is the build under test; "meshgate-VARIANT" runs the
		# binary build/bench/meshgate-VARIANT (e.g. a TLS_EC=bearssl build
		# saved for a before/after comparison in the same run); a suffix
		# "@DRIVER" puts its ports on DPDK's net_DRIVER instead of
		# net_af_packet (meshgate@af_xdp).
		local base=${name%@*} drv=net_af_packet bin=$MESHGATE
		[ "$base" != "$name" ] && drv=net_${name#*@}
		[ "$base" != meshgate ] && bin=$TESTS_TOP/build/bench/$base
		[ -x "$bin" ] || { echo "# $bin missing"; return 1; }
		cfg=$(bench_config_meshgate "$drv")
		# shellcheck disable=SC2086
		ip netns exec $NS_GW taskset -c "$BENCH_GW_CPU" "$bin" run --config "$cfg" --console none \
			${MG_ARGS:-} >"$log" 2>&1 &
		BENCH_GW_PID=$! BENCH_GW_IP=$MGB_MG_IP
		;;
	nginx)
		cfg=$(bench_config_nginx)
		ip netns exec $NS_GW taskset -c "$BENCH_GW_CPU" nginx -p "$BENCH_WORK/nginx-gw" -c "$cfg" \
			-g 'daemon off;' >"$log" 2>&1 &
		BENCH_GW_PID=$! BENCH_GW_IP=$MGB_K_IP
		;;
	haproxy)
		cfg=$(bench_config_haproxy)
		ip netns exec $NS_GW taskset -c "$BENCH_GW_CPU" haproxy -db -f "$cfg" >"$log" 2>&1 &
		BENCH_GW_PID=$! BENCH_GW_IP=$MGB_K_IP
		;;
	*) echo "# unknown gateway $name"; return 1 ;;
	esac
	for _ in $(seq 100); do
		kill -0 "$BENCH_GW_PID" 2>/dev/null || break
		if ip netns exec $NS_CLI bash -c "exec 3<>/dev/tcp/$BENCH_GW_IP/8443" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "# gateway $name did not start:"; sed 's/^/#   /' "$log" | tail -20
	return 1
}

# PIDs of the gateway: the process `ip netns exec` became, and its children
# (nginx workers).
bench_gw_pids() {
	local p=$BENCH_GW_PID
	echo "$p"
	pgrep -P "$p" 2>/dev/null
}

# CPU ticks (user+system) of the gateway's processes, all threads.
bench_gw_ticks() {
	local t=0 p s
	for p in $(bench_gw_pids); do
		s=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + ${s% *} + ${s#* }))
	done
	echo $t
}

# Proportional set size (kB) of the gateway's processes: shared pages are
# counted once across nginx's master and worker.
bench_gw_pss_kb() {
	local t=0 p v
	for p in $(bench_gw_pids); do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
		t=$((t + ${v:-0}))
	done
	echo $t
}

# mgbench MODE [args]: the load generator in the client namespace, on the
# client CPU, with the frontend client certificate.
bench_client() {
	local mode=$1; shift
	ip netns exec $NS_CLI taskset -c "$BENCH_CLIENT_CPU" "$MGBENCH" "$mode" --host "$BENCH_GW_IP" \
		--port 8443 --sni meshgate.test --ca "$BENCH_PKI/ca.pem" \
		--cert "$BENCH_PKI/frontend.pem" --key "$BENCH_PKI/frontend.key" "$@"
}
