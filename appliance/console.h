/* Operator console engine: line editor, login, command registry. No I/O.
 *
 * The engine takes raw input bytes and produces output bytes into a bounded
 * buffer inside `struct console`; a driver moves bytes between it and a
 * serial line, stdin/stdout, a pty (drivers/serial.h) or, later, the HTTP
 * admin console. It never reads a clock: the caller passes `now_ms`
 * (any monotonic millisecond clock) with each input.
 *
 * ---- How the run loop drives it -------------------------------------------
 *
 *   static struct console_registry reg;     // boot: console_registry_init(&reg)
 *   static struct console con;               // ~100 KB, caller-allocated
 *   // each module registers its commands at boot (HAProxy style), e.g.
 *   //   console_register(&reg, &proxy_show_connections_cmd);
 *   console_init(&con, &reg, serial_interactive(&ser) ? CONSOLE_INTERACTIVE
 *                                                      : CONSOLE_LINES,
 *                cfg->console_password_hash, &auth_err); // NULL: no login
 *
 *   every loop iteration (or when poll() says the serial fd is ready):
 *     1. drain output first:
 *          const char *p; size_t n = console_output(&con, &p);
 *          if (n) { w = serial_write(&ser, p, n); if (w > 0) console_output_consume(&con, w); }
 *     2. feed input only when the output buffer is empty, from a small input
 *        buffer the driver keeps (in[], in_off, in_len):
 *          if (!console_output_pending(&con)) {
 *              if (in_off == in_len) { r = serial_read(&ser, in, sizeof in);  // <0: EOF/error
 *                                      if (r >= 0) { in_len = r; in_off = 0; } }
 *              if (in_off < in_len) in_off += console_input(&con, in + in_off, in_len - in_off, now_ms);
 *          }
 *        console_input() stops right after each line it executes, so every
 *        command starts with an empty output buffer (a paste of many
 *        commands runs them one by one as the driver drains the output).
 *     3. console_output_pending() also tells the adaptive idle sleep that
 *        the console has bytes to write (poll the fd for POLLOUT then).
 *
 *     4. at shutdown: drain the output, then serial_flush(&ser, 1000) and
 *        serial_close(&ser) so the last words reach the operator and the
 *        terminal is restored. tests/console/console_demo.c is a complete,
 *        tested example of this loop.
 *   In CONSOLE_LINES mode a last line without a newline before EOF is not run.
 *
 *   The driver feeds input from the loop between iterations, never from
 *   under an lwIP callback, so a handler may act at once when that is
 *   short (the appliance's `reload` validates and swaps the config at
 *   once); what the loop itself must do (`drain`, `shutdown`) is a flag
 *   in the handler's ctx that the loop acts on before its next iteration.
 *   Handlers never wait for I/O. See appliance/run_console.h.
 *
 * ---- Output overflow policy -------------------------------------------------
 *
 * Output is never held back across input: a command's output must fit in
 * CONSOLE_OUT_SIZE bytes. What does not fit is dropped and, when the command
 * returns, the engine appends the visible marker
 *     "[output truncated: N bytes dropped]"
 * (CONSOLE_OUT_RESERVE bytes are kept free for it and the prompt). Handlers
 * that may print a lot (show connections) check console_output_room() and
 * print their own "... and N more" line instead. Echo bytes that do not fit
 * (the driver is not draining) are dropped and counted in stats.echo_dropped.
 *
 * ---- Modes ------------------------------------------------------------------
 *
 * CONSOLE_INTERACTIVE (a terminal in raw mode): echo, prompt "meshgate> ",
 *   output newlines become CR LF, and these keys:
 *     printable ASCII        insert at the cursor (bell when the line is full)
 *     CR, LF, CR LF          execute the line (LF right after CR is ignored)
 *     BS (0x08) / DEL (0x7f) delete before the cursor
 *     Ctrl-A / Ctrl-E        start / end of line;  Ctrl-D delete under the
 *                            cursor (ignored on an empty line)
 *     Ctrl-U                 kill the line;  Ctrl-C cancel it ("^C", new prompt)
 *     ESC [ A / ESC [ B      history older / newer (also ESC O A/B)
 *     ESC [ C / ESC [ D      cursor right / left;  ESC [ H / F, ESC [ 1~/4~
 *                            home / end;  ESC [ 3~ delete under the cursor
 *   Other control bytes, unknown escape sequences and non-ASCII bytes are
 *   ignored (counted in stats.ignored_bytes).
 * CONSOLE_LINES (stdin is a pipe or file): no echo, no prompt, no editing;
 *   lines end at LF (a CR before it is dropped); other control bytes and
 *   non-ASCII bytes are ignored and counted. Password prompts still appear.
 *
 * ---- Login ------------------------------------------------------------------
 *
 * With a password hash (console_auth.h format) the console prints
 * "password: " and reads a line without echo before accepting commands.
 * After the k-th consecutive failure, attempts are refused without checking
 * until now_ms >= failure_time + min(CONSOLE_LOGIN_DELAY_MS << (k-1),
 * CONSOLE_LOGIN_DELAY_MAX_MS); a refused attempt says how long to wait and
 * is counted (stats.login_throttled) but does not extend the delay. The
 * line buffer holding a typed password is wiped after use and never enters
 * the history. `quit` returns to the password prompt.
 */
#ifndef MESHGATE_CONSOLE_H
#define MESHGATE_CONSOLE_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/console_auth.h"

#define CONSOLE_PROMPT "meshgate> "
#define CONSOLE_PASSWORD_PROMPT "password: "
#define CONSOLE_LINE_MAX 512            /* bytes in one command line, incl. NUL */
#define CONSOLE_MAX_ARGS 32             /* tokens in one command line */
#define CONSOLE_HISTORY 32              /* remembered lines */
#define CONSOLE_OUT_SIZE 65536          /* output buffer: one command's output must fit */
#define CONSOLE_OUT_RESERVE 128         /* kept for the truncation marker and prompt */
#define CONSOLE_PRINTF_MAX 4096         /* one console_printf() call; longer: console_write() */
#define CONSOLE_MAX_COMMANDS 96         /* per registry */
#define CONSOLE_NAME_WORDS 4            /* words in a command name ("show listeners") */
#define CONSOLE_NAME_MAX 64             /* bytes in a command name */
#define CONSOLE_LOGIN_DELAY_MS 1000u    /* first delay after a failed login */
#define CONSOLE_LOGIN_DELAY_MAX_MS 64000u

enum console_err {
	CONSOLE_OK = 0,
	CONSOLE_ERR_FULL,           /* registry holds CONSOLE_MAX_COMMANDS */
	CONSOLE_ERR_DUPLICATE,      /* a command with this name exists (or is built in) */
	CONSOLE_ERR_NAME,           /* empty, too long, too many words, bad characters */
	CONSOLE_ERR_NO_HANDLER,     /* run == NULL or help == NULL */
	CONSOLE_ERR_UNTERMINATED,   /* tokenizer: a quote is not closed */
	CONSOLE_ERR_TOO_MANY_ARGS,  /* tokenizer: more than CONSOLE_MAX_ARGS tokens */
	CONSOLE_ERR_BAD_HASH,       /* console_init: password hash does not parse */
};
const char *console_strerror(enum console_err err);

/* What a handler returns. */
enum console_cmd_result {
	CONSOLE_CMD_OK = 0,
	CONSOLE_CMD_FAILED = 1,     /* the handler printed why; counted */
	CONSOLE_CMD_USAGE = 2,      /* the engine prints "usage: NAME ARGS_HELP"; counted */
};

struct console;

/* One command, declared (usually static) next to the module it belongs to.
 * name: one to CONSOLE_NAME_WORDS words of [a-z0-9_-] separated by single
 *   spaces ("status", "show listeners", "authz check").
 * args_help: argument synopsis for usage/help ("" or NULL when none).
 * help: one line of help text.
 * run: called with argv[0] = the command name as registered, argv[1..] = the
 *   tokens after the name words (quotes removed); the strings live until the
 *   handler returns and may be modified. Returns a console_cmd_result.
 * The registry keeps the pointer: the struct must outlive the registry. */
struct console_command {
	const char *name;
	const char *args_help;
	const char *help;
	int (*run)(struct console *c, void *ctx, int argc, char **argv);
	void *ctx;
};

struct console_registry {
	const struct console_command *cmds[CONSOLE_MAX_COMMANDS];
	int count;
};

void console_registry_init(struct console_registry *reg);
/* Boot time only. "help" and "quit" are built in and cannot be registered. */
enum console_err console_register(struct console_registry *reg, const struct console_command *cmd);

enum console_mode { CONSOLE_INTERACTIVE, CONSOLE_LINES };

struct console_stats {
	uint64_t commands;          /* lines that ran a registered command */
	uint64_t commands_failed;   /* handler returned FAILED or USAGE */
	uint64_t unknown;           /* lines naming no command */
	uint64_t parse_errors;      /* unterminated quote, too many args */
	uint64_t truncated;         /* commands whose output was truncated */
	uint64_t bytes_dropped;     /* output bytes dropped (truncation + echo) */
	uint64_t echo_dropped;      /* echo/prompt bytes dropped: buffer full */
	uint64_t ignored_bytes;     /* input bytes that mean nothing here */
	uint64_t line_overflow;     /* printable bytes refused: line full */
	uint64_t async_dropped;     /* console_print_async() lines dropped */
	uint64_t login_ok;
	uint64_t login_failed;
	uint64_t login_throttled;   /* attempts refused during the delay */
};

enum console_state { CONSOLE_STATE_LOGIN, CONSOLE_STATE_COMMAND };

/* Everything lives here; no allocation. Treat fields as private except
 * `stats` (read-only). */
struct console {
	const struct console_registry *reg;
	enum console_mode mode;
	enum console_state state;
	/* login */
	bool auth_required;
	struct console_auth_hash auth;
	unsigned login_failures;        /* consecutive */
	uint64_t login_retry_at_ms;     /* attempts refused before this */
	/* line editor */
	char line[CONSOLE_LINE_MAX];
	size_t len, cursor;
	bool last_cr;                   /* INTERACTIVE: a LF right after CR is ignored */
	bool overflowed;                /* LINES: the current line was too long */
	int esc_state;                  /* 0 none, 1 after ESC, 2 in CSI/SS3 */
	char esc_param[8];
	size_t esc_nparam;
	/* history: ring of lines, hist_count valid, hist_pos browsing index */
	char history[CONSOLE_HISTORY][CONSOLE_LINE_MAX];
	unsigned hist_head, hist_count;
	int hist_pos;                   /* -1 = editing the draft */
	char draft[CONSOLE_LINE_MAX];
	/* command execution */
	char tokbuf[CONSOLE_LINE_MAX];
	char *argv[CONSOLE_MAX_ARGS + 1];
	char namebuf[CONSOLE_NAME_MAX];
	char fmtbuf[CONSOLE_PRINTF_MAX];
	bool in_command;                /* handler output is limited by the reserve */
	bool truncated;
	uint64_t dropped_this_command;
	uint64_t now_ms;
	/* output buffer: bytes [out_start, out_start + out_len) are pending */
	char out[CONSOLE_OUT_SIZE];
	size_t out_start, out_len;
	struct console_stats stats;
};

/* Initialises `c` and queues the first prompt ("password: " when
 * password_hash is not NULL/empty). On a malformed hash returns
 * CONSOLE_ERR_BAD_HASH with *auth_err saying why (auth_err may be NULL) and
 * leaves the console locked (login impossible) rather than open. */
enum console_err console_init(struct console *c, const struct console_registry *reg,
			      enum console_mode mode, const char *password_hash,
			      enum console_auth_err *auth_err);

/* Config reload: new hash (NULL/"" = no password). A logged-in session
 * stays logged in. Same errors as console_init. */
enum console_err console_set_password_hash(struct console *c, const char *password_hash,
					   enum console_auth_err *auth_err);

/* Feeds raw input. Returns the number of bytes consumed: all of them, or
 * fewer when it stopped right after executing a line (feed the rest after
 * draining output; see the run-loop recipe above). */
size_t console_input(struct console *c, const void *data, size_t len, uint64_t now_ms);

/* Runs one command line as if typed (HTTP admin console, tests): no echo,
 * no history, then a prompt in interactive mode. Refused with an error
 * line when a login is required and not done. Returns the handler result,
 * or CONSOLE_CMD_FAILED for unknown commands / parse errors / refusal. */
int console_execute(struct console *c, const char *line, uint64_t now_ms);

/* Output side for the driver. console_output() sets *data to the pending
 * bytes (contiguous) and returns their count; console_output_consume()
 * drops n of them after they were written. */
size_t console_output(const struct console *c, const char **data);
void console_output_consume(struct console *c, size_t n);
bool console_output_pending(const struct console *c);

/* For handlers. Newlines are written as CR LF in interactive mode.
 * Returns the bytes queued (less than asked when truncated). */
size_t console_printf(struct console *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t console_vprintf(struct console *c, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
size_t console_write(struct console *c, const void *data, size_t len);
/* Bytes a handler can still print before truncation starts. */
size_t console_output_room(const struct console *c);
/* The now_ms passed with the input that runs the current command. */
uint64_t console_now_ms(const struct console *c);

/* For log lines arriving while an operator may be typing (the access log
 * to the console): erases the line being edited, writes `text` (a newline
 * is added if missing), then redraws the prompt and the partial line. The
 * whole text is dropped and counted in stats.async_dropped when it does not
 * fit; it never truncates. Not to be called from a handler. */
bool console_print_async(struct console *c, const char *text, size_t len);

/* Splits `line` into tokens: whitespace separates; '...' quotes literally;
 * "..." quotes with \" \\ escapes; outside quotes a backslash escapes the
 * next character. Tokens are written NUL-separated into buf (bufsize >=
 * strlen(line) + 1 always suffices) and pointed to by argv[0..*argc-1];
 * argv[*argc] = NULL (argv has room for max + 1). */
enum console_err console_tokenize(const char *line, char *buf, size_t bufsize,
				  char **argv, int max, int *argc);

#endif
