/* TCP segments built independently of net/ (a naive RFC 1071 checksum and
 * byte-by-byte header fields) for the coalescing tests: test_tcp_coalesce
 * builds the segments lwIP would send, test_net_stack cuts offload frames
 * back into segments as the kernel would. Ethernet + IPv4 + TCP, no
 * options (54 bytes of headers). */
#ifndef MESHGATE_TESTS_TCP_FRAMES_H
#define MESHGATE_TESTS_TCP_FRAMES_H
#include <stdint.h>
#include <string.h>

#define TF_HDR 54u

static inline uint32_t tf_sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static inline uint16_t tf_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static inline uint32_t tf_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void tf_put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void tf_put32(uint8_t *p, uint32_t v)
{
	tf_put16(p, v >> 16);
	tf_put16(p + 2, v);
}

/* Writes one segment to out: the headers of `hdr` (TF_HDR bytes) with
 * sequence number seq, IPv4 id, TCP flags, n payload bytes, and correct
 * lengths and checksums. Returns its length. */
static inline uint32_t tf_segment(uint8_t *out, const uint8_t *hdr, uint32_t seq, uint16_t id,
				  uint8_t flags, const uint8_t *payload, uint32_t n)
{
	memmove(out + TF_HDR, payload, n);
	memcpy(out, hdr, TF_HDR);
	tf_put16(out + 16, 40 + n);
	tf_put16(out + 18, id);
	tf_put16(out + 24, 0);
	tf_put16(out + 24, (uint16_t)~tf_fold(tf_sum(out + 14, 20, 0)));
	tf_put32(out + 38, seq);
	out[46] = 0x50;
	out[47] = flags;
	tf_put16(out + 50, 0);
	uint32_t pseudo = tf_sum(out + 26, 8, 0) + 6 + 20 + n;
	tf_put16(out + 50, (uint16_t)~tf_fold(tf_sum(out + 34, 20 + n, pseudo)));
	return TF_HDR + n;
}

#endif
