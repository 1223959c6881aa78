/* Coalescing of consecutive outgoing TCP segments (net/tcp_coalesce.h). */
#include <string.h>

#include "lwip/opt.h"   /* LWIP_CHKSUM: the project's Internet checksum (net/lwipopts.h) */
#include "net/tcp_coalesce.h"

/* Offsets in an Ethernet + IPv4 + TCP frame without options (O_: lwIP's
 * options use some of the same names). */
#define O_ETYPE 12
#define O_IP 14
#define O_IP_LEN (O_IP + 2)
#define O_IP_ID (O_IP + 4)
#define O_IP_FRAG (O_IP + 6)
#define O_IP_PROTO (O_IP + 9)
#define O_IP_SUM (O_IP + 10)
#define O_IP_SRC (O_IP + 12)
#define O_TCP TCO_L4_OFF
#define O_TCP_SEQ (O_TCP + 4)
#define O_TCP_ACK (O_TCP + 8)
#define O_TCP_OFF (O_TCP + 12)
#define O_TCP_FLAGS (O_TCP + 13)
#define O_TCP_WND (O_TCP + 14)
#define O_TCP_SUM (O_TCP + 16)
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

/* LWIP_CHKSUM returns the folded one's-complement sum of native-order
 * 16-bit words; stored as it is (memcpy), it is in wire order. */
static uint16_t add16(uint16_t a, uint16_t b)
{
	uint32_t s = (uint32_t)a + b;
	return (uint16_t)((s & 0xffff) + (s >> 16));
}

static void store16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void set_ip_sum(uint8_t *f)
{
	put16(f + O_IP_SUM, 0);
	store16(f + O_IP_SUM, (uint16_t)~LWIP_CHKSUM(f + O_IP, 20));
}

/* Sum of the TCP pseudo-header for a TCP segment of tcp_len bytes. */
static uint16_t pseudo_sum(const uint8_t *f, uint32_t tcp_len)
{
	uint8_t ph[12];
	memcpy(ph, f + O_IP_SRC, 8);
	ph[8] = 0;
	ph[9] = 6;
	put16(ph + 10, tcp_len);
	return LWIP_CHKSUM(ph, sizeof ph);
}

/* The full TCP checksum of the segment of tcp_len bytes at O_TCP. */
static void set_tcp_sum(uint8_t *f, uint32_t tcp_len)
{
	put16(f + O_TCP_SUM, 0);
	store16(f + O_TCP_SUM, (uint16_t)~add16(pseudo_sum(f, tcp_len), LWIP_CHKSUM(f + O_TCP, (int)tcp_len)));
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
	if (h[O_ETYPE] != 0x08 || h[O_ETYPE + 1] != 0x00 || h[O_IP] != 0x45 || h[O_IP_PROTO] != 6)
		return false;
	if ((((uint32_t)h[O_IP_FRAG] << 8 | h[O_IP_FRAG + 1]) & 0x3fff) != 0)   /* MF or an offset */
		return false;
	if (((uint32_t)h[O_IP_LEN] << 8 | h[O_IP_LEN + 1]) != frame_len - O_IP)
		return false;
	return h[O_TCP_OFF] == 0x50 && (h[O_TCP_FLAGS] & F_ACK) && !(h[O_TCP_FLAGS] & ~(F_ACK | F_PSH));
}

bool tco_continues(const struct tco *c, const uint8_t *h, uint32_t frame_len)
{
	uint32_t payload = frame_len - TCO_HDR;
	return c->nsegs && !c->closed && payload <= c->seg && c->len + payload <= TCO_MAX_FRAME &&
	       get32(h + O_TCP_SEQ) == c->next_seq && memcmp(h, c->buf, O_ETYPE + 2) == 0 &&
	       memcmp(h + O_IP_SRC, c->buf + O_IP_SRC, 8) == 0 && memcmp(h + O_TCP, c->buf + O_TCP, 4) == 0;
}

uint8_t *tco_start(struct tco *c, const uint8_t *h, uint32_t frame_len)
{
	c->seg = (uint16_t)(frame_len - TCO_HDR);
	c->next_seq = get32(h + O_TCP_SEQ) + c->seg;
	c->len = frame_len;
	c->nsegs = 1;
	c->closed = false;
	c->psh = (h[O_TCP_FLAGS] & F_PSH) != 0;
	return c->buf;
}

uint8_t *tco_append(struct tco *c, const uint8_t *h, uint32_t frame_len)
{
	uint32_t payload = frame_len - TCO_HDR;
	uint8_t *dst = c->buf + c->len;
	memcpy(c->buf + O_TCP_ACK, h + O_TCP_ACK, 4);
	memcpy(c->buf + O_TCP_WND, h + O_TCP_WND, 2);
	c->psh |= (h[O_TCP_FLAGS] & F_PSH) != 0;
	c->closed = payload < c->seg;
	c->next_seq += payload;
	c->len += payload;
	c->nsegs++;
	return dst;
}

uint32_t tco_finish(struct tco *c)
{
	uint8_t *f = c->buf;
	put16(f + O_IP_LEN, c->len - O_IP);
	set_ip_sum(f);
	f[O_TCP_FLAGS] = (uint8_t)(F_ACK | (c->psh ? F_PSH : 0));
	store16(f + O_TCP_SUM, pseudo_sum(f, c->len - O_TCP));
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
	uint32_t id = (uint32_t)out[O_IP_ID] << 8 | out[O_IP_ID + 1];
	put16(out + O_IP_ID, id + i);
	put16(out + O_IP_LEN, TCO_HDR - O_IP + payload);
	set_ip_sum(out);
	put32(out + O_TCP_SEQ, get32(c->buf + O_TCP_SEQ) + i * (uint32_t)c->seg);
	out[O_TCP_FLAGS] = (uint8_t)(F_ACK | (c->psh && i + 1 == c->nsegs ? F_PSH : 0));
	set_tcp_sum(out, TCO_HDR - O_TCP + payload);
	return TCO_HDR + payload;
}

bool tco_tcp_checksum(uint8_t *f, uint32_t len)
{
	if (len < TCO_HDR || f[O_ETYPE] != 0x08 || f[O_ETYPE + 1] != 0x00 || f[O_IP] != 0x45 ||
	    f[O_IP_PROTO] != 6 || (f[O_IP_FRAG] & 0x3f) != 0 || f[O_IP_FRAG + 1] != 0)
		return false;
	uint32_t tcp_len = (uint32_t)f[O_IP_LEN] << 8 | f[O_IP_LEN + 1];
	if (tcp_len < 40 || O_IP + tcp_len > len)
		return false;
	set_tcp_sum(f, tcp_len - 20);
	return true;
}
