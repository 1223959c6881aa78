/* Policy evaluation and the index behind it.
 *
 * Index (built once by pindex_build):
 *   namespace → scopes (policies sharing namespace + selector); root-namespace
 *   scopes apply to every workload. Per scope, rules whose every `from` entry
 *   lists only exact principals sit in one hash keyed by (scope, principal);
 *   all other rules are in the scope's residual list, evaluated linearly.
 * A request therefore costs: a namespace lookup, one selector check per scope
 * of that namespace and of the root namespace, one hash probe per matching
 * scope, and the residual rules — independent of how many exact-principal
 * policies exist. Nothing here allocates. */
#include "appliance/policy_internal.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NONE 0x7fffffff

/* ------------------------------------------------------------ helpers */

bool plabels_subset(const struct config_label *sel, int nsel, const struct config_label *labels,
		    int nlabels)
{
	for (int i = 0; i < nsel; i++) {
		bool found = false;
		for (int j = 0; j < nlabels && !found; j++)
			found = !strcmp(sel[i].key, labels[j].key) && !strcmp(sel[i].value, labels[j].value);
		if (!found)
			return false;
	}
	return true;
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t c = 16;
	while (c < n)
		c <<= 1;
	return c;
}

static uint64_t selector_hash(const struct config_label *sel, int n)
{
	uint64_t h = 0;
	for (int i = 0; i < n; i++)  /* order-independent */
		h += phash(sel[i].value, strlen(sel[i].value), phash(sel[i].key, strlen(sel[i].key), 3));
	return h;
}

static bool selectors_equal(const struct config_label *a, int na, const struct config_label *b, int nb)
{
	return na == nb && plabels_subset(a, na, b, nb);
}

static const struct pns_slot *ns_lookup(const struct policy_set *set, const char *ns, size_t len)
{
	if (!set->ns_slots)
		return NULL;
	uint64_t h = phash(ns, len, 11);
	for (uint32_t i = (uint32_t)h & set->ns_mask;; i = (i + 1) & set->ns_mask) {
		const struct pns_slot *s = &set->ns_slots[i];
		if (!s->hash)
			return NULL;
		if (s->hash == h && strlen(s->ns) == len && !memcmp(s->ns, ns, len))
			return s;
	}
}

static uint64_t slot_hash(int scope, int kind, const char *principal, size_t len)
{
	uint64_t h = phash(principal, len, (uint64_t)scope * 0x9e3779b97f4a7c15ULL + 1 + (uint64_t)kind);
	return h ? h : 1;
}

static struct pslot *slot_find(const struct policy_set *set, int scope, int kind,
			       const char *principal, size_t len, uint64_t h)
{
	for (uint32_t i = (uint32_t)h & set->slot_mask;; i = (i + 1) & set->slot_mask) {
		struct pslot *s = &set->slots[i];
		if (!s->hash || (s->hash == h && s->scope == scope && s->kind == kind && s->len == len &&
				 !memcmp(s->principal, principal, len)))
			return s;
	}
}

/* Whether rule r can only match peers named by its principals, each exact,
 * "prefix*" or "*suffix" (a bare "*" matches any authenticated peer). */
static bool rule_indexable(const struct prule *r)
{
	if (r->nfrom == 0)
		return false;
	for (int i = 0; i < r->nfrom; i++) {
		const struct plist *p = &r->from[i].principals;
		if (p->n == 0)
			return false;
		for (int j = 0; j < p->n; j++)
			if (p->v[j].kind == PM_ANY)
				return false;
	}
	return true;
}

/* Adds len to the sorted distinct list; false on OOM. */
static bool lens_add(uint32_t **v, int *n, uint32_t len)
{
	int i = 0;
	while (i < *n && (*v)[i] < len)
		i++;
	if (i < *n && (*v)[i] == len)
		return true;
	uint32_t *nv = realloc(*v, sizeof **v * (size_t)(*n + 1));
	if (!nv)
		return false;
	memmove(nv + i + 1, nv + i, sizeof *nv * (size_t)(*n - i));
	nv[i] = len;
	*v = nv;
	(*n)++;
	return true;
}

bool pindex_build(struct policy_set *set)
{
	int np = set->npolicies;
	/* 1. scopes */
	set->scopes = calloc((size_t)(np ? np : 1), sizeof *set->scopes);
	uint32_t smask = pow2_at_least((uint64_t)np * 2) - 1;
	int *stab = malloc(sizeof *stab * (smask + 1));
	if (!set->scopes || !stab) {
		free(stab);
		return false;
	}
	memset(stab, 0xff, sizeof *stab * (smask + 1));
	for (int i = 0; i < np; i++) {
		struct ppolicy *p = &set->policies[i];
		uint64_t h = phash(p->namespace_, strlen(p->namespace_), 5) ^ selector_hash(p->selector, p->nselector);
		uint32_t k = (uint32_t)h & smask;
		for (; stab[k] >= 0; k = (k + 1) & smask) {
			struct pscope *s = &set->scopes[stab[k]];
			if (!strcmp(s->namespace_, p->namespace_) &&
			    selectors_equal(s->selector, s->nselector, p->selector, p->nselector))
				break;
		}
		if (stab[k] < 0) {
			struct pscope *s = &set->scopes[set->nscopes];
			s->namespace_ = p->namespace_;
			s->selector = p->selector;
			s->nselector = p->nselector;
			s->root = !strcmp(p->namespace_, set->root_namespace);
			s->next_in_namespace = -1;
			stab[k] = set->nscopes++;
		}
		p->scope = stab[k];
		struct pscope *s = &set->scopes[p->scope];
		if (p->action == PA_ALLOW && !p->dry_run)
			s->has_allow = true;
		if (p->action == PA_ALLOW && p->dry_run)
			s->has_dry_allow = true;
	}
	free(stab);
	/* 2. namespace → chain of scopes (kept in creation order), root list */
	set->ns_mask = pow2_at_least((uint64_t)set->nscopes * 2) - 1;
	set->ns_slots = calloc(set->ns_mask + 1, sizeof *set->ns_slots);
	set->root_scopes = calloc((size_t)(set->nscopes ? set->nscopes : 1), sizeof *set->root_scopes);
	if (!set->ns_slots || !set->root_scopes)
		return false;
	for (int i = set->nscopes - 1; i >= 0; i--) {
		struct pscope *s = &set->scopes[i];
		uint64_t h = phash(s->namespace_, strlen(s->namespace_), 11);
		uint32_t k = (uint32_t)h & set->ns_mask;
		for (; set->ns_slots[k].hash; k = (k + 1) & set->ns_mask)
			if (set->ns_slots[k].hash == h && !strcmp(set->ns_slots[k].ns, s->namespace_))
				break;
		if (!set->ns_slots[k].hash) {
			set->ns_slots[k].hash = h;
			set->ns_slots[k].ns = s->namespace_;
			set->ns_slots[k].first_scope = -1;
		}
		s->next_in_namespace = set->ns_slots[k].first_scope;
		set->ns_slots[k].first_scope = i;
	}
	for (int i = 0; i < set->nscopes; i++)
		if (set->scopes[i].root)
			set->root_scopes[set->nroot_scopes++] = i;
	/* 3. principal slots and residual lists */
	uint64_t pairs = 0;
	for (int r = 0; r < set->nrules; r++) {
		struct prule *rule = &set->rules[r];
		if (rule_indexable(rule))
			for (int i = 0; i < rule->nfrom; i++)
				pairs += (uint64_t)rule->from[i].principals.n;
		else
			set->scopes[set->policies[rule->policy].scope].nresidual++;
	}
	for (int i = 0; i < set->nscopes; i++) {
		struct pscope *s = &set->scopes[i];
		s->residual = parena_alloc(set, sizeof *s->residual * (size_t)(s->nresidual ? s->nresidual : 1));
		if (!s->residual)
			return false;
		s->nresidual = 0;
	}
	set->slot_mask = pow2_at_least(pairs * 2) - 1;
	set->slots = calloc(set->slot_mask + 1, sizeof *set->slots);
	int *last = malloc(sizeof *last * (set->slot_mask + 1));
	set->slot_rules = malloc(sizeof *set->slot_rules * (size_t)(pairs ? pairs : 1));
	if (!set->slots || !last || !set->slot_rules) {
		free(last);
		return false;
	}
	/* pass a: create slots, count distinct rules per slot */
	for (int r = 0; r < set->nrules; r++) {
		struct prule *rule = &set->rules[r];
		int scope = set->policies[rule->policy].scope;
		if (!rule_indexable(rule)) {
			struct pscope *s = &set->scopes[scope];
			s->residual[s->nresidual++] = r;
			continue;
		}
		for (int i = 0; i < rule->nfrom; i++)
			for (int j = 0; j < rule->from[i].principals.n; j++) {
				const struct pmatch *m = &rule->from[i].principals.v[j];
				uint64_t h = slot_hash(scope, m->kind, m->s, m->len);
				struct pslot *s = slot_find(set, scope, m->kind, m->s, m->len, h);
				if (!s->hash) {
					if ((m->kind == PM_PREFIX &&
					     !lens_add(&set->prefix_lens, &set->nprefix_lens, m->len)) ||
					    (m->kind == PM_SUFFIX &&
					     !lens_add(&set->suffix_lens, &set->nsuffix_lens, m->len))) {
						free(last);
						return false;
					}
					s->hash = h;
					s->scope = scope;
					s->kind = m->kind;
					s->principal = m->s;
					s->len = m->len;
					last[s - set->slots] = -1;
				}
				if (last[s - set->slots] != r) {
					last[s - set->slots] = r;
					s->count++;
				}
			}
	}
	int off = 0;
	for (uint32_t i = 0; i <= set->slot_mask; i++)
		if (set->slots[i].hash) {
			set->slots[i].first = off;
			off += set->slots[i].count;
			set->slots[i].count = 0;
			last[i] = -1;
		}
	/* pass b: fill, rules in increasing order */
	for (int r = 0; r < set->nrules; r++) {
		struct prule *rule = &set->rules[r];
		if (!rule_indexable(rule))
			continue;
		int scope = set->policies[rule->policy].scope;
		for (int i = 0; i < rule->nfrom; i++)
			for (int j = 0; j < rule->from[i].principals.n; j++) {
				const struct pmatch *m = &rule->from[i].principals.v[j];
				struct pslot *s = slot_find(set, scope, m->kind, m->s, m->len,
							    slot_hash(scope, m->kind, m->s, m->len));
				if (last[s - set->slots] != r) {
					last[s - set->slots] = r;
					set->slot_rules[s->first + s->count++] = r;
				}
			}
	}
	set->nslot_rules = off;
	free(last);
	return true;
}

/* ------------------------------------------------------------ matching */

struct ctx {
	const struct policy_request *req;
	size_t principal_len;
	const char *src_ns; size_t src_ns_len;      /* NULL: none */
	size_t path_len;                            /* without the query */
	size_t method_len, host_len, sni_len;
	uint32_t src_ip, dst_ip;                    /* host order */
};

static bool str_match(const struct pmatch *m, const char *s, size_t len, bool nocase)
{
	if (!s)
		return false;
	switch (m->kind) {
	case PM_ANY:
		return true;
	case PM_EXACT:
		return len == m->len && (nocase ? !strncasecmp(s, m->s, len) : !memcmp(s, m->s, len));
	case PM_PREFIX:
		return len >= m->len && (nocase ? !strncasecmp(s, m->s, m->len) : !memcmp(s, m->s, m->len));
	case PM_SUFFIX:
		return len >= m->len && (nocase ? !strncasecmp(s + len - m->len, m->s, m->len)
						: !memcmp(s + len - m->len, m->s, m->len));
	}
	return false;
}

static bool list_any(const struct plist *l, const char *s, size_t len, bool nocase)
{
	for (int i = 0; i < l->n; i++)
		if (str_match(&l->v[i], s, len, nocase))
			return true;
	return false;
}

/* positive list: must be absent or match; negative list: must not match.
 * An absent attribute (s == NULL) matches no positive entry and no negative
 * entry — Envoy compares an absent value as "no match", so the not* form is
 * satisfied (ISTIO-SECURITY-2021-004). */
static bool str_cond(const struct plist *pos, const struct plist *neg, const char *s, size_t len,
		     bool nocase)
{
	if (pos->n && !list_any(pos, s, len, nocase))
		return false;
	if (neg->n && list_any(neg, s, len, nocase))
		return false;
	return true;
}

static bool cidr_any(const struct pcidrs *c, uint32_t ip)
{
	for (int i = 0; i < c->n; i++)
		if ((ip & c->v[i].mask) == c->v[i].net)
			return true;
	return false;
}

static bool cidr_cond(const struct pcidrs *pos, const struct pcidrs *neg, uint32_t ip)
{
	return (!pos->n || cidr_any(pos, ip)) && !(neg->n && cidr_any(neg, ip));
}

static bool port_any(const struct pports *p, uint16_t port)
{
	for (int i = 0; i < p->n; i++)
		if (p->v[i] == port)
			return true;
	return false;
}

static bool port_cond(const struct pports *pos, const struct pports *neg, uint16_t port)
{
	return (!pos->n || port_any(pos, port)) && !(neg->n && port_any(neg, port));
}

static bool source_match(const struct psource *s, const struct ctx *c)
{
	const struct policy_request *q = c->req;
	return str_cond(&s->principals, &s->not_principals, q->principal, c->principal_len, false) &&
	       str_cond(&s->namespaces, &s->not_namespaces, c->src_ns, c->src_ns_len, false) &&
	       cidr_cond(&s->ip_blocks, &s->not_ip_blocks, c->src_ip) &&
	       cidr_cond(&s->remote_ip_blocks, &s->not_remote_ip_blocks, c->src_ip);
}

static bool operation_match(const struct poperation *o, const struct ctx *c)
{
	const struct policy_request *q = c->req;
	if (!port_cond(&o->ports, &o->not_ports, q->dest_port))
		return false;
	if (!q->has_l7)     /* only DENY/AUDIT get here: their L7 parts are dropped */
		return true;
	return str_cond(&o->hosts, &o->not_hosts, q->host, c->host_len, true) &&
	       str_cond(&o->methods, &o->not_methods, q->method, c->method_len, false) &&
	       str_cond(&o->paths, &o->not_paths, q->path, c->path_len, false);
}

static bool condition_match(const struct pcondition *w, const struct ctx *c)
{
	const struct policy_request *q = c->req;
	switch (w->key) {
	case COND_SOURCE_IP:
	case COND_REMOTE_IP:
		return cidr_cond(&w->cidrs, &w->not_cidrs, c->src_ip);
	case COND_DEST_IP:
		return cidr_cond(&w->cidrs, &w->not_cidrs, c->dst_ip);
	case COND_DEST_PORT:
		return port_cond(&w->ports, &w->not_ports, q->dest_port);
	case COND_SOURCE_PRINCIPAL:
		return str_cond(&w->values, &w->not_values, q->principal, c->principal_len, false);
	case COND_SOURCE_NAMESPACE:
		return str_cond(&w->values, &w->not_values, c->src_ns, c->src_ns_len, false);
	case COND_SNI:
		return str_cond(&w->values, &w->not_values, q->sni, c->sni_len, true);
	case COND_HEADER: {
		if (!q->has_l7)
			return true;    /* dropped for DENY/AUDIT on tcp */
		const char *v = NULL;
		size_t vlen = 0;
		for (int i = 0; i < q->nheaders; i++) {
			const struct policy_header *h = &q->headers[i];
			if (h->name_len == w->header_len && !strncasecmp(h->name, w->header, w->header_len)) {
				v = h->value;
				vlen = h->value_len;
				break;
			}
		}
		return str_cond(&w->values, &w->not_values, v, vlen, false);
	}
	}
	return false;
}

static bool rule_match(const struct policy_set *set, const struct prule *r, const struct ctx *c)
{
	if (r->l7 && !c->req->has_l7 && set->policies[r->policy].action == PA_ALLOW)
		return false;   /* ALLOW needing HTTP attributes never matches on tcp */
	if (r->nfrom) {
		int i = 0;
		while (i < r->nfrom && !source_match(&r->from[i], c))
			i++;
		if (i == r->nfrom)
			return false;
	}
	if (r->nto) {
		int i = 0;
		while (i < r->nto && !operation_match(&r->to[i], c))
			i++;
		if (i == r->nto)
			return false;
	}
	for (int i = 0; i < r->nwhen; i++)
		if (!condition_match(&r->when[i], c))
			return false;
	return true;
}

struct state { int deny, allow, dry_deny, dry_allow; bool audit, allow_applies, dry_allow_applies; };

static void consider(const struct policy_set *set, int rule, const struct ctx *c, struct state *st)
{
	const struct prule *r = &set->rules[rule];
	const struct ppolicy *p = &set->policies[r->policy];
	int *best;
	if (p->action == PA_AUDIT) {
		if (st->audit)
			return;
		if (rule_match(set, r, c))
			st->audit = true;
		return;
	}
	if (p->action == PA_DENY)
		best = p->dry_run ? &st->dry_deny : &st->deny;
	else
		best = p->dry_run ? &st->dry_allow : &st->allow;
	if (r->policy < *best && rule_match(set, r, c))
		*best = r->policy;
}

static void visit_scope(const struct policy_set *set, int si, const struct ctx *c, struct state *st)
{
	const struct pscope *s = &set->scopes[si];
	const struct policy_request *q = c->req;
	if (!plabels_subset(s->selector, s->nselector, q->workload_labels, q->workload_nlabels))
		return;
	st->allow_applies |= s->has_allow;
	st->dry_allow_applies |= s->has_dry_allow;
	if (q->principal && set->nslot_rules) {
		size_t len = c->principal_len;
		const struct pslot *sl = slot_find(set, si, PM_EXACT, q->principal, len,
						   slot_hash(si, PM_EXACT, q->principal, len));
		for (int i = 0; sl->hash && i < sl->count; i++)
			consider(set, set->slot_rules[sl->first + i], c, st);
		/* a rule indexed under several patterns may be considered twice:
		 * harmless, consider() keeps the first policy that matched */
		for (int k = 0; k < set->nprefix_lens && set->prefix_lens[k] <= len; k++) {
			uint32_t l = set->prefix_lens[k];
			sl = slot_find(set, si, PM_PREFIX, q->principal, l,
				       slot_hash(si, PM_PREFIX, q->principal, l));
			for (int i = 0; sl->hash && i < sl->count; i++)
				consider(set, set->slot_rules[sl->first + i], c, st);
		}
		for (int k = 0; k < set->nsuffix_lens && set->suffix_lens[k] <= len; k++) {
			uint32_t l = set->suffix_lens[k];
			const char *tail = q->principal + len - l;
			sl = slot_find(set, si, PM_SUFFIX, tail, l, slot_hash(si, PM_SUFFIX, tail, l));
			for (int i = 0; sl->hash && i < sl->count; i++)
				consider(set, set->slot_rules[sl->first + i], c, st);
		}
	}
	for (int i = 0; i < s->nresidual; i++)
		consider(set, s->residual[i], c, st);
}

static void copy_name(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

void policy_evaluate(const struct policy_set *set, const struct policy_request *req,
		     struct policy_decision *out)
{
	struct ctx c;
	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	c.req = req;
	if (req->principal) {
		c.principal_len = strlen(req->principal);
		const char *ns = strstr(req->principal, "/ns/");
		if (ns) {
			c.src_ns = ns + 4;
			const char *end = strchr(c.src_ns, '/');
			c.src_ns_len = end ? (size_t)(end - c.src_ns) : strlen(c.src_ns);
		}
	}
	if (req->path) {
		const char *qm = memchr(req->path, '?', req->path_len);
		c.path_len = qm ? (size_t)(qm - req->path) : req->path_len;
	}
	c.method_len = req->method ? strlen(req->method) : 0;
	c.host_len = req->host ? strlen(req->host) : 0;
	c.sni_len = req->sni ? strlen(req->sni) : 0;
	c.src_ip = ntohl(req->source_ip);
	c.dst_ip = ntohl(req->dest_ip);

	struct state st = {NONE, NONE, NONE, NONE, false, false, false};
	const char *wns = req->workload_namespace ? req->workload_namespace : "";
	const struct pns_slot *ns = ns_lookup(set, wns, strlen(wns));
	bool in_root = !strcmp(wns, set->root_namespace);
	for (int si = ns ? ns->first_scope : -1; si >= 0; si = set->scopes[si].next_in_namespace)
		visit_scope(set, si, &c, &st);
	for (int i = 0; !in_root && i < set->nroot_scopes; i++)
		visit_scope(set, set->root_scopes[i], &c, &st);

	out->audit = st.audit;
	int decider = -1;
	if (st.deny != NONE) {
		out->action = POLICY_DENY;
		decider = st.deny;
	} else if (!st.allow_applies) {
		out->action = POLICY_ALLOW;
		out->no_allow_applies = true;
	} else if (st.allow != NONE) {
		out->action = POLICY_ALLOW;
		decider = st.allow;
	} else {
		out->action = POLICY_DENY;
	}
	if (decider >= 0) {
		copy_name(out->policy_namespace, sizeof out->policy_namespace, set->policies[decider].namespace_);
		copy_name(out->policy_name, sizeof out->policy_name, set->policies[decider].name);
	}
	int dry = -1;
	if (st.dry_deny != NONE) {
		out->dry_run_matched = true;
		out->dry_run_action = POLICY_DENY;
		dry = st.dry_deny;
	} else if (st.dry_allow_applies) {
		out->dry_run_matched = true;
		out->dry_run_action = st.dry_allow != NONE ? POLICY_ALLOW : POLICY_DENY;
		dry = st.dry_allow != NONE ? st.dry_allow : -1;
	}
	if (dry >= 0) {
		copy_name(out->dry_run_namespace, sizeof out->dry_run_namespace, set->policies[dry].namespace_);
		copy_name(out->dry_run_name, sizeof out->dry_run_name, set->policies[dry].name);
	}
}

int policy_decision_format(const struct policy_decision *d, char *buf, size_t len)
{
	char who[160], dry[200] = "";
	if (d->policy_name[0])
		snprintf(who, sizeof who, "%s/%s", d->policy_namespace, d->policy_name);
	else
		snprintf(who, sizeof who, "%s", d->no_allow_applies ? "(no ALLOW policy applies)"
								    : "(no ALLOW policy matched)");
	if (d->dry_run_matched) {
		const char *verb = d->dry_run_action == POLICY_ALLOW ? "allowed" : "denied";
		if (d->dry_run_name[0])
			snprintf(dry, sizeof dry, " dry-run: would have %s by %s/%s", verb,
				 d->dry_run_namespace, d->dry_run_name);
		else
			snprintf(dry, sizeof dry, " dry-run: would have %s (no dry-run ALLOW policy matched)", verb);
	}
	return snprintf(buf, len, "%s %s%s%s", d->action == POLICY_ALLOW ? "ALLOW" : "DENY", who,
			d->audit ? " audit" : "", dry);
}

/* ------------------------------------------------------------ PeerAuthentication */

enum policy_mtls_mode policy_mtls_mode(const struct policy_set *set, const char *workload_namespace,
				       const struct config_label *labels, int nlabels, uint16_t port)
{
	const struct ppeer *workload = NULL, *nswide = NULL, *mesh = NULL;
	for (int i = 0; i < set->npeers; i++) {
		const struct ppeer *p = &set->peers[i];
		bool in_ns = !strcmp(p->namespace_, workload_namespace);
		if (p->has_selector) {
			/* first (oldest) matching workload policy wins, as in Istio */
			if (in_ns && !workload && plabels_subset(p->selector, p->nselector, labels, nlabels))
				workload = p;
		} else if (in_ns && !nswide) {
			nswide = p;
		}
		if (!p->has_selector && !mesh && !strcmp(p->namespace_, set->root_namespace))
			mesh = p;
	}
	enum pmtls m = PMTLS_UNSET;
	if (workload) {
		for (int i = 0; i < workload->nports; i++)
			if (workload->ports[i].port == port)
				m = workload->ports[i].mode;
		if (m == PMTLS_UNSET)
			m = workload->mode;
	}
	if (m == PMTLS_UNSET && nswide)
		m = nswide->mode;
	if (m == PMTLS_UNSET && mesh)
		m = mesh->mode;
	switch (m) {
	case PMTLS_STRICT: return POLICY_MTLS_STRICT;
	case PMTLS_DISABLE: return POLICY_MTLS_DISABLE;
	case PMTLS_PERMISSIVE: return POLICY_MTLS_PERMISSIVE;
	default:
		/* No PeerAuthentication decides: Istio would be PERMISSIVE (a
		 * migration aid for sidecars); meshgate sits on a trust boundary
		 * and requires mTLS unless a PeerAuthentication says otherwise. */
		return POLICY_MTLS_STRICT;
	}
}

/* ------------------------------------------------------------ set */

size_t policy_set_count(const struct policy_set *set) { return set ? (size_t)set->npolicies : 0; }
size_t policy_set_peer_count(const struct policy_set *set) { return set ? (size_t)set->npeers : 0; }

void policy_set_info(const struct policy_set *set, size_t i, struct policy_info *out)
{
	const struct ppolicy *p = &set->policies[i];
	static const char *const actions[] = {"ALLOW", "DENY", "AUDIT"};
	out->namespace_ = p->namespace_;
	out->name = p->name;
	out->file = p->file;
	out->line = p->line;
	out->action = actions[p->action];
	out->dry_run = p->dry_run;
	out->has_l7 = p->has_l7;
}

bool policy_applies(const struct policy_set *set, size_t i, const char *workload_namespace,
		    const struct config_label *labels, int nlabels)
{
	const struct ppolicy *p = &set->policies[i];
	if (strcmp(p->namespace_, workload_namespace) && strcmp(p->namespace_, set->root_namespace))
		return false;
	return plabels_subset(p->selector, p->nselector, labels, nlabels);
}

void policy_set_free(struct policy_set *set)
{
	if (!set)
		return;
	for (struct arena_chunk *c = set->arena, *n; c; c = n) {
		n = *(struct arena_chunk **)c;  /* first member: next */
		free(c);
	}
	free(set->policies);
	free(set->rules);
	free(set->peers);
	free(set->scopes);
	free(set->root_scopes);
	free(set->ns_slots);
	free(set->slots);
	free(set->slot_rules);
	free(set->prefix_lens);
	free(set->suffix_lens);
	free(set);
}
