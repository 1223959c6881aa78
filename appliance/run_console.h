/* The operator console of a running appliance (binary-only, run loop side):
 * the console engine (appliance/console.h) on drivers/serial.h, the
 * commands every module registers at boot, and the commands that act on
 * the loop itself (status, show counters, reload, log level, drain,
 * shutdown).
 *
 * Where it is: `meshgate run --console SPEC` (serial.h specs: stdio is the
 * default, "pty", a tty device such as /dev/ttyS0 on the image, or "none").
 * A terminal gets the interactive line editor and the "meshgate> " prompt;
 * a pipe or file gets line mode (no echo, no prompt).
 *
 * Logs: access-log lines and notices (SIGHUP reloads, drain finished) go to
 * the console filtered by `log level` (info: every access line; warn: only
 * denials and refusals; error: none), and to stdout, unfiltered, whenever
 * the console is not on stdout (pty, device, none).
 *
 * Commands run inside run_console_poll(), i.e. in the loop between
 * iterations, never under an lwIP callback: `reload` acts at once;
 * `drain` and `shutdown` set drain_requested / stop_requested, which the
 * loop acts on before its next iteration. A front
 * end that executes console commands elsewhere (the HTTP admin console)
 * must defer them to the loop the same way. */
#ifndef MESHGATE_RUN_CONSOLE_H
#define MESHGATE_RUN_CONSOLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/console.h"
#include "appliance/policy_console.h"
#include "appliance/proxy_console.h"
#include "appliance/run_egress.h"
#include "appliance/tls_console.h"
#include "drivers/serial.h"

struct appliance;

enum run_log_level { RUN_LOG_ERROR, RUN_LOG_WARN, RUN_LOG_INFO };

#define RUN_CONSOLE_COMMANDS 6

struct run_console {
	struct appliance *app;
	bool enabled;               /* a console is open (not "none") */
	bool ready;                 /* the loop runs: output goes through the engine */
	bool input_open;            /* false after EOF on a pipe or a read error */
	bool on_stdout;             /* the console writes to stdout (stdio) */
	struct serial ser;
	struct console_registry reg;
	struct console *con;        /* ~100 KB, allocated at start */
	char in[512];
	size_t in_off, in_len;
	/* flags for the loop (run.c) */
	bool stop_requested, reload_requested, drain_requested;
	bool draining, drain_reported;
	enum run_log_level log_level;
	uint64_t log_dropped;       /* lines that did not fit the console buffer */
	uint64_t log_filtered;      /* lines below the log level */
	/* per-module commands (their structs outlive the registry) */
	struct proxy_console proxy_cmds;
	struct policy_console policy_cmds;
	struct tls_console tls_cmds;
	struct run_egress_console egress_cmds;
	struct console_command cmds[RUN_CONSOLE_COMMANDS];
};

/* Registers every command and opens the console named by spec (NULL =
 * stdio; "none" = no console, commands still registered). Call after the
 * boot messages are printed: with stdio, stdout becomes non-blocking and
 * must then only be written through the console. Returns 0, or -1 with err. */
int run_console_start(struct run_console *rc, struct appliance *a, const char *spec,
		      char *err, size_t errlen);
/* The loop is about to start: output now goes through the engine. */
void run_console_ready(struct run_console *rc);
/* Every loop iteration: moves console bytes, runs at most one command.
 * Returns true when it did something (the loop then does not sleep). */
bool run_console_poll(struct run_console *rc, uint32_t now_ms);
/* An access-log line (no newline) from the proxy. */
void run_console_log(struct run_console *rc, const char *line);
/* SIGHUP: reload and print the outcome as a notice. */
void run_console_reload(struct run_console *rc);
/* Writes what is pending (up to a second), restores the terminal, frees.
 * Safe to call twice. */
void run_console_stop(struct run_console *rc);

#endif
