# Fuzzers of the egress area (not part of `make test`; their seed corpora are
# replayed by the unit tests). Replay drivers build with gcc:
#   make build/fuzz/fuzz_dns && build/fuzz/fuzz_dns tests/data/dns/*
# libFuzzer runs need clang:  make fuzz-dns FUZZ_SECONDS=60 (fuzz-sni likewise)
FUZZ_SECONDS ?= 60
FUZZ_CLANG := clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBFUZZER -I. -include appliance/banned.h
.PHONY: fuzz-dns fuzz-sni fuzz-filter
$(BUILD)/fuzz/fuzz_dns: tests/fuzz/fuzz_dns.c net/dns.c net/dns.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BANNED) -o $@ tests/fuzz/fuzz_dns.c net/dns.c
fuzz-dns:
	@mkdir -p $(BUILD)/fuzz/corpus-dns
	$(FUZZ_CLANG) tests/fuzz/fuzz_dns.c net/dns.c -o $(BUILD)/fuzz/libfuzzer_dns
	$(BUILD)/fuzz/libfuzzer_dns -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-dns tests/data/dns/
$(BUILD)/fuzz/fuzz_sni: tests/fuzz/fuzz_sni.c appliance/egress.c appliance/egress.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BANNED) -o $@ tests/fuzz/fuzz_sni.c appliance/egress.c
fuzz-sni:
	@mkdir -p $(BUILD)/fuzz/corpus-sni
	$(FUZZ_CLANG) -Inet -I$(LWIP_SRC)/include tests/fuzz/fuzz_sni.c appliance/egress.c -o $(BUILD)/fuzz/libfuzzer_sni
	$(BUILD)/fuzz/libfuzzer_sni -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-sni tests/data/sni/
