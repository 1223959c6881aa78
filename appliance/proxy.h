/* The proxy: mTLS listeners on lwIP, identity → policy → upstream.
 *
 * One `struct proxy` per appliance, driven by the run loop:
 *   proxy_start()  once after the ports and lwIP interfaces are up;
 *   proxy_poll()   every loop iteration, after received frames went to lwIP
 *                  (lwIP callbacks only queue work; proxy_poll does it, so no
 *                  connection is ever freed under an lwIP callback);
 *   proxy_apply()  on reload, between iterations: swaps in a new config and
 *                  credentials and re-evaluates every open connection (those
 *                  now denied are closed and counted);
 *   proxy_stop()   at shutdown.
 *
 * Memory: the connection pool (config limits.maxConnections) is allocated in
 * proxy_start and never grows; an empty pool refuses new connections with a
 * counted reason. Connection state, TLS buffers and HTTP parsers live in the
 * pool entries. */
#ifndef MESHGATE_PROXY_H
#define MESHGATE_PROXY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct tls_credentials;
struct proxy;
struct net_if;
struct admin_obs;

/* Why a connection or request was refused or ended badly. Stable names
 * (proxy_reason_name) are used as counter and log labels. */
enum proxy_reason {
	PROXY_REASON_NONE = 0,
	PROXY_REASON_POOL_EXHAUSTED,
	PROXY_REASON_DRAINING,
	PROXY_REASON_TLS_HANDSHAKE,     /* detail in the TLS error counters */
	PROXY_REASON_HANDSHAKE_TIMEOUT,
	PROXY_REASON_POLICY_DENIED,
	PROXY_REASON_POLICY_REVOKED,    /* closed by a reload */
	PROXY_REASON_UPSTREAM_CONNECT,
	PROXY_REASON_UPSTREAM_RESET,
	PROXY_REASON_DOWNSTREAM_RESET,
	PROXY_REASON_IDLE_TIMEOUT,
	PROXY_REASON_HTTP_BAD_REQUEST,
	PROXY_REASON_HTTP_HEAD_TOO_LARGE,
	PROXY_REASON_HTTP_BAD_RESPONSE,
	PROXY_REASON_NO_MEMORY,         /* lwIP refused a pcb or buffer */
	PROXY_REASON_COUNT
};
const char *proxy_reason_name(enum proxy_reason r);

#define PROXY_TLS_ERRORS 40   /* >= TLS_ERR_COUNT, checked in proxy.c */

struct proxy_counters {
	uint64_t accepted;
	uint64_t closed;
	uint64_t refused[PROXY_REASON_COUNT];
	uint64_t tls_handshakes_ok;
	uint64_t plaintext_accepted;    /* PeerAuthentication PERMISSIVE/DISABLE */
	uint64_t tls_errors[PROXY_TLS_ERRORS];   /* indexed by enum tls_error */
	uint64_t policy_allow, policy_deny;
	uint64_t dry_run_would_allow, dry_run_would_deny;
	uint64_t requests;
	uint64_t bytes_from_downstream, bytes_to_downstream;   /* plaintext */
	uint64_t bytes_from_upstream, bytes_to_upstream;
	uint64_t delayed_acks;          /* ACKs sent by the delayed-ACK timer */
};

/* One line per connection / request for the operator (JSON). */
typedef void (*proxy_log_fn)(void *arg, const char *line);

struct proxy_options {
	proxy_log_fn log;
	void *log_arg;
	struct admin_obs *obs;      /* metrics + access log (admin_obs.h), may be NULL */
};

/* Allocates the proxy and its pools from `cfg` (limits), and opens one lwIP
 * listener per config listener on the interface of its port (`ifs` is
 * indexed like cfg->ports). `cfg` and `creds` stay owned by the caller and
 * must outlive the proxy or be replaced through proxy_apply. Returns NULL with
 * `err` filled. */
struct proxy *proxy_start(const struct config *cfg, const struct tls_credentials *creds,
			  struct net_if *const *ifs, const struct proxy_options *opt,
			  char *err, size_t errlen);

void proxy_poll(struct proxy *p, uint32_t now_ms);

/* Swaps configuration (policies, services, credentials, listeners).
 * Ports must be unchanged (checked by the caller). Returns the number of open
 * connections closed because the new policy denies them, or -1 with `err`. */
int proxy_apply(struct proxy *p, const struct config *cfg, const struct tls_credentials *creds,
		char *err, size_t errlen);

/* Stop accepting; open connections finish. proxy_active() reaches 0. */
void proxy_drain(struct proxy *p);
unsigned proxy_active(const struct proxy *p);
unsigned proxy_pool_size(const struct proxy *p);
const struct proxy_counters *proxy_counters(const struct proxy *p);

/* Calls fn once per open connection with a one-line description. */
void proxy_foreach_connection(const struct proxy *p, uint32_t now_ms,
			      void (*fn)(void *arg, const char *line), void *arg);

void proxy_stop(struct proxy *p);

#endif
