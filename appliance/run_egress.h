/* The egress area in the run loop: the packet filter on every frame in
 * (port_poll -> filter -> lwIP) and out (lwIP -> filter -> port), the DNS
 * responder (UDP and TCP 53 on the inside ports, lwIP raw API; in ALLOW_ANY
 * mode unknown names asked over UDP are relayed to spec.egress.dns.upstream,
 * over TCP they get SERVFAIL, counted), the
 * egress engine (ServiceEntry matching, address allocation) and the TLS /
 * HTTP splice (proxy_egress.h).
 *
 * Reload is two-phase so that a failure leaves the running state alone:
 * run_egress_prepare builds everything for a new config (allocates, no
 * lwIP calls); run_egress_commit swaps it in (keeping the flow table and the
 * address allocations) once the rest of the reload succeeded;
 * run_egress_abort drops a prepared state. Binary-only (run*.c). */
#ifndef MESHGATE_RUN_EGRESS_H
#define MESHGATE_RUN_EGRESS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "appliance/console.h"

struct appliance;
struct config;
struct net_if;
struct run_egress;

/* *out = NULL when cfg has neither spec.egress nor spec.networkPolicies. */
int run_egress_prepare(struct appliance *a, const struct config *cfg, struct run_egress **out,
		       char *err, size_t errlen);
/* Must run after the ports are open (binds the DNS pcbs). */
void run_egress_commit(struct appliance *a, struct run_egress *re);
void run_egress_abort(struct run_egress *re);

/* The RX hook: false = the filter dropped the frame. */
bool run_egress_rx(struct appliance *a, struct net_if *nif, const void *frame, size_t len);

/* Counters, one "filter ..." / "filter-rule ..." / "dns ..." / "egress ..."
 * line each. */
void run_egress_report(const struct appliance *a, FILE *out);
/* The egress, DNS and filter counters as Prometheus text (for /metrics);
 * returns the bytes written, 0 when none or they do not fit. */
size_t run_egress_metrics(const struct appliance *a, char *buf, size_t cap);

/* Console command "show egress": run_egress_report on the console. The
 * struct outlives the registry (it lives in struct run_console). */
struct run_egress_console { struct console_command cmd; struct appliance *a; };
enum console_err run_egress_console_register(struct console_registry *reg, struct run_egress_console *ec,
					     struct appliance *a);

/* Every loop iteration: closes finished splices, peek timeouts. */
void run_egress_poll(struct appliance *a, uint32_t now_ms);

/* Prints the report to stdout and releases everything. */
void run_egress_stop(struct appliance *a);

#endif
