/* Unit tests for net/dns.{h,c}: query parsing, known-answer replies,
 * malformed names (compression loops, forward pointers, oversized labels and
 * names), responder modes and counters, per-source rate limiting, TCP
 * framing, and replay + mutation of the fuzz seed corpus (tests/data/dns). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#define FUZZ_DNS_NO_MAIN
#include "tests/fuzz/fuzz_dns.c"
#include "tests/unit/data_file.h"

/* 63 letters 'a' */
static const char *l_a(void)
{
	static char s[64];
	memset(s, 'a', 63);
	return s;
}

/* ---- message builders */
struct msg { uint8_t b[1024]; size_t n; };

static void put(struct msg *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }
static void put16(struct msg *m, uint16_t v) { uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v}; put(m, x, 2); }
static void header(struct msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t ar)
{
	m->n = 0;
	put16(m, id); put16(m, flags); put16(m, qd); put16(m, 0); put16(m, 0); put16(m, ar);
}
static void name(struct msg *m, const char *dotted)
{
	const char *p = dotted;
	while (*p) {
		const char *d = strchr(p, '.');
		size_t n = d ? (size_t)(d - p) : strlen(p);
		uint8_t l = (uint8_t)n;
		put(m, &l, 1);
		put(m, p, n);
		p += n + (d ? 1 : 0);
	}
	put(m, "", 1);
}
static void query(struct msg *m, uint16_t id, const char *n, uint16_t type)
{
	header(m, id, 0x0100, 1, 0);
	name(m, n);
	put16(m, type);
	put16(m, DNS_CLASS_IN);
}

static bool lookup_allowed(void *arg, const char *n, uint32_t *addr)
{
	(void)arg;
	if (!strcmp(n, "allowed.example") || !strcmp(n, "api.allowed.example")) {
		*addr = htonl(0xf0f00007);
		return true;
	}
	return false;
}

static struct dns_rl_entry rl_table[64 * DNS_RL_WAYS];
static void responder(struct dns_responder *r, bool allow_any, enum dns_unknown_answer unk,
		      uint32_t rate, uint32_t burst)
{
	memset(r, 0, sizeof *r);
	memset(rl_table, 0, sizeof rl_table);
	r->lookup = lookup_allowed;
	r->allow_any = allow_any;
	r->unknown = unk;
	r->ttl = 60;
	r->rl = (struct dns_ratelimit){.table = rl_table, .nsets = 64, .seed = 7, .rate_per_s = rate, .burst = burst};
}

/* ---- tests */

static void test_parse_query(void **state)
{
	struct msg m;
	struct dns_query q;
	query(&m, 0xbeef, "API.Allowed.Example", DNS_TYPE_A);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_OK);
	assert_int_equal(q.id, 0xbeef);
	assert_string_equal(q.name, "api.allowed.example");
	assert_int_equal(q.qtype, DNS_TYPE_A);
	assert_false(q.edns);
	/* EDNS OPT accepted */
	header(&m, 1, 0x0100, 1, 1);
	name(&m, "x.example");
	put16(&m, DNS_TYPE_A); put16(&m, DNS_CLASS_IN);
	put(&m, "", 1); put16(&m, DNS_TYPE_OPT); put16(&m, 1232); put16(&m, 0); put16(&m, 0);
	put16(&m, 4); put(&m, "\x00\x0a\x00\x00", 4);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_OK);
	assert_true(q.edns);
	/* ...but not with its rdata cut */
	assert_int_equal(dns_parse_query(m.b, m.n - 1, &q), DNS_ERR_TRUNCATED);
	/* root name */
	query(&m, 2, "", 2);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_OK);
	assert_string_equal(q.name, "");
}

/* The client side: a query we build parses as one; the known answer above
 * (and one with a CNAME first) yields its A record; a response to another
 * question, a query, or an error rcode does not. */
static void test_client_side(void **state)
{
	uint8_t q[DNS_HEADER_LEN + DNS_MAX_NAME_WIRE + 4];
	size_t n = dns_build_query(0xbeef, "dyn.Example", DNS_TYPE_A, q, sizeof q);
	struct dns_query pq;
	assert_int_equal(dns_parse_query(q, n, &pq), DNS_OK);
	assert_int_equal(pq.id, 0xbeef);
	assert_string_equal(pq.name, "dyn.example");
	assert_int_equal(pq.qtype, DNS_TYPE_A);
	assert_true(q[2] & 0x01);                     /* recursion desired */
	assert_int_equal(dns_build_query(1, "a..b", DNS_TYPE_A, q, sizeof q), 0);
	assert_int_equal(dns_build_query(1, "a.example", DNS_TYPE_A, q, 20), 0);

	static const uint8_t cname_then_a[] = {
		0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
		3, 'd', 'y', 'n', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
		0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 30, 0, 4, 1, 'x', 0xc0, 0x10,
		0xc0, 0x29, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 198, 18, 30, 10,
	};
	size_t off;
	uint32_t addr = 0, ttl = 0;
	assert_true(dns_response_matches(cname_then_a, sizeof cname_then_a, "DYN.example", DNS_TYPE_A, &off));
	assert_int_equal(off, 29);
	assert_true(dns_response_first_a(cname_then_a, sizeof cname_then_a, off, &addr, &ttl));
	const uint8_t *b = (const uint8_t *)&addr;
	assert_true(b[0] == 198 && b[1] == 18 && b[2] == 30 && b[3] == 10);
	assert_int_equal(ttl, 3600);
	assert_false(dns_response_matches(cname_then_a, sizeof cname_then_a, "other.example", DNS_TYPE_A, &off));
	assert_false(dns_response_matches(cname_then_a, sizeof cname_then_a, "dyn.example", DNS_TYPE_AAAA, &off));
	uint8_t m[sizeof cname_then_a];
	memcpy(m, cname_then_a, sizeof m);
	m[2] &= 0x7f;                                 /* a query, not a response */
	assert_false(dns_response_matches(m, sizeof m, "dyn.example", DNS_TYPE_A, &off));
	memcpy(m, cname_then_a, sizeof m);
	m[3] = 0x83;                                  /* NXDOMAIN */
	assert_false(dns_response_first_a(m, sizeof m, 29, &addr, &ttl));
	assert_false(dns_response_first_a(cname_then_a, sizeof cname_then_a - 3, 29, &addr, &ttl));
}

static void test_malformed(void **state)
{
	struct msg m;
	struct dns_query q;
	query(&m, 1, "a.example", 1);
	for (size_t cut = 0; cut < m.n; cut++)
		assert_int_not_equal(dns_parse_query(m.b, cut, &q), DNS_OK);
	assert_int_equal(dns_parse_query(m.b, 11, &q), DNS_ERR_SHORT);
	m.b[m.n++] = 0;
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_TRAILING);
	/* response, opcode, counts, class */
	query(&m, 1, "a.example", 1);
	m.b[2] |= 0x80;
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_NOT_QUERY);
	query(&m, 1, "a.example", 1);
	m.b[2] |= 0x10;             /* opcode 2 (STATUS) */
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_OPCODE);
	query(&m, 1, "a.example", 1);
	m.b[5] = 2;
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_COUNTS);
	query(&m, 1, "a.example", 1);
	m.b[5] = 0;
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_COUNTS);
	query(&m, 1, "a.example", 1);
	m.b[7] = 1;                 /* an answer in a query */
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_COUNTS);
	header(&m, 1, 0x0100, 1, 0);
	name(&m, "version.bind");
	put16(&m, 16); put16(&m, 3);    /* CHAOS */
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_CLASS);
	/* labels: 63 ok, 64 refused; extended label type; bad characters */
	char l63[64], l64[65];
	memset(l63, 'a', 63); l63[63] = 0;
	memset(l64, 'a', 64); l64[64] = 0;
	query(&m, 1, l63, 1);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_OK);
	query(&m, 1, l64, 1);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_LABEL);
	header(&m, 1, 0x0100, 1, 0);
	put(&m, "\x41" "abc\0\0\1\0\1", 9);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_LABEL);
	query(&m, 1, "a b.example", 1);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_LABEL);
	query(&m, 1, "a.\x01.example", 1);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_LABEL);
}

static void test_name_length_limit(void **state)
{
	/* 255 wire bytes exactly: 3 labels of 63 + one of 61 = 4*64 - 2 + 1 */
	char n[300];
	struct msg m;
	struct dns_query q;
	int o = snprintf(n, sizeof n, "%.63s.%.63s.%.63s.", l_a(), l_a(), l_a());
	(void)o;
	snprintf(n + 192, sizeof n - 192, "%.61s", l_a());
	query(&m, 1, n, 1);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_OK);
	assert_int_equal(strlen(q.name), 253);
	snprintf(n + 192, sizeof n - 192, "%.62s", l_a());
	query(&m, 1, n, 1);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_NAME_TOO_LONG);
}

static void test_compression(void **state)
{
	struct msg m;
	char out[DNS_MAX_NAME_TEXT];
	size_t next;
	/* a valid backward pointer: "www" + -> "example.com" at 12 */
	query(&m, 1, "example.com", 1);
	size_t at = m.n;
	put(&m, "\x03www\xc0\x0c", 6);
	assert_int_equal(dns_name_read(m.b, m.n, at, out, &next), DNS_OK);
	assert_string_equal(out, "www.example.com");
	assert_int_equal(next, at + 6);
	/* self pointer, forward pointer, pointer into its own label */
	header(&m, 1, 0x0100, 1, 0);
	put(&m, "\xc0\x0c\0\1\0\1", 6);
	struct dns_query q;
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_POINTER);
	header(&m, 1, 0x0100, 1, 0);
	put(&m, "\x03" "abc\xc0\x16\0\1\0\1\x01x\0", 13);
	assert_int_equal(dns_parse_query(m.b, m.n, &q), DNS_ERR_POINTER);
	/* two-step loop: A -> B -> A, where B is behind A */
	m.n = 0;
	put(&m, "\x01" "a\xc0\x04\x01" "b\xc0\x00", 8);
	assert_int_equal(dns_name_read(m.b, m.n, 4, out, &next), DNS_ERR_POINTER);
	/* pointer chains: 16 jumps are fine, 17 are not */
	for (int jumps = 16; jumps <= 17; jumps++) {
		m.n = 0;
		put(&m, "\x01z\0", 3);
		for (int i = 0; i < jumps; i++) {
			size_t prev = i == 0 ? 0 : m.n - 2;
			uint8_t p[2] = {(uint8_t)(0xc0 | prev >> 8), (uint8_t)prev};
			put(&m, p, 2);
		}
		enum dns_error e = dns_name_read(m.b, m.n, m.n - 2, out, &next);
		assert_int_equal(e, jumps == 16 ? DNS_OK : DNS_ERR_POINTER);
	}
	/* a pointer cut in half */
	m.n = 0;
	put(&m, "\x01z\xc0", 3);
	assert_int_equal(dns_name_read(m.b, m.n, 0, out, &next), DNS_ERR_TRUNCATED);
}

/* Known answer, byte for byte. */
static void test_known_answer(void **state)
{
	struct dns_responder r;
	struct msg m;
	uint8_t out[DNS_ANSWER_MAX];
	size_t n;
	responder(&r, false, DNS_UNKNOWN_NXDOMAIN, 0, 0);
	query(&m, 0x1234, "Allowed.Example", DNS_TYPE_A);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	static const uint8_t want[] = {
		0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0,
		7, 'a', 'l', 'l', 'o', 'w', 'e', 'd', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
		0, 1, 0, 1,
		0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 240, 240, 0, 7,
	};
	assert_int_equal(n, sizeof want);
	assert_memory_equal(out, want, sizeof want);
	assert_int_equal(r.counters.answered, 1);

	/* AAAA of a served name: NOERROR, no answer (clients fall back to A) */
	query(&m, 0x1235, "allowed.example", DNS_TYPE_AAAA);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(out[3] & 0xf, DNS_RCODE_NOERROR);
	assert_int_equal(out[7], 0);
	assert_int_equal(r.counters.nodata, 1);
}

static void test_modes(void **state)
{
	struct dns_responder r;
	struct msg m;
	uint8_t out[DNS_ANSWER_MAX];
	size_t n;
	query(&m, 9, "evil.example", DNS_TYPE_A);
	responder(&r, false, DNS_UNKNOWN_NXDOMAIN, 0, 0);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(out[3] & 0xf, DNS_RCODE_NXDOMAIN);
	assert_int_equal(out[7], 0);
	assert_int_equal(r.counters.nxdomain, 1);
	responder(&r, false, DNS_UNKNOWN_REFUSED, 0, 0);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(out[3] & 0xf, DNS_RCODE_REFUSED);
	assert_int_equal(r.counters.refused, 1);
	responder(&r, true, DNS_UNKNOWN_NXDOMAIN, 0, 0);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_FORWARD);
	assert_int_equal(r.counters.forwarded, 1);
	/* a served name is answered even in ALLOW_ANY */
	query(&m, 9, "allowed.example", DNS_TYPE_A);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(out[7], 1);

	/* malformed: FORMERR with the id; opcode: NOTIMP; response/short: nothing */
	responder(&r, false, DNS_UNKNOWN_NXDOMAIN, 0, 0);
	header(&m, 0x4242, 0x0100, 1, 0);
	put(&m, "\xc0\x0c\0\1\0\1", 6);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(n, DNS_HEADER_LEN);
	assert_int_equal(out[0], 0x42);
	assert_int_equal(out[2] & 0x80, 0x80);
	assert_int_equal(out[3] & 0xf, DNS_RCODE_FORMERR);
	assert_int_equal(r.counters.formerr, 1);
	assert_int_equal(r.counters.err_pointer, 1);
	query(&m, 5, "a.example", 1);
	m.b[2] |= 0x20;             /* opcode 4 (NOTIFY) */
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(out[3] & 0xf, DNS_RCODE_NOTIMP);
	assert_int_equal(out[2] & 0x78, 0x20);
	query(&m, 5, "a.example", 1);
	m.b[2] |= 0x80;
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, sizeof out, &n), DNS_ACTION_DROP);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, 5, out, sizeof out, &n), DNS_ACTION_DROP);
	assert_int_equal(r.counters.dropped_response, 1);
	assert_int_equal(r.counters.dropped_short, 1);
	assert_int_equal(r.counters.notimp, 1);
	assert_int_equal(r.counters.received, 4);
	/* a too-small output buffer: nothing is sent, nothing overflows */
	query(&m, 5, "allowed.example", 1);
	assert_int_equal(dns_respond(&r, 1, 0, m.b, m.n, out, 20, &n), DNS_ACTION_DROP);
}

static void test_ratelimit(void **state)
{
	struct dns_responder r;
	struct msg m;
	uint8_t out[DNS_ANSWER_MAX];
	size_t n;
	responder(&r, false, DNS_UNKNOWN_NXDOMAIN, 2, 3);
	query(&m, 1, "allowed.example", 1);
	uint32_t t = 1000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(dns_respond(&r, 0x0a000001, t, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(dns_respond(&r, 0x0a000001, t, m.b, m.n, out, sizeof out, &n), DNS_ACTION_DROP);
	/* another source has its own bucket */
	assert_int_equal(dns_respond(&r, 0x0a000002, t, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	/* 2/s: one token after 500 ms, not after 499 */
	assert_int_equal(dns_respond(&r, 0x0a000001, t + 499, m.b, m.n, out, sizeof out, &n), DNS_ACTION_DROP);
	assert_int_equal(dns_respond(&r, 0x0a000001, t + 999, m.b, m.n, out, sizeof out, &n), DNS_ACTION_REPLY);
	assert_int_equal(r.counters.ratelimited, 2);
	assert_int_equal(r.counters.answered, 5);
	/* a flood from one source over 10 s gets about rate * 10 + burst */
	responder(&r, false, DNS_UNKNOWN_NXDOMAIN, 2, 3);
	int ok = 0;
	for (uint32_t ms = 0; ms < 10000; ms += 10)
		ok += dns_respond(&r, 0x0a000009, 5000 + ms, m.b, m.n, out, sizeof out, &n) == DNS_ACTION_REPLY;
	assert_in_range(ok, 21, 23);
	assert_int_equal(r.counters.ratelimited, 1000 - (unsigned)ok);
	/* eviction: one set of 4 ways, the least recently seen source goes */
	struct dns_rl_entry tbl[DNS_RL_WAYS];
	memset(tbl, 0, sizeof tbl);
	struct dns_ratelimit rl = {.table = tbl, .nsets = 1, .rate_per_s = 1, .burst = 1};
	for (uint32_t a = 1; a <= 4; a++)
		assert_true(dns_ratelimit_allow(&rl, a, 100 + a));
	assert_false(dns_ratelimit_allow(&rl, 4, 105));     /* empty bucket */
	assert_true(dns_ratelimit_allow(&rl, 5, 106));      /* evicts source 1 */
	assert_false(dns_ratelimit_allow(&rl, 2, 107));     /* 2 still tracked */
	assert_true(dns_ratelimit_allow(&rl, 1, 108));      /* 1 starts afresh */
}

static void test_tcp_framing(void **state)
{
	uint8_t b[8] = {0, 3, 'a', 'b', 'c', 0, 0, 0};
	assert_int_equal(dns_tcp_message_len(b, 0), 0);
	assert_int_equal(dns_tcp_message_len(b, 1), 0);
	assert_int_equal(dns_tcp_message_len(b, 4), 0);
	assert_int_equal(dns_tcp_message_len(b, 5), 3);
	assert_int_equal(dns_tcp_message_len(b, 8), 3);
	b[1] = 0;
	assert_int_equal(dns_tcp_message_len(b, 8), -1);
}

static void test_fuzz_seed_corpus(void **state)
{
	DIR *d = opendir("data/dns");
	assert_non_null(d);
	int files = 0;
	struct dirent *e;
	char path[512];
	static uint8_t buf[4096];
	uint32_t rnd = 12345;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "data/dns/%s", e->d_name);
		assert_int_equal(fuzz_dns_replay_file(path), 0);
		files++;
		/* and deterministic mutations of each: byte flips, cuts, pointers */
		size_t n = read_data(path, buf, sizeof buf);
		static uint8_t mut[4096];
		for (int k = 0; k < 3000; k++) {
			memcpy(mut, buf, n);
			size_t len = n;
			for (int j = 0; j < 1 + k % 4; j++) {
				rnd = rnd * 1103515245u + 12345u;
				size_t at = len ? (rnd >> 8) % len : 0;
				switch ((rnd >> 4) % 4) {
				case 0: if (len) mut[at] ^= (uint8_t)(1u << (rnd % 8)); break;
				case 1: if (len) mut[at] = (uint8_t)(rnd >> 16); break;
				case 2: len = at; break;
				case 3: if (len > 1) { mut[at] = 0xc0; mut[(at + 1) % len] = (uint8_t)(rnd >> 20); } break;
				}
			}
			LLVMFuzzerTestOneInput(mut, len);
		}
	}
	closedir(d);
	assert_true(files >= 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_query),
		cmocka_unit_test(test_client_side),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_name_length_limit),
		cmocka_unit_test(test_compression),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_tcp_framing),
		cmocka_unit_test(test_fuzz_seed_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
