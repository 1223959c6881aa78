/* Policy engine: Istio AuthorizationPolicy / PeerAuthentication semantics,
 * one known-answer case per rule, with the policies under data/policy/. */
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

static struct config *load(const char *file)
{
	struct config *cfg = malloc(sizeof *cfg);
	struct config_errors *errs = malloc(sizeof *errs);
	const char *files[] = {file};
	assert_non_null(cfg);
	int rc = config_load_ex(files, 1, CONFIG_LOAD_POLICIES_ONLY, cfg, errs);
	if (rc)
		config_errors_print(errs, stderr);
	assert_int_equal(rc, 0);
	assert_non_null(cfg->policies);
	free(errs);
	return cfg;
}

static void unload(struct config *cfg)
{
	config_free(cfg);
	free(cfg);
}

struct rq {
	struct policy_request r;
	struct config_label labels[4];
	struct policy_header headers[4];
};

static struct rq *rq(const char *ns, const char *app, const char *principal)
{
	static struct rq q;
	memset(&q, 0, sizeof q);
	q.r.workload_namespace = ns;
	q.r.workload_labels = q.labels;
	if (app) {
		snprintf(q.labels[0].key, sizeof q.labels[0].key, "app");
		snprintf(q.labels[0].value, sizeof q.labels[0].value, "%s", app);
		q.r.workload_nlabels = 1;
	}
	q.r.principal = principal;
	q.r.headers = q.headers;
	q.r.source_ip = inet_addr("203.0.113.1");
	q.r.dest_ip = inet_addr("198.18.1.2");
	q.r.dest_port = 8443;
	return &q;
}

static void label(struct rq *q, const char *k, const char *v)
{
	struct config_label *l = &q->labels[q->r.workload_nlabels++];
	snprintf(l->key, sizeof l->key, "%s", k);
	snprintf(l->value, sizeof l->value, "%s", v);
}

static void http(struct rq *q, const char *method, const char *path, const char *host)
{
	q->r.has_l7 = true;
	q->r.method = method;
	q->r.path = path;
	q->r.path_len = path ? strlen(path) : 0;
	q->r.host = host;
}

static void header(struct rq *q, const char *name, const char *value)
{
	q->r.has_l7 = true;
	q->headers[q->r.nheaders++] = (struct policy_header){name, strlen(name), value, strlen(value)};
}

/* Evaluates and checks the formatted decision line. */
static void expect(const struct config *cfg, const struct rq *q, const char *want)
{
	struct policy_decision d;
	char line[512];
	policy_evaluate(cfg->policies, &q->r, &d);
	policy_decision_format(&d, line, sizeof line);
	if (strcmp(line, want))
		fail_msg("got \"%s\", want \"%s\"", line, want);
}

#define ALLOWED_BY(x) "ALLOW " x
#define NO_ALLOW_APPLIES "ALLOW (no ALLOW policy applies)"
#define NONE_MATCHED "DENY (no ALLOW policy matched)"

static void test_order(void **state)
{
	struct config *c = load("data/policy/order.yaml");
	/* DENY beats a matching ALLOW */
	expect(c, rq("prod", NULL, "cluster.local/ns/prod/sa/admin"), "DENY prod/deny-admin audit");
	/* ALLOW matches, no DENY */
	expect(c, rq("prod", NULL, "cluster.local/ns/prod/sa/frontend"), "ALLOW prod/allow-frontend audit");
	/* an ALLOW applies, nothing matched → deny; plaintext never matches principals */
	expect(c, rq("prod", NULL, "cluster.local/ns/prod/sa/other"), "DENY (no ALLOW policy matched) audit");
	expect(c, rq("prod", NULL, NULL), "DENY (no ALLOW policy matched) audit");
	/* other namespace: nothing applies → allow, no audit */
	expect(c, rq("dev", NULL, NULL), NO_ALLOW_APPLIES);
	assert_int_equal(policy_set_count(c->policies), 4);
	unload(c);
}

static void test_allow_nothing_and_all(void **state)
{
	struct config *c = load("data/policy/allow_nothing.yaml");
	expect(c, rq("locked", NULL, "td/ns/locked/sa/x"), NONE_MATCHED);
	expect(c, rq("empty-rules", NULL, "td/ns/x/sa/x"), NONE_MATCHED);
	expect(c, rq("open", NULL, NULL), ALLOWED_BY("open/allow-all"));
	expect(c, rq("open", NULL, "td/ns/x/sa/x"), ALLOWED_BY("open/allow-all"));
	expect(c, rq("elsewhere", NULL, NULL), NO_ALLOW_APPLIES);
	unload(c);
}

static void test_scope(void **state)
{
	struct config *c = load("data/policy/scope.yaml");
	/* root namespace policy applies to every namespace */
	expect(c, rq("anywhere", NULL, "td/ns/evil/sa/x"), "DENY istio-system/mesh-deny-evil");
	expect(c, rq("anywhere", NULL, "td/ns/good/sa/x"), NO_ALLOW_APPLIES);
	/* root namespace selector: only workloads with tier=db; notPrincipals ["*"] = plaintext */
	struct rq *q = rq("anywhere", "x", NULL);
	label(q, "tier", "db");
	expect(c, q, "DENY istio-system/mesh-deny-db-plaintext");
	q = rq("anywhere", "x", "td/ns/a/sa/b");
	label(q, "tier", "db");
	expect(c, q, NO_ALLOW_APPLIES);
	expect(c, rq("anywhere", "x", NULL), NO_ALLOW_APPLIES);
	/* all selector labels must be present */
	expect(c, rq("shop", "web", "td/ns/other/sa/x"), NO_ALLOW_APPLIES);
	q = rq("shop", "web", "td/ns/other/sa/x");
	label(q, "version", "v1");
	expect(c, q, NONE_MATCHED);
	q = rq("shop", "web", "td/ns/shop/sa/x");
	label(q, "version", "v1");
	label(q, "extra", "ok");
	expect(c, q, ALLOWED_BY("shop/web-only"));
	/* the selector does not leak into another namespace */
	q = rq("shop2", "web", "td/ns/other/sa/x");
	label(q, "version", "v1");
	expect(c, q, NO_ALLOW_APPLIES);
	unload(c);
}

static void test_principals(void **state)
{
	struct config *c = load("data/policy/match.yaml");
	expect(c, rq("m", "principals", "td/ns/a/sa/exact"), ALLOWED_BY("m/principals"));
	expect(c, rq("m", "principals", "td/ns/a/sa/exactly"), NONE_MATCHED);
	expect(c, rq("m", "principals", "td/ns/prefixed/sa/y"), ALLOWED_BY("m/principals"));
	expect(c, rq("m", "principals", "other/ns/q/sa/suffix"), ALLOWED_BY("m/principals"));
	expect(c, rq("m", "principals", NULL), NONE_MATCHED);
	expect(c, rq("m", "any-principal", "x"), ALLOWED_BY("m/any-principal"));
	expect(c, rq("m", "any-principal", NULL), NONE_MATCHED);
	expect(c, rq("m", "not-principals", "td/ns/a/sa/bad"), NONE_MATCHED);
	expect(c, rq("m", "not-principals", "td/ns/a/sa/good"), ALLOWED_BY("m/not-principals"));
	/* a plaintext peer has no principal, so notPrincipals is satisfied (as in Envoy RBAC) */
	expect(c, rq("m", "not-principals", NULL), ALLOWED_BY("m/not-principals"));
	unload(c);
}

static void test_namespaces_ips_ports(void **state)
{
	struct config *c = load("data/policy/match.yaml");
	expect(c, rq("m", "namespaces", "td/ns/team-a/sa/x"), ALLOWED_BY("m/namespaces"));
	expect(c, rq("m", "namespaces", "td/ns/team-x/sa/x"), NONE_MATCHED);
	expect(c, rq("m", "namespaces", "td/ns/other/sa/team-a"), NONE_MATCHED);
	expect(c, rq("m", "namespaces", NULL), NONE_MATCHED);
	struct rq *q = rq("m", "ip-blocks", NULL);
	q->r.source_ip = inet_addr("198.18.0.5");
	expect(c, q, ALLOWED_BY("m/ip-blocks"));
	q->r.source_ip = inet_addr("198.18.0.200");
	expect(c, q, NONE_MATCHED);
	q->r.source_ip = inet_addr("198.19.0.7");
	expect(c, q, ALLOWED_BY("m/ip-blocks"));
	q->r.source_ip = inet_addr("198.19.0.8");
	expect(c, q, NONE_MATCHED);
	q = rq("m", "ports", NULL);
	q->r.dest_port = 8080;
	expect(c, q, ALLOWED_BY("m/ports"));
	q->r.dest_port = 9090;   /* listed in ports and notPorts: excluded */
	expect(c, q, NONE_MATCHED);
	q->r.dest_port = 80;
	expect(c, q, NONE_MATCHED);
	unload(c);
}

static void test_http_operation(void **state)
{
	struct config *c = load("data/policy/match.yaml");
	struct rq *q = rq("m", "http", NULL);
	http(q, "GET", "/api/v1?x=/api/private", "a.example.com");
	expect(c, q, ALLOWED_BY("m/http"));
	http(q, "GET", "/api/private/x", "a.example.com");
	expect(c, q, NONE_MATCHED);
	http(q, "HEAD", "/img/logo.png?size=2", NULL);
	expect(c, q, ALLOWED_BY("m/http"));
	http(q, "GET", "/exact?q", NULL);
	expect(c, q, ALLOWED_BY("m/http"));
	http(q, "GET", "/exactly", NULL);
	expect(c, q, NONE_MATCHED);
	http(q, "DELETE", "/api/v1", NULL);
	expect(c, q, NONE_MATCHED);
	/* second operation: hosts are case-insensitive */
	http(q, "POST", "/anything", "ADMIN.example.COM");
	expect(c, q, ALLOWED_BY("m/http"));
	http(q, "POST", "/anything", "other.example.com");
	expect(c, q, NONE_MATCHED);
	/* the same policy on a tcp listener: ALLOW needing L7 never matches */
	q = rq("m", "http", NULL);
	expect(c, q, NONE_MATCHED);
	unload(c);
}

static void test_when(void **state)
{
	struct config *c = load("data/policy/match.yaml");
	struct rq *q = rq("m", "when", NULL);
	q->r.source_ip = inet_addr("198.18.4.4");
	q->r.sni = "api.example.com";
	header(q, "x-env", "prod");
	expect(c, q, ALLOWED_BY("m/when"));
	q->headers[0].value = "stage-2";
	q->headers[0].value_len = 7;
	expect(c, q, ALLOWED_BY("m/when"));
	q->headers[0].value = "stage-old";
	q->headers[0].value_len = 9;
	expect(c, q, NONE_MATCHED);
	q->headers[0].value = "prod";
	q->headers[0].value_len = 4;
	q->r.dest_port = 22;
	expect(c, q, NONE_MATCHED);
	q->r.dest_port = 8443;
	q->r.sni = NULL;
	expect(c, q, NONE_MATCHED);
	q->r.sni = "api.example.com";
	q->r.source_ip = inet_addr("203.0.113.9");
	expect(c, q, NONE_MATCHED);
	q->r.source_ip = inet_addr("198.18.4.4");
	q->r.nheaders = 0;
	expect(c, q, NONE_MATCHED);

	q = rq("m", "when-identity", "td/ns/a/sa/ok");
	q->r.dest_ip = inet_addr("198.18.1.77");
	expect(c, q, ALLOWED_BY("m/when-identity"));
	q->r.principal = "td/ns/a/sa/bad";
	expect(c, q, NONE_MATCHED);
	q->r.principal = "td/ns/b/sa/ok";
	expect(c, q, NONE_MATCHED);
	q->r.principal = NULL;  /* source.namespace never matches plaintext */
	expect(c, q, NONE_MATCHED);
	q->r.principal = "td/ns/a/sa/ok";
	q->r.dest_ip = inet_addr("198.18.2.77");
	expect(c, q, NONE_MATCHED);
	unload(c);
}

static void test_rules_or(void **state)
{
	struct config *c = load("data/policy/match.yaml");
	struct rq *q = rq("m", "rules-or", "td/ns/a/sa/one");
	expect(c, q, NONE_MATCHED);     /* from matches, to (port 1) does not: AND */
	q->r.dest_port = 1;
	expect(c, q, ALLOWED_BY("m/rules-or"));
	q = rq("m", "rules-or", "td/ns/a/sa/two");
	expect(c, q, ALLOWED_BY("m/rules-or"));
	q = rq("m", "rules-or", NULL);
	q->r.source_ip = inet_addr("198.18.9.9");
	expect(c, q, ALLOWED_BY("m/rules-or"));  /* second source entry: OR */
	unload(c);
}

static void test_dry_run(void **state)
{
	struct config *c = load("data/policy/dry_run.yaml");
	/* dry-run policies never enforce: no enforced ALLOW applies → allow */
	expect(c, rq("d", NULL, "td/ns/b/sa/b"),
	       "ALLOW (no ALLOW policy applies) dry-run: would have denied by d/try-deny-b");
	expect(c, rq("d", NULL, "td/ns/a/sa/a"),
	       "ALLOW (no ALLOW policy applies) dry-run: would have allowed by d/try-allow-a");
	expect(c, rq("d", NULL, "td/ns/c/sa/c"),
	       "ALLOW (no ALLOW policy applies) dry-run: would have denied (no dry-run ALLOW policy matched)");
	expect(c, rq("other", NULL, "td/ns/b/sa/b"), NO_ALLOW_APPLIES);
	struct policy_decision d;
	policy_evaluate(c->policies, &rq("d", NULL, "td/ns/b/sa/b")->r, &d);
	assert_true(d.dry_run_matched);
	assert_int_equal(d.dry_run_action, POLICY_DENY);
	assert_string_equal(d.dry_run_name, "try-deny-b");
	assert_int_equal(d.action, POLICY_ALLOW);
	unload(c);
}

static void test_tcp_l7(void **state)
{
	struct config *c = load("data/policy/tcp_l7.yaml");
	/* tcp: the ALLOW rule needing methods never matches; the L4-only rule does */
	expect(c, rq("t", NULL, "td/ns/t/sa/client"), NONE_MATCHED);
	expect(c, rq("t", NULL, "td/ns/t/sa/l4"), ALLOWED_BY("t/allow-get"));
	/* http: the method decides */
	struct rq *q = rq("t", NULL, "td/ns/t/sa/client");
	http(q, "GET", "/", NULL);
	expect(c, q, ALLOWED_BY("t/allow-get"));
	/* tcp: DENY drops methods and the header condition, keeps ports */
	q = rq("t", NULL, "td/ns/t/sa/x");
	expect(c, q, "DENY t/deny-post-from-x");
	q->r.dest_port = 9000;
	expect(c, q, NONE_MATCHED);
	/* http: DENY needs POST and the header */
	q = rq("t", NULL, "td/ns/t/sa/x");
	http(q, "POST", "/", NULL);
	expect(c, q, NONE_MATCHED);
	header(q, "X-Debug", "1");
	expect(c, q, "DENY t/deny-post-from-x");
	struct policy_info info;
	policy_set_info(c->policies, 0, &info);
	assert_true(info.has_l7);
	assert_string_equal(info.name, "allow-get");
	unload(c);
}

static void test_peer_authentication(void **state)
{
	struct config *c = load("data/policy/peer.yaml");
	struct config_label fin = {"app", "finance"}, inh = {"app", "inherit"};
	assert_int_equal(policy_mtls_mode(c->policies, "prod", NULL, 0, 80), POLICY_MTLS_STRICT);
	assert_int_equal(policy_mtls_mode(c->policies, "legacy", NULL, 0, 80), POLICY_MTLS_PERMISSIVE);
	assert_int_equal(policy_mtls_mode(c->policies, "legacy", &fin, 1, 80), POLICY_MTLS_STRICT);
	assert_int_equal(policy_mtls_mode(c->policies, "legacy", &fin, 1, 8080), POLICY_MTLS_DISABLE);
	assert_int_equal(policy_mtls_mode(c->policies, "legacy", &fin, 1, 9090), POLICY_MTLS_STRICT);
	assert_int_equal(policy_mtls_mode(c->policies, "legacy", &inh, 1, 80), POLICY_MTLS_PERMISSIVE);
	assert_int_equal(policy_mtls_mode(c->policies, "legacy", &inh, 1, 7070), POLICY_MTLS_STRICT);
	/* a selector in another namespace does not apply */
	assert_int_equal(policy_mtls_mode(c->policies, "prod", &fin, 1, 8080), POLICY_MTLS_STRICT);
	assert_int_equal(policy_set_peer_count(c->policies), 4);
	unload(c);

	struct policy_set *set;
	struct config_errors errs = {.count = 0};
	assert_int_equal(policy_set_from_yaml("none", "", 0, NULL, &set, &errs), 0);
	/* nothing decides: meshgate's default is STRICT (Istio's is PERMISSIVE) */
	assert_int_equal(policy_mtls_mode(set, "x", NULL, 0, 1), POLICY_MTLS_STRICT);
	policy_set_free(set);
}

static void test_root_namespace_from_appliance(void **state)
{
	static const char text[] =
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
		"metadata: {name: deny-all, namespace: mesh-root}\nspec: {action: DENY, rules: [{}]}\n";
	struct policy_set *set;
	struct config_errors errs = {.count = 0};
	assert_int_equal(policy_set_from_yaml("t", text, strlen(text), "mesh-root", &set, &errs), 0);
	struct policy_decision d;
	policy_evaluate(set, &rq("any", NULL, NULL)->r, &d);
	assert_int_equal(d.action, POLICY_DENY);
	policy_set_free(set);
	assert_int_equal(policy_set_from_yaml("t", text, strlen(text), NULL, &set, &errs), 0);
	policy_evaluate(set, &rq("any", NULL, NULL)->r, &d);
	assert_int_equal(d.action, POLICY_ALLOW);
	policy_set_free(set);
}

static void test_bad_policies(void **state)
{
	static const char *const want[] = {
		"data/policy/bad.yaml:5: spec.action: CUSTOM (external authorization) is not supported by meshgate; use ALLOW or DENY",
		"data/policy/bad.yaml:10: spec.rules[0].from[0].source.requestPrincipals: not supported: meshgate has no JWT authentication (RequestAuthentication), so request principals never exist",
		"data/policy/bad.yaml:9: spec.rules[0].from[0].source.principals[0]: write principals without \"spiffe://\", e.g. \"td/ns/a/sa/x\"",
		"data/policy/bad.yaml:11: spec.rules[0].from[0].source.ipBlocks[0]: must be an IPv4 address or CIDR (e.g. 198.18.0.0/16), got \"10.0.0.0/33\"",
		"data/policy/bad.yaml:11: spec.rules[0].from[0].source.ipBlocks[1]: IPv6 is not supported, got \"fe80::1\"",
		"data/policy/bad.yaml:13: spec.rules[0].to[0].operation.methods[0]: must be an upper-case HTTP method, got \"get\"",
		"data/policy/bad.yaml:13: spec.rules[0].to[0].operation.paths[0]: must start with \"/\" or \"*\", got \"api\"",
		"data/policy/bad.yaml:13: spec.rules[0].to[0].operation.ports[0]: must be a port number 1-65535, got \"http\"",
		"data/policy/bad.yaml:15: spec.rules[0].when[0].key: \"request.auth.claims[iss]\" is not supported: meshgate has no JWT authentication (RequestAuthentication)",
		"data/policy/bad.yaml:16: spec.rules[0].when[1]: must set values or notValues for key \"source.ip\"",
		"data/policy/bad.yaml:17: spec.rules[0].when[2].key: unknown condition key \"experimental.envoy.filters.x\" (supported: source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni, request.headers[NAME])",
		"data/policy/bad.yaml:18: spec.rules[0].when[3].values[0]: must be a port number 1-65535, got \"99999\"",
		"data/policy/bad.yaml:22: metadata.annotations.istio.io/dry-run: must be \"true\" or \"false\", got \"maybe\"",
		"data/policy/bad.yaml:25: spec.selector.matchExpressions: unknown field",
		"data/policy/bad.yaml:24: spec.action: unknown action \"PERMIT\" (ALLOW, DENY or AUDIT)",
		"data/policy/bad.yaml:29: spec.rules[0].unknown: unknown field",
		"data/policy/bad.yaml:27: spec.rules[0].from: must not be an empty list (leave it out to match any source)",
		"data/policy/bad.yaml:28: spec.rules[0].to[0].operation: must not be empty: set at least one of hosts, ports, methods, paths or their not* forms",
		"data/policy/bad.yaml:30: spec.rules[1].from[0].source.principals[0]: \"*\" is allowed only at the start or the end, got \"a*b\"",
		"data/policy/bad.yaml:32: apiVersion: must be security.istio.io/v1 or security.istio.io/v1beta1 for AuthorizationPolicy, got \"security.istio.io/v2\"",
		"data/policy/bad.yaml:40: spec.mtls.mode: unknown mode \"SOMETIMES\" (UNSET, STRICT, PERMISSIVE or DISABLE)",
		"data/policy/bad.yaml:41: spec.portLevelMtls: requires spec.selector (port-level mTLS applies to selected workloads only)",
	};
	struct config *cfg = malloc(sizeof *cfg);
	struct config_errors *errs = malloc(sizeof *errs);
	const char *files[] = {"data/policy/bad.yaml"};
	assert_int_equal(config_load_ex(files, 1, CONFIG_LOAD_POLICIES_ONLY, cfg, errs), -1);
	assert_null(cfg->policies);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	config_errors_print(errs, out);
	fclose(out);
	char *line = buf;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = 0;
		if (strcmp(line, want[i]))
			fail_msg("error %zu:\n got  %s\n want %s", i, line, want[i]);
		line = nl + 1;
	}
	assert_string_equal(line, "");
	free(buf);
	free(cfg);
	free(errs);
}

static void test_duplicate_and_syntax(void **state)
{
	static const char dup[] =
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: n}\n---\n"
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: n}\n";
	struct policy_set *set;
	struct config_errors errs = {.count = 0};
	assert_int_equal(policy_set_from_yaml("dup.yaml", dup, strlen(dup), NULL, &set, &errs), -1);
	assert_int_equal(errs.count, 1);
	assert_int_equal(errs.items[0].line, 7);
	assert_string_equal(errs.items[0].field, "metadata.name");
	assert_string_equal(errs.items[0].message, "duplicate AuthorizationPolicy n/a (first defined at dup.yaml:1)");
	static const char bad[] = "kind: AuthorizationPolicy\nmetadata: {name: [\n";
	errs.count = 0;
	assert_int_equal(policy_set_from_yaml("syn.yaml", bad, strlen(bad), NULL, &set, &errs), -1);
	assert_int_equal(errs.items[0].line, 3);
	assert_non_null(strstr(errs.items[0].message, "YAML syntax error"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_allow_nothing_and_all),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_principals),
		cmocka_unit_test(test_namespaces_ips_ports),
		cmocka_unit_test(test_http_operation),
		cmocka_unit_test(test_when),
		cmocka_unit_test(test_rules_or),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_tcp_l7),
		cmocka_unit_test(test_peer_authentication),
		cmocka_unit_test(test_root_namespace_from_appliance),
		cmocka_unit_test(test_bad_policies),
		cmocka_unit_test(test_duplicate_and_syntax),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
