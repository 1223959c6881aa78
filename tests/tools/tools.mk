# Test tools: small static programs the platform tests drive.
#
# port_echo: one DPDK port + lwIP (ARP, ping, TCP echo). Linked exactly like
# build/meshgate (LDLIBS_STATIC: whole-archived PMDs, DPDK, system archives),
# but only from drivers/port.c and the net/ files it needs, so other drivers/
# or appliance/ work in progress cannot break it.
TOOLS_BIN := $(BUILD)/tests/tools
PORT_ECHO := $(TOOLS_BIN)/port_echo
PORT_ECHO_OBJS := $(BUILD)/dobj/drivers/port.o $(BUILD)/obj/net/stack.o $(BUILD)/obj/net/sys_arch.o \
	$(BUILD)/obj/net/tcp_coalesce.o $(BUILD)/obj/net/pcb_index.o

.PHONY: tools
tools: $(PORT_ECHO)

$(PORT_ECHO): tests/tools/port_echo.c $(PORT_ECHO_OBJS) $(LWIP_LIB) | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BANNED) -static -o $@ $< $(PORT_ECHO_OBJS) $(LWIP_LIB) $(LDLIBS_STATIC) 2> $(TOOLS_BIN)/link.log || { cat $(TOOLS_BIN)/link.log >&2; exit 1; }
	@grep -v -E 'Using .(dlopen|getpwnam|getaddrinfo|gethostbyname|getpwuid|getgrnam|getgrgid|getservbyname|getpwnam_r|getpwuid_r|getgrnam_r|getgrgid_r|getservbyname_r). in statically linked|: in function|^collect2' $(TOOLS_BIN)/link.log >&2 || true

# tests/platform/test_port.sh pings the DPDK ports.
TEST_PKGS += iputils-ping
