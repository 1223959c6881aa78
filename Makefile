# meshgate — one static binary: DPDK fast path, lwIP stack, BearSSL mTLS, Istio policy.
#
#   make run    install what is missing, build, start the embedded demo
#   make test   install what is missing, build, run the whole test suite
#   make        build build/meshgate
#
# Everything comes from Debian 12 packages; lwIP is built from Debian's `lwip`
# source package (checked by sha256) with our own net/lwipopts.h.

SHELL := /bin/bash
CC ?= gcc
BUILD := build
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LIBDIR := /usr/lib/$(MULTIARCH)

# ---------------------------------------------------------------- packages
# Build: compilers and the static archives we link.
BUILD_PKGS := gcc make pkg-config file xz-utils ca-certificates \
	libdpdk-dev libbearssl-dev libyaml-dev libhttp-parser-dev libssl-dev \
	libbsd-dev libelf-dev libnuma-dev zlib1g-dev libpcap-dev libxdp-dev libbpf-dev
# Test: unit-test framework and the real peers the end-to-end tests talk to.
TEST_PKGS := libcmocka-dev curl openssl nginx-light python3 iproute2 ethtool procps psmisc strace

.PHONY: all deps test-deps run test unit e2e clean lwip version bench bench-smoke
all: $(BUILD)/meshgate

define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "meshgate: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "meshgate: need root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(BUILD_PKGS))
test-deps: deps
	$(call install_missing,$(TEST_PKGS))

# ---------------------------------------------------------------- lwIP
LWIP_PKG := lwip
LWIP_VERSION := 2.1.3+dfsg1
LWIP_TARBALL := lwip_$(LWIP_VERSION).orig.tar.xz
LWIP_SHA256 := 0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24
LWIP_ROOT := $(BUILD)/lwip
LWIP_SRC := $(LWIP_ROOT)/lwip-2.1.3/src
LWIP_STAMP := $(LWIP_ROOT)/.extracted

# A private apt configuration with a deb-src stanza for bookworm main, so the
# machine's own sources are left alone.
$(LWIP_ROOT)/$(LWIP_TARBALL):
	@mkdir -p $(LWIP_ROOT)/apt/lists/partial $(LWIP_ROOT)/dl
	@printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $(LWIP_ROOT)/apt/src.sources
	@echo "meshgate: fetching Debian source package $(LWIP_PKG) $(LWIP_VERSION)"
	@apt-get -q -o Dir::Etc::SourceList=$(abspath $(LWIP_ROOT))/apt/src.sources \
	  -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$(abspath $(LWIP_ROOT))/apt/lists \
	  -o APT::Sandbox::User=root update >/dev/null
	@cd $(LWIP_ROOT)/dl && apt-get -q -o Dir::Etc::SourceList=$(abspath $(LWIP_ROOT))/apt/src.sources \
	  -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$(abspath $(LWIP_ROOT))/apt/lists \
	  -o APT::Sandbox::User=root source --download-only $(LWIP_PKG)=$(subst +dfsg1,+dfsg1-2,$(LWIP_VERSION)) >/dev/null
	@mv $(LWIP_ROOT)/dl/$(LWIP_TARBALL) $@

$(LWIP_STAMP): $(LWIP_ROOT)/$(LWIP_TARBALL)
	@echo "$(LWIP_SHA256)  $<" | sha256sum -c --quiet - || { echo "meshgate: $< sha256 mismatch" >&2; rm -f $<; exit 1; }
	@tar -C $(LWIP_ROOT) -xJf $<
	@touch $@

LWIP_FILES := core/init.c core/def.c core/inet_chksum.c core/ip.c core/mem.c core/memp.c \
	core/netif.c core/pbuf.c core/stats.c core/sys.c core/tcp.c core/tcp_in.c core/tcp_out.c \
	core/timeouts.c core/udp.c core/ipv4/etharp.c core/ipv4/icmp.c core/ipv4/ip4.c \
	core/ipv4/ip4_addr.c core/ipv4/ip4_frag.c netif/ethernet.c
LWIP_OBJS := $(patsubst %.c,$(BUILD)/lwip-obj/%.o,$(LWIP_FILES))
LWIP_LIB := $(BUILD)/liblwip.a
LWIP_CFLAGS := -O2 -g -fno-strict-aliasing -Inet -I$(LWIP_SRC)/include -w

$(LWIP_SRC)/%.c: $(LWIP_STAMP) ;
$(BUILD)/lwip-obj/%.o: $(LWIP_STAMP) net/lwipopts.h
	@mkdir -p $(dir $@)
	$(CC) $(LWIP_CFLAGS) -c $(LWIP_SRC)/$*.c -o $@
$(LWIP_LIB): $(LWIP_OBJS)
	@rm -f $@; ar rcs $@ $^
lwip: $(LWIP_LIB)

# ---------------------------------------------------------------- our code
# Rules the build enforces: warnings are errors, unsafe string calls are banned.
WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla -Wno-format-truncation
BANNED := -include appliance/banned.h
DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -DMESHGATE_VERSION='"$(VERSION)"' \
	-I. -Inet -I$(LWIP_SRC)/include -fno-strict-aliasing

# Platform-free code: builds and unit-tests without DPDK (STYLE.md habit 4).
BIN_SRCS := appliance/main.c $(wildcard appliance/run*.c)
CORE_SRCS := $(filter-out $(BIN_SRCS),$(wildcard appliance/*.c)) $(wildcard net/*.c) $(wildcard tls/*.c)
DRIVER_SRCS := $(wildcard drivers/*.c)
CORE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRCS))
DRIVER_OBJS := $(patsubst %.c,$(BUILD)/dobj/%.o,$(DRIVER_SRCS))
MAIN_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(BIN_SRCS))

$(BUILD)/obj/%.o: %.c | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BANNED) -MMD -MP -c $< -o $@
# drivers/ sees DPDK headers; nothing else does.
$(BUILD)/dobj/%.o: %.c | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DPDK_CFLAGS) -Wno-shadow $(BANNED) -MMD -MP -c $< -o $@
-include $(CORE_OBJS:.o=.d) $(DRIVER_OBJS:.o=.d) $(MAIN_OBJ:.o=.d)

# DPDK: only the PMDs we support, whole-archived so their constructors register.
# net_af_xdp brings libxdp and libbpf (AF_XDP sockets and their XDP program).
DPDK_PMDS := bus_vdev bus_pci mempool_ring net_af_packet net_tap net_ring net_virtio \
	net_e1000 net_ixgbe net_i40e net_af_xdp
DPDK_LIBS := ethdev gso security cryptodev mbuf mempool ring eal kvargs telemetry net hash \
	rcu meter pci cmdline timer bpf
LDLIBS_STATIC := -Wl,--whole-archive $(addprefix -l:librte_,$(addsuffix .a,$(DPDK_PMDS))) -Wl,--no-whole-archive \
	-Wl,--start-group $(addprefix -l:librte_,$(addsuffix .a,$(DPDK_LIBS))) -Wl,--end-group \
	-l:libbearssl.a -l:libyaml.a -l:libhttp_parser.a -l:libcrypto.a \
	-l:libxdp.a -l:libbpf.a -l:libbsd.a -l:libmd.a -l:libelf.a -l:libz.a -l:libnuma.a -lpthread -ldl -lm -latomic
CORE_LIBS := -lbearssl -lyaml -lhttp_parser -lssl -lcrypto -lm

$(BUILD)/meshgate: $(MAIN_OBJ) $(CORE_OBJS) $(DRIVER_OBJS) $(LWIP_LIB)
	$(CC) -static -o $@ $(MAIN_OBJ) $(CORE_OBJS) $(DRIVER_OBJS) $(LWIP_LIB) $(LDLIBS_STATIC) 2> $(BUILD)/link.log || { cat $(BUILD)/link.log >&2; exit 1; }
	@grep -v -E 'Using .(dlopen|getpwnam|getaddrinfo|gethostbyname|getpwuid|getgrnam|getgrgid|getservbyname|getpwnam_r|getpwuid_r|getgrnam_r|getgrgid_r|getservbyname_r). in statically linked|: in function|^collect2' $(BUILD)/link.log >&2 || true
	@file $@ | grep -q 'statically linked' || { echo "meshgate: $@ is not static" >&2; exit 1; }

# ---------------------------------------------------------------- tests
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJS) $(LWIP_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error=unused-function -o $@ $< $(CORE_OBJS) $(LWIP_LIB) $(CORE_LIBS) -lcmocka

unit: test-deps $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; (cd tests && ../$$t) || fail=1; done; exit $$fail

e2e: test-deps $(BUILD)/meshgate
	@MESHGATE_TESTS=e2e/ bash tests/run-suite.sh

test: test-deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@bash tests/run-suite.sh

# ---------------------------------------------------------------- run
run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/meshgate run

version: $(BUILD)/meshgate
	@$(BUILD)/meshgate version

# Area fragments (bench, fuzz, image) keep their rules beside their code.
-include $(wildcard tests/*/*.mk images/*.mk)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/dobj $(BUILD)/tests $(BUILD)/meshgate $(BUILD)/asan $(BUILD)/lwip-obj $(LWIP_LIB)
