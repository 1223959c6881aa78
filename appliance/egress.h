/* Egress gateway: what inside machines may reach outside, decided from
 * Istio ServiceEntry documents and the Appliance's `spec.egress` section.
 *
 * Two layers:
 *   - struct egress_config: the parsed configuration (config_egress.c fills
 *     it while config_load runs; it also carries the `networkPolicies`
 *     section as packet-filter rules, net/filter.h). Plain data, owned by
 *     struct config (config->egress), freed by config_free.
 *   - struct egress: the engine built from it (egress_new) for the data
 *     path: host index (exact names and `*.suffix` wildcards), stable
 *     address allocation per host from a configured range, decisions for a
 *     new connection (by TLS SNI, HTTP Host, or destination address), the
 *     DNS lookup callback for net/dns.h. No I/O; allocation only in
 *     egress_new (the allocation table is sized there and never grows: a full
 *     table refuses the name and counts it).
 *
 * egress_sni_peek reads the server name from the first bytes of a TLS
 * connection without terminating TLS (the bytes are then spliced as they
 * are). */
#ifndef MESHGATE_EGRESS_H
#define MESHGATE_EGRESS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "appliance/config.h"
#include "net/dns.h"
#include "net/filter.h"

#define EGRESS_MAX_HOST 254         /* 253 characters + NUL (DNS name limit) */
#define EGRESS_MAX_ENTRIES 4096     /* ServiceEntry documents */
#define EGRESS_MAX_ENTRY_HOSTS 64
#define EGRESS_MAX_ENTRY_PORTS 32
#define EGRESS_MAX_ENTRY_ADDRESSES 32
#define EGRESS_MAX_ENTRY_ENDPOINTS 32
#define EGRESS_MAX_POLICIES 1024    /* networkPolicies entries */
#define EGRESS_DEFAULT_ALLOCATIONS 4096
#define EGRESS_DEFAULT_DNS_TTL 30
#define EGRESS_DEFAULT_DNS_RATE 100     /* queries/s per source */
#define EGRESS_DEFAULT_DNS_BURST 200

enum egress_protocol { EGRESS_PROTO_TCP, EGRESS_PROTO_TLS, EGRESS_PROTO_HTTPS, EGRESS_PROTO_HTTP };
enum egress_resolution { EGRESS_RES_NONE, EGRESS_RES_STATIC, EGRESS_RES_DNS, EGRESS_RES_DNS_ROUND_ROBIN };
enum egress_mode { EGRESS_MODE_REGISTRY_ONLY, EGRESS_MODE_ALLOW_ANY };
const char *egress_protocol_name(enum egress_protocol p);

struct egress_port {
	uint16_t number;
	uint16_t target;            /* targetPort, 0 = number */
	enum egress_protocol protocol;
	char name[CONFIG_MAX_NAME];
};

struct egress_endpoint {
	char address[EGRESS_MAX_HOST];  /* IPv4 literal or host name */
	uint32_t ip;                /* network order; 0 when a name */
	struct { char name[CONFIG_MAX_NAME]; uint16_t number; } ports[4];
	int nports;
};

struct egress_entry {
	char name[CONFIG_MAX_NAME], namespace_[CONFIG_MAX_NAME];
	char file[CONFIG_MAX_PATH];
	int line;
	char hosts[EGRESS_MAX_ENTRY_HOSTS][EGRESS_MAX_HOST];    /* lower-case */
	int nhosts;
	struct filter_cidr addresses[EGRESS_MAX_ENTRY_ADDRESSES];      /* host order */
	int naddresses;
	struct egress_port ports[EGRESS_MAX_ENTRY_PORTS];
	int nports;
	bool mesh_internal;         /* location MESH_INTERNAL */
	enum egress_resolution resolution;
	struct egress_endpoint endpoints[EGRESS_MAX_ENTRY_ENDPOINTS];
	int nendpoints;
};

/* One `networkPolicies` rule, for counter names: "POLICY ingress[i]". */
struct egress_policy_group {
	char policy[CONFIG_MAX_NAME];
	uint8_t dir;                /* enum filter_dir */
	int rule;                   /* index in its ingress/egress list; -1 = policy default */
	int line;
};

struct egress_config {
	/* spec.egress */
	char appliance_file[CONFIG_MAX_PATH];  /* for messages */
	bool enabled;
	int inside[CONFIG_MAX_PORTS];       /* indices into config.ports */
	int ninside;
	int outside;                        /* index, -1 = by routing */
	enum egress_mode mode;
	uint32_t range_addr;                /* host order; 0 = answer the inside address */
	uint8_t range_prefix;
	unsigned max_allocations;
	bool dns;                           /* responder on the inside ports */
	uint32_t dns_upstream;              /* network order, 0 = none */
	uint16_t dns_upstream_port;
	enum dns_unknown_answer dns_unknown;
	uint32_t dns_ttl, dns_rate, dns_burst;
	/* ServiceEntry documents */
	struct egress_entry *entries;       /* malloc'd */
	int nentries, cap_entries;
	/* spec.networkPolicies, expanded */
	struct filter_rule *rules;          /* malloc'd */
	size_t nrules, cap_rules;
	struct egress_policy_group *groups; /* malloc'd */
	uint32_t ngroups, cap_groups;
	bool enforce[CONFIG_MAX_PORTS][2];  /* [port][enum filter_dir] */
	int npolicies;
};

/* ---- config hooks (config_egress.c; called from config.c) */
struct ydoc;
typedef struct yaml_node_s yaml_node_t;
/* spec.egress and spec.networkPolicies of the Appliance (after spec.ports). */
void config_egress_parse_appliance(const struct ydoc *d, yaml_node_t *spec, struct config *cfg);
/* One `kind: ServiceEntry` document. */
void config_egress_parse_service_entry(const struct ydoc *d, yaml_node_t *root, struct config *cfg);
/* Cross-document checks once every document is read (errors into errs). */
void config_egress_finish(struct config *cfg, struct config_errors *errs);
void config_egress_free(struct config *cfg);

/* Host name check used for ServiceEntry hosts and SNI: labels of a-z 0-9 '-'
 * (after lower-casing), 1..63 each, 253 in all; `*.` prefix only when
 * allow_wildcard. Lower-cases in place. */
bool egress_host_valid(char *host, bool allow_wildcard);
/* One lower-case DNS label of n bytes: a-z 0-9, '-' inside, 1..63. */
bool egress_label_valid(const char *s, size_t n);

/* ---- SNI peek */
enum egress_sni {
	EGRESS_SNI_FOUND,           /* `out` holds the lower-case server name */
	EGRESS_SNI_NEED_MORE,       /* the ClientHello is not complete yet */
	EGRESS_SNI_NONE,            /* a ClientHello without server_name */
	EGRESS_SNI_NOT_TLS,         /* not a TLS handshake record */
	EGRESS_SNI_MALFORMED,       /* lengths that do not add up, bad name */
	EGRESS_SNI_TOO_BIG,         /* ClientHello larger than EGRESS_SNI_MAX_HELLO */
};
/* The ClientHello may span several TLS records and TCP segments; it is read
 * in place from the first `len` bytes received. */
#define EGRESS_SNI_MAX_HELLO 16384
enum egress_sni egress_sni_peek(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST]);
const char *egress_sni_name(enum egress_sni r);

/* The Host header of a plain HTTP/1.x request head at the start of buf
 * (exactly one Host header, CRLF lines, no obsolete folding; the port is
 * dropped, the name lower-cased and checked like a ServiceEntry host).
 * FOUND / NEED_MORE (head incomplete) / NONE (no Host header) / MALFORMED
 * (not an HTTP/1.x head, several Host headers, bad name) / TOO_BIG (no end
 * of head within EGRESS_SNI_MAX_HELLO bytes). */
enum egress_sni egress_http_host(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST]);

/* ---- the engine */
enum egress_verdict {
	EGRESS_ALLOW,               /* a ServiceEntry allows it */
	EGRESS_ALLOW_ANY,           /* nothing matched; ALLOW_ANY lets it out (logged) */
	EGRESS_DENY_HOST,           /* host not declared */
	EGRESS_DENY_PORT,           /* host declared, not on that port */
	EGRESS_DENY_PROTOCOL,       /* declared port with another protocol */
	EGRESS_DENY_NO_HOST,        /* no SNI / Host and an address no entry declares */
	EGRESS_DENY_FULL,           /* address allocation table full */
};
const char *egress_verdict_name(enum egress_verdict v);

struct egress_decision {
	enum egress_verdict verdict;
	int entry;                  /* index into config entries, -1 none */
	int port;                   /* index into the entry's ports, -1 none */
	char host[EGRESS_MAX_HOST]; /* the host decided on ("" none) */
};

struct egress_counters {
	uint64_t allowed, allowed_any, denied_host, denied_port, denied_protocol, denied_no_host;
	uint64_t alloc_full, allocations;
};

struct egress;

/* Builds the engine for `cfg` (which must outlive it). `old` (may be NULL)
 * is the engine in service: its address allocations are kept, so a host
 * keeps its address across reloads. Returns NULL with err on no memory. */
struct egress *egress_new(const struct egress_config *cfg, const struct egress *old, char *err,
			  size_t errlen);
void egress_free(struct egress *e);

/* Index of the entry declaring `host` (lower-case): exact names first, then
 * the longest `*.suffix`; -1 if none. */
int egress_match_host(const struct egress *e, const char *host);

/* The address answered for a declared host: from the range (allocated on
 * first use, stable afterwards), or `inside_addr_be` when no range is
 * configured. 0 = not declared or the table is full (counted). */
uint32_t egress_address_for(struct egress *e, const char *host, uint32_t inside_addr_be);

/* The host an allocated address stands for, or NULL. addr network order. */
const char *egress_host_for_address(const struct egress *e, uint32_t addr_be);

/* Decides a new inside connection to dst:dport. `host` is the SNI (TLS),
 * Host header (HTTP), or NULL (plain TCP: decided by address). `seen`
 * says which of these the connection is. */
void egress_decide(struct egress *e, enum egress_protocol seen, const char *host,
		   uint32_t dst_be, uint16_t dport, struct egress_decision *out);

/* net/dns.h lookup callback: arg = struct egress_dns_arg. */
struct egress_dns_arg { struct egress *e; uint32_t inside_addr_be; };
bool egress_dns_lookup(void *arg, const char *name, uint32_t *addr_be);

const struct egress_counters *egress_counters(const struct egress *e);

#endif
