/* Differential test: the indexed policy engine against a deliberately naive
 * linear evaluator written here, on random policy sets (rendered as YAML and
 * loaded through the real parser) and random requests. Zero disagreements. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "appliance/config.h"
#include "appliance/policy.h"

#define SETS 100000
#define REQUESTS_PER_SET 6
#define MAXL 3

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}
static bool chance(unsigned pct) { return rnd(100) < pct; }

/* ---- the model ---- */
struct slist { const char *v[MAXL]; int n; };
struct msource { struct slist principals, not_principals, namespaces, not_namespaces, ip, not_ip, rip, not_rip; };
struct mop { struct slist hosts, not_hosts, ports, not_ports, methods, not_methods, paths, not_paths; };
struct mcond { const char *key; struct slist values, not_values; };
struct mrule { struct msource from[2]; int nfrom; struct mop to[2]; int nto; struct mcond when[2]; int nwhen; };
struct mpolicy {
	char name[16]; const char *ns; const char *app; /* selector app=..., NULL none */
	const char *action; bool dry; bool has_rules; struct mrule rules[3]; int nrules;
};

static const char *const NSS[] = {"a", "b", "istio-system"};
static const char *const APPS[] = {"x", "y"};
static const char *const PRINCIPALS[] = {"td/ns/a/sa/s1", "td/ns/a/sa/s2", "td/ns/b/sa/s1", "td/ns/b/sa/s3", "other/ns/a/sa/s1", "td/sa/none"};
static const char *const PRINCIPAL_PATTERNS[] = {"td/ns/a/*", "*/sa/s1", "*", "td/ns/b/sa/s*"};
static const char *const NS_PATTERNS[] = {"a", "b", "a*", "*", "*b"};
static const char *const CIDRS[] = {"198.18.0.0/24", "198.18.0.5", "198.18.1.0/24", "0.0.0.0/0", "198.18.0.128/25"};
static const char *const PORTS[] = {"80", "443", "8080"};
static const char *const METHODS[] = {"GET", "POST", "P*"};
static const char *const PATHS[] = {"/a", "/a/*", "*.png", "*", "/b"};
static const char *const HOSTS[] = {"x.com", "*.x.com", "Y.com", "*"};
static const char *const HVALS[] = {"v1", "v*", "*2"};
static const char *const SNIS[] = {"x.com", "*.x.com"};

#define PICK(arr) (arr)[rnd(sizeof(arr) / sizeof((arr)[0]))]

static void fill(struct slist *l, const char *const *arr, unsigned n)
{
	l->n = 1 + (int)rnd(2);
	for (int i = 0; i < l->n; i++)
		l->v[i] = arr[rnd(n)];
}
#define FILL(l, arr) fill(l, arr, sizeof(arr) / sizeof((arr)[0]))

static void gen_principals(struct slist *l)
{
	l->n = 1 + (int)rnd(2);
	bool exact = chance(60);      /* mostly exact: exercises the index */
	for (int i = 0; i < l->n; i++)
		l->v[i] = exact || chance(50) ? PICK(PRINCIPALS) : PICK(PRINCIPAL_PATTERNS);
}

static void gen_source(struct msource *s)
{
	memset(s, 0, sizeof *s);
	do {
		if (chance(55)) gen_principals(&s->principals);
		if (chance(12)) gen_principals(&s->not_principals);
		if (chance(20)) FILL(&s->namespaces, NS_PATTERNS);
		if (chance(10)) FILL(&s->not_namespaces, NS_PATTERNS);
		if (chance(15)) FILL(&s->ip, CIDRS);
		if (chance(8)) FILL(&s->not_ip, CIDRS);
		if (chance(5)) FILL(&s->rip, CIDRS);
		if (chance(5)) FILL(&s->not_rip, CIDRS);
	} while (!(s->principals.n | s->not_principals.n | s->namespaces.n | s->not_namespaces.n |
		   s->ip.n | s->not_ip.n | s->rip.n | s->not_rip.n));
}

static void gen_op(struct mop *o)
{
	memset(o, 0, sizeof *o);
	do {
		if (chance(20)) FILL(&o->hosts, HOSTS);
		if (chance(8)) FILL(&o->not_hosts, HOSTS);
		if (chance(25)) FILL(&o->ports, PORTS);
		if (chance(10)) FILL(&o->not_ports, PORTS);
		if (chance(25)) FILL(&o->methods, METHODS);
		if (chance(8)) FILL(&o->not_methods, METHODS);
		if (chance(25)) FILL(&o->paths, PATHS);
		if (chance(8)) FILL(&o->not_paths, PATHS);
	} while (!(o->hosts.n | o->not_hosts.n | o->ports.n | o->not_ports.n | o->methods.n |
		   o->not_methods.n | o->paths.n | o->not_paths.n));
}

static void gen_cond(struct mcond *c)
{
	static const char *const KEYS[] = {"source.ip", "destination.ip", "destination.port", "source.namespace",
		"source.principal", "request.headers[X-H]", "connection.sni", "remote.ip"};
	memset(c, 0, sizeof *c);
	c->key = PICK(KEYS);
	const char *const *arr;
	unsigned n;
	if (!strcmp(c->key, "source.ip") || !strcmp(c->key, "destination.ip") || !strcmp(c->key, "remote.ip")) {
		arr = CIDRS; n = 5;
	} else if (!strcmp(c->key, "destination.port")) {
		arr = PORTS; n = 3;
	} else if (!strcmp(c->key, "source.namespace")) {
		arr = NS_PATTERNS; n = 5;
	} else if (!strcmp(c->key, "source.principal")) {
		arr = PRINCIPALS; n = 6;
	} else if (c->key[0] == 'r') {
		arr = HVALS; n = 3;
	} else {
		arr = SNIS; n = 2;
	}
	do {
		if (chance(70)) fill(&c->values, arr, n);
		if (chance(35)) fill(&c->not_values, arr, n);
	} while (!c->values.n && !c->not_values.n);
}

static void gen_policy(struct mpolicy *p, int idx)
{
	static const char *const ACTIONS[] = {"ALLOW", "ALLOW", "DENY", "DENY", "AUDIT"};
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "p%d", idx);
	p->ns = PICK(NSS);
	p->app = chance(40) ? PICK(APPS) : NULL;
	p->action = PICK(ACTIONS);
	p->dry = strcmp(p->action, "AUDIT") && chance(15);
	p->has_rules = chance(90);
	if (!p->has_rules)
		return;
	p->nrules = (int)rnd(3) + (chance(80) ? 1 : 0);
	if (p->nrules > 3)
		p->nrules = 3;
	for (int i = 0; i < p->nrules; i++) {
		struct mrule *r = &p->rules[i];
		r->nfrom = chance(75) ? 1 + (int)rnd(2) : 0;
		r->nto = chance(40) ? 1 + (int)rnd(2) : 0;
		r->nwhen = chance(25) ? 1 + (int)rnd(2) : 0;
		for (int j = 0; j < r->nfrom; j++) gen_source(&r->from[j]);
		for (int j = 0; j < r->nto; j++) gen_op(&r->to[j]);
		for (int j = 0; j < r->nwhen; j++) gen_cond(&r->when[j]);
	}
}

/* ---- YAML rendering ---- */
struct buf { char s[65536]; size_t n; };
static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
	va_end(ap);
	assert_true(k >= 0 && (size_t)k < sizeof b->s - b->n);
	b->n += (size_t)k;
}
static void put_list(struct buf *b, const char *key, const struct slist *l)
{
	if (!l->n)
		return;
	put(b, "%s: [", key);
	for (int i = 0; i < l->n; i++)
		put(b, "%s\"%s\"", i ? ", " : "", l->v[i]);
	put(b, "], ");
}

static void render(struct buf *b, const struct mpolicy *ps, int n)
{
	b->n = 0;
	for (int i = 0; i < n; i++) {
		const struct mpolicy *p = &ps[i];
		put(b, "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: %s\n  namespace: %s\n",
		    p->name, p->ns);
		if (p->dry)
			put(b, "  annotations: {istio.io/dry-run: \"true\"}\n");
		put(b, "spec:\n  action: %s\n", p->action);
		if (p->app)
			put(b, "  selector: {matchLabels: {app: %s}}\n", p->app);
		if (!p->has_rules)
			continue;
		put(b, "  rules:%s\n", p->nrules ? "" : " []");
		for (int r = 0; r < p->nrules; r++) {
			const struct mrule *ru = &p->rules[r];
			put(b, "  - {");
			if (ru->nfrom) {
				put(b, "from: [");
				for (int j = 0; j < ru->nfrom; j++) {
					const struct msource *s = &ru->from[j];
					put(b, "{source: {");
					put_list(b, "principals", &s->principals);
					put_list(b, "notPrincipals", &s->not_principals);
					put_list(b, "namespaces", &s->namespaces);
					put_list(b, "notNamespaces", &s->not_namespaces);
					put_list(b, "ipBlocks", &s->ip);
					put_list(b, "notIpBlocks", &s->not_ip);
					put_list(b, "remoteIpBlocks", &s->rip);
					put_list(b, "notRemoteIpBlocks", &s->not_rip);
					put(b, "}}, ");
				}
				put(b, "], ");
			}
			if (ru->nto) {
				put(b, "to: [");
				for (int j = 0; j < ru->nto; j++) {
					const struct mop *o = &ru->to[j];
					put(b, "{operation: {");
					put_list(b, "hosts", &o->hosts);
					put_list(b, "notHosts", &o->not_hosts);
					put_list(b, "ports", &o->ports);
					put_list(b, "notPorts", &o->not_ports);
					put_list(b, "methods", &o->methods);
					put_list(b, "notMethods", &o->not_methods);
					put_list(b, "paths", &o->paths);
					put_list(b, "notPaths", &o->not_paths);
					put(b, "}}, ");
				}
				put(b, "], ");
			}
			if (ru->nwhen) {
				put(b, "when: [");
				for (int j = 0; j < ru->nwhen; j++) {
					put(b, "{key: \"%s\", ", ru->when[j].key);
					put_list(b, "values", &ru->when[j].values);
					put_list(b, "notValues", &ru->when[j].not_values);
					put(b, "}, ");
				}
				put(b, "], ");
			}
			put(b, "}\n");
		}
	}
}

/* ---- the naive evaluator ---- */
struct mreq {
	const char *ns, *app, *principal, *method, *path, *host, *hval, *sni;
	const char *src_ip, *dst_ip;
	int port;
	bool l7;
};

static bool naive_str(const char *pat, const char *v, bool nocase)
{
	if (!v)
		return false;
	size_t pl = strlen(pat), vl = strlen(v);
	int (*cmp)(const char *, const char *, size_t) = nocase ? strncasecmp : strncmp;
	if (!strcmp(pat, "*"))
		return true;
	if (pat[0] == '*')
		return vl >= pl - 1 && !cmp(v + vl - (pl - 1), pat + 1, pl - 1);
	if (pat[pl - 1] == '*')
		return vl >= pl - 1 && !cmp(v, pat, pl - 1);
	return vl == pl && !cmp(v, pat, pl);
}

static bool naive_any(const struct slist *l, const char *v, bool nocase)
{
	for (int i = 0; i < l->n; i++)
		if (naive_str(l->v[i], v, nocase))
			return true;
	return false;
}

/* list semantics: positive must match if present; negative must not */
static bool naive_pair(const struct slist *pos, const struct slist *neg, const char *v, bool nocase)
{
	return (!pos->n || naive_any(pos, v, nocase)) && !(neg->n && naive_any(neg, v, nocase));
}

static bool naive_in_cidr(const char *cidr, const char *ip)
{
	char net[32];
	int prefix = 32;
	snprintf(net, sizeof net, "%s", cidr);
	char *slash = strchr(net, '/');
	if (slash) {
		*slash = 0;
		prefix = atoi(slash + 1);
	}
	uint32_t a = ntohl(inet_addr(net)), b = ntohl(inet_addr(ip));
	uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
	return (a & mask) == (b & mask);
}

static bool naive_cidrs(const struct slist *pos, const struct slist *neg, const char *ip)
{
	bool in = false, out = false;
	for (int i = 0; i < pos->n; i++) in |= naive_in_cidr(pos->v[i], ip);
	for (int i = 0; i < neg->n; i++) out |= naive_in_cidr(neg->v[i], ip);
	return (!pos->n || in) && !out;
}

static bool naive_ports(const struct slist *pos, const struct slist *neg, int port)
{
	bool in = false, out = false;
	for (int i = 0; i < pos->n; i++) in |= atoi(pos->v[i]) == port;
	for (int i = 0; i < neg->n; i++) out |= atoi(neg->v[i]) == port;
	return (!pos->n || in) && !out;
}

static void naive_ns(const char *principal, char *out, size_t cap, bool *has)
{
	*has = false;
	if (!principal)
		return;
	const char *p = strstr(principal, "/ns/");
	if (!p)
		return;
	p += 4;
	size_t n = strcspn(p, "/");
	snprintf(out, cap, "%.*s", (int)n, p);
	*has = true;
}

static bool rule_uses_l7(const struct mrule *r)
{
	for (int i = 0; i < r->nto; i++) {
		const struct mop *o = &r->to[i];
		if (o->hosts.n || o->not_hosts.n || o->methods.n || o->not_methods.n || o->paths.n || o->not_paths.n)
			return true;
	}
	for (int i = 0; i < r->nwhen; i++)
		if (!strncmp(r->when[i].key, "request.headers", 15))
			return true;
	return false;
}

static bool naive_rule(const struct mpolicy *p, const struct mrule *r, const struct mreq *q)
{
	char ns[64];
	bool has_ns;
	naive_ns(q->principal, ns, sizeof ns, &has_ns);
	const char *src_ns = has_ns ? ns : NULL;
	if (!q->l7 && rule_uses_l7(r) && !strcmp(p->action, "ALLOW"))
		return false;
	bool ok = r->nfrom == 0;
	for (int i = 0; i < r->nfrom; i++) {
		const struct msource *s = &r->from[i];
		if (naive_pair(&s->principals, &s->not_principals, q->principal, false) &&
		    naive_pair(&s->namespaces, &s->not_namespaces, src_ns, false) &&
		    naive_cidrs(&s->ip, &s->not_ip, q->src_ip) && naive_cidrs(&s->rip, &s->not_rip, q->src_ip))
			ok = true;
	}
	if (!ok)
		return false;
	ok = r->nto == 0;
	char path[64] = "";
	if (q->path) {
		snprintf(path, sizeof path, "%s", q->path);
		path[strcspn(path, "?")] = 0;
	}
	for (int i = 0; i < r->nto; i++) {
		const struct mop *o = &r->to[i];
		bool m = naive_ports(&o->ports, &o->not_ports, q->port);
		if (q->l7)
			m = m && naive_pair(&o->hosts, &o->not_hosts, q->host, true) &&
			    naive_pair(&o->methods, &o->not_methods, q->method, false) &&
			    naive_pair(&o->paths, &o->not_paths, q->path ? path : NULL, false);
		ok |= m;
	}
	if (!ok)
		return false;
	for (int i = 0; i < r->nwhen; i++) {
		const struct mcond *c = &r->when[i];
		const char *k = c->key;
		bool m;
		if (!strcmp(k, "source.ip") || !strcmp(k, "remote.ip"))
			m = naive_cidrs(&c->values, &c->not_values, q->src_ip);
		else if (!strcmp(k, "destination.ip"))
			m = naive_cidrs(&c->values, &c->not_values, q->dst_ip);
		else if (!strcmp(k, "destination.port"))
			m = naive_ports(&c->values, &c->not_values, q->port);
		else if (!strcmp(k, "source.namespace"))
			m = naive_pair(&c->values, &c->not_values, src_ns, false);
		else if (!strcmp(k, "source.principal"))
			m = naive_pair(&c->values, &c->not_values, q->principal, false);
		else if (!strcmp(k, "connection.sni"))
			m = naive_pair(&c->values, &c->not_values, q->sni, true);
		else
			m = !q->l7 || naive_pair(&c->values, &c->not_values, q->hval, false);
		if (!m)
			return false;
	}
	return true;
}

static bool naive_applies(const struct mpolicy *p, const struct mreq *q)
{
	if (strcmp(p->ns, q->ns) && strcmp(p->ns, "istio-system"))
		return false;
	return !p->app || (q->app && !strcmp(p->app, q->app));
}

static bool naive_policy(const struct mpolicy *p, const struct mreq *q)
{
	for (int i = 0; i < p->nrules; i++)
		if (naive_rule(p, &p->rules[i], q))
			return true;
	return false;
}

static void naive(const struct mpolicy *ps, int n, const struct mreq *q, char *out, size_t cap)
{
	int deny = -1, allow = -1, dry_deny = -1, dry_allow = -1;
	bool applies = false, dry_applies = false, audit = false;
	for (int i = 0; i < n; i++) {
		const struct mpolicy *p = &ps[i];
		if (!naive_applies(p, q))
			continue;
		bool is_allow = !strcmp(p->action, "ALLOW");
		if (is_allow && !p->dry) applies = true;
		if (is_allow && p->dry) dry_applies = true;
		if (!naive_policy(p, q))
			continue;
		if (!strcmp(p->action, "AUDIT")) audit = true;
		else if (is_allow && p->dry) { if (dry_allow < 0) dry_allow = i; }
		else if (is_allow) { if (allow < 0) allow = i; }
		else if (p->dry) { if (dry_deny < 0) dry_deny = i; }
		else if (deny < 0) deny = i;
	}
	char who[64], dry[128] = "";
	const char *verdict;
	if (deny >= 0) { verdict = "DENY"; snprintf(who, sizeof who, "%s/%s", ps[deny].ns, ps[deny].name); }
	else if (!applies) { verdict = "ALLOW"; snprintf(who, sizeof who, "(no ALLOW policy applies)"); }
	else if (allow >= 0) { verdict = "ALLOW"; snprintf(who, sizeof who, "%s/%s", ps[allow].ns, ps[allow].name); }
	else { verdict = "DENY"; snprintf(who, sizeof who, "(no ALLOW policy matched)"); }
	if (dry_deny >= 0)
		snprintf(dry, sizeof dry, " dry-run: would have denied by %s/%s", ps[dry_deny].ns, ps[dry_deny].name);
	else if (dry_applies && dry_allow >= 0)
		snprintf(dry, sizeof dry, " dry-run: would have allowed by %s/%s", ps[dry_allow].ns, ps[dry_allow].name);
	else if (dry_applies)
		snprintf(dry, sizeof dry, " dry-run: would have denied (no dry-run ALLOW policy matched)");
	snprintf(out, cap, "%s %s%s%s", verdict, who, audit ? " audit" : "", dry);
}

static void gen_req(struct mreq *q)
{
	static const char *const RNS[] = {"a", "b", "istio-system", "c"};
	static const char *const IPS[] = {"198.18.0.5", "198.18.0.200", "198.18.1.3", "203.0.113.1"};
	static const char *const RMETHODS[] = {"GET", "POST", "PUT"};
	static const char *const RPATHS[] = {"/a", "/a/b?q=1", "/c.png", "/b", "/a?x.png"};
	static const char *const RHOSTS[] = {"x.com", "A.X.COM", "y.com", "Y.COM"};
	static const char *const RHV[] = {"v1", "v2", "x"};
	static const char *const RSNI[] = {"x.com", "s.x.com", "X.com"};
	static const int RPORTS[] = {80, 443, 8080};
	memset(q, 0, sizeof *q);
	q->ns = PICK(RNS);
	q->app = chance(70) ? PICK(APPS) : NULL;
	q->principal = chance(80) ? PICK(PRINCIPALS) : NULL;
	q->src_ip = PICK(IPS);
	q->dst_ip = PICK(IPS);
	q->port = PICK(RPORTS);
	q->sni = chance(60) ? PICK(RSNI) : NULL;
	q->l7 = chance(60);
	if (q->l7) {
		q->method = chance(90) ? PICK(RMETHODS) : NULL;
		q->path = chance(90) ? PICK(RPATHS) : NULL;
		q->host = chance(80) ? PICK(RHOSTS) : NULL;
		q->hval = chance(60) ? PICK(RHV) : NULL;
	}
}

static void engine(const struct policy_set *set, const struct mreq *q, char *out, size_t cap)
{
	struct config_label label = {"app", ""};
	struct policy_header h = {"x-h", 3, q->hval, q->hval ? strlen(q->hval) : 0};
	struct policy_request r;
	memset(&r, 0, sizeof r);
	r.workload_namespace = q->ns;
	if (q->app) {
		snprintf(label.value, sizeof label.value, "%s", q->app);
		r.workload_labels = &label;
		r.workload_nlabels = 1;
	}
	r.principal = q->principal;
	r.source_ip = inet_addr(q->src_ip);
	r.dest_ip = inet_addr(q->dst_ip);
	r.dest_port = (uint16_t)q->port;
	r.sni = q->sni;
	r.has_l7 = q->l7;
	r.method = q->method;
	r.path = q->path;
	r.path_len = q->path ? strlen(q->path) : 0;
	r.host = q->host;
	r.headers = &h;
	r.nheaders = q->hval ? 1 : 0;
	struct policy_decision d;
	policy_evaluate(set, &r, &d);
	policy_decision_format(&d, out, cap);
}

static void test_differential(void **state)
{
	static struct buf b;
	static struct mpolicy ps[8];
	struct config_errors *errs = malloc(sizeof *errs);
	long decisions = 0, denies = 0, indexed_hits = 0;
	for (int set_no = 0; set_no < SETS; set_no++) {
		int n = 1 + (int)rnd(6);
		for (int i = 0; i < n; i++)
			gen_policy(&ps[i], i);
		render(&b, ps, n);
		struct policy_set *set;
		errs->count = 0;
		if (policy_set_from_yaml("random.yaml", b.s, b.n, NULL, &set, errs)) {
			config_errors_print(errs, stderr);
			fprintf(stderr, "%s", b.s);
			fail_msg("set %d did not load", set_no);
		}
		for (int k = 0; k < REQUESTS_PER_SET; k++) {
			struct mreq q;
			char want[256], got[256];
			gen_req(&q);
			naive(ps, n, &q, want, sizeof want);
			engine(set, &q, got, sizeof got);
			decisions++;
			denies += got[0] == 'D';
			indexed_hits += strstr(got, "/p") != NULL;
			if (strcmp(want, got)) {
				fprintf(stderr, "%s\nrequest: ns=%s app=%s principal=%s src=%s dst=%s port=%d sni=%s l7=%d method=%s path=%s host=%s x-h=%s\n",
					b.s, q.ns, q.app ? q.app : "-", q.principal ? q.principal : "(plaintext)", q.src_ip, q.dst_ip,
					q.port, q.sni ? q.sni : "-", q.l7, q.method ? q.method : "-", q.path ? q.path : "-",
					q.host ? q.host : "-", q.hval ? q.hval : "-");
				fail_msg("set %d: engine \"%s\", naive \"%s\"", set_no, got, want);
			}
		}
		policy_set_free(set);
	}
	printf("differential: %d sets, %ld decisions (%ld deny, %ld named a policy), 0 disagreements\n",
	       SETS, decisions, denies, indexed_hits);
	/* the random sets must exercise both outcomes a fair amount */
	assert_true(denies > decisions / 10 && denies < decisions * 9 / 10);
	free(errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_differential)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
