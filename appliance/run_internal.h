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
#include "appliance/run_console.h"

struct tls_credentials;
struct port;
struct net_if;
struct proxy;
struct run_egress;
struct boot_info;
struct appliance;
struct admin_app;

/* struct run_console and its functions: appliance/run_console.h */

#define RUN_MAX_RETIRED 8   /* reloads within one handshake timeout */

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
	struct run_egress *egress;          /* filter, DNS, egress engine (run_egress.h) */
	struct admin_app *admin;     /* admin console (admin_app.h, run_admin.c) */
	const char *upload_text;    /* set while a POST /api/v1/config reloads */
	size_t upload_len;
	const char *upload_base_dir;
	struct run_console console;
	unsigned generation;
	/* Credentials replaced by a reload stay allocated until every TLS
	 * handshake that started with them has ended (the handshake timeout
	 * bounds that): BearSSL keeps pointers to the key and trust anchors. */
	struct { struct tls_credentials *creds; uint32_t free_at_ms; } retired[RUN_MAX_RETIRED];
	int nretired;
	uint32_t started_ms;
	time_t started_wall;
};

/* The one appliance of the process (run.c). run_inner starts and runs it
 * until shutdown; run_teardown releases everything (run.c). */
extern struct appliance the_appliance;
int run_inner(struct appliance *a);
void run_teardown(struct appliance *a);

/* The embedded demo configuration (run.c) on one port `port_name` with the
 * given YAML flow fields (device, address...); with_admin adds the admin
 * console on it. Returns buf, or NULL when it does not fit. */
const char *run_demo_config(char *buf, size_t len, const char *port_name, const char *port_fields,
			    bool with_admin);

/* Re-reads the configuration; prints the outcome to `out`. 0 = applied. */
int run_reload(struct appliance *a, FILE *out);

/* The admin console (run_admin.c). */
#include "appliance/proxy.h"
struct admin_app *run_admin_create(struct appliance *a, proxy_log_fn log, char *err, size_t errlen);
int run_admin_start(struct appliance *a, char *err, size_t errlen);

#endif
