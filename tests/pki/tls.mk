# tls/ tests: test_tls drives the server engine with a real OpenSSL client
# (libssl over memory BIOs), so it links libssl besides the usual libs.
$(BUILD)/tests/test_tls: CORE_LIBS += -lssl
