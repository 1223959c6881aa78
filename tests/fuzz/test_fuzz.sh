#!/usr/bin/env bash
# Every parser's fuzz target, built with AddressSanitizer and UBSan and run
# by tests/fuzz/mutate.c over its seed corpus plus a fixed number of
# deterministic mutants (FUZZ_ITERATIONS, default 50000; FUZZ_SEED changes
# the sequence). A crash, sanitizer report or failed invariant fails the
# test and leaves the input in build/fuzz-suite/<target>/fuzz-crash.bin.
set -u
. "$(dirname "$0")/../lib.sh"
top=$TESTS_TOP
out=$top/build/fuzz-suite
mkdir -p "$out"
n=${FUZZ_ITERATIONS:-50000}
seed=${FUZZ_SEED:-1}
lwip_inc=$(ls -d "$top"/build/lwip/lwip-*/src/include 2>/dev/null | head -1)
CFLAGS_F=(-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
	-std=gnu11 -D_GNU_SOURCE -I"$top" -I"$top/net" -I"$lwip_inc" -include "$top/appliance/banned.h")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1

# build NAME SOURCES... -- LIBS...
build() {
	local name=$1; shift
	local srcs=() libs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do srcs+=("$top/$1"); shift; done
	[ $# -gt 0 ] && shift
	libs=("$@")
	mkdir -p "$out/$name"
	gcc "${CFLAGS_F[@]}" -o "$out/$name/$name" "$top/tests/fuzz/mutate.c" "${srcs[@]}" "${libs[@]}" \
		>"$out/$name/build.log" 2>&1
}

# run NAME CORPUS...
run() {
	local name=$1; shift
	if ! build_ok "$name"; then return; fi
	if (cd "$out/$name" && ./"$name" -n "$n" -s "$seed" "$@") >"$out/$name/run.log" 2>&1; then
		ok "fuzz $name: $(tail -1 "$out/$name/run.log" | sed 's/^.*: //')"
	else
		not_ok "fuzz $name crashed (input: $out/$name/fuzz-crash.bin)"
		sed 's/^/#   /' "$out/$name/run.log" | head -40
	fi
}
build_ok() {
	if [ -x "$out/$1/$1" ]; then return 0; fi
	not_ok "fuzz $1 builds"; sed 's/^/#   /' "$out/$1/build.log" | head -20; return 1
}

# seeds: configs and policies from the unit-test data; certificates as DER
bash "$top/tests/pki/gen.sh" "$top/build/pki" >/dev/null
mkdir -p "$out/x509-seeds"
for pem in "$top"/build/pki/*.pem; do
	openssl x509 -in "$pem" -outform DER -out "$out/x509-seeds/$(basename "$pem" .pem).der" 2>/dev/null
done

rm -f "$out"/fuzz_*/fuzz_*
# the loader and every section parser it calls (config_*.c, *_config.c)
cfg_srcs=$(cd "$top" && ls appliance/config*.c appliance/*_config.c 2>/dev/null | grep -v config_cli.c)
build fuzz_config tests/fuzz/fuzz_config.c $cfg_srcs appliance/yaml_node.c \
	appliance/policy_load.c appliance/policy.c appliance/console_auth.c appliance/egress.c -- -lyaml -lcrypto
run fuzz_config "$top/tests/data/config" "$top/tests/data/policy" "$top/tests/data/egress"
build fuzz_http tests/fuzz/fuzz_http.c appliance/http.c -- -DFUZZ_HTTP_NO_MAIN -lhttp_parser
run fuzz_http "$top/tests/data/http"
build fuzz_x509 tests/fuzz/fuzz_x509.c tls/x509.c --
run fuzz_x509 "$out/x509-seeds"
build fuzz_dns tests/fuzz/fuzz_dns.c net/dns.c -- -DFUZZ_DNS_NO_MAIN
run fuzz_dns "$top/tests/data/dns"
build fuzz_sni tests/fuzz/fuzz_sni.c appliance/egress.c -- -DFUZZ_SNI_NO_MAIN
run fuzz_sni "$top/tests/data/sni"
tap_exit
