/* What the admin console shows: the JSON sections of the API, the
 * /metrics sources (pools, ports) and the config upload, as the
 * struct admin_source callbacks of admin.h. Reads the appliance's state
 * between polls; the proxy's connection list through proxy_conn.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "appliance/admin_app_internal.h"
#include "appliance/admin_obs.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include "appliance/proxy_conn.h"
#include "tls/tls.h"

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
		admin_ip_text(p->address, addr, sizeof addr);
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
		admin_ip_text(cfg->ports[port].address, addr, sizeof addr);
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
		admin_ip_text(c->peer_ip, peer, sizeof peer);
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
	int n = 0;
	unsigned conns = admin_app_conns_in_use(app);
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
	if (app->opt.extra_metrics && n < cap)
		n += app->opt.extra_metrics(app->opt.arg, buf + n, cap - n);
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
		admin_app_log(app, "admin: config upload refused (%d error%s); the running config is unchanged",
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
	admin_app_log(app, "admin: config upload %s", rc == 0 ? "applied" : "refused by the reload path");
done:
	admin_json_end(w);
	free(cfg);
	free(errs);
	return status;
}

static bool src_ready(void *arg)
{
	struct admin_app *app = arg;
	/* not ready while draining: load balancers stop sending new work */
	return app->proxy != NULL && !app->proxy->draining;
}

static void src_refused(void *arg, const char *reason)
{
	struct admin_app *app = arg;
	metrics_refusal(&app->obs->metrics, reason);
}

void admin_view_source(struct admin_app *app, struct admin_source *src)
{
	*src = (struct admin_source){
		.arg = app, .section = src_section, .metrics = src_metrics, .apply_config = src_apply,
		.ready = src_ready, .refused = src_refused,
	};
}
