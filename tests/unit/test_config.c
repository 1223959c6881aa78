/* Configuration loader: a good appliance file, a bad one with every expected
 * FILE:LINE: field: message, and the multi-file / multi-document rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "appliance/config.h"
#include "appliance/policy.h"

static struct config *cfg;
static struct config_errors *errs;

static int setup(void **state)
{
	cfg = malloc(sizeof *cfg);
	errs = malloc(sizeof *errs);
	return cfg && errs ? 0 : -1;
}

static int teardown(void **state)
{
	free(cfg);
	free(errs);
	return 0;
}

static void test_good(void **state)
{
	const char *files[] = {"data/config/good/edge.yaml"};
	int rc = config_load(files, 1, cfg, errs);
	if (rc)
		config_errors_print(errs, stderr);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->name, "edge-1");
	assert_string_equal(cfg->trust_domain, "cluster.local");
	assert_string_equal(cfg->root_namespace, "istio-system");
	assert_non_null(strstr(cfg->identity_chain, "/data/config/good/gw.pem"));
	assert_true(cfg->identity_chain[0] == '/');
	assert_non_null(strstr(cfg->identity_key, "/data/config/good/gw.key"));
	assert_int_equal(cfg->ntrust_bundles, 1);
	assert_string_equal(cfg->trust_bundles[0].trust_domain, "cluster.local");
	assert_int_equal(cfg->neal_args, 3);
	assert_string_equal(cfg->eal_args[2], "512");
	assert_int_equal(cfg->nports, 2);
	assert_string_equal(cfg->ports[1].device, "net_af_packet1,iface=mg-in");
	assert_int_equal(cfg->ports[0].address, inet_addr("198.18.0.2"));
	assert_int_equal(cfg->ports[0].prefix, 24);
	assert_int_equal(cfg->ports[0].gateway, 0);
	assert_int_equal(cfg->ports[1].gateway, inet_addr("198.18.1.254"));
	assert_ptr_equal(config_port_by_name(cfg, "inside"), &cfg->ports[1]);
	assert_null(config_port_by_name(cfg, "nope"));
	assert_int_equal(cfg->nservices, 2);
	assert_string_equal(cfg->services[0].namespace_, "production");
	assert_int_equal(cfg->services[0].nlabels, 1);
	assert_string_equal(cfg->services[0].labels[0].key, "app");
	assert_int_equal(cfg->services[0].nendpoints, 1);
	assert_int_equal(cfg->services[0].endpoints[0].ip, inet_addr("198.18.1.10"));
	assert_int_equal(cfg->services[0].endpoints[0].port, 8080);
	assert_true(cfg->services[1].builtin_demo);
	assert_int_equal(config_service_by_name(cfg, "demo/demo"), 1);
	assert_int_equal(config_service_by_name(cfg, "backend-api"), 0);
	assert_int_equal(cfg->nlisteners, 3);
	assert_int_equal(cfg->listeners[0].listen, 8443);
	assert_int_equal(cfg->listeners[0].protocol, CONFIG_PROTOCOL_HTTP);
	assert_int_equal(cfg->listeners[1].protocol, CONFIG_PROTOCOL_TCP);
	assert_int_equal(cfg->listeners[2].port, 1);
	assert_int_equal(cfg->listeners[2].service, 1);
	assert_int_equal(cfg->listeners[0].line, 20);
	assert_int_equal(cfg->limits.max_request_head, 16384);
	assert_int_equal(policy_set_count(cfg->policies), 1);
	assert_int_equal(policy_set_peer_count(cfg->policies), 1);
	assert_int_equal(policy_mtls_mode(cfg->policies, "production", NULL, 0, 8443), POLICY_MTLS_STRICT);
	/* the L7 ALLOW policy applies to the tcp listener "raw": one warning */
	assert_int_equal(cfg->warnings.count, 1);
	assert_int_equal(cfg->warnings.items[0].line, 25);
	assert_non_null(strstr(cfg->warnings.items[0].message, "production/allow-frontend"));
	assert_non_null(strstr(cfg->warnings.items[0].message, "tcp listener \"raw\""));
	config_free(cfg);
}

static void test_bad(void **state)
{
	static const struct { int line; const char *field, *message; } want[] = {
		{5, "spec.trustDomain", "must be a trust domain (lower-case letters, digits, '.', '-', '_'; no \"spiffe://\"), got \"spiffe://cluster.local\""},
		{6, "spec.identity.certificateChain", NULL /* absolute path: checked below */},
		{10, "spec.ports[0].address", "must be an IPv4 address with prefix length 1-32 (e.g. 198.18.0.2/24), got \"198.18.0.2\""},
		{11, "spec.ports[1].name", "duplicate port name \"outside\" (also spec.ports[0])"},
		{11, "spec.ports[1].gateway", "gateway 198.18.2.254 is outside the port's subnet"},
		{13, "spec.services[0].endpoints[0]", "must be IPv4ADDRESS:PORT (e.g. 198.18.1.10:8080), got \"198.18.1.10:80800\""},
		{14, "spec.services[1].endpoints", "required: a service needs at least one endpoint (or demo: true)"},
		{16, "spec.listeners[0].listen", "must be a port number 1-65535, got \"84433\""},
		{17, "spec.listeners[1].colour", "unknown field"},
		{17, "spec.listeners[1].port", "no port named \"nowhere\" in spec.ports"},
		{17, "spec.listeners[1].protocol", "must be tcp or http, got \"udp\""},
		{17, "spec.listeners[1].service", "no service named \"ghost\" in spec.services"},
		{18, "spec.limits.maxConnections", "must be a number 1-1048576, got \"0\""},
		{21, "kind", "unknown kind \"ConfigMap\" (Appliance, AuthorizationPolicy or PeerAuthentication)"},
	};
	const char *files[] = {"data/config/bad/edge.yaml"};
	assert_int_equal(config_load(files, 1, cfg, errs), -1);
	assert_null(cfg->policies);
	assert_int_equal(errs->count, (int)(sizeof want / sizeof want[0]));
	for (int i = 0; i < errs->count; i++) {
		const struct config_error *e = &errs->items[i];
		assert_string_equal(e->file, "data/config/bad/edge.yaml");
		if (e->line != want[i].line || strcmp(e->field, want[i].field) ||
		    (want[i].message && strcmp(e->message, want[i].message)))
			fail_msg("error %d: got %d: %s: %s; want %d: %s: %s", i, e->line, e->field, e->message,
				 want[i].line, want[i].field, want[i].message ? want[i].message : "(cannot read)");
	}
	assert_non_null(strstr(errs->items[1].message, "cannot read \""));
	assert_non_null(strstr(errs->items[1].message, "/data/config/bad/missing.pem\": No such file or directory"));
}

#define APPLIANCE \
	"apiVersion: meshgate.dev/v1alpha1\nkind: Appliance\nmetadata: {name: a}\nspec:\n" \
	"  trustDomain: td\n  rootNamespace: mesh\n" \
	"  identity: {certificateChain: good/gw.pem, privateKey: good/gw.key}\n" \
	"  trustBundles: [{trustDomain: td, roots: good/ca.pem}]\n" \
	"  ports: [{name: p, device: d, address: 198.18.0.2/24}]\n"

/* A port's segmentation offload: on unless `offload: false`; anything but a
 * boolean is refused with the file, line and field. */
#define APPLIANCE_PORT(extra) \
	"apiVersion: meshgate.dev/v1alpha1\nkind: Appliance\nmetadata: {name: a}\nspec:\n" \
	"  trustDomain: td\n" \
	"  identity: {certificateChain: good/gw.pem, privateKey: good/gw.key}\n" \
	"  trustBundles: [{trustDomain: td, roots: good/ca.pem}]\n" \
	"  ports:\n  - {name: p, device: d, address: 198.18.0.2/24}\n" \
	"  - {name: q, device: e, address: 198.18.1.2/24" extra "}\n"

static void test_port_offload(void **state)
{
	static const char off[] = APPLIANCE_PORT(", offload: false");
	assert_int_equal(config_load_buffer("off.yaml", "data/config", off, strlen(off), cfg, errs), 0);
	assert_false(cfg->ports[0].no_offload);
	assert_true(cfg->ports[1].no_offload);
	config_free(cfg);
	static const char on[] = APPLIANCE_PORT(", offload: true");
	assert_int_equal(config_load_buffer("on.yaml", "data/config", on, strlen(on), cfg, errs), 0);
	assert_false(cfg->ports[1].no_offload);
	config_free(cfg);
	static const char bad[] = APPLIANCE_PORT(", offload: sometimes");
	assert_int_equal(config_load_buffer("bad.yaml", "data/config", bad, strlen(bad), cfg, errs), -1);
	assert_int_equal(errs->count, 1);
	assert_string_equal(errs->items[0].file, "bad.yaml");
	assert_int_equal(errs->items[0].line, 10);
	assert_string_equal(errs->items[0].field, "spec.ports[1].offload");
	assert_string_equal(errs->items[0].message, "must be true or false, got \"sometimes\"");
}

static void test_buffer_and_documents(void **state)
{
	static const char ok[] = APPLIANCE "---\n---\n"
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
		"metadata: {name: deny-all, namespace: mesh}\nspec: {action: DENY, rules: [{}]}\n";
	assert_int_equal(config_load_buffer("mem.yaml", "data/config", ok, strlen(ok), cfg, errs), 0);
	assert_string_equal(cfg->root_namespace, "mesh");
	assert_int_equal(cfg->limits.max_connections, 4096);    /* defaults */
	assert_int_equal(cfg->limits.idle_timeout_ms, 300000);
	/* root namespace from the Appliance: the DENY applies everywhere */
	struct policy_request r = {.workload_namespace = "anything"};
	struct policy_decision d;
	policy_evaluate(cfg->policies, &r, &d);
	assert_int_equal(d.action, POLICY_DENY);
	config_free(cfg);

	static const char two[] = APPLIANCE "---\n" APPLIANCE;
	assert_int_equal(config_load_buffer("two.yaml", "data/config", two, strlen(two), cfg, errs), -1);
	assert_int_equal(errs->count, 1);
	assert_int_equal(errs->items[0].line, 11);
	assert_string_equal(errs->items[0].message, "a second Appliance document (the first is at two.yaml:1); exactly one is allowed");

	static const char none[] = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\n";
	assert_int_equal(config_load_buffer("none.yaml", "data/config", none, strlen(none), cfg, errs), -1);
	assert_int_equal(errs->count, 1);
	assert_int_equal(errs->items[0].line, 0);
	assert_non_null(strstr(errs->items[0].message, "no Appliance document"));

	static const char syntax[] = APPLIANCE "  listeners: [oops\n";
	assert_int_equal(config_load_buffer("syn.yaml", "data/config", syntax, strlen(syntax), cfg, errs), -1);
	assert_int_equal(errs->items[0].line, 11);
	assert_non_null(strstr(errs->items[0].message, "YAML syntax error"));

	static const char nokind[] = APPLIANCE "---\nmetadata: {name: x}\n---\n- a list\n";
	assert_int_equal(config_load_buffer("k.yaml", "data/config", nokind, strlen(nokind), cfg, errs), -1);
	assert_int_equal(errs->count, 2);
	assert_string_equal(errs->items[0].field, "kind");
	assert_int_equal(errs->items[0].line, 11);
	assert_int_equal(errs->items[1].line, 13);
}

static void test_references_and_uniqueness(void **state)
{
	static const char text[] = APPLIANCE
		"  services:\n"
		"    - {name: s, namespace: a, endpoints: [\"198.18.1.1:80\"]}\n"
		"    - {name: s, namespace: b, endpoints: [\"198.18.1.1:80\"]}\n"
		"    - {name: s, namespace: b, demo: true, endpoints: [\"198.18.1.1:80\"]}\n"
		"  listeners:\n"
		"    - {name: l1, port: p, listen: 80, protocol: tcp, service: s}\n"
		"    - {name: l2, port: p, listen: 80, protocol: tcp, service: a/s}\n"
		"    - {name: l2, port: p, listen: 0x50, protocol: tcp, service: b/s}\n"
		"  trustDomain: again\n";
	assert_int_equal(config_load_buffer("r.yaml", "data/config", text, strlen(text), cfg, errs), -1);
	static const struct { int line; const char *field, *message; } want[] = {
		{18, "spec.trustDomain", "duplicate field (first at line 5)"},
		{13, "spec.services[2]", "duplicate service b/s (also spec.services[1])"},
		{13, "spec.services[2].endpoints", "a demo service is served by meshgate itself and takes no endpoints"},
		{15, "spec.listeners[0].service", "\"s\" names services in several namespaces: write NAMESPACE/NAME"},
		{16, "spec.listeners[1].listen", "port 80 on \"p\" is already used by listener \"l1\""},
		{17, "spec.listeners[2].name", "duplicate listener name \"l2\" (also spec.listeners[1])"},
		{17, "spec.listeners[2].listen", "must be a port number 1-65535, got \"0x50\""},
	};
	for (int i = 0; i < errs->count && i < (int)(sizeof want / sizeof want[0]); i++) {
		const struct config_error *e = &errs->items[i];
		if (e->line != want[i].line || strcmp(e->field, want[i].field) || strcmp(e->message, want[i].message))
			fail_msg("error %d: got %d: %s: %s; want %d: %s: %s", i, e->line, e->field, e->message,
				 want[i].line, want[i].field, want[i].message);
	}
	assert_int_equal(errs->count, (int)(sizeof want / sizeof want[0]));
}

/* Lists longer than their fixed table: one "at most" error, the rest kept. */
static void test_list_limits(void **state)
{
	char text[4096] = APPLIANCE "  services:\n    - {name: s, namespace: a, endpoints: [";
	size_t n = strlen(text);
	for (int i = 0; i <= CONFIG_MAX_ENDPOINTS; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "%s\"198.18.1.%d:80\"", i ? ", " : "", i + 1);
	n += (size_t)snprintf(text + n, sizeof text - n, "]}\n");
	assert_int_equal(config_load_buffer("lim.yaml", "data/config", text, n, cfg, errs), -1);
	char want[64];
	snprintf(want, sizeof want, "at most %d endpoints, got %d", CONFIG_MAX_ENDPOINTS, CONFIG_MAX_ENDPOINTS + 1);
	assert_int_equal(errs->count, 1);
	assert_int_equal(errs->items[0].line, 11);
	assert_string_equal(errs->items[0].field, "spec.services[0].endpoints");
	assert_string_equal(errs->items[0].message, want);
}

static void test_error_cap_and_print(void **state)
{
	char text[8192] = APPLIANCE "  services:\n";
	size_t n = strlen(text);
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "    - {name: s%d, namespace: a, bogus: 1, endpoints: [x]}\n", i);
	assert_int_equal(config_load_buffer("cap.yaml", "data/config", text, n, cfg, errs), -1);
	assert_int_equal(errs->count, 200);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	config_errors_print(errs, out);
	fclose(out);
	assert_non_null(strstr(buf, "cap.yaml:11: spec.services[0].bogus: unknown field\n"));
	assert_non_null(strstr(buf, "... and 136 more (only the first 64 are shown)\n"));
	free(buf);

	const char *files[] = {"data/config/nope.yaml"};
	assert_int_equal(config_load(files, 1, cfg, errs), -1);
	out = open_memstream(&buf, &len);
	config_errors_print(errs, out);
	fclose(out);
	assert_non_null(strstr(buf, "data/config/nope.yaml: cannot read: No such file or directory\n"));
	free(buf);
}

static void test_multi_file(void **state)
{
	/* policies in a second file, appliance in the first; POLICIES_ONLY mode */
	const char *files[] = {"data/config/good/edge.yaml", "data/policy/match.yaml"};
	assert_int_equal(config_load(files, 2, cfg, errs), 0);
	assert_int_equal(policy_set_count(cfg->policies), 11);
	config_free(cfg);
	const char *only[] = {"data/policy/match.yaml", "data/policy/order.yaml"};
	assert_int_equal(config_load(only, 2, cfg, errs), -1);
	assert_int_equal(config_load_ex(only, 2, CONFIG_LOAD_POLICIES_ONLY, cfg, errs), 0);
	assert_string_equal(cfg->root_namespace, "istio-system");
	assert_int_equal(policy_set_count(cfg->policies), 14);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_buffer_and_documents),
		cmocka_unit_test(test_port_offload),
		cmocka_unit_test(test_references_and_uniqueness),
		cmocka_unit_test(test_list_limits),
		cmocka_unit_test(test_error_cap_and_print),
		cmocka_unit_test(test_multi_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
