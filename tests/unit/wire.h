/* An in-memory Ethernet wire for the net/ unit tests (test_net_stack,
 * test_pcb_index): an interface's tx_reserve callback (wire_reserve, with
 * the wire as drv) appends a frame; the test takes frames off the other end
 * with wire_take() and feeds them to the peer's net_if_input(). */
#ifndef MESHGATE_TESTS_WIRE_H
#define MESHGATE_TESTS_WIRE_H
#include <stdint.h>
#include <string.h>

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

#endif
