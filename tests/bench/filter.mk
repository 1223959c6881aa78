# Packet-filter benchmark (not part of `make test`): make bench-filter
.PHONY: bench-filter
$(BUILD)/bench/filter_bench: tests/bench/filter_bench.c tests/unit/filter_frames.h net/filter.c net/filter.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BANNED) -o $@ tests/bench/filter_bench.c net/filter.c
bench-filter: $(BUILD)/bench/filter_bench
	$(BUILD)/bench/filter_bench
