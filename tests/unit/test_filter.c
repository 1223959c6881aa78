/* Unit tests for net/filter.{h,c}: NetworkPolicy semantics per direction,
 * local services, CIDR with except, protocols and port ranges, established
 * flows both ways with expiry and a full table, header checks, counters per
 * reason and per rule group, config errors, a port-scan scenario, and a
 * differential test of the trie matcher against a naive linear one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "net/filter.h"
#include "tests/unit/filter_frames.h"

#define GW IP4(198, 18, 28, 1)      /* the appliance's inside address */

static struct filter_rule rule(uint8_t port, uint8_t dir, uint8_t proto, uint32_t net, uint8_t prefix,
			       uint16_t lo, uint16_t hi, uint32_t group)
{
	struct filter_rule r;
	memset(&r, 0, sizeof r);
	r.port = port; r.dir = dir; r.proto = proto;
	r.peer.addr = net; r.peer.prefix = prefix;
	r.port_lo = lo; r.port_hi = hi; r.group = group;
	return r;
}

static const struct filter_local locals[] = {
	{0, FILTER_PROTO_TCP, 443}, {0, FILTER_PROTO_TCP, 53}, {0, FILTER_PROTO_UDP, 53},
};

static struct filter *make(const struct filter_rule *rules, size_t n, uint32_t groups,
			   bool in, bool out)
{
	struct filter_config c;
	memset(&c, 0, sizeof c);
	c.rules = rules; c.nrules = n; c.ngroups = groups;
	c.locals = locals; c.nlocals = 3;
	c.nports = 2;
	c.enforce[0][FILTER_INGRESS] = in;
	c.enforce[0][FILTER_EGRESS] = out;
	c.local_addr[0] = GW;
	char err[128] = "";
	struct filter *f = filter_new(&c, err, sizeof err);
	if (!f)
		fail_msg("filter_new: %s", err);
	return f;
}

static enum filter_reason judge(struct filter *f, struct filter_flows *fl, unsigned dir, uint8_t proto,
				uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t now)
{
	struct frame fr;
	ff_ipv4(&fr, proto, src, dst, sport, dport);
	return filter_frame(f, fl, 0, dir, fr.b, fr.n, now);
}

static void test_unenforced(void **state)
{
	struct filter *f = make(NULL, 0, 0, false, false);
	struct frame fr;
	ff_ipv4(&fr, 6, IP4(1, 2, 3, 4), GW, 1000, 22);
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_PASS_UNENFORCED);
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, 5, 0), FILTER_PASS_UNENFORCED);
	assert_int_equal(filter_frame(f, NULL, 1, FILTER_EGRESS, fr.b, fr.n, 0), FILTER_PASS_UNENFORCED);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_PASS_UNENFORCED), 2);
	filter_free(f);
}

static void test_ingress_rules(void **state)
{
	struct filter_rule rules[4];
	/* group 0: TCP 8000-8100 from 198.18.28.0/24 except 198.18.28.128/25 */
	rules[0] = rule(0, FILTER_INGRESS, FILTER_PROTO_TCP, IP4(198, 18, 28, 0), 24, 8000, 8100, 0);
	rules[0].nexcept = 1;
	rules[0].except[0] = (struct filter_cidr){IP4(198, 18, 28, 128), 25};
	/* group 1: UDP 5000 from anywhere */
	rules[1] = rule(0, FILTER_INGRESS, FILTER_PROTO_UDP, 0, 0, 5000, 5000, 1);
	/* group 2: ICMP from 198.18.29.0/24 */
	rules[2] = rule(0, FILTER_INGRESS, FILTER_PROTO_ICMP, IP4(198, 18, 29, 0), 24, 0, 0, 2);
	/* group 2 too: the same policy rule's second peer */
	rules[3] = rule(0, FILTER_INGRESS, FILTER_PROTO_ICMP, IP4(198, 18, 30, 7), 32, 0, 0, 2);
	struct filter *f = make(rules, 4, 3, true, false);
	uint32_t in = IP4(198, 18, 28, 10), excepted = IP4(198, 18, 28, 200);
	assert_int_equal(judge(f, NULL, 0, 6, in, GW, 40000, 8000, 0), FILTER_PASS_RULE);
	assert_int_equal(judge(f, NULL, 0, 6, in, GW, 40000, 8100, 0), FILTER_PASS_RULE);
	assert_int_equal(judge(f, NULL, 0, 6, in, GW, 40000, 8101, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, NULL, 0, 6, in, GW, 40000, 7999, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, NULL, 0, 17, in, GW, 40000, 8000, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, NULL, 0, 6, excepted, GW, 40000, 8000, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, NULL, 0, 6, IP4(198, 18, 31, 1), GW, 40000, 8000, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, NULL, 0, 17, IP4(198, 18, 31, 1), GW, 1, 5000, 0), FILTER_PASS_RULE);
	assert_int_equal(judge(f, NULL, 0, 1, IP4(198, 18, 29, 99), GW, 8, 1, 0), FILTER_PASS_RULE);
	assert_int_equal(judge(f, NULL, 0, 1, IP4(198, 18, 30, 7), GW, 8, 1, 0), FILTER_PASS_RULE);
	assert_int_equal(judge(f, NULL, 0, 1, IP4(198, 18, 30, 8), GW, 8, 1, 0), FILTER_DROP_DEFAULT);
	/* local services: at the port's address only */
	assert_int_equal(judge(f, NULL, 0, 6, IP4(198, 18, 31, 1), GW, 40000, 443, 0), FILTER_PASS_LOCAL);
	assert_int_equal(judge(f, NULL, 0, 17, IP4(198, 18, 31, 1), GW, 40000, 53, 0), FILTER_PASS_LOCAL);
	assert_int_equal(judge(f, NULL, 0, 6, IP4(198, 18, 31, 1), GW, 40000, 53, 0), FILTER_PASS_LOCAL);
	assert_int_equal(judge(f, NULL, 0, 17, IP4(198, 18, 31, 1), GW, 40000, 443, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, NULL, 0, 6, IP4(198, 18, 31, 1), GW + 1, 40000, 443, 0), FILTER_DROP_DEFAULT);
	/* counters */
	assert_int_equal(filter_group_hits(f, 0), 2);
	assert_int_equal(filter_group_hits(f, 1), 1);
	assert_int_equal(filter_group_hits(f, 2), 2);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_PASS_RULE), 5);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_PASS_LOCAL), 3);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_DROP_DEFAULT), 8);
	/* egress is not enforced */
	assert_int_equal(judge(f, NULL, FILTER_EGRESS, 6, GW, IP4(9, 9, 9, 9), 1, 2, 0), FILTER_PASS_UNENFORCED);
	filter_free(f);
}

static void test_frames(void **state)
{
	struct filter *f = make(NULL, 0, 0, true, false);
	struct frame fr;
	ff_arp(&fr);
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_PASS_NOT_IP);
	ff_ipv4(&fr, 6, IP4(1, 1, 1, 1), GW, 1, 443);
	fr.b[12] = 0x86, fr.b[13] = 0xdd;
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_NON_IPV4);
	fr.b[12] = 0x81, fr.b[13] = 0x00;
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_NON_IPV4);
	ff_ipv4(&fr, 6, IP4(1, 1, 1, 1), GW, 1, 443);
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_PASS_LOCAL);
	/* every truncation of a good frame is refused, never read past */
	for (size_t cut = 0; cut < fr.n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, fr.b, cut);
		assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, copy, cut, 0), FILTER_DROP_MALFORMED);
		free(copy);
	}
	/* Ethernet padding after the IP packet is fine */
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n + 6, 0), FILTER_PASS_LOCAL);
	fr.b[14] = 0x44;            /* IHL 4 */
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_MALFORMED);
	fr.b[14] = 0x65;            /* version 6 */
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_MALFORMED);
	fr.b[14] = 0x46;            /* options push TCP past total length */
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_MALFORMED);
	ff_ipv4(&fr, 6, IP4(1, 1, 1, 1), GW, 1, 443);
	fr.b[14 + 6] = 0x20;        /* MF */
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_FRAGMENT);
	fr.b[14 + 6] = 0x00, fr.b[14 + 7] = 0x10;      /* offset 128 */
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_FRAGMENT);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_DROP_FRAGMENT), 2);
	/* headers only (a pbuf's first buffer): lengths are checked against the
	 * whole frame */
	ff_ipv4(&fr, 6, IP4(1, 1, 1, 1), GW, 1, 443);
	ff_put16(fr.b + 14 + 2, 1400);
	assert_int_equal(filter_frame(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 0), FILTER_DROP_MALFORMED);
	assert_int_equal(filter_frame_head(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 14 + 1400, 0), FILTER_PASS_LOCAL);
	assert_int_equal(filter_frame_head(f, NULL, 0, FILTER_INGRESS, fr.b, fr.n, 14 + 1399, 0), FILTER_DROP_MALFORMED);
	assert_int_equal(filter_frame_head(f, NULL, 0, FILTER_INGRESS, fr.b, 14 + 20 + 10, 14 + 1400, 0), FILTER_DROP_MALFORMED);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_DROP_NON_IPV4), 2);
	filter_free(f);
}

static void test_flows(void **state)
{
	/* ingress enforced (nothing allowed but the listener), egress open */
	struct filter *f = make(NULL, 0, 0, true, false);
	struct filter_flows *fl = filter_flows_new(64, 99);
	uint32_t up = IP4(198, 18, 30, 5);
	/* a reply to a connection we never opened: dropped */
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 50000, 0), FILTER_DROP_DEFAULT);
	/* we connect out: the reply comes back in */
	assert_int_equal(judge(f, fl, FILTER_EGRESS, 6, GW, up, 50000, 443, 0), FILTER_PASS_UNENFORCED);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 50000, 10), FILTER_PASS_FLOW);
	/* not for another port, peer or protocol */
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 50001, 10), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up + 1, GW, 443, 50000, 10), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 17, up, GW, 443, 50000, 10), FILTER_DROP_DEFAULT);
	/* idle expiry; traffic keeps it alive */
	uint32_t t = 10 + FILTER_TIMEOUT_TCP_MS - 1;
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 50000, t), FILTER_PASS_FLOW);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 50000, t + FILTER_TIMEOUT_TCP_MS - 1), FILTER_PASS_FLOW);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 50000, t + 2 * FILTER_TIMEOUT_TCP_MS), FILTER_DROP_DEFAULT);
	/* ICMP echo we send: its reply (same id) comes back */
	assert_int_equal(judge(f, fl, FILTER_EGRESS, 1, GW, up, 8, 77, 0), FILTER_PASS_UNENFORCED);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 1, up, GW, 0, 77, 1), FILTER_PASS_FLOW);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 1, up, GW, 0, 78, 1), FILTER_DROP_DEFAULT);
	filter_free(f);

	/* egress enforced: replies of a listener connection get out, nothing else */
	f = make(NULL, 0, 0, true, true);
	uint32_t client = IP4(198, 18, 28, 20);
	assert_int_equal(judge(f, fl, FILTER_EGRESS, 6, GW, client, 443, 40000, 0), FILTER_DROP_DEFAULT);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, client, GW, 40000, 443, 0), FILTER_PASS_LOCAL);
	assert_int_equal(judge(f, fl, FILTER_EGRESS, 6, GW, client, 443, 40000, 1), FILTER_PASS_FLOW);
	assert_int_equal(judge(f, fl, FILTER_EGRESS, 6, GW, IP4(8, 8, 8, 8), 40000, 443, 1), FILTER_DROP_DEFAULT);
	filter_free(f);
	filter_flows_free(fl);

	/* a full table refuses new flows and counts them */
	f = make(NULL, 0, 0, true, false);
	fl = filter_flows_new(4, 1);    /* one set of 4 */
	for (uint16_t p = 1; p <= 6; p++)
		judge(f, fl, FILTER_EGRESS, 6, GW, up, p, 443, 0);
	struct filter_flows_stats st;
	filter_flows_stats(fl, &st);
	assert_int_equal(st.capacity, 4);
	assert_int_equal(st.inserted, 4);
	assert_int_equal(st.full, 2);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 4, 1), FILTER_PASS_FLOW);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 5, 1), FILTER_DROP_DEFAULT);
	/* after expiry the slots are reused */
	judge(f, fl, FILTER_EGRESS, 6, GW, up, 5, 443, 2 * FILTER_TIMEOUT_TCP_MS);
	assert_int_equal(judge(f, fl, FILTER_INGRESS, 6, up, GW, 443, 5, 2 * FILTER_TIMEOUT_TCP_MS), FILTER_PASS_FLOW);
	filter_free(f);
	filter_flows_free(fl);
}

/* The e2e scenario in small: a TCP scan of ports 1-1024 on the appliance
 * with listeners 443 and 53: only those pass, the rest count as default-deny;
 * the allowed SSH range from one admin host counts in its own group. */
static void test_port_scan(void **state)
{
	struct filter_rule r = rule(0, FILTER_INGRESS, FILTER_PROTO_TCP, IP4(198, 18, 28, 50), 32, 22, 22, 0);
	struct filter *f = make(&r, 1, 1, true, false);
	unsigned passed = 0;
	for (uint32_t host = 0; host < 2; host++)
		for (uint16_t p = 1; p <= 1024; p++)
			passed += filter_reason_passes(judge(f, NULL, 0, 6, IP4(198, 18, 28, 50 + host), GW,
							     55555, p, 0));
	assert_int_equal(passed, 2 + 2 + 1);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_DROP_DEFAULT), 2048 - 5);
	assert_int_equal(filter_count(f, 0, FILTER_INGRESS, FILTER_PASS_LOCAL), 4);
	assert_int_equal(filter_group_hits(f, 0), 1);
	filter_free(f);
}

static void test_config_errors(void **state)
{
	struct filter_rule r = rule(5, FILTER_INGRESS, 6, 0, 0, 0, 0, 0);
	struct filter_config c;
	char err[128];
	memset(&c, 0, sizeof c);
	c.rules = &r; c.nrules = 1; c.ngroups = 1; c.nports = 2;
	assert_null(filter_new(&c, err, sizeof err));
	assert_string_equal(err, "rule 0: port index out of range");
	r = rule(0, FILTER_INGRESS, 6, 0, 33, 0, 0, 0);
	assert_null(filter_new(&c, err, sizeof err));
	assert_string_equal(err, "rule 0: bad CIDR");
	r = rule(0, FILTER_INGRESS, 6, 0, 0, 10, 9, 0);
	assert_null(filter_new(&c, err, sizeof err));
	assert_string_equal(err, "rule 0: port range start above its end");
	r = rule(0, FILTER_INGRESS, 6, 0, 0, 0, 0, 1);
	assert_null(filter_new(&c, err, sizeof err));
	assert_string_equal(err, "rule 0: group out of range");
	/* host bits are cleared, not refused */
	r = rule(0, FILTER_INGRESS, 6, IP4(10, 1, 2, 3), 8, 0, 0, 0);
	struct filter *f = filter_new(&c, err, sizeof err);
	assert_non_null(f);
	assert_int_equal(filter_match(f, 0, FILTER_INGRESS, 6, IP4(10, 200, 0, 1), 1), 0);
	filter_free(f);
}

/* ---- differential: trie vs naive linear scan */

static long naive_match(const struct filter_rule *rules, size_t n, unsigned port, unsigned dir,
			uint8_t proto, uint32_t peer, uint16_t dport)
{
	for (size_t i = 0; i < n; i++) {
		const struct filter_rule *r = &rules[i];
		uint32_t m = r->peer.prefix ? ~0u << (32 - r->peer.prefix) : 0;
		if (r->port != port || r->dir != dir || (peer & m) != (r->peer.addr & m))
			continue;
		if (r->proto && r->proto != proto)
			continue;
		if (r->port_hi && ((proto != 6 && proto != 17) || dport < r->port_lo || dport > r->port_hi))
			continue;
		bool ex = false;
		for (unsigned k = 0; k < r->nexcept; k++) {
			uint32_t em = r->except[k].prefix ? ~0u << (32 - r->except[k].prefix) : 0;
			ex |= (peer & em) == (r->except[k].addr & em);
		}
		if (!ex)
			return (long)i;
	}
	return -1;
}

static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Addresses from a small pool of bases so that rules overlap and packets hit. */
static uint32_t rnd_addr(void)
{
	static const uint32_t bases[] = {IP4(198, 18, 28, 0), IP4(198, 18, 29, 0), IP4(10, 0, 0, 0), IP4(0, 0, 0, 0)};
	return bases[rnd() % 4] | (rnd() & (rnd() % 3 == 0 ? 0xffffffu : 0xffu));
}

static void test_differential(void **state)
{
	static struct filter_rule rules[600];
	static const uint8_t protos[] = {0, 1, 6, 17};
	unsigned checked = 0, matched = 0;
	for (int set = 0; set < 40; set++) {
		size_t n = 1 + rnd() % (set < 20 ? 20 : 600);
		for (size_t i = 0; i < n; i++) {
			struct filter_rule *r = &rules[i];
			memset(r, 0, sizeof *r);
			r->port = (uint8_t)(rnd() % 2);
			r->dir = (uint8_t)(rnd() % 2);
			r->proto = protos[rnd() % 4];
			r->peer.addr = rnd_addr();
			r->peer.prefix = (uint8_t)(rnd() % 5 == 0 ? 0 : 8 + rnd() % 25);
			if (rnd() % 2) {
				/* mostly small ports; some anywhere, some wide ranges
				 * (crowded trie nodes get a port index: exercise it) */
				uint32_t lo = rnd() % 3 == 0 ? rnd() % 65000 : rnd() % 100;
				uint32_t hi = lo + (rnd() % 4 == 0 ? rnd() % 20000 : rnd() % 20);
				r->port_lo = (uint16_t)lo;
				r->port_hi = (uint16_t)(hi > 65535 ? 65535 : hi);
				if (!r->port_hi)
					r->port_hi = 1;
			}
			r->nexcept = (uint8_t)(rnd() % 3);
			for (unsigned k = 0; k < r->nexcept; k++)
				r->except[k] = (struct filter_cidr){rnd_addr(), (uint8_t)(16 + rnd() % 17)};
			r->group = (uint32_t)i;
		}
		struct filter_config c;
		memset(&c, 0, sizeof c);
		c.rules = rules; c.nrules = n; c.ngroups = (uint32_t)n; c.nports = 2;
		char err[128];
		struct filter *f = filter_new(&c, err, sizeof err);
		assert_non_null(f);
		for (int k = 0; k < 5000; k++) {
			unsigned port = rnd() % 2, dir = rnd() % 2;
			uint8_t proto = protos[rnd() % 4];
			uint32_t peer = rnd() % 4 == 0 ? rnd() : rnd_addr();
			uint16_t dport = (uint16_t)(rnd() % 3 ? rnd() % 130 : rnd() % 65536);
			long want = naive_match(rules, n, port, dir, proto, peer, dport);
			long got = filter_match(f, port, dir, proto, peer, dport);
			if (want != got)
				fail_msg("set %d packet %d: naive %ld, trie %ld", set, k, want, got);
			checked++;
			matched += want >= 0;
		}
		filter_free(f);
	}
	/* the generator must exercise both outcomes */
	assert_true(matched > checked / 10);
	assert_true(matched < checked - checked / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unenforced),
		cmocka_unit_test(test_ingress_rules),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_flows),
		cmocka_unit_test(test_port_scan),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
