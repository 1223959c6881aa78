/* The active-pcb index: see net/pcb_index.h. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "net/pcb_index.h"

/* Twice the pcb pool, so linear probing stays short (load <= 1/2). */
#define INDEX_SLOTS (2u * MEMP_NUM_TCP_PCB)
_Static_assert((INDEX_SLOTS & (INDEX_SLOTS - 1)) == 0, "INDEX_SLOTS must be a power of two");

struct slot {
	uint32_t generation;            /* != index.generation: empty */
	uint32_t local_ip, remote_ip;   /* network byte order, as lwIP keeps them */
	uint32_t ports;                 /* local << 16 | remote, host order */
	struct tcp_pcb *pcb;
	struct tcp_pcb *prev;           /* predecessor in tcp_active_pcbs; NULL: head */
};

static struct {
	struct slot slots[INDEX_SLOTS];
	uint32_t generation;            /* bumped by each rebuild; 0 never used */
	uint32_t seed;                  /* so remote peers cannot aim at one chain */
	bool dirty;                     /* a pcb was freed since the last rebuild */
	char seen_only;                 /* ext-arg data of a pcb seen but not indexed */
	u8_t ext_id;
	struct net_pcb_index_stats stats;
} index_;

static void on_destroyed(u8_t id, void *data)
{
	(void)id;
	(void)data;
	index_.dirty = true;    /* it may be someone's recorded predecessor */
}

static const struct tcp_ext_arg_callbacks index_callbacks = {.destroy = on_destroyed};

void net_pcb_index_init(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	index_.ext_id = tcp_ext_arg_alloc_id();
	if (getrandom(&index_.seed, sizeof index_.seed, GRND_NONBLOCK) != sizeof index_.seed)
		index_.seed = (uint32_t)time(NULL) * 2654435761u;
	index_.dirty = true;
}

static uint32_t hash(uint32_t local_ip, uint32_t remote_ip, uint32_t ports)
{
	uint64_t h = (uint64_t)(remote_ip ^ index_.seed) * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)(ports + index_.seed) * 0xc2b2ae3d27d4eb4full;
	h ^= (uint64_t)local_ip * 0x165667b19e3779f9ull;
	h ^= h >> 29;
	return (uint32_t)(h >> 32) & (INDEX_SLOTS - 1);
}

/* The slot for the key: the one holding it or the empty one ending its
 * chain. The table never fills (it has twice the pool's pcbs). */
static struct slot *find(uint32_t local_ip, uint32_t remote_ip, uint32_t ports)
{
	uint32_t i = hash(local_ip, remote_ip, ports);
	for (;;) {
		struct slot *s = &index_.slots[i];
		if (s->generation != index_.generation ||
		    (s->local_ip == local_ip && s->remote_ip == remote_ip && s->ports == ports))
			return s;
		i = (i + 1) & (INDEX_SLOTS - 1);
	}
}

/* The pcb's record when it is current, else NULL. */
static struct slot *record_of(struct tcp_pcb *pcb)
{
	struct slot *s = tcp_ext_arg_get(pcb, index_.ext_id);
	if ((void *)s == &index_.seen_only)
		return NULL;
	return s && s->generation == index_.generation && s->pcb == pcb ? s : NULL;
}

/* Indexes pcb (its predecessor: prev) in the current generation. A pcb
 * whose four-tuple is already indexed (lwIP would find the other one first,
 * or it is a connection in TIME-WAIT, until its free rebuilds the index) is
 * marked seen and left to lwIP's walk. */
static void add(struct tcp_pcb *pcb, struct tcp_pcb *prev)
{
	tcp_ext_arg_set_callbacks(pcb, index_.ext_id, &index_callbacks);
	uint32_t local_ip = ip4_addr_get_u32(&pcb->local_ip), remote_ip = ip4_addr_get_u32(&pcb->remote_ip);
	uint32_t ports = (uint32_t)pcb->local_port << 16 | pcb->remote_port;
	struct slot *s = find(local_ip, remote_ip, ports);
	if (s->generation == index_.generation) {
		tcp_ext_arg_set(pcb, index_.ext_id, &index_.seen_only);
		return;
	}
	*s = (struct slot){
		.generation = index_.generation, .local_ip = local_ip, .remote_ip = remote_ip,
		.ports = ports, .pcb = pcb, .prev = prev,
	};
	tcp_ext_arg_set(pcb, index_.ext_id, s);
	index_.stats.indexed++;
}

static void rebuild(void)
{
	index_.stats.rebuilds++;
	if (++index_.generation == 0) {         /* every old slot looks current again */
		memset(index_.slots, 0, sizeof index_.slots);
		index_.generation = 1;
	}
	index_.dirty = false;
	index_.stats.indexed = 0;
	uint32_t n = 0;
	struct tcp_pcb *prev = NULL;
	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb && n++ < MEMP_NUM_TCP_PCB; pcb = pcb->next) {
		add(pcb, prev);
		prev = pcb;
	}
}

/* New pcbs enter at the head of the list (tcp_connect, a passive open, or
 * lwIP's walk moving one the index did not know there): index the run of
 * never-seen pcbs at the head, so a new connection needs no rebuild. */
static void absorb_new(void)
{
	struct tcp_pcb *pcb = tcp_active_pcbs, *prev = NULL;
	uint32_t n = 0;
	while (pcb && !tcp_ext_arg_get(pcb, index_.ext_id) && n++ < MEMP_NUM_TCP_PCB) {
		add(pcb, prev);
		index_.stats.absorbed++;
		prev = pcb;
		pcb = pcb->next;
	}
	struct slot *r;
	if (prev && pcb && (r = record_of(pcb)))
		r->prev = prev;
}

/* Moves s->pcb to the head when the record is right; false when it is not. */
static bool move_to_front(struct slot *s)
{
	struct tcp_pcb *pcb = s->pcb, *prev = s->prev;
	/* Only the active list holds pcbs in these states (TIME-WAIT ones are
	 * on tcp_tw_pcbs, where a live predecessor could also point at it). */
	if (pcb->state == CLOSED || pcb->state == LISTEN || pcb->state == TIME_WAIT)
		return false;
	if (!prev) {
		if (tcp_active_pcbs != pcb)
			return false;
		index_.stats.at_front++;
		return true;
	}
	/* A live, indexed predecessor that still points at it: pcb is in the
	 * active list right after prev. */
	if (!record_of(prev) || prev->next != pcb)
		return false;
	struct tcp_pcb *next = pcb->next, *head = tcp_active_pcbs;
	prev->next = next;
	struct slot *r;
	if (next && (r = record_of(next)))
		r->prev = prev;
	pcb->next = head;
	if ((r = record_of(head)))
		r->prev = pcb;
	s->prev = NULL;
	tcp_active_pcbs = pcb;
	index_.stats.moved++;
	return true;
}

void net_pcb_index_front(const uint8_t *ip, uint32_t len)
{
	if (len < 20 || ip[0] >> 4 != 4 || ip[9] != IP_PROTO_TCP)
		return;
	uint32_t ihl = (ip[0] & 0x0fu) * 4u;
	if (ihl < 20 || len < ihl + 20 || ((ip[6] & 0x3fu) | ip[7]))
		return;         /* short, or a fragment: lwIP reassembles first */
	uint32_t remote_ip, local_ip;
	memcpy(&remote_ip, ip + 12, 4);
	memcpy(&local_ip, ip + 16, 4);
	const uint8_t *t = ip + ihl;
	uint32_t ports = (uint32_t)(t[2] << 8 | t[3]) << 16 | (uint32_t)(t[0] << 8 | t[1]);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (index_.dirty)
			rebuild();
		else if (tcp_active_pcbs && !tcp_ext_arg_get(tcp_active_pcbs, index_.ext_id))
			absorb_new();
		struct slot *s = find(local_ip, remote_ip, ports);
		if (s->generation != index_.generation) {
			index_.stats.unknown++;
			return;
		}
		if (move_to_front(s))
			return;
		index_.stats.stale++;
		index_.dirty = true;
	}
}

void net_pcb_index_get_stats(struct net_pcb_index_stats *out)
{
	*out = index_.stats;
}
