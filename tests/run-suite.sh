#!/usr/bin/env bash
# The whole test suite, as `make test` runs it.
#
# - every cmocka unit binary build/tests/test_* (run from tests/ so data files
#   under tests/data resolve), counted by its own PASSED/FAILED lines;
# - every script tests/*/test_*.sh, which prints TAP-style lines
#   "ok - NAME" / "not ok - NAME" (tests/lib.sh helps) and exits non-zero on
#   any failure.
# Prints one closing line "N passed, N failed" and exits non-zero on failure.
set -u
cd "$(dirname "$0")/.."
top=$PWD
passed=0 failed=0
failures=()
log_dir=$top/build/test-logs
mkdir -p "$log_dir"

only=${MESHGATE_TESTS:-}   # optional filter: substring of test names

for bin in build/tests/test_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	[ -n "$only" ] && [[ $name != *$only* ]] && continue
	echo "== unit $name"
	out=$log_dir/$name.log
	(cd tests && timeout 300 "../$bin") >"$out" 2>&1
	rc=$?
	p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$out" | awk '{s+=$NF} END {print s+0}')
	f=$(grep -Eo '^\[  FAILED  \] [0-9]+' "$out" | awk '{s+=$NF} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -ne 0 ]; then failures+=("$name"); tail -40 "$out"; else echo "   $p passed"; fi
done

for script in tests/*/test_*.sh; do
	[ -f "$script" ] || continue
	name=${script#tests/}
	[ -n "$only" ] && [[ $name != *$only* ]] && continue
	echo "== $name"
	out=$log_dir/$(echo "$name" | tr '/' '_').log
	start=$(date +%s)
	timeout 1200 bash "$script" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$out"; fi
	passed=$((passed + p)); failed=$((failed + f))
	grep -E '^(ok|not ok|#)' "$out" | sed 's/^/   /'
	if [ "$f" -ne 0 ]; then failures+=("$name"); echo "   --- last lines of $out"; tail -30 "$out" | sed 's/^/   | /'; fi
	echo "   ($(( $(date +%s) - start )) s)"
done

if [ ${#failures[@]} -ne 0 ]; then echo "failing: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
