/* AuthorizationPolicy / PeerAuthentication documents → compiled policy_set.
 *
 * Validation follows what Istio's API server validation rejects, plus what
 * meshgate cannot honour (CUSTOM, JWT request principals, target refs), so
 * that nothing is silently ignored. Errors: FILE:LINE: field.path: message. */
#include "appliance/policy_internal.h"
#include "appliance/yaml_node.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk { struct arena_chunk *next; size_t used, cap; unsigned char data[]; };

#define ARENA_CHUNK 65536

void *parena_alloc(struct policy_set *set, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	struct arena_chunk *c = set->arena;
	if (!c || c->cap - c->used < size) {
		size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
		struct arena_chunk *n = malloc(sizeof *n + cap);
		if (!n)
			return NULL;
		n->used = 0;
		n->cap = cap;
		/* a big one-off allocation goes behind the current chunk so the
		 * current chunk's free space stays usable */
		if (c && cap > ARENA_CHUNK) {
			n->next = c->next;
			c->next = n;
		} else {
			n->next = c;
			set->arena = n;
		}
		c = n;
	}
	void *p = c->data + c->used;
	c->used += size;
	memset(p, 0, size);
	return p;
}

const char *parena_strdup(struct policy_set *set, const char *s, size_t len)
{
	char *p = parena_alloc(set, len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = 0;
	}
	return p;
}

uint64_t phash(const void *data, size_t len, uint64_t seed)
{
	/* FNV-1a, then a final mix; never 0 (0 marks an empty slot). */
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h ? h : 1;
}

/* ------------------------------------------------------------ builder */

struct policy_builder {
	struct policy_set *set;
	bool oom;
	/* (namespace/name) → index+1, for duplicate detection */
	int *authz_names; uint32_t authz_mask; int authz_used;
};

struct policy_builder *policy_builder_new(void)
{
	struct policy_builder *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->set = calloc(1, sizeof *b->set);
	if (!b->set) {
		free(b);
		return NULL;
	}
	return b;
}

void policy_builder_free(struct policy_builder *b)
{
	if (!b)
		return;
	policy_set_free(b->set);
	free(b->authz_names);
	free(b);
}

static uint64_t name_hash(const char *ns, const char *name)
{
	return phash(name, strlen(name), phash(ns, strlen(ns), 7));
}

/* Returns the index of an existing policy with the same namespace/name, or -1
 * after remembering `idx`. */
static int authz_name_insert(struct policy_builder *b, int idx)
{
	struct policy_set *set = b->set;
	if ((uint32_t)(b->authz_used + 1) * 2 > b->authz_mask + 1 || !b->authz_names) {
		uint32_t cap = b->authz_names ? (b->authz_mask + 1) * 2 : 1024;
		int *n = calloc(cap, sizeof *n);
		if (!n) {
			b->oom = true;
			return -1;
		}
		for (uint32_t i = 0; b->authz_names && i <= b->authz_mask; i++) {
			int v = b->authz_names[i];
			if (!v)
				continue;
			const struct ppolicy *p = &set->policies[v - 1];
			uint32_t h = (uint32_t)name_hash(p->namespace_, p->name) & (cap - 1);
			while (n[h])
				h = (h + 1) & (cap - 1);
			n[h] = v;
		}
		free(b->authz_names);
		b->authz_names = n;
		b->authz_mask = cap - 1;
	}
	const struct ppolicy *p = &set->policies[idx];
	uint32_t h = (uint32_t)name_hash(p->namespace_, p->name) & b->authz_mask;
	while (b->authz_names[h]) {
		const struct ppolicy *q = &set->policies[b->authz_names[h] - 1];
		if (!strcmp(q->name, p->name) && !strcmp(q->namespace_, p->namespace_))
			return b->authz_names[h] - 1;
		h = (h + 1) & b->authz_mask;
	}
	b->authz_names[h] = idx + 1;
	b->authz_used++;
	return -1;
}

/* ------------------------------------------------------------ field parsers */

static void fieldf(char *out, size_t cap, const char *base, const char *key, int index)
{
	int n;
	if (index >= 0)
		n = snprintf(out, cap, "%s.%s[%d]", base, key, index);
	else
		n = snprintf(out, cap, "%s.%s", base, key);
	if (n >= (int)cap && cap > 4)   /* truncated path: mark it */
		memcpy(out + cap - 4, "...", 4);
}

static bool dns_label(const char *s, bool allow_dots)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if (c == '-' && i > 0 && i + 1 < n && s[i - 1] != '.' && s[i + 1] != '.')
			continue;
		if (c == '.' && allow_dots && i > 0 && i + 1 < n && s[i - 1] != '.')
			continue;
		return false;
	}
	return true;
}

enum str_field { SF_PRINCIPAL, SF_NAMESPACE, SF_HOST, SF_METHOD, SF_PATH, SF_VALUE };

static bool parse_match(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			const char *field, enum str_field what, struct pmatch *out)
{
	char buf[1024];
	if (!yget_str(d, n, field, buf, sizeof buf))
		return false;
	size_t len = strlen(buf);
	const char *star = strchr(buf, '*');
	if (star && star != buf && star != buf + len - 1) {
		yerr(d, n, field, "\"*\" is allowed only at the start or the end, got \"%s\"", buf);
		return false;
	}
	if (star && len > 1 && buf[0] == '*' && buf[len - 1] == '*') {
		yerr(d, n, field, "\"*\" is allowed only at the start or the end, got \"%s\"", buf);
		return false;
	}
	if (what == SF_PRINCIPAL && !strncmp(buf, "spiffe://", 9)) {
		yerr(d, n, field, "write principals without \"spiffe://\", e.g. \"%s\"", buf + 9);
		return false;
	}
	if (what == SF_PATH && buf[0] != '/' && buf[0] != '*') {
		yerr(d, n, field, "must start with \"/\" or \"*\", got \"%s\"", buf);
		return false;
	}
	if (what == SF_PATH && (strstr(buf, "{*}") || strstr(buf, "{**}"))) {
		yerr(d, n, field, "path templates ({*}, {**}) are not supported, got \"%s\"", buf);
		return false;
	}
	if (what == SF_METHOD) {
		for (const char *c = buf; *c; c++)
			if (*c != '*' && !(*c >= 'A' && *c <= 'Z')) {
				yerr(d, n, field, "must be an upper-case HTTP method, got \"%s\"", buf);
				return false;
			}
	}
	if (len == 1 && buf[0] == '*') {
		out->kind = PM_ANY;
		out->s = "";
		out->len = 0;
		return true;
	}
	const char *s = buf;
	if (buf[0] == '*') {
		out->kind = PM_SUFFIX;
		s++;
		len--;
	} else if (buf[len - 1] == '*') {
		out->kind = PM_PREFIX;
		len--;
	} else {
		out->kind = PM_EXACT;
	}
	if (what == SF_HOST) {
		/* hosts compare case-insensitively: store lower case */
		for (size_t i = 0; i < len; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				((char *)s)[i] = (char)(s[i] - 'A' + 'a');
	}
	out->s = parena_strdup(b->set, s, len);
	out->len = (uint32_t)len;
	if (!out->s)
		b->oom = true;
	return out->s != NULL;
}

static bool parse_plist(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *map,
			const char *key, const char *base, enum str_field what, struct plist *out)
{
	yaml_node_t *n = ymap_get(d, map, key);
	char field[128];
	if (!n)
		return true;
	fieldf(field, sizeof field, base, key, -1);
	if (!yget_seq(d, n, field))
		return false;
	int cnt = yseq_len(n);
	out->v = parena_alloc(b->set, sizeof *out->v * (size_t)(cnt ? cnt : 1));
	if (!out->v) {
		b->oom = true;
		return false;
	}
	bool ok = true;
	for (int i = 0; i < cnt; i++) {
		fieldf(field, sizeof field, base, key, i);
		if (parse_match(b, d, yseq_at(d, n, i), field, what, &out->v[out->n]))
			out->n++;
		else
			ok = false;
	}
	return ok;
}

static bool parse_one_cidr(const struct ydoc *d, const yaml_node_t *n, const char *field,
			   struct pcidr *out)
{
	char buf[64];
	if (!yget_str(d, n, field, buf, sizeof buf))
		return false;
	if (strchr(buf, ':')) {
		yerr(d, n, field, "IPv6 is not supported, got \"%s\"", buf);
		return false;
	}
	uint32_t a;
	uint8_t prefix;
	if (!yparse_cidr(buf, true, &a, &prefix)) {
		yerr(d, n, field, "must be an IPv4 address or CIDR (e.g. 198.18.0.0/16), got \"%s\"", buf);
		return false;
	}
	out->mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
	out->net = ntohl(a) & out->mask;
	return true;
}

static bool parse_cidrs_node(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			     const char *base, const char *key, struct pcidrs *out)
{
	char field[128];
	fieldf(field, sizeof field, base, key, -1);
	if (!yget_seq(d, n, field))
		return false;
	int cnt = yseq_len(n);
	out->v = parena_alloc(b->set, sizeof *out->v * (size_t)(cnt ? cnt : 1));
	if (!out->v) {
		b->oom = true;
		return false;
	}
	bool ok = true;
	for (int i = 0; i < cnt; i++) {
		fieldf(field, sizeof field, base, key, i);
		if (parse_one_cidr(d, yseq_at(d, n, i), field, &out->v[out->n]))
			out->n++;
		else
			ok = false;
	}
	return ok;
}

static bool parse_ports_node(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			     const char *base, const char *key, struct pports *out)
{
	char field[128];
	fieldf(field, sizeof field, base, key, -1);
	if (!yget_seq(d, n, field))
		return false;
	int cnt = yseq_len(n);
	out->v = parena_alloc(b->set, sizeof *out->v * (size_t)(cnt ? cnt : 1));
	if (!out->v) {
		b->oom = true;
		return false;
	}
	bool ok = true;
	for (int i = 0; i < cnt; i++) {
		unsigned long v;
		fieldf(field, sizeof field, base, key, i);
		yaml_node_t *item = yseq_at(d, n, i);
		const char *s = ystr(item);
		bool good = s && !yis_null(item) && s[0] >= '1' && s[0] <= '9' && strlen(s) <= 5;
		for (const char *c = s; good && *c; c++)
			good = *c >= '0' && *c <= '9';
		v = good ? strtoul(s, NULL, 10) : 0;
		if (good && v <= 65535) {
			out->v[out->n++] = (uint16_t)v;
		} else {
			if (s && !yis_null(item))
				yerr(d, item, field, "must be a port number 1-65535, got \"%s\"", s);
			else
				yerr(d, item, field, "must be a port number 1-65535, got %s", ytype_name(item));
			ok = false;
		}
	}
	return ok;
}

static bool parse_source(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			 const char *base, struct psource *src)
{
	static const char *const keys[] = {"principals", "notPrincipals", "requestPrincipals",
		"notRequestPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
		"remoteIpBlocks", "notRemoteIpBlocks", NULL};
	if (!yget_map(d, n, base))
		return false;
	int before = d->errs->count;
	ymap_check_keys(d, n, base, keys);
	if (ymap_len(n) == 0)
		yerr(d, n, base, "must not be empty: set at least one of principals, namespaces, ipBlocks, remoteIpBlocks or their not* forms");
	for (int k = 2; k <= 3; k++) {
		yaml_node_t *rp = ymap_get(d, n, keys[k]);
		if (rp) {
			char field[128];
			fieldf(field, sizeof field, base, keys[k], -1);
			yerr(d, rp, field, "not supported: meshgate has no JWT authentication (RequestAuthentication), so request principals never exist");
		}
	}
	parse_plist(b, d, n, "principals", base, SF_PRINCIPAL, &src->principals);
	parse_plist(b, d, n, "notPrincipals", base, SF_PRINCIPAL, &src->not_principals);
	parse_plist(b, d, n, "namespaces", base, SF_NAMESPACE, &src->namespaces);
	parse_plist(b, d, n, "notNamespaces", base, SF_NAMESPACE, &src->not_namespaces);
	struct { const char *key; struct pcidrs *out; } c[] = {
		{"ipBlocks", &src->ip_blocks}, {"notIpBlocks", &src->not_ip_blocks},
		{"remoteIpBlocks", &src->remote_ip_blocks}, {"notRemoteIpBlocks", &src->not_remote_ip_blocks}};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		yaml_node_t *v = ymap_get(d, n, c[i].key);
		if (v)
			parse_cidrs_node(b, d, v, base, c[i].key, c[i].out);
	}
	return d->errs->count == before;
}

static bool parse_operation(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			    const char *base, struct poperation *op, bool *l7)
{
	static const char *const keys[] = {"hosts", "notHosts", "ports", "notPorts", "methods",
		"notMethods", "paths", "notPaths", NULL};
	if (!yget_map(d, n, base))
		return false;
	int before = d->errs->count;
	ymap_check_keys(d, n, base, keys);
	if (ymap_len(n) == 0)
		yerr(d, n, base, "must not be empty: set at least one of hosts, ports, methods, paths or their not* forms");
	parse_plist(b, d, n, "hosts", base, SF_HOST, &op->hosts);
	parse_plist(b, d, n, "notHosts", base, SF_HOST, &op->not_hosts);
	parse_plist(b, d, n, "methods", base, SF_METHOD, &op->methods);
	parse_plist(b, d, n, "notMethods", base, SF_METHOD, &op->not_methods);
	parse_plist(b, d, n, "paths", base, SF_PATH, &op->paths);
	parse_plist(b, d, n, "notPaths", base, SF_PATH, &op->not_paths);
	yaml_node_t *v;
	if ((v = ymap_get(d, n, "ports")))
		parse_ports_node(b, d, v, base, "ports", &op->ports);
	if ((v = ymap_get(d, n, "notPorts")))
		parse_ports_node(b, d, v, base, "notPorts", &op->not_ports);
	if (ymap_get(d, n, "hosts") || ymap_get(d, n, "notHosts") || ymap_get(d, n, "methods") ||
	    ymap_get(d, n, "notMethods") || ymap_get(d, n, "paths") || ymap_get(d, n, "notPaths"))
		*l7 = true;
	return d->errs->count == before;
}

static bool parse_condition(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			    const char *base, struct pcondition *c, bool *l7)
{
	static const char *const keys[] = {"key", "values", "notValues", NULL};
	if (!yget_map(d, n, base))
		return false;
	int before = d->errs->count;
	ymap_check_keys(d, n, base, keys);
	char field[128], key[512];
	fieldf(field, sizeof field, base, "key", -1);
	yaml_node_t *kn = ymap_get(d, n, "key");
	if (!kn) {
		yerr(d, n, field, "required");
		return false;
	}
	if (!yget_str(d, kn, field, key, sizeof key))
		return false;
	enum { K_STR, K_IP, K_PORT } type = K_STR;
	if (!strcmp(key, "source.ip")) {
		c->key = COND_SOURCE_IP; type = K_IP;
	} else if (!strcmp(key, "remote.ip")) {
		c->key = COND_REMOTE_IP; type = K_IP;
	} else if (!strcmp(key, "source.namespace")) {
		c->key = COND_SOURCE_NAMESPACE;
	} else if (!strcmp(key, "source.principal")) {
		c->key = COND_SOURCE_PRINCIPAL;
	} else if (!strcmp(key, "destination.ip")) {
		c->key = COND_DEST_IP; type = K_IP;
	} else if (!strcmp(key, "destination.port")) {
		c->key = COND_DEST_PORT; type = K_PORT;
	} else if (!strcmp(key, "connection.sni")) {
		c->key = COND_SNI;
	} else if (!strncmp(key, "request.headers[", 16)) {
		size_t len = strlen(key);
		if (len < 18 || key[len - 1] != ']' || memchr(key + 16, ']', len - 17)) {
			yerr(d, kn, field, "must be request.headers[NAME], got \"%s\"", key);
			return false;
		}
		c->key = COND_HEADER;
		c->header = parena_strdup(b->set, key + 16, len - 17);
		c->header_len = (uint32_t)(len - 17);
		*l7 = true;
	} else if (!strncmp(key, "request.auth.", 13)) {
		yerr(d, kn, field, "\"%s\" is not supported: meshgate has no JWT authentication (RequestAuthentication)", key);
		return false;
	} else {
		yerr(d, kn, field, "unknown condition key \"%s\" (supported: source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni, request.headers[NAME])", key);
		return false;
	}
	yaml_node_t *vals[2] = {ymap_get(d, n, "values"), ymap_get(d, n, "notValues")};
	const char *names[2] = {"values", "notValues"};
	if ((!vals[0] || yseq_len(vals[0]) == 0) && (!vals[1] || yseq_len(vals[1]) == 0) &&
	    !(vals[0] && !yis_seq(vals[0])) && !(vals[1] && !yis_seq(vals[1])))
		yerr(d, n, base, "must set values or notValues for key \"%s\"", key);
	for (int i = 0; i < 2; i++) {
		if (!vals[i])
			continue;
		if (type == K_IP)
			parse_cidrs_node(b, d, vals[i], base, names[i], i ? &c->not_cidrs : &c->cidrs);
		else if (type == K_PORT)
			parse_ports_node(b, d, vals[i], base, names[i], i ? &c->not_ports : &c->ports);
		else
			parse_plist(b, d, n, names[i], base,
				    c->key == COND_SOURCE_PRINCIPAL ? SF_PRINCIPAL :
				    c->key == COND_SOURCE_NAMESPACE ? SF_NAMESPACE :
				    c->key == COND_SNI ? SF_HOST : SF_VALUE,
				    i ? &c->not_values : &c->values);
	}
	return d->errs->count == before;
}

static bool parse_rule(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
		       const char *base, struct prule *r)
{
	static const char *const keys[] = {"from", "to", "when", NULL};
	if (!yget_map(d, n, base))
		return false;
	int before = d->errs->count;
	ymap_check_keys(d, n, base, keys);
	char field[128], sub[128];
	yaml_node_t *v;
	if ((v = ymap_get(d, n, "from"))) {
		fieldf(field, sizeof field, base, "from", -1);
		if (yget_seq(d, v, field)) {
			int cnt = yseq_len(v);
			r->from = parena_alloc(b->set, sizeof *r->from * (size_t)(cnt ? cnt : 1));
			if (!r->from) { b->oom = true; return false; }
			for (int i = 0; i < cnt; i++) {
				yaml_node_t *e = yseq_at(d, v, i);
				fieldf(field, sizeof field, base, "from", i);
				if (!yget_map(d, e, field))
					continue;
				static const char *const ek[] = {"source", NULL};
				ymap_check_keys(d, e, field, ek);
				yaml_node_t *s = ymap_get(d, e, "source");
				fieldf(sub, sizeof sub, field, "source", -1);
				if (!s)
					yerr(d, e, sub, "required");
				else if (parse_source(b, d, s, sub, &r->from[r->nfrom]))
					r->nfrom++;
			}
			if (cnt == 0)
				yerr(d, v, field, "must not be an empty list (leave it out to match any source)");
		}
	}
	if ((v = ymap_get(d, n, "to"))) {
		fieldf(field, sizeof field, base, "to", -1);
		if (yget_seq(d, v, field)) {
			int cnt = yseq_len(v);
			r->to = parena_alloc(b->set, sizeof *r->to * (size_t)(cnt ? cnt : 1));
			if (!r->to) { b->oom = true; return false; }
			for (int i = 0; i < cnt; i++) {
				yaml_node_t *e = yseq_at(d, v, i);
				fieldf(field, sizeof field, base, "to", i);
				if (!yget_map(d, e, field))
					continue;
				static const char *const ek[] = {"operation", NULL};
				ymap_check_keys(d, e, field, ek);
				yaml_node_t *s = ymap_get(d, e, "operation");
				fieldf(sub, sizeof sub, field, "operation", -1);
				if (!s)
					yerr(d, e, sub, "required");
				else if (parse_operation(b, d, s, sub, &r->to[r->nto], &r->l7))
					r->nto++;
			}
			if (cnt == 0)
				yerr(d, v, field, "must not be an empty list (leave it out to match any operation)");
		}
	}
	if ((v = ymap_get(d, n, "when"))) {
		fieldf(field, sizeof field, base, "when", -1);
		if (yget_seq(d, v, field)) {
			int cnt = yseq_len(v);
			r->when = parena_alloc(b->set, sizeof *r->when * (size_t)(cnt ? cnt : 1));
			if (!r->when) { b->oom = true; return false; }
			for (int i = 0; i < cnt; i++) {
				fieldf(field, sizeof field, base, "when", i);
				if (parse_condition(b, d, yseq_at(d, v, i), field, &r->when[r->nwhen], &r->l7))
					r->nwhen++;
			}
			if (cnt == 0)
				yerr(d, v, field, "must not be an empty list (leave it out for no conditions)");
		}
	}
	return d->errs->count == before;
}

static bool parse_selector(struct policy_builder *b, const struct ydoc *d, const yaml_node_t *n,
			   struct config_label **out, int *nout)
{
	static const char *const keys[] = {"matchLabels", NULL};
	if (!yget_map(d, n, "spec.selector"))
		return false;
	ymap_check_keys(d, n, "spec.selector", keys);
	yaml_node_t *ml = ymap_get(d, n, "matchLabels");
	if (!ml)
		return true;
	if (!yget_map(d, ml, "spec.selector.matchLabels"))
		return false;
	int cnt = ymap_len(ml);
	if (cnt > CONFIG_MAX_LABELS) {
		yerr(d, ml, "spec.selector.matchLabels", "at most %d labels", CONFIG_MAX_LABELS);
		return false;
	}
	*out = parena_alloc(b->set, sizeof **out * (size_t)(cnt ? cnt : 1));
	if (!*out) { b->oom = true; return false; }
	bool ok = true;
	for (int i = 0; i < cnt; i++) {
		struct config_label *l = &(*out)[*nout];
		const char *k = ystr(ymap_key(d, ml, i));
		char field[128];
		snprintf(field, sizeof field, "spec.selector.matchLabels.%s", k ? k : "?");
		if (yget_str(d, ymap_key(d, ml, i), field, l->key, sizeof l->key) &&
		    yget_str(d, ymap_val(d, ml, i), field, l->value, sizeof l->value))
			(*nout)++;
		else
			ok = false;
	}
	return ok;
}

/* metadata: name (required), namespace (default "default"), annotations. */
static bool parse_metadata(const struct ydoc *d, const yaml_node_t *root, char *name, char *ns,
			   bool *dry_run)
{
	static const char *const keys[] = {"name", "namespace", "labels", "annotations", "uid",
		"resourceVersion", "generation", "creationTimestamp", NULL};
	yaml_node_t *m = ymap_get(d, root, "metadata");
	if (!m) {
		yerr(d, root, "metadata", "required");
		return false;
	}
	if (!yget_map(d, m, "metadata"))
		return false;
	int before = d->errs->count;
	ymap_check_keys(d, m, "metadata", keys);
	yaml_node_t *n = ymap_get(d, m, "name");
	if (!n)
		yerr(d, m, "metadata.name", "required");
	else if (yget_str(d, n, "metadata.name", name, CONFIG_MAX_NAME) && !dns_label(name, true))
		yerr(d, n, "metadata.name", "must be a lower-case DNS name (a-z, 0-9, '-', '.'), got \"%s\"", name);
	n = ymap_get(d, m, "namespace");
	snprintf(ns, CONFIG_MAX_NAME, "default");
	if (n && yget_str(d, n, "metadata.namespace", ns, CONFIG_MAX_NAME) && !dns_label(ns, false))
		yerr(d, n, "metadata.namespace", "must be a lower-case DNS label (a-z, 0-9, '-'), got \"%s\"", ns);
	*dry_run = false;
	yaml_node_t *an = ymap_get(d, m, "annotations");
	if (an && yget_map(d, an, "metadata.annotations")) {
		yaml_node_t *dr = ymap_get(d, an, "istio.io/dry-run");
		if (dr) {
			const char *s = ystr(dr);
			if (s && !strcmp(s, "true"))
				*dry_run = true;
			else if (!s || strcmp(s, "false"))
				yerr(d, dr, "metadata.annotations.istio.io/dry-run", "must be \"true\" or \"false\", got %s%s%s",
				     s ? "\"" : "", s ? s : ytype_name(dr), s ? "\"" : "");
		}
	}
	return d->errs->count == before;
}

static bool grow(void **arr, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return true;
	int ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*arr, (size_t)ncap * elem);
	if (!n)
		return false;
	memset((char *)n + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*arr = n;
	*cap = ncap;
	return true;
}

static bool add_authz(struct policy_builder *b, const struct ydoc *d, yaml_node_t *root)
{
	struct policy_set *set = b->set;
	int before = d->errs->count;
	struct ppolicy p;
	memset(&p, 0, sizeof p);
	p.line = yline(root);
	parse_metadata(d, root, p.name, p.namespace_, &p.dry_run);
	yaml_node_t *spec = ymap_get(d, root, "spec");
	p.action = PA_ALLOW;
	int first_rule = set->nrules;
	if (spec && !yis_null(spec) && yget_map(d, spec, "spec")) {
		static const char *const keys[] = {"selector", "action", "rules", "provider",
			"targetRef", "targetRefs", NULL};
		ymap_check_keys(d, spec, "spec", keys);
		yaml_node_t *v;
		if ((v = ymap_get(d, spec, "targetRef")) || (v = ymap_get(d, spec, "targetRefs")))
			yerr(d, v, ymap_get(d, spec, "targetRef") ? "spec.targetRef" : "spec.targetRefs",
			     "not supported: meshgate scopes policies with spec.selector");
		if ((v = ymap_get(d, spec, "provider")))
			yerr(d, v, "spec.provider", "not supported: CUSTOM (external authorization) actions are refused");
		if ((v = ymap_get(d, spec, "selector")))
			parse_selector(b, d, v, &p.selector, &p.nselector);
		if ((v = ymap_get(d, spec, "action"))) {
			const char *a = ystr(v);
			if (a && !strcmp(a, "ALLOW"))
				p.action = PA_ALLOW;
			else if (a && !strcmp(a, "DENY"))
				p.action = PA_DENY;
			else if (a && !strcmp(a, "AUDIT"))
				p.action = PA_AUDIT;
			else if (a && !strcmp(a, "CUSTOM"))
				yerr(d, v, "spec.action", "CUSTOM (external authorization) is not supported by meshgate; use ALLOW or DENY");
			else
				yerr(d, v, "spec.action", "unknown action %s%s%s (ALLOW, DENY or AUDIT)",
				     a ? "\"" : "", a ? a : ytype_name(v), a ? "\"" : "");
		}
		if (p.dry_run && p.action == PA_AUDIT)
			yerr(d, v, "metadata.annotations.istio.io/dry-run", "dry-run applies only to ALLOW and DENY policies");
		if ((v = ymap_get(d, spec, "rules")) && yget_seq(d, v, "spec.rules")) {
			int cnt = yseq_len(v);
			if (!grow((void **)&set->rules, &set->cap_rules, set->nrules + cnt, sizeof *set->rules)) {
				b->oom = true;
				return false;
			}
			for (int i = 0; i < cnt; i++) {
				char field[64];
				snprintf(field, sizeof field, "spec.rules[%d]", i);
				struct prule *r = &set->rules[set->nrules];
				memset(r, 0, sizeof *r);
				if (parse_rule(b, d, yseq_at(d, v, i), field, r)) {
					r->policy = set->npolicies;
					p.has_l7 |= r->l7;
					set->nrules++;
				}
			}
		}
	} else if (spec && !yis_null(spec)) {
		/* yget_map reported it */
	}
	if (d->errs->count != before || b->oom) {
		set->nrules = first_rule;
		return false;
	}
	p.first_rule = first_rule;
	p.nrules = set->nrules - first_rule;
	p.file = parena_strdup(set, d->file, strlen(d->file));
	if (!p.file || !grow((void **)&set->policies, &set->cap_policies, set->npolicies + 1,
			     sizeof *set->policies)) {
		b->oom = true;
		return false;
	}
	set->policies[set->npolicies] = p;
	int dup = authz_name_insert(b, set->npolicies);
	if (dup >= 0) {
		yerr(d, ymap_get(d, ymap_get(d, root, "metadata"), "name"), "metadata.name",
		     "duplicate AuthorizationPolicy %s/%s (first defined at %s:%d)", p.namespace_,
		     p.name, set->policies[dup].file, set->policies[dup].line);
		set->nrules = first_rule;
		return false;
	}
	set->npolicies++;
	return true;
}

static bool parse_mtls_mode(const struct ydoc *d, const yaml_node_t *n, const char *base,
			    enum pmtls *out)
{
	static const char *const keys[] = {"mode", NULL};
	if (!yget_map(d, n, base))
		return false;
	ymap_check_keys(d, n, base, keys);
	yaml_node_t *m = ymap_get(d, n, "mode");
	char field[128];
	fieldf(field, sizeof field, base, "mode", -1);
	*out = PMTLS_UNSET;
	if (!m)
		return true;
	const char *s = ystr(m);
	if (s && !strcmp(s, "UNSET"))
		*out = PMTLS_UNSET;
	else if (s && !strcmp(s, "STRICT"))
		*out = PMTLS_STRICT;
	else if (s && !strcmp(s, "PERMISSIVE"))
		*out = PMTLS_PERMISSIVE;
	else if (s && !strcmp(s, "DISABLE"))
		*out = PMTLS_DISABLE;
	else {
		yerr(d, m, field, "unknown mode %s%s%s (UNSET, STRICT, PERMISSIVE or DISABLE)",
		     s ? "\"" : "", s ? s : ytype_name(m), s ? "\"" : "");
		return false;
	}
	return true;
}

static bool add_peer(struct policy_builder *b, const struct ydoc *d, yaml_node_t *root)
{
	struct policy_set *set = b->set;
	int before = d->errs->count;
	struct ppeer p;
	bool dry;
	memset(&p, 0, sizeof p);
	p.line = yline(root);
	parse_metadata(d, root, p.name, p.namespace_, &dry);
	yaml_node_t *spec = ymap_get(d, root, "spec");
	if (spec && !yis_null(spec) && yget_map(d, spec, "spec")) {
		static const char *const keys[] = {"selector", "mtls", "portLevelMtls", NULL};
		ymap_check_keys(d, spec, "spec", keys);
		yaml_node_t *v;
		if ((v = ymap_get(d, spec, "selector"))) {
			parse_selector(b, d, v, &p.selector, &p.nselector);
			p.has_selector = p.nselector > 0;
		}
		if ((v = ymap_get(d, spec, "mtls")))
			parse_mtls_mode(d, v, "spec.mtls", &p.mode);
		if ((v = ymap_get(d, spec, "portLevelMtls")) && yget_map(d, v, "spec.portLevelMtls")) {
			if (!p.has_selector)
				yerr(d, v, "spec.portLevelMtls", "requires spec.selector (port-level mTLS applies to selected workloads only)");
			int cnt = ymap_len(v);
			p.ports = parena_alloc(set, sizeof *p.ports * (size_t)(cnt ? cnt : 1));
			if (!p.ports) { b->oom = true; return false; }
			for (int i = 0; i < cnt; i++) {
				yaml_node_t *k = ymap_key(d, v, i);
				char field[128];
				unsigned long port;
				snprintf(field, sizeof field, "spec.portLevelMtls.%s", ystr(k) ? ystr(k) : "?");
				if (!yget_uint(d, k, field, 1, 65535, &port))
					continue;
				p.ports[p.nports].port = (uint16_t)port;
				if (parse_mtls_mode(d, ymap_val(d, v, i), field, &p.ports[p.nports].mode))
					p.nports++;
			}
		}
	}
	if (d->errs->count != before || b->oom)
		return false;
	for (int i = 0; i < set->npeers; i++)
		if (!strcmp(set->peers[i].name, p.name) && !strcmp(set->peers[i].namespace_, p.namespace_)) {
			yerr(d, ymap_get(d, ymap_get(d, root, "metadata"), "name"), "metadata.name",
			     "duplicate PeerAuthentication %s/%s (first defined at %s:%d)", p.namespace_,
			     p.name, set->peers[i].file, set->peers[i].line);
			return false;
		}
	p.file = parena_strdup(set, d->file, strlen(d->file));
	if (!p.file || !grow((void **)&set->peers, &set->cap_peers, set->npeers + 1, sizeof *set->peers)) {
		b->oom = true;
		return false;
	}
	set->peers[set->npeers++] = p;
	return true;
}

bool policy_builder_add(struct policy_builder *b, struct yaml_document_s *doc,
			struct yaml_node_s *root, const char *file, struct config_errors *errs)
{
	struct ydoc d = {doc, file, errs};
	int before = errs->count;
	const char *kind = ystr(ymap_get(&d, root, "kind"));
	static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
	ymap_check_keys(&d, root, "", keys);
	yaml_node_t *av = ymap_get(&d, root, "apiVersion");
	const char *api = ystr(av);
	if (!av)
		yerr(&d, root, "apiVersion", "required (security.istio.io/v1 or security.istio.io/v1beta1)");
	else if (!api || (strcmp(api, "security.istio.io/v1") && strcmp(api, "security.istio.io/v1beta1")))
		yerr(&d, av, "apiVersion", "must be security.istio.io/v1 or security.istio.io/v1beta1 for %s, got %s%s%s",
		     kind ? kind : "this kind", api ? "\"" : "", api ? api : ytype_name(av), api ? "\"" : "");
	bool ok;
	if (kind && !strcmp(kind, "AuthorizationPolicy"))
		ok = add_authz(b, &d, root);
	else if (kind && !strcmp(kind, "PeerAuthentication"))
		ok = add_peer(b, &d, root);
	else {
		yerr(&d, root, "kind", "not a policy kind");
		ok = false;
	}
	if (b->oom)
		config_error_add(errs, file, yline(root), "", "out of memory");
	return ok && errs->count == before;
}

struct policy_set *policy_builder_finish(struct policy_builder *b, const char *root_namespace)
{
	struct policy_set *set = b->set;
	snprintf(set->root_namespace, sizeof set->root_namespace, "%s",
		 root_namespace && root_namespace[0] ? root_namespace : "istio-system");
	b->set = NULL;
	bool oom = b->oom;
	policy_builder_free(b);
	if (oom || !pindex_build(set)) {
		policy_set_free(set);
		return NULL;
	}
	return set;
}

int policy_set_from_yaml(const char *name, const char *text, size_t len,
			 const char *root_namespace, struct policy_set **out,
			 struct config_errors *errs)
{
	yaml_parser_t parser;
	int before = errs->count;
	*out = NULL;
	struct policy_builder *b = policy_builder_new();
	if (!b || !yaml_parser_initialize(&parser)) {
		policy_builder_free(b);
		config_error_add(errs, name, 0, "", "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			config_error_add(errs, name, (int)parser.problem_mark.line + 1, "",
					 "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
					 parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		struct ydoc d = {&doc, name, errs};
		if (yis_null(root))
			;
		else if (!yis_map(root))
			yerr(&d, root, "", "a document must be a mapping, got %s", ytype_name(root));
		else
			policy_builder_add(b, &doc, root, name, errs);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	if (errs->count != before) {
		policy_builder_free(b);
		return -1;
	}
	*out = policy_builder_finish(b, root_namespace);
	if (!*out) {
		config_error_add(errs, name, 0, "", "out of memory");
		return -1;
	}
	return 0;
}
