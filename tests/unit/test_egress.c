/* Unit tests for the egress area: config parsing of spec.egress,
 * spec.networkPolicies and ServiceEntry documents (a good file, and bad
 * snippets with their exact FILE:LINE: field: message), SNI peek on real
 * ClientHellos captured from openssl and curl (tests/data/sni) and on
 * crafted ones (split at every byte, across records, malformed), host
 * matching (exact, *.suffix, longest suffix), stable address allocation
 * (order-independent, kept across reloads, full table), egress decisions,
 * and the DNS responder answering through the egress engine. Runs from tests/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <cmocka.h>
#include "appliance/config.h"
#include "appliance/egress.h"
#include "tests/unit/data_file.h"
#define FUZZ_SNI_NO_MAIN
#include "tests/fuzz/fuzz_sni.c"

static struct config *cfg;
static struct config_errors *errs;

static int setup(void **state)
{
	cfg = calloc(1, sizeof *cfg);
	errs = calloc(1, sizeof *errs);
	return cfg && errs ? 0 : -1;
}

static int teardown(void **state)
{
	free(cfg);
	free(errs);
	return 0;
}

static int load_file(const char *path)
{
	const char *files[] = {path};
	return config_load(files, 1, cfg, errs);
}

/* ------------------------------------------------------------ config */

static void test_config_good(void **state)
{
	int rc = load_file("data/egress/good.yaml");
	if (rc)
		config_errors_print(errs, stderr);
	assert_int_equal(rc, 0);
	const struct egress_config *E = cfg->egress;
	assert_non_null(E);
	assert_true(E->enabled);
	assert_int_equal(E->ninside, 1);
	assert_int_equal(E->inside[0], 0);
	assert_int_equal(E->outside, 1);
	assert_int_equal(E->mode, EGRESS_MODE_REGISTRY_ONLY);
	assert_int_equal(E->range_addr, 0xf0f00000);
	assert_int_equal(E->range_prefix, 16);
	assert_true(E->dns);
	assert_int_equal(E->dns_upstream, inet_addr("198.18.31.53"));
	assert_int_equal(E->dns_upstream_port, 53);
	assert_int_equal(E->dns_unknown, DNS_UNKNOWN_REFUSED);
	assert_int_equal(E->dns_ttl, 15);
	assert_int_equal(E->dns_rate, 20);
	assert_int_equal(E->dns_burst, 40);
	/* ServiceEntries */
	assert_int_equal(E->nentries, 3);
	const struct egress_entry *s = &E->entries[0];
	assert_string_equal(s->name, "allowed");
	assert_string_equal(s->namespace_, "egress");
	assert_int_equal(s->nhosts, 2);
	assert_string_equal(s->hosts[1], "api.allowed.example");      /* lower-cased */
	assert_int_equal(s->resolution, EGRESS_RES_DNS);
	assert_int_equal(s->nports, 2);
	assert_int_equal(s->ports[0].number, 443);
	assert_int_equal(s->ports[0].protocol, EGRESS_PROTO_TLS);
	assert_int_equal(s->ports[1].protocol, EGRESS_PROTO_HTTP);
	assert_int_equal(s->line, 41);
	s = &E->entries[1];
	assert_string_equal(s->hosts[0], "*.cdn.example");
	assert_int_equal(s->resolution, EGRESS_RES_STATIC);
	assert_int_equal(s->nendpoints, 1);
	assert_int_equal(s->endpoints[0].ip, inet_addr("198.18.31.10"));
	assert_int_equal(s->endpoints[0].ports[0].number, 8443);
	s = &E->entries[2];
	assert_string_equal(s->namespace_, "default");
	assert_int_equal(s->naddresses, 1);
	assert_int_equal(s->addresses[0].addr, 0xc6121f40);
	assert_int_equal(s->addresses[0].prefix, 26);
	/* network policies: inside-in ingress[0] = 2 peers x 2 ports, ingress[1]
	 * = ICMP from anywhere, outside-out egress[0] = 1 peer x 2 ports */
	assert_int_equal(E->npolicies, 2);
	assert_int_equal(E->ngroups, 3);
	assert_int_equal(E->nrules, 4 + 1 + 2);
	assert_true(E->enforce[0][FILTER_INGRESS]);
	assert_false(E->enforce[0][FILTER_EGRESS]);
	assert_false(E->enforce[1][FILTER_INGRESS]);
	assert_true(E->enforce[1][FILTER_EGRESS]);
	assert_string_equal(E->groups[0].policy, "inside-in");
	assert_int_equal(E->groups[0].rule, 0);
	assert_int_equal(E->groups[0].line, 27);
	assert_int_equal(E->groups[2].dir, FILTER_EGRESS);
	const struct filter_rule *r = &E->rules[0];
	assert_int_equal(r->peer.addr, 0xc6121c00);
	assert_int_equal(r->peer.prefix, 24);
	assert_int_equal(r->nexcept, 1);
	assert_int_equal(r->except[0].prefix, 25);
	assert_int_equal(r->proto, FILTER_PROTO_TCP);
	assert_int_equal(r->port_lo, 22);
	assert_int_equal(r->port_hi, 22);
	assert_int_equal(E->rules[1].port_lo, 8000);
	assert_int_equal(E->rules[1].port_hi, 8100);
	assert_int_equal(E->rules[3].peer.prefix, 32);
	assert_int_equal(E->rules[4].proto, FILTER_PROTO_ICMP);
	assert_int_equal(E->rules[4].peer.prefix, 0);
	assert_int_equal(E->rules[4].group, 1);
	assert_int_equal(E->rules[6].proto, FILTER_PROTO_UDP);
	assert_int_equal(E->rules[6].port, 1);
	assert_int_equal(E->rules[6].dir, FILTER_EGRESS);
	/* the rules build a filter */
	struct filter_config fc;
	memset(&fc, 0, sizeof fc);
	fc.rules = E->rules; fc.nrules = E->nrules; fc.ngroups = E->ngroups; fc.nports = (unsigned)cfg->nports;
	char err[128];
	struct filter *f = filter_new(&fc, err, sizeof err);
	assert_non_null(f);
	assert_int_equal(filter_match(f, 0, FILTER_INGRESS, 6, 0xc6121d07, 8050), 3);
	assert_int_equal(filter_match(f, 0, FILTER_INGRESS, 6, 0xc6121c81, 22), -1);
	filter_free(f);
	config_free(cfg);
	assert_null(cfg->egress);
}

/* The base document: Appliance with two ports, then whatever a case adds.
 * Line numbers below count from the first line of BASE. */
#define BASE \
	"apiVersion: meshgate.dev/v1alpha1\n"                                      /* 1 */ \
	"kind: Appliance\n"                                                        /* 2 */ \
	"metadata: {name: gw}\n"                                                   /* 3 */ \
	"spec:\n"                                                                  /* 4 */ \
	"  trustDomain: cluster.local\n"                                           /* 5 */ \
	"  identity: {certificateChain: gw.pem, privateKey: gw.key}\n"             /* 6 */ \
	"  trustBundles: [{trustDomain: cluster.local, roots: ca.pem}]\n"          /* 7 */ \
	"  ports:\n"                                                               /* 8 */ \
	"    - {name: inside, device: \"net_ring0\", address: 198.18.28.1/24}\n"   /* 9 */ \
	"    - {name: outside, device: \"net_ring1\", address: 198.18.30.1/24}\n"  /* 10 */

static int load_text(const char *text)
{
	return config_load_buffer("t.yaml", "data/config/good", text, strlen(text), cfg, errs);
}

/* Asserts that loading fails with an error "t.yaml:LINE: FIELD: MESSAGE". */
static void expect_error(const char *text, int line, const char *field, const char *message)
{
	int rc = load_text(text);
	assert_int_equal(rc, -1);
	for (int i = 0; i < errs->count && i < CONFIG_MAX_ERRORS; i++) {
		const struct config_error *e = &errs->items[i];
		if (e->line == line && !strcmp(e->field, field) && !strcmp(e->message, message))
			return;
	}
	config_errors_print(errs, stderr);
	fail_msg("expected t.yaml:%d: %s: %s", line, field, message);
}

static void test_config_errors(void **state)
{
	expect_error(BASE "  egress: {mode: SOMETIMES}\n", 11, "spec.egress.ports",
		     "required (the inside port names, from spec.ports)");
	expect_error(BASE "  egress: {ports: [inside], mode: SOMETIMES}\n", 11, "spec.egress.mode",
		     "must be REGISTRY_ONLY or ALLOW_ANY, got \"SOMETIMES\"");
	expect_error(BASE "  egress: {ports: [insid]}\n", 11, "spec.egress.ports[0]",
		     "no port named \"insid\" in spec.ports");
	expect_error(BASE "  egress: {ports: [inside], outsidePort: inside}\n", 11, "spec.egress.outsidePort",
		     "\"inside\" is also an inside port (spec.egress.ports)");
	expect_error(BASE "  egress: {ports: [inside], addressRange: 198.18.28.0/16}\n", 11, "spec.egress.addressRange",
		     "host bits set in \"198.18.28.0/16\" (did you mean 198.18.0.0/16?)");
	expect_error(BASE "  egress: {ports: [inside], addressRange: 198.18.0.0/16}\n", 11, "spec.egress.addressRange",
		     "overlaps the subnet of port \"inside\"");
	expect_error(BASE "  egress:\n    ports: [inside]\n    mode: ALLOW_ANY\n    dns: {ttl: 5}\n", 14,
		     "spec.egress.dns.upstream", "required in ALLOW_ANY mode (unknown names are forwarded there)");
	expect_error(BASE "  egress:\n    ports: [inside]\n    dns: {upstream: \"1.2.3.4:99999\", unknownAnswer: SILENCE}\n", 13,
		     "spec.egress.dns.upstream", "must be an IPv4 address with an optional :PORT (e.g. 198.18.31.53), got \"1.2.3.4:99999\"");
	expect_error(BASE "  egress:\n    ports: [inside]\n    dns: {unknownAnswer: SILENCE}\n", 13,
		     "spec.egress.dns.unknownAnswer", "must be NXDOMAIN or REFUSED, got \"SILENCE\"");
	expect_error(BASE "  egress:\n    ports: [inside]\n    dns: {rateLimit: {perSecond: 5, burst: 0}}\n", 13,
		     "spec.egress.dns.rateLimit.burst", "must be a number 1-1000000, got \"0\"");

	/* network policies */
	expect_error(BASE "  networkPolicies:\n    - {name: a, ports: [inside], ingress: [{from: [{podSelector: {}}]}]}\n", 12,
		     "spec.networkPolicies[0].ingress[0].from[0]",
		     "podSelector and namespaceSelector select nothing on an appliance: use ipBlock");
	expect_error(BASE "  networkPolicies:\n    - name: a\n      ports: [inside]\n      ingress:\n"
		     "        - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]\n", 15,
		     "spec.networkPolicies[0].ingress[0].from[0].ipBlock.except[0]",
		     "must be a smaller block inside the cidr (as in Kubernetes)");
	expect_error(BASE "  networkPolicies:\n    - name: a\n      ports: [inside]\n      ingress:\n"
		     "        - ports: [{protocol: TCP, port: 9000, endPort: 8000}]\n", 15,
		     "spec.networkPolicies[0].ingress[0].ports[0].endPort", "must be at least port (9000), got 8000");
	expect_error(BASE "  networkPolicies:\n    - name: a\n      ports: [inside]\n      ingress:\n"
		     "        - ports: [{protocol: TCP, port: https}]\n", 15,
		     "spec.networkPolicies[0].ingress[0].ports[0].port", "named ports are not supported on an appliance, got \"https\"");
	expect_error(BASE "  networkPolicies:\n    - name: a\n      ports: [inside]\n      ingress:\n"
		     "        - ports: [{protocol: SCTP, port: 1}]\n", 15,
		     "spec.networkPolicies[0].ingress[0].ports[0].protocol", "must be TCP, UDP or ICMP, got \"SCTP\"");
	expect_error(BASE "  networkPolicies:\n    - name: a\n      ports: [inside]\n      policyTypes: [Ingress]\n"
		     "      egress: []\n", 15,
		     "spec.networkPolicies[0].policyTypes", "egress rules are given but policyTypes does not list Egress");
	expect_error(BASE "  networkPolicies:\n    - {name: a, ports: [inside]}\n    - {name: a, ports: []}\n", 13,
		     "spec.networkPolicies[1].ports", "at least one port name (from spec.ports) is required");
	expect_error(BASE "  networkPolicies:\n    - {name: a, ports: [inside]}\n    - {name: a, ports: [outside]}\n", 13,
		     "spec.networkPolicies[1].name", "duplicate policy name \"a\" (also spec.networkPolicies[0])");

	/* ServiceEntry */
#define SE "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec:\n"  /* 11-15 */
	expect_error(BASE SE "  hosts: [\"*\"]\n  ports: [{number: 443, protocol: TLS}]\n", 16, "spec.hosts[0]",
		     "\"*\" would declare every host: use mode ALLOW_ANY in spec.egress instead");
	expect_error(BASE SE "  hosts: [\"api.*.example\"]\n  ports: [{number: 443, protocol: TLS}]\n", 16, "spec.hosts[0]",
		     "must be a DNS name, optionally starting with \"*.\" (e.g. *.example.com), got \"api.*.example\"");
	expect_error(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: GRPC}]\n", 17, "spec.ports[0].protocol",
		     "must be TLS, HTTPS, HTTP or TCP (the protocols the egress gateway can route), got \"GRPC\"");
	expect_error(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}, {number: 443, protocol: TCP}]\n", 17,
		     "spec.ports[1].number", "port 443 is declared twice (also spec.ports[0])");
	expect_error(BASE SE "  hosts: [a.example]\n  resolution: STATIC\n  ports: [{number: 443, protocol: TLS}]\n", 17,
		     "spec.endpoints", "resolution STATIC needs endpoints");
	expect_error(BASE SE "  hosts: [\"*.a.example\"]\n  resolution: DNS\n  ports: [{number: 443, protocol: TLS}]\n", 17,
		     "spec.resolution", "DNS resolution of a wildcard host needs endpoints (which name would be resolved?)");
	expect_error(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}]\n  workloadSelector: {}\n", 18,
		     "spec.workloadSelector", "not supported on an appliance (use endpoints)");
	expect_error(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}]\n  endpoints: [{address: \"fe80::1\"}]\n", 18,
		     "spec.endpoints[0].address", "IPv6 and unix addresses are not supported, got \"fe80::1\"");
	expect_error(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}]\n---\n"
		     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec: {hosts: [b.example], ports: [{number: 1, protocol: TCP}]}\n",
		     21, "metadata.name", "duplicate ServiceEntry default/se (also t.yaml:12)");
	expect_error(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}]\n---\n"
		     "apiVersion: networking.istio.io/v2\nkind: ServiceEntry\nmetadata: {name: se2}\nspec: {hosts: [b.example], ports: [{number: 1, protocol: TCP}]}\n",
		     19, "apiVersion", "must be networking.istio.io/v1 (or v1beta1, v1alpha3) for kind ServiceEntry, got \"networking.istio.io/v2\"");
	/* a ServiceEntry port that is also a listener on the inside port */
	expect_error(BASE "  services: [{name: d, namespace: d, demo: true}]\n"
		     "  listeners: [{name: l, port: inside, listen: 443, protocol: http, service: d}]\n"
		     "  egress: {ports: [inside]}\n" SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}]\n",
		     15, "spec.ports", "port 443 is also listener \"l\" on inside port \"inside\"");

	/* a ServiceEntry without spec.egress loads, with a warning */
	assert_int_equal(load_text(BASE SE "  hosts: [a.example]\n  ports: [{number: 443, protocol: TLS}]\n"), 0);
	assert_int_equal(cfg->warnings.count, 1);
	assert_string_equal(cfg->warnings.items[0].message, "ServiceEntry documents have no effect without spec.egress in the Appliance");
	config_free(cfg);
	/* no egress sections at all: nothing allocated */
	assert_int_equal(load_text(BASE), 0);
	assert_null(cfg->egress);
	config_free(cfg);
}

/* ------------------------------------------------------------ SNI */

/* A ClientHello with `sni` (NULL = none), `pad` bytes of padding extension,
 * its handshake split over `records` records. Returns the length. */
static size_t hello(uint8_t *out, const char *sni, size_t pad, int records)
{
	uint8_t body[20000];
	size_t n = 0;
	body[n++] = 3; body[n++] = 3;
	memset(body + n, 0xab, 32); n += 32;
	body[n++] = 0;                          /* session id */
	body[n++] = 0; body[n++] = 4; body[n++] = 0x13; body[n++] = 1; body[n++] = 0xc0; body[n++] = 0x2f;
	body[n++] = 1; body[n++] = 0;           /* compression: null */
	size_t ext_at = n;
	n += 2;
	if (sni) {
		size_t l = strlen(sni);
		body[n++] = 0; body[n++] = 0;
		body[n++] = (uint8_t)((l + 5) >> 8); body[n++] = (uint8_t)(l + 5);
		body[n++] = (uint8_t)((l + 3) >> 8); body[n++] = (uint8_t)(l + 3);
		body[n++] = 0;
		body[n++] = (uint8_t)(l >> 8); body[n++] = (uint8_t)l;
		memcpy(body + n, sni, l); n += l;
	}
	if (pad) {
		body[n++] = 0; body[n++] = 21;
		body[n++] = (uint8_t)(pad >> 8); body[n++] = (uint8_t)pad;
		memset(body + n, 0, pad); n += pad;
	}
	size_t ext_len = n - ext_at - 2;
	body[ext_at] = (uint8_t)(ext_len >> 8); body[ext_at + 1] = (uint8_t)ext_len;
	uint8_t hs[20010];
	hs[0] = 1; hs[1] = (uint8_t)(n >> 16); hs[2] = (uint8_t)(n >> 8); hs[3] = (uint8_t)n;
	memcpy(hs + 4, body, n);
	size_t hl = n + 4, o = 0, at = 0;
	for (int r = 0; r < records; r++) {
		size_t take = r == records - 1 ? hl - at : hl / (size_t)records;
		out[o++] = 22; out[o++] = 3; out[o++] = 1;
		out[o++] = (uint8_t)(take >> 8); out[o++] = (uint8_t)take;
		memcpy(out + o, hs + at, take);
		o += take;
		at += take;
	}
	return o;
}

static void test_sni_real_clients(void **state)
{
	static uint8_t buf[20000];
	char name[EGRESS_MAX_HOST];
	size_t n = read_data("data/sni/openssl_hello.bin", buf, sizeof buf);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_FOUND);
	assert_string_equal(name, "api.allowed.example");
	/* every prefix asks for more */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(egress_sni_peek(buf, k, name), EGRESS_SNI_NEED_MORE);
	n = read_data("data/sni/curl_hello.bin", buf, sizeof buf);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_FOUND);
	assert_string_equal(name, "api.allowed.example");
	n = read_data("data/sni/openssl_tls12_upper.bin", buf, sizeof buf);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_FOUND);
	assert_string_equal(name, "www.allowed.example");
	n = read_data("data/sni/openssl_nosni.bin", buf, sizeof buf);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_NONE);
	assert_string_equal(name, "");
}

static void test_sni_crafted(void **state)
{
	static uint8_t buf[40000];
	char name[EGRESS_MAX_HOST];
	size_t n = hello(buf, "a.example", 0, 1);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_FOUND);
	assert_string_equal(name, "a.example");
	/* a ClientHello over three records (and so over segments) */
	n = hello(buf, "split.example", 3000, 3);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_FOUND);
	assert_string_equal(name, "split.example");
	for (size_t k = 0; k < n; k += 7)
		assert_int_equal(egress_sni_peek(buf, k, name), EGRESS_SNI_NEED_MORE);
	/* no SNI; not TLS */
	n = hello(buf, NULL, 10, 1);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_NONE);
	assert_int_equal(egress_sni_peek((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name), EGRESS_SNI_NOT_TLS);
	assert_int_equal(egress_sni_peek((const uint8_t *)"\x16\x02", 2, name), EGRESS_SNI_NOT_TLS);
	/* too big */
	n = hello(buf, "big.example", EGRESS_SNI_MAX_HELLO, 2);
	assert_int_equal(egress_sni_peek(buf, 9, name), EGRESS_SNI_TOO_BIG);
	/* bad names */
	n = hello(buf, "bad_name.example", 0, 1);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
	assert_string_equal(name, "");
	n = hello(buf, "trailing.dot.", 0, 1);
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
	n = hello(buf, "nul\0x", 0, 1);
	buf[n - 2] = 0;
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
	/* lengths that do not add up */
	n = hello(buf, "a.example", 0, 1);
	buf[5 + 4 + 2 + 32 + 1 + 1] = 5;       /* odd cipher-suite length */
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
	n = hello(buf, "a.example", 0, 1);
	buf[n - 9 - 4] += 1;                    /* server_name_list length */
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
	n = hello(buf, "a.example", 0, 1);
	buf[n - 9 - 3] = 1;                     /* a name type other than host_name: skipped */
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_NONE);
	n = hello(buf, "a.example", 0, 1);
	buf[0 + 5] = 2;                         /* ServerHello */
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
	n = hello(buf, "a.example", 0, 1);
	buf[5 + 3] += 1;                        /* handshake longer than its extensions */
	assert_int_equal(egress_sni_peek(buf, n + 1, name), EGRESS_SNI_MALFORMED);
	/* a record of another type in the middle */
	n = hello(buf, "a.example", 100, 2);
	size_t second = 5 + (n - 10) / 2;
	buf[second] = 23;
	assert_int_equal(egress_sni_peek(buf, n, name), EGRESS_SNI_MALFORMED);
}

static void test_http_host(void **state)
{
	char name[EGRESS_MAX_HOST];
#define H(s) (const uint8_t *)(s), strlen(s)
	const char *good = "GET /x HTTP/1.1\r\nUser-Agent: t\r\nhOsT:  Allowed.Example:8080 \r\nAccept: */*\r\n\r\n";
	assert_int_equal(egress_http_host(H(good), name), EGRESS_SNI_FOUND);
	assert_string_equal(name, "allowed.example");
	for (size_t k = 0; k < strlen(good); k++)
		assert_int_equal(egress_http_host((const uint8_t *)good, k, name), EGRESS_SNI_NEED_MORE);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), name), EGRESS_SNI_NONE);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"), name),
			 EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\r\nHost: a.example\r\n x\r\n\r\n"), name), EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\nHost: a.example\n\n"), name), EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("GET / HTTP/2.0\r\nHost: a.example\r\n\r\n"), name), EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\r\nHost: a.example:80x\r\n\r\n"), name), EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\r\nHost: a_b.example\r\n\r\n"), name), EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("GET / HTTP/1.1\r\nHost:\r\n\r\n"), name), EGRESS_SNI_MALFORMED);
	assert_int_equal(egress_http_host(H("\x16\x03\x01"), name), EGRESS_SNI_MALFORMED);
	assert_string_equal(name, "");
	static uint8_t big[EGRESS_SNI_MAX_HELLO + 10];
	memset(big, 'A', sizeof big);
	assert_int_equal(egress_http_host(big, sizeof big, name), EGRESS_SNI_TOO_BIG);
#undef H
}

static void test_sni_fuzz_corpus(void **state)
{
	DIR *d = opendir("data/sni");
	assert_non_null(d);
	struct dirent *e;
	char path[512];
	static uint8_t buf[20000], mut[20000];
	uint32_t rnd = 99;
	int files = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "data/sni/%s", e->d_name);
		assert_int_equal(fuzz_sni_replay_file(path), 0);
		size_t n = read_data(path, buf, sizeof buf);
		for (int k = 0; k < 500; k++) {
			memcpy(mut, buf, n);
			for (int j = 0; j < 1 + k % 3; j++) {
				rnd = rnd * 1103515245u + 12345u;
				mut[(rnd >> 8) % n] = (uint8_t)(rnd >> 20);
			}
			LLVMFuzzerTestOneInput(mut, n);
		}
		files++;
	}
	closedir(d);
	assert_true(files >= 4);
}

/* ------------------------------------------------------------ engine */

static struct egress_entry entries[4];
static struct egress_config ec;

static void engine_config(uint8_t prefix, unsigned max)
{
	memset(&ec, 0, sizeof ec);
	memset(entries, 0, sizeof entries);
	const char *hosts[4][3] = {{"allowed.example", "api.allowed.example", NULL},
				   {"*.cdn.example", NULL, NULL},
				   {"*.eu.cdn.example", "www.cdn.example", NULL},
				   {"db.internal.example", NULL, NULL}};
	for (int i = 0; i < 4; i++) {
		for (int k = 0; hosts[i][k]; k++)
			snprintf(entries[i].hosts[entries[i].nhosts++], EGRESS_MAX_HOST, "%s", hosts[i][k]);
		entries[i].nports = 1;
		entries[i].ports[0].number = i == 3 ? 5432 : 443;
		entries[i].ports[0].protocol = i == 3 ? EGRESS_PROTO_TCP : EGRESS_PROTO_TLS;
	}
	entries[0].nports = 2;
	entries[0].ports[1].number = 80;
	entries[0].ports[1].protocol = EGRESS_PROTO_HTTP;
	entries[3].naddresses = 1;
	entries[3].addresses[0] = (struct filter_cidr){0xc6121f40, 26};
	ec.entries = entries;
	ec.nentries = 4;
	ec.range_addr = prefix ? 0xf0f00000 : 0;
	ec.range_prefix = prefix;
	ec.max_allocations = max;
}

static void test_host_matching(void **state)
{
	char err[128];
	engine_config(0, 0);
	struct egress *e = egress_new(&ec, NULL, err, sizeof err);
	assert_non_null(e);
	assert_int_equal(egress_match_host(e, "allowed.example"), 0);
	assert_int_equal(egress_match_host(e, "api.allowed.example"), 0);
	assert_int_equal(egress_match_host(e, "x.allowed.example"), -1);
	assert_int_equal(egress_match_host(e, "example"), -1);
	assert_int_equal(egress_match_host(e, "cdn.example"), -1);     /* *.x is not x */
	assert_int_equal(egress_match_host(e, "a.cdn.example"), 1);
	assert_int_equal(egress_match_host(e, "a.b.c.cdn.example"), 1);
	assert_int_equal(egress_match_host(e, "www.cdn.example"), 2);  /* exact beats wildcard */
	assert_int_equal(egress_match_host(e, "x.eu.cdn.example"), 2); /* longest suffix */
	assert_int_equal(egress_match_host(e, "eu.cdn.example"), 1);
	assert_int_equal(egress_match_host(e, "xcdn.example"), -1);
	assert_int_equal(egress_match_host(e, "allowed.example.evil"), -1);
	/* no range: DNS answers the inside address for declared names only */
	assert_int_equal(egress_address_for(e, "a.cdn.example", inet_addr("198.18.28.1")), inet_addr("198.18.28.1"));
	assert_int_equal(egress_address_for(e, "evil.example", inet_addr("198.18.28.1")), 0);
	assert_null(egress_host_for_address(e, inet_addr("240.240.0.1")));
	egress_free(e);
}

static void test_allocation(void **state)
{
	char err[128];
	engine_config(16, 100);
	struct egress *a = egress_new(&ec, NULL, err, sizeof err);
	assert_non_null(a);
	uint32_t x = egress_address_for(a, "allowed.example", 0);
	uint32_t y = egress_address_for(a, "api.allowed.example", 0);
	assert_int_not_equal(x, 0);
	assert_int_not_equal(x, y);
	assert_int_equal((ntohl(x) & 0xffff0000), 0xf0f00000);
	assert_int_equal(egress_address_for(a, "allowed.example", 0), x);
	assert_string_equal(egress_host_for_address(a, x), "allowed.example");
	assert_null(egress_address_for(a, "nope.example", 0) ? "allocated" : NULL);
	/* wildcard names get addresses on first use, stable afterwards */
	uint32_t w = egress_address_for(a, "img.cdn.example", 0);
	assert_int_not_equal(w, 0);
	assert_int_equal(egress_address_for(a, "img.cdn.example", 0), w);
	assert_string_equal(egress_host_for_address(a, w), "img.cdn.example");

	/* the same declarations in another order: same addresses for exact hosts */
	struct egress_entry swapped = entries[0];
	entries[0] = entries[3];
	entries[3] = swapped;
	struct egress *b = egress_new(&ec, NULL, err, sizeof err);
	assert_int_equal(egress_address_for(b, "allowed.example", 0), x);
	assert_int_equal(egress_address_for(b, "api.allowed.example", 0), y);
	egress_free(b);
	entries[3] = entries[0];
	entries[0] = swapped;

	/* a reload keeps what was handed out, even wildcard names */
	struct egress *c = egress_new(&ec, a, err, sizeof err);
	assert_int_equal(egress_address_for(c, "img.cdn.example", 0), w);
	assert_string_equal(egress_host_for_address(c, w), "img.cdn.example");
	egress_free(a);
	/* ...but not for a host no longer declared */
	entries[1].nhosts = 0;
	struct egress *d = egress_new(&ec, c, err, sizeof err);
	assert_null(egress_host_for_address(d, w));
	egress_free(c);
	egress_free(d);

	/* a full table refuses and counts */
	engine_config(16, 4);
	struct egress *f = egress_new(&ec, NULL, err, sizeof err);
	assert_int_equal(egress_counters(f)->allocations, 4);  /* the four exact hosts */
	assert_int_equal(egress_address_for(f, "one.cdn.example", 0), 0);
	assert_int_equal(egress_counters(f)->alloc_full, 1);
	assert_int_not_equal(egress_address_for(f, "www.cdn.example", 0), 0);
	egress_free(f);
	/* a tiny range: every address distinct, none the network or broadcast */
	engine_config(30, 100);
	f = egress_new(&ec, NULL, err, sizeof err);
	uint32_t seen[2];
	seen[0] = ntohl(egress_address_for(f, "allowed.example", 0));
	seen[1] = ntohl(egress_address_for(f, "api.allowed.example", 0));
	for (int i = 0; i < 2; i++)
		assert_in_range(seen[i], 0xf0f00001, 0xf0f00002);
	assert_int_not_equal(seen[0], seen[1]);
	assert_int_equal(egress_address_for(f, "db.internal.example", 0), 0);   /* range exhausted */
	egress_free(f);
}

static void test_decide(void **state)
{
	char err[128];
	struct egress_decision dc;
	engine_config(16, 100);
	struct egress *e = egress_new(&ec, NULL, err, sizeof err);
	uint32_t any = inet_addr("198.18.28.1");
	egress_decide(e, EGRESS_PROTO_TLS, "api.allowed.example", any, 443, &dc);
	assert_int_equal(dc.verdict, EGRESS_ALLOW);
	assert_int_equal(dc.entry, 0);
	assert_int_equal(dc.port, 0);
	egress_decide(e, EGRESS_PROTO_TLS, "api.allowed.example", any, 8443, &dc);
	assert_int_equal(dc.verdict, EGRESS_DENY_PORT);
	egress_decide(e, EGRESS_PROTO_TLS, "allowed.example", any, 80, &dc);
	assert_int_equal(dc.verdict, EGRESS_DENY_PROTOCOL);
	egress_decide(e, EGRESS_PROTO_HTTP, "Allowed.Example:80", any, 80, &dc);
	assert_int_equal(dc.verdict, EGRESS_ALLOW);
	assert_string_equal(dc.host, "allowed.example");
	egress_decide(e, EGRESS_PROTO_TLS, "evil.example", any, 443, &dc);
	assert_int_equal(dc.verdict, EGRESS_DENY_HOST);
	egress_decide(e, EGRESS_PROTO_TLS, "bad host", any, 443, &dc);
	assert_int_equal(dc.verdict, EGRESS_DENY_NO_HOST);
	/* plain TCP: by declared addresses, or by an allocated address */
	egress_decide(e, EGRESS_PROTO_TCP, NULL, inet_addr("198.18.31.70"), 5432, &dc);
	assert_int_equal(dc.verdict, EGRESS_ALLOW);
	assert_int_equal(dc.entry, 3);
	egress_decide(e, EGRESS_PROTO_TCP, NULL, inet_addr("198.18.31.200"), 5432, &dc);
	assert_int_equal(dc.verdict, EGRESS_DENY_NO_HOST);
	uint32_t db = egress_address_for(e, "db.internal.example", 0);
	egress_decide(e, EGRESS_PROTO_TCP, NULL, db, 5432, &dc);
	assert_int_equal(dc.verdict, EGRESS_ALLOW);
	assert_string_equal(dc.host, "db.internal.example");
	const struct egress_counters *c = egress_counters(e);
	assert_int_equal(c->allowed, 4);
	assert_int_equal(c->denied_port, 1);
	assert_int_equal(c->denied_protocol, 1);
	assert_int_equal(c->denied_host, 1);
	assert_int_equal(c->denied_no_host, 2);
	egress_free(e);
	/* ALLOW_ANY lets the rest out, as its own verdict */
	ec.mode = EGRESS_MODE_ALLOW_ANY;
	e = egress_new(&ec, NULL, err, sizeof err);
	egress_decide(e, EGRESS_PROTO_TLS, "evil.example", any, 443, &dc);
	assert_int_equal(dc.verdict, EGRESS_ALLOW_ANY);
	egress_decide(e, EGRESS_PROTO_TLS, "allowed.example", any, 443, &dc);
	assert_int_equal(dc.verdict, EGRESS_ALLOW);
	egress_free(e);
}

/* The DNS responder answering through the engine. */
static void test_dns_through_egress(void **state)
{
	char err[128];
	engine_config(16, 100);
	struct egress *e = egress_new(&ec, NULL, err, sizeof err);
	struct egress_dns_arg arg = {e, inet_addr("198.18.28.1")};
	struct dns_responder r;
	memset(&r, 0, sizeof r);
	r.lookup = egress_dns_lookup;
	r.lookup_arg = &arg;
	r.ttl = 30;
	uint8_t q[64] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t n = 12;
	const char *labels[] = {"\x03" "img", "\x03" "cdn", "\x07" "example"};
	for (int i = 0; i < 3; i++) {
		memcpy(q + n, labels[i], (size_t)labels[i][0] + 1);
		n += (size_t)labels[i][0] + 1;
	}
	q[n++] = 0;
	q[n++] = 0; q[n++] = 1; q[n++] = 0; q[n++] = 1;
	uint8_t out[DNS_ANSWER_MAX];
	size_t olen;
	assert_int_equal(dns_respond(&r, 1, 0, q, n, out, sizeof out, &olen), DNS_ACTION_REPLY);
	uint32_t a;
	memcpy(&a, out + olen - 4, 4);
	assert_int_equal(a, egress_address_for(e, "img.cdn.example", 0));
	assert_int_equal(out[3] & 0xf, DNS_RCODE_NOERROR);
	q[13] = 'x';                /* "xmg.cdn.example" is still under *.cdn.example */
	assert_int_equal(dns_respond(&r, 1, 0, q, n, out, sizeof out, &olen), DNS_ACTION_REPLY);
	assert_int_equal(out[7], 1);
	q[17] = 'x';                /* "xmg.xdn.example": undeclared */
	assert_int_equal(dns_respond(&r, 1, 0, q, n, out, sizeof out, &olen), DNS_ACTION_REPLY);
	assert_int_equal(out[3] & 0xf, DNS_RCODE_NXDOMAIN);
	egress_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
		cmocka_unit_test(test_sni_real_clients),
		cmocka_unit_test(test_sni_crafted),
		cmocka_unit_test(test_http_host),
		cmocka_unit_test(test_sni_fuzz_corpus),
		cmocka_unit_test(test_host_matching),
		cmocka_unit_test(test_allocation),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_dns_through_egress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
