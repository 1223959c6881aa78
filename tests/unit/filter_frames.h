/* Frame builders shared by the filter unit test and benchmark: Ethernet +
 * IPv4 + TCP/UDP/ICMP headers (checksums left zero: the filter does not
 * read them). Addresses in host byte order. */
#ifndef MESHGATE_TESTS_FILTER_FRAMES_H
#define MESHGATE_TESTS_FILTER_FRAMES_H
#include <stdint.h>
#include <string.h>

struct frame { uint8_t b[128]; size_t n; };

static inline void ff_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void ff_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* proto 6/17: sport/dport; proto 1: sport = ICMP type, dport = echo id. */
static inline void ff_ipv4(struct frame *f, uint8_t proto, uint32_t src, uint32_t dst,
			   uint16_t sport, uint16_t dport)
{
	memset(f->b, 0, sizeof f->b);
	ff_put16(f->b + 12, 0x0800);
	uint8_t *ip = f->b + 14;
	size_t l4 = proto == 6 ? 20 : 8;
	ip[0] = 0x45;
	ff_put16(ip + 2, (uint16_t)(20 + l4));
	ff_put16(ip + 6, 0x4000);   /* DF */
	ip[8] = 64;
	ip[9] = proto;
	ff_put32(ip + 12, src);
	ff_put32(ip + 16, dst);
	uint8_t *t = ip + 20;
	if (proto == 1) {
		t[0] = (uint8_t)sport;
		ff_put16(t + 4, dport);
	} else {
		ff_put16(t, sport);
		ff_put16(t + 2, dport);
		if (proto == 6)
			t[12] = 0x50, t[13] = 0x02;     /* SYN */
	}
	f->n = 14 + 20 + l4;
}

static inline void ff_arp(struct frame *f)
{
	memset(f->b, 0, sizeof f->b);
	ff_put16(f->b + 12, 0x0806);
	f->n = 42;
}

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#endif
