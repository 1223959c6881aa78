# EC/ECDSA code behind BearSSL (tls/ec.h): `make TLS_EC=bearssl` builds with
# BearSSL's own curve code as the default; OpenSSL's libcrypto otherwise.
# Both are always compiled and both are exercised by test_tls / test_tls_ec.
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
