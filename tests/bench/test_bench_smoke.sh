#!/usr/bin/env bash
# The benchmark harness works: a tiny run of tests/bench/run.sh (--smoke: one
# round, one second per figure, 100 idle connections) against meshgate, nginx
# and HAProxy. Fails only if the harness breaks (a gateway does not start, a
# mode returns no figures, the table is not printed), never on speed.
set -u
. "$(dirname "$0")/../lib.sh"
cd "$TESTS_TOP"
make --no-print-directory -s build/bench/mgbench >/dev/null || { not_ok "build mgbench"; tap_exit; }
ok "build mgbench"
gws="meshgate nginx"
command -v haproxy >/dev/null && gws="$gws haproxy"
out=$(bash tests/bench/run.sh --smoke --gateways "$gws" 2>&1)
rc=$?
res=$TESTS_TOP/build/bench-smoke/results.tsv
echo "$out" | sed 's/^/# /' | grep -E '^# (\||#   .*result|# gateway|# missing)' | head -60
for gw in $gws; do
	for fig in handshake.rate handshake.cpu_us_per_op keepalive.rate keepalive512.rate connreq.rate latency.p50_us latency.p99_us \
		latency.max_us latency.cpu_pct bulk.mbps idle.cpu_pct mem.pss_mb idleconns.kb_per_conn; do
		v=$(awk -F'\t' -v g="$gw" -v k="$fig" '$1 == g && $3 == k {print $4; exit}' "$res" 2>/dev/null)
		if [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]]; then ok "$gw $fig = $v"
		else not_ok "$gw $fig: no figure (got '$v')"; fi
	done
	# a stray reset is not a harness failure; a mode that mostly fails is
	for m in handshake keepalive keepalive512 connreq latency bulk; do
		read -r e r < <(awk -F'\t' -v g="$gw" -v m="$m" '$1 == g && $3 == m ".errors" {e = $4}
			$1 == g && $3 == m ".rate" {r = $4} END {print e + 0, r + 0}' "$res" 2>/dev/null)
		if awk -v e="$e" -v r="$r" 'BEGIN {exit !(r > 0 && e <= r)}'; then ok "$gw $m: $e client errors"
		else not_ok "$gw $m: $e client errors at $r ops/s"; fi
	done
done
if grep -q '^| full mTLS handshakes/s' <<<"$out" && grep -q 'meshgate vs best peer' <<<"$out"; then
	ok "table of medians and ratios printed"
else
	not_ok "table of medians and ratios printed"
fi
expect_eq "run.sh --smoke exit status" "$rc" 0
tap_exit
