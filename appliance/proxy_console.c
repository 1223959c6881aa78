/* The proxy's console commands: see proxy_console.h. */
#include "appliance/proxy_console.h"

#include "appliance/config.h"
#include "appliance/proxy.h"
#include "tls/tls.h"

static void print_ip(struct console *c, uint32_t ip_be)
{
	const uint8_t *b = (const uint8_t *)&ip_be;
	console_printf(c, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

static int cmd_show_listeners(struct console *c, void *ctx, int argc, char **argv)
{
	const struct proxy_console *pc = ctx;
	const struct config *cfg = *pc->cfg;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	console_printf(c, "%-16s %-21s %-5s %-10s %s\n", "NAME", "ADDRESS", "PROTO", "PORT", "SERVICE");
	for (int i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		const struct config_service *s = &cfg->services[l->service];
		const uint8_t *b = (const uint8_t *)&cfg->ports[l->port].address;
		char addr[32];
		snprintf(addr, sizeof addr, "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3], l->listen);
		console_printf(c, "%-16s %-21s %-5s %-10s %s/%s\n", l->name, addr,
			       l->protocol == CONFIG_PROTOCOL_HTTP ? "http" : "tcp", cfg->ports[l->port].name,
			       s->namespace_, s->name);
	}
	console_printf(c, "%d listener%s\n", cfg->nlisteners, cfg->nlisteners == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

static int cmd_show_services(struct console *c, void *ctx, int argc, char **argv)
{
	const struct proxy_console *pc = ctx;
	const struct config *cfg = *pc->cfg;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	for (int i = 0; i < cfg->nservices; i++) {
		const struct config_service *s = &cfg->services[i];
		console_printf(c, "%s/%s  labels", s->namespace_, s->name);
		for (int j = 0; j < s->nlabels; j++)
			console_printf(c, " %s=%s", s->labels[j].key, s->labels[j].value);
		if (!s->nlabels)
			console_printf(c, " -");
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
	console_printf(c, "%d service%s\n", cfg->nservices, cfg->nservices == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

/* Lines that would not fit the console's output buffer are counted, not
 * printed (console.h: a handler that may print a lot says "... and N more"). */
#define CONN_LINE_ROOM 600

struct conn_print { struct console *c; unsigned shown, skipped; };

static void print_conn(void *arg, const char *line)
{
	struct conn_print *cp = arg;
	if (console_output_room(cp->c) < CONN_LINE_ROOM) {
		cp->skipped++;
		return;
	}
	console_printf(cp->c, "%s\n", line);
	cp->shown++;
}

static int cmd_show_connections(struct console *c, void *ctx, int argc, char **argv)
{
	const struct proxy_console *pc = ctx;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	struct conn_print cp = {c, 0, 0};
	console_printf(c, "ID PEER SPIFFE-ID SERVICE STATE BYTES-IN BYTES-OUT AGE\n");
	proxy_foreach_connection(*pc->proxy, pc->now_ms(), print_conn, &cp);
	if (cp.skipped)
		console_printf(c, "... and %u more\n", cp.skipped);
	console_printf(c, "%u open connection%s (pool %u)\n", cp.shown + cp.skipped,
		       cp.shown + cp.skipped == 1 ? "" : "s", proxy_pool_size(*pc->proxy));
	return CONSOLE_CMD_OK;
}

void proxy_console_print_counters(struct console *c, const struct proxy *p)
{
	const struct proxy_counters *k = proxy_counters(p);
	const struct { const char *name; uint64_t v; } plain[] = {
		{"connections_accepted", k->accepted},
		{"connections_closed", k->closed},
		{"connections_open", proxy_active(p)},
		{"tls_handshakes_ok", k->tls_handshakes_ok},
		{"requests", k->requests},
		{"policy_allow", k->policy_allow},
		{"policy_deny", k->policy_deny},
		{"dry_run_would_allow", k->dry_run_would_allow},
		{"dry_run_would_deny", k->dry_run_would_deny},
		{"bytes_from_downstream", k->bytes_from_downstream},
		{"bytes_to_downstream", k->bytes_to_downstream},
		{"bytes_from_upstream", k->bytes_from_upstream},
		{"bytes_to_upstream", k->bytes_to_upstream},
		{"tcp_delayed_acks", k->delayed_acks},
	};
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		console_printf(c, "%s %llu\n", plain[i].name, (unsigned long long)plain[i].v);
	for (int r = 1; r < PROXY_REASON_COUNT; r++)
		console_printf(c, "refused{reason=%s} %llu\n", proxy_reason_name((enum proxy_reason)r),
			       (unsigned long long)k->refused[r]);
	for (int e = 1; e < TLS_ERR_COUNT && e < PROXY_TLS_ERRORS; e++)
		console_printf(c, "tls_handshake_failed{error=%s} %llu\n", tls_error_name((enum tls_error)e),
			       (unsigned long long)k->tls_errors[e]);
}

enum console_err proxy_console_register(struct console_registry *reg, struct proxy_console *pc,
					struct proxy *const *proxy, struct config *const *cfg,
					uint32_t (*now_ms)(void))
{
	pc->proxy = proxy;
	pc->cfg = cfg;
	pc->now_ms = now_ms;
	const struct console_command cmds[PROXY_CONSOLE_COMMANDS] = {
		{"show listeners", "", "listeners: address, protocol, port and service", cmd_show_listeners, pc},
		{"show services", "", "services: labels and upstream endpoints", cmd_show_services, pc},
		{"show connections", "", "open connections: peer, SPIFFE ID, service, state, bytes, age",
		 cmd_show_connections, pc},
	};
	for (int i = 0; i < PROXY_CONSOLE_COMMANDS; i++) {
		pc->cmds[i] = cmds[i];
		enum console_err e = console_register(reg, &pc->cmds[i]);
		if (e != CONSOLE_OK)
			return e;
	}
	return CONSOLE_OK;
}
