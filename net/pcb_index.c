/* The active-pcb index: see net/pcb_index.h.
 *
 * Invariant: a pcb's ext-arg data is NULL (not indexed), &index_.seen_only
 * (its four-tuple belongs to another indexed pcb), or its own slot, whose
 * pcb field is that pcb. Every pcb that may hold a slot is on
 * tcp_active_pcbs or tcp_tw_pcbs (rebuild() clears the TIME-WAIT ones'),
 * so a destroy callback's data is the freed pcb's own slot. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "net/pcb_index.h"

/* Twice the pcb pool, so linear probing stays short: live pcbs fill at most
 * half, freed ones' slots (tombstones) another quarter before a rebuild. */
#define INDEX_SLOTS (2u * MEMP_NUM_TCP_PCB)
#define INDEX_MAX_TOMBSTONES (INDEX_SLOTS / 4)
/* Local ports net_pcb_index_connect chooses from: lwIP's own range (the
 * IANA dynamic ports, tcp.c's TCP_LOCAL_PORT_RANGE_*, private to it). */
#define PORT_FIRST 0xc000u
#define PORT_END 0xffffu        /* excluded, as lwIP does */
_Static_assert((INDEX_SLOTS & (INDEX_SLOTS - 1)) == 0, "INDEX_SLOTS must be a power of two");

struct slot {
	uint32_t generation;            /* != index_.generation: empty */
	uint32_t local_ip, remote_ip;   /* network byte order, as lwIP keeps them */
	uint32_t ports;                 /* local << 16 | remote, host order */
	struct tcp_pcb *pcb;            /* NULL: a tombstone (the pcb was freed) */
	struct tcp_pcb *prev;           /* predecessor in tcp_active_pcbs; NULL: head */
	bool time_wait;                 /* pcb is on tcp_tw_pcbs, counted in index_.time_wait */
};

static struct {
	struct slot slots[INDEX_SLOTS];
	uint32_t generation;            /* bumped by each rebuild; 0 never used */
	uint32_t seed;                  /* so remote peers cannot aim at one chain */
	uint32_t tombstones;
	bool need_rebuild;
	/* tcp_active_pcbs while a segment of no active connection is with lwIP
	 * (net_pcb_index_front .. net_pcb_index_after) */
	struct tcp_pcb *hidden;
	bool hiding;
	/* the pcb the current segment went to (net_pcb_index_after looks at it) */
	struct slot *fronted;
	uint32_t time_wait;             /* indexed pcbs on tcp_tw_pcbs */
	uint16_t next_port;             /* net_pcb_index_connect's cursor */
	char seen_only;                 /* ext-arg data of a pcb seen but not indexed */
	u8_t ext_id;
	struct net_pcb_index_stats stats;
} index_;

/* The pcb's slot, or NULL when it is not indexed. */
static struct slot *record_of(struct tcp_pcb *pcb)
{
	struct slot *s = tcp_ext_arg_get(pcb, index_.ext_id);
	if (!s || (void *)s == &index_.seen_only)
		return NULL;
	return s->generation == index_.generation && s->pcb == pcb ? s : NULL;
}

static void tombstone(struct slot *s)
{
	s->pcb = NULL;
	if (++index_.tombstones > INDEX_MAX_TOMBSTONES)
		index_.need_rebuild = true;
}

/* A pcb is being freed (lwIP has taken it off its list). Its successor's
 * record named it as predecessor: name its own predecessor instead, which
 * now points at that successor. */
static void on_destroyed(u8_t id, void *data)
{
	struct slot *s = data;
	if (!s || (void *)s == &index_.seen_only || s->generation != index_.generation || !s->pcb)
		return;
	struct tcp_pcb *gone = s->pcb, *prev = s->prev;
	if (s->time_wait) {
		index_.time_wait--;
		tombstone(s);
		return;
	}
	struct tcp_pcb *next = prev ? (record_of(prev) ? prev->next : NULL) : tcp_active_pcbs;
	struct slot *r;
	if (next && next != gone && (r = record_of(next)) && r->prev == gone)
		r->prev = prev;
	tombstone(s);
	index_.stats.freed++;
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
	index_.next_port = (uint16_t)(PORT_FIRST + index_.seed % (PORT_END - PORT_FIRST));
	index_.need_rebuild = true;
}

static uint32_t hash(uint32_t local_ip, uint32_t remote_ip, uint32_t ports)
{
	uint64_t h = (uint64_t)(remote_ip ^ index_.seed) * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)(ports + index_.seed) * 0xc2b2ae3d27d4eb4full;
	h ^= (uint64_t)local_ip * 0x165667b19e3779f9ull;
	h ^= h >> 29;
	return (uint32_t)(h >> 32) & (INDEX_SLOTS - 1);
}

static bool same_key(const struct slot *s, uint32_t local_ip, uint32_t remote_ip, uint32_t ports)
{
	return s->local_ip == local_ip && s->remote_ip == remote_ip && s->ports == ports;
}

/* The live slot for the key, or NULL. The table never fills (see
 * INDEX_SLOTS), so every chain ends in an empty slot. */
static struct slot *lookup(uint32_t local_ip, uint32_t remote_ip, uint32_t ports)
{
	for (uint32_t i = hash(local_ip, remote_ip, ports);; i = (i + 1) & (INDEX_SLOTS - 1)) {
		struct slot *s = &index_.slots[i];
		if (s->generation != index_.generation)
			return NULL;
		if (s->pcb && same_key(s, local_ip, remote_ip, ports))
			return s;
	}
}

/* The live slot holding pcb's four-tuple (its own or another's), or NULL. */
static struct slot *lookup_pcb(const struct tcp_pcb *pcb)
{
	return lookup(ip4_addr_get_u32(&pcb->local_ip), ip4_addr_get_u32(&pcb->remote_ip),
		      (uint32_t)pcb->local_port << 16 | pcb->remote_port);
}

/* Indexes pcb, whose predecessor is prev. A pcb whose four-tuple another
 * live pcb already holds (lwIP would find that one first, or it is in
 * TIME-WAIT) is marked seen and left to lwIP's walk. */
static void add(struct tcp_pcb *pcb, struct tcp_pcb *prev)
{
	tcp_ext_arg_set_callbacks(pcb, index_.ext_id, &index_callbacks);
	uint32_t local_ip = ip4_addr_get_u32(&pcb->local_ip), remote_ip = ip4_addr_get_u32(&pcb->remote_ip);
	uint32_t ports = (uint32_t)pcb->local_port << 16 | pcb->remote_port;
	struct slot *free_slot = NULL, *s;
	for (uint32_t i = hash(local_ip, remote_ip, ports);; i = (i + 1) & (INDEX_SLOTS - 1)) {
		s = &index_.slots[i];
		if (s->generation != index_.generation)
			break;
		if (!s->pcb) {
			if (!free_slot)
				free_slot = s;
		} else if (same_key(s, local_ip, remote_ip, ports)) {
			tcp_ext_arg_set(pcb, index_.ext_id, &index_.seen_only);
			return;
		}
	}
	if (free_slot) {
		s = free_slot;
		index_.tombstones--;
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
	if (++index_.generation == 0) {         /* every old slot would look current */
		memset(index_.slots, 0, sizeof index_.slots);
		index_.generation = 1;
	}
	index_.need_rebuild = false;
	index_.tombstones = 0;
	index_.stats.indexed = 0;
	index_.time_wait = 0;
	uint32_t n = 0;
	for (struct tcp_pcb *pcb = tcp_tw_pcbs; pcb && n++ < MEMP_NUM_TCP_PCB; pcb = pcb->next) {
		add(pcb, NULL);
		struct slot *r = record_of(pcb);
		if (r) {
			r->time_wait = true;
			index_.time_wait++;
		}
	}
	n = 0;
	struct tcp_pcb *prev = NULL;
	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb && n++ < MEMP_NUM_TCP_PCB; pcb = pcb->next) {
		add(pcb, prev);
		prev = pcb;
	}
}

/* New pcbs enter at the head of the list (tcp_connect, a passive open):
 * index the run of never-seen pcbs there (none when the head is known). */
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

/* The record's predecessor when it still holds, else the one found by
 * walking the list (recorded). Sets *found false when pcb is not there. */
static struct tcp_pcb *predecessor(struct slot *s, bool *found)
{
	struct tcp_pcb *pcb = s->pcb, *prev = s->prev;
	*found = true;
	/* A live, indexed predecessor that points at it: pcb is in the active
	 * list right after it (a live pcb on the TIME-WAIT list points only at
	 * TIME-WAIT ones, and pcb is not one). */
	if (prev ? record_of(prev) && prev->next == pcb : tcp_active_pcbs == pcb)
		return prev;
	index_.stats.repaired++;
	prev = NULL;
	uint32_t n = 0;
	for (struct tcp_pcb *p = tcp_active_pcbs; p && n++ < MEMP_NUM_TCP_PCB; prev = p, p = p->next)
		if (p == pcb)
			return s->prev = prev;
	*found = false;
	return NULL;
}

/* A SYN (or a segment for TIME-WAIT) of no active connection: lwIP's walk
 * of the active list would find nothing (every pcb on it is indexed: new
 * ones are taken in at the head before any lookup, rebuild() takes all), so
 * the list is taken away until net_pcb_index_after(). lwIP then looks at
 * TIME-WAIT and listening pcbs only; a SYN's new pcb is put on the empty
 * list and kept. Other segments the index has no pcb for (strays) still get
 * lwIP's walk: should the index ever miss a connection, the cost of that
 * is a walk, not a reset of a live connection. */
static void hide(void)
{
	index_.stats.unknown++;
	if (!tcp_active_pcbs)
		return;
	index_.hidden = tcp_active_pcbs;
	index_.hiding = true;
	tcp_active_pcbs = NULL;
}

/* Puts the hidden list back behind any pcbs lwIP created meanwhile. */
static void restore(void)
{
	index_.hiding = false;
	struct tcp_pcb *fresh = tcp_active_pcbs, *tail = fresh;
	if (!fresh) {
		tcp_active_pcbs = index_.hidden;
		return;
	}
	uint32_t n = 0;
	while (tail->next && n++ < MEMP_NUM_TCP_PCB)
		tail = tail->next;
	tail->next = index_.hidden;
	struct slot *r;
	if (index_.hidden && (r = record_of(index_.hidden)))
		r->prev = tail;
}

void net_pcb_index_after(void)
{
	if (index_.hiding)
		restore();
	struct slot *s = index_.fronted;
	index_.fronted = NULL;
	/* The connection went to TIME-WAIT with this segment: it is now the
	 * head of tcp_tw_pcbs. Past the cap it is freed at once (O(1) there),
	 * so that list, which lwIP walks for every new connection, stays short. */
	if (!s || !s->pcb || s->pcb->state != TIME_WAIT || s->time_wait)
		return;
	s->time_wait = true;
	index_.time_wait++;
	index_.stats.time_wait++;
	if (index_.time_wait > NET_TIME_WAIT_MAX && tcp_tw_pcbs == s->pcb) {
		index_.stats.time_wait_freed++;
		tcp_abort(s->pcb);      /* TIME-WAIT: unlinked and freed, nothing sent */
	}
}

void net_pcb_index_front(const uint8_t *ip, uint32_t len)
{
	/* First, for every packet: lwIP's walk for a packet the index does not
	 * see (a reassembled fragment) may put an indexed pcb ahead of new ones,
	 * which are only looked for at the head. */
	if (index_.need_rebuild)
		rebuild();
	else
		absorb_new();
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
	struct slot *s = lookup(local_ip, remote_ip, ports);
	if (!s) {
		if ((t[13] & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN)
			hide();
		else
			index_.stats.unknown++;
		return;
	}
	struct tcp_pcb *pcb = s->pcb;
	if (s->time_wait) {
		hide();                 /* lwIP finds it on tcp_tw_pcbs */
		return;
	}
	if (pcb->state == TIME_WAIT || pcb->state == CLOSED || pcb->state == LISTEN) {
		/* gone to TIME-WAIT unseen (a reassembled segment) */
		tombstone(s);
		tcp_ext_arg_set(pcb, index_.ext_id, NULL);
		index_.stats.unknown++;
		return;
	}
	bool found;
	struct tcp_pcb *prev = predecessor(s, &found);
	if (!found) {
		index_.need_rebuild = true;     /* cannot happen; lwIP walks */
		return;
	}
	index_.fronted = s;
	if (!prev) {
		index_.stats.at_front++;
		return;
	}
	struct tcp_pcb *next = pcb->next, *head = tcp_active_pcbs;
	struct slot *r;
	prev->next = next;
	if (next && (r = record_of(next)))
		r->prev = prev;
	pcb->next = head;
	if ((r = record_of(head)))
		r->prev = pcb;
	s->prev = NULL;
	tcp_active_pcbs = pcb;
	index_.stats.moved++;
}

err_t net_pcb_index_connect(struct tcp_pcb *pcb, const ip_addr_t *ip, u16_t port,
			    tcp_connected_fn connected)
{
	/* The index must know every connection: not while a list is hidden or
	 * a rebuild is due (connect is also called from lwIP's callbacks) */
	if (pcb->local_port || index_.hiding || index_.need_rebuild || pcb->state != CLOSED)
		return tcp_connect(pcb, ip, port, connected);
	absorb_new();
	struct netif *out = pcb->netif_idx != NETIF_NO_INDEX ? netif_get_by_index(pcb->netif_idx)
							    : ip4_route(ip_2_ip4(ip));
	uint32_t local_ip = ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip));
	if (!local_ip && out)
		local_ip = ip4_addr_get_u32(netif_ip4_addr(out));
	if (!local_ip)
		return tcp_connect(pcb, ip, port, connected);   /* lwIP says why */
	uint32_t remote_ip = ip4_addr_get_u32(ip_2_ip4(ip));
	for (int tries = 0; tries < 64; tries++) {
		uint16_t p = index_.next_port++;
		if (index_.next_port == PORT_END)
			index_.next_port = PORT_FIRST;
		if (lookup(local_ip, remote_ip, (uint32_t)p << 16 | port))
			continue;       /* that four-tuple is in use (or in TIME-WAIT) */
		pcb->local_port = p;
		err_t e = tcp_connect(pcb, ip, port, connected);
		if (e != ERR_OK)
			pcb->local_port = 0;
		else
			index_.stats.connects++;
		return e;
	}
	return tcp_connect(pcb, ip, port, connected);
}

unsigned net_pcb_index_audit(void)
{
	unsigned bad = 0;
	uint32_t n = 0;
	for (struct tcp_pcb *p = tcp_active_pcbs; p && n++ < MEMP_NUM_TCP_PCB; p = p->next) {
		void *d = tcp_ext_arg_get(p, index_.ext_id);
		struct slot *s = lookup_pcb(p);
		/* a pcb seen but not indexed: its four-tuple's other holder is */
		if (!d || !s || (d != &index_.seen_only && record_of(p) != s))
			bad++;
	}
	return bad;
}

void net_pcb_index_get_stats(struct net_pcb_index_stats *out)
{
	*out = index_.stats;
}
