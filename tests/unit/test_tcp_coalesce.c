/* net/tcp_coalesce.c against segments built independently
 * (tests/unit/tcp_frames.h): consecutive segments gather into one frame
 * whose headers are what the kernel's segmentation expects, and cut back
 * (tco_segment, the path for a refused frame) into exactly the segments
 * that went in; frames that must not be gathered are not, and a flow's
 * gathering stops where it must. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/tcp_coalesce.h"
#include "tests/unit/tcp_frames.h"

static uint8_t gather[TCO_MAX_FRAME];
static uint8_t hdr[TF_HDR];
static uint8_t payload[70000];

static void make_hdr(void)
{
	static const uint8_t eth[14] = { 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00 };
	memset(hdr, 0, sizeof hdr);
	memcpy(hdr, eth, sizeof eth);
	hdr[14] = 0x45;
	hdr[22] = 255;
	hdr[23] = 6;
	tf_put32(hdr + 26, 0xc6120801u);        /* 198.18.8.1 -> 198.18.8.2 */
	tf_put32(hdr + 30, 0xc6120802u);
	tf_put16(hdr + 34, 8443);
	tf_put16(hdr + 36, 40000);
	tf_put32(hdr + 42, 0x01020304u);        /* ack */
	tf_put16(hdr + 48, 4096);               /* window */
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 8));
}

/* Segment k of a stream of seg-byte segments (the last `last` bytes). */
static uint32_t seg_k(uint8_t *out, unsigned k, uint32_t seg, uint32_t n, uint8_t flags)
{
	return tf_segment(out, hdr, 1000u + k * seg, (uint16_t)(77 + k), flags, payload + k * seg, n);
}

static void offer(struct tco *c, const uint8_t *f, uint32_t len, bool want_continue)
{
	assert_true(tco_eligible(f, len));
	assert_int_equal(tco_continues(c, f, len), want_continue);
	if (want_continue)
		memcpy(tco_append(c, f, len), f + TCO_HDR, len - TCO_HDR);
	else
		memcpy(tco_start(c, f, len), f, len);
}

static void test_gather_and_cut_back(void **state)
{
	(void)state;
	struct tco c;
	static uint8_t segs[12][TF_HDR + 1460], out[TF_HDR + 1460];
	uint32_t lens[12];
	make_hdr();
	tco_init(&c, gather);
	for (unsigned k = 0; k < 12; k++) {
		lens[k] = seg_k(segs[k], k, 1460, k == 11 ? 700 : 1460, k == 11 ? 0x18 : 0x10);
		offer(&c, segs[k], lens[k], k > 0);
	}
	assert_int_equal(c.nsegs, 12);
	assert_int_equal(c.seg, 1460);
	assert_true(c.closed);                  /* a short segment ends it */
	for (unsigned k = 0; k < 12; k++) {
		memset(out, 0, sizeof out);
		assert_int_equal(tco_segment_len(&c, k), lens[k]);
		assert_int_equal(tco_segment(&c, k, out), lens[k]);
		assert_memory_equal(out, segs[k], lens[k]);
	}

	uint32_t len = tco_finish(&c);
	assert_int_equal(len, TCO_HDR + 11 * 1460 + 700);
	const uint8_t *f = c.buf;
	assert_int_equal((f[16] << 8) | f[17], len - 14);
	assert_int_equal(tf_fold(tf_sum(f + 14, 20, 0)), 0xffff);          /* IPv4 header checksum */
	assert_int_equal(f[47], 0x18);                                      /* ACK + PSH */
	uint32_t tcp_len = len - 34;
	assert_int_equal((f[50] << 8) | f[51], tf_fold(tf_sum(f + 26, 8, 0) + 6 + tcp_len));
	assert_memory_equal(f + TCO_HDR, payload, 11 * 1460 + 700);
	for (unsigned k = 0; k < 12; k++) {                                 /* still, after finish */
		assert_int_equal(tco_segment(&c, k, out), lens[k]);
		assert_memory_equal(out, segs[k], lens[k]);
	}
}

/* PSH in the middle goes on the last segment; the newest ack and window
 * go on all of them. */
static void test_psh_ack_window(void **state)
{
	(void)state;
	struct tco c;
	static uint8_t s0[TF_HDR + 1000], s1[TF_HDR + 1000], s2[TF_HDR + 1000], out[TF_HDR + 1000];
	make_hdr();
	tco_init(&c, gather);
	uint32_t l0 = seg_k(s0, 0, 1000, 1000, 0x18);
	offer(&c, s0, l0, false);
	tf_put32(hdr + 42, 0x01020400u);
	tf_put16(hdr + 48, 8192);
	uint32_t l1 = seg_k(s1, 1, 1000, 1000, 0x10);
	offer(&c, s1, l1, true);
	uint32_t l2 = seg_k(s2, 2, 1000, 1000, 0x10);
	offer(&c, s2, l2, true);
	assert_false(c.closed);
	tco_finish(&c);
	assert_int_equal(c.buf[47], 0x18);
	assert_int_equal(tf_get32(c.buf + 42), 0x01020400u);
	assert_int_equal((c.buf[48] << 8) | c.buf[49], 8192);
	tco_segment(&c, 0, out);
	assert_int_equal(out[47], 0x10);
	assert_int_equal(tf_get32(out + 42), 0x01020400u);
	tco_segment(&c, 2, out);
	assert_int_equal(out[47], 0x18);
	assert_int_equal(seg_k(s2, 2, 1000, 1000, 0x18), l2);  /* as sent, with the PSH moved to it */
	assert_memory_equal(out, s2, l2);
}

static void test_not_eligible(void **state)
{
	(void)state;
	static uint8_t f[TF_HDR + 100], g[TF_HDR + 100];
	make_hdr();
	uint32_t len = seg_k(f, 0, 100, 100, 0x10);
	assert_true(tco_eligible(f, len));
	static const struct { unsigned off; uint8_t val; const char *what; } bad[] = {
		{ 47, 0x12, "SYN" }, { 47, 0x11, "FIN" }, { 47, 0x14, "RST" }, { 47, 0x30, "URG" },
		{ 47, 0x08, "no ACK" }, { 46, 0x60, "TCP options" }, { 14, 0x46, "IPv4 options" },
		{ 20, 0x20, "more fragments" }, { 21, 0x08, "fragment offset" }, { 23, 17, "UDP" },
		{ 12, 0x86, "not IPv4" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memcpy(g, f, len);
		g[bad[i].off] = bad[i].val;
		if (tco_eligible(g, len))
			fail_msg("%s was taken", bad[i].what);
	}
	memcpy(g, f, len);
	g[20] = 0x40;                                   /* DF alone is fine */
	assert_true(tco_eligible(g, len));
	assert_false(tco_eligible(f, len - 1));         /* IPv4 length disagrees */
	uint32_t ack_len = seg_k(g, 0, 100, 0, 0x10);   /* a pure ACK */
	assert_false(tco_eligible(g, ack_len));
}

static void test_where_gathering_stops(void **state)
{
	(void)state;
	struct tco c;
	static uint8_t f[TF_HDR + 1460], g[TF_HDR + 1460];
	make_hdr();
	tco_init(&c, gather);
	uint32_t len = seg_k(f, 0, 1460, 1460, 0x10);
	offer(&c, f, len, false);
	uint32_t l1 = seg_k(g, 2, 1460, 1460, 0x10);    /* a gap */
	assert_false(tco_continues(&c, g, l1));
	l1 = seg_k(g, 0, 1460, 1460, 0x10);             /* a repeat */
	assert_false(tco_continues(&c, g, l1));
	l1 = seg_k(g, 1, 1460, 1460, 0x10);
	assert_true(tco_continues(&c, g, l1));
	g[37] ^= 1;                                     /* another port */
	assert_false(tco_continues(&c, g, l1));
	g[37] ^= 1;
	g[0] ^= 1;                                      /* another next hop */
	assert_false(tco_continues(&c, g, l1));
	g[0] ^= 1;
	g[33] ^= 1;                                     /* another address */
	assert_false(tco_continues(&c, g, l1));

	/* bigger than the first: no; up to 64 KB: yes, then no */
	tco_reset(&c);
	len = seg_k(f, 0, 1000, 1000, 0x10);
	offer(&c, f, len, false);
	l1 = tf_segment(g, hdr, 2000, 1, 0x10, payload, 1001);
	assert_false(tco_continues(&c, g, l1));
	tco_reset(&c);
	unsigned k = 0;
	for (;; k++) {
		len = seg_k(f, k, 1460, 1460, 0x10);
		if (k && !tco_continues(&c, f, len))
			break;
		offer(&c, f, len, k > 0);
	}
	assert_int_equal(k, (65535 - 40) / 1460);
	assert_true(c.len <= TCO_MAX_FRAME);
	/* nothing follows a short segment */
	tco_reset(&c);
	offer(&c, f, seg_k(f, 0, 1460, 1460, 0x10), false);
	offer(&c, f, seg_k(f, 1, 1460, 500, 0x10), true);
	len = seg_k(f, 2, 1460, 500, 0x10);
	tf_put32(f + 38, 1000u + 1460 + 500);
	assert_false(tco_continues(&c, f, len));
}

/* tco_tcp_checksum: what an interface without lwIP's TCP checksums sends
 * alone gets the same checksum as the independent builder's, for odd and
 * even lengths, a bare ACK and a SYN; anything not an IPv4 TCP segment
 * without options and fragments is left as it was. */
static void test_tcp_checksum(void **state)
{
	(void)state;
	static uint8_t want[TF_HDR + 1461], got[TF_HDR + 1461];
	static const uint32_t sizes[] = { 0, 1, 2, 535, 1460, 1461 };
	make_hdr();
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		uint32_t len = tf_segment(want, hdr, 0x10000000u + (uint32_t)k, 7, k == 0 ? 0x02 : 0x18, payload, sizes[k]);
		memcpy(got, want, len);
		got[50] = 0, got[51] = 0;
		assert_true(tco_tcp_checksum(got, len));
		assert_memory_equal(got, want, len);
		got[50] ^= 0x5a;        /* a stale value is replaced too */
		assert_true(tco_tcp_checksum(got, len));
		assert_memory_equal(got, want, len);
	}
	uint32_t len = tf_segment(want, hdr, 1, 1, 0x10, payload, 100);
	want[50] = 0x12, want[51] = 0x34;
	memcpy(got, want, len);
	got[23] = 17;                                   /* UDP */
	assert_false(tco_tcp_checksum(got, len));
	got[23] = 6, got[20] = 0x20;                    /* more fragments */
	assert_false(tco_tcp_checksum(got, len));
	got[20] = 0, got[14] = 0x46;                    /* IPv4 options */
	assert_false(tco_tcp_checksum(got, len));
	got[14] = 0x45;
	assert_false(tco_tcp_checksum(got, len - 1));   /* shorter than its IPv4 length */
	assert_memory_equal(got, want, len);
	assert_true(tco_tcp_checksum(got, len));
	assert_memory_not_equal(got, want, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gather_and_cut_back),
		cmocka_unit_test(test_psh_ack_window),
		cmocka_unit_test(test_not_eligible),
		cmocka_unit_test(test_where_gathering_stops),
		cmocka_unit_test(test_tcp_checksum),
	};
	return cmocka_run_group_tests_name("tcp_coalesce", tests, NULL, NULL);
}
