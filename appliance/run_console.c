/* The operator console of a running appliance: see run_console.h.
 * This file holds the commands that belong to the run loop (status, show
 * counters, reload, log level, drain, shutdown) and the I/O; the other
 * commands are registered by their modules (proxy_console.c,
 * policy_console.c, tls_console.c). */
#include "appliance/run_console.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "appliance/net_console.h"
#include "appliance/policy.h"
#include "appliance/proxy.h"
#include "appliance/run_internal.h"
#include "drivers/port.h"
#include "net/stack.h"

#ifndef MESHGATE_VERSION
#define MESHGATE_VERSION "unknown"
#endif

static const char *const level_names[] = {
	[RUN_LOG_ERROR] = "error", [RUN_LOG_WARN] = "warn", [RUN_LOG_INFO] = "info",
};

static struct run_console *rc_of(void *ctx) { return ctx; }

/* ------------------------------------------------------------ output */

/* Writes what the engine has pending; returns true when bytes moved. */
static bool flush_output(struct run_console *rc)
{
	bool did = false;
	const char *p;
	size_t n;
	while ((n = console_output(rc->con, &p)) > 0) {
		ssize_t w = serial_write(&rc->ser, p, n);
		if (w <= 0)
			break;      /* would block (the loop comes back) or gone */
		console_output_consume(rc->con, (size_t)w);
		did = true;
	}
	return did;
}

/* A notice or log line: to the console (when `show` says so) and to stdout
 * when stdout is not the console. */
static void emit(struct run_console *rc, const char *text, size_t len, bool show)
{
	if (!rc->ready || !rc->on_stdout) {
		fwrite(text, 1, len, stdout);
		if (len && text[len - 1] != '\n')
			fputc('\n', stdout);
	}
	if (!rc->enabled || !rc->ready)
		return;
	if (!show) {
		rc->log_filtered++;
		return;
	}
	if (!console_print_async(rc->con, text, len))
		rc->log_dropped++;
	flush_output(rc);
}

/* Denials and refusals are warnings; everything else in the access log is
 * info. Reads our own JSON (appliance/accesslog.c: "decision", "refusal"). */
static enum run_log_level line_level(const char *line)
{
	if (strstr(line, "\"decision\":\"deny\"") || strstr(line, "\"refusal\":\""))
		return RUN_LOG_WARN;
	return RUN_LOG_INFO;
}

void run_console_log(struct run_console *rc, const char *line)
{
	/* the level only matters to a console that shows lines */
	bool console = rc->enabled && rc->ready;
	emit(rc, line, strlen(line), console && line_level(line) <= rc->log_level);
}

/* ------------------------------------------------------------ status */

static void print_uptime(struct console *c, uint32_t ms)
{
	uint32_t s = ms / 1000;
	if (s >= 86400)
		console_printf(c, "%ud", s / 86400);
	console_printf(c, "%uh%02um%02us", s / 3600 % 24, s / 60 % 60, s % 60);
}

static int cmd_status(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_console *rc = rc_of(ctx);
	struct appliance *a = rc->app;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	console_printf(c, "meshgate %s  uptime ", MESHGATE_VERSION);
	print_uptime(c, net_now_ms() - a->started_ms);
	console_printf(c, "  config generation %u (%s)%s\n", a->generation,
		       a->demo ? "embedded demo" : a->cfg->file0, rc->draining ? "  DRAINING" : "");
	console_printf(c, "console %s%s%s, password %s, log level %s\n",
		       rc->ser.kind == SERIAL_PTY ? "pty " : rc->ser.kind == SERIAL_DEVICE ? "device " : "stdio",
		       serial_path(&rc->ser), serial_interactive(&rc->ser) ? " (interactive)" : " (line mode)",
		       a->cfg->console_password_hash[0] ? "required" : "off", level_names[rc->log_level]);
	console_printf(c, "ports:\n");
	for (int i = 0; i < a->nports; i++) {
		struct port_stats st;
		struct net_if_stats ns;
		port_get_stats(a->ports[i], &st);
		net_if_get_stats(a->ifs[i], &ns);
		const struct config_port *cp = &a->cfg->ports[i];
		const uint8_t *b = (const uint8_t *)&cp->address;
		console_printf(c, "  %-10s link %s %u Mb/s  %u.%u.%u.%u/%u  rx %llu pkts %llu B  tx %llu pkts %llu B\n",
			       cp->name, st.link_up ? "up" : "down", st.link_speed_mbps, b[0], b[1], b[2], b[3],
			       cp->prefix, (unsigned long long)st.rx_packets, (unsigned long long)st.rx_bytes,
			       (unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes);
		console_printf(c, "  %-10s drops rx %llu (missed %llu, no mbuf %llu, too long %llu, no pbuf %llu)"
			       "  tx %llu (ring full %llu, no mbuf %llu, no buffer %llu)\n", "",
			       (unsigned long long)st.rx_dropped, (unsigned long long)st.rx_missed,
			       (unsigned long long)st.rx_no_mbuf, (unsigned long long)st.rx_too_long,
			       (unsigned long long)ns.rx_no_pbuf, (unsigned long long)st.tx_dropped,
			       (unsigned long long)st.tx_ring_full, (unsigned long long)st.tx_no_mbuf,
			       (unsigned long long)ns.tx_no_buffer);
		console_printf(c, "  %-10s device %s\n", "", cp->device);
	}
	console_printf(c, "pools:\n  %-20s %u / %u in use (refused when full: %llu)\n", "connections",
		       proxy_active(a->proxy), proxy_pool_size(a->proxy),
		       (unsigned long long)proxy_counters(a->proxy)->refused[PROXY_REASON_POOL_EXHAUSTED]);
	net_console_print_pools(c);
	const struct proxy_counters *k = proxy_counters(a->proxy);
	console_printf(c, "traffic:\n  connections accepted %llu closed %llu  handshakes ok %llu  requests %llu\n"
		       "  policy allow %llu deny %llu  dry-run would allow %llu would deny %llu\n",
		       (unsigned long long)k->accepted, (unsigned long long)k->closed,
		       (unsigned long long)k->tls_handshakes_ok, (unsigned long long)k->requests,
		       (unsigned long long)k->policy_allow, (unsigned long long)k->policy_deny,
		       (unsigned long long)k->dry_run_would_allow, (unsigned long long)k->dry_run_would_deny);
	return CONSOLE_CMD_OK;
}

static int cmd_show_counters(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_console *rc = rc_of(ctx);
	struct appliance *a = rc->app;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	proxy_console_print_counters(c, a->proxy);
	for (int i = 0; i < a->nports; i++) {
		struct port_stats st;
		struct net_if_stats ns;
		port_get_stats(a->ports[i], &st);
		net_if_get_stats(a->ifs[i], &ns);
		const char *n = a->cfg->ports[i].name;
		const struct { const char *name; uint64_t v; } pc[] = {
			{"rx_packets", st.rx_packets}, {"tx_packets", st.tx_packets},
			{"rx_dropped", st.rx_dropped}, {"rx_missed", st.rx_missed},
			{"rx_no_mbuf", st.rx_no_mbuf}, {"rx_too_long", st.rx_too_long},
			{"rx_no_pbuf", ns.rx_no_pbuf}, {"tx_dropped", st.tx_dropped},
			{"tx_ring_full", st.tx_ring_full}, {"tx_no_mbuf", st.tx_no_mbuf},
			{"tx_no_buffer", ns.tx_no_buffer}, {"rx_errors", st.rx_errors},
			{"tx_errors", st.tx_errors}, {"tx_gso_frames", st.tx_gso_frames},
			{"tx_gso_segments", ns.tx_gso_segments}, {"tx_gso_refused", ns.tx_gso_refused},
			{"rx_offload_frames", st.rx_offload_frames}, {"rx_oversize", ns.rx_oversize},
		};
		for (size_t j = 0; j < sizeof pc / sizeof pc[0]; j++)
			console_printf(c, "port_%s{port=%s} %llu\n", pc[j].name, n, (unsigned long long)pc[j].v);
	}
	const struct console_stats *cs = &c->stats;   /* the console running this command */
	console_printf(c, "console_commands %llu\nconsole_commands_failed %llu\nconsole_unknown_commands %llu\n"
		       "console_login_ok %llu\nconsole_login_failed %llu\nconsole_login_throttled %llu\n"
		       "console_log_dropped %llu\nconsole_log_filtered %llu\nconfig_generation %u\n",
		       (unsigned long long)cs->commands, (unsigned long long)cs->commands_failed,
		       (unsigned long long)cs->unknown, (unsigned long long)cs->login_ok,
		       (unsigned long long)cs->login_failed, (unsigned long long)cs->login_throttled,
		       (unsigned long long)rc->log_dropped, (unsigned long long)rc->log_filtered,
		       a->generation);
	return CONSOLE_CMD_OK;
}

/* ------------------------------------------------------------ reload */

/* Runs run_reload, then applies the console password of the new config.
 * Returns the outcome text (malloc'd, caller frees; NULL when out of
 * memory) and sets *ok. */
static char *reload(struct run_console *rc, bool *ok)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return NULL;
	*ok = run_reload(rc->app, mem) == 0;
	if (*ok && rc->con) {
		enum console_auth_err ae;
		if (console_set_password_hash(rc->con, rc->app->cfg->console_password_hash, &ae) != CONSOLE_OK)
			fprintf(mem, "console: password hash refused (%s): console locked\n",
				console_auth_strerror(ae));
	}
	fclose(mem);
	return text;
}

static int cmd_reload(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_console *rc = rc_of(ctx);
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	bool ok = false;
	char *text = reload(rc, &ok);
	if (!text) {
		console_printf(c, "reload: out of memory; nothing changed\n");
		return CONSOLE_CMD_FAILED;
	}
	console_write(c, text, strlen(text));
	if (!rc->on_stdout)
		fputs(text, stdout);    /* the process log keeps a record too */
	free(text);
	return ok ? CONSOLE_CMD_OK : CONSOLE_CMD_FAILED;
}

void run_console_reload(struct run_console *rc)
{
	bool ok = false;
	char *text = reload(rc, &ok);
	if (!text)
		return;
	emit(rc, text, strlen(text), true);
	free(text);
}

/* ------------------------------------------------------------ the rest */

static int cmd_log_level(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_console *rc = rc_of(ctx);
	if (argc > 2)
		return CONSOLE_CMD_USAGE;
	if (argc == 2) {
		size_t i;
		for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
			if (strcmp(argv[1], level_names[i]) == 0)
				break;
		if (i == sizeof level_names / sizeof level_names[0])
			return CONSOLE_CMD_USAGE;
		rc->log_level = (enum run_log_level)i;
	}
	console_printf(c, "log level %s: %s\n", level_names[rc->log_level],
		       rc->log_level == RUN_LOG_INFO ? "every access-log line and notices"
		       : rc->log_level == RUN_LOG_WARN ? "denials, refusals and notices"
		       : "notices only");
	return CONSOLE_CMD_OK;
}

static int cmd_drain(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_console *rc = rc_of(ctx);
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	unsigned n = proxy_active(rc->app->proxy);
	if (rc->draining) {
		console_printf(c, "already draining: %u connection%s open\n", n, n == 1 ? "" : "s");
		return CONSOLE_CMD_OK;
	}
	rc->draining = true;
	rc->drain_requested = true;     /* the loop calls proxy_drain before the next iteration */
	console_printf(c, "draining: listeners closed, new connections refused; %u open connection%s "
		       "will finish ('shutdown' to stop)\n", n, n == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

static int cmd_shutdown(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_console *rc = rc_of(ctx);
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	unsigned n = proxy_active(rc->app->proxy);
	rc->stop_requested = true;
	console_printf(c, "shutting down (%u connection%s open)\n", n, n == 1 ? "" : "s");
	return CONSOLE_CMD_OK;
}

/* ------------------------------------------------------------ life cycle */

static uint32_t now_ms(void) { return net_now_ms(); }

int run_console_start(struct run_console *rc, struct appliance *a, const char *spec, char *err,
		      size_t errlen)
{
	rc->app = a;
	rc->log_level = RUN_LOG_INFO;
	console_registry_init(&rc->reg);
	const struct console_command cmds[RUN_CONSOLE_COMMANDS] = {
		{"status", "", "uptime, version, ports (link, rx/tx, drops), pools, config generation",
		 cmd_status, rc},
		{"show counters", "", "every counter: traffic, refusals by reason, TLS failures, ports, console",
		 cmd_show_counters, rc},
		{"reload", "", "re-read the config files; if invalid: refused, errors shown, old config keeps serving",
		 cmd_reload, rc},
		{"log level", "[error|warn|info]", "console log: info = every access line, warn = denials and "
		 "refusals, error = none", cmd_log_level, rc},
		{"drain", "", "stop accepting connections; open ones finish", cmd_drain, rc},
		{"shutdown", "", "stop meshgate (exit 0)", cmd_shutdown, rc},
	};
	enum console_err e = CONSOLE_OK;
	for (int i = 0; i < RUN_CONSOLE_COMMANDS && e == CONSOLE_OK; i++) {
		rc->cmds[i] = cmds[i];
		e = console_register(&rc->reg, &rc->cmds[i]);
	}
	if (e == CONSOLE_OK)
		e = proxy_console_register(&rc->reg, &rc->proxy_cmds, &a->proxy, &a->cfg, now_ms);
	if (e == CONSOLE_OK)
		e = policy_console_register(&rc->reg, &rc->policy_cmds, &a->cfg);
	if (e == CONSOLE_OK)
		e = tls_console_register(&rc->reg, &rc->tls_cmds, &a->creds, &a->cfg);
	if (e == CONSOLE_OK)
		e = run_egress_console_register(&rc->reg, &rc->egress_cmds, a);
	if (e != CONSOLE_OK) {
		snprintf(err, errlen, "registering the commands: %s", console_strerror(e));
		return -1;
	}
	if (spec && strcmp(spec, "none") == 0)
		return 0;
	rc->con = calloc(1, sizeof *rc->con);
	if (!rc->con) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fflush(stdout);
	if (serial_open(&rc->ser, spec, err, errlen) != 0) {
		free(rc->con);
		rc->con = NULL;
		return -1;
	}
	rc->on_stdout = rc->ser.kind == SERIAL_STDIO;
	if (rc->ser.kind == SERIAL_PTY)
		printf("meshgate: console on %s\n", serial_path(&rc->ser));
	else if (rc->ser.kind == SERIAL_DEVICE)
		printf("meshgate: console on %s\n", serial_path(&rc->ser));
	fflush(stdout);
	enum console_auth_err ae = CONSOLE_AUTH_OK;
	const char *hash = a->cfg->console_password_hash[0] ? a->cfg->console_password_hash : NULL;
	if (console_init(rc->con, &rc->reg, serial_interactive(&rc->ser) ? CONSOLE_INTERACTIVE : CONSOLE_LINES,
			 hash, &ae) != CONSOLE_OK)
		/* the loader validated it; a locked console is the safe side */
		fprintf(stderr, "meshgate: console password hash: %s (console locked)\n", console_auth_strerror(ae));
	rc->enabled = true;
	rc->input_open = true;
	return 0;
}

void run_console_ready(struct run_console *rc)
{
	rc->ready = true;
}

bool run_console_poll(struct run_console *rc, uint32_t now)
{
	if (!rc->enabled || !rc->ready)
		return false;
	bool did = flush_output(rc);
	if (rc->draining && !rc->drain_reported && !rc->drain_requested && proxy_active(rc->app->proxy) == 0) {
		rc->drain_reported = true;
		static const char msg[] = "drain complete: no connections open";
		emit(rc, msg, sizeof msg - 1, true);
	}
	if (console_output_pending(rc->con) || !rc->input_open)
		return did;
	if (rc->in_off == rc->in_len) {
		ssize_t r = serial_read(&rc->ser, rc->in, sizeof rc->in);
		if (r < 0) {
			/* EOF on a pipe: keep running without input (shutdown by
			 * signal); an error: say so once on stderr */
			if (r == SERIAL_ERROR)
				fprintf(stderr, "meshgate: console input failed; console is output-only now\n");
			rc->input_open = false;
			return did;
		}
		rc->in_len = (size_t)r;
		rc->in_off = 0;
	}
	if (rc->in_off < rc->in_len) {
		rc->in_off += console_input(rc->con, rc->in + rc->in_off, rc->in_len - rc->in_off, now);
		flush_output(rc);
		did = true;
	}
	return did;
}

void run_console_stop(struct run_console *rc)
{
	if (rc->con) {
		/* the last words ("shutting down") must reach the operator */
		for (int i = 0; i < 100 && console_output_pending(rc->con); i++) {
			if (!flush_output(rc)) {
				struct timespec ts = {0, 10 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
		}
		serial_flush(&rc->ser, 1000);
		serial_close(&rc->ser);
		free(rc->con);
		rc->con = NULL;
	}
	rc->enabled = false;
	rc->ready = false;
}
