/* The appliance's observer: what the proxy reports as traffic flows, kept
 * for the admin console and /metrics, and written to the access log.
 *
 *   - struct metrics (metrics.h): Istio request/tcp series, refusals by
 *     reason, policy decisions by policy/action/dry-run, TLS handshakes by
 *     result. istio_tcp_* count every connection whose handshake completed
 *     (ztunnel-style: http listeners too); istio_requests_* every HTTP
 *     request with its response code.
 *   - the recent-events ring: the last ADMIN_OBS_EVENTS enforced denials and
 *     dry-run hits, for the dashboard.
 *   - the access log (accesslog.h format) when spec.accessLog is set: one
 *     JSON line per connection and per request, to the console (the
 *     proxy's log callback) and/or as RFC 5424 datagrams over lwIP UDP to
 *     spec.accessLog.syslog. Without spec.accessLog the proxy keeps its own
 *     lines (the hooks below return false).
 *
 * The proxy calls the hooks (one line each in proxy.c / proxy_http.c);
 * every hook accepts a proxy without an observer (opt.obs NULL) and does
 * nothing then. Nothing here allocates after admin_obs_create(); a syslog
 * datagram takes one lwIP pbuf and is dropped (and counted) when the pool
 * is empty. */
#ifndef MESHGATE_ADMIN_OBS_H
#define MESHGATE_ADMIN_OBS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/metrics.h"
#include "appliance/proxy.h"

struct conn;
struct config;
struct udp_pcb;

#define ADMIN_OBS_EVENTS 64

struct admin_obs_event {
	uint32_t at_ms;
	bool enforced_deny;             /* else a dry-run hit */
	bool dry_run_deny;              /* what the dry-run policy would have done */
	char principal[METRICS_PRINCIPAL_MAX];      /* without spiffe:// ; "" = none */
	char service[2 * METRICS_NAME_MAX];         /* ns/name */
	char method[16];
	char path[128];
	char policy[METRICS_POLICY_MAX];            /* deciding (or dry-run) policy */
};

struct admin_obs_counters {
	uint64_t log_lines, syslog_sent, syslog_dropped;
};

struct admin_obs {
	struct metrics metrics;
	struct admin_obs_event events[ADMIN_OBS_EVENTS];
	unsigned nevents, next_event;
	/* access log */
	bool takes_log, to_console, to_syslog;
	proxy_log_fn log;
	void *log_arg;
	struct udp_pcb *udp;
	uint32_t syslog_ip;             /* network order */
	uint16_t syslog_port;
	char hostname[64];
	struct admin_obs_counters counters;
};

/* Allocates (boot) and initialises; log/log_arg print one console line. */
struct admin_obs *admin_obs_create(proxy_log_fn log, void *log_arg);
/* Boot and reload: access-log settings (spec.accessLog, metadata.name). */
void admin_obs_configure(struct admin_obs *o, const struct config *cfg);
void admin_obs_destroy(struct admin_obs *o);

/* ---- proxy hooks ---- */
void admin_obs_refusal(struct admin_obs *o, enum proxy_reason why);
void admin_obs_opened(struct conn *c);          /* handshake completed */
void admin_obs_decision(struct conn *c);        /* after policy_evaluate */
/* A request finished (response complete or answered locally). True when the
 * observer wrote the access-log line (the proxy then skips its own). */
bool admin_obs_request(struct conn *c);
/* The connection is being freed. True likewise. */
bool admin_obs_closed(struct conn *c);

/* Recent events, newest first: i = 0 .. count-1. */
unsigned admin_obs_event_count(const struct admin_obs *o);
const struct admin_obs_event *admin_obs_event_at(const struct admin_obs *o, unsigned i);

/* "ECDHE-ECDSA-AES128-GCM-SHA256" etc. for a TLS 1.2 suite id, NULL if unknown. */
const char *admin_obs_suite_name(unsigned suite);

#endif
