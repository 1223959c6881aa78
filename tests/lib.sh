# Shared helpers for shell tests (source it). TAP-style output that
# tests/run-suite.sh counts: "ok - NAME" / "not ok - NAME".
# Network tests use namespaces and veths they create and delete themselves,
# with addresses in 198.18.0.0/15 only.
TESTS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESHGATE=${MESHGATE:-$TESTS_TOP/build/meshgate}
_tap_failed=0
ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; _tap_failed=1; }
# check NAME CMD...: runs CMD, ok if it exits 0
check()  { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
# expect_eq NAME GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi; }
tap_exit() { exit $_tap_failed; }
