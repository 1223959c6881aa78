# The egress area's end-to-end test needs dig (tests/egress/test_egress.sh).
TEST_PKGS += bind9-dnsutils
