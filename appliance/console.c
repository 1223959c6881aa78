/* Operator console engine: see console.h for the contract and key map. */
#include "appliance/console.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

static int builtin_help(struct console *c, void *ctx, int argc, char **argv);
static int builtin_quit(struct console *c, void *ctx, int argc, char **argv);

static const struct console_command builtin_cmds[] = {
	{ "help", "[COMMAND]", "list the commands, or show the usage of one", builtin_help, NULL },
	{ "quit", "", "log out (back to the password prompt when a password is set)", builtin_quit, NULL },
};
#define NBUILTIN ((int)(sizeof(builtin_cmds) / sizeof(builtin_cmds[0])))

const char *console_strerror(enum console_err err)
{
	switch (err) {
	case CONSOLE_OK: return "ok";
	case CONSOLE_ERR_FULL: return "command registry full";
	case CONSOLE_ERR_DUPLICATE: return "command already registered";
	case CONSOLE_ERR_NAME: return "bad command name (1-4 words of a-z 0-9 _ - separated by one space)";
	case CONSOLE_ERR_NO_HANDLER: return "command has no handler or no help text";
	case CONSOLE_ERR_UNTERMINATED: return "unterminated quote";
	case CONSOLE_ERR_TOO_MANY_ARGS: return "too many arguments";
	case CONSOLE_ERR_BAD_HASH: return "console password hash is invalid";
	}
	return "unknown error";
}

/* ------------------------------------------------------------ registry */

void console_registry_init(struct console_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
}

static bool name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= CONSOLE_NAME_MAX || name[0] == ' ' || name[n - 1] == ' ')
		return false;
	int words = 1;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (ch == ' ') {
			if (name[i + 1] == ' ')
				return false;
			words++;
		} else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) {
			return false;
		}
	}
	return words <= CONSOLE_NAME_WORDS;
}

/* Number of name words when every word of `name` equals argv[0..], else 0. */
static int name_match(const char *name, char *const *argv, int argc)
{
	int k = 0;
	const char *p = name;
	while (*p) {
		const char *end = strchr(p, ' ');
		size_t wl = end ? (size_t)(end - p) : strlen(p);
		if (k >= argc || strlen(argv[k]) != wl || memcmp(argv[k], p, wl) != 0)
			return 0;
		k++;
		p = end ? end + 1 : p + wl;
	}
	return k;
}

/* True when argv[0..argc-1] are the leading words of `name` (argc >= 1). */
static bool name_has_prefix(const char *name, char *const *argv, int argc)
{
	const char *p = name;
	for (int k = 0; k < argc; k++) {
		if (!*p)
			return false;
		const char *end = strchr(p, ' ');
		size_t wl = end ? (size_t)(end - p) : strlen(p);
		if (strlen(argv[k]) != wl || memcmp(argv[k], p, wl) != 0)
			return false;
		p = end ? end + 1 : p + wl;
	}
	return true;
}

static bool is_builtin_word(const char *name)
{
	size_t wl = strcspn(name, " ");
	for (int i = 0; i < NBUILTIN; i++)
		if (strlen(builtin_cmds[i].name) == wl && memcmp(builtin_cmds[i].name, name, wl) == 0)
			return true;
	return wl == 4 && memcmp(name, "exit", 4) == 0;
}

enum console_err console_register(struct console_registry *reg, const struct console_command *cmd)
{
	if (!cmd || !cmd->run || !cmd->help)
		return CONSOLE_ERR_NO_HANDLER;
	if (!cmd->name || !name_valid(cmd->name))
		return CONSOLE_ERR_NAME;
	if (is_builtin_word(cmd->name))
		return CONSOLE_ERR_DUPLICATE;
	for (int i = 0; i < reg->count; i++)
		if (strcmp(reg->cmds[i]->name, cmd->name) == 0)
			return CONSOLE_ERR_DUPLICATE;
	if (reg->count >= CONSOLE_MAX_COMMANDS)
		return CONSOLE_ERR_FULL;
	reg->cmds[reg->count++] = cmd;
	return CONSOLE_OK;
}

/* ------------------------------------------------------------ output */

static void out_compact(struct console *c)
{
	if (c->out_start && c->out_len)
		memmove(c->out, c->out + c->out_start, c->out_len);
	c->out_start = 0;
}

/* Copies `data` into the output buffer without letting the pending bytes
 * exceed `limit`; LF becomes CR LF in interactive mode (a pair is never
 * split). Returns the number of input bytes taken. */
static size_t out_put(struct console *c, const char *data, size_t len, size_t limit)
{
	if (c->out_start + c->out_len + 2 * len > CONSOLE_OUT_SIZE)
		out_compact(c);
	if (limit > CONSOLE_OUT_SIZE - c->out_start)
		limit = CONSOLE_OUT_SIZE - c->out_start;
	char *o = c->out + c->out_start;
	size_t i;
	for (i = 0; i < len; i++) {
		char ch = data[i];
		bool crlf = ch == '\n' && c->mode == CONSOLE_INTERACTIVE &&
			    !(c->out_len > 0 && o[c->out_len - 1] == '\r') && !(i > 0 && data[i - 1] == '\r');
		size_t need = crlf ? 2 : 1;
		if (c->out_len + need > limit)
			break;
		if (crlf)
			o[c->out_len++] = '\r';
		o[c->out_len++] = ch;
	}
	return i;
}

static char last_out_byte(const struct console *c)
{
	return c->out_len ? c->out[c->out_start + c->out_len - 1] : c->in_command ? 0 : '\n';
}

/* Engine output (echo, prompts, markers): may use the whole buffer. */
static void echo(struct console *c, const char *s, size_t n)
{
	size_t took = out_put(c, s, n, CONSOLE_OUT_SIZE);
	if (took < n) {
		c->stats.echo_dropped += n - took;
		c->stats.bytes_dropped += n - took;
	}
}

static void echo_str(struct console *c, const char *s)
{
	echo(c, s, strlen(s));
}

static void echo_repeat(struct console *c, char ch, size_t n)
{
	while (n--)
		echo(c, &ch, 1);
}

size_t console_write(struct console *c, const void *data, size_t len)
{
	if (!c->in_command) {
		size_t took = out_put(c, data, len, CONSOLE_OUT_SIZE - CONSOLE_OUT_RESERVE);
		c->stats.bytes_dropped += len - took;
		return took;
	}
	if (c->truncated) {
		c->dropped_this_command += len;
		c->stats.bytes_dropped += len;
		return 0;
	}
	size_t took = out_put(c, data, len, CONSOLE_OUT_SIZE - CONSOLE_OUT_RESERVE);
	if (took < len) {
		c->truncated = true;
		c->dropped_this_command += len - took;
		c->stats.bytes_dropped += len - took;
	}
	return took;
}

size_t console_vprintf(struct console *c, const char *fmt, va_list ap)
{
	int n = vsnprintf(c->fmtbuf, sizeof(c->fmtbuf), fmt, ap);
	if (n < 0)
		return 0;
	size_t len = (size_t)n;
	size_t lost = 0;
	if (len >= sizeof(c->fmtbuf)) {
		lost = len - (sizeof(c->fmtbuf) - 1);
		len = sizeof(c->fmtbuf) - 1;
	}
	size_t took = console_write(c, c->fmtbuf, len);
	if (lost) {
		/* account for what vsnprintf cut as if console_write dropped it */
		if (c->in_command) {
			c->truncated = true;
			c->dropped_this_command += lost;
		}
		c->stats.bytes_dropped += lost;
	}
	return took;
}

size_t console_printf(struct console *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = console_vprintf(c, fmt, ap);
	va_end(ap);
	return n;
}

size_t console_output_room(const struct console *c)
{
	size_t limit = CONSOLE_OUT_SIZE - CONSOLE_OUT_RESERVE;
	if (c->truncated || c->out_len >= limit)
		return 0;
	return limit - c->out_len;
}

uint64_t console_now_ms(const struct console *c)
{
	return c->now_ms;
}

size_t console_output(const struct console *c, const char **data)
{
	*data = c->out + c->out_start;
	return c->out_len;
}

void console_output_consume(struct console *c, size_t n)
{
	if (n > c->out_len)
		n = c->out_len;
	c->out_start += n;
	c->out_len -= n;
	if (c->out_len == 0)
		c->out_start = 0;
}

bool console_output_pending(const struct console *c)
{
	return c->out_len > 0;
}

/* ------------------------------------------------------------ prompts */

static void prompt(struct console *c)
{
	if (c->state == CONSOLE_STATE_LOGIN)
		echo_str(c, CONSOLE_PASSWORD_PROMPT);
	else if (c->mode == CONSOLE_INTERACTIVE)
		echo_str(c, CONSOLE_PROMPT);
}

static void clear_line(struct console *c)
{
	OPENSSL_cleanse(c->line, sizeof(c->line));
	c->len = c->cursor = 0;
	c->hist_pos = -1;
}

/* Rewrites the whole prompt line and puts the cursor back. */
static void redraw(struct console *c)
{
	if (c->mode != CONSOLE_INTERACTIVE || c->state != CONSOLE_STATE_COMMAND)
		return;
	echo_str(c, "\r" CONSOLE_PROMPT);
	echo(c, c->line, c->len);
	echo_str(c, "\x1b[K");
	echo_repeat(c, '\b', c->len - c->cursor);
}

static enum console_err set_hash(struct console *c, const char *hash, enum console_auth_err *auth_err)
{
	enum console_auth_err aerr = CONSOLE_AUTH_OK;
	OPENSSL_cleanse(&c->auth, sizeof(c->auth));
	c->auth_required = hash && *hash;
	if (c->auth_required)
		aerr = console_auth_parse(hash, &c->auth);
	if (auth_err)
		*auth_err = aerr;
	return aerr == CONSOLE_AUTH_OK ? CONSOLE_OK : CONSOLE_ERR_BAD_HASH;
}

enum console_err console_init(struct console *c, const struct console_registry *reg,
			      enum console_mode mode, const char *password_hash,
			      enum console_auth_err *auth_err)
{
	memset(c, 0, sizeof(*c));
	c->reg = reg;
	c->mode = mode;
	c->hist_pos = -1;
	enum console_err err = set_hash(c, password_hash, auth_err);
	c->state = c->auth_required ? CONSOLE_STATE_LOGIN : CONSOLE_STATE_COMMAND;
	prompt(c);
	return err;
}

enum console_err console_set_password_hash(struct console *c, const char *password_hash,
					   enum console_auth_err *auth_err)
{
	enum console_err err = set_hash(c, password_hash, auth_err);
	if (!c->auth_required && c->state == CONSOLE_STATE_LOGIN) {
		clear_line(c);
		c->state = CONSOLE_STATE_COMMAND;
		echo_str(c, "\n");
		prompt(c);
	}
	return err;
}

/* ------------------------------------------------------------ tokenizer */

enum console_err console_tokenize(const char *line, char *buf, size_t bufsize,
				  char **argv, int max, int *argc)
{
	size_t o = 0;
	int n = 0;
	const char *p = line;
	*argc = 0;
	argv[0] = NULL;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (!*p)
			break;
		if (n >= max)
			return CONSOLE_ERR_TOO_MANY_ARGS;
		if (o >= bufsize)
			return CONSOLE_ERR_TOO_MANY_ARGS;
		argv[n++] = buf + o;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			char ch = *p++;
			if (ch == '\'') {
				while (*p && *p != '\'') {
					if (o + 1 >= bufsize) return CONSOLE_ERR_TOO_MANY_ARGS;
					buf[o++] = *p++;
				}
				if (!*p)
					return CONSOLE_ERR_UNTERMINATED;
				p++;
				continue;
			}
			if (ch == '"') {
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					if (o + 1 >= bufsize) return CONSOLE_ERR_TOO_MANY_ARGS;
					buf[o++] = *p++;
				}
				if (!*p)
					return CONSOLE_ERR_UNTERMINATED;
				p++;
				continue;
			}
			if (ch == '\\') {
				if (!*p)
					return CONSOLE_ERR_UNTERMINATED;
				ch = *p++;
			}
			if (o + 1 >= bufsize) return CONSOLE_ERR_TOO_MANY_ARGS;
			buf[o++] = ch;
		}
		buf[o++] = '\0';
	}
	argv[n] = NULL;
	*argc = n;
	return CONSOLE_OK;
}

/* ------------------------------------------------------------ commands */

static const struct console_command *find_command(const struct console *c, char *const *argv,
						  int argc, int *words)
{
	const struct console_command *best = NULL;
	int best_words = 0;
	for (int i = 0; i < NBUILTIN; i++) {
		int k = name_match(builtin_cmds[i].name, argv, argc);
		if (k > best_words) { best = &builtin_cmds[i]; best_words = k; }
	}
	if (argc > 0 && strcmp(argv[0], "exit") == 0 && best_words == 0) {
		best = &builtin_cmds[1];
		best_words = 1;
	}
	for (int i = 0; c->reg && i < c->reg->count; i++) {
		int k = name_match(c->reg->cmds[i]->name, argv, argc);
		if (k > best_words) { best = c->reg->cmds[i]; best_words = k; }
	}
	*words = best_words;
	return best;
}

static void print_command_line(struct console *c, const struct console_command *cmd, int width)
{
	char syn[CONSOLE_NAME_MAX + 128];
	const char *args = cmd->args_help ? cmd->args_help : "";
	snprintf(syn, sizeof(syn), "%s%s%s", cmd->name, *args ? " " : "", args);
	console_printf(c, "  %-*s  %s\n", width, syn, cmd->help);
}

static int synopsis_width(const struct console_command *cmd)
{
	const char *args = cmd->args_help ? cmd->args_help : "";
	size_t w = strlen(cmd->name) + (*args ? 1 + strlen(args) : 0);
	return w > 40 ? 40 : (int)w;
}

/* Lists every command whose name begins with argv[0..argc-1] (all when
 * argc == 0). Returns how many were listed. */
static int list_commands(struct console *c, char *const *argv, int argc)
{
	int width = 0, count = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < NBUILTIN + (c->reg ? c->reg->count : 0); i++) {
			const struct console_command *cmd = i < NBUILTIN ? &builtin_cmds[i] : c->reg->cmds[i - NBUILTIN];
			if (argc > 0 && !name_has_prefix(cmd->name, argv, argc))
				continue;
			if (pass == 0) {
				int w = synopsis_width(cmd);
				if (w > width) width = w;
				count++;
			} else {
				print_command_line(c, cmd, width);
			}
		}
	}
	return count;
}

static int builtin_help(struct console *c, void *ctx, int argc, char **argv)
{
	if (argc <= 1) {
		console_printf(c, "commands:\n");
		list_commands(c, NULL, 0);
		console_printf(c, "type 'help COMMAND' for one command; arguments with spaces go in quotes\n");
		return CONSOLE_CMD_OK;
	}
	int words;
	const struct console_command *cmd = find_command(c, argv + 1, argc - 1, &words);
	if (cmd && words == argc - 1) {
		const char *args = cmd->args_help ? cmd->args_help : "";
		console_printf(c, "usage: %s%s%s\n  %s\n", cmd->name, *args ? " " : "", args, cmd->help);
		return CONSOLE_CMD_OK;
	}
	if (list_commands(c, argv + 1, argc - 1) > 0)
		return CONSOLE_CMD_OK;
	console_printf(c, "error: no command '");
	for (int i = 1; i < argc; i++)
		console_printf(c, "%s%s", i > 1 ? " " : "", argv[i]);
	console_printf(c, "'; type 'help' for the list of commands\n");
	return CONSOLE_CMD_FAILED;
}

static int builtin_quit(struct console *c, void *ctx, int argc, char **argv)
{
	if (!c->auth_required) {
		console_printf(c, "the console has no password, so there is nothing to log out of "
				  "('shutdown' stops meshgate)\n");
		return CONSOLE_CMD_OK;
	}
	console_printf(c, "logged out\n");
	c->state = CONSOLE_STATE_LOGIN;
	return CONSOLE_CMD_OK;
}

static void unknown_command(struct console *c, char **argv, int argc)
{
	c->stats.unknown++;
	/* "show foo": the first word starts multi-word commands, list them */
	bool prefix = false;
	for (int i = 0; c->reg && i < c->reg->count; i++)
		if (name_has_prefix(c->reg->cmds[i]->name, argv, 1) && strchr(c->reg->cmds[i]->name, ' '))
			prefix = true;
	if (prefix) {
		console_printf(c, "error: unknown command '%s%s%s'; '%s' is followed by one of:",
			       argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "", argv[0]);
		for (int i = 0; i < c->reg->count; i++) {
			const char *name = c->reg->cmds[i]->name;
			if (name_has_prefix(name, argv, 1) && strchr(name, ' '))
				console_printf(c, " %s", strchr(name, ' ') + 1);
		}
		console_printf(c, "\ntype 'help %s' for details\n", argv[0]);
		return;
	}
	console_printf(c, "error: unknown command '%s'; type 'help' for the list of commands\n", argv[0]);
}

/* Runs one line in COMMAND state; output goes through console_write. */
static int run_line(struct console *c, const char *line)
{
	int argc;
	enum console_err terr = console_tokenize(line, c->tokbuf, sizeof(c->tokbuf), c->argv,
						 CONSOLE_MAX_ARGS, &argc);
	c->in_command = true;
	c->truncated = false;
	c->dropped_this_command = 0;
	int rc = CONSOLE_CMD_OK;
	if (terr != CONSOLE_OK) {
		c->stats.parse_errors++;
		if (terr == CONSOLE_ERR_TOO_MANY_ARGS)
			console_printf(c, "error: too many arguments (at most %d)\n", CONSOLE_MAX_ARGS);
		else
			console_printf(c, "error: %s\n", console_strerror(terr));
		rc = CONSOLE_CMD_FAILED;
	} else if (argc > 0) {
		int words;
		const struct console_command *cmd = find_command(c, c->argv, argc, &words);
		if (!cmd) {
			unknown_command(c, c->argv, argc);
			rc = CONSOLE_CMD_FAILED;
		} else {
			c->stats.commands++;
			snprintf(c->namebuf, sizeof(c->namebuf), "%s", cmd->name);
			char **args = c->argv + words - 1;
			args[0] = c->namebuf;
			rc = cmd->run(c, cmd->ctx, argc - words + 1, args);
			if (rc == CONSOLE_CMD_USAGE) {
				const char *a = cmd->args_help ? cmd->args_help : "";
				console_printf(c, "usage: %s%s%s\n", cmd->name, *a ? " " : "", a);
			}
			if (rc != CONSOLE_CMD_OK) {
				c->stats.commands_failed++;
				if (rc != CONSOLE_CMD_USAGE)
					rc = CONSOLE_CMD_FAILED;
			}
		}
	}
	c->in_command = false;
	if (c->truncated) {
		char marker[96];
		c->stats.truncated++;
		int n = snprintf(marker, sizeof(marker), "%s[output truncated: %" PRIu64 " bytes dropped]\n",
				 last_out_byte(c) == '\n' ? "" : "\n", c->dropped_this_command);
		echo(c, marker, (size_t)n);
	} else if (last_out_byte(c) != '\n' && c->out_len > 0) {
		echo_str(c, "\n");
	}
	c->truncated = false;
	OPENSSL_cleanse(c->tokbuf, sizeof(c->tokbuf));
	return rc;
}

/* ------------------------------------------------------------ login */

static void try_login(struct console *c)
{
	if (c->now_ms < c->login_retry_at_ms) {
		uint64_t wait = (c->login_retry_at_ms - c->now_ms + 999) / 1000;
		c->stats.login_throttled++;
		console_printf(c, "login refused: too many failed attempts, try again in %" PRIu64 " s\n", wait);
		return;
	}
	enum console_auth_err err = console_auth_verify(&c->auth, c->line, c->len);
	if (err == CONSOLE_AUTH_OK) {
		c->stats.login_ok++;
		c->login_failures = 0;
		c->login_retry_at_ms = 0;
		c->state = CONSOLE_STATE_COMMAND;
		console_printf(c, "logged in; type 'help' for the commands\n");
		return;
	}
	c->stats.login_failed++;
	if (c->login_failures < 32)
		c->login_failures++;
	uint64_t delay = (uint64_t)CONSOLE_LOGIN_DELAY_MS << (c->login_failures - 1);
	if (delay > CONSOLE_LOGIN_DELAY_MAX_MS)
		delay = CONSOLE_LOGIN_DELAY_MAX_MS;
	c->login_retry_at_ms = c->now_ms + delay;
	if (err == CONSOLE_AUTH_MISMATCH || err == CONSOLE_AUTH_BAD_PASSWORD)
		console_printf(c, "wrong password (next attempt in %" PRIu64 " s)\n", (delay + 999) / 1000);
	else
		console_printf(c, "login impossible: %s; fix console.passwordHash in the config\n",
			       c->auth.iterations == 0 ? console_strerror(CONSOLE_ERR_BAD_HASH)
						       : console_auth_strerror(err));
}

/* ------------------------------------------------------------ history */

static void history_add(struct console *c, const char *line, size_t len)
{
	if (len == 0)
		return;
	if (c->hist_count > 0) {
		const char *last = c->history[(c->hist_head + CONSOLE_HISTORY - 1) % CONSOLE_HISTORY];
		if (strlen(last) == len && memcmp(last, line, len) == 0)
			return;
	}
	memcpy(c->history[c->hist_head], line, len);
	c->history[c->hist_head][len] = '\0';
	c->hist_head = (c->hist_head + 1) % CONSOLE_HISTORY;
	if (c->hist_count < CONSOLE_HISTORY)
		c->hist_count++;
}

static void load_line(struct console *c, const char *text)
{
	size_t n = strlen(text);
	memcpy(c->line, text, n);
	c->line[n] = '\0';
	c->len = c->cursor = n;
	redraw(c);
}

static void history_move(struct console *c, int dir)
{
	int pos = c->hist_pos + dir;
	if (pos < -1 || pos >= (int)c->hist_count)
		return;
	if (c->hist_pos == -1) {
		memcpy(c->draft, c->line, c->len);
		c->draft[c->len] = '\0';
	}
	c->hist_pos = pos;
	if (pos == -1)
		load_line(c, c->draft);
	else
		load_line(c, c->history[(c->hist_head + CONSOLE_HISTORY - 1 - (unsigned)pos) % CONSOLE_HISTORY]);
}

/* ------------------------------------------------------------ editing */

static bool echoing(const struct console *c)
{
	return c->mode == CONSOLE_INTERACTIVE && c->state == CONSOLE_STATE_COMMAND;
}

static void insert_char(struct console *c, char ch)
{
	if (c->len + 1 >= CONSOLE_LINE_MAX) {
		c->stats.line_overflow++;
		if (echoing(c))
			echo_str(c, "\a");
		return;
	}
	memmove(c->line + c->cursor + 1, c->line + c->cursor, c->len - c->cursor);
	c->line[c->cursor] = ch;
	c->len++;
	c->line[c->len] = '\0';
	if (echoing(c)) {
		echo(c, c->line + c->cursor, c->len - c->cursor);
		echo_repeat(c, '\b', c->len - c->cursor - 1);
	}
	c->cursor++;
}

static void delete_at_cursor(struct console *c)
{
	if (c->cursor >= c->len)
		return;
	memmove(c->line + c->cursor, c->line + c->cursor + 1, c->len - c->cursor - 1);
	c->len--;
	c->line[c->len] = '\0';
	if (echoing(c)) {
		echo(c, c->line + c->cursor, c->len - c->cursor);
		echo_str(c, " ");
		echo_repeat(c, '\b', c->len - c->cursor + 1);
	}
}

static void cursor_left(struct console *c)
{
	if (c->cursor == 0)
		return;
	c->cursor--;
	if (echoing(c))
		echo_str(c, "\b");
}

static void cursor_right(struct console *c)
{
	if (c->cursor >= c->len)
		return;
	if (echoing(c))
		echo(c, c->line + c->cursor, 1);
	c->cursor++;
}

static void cursor_home(struct console *c)
{
	if (echoing(c))
		echo_repeat(c, '\b', c->cursor);
	c->cursor = 0;
}

static void cursor_end(struct console *c)
{
	if (echoing(c))
		echo(c, c->line + c->cursor, c->len - c->cursor);
	c->cursor = c->len;
}

/* A complete line: run it (or use it as the password). */
static void enter_line(struct console *c)
{
	if (c->mode == CONSOLE_INTERACTIVE)
		echo_str(c, "\n");
	c->line[c->len] = '\0';
	if (c->state == CONSOLE_STATE_LOGIN) {
		if (c->mode == CONSOLE_LINES)
			echo_str(c, "\n");
		try_login(c);
	} else {
		if (c->mode == CONSOLE_INTERACTIVE)
			history_add(c, c->line, c->len);
		run_line(c, c->line);
	}
	clear_line(c);
	prompt(c);
}

static void escape_final(struct console *c, char final)
{
	if (c->state != CONSOLE_STATE_COMMAND)
		return;
	const char *param = c->esc_param;
	switch (final) {
	case 'A': history_move(c, +1); break;
	case 'B': history_move(c, -1); break;
	case 'C': cursor_right(c); break;
	case 'D': cursor_left(c); break;
	case 'H': cursor_home(c); break;
	case 'F': cursor_end(c); break;
	case '~':
		if (strcmp(param, "1") == 0 || strcmp(param, "7") == 0) cursor_home(c);
		else if (strcmp(param, "4") == 0 || strcmp(param, "8") == 0) cursor_end(c);
		else if (strcmp(param, "3") == 0) delete_at_cursor(c);
		else c->stats.ignored_bytes++;
		break;
	default:
		c->stats.ignored_bytes++;
	}
}

/* Returns true when the byte completed a line that was executed. */
static bool interactive_byte(struct console *c, unsigned char b)
{
	if (c->esc_state == 1) {
		if (b == '[' || b == 'O') {
			c->esc_state = 2;
			c->esc_nparam = 0;
			c->esc_param[0] = '\0';
		} else {
			c->esc_state = 0;
			c->stats.ignored_bytes++;
		}
		return false;
	}
	if (c->esc_state == 2) {
		if ((b >= '0' && b <= '9') || b == ';') {
			if (c->esc_nparam + 1 < sizeof(c->esc_param)) {
				c->esc_param[c->esc_nparam++] = (char)b;
				c->esc_param[c->esc_nparam] = '\0';
			}
			return false;
		}
		c->esc_state = 0;
		escape_final(c, (char)b);
		return false;
	}
	bool after_cr = c->last_cr;
	c->last_cr = false;
	switch (b) {
	case '\r':
		c->last_cr = true;
		enter_line(c);
		return true;
	case '\n':
		if (after_cr)
			return false;
		enter_line(c);
		return true;
	case 0x1b:
		c->esc_state = 1;
		return false;
	case 0x08:
	case 0x7f:
		if (c->cursor > 0) {
			cursor_left(c);
			delete_at_cursor(c);
		}
		return false;
	case 0x01: cursor_home(c); return false;
	case 0x05: cursor_end(c); return false;
	case 0x04: delete_at_cursor(c); return false;  /* empty line: nothing to delete */
	case 0x15:  /* Ctrl-U */
		c->len = c->cursor = 0;
		c->line[0] = '\0';
		redraw(c);
		return false;
	case 0x03:  /* Ctrl-C */
		echo_str(c, "^C\n");
		clear_line(c);
		prompt(c);
		return false;
	default:
		if (b >= 0x20 && b < 0x7f)
			insert_char(c, (char)b);
		else
			c->stats.ignored_bytes++;
		return false;
	}
}

static bool lines_byte(struct console *c, unsigned char b)
{
	if (b == '\n') {
		if (c->overflowed) {
			c->overflowed = false;
			c->in_command = true;
			console_printf(c, "error: line longer than %d bytes ignored\n", CONSOLE_LINE_MAX - 1);
			c->in_command = false;
			c->stats.parse_errors++;
			clear_line(c);
			prompt(c);
			return true;
		}
		enter_line(c);
		return true;
	}
	if (b == '\r')
		return false;
	if (b == '\t')
		b = ' ';
	if (b < 0x20 || b >= 0x7f) {
		c->stats.ignored_bytes++;
		return false;
	}
	if (c->len + 1 >= CONSOLE_LINE_MAX) {
		c->stats.line_overflow++;
		c->overflowed = true;
		return false;
	}
	insert_char(c, (char)b);
	return false;
}

size_t console_input(struct console *c, const void *data, size_t len, uint64_t now_ms)
{
	const unsigned char *p = data;
	c->now_ms = now_ms;
	for (size_t i = 0; i < len; i++) {
		bool ran = c->mode == CONSOLE_INTERACTIVE ? interactive_byte(c, p[i]) : lines_byte(c, p[i]);
		if (ran && c->out_len > 0)
			return i + 1;
	}
	return len;
}

int console_execute(struct console *c, const char *line, uint64_t now_ms)
{
	c->now_ms = now_ms;
	int rc;
	if (c->state != CONSOLE_STATE_COMMAND) {
		c->in_command = true;
		console_printf(c, "error: log in first\n");
		c->in_command = false;
		rc = CONSOLE_CMD_FAILED;
	} else if (strlen(line) >= CONSOLE_LINE_MAX) {
		c->in_command = true;
		console_printf(c, "error: line longer than %d bytes ignored\n", CONSOLE_LINE_MAX - 1);
		c->in_command = false;
		c->stats.parse_errors++;
		rc = CONSOLE_CMD_FAILED;
	} else {
		rc = run_line(c, line);
	}
	if (c->mode == CONSOLE_INTERACTIVE || c->state == CONSOLE_STATE_LOGIN) {
		/* the operator's half-typed line is kept and shown again */
		if (c->state == CONSOLE_STATE_COMMAND && c->mode == CONSOLE_INTERACTIVE)
			redraw(c);
		else
			prompt(c);
	}
	return rc;
}

bool console_print_async(struct console *c, const char *text, size_t len)
{
	bool nl = len == 0 || text[len - 1] != '\n';
	size_t need = 2 * len + 2 + 8 + sizeof(CONSOLE_PROMPT) + 2 * c->len + sizeof(CONSOLE_PASSWORD_PROMPT);
	size_t limit = CONSOLE_OUT_SIZE - CONSOLE_OUT_RESERVE;
	if (c->out_len + need > limit) {
		c->stats.async_dropped++;
		return false;
	}
	bool interactive = c->mode == CONSOLE_INTERACTIVE;
	if (interactive)
		echo_str(c, "\r\x1b[K");
	else if (c->state == CONSOLE_STATE_LOGIN && last_out_byte(c) != '\n')
		echo_str(c, "\n");
	echo(c, text, len);
	if (nl)
		echo_str(c, "\n");
	if (interactive && c->state == CONSOLE_STATE_COMMAND)
		redraw(c);
	else if (c->state == CONSOLE_STATE_LOGIN)
		prompt(c);
	return true;
}
