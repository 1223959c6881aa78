/* Coalescing of consecutive outgoing TCP segments (net/tcp_coalesce.h). */
#include <string.h>

#include "net/tcp_coalesce.h"

/* Offsets in an Ethernet + IPv4 + TCP frame without options. */
#define ETYPE 12
#define IP 14
#define IP_LEN (IP + 2)
#define IP_ID (IP + 4)
#define IP_FRAG (IP + 6)
#define IP_PROTO (IP + 9)
#define IP_SUM (IP + 10)
#define IP_SRC (IP + 12)
#define TCP TCO_L4_OFF
#define TCP_SEQ (TCP + 4)
#define TCP_ACK (TCP + 8)
#define TCP_OFF (TCP + 12)
#define TCP_FLAGS (TCP + 13)
#define TCP_WND (TCP + 14)
#define TCP_SUM (TCP + 16)
#define F_PSH 0x08
#define F_ACK 0x10

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

/* One's-complement sum of big-endian 16-bit words (odd byte padded). */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (; n > 1; n -= 2, p += 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (n)
		s += (uint32_t)p[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void set_ip_sum(uint8_t *f)
{
	put16(f + IP_SUM, 0);
	put16(f + IP_SUM, (uint16_t)~fold(sum16(f + IP, 20, 0)));
}

/* Sum of the TCP pseudo-header for a TCP segment of tcp_len bytes. */
static uint32_t pseudo_sum(const uint8_t *f, uint32_t tcp_len)
{
	return sum16(f + IP_SRC, 8, 0) + 6 + (tcp_len >> 16) + (tcp_len & 0xffff);
}

void tco_init(struct tco *c, uint8_t *buf)
{
	memset(c, 0, sizeof *c);
	c->buf = buf;
}

void tco_reset(struct tco *c)
{
	c->len = 0;
	c->nsegs = 0;
	c->closed = false;
	c->psh = false;
}

bool tco_eligible(const uint8_t *h, uint32_t frame_len)
{
	if (frame_len <= TCO_HDR || frame_len > TCO_MAX_FRAME)
		return false;
	if (h[ETYPE] != 0x08 || h[ETYPE + 1] != 0x00 || h[IP] != 0x45 || h[IP_PROTO] != 6)
		return false;
	if ((((uint32_t)h[IP_FRAG] << 8 | h[IP_FRAG + 1]) & 0x3fff) != 0)   /* MF or an offset */
		return false;
	if (((uint32_t)h[IP_LEN] << 8 | h[IP_LEN + 1]) != frame_len - IP)
		return false;
	return h[TCP_OFF] == 0x50 && (h[TCP_FLAGS] & F_ACK) && !(h[TCP_FLAGS] & ~(F_ACK | F_PSH));
}

bool tco_continues(const struct tco *c, const uint8_t *h, uint32_t frame_len)
{
	uint32_t payload = frame_len - TCO_HDR;
	return c->nsegs && !c->closed && payload <= c->seg && c->len + payload <= TCO_MAX_FRAME &&
	       get32(h + TCP_SEQ) == c->next_seq && memcmp(h, c->buf, ETYPE + 2) == 0 &&
	       memcmp(h + IP_SRC, c->buf + IP_SRC, 8) == 0 && memcmp(h + TCP, c->buf + TCP, 4) == 0;
}

uint8_t *tco_start(struct tco *c, const uint8_t *h, uint32_t frame_len)
{
	c->seg = (uint16_t)(frame_len - TCO_HDR);
	c->next_seq = get32(h + TCP_SEQ) + c->seg;
	c->len = frame_len;
	c->nsegs = 1;
	c->closed = false;
	c->psh = (h[TCP_FLAGS] & F_PSH) != 0;
	return c->buf;
}

uint8_t *tco_append(struct tco *c, const uint8_t *h, uint32_t frame_len)
{
	uint32_t payload = frame_len - TCO_HDR;
	uint8_t *dst = c->buf + c->len;
	memcpy(c->buf + TCP_ACK, h + TCP_ACK, 4);
	memcpy(c->buf + TCP_WND, h + TCP_WND, 2);
	c->psh |= (h[TCP_FLAGS] & F_PSH) != 0;
	c->closed = payload < c->seg;
	c->next_seq += payload;
	c->len += payload;
	c->nsegs++;
	return dst;
}

uint32_t tco_finish(struct tco *c)
{
	uint8_t *f = c->buf;
	put16(f + IP_LEN, c->len - IP);
	set_ip_sum(f);
	f[TCP_FLAGS] = (uint8_t)(F_ACK | (c->psh ? F_PSH : 0));
	put16(f + TCP_SUM, fold(pseudo_sum(f, c->len - TCP)));
	return c->len;
}

uint32_t tco_segment_len(const struct tco *c, unsigned i)
{
	return i + 1 == c->nsegs ? c->len - i * (uint32_t)c->seg : TCO_HDR + (uint32_t)c->seg;
}

uint32_t tco_segment(const struct tco *c, unsigned i, uint8_t *out)
{
	uint32_t off = TCO_HDR + i * (uint32_t)c->seg;
	uint32_t payload = tco_segment_len(c, i) - TCO_HDR;
	memcpy(out, c->buf, TCO_HDR);
	memcpy(out + TCO_HDR, c->buf + off, payload);
	uint32_t id = (uint32_t)out[IP_ID] << 8 | out[IP_ID + 1];
	put16(out + IP_ID, id + i);
	put16(out + IP_LEN, TCO_HDR - IP + payload);
	set_ip_sum(out);
	put32(out + TCP_SEQ, get32(c->buf + TCP_SEQ) + i * (uint32_t)c->seg);
	out[TCP_FLAGS] = (uint8_t)(F_ACK | (c->psh && i + 1 == c->nsegs ? F_PSH : 0));
	put16(out + TCP_SUM, 0);
	uint32_t s = pseudo_sum(out, TCO_HDR - TCP + payload);
	put16(out + TCP_SUM, (uint16_t)~fold(sum16(out + TCP, TCO_HDR - TCP + payload, s)));
	return TCO_HDR + payload;
}
