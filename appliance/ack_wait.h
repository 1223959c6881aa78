/* Delayed ACKs for the proxy's connections, one side at a time.
 *
 * lwIP leaves a lone segment's ACK to its fast timer (250 ms): a peer that
 * writes a response head and body separately with Nagle on would wait that
 * long for every response. ACKing every segment at once costs a pure ACK per
 * request each way. So the proxy owes an ACK for at most a short delay, and
 * in request/response traffic the ACK rides on the reply before then.
 *
 * The delay runs from when the ACK became owed: the first segment that came
 * after the last data we sent on that side (data carries the ACK). Timing
 * it from an earlier segment, whose ACK has gone out since, sends a pure ACK
 * for a segment that has only just arrived.
 *
 * Pure functions of the times and the side's send sequence (lwIP's
 * snd_nxt), so tests can drive them without a stack. */
#ifndef MESHGATE_ACK_WAIT_H
#define MESHGATE_ACK_WAIT_H
#include <stdbool.h>
#include <stdint.h>

struct ack_wait {
	uint64_t since_us;      /* the ACK owed has been owed since then */
	uint32_t snd_mark;      /* snd_nxt then: data sent after it carried the ACK */
	bool waiting;
};

/* A segment with data arrived at `now`. ack_now: the stack sends its ACK
 * itself (every second segment), so nothing is owed. */
static inline void ack_wait_segment(struct ack_wait *w, uint64_t now, uint32_t snd_nxt, bool ack_now)
{
	if (ack_now) {
		w->waiting = false;
		return;
	}
	if (!w->waiting || snd_nxt != w->snd_mark) {
		w->since_us = now;
		w->snd_mark = snd_nxt;
		w->waiting = true;
	}
}

#define ACK_WAIT_SEND UINT64_MAX

/* At `now`, with `owed` = the stack still owes an ACK on this side: returns
 * 0 (nothing owed: forget it), ACK_WAIT_SEND (owed for the whole delay, or
 * owed for something that came without a segment callback: send it now and
 * forget it), or when to look again. */
static inline uint64_t ack_wait_check(struct ack_wait *w, uint64_t now, uint32_t snd_nxt, bool owed,
				      uint64_t delay_us)
{
	if (!w->waiting || !owed) {
		w->waiting = false;
		return 0;
	}
	uint64_t due = w->since_us + delay_us;
	if (snd_nxt == w->snd_mark && now < due)
		return due;
	w->waiting = false;
	return ACK_WAIT_SEND;
}

#endif
