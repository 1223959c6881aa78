# Policy engine benchmark (not part of `make test`): make bench-policy
.PHONY: bench-policy
$(BUILD)/bench/policy_bench: tests/bench/policy_bench.c $(CORE_OBJS) $(LWIP_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(CORE_OBJS) $(LWIP_LIB) $(CORE_LIBS)
bench-policy: $(BUILD)/bench/policy_bench
	$(BUILD)/bench/policy_bench
