/* Egress engine: see egress.h. */
#include "appliance/egress.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *egress_protocol_name(enum egress_protocol p)
{
	switch (p) {
	case EGRESS_PROTO_TCP: return "TCP";
	case EGRESS_PROTO_TLS: return "TLS";
	case EGRESS_PROTO_HTTPS: return "HTTPS";
	case EGRESS_PROTO_HTTP: return "HTTP";
	}
	return "?";
}

const char *egress_verdict_name(enum egress_verdict v)
{
	switch (v) {
	case EGRESS_ALLOW: return "allowed";
	case EGRESS_ALLOW_ANY: return "allowed (ALLOW_ANY)";
	case EGRESS_DENY_HOST: return "host not declared by any ServiceEntry";
	case EGRESS_DENY_PORT: return "port not declared for this host";
	case EGRESS_DENY_PROTOCOL: return "protocol does not match the declared port";
	case EGRESS_DENY_NO_HOST: return "no server name and an undeclared address";
	case EGRESS_DENY_FULL: return "address table full";
	}
	return "?";
}

const char *egress_sni_name(enum egress_sni r)
{
	switch (r) {
	case EGRESS_SNI_FOUND: return "found";
	case EGRESS_SNI_NEED_MORE: return "need more";
	case EGRESS_SNI_NONE: return "no server_name";
	case EGRESS_SNI_NOT_TLS: return "not TLS";
	case EGRESS_SNI_MALFORMED: return "malformed ClientHello";
	case EGRESS_SNI_TOO_BIG: return "ClientHello too big";
	}
	return "?";
}

bool egress_label_valid(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '-' && i > 0 && i + 1 < n)
			continue;
		return false;
	}
	return true;
}

bool egress_host_valid(char *host, bool allow_wildcard)
{
	size_t n = strlen(host);
	for (size_t i = 0; i < n; i++)
		if (host[i] >= 'A' && host[i] <= 'Z')
			host[i] = (char)(host[i] + 32);
	char *p = host;
	if (allow_wildcard && p[0] == '*' && p[1] == '.')
		p += 2;
	if (n == 0 || n > 253 || !*p)
		return false;
	while (*p) {
		char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (!egress_label_valid(p, l))
			return false;
		p += l;
		if (dot && !*++p)
			return false;       /* trailing dot */
	}
	return true;
}

/* ------------------------------------------------------------ SNI peek */

#define TLS_HANDSHAKE 22
#define TLS_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_MAX_RECORD (16384 + 2048)

/* Reads handshake bytes across TLS records, in place. */
struct hs_reader {
	const uint8_t *buf;
	size_t len, pos, rec_left;
	size_t msg_left;            /* bytes of the ClientHello body not read yet */
	enum egress_sni err;        /* sticky: FOUND = no error yet */
};

static bool hs_take(struct hs_reader *h, uint8_t *out, size_t n)
{
	if (h->err != EGRESS_SNI_FOUND)
		return false;
	if (n > h->msg_left) {
		h->err = EGRESS_SNI_MALFORMED;
		return false;
	}
	while (n) {
		if (h->rec_left == 0) {
			if (h->pos + 5 > h->len) {
				h->err = EGRESS_SNI_NEED_MORE;
				return false;
			}
			const uint8_t *r = h->buf + h->pos;
			size_t rl = (size_t)r[3] << 8 | r[4];
			if (r[0] != TLS_HANDSHAKE || r[1] != 3 || rl == 0 || rl > TLS_MAX_RECORD) {
				h->err = EGRESS_SNI_MALFORMED;
				return false;
			}
			h->rec_left = rl;
			h->pos += 5;
		}
		size_t take = n < h->rec_left ? n : h->rec_left;
		if (take > h->len - h->pos)
			take = h->len - h->pos;
		if (take == 0) {
			h->err = EGRESS_SNI_NEED_MORE;
			return false;
		}
		if (out) {
			memcpy(out, h->buf + h->pos, take);
			out += take;
		}
		h->pos += take;
		h->rec_left -= take;
		h->msg_left -= take;
		n -= take;
	}
	return true;
}

static size_t hs_num(struct hs_reader *h, unsigned bytes)
{
	uint8_t b[3] = {0, 0, 0};
	if (!hs_take(h, b, bytes))
		return 0;
	size_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v = v << 8 | b[i];
	return v;
}

static enum egress_sni sni_peek(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST])
{
	if (len == 0)
		return EGRESS_SNI_NEED_MORE;
	if (buf[0] != TLS_HANDSHAKE)
		return EGRESS_SNI_NOT_TLS;
	if (len >= 2 && buf[1] != 3)
		return EGRESS_SNI_NOT_TLS;
	struct hs_reader h = {.buf = buf, .len = len, .msg_left = 4, .err = EGRESS_SNI_FOUND};
	size_t type = hs_num(&h, 1);
	size_t mlen = hs_num(&h, 3);
	if (h.err != EGRESS_SNI_FOUND)
		return h.err;
	if (type != TLS_CLIENT_HELLO)
		return EGRESS_SNI_MALFORMED;
	if (mlen > EGRESS_SNI_MAX_HELLO)
		return EGRESS_SNI_TOO_BIG;
	h.msg_left = mlen;
	hs_take(&h, NULL, 2 + 32);                 /* version, random */
	hs_take(&h, NULL, hs_num(&h, 1));           /* session id */
	size_t cs = hs_num(&h, 2);
	if (h.err == EGRESS_SNI_FOUND && (cs < 2 || cs % 2))
		return EGRESS_SNI_MALFORMED;
	hs_take(&h, NULL, cs);
	size_t comp = hs_num(&h, 1);
	if (h.err == EGRESS_SNI_FOUND && comp < 1)
		return EGRESS_SNI_MALFORMED;
	hs_take(&h, NULL, comp);
	if (h.err != EGRESS_SNI_FOUND)
		return h.err;
	if (h.msg_left == 0)
		return EGRESS_SNI_NONE;             /* no extensions at all */
	size_t ext_total = hs_num(&h, 2);
	if (h.err == EGRESS_SNI_FOUND && ext_total != h.msg_left)
		return EGRESS_SNI_MALFORMED;
	bool found = false;
	while (h.err == EGRESS_SNI_FOUND && h.msg_left) {
		size_t et = hs_num(&h, 2), el = hs_num(&h, 2);
		if (h.err != EGRESS_SNI_FOUND)
			break;
		if (el > h.msg_left)
			return EGRESS_SNI_MALFORMED;
		if (et != TLS_EXT_SERVER_NAME || found) {
			if (et == TLS_EXT_SERVER_NAME)
				return EGRESS_SNI_MALFORMED;    /* a second server_name */
			hs_take(&h, NULL, el);
			continue;
		}
		/* server_name_list: first host_name (RFC 6066: at most one) */
		size_t end_left = h.msg_left - el;
		size_t list = hs_num(&h, 2);
		if (h.err == EGRESS_SNI_FOUND && list + 2 != el)
			return EGRESS_SNI_MALFORMED;
		while (h.err == EGRESS_SNI_FOUND && h.msg_left > end_left) {
			size_t nt = hs_num(&h, 1), nl = hs_num(&h, 2);
			if (h.err != EGRESS_SNI_FOUND)
				break;
			if (nl > h.msg_left - end_left)
				return EGRESS_SNI_MALFORMED;
			if (nt != 0 || found) {
				hs_take(&h, NULL, nl);
				continue;
			}
			if (nl == 0 || nl > 253)
				return EGRESS_SNI_MALFORMED;
			if (!hs_take(&h, (uint8_t *)out, nl))
				break;
			out[nl] = '\0';
			if (strlen(out) != nl || !egress_host_valid(out, false)) {
				out[0] = '\0';
				return EGRESS_SNI_MALFORMED;
			}
			found = true;
		}
	}
	if (h.err != EGRESS_SNI_FOUND) {
		out[0] = '\0';
		return h.err;
	}
	return found ? EGRESS_SNI_FOUND : EGRESS_SNI_NONE;
}

enum egress_sni egress_sni_peek(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST])
{
	out[0] = '\0';
	enum egress_sni r = sni_peek(buf, len, out);
	if (r != EGRESS_SNI_FOUND)
		out[0] = '\0';
	return r;
}

/* ------------------------------------------------------------ HTTP Host */

static bool ieq(const uint8_t *a, size_t n, const char *b)
{
	if (strlen(b) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = a[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + 32);
		if (c != (uint8_t)b[i])
			return false;
	}
	return true;
}

static enum egress_sni http_host(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST])
{
	size_t lim = len < EGRESS_SNI_MAX_HELLO ? len : EGRESS_SNI_MAX_HELLO, end = 0;
	/* the request line: METHOD SP target SP HTTP/1.x, method a token */
	size_t i = 0;
	while (i < lim && buf[i] >= 'A' && buf[i] <= 'Z')
		i++;
	if (i == lim)
		return len >= EGRESS_SNI_MAX_HELLO ? EGRESS_SNI_TOO_BIG : EGRESS_SNI_NEED_MORE;
	if (i == 0 || buf[i] != ' ')
		return EGRESS_SNI_MALFORMED;
	for (size_t k = 0; k + 3 < lim; k++)
		if (buf[k] == '\r' && buf[k + 1] == '\n' && buf[k + 2] == '\r' && buf[k + 3] == '\n') {
			end = k + 2;
			break;
		}
	const uint8_t *eol = memchr(buf, '\n', lim);
	if (eol && (eol == buf || eol[-1] != '\r' || eol - buf < 11 ||
		    memcmp(eol - 10, " HTTP/1.", 8) != 0))
		return EGRESS_SNI_MALFORMED;
	if (!end)
		return len >= EGRESS_SNI_MAX_HELLO ? EGRESS_SNI_TOO_BIG : EGRESS_SNI_NEED_MORE;
	int found = 0;
	size_t pos = (size_t)(eol - buf) + 1;
	while (pos < end) {
		const uint8_t *nl = memchr(buf + pos, '\n', end - pos);
		if (!nl || nl == buf + pos || nl[-1] != '\r')
			return EGRESS_SNI_MALFORMED;
		size_t line_end = (size_t)(nl - buf) - 1;       /* at the CR */
		if (buf[pos] == ' ' || buf[pos] == '\t')
			return EGRESS_SNI_MALFORMED;            /* obsolete line folding */
		const uint8_t *colon = memchr(buf + pos, ':', line_end - pos);
		if (!colon || colon == buf + pos)
			return EGRESS_SNI_MALFORMED;
		size_t nlen = (size_t)(colon - (buf + pos));
		if (ieq(buf + pos, nlen, "host")) {
			if (found++)
				return EGRESS_SNI_MALFORMED;    /* two Host headers: ambiguous */
			size_t v = (size_t)(colon - buf) + 1, ve = line_end;
			while (v < ve && (buf[v] == ' ' || buf[v] == '\t'))
				v++;
			while (ve > v && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
				ve--;
			const uint8_t *pc = memchr(buf + v, ':', ve - v);
			if (pc) {
				for (const uint8_t *d = pc + 1; d < buf + ve; d++)
					if (*d < '0' || *d > '9')
						return EGRESS_SNI_MALFORMED;
				ve = (size_t)(pc - buf);
			}
			if (ve == v || ve - v > 253 || memchr(buf + v, 0, ve - v))
				return EGRESS_SNI_MALFORMED;
			memcpy(out, buf + v, ve - v);
			out[ve - v] = '\0';
			if (!egress_host_valid(out, false))
				return EGRESS_SNI_MALFORMED;
		}
		pos = (size_t)(nl - buf) + 1;
	}
	return found ? EGRESS_SNI_FOUND : EGRESS_SNI_NONE;
}

enum egress_sni egress_http_host(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST])
{
	out[0] = '\0';
	enum egress_sni r = http_host(buf, len, out);
	if (r != EGRESS_SNI_FOUND)
		out[0] = '\0';
	return r;
}

/* ------------------------------------------------------------ engine */

struct host_ref { const char *name; int entry; };

struct alloc_slot { char host[EGRESS_MAX_HOST]; uint32_t addr; };    /* addr host order */

struct egress {
	const struct egress_config *cfg;
	struct host_ref *exact, *wild;  /* sorted by (name, entry); wild: suffix after "*." */
	size_t nexact, nwild;
	struct alloc_slot *slots;
	uint32_t nslots, maxslots;
	int32_t *by_host, *by_addr;     /* open addressing over slots, -1 empty */
	uint32_t tcap;                  /* power of two >= 2 * maxslots */
	uint32_t range_size;            /* usable offsets 1..range_size */
	struct egress_counters c;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct host_ref *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : x->entry - y->entry;
}

static int find_ref(const struct host_ref *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {                   /* leftmost: the first declared entry */
		size_t mid = (lo + hi) / 2;
		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(v[lo].name, name) ? v[lo].entry : -1;
}

int egress_match_host(const struct egress *e, const char *host)
{
	int r = find_ref(e->exact, e->nexact, host);
	if (r >= 0)
		return r;
	/* longest suffix first: "a.b.c" tries "b.c" then "c" */
	for (const char *p = strchr(host, '.'); p; p = strchr(p + 1, '.'))
		if ((r = find_ref(e->wild, e->nwild, p + 1)) >= 0)
			return r;
	return -1;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

static int32_t slot_by_host(const struct egress *e, const char *host)
{
	for (uint32_t i = fnv1a(host) & (e->tcap - 1);; i = (i + 1) & (e->tcap - 1)) {
		int32_t s = e->by_host[i];
		if (s < 0 || !strcmp(e->slots[s].host, host))
			return s;
	}
}

static int32_t slot_by_addr(const struct egress *e, uint32_t addr)
{
	for (uint32_t i = mix32(addr) & (e->tcap - 1);; i = (i + 1) & (e->tcap - 1)) {
		int32_t s = e->by_addr[i];
		if (s < 0 || e->slots[s].addr == addr)
			return s;
	}
}

static void slot_index(struct egress *e, int32_t s)
{
	uint32_t i = fnv1a(e->slots[s].host) & (e->tcap - 1);
	while (e->by_host[i] >= 0)
		i = (i + 1) & (e->tcap - 1);
	e->by_host[i] = s;
	i = mix32(e->slots[s].addr) & (e->tcap - 1);
	while (e->by_addr[i] >= 0)
		i = (i + 1) & (e->tcap - 1);
	e->by_addr[i] = s;
}

/* Address for host, allocating when `want_addr` is 0 (hash probe) or taking
 * want_addr (carried over) when free. Returns 0 when full. */
static uint32_t alloc_host(struct egress *e, const char *host, uint32_t want_addr)
{
	int32_t s = slot_by_host(e, host);
	if (s >= 0)
		return e->slots[s].addr;
	if (e->nslots >= e->maxslots) {
		e->c.alloc_full++;
		return 0;
	}
	uint32_t base = e->cfg->range_addr, addr = 0;
	if (want_addr && slot_by_addr(e, want_addr) < 0) {
		addr = want_addr;
	} else {
		uint32_t off = fnv1a(host) % e->range_size;
		for (uint32_t k = 0; k < e->range_size; k++) {
			uint32_t a = base + 1 + (off + k) % e->range_size;
			if (slot_by_addr(e, a) < 0) {
				addr = a;
				break;
			}
		}
		if (!addr) {
			e->c.alloc_full++;
			return 0;
		}
	}
	s = (int32_t)e->nslots++;
	snprintf(e->slots[s].host, sizeof e->slots[s].host, "%s", host);
	e->slots[s].addr = addr;
	slot_index(e, s);
	e->c.allocations++;
	return addr;
}

void egress_free(struct egress *e)
{
	if (!e)
		return;
	free(e->exact);
	free(e->wild);
	free(e->slots);
	free(e->by_host);
	free(e->by_addr);
	free(e);
}

struct egress *egress_new(const struct egress_config *cfg, const struct egress *old, char *err,
			  size_t errlen)
{
	struct egress *e = calloc(1, sizeof *e);
	if (!e)
		goto oom;
	e->cfg = cfg;
	size_t nh = 0;
	for (int i = 0; i < cfg->nentries; i++)
		nh += (size_t)cfg->entries[i].nhosts;
	e->exact = calloc(nh ? nh : 1, sizeof *e->exact);
	e->wild = calloc(nh ? nh : 1, sizeof *e->wild);
	if (!e->exact || !e->wild)
		goto oom;
	for (int i = 0; i < cfg->nentries; i++)
		for (int k = 0; k < cfg->entries[i].nhosts; k++) {
			const char *h = cfg->entries[i].hosts[k];
			if (h[0] == '*')
				e->wild[e->nwild++] = (struct host_ref){h + 2, i};
			else
				e->exact[e->nexact++] = (struct host_ref){h, i};
		}
	qsort(e->exact, e->nexact, sizeof *e->exact, ref_cmp);
	qsort(e->wild, e->nwild, sizeof *e->wild, ref_cmp);
	if (cfg->range_prefix) {
		e->range_size = (1u << (32 - cfg->range_prefix)) - 2;   /* no .0, no broadcast */
		e->maxslots = cfg->max_allocations ? cfg->max_allocations : EGRESS_DEFAULT_ALLOCATIONS;
		if (e->maxslots > e->range_size)
			e->maxslots = e->range_size;
		e->tcap = 4;
		while (e->tcap < 2 * e->maxslots)
			e->tcap <<= 1;
		e->slots = calloc(e->maxslots, sizeof *e->slots);
		e->by_host = malloc(e->tcap * sizeof *e->by_host);
		e->by_addr = malloc(e->tcap * sizeof *e->by_addr);
		if (!e->slots || !e->by_host || !e->by_addr)
			goto oom;
		memset(e->by_host, 0xff, e->tcap * sizeof *e->by_host);
		memset(e->by_addr, 0xff, e->tcap * sizeof *e->by_addr);
		/* what is in service keeps its address when still declared and in range */
		uint32_t mask = ~0u << (32 - cfg->range_prefix);
		for (uint32_t i = 0; old && i < old->nslots; i++) {
			const struct alloc_slot *o = &old->slots[i];
			if ((o->addr & mask) == cfg->range_addr && egress_match_host(e, o->host) >= 0)
				alloc_host(e, o->host, o->addr);
		}
		/* then every exact host, in name order: stable whatever the query order */
		for (size_t i = 0; i < e->nexact; i++)
			alloc_host(e, e->exact[i].name, 0);
	}
	if (old) {
		/* decision counters stay monotonic across reloads */
		uint64_t allocations = e->c.allocations;
		e->c = old->c;
		e->c.allocations = allocations > old->c.allocations ? allocations : old->c.allocations;
	}
	return e;
oom:
	snprintf(err, errlen, "out of memory building the egress tables");
	egress_free(e);
	return NULL;
}

uint32_t egress_address_for(struct egress *e, const char *host, uint32_t inside_addr_be)
{
	if (egress_match_host(e, host) < 0)
		return 0;
	if (!e->cfg->range_prefix)
		return inside_addr_be;
	return htonl(alloc_host(e, host, 0));
}

const char *egress_host_for_address(const struct egress *e, uint32_t addr_be)
{
	if (!e->cfg->range_prefix)
		return NULL;
	int32_t s = slot_by_addr(e, ntohl(addr_be));
	return s >= 0 ? e->slots[s].host : NULL;
}

static int entry_by_address(const struct egress *e, uint32_t addr)
{
	for (int i = 0; i < e->cfg->nentries; i++) {
		const struct egress_entry *s = &e->cfg->entries[i];
		for (int k = 0; k < s->naddresses; k++) {
			uint32_t m = s->addresses[k].prefix ? ~0u << (32 - s->addresses[k].prefix) : 0;
			if ((addr & m) == s->addresses[k].addr)
				return i;
		}
	}
	return -1;
}

static bool protocol_fits(enum egress_protocol seen, enum egress_protocol declared)
{
	if (seen == EGRESS_PROTO_TLS || seen == EGRESS_PROTO_HTTPS)
		return declared == EGRESS_PROTO_TLS || declared == EGRESS_PROTO_HTTPS;
	return seen == declared;
}

void egress_decide(struct egress *e, enum egress_protocol seen, const char *host,
		   uint32_t dst_be, uint16_t dport, struct egress_decision *out)
{
	memset(out, 0, sizeof *out);
	out->entry = out->port = -1;
	enum egress_verdict v;
	int ent = -1;
	if (host && *host) {
		snprintf(out->host, sizeof out->host, "%s", host);
		char *colon = strchr(out->host, ':');
		if (seen == EGRESS_PROTO_HTTP && colon)
			*colon = '\0';              /* Host: name:port */
		if (!egress_host_valid(out->host, false)) {
			out->host[0] = '\0';
			v = EGRESS_DENY_NO_HOST;
			goto decided;
		}
		ent = egress_match_host(e, out->host);
		if (ent < 0) {
			v = EGRESS_DENY_HOST;
			goto decided;
		}
	} else {
		const char *h = egress_host_for_address(e, dst_be);
		if (h) {
			snprintf(out->host, sizeof out->host, "%s", h);
			ent = egress_match_host(e, h);
		} else {
			ent = entry_by_address(e, ntohl(dst_be));
		}
		if (ent < 0) {
			v = EGRESS_DENY_NO_HOST;
			goto decided;
		}
	}
	out->entry = ent;
	const struct egress_entry *s = &e->cfg->entries[ent];
	int p = -1;
	for (int k = 0; k < s->nports && p < 0; k++)
		if (s->ports[k].number == dport)
			p = k;
	if (p < 0) {
		v = EGRESS_DENY_PORT;
		goto decided;
	}
	out->port = p;
	v = protocol_fits(seen, s->ports[p].protocol) ? EGRESS_ALLOW : EGRESS_DENY_PROTOCOL;
decided:
	if (v != EGRESS_ALLOW && e->cfg->mode == EGRESS_MODE_ALLOW_ANY)
		v = EGRESS_ALLOW_ANY;
	out->verdict = v;
	switch (v) {
	case EGRESS_ALLOW: e->c.allowed++; break;
	case EGRESS_ALLOW_ANY: e->c.allowed_any++; break;
	case EGRESS_DENY_HOST: e->c.denied_host++; break;
	case EGRESS_DENY_PORT: e->c.denied_port++; break;
	case EGRESS_DENY_PROTOCOL: e->c.denied_protocol++; break;
	case EGRESS_DENY_NO_HOST: e->c.denied_no_host++; break;
	case EGRESS_DENY_FULL: break;
	}
}

bool egress_dns_lookup(void *arg, const char *name, uint32_t *addr_be)
{
	struct egress_dns_arg *a = arg;
	*addr_be = egress_address_for(a->e, name, a->inside_addr_be);
	return *addr_be != 0;
}

const struct egress_counters *egress_counters(const struct egress *e)
{
	return &e->c;
}
