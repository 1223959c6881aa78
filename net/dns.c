/* DNS responder engine: see dns.h. */
#include "net/dns.h"

#include <string.h>
#include <strings.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

const char *dns_error_name(enum dns_error e)
{
	switch (e) {
	case DNS_OK: return "ok";
	case DNS_ERR_SHORT: return "shorter than a header";
	case DNS_ERR_NOT_QUERY: return "a response, not a query";
	case DNS_ERR_OPCODE: return "opcode not QUERY";
	case DNS_ERR_COUNTS: return "section counts (one question, no records) not met";
	case DNS_ERR_TRUNCATED: return "truncated";
	case DNS_ERR_LABEL: return "bad label";
	case DNS_ERR_NAME_TOO_LONG: return "name longer than 255 bytes";
	case DNS_ERR_POINTER: return "bad compression pointer";
	case DNS_ERR_CLASS: return "class not IN";
	case DNS_ERR_TRAILING: return "trailing bytes";
	}
	return "?";
}

static bool label_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

enum dns_error dns_name_read(const uint8_t *msg, size_t len, size_t off,
			     char out[DNS_MAX_NAME_TEXT], size_t *next)
{
	size_t pos = off, lowest = off, wire = 0, o = 0;
	unsigned pointers = 0;
	bool jumped = false;
	out[0] = '\0';
	for (;;) {
		if (pos >= len)
			return DNS_ERR_TRUNCATED;
		uint8_t c = msg[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return DNS_ERR_TRUNCATED;
			size_t target = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
			if (!jumped)
				*next = pos + 2;
			jumped = true;
			/* strictly below everything read so far: no loop can form */
			if (++pointers > DNS_MAX_POINTERS || target >= lowest)
				return DNS_ERR_POINTER;
			lowest = target;
			pos = target;
			continue;
		}
		if (c & 0xc0)
			return DNS_ERR_LABEL;       /* 0x40 / 0x80: extended / reserved */
		wire += (size_t)c + 1;
		if (wire > DNS_MAX_NAME_WIRE)
			return DNS_ERR_NAME_TOO_LONG;
		if (c == 0) {
			if (!jumped)
				*next = pos + 1;
			out[o] = '\0';
			return DNS_OK;
		}
		if (pos + 1 + c > len)
			return DNS_ERR_TRUNCATED;
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < c; i++) {
			uint8_t ch = msg[pos + 1 + i];
			if (!label_char_ok(ch))
				return DNS_ERR_LABEL;
			out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
		}
		pos += 1 + (size_t)c;
	}
}

enum dns_error dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q)
{
	memset(q, 0, sizeof *q);
	if (len < DNS_HEADER_LEN)
		return DNS_ERR_SHORT;
	q->id = rd16(msg);
	q->flags = rd16(msg + 2);
	if (q->flags & 0x8000)
		return DNS_ERR_NOT_QUERY;
	if (((q->flags >> 11) & 0xf) != DNS_OPCODE_QUERY)
		return DNS_ERR_OPCODE;
	uint16_t qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8), ar = rd16(msg + 10);
	if (qd != 1 || an || ns || ar > 1)
		return DNS_ERR_COUNTS;
	size_t pos;
	enum dns_error e = dns_name_read(msg, len, DNS_HEADER_LEN, q->name, &pos);
	if (e)
		return e;
	if (pos + 4 > len)
		return DNS_ERR_TRUNCATED;
	q->qtype = rd16(msg + pos);
	q->qclass = rd16(msg + pos + 2);
	pos += 4;
	if (q->qclass != DNS_CLASS_IN && q->qclass != DNS_TYPE_ANY)
		return DNS_ERR_CLASS;
	if (ar) {
		/* EDNS OPT (RFC 6891): root name, type 41, class, ttl, rdata */
		if (pos >= len)
			return DNS_ERR_TRUNCATED;
		if (msg[pos] != 0)
			return DNS_ERR_COUNTS;
		if (pos + 11 > len)
			return DNS_ERR_TRUNCATED;
		if (rd16(msg + pos + 1) != DNS_TYPE_OPT)
			return DNS_ERR_COUNTS;
		size_t rdlen = rd16(msg + pos + 9);
		pos += 11;
		if (pos + rdlen > len)
			return DNS_ERR_TRUNCATED;
		pos += rdlen;
		q->edns = true;
	}
	if (pos != len)
		return DNS_ERR_TRAILING;
	return DNS_OK;
}

/* Writes a dotted name as labels; returns bytes written or 0 on overflow. */
static size_t name_write(const char *name, uint8_t *out, size_t cap)
{
	size_t o = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n > DNS_MAX_LABEL || o + 1 + n >= cap)
			return 0;
		out[o++] = (uint8_t)n;
		memcpy(out + o, p, n);
		o += n;
		p += n + (dot ? 1 : 0);
	}
	if (o + 1 > cap)
		return 0;
	out[o++] = 0;
	return o;
}

size_t dns_build_answer(const struct dns_query *q, uint8_t rcode, uint32_t addr_be,
			uint32_t ttl, uint8_t *out, size_t cap)
{
	bool with_a = addr_be && (q->qtype == DNS_TYPE_A || q->qtype == DNS_TYPE_ANY);
	if (cap < DNS_HEADER_LEN)
		return 0;
	wr16(out, q->id);
	/* QR, opcode QUERY, AA, RD echoed, RA clear (we do not recurse for it) */
	wr16(out + 2, (uint16_t)(0x8000 | 0x0400 | (q->flags & 0x0100) | (rcode & 0xf)));
	wr16(out + 4, 1);
	wr16(out + 6, with_a ? 1 : 0);
	wr16(out + 8, 0);
	wr16(out + 10, 0);
	size_t o = DNS_HEADER_LEN;
	size_t n = name_write(q->name, out + o, cap - o);
	if (!n || o + n + 4 > cap)
		return 0;
	o += n;
	wr16(out + o, q->qtype);
	wr16(out + o + 2, q->qclass);
	o += 4;
	if (with_a) {
		if (o + 16 > cap)
			return 0;
		wr16(out + o, 0xc000 | DNS_HEADER_LEN);     /* the question's name */
		wr16(out + o + 2, DNS_TYPE_A);
		wr16(out + o + 4, DNS_CLASS_IN);
		wr16(out + o + 6, (uint16_t)(ttl >> 16));
		wr16(out + o + 8, (uint16_t)ttl);
		wr16(out + o + 10, 4);
		memcpy(out + o + 12, &addr_be, 4);
		o += 16;
	}
	return o;
}

size_t dns_build_header_error(const uint8_t *msg, size_t len, uint8_t rcode, uint8_t *out,
			      size_t cap)
{
	if (len < DNS_HEADER_LEN || cap < DNS_HEADER_LEN)
		return 0;
	uint16_t flags = rd16(msg + 2);
	memset(out, 0, DNS_HEADER_LEN);
	out[0] = msg[0];
	out[1] = msg[1];
	wr16(out + 2, (uint16_t)(0x8000 | (flags & 0x7800) | (flags & 0x0100) | (rcode & 0xf)));
	return DNS_HEADER_LEN;
}

/* ------------------------------------------------------------ rate limit */

static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

bool dns_ratelimit_allow(struct dns_ratelimit *rl, uint32_t addr, uint32_t now_ms)
{
	if (!rl->rate_per_s || !rl->table || !rl->nsets)
		return true;
	struct dns_rl_entry *set = rl->table + (size_t)(mix32(addr ^ rl->seed) & (rl->nsets - 1)) * DNS_RL_WAYS;
	struct dns_rl_entry *e = NULL, *victim = NULL;
	for (int i = 0; i < DNS_RL_WAYS && !e; i++) {
		if (set[i].used && set[i].addr == addr)
			e = &set[i];
		else if (!set[i].used)
			victim = victim && !victim->used ? victim : &set[i];
		else if (!victim || (victim->used && now_ms - set[i].last_ms > now_ms - victim->last_ms))
			victim = &set[i];
	}
	uint64_t cap = (uint64_t)(rl->burst ? rl->burst : 1) * 1000;
	if (!e) {
		e = victim;
		e->used = 1;
		e->addr = addr;
		e->tokens_milli = (uint32_t)cap;
	} else {
		uint64_t t = e->tokens_milli + (uint64_t)(now_ms - e->last_ms) * rl->rate_per_s;
		e->tokens_milli = (uint32_t)(t > cap ? cap : t);
	}
	e->last_ms = now_ms;
	if (e->tokens_milli < 1000)
		return false;
	e->tokens_milli -= 1000;
	return true;
}

/* ------------------------------------------------------------ responder */

enum dns_action dns_respond(struct dns_responder *r, uint32_t src_be, uint32_t now_ms,
			    const uint8_t *in, size_t len, uint8_t *out, size_t cap,
			    size_t *out_len)
{
	struct dns_counters *c = &r->counters;
	struct dns_query q;
	uint8_t rcode;
	uint32_t addr = 0;
	*out_len = 0;
	c->received++;
	if (len < DNS_HEADER_LEN) {
		c->dropped_short++;
		return DNS_ACTION_DROP;
	}
	if (!dns_ratelimit_allow(&r->rl, src_be, now_ms)) {
		c->ratelimited++;
		return DNS_ACTION_DROP;
	}
	enum dns_error e = dns_parse_query(in, len, &q);
	switch (e) {
	case DNS_OK:
		break;
	case DNS_ERR_SHORT:
		c->dropped_short++;
		return DNS_ACTION_DROP;
	case DNS_ERR_NOT_QUERY:
		c->dropped_response++;
		return DNS_ACTION_DROP;
	case DNS_ERR_OPCODE:
		c->notimp++;
		*out_len = dns_build_header_error(in, len, DNS_RCODE_NOTIMP, out, cap);
		return *out_len ? DNS_ACTION_REPLY : DNS_ACTION_DROP;
	case DNS_ERR_POINTER:
		c->err_pointer++;
		goto formerr;
	case DNS_ERR_LABEL:
	case DNS_ERR_NAME_TOO_LONG:
		c->err_name++;
		goto formerr;
	default:
		goto formerr;
	}
	if (r->lookup && r->lookup(r->lookup_arg, q.name, &addr) && addr) {
		rcode = DNS_RCODE_NOERROR;
		if (q.qtype == DNS_TYPE_A || q.qtype == DNS_TYPE_ANY)
			c->answered++;
		else
			c->nodata++;
	} else if (r->allow_any) {
		c->forwarded++;
		return DNS_ACTION_FORWARD;
	} else if (r->unknown == DNS_UNKNOWN_REFUSED) {
		rcode = DNS_RCODE_REFUSED;
		addr = 0;
		c->refused++;
	} else {
		rcode = DNS_RCODE_NXDOMAIN;
		addr = 0;
		c->nxdomain++;
	}
	*out_len = dns_build_answer(&q, rcode, addr, r->ttl, out, cap);
	return *out_len ? DNS_ACTION_REPLY : DNS_ACTION_DROP;
formerr:
	c->formerr++;
	*out_len = dns_build_header_error(in, len, DNS_RCODE_FORMERR, out, cap);
	return *out_len ? DNS_ACTION_REPLY : DNS_ACTION_DROP;
}

long dns_tcp_message_len(const uint8_t *buf, size_t len)
{
	if (len < 2)
		return 0;
	long n = rd16(buf);
	if (n == 0)
		return -1;
	if (len < 2 + (size_t)n)
		return 0;
	return n;
}

/* ------------------------------------------------------------ client side */

static uint16_t be16(const uint8_t *b) { return (uint16_t)(b[0] << 8 | b[1]); }

size_t dns_build_query(uint16_t id, const char *name, uint16_t qtype, uint8_t *out, size_t cap)
{
	size_t hl = strlen(name), n = DNS_HEADER_LEN;
	if (hl == 0 || hl > DNS_MAX_NAME_TEXT - 1 || cap < DNS_HEADER_LEN + hl + 2 + 4)
		return 0;
	memset(out, 0, DNS_HEADER_LEN);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01;                  /* RD */
	out[5] = 1;                     /* one question */
	for (size_t start = 0; start <= hl;) {
		const char *dot = memchr(name + start, '.', hl - start);
		size_t ll = (dot ? (size_t)(dot - name) : hl) - start;
		if (ll == 0 || ll > DNS_MAX_LABEL)
			return 0;
		out[n++] = (uint8_t)ll;
		memcpy(out + n, name + start, ll);
		n += ll;
		start += ll + 1;
	}
	out[n++] = 0;
	out[n++] = (uint8_t)(qtype >> 8);
	out[n++] = (uint8_t)qtype;
	out[n++] = 0;
	out[n++] = DNS_CLASS_IN;
	return n;
}

bool dns_response_matches(const uint8_t *msg, size_t len, const char *qname, uint16_t qtype,
			  size_t *next)
{
	char name[DNS_MAX_NAME_TEXT];
	size_t off;
	if (len < DNS_HEADER_LEN || !(msg[2] & 0x80) || be16(msg + 4) != 1 ||
	    dns_name_read(msg, len, DNS_HEADER_LEN, name, &off) != DNS_OK || strcasecmp(name, qname) ||
	    off + 4 > len || be16(msg + off) != qtype)
		return false;
	*next = off + 4;
	return true;
}

bool dns_response_first_a(const uint8_t *msg, size_t len, size_t off, uint32_t *addr_be, uint32_t *ttl)
{
	char name[DNS_MAX_NAME_TEXT];
	if (len < DNS_HEADER_LEN || (msg[3] & 0x0f) != DNS_RCODE_NOERROR)
		return false;
	unsigned an = be16(msg + 6);
	for (unsigned i = 0; i < an; i++) {
		if (dns_name_read(msg, len, off, name, &off) != DNS_OK || off + 10 > len)
			return false;
		uint16_t type = be16(msg + off), rdlen = be16(msg + off + 8);
		uint32_t t = (uint32_t)be16(msg + off + 4) << 16 | be16(msg + off + 6);
		off += 10;
		if (off + rdlen > len)
			return false;
		if (type == DNS_TYPE_A && rdlen == 4) {
			memcpy(addr_be, msg + off, 4);
			*ttl = t;
			return true;
		}
		off += rdlen;
	}
	return false;
}
