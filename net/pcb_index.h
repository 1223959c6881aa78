/* An index over lwIP's list of active TCP connections, so that finding the
 * connection a segment belongs to costs the same with 10,000 connections as
 * with 10.
 *
 * lwIP 2.1 finds a segment's pcb by walking tcp_active_pcbs from the front
 * and moves the pcb it finds to the front. With many connections taking
 * turns (a gateway's normal load: each client's request, each upstream's
 * reply) the one wanted is near the back: at 512 keep-alive connections the
 * walk was 35% of the appliance's CPU (perf), at 32 still 3%.
 *
 * Before lwIP sees a TCP segment, net_pcb_index_front() looks its four-tuple
 * up in a hash table and moves that pcb to the front of tcp_active_pcbs, so
 * lwIP's own walk stops at the first entry. lwIP's code is not changed: it
 * still does all the matching, and a segment whose pcb the index does not
 * know (a SYN, TIME-WAIT, a connection opened since the last rebuild) gets
 * lwIP's walk as before.
 *
 * The index keeps each pcb's predecessor in the list, so the move is O(1).
 * It never trusts that record blindly: a pcb is moved only when the
 * recorded predecessor still points at it, both are live (freed pcbs are
 * reported by an lwIP ext-arg destroy callback, LWIP_TCP_PCB_NUM_EXT_ARGS)
 * and the pcb is in a state only the active list holds. When lwIP has
 * changed the list in a way the record does not show (a connection opened,
 * closed, moved to TIME-WAIT), the check fails and the index is rebuilt by
 * one walk of the list: O(n) per connection opened or closed instead of per
 * segment.
 *
 * State is module-wide because lwIP's list is: there is one lwIP. Called
 * only from the input path at top level (net_if_input), never while lwIP is
 * inside tcp_input or its timers. */
#ifndef MESHGATE_NET_PCB_INDEX_H
#define MESHGATE_NET_PCB_INDEX_H
#include <stdint.h>

/* Allocates lwIP's ext-arg slot and seeds the hash; after lwip_init(). */
void net_pcb_index_init(void);

/* An IPv4 packet (from its IP header, len bytes) is about to be given to
 * lwIP: if it is an unfragmented TCP segment of a connection the index
 * knows, that pcb becomes the head of tcp_active_pcbs. Anything else is
 * left alone. */
void net_pcb_index_front(const uint8_t *ip, uint32_t len);

struct net_pcb_index_stats {
	uint64_t moved;         /* pcb moved to the front */
	uint64_t at_front;      /* already there */
	uint64_t unknown;       /* a TCP segment the index had no pcb for */
	uint64_t rebuilds;      /* walks of the list to rebuild the index */
	uint64_t absorbed;      /* new pcbs indexed as they appeared at the head */
	uint64_t stale;         /* a record found out of date (then rebuilt) */
	uint32_t indexed;       /* pcbs indexed since the last rebuild */
};
void net_pcb_index_get_stats(struct net_pcb_index_stats *out);

#endif
