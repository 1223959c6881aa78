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
 * still does all the matching. The index knows every pcb on the list, so a
 * SYN it has no pcb for, or a segment for a connection in TIME-WAIT, belongs
 * to no active connection: lwIP's walk of the whole list, which would find
 * nothing, is skipped by hiding the list from it for that one segment (with
 * 10,000 idle connections that walk was 40% of a handshake's CPU).
 *
 * The index keeps each pcb's predecessor in the list, so the move is O(1).
 * It never trusts that record blindly: the move is made only when the
 * recorded predecessor is live (freed pcbs are reported by an lwIP ext-arg
 * destroy callback, LWIP_TCP_PCB_NUM_EXT_ARGS) and still points at the pcb,
 * and the pcb is in a state only the active list holds. When lwIP has
 * changed the list in a way the record does not show, the predecessor is
 * found by walking the list once (what lwIP would have done) and recorded.
 * New pcbs are indexed as they appear at the head, a freed pcb's successor
 * is given the freed one's predecessor, and the whole index is rebuilt only
 * after thousands of frees (its table's tombstones).
 *
 * State is module-wide because lwIP's list is: there is one lwIP. Called
 * only from the input path at top level (net_if_input), never while lwIP is
 * inside tcp_input or its timers. */
#ifndef MESHGATE_NET_PCB_INDEX_H
#define MESHGATE_NET_PCB_INDEX_H
#include <stdint.h>

#include "lwip/tcp.h"

/* Allocates lwIP's ext-arg slot and seeds the hash; after lwip_init(). */
void net_pcb_index_init(void);

/* An IPv4 packet (from its IP header, len bytes) is about to be given to
 * lwIP. If it is an unfragmented TCP segment of a connection the index
 * knows, that pcb becomes the head of tcp_active_pcbs. If it is a SYN of no
 * active connection, or a segment for one in TIME-WAIT, the active list is
 * hidden from lwIP for this segment, as its walk would find nothing in it.
 * Anything else is left alone. Any packet, IPv4 or not (len 0), first has
 * the index take in pcbs new since the last one. The caller calls
 * net_pcb_index_after() once lwIP has taken the packet. */
void net_pcb_index_front(const uint8_t *ip, uint32_t len);

/* To be called as soon as lwIP has taken the packet given to
 * net_pcb_index_front(): puts a hidden list back
 * behind any pcbs lwIP created meanwhile (a SYN's), and counts a connection
 * the segment sent to TIME-WAIT, freeing it at once past NET_TIME_WAIT_MAX. */
void net_pcb_index_after(void);

/* Connections kept in TIME-WAIT at most. lwIP walks its TIME-WAIT list for
 * every new connection (each SYN, each local port chosen, each pcb taken
 * when the pool is full): a gateway that closes its upstream connections
 * first at 1,000 connections a second would otherwise keep 16,000 there
 * (lwIP's 2 MSL is 2 minutes) and spend 80% of its CPU walking them. Past
 * the cap a connection that enters TIME-WAIT is freed at once, as Linux
 * does past tcp_max_tw_buckets; the peer has had its last ACK. */
#define NET_TIME_WAIT_MAX 512

/* tcp_connect() with the local port chosen here, so that the four-tuple is
 * one the index does not hold (live or in TIME-WAIT), instead of by lwIP's
 * tcp_new_port(), which walks every pcb of every list for each port it
 * tries (with 10,000 idle connections open, ~130 us per connection). For a
 * fresh pcb with no local port; anything else goes to tcp_connect as is. */
err_t net_pcb_index_connect(struct tcp_pcb *pcb, const ip_addr_t *ip, u16_t port,
			    tcp_connected_fn connected);

/* For tests: active pcbs the index could not find (0 when sound). O(n). */
unsigned net_pcb_index_audit(void);

struct net_pcb_index_stats {
	uint64_t moved;         /* segments whose pcb was moved to the front */
	uint64_t at_front;      /* ... whose pcb was there already */
	uint64_t unknown;       /* ... of no active connection (for a SYN or TIME-WAIT the list is hidden) */
	uint64_t repaired;      /* a predecessor found by walking, the record being out of date */
	uint64_t absorbed;      /* new pcbs indexed as they appeared at the head */
	uint64_t freed;         /* indexed pcbs freed */
	uint64_t time_wait;     /* connections seen entering TIME-WAIT */
	uint64_t time_wait_freed; /* ... freed at once, past NET_TIME_WAIT_MAX */
	uint64_t connects;      /* net_pcb_index_connect calls that chose the port */
	uint64_t rebuilds;      /* the whole index rebuilt by one walk */
	uint32_t indexed;       /* pcbs indexed since the last rebuild */
};
void net_pcb_index_get_stats(struct net_pcb_index_stats *out);

#endif
