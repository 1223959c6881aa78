/* net/ without DPDK: two lwIP interfaces wired back to back through
 * in-memory frame queues. Each interface's tx_reserve callback appends to a
 * queue that pump() delivers into the other interface's net_if_input().
 * Covers ARP resolution, ICMP echo (and a corrupt request that must get no
 * answer), a TCP connection carrying 1 MB each way at once, checked byte for
 * byte, an orderly close (FIN both ways, no RST), the same with segmentation
 * offload (segments gathered into large frames, cut back by a stand-in for
 * the kernel, some refused and sent separately), the same with receive
 * offload (the gathered frames carried whole, their checksums left to the
 * "kernel", as a veth does), an IPv4 packet of 65535 bytes taken whole, and
 * the interface limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lwip/etharp.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"

#include "net/stack.h"
#include "net/tcp_coalesce.h"
#include "tests/unit/tcp_frames.h"
#include "tests/unit/wire.h"

/* ------------------------------------------------------------ the wire */
static struct wire a_to_b, b_to_a;
static struct net_if *if_a, *if_b;
static const uint8_t mac_a[6] = { 0x02, 0x6d, 0x67, 0x70, 0x00, 0x01 };
static const uint8_t mac_b[6] = { 0x02, 0x6d, 0x67, 0x70, 0x00, 0x02 };
static ip4_addr_t ip_a, ip_b;

/* Optional look at every frame B sends to A. */
typedef void (*frame_hook)(const uint8_t *frame, uint16_t len);
static frame_hook b_to_a_hook, a_to_b_hook;

static unsigned wire_deliver_one(struct wire *w, struct net_if *to, frame_hook hook)
{
	static uint8_t buf[WIRE_FRAME_MAX];
	uint16_t len = wire_take(w, buf);
	if (!len)
		return 0;
	if (hook)
		hook(buf, len);
	net_if_input(to, buf, len, 0);
	return 1;
}

/* Frames carried whole (receive offload, fake_veth below), each with the
 * driver's word that its checksum needs no checking. */
#define BIG_FRAMES 8
static struct {
	uint8_t frame[TCO_MAX_FRAME];
	uint32_t len;
	struct net_if *to;
} big[BIG_FRAMES];
static unsigned big_head, big_tail;
static unsigned long big_carried;
static uint32_t big_longest;

static unsigned big_deliver_one(void)
{
	static uint8_t buf[TCO_MAX_FRAME];
	if (big_head == big_tail)
		return 0;
	unsigned slot = big_head++ % BIG_FRAMES;
	uint32_t len = big[slot].len;
	memcpy(buf, big[slot].frame, len);
	big_carried++;
	net_if_input(big[slot].to, buf, len, NET_RX_CSUM_OK);
	return 1;
}

/* Delivers until both queues are empty, runs lwIP's timers once. */
static unsigned pump(void)
{
	unsigned n = 0, k;
	do {
		net_if_flush(if_a);     /* segments gathered for offload, if on */
		net_if_flush(if_b);
		k = wire_deliver_one(&a_to_b, if_b, a_to_b_hook);
		k += wire_deliver_one(&b_to_a, if_a, b_to_a_hook);
		k += big_deliver_one();
		n += k;
	} while (k);
	net_timers();
	return n;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Pumps until done() or the deadline; sleeps briefly when the wire is idle
 * so lwIP's timers (delayed ACK, retransmit) can fire. */
static int pump_until(int (*done)(void), unsigned timeout_ms)
{
	uint64_t end = now_us() + (uint64_t)timeout_ms * 1000u;
	while (!done()) {
		if (now_us() > end)
			return 0;
		if (pump() == 0) {
			struct timespec ts = { 0, 200 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	return 1;
}

static int group_setup(void **state)
{
	(void)state;
	IP4_ADDR(&ip_a, 198, 18, 8, 1);
	IP4_ADDR(&ip_b, 198, 18, 8, 2);
	/* MACs mac_a and mac_b (tag 0x70), which the tests check frames against */
	if (wire_join(0x70, ip4_addr_get_u32(&ip_a), &a_to_b, &if_a, ip4_addr_get_u32(&ip_b), &b_to_a, &if_b) != 0)
		return -1;
	pump();         /* the gratuitous ARPs from netif_set_up */
	return 0;
}

static void test_interfaces(void **state)
{
	(void)state;
	assert_string_equal(net_if_name(if_a), "a");
	assert_int_equal(net_if_addr(if_b), ip4_addr_get_u32(&ip_b));
	struct netif *n = net_if_netif(if_a);
	assert_memory_equal(n->hwaddr, mac_a, 6);
	assert_int_equal(n->mtu, 1500);
	assert_true(netif_is_up(n) && netif_is_link_up(n));
	assert_int_equal(ip4_addr_get_u32(netif_ip4_netmask(n)), PP_HTONL(0xffffff00u));
	/* both announced themselves */
	assert_true(a_to_b.carried >= 1 && b_to_a.carried >= 1);
}

/* ------------------------------------------------------------ ARP */
static int arp_resolved(void)
{
	struct eth_addr *eth;
	const ip4_addr_t *ip;
	return etharp_find_addr(net_if_netif(if_a), &ip_b, &eth, &ip) >= 0;
}

static void test_arp(void **state)
{
	struct eth_addr *eth;
	const ip4_addr_t *ip;
	(void)state;
	/* a gratuitous ARP alone does not create an entry */
	assert_false(arp_resolved());
	assert_int_equal(etharp_request(net_if_netif(if_a), &ip_b), ERR_OK);
	assert_true(pump_until(arp_resolved, 2000));
	assert_true(etharp_find_addr(net_if_netif(if_a), &ip_b, &eth, &ip) >= 0);
	assert_memory_equal(eth->addr, mac_b, 6);
	/* B learnt A from the request that was for it */
	assert_true(etharp_find_addr(net_if_netif(if_b), &ip_a, &eth, &ip) >= 0);
	assert_memory_equal(eth->addr, mac_a, 6);
}

/* ------------------------------------------------------------ ICMP */
#define PING_ID 0x4d47
#define PING_PAYLOAD 56
static unsigned ping_replies, ping_bad_replies;
static uint16_t ping_seq_seen;

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint16_t build_ping(uint8_t *f, uint16_t seq)
{
	uint8_t *ip = f + 14, *icmp = f + 34;
	memcpy(f, mac_b, 6);
	memcpy(f + 6, mac_a, 6);
	f[12] = 0x08; f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	uint16_t tot = 20 + 8 + PING_PAYLOAD;
	ip[2] = (uint8_t)(tot >> 8); ip[3] = (uint8_t)tot;
	ip[4] = 0x12; ip[5] = (uint8_t)seq;
	ip[8] = 64; ip[9] = 1;
	memcpy(ip + 12, &ip_a.addr, 4);
	memcpy(ip + 16, &ip_b.addr, 4);
	uint16_t c = csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
	icmp[0] = 8; icmp[1] = 0; icmp[2] = icmp[3] = 0;
	icmp[4] = PING_ID >> 8; icmp[5] = PING_ID & 0xff;
	icmp[6] = (uint8_t)(seq >> 8); icmp[7] = (uint8_t)seq;
	for (int i = 0; i < PING_PAYLOAD; i++)
		icmp[8 + i] = (uint8_t)(i * 7 + seq);
	c = csum(icmp, 8 + PING_PAYLOAD);
	icmp[2] = (uint8_t)(c >> 8); icmp[3] = (uint8_t)c;
	return 14 + tot;
}

static void ping_hook(const uint8_t *f, uint16_t len)
{
	if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 1)
		return;
	const uint8_t *ip = f + 14, *icmp = f + 34;
	unsigned tot = (unsigned)(ip[2] << 8 | ip[3]);
	if (tot != 20 + 8 + PING_PAYLOAD || len < 14 + tot || icmp[0] != 0) {
		ping_bad_replies++;
		return;
	}
	uint16_t seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
	int good = memcmp(f, mac_a, 6) == 0 && memcmp(f + 6, mac_b, 6) == 0 &&
		   memcmp(ip + 12, &ip_b.addr, 4) == 0 && memcmp(ip + 16, &ip_a.addr, 4) == 0 &&
		   csum(ip, 20) == 0 && csum(icmp, 8 + PING_PAYLOAD) == 0 &&
		   (icmp[4] << 8 | icmp[5]) == PING_ID;
	for (int i = 0; good && i < PING_PAYLOAD; i++)
		good = icmp[8 + i] == (uint8_t)(i * 7 + seq);
	if (good) {
		ping_replies++;
		ping_seq_seen = seq;
	} else {
		ping_bad_replies++;
	}
}

static void test_icmp_echo(void **state)
{
	uint8_t f[128];
	(void)state;
	b_to_a_hook = ping_hook;
	for (uint16_t seq = 1; seq <= 3; seq++) {
		uint16_t len = build_ping(f, seq);
		net_if_input(if_b, f, len, 0);
		pump();
		assert_int_equal(ping_replies, seq);
		assert_int_equal(ping_seq_seen, seq);
	}
	/* a request with a broken ICMP checksum must not be answered */
	uint16_t len = build_ping(f, 9);
	f[34 + 8] ^= 0xff;
	net_if_input(if_b, f, len, 0);
	pump();
	/* nor one with a broken IP header checksum */
	len = build_ping(f, 10);
	f[14 + 10] ^= 0x01;
	net_if_input(if_b, f, len, 0);
	pump();
	b_to_a_hook = NULL;
	assert_int_equal(ping_replies, 3);
	assert_int_equal(ping_bad_replies, 0);
}

/* ------------------------------------------------------------ TCP */
#define XFER_BYTES (1024u * 1024u)
#define TCP_TEST_PORT 7000

struct end {
	const char *who;
	struct tcp_pcb *pcb;
	uint32_t tx_seed, rx_seed;
	uint32_t sent, received, mismatches;
	int peer_closed, shut_tx, closed, errored, connected;
};
static struct end end_a = { .who = "a", .tx_seed = 0x1234567u, .rx_seed = 0x89abcdefu };
static struct end end_b = { .who = "b", .tx_seed = 0x89abcdefu, .rx_seed = 0x1234567u };
static struct tcp_pcb *listener;

/* Byte i of a stream: a hash, so shifted, dropped or repeated data shows. */
static uint8_t stream_byte(uint32_t seed, uint32_t i)
{
	uint32_t x = (i ^ seed) * 2654435761u;
	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	return (uint8_t)(x >> 24);
}

static void end_send(struct end *e)
{
	static uint8_t chunk[16384];
	while (e->sent < XFER_BYTES) {
		uint32_t n = XFER_BYTES - e->sent;
		uint32_t room = tcp_sndbuf(e->pcb);
		if (n > room)
			n = room;
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (n == 0 || tcp_sndqueuelen(e->pcb) >= TCP_SND_QUEUELEN - 8)
			break;
		for (uint32_t i = 0; i < n; i++)
			chunk[i] = stream_byte(e->tx_seed, e->sent + i);
		if (tcp_write(e->pcb, chunk, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		e->sent += n;
	}
	tcp_output(e->pcb);
}

/* Half-close once everything is queued (FIN after the data), close for
 * good once the peer's FIN arrived: both ends see the other's FIN. */
static void end_maybe_close(struct end *e)
{
	if (!e->pcb)
		return;
	if (!e->shut_tx && e->sent == XFER_BYTES) {
		if (tcp_shutdown(e->pcb, 0, 1) != ERR_OK)
			e->errored = 1;
		e->shut_tx = 1;
	}
	if (e->shut_tx && e->peer_closed && !e->closed) {
		/* everything was tcp_recved, so no RST */
		tcp_arg(e->pcb, NULL);
		tcp_recv(e->pcb, NULL);
		tcp_sent(e->pcb, NULL);
		tcp_err(e->pcb, NULL);
		if (tcp_close(e->pcb) != ERR_OK)
			e->errored = 1;
		e->pcb = NULL;
		e->closed = 1;
	}
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct end *e = arg;
	if (!p) {
		e->peer_closed = 1;
		end_maybe_close(e);
		return ERR_OK;
	}
	for (struct pbuf *q = p; q; q = q->next) {
		const uint8_t *d = q->payload;
		for (u16_t i = 0; i < q->len; i++, e->received++)
			if (e->received >= XFER_BYTES || d[i] != stream_byte(e->rx_seed, e->received))
				e->mismatches++;
	}
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	end_maybe_close(e);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct end *e = arg;
	end_send(e);
	end_maybe_close(e);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct end *e = arg;
	if (e) {
		e->errored = 1;
		e->pcb = NULL;
	}
}

static void end_start(struct end *e, struct tcp_pcb *pcb)
{
	e->pcb = pcb;
	e->connected = 1;
	tcp_arg(pcb, e);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	end_send(e);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	end_start(&end_b, pcb);
	return ERR_OK;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	if (err != ERR_OK)
		return err;
	end_start(&end_a, pcb);
	return ERR_OK;
}

static int tcp_done(void)
{
	return (end_a.closed && end_b.closed && end_a.peer_closed && end_b.peer_closed) ||
	       end_a.errored || end_b.errored;
}

/* Both interfaces share one lwIP and one subnet: each pcb is pinned to its
 * interface so the route does not pick the first matching netif. */
static struct tcp_pcb *listen_on_b(u16_t port, tcp_accept_fn accept)
{
	struct tcp_pcb *l = tcp_new();
	assert_non_null(l);
	tcp_bind_netif(l, net_if_netif(if_b));
	assert_int_equal(tcp_bind(l, &ip_b, port), ERR_OK);
	struct tcp_pcb *lis = tcp_listen(l);
	assert_non_null(lis);
	tcp_accept(lis, accept);
	return lis;
}

static struct tcp_pcb *pcb_on_a(void)
{
	struct tcp_pcb *c = tcp_new();
	assert_non_null(c);
	tcp_bind_netif(c, net_if_netif(if_a));
	assert_int_equal(tcp_bind(c, &ip_a, 0), ERR_OK);
	return c;
}

/* One TCP connection A -> B carrying XFER_BYTES each way at once, checked
 * byte for byte, closed in order. `offload`: 0 none (checked: no offload
 * frames), 1 both interfaces have segmentation offload (checked: fewer
 * frames leave net/ than segments), 2 the caller checks; also the listening
 * port's offset, as earlier connections' ports may still be in TIME_WAIT. */
static void transfer_both_ways(int offload)
{
	struct net_if_stats sa0, sb0, sa, sb;
	net_if_get_stats(if_a, &sa0);
	net_if_get_stats(if_b, &sb0);
	end_a = (struct end){ .who = "a", .tx_seed = 0x1234567u, .rx_seed = 0x89abcdefu };
	end_b = (struct end){ .who = "b", .tx_seed = 0x89abcdefu, .rx_seed = 0x1234567u };

	listener = listen_on_b((u16_t)(TCP_TEST_PORT + offload), on_accept);
	struct tcp_pcb *c = pcb_on_a();
	tcp_arg(c, &end_a);
	tcp_err(c, on_err);
	uint64_t t0 = now_us();
	assert_int_equal(tcp_connect(c, &ip_b, (u16_t)(TCP_TEST_PORT + offload), on_connected), ERR_OK);

	int finished = pump_until(tcp_done, 30000);
	uint64_t us = now_us() - t0;
	if (!finished)
		print_message("[ info     ] a: sent %u recv %u closed %d/%d; b: sent %u recv %u closed %d/%d; "
			      "wire refused %lu/%lu\n",
			      end_a.sent, end_a.received, end_a.closed, end_a.peer_closed,
			      end_b.sent, end_b.received, end_b.closed, end_b.peer_closed,
			      a_to_b.refused, b_to_a.refused);
	assert_true(finished);
	print_message("[ info     ] 2 x %u bytes in %.1f ms (%.0f MB/s each way, in memory)\n",
		      XFER_BYTES, us / 1000.0, (double)XFER_BYTES / (double)us);

	assert_false(end_a.errored);
	assert_false(end_b.errored);
	assert_true(end_a.connected && end_b.connected);
	assert_int_equal(end_a.sent, XFER_BYTES);
	assert_int_equal(end_b.sent, XFER_BYTES);
	assert_int_equal(end_a.received, XFER_BYTES);
	assert_int_equal(end_b.received, XFER_BYTES);
	assert_int_equal(end_a.mismatches, 0);
	assert_int_equal(end_b.mismatches, 0);
	assert_true(end_a.peer_closed && end_b.peer_closed);

	tcp_close(listener);
	pump();
	net_if_get_stats(if_a, &sa);
	net_if_get_stats(if_b, &sb);
	/* at least 1 MB / MSS data segments left each side */
	assert_true(sa.tx_frames - sa0.tx_frames >= XFER_BYTES / TCP_MSS);
	assert_true(sb.tx_frames - sb0.tx_frames >= XFER_BYTES / TCP_MSS);
	if (offload != 3)       /* 3: frames arrive whole, fewer than the segments sent */
		assert_int_equal(sa.rx_frames - sa0.rx_frames, sb.tx_frames - sb0.tx_frames);
	assert_int_equal(sa.tx_no_buffer + sb.tx_no_buffer, 0);
	assert_int_equal(sa.rx_no_pbuf + sb.rx_no_pbuf, 0);
	if (offload == 0)
		assert_int_equal(sa.tx_gso_frames + sb.tx_gso_frames, 0);
	if (offload != 1)
		return;
	/* most data segments went out gathered, more than one to a frame */
	uint64_t frames = sa.tx_gso_frames - sa0.tx_gso_frames, segs = sa.tx_gso_segments - sa0.tx_gso_segments;
	print_message("[ info     ] a: %llu offload frames of %.1f segments on average, %llu refused\n",
		      (unsigned long long)frames, frames ? (double)segs / (double)frames : 0.0,
		      (unsigned long long)(sa.tx_gso_refused - sa0.tx_gso_refused));
	assert_true(segs >= XFER_BYTES / 1460 / 2);
	assert_true(2 * segs >= 3 * frames);    /* this wire is ACK-clocked one frame at a time: ~2.5 */
	assert_true(sb.tx_gso_segments - sb0.tx_gso_segments >= XFER_BYTES / 1460 / 2);
}

static void test_tcp_1mb_both_ways(void **state)
{
	(void)state;
	transfer_both_ways(0);
}

/* ------------------------------------------------------------ offload
 * A stand-in for the kernel's segmentation: checks the frame net/ hands
 * over (headers, lengths, the pseudo-header sum in the TCP checksum), cuts
 * it into seg-byte segments with their own sequence numbers, IPv4 lengths,
 * ids and checksums, and puts them on the wire, where the other side's lwIP
 * verifies every checksum. Every 5th frame is refused, so the fallback
 * (net/ sends the separate segments itself) is exercised too. */
static unsigned long gso_calls, gso_bad;

static int fake_gso(void *drv, const void *frame, uint32_t len, uint16_t l4_off, uint16_t hdr_len, uint16_t seg)
{
	struct wire *w = drv;
	const uint8_t *f = frame;
	if (++gso_calls % 5 == 0)
		return -1;
	uint32_t tcp_len = len - l4_off;
	uint32_t pseudo = tf_sum(f + 26, 8, 0) + 6 + (tcp_len >> 16) + (tcp_len & 0xffff);
	if (l4_off != 34 || hdr_len != TF_HDR || len <= TF_HDR + seg || (uint32_t)((f[16] << 8) | f[17]) != len - 14 ||
	    (uint32_t)((f[50] << 8) | f[51]) != tf_fold(pseudo) || tf_fold(tf_sum(f + 14, 20, 0)) != 0xffff) {
		gso_bad++;
		return -1;
	}
	uint16_t id = (uint16_t)(f[18] << 8 | f[19]);
	for (uint32_t off = TF_HDR, i = 0; off < len; off += seg, i++) {
		uint32_t n = len - off < seg ? len - off : seg;
		uint8_t *o = wire_reserve(w, (uint16_t)(TF_HDR + n));
		if (!o)
			return -1;      /* a real kernel would have taken it whole */
		uint8_t flags = off + n < len ? (uint8_t)(f[47] & ~0x08) : f[47];   /* PSH on the last only */
		tf_segment(o, f, tf_get32(f + 38) + (off - TF_HDR), (uint16_t)(id + i), flags, f + off, n);
	}
	return 0;
}

/* A driver whose offload stops for good on its 3rd frame (-2): net/ sends
 * that frame as segments and never offers another. */
static int fake_gso_dies(void *drv, const void *frame, uint32_t len, uint16_t l4_off, uint16_t hdr_len, uint16_t seg)
{
	if (gso_calls >= 2) {
		gso_calls++;
		return -2;
	}
	return fake_gso(drv, frame, len, l4_off, hdr_len, seg);
}

/* Data segments A sends again (a frame net/ kept and never sent shows as
 * one: TCP retransmits it when its timer fires). */
static uint32_t a_high_seq;
static unsigned long a_resent;

static void count_resent(const uint8_t *f, uint16_t len)
{
	if (len <= TF_HDR || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return;
	uint32_t payload = (uint32_t)((f[16] << 8) | f[17]) - 20 - (uint32_t)(f[46] >> 4) * 4;
	if (payload == 0 || payload > len)
		return;
	uint32_t seq = tf_get32(f + 38), end = seq + payload;
	if (a_high_seq && (int32_t)(seq - a_high_seq) < 0)
		a_resent++;
	if (!a_high_seq || (int32_t)(end - a_high_seq) > 0)
		a_high_seq = end;
}

static void test_tcp_offload_turned_off(void **state)
{
	(void)state;
	struct net_if_stats s0, s1;
	net_if_get_stats(if_a, &s0);
	assert_int_equal(net_if_set_gso(if_a, fake_gso_dies), 0);
	gso_calls = gso_bad = 0;
	a_high_seq = 0, a_resent = 0;
	a_to_b_hook = count_resent;
	transfer_both_ways(2);
	a_to_b_hook = NULL;
	assert_int_equal(a_resent, 0);
	net_if_get_stats(if_a, &s1);
	assert_int_equal(gso_calls, 3);
	assert_int_equal(gso_bad, 0);
	assert_int_equal(s1.tx_gso_frames - s0.tx_gso_frames, 2);
	assert_int_equal(s1.tx_gso_refused - s0.tx_gso_refused, 1);
	assert_int_equal(net_if_set_gso(if_a, NULL), 0);
}

/* The driver turning offload off in the middle of a linkoutput (the frame
 * that ends a gathered run is refused for good): the run goes out as the
 * segments it was, each its own length, that frame and the next straight
 * after, and nothing is left gathered that no flush would send. */
static void test_offload_off_midway(void **state)
{
	(void)state;
	static uint8_t hdr[TF_HDR], f[3][TF_HDR + 1000], data[1000];
	memcpy(hdr, mac_b, 6);
	memcpy(hdr + 6, mac_a, 6);
	hdr[12] = 0x08, hdr[14] = 0x45, hdr[22] = 64, hdr[23] = 6;
	memcpy(hdr + 26, &ip_a, 4);
	memcpy(hdr + 30, &ip_b, 4);
	tf_put16(hdr + 34, 40001), tf_put16(hdr + 36, 9);
	uint32_t len[3];
	len[0] = tf_segment(f[0], hdr, 1, 1, 0x10, data, 1000);
	len[1] = tf_segment(f[1], hdr, 1001, 2, 0x10, data, 600);    /* a short last one */
	tf_put16(hdr + 34, 40002);                      /* another flow */
	len[2] = tf_segment(f[2], hdr, 7, 3, 0x10, data, 1000);

	assert_int_equal(net_if_set_gso(if_a, fake_gso_dies), 0);
	gso_calls = 2;                                  /* the next call says -2 */
	struct netif *n = net_if_netif(if_a);
	unsigned before = a_to_b.tail;
	for (int i = 0; i < 3; i++) {
		struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len[i], PBUF_RAM);
		assert_non_null(p);
		memcpy(p->payload, f[i], len[i]);
		assert_int_equal(n->linkoutput(n, p), ERR_OK);
		pbuf_free(p);
	}
	assert_int_equal(gso_calls, 2);                 /* held until the flush */
	assert_int_equal(a_to_b.tail - before, 0);
	net_if_flush(if_a);
	assert_int_equal(gso_calls, 3);
	assert_int_equal(a_to_b.tail - before, 3);      /* both gathered ones, then the third */
	for (int i = 0; i < 3; i++) {
		unsigned slot = (before + (unsigned)i) % WIRE_FRAMES;
		assert_int_equal(a_to_b.len[slot], len[i]);
		assert_memory_equal(a_to_b.frame[slot], f[i], len[i]);
	}
	a_to_b.head = a_to_b.tail;                      /* not for B's stack */
	assert_int_equal(net_if_set_gso(if_a, NULL), 0);
}

/* Finished offload frames are held until net_if_flush (the end of a loop
 * pass) and then leave back to back, in order; when every buffer holds one
 * (NET_GSO_FRAMES in net/stack.c: 4) they all go at once; a frame that is
 * not gathered (here a FIN) sends what is held first. */
static void send_frame(struct netif *n, const uint8_t *f, uint32_t len)
{
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	assert_non_null(p);
	memcpy(p->payload, f, len);
	assert_int_equal(n->linkoutput(n, p), ERR_OK);
	pbuf_free(p);
}

static void test_offload_frames_held(void **state)
{
	(void)state;
	static uint8_t hdr[TF_HDR], f[TF_HDR + 1000], data[1000];
	memcpy(hdr, mac_b, 6);
	memcpy(hdr + 6, mac_a, 6);
	hdr[12] = 0x08, hdr[14] = 0x45, hdr[22] = 64, hdr[23] = 6;
	memcpy(hdr + 26, &ip_a, 4);
	memcpy(hdr + 30, &ip_b, 4);
	tf_put16(hdr + 36, 9);
	assert_int_equal(net_if_set_gso(if_a, fake_gso), 0);
	gso_calls = gso_bad = 0;
	struct netif *n = net_if_netif(if_a);
	unsigned before = a_to_b.tail;
	/* flows 1..4: two 1000-byte segments each, one gathered frame each */
	for (uint16_t flow = 1; flow <= 4; flow++) {
		tf_put16(hdr + 34, (uint16_t)(41000 + flow));
		send_frame(n, f, tf_segment(f, hdr, 1, 1, 0x10, data, 1000));
		send_frame(n, f, tf_segment(f, hdr, 1001, 2, 0x10, data, 1000));
	}
	assert_int_equal(a_to_b.tail - before, 0);      /* three held, one gathering */
	assert_int_equal(gso_calls, 0);
	tf_put16(hdr + 34, 41005);                      /* a fifth flow: all four go */
	send_frame(n, f, tf_segment(f, hdr, 1, 1, 0x10, data, 1000));
	assert_int_equal(gso_calls, 4);
	assert_int_equal(a_to_b.tail - before, 8);
	/* a FIN on the fifth flow is not gathered: the frame before it leaves first */
	send_frame(n, f, tf_segment(f, hdr, 1001, 2, 0x11, data, 0));
	assert_int_equal(a_to_b.tail - before, 10);
	net_if_flush(if_a);
	assert_int_equal(a_to_b.tail - before, 10);
	static const uint16_t want_port[10] = { 41001, 41001, 41002, 41002, 41003, 41003,
						41004, 41004, 41005, 41005 };
	for (unsigned i = 0; i < 10; i++) {
		const uint8_t *w = a_to_b.frame[(before + i) % WIRE_FRAMES];
		assert_int_equal(w[34] << 8 | w[35], want_port[i]);
		assert_int_equal(tf_get32(w + 38), i % 2 ? 1001 : 1);
	}
	assert_int_equal(a_to_b.frame[(before + 9) % WIRE_FRAMES][47], 0x11);
	assert_int_equal(gso_bad, 0);
	a_to_b.head = a_to_b.tail;                      /* not for B's stack */
	assert_int_equal(net_if_set_gso(if_a, NULL), 0);
}

static void test_tcp_offload_both_ways(void **state)
{
	(void)state;
	assert_int_equal(net_if_set_gso(if_a, fake_gso), 0);
	assert_int_equal(net_if_set_gso(if_b, fake_gso), 0);
	gso_calls = gso_bad = 0;
	transfer_both_ways(1);
	struct net_if_stats sa, sb;
	net_if_get_stats(if_a, &sa);
	net_if_get_stats(if_b, &sb);
	assert_int_equal(gso_bad, 0);
	assert_true(sa.tx_gso_refused + sb.tx_gso_refused > 0);
	assert_int_equal(net_if_set_gso(if_a, NULL), 0);
	assert_int_equal(net_if_set_gso(if_b, NULL), 0);
}

/* ------------------------------------------------------------ receive offload
 * A stand-in for a veth between two kernel stacks: the offload frame reaches
 * the other side whole, its TCP checksum only the pseudo-header sum (never
 * computed), as a packet socket is handed it with TP_STATUS_CSUMNOTREADY. */
static int fake_veth(void *drv, const void *frame, uint32_t len, uint16_t l4_off, uint16_t hdr_len, uint16_t seg)
{
	if (big_tail - big_head == BIG_FRAMES)
		return -1;
	unsigned slot = big_tail++ % BIG_FRAMES;
	memcpy(big[slot].frame, frame, len);
	big[slot].len = len;
	big[slot].to = drv == &a_to_b ? if_b : if_a;
	if (len > big_longest)
		big_longest = len;
	return 0;
}

static void test_tcp_rx_offload(void **state)
{
	(void)state;
	static uint8_t last[TCO_MAX_FRAME];
	uint16_t chkerr0 = lwip_stats.tcp.chkerr;
	assert_int_equal(net_if_set_gso(if_a, fake_veth), 0);
	assert_int_equal(net_if_set_gso(if_b, fake_veth), 0);
	big_carried = big_longest = 0;
	transfer_both_ways(3);
	print_message("[ info     ] %lu frames carried whole, the longest %u bytes\n", big_carried, big_longest);
	/* most of 2 MB went in frames of many segments, none checked */
	assert_true(big_carried >= 2 * XFER_BYTES / TCO_MAX_FRAME);
	assert_true(big_longest > 20 * 1514);
	assert_int_equal(lwip_stats.tcp.chkerr, chkerr0);

	/* The same kind of frame without the driver's word fails lwIP's check
	 * (the test can fail): its checksum is only the pseudo-header sum. */
	unsigned slot = (big_tail - 1) % BIG_FRAMES;
	uint32_t len = big[slot].len;
	memcpy(last, big[slot].frame, len);
	net_if_input(big[slot].to, last, len, 0);
	assert_int_equal(lwip_stats.tcp.chkerr, (uint16_t)(chkerr0 + 1));
	net_if_input(big[slot].to, last, len, NET_RX_CSUM_OK);      /* an old segment: dropped, not an error */
	assert_int_equal(lwip_stats.tcp.chkerr, (uint16_t)(chkerr0 + 1));
	pump();
	assert_int_equal(net_if_set_gso(if_a, NULL), 0);
	assert_int_equal(net_if_set_gso(if_b, NULL), 0);
}

/* An IPv4 packet of 65535 bytes (what GRO may merge) is one frame longer
 * than a pbuf chain holds: taken whole from its IPv4 header. B answers the
 * 65,507-byte echo request in fragments that carry all of it back. A frame
 * one byte longer, or a non-IPv4 one over 65535, is refused and counted. */
static unsigned long frag_bytes, frag_first_reply;

static void frag_hook(const uint8_t *f, uint16_t len)
{
	if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 1)
		return;
	unsigned tot = (unsigned)(f[16] << 8 | f[17]), off = (unsigned)((f[20] & 0x1f) << 8 | f[21]) * 8;
	frag_bytes += tot - 20;
	if (off == 0 && f[34] == 0 && (f[38] << 8 | f[39]) == PING_ID)
		frag_first_reply++;
}

static void test_rx_65535_byte_packet(void **state)
{
	(void)state;
	static uint8_t f[14 + 65536 + 1];
	struct net_if_stats s0, s1;
	uint8_t *ip = f + 14, *icmp = f + 34;
	uint32_t tot = 65535;
	memcpy(f, mac_b, 6);
	memcpy(f + 6, mac_a, 6);
	f[12] = 0x08, f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	tf_put16(ip + 2, tot);
	ip[4] = 0x77, ip[8] = 64, ip[9] = 1;
	memcpy(ip + 12, &ip_a.addr, 4);
	memcpy(ip + 16, &ip_b.addr, 4);
	tf_put16(ip + 10, (uint16_t)~tf_fold(tf_sum(ip, 20, 0)));
	memset(icmp, 0, 8);
	icmp[0] = 8, icmp[4] = PING_ID >> 8, icmp[5] = PING_ID & 0xff, icmp[7] = 1;
	for (uint32_t i = 8; i < tot - 20; i++)
		icmp[i] = (uint8_t)(i * 13);
	tf_put16(icmp + 2, (uint16_t)~tf_fold(tf_sum(icmp, tot - 20, 0)));

	net_if_get_stats(if_b, &s0);
	frag_bytes = frag_first_reply = 0;
	b_to_a_hook = frag_hook;
	net_if_input(if_b, f, 14 + tot, NET_RX_CSUM_OK);    /* the ICMP checksum is still checked: it is right */
	pump();
	b_to_a_hook = NULL;
	net_if_get_stats(if_b, &s1);
	assert_int_equal(s1.rx_frames - s0.rx_frames, 1);
	assert_int_equal(s1.rx_oversize, s0.rx_oversize);
	assert_int_equal(frag_first_reply, 1);
	assert_int_equal(frag_bytes, tot - 20);

	net_if_input(if_b, f, 14 + tot + 1, NET_RX_CSUM_OK);        /* longer than any IPv4 packet */
	f[12] = 0x86, f[13] = 0xdd;                                 /* not IPv4 */
	net_if_input(if_b, f, 14 + 65522, 0);
	net_if_get_stats(if_b, &s1);
	assert_int_equal(s1.rx_oversize - s0.rx_oversize, 2);
	assert_int_equal(s1.rx_frames - s0.rx_frames, 1);
}

/* ------------------------------------------------------------ window updates
 * A receiver that stops reading closes the sender's window; reading again
 * reopens it with a window update of its own only once half the window has
 * been read (TCP_WND_UPDATE_THRESHOLD in net/lwipopts.h): before that, the
 * ACKs that carry data anyway carry the window too. lwIP's default (35 KB)
 * sent an extra ACK for nearly every 64 KB frame a kernel peer sends. */
#define WU_PORT (TCP_TEST_PORT + 20)
#define WU_BYTES (1024u * 1024u)
static struct {
	struct tcp_pcb *rx, *tx;
	uint32_t unread, received, sent;
	int reading;
} wu;

static err_t wu_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	if (!p)
		return ERR_OK;
	wu.received += p->tot_len;
	if (wu.reading)
		tcp_recved(pcb, p->tot_len);
	else
		wu.unread += p->tot_len;        /* taken, not read: the window stays shut */
	pbuf_free(p);
	return ERR_OK;
}

static void wu_send(void)
{
	static const uint8_t zeros[16384];
	while (wu.sent < WU_BYTES) {
		uint32_t n = WU_BYTES - wu.sent, room = tcp_sndbuf(wu.tx);
		n = n < room ? n : room;
		n = n < sizeof zeros ? n : (uint32_t)sizeof zeros;
		if (n == 0 || tcp_sndqueuelen(wu.tx) >= TCP_SND_QUEUELEN - 8 ||
		    tcp_write(wu.tx, zeros, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		wu.sent += n;
	}
	tcp_output(wu.tx);
}

static err_t wu_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	wu_send();
	return ERR_OK;
}

static err_t wu_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	wu.rx = pcb;
	tcp_recv(pcb, wu_recv);
	return ERR_OK;
}

static err_t wu_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	wu.tx = pcb;
	tcp_sent(pcb, wu_sent);
	wu_send();
	return ERR_OK;
}

static int wu_window_shut(void) { return wu.unread >= TCP_WND - 2 * 1460u; }
static int wu_all_in(void) { return wu.received == WU_BYTES; }

static void wu_read(uint32_t n)
{
	wu.unread -= n;
	while (n) {
		u16_t k = (u16_t)(n > 0xffff ? 0xffff : n);
		tcp_recved(wu.rx, k);
		n -= k;
	}
}

static void test_tcp_window_update(void **state)
{
	(void)state;
	memset(&wu, 0, sizeof wu);
	struct tcp_pcb *lis = listen_on_b(WU_PORT, wu_accept);
	assert_int_equal(tcp_connect(pcb_on_a(), &ip_b, WU_PORT, wu_connected), ERR_OK);

	assert_true(pump_until(wu_window_shut, 10000));
	while (pump())
		;
	assert_true(wu.received < WU_BYTES);
	uint32_t shut_at = wu.received;

	/* a quarter of the window read: nothing sent on its own */
	unsigned before = b_to_a.tail;
	wu_read(TCP_WND / 4);
	assert_int_equal(b_to_a.tail - before, 0);
	/* half read: one window update at once, announcing it */
	wu_read(TCP_WND / 4);
	assert_int_equal(b_to_a.tail - before, 1);
	const uint8_t *f = b_to_a.frame[(b_to_a.tail - 1) % WIRE_FRAMES];
	uint32_t wnd = (uint32_t)(f[14 + 20 + 14] << 8 | f[14 + 20 + 15]) << TCP_RCV_SCALE;
	assert_true(wnd >= TCP_WND / 2);
	assert_int_equal(b_to_a.len[(b_to_a.tail - 1) % WIRE_FRAMES], 14 + 20 + 20);   /* no data */

	/* the sender goes on at once: more data before any timer runs */
	unsigned k;
	do {
		k = wire_deliver_one(&b_to_a, if_a, NULL);
		k += wire_deliver_one(&a_to_b, if_b, NULL);
	} while (k);
	assert_true(wu.received > shut_at);

	wu.reading = 1;
	wu_read(wu.unread);
	assert_true(pump_until(wu_all_in, 10000));
	tcp_abort(wu.tx);
	tcp_abort(wu.rx);
	tcp_close(lis);
	while (pump())
		;
}

/* A full wire is a clean refusal: counted, and TCP recovers once it drains. */
static void test_tx_no_buffer_counted(void **state)
{
	(void)state;
	struct net_if_stats s0, s1;
	net_if_get_stats(if_a, &s0);
	unsigned saved_tail = a_to_b.tail;
	a_to_b.tail = a_to_b.head + WIRE_FRAMES;        /* pretend it is full */
	/* etharp_raw() does not pass on the driver's answer: look at counters */
	etharp_request(net_if_netif(if_a), &ip_b);
	a_to_b.tail = saved_tail;
	net_if_get_stats(if_a, &s1);
	assert_int_equal(s1.tx_no_buffer - s0.tx_no_buffer, 1);
	assert_int_equal(s1.tx_frames, s0.tx_frames);
}

static void test_interface_limit(void **state)
{
	(void)state;
	static struct wire sink;
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0 };
	unsigned added = 0;
	assert_null(net_if_add("bad", mac, PP_HTONL(0xc6120a01u), 33, 0, wire_reserve, &sink));
	for (unsigned i = 0; i < NET_MAX_IFS + 2; i++) {
		mac[5] = (uint8_t)(0x10 + i);
		/* 198.18.(10+i).1/24: no overlap with the test subnet */
		uint32_t addr = PP_HTONL(0xc6120001u | ((10u + i) << 8));
		if (!net_if_add("extra", mac, addr, 24, 0, wire_reserve, &sink))
			break;
		added++;
	}
	assert_int_equal(added, NET_MAX_IFS - 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interfaces),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_icmp_echo),
		cmocka_unit_test(test_tcp_1mb_both_ways),
		cmocka_unit_test(test_tcp_offload_both_ways),
		cmocka_unit_test(test_tcp_offload_turned_off),
		cmocka_unit_test(test_offload_off_midway),
		cmocka_unit_test(test_offload_frames_held),
		cmocka_unit_test(test_tcp_rx_offload),
		cmocka_unit_test(test_rx_65535_byte_packet),
		cmocka_unit_test(test_tcp_window_update),
		cmocka_unit_test(test_tx_no_buffer_counted),
		cmocka_unit_test(test_interface_limit),
	};
	return cmocka_run_group_tests_name("net_stack", tests, group_setup, NULL);
}
