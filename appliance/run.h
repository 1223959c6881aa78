/* The appliance run loop: owns the event loop and everything it drives
 * (ports, lwIP interfaces, TLS credentials, proxy, console). Binary-only:
 * it reaches drivers/, so unit tests use the engines directly instead. */
#ifndef MESHGATE_RUN_H
#define MESHGATE_RUN_H
#include <stdbool.h>
#include <stddef.h>

struct config;

#define RUN_MAX_CONFIGS 16

struct run_options {
	const char *configs[RUN_MAX_CONFIGS];
	int nconfigs;               /* 0 = embedded demo default */
	const char *console;        /* NULL/"stdio", "pty", "none" or a device path */
	const char *state_dir;      /* demo PKI; default /var/lib/meshgate */
	bool busy_poll;             /* never sleep when idle (dedicated hardware) */
	/* The embedded demo's YAML (paths resolve in state_dir); NULL = the
	 * built-in net_tap demo. The image passes one on its first NIC. */
	const char *demo_config;
	/* Called after every successful config load, before the ports open
	 * (boot, reload): turns port devices given by PCI address or MAC into
	 * what DPDK opens, binding NICs as needed. NULL = devices as written.
	 * Returns 0, or -1 with a message in err. */
	int (*prepare_ports)(struct config *cfg, char *err, size_t len);
};

/* Runs until shutdown; returns the process exit code (0 clean, 1 runtime
 * failure, 2 configuration error). */
int run_appliance(const struct run_options *opt);

bool run_is_pid1(void);
/* meshgate as /init in its image: boots, runs, never returns. */
int run_as_init(int argc, char **argv) __attribute__((noreturn));

#endif
