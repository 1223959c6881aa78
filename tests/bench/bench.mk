# Side-by-side benchmark against nginx and HAProxy (not part of `make test`):
#   make bench          full run (several minutes): table of medians and ratios
#   make bench-smoke    a few seconds: proves the harness works, no speed judgement
# See tests/bench/run.sh and tests/bench/RESULTS.md.
BENCH_PKGS := nginx-light haproxy openssl python3 iproute2 ethtool util-linux procps
TEST_PKGS += haproxy
.PHONY: bench bench-smoke bench-deps
bench-deps: test-deps
	$(call install_missing,$(BENCH_PKGS))
$(BUILD)/bench/mgbench: tests/bench/mgbench.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 $(WARN) -o $@ $< -lssl -lcrypto
# BENCH_ARGS: e.g. "--rounds 5 --gateways 'meshgate nginx'"
bench: bench-deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/mgbench
	bash tests/bench/run.sh --out $(BUILD)/bench/table.md $(BENCH_ARGS)
bench-smoke: bench-deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/mgbench
	bash tests/bench/run.sh --smoke $(BENCH_ARGS)
# In-process server CPU per handshake for each TLS lever (no network).
.PHONY: bench-tls
$(BUILD)/bench/tls_bench: tests/bench/tls_bench.c $(CORE_OBJS) $(LWIP_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(CORE_OBJS) $(LWIP_LIB) $(CORE_LIBS) -lssl
bench-tls: $(BUILD)/bench/tls_bench
	@bash tests/pki/gen.sh $(BUILD)/pki >/dev/null
	$(BUILD)/bench/tls_bench 200 5
