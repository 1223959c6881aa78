# TLS build options (tls/ area).
#
# TLS_EC: who does the elliptic-curve work behind BearSSL (tls/ec.h).
#   make TLS_EC=bearssl   BearSSL's own curve code as the default
#   (default: openssl)    OpenSSL's libcrypto (P-256 ~10x faster here)
# Both are always compiled; test_tls and test_tls_ec exercise both.
TLS_EC ?= openssl
ifeq ($(TLS_EC),bearssl)
CFLAGS += -DTLS_EC_DEFAULT_BEARSSL=1
else ifneq ($(TLS_EC),openssl)
$(error TLS_EC must be openssl or bearssl, not '$(TLS_EC)')
endif
# Rebuild what reads the default when the choice changes.
TLS_EC_STAMP := $(BUILD)/.tls-ec-$(TLS_EC)
$(TLS_EC_STAMP):
	@mkdir -p $(BUILD); rm -f $(BUILD)/.tls-ec-*; touch $@
$(BUILD)/obj/tls/credentials.o: $(TLS_EC_STAMP)

# BEARSSL: which libbearssl.a is linked.
#   (default: source)   built here from Debian's `bearssl` source package
#                       (sha256-checked, same 0.6 as libbearssl-dev) with -O2:
#                       Debian compiles it with -Os, and BearSSL's handshake
#                       engine (an interpreter) costs ~20% more per handshake so
#                       (tests/bench/RESULTS.md). Debian's hardening flags kept;
#                       BR_MAX_CIPHER_SUITES lowered (TLS_BEARSSL_MAX_SUITES below).
#   make BEARSSL=system Debian's libbearssl.a and headers as shipped.
BEARSSL ?= source
ifeq ($(BEARSSL),source)
BEARSSL_VERSION := 0.6+dfsg.1
BEARSSL_DEBIAN := 0.6+dfsg.1-3
BEARSSL_TARBALL := bearssl_$(BEARSSL_VERSION).orig.tar.xz
BEARSSL_SHA256 := 102a625bd8f6155260867a50c508df8d8c3f796985dd744df1a68e5cd1a79004
BEARSSL_ROOT := $(BUILD)/bearssl
BEARSSL_STAMP := $(BEARSSL_ROOT)/.extracted
BEARSSL_LIB := $(BUILD)/libbearssl.a
BEARSSL_CFLAGS := -O2 -g -fPIC -fno-strict-aliasing -fstack-protector-strong \
	-D_FORTIFY_SOURCE=2 -w

# Same private apt configuration as lwIP's (the machine's sources untouched).
$(BEARSSL_ROOT)/$(BEARSSL_TARBALL):
	@mkdir -p $(BEARSSL_ROOT)/apt/lists/partial $(BEARSSL_ROOT)/dl
	@printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $(BEARSSL_ROOT)/apt/src.sources
	@echo "meshgate: fetching Debian source package bearssl $(BEARSSL_DEBIAN)"
	@apt-get -q -o Dir::Etc::SourceList=$(abspath $(BEARSSL_ROOT))/apt/src.sources \
	  -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$(abspath $(BEARSSL_ROOT))/apt/lists \
	  -o APT::Sandbox::User=root update >/dev/null
	@cd $(BEARSSL_ROOT)/dl && apt-get -q -o Dir::Etc::SourceList=$(abspath $(BEARSSL_ROOT))/apt/src.sources \
	  -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$(abspath $(BEARSSL_ROOT))/apt/lists \
	  -o APT::Sandbox::User=root source --download-only bearssl=$(BEARSSL_DEBIAN) >/dev/null
	@mv $(BEARSSL_ROOT)/dl/$(BEARSSL_TARBALL) $@

$(BEARSSL_STAMP): $(BEARSSL_ROOT)/$(BEARSSL_TARBALL)
	@echo "$(BEARSSL_SHA256)  $<" | sha256sum -c --quiet - || { echo "meshgate: $< sha256 mismatch" >&2; rm -f $<; exit 1; }
	@tar -C $(BEARSSL_ROOT) -xJf $<
	@touch $@

# TLS_BEARSSL_MAX_SUITES: BearSSL's BR_MAX_CIPHER_SUITES (48 upstream), set
# in the extracted bearssl_ssl.h before the library is built. BearSSL's
# ClientHello code translates every slot of its 48-slot table of common
# suites, looking each empty one up in its list of all suites through the
# handshake interpreter: ~57,000 of the ~82,000 interpreted operations of a
# full handshake, ~95 µs of ~295 here (tests/bench/RESULTS.md). tls/conn.c
# configures 3 suites per key type; the table only needs that many.
# The constant sizes arrays inside BearSSL's contexts, so our code compiles
# against the same edited header (-I below, before /usr/include); every
# object depends on the stamp, so changing the value rebuilds them all, and
# tls_credentials_load() refuses a library that disagrees with the headers.
TLS_BEARSSL_MAX_SUITES := 3
BEARSSL_INC := $(BEARSSL_ROOT)/bearssl-0.6/inc
BEARSSL_TUNED := $(BEARSSL_ROOT)/.max-suites-$(TLS_BEARSSL_MAX_SUITES)
$(BEARSSL_TUNED): $(BEARSSL_STAMP)
	@sed -i -E 's/^(#define BR_MAX_CIPHER_SUITES +)[0-9]+$$/\1$(TLS_BEARSSL_MAX_SUITES)/' $(BEARSSL_INC)/bearssl_ssl.h
	@test "$$(grep -c -E '^#define BR_MAX_CIPHER_SUITES +$(TLS_BEARSSL_MAX_SUITES)$$' $(BEARSSL_INC)/bearssl_ssl.h)" = 1 || \
	  { echo "meshgate: cannot set BR_MAX_CIPHER_SUITES in $(BEARSSL_INC)/bearssl_ssl.h" >&2; exit 1; }
	@rm -f $(BEARSSL_ROOT)/.max-suites-*; touch $@
CFLAGS += -I$(BEARSSL_INC)
$(CORE_OBJS) $(DRIVER_OBJS) $(MAIN_OBJ): $(BEARSSL_TUNED)

# TLS_BEARSSL_FIRST_SUITES: the suites tls/conn.c configures (tls_suites_ecdsa,
# then tls_suites_rsa), moved to the front of BearSSL's table of all suites
# in its generated handshake code (tls/bearssl_suite_order.pl says how and
# why): each lookup of ours then ends at once instead of scanning 27 to 45
# entries, which halves the interpreted operations of a full handshake.
# Lookups match on the suite ID, so the order changes no result.
TLS_BEARSSL_FIRST_SUITES := C02B C02C CCA9 C02F C030 CCA8
tls_no_space :=
tls_space := $(tls_no_space) $(tls_no_space)
BEARSSL_ORDERED := $(BEARSSL_ROOT)/.suites-first-$(subst $(tls_space),-,$(TLS_BEARSSL_FIRST_SUITES))
$(BEARSSL_ORDERED): $(BEARSSL_STAMP) tls/bearssl_suite_order.pl
	@for f in ssl_hs_server ssl_hs_client; do \
	  perl tls/bearssl_suite_order.pl $(BEARSSL_ROOT)/bearssl-0.6/src/ssl/$$f.c $(TLS_BEARSSL_FIRST_SUITES) || exit 1; done
	@rm -f $(BEARSSL_ROOT)/.suites-first-*; touch $@

# ~290 small files: compiled two at a time in one recipe (the file list is
# only known after extraction).
$(BEARSSL_LIB): $(BEARSSL_TUNED) $(BEARSSL_ORDERED) tests/unit/tls_build.mk
	@echo "meshgate: building BearSSL 0.6 with -O2, BR_MAX_CIPHER_SUITES $(TLS_BEARSSL_MAX_SUITES), our suites first"
	@rm -rf $(BEARSSL_ROOT)/obj && mkdir -p $(BEARSSL_ROOT)/obj
	@cd $(BEARSSL_ROOT)/bearssl-0.6 && find src -name '*.c' | sort | \
	  xargs -P2 -n16 sh -c 'for f; do o=../obj/$$(echo $$f | tr / _); \
	    $(CC) $(BEARSSL_CFLAGS) -Isrc -Iinc -c $$f -o $${o%.c}.o || exit 255; done' sh
	@rm -f $@ && ar rcs $@ $(BEARSSL_ROOT)/obj/*.o

LDLIBS_STATIC := $(subst -l:libbearssl.a,$(BEARSSL_LIB),$(LDLIBS_STATIC))
CORE_LIBS := $(subst -lbearssl,$(BEARSSL_LIB),$(CORE_LIBS))
$(BUILD)/meshgate $(UNIT_BINS) $(BUILD)/bench/tls_bench $(BUILD)/bench/policy_bench: $(BEARSSL_LIB)
bearssl: $(BEARSSL_LIB)
.PHONY: bearssl
else ifneq ($(BEARSSL),system)
$(error BEARSSL must be source or system, not '$(BEARSSL)')
endif
# The two choices compile against different bearssl_ssl.h (struct layouts):
# switching rebuilds every object.
BEARSSL_CHOICE_STAMP := $(BUILD)/.bearssl-$(BEARSSL)$(if $(TLS_BEARSSL_MAX_SUITES),-$(TLS_BEARSSL_MAX_SUITES))
$(BEARSSL_CHOICE_STAMP):
	@mkdir -p $(BUILD); rm -f $(BUILD)/.bearssl-*; touch $@
$(CORE_OBJS) $(DRIVER_OBJS) $(MAIN_OBJ): $(BEARSSL_CHOICE_STAMP)
