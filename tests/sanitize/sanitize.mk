# meshgate built with AddressSanitizer and UndefinedBehaviorSanitizer, for
# tests/sanitize/test_sanitize.sh, which runs end-to-end scripts against it
# with real clients. Never shipped. Linked dynamically against glibc (the
# sanitizer runtimes cannot be linked statically); everything else is the
# same static archives as build/meshgate.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
ASAN_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(BIN_SRCS) $(CORE_SRCS) $(DRIVER_SRCS))

# Order-only on build/meshgate: the lwIP and BearSSL archives, the tuned
# BearSSL headers and the embedded admin assets exist once it is built.
$(BUILD)/asan/drivers/%.o: drivers/%.c | $(BUILD)/meshgate
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) $(DPDK_CFLAGS) -Wno-shadow $(BANNED) -MMD -MP -c $< -o $@
$(BUILD)/asan/%.o: %.c | $(BUILD)/meshgate
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -I$(BUILD)/gen $(BANNED) -MMD -MP -c $< -o $@
-include $(ASAN_OBJS:.o=.d)

$(BUILD)/asan/meshgate: $(ASAN_OBJS) $(BUILD)/meshgate
	$(CC) $(ASAN_FLAGS) -no-pie -o $@ $(ASAN_OBJS) $(LWIP_LIB) $(LDLIBS_STATIC) 2>$(BUILD)/asan/link.log \
	  || { cat $(BUILD)/asan/link.log >&2; exit 1; }
