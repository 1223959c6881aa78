# Console, metrics and access-log tests.
# test_metrics checks the rendered exposition with `promtool check metrics`.
TEST_PKGS += prometheus
