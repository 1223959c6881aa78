/* Internal to the run loop (run.c, run_console.c): the appliance state. */
#ifndef MESHGATE_RUN_INTERNAL_H
#define MESHGATE_RUN_INTERNAL_H
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>

#include "appliance/config.h"
#include "appliance/console.h"
#include "appliance/run.h"

struct tls_credentials;
struct port;
struct net_if;
struct proxy;
struct boot_info;
struct appliance;

/* The console as the run loop uses it: the engine, its I/O and the flags
 * its commands set for the loop to act on between iterations. */
struct run_console {
	struct appliance *app;
	bool enabled, input_open, ready;
	int in_fd, out_fd;
	struct console_registry reg;
	struct console *con;
	char in[512];
	size_t in_off, in_len;
	bool stop_requested, reload_requested, drain_requested;
	bool access_log;            /* `log level info` (default) prints access lines */
	uint64_t log_dropped;
};

int run_console_start(struct run_console *rc, struct appliance *a, const char *spec,
		      char *err, size_t errlen);
void run_console_ready(struct run_console *rc);
bool run_console_poll(struct run_console *rc, uint32_t now_ms);
void run_console_log(struct run_console *rc, const char *line);
void run_console_reload(struct run_console *rc);
void run_console_stop(struct run_console *rc);

struct appliance {
	struct run_options opt;
	char state_dir[CONFIG_MAX_PATH];
	bool demo;
	const struct boot_info *boot;
	struct config *cfg;
	struct tls_credentials *creds;
	struct port *ports[CONFIG_MAX_PORTS];
	struct net_if *ifs[CONFIG_MAX_PORTS];
	int nports;
	struct proxy *proxy;
	struct run_console console;
	unsigned generation;
	uint32_t started_ms;
	time_t started_wall;
};

/* The one appliance of the process (run.c). run_inner starts and runs it
 * until shutdown; run_teardown releases everything (run.c). */
extern struct appliance the_appliance;
int run_inner(struct appliance *a);
void run_teardown(struct appliance *a);

/* Re-reads the configuration; prints the outcome to `out`. 0 = applied. */
int run_reload(struct appliance *a, FILE *out);

#endif
