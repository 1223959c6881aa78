/* Test harness and reference wiring: drivers/serial + the console engine in
 * a poll() loop, the way appliance/main.c is meant to drive them.
 *
 *   console_demo [--console SPEC] [--password-hash HASH]
 *   console_demo hash-password [--iterations N]
 *
 * Commands: status, echo ARGS..., show things, shutdown. With --console pty
 * it prints "console on PATH" on stderr. Exits 0 after `shutdown`, after
 * EOF on piped stdin once the output is written, or on SIGINT/SIGTERM
 * (restoring the terminal). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "appliance/console.h"
#include "appliance/console_auth.h"
#include "drivers/serial.h"

static volatile sig_atomic_t stop_signal;
static struct serial ser;
static struct console con;
static struct console_registry reg;

struct app { uint64_t start_ms; int shutdown; };

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int cmd_status(struct console *c, void *ctx, int argc, char **argv)
{
	struct app *a = ctx;
	console_printf(c, "uptime %llu ms\nversion demo\n",
		       (unsigned long long)(console_now_ms(c) - a->start_ms));
	return CONSOLE_CMD_OK;
}

static int cmd_echo(struct console *c, void *ctx, int argc, char **argv)
{
	if (argc < 2)
		return CONSOLE_CMD_USAGE;
	for (int i = 1; i < argc; i++)
		console_printf(c, "[%s]", argv[i]);
	console_printf(c, "\n");
	return CONSOLE_CMD_OK;
}

static int cmd_show_things(struct console *c, void *ctx, int argc, char **argv)
{
	console_printf(c, "thing one\nthing two\n");
	return CONSOLE_CMD_OK;
}

static int cmd_shutdown(struct console *c, void *ctx, int argc, char **argv)
{
	struct app *a = ctx;
	console_printf(c, "shutting down\n");
	a->shutdown = 1;
	return CONSOLE_CMD_OK;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "hash-password") == 0)
		return console_hash_password_main(argc - 1, argv + 1);
	const char *spec = NULL, *hash = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--console") == 0 && i + 1 < argc) spec = argv[++i];
		else if (strcmp(argv[i], "--password-hash") == 0 && i + 1 < argc) hash = argv[++i];
		else { fprintf(stderr, "usage: %s [--console SPEC] [--password-hash HASH]\n", argv[0]); return 2; }
	}
	static struct app app;
	app.start_ms = now_ms();
	static struct console_command cmds[] = {
		{ "status", "", "uptime and version", cmd_status, &app },
		{ "echo", "ARG...", "print the arguments in brackets", cmd_echo, NULL },
		{ "show things", "", "list the things", cmd_show_things, NULL },
		{ "shutdown", "", "stop", cmd_shutdown, &app },
	};
	console_registry_init(&reg);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		enum console_err e = console_register(&reg, &cmds[i]);
		if (e != CONSOLE_OK) {
			fprintf(stderr, "register %s: %s\n", cmds[i].name, console_strerror(e));
			return 1;
		}
	}
	char err[512];
	if (serial_open(&ser, spec, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (ser.kind == SERIAL_PTY) {
		fprintf(stderr, "console on %s\n", serial_path(&ser));
		fflush(stderr);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	enum console_auth_err aerr;
	if (console_init(&con, &reg, serial_interactive(&ser) ? CONSOLE_INTERACTIVE : CONSOLE_LINES,
			 hash, &aerr) != CONSOLE_OK) {
		fprintf(stderr, "console password hash: %s\n", console_auth_strerror(aerr));
	}
	char in[256];
	size_t in_off = 0, in_len = 0;
	bool input_done = false;
	int rc = 0;
	while (!stop_signal) {
		/* 1. drain output */
		const char *p;
		size_t n = console_output(&con, &p);
		if (n) {
			ssize_t w = serial_write(&ser, p, n);
			if (w > 0)
				console_output_consume(&con, (size_t)w);
			else if (w < 0) { rc = 1; break; }
		}
		if (!console_output_pending(&con)) {
			if (app.shutdown || (input_done && in_off == in_len))
				break;
			/* 2. feed input once the output is out */
			if (in_off == in_len && !input_done) {
				ssize_t r = serial_read(&ser, in, sizeof(in));
				if (r == SERIAL_EOF) input_done = true;
				else if (r < 0) { rc = 1; break; }
				else { in_off = 0; in_len = (size_t)r; }
			}
			if (in_off < in_len)
				in_off += console_input(&con, in + in_off, in_len - in_off, now_ms());
		}
		/* 3. idle: sleep in poll() until the console fd is ready */
		if (!console_output_pending(&con) && in_off == in_len && !input_done) {
			struct pollfd pfd = { serial_fd(&ser), POLLIN, 0 };
			poll(&pfd, 1, 200);
		} else if (console_output_pending(&con)) {
			struct pollfd pfd = { serial_out_fd(&ser), POLLOUT, 0 };
			poll(&pfd, 1, 200);
		}
	}
	serial_flush(&ser, 1000);  /* let "shutting down" reach the operator */
	serial_close(&ser);
	return rc;
}
