/* The operator console of a running appliance: the console engine
 * (appliance/console.h) wired to stdin/stdout or a device, and the commands
 * that belong to the run loop (status, show, reload, drain, shutdown).
 * Commands only set flags or read state; the loop acts between iterations. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/policy.h"
#include "appliance/proxy.h"
#include "appliance/run_internal.h"
#include "drivers/port.h"
#include "net/stack.h"
#include "tls/tls.h"

#ifndef MESHGATE_VERSION
#define MESHGATE_VERSION "unknown"
#endif

static struct appliance *app_of(void *ctx) { return ctx; }

static void print_ip(struct console *c, uint32_t ip_be)
{
	const uint8_t *b = (const uint8_t *)&ip_be;
	console_printf(c, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

static int cmd_status(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	uint32_t up = (net_now_ms() - a->started_ms) / 1000;
	console_printf(c, "meshgate %s  uptime %uh%02um%02us  config generation %u (%s)\n", MESHGATE_VERSION,
		       up / 3600, up / 60 % 60, up % 60, a->generation,
		       a->demo ? "embedded demo" : a->cfg->file0);
	console_printf(c, "ports:\n");
	for (int i = 0; i < a->nports; i++) {
		struct port_stats st;
		port_get_stats(a->ports[i], &st);
		const struct config_port *cp = &a->cfg->ports[i];
		console_printf(c, "  %-10s %-8s link %s %u Mb/s  addr ", cp->name, "dpdk",
			       st.link_up ? "up" : "down", st.link_speed_mbps);
		print_ip(c, cp->address);
		console_printf(c, "/%u  rx %llu pkts %llu B  tx %llu pkts %llu B  drops rx %llu tx %llu\n",
			       cp->prefix, (unsigned long long)st.rx_packets, (unsigned long long)st.rx_bytes,
			       (unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes,
			       (unsigned long long)st.rx_dropped, (unsigned long long)st.tx_dropped);
		console_printf(c, "             device %s\n", cp->device);
	}
	console_printf(c, "pools:\n  connections %u / %u in use\n", proxy_active(a->proxy),
		       proxy_pool_size(a->proxy));
	const struct proxy_counters *k = proxy_counters(a->proxy);
	console_printf(c, "traffic:\n  connections accepted %llu closed %llu  handshakes ok %llu  requests %llu\n"
		       "  policy allow %llu deny %llu  dry-run would allow %llu would deny %llu\n",
		       (unsigned long long)k->accepted, (unsigned long long)k->closed,
		       (unsigned long long)k->tls_handshakes_ok, (unsigned long long)k->requests,
		       (unsigned long long)k->policy_allow, (unsigned long long)k->policy_deny,
		       (unsigned long long)k->dry_run_would_allow, (unsigned long long)k->dry_run_would_deny);
	return CONSOLE_CMD_OK;
}

static int cmd_show_listeners(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	for (int i = 0; i < a->cfg->nlisteners; i++) {
		const struct config_listener *l = &a->cfg->listeners[i];
		const struct config_service *s = &a->cfg->services[l->service];
		console_printf(c, "%-16s ", l->name);
		print_ip(c, a->cfg->ports[l->port].address);
		console_printf(c, ":%-5u %-4s port %-10s -> %s/%s\n", l->listen,
			       l->protocol == CONFIG_PROTOCOL_HTTP ? "http" : "tcp",
			       a->cfg->ports[l->port].name, s->namespace_, s->name);
	}
	return CONSOLE_CMD_OK;
}

static int cmd_show_services(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	for (int i = 0; i < a->cfg->nservices; i++) {
		const struct config_service *s = &a->cfg->services[i];
		console_printf(c, "%s/%s  labels", s->namespace_, s->name);
		for (int j = 0; j < s->nlabels; j++)
			console_printf(c, " %s=%s", s->labels[j].key, s->labels[j].value);
		console_printf(c, "  endpoints");
		if (s->builtin_demo)
			console_printf(c, " (built-in demo service)");
		for (int j = 0; j < s->nendpoints; j++) {
			console_printf(c, " ");
			print_ip(c, s->endpoints[j].ip);
			console_printf(c, ":%u", s->endpoints[j].port);
		}
		console_printf(c, "\n");
	}
	return CONSOLE_CMD_OK;
}

struct conn_print { struct console *c; unsigned shown, skipped; };

static void print_conn(void *arg, const char *line)
{
	struct conn_print *cp = arg;
	if (console_output_room(cp->c) < 400) {
		cp->skipped++;
		return;
	}
	console_printf(cp->c, "%s\n", line);
	cp->shown++;
}

static int cmd_show_connections(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	struct conn_print cp = {c, 0, 0};
	console_printf(c, "id peer spiffe-id service state bytes-in bytes-out age\n");
	proxy_foreach_connection(a->proxy, net_now_ms(), print_conn, &cp);
	if (cp.skipped)
		console_printf(c, "... and %u more\n", cp.skipped);
	console_printf(c, "%u open\n", cp.shown + cp.skipped);
	return CONSOLE_CMD_OK;
}

static int cmd_show_policies(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	size_t n = policy_set_count(a->cfg->policies);
	for (size_t i = 0; i < n && console_output_room(c) > 300; i++) {
		struct policy_info pi;
		policy_set_info(a->cfg->policies, i, &pi);
		console_printf(c, "%s/%s %s%s%s\n", pi.namespace_, pi.name, pi.action,
			       pi.dry_run ? " (dry-run)" : "", pi.has_l7 ? " (L7 rules)" : "");
	}
	console_printf(c, "%zu authorization polic%s, %zu peer authentication%s\n", n, n == 1 ? "y" : "ies",
		       policy_set_peer_count(a->cfg->policies),
		       policy_set_peer_count(a->cfg->policies) == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

static int cmd_show_certs(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	const struct tls_credentials *cr = a->creds;
	time_t now = time(NULL);
	long days = (long)((cr->not_after - (int64_t)now) / 86400);
	console_printf(c, "identity %s\n  key %s, chain of %zu, expires in %ld days%s\n", a->cfg->identity_chain,
		       cr->key_type == BR_KEYTYPE_EC ? "EC" : "RSA", cr->chain_len, days,
		       days < 0 ? " (EXPIRED)" : days < 14 ? " (renew soon)" : "");
	for (int i = 0; i < cr->ndomains; i++)
		console_printf(c, "trust domain %s: %zu root%s from %s\n", cr->domains[i].name,
			       cr->domains[i].nanchors, cr->domains[i].nanchors == 1 ? "" : "s",
			       cr->domains[i].roots_path);
	return CONSOLE_CMD_OK;
}

static int cmd_show_counters(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	const struct proxy_counters *k = proxy_counters(a->proxy);
	console_printf(c, "connections_accepted %llu\nconnections_closed %llu\ntls_handshakes_ok %llu\n"
		       "requests %llu\npolicy_allow %llu\npolicy_deny %llu\n"
		       "dry_run_would_allow %llu\ndry_run_would_deny %llu\n",
		       (unsigned long long)k->accepted, (unsigned long long)k->closed,
		       (unsigned long long)k->tls_handshakes_ok, (unsigned long long)k->requests,
		       (unsigned long long)k->policy_allow, (unsigned long long)k->policy_deny,
		       (unsigned long long)k->dry_run_would_allow, (unsigned long long)k->dry_run_would_deny);
	for (int r = 1; r < PROXY_REASON_COUNT; r++)
		console_printf(c, "refused{reason=%s} %llu\n", proxy_reason_name((enum proxy_reason)r),
			       (unsigned long long)k->refused[r]);
	for (int e = 1; e < TLS_ERR_COUNT; e++)
		console_printf(c, "tls_handshake_failed{error=%s} %llu\n", tls_error_name((enum tls_error)e),
			       (unsigned long long)k->tls_errors[e]);
	for (int i = 0; i < a->nports; i++) {
		struct port_stats st;
		port_get_stats(a->ports[i], &st);
		console_printf(c, "port_rx_dropped{port=%s} %llu\nport_tx_dropped{port=%s} %llu\n",
			       a->cfg->ports[i].name, (unsigned long long)st.rx_dropped, a->cfg->ports[i].name,
			       (unsigned long long)st.tx_dropped);
	}
	console_printf(c, "console_log_dropped %llu\n", (unsigned long long)a->console.log_dropped);
	return CONSOLE_CMD_OK;
}

static int cmd_reload(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	a->console.reload_requested = true;
	console_printf(c, "reload requested: re-reading the configuration\n");
	return CONSOLE_CMD_OK;
}

static int cmd_drain(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	a->console.drain_requested = true;
	console_printf(c, "draining: listeners closed, %u open connection%s will finish\n",
		       proxy_active(a->proxy), proxy_active(a->proxy) == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

static int cmd_shutdown(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	a->console.stop_requested = true;
	console_printf(c, "shutting down\n");
	return CONSOLE_CMD_OK;
}

static int cmd_log_level(struct console *c, void *ctx, int argc, char **argv)
{
	struct appliance *a = app_of(ctx);
	if (argc != 2)
		return CONSOLE_CMD_USAGE;
	if (strcmp(argv[1], "info") == 0)
		a->console.access_log = true;
	else if (strcmp(argv[1], "warn") == 0 || strcmp(argv[1], "error") == 0)
		a->console.access_log = false;
	else
		return CONSOLE_CMD_USAGE;
	console_printf(c, "log level %s: access log %s\n", argv[1], a->console.access_log ? "on" : "off");
	return CONSOLE_CMD_OK;
}

#define CMD(n, args, h, fn) {.name = n, .args_help = args, .help = h, .run = fn}
static struct console_command commands[] = {
	CMD("status", "", "uptime, version, ports, pools and config generation", cmd_status),
	CMD("show listeners", "", "listeners: address, protocol, service", cmd_show_listeners),
	CMD("show services", "", "services: labels and endpoints", cmd_show_services),
	CMD("show connections", "", "open connections: peer, SPIFFE ID, service, bytes, age", cmd_show_connections),
	CMD("show policies", "", "authorization policies in service", cmd_show_policies),
	CMD("show certs", "", "gateway certificate expiry and trust bundles", cmd_show_certs),
	CMD("show counters", "", "refusals by reason, TLS failures, policy decisions, drops", cmd_show_counters),
	CMD("reload", "", "re-read the config files; refused (old config keeps serving) if invalid", cmd_reload),
	CMD("log level", "info|warn|error", "info prints the access log on the console", cmd_log_level),
	CMD("drain", "", "stop accepting connections; open ones finish", cmd_drain),
	CMD("shutdown", "", "stop meshgate", cmd_shutdown),
};

int run_console_start(struct run_console *rc, struct appliance *a, const char *spec, char *err,
		      size_t errlen)
{
	rc->app = a;
	rc->access_log = true;
	console_registry_init(&rc->reg);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		commands[i].ctx = a;
		enum console_err e = console_register(&rc->reg, &commands[i]);
		if (e != CONSOLE_OK) {
			snprintf(err, errlen, "registering %s: %s", commands[i].name, console_strerror(e));
			return -1;
		}
	}
	if (spec && strcmp(spec, "none") == 0)
		return 0;
	rc->in_fd = 0;
	rc->out_fd = 1;
	if (spec && strcmp(spec, "stdio") != 0) {
		int fd = open(spec, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "%s: %s", spec, strerror(errno));
			return -1;
		}
		rc->in_fd = rc->out_fd = fd;
	}
	rc->con = calloc(1, sizeof *rc->con);
	if (!rc->con) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fcntl(rc->in_fd, F_SETFL, fcntl(rc->in_fd, F_GETFL) | O_NONBLOCK);
	console_init(rc->con, &rc->reg, CONSOLE_LINES, NULL, NULL);
	rc->enabled = true;
	rc->input_open = true;
	return 0;
}

void run_console_ready(struct run_console *rc)
{
	rc->ready = true;
}

static bool flush_output(struct run_console *rc)
{
	bool did = false;
	const char *p;
	size_t n;
	while ((n = console_output(rc->con, &p)) > 0) {
		ssize_t w = write(rc->out_fd, p, n);
		if (w <= 0)
			break;
		console_output_consume(rc->con, (size_t)w);
		did = true;
	}
	return did;
}

bool run_console_poll(struct run_console *rc, uint32_t now_ms)
{
	if (!rc->enabled || !rc->ready)
		return false;
	bool did = flush_output(rc);
	if (console_output_pending(rc->con) || !rc->input_open)
		return did;
	if (rc->in_off == rc->in_len) {
		ssize_t r = read(rc->in_fd, rc->in, sizeof rc->in);
		if (r == 0) {
			rc->input_open = false;     /* EOF: keep running without input */
			return did;
		}
		if (r < 0)
			return did;
		rc->in_len = (size_t)r;
		rc->in_off = 0;
	}
	if (rc->in_off < rc->in_len) {
		rc->in_off += console_input(rc->con, rc->in + rc->in_off, rc->in_len - rc->in_off, now_ms);
		flush_output(rc);
		did = true;
	}
	return did;
}

void run_console_log(struct run_console *rc, const char *line)
{
	if (!rc->access_log)
		return;
	if (!rc->enabled || !rc->ready) {
		printf("%s\n", line);
		return;
	}
	if (!console_print_async(rc->con, line, strlen(line)))
		rc->log_dropped++;
	flush_output(rc);
}

void run_console_reload(struct run_console *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return;
	run_reload(rc->app, mem);
	fclose(mem);
	if (rc->enabled && rc->ready) {
		if (!console_print_async(rc->con, text, len))
			rc->log_dropped++;
		flush_output(rc);
	} else {
		fputs(text, stdout);
	}
	free(text);
}

void run_console_stop(struct run_console *rc)
{
	if (rc->con) {
		flush_output(rc);
		free(rc->con);
		rc->con = NULL;
	}
	if (rc->in_fd > 2)
		close(rc->in_fd);
	rc->enabled = false;
}
