/* The admin console in the appliance: see admin_app.h.
 *
 * Transport per admin connection, the proxy's pattern in small (one side
 * only, no upstream):
 *   lwIP recv → rx ring of pbufs → tls_conn_feed → plaintext → http parser
 *   → admin_handle() → response head + body → tls_conn_write → tcp_write.
 * lwIP callbacks only queue pbufs and mark the connection dirty;
 * admin_app_poll() does the work and every close/free. One request at a
 * time per connection; the next one is read once the response is queued. */
#include "appliance/admin_app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "appliance/admin.h"
#include "appliance/admin_obs.h"
#include "appliance/config.h"
#include "appliance/http.h"
#include "appliance/policy.h"
#include "appliance/proxy_conn.h"
#include "net/stack.h"
#include "tls/tls.h"

struct admin_conn {
	bool in_use, dirty;
	struct admin_app *app;
	struct tcp_pcb *pcb;
	struct pbuf *rx[ADMIN_RX_RING];
	unsigned rx_head, rx_count;
	size_t rx_off;
	bool eof, eof_fed, reset, closing, opened;
	uint32_t started_ms, last_ms, close_deadline_ms;
	uint32_t peer_ip;
	uint16_t peer_port;
	/* the request being read */
	bool in_body, too_large, chunked, keep_alive, is_head;
	char method[16];
	char target[1024];
	size_t target_len;
	char cookie[1024];
	bool has_cookie;
	char ctype[128];
	bool has_ctype;
	size_t body_len;
	char *body;                     /* ADMIN_BODY_MAX, from the app's slab */
	/* the response being sent */
	bool responding, close_after;
	char head[1536];
	size_t head_len, head_off;
	const char *resp;
	size_t resp_len, resp_off;
	char *out;                      /* ADMIN_OUT_MAX, from the app's slab */
	struct http_request_parser req;
	char head_buf[HTTP_HEAD_BUF_SIZE(HTTP_DEFAULT_HEAD)];
	struct tls_conn tls;
};

struct admin_app {
	struct admin_app_options opt;
	const struct config *cfg;
	const struct tls_credentials *creds;
	struct proxy *proxy;
	struct admin_obs *obs;
	struct admin admin;
	struct admin_source src;
	struct tcp_pcb *listener;
	int listen_port_index;
	uint16_t listen_port;
	struct admin_conn *conns;
	char *bodies, *outs;
	uint32_t now_ms;
	char base_dir[CONFIG_MAX_PATH];
	uint64_t accepted, pool_refused, tls_failed;
};

static void log_line(struct admin_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(struct admin_app *app, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (app->opt.log)
		app->opt.log(app->opt.log_arg, line);
}

static void ip_text(uint32_t ip_be, char *buf, size_t len)
{
	const uint8_t *b = (const uint8_t *)&ip_be;
	snprintf(buf, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

/* ============================================================ sources */

static const char *iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

static void section_status(struct admin_app *app, struct admin_json *w)
{
	const struct config *cfg = app->cfg;
	const struct proxy_counters *pc = app->proxy ? proxy_counters(app->proxy) : NULL;
	uint64_t refused = 0;
	for (int i = 0; pc && i < PROXY_REASON_COUNT; i++)
		refused += pc->refused[i];
	admin_json_obj(w);
	admin_json_kv_str(w, "name", cfg->name);
	admin_json_kv_str(w, "version", MESHGATE_VERSION);
	admin_json_kv_u64(w, "uptime_s", (app->now_ms - app->opt.started_ms) / 1000u);
	admin_json_kv_u64(w, "generation", app->opt.generation ? app->opt.generation(app->opt.arg) : 1);
	admin_json_kv_str(w, "config", cfg->file0);
	admin_json_kv_u64(w, "policies", policy_set_count(cfg->policies));
	admin_json_kv_u64(w, "connections_active", app->proxy ? proxy_active(app->proxy) : 0);
	admin_json_kv_u64(w, "connections_pool", app->proxy ? proxy_pool_size(app->proxy) : 0);
	admin_json_kv_u64(w, "accepted", pc ? pc->accepted : 0);
	admin_json_kv_u64(w, "closed", pc ? pc->closed : 0);
	admin_json_kv_u64(w, "requests", pc ? pc->requests : 0);
	admin_json_kv_u64(w, "refused_total", refused);
	admin_json_kv_u64(w, "tls_handshakes_ok", pc ? pc->tls_handshakes_ok : 0);
	admin_json_kv_u64(w, "policy_allow", pc ? pc->policy_allow : 0);
	admin_json_kv_u64(w, "policy_deny", pc ? pc->policy_deny : 0);
	admin_json_kv_u64(w, "admin_sessions", admin_sessions_active(&app->admin, app->now_ms));
	admin_json_kv_u64(w, "admin_requests", app->admin.counters.requests);
	admin_json_kv_u64(w, "access_log_lines", app->obs->counters.log_lines);
	admin_json_kv_u64(w, "syslog_sent", app->obs->counters.syslog_sent);
	admin_json_kv_u64(w, "syslog_dropped", app->obs->counters.syslog_dropped);
	if (pc) {
		admin_json_key(w, "refusals");
		admin_json_obj(w);
		for (int i = 1; i < PROXY_REASON_COUNT; i++)
			if (pc->refused[i])
				admin_json_kv_u64(w, proxy_reason_name((enum proxy_reason)i), pc->refused[i]);
		admin_json_end(w);
	}
	admin_json_end(w);
}

static void section_ports(struct admin_app *app, struct admin_json *w)
{
	const struct config *cfg = app->cfg;
	struct metrics_port_sample s[CONFIG_MAX_PORTS];
	int n = app->opt.ports ? app->opt.ports(app->opt.arg, s, CONFIG_MAX_PORTS) : 0;
	admin_json_arr(w);
	for (int i = 0; i < cfg->nports; i++) {
		const struct config_port *p = &cfg->ports[i];
		char addr[40];
		ip_text(p->address, addr, sizeof addr);
		snprintf(addr + strlen(addr), sizeof addr - strlen(addr), "/%u", p->prefix);
		admin_json_obj(w);
		admin_json_kv_str(w, "name", p->name);
		admin_json_kv_str(w, "device", p->device);
		admin_json_kv_str(w, "address", addr);
		if (i < n) {
			admin_json_kv_bool(w, "link_up", s[i].link_up);
			admin_json_kv_u64(w, "rx_packets", s[i].rx_packets);
			admin_json_kv_u64(w, "tx_packets", s[i].tx_packets);
			admin_json_kv_u64(w, "rx_bytes", s[i].rx_bytes);
			admin_json_kv_u64(w, "tx_bytes", s[i].tx_bytes);
			admin_json_kv_u64(w, "rx_dropped", s[i].rx_dropped);
			admin_json_kv_u64(w, "tx_dropped", s[i].tx_dropped);
		}
		admin_json_end(w);
	}
	admin_json_end(w);
}

static void listener_entry(struct admin_json *w, const struct config *cfg, const char *name, int port,
			   uint16_t listen, const char *proto, const char *service)
{
	char addr[40] = "";
	if (port >= 0 && port < cfg->nports) {
		ip_text(cfg->ports[port].address, addr, sizeof addr);
		snprintf(addr + strlen(addr), sizeof addr - strlen(addr), ":%u", listen);
	}
	admin_json_obj(w);
	admin_json_kv_str(w, "name", name);
	admin_json_kv_str(w, "port", port >= 0 && port < cfg->nports ? cfg->ports[port].name : "");
	admin_json_kv_str(w, "address", addr);
	admin_json_kv_str(w, "protocol", proto);
	admin_json_kv_str(w, "service", service);
	admin_json_end(w);
}

static void section_listeners(struct admin_app *app, struct admin_json *w)
{
	const struct config *cfg = app->cfg;
	admin_json_arr(w);
	for (int i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		char svc[2 * CONFIG_MAX_NAME + 2] = "";
		if (l->service >= 0 && l->service < cfg->nservices)
			snprintf(svc, sizeof svc, "%s/%s", cfg->services[l->service].namespace_,
				 cfg->services[l->service].name);
		listener_entry(w, cfg, l->name, l->port, l->listen,
			       l->protocol == CONFIG_PROTOCOL_HTTP ? "http" : "tcp", svc);
	}
	if (cfg->admin.enabled)
		listener_entry(w, cfg, "admin", cfg->admin.port, cfg->admin.listen, "https (admin)",
			       "meshgate admin console");
	admin_json_end(w);
}

static void section_connections(struct admin_app *app, struct admin_json *w)
{
	static const char *const states[] = {"free", "handshake", "open"};
	admin_json_arr(w);
	/* the proxy's own list (proxy_conn.h): read-only, between polls */
	for (const struct conn *c = app->proxy ? app->proxy->active : NULL; c && !w->overflow; c = c->next) {
		const struct config *cfg = app->cfg;
		char peer[40], id[320], svc[2 * CONFIG_MAX_NAME + 2] = "";
		ip_text(c->peer_ip, peer, sizeof peer);
		snprintf(peer + strlen(peer), sizeof peer - strlen(peer), ":%u", c->peer_port);
		snprintf(id, sizeof id, "spiffe://%s", c->principal);
		if (c->service >= 0 && c->service < cfg->nservices)
			snprintf(svc, sizeof svc, "%s/%s", cfg->services[c->service].namespace_,
				 cfg->services[c->service].name);
		admin_json_obj(w);
		admin_json_kv_u64(w, "id", c->id);
		admin_json_kv_str(w, "peer", peer);
		admin_json_kv_str(w, "spiffe_id", c->principal[0] ? id : NULL);
		admin_json_kv_str(w, "listener", c->listener ? c->listener->cfg.name : "");
		admin_json_kv_str(w, "service", svc);
		admin_json_kv_str(w, "state", (unsigned)c->state < 3 ? states[c->state] : "?");
		admin_json_kv_u64(w, "requests", c->requests);
		admin_json_kv_u64(w, "bytes_received", c->bytes_from_down);
		admin_json_kv_u64(w, "bytes_sent", c->bytes_to_down);
		admin_json_kv_u64(w, "age_s", (app->now_ms - c->started_ms) / 1000u);
		admin_json_end(w);
	}
	admin_json_end(w);
}

static void section_policies(struct admin_app *app, struct admin_json *w)
{
	const struct metrics *m = &app->obs->metrics;
	admin_json_arr(w);
	for (int i = 0; i < m->ndecisions; i++) {
		const struct metrics_decision_counter *d = &m->decisions[i];
		admin_json_obj(w);
		admin_json_kv_str(w, "policy", d->policy);
		admin_json_kv_str(w, "action", d->deny ? "deny" : "allow");
		admin_json_kv_bool(w, "dry_run", d->dry_run);
		admin_json_kv_u64(w, "count", d->value);
		admin_json_end(w);
	}
	admin_json_end(w);
}

static void section_events(struct admin_app *app, struct admin_json *w)
{
	admin_json_arr(w);
	for (unsigned i = 0; i < admin_obs_event_count(app->obs); i++) {
		const struct admin_obs_event *e = admin_obs_event_at(app->obs, i);
		char id[METRICS_PRINCIPAL_MAX + 16];
		snprintf(id, sizeof id, "spiffe://%s", e->principal);
		admin_json_obj(w);
		admin_json_kv_str(w, "kind", e->enforced_deny ? "deny"
				  : e->dry_run_deny ? "dry-run: would deny" : "dry-run: would allow");
		admin_json_kv_u64(w, "age_s", (app->now_ms - e->at_ms) / 1000u);
		admin_json_kv_str(w, "spiffe_id", e->principal[0] ? id : NULL);
		admin_json_kv_str(w, "service", e->service);
		admin_json_kv_str(w, "method", e->method[0] ? e->method : NULL);
		admin_json_kv_str(w, "path", e->path[0] ? e->path : NULL);
		admin_json_kv_str(w, "policy", e->policy[0] ? e->policy : NULL);
		admin_json_end(w);
	}
	admin_json_end(w);
}

static void section_certs(struct admin_app *app, struct admin_json *w)
{
	char t[40];
	int64_t now = (int64_t)time(NULL);
	admin_json_arr(w);
	if (app->creds) {
		int64_t na = app->creds->not_after;
		admin_json_obj(w);
		admin_json_kv_str(w, "identity", app->cfg->identity_chain);
		admin_json_kv_str(w, "role", "appliance identity (spec.identity)");
		admin_json_kv_str(w, "not_after", iso_time(na, t, sizeof t));
		admin_json_kv_i64(w, "days_left", (na - now) / 86400);
		admin_json_end(w);
		for (int i = 0; i < app->creds->ndomains; i++) {
			admin_json_obj(w);
			admin_json_kv_str(w, "identity", app->creds->domains[i].roots_path);
			char role[CONFIG_MAX_TRUST_DOMAIN + 32];
			snprintf(role, sizeof role, "trust bundle %s (%zu roots)", app->creds->domains[i].name,
				 app->creds->domains[i].nanchors);
			admin_json_kv_str(w, "role", role);
			admin_json_kv_str(w, "not_after", NULL);
			admin_json_key(w, "days_left");
			admin_json_null(w);
			admin_json_end(w);
		}
	}
	admin_json_end(w);
}

/* identity → service edges from the metrics tables: requests (http) and
 * connections opened (all), summed over response codes. */
#define GRAPH_MAX_EDGES 256
struct graph_edge { const char *source, *ns, *svc; uint64_t requests, connections; };

static struct graph_edge *edge_get(struct graph_edge *e, int *n, const struct metrics_key *k)
{
	const char *src = k->source_principal[0] ? k->source_principal : "unknown";
	for (int i = 0; i < *n; i++)
		if (!strcmp(e[i].source, src) && !strcmp(e[i].ns, k->destination_namespace) &&
		    !strcmp(e[i].svc, k->destination_service))
			return &e[i];
	if (*n >= GRAPH_MAX_EDGES)
		return NULL;
	struct graph_edge *x = &e[(*n)++];
	memset(x, 0, sizeof *x);
	x->source = src;
	x->ns = k->destination_namespace;
	x->svc = k->destination_service;
	return x;
}

static void section_graph(struct admin_app *app, struct admin_json *w)
{
	static struct graph_edge edges[GRAPH_MAX_EDGES];
	int n = 0;
	const struct metrics *m = &app->obs->metrics;
	for (int i = 0; i < m->nreq; i++) {
		struct graph_edge *e = edge_get(edges, &n, &m->req[i].key);
		if (e)
			e->requests += m->req[i].requests;
	}
	for (int i = 0; i < m->ntcp; i++) {
		struct graph_edge *e = edge_get(edges, &n, &m->tcp[i].key);
		if (e)
			e->connections += m->tcp[i].opened;
	}
	admin_json_arr(w);
	for (int i = 0; i < n; i++) {
		char svc[2 * METRICS_NAME_MAX + 2];
		snprintf(svc, sizeof svc, "%s/%s", edges[i].ns, edges[i].svc);
		admin_json_obj(w);
		admin_json_kv_str(w, "source", edges[i].source);
		admin_json_kv_str(w, "service", svc);
		admin_json_kv_u64(w, "requests", edges[i].requests);
		admin_json_kv_u64(w, "connections", edges[i].connections);
		admin_json_end(w);
	}
	admin_json_end(w);
}

static void src_section(void *arg, enum admin_section s, struct admin_json *w)
{
	struct admin_app *app = arg;
	switch (s) {
	case ADMIN_SECTION_STATUS: section_status(app, w); break;
	case ADMIN_SECTION_PORTS: section_ports(app, w); break;
	case ADMIN_SECTION_LISTENERS: section_listeners(app, w); break;
	case ADMIN_SECTION_CONNECTIONS: section_connections(app, w); break;
	case ADMIN_SECTION_POLICIES: section_policies(app, w); break;
	case ADMIN_SECTION_EVENTS: section_events(app, w); break;
	case ADMIN_SECTION_CERTS: section_certs(app, w); break;
	case ADMIN_SECTION_GRAPH: section_graph(app, w); break;
	default: admin_json_null(w); break;
	}
}

static int src_pools(void *arg, struct metrics_pool_sample *out, int max)
{
	struct admin_app *app = arg;
	int n = 0, conns = 0;
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		conns += app->conns[i].in_use;
	if (n < max && app->proxy)
		out[n++] = (struct metrics_pool_sample){"connections", proxy_active(app->proxy),
			proxy_pool_size(app->proxy)};
	if (n < max)
		out[n++] = (struct metrics_pool_sample){"admin_connections", (uint64_t)conns, ADMIN_MAX_CONNS};
	if (n < max)
		out[n++] = (struct metrics_pool_sample){"admin_sessions",
			admin_sessions_active(&app->admin, app->now_ms), ADMIN_MAX_SESSIONS};
	return n;
}

static int src_ports(void *arg, struct metrics_port_sample *out, int max)
{
	struct admin_app *app = arg;
	return app->opt.ports ? app->opt.ports(app->opt.arg, out, max) : 0;
}

static size_t src_metrics(void *arg, char *buf, size_t cap)
{
	struct admin_app *app = arg;
	struct metrics_sources s = {.pools = src_pools, .ports = src_ports, .arg = app};
	size_t n = 0;
	if (metrics_render(&app->obs->metrics, &s, buf, cap, &n) != METRICS_OK)
		return 0;
	return n;
}

static int src_apply(void *arg, const char *text, size_t len, struct admin_json *w)
{
	struct admin_app *app = arg;
	struct config *cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	int status = 400;
	admin_json_obj(w);
	if (!cfg || !errs) {
		admin_json_kv_bool(w, "applied", false);
		admin_json_kv_str(w, "error", "out of memory");
		status = 500;
		goto done;
	}
	/* validate first, for errors with file:line:field */
	if (config_load_buffer("upload", app->base_dir, text, len, cfg, errs) != 0) {
		admin_json_kv_bool(w, "applied", false);
		admin_json_key(w, "errors");
		admin_json_arr(w);
		for (int i = 0; i < errs->count && i < CONFIG_MAX_ERRORS; i++) {
			const struct config_error *e = &errs->items[i];
			char text_line[CONFIG_MAX_PATH + 400];
			snprintf(text_line, sizeof text_line, "%s:%d: %s: %s", e->file, e->line, e->field, e->message);
			admin_json_obj(w);
			admin_json_kv_str(w, "file", e->file);
			admin_json_kv_i64(w, "line", e->line);
			admin_json_kv_str(w, "field", e->field);
			admin_json_kv_str(w, "message", e->message);
			admin_json_kv_str(w, "text", text_line);
			admin_json_end(w);
		}
		admin_json_end(w);
		log_line(app, "admin: config upload refused (%d error%s); the running config is unchanged",
			 errs->count, errs->count == 1 ? "" : "s");
		goto done;
	}
	config_free(cfg);
	if (!app->opt.apply_config) {
		admin_json_kv_bool(w, "applied", false);
		admin_json_kv_str(w, "error", "this appliance cannot apply configs at run time");
		status = 501;
		goto done;
	}
	/* then the run loop's reload path: credentials, ports, proxy_apply */
	static char msg[4096];
	msg[0] = 0;
	int rc = app->opt.apply_config(app->opt.arg, text, len, msg, sizeof msg);
	admin_json_kv_bool(w, "applied", rc == 0);
	if (app->opt.generation)
		admin_json_kv_u64(w, "generation", app->opt.generation(app->opt.arg));
	admin_json_key(w, rc == 0 ? "messages" : "errors");
	admin_json_arr(w);
	for (char *line = msg, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		if (rc == 0) {
			admin_json_strn(w, line, n);
		} else {
			admin_json_obj(w);
			admin_json_key(w, "text");
			admin_json_strn(w, line, n);
			admin_json_end(w);
		}
		if (!nl)
			break;
	}
	admin_json_end(w);
	status = rc == 0 ? 200 : 400;
	log_line(app, "admin: config upload %s", rc == 0 ? "applied" : "refused by the reload path");
done:
	admin_json_end(w);
	free(cfg);
	free(errs);
	return status;
}

static bool src_ready(void *arg)
{
	struct admin_app *app = arg;
	return app->proxy != NULL;
}

static void src_refused(void *arg, const char *reason)
{
	struct admin_app *app = arg;
	metrics_refusal(&app->obs->metrics, reason);
}

/* ============================================================ transport */

static void conn_mark(struct admin_conn *c)
{
	c->dirty = true;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct admin_conn *c = arg;
	if (!c) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p) {
		c->eof = true;
		conn_mark(c);
		return ERR_OK;
	}
	if (c->rx_count == ADMIN_RX_RING)
		return ERR_MEM;     /* lwIP keeps it */
	c->rx[(c->rx_head + c->rx_count) % ADMIN_RX_RING] = p;
	c->rx_count++;
	c->last_ms = c->app->now_ms;
	conn_mark(c);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	if (arg)
		conn_mark(arg);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct admin_conn *c = arg;
	if (!c)
		return;
	c->pcb = NULL;
	c->reset = true;
	conn_mark(c);
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	if (arg)
		conn_mark(arg);
	return ERR_OK;
}

static void pcb_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
}

static void conn_free(struct admin_conn *c, bool abort)
{
	while (c->rx_count) {
		struct pbuf *p = c->rx[c->rx_head];
		if (c->pcb)
			tcp_recved(c->pcb, p->tot_len);
		pbuf_free(p);
		c->rx_head = (c->rx_head + 1) % ADMIN_RX_RING;
		c->rx_count--;
	}
	if (c->pcb) {
		pcb_detach(c->pcb);
		if (abort || tcp_close(c->pcb) != ERR_OK)
			tcp_abort(c->pcb);
		c->pcb = NULL;
	}
	tls_conn_wipe(&c->tls);
	c->in_use = false;
	c->dirty = false;
}

static void request_reset(struct admin_conn *c)
{
	c->in_body = c->too_large = c->chunked = c->is_head = false;
	c->has_cookie = c->has_ctype = false;
	c->body_len = 0;
	c->target_len = 0;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct admin_app *app = arg;
	if (!app || err != ERR_OK || !pcb)
		return ERR_VAL;
	struct admin_conn *c = NULL;
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		if (!app->conns[i].in_use) {
			c = &app->conns[i];
			break;
		}
	if (!c) {
		app->pool_refused++;
		metrics_refusal(&app->obs->metrics, "admin_pool_exhausted");
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	app->accepted++;
	char *body = c->body, *out = c->out;
	memset(c, 0, offsetof(struct admin_conn, req));
	c->body = body;
	c->out = out;
	c->app = app;
	c->in_use = true;
	c->pcb = pcb;
	c->started_ms = c->last_ms = app->now_ms;
	c->peer_ip = ip_addr_get_ip4_u32(&pcb->remote_ip);
	c->peer_port = pcb->remote_port;
	tls_conn_reset(&c->tls, app->creds, NULL, NULL);
	tls_conn_set_client_cert_optional(&c->tls);
	http_request_parser_init(&c->req, c->head_buf, sizeof c->head_buf, HTTP_DEFAULT_HEAD);
	request_reset(c);
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, 2);
	tcp_nagle_disable(pcb);
	conn_mark(c);
	return ERR_OK;
}

/* ciphertext in */
static bool pump_in(struct admin_conn *c)
{
	bool moved = false;
	while (c->rx_count) {
		struct pbuf *p = c->rx[c->rx_head];
		/* walk to rx_off inside the chain */
		size_t off = c->rx_off;
		struct pbuf *q = p;
		while (q && off >= q->len) {
			off -= q->len;
			q = q->next;
		}
		if (!q)
			break;
		size_t n = tls_conn_feed(&c->tls, (const uint8_t *)q->payload + off, q->len - off);
		if (!n)
			break;
		moved = true;
		c->rx_off += n;
		if (c->pcb)
			tcp_recved(c->pcb, (u16_t)n);
		if (c->rx_off == p->tot_len) {
			pbuf_free(p);
			c->rx_head = (c->rx_head + 1) % ADMIN_RX_RING;
			c->rx_count--;
			c->rx_off = 0;
		}
	}
	if (c->eof && !c->rx_count && !c->eof_fed) {
		tls_conn_eof(&c->tls);
		c->eof_fed = true;
		moved = true;
	}
	return moved;
}

/* ciphertext out */
static bool pump_out(struct admin_conn *c)
{
	bool moved = false;
	while (c->pcb) {
		size_t len;
		const uint8_t *d = tls_conn_output(&c->tls, &len);
		if (!d || !len)
			break;
		size_t room = tcp_sndbuf(c->pcb);
		if (tcp_sndqueuelen(c->pcb) + 4 >= TCP_SND_QUEUELEN)
			break;
		if (len > room)
			len = room;
		if (len > NET_MAX_CHUNK)
			len = NET_MAX_CHUNK;
		if (!len || tcp_write(c->pcb, d, (u16_t)len, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		tls_conn_output_ack(&c->tls, len);
		moved = true;
	}
	if (moved && c->pcb)
		tcp_output(c->pcb);
	return moved;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 100: return "Continue";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static void start_response(struct admin_conn *c, const struct admin_response *r)
{
	int n = snprintf(c->head, sizeof c->head,
			 "HTTP/1.1 %d %s\r\n"
			 "content-type: %s\r\n"
			 "content-length: %zu\r\n"
			 "%s"
			 "x-content-type-options: nosniff\r\n"
			 "x-frame-options: DENY\r\n"
			 "referrer-policy: no-referrer\r\n"
			 "content-security-policy: default-src 'self'; frame-ancestors 'none'\r\n"
			 "strict-transport-security: max-age=31536000\r\n"
			 "%s\r\n",
			 r->status, reason_phrase(r->status),
			 r->content_type ? r->content_type : "text/plain", r->body_len, r->headers,
			 c->close_after ? "connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof c->head)
		n = snprintf(c->head, sizeof c->head,
			     "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
	c->head_len = (size_t)n;
	c->head_off = 0;
	c->resp = r->body;
	c->resp_len = c->is_head ? 0 : r->body_len;
	c->resp_off = 0;
	c->responding = true;
}

static void simple_response(struct admin_conn *c, int status, const char *msg)
{
	struct admin_response r;
	memset(&r, 0, sizeof r);
	r.status = status;
	r.content_type = "application/json";
	int n = snprintf(c->out, ADMIN_OUT_MAX, "{\"status\":%d,\"error\":\"%s\"}", status, msg);
	r.body = c->out;
	r.body_len = (size_t)n;
	c->close_after = true;
	start_response(c, &r);
}

static void dispatch(struct admin_conn *c)
{
	struct admin_app *app = c->app;
	if (c->too_large) {
		simple_response(c, 413, "request body too large");
		return;
	}
	if (c->chunked) {
		simple_response(c, 411, "send the body with a content-length (chunked uploads are not taken)");
		return;
	}
	const struct tls_peer *peer = tls_conn_peer(&c->tls);
	if (!peer && c->tls.x509.err != TLS_OK) {
		/* a certificate was sent and failed (BearSSL tolerated it as "no
		 * client auth"): refuse with the reason instead of offering a login */
		char msg[128];
		snprintf(msg, sizeof msg, "client certificate refused: %s", tls_error_name(c->tls.x509.err));
		metrics_refusal(&app->obs->metrics, "admin_bad_client_cert");
		app->admin.counters.forbidden++;
		simple_response(c, 403, msg);
		return;
	}
	struct admin_request q = {
		.method = c->method,
		.target = c->target,
		.target_len = c->target_len,
		.cookie = c->has_cookie ? c->cookie : NULL,
		.content_type = c->has_ctype ? c->ctype : NULL,
		.body = c->body,
		.body_len = c->body_len,
		.peer_spiffe_id = peer ? peer->spiffe_id : NULL,
		.peer_ip = c->peer_ip,
		.now_ms = app->now_ms,
	};
	static struct admin_response r;
	admin_handle(&app->admin, &q, c->out, ADMIN_OUT_MAX, &r);
	if (r.status >= 400) {
		char ip[20];
		ip_text(c->peer_ip, ip, sizeof ip);
		log_line(app, "admin: %s:%u %s %.*s -> %d%s%s", ip, c->peer_port, c->method,
			 (int)(c->target_len > 200 ? 200 : c->target_len), c->target, r.status,
			 peer ? " " : "", peer ? peer->spiffe_id : "");
	}
	start_response(c, &r);
}

static void copy_header(const struct http_request_parser *req, const char *name, char *out,
			size_t cap, bool *has)
{
	size_t n;
	const char *v = http_request_header(req, name, &n);
	*has = false;
	if (!v || n >= cap)
		return;
	memcpy(out, v, n);
	out[n] = 0;
	*has = true;
}

/* plaintext in: feed the parser until one request is complete */
static bool read_request(struct admin_conn *c)
{
	bool moved = false;
	while (!c->responding && !c->closing) {
		size_t len;
		const uint8_t *data = tls_conn_read(&c->tls, &len);
		if (!data) {
			/* events may come with nothing new to feed: call until NEED_MORE */
			data = (const uint8_t *)"";
			len = 0;
		}
		struct http_feed_result r = http_request_feed(&c->req, (const char *)data, len);
		switch (r.event) {
		case HTTP_EVENT_NEED_MORE:
			if (r.consumed) {
				tls_conn_read_ack(&c->tls, r.consumed);
				moved = true;
			}
			return moved;
		case HTTP_EVENT_HEAD_COMPLETE: {
			request_reset(c);
			snprintf(c->method, sizeof c->method, "%s", http_request_method_name(&c->req));
			c->is_head = !strcmp(c->method, "HEAD");
			size_t tl;
			const char *t = http_request_target(&c->req, &tl);
			if (tl >= sizeof c->target)
				tl = sizeof c->target - 1;
			memcpy(c->target, t, tl);
			c->target[tl] = 0;
			c->target_len = tl;
			copy_header(&c->req, "cookie", c->cookie, sizeof c->cookie, &c->has_cookie);
			copy_header(&c->req, "content-type", c->ctype, sizeof c->ctype, &c->has_ctype);
			c->keep_alive = http_request_keep_alive(&c->req);
			uint64_t cl = http_request_content_length(&c->req);
			if (cl != HTTP_NO_CONTENT_LENGTH && cl > ADMIN_BODY_MAX)
				c->too_large = true;
			/* chunked BODY spans carry the chunk framing: uploads need a length */
			c->chunked = http_request_chunked(&c->req);
			if (http_request_expect_continue(&c->req) && !c->too_large) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				tls_conn_write(&c->tls, cont, sizeof cont - 1);
				tls_conn_flush(&c->tls);
			}
			c->in_body = true;
			break;
		}
		case HTTP_EVENT_BODY:
			if (c->body_len + r.span_len > ADMIN_BODY_MAX) {
				c->too_large = true;
			} else {
				memcpy(c->body + c->body_len, data + r.span_offset, r.span_len);
				c->body_len += r.span_len;
			}
			break;
		case HTTP_EVENT_MESSAGE_COMPLETE:
			c->in_body = false;
			c->close_after = !c->keep_alive || c->too_large;
			tls_conn_read_ack(&c->tls, r.consumed);
			dispatch(c);
			return true;
		case HTTP_EVENT_TUNNEL:
		case HTTP_EVENT_ERROR: {
			tls_conn_read_ack(&c->tls, r.consumed ? r.consumed : len);
			char buf[512];
			int n = http_write_error_response(buf, sizeof buf, http_request_error(&c->req));
			if (n > 0) {
				tls_conn_write(&c->tls, buf, (size_t)n);
				tls_conn_flush(&c->tls);
			}
			metrics_refusal(&c->app->obs->metrics, "admin_bad_request");
			c->closing = true;
			tls_conn_close(&c->tls);
			c->close_deadline_ms = c->app->now_ms + 2000;
			return true;
		}
		}
		if (r.consumed)
			tls_conn_read_ack(&c->tls, r.consumed);
		moved = true;
	}
	return moved;
}

/* response bytes into the TLS engine as room allows */
static bool write_response(struct admin_conn *c)
{
	bool moved = false;
	while (c->responding) {
		const char *d;
		size_t left;
		if (c->head_off < c->head_len) {
			d = c->head + c->head_off;
			left = c->head_len - c->head_off;
		} else if (c->resp_off < c->resp_len) {
			d = c->resp + c->resp_off;
			left = c->resp_len - c->resp_off;
		} else {
			c->responding = false;
			tls_conn_flush(&c->tls);
			if (c->close_after) {
				c->closing = true;
				tls_conn_close(&c->tls);
				c->close_deadline_ms = c->app->now_ms + 2000;
			} else {
				request_reset(c);
			}
			return true;
		}
		size_t n = tls_conn_write(&c->tls, d, left);
		if (!n) {
			tls_conn_flush(&c->tls);
			if (!pump_out(c))
				break;
			continue;
		}
		if (c->head_off < c->head_len)
			c->head_off += n;
		else
			c->resp_off += n;
		moved = true;
	}
	return moved;
}

static void conn_progress(struct admin_conn *c)
{
	struct admin_app *app = c->app;
	for (int round = 0; round < 64; round++) {
		bool moved = pump_in(c);
		enum tls_state st = tls_conn_state(&c->tls);
		if (st == TLS_STATE_OPEN && !c->opened) {
			c->opened = true;
			moved = true;
		}
		if (st == TLS_STATE_OPEN) {
			moved |= read_request(c);
			moved |= write_response(c);
		}
		moved |= pump_out(c);
		if (!moved)
			break;
	}
	enum tls_state st = tls_conn_state(&c->tls);
	size_t pending;
	bool out_pending = tls_conn_output(&c->tls, &pending) != NULL;
	if (c->reset) {
		conn_free(c, true);
		return;
	}
	if (st == TLS_STATE_FAILED && !c->opened && !out_pending) {
		enum tls_error e = tls_conn_error(&c->tls);
		if (e != TLS_ERR_CLOSED_BY_PEER) {
			app->tls_failed++;
			metrics_refusal(&app->obs->metrics, "admin_tls_handshake");
			char ip[20];
			ip_text(c->peer_ip, ip, sizeof ip);
			log_line(app, "admin: %s:%u TLS handshake refused: %s", ip, c->peer_port, tls_error_name(e));
		}
		conn_free(c, false);
		return;
	}
	if ((st == TLS_STATE_FAILED || st == TLS_STATE_CLOSED) && !out_pending) {
		conn_free(c, false);
		return;
	}
	if (st == TLS_STATE_CLOSING && !out_pending && c->eof) {
		conn_free(c, false);
		return;
	}
	if (c->eof && st == TLS_STATE_OPEN && !c->responding && !out_pending) {
		conn_free(c, false);
		return;
	}
}

static void conn_timers(struct admin_conn *c)
{
	uint32_t now = c->app->now_ms;
	if (!c->opened && now - c->started_ms > ADMIN_HANDSHAKE_TIMEOUT_MS) {
		metrics_refusal(&c->app->obs->metrics, "admin_handshake_timeout");
		conn_free(c, true);
	} else if (c->closing && (int32_t)(now - c->close_deadline_ms) > 0) {
		conn_free(c, false);
	} else if (now - c->last_ms > ADMIN_IDLE_TIMEOUT_MS && !c->responding) {
		conn_free(c, false);
	}
}

/* ============================================================ listener */

static void listener_close(struct admin_app *app)
{
	if (app->listener) {
		tcp_arg(app->listener, NULL);
		tcp_accept(app->listener, NULL);
		tcp_close(app->listener);
		app->listener = NULL;
	}
}

static int listener_open(struct admin_app *app, const struct config *cfg, char *err, size_t errlen)
{
	const struct config_admin *a = &cfg->admin;
	if (!a->enabled)
		return 0;
	if (a->port < 0 || a->port >= cfg->nports || !app->opt.ifs || !app->opt.ifs[a->port]) {
		snprintf(err, errlen, "spec.admin.port: no interface for port index %d", a->port);
		return -1;
	}
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (!pcb) {
		snprintf(err, errlen, "admin listener: out of lwIP pcbs");
		return -1;
	}
	ip_addr_t addr;
	ip_addr_set_ip4_u32(&addr, net_if_addr(app->opt.ifs[a->port]));
	if (tcp_bind(pcb, &addr, a->listen) != ERR_OK) {
		tcp_close(pcb);
		snprintf(err, errlen, "admin listener: port %u already in use", a->listen);
		return -1;
	}
	struct tcp_pcb *lp = tcp_listen_with_backlog(pcb, 16);
	if (!lp) {
		tcp_close(pcb);
		snprintf(err, errlen, "admin listener: cannot listen");
		return -1;
	}
	tcp_arg(lp, app);
	tcp_accept(lp, on_accept);
	app->listener = lp;
	app->listen_port_index = a->port;
	app->listen_port = a->listen;
	char ip[20];
	ip_text(cfg->ports[a->port].address, ip, sizeof ip);
	log_line(app, "admin console: https://%s:%u/ (%d allowed principal%s, password login %s)", ip,
		 a->listen, a->nallowed, a->nallowed == 1 ? "" : "s", a->password_hash[0] ? "on" : "off");
	return 0;
}

/* ============================================================ public */

struct admin_app *admin_app_create(const struct admin_app_options *opt, char *err, size_t errlen)
{
	struct admin_app *app = calloc(1, sizeof *app);
	if (!app) {
		snprintf(err, errlen, "admin: out of memory");
		return NULL;
	}
	app->opt = *opt;
	app->cfg = opt->cfg;
	app->creds = opt->creds;
	snprintf(app->base_dir, sizeof app->base_dir, "%s", opt->upload_base_dir ? opt->upload_base_dir : ".");
	app->obs = admin_obs_create(opt->log, opt->log_arg);
	app->conns = calloc(ADMIN_MAX_CONNS, sizeof *app->conns);
	app->bodies = calloc(ADMIN_MAX_CONNS, ADMIN_BODY_MAX);
	app->outs = calloc(ADMIN_MAX_CONNS, ADMIN_OUT_MAX);
	if (!app->obs || !app->conns || !app->bodies || !app->outs) {
		snprintf(err, errlen, "admin: out of memory");
		admin_app_stop(app);
		return NULL;
	}
	for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
		app->conns[i].body = app->bodies + (size_t)i * ADMIN_BODY_MAX;
		app->conns[i].out = app->outs + (size_t)i * ADMIN_OUT_MAX;
	}
	app->src = (struct admin_source){
		.arg = app, .section = src_section, .metrics = src_metrics, .apply_config = src_apply,
		.ready = src_ready, .refused = src_refused,
	};
	admin_init(&app->admin, &app->src);
	admin_configure(&app->admin, &app->cfg->admin);
	app->now_ms = net_now_ms();
	return app;
}

struct admin_obs *admin_app_obs(struct admin_app *app) { return app ? app->obs : NULL; }

int admin_app_start(struct admin_app *app, struct proxy *proxy, char *err, size_t errlen)
{
	app->proxy = proxy;
	admin_obs_configure(app->obs, app->cfg);
	return listener_open(app, app->cfg, err, errlen);
}

void admin_app_poll(struct admin_app *app, uint32_t now_ms)
{
	app->now_ms = now_ms;
	for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
		struct admin_conn *c = &app->conns[i];
		if (!c->in_use)
			continue;
		if (c->dirty) {
			c->dirty = false;
			conn_progress(c);
		}
		if (c->in_use)
			conn_timers(c);
	}
}

int admin_app_apply(struct admin_app *app, const struct config *cfg,
		    const struct tls_credentials *creds, char *err, size_t errlen)
{
	const struct config_admin *a = &cfg->admin;
	bool same = app->listener && a->enabled && a->port == app->listen_port_index &&
		a->listen == app->listen_port;
	app->cfg = cfg;
	app->creds = creds;
	admin_configure(&app->admin, &cfg->admin);
	admin_obs_configure(app->obs, cfg);
	if (same)
		return 0;
	listener_close(app);
	if (!a->enabled)
		return 0;
	return listener_open(app, cfg, err, errlen);
}

void admin_app_stop(struct admin_app *app)
{
	if (!app)
		return;
	for (int i = 0; app->conns && i < ADMIN_MAX_CONNS; i++)
		if (app->conns[i].in_use)
			conn_free(&app->conns[i], true);
	listener_close(app);
	admin_obs_destroy(app->obs);
	free(app->conns);
	free(app->bodies);
	free(app->outs);
	free(app);
}
