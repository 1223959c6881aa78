/* The appliance run loop: owns the event loop and everything it drives
 * (ports, lwIP interfaces, TLS credentials, proxy, console). Binary-only:
 * it reaches drivers/, so unit tests use the engines directly instead. */
#ifndef MESHGATE_RUN_H
#define MESHGATE_RUN_H
#include <stdbool.h>

#define RUN_MAX_CONFIGS 16

struct run_options {
	const char *configs[RUN_MAX_CONFIGS];
	int nconfigs;               /* 0 = embedded demo default */
	const char *console;        /* NULL/"stdio", "pty", "none" or a device path */
	const char *state_dir;      /* demo PKI; default /var/lib/meshgate */
	bool busy_poll;             /* never sleep when idle (dedicated hardware) */
};

/* Runs until shutdown; returns the process exit code (0 clean, 1 runtime
 * failure, 2 configuration error). */
int run_appliance(const struct run_options *opt);

bool run_is_pid1(void);
/* meshgate as /init in its image: boots, runs, never returns. */
int run_as_init(int argc, char **argv) __attribute__((noreturn));

#endif
