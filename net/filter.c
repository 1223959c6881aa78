/* L3/L4 packet filter: see filter.h. */
#include "net/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO 8

struct trie_node {
	int32_t child[2];           /* -1 = none */
	uint32_t first, count;      /* rules ending here: rule_ids[first..first+count) */
	int32_t pindex;             /* port index of a crowded node, -1 = none */
};

/* A node holding many rules (the same CIDR with different ports) gets an
 * index by destination port: 256 buckets of 256 ports, each listing the
 * rules whose range touches it; rules without ports or with wide ranges sit
 * in one `wide` list checked for every port. All lists ascend, so a merged
 * scan still finds the first rule in declaration order. */
#define FILTER_INDEX_MIN 16         /* rules on a node before it is indexed */
#define FILTER_INDEX_WIDE 16        /* buckets a range may touch before it is "wide" */
struct port_index {
	uint32_t bucket[257];       /* bucket b: pids[bucket[b]..bucket[b+1]) */
	uint32_t wide, nwide;       /* pids[wide..wide+nwide) */
};

struct filter {
	struct filter_rule *rules;
	size_t nrules;
	uint32_t *rule_ids;         /* ascending within each node */
	struct port_index *pindex;
	uint32_t npindex;
	uint32_t *pids;
	struct trie_node *nodes;
	uint32_t nnodes, cap_nodes;
	int32_t root[FILTER_MAX_PORTS][2];
	unsigned nports;
	bool enforce[FILTER_MAX_PORTS][2];
	uint32_t local_addr[FILTER_MAX_PORTS];
	uint64_t *local_bits[FILTER_MAX_PORTS][2];      /* [TCP, UDP]: 65536 bits */
	uint32_t ngroups;
	uint64_t *group_hits;
	uint64_t counts[FILTER_MAX_PORTS][2][FILTER_NREASONS];
};

struct flow_entry {
	uint32_t local, remote;
	uint16_t lport, rport;
	uint8_t port, proto, used, pad_;
	uint32_t expires_ms;
};

struct filter_flows {
	struct flow_entry *e;
	uint32_t nsets;             /* sets of FLOW_WAYS, power of two */
	uint32_t seed;
	uint64_t inserted, full;
};
#define FLOW_WAYS 4

static uint32_t mask_of(uint8_t prefix) { return prefix ? ~0u << (32 - prefix) : 0; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const char *filter_reason_name(enum filter_reason r)
{
	static const char *const names[FILTER_NREASONS] = {
		[FILTER_PASS_NOT_IP] = "arp", [FILTER_PASS_UNENFORCED] = "unenforced",
		[FILTER_PASS_FLOW] = "established", [FILTER_PASS_LOCAL] = "local-service",
		[FILTER_PASS_RULE] = "rule", [FILTER_DROP_DEFAULT] = "default-deny",
		[FILTER_DROP_NON_IPV4] = "non-ipv4", [FILTER_DROP_FRAGMENT] = "fragment",
		[FILTER_DROP_MALFORMED] = "malformed",
	};
	return (unsigned)r < FILTER_NREASONS ? names[r] : "?";
}

/* ------------------------------------------------------------ build */

static int32_t node_new(struct filter *f)
{
	if (f->nnodes == f->cap_nodes) {
		uint32_t cap = f->cap_nodes ? f->cap_nodes * 2 : 64;
		struct trie_node *n = realloc(f->nodes, cap * sizeof *n);
		if (!n)
			return -1;
		f->nodes = n;
		f->cap_nodes = cap;
	}
	struct trie_node *n = &f->nodes[f->nnodes];
	n->child[0] = n->child[1] = -1;
	n->first = n->count = 0;
	n->pindex = -1;
	return (int32_t)f->nnodes++;
}

void filter_free(struct filter *f)
{
	if (!f)
		return;
	for (unsigned p = 0; p < FILTER_MAX_PORTS; p++)
		for (int k = 0; k < 2; k++)
			free(f->local_bits[p][k]);
	free(f->rules);
	free(f->rule_ids);
	free(f->pindex);
	free(f->pids);
	free(f->nodes);
	free(f->group_hits);
	free(f);
}

static struct filter *fail(struct filter *f, char *err, size_t errlen, const char *msg, long i)
{
	if (i >= 0)
		snprintf(err, errlen, "rule %ld: %s", i, msg);
	else
		snprintf(err, errlen, "%s", msg);
	filter_free(f);
	return NULL;
}

static bool rule_wide(const struct filter_rule *r)
{
	return !r->port_hi || (unsigned)(r->port_hi >> 8) - (unsigned)(r->port_lo >> 8) >= FILTER_INDEX_WIDE;
}

static int build_port_index(struct filter *f)
{
	size_t total = 0;
	for (uint32_t n = 0; n < f->nnodes; n++)
		if (f->nodes[n].count >= FILTER_INDEX_MIN) {
			f->nodes[n].pindex = (int32_t)f->npindex++;
			for (uint32_t k = 0; k < f->nodes[n].count; k++) {
				const struct filter_rule *r = &f->rules[f->rule_ids[f->nodes[n].first + k]];
				total += rule_wide(r) ? 1 : (size_t)(r->port_hi >> 8) - (r->port_lo >> 8) + 1;
			}
		}
	if (!f->npindex)
		return 0;
	f->pindex = calloc(f->npindex, sizeof *f->pindex);
	f->pids = calloc(total, sizeof *f->pids);
	if (!f->pindex || !f->pids)
		return -1;
	uint32_t at = 0;
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct trie_node *nd = &f->nodes[n];
		if (nd->pindex < 0)
			continue;
		struct port_index *px = &f->pindex[nd->pindex];
		/* bucket by bucket, ids ascending (rule_ids already are) */
		for (unsigned b = 0; b < 256; b++) {
			px->bucket[b] = at;
			for (uint32_t k = 0; k < nd->count; k++) {
				uint32_t id = f->rule_ids[nd->first + k];
				const struct filter_rule *r = &f->rules[id];
				if (!rule_wide(r) && (unsigned)(r->port_lo >> 8) <= b && b <= (unsigned)(r->port_hi >> 8))
					f->pids[at++] = id;
			}
		}
		px->bucket[256] = at;
		px->wide = at;
		for (uint32_t k = 0; k < nd->count; k++) {
			uint32_t id = f->rule_ids[nd->first + k];
			if (rule_wide(&f->rules[id]))
				f->pids[at++] = id;
		}
		px->nwide = at - px->wide;
	}
	return 0;
}

struct filter *filter_new(const struct filter_config *cfg, char *err, size_t errlen)
{
	struct filter *f = calloc(1, sizeof *f);
	if (!f)
		return fail(NULL, err, errlen, "out of memory", -1);
	if (cfg->nports > FILTER_MAX_PORTS)
		return fail(f, err, errlen, "too many ports", -1);
	if (cfg->nrules > FILTER_MAX_RULES)
		return fail(f, err, errlen, "too many rules", -1);
	f->nports = cfg->nports;
	memcpy(f->enforce, cfg->enforce, sizeof f->enforce);
	memcpy(f->local_addr, cfg->local_addr, sizeof f->local_addr);
	for (unsigned p = 0; p < FILTER_MAX_PORTS; p++)
		f->root[p][0] = f->root[p][1] = -1;
	f->ngroups = cfg->ngroups;
	f->group_hits = calloc(cfg->ngroups ? cfg->ngroups : 1, sizeof *f->group_hits);
	f->nrules = cfg->nrules;
	f->rules = calloc(cfg->nrules ? cfg->nrules : 1, sizeof *f->rules);
	f->rule_ids = calloc(cfg->nrules ? cfg->nrules : 1, sizeof *f->rule_ids);
	uint32_t *next = calloc(cfg->nrules ? cfg->nrules : 1, sizeof *next);
	if (!f->group_hits || !f->rules || !f->rule_ids || !next) {
		free(next);
		return fail(f, err, errlen, "out of memory", -1);
	}
	if (cfg->nrules)
		memcpy(f->rules, cfg->rules, cfg->nrules * sizeof *f->rules);

	/* Trie per (port, dir); each node chains its rules through next[]
	 * (1-based, newest first) until they are flattened below. */
	for (size_t i = 0; i < f->nrules; i++) {
		struct filter_rule *r = &f->rules[i];
		const char *bad = NULL;
		if (r->port >= f->nports)
			bad = "port index out of range";
		else if (r->dir > FILTER_EGRESS)
			bad = "bad direction";
		else if (r->peer.prefix > 32 || r->nexcept > FILTER_MAX_EXCEPT)
			bad = "bad CIDR";
		else if (r->port_lo > r->port_hi)
			bad = "port range start above its end";
		else if (r->group >= f->ngroups)
			bad = "group out of range";
		for (unsigned k = 0; !bad && k < r->nexcept; k++)
			if (r->except[k].prefix > 32)
				bad = "bad except CIDR";
		if (bad) {
			free(next);
			return fail(f, err, errlen, bad, (long)i);
		}
		r->peer.addr &= mask_of(r->peer.prefix);
		for (unsigned k = 0; k < r->nexcept; k++)
			r->except[k].addr &= mask_of(r->except[k].prefix);
		int32_t *rootp = &f->root[r->port][r->dir];
		if (*rootp < 0 && (*rootp = node_new(f)) < 0) {
			free(next);
			return fail(f, err, errlen, "out of memory", -1);
		}
		int32_t n = *rootp;
		for (unsigned depth = 0; depth < r->peer.prefix; depth++) {
			unsigned b = (r->peer.addr >> (31 - depth)) & 1;
			if (f->nodes[n].child[b] < 0) {
				int32_t c = node_new(f);
				if (c < 0) {
					free(next);
					return fail(f, err, errlen, "out of memory", -1);
				}
				f->nodes[n].child[b] = c;
			}
			n = f->nodes[n].child[b];
		}
		next[i] = f->nodes[n].first;        /* previous head, 1-based */
		f->nodes[n].first = (uint32_t)i + 1;
		f->nodes[n].count++;
	}
	uint32_t at = 0;
	for (uint32_t n = 0; n < f->nnodes; n++) {
		struct trie_node *nd = &f->nodes[n];
		uint32_t head = nd->first, cnt = nd->count;
		nd->first = at;
		/* the chain is newest first: write it back to front */
		for (uint32_t k = cnt; k-- > 0; head = next[head - 1])
			f->rule_ids[at + k] = head - 1;
		at += cnt;
	}
	free(next);
	if (build_port_index(f) != 0)
		return fail(f, err, errlen, "out of memory", -1);

	for (size_t i = 0; i < cfg->nlocals; i++) {
		const struct filter_local *l = &cfg->locals[i];
		int k = l->proto == FILTER_PROTO_TCP ? 0 : l->proto == FILTER_PROTO_UDP ? 1 : -1;
		if (l->port >= f->nports || k < 0)
			return fail(f, err, errlen, "local service: bad port index or protocol", -1);
		if (!f->local_bits[l->port][k] &&
		    !(f->local_bits[l->port][k] = calloc(65536 / 64, sizeof(uint64_t))))
			return fail(f, err, errlen, "out of memory", -1);
		f->local_bits[l->port][k][l->dport / 64] |= 1ull << (l->dport % 64);
	}
	return f;
}

/* ------------------------------------------------------------ rules */

static bool rule_allows(const struct filter_rule *r, uint8_t proto, uint32_t peer, uint16_t dport)
{
	if (r->proto && r->proto != proto)
		return false;
	if (r->port_hi) {
		if (proto != FILTER_PROTO_TCP && proto != FILTER_PROTO_UDP)
			return false;
		if (dport < r->port_lo || dport > r->port_hi)
			return false;
	}
	for (unsigned k = 0; k < r->nexcept; k++)
		if ((peer & mask_of(r->except[k].prefix)) == r->except[k].addr)
			return false;
	return true;
}

long filter_match(const struct filter *f, unsigned port, enum filter_dir dir, uint8_t proto,
		  uint32_t peer, uint16_t dport)
{
	if (port >= f->nports)
		return -1;
	long best = -1;
	int32_t n = f->root[port][dir];
	for (unsigned depth = 0; n >= 0; depth++) {
		const struct trie_node *nd = &f->nodes[n];
		if (nd->pindex >= 0) {
			/* merge the port's bucket with the wide list, ascending */
			const struct port_index *px = &f->pindex[nd->pindex];
			const uint32_t *a = f->pids + px->bucket[dport >> 8], *ae = f->pids + px->bucket[(dport >> 8) + 1];
			const uint32_t *w = f->pids + px->wide, *we = w + px->nwide;
			while (a < ae || w < we) {
				uint32_t id = (w == we || (a < ae && *a < *w)) ? *a++ : *w++;
				if (best >= 0 && id > (uint32_t)best)
					break;
				if (rule_allows(&f->rules[id], proto, peer, dport)) {
					best = id;
					break;
				}
			}
		} else {
			for (uint32_t k = 0; k < nd->count; k++) {
				uint32_t id = f->rule_ids[nd->first + k];
				if (best >= 0 && id > (uint32_t)best)
					break;
				if (rule_allows(&f->rules[id], proto, peer, dport)) {
					best = id;
					break;
				}
			}
		}
		if (depth == 32)
			break;
		n = nd->child[(peer >> (31 - depth)) & 1];
	}
	return best;
}

/* ------------------------------------------------------------ flows */

static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

struct filter_flows *filter_flows_new(uint32_t capacity, uint32_t seed)
{
	struct filter_flows *fl = calloc(1, sizeof *fl);
	if (!fl)
		return NULL;
	uint32_t sets = 1;
	while (sets * FLOW_WAYS < capacity && sets < (1u << 24))
		sets <<= 1;
	fl->nsets = sets;
	fl->seed = seed;
	fl->e = calloc((size_t)sets * FLOW_WAYS, sizeof *fl->e);
	if (!fl->e) {
		free(fl);
		return NULL;
	}
	return fl;
}

void filter_flows_free(struct filter_flows *fl)
{
	if (fl)
		free(fl->e);
	free(fl);
}

void filter_flows_stats(const struct filter_flows *fl, struct filter_flows_stats *out)
{
	memset(out, 0, sizeof *out);
	out->inserted = fl->inserted;
	out->full = fl->full;
	out->capacity = fl->nsets * FLOW_WAYS;
	for (uint32_t i = 0; i < out->capacity; i++)
		out->active_hint += fl->e[i].used;
}

static uint32_t timeout_of(uint8_t proto)
{
	return proto == FILTER_PROTO_TCP ? FILTER_TIMEOUT_TCP_MS
	       : proto == FILTER_PROTO_UDP ? FILTER_TIMEOUT_UDP_MS : FILTER_TIMEOUT_ICMP_MS;
}

static bool expired(const struct flow_entry *e, uint32_t now)
{
	return (int32_t)(now - e->expires_ms) >= 0;
}

static struct flow_entry *flow_set(struct filter_flows *fl, const struct flow_entry *k)
{
	uint32_t h = mix32(fl->seed ^ k->local);
	h = mix32(h ^ k->remote);
	h = mix32(h ^ ((uint32_t)k->lport << 16 | k->rport));
	h = mix32(h ^ ((uint32_t)k->port << 8 | k->proto));
	return fl->e + (size_t)(h & (fl->nsets - 1)) * FLOW_WAYS;
}

static bool same_flow(const struct flow_entry *a, const struct flow_entry *b)
{
	return a->used && a->local == b->local && a->remote == b->remote && a->lport == b->lport &&
	       a->rport == b->rport && a->port == b->port && a->proto == b->proto;
}

/* Established (and not expired): refreshes it. */
static bool flow_lookup(struct filter_flows *fl, const struct flow_entry *k, uint32_t now)
{
	struct flow_entry *set = flow_set(fl, k);
	for (int i = 0; i < FLOW_WAYS; i++)
		if (same_flow(&set[i], k) && !expired(&set[i], now)) {
			set[i].expires_ms = now + timeout_of(k->proto);
			return true;
		}
	return false;
}

static void flow_touch(struct filter_flows *fl, const struct flow_entry *k, uint32_t now)
{
	struct flow_entry *set = flow_set(fl, k), *slot = NULL;
	for (int i = 0; i < FLOW_WAYS; i++) {
		if (same_flow(&set[i], k)) {
			set[i].expires_ms = now + timeout_of(k->proto);
			return;
		}
		if (!slot && (!set[i].used || expired(&set[i], now)))
			slot = &set[i];
	}
	if (!slot) {
		fl->full++;
		return;
	}
	*slot = *k;
	slot->used = 1;
	slot->expires_ms = now + timeout_of(k->proto);
	fl->inserted++;
}

/* ------------------------------------------------------------ frames */

enum filter_reason filter_frame(struct filter *f, struct filter_flows *fl, unsigned port,
				enum filter_dir dir, const uint8_t *frame, size_t len,
				uint32_t now_ms)
{
	return filter_frame_head(f, fl, port, dir, frame, len, len, now_ms);
}

enum filter_reason filter_frame_head(struct filter *f, struct filter_flows *fl, unsigned port,
				     enum filter_dir dir, const uint8_t *frame, size_t len,
				     size_t wire_len, uint32_t now_ms)
{
	if (port >= f->nports)
		return FILTER_PASS_UNENFORCED;
	bool enf = f->enforce[port][dir], other = f->enforce[port][!dir];
	enum filter_reason r;
	struct flow_entry key;
	if (!enf && !other) {
		r = FILTER_PASS_UNENFORCED;
		goto out;
	}
	if (len < ETH_HLEN) {
		r = FILTER_DROP_MALFORMED;
		goto judged;
	}
	uint16_t et = rd16(frame + 12);
	if (et == ETHERTYPE_ARP) {
		r = FILTER_PASS_NOT_IP;
		goto out;
	}
	if (et != ETHERTYPE_IPV4) {
		r = FILTER_DROP_NON_IPV4;
		goto judged;
	}
	const uint8_t *ip = frame + ETH_HLEN;
	size_t iplen = len - ETH_HLEN, wire_iplen = (wire_len > len ? wire_len : len) - ETH_HLEN;
	if (iplen < 20 || (ip[0] >> 4) != 4) {
		r = FILTER_DROP_MALFORMED;
		goto judged;
	}
	size_t ihl = (size_t)(ip[0] & 0xf) * 4, tot = rd16(ip + 2);
	if (ihl < 20 || tot < ihl || tot > wire_iplen || ihl > iplen) {
		r = FILTER_DROP_MALFORMED;
		goto judged;
	}
	if (rd16(ip + 6) & 0x3fff) {        /* MF or a fragment offset */
		r = FILTER_DROP_FRAGMENT;
		goto judged;
	}
	uint8_t proto = ip[9];
	uint32_t src = rd32(ip + 12), dst = rd32(ip + 16);
	const uint8_t *l4 = ip + ihl;
	size_t l4len = (tot < iplen ? tot : iplen) - ihl;     /* what is at hand */
	uint16_t sport = 0, dport = 0;
	if (proto == FILTER_PROTO_TCP || proto == FILTER_PROTO_UDP) {
		if (l4len < (proto == FILTER_PROTO_TCP ? 20u : 8u)) {
			r = FILTER_DROP_MALFORMED;
			goto judged;
		}
		sport = rd16(l4);
		dport = rd16(l4 + 2);
	} else if (proto == FILTER_PROTO_ICMP) {
		if (l4len < 8) {
			r = FILTER_DROP_MALFORMED;
			goto judged;
		}
		if (l4[0] == ICMP_ECHO || l4[0] == ICMP_ECHO_REPLY)
			sport = rd16(l4 + 4);   /* the echo id pairs request and reply */
	}
	memset(&key, 0, sizeof key);
	key.port = (uint8_t)port;
	key.proto = proto;
	if (dir == FILTER_INGRESS) {
		key.local = dst;
		key.remote = src;
		key.lport = proto == FILTER_PROTO_ICMP ? sport : dport;
		key.rport = sport;
	} else {
		key.local = src;
		key.remote = dst;
		key.lport = sport;
		key.rport = proto == FILTER_PROTO_ICMP ? sport : dport;
	}
	if (!enf) {
		r = FILTER_PASS_UNENFORCED;
	} else if (fl && flow_lookup(fl, &key, now_ms)) {
		r = FILTER_PASS_FLOW;
		goto out;                   /* refreshed by the lookup */
	} else if (dir == FILTER_INGRESS && (proto == FILTER_PROTO_TCP || proto == FILTER_PROTO_UDP) &&
		   f->local_bits[port][proto == FILTER_PROTO_UDP] &&
		   (f->local_bits[port][proto == FILTER_PROTO_UDP][dport / 64] >> (dport % 64) & 1) &&
		   (!f->local_addr[port] || f->local_addr[port] == dst)) {
		r = FILTER_PASS_LOCAL;
	} else {
		long id = filter_match(f, port, dir, proto, dir == FILTER_INGRESS ? src : dst,
				       proto == FILTER_PROTO_ICMP ? 0 : dport);
		if (id < 0) {
			r = FILTER_DROP_DEFAULT;
			goto out;
		}
		f->group_hits[f->rules[id].group]++;
		r = FILTER_PASS_RULE;
	}
	/* a packet passing one way lets its replies through the other way */
	if (other && fl)
		flow_touch(fl, &key, now_ms);
	goto out;
judged:
	if (!enf)
		r = FILTER_PASS_UNENFORCED;
out:
	f->counts[port][dir][r]++;
	return r;
}

uint64_t filter_count(const struct filter *f, unsigned port, enum filter_dir dir,
		      enum filter_reason r)
{
	if (port >= FILTER_MAX_PORTS || (unsigned)dir > 1 || (unsigned)r >= FILTER_NREASONS)
		return 0;
	return f->counts[port][dir][r];
}

uint64_t filter_group_hits(const struct filter *f, uint32_t group)
{
	return group < f->ngroups ? f->group_hits[group] : 0;
}

uint32_t filter_ngroups(const struct filter *f)
{
	return f->ngroups;
}
