/* L3/L4 packet filter: the backstop run on every Ethernet frame before lwIP
 * sees it (ingress) and after lwIP produced it (egress), per port.
 *
 * Semantics (Kubernetes NetworkPolicy, with the appliance as "the pod"):
 *   - A direction of a port is *enforced* when some policy selects that port
 *     for that direction (policyTypes). An unenforced direction passes all.
 *   - On an enforced direction a packet passes when, in this order:
 *       1. it belongs to an established flow (a flow is recorded when a
 *          packet passes the other way and that other direction is enforced
 *          too, or when it passes this way: replies always get through);
 *       2. ingress only: it is addressed to a local service of that port
 *          (the listeners and the DNS responder: proto + destination port,
 *          at the port's own address);
 *       3. an allow rule matches: protocol, destination port range (the
 *          appliance's port on ingress, the remote's on egress), peer CIDR
 *          (source on ingress, destination on egress) and none of its
 *          `except` CIDRs;
 *     and is dropped otherwise (default deny), counted by reason.
 *   - ARP always passes. Other non-IPv4 frames (IPv6, VLAN tags) and IPv4
 *     fragments are dropped on enforced directions; malformed IPv4 headers
 *     likewise. Each drop has its named counter.
 *   - Rule hits are counted per rule *group* (one NetworkPolicy rule expands
 *     to from x ports filter rules sharing a group): the group of the first
 *     matching rule in declaration order is counted.
 *
 * Lookup: per (port, direction) a binary trie on the peer address; each
 * node holds the rules whose CIDR ends there. A packet walks at most 33
 * nodes and checks only the rules on its path, so thousands of rules with
 * distinct CIDRs cost about the same as ten. A node holding many rules
 * (one CIDR, e.g. 0.0.0.0/0, with different ports) is indexed by
 * destination port, so those stay cheap too (tests/bench/filter_bench.c).
 *
 * Memory: filter_new and filter_flows_new allocate (boot / reload time);
 * filter_frame never allocates. A full flow table refuses the new flow and
 * counts it (the packet itself still passes if its rule allowed it).
 * Not thread-safe: one filter per polling core. No DPDK here (net/ builds
 * without it); a DPDK rte_acl classifier would live in drivers/. */
#ifndef MESHGATE_NET_FILTER_H
#define MESHGATE_NET_FILTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FILTER_MAX_PORTS 8
#define FILTER_MAX_EXCEPT 8         /* except CIDRs per ipBlock */
#define FILTER_MAX_RULES 65536      /* expanded rules per filter */
#define FILTER_MAX_LOCAL 512        /* local services (listeners + DNS) */
#define FILTER_PROTO_ANY 0
#define FILTER_PROTO_ICMP 1
#define FILTER_PROTO_TCP 6
#define FILTER_PROTO_UDP 17
/* Flow idle timeouts, ms: TCP as conntrack's established default is too long
 * for a fixed table; 10 min covers keep-alive pools. */
#define FILTER_TIMEOUT_TCP_MS 600000u
#define FILTER_TIMEOUT_UDP_MS 30000u
#define FILTER_TIMEOUT_ICMP_MS 10000u

enum filter_dir { FILTER_INGRESS = 0, FILTER_EGRESS = 1 };

struct filter_cidr {
	uint32_t addr;              /* host byte order, host bits zero */
	uint8_t prefix;             /* 0..32 */
};

struct filter_rule {
	uint8_t port;               /* port index < FILTER_MAX_PORTS */
	uint8_t dir;                /* enum filter_dir */
	uint8_t proto;              /* FILTER_PROTO_*, ANY = all */
	uint8_t nexcept;
	uint16_t port_lo, port_hi;  /* destination ports; 0/0 = any. With
				     * ports set, only TCP/UDP match. */
	struct filter_cidr peer;    /* 0.0.0.0/0 = any */
	struct filter_cidr except[FILTER_MAX_EXCEPT];
	uint32_t group;             /* counter index, < ngroups */
};

struct filter_local {
	uint8_t port;
	uint8_t proto;              /* TCP or UDP */
	uint16_t dport;
};

struct filter_config {
	const struct filter_rule *rules;
	size_t nrules;
	uint32_t ngroups;
	const struct filter_local *locals;
	size_t nlocals;
	unsigned nports;
	bool enforce[FILTER_MAX_PORTS][2];
	uint32_t local_addr[FILTER_MAX_PORTS];  /* host order; 0 = any */
};

enum filter_reason {
	FILTER_PASS_NOT_IP,         /* ARP */
	FILTER_PASS_UNENFORCED,
	FILTER_PASS_FLOW,
	FILTER_PASS_LOCAL,
	FILTER_PASS_RULE,
	FILTER_DROP_DEFAULT,
	FILTER_DROP_NON_IPV4,
	FILTER_DROP_FRAGMENT,
	FILTER_DROP_MALFORMED,
	FILTER_NREASONS
};
const char *filter_reason_name(enum filter_reason r);   /* "default-deny", ... */
static inline bool filter_reason_passes(enum filter_reason r) { return r <= FILTER_PASS_RULE; }

struct filter;
struct filter_flows;

/* Builds a filter. Returns NULL with a message in err on a bad rule (port
 * index, prefix, group, port range) or no memory. The config's arrays are
 * copied. */
struct filter *filter_new(const struct filter_config *cfg, char *err, size_t errlen);
void filter_free(struct filter *f);

/* A flow table for `capacity` flows (rounded up to a power of two, at
 * least 4), hashed with `seed`; kept across filter reloads. */
struct filter_flows *filter_flows_new(uint32_t capacity, uint32_t seed);
void filter_flows_free(struct filter_flows *fl);
struct filter_flows_stats { uint64_t inserted, full, active_hint; uint32_t capacity; };
void filter_flows_stats(const struct filter_flows *fl, struct filter_flows_stats *out);

/* Judges one frame of `port` going `dir` at now_ms; updates the flow table
 * (may be NULL: no flows) and the counters. */
enum filter_reason filter_frame(struct filter *f, struct filter_flows *fl, unsigned port,
				enum filter_dir dir, const uint8_t *frame, size_t len,
				uint32_t now_ms);

/* The same when only the first head_len bytes of a wire_len-byte frame are
 * at hand (a pbuf chain's first buffer: headers are read from head, lengths
 * are checked against wire_len). */
enum filter_reason filter_frame_head(struct filter *f, struct filter_flows *fl, unsigned port,
				     enum filter_dir dir, const uint8_t *head, size_t head_len,
				     size_t wire_len, uint32_t now_ms);

/* The rule engine alone: index of the first rule (declaration order) that
 * allows proto/peer/dport on port+dir, or -1. For tests and benchmarks. */
long filter_match(const struct filter *f, unsigned port, enum filter_dir dir, uint8_t proto,
		  uint32_t peer, uint16_t dport);

/* Counters since filter_new. */
uint64_t filter_count(const struct filter *f, unsigned port, enum filter_dir dir,
		      enum filter_reason r);
uint64_t filter_group_hits(const struct filter *f, uint32_t group);
uint32_t filter_ngroups(const struct filter *f);

#endif
