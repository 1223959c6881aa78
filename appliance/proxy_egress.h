/* The egress splice: inside machines' TLS connections to declared hosts are
 * read up to the ClientHello's server name (egress_sni_peek, nothing is
 * terminated), decided by the egress engine (appliance/egress.h), and
 * spliced byte for byte to the host's address through whichever port lwIP
 * routes it to. Refusals reset the connection; every connection is logged
 * with its source, server name, destination, bytes and decision.
 *
 * lwIP raw API; callbacks only move bytes and set flags, egress_proxy_poll
 * (every loop iteration) closes and frees. The connection pool and its
 * ClientHello buffers are allocated in egress_proxy_new and never grow: an
 * empty pool refuses (counted).
 *
 * Upstream address: an endpoint IP of the ServiceEntry (STATIC, or DNS with
 * IP endpoints), else a /32 in its `addresses`. Resolving names through the
 * upstream resolver is not implemented yet: such a connection is refused
 * with reason "no-upstream-address". */
#ifndef MESHGATE_PROXY_EGRESS_H
#define MESHGATE_PROXY_EGRESS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct egress;
struct net_if;
struct egress_proxy;

#define EGRESS_PROXY_PEEK_MAX (16384 + 4096)  /* ClientHello + record headers */
#define EGRESS_PROXY_PEEK_TIMEOUT_MS 10000u
/* resolution: DNS ServiceEntries: meshgate resolves the host itself through
 * spec.egress.dns.upstream (A records, answers cached for their TTL). */
#define EGRESS_RESOLVE_CACHE 64             /* hosts remembered */
#define EGRESS_RESOLVE_PENDING 32           /* queries in flight */
#define EGRESS_RESOLVE_TIMEOUT_MS 3000u
#define EGRESS_RESOLVE_MIN_TTL_S 5u         /* floor and ceiling on cached TTLs */
#define EGRESS_RESOLVE_MAX_TTL_S 3600u

typedef void (*egress_proxy_log_fn)(void *arg, const char *line);

struct egress_proxy_counters {
	uint64_t accepted, spliced, refused, pool_empty, peek_timeout, no_upstream, connect_failed;
	uint64_t policy_denied;     /* an AuthorizationPolicy refused it */
	uint64_t allowed_any;       /* ALLOW_ANY: spliced to an undeclared destination */
	uint64_t resolve_queries, resolve_cached, resolve_failed;   /* resolution: DNS */
	uint64_t revoked;           /* open splices a reload no longer allows */
	uint64_t bytes_out, bytes_in;
};

struct egress_proxy *egress_proxy_new(unsigned max_conns, egress_proxy_log_fn log, void *log_arg);
/* (Re)opens the listeners for cfg (ServiceEntry port numbers on the inside
 * ports) and decides new connections with `engine` from now on; open
 * connections carry on. Returns 0, or -1 with err (listeners that could
 * not open). */
int egress_proxy_apply(struct egress_proxy *ep, const struct config *cfg, struct egress *engine,
		       char *err, size_t errlen);
void egress_proxy_poll(struct egress_proxy *ep, uint32_t now_ms);
/* Where a connection accepted on the port's own address was really going
 * (an address of spec.egress.addressRange rewritten on the way in), 0 =
 * to the port's address itself. Network order. */
typedef uint32_t (*egress_orig_dst_fn)(void *arg, uint32_t client_be, uint16_t client_port,
				       uint16_t local_port);
void egress_proxy_set_orig_dst(struct egress_proxy *ep, egress_orig_dst_fn fn, void *arg);
const struct egress_proxy_counters *egress_proxy_counters(const struct egress_proxy *ep);
/* Whether a splice listener takes TCP port `port` (host order). */
bool egress_proxy_listens(const struct egress_proxy *ep, uint16_t port);
void egress_proxy_free(struct egress_proxy *ep);    /* aborts what is open */

#endif
