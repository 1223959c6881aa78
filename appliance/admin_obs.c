/* The observer: see admin_obs.h. */
#include "appliance/admin_obs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"

#include "appliance/accesslog.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include "appliance/proxy_conn.h"
#include "appliance/strjoin.h"

struct admin_obs *admin_obs_create(proxy_log_fn log, void *log_arg)
{
	struct admin_obs *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	metrics_init(&o->metrics);
	o->log = log;
	o->log_arg = log_arg;
	return o;
}

void admin_obs_configure(struct admin_obs *o, const struct config *cfg)
{
	const struct config_accesslog *l = &cfg->access_log;
	/* The access log is always this module's format; spec.accessLog only
	 * chooses where it goes (console by default, and/or syslog). With
	 * neither, no line is made (the log was 0.2 of the 10.6 us of a
	 * keep-alive request's CPU in the benchmark). */
	o->to_console = !l->configured || l->console;
	o->to_syslog = l->configured && l->syslog;
	o->takes_log = o->to_console || o->to_syslog;
	o->syslog_ip = l->syslog_ip;
	o->syslog_port = l->syslog_port;
	snprintf(o->hostname, sizeof o->hostname, "%s", cfg->name[0] ? cfg->name : "meshgate");
	if (o->to_syslog && !o->udp)
		o->udp = udp_new_ip_type(IPADDR_TYPE_V4);
	if (!o->to_syslog && o->udp) {
		udp_remove(o->udp);
		o->udp = NULL;
	}
}

void admin_obs_destroy(struct admin_obs *o)
{
	if (!o)
		return;
	if (o->udp)
		udp_remove(o->udp);
	free(o);
}

static struct admin_obs *obs_of(const struct conn *c)
{
	return c && c->proxy ? c->proxy->opt.obs : NULL;
}

const char *admin_obs_suite_name(unsigned suite)
{
	switch (suite) {
	case 0xC02B: return "ECDHE-ECDSA-AES128-GCM-SHA256";
	case 0xC02C: return "ECDHE-ECDSA-AES256-GCM-SHA384";
	case 0xC02F: return "ECDHE-RSA-AES128-GCM-SHA256";
	case 0xC030: return "ECDHE-RSA-AES256-GCM-SHA384";
	case 0xCCA9: return "ECDHE-ECDSA-CHACHA20-POLY1305";
	case 0xCCA8: return "ECDHE-RSA-CHACHA20-POLY1305";
	default: return NULL;
	}
}

/* ------------------------------------------------------------ labels */

struct conn_labels {
	char principal[METRICS_PRINCIPAL_MAX];      /* spiffe://... */
	char source_ns[METRICS_NAME_MAX];
	struct metrics_labels l;
};

static const struct config_service *conn_service(const struct conn *c)
{
	const struct config *cfg = c->proxy->cfg;
	return c->service >= 0 && c->service < cfg->nservices ? &cfg->services[c->service] : NULL;
}

/* Istio labels from the connection: source_workload_namespace is the NS of
 * a /ns/NS/sa/SA SPIFFE path ("unknown" otherwise). */
static void conn_labels(const struct conn *c, struct conn_labels *out, uint16_t code)
{
	memset(out, 0, sizeof *out);
	if (c->principal[0]) {
		str_join(out->principal, sizeof out->principal, "spiffe://", c->principal, NULL);
		const char *ns = strstr(c->principal, "/ns/");
		if (ns) {
			ns += 4;
			size_t n = strcspn(ns, "/");
			if (n < sizeof out->source_ns && !strncmp(ns + n, "/sa/", 4)) {
				memcpy(out->source_ns, ns, n);
				out->source_ns[n] = 0;
			}
		}
	}
	const struct config_service *s = conn_service(c);
	out->l.source_principal = out->principal[0] ? out->principal : NULL;
	out->l.source_namespace = out->source_ns[0] ? out->source_ns : NULL;
	out->l.destination_service = s ? s->name : NULL;
	out->l.destination_namespace = s ? s->namespace_ : NULL;
	out->l.mutual_tls = c->principal[0] != 0;
	out->l.response_code = code;
}

/* ------------------------------------------------------------ counters */

void admin_obs_refusal(struct admin_obs *o, enum proxy_reason why)
{
	if (o)
		metrics_refusal(&o->metrics, proxy_reason_name(why));
}

void admin_obs_opened(struct conn *c)
{
	struct admin_obs *o = obs_of(c);
	if (!o)
		return;
	metrics_tls_handshake(&o->metrics, "ok");
	struct conn_labels cl;
	conn_labels(c, &cl, 0);
	metrics_tcp_opened(&o->metrics, metrics_tcp_series(&o->metrics, &cl.l));
}

static void event_add(struct admin_obs *o, const struct conn *c, bool enforced)
{
	struct admin_obs_event *e = &o->events[o->next_event];
	o->next_event = (o->next_event + 1) % ADMIN_OBS_EVENTS;
	if (o->nevents < ADMIN_OBS_EVENTS)
		o->nevents++;
	memset(e, 0, sizeof *e);
	const struct policy_decision *d = &c->decision;
	e->at_ms = c->proxy->now_ms;
	e->enforced_deny = enforced;
	e->dry_run_deny = d->dry_run_action == POLICY_DENY;
	snprintf(e->principal, sizeof e->principal, "%s", c->principal);
	const struct config_service *s = conn_service(c);
	if (s)
		snprintf(e->service, sizeof e->service, "%s/%s", s->namespace_, s->name);
	snprintf(e->method, sizeof e->method, "%s", c->listener && c->listener->cfg.protocol ==
		 CONFIG_PROTOCOL_HTTP ? c->http.method : "");
	snprintf(e->path, sizeof e->path, "%s", c->listener && c->listener->cfg.protocol ==
		 CONFIG_PROTOCOL_HTTP ? c->http.path : "");
	if (enforced && d->policy_name[0])
		snprintf(e->policy, sizeof e->policy, "%s/%s", d->policy_namespace, d->policy_name);
	else if (!enforced && d->dry_run_name[0])
		snprintf(e->policy, sizeof e->policy, "%s/%s", d->dry_run_namespace, d->dry_run_name);
	else if (enforced)
		snprintf(e->policy, sizeof e->policy, "(no ALLOW policy matched)");
}

void admin_obs_decision(struct conn *c)
{
	struct admin_obs *o = obs_of(c);
	if (!o)
		return;
	metrics_policy_decision(&o->metrics, &c->decision);
	if (c->decision.action == POLICY_DENY)
		event_add(o, c, true);
	if (c->decision.dry_run_matched)
		event_add(o, c, false);
}

unsigned admin_obs_event_count(const struct admin_obs *o) { return o->nevents; }

const struct admin_obs_event *admin_obs_event_at(const struct admin_obs *o, unsigned i)
{
	if (i >= o->nevents)
		return NULL;
	return &o->events[(o->next_event + ADMIN_OBS_EVENTS - 1 - i) % ADMIN_OBS_EVENTS];
}

/* ------------------------------------------------------------ access log */

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void syslog_send(struct admin_obs *o, uint64_t t_us, const char *line, size_t n)
{
	static char dgram[ACCESSLOG_SYSLOG_MAX];   /* the run loop is single-threaded */
	struct accesslog_syslog hdr = {
		.facility = 16, .severity = 6, .hostname = o->hostname, .app_name = "meshgate",
		.procid = NULL, .msgid = "access",
	};
	size_t d = accesslog_syslog_frame(&hdr, t_us, line, n, dgram, sizeof dgram);
	if (!d || d > 0xffff || !o->udp) {
		o->counters.syslog_dropped++;
		return;
	}
	struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)d, PBUF_RAM);
	if (!p) {
		o->counters.syslog_dropped++;
		return;
	}
	pbuf_take(p, dgram, (u16_t)d);
	ip_addr_t to;
	ip_addr_set_ip4_u32(&to, o->syslog_ip);
	if (udp_sendto(o->udp, p, &to, o->syslog_port) == ERR_OK)
		o->counters.syslog_sent++;
	else
		o->counters.syslog_dropped++;
	pbuf_free(p);
}

static void emit(struct admin_obs *o, struct accesslog_entry *e, uint64_t now_us)
{
	static char line[ACCESSLOG_LINE_MAX];
	size_t n = accesslog_format(e, line, sizeof line);
	if (!n)
		return;
	o->counters.log_lines++;
	if (o->to_console && o->log) {
		/* the console callback takes a line without the newline */
		line[n - 1] = 0;
		o->log(o->log_arg, line);
		line[n - 1] = '\n';
	}
	if (o->to_syslog)
		syslog_send(o, now_us, line, n);
}

static void entry_common(const struct conn *c, struct accesslog_entry *e, char *id, size_t idcap)
{
	const struct config_service *s = conn_service(c);
	e->peer_ip = c->peer_ip;
	e->peer_port = c->peer_port;
	e->listener = c->listener ? c->listener->cfg.name : NULL;
	if (c->principal[0]) {
		str_join(id, idcap, "spiffe://", c->principal, NULL);
		e->spiffe_id = id;
	}
	e->service = s ? s->name : NULL;
	e->service_namespace = s ? s->namespace_ : NULL;
	unsigned suite = c->plain ? 0 : tls_conn_cipher_suite(&c->tls);
	if (suite) {
		e->tls_version = "TLSv1.2";
		e->tls_suite = admin_obs_suite_name(suite);
	}
}

/* The request series for this connection's labels and `code`, looked up
 * again only when the status or the configuration changed (building the
 * labels and hashing them was ~1.5% of the CPU per keep-alive request).
 * The overflow series is not kept: each request there is counted as one. */
static int request_series(struct admin_obs *o, struct conn *c, uint16_t code)
{
	unsigned gen = c->proxy->cfg_generation;
	if (c->mreq_generation == gen && c->mreq_code == code)
		return c->mreq_series;
	struct conn_labels cl;
	conn_labels(c, &cl, code);
	int series = metrics_request_series(&o->metrics, &cl.l);
	if (series != METRICS_OVERFLOW) {
		c->mreq_series = series;
		c->mreq_code = code;
		c->mreq_generation = gen;
	}
	return series;
}

bool admin_obs_request(struct conn *c)
{
	struct admin_obs *o = obs_of(c);
	if (!o)
		return false;
	uint32_t dur_ms = c->proxy->now_ms - c->http.started_ms;
	metrics_request_observe(&o->metrics, request_series(o, c, (uint16_t)c->http.status),
				(uint64_t)dur_ms * 1000u);
	if (!o->takes_log)
		return false;
	char id[METRICS_PRINCIPAL_MAX + 16];
	uint64_t now = wall_us();
	struct accesslog_entry e = {
		.kind = ACCESSLOG_REQUEST,
		.time_unix_us = now - (uint64_t)dur_ms * 1000u,
		.method = c->http.method,
		.path = c->http.path,
		.path_len = strlen(c->http.path),
		.response_code = (int)c->http.status,
		.decision = c->decided ? &c->decision : NULL,
		.bytes_received = c->http.req_bytes,
		.bytes_sent = c->http.resp_bytes,
		.duration_us = (uint64_t)dur_ms * 1000u,
	};
	entry_common(c, &e, id, sizeof id);
	emit(o, &e, now);
	return true;
}

bool admin_obs_closed(struct conn *c)
{
	struct admin_obs *o = obs_of(c);
	if (!o)
		return false;
	const char *refusal = NULL;
	if (c->state == CONN_HANDSHAKE) {
		const char *result = c->tls_failed ? tls_error_name(c->tls_error)
			: c->reason == PROXY_REASON_HANDSHAKE_TIMEOUT ? "timeout" : "incomplete";
		metrics_tls_handshake(&o->metrics, result);
		refusal = c->tls_failed ? result : NULL;
	} else if (c->state == CONN_OPEN) {
		struct conn_labels cl;
		conn_labels(c, &cl, 0);
		int series = metrics_tcp_series(&o->metrics, &cl.l);
		metrics_tcp_closed(&o->metrics, series);
		metrics_tcp_bytes(&o->metrics, series, c->bytes_to_down, c->bytes_from_down);
	}
	if (!o->takes_log)
		return false;
	if (!refusal && c->reason != PROXY_REASON_NONE)
		refusal = proxy_reason_name(c->reason);
	char id[METRICS_PRINCIPAL_MAX + 16];
	uint64_t now = wall_us();
	uint32_t dur_ms = c->proxy->now_ms - c->started_ms;
	struct accesslog_entry e = {
		.kind = ACCESSLOG_CONNECTION,
		.time_unix_us = now - (uint64_t)dur_ms * 1000u,
		.decision = c->decided ? &c->decision : NULL,
		.refusal = refusal,
		.bytes_received = c->bytes_from_down,
		.bytes_sent = c->bytes_to_down,
		.duration_us = (uint64_t)dur_ms * 1000u,
	};
	entry_common(c, &e, id, sizeof id);
	emit(o, &e, now);
	return true;
}
