/* An in-memory Ethernet wire for the unit tests that run lwIP (test_net_stack,
 * test_pcb_index, test_egress_proxy): an interface's tx_reserve callback
 * (wire_reserve, with the wire as drv) appends a frame; the test takes
 * frames off the other end with wire_take() and feeds them to the peer's
 * net_if_input(), or has wire_deliver() do both. wire_join() makes the two
 * interfaces. */
#ifndef MESHGATE_TESTS_WIRE_H
#define MESHGATE_TESTS_WIRE_H
#include <stdint.h>
#include <string.h>

#include "net/stack.h"

#define WIRE_FRAMES 4096
#define WIRE_FRAME_MAX 1536

struct wire {
	uint8_t frame[WIRE_FRAMES][WIRE_FRAME_MAX];
	uint16_t len[WIRE_FRAMES];
	unsigned head, tail;
	unsigned long refused;          /* full, or a frame over WIRE_FRAME_MAX */
	unsigned long carried;
};

static inline void *wire_reserve(void *drv, uint16_t len)
{
	struct wire *w = drv;
	if (w->tail - w->head == WIRE_FRAMES || len > WIRE_FRAME_MAX) {
		w->refused++;
		return NULL;
	}
	unsigned slot = w->tail++ % WIRE_FRAMES;
	w->len[slot] = len;
	return w->frame[slot];
}

/* Copies the oldest frame into buf (WIRE_FRAME_MAX bytes) and returns its
 * length; 0 when the wire is empty. */
static inline uint16_t wire_take(struct wire *w, uint8_t *buf)
{
	if (w->head == w->tail)
		return 0;
	unsigned slot = w->head++ % WIRE_FRAMES;
	memcpy(buf, w->frame[slot], w->len[slot]);
	w->carried++;
	return w->len[slot];
}

/* Takes the oldest frame off w into to's input (no driver flags). Returns
 * 1, or 0 when w was empty. */
static inline unsigned wire_deliver(struct wire *w, struct net_if *to)
{
	static uint8_t buf[WIRE_FRAME_MAX];
	uint16_t len = wire_take(w, buf);
	if (len)
		net_if_input(to, buf, len, 0);
	return len != 0;
}

/* net_init() and two interfaces, "a" at addr_a sending on a_to_b and "b" at
 * addr_b sending on b_to_a (network order, one /24), with MACs
 * 02:6d:67:TAG:00:01 and 02:6d:67:TAG:00:02. Returns 0, or -1 when an
 * interface could not be added. */
static inline int wire_join(uint8_t tag, uint32_t addr_a, struct wire *a_to_b, struct net_if **a,
			    uint32_t addr_b, struct wire *b_to_a, struct net_if **b)
{
	const uint8_t mac_a[6] = {0x02, 0x6d, 0x67, tag, 0x00, 0x01};
	const uint8_t mac_b[6] = {0x02, 0x6d, 0x67, tag, 0x00, 0x02};
	net_init();
	*a = net_if_add("a", mac_a, addr_a, 24, 0, wire_reserve, a_to_b);
	*b = net_if_add("b", mac_b, addr_b, 24, 0, wire_reserve, b_to_a);
	return *a && *b ? 0 : -1;
}

#endif
