/* Fuzz target for the configuration loader: appliance/config.c, the YAML
 * walker (yaml_node.c) and the Istio policy loader (policy_load.c), i.e.
 * everything an operator's file or a console/API upload reaches.
 *
 * Each input is loaded as a whole config (Appliance + policies) and as a
 * policies-only set, and when a set loads, one request is evaluated against
 * it. Invariants: a failed load reports at least one error; a good load has
 * a policy set; nothing leaks or crashes (run under ASan/UBSan).
 *
 * libFuzzer: clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBFUZZER -I. -Inet \
 *   -I build/lwip/lwip-2.1.3/src/include tests/fuzz/fuzz_config.c appliance/config.c \
 *   appliance/yaml_node.c appliance/policy_load.c appliance/policy.c -lyaml
 * In the suite: tests/fuzz/test_fuzz.sh links it with tests/fuzz/mutate.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/config.h"
#include "appliance/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static struct config_errors errs;
	memset(&cfg, 0, sizeof cfg);
	memset(&errs, 0, sizeof errs);
	int rc = config_load_buffer("fuzz.yaml", "/nonexistent", (const char *)data, size, &cfg, &errs);
	if (rc != 0 && errs.count == 0)
		abort();
	if (rc == 0) {
		if (!cfg.policies)
			abort();
		config_free(&cfg);
	}

	struct policy_set *set = NULL;
	memset(&errs, 0, sizeof errs);
	rc = policy_set_from_yaml("fuzz.yaml", (const char *)data, size, NULL, &set, &errs);
	if (rc != 0 && errs.count == 0)
		abort();
	if (rc == 0 && set) {
		struct config_label app = {"app", "x"};
		struct policy_request q = {
			.workload_namespace = "prod", .workload_labels = &app, .workload_nlabels = 1,
			.principal = "cluster.local/ns/prod/sa/frontend", .source_ip = 0x010012c6,
			.dest_port = 8443, .has_l7 = true, .method = "GET", .path = "/a/b?c",
			.path_len = 6, .host = "x.com",
		};
		struct policy_decision d;
		policy_evaluate(set, &q, &d);
		q.principal = NULL;
		q.has_l7 = false;
		policy_evaluate(set, &q, &d);
		(void)policy_mtls_mode(set, "prod", &app, 1, 8443);
		policy_set_free(set);
	}
	return 0;
}
