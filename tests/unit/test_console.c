/* Console engine: line editing, history, dispatch, help, quoting, overflow,
 * login and rate limiting; console_auth hash format and verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "appliance/console.h"
#include "appliance/console_auth.h"

/* ------------------------------------------------------------ harness */

static struct console con;          /* ~100 KB: not on the stack */
static struct console_registry reg;
static char outbuf[4 * CONSOLE_OUT_SIZE];
static size_t outlen;

static void drain(void)
{
	const char *p;
	size_t n = console_output(&con, &p);
	assert_true(outlen + n < sizeof(outbuf));
	memcpy(outbuf + outlen, p, n);
	outlen += n;
	outbuf[outlen] = '\0';
	console_output_consume(&con, n);
}

static void reset_out(void)
{
	drain();
	outlen = 0;
	outbuf[0] = '\0';
}

/* Feeds like the run loop: drain, feed, repeat until consumed. */
static void feed(const char *s, uint64_t now)
{
	size_t len = strlen(s), off = 0;
	while (off < len) {
		drain();
		size_t n = console_input(&con, s + off, len - off, now);
		assert_true(n > 0);
		off += n;
	}
	drain();
}

struct calls {
	int count;
	int argc;
	char argv[8][64];
	const char *which;
};
static struct calls calls;

static int record(struct console *c, void *ctx, int argc, char **argv)
{
	calls.count++;
	calls.which = ctx;
	calls.argc = argc;
	for (int i = 0; i < argc && i < 8; i++)
		snprintf(calls.argv[i], sizeof(calls.argv[i]), "%s", argv[i]);
	console_printf(c, "ran %s with %d\n", (const char *)ctx, argc - 1);
	return CONSOLE_CMD_OK;
}

static int usage_cmd(struct console *c, void *ctx, int argc, char **argv)
{
	return argc == 2 ? CONSOLE_CMD_OK : CONSOLE_CMD_USAGE;
}

static size_t flood_bytes;
static int flood(struct console *c, void *ctx, int argc, char **argv)
{
	char chunk[1000];
	memset(chunk, 'x', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\n';
	for (size_t i = 0; i < flood_bytes / sizeof(chunk); i++)
		console_write(c, chunk, sizeof(chunk));
	return CONSOLE_CMD_OK;
}

static struct console_command cmd_status = { "status", "", "show uptime, ports and pools", record, "status" };
static struct console_command cmd_show = { "show", "WHAT", "show things", record, "show" };
static struct console_command cmd_show_listeners = { "show listeners", "[NAME]", "list the listeners", record, "show listeners" };
static struct console_command cmd_show_services = { "show services", "", "list the services", record, "show services" };
static struct console_command cmd_authz = { "authz check", "--principal ID --service NAME", "evaluate the policies", record, "authz check" };
static struct console_command cmd_log = { "log level", "LEVEL", "set the log level", usage_cmd, "log level" };
static struct console_command cmd_flood = { "flood", "", "prints a lot", flood, NULL };

static void setup_registry(void)
{
	console_registry_init(&reg);
	assert_int_equal(console_register(&reg, &cmd_status), CONSOLE_OK);
	assert_int_equal(console_register(&reg, &cmd_show_listeners), CONSOLE_OK);
	assert_int_equal(console_register(&reg, &cmd_show_services), CONSOLE_OK);
	assert_int_equal(console_register(&reg, &cmd_authz), CONSOLE_OK);
	assert_int_equal(console_register(&reg, &cmd_log), CONSOLE_OK);
	assert_int_equal(console_register(&reg, &cmd_flood), CONSOLE_OK);
}

static int setup_interactive(void **state)
{
	setup_registry();
	memset(&calls, 0, sizeof(calls));
	outlen = 0;
	assert_int_equal(console_init(&con, &reg, CONSOLE_INTERACTIVE, NULL, NULL), CONSOLE_OK);
	reset_out();
	return 0;
}

static int setup_lines(void **state)
{
	setup_registry();
	memset(&calls, 0, sizeof(calls));
	outlen = 0;
	assert_int_equal(console_init(&con, &reg, CONSOLE_LINES, NULL, NULL), CONSOLE_OK);
	reset_out();
	return 0;
}

/* ------------------------------------------------------------ registry */

static void test_register_rules(void **state)
{
	static struct console_command bad_chars = { "Show", "", "h", record, NULL };
	static struct console_command two_spaces = { "show  x", "", "h", record, NULL };
	static struct console_command too_many = { "a b c d e", "", "h", record, NULL };
	static struct console_command trailing = { "show ", "", "h", record, NULL };
	static struct console_command no_run = { "x", "", "h", NULL, NULL };
	static struct console_command no_help = { "x", "", NULL, record, NULL };
	static struct console_command help_clash = { "help me", "", "h", record, NULL };
	static struct console_command quit_clash = { "quit", "", "h", record, NULL };
	static struct console_command four = { "a b c d", "", "h", record, NULL };
	struct console_registry r;
	console_registry_init(&r);
	assert_int_equal(console_register(&r, &bad_chars), CONSOLE_ERR_NAME);
	assert_int_equal(console_register(&r, &two_spaces), CONSOLE_ERR_NAME);
	assert_int_equal(console_register(&r, &too_many), CONSOLE_ERR_NAME);
	assert_int_equal(console_register(&r, &trailing), CONSOLE_ERR_NAME);
	assert_int_equal(console_register(&r, &no_run), CONSOLE_ERR_NO_HANDLER);
	assert_int_equal(console_register(&r, &no_help), CONSOLE_ERR_NO_HANDLER);
	assert_int_equal(console_register(&r, &help_clash), CONSOLE_ERR_DUPLICATE);
	assert_int_equal(console_register(&r, &quit_clash), CONSOLE_ERR_DUPLICATE);
	assert_int_equal(console_register(&r, &four), CONSOLE_OK);
	assert_int_equal(console_register(&r, &cmd_status), CONSOLE_OK);
	assert_int_equal(console_register(&r, &cmd_status), CONSOLE_ERR_DUPLICATE);
	assert_int_equal(r.count, 2);
	static struct console_command many[CONSOLE_MAX_COMMANDS];
	static char names[CONSOLE_MAX_COMMANDS][16];
	for (int i = 0; i < CONSOLE_MAX_COMMANDS; i++) {
		snprintf(names[i], sizeof(names[i]), "cmd%d", i);
		many[i] = (struct console_command){ names[i], "", "h", record, NULL };
		enum console_err err = console_register(&r, &many[i]);
		assert_int_equal(err, i < CONSOLE_MAX_COMMANDS - 2 ? CONSOLE_OK : CONSOLE_ERR_FULL);
	}
}

/* ------------------------------------------------------------ tokenizer */

static void test_tokenizer(void **state)
{
	char buf[CONSOLE_LINE_MAX];
	char *argv[CONSOLE_MAX_ARGS + 1];
	int argc;
	assert_int_equal(console_tokenize("  authz check --principal \"cluster.local/ns/a b/sa/x\" 'it''s' a\\ b \"q\\\"uote\\\\\"",
					  buf, sizeof(buf), argv, CONSOLE_MAX_ARGS, &argc), CONSOLE_OK);
	assert_int_equal(argc, 7);
	assert_string_equal(argv[0], "authz");
	assert_string_equal(argv[3], "cluster.local/ns/a b/sa/x");
	assert_string_equal(argv[4], "its");
	assert_string_equal(argv[5], "a b");
	assert_string_equal(argv[6], "q\"uote\\");
	assert_null(argv[7]);
	assert_int_equal(console_tokenize("''  \"\"", buf, sizeof(buf), argv, CONSOLE_MAX_ARGS, &argc), CONSOLE_OK);
	assert_int_equal(argc, 2);
	assert_string_equal(argv[0], "");
	assert_int_equal(console_tokenize("say \"unterminated", buf, sizeof(buf), argv, CONSOLE_MAX_ARGS, &argc),
			 CONSOLE_ERR_UNTERMINATED);
	assert_int_equal(console_tokenize("say 'x", buf, sizeof(buf), argv, CONSOLE_MAX_ARGS, &argc),
			 CONSOLE_ERR_UNTERMINATED);
	assert_int_equal(console_tokenize("x \\", buf, sizeof(buf), argv, CONSOLE_MAX_ARGS, &argc),
			 CONSOLE_ERR_UNTERMINATED);
	assert_int_equal(console_tokenize("a b c d", buf, sizeof(buf), argv, 3, &argc), CONSOLE_ERR_TOO_MANY_ARGS);
	assert_int_equal(console_tokenize("   ", buf, sizeof(buf), argv, 3, &argc), CONSOLE_OK);
	assert_int_equal(argc, 0);
}

/* ------------------------------------------------------------ dispatch */

static void test_multiword_dispatch(void **state)
{
	feed("show listeners web 'a b'\r", 1);
	assert_int_equal(calls.count, 1);
	assert_string_equal(calls.which, "show listeners");
	assert_int_equal(calls.argc, 3);
	assert_string_equal(calls.argv[0], "show listeners");
	assert_string_equal(calls.argv[1], "web");
	assert_string_equal(calls.argv[2], "a b");
	assert_non_null(strstr(outbuf, "ran show listeners with 2\r\n"));
	assert_non_null(strstr(outbuf, "\r\n" CONSOLE_PROMPT));

	/* longest prefix: "show" alone is registered now too */
	assert_int_equal(console_register(&reg, &cmd_show), CONSOLE_OK);
	feed("show services\r", 2);
	assert_string_equal(calls.which, "show services");
	assert_int_equal(calls.argc, 1);
	feed("show certs\r", 3);
	assert_string_equal(calls.which, "show");
	assert_int_equal(calls.argc, 2);
	assert_string_equal(calls.argv[1], "certs");
	assert_int_equal(con.stats.commands, 3);
}

static void test_unknown_command_hint(void **state)
{
	feed("stauts\r", 1);
	assert_int_equal(calls.count, 0);
	assert_non_null(strstr(outbuf, "error: unknown command 'stauts'; type 'help' for the list of commands"));
	reset_out();
	feed("show foo\r", 2);
	assert_non_null(strstr(outbuf, "error: unknown command 'show foo'; 'show' is followed by one of: listeners services"));
	assert_non_null(strstr(outbuf, "type 'help show'"));
	assert_int_equal(con.stats.unknown, 2);
	reset_out();
	feed("authz\r", 3);
	assert_non_null(strstr(outbuf, "'authz' is followed by one of: check"));
	reset_out();
	feed("say \"oops\r", 4);
	assert_non_null(strstr(outbuf, "error: unterminated quote"));
	assert_int_equal(con.stats.parse_errors, 1);
}

static void test_help(void **state)
{
	feed("help\r", 1);
	assert_non_null(strstr(outbuf, "commands:\r\n"));
	assert_non_null(strstr(outbuf, "  help [COMMAND]"));
	assert_non_null(strstr(outbuf, "  status "));
	assert_non_null(strstr(outbuf, "show uptime, ports and pools\r\n"));
	assert_non_null(strstr(outbuf, "  show listeners [NAME]"));
	assert_non_null(strstr(outbuf, "  authz check --principal ID --service NAME  evaluate the policies\r\n"));
	/* columns line up: every help text starts in the same column */
	const char *a = strstr(outbuf, "list the listeners") , *la = a;
	while (la > outbuf && la[-1] != '\n') la--;
	const char *b = strstr(outbuf, "show uptime"), *lb = b;
	while (lb > outbuf && lb[-1] != '\n') lb--;
	assert_int_equal(a - la, b - lb);
	reset_out();

	feed("help show listeners\r", 2);
	assert_string_equal(outbuf, "help show listeners\r\nusage: show listeners [NAME]\r\n  list the listeners\r\n" CONSOLE_PROMPT);
	reset_out();
	feed("help show\r", 3);
	assert_non_null(strstr(outbuf, "show listeners [NAME]"));
	assert_non_null(strstr(outbuf, "show services"));
	assert_null(strstr(outbuf, "status"));
	reset_out();
	feed("help nosuch\r", 4);
	assert_non_null(strstr(outbuf, "error: no command 'nosuch'"));
	reset_out();
	/* a handler returning USAGE gets the usage line printed for it */
	feed("log level\r", 5);
	assert_non_null(strstr(outbuf, "usage: log level LEVEL\r\n"));
	assert_int_equal(con.stats.commands_failed, 2);   /* help nosuch, log level */
}

/* ------------------------------------------------------------ editing */

static void test_line_editing(void **state)
{
	/* DEL and backspace: "statx" DEL "us" = "status" */
	feed("statx\x7fus\r", 1);
	assert_int_equal(calls.count, 1);
	assert_string_equal(calls.which, "status");
	memset(&calls, 0, sizeof(calls));
	feed("stax\x08tus\r", 2);
	assert_int_equal(calls.count, 1);
	/* backspace at the start of the line does nothing */
	memset(&calls, 0, sizeof(calls));
	feed("\x7f\x7fstatus\r", 2);
	assert_int_equal(calls.count, 1);

	/* cursor left and insert in the middle: "sttus" -> "status" */
	memset(&calls, 0, sizeof(calls));
	feed("sttus\x1b[D\x1b[D\x1b[D" "a\r", 3);
	assert_int_equal(calls.count, 1);
	assert_string_equal(calls.which, "status");

	/* home/end and delete under the cursor: "xstatus" */
	memset(&calls, 0, sizeof(calls));
	feed("xstatus\x01\x1b[3~\x05\r", 4);
	assert_int_equal(calls.count, 1);

	/* Ctrl-U kills the line, Ctrl-C cancels it */
	memset(&calls, 0, sizeof(calls));
	reset_out();
	feed("garbage\x15status\r", 5);
	assert_int_equal(calls.count, 1);
	feed("status\x03", 6);
	assert_int_equal(calls.count, 1);
	assert_non_null(strstr(outbuf, "^C\r\n" CONSOLE_PROMPT));
	feed("\r", 7);  /* the cancelled line is gone */
	assert_int_equal(calls.count, 1);

	/* Ctrl-D on an empty line is ignored; CR LF runs one line */
	reset_out();
	feed("\x04", 8);
	assert_string_equal(outbuf, "");
	feed("status\r\n", 9);
	assert_int_equal(calls.count, 2);
	assert_int_equal(con.stats.commands, 7);
	assert_int_equal(con.stats.unknown, 0);
	/* echo: typed characters come back */
	reset_out();
	feed("ab", 10);
	assert_string_equal(outbuf, "ab");
	feed("\x7f", 10);
	assert_string_equal(outbuf, "ab\b \b");
}

static void test_history(void **state)
{
	feed("show listeners one\r", 1);
	feed("show services\r", 2);
	feed("status\r", 3);
	memset(&calls, 0, sizeof(calls));
	/* up twice -> "show services", run it */
	feed("\x1b[A\x1b[A\r", 4);
	assert_string_equal(calls.which, "show services");
	/* up x3 from fresh: status? history now: one, services, status, services(dup of last? no) */
	memset(&calls, 0, sizeof(calls));
	feed("\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\r", 5);   /* past the oldest stays there */
	assert_string_equal(calls.which, "show listeners");
	assert_string_equal(calls.argv[1], "one");
	/* draft is kept: type, go up, come back down */
	memset(&calls, 0, sizeof(calls));
	feed("sta", 6);
	feed("\x1bOA\x1b[B", 6);
	feed("tus\r", 6);
	assert_string_equal(calls.which, "status");
	/* the redraw uses CR + prompt + line + erase-to-end */
	reset_out();
	feed("\x1b[A", 7);
	assert_string_equal(outbuf, "\r" CONSOLE_PROMPT "status\x1b[K");
	feed("\x15", 7);
	/* duplicates of the last line are not stored twice */
	unsigned before = con.hist_count;
	feed("status\r", 8);
	assert_int_equal(con.hist_count, before);
}

static void test_lines_mode(void **state)
{
	/* no echo, no prompt, stops after each line that produced output */
	const char *in = "status\r\nshow listeners x\n\x01\x1b junk\n";
	size_t n = console_input(&con, in, strlen(in), 1);
	assert_int_equal(n, strlen("status\r\n"));
	drain();
	assert_string_equal(outbuf, "ran status with 0\n");
	feed(in + n, 2);
	assert_non_null(strstr(outbuf, "ran show listeners with 1\n"));
	/* control bytes are dropped and counted; the rest is a line */
	assert_non_null(strstr(outbuf, "error: unknown command 'junk'"));
	assert_int_equal(con.stats.ignored_bytes, 2);
}

static void test_lines_mode_long_line(void **state)
{
	char line[CONSOLE_LINE_MAX + 100];
	memset(line, 'a', sizeof(line) - 2);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	feed(line, 1);
	assert_non_null(strstr(outbuf, "error: line longer than 511 bytes ignored"));
	reset_out();
	feed("status\n", 2);
	assert_string_equal(outbuf, "ran status with 0\n");
}

/* ------------------------------------------------------------ overflow */

static void test_output_truncation(void **state)
{
	flood_bytes = 3 * CONSOLE_OUT_SIZE;
	feed("flood\r", 1);
	assert_true(outlen <= CONSOLE_OUT_SIZE + 16);
	const char *m = strstr(outbuf, "[output truncated: ");
	assert_non_null(m);
	unsigned long dropped = strtoul(m + strlen("[output truncated: "), NULL, 10);
	/* every byte printed is either delivered (a full line of 999 x + CR LF,
	 * or one partial line of x) or counted as dropped */
	size_t full = 0, partial = 0, partial_lines = 0;
	for (const char *p = strstr(outbuf, "flood\r\n") + 7; p < m;) {
		const char *e = strstr(p, "\r\n");
		assert_non_null(e);
		size_t n = (size_t)(e - p);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(p[i], 'x');
		if (n == 999) full++;
		else { partial += n; partial_lines++; }
		p = e + 2;
	}
	assert_true(partial_lines <= 1);
	assert_true(full > 60);
	assert_int_equal(full * 1000 + partial + dropped, flood_bytes / 1000 * 1000);
	assert_non_null(strstr(m, "bytes dropped]\r\n" CONSOLE_PROMPT));
	assert_int_equal(con.stats.truncated, 1);
	/* the next command starts clean */
	reset_out();
	feed("status\r", 2);
	assert_non_null(strstr(outbuf, "ran status with 0"));
	assert_null(strstr(outbuf, "truncated"));
	/* a small flood is not truncated */
	reset_out();
	flood_bytes = 10000;
	feed("flood\r", 3);
	assert_null(strstr(outbuf, "truncated"));
	assert_int_equal(con.stats.truncated, 1);
}

static void test_echo_dropped_when_not_drained(void **state)
{
	/* the driver never drains: echo beyond the buffer is dropped and counted */
	char chunk[256];
	memset(chunk, 'a', sizeof(chunk));
	for (int i = 0; i < 600; i++) {
		console_input(&con, chunk, sizeof(chunk), 1);
		console_input(&con, "\x15", 1, 1);
	}
	const char *p;
	assert_true(console_output(&con, &p) <= CONSOLE_OUT_SIZE);
	assert_true(con.stats.echo_dropped > 0);
}

static void test_print_async(void **state)
{
	feed("sta", 1);
	reset_out();
	assert_true(console_print_async(&con, "{\"log\":1}", 9));
	assert_string_equal(outbuf, "");
	drain();
	assert_string_equal(outbuf, "\r\x1b[K{\"log\":1}\r\n\r" CONSOLE_PROMPT "sta\x1b[K");
	feed("tus\r", 2);
	assert_string_equal(calls.which, "status");
}

/* ------------------------------------------------------------ login */

static char hash_line[CONSOLE_AUTH_ENCODED_MAX];

static int setup_login(void **state)
{
	static const uint8_t salt[16] = "0123456789abcdef";
	setup_registry();
	memset(&calls, 0, sizeof(calls));
	outlen = 0;
	assert_int_equal(console_auth_hash_with_salt("s3cret pw", 9, 1000, salt, sizeof(salt), hash_line, sizeof(hash_line)),
			 CONSOLE_AUTH_OK);
	assert_int_equal(console_init(&con, &reg, CONSOLE_INTERACTIVE, hash_line, NULL), CONSOLE_OK);
	drain();
	return 0;
}

static void test_login_and_rate_limit(void **state)
{
	assert_string_equal(outbuf, CONSOLE_PASSWORD_PROMPT);
	reset_out();
	/* commands are not accepted before login; nothing is echoed */
	feed("status\r", 1000);
	assert_int_equal(calls.count, 0);
	assert_null(strstr(outbuf, "status"));
	assert_non_null(strstr(outbuf, "wrong password (next attempt in 1 s)"));
	assert_int_equal(con.stats.login_failed, 1);
	reset_out();
	/* too soon: refused without checking, not counted as a failure */
	feed("s3cret pw\r", 1500);
	assert_non_null(strstr(outbuf, "login refused: too many failed attempts, try again in 1 s"));
	assert_int_equal(con.stats.login_throttled, 1);
	assert_int_equal(con.stats.login_failed, 1);
	assert_int_equal(con.state, CONSOLE_STATE_LOGIN);
	/* second failure doubles the delay */
	feed("nope\r", 2000);
	assert_int_equal(con.stats.login_failed, 2);
	reset_out();
	feed("s3cret pw\r", 3999);
	assert_int_equal(con.stats.login_throttled, 2);
	assert_non_null(strstr(outbuf, "try again in 1 s"));
	reset_out();
	feed("s3cret pw\r", 4000);
	assert_int_equal(con.stats.login_ok, 1);
	assert_int_equal(con.state, CONSOLE_STATE_COMMAND);
	assert_non_null(strstr(outbuf, "logged in"));
	assert_null(strstr(outbuf, "s3cret"));
	assert_true(strstr(outbuf, CONSOLE_PROMPT) != NULL);
	/* the password is not in the history and the line buffer is wiped */
	for (unsigned i = 0; i < CONSOLE_HISTORY; i++)
		assert_null(strstr(con.history[i], "s3cret"));
	assert_null(memmem(con.line, sizeof(con.line), "s3cret", 6));
	feed("status\r", 4001);
	assert_int_equal(calls.count, 1);
	/* quit: back to the password prompt; the failure count was reset */
	reset_out();
	feed("quit\r", 4002);
	assert_non_null(strstr(outbuf, "logged out\r\n" CONSOLE_PASSWORD_PROMPT));
	feed("bad\r", 4003);
	reset_out();
	feed("s3cret pw\r", 5003);
	assert_int_equal(con.state, CONSOLE_STATE_COMMAND);
	/* the delay doubles per failure up to the cap */
	feed("quit\r", 6000);
	uint64_t t = 10000;
	uint64_t delay = 0;
	for (int i = 0; i < 10; i++) {
		feed("bad\r", t);
		assert_int_equal(con.stats.login_throttled, 2);
		delay = con.login_retry_at_ms - t;
		uint64_t want = (uint64_t)CONSOLE_LOGIN_DELAY_MS << i;
		assert_int_equal(delay, want > CONSOLE_LOGIN_DELAY_MAX_MS ? CONSOLE_LOGIN_DELAY_MAX_MS : want);
		t = con.login_retry_at_ms;
	}
	assert_int_equal(delay, CONSOLE_LOGIN_DELAY_MAX_MS);
	/* console_execute is refused while logged out */
	assert_int_equal(console_execute(&con, "status", t), CONSOLE_CMD_FAILED);
}

static void test_login_bad_hash_locks(void **state)
{
	enum console_auth_err aerr;
	struct console_registry r;
	console_registry_init(&r);
	assert_int_equal(console_init(&con, &r, CONSOLE_LINES, "pbkdf2-sha256$1000$bad", &aerr), CONSOLE_ERR_BAD_HASH);
	assert_int_equal(aerr, CONSOLE_AUTH_BAD_FORMAT);
	outlen = 0;
	drain();
	assert_string_equal(outbuf, CONSOLE_PASSWORD_PROMPT);
	feed("anything\n", 1);
	assert_int_equal(con.state, CONSOLE_STATE_LOGIN);
	assert_non_null(strstr(outbuf, "login impossible"));
	/* a reload that removes the password opens the console */
	assert_int_equal(console_set_password_hash(&con, NULL, NULL), CONSOLE_OK);
	assert_int_equal(con.state, CONSOLE_STATE_COMMAND);
}

static void test_execute(void **state)
{
	feed("sta", 1);
	reset_out();
	assert_int_equal(console_execute(&con, "show listeners \"x y\"", 2), CONSOLE_CMD_OK);
	assert_string_equal(calls.argv[1], "x y");
	drain();
	/* output, then the operator's partial line is shown again */
	assert_string_equal(outbuf, "ran show listeners with 1\r\n\r" CONSOLE_PROMPT "sta\x1b[K");
	assert_int_equal(console_execute(&con, "nosuch", 3), CONSOLE_CMD_FAILED);
}

/* ------------------------------------------------------------ auth */

static void test_auth_format_and_verify(void **state)
{
	char line[CONSOLE_AUTH_ENCODED_MAX];
	assert_int_equal(console_auth_create("correct horse", 13, 1000, line, sizeof(line)), CONSOLE_AUTH_OK);
	assert_memory_equal(line, "pbkdf2-sha256$1000$", 19);
	/* salt: 16 bytes = 24 base64 chars; hash: 32 bytes = 44 */
	const char *salt = line + 19, *d = strchr(salt, '$');
	assert_non_null(d);
	assert_int_equal(d - salt, 24);
	assert_int_equal(strlen(d + 1), 44);
	assert_int_equal(console_auth_check(line, "correct horse", 13), CONSOLE_AUTH_OK);
	assert_int_equal(console_auth_check(line, "correct hors", 12), CONSOLE_AUTH_MISMATCH);
	assert_int_equal(console_auth_check(line, "Correct horse", 13), CONSOLE_AUTH_MISMATCH);
	assert_int_equal(console_auth_check(line, "", 0), CONSOLE_AUTH_BAD_PASSWORD);
	/* two hashes of one password differ (fresh salt) */
	char line2[CONSOLE_AUTH_ENCODED_MAX];
	assert_int_equal(console_auth_create("correct horse", 13, 1000, line2, sizeof(line2)), CONSOLE_AUTH_OK);
	assert_string_not_equal(line, line2);
	/* tampering: every single-character change is refused */
	size_t n = strlen(line);
	for (size_t i = 0; i < n; i++) {
		char t[CONSOLE_AUTH_ENCODED_MAX];
		memcpy(t, line, n + 1);
		t[i] = t[i] == 'A' ? 'B' : t[i] == '$' ? 'x' : 'A';
		if (t[i] == line[i]) continue;
		assert_int_not_equal(console_auth_check(t, "correct horse", 13), CONSOLE_AUTH_OK);
	}
}

static void test_auth_known_answer(void **state)
{
	/* expected value computed independently with
	 *   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt pass:Password \
	 *     -kdfopt salt:NaClNaCl -kdfopt iter:1000 PBKDF2 | xxd -r -p | base64 */
	char line[CONSOLE_AUTH_ENCODED_MAX];
	assert_int_equal(console_auth_hash_with_salt("Password", 8, 1000, (const uint8_t *)"NaClNaCl", 8, line, sizeof(line)),
			 CONSOLE_AUTH_OK);
	assert_string_equal(line, "pbkdf2-sha256$1000$TmFDbE5hQ2w=$MSIt3QlCxuLbefgRbHuMo0kQ2djxo9x35TFSZkuF5c0=");
	assert_int_equal(console_auth_check(line, "Password", 8), CONSOLE_AUTH_OK);
	/* salts under 8 bytes are refused, as is a too small output buffer */
	assert_int_equal(console_auth_hash_with_salt("Password", 8, 1000, (const uint8_t *)"NaCl", 4, line, sizeof(line)),
			 CONSOLE_AUTH_BAD_SALT);
	assert_int_equal(console_auth_hash_with_salt("Password", 8, 1000, (const uint8_t *)"NaClNaCl", 8, line, 40),
			 CONSOLE_AUTH_BUFFER);
	assert_string_equal(line, "");
}

static void test_auth_parse_errors(void **state)
{
	struct console_auth_hash h;
	const char *good_salt = "MDEyMzQ1Njc4OWFiY2RlZg==";
	const char *good_hash = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	char s[256];
	snprintf(s, sizeof(s), "pbkdf2-sha256$1000$%s$%s", good_salt, good_hash);
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_OK);
	assert_int_equal(h.iterations, 1000);
	assert_int_equal(h.salt_len, 16);
	snprintf(s, sizeof(s), "pbkdf2-sha1$1000$%s$%s", good_salt, good_hash);
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_SCHEME);
	snprintf(s, sizeof(s), "pbkdf2-sha256$999$%s$%s", good_salt, good_hash);
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_ITERATIONS);
	snprintf(s, sizeof(s), "pbkdf2-sha256$01000$%s$%s", good_salt, good_hash);
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_ITERATIONS);
	snprintf(s, sizeof(s), "pbkdf2-sha256$1e3$%s$%s", good_salt, good_hash);
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_ITERATIONS);
	snprintf(s, sizeof(s), "pbkdf2-sha256$1000$%s$%s", "MDEy", good_hash);   /* 3-byte salt */
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_SALT);
	snprintf(s, sizeof(s), "pbkdf2-sha256$1000$%s$%s", "MDEyMzQ1Njc4OWFiY2RlZg", good_hash);   /* no padding */
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_SALT);
	snprintf(s, sizeof(s), "pbkdf2-sha256$1000$%s$%s", "MDEyMzQ1Njc4OWFiY2RlZh==", good_hash);   /* non-zero pad bits */
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_SALT);
	snprintf(s, sizeof(s), "pbkdf2-sha256$1000$%s$%s", good_salt, "AAAA");
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_HASH);
	snprintf(s, sizeof(s), "pbkdf2-sha256$1000$%s$%s$", good_salt, good_hash);
	assert_int_equal(console_auth_parse(s, &h), CONSOLE_AUTH_BAD_FORMAT);
	assert_int_equal(console_auth_parse("pbkdf2-sha256$1000", &h), CONSOLE_AUTH_BAD_FORMAT);
	assert_int_equal(console_auth_parse("", &h), CONSOLE_AUTH_BAD_FORMAT);
	assert_int_equal(console_auth_parse(NULL, &h), CONSOLE_AUTH_BAD_FORMAT);
	assert_int_equal(h.iterations, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_rules),
		cmocka_unit_test(test_tokenizer),
		cmocka_unit_test_setup(test_multiword_dispatch, setup_interactive),
		cmocka_unit_test_setup(test_unknown_command_hint, setup_interactive),
		cmocka_unit_test_setup(test_help, setup_interactive),
		cmocka_unit_test_setup(test_line_editing, setup_interactive),
		cmocka_unit_test_setup(test_history, setup_interactive),
		cmocka_unit_test_setup(test_lines_mode, setup_lines),
		cmocka_unit_test_setup(test_lines_mode_long_line, setup_lines),
		cmocka_unit_test_setup(test_output_truncation, setup_interactive),
		cmocka_unit_test_setup(test_echo_dropped_when_not_drained, setup_interactive),
		cmocka_unit_test_setup(test_print_async, setup_interactive),
		cmocka_unit_test_setup(test_login_and_rate_limit, setup_login),
		cmocka_unit_test(test_login_bad_hash_locks),
		cmocka_unit_test_setup(test_execute, setup_interactive),
		cmocka_unit_test(test_auth_format_and_verify),
		cmocka_unit_test(test_auth_known_answer),
		cmocka_unit_test(test_auth_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
