/* net/pcb_index.c: many TCP connections between two lwIP interfaces wired
 * back to back in memory (as test_net_stack), taking turns.
 *
 * - Round robin over 64 connections: lwIP finds the pcb at the head of
 *   tcp_active_pcbs for (nearly) every segment (lwIP's own cache-hit count),
 *   where without the index it would walk to the back each time.
 * - Churn: connections opened, closed in order, reset, and carrying data at
 *   random, with lwIP's lists checked after every step (no cycle, each pcb
 *   and four-tuple once, states where they belong), every active pcb found
 *   by the index, and every byte checked on arrival.
 * - A SYN twice; 4,000 hostile segments (random flags, sequence numbers and
 *   ports, some with live connections' four-tuples); more frees than the
 *   table's tombstone limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"

#include "net/pcb_index.h"
#include "net/stack.h"
#include "tests/unit/tcp_frames.h"
#include "tests/unit/wire.h"

/* ------------------------------------------------------------ the wire */
static struct wire a_to_b, b_to_a;
static struct net_if *if_a, *if_b;
static ip4_addr_t ip_a, ip_b;

static void pump(void)
{
	unsigned k;
	do {
		net_if_flush(if_a);
		net_if_flush(if_b);
		k = wire_deliver(&a_to_b, if_b) + wire_deliver(&b_to_a, if_a);
	} while (k);
	net_timers();
}

/* ------------------------------------------------------------ connections */
#define CONNS 64
#define MSG 100

/* One end of a test connection: what it sent and received, as a counter
 * that also decides the bytes (byte i of a stream is stream_byte(id, i)). */
struct end {
	struct tcp_pcb *pcb;
	unsigned id;                    /* the stream's seed, shared by both ends */
	uint32_t sent, received;
	int bad, reset, peer_closed;
};

static struct conn_pair {
	struct end a, b;
	int open;
} pairs[CONNS];

static uint8_t stream_byte(unsigned id, uint32_t i)
{
	return (uint8_t)(id * 131u + i * 7u + (i >> 8));
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct end *e = arg;
	if (!p) {
		e->peer_closed = 1;
		return ERR_OK;
	}
	for (struct pbuf *q = p; q; q = q->next)
		for (u16_t i = 0; i < q->len; i++)
			if (((uint8_t *)q->payload)[i] != stream_byte(e->id, e->received++))
				e->bad++;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct end *e = arg;
	e->pcb = NULL;
	e->reset = 1;
}

static void end_start(struct end *e, struct tcp_pcb *pcb)
{
	e->pcb = pcb;
	tcp_arg(pcb, e);
	tcp_recv(pcb, on_recv);
	tcp_err(pcb, on_err);
	tcp_nagle_disable(pcb);
}

static struct conn_pair *accepting;

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	assert_non_null(accepting);
	end_start(&accepting->b, pcb);
	accepting = NULL;
	return ERR_OK;
}

static struct tcp_pcb *listener;
static unsigned next_id = 1;

/* A connection A -> B:7000, its port from lwIP (tcp_bind) or from the
 * index (net_pcb_index_connect). */
static void open_pair_by(struct conn_pair *c, bool index_port)
{
	memset(c, 0, sizeof *c);
	c->a.id = c->b.id = next_id++;
	struct tcp_pcb *pcb = tcp_new();
	assert_non_null(pcb);
	tcp_bind_netif(pcb, net_if_netif(if_a));
	end_start(&c->a, pcb);
	accepting = c;
	if (index_port) {
		assert_int_equal(net_pcb_index_connect(pcb, &ip_b, 7000, NULL), ERR_OK);
		assert_true(pcb->local_port >= 0xc000 && pcb->local_port < 0xffff);
		assert_true(ip4_addr_cmp(&pcb->local_ip, &ip_a));
	} else {
		assert_int_equal(tcp_bind(pcb, &ip_a, 0), ERR_OK);
		assert_int_equal(tcp_connect(pcb, &ip_b, 7000, NULL), ERR_OK);
	}
	pump();
	assert_null(accepting);
	c->open = 1;
}

static void open_pair(struct conn_pair *c)
{
	open_pair_by(c, false);
}

static void send_msg(struct end *from, struct end *to)
{
	uint8_t buf[MSG];
	for (int i = 0; i < MSG; i++)
		buf[i] = stream_byte(from->id, from->sent + (uint32_t)i);
	assert_int_equal(tcp_write(from->pcb, buf, MSG, TCP_WRITE_FLAG_COPY), ERR_OK);
	from->sent += MSG;
	tcp_output(from->pcb);
	pump();
	assert_int_equal(to->received, from->sent);
	assert_int_equal(to->bad, 0);
}

/* lwIP's lists as tcp_input expects them: no cycle, no pcb twice, states
 * where they belong. Returns the number of active pcbs. */
static unsigned check_lists(void)
{
	static struct tcp_pcb *seen[NET_TIME_WAIT_MAX + 1024];
	unsigned n = 0, active = 0;
	for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next) {
		assert_true(n < sizeof seen / sizeof seen[0]);
		assert_true(p->state != CLOSED && p->state != LISTEN && p->state != TIME_WAIT);
		for (unsigned i = 0; i < n; i++) {
			assert_ptr_not_equal(seen[i], p);
			/* no two connections with one four-tuple (a SYN taken
			 * for a new connection while one had it) */
			assert_false(seen[i]->local_port == p->local_port && seen[i]->remote_port == p->remote_port &&
				     ip4_addr_cmp(&seen[i]->local_ip, &p->local_ip) &&
				     ip4_addr_cmp(&seen[i]->remote_ip, &p->remote_ip));
		}
		seen[n++] = p;
		active++;
	}
	for (struct tcp_pcb *p = tcp_tw_pcbs; p; p = p->next) {
		assert_true(n < sizeof seen / sizeof seen[0]);
		assert_int_equal(p->state, TIME_WAIT);
		for (unsigned i = 0; i < n; i++)
			assert_ptr_not_equal(seen[i], p);
		seen[n++] = p;
	}
	return active;
}

static int group_setup(void **state)
{
	IP4_ADDR(&ip_a, 198, 18, 9, 1);
	IP4_ADDR(&ip_b, 198, 18, 9, 2);
	if (wire_join(0x71, ip4_addr_get_u32(&ip_a), &a_to_b, &if_a, ip4_addr_get_u32(&ip_b), &b_to_a, &if_b) != 0)
		return -1;
	pump();
	struct tcp_pcb *l = tcp_new();
	tcp_bind_netif(l, net_if_netif(if_b));
	if (tcp_bind(l, &ip_b, 7000) != ERR_OK || !(listener = tcp_listen(l)))
		return -1;
	tcp_accept(listener, on_accept);
	return 0;
}

/* ------------------------------------------------------------ tests */

static void test_round_robin_finds_head(void **state)
{
	for (int i = 0; i < CONNS; i++)
		open_pair(&pairs[i]);
	assert_true(check_lists() >= 2 * CONNS);     /* and half-open ones test_hostile_segments left */
	/* one round so that every pcb has been indexed */
	for (int i = 0; i < CONNS; i++)
		send_msg(&pairs[i].a, &pairs[i].b);

	struct net_pcb_index_stats s0, s1;
	net_pcb_index_get_stats(&s0);
	uint16_t hits0 = lwip_stats.tcp.cachehit;
	unsigned segments = 0;
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < CONNS; i++) {
			/* request, reply: each a segment and (after the delayed-ACK
			 * timer or the reply) an ACK */
			send_msg(&pairs[i].a, &pairs[i].b);
			send_msg(&pairs[i].b, &pairs[i].a);
			segments += 2;
		}
	net_pcb_index_get_stats(&s1);
	unsigned hits = (uint16_t)(lwip_stats.tcp.cachehit - hits0);
	uint64_t fronted = (s1.moved - s0.moved) + (s1.at_front - s0.at_front);
	print_message("segments >= %u, lwIP found the head %u times; index moved %llu, at front %llu, "
		      "unknown %llu, repaired %llu, rebuilds %llu\n", segments, hits,
		      (unsigned long long)(s1.moved - s0.moved), (unsigned long long)(s1.at_front - s0.at_front),
		      (unsigned long long)(s1.unknown - s0.unknown), (unsigned long long)(s1.repaired - s0.repaired),
		      (unsigned long long)(s1.rebuilds - s0.rebuilds));
	/* Without the index, round robin over 128 pcbs puts the wanted one at
	 * the back: lwIP's hit count would stay near 0. */
	assert_true(hits >= segments);
	assert_true(fronted >= segments);
	assert_true(s1.unknown - s0.unknown == 0);
	assert_true(s1.rebuilds == s0.rebuilds && s1.repaired == s0.repaired);
	assert_true(check_lists() >= 2 * CONNS);     /* and half-open ones test_hostile_segments left */
}

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void close_pair(struct conn_pair *c, int reset)
{
	if (reset) {
		tcp_abort(c->a.pcb);            /* calls on_err: c->a.pcb = NULL */
		pump();
		assert_true(c->b.reset);
	} else {
		tcp_arg(c->a.pcb, NULL);
		tcp_recv(c->a.pcb, NULL);
		tcp_err(c->a.pcb, NULL);
		assert_int_equal(tcp_close(c->a.pcb), ERR_OK);
		pump();
		assert_true(c->b.peer_closed);
		tcp_arg(c->b.pcb, NULL);
		tcp_recv(c->b.pcb, NULL);
		tcp_err(c->b.pcb, NULL);
		assert_int_equal(tcp_close(c->b.pcb), ERR_OK);
		pump();
	}
	c->open = 0;
}

static void close_all(int reset)
{
	for (int i = 0; i < CONNS; i++)
		if (pairs[i].open)
			close_pair(&pairs[i], reset);
}

static void test_churn_keeps_lists_sound(void **state)
{
	struct net_pcb_index_stats s0, s1;
	net_pcb_index_get_stats(&s0);
	unsigned opened = 0, closed = 0, reset = 0, msgs = 0;
	for (int step = 0; step < 3000; step++) {
		struct conn_pair *c = &pairs[next_rand() % CONNS];
		uint32_t op = next_rand() % 16;
		if (!c->open) {
			open_pair(c);
			opened++;
		} else if (op == 0) {
			close_pair(c, 0);
			closed++;
		} else if (op == 1) {
			close_pair(c, 1);
			reset++;
		} else if (op < 9) {
			send_msg(&c->a, &c->b);
			msgs++;
		} else {
			send_msg(&c->b, &c->a);
			msgs++;
		}
		unsigned open = 0;
		for (int i = 0; i < CONNS; i++)
			open += (unsigned)pairs[i].open;
		unsigned active = check_lists();
		/* each open pair is two active pcbs; a closing one may linger
		 * (FIN-WAIT, LAST-ACK) until its last ACK */
		assert_true(active >= 2 * open);
		assert_int_equal(net_pcb_index_audit(), 0);
	}
	net_pcb_index_get_stats(&s1);
	print_message("churn: %u opened, %u closed, %u reset, %u messages; index moved %llu, "
		      "absorbed %llu, freed %llu, repaired %llu, rebuilds %llu\n", opened, closed, reset, msgs,
		      (unsigned long long)(s1.moved - s0.moved), (unsigned long long)(s1.absorbed - s0.absorbed),
		      (unsigned long long)(s1.freed - s0.freed), (unsigned long long)(s1.repaired - s0.repaired),
		      (unsigned long long)(s1.rebuilds - s0.rebuilds));
	assert_true(opened > 100 && closed > 50 && reset > 50);
	assert_true(s1.moved - s0.moved > 1000);
	assert_true(s1.absorbed - s0.absorbed >= 2 * opened);
	/* every SYN at least: lwIP did not walk the active list for them */
	assert_true(s1.unknown - s0.unknown >= opened);
	/* a freed pcb hands its predecessor to its successor: only a move to
	 * TIME-WAIT (one per orderly close) leaves a record to repair */
	assert_true(s1.repaired - s0.repaired <= closed);
	assert_true(s1.freed - s0.freed > 2 * (closed + reset) / 2);
	for (int i = 0; i < CONNS; i++)
		if (pairs[i].open)
			send_msg(&pairs[i].a, &pairs[i].b);
}

/* A SYN sent twice: the second finds the connection the first opened (its
 * pcb was taken into the index at the head), not the listener. */
static void test_syn_twice(void **state)
{
	struct conn_pair *c = &pairs[0];
	if (c->open)
		close_pair(c, 1);
	memset(c, 0, sizeof *c);
	c->a.id = c->b.id = next_id++;
	struct tcp_pcb *pcb = tcp_new();
	tcp_bind_netif(pcb, net_if_netif(if_a));
	assert_int_equal(tcp_bind(pcb, &ip_a, 0), ERR_OK);
	end_start(&c->a, pcb);
	accepting = c;
	assert_int_equal(tcp_connect(pcb, &ip_b, 7000, NULL), ERR_OK);
	assert_int_equal(a_to_b.tail - a_to_b.head, 1);        /* the SYN */
	unsigned syn = (a_to_b.tail - 1) % WIRE_FRAMES;
	/* B takes it; the duplicate goes before B's SYN-ACK reaches A */
	wire_deliver(&a_to_b, if_b);
	unsigned dup = a_to_b.tail++ % WIRE_FRAMES;
	memcpy(a_to_b.frame[dup], a_to_b.frame[syn], a_to_b.len[syn]);
	a_to_b.len[dup] = a_to_b.len[syn];
	wire_deliver(&a_to_b, if_b);
	assert_int_equal(net_pcb_index_audit(), 0);
	check_lists();
	pump();
	assert_null(accepting);
	c->open = 1;
	send_msg(&c->a, &c->b);
	send_msg(&c->b, &c->a);
	check_lists();
	assert_int_equal(net_pcb_index_audit(), 0);
}

/* Segments from a hostile or confused peer: SYNs, RSTs, FINs and ACKs with
 * random sequence numbers, for live connections' four-tuples and for
 * random ones, to the listener and to closed ports. lwIP's lists stay sound
 * and fully indexed after each; connections nothing reset still carry data. */
static void test_hostile_segments(void **state)
{
	for (int i = 0; i < CONNS; i++)
		if (!pairs[i].open)
			open_pair(&pairs[i]);
	/* a template: the headers of a segment A sends to B */
	uint8_t hdr[TF_HDR];
	assert_int_equal(a_to_b.tail - a_to_b.head, 0);
	uint8_t next = stream_byte(pairs[0].a.id, pairs[0].a.sent++);
	assert_int_equal(tcp_write(pairs[0].a.pcb, &next, 1, TCP_WRITE_FLAG_COPY), ERR_OK);
	tcp_output(pairs[0].a.pcb);
	assert_true(a_to_b.tail - a_to_b.head >= 1);
	memcpy(hdr, a_to_b.frame[a_to_b.head % WIRE_FRAMES], TF_HDR);
	pump();
	static const uint8_t flag_sets[] = {0x02, 0x10, 0x04, 0x11, 0x12, 0x18, 0x14, 0x01};
	struct net_pcb_index_stats s0, s1;
	net_pcb_index_get_stats(&s0);
	uint8_t frame[TF_HDR + 8];
	unsigned resets = 0;
	for (int k = 0; k < 4000; k++) {
		uint32_t r = next_rand();
		struct conn_pair *c = &pairs[r % CONNS];
		/* random ports below lwIP's ephemeral range (0xc000-0xffff), so
		 * that half-open connections they leave (lwIP's, as without the
		 * index) do not meet the later tests' connections */
		uint16_t sport = (r >> 8) & 1 && c->a.pcb ? c->a.pcb->local_port
							 : (uint16_t)(1024 + next_rand() % (0xc000 - 1024));
		uint16_t dport = (r >> 9) & 3 ? 7000 : (uint16_t)(7001 + (r >> 11) % 3);
		tf_put16(hdr + 34, sport);
		tf_put16(hdr + 36, dport);
		tf_put32(hdr + 42, next_rand());        /* ack */
		uint32_t len = tf_segment(frame, hdr, next_rand(), (uint16_t)k, flag_sets[(r >> 13) % 8],
					  (const uint8_t *)"xxxxxxxx", (r >> 16) & 1 ? 8 : 0);
		net_if_input(if_b, frame, len, 0);
		pump();
		check_lists();
		assert_int_equal(net_pcb_index_audit(), 0);
	}
	for (int i = 0; i < CONNS; i++) {
		struct conn_pair *c = &pairs[i];
		if (c->a.reset || c->b.reset || !c->a.pcb || !c->b.pcb) {
			resets++;
			c->open = 0;
			if (c->a.pcb)
				tcp_abort(c->a.pcb);
			if (c->b.pcb)
				tcp_abort(c->b.pcb);
			pump();
			continue;
		}
		send_msg(&c->a, &c->b);
		send_msg(&c->b, &c->a);
	}
	net_pcb_index_get_stats(&s1);
	print_message("4,000 hostile segments: %u of %d connections reset; %llu segments of no active "
		      "connection (the replies' included)\n", resets, CONNS, (unsigned long long)(s1.unknown - s0.unknown));
	assert_true(s1.unknown - s0.unknown >= 2000);
	check_lists();
	assert_int_equal(net_pcb_index_audit(), 0);
}

/* Connections opened by net_pcb_index_connect: the port is chosen by the
 * index (no walk of lwIP's lists), in lwIP's dynamic range, never a
 * four-tuple in use; the connections work. */
static void test_connect_chooses_port(void **state)
{
	close_all(1);
	struct net_pcb_index_stats s0, s1;
	net_pcb_index_get_stats(&s0);
	for (int i = 0; i < CONNS; i++) {
		struct conn_pair *c = &pairs[i];
		open_pair_by(c, true);
		send_msg(&c->a, &c->b);
		send_msg(&c->b, &c->a);
	}
	net_pcb_index_get_stats(&s1);
	assert_int_equal(s1.connects - s0.connects, CONNS);
	check_lists();          /* no four-tuple twice */
	assert_int_equal(net_pcb_index_audit(), 0);
}

/* Orderly closes from A: each of A's pcbs goes to TIME-WAIT; past
 * NET_TIME_WAIT_MAX it is freed at once, after B has had its last ACK (B's
 * pcb leaves LAST-ACK and is freed, nothing is reset). */
static void test_time_wait_cap(void **state)
{
	close_all(0);
	struct net_pcb_index_stats s0, s1;
	net_pcb_index_get_stats(&s0);
	for (int k = 0; k < NET_TIME_WAIT_MAX + 300; k++) {
		struct conn_pair *c = &pairs[k % CONNS];
		open_pair(c);
		send_msg(&c->a, &c->b);
		close_pair(c, 0);
		assert_false(c->a.reset || c->b.reset);
	}
	net_pcb_index_get_stats(&s1);
	unsigned tw = 0, last_ack = 0;
	for (struct tcp_pcb *p = tcp_tw_pcbs; p; p = p->next)
		tw++;
	for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
		last_ack += p->state == LAST_ACK;
	print_message("%d orderly closes: %llu entered TIME-WAIT, %llu freed at once; %u on the list\n",
		      NET_TIME_WAIT_MAX + 300, (unsigned long long)(s1.time_wait - s0.time_wait),
		      (unsigned long long)(s1.time_wait_freed - s0.time_wait_freed), tw);
	assert_true(s1.time_wait - s0.time_wait >= NET_TIME_WAIT_MAX + 300);
	assert_true(s1.time_wait_freed - s0.time_wait_freed >= 300);
	assert_true(tw <= NET_TIME_WAIT_MAX);
	assert_int_equal(last_ack, 0);
	check_lists();
	assert_int_equal(net_pcb_index_audit(), 0);
}

/* Past the table's tombstone limit (INDEX_SLOTS / 4 freed pcbs) the index
 * is rebuilt; afterwards it still finds every pcb. */
static void test_many_frees_rebuild(void **state)
{
	struct net_pcb_index_stats s0, s1;
	net_pcb_index_get_stats(&s0);
	close_all(1);
	for (int k = 0; k < 4200; k++) {
		struct conn_pair *c = &pairs[k % CONNS];
		open_pair(c);
		send_msg(&c->a, &c->b);
		close_pair(c, 1);
	}
	net_pcb_index_get_stats(&s1);
	print_message("8,400 pcbs freed: freed %llu, rebuilds %llu\n",
		      (unsigned long long)(s1.freed - s0.freed), (unsigned long long)(s1.rebuilds - s0.rebuilds));
	assert_true(s1.freed - s0.freed >= 8400);
	assert_true(s1.rebuilds - s0.rebuilds >= 1);
	check_lists();
	test_round_robin_finds_head(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin_finds_head),
		cmocka_unit_test(test_churn_keeps_lists_sound),
		cmocka_unit_test(test_syn_twice),
		cmocka_unit_test(test_hostile_segments),
		cmocka_unit_test(test_connect_chooses_port),
		cmocka_unit_test(test_time_wait_cap),
		cmocka_unit_test(test_many_frees_rebuild),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
