/* The admin console in the appliance: its own lwIP listener with BearSSL
 * (appliance identity, client certificate optional), a small fixed pool of
 * admin connections, the request handler (admin.h) and the observer
 * (admin_obs.h) that the proxy reports to.
 *
 * Run-loop recipe (run.c, with the callbacks in run_admin.c):
 *   app = admin_app_create(&opt, err, len);        boot, before proxy_start
 *   proxy_options.obs = admin_app_obs(app);
 *   proxy = proxy_start(...);
 *   admin_app_start(app, proxy, err, len);         opens spec.admin's listener
 *   loop:    admin_app_poll(app, now_ms);          after proxy_poll
 *   reload:  admin_app_apply(app, cfg, creds, ..)  after proxy_apply succeeded,
 *                                                  before the old config is freed
 *   exit:    admin_app_stop(app);                  before proxy_stop
 *
 * Memory: ADMIN_MAX_CONNS connections, each with a TLS context, a request
 * body buffer of ADMIN_BODY_MAX and a response buffer of ADMIN_OUT_MAX, all
 * allocated in admin_app_create (calloc: pages are touched only when used).
 * A full pool refuses (counted: admin_pool_exhausted); a request body over
 * ADMIN_BODY_MAX gets 413; a response over ADMIN_OUT_MAX a 500. */
#ifndef MESHGATE_ADMIN_APP_H
#define MESHGATE_ADMIN_APP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/metrics.h"
#include "appliance/proxy.h"

#define ADMIN_MAX_CONNS 8
#define ADMIN_BODY_MAX (1u << 20)       /* config uploads */
#define ADMIN_OUT_MAX (4u << 20)        /* dashboard JSON, /metrics */
#define ADMIN_RX_RING 64                /* received chains queued per connection */
#define ADMIN_HANDSHAKE_TIMEOUT_MS 10000u
#define ADMIN_IDLE_TIMEOUT_MS 60000u

struct config;
struct tls_credentials;
struct net_if;
struct admin_app;
struct admin_obs;

struct admin_app_options {
	const struct config *cfg;
	const struct tls_credentials *creds;
	struct net_if *const *ifs;      /* indexed like cfg->ports */
	proxy_log_fn log;               /* console lines */
	void *log_arg;
	uint32_t started_ms;
	const char *upload_base_dir;    /* relative paths of uploaded configs */
	/* appliance callbacks (any may be NULL) */
	void *arg;
	int (*ports)(void *arg, struct metrics_port_sample *out, int max);
	/* Applies a config text through the run loop's reload path. 0 = in
	 * service; -1 = refused, the old config keeps serving; msg gets the
	 * reload's own messages either way. */
	int (*apply_config)(void *arg, const char *text, size_t len, char *msg, size_t msglen);
	unsigned (*generation)(void *arg);
	/* more /metrics text (complete HELP/TYPE families) after the core
	 * series; returns bytes written into buf (0 = none) */
	size_t (*extra_metrics)(void *arg, char *buf, size_t cap);
};

struct admin_app *admin_app_create(const struct admin_app_options *opt, char *err, size_t errlen);
struct admin_obs *admin_app_obs(struct admin_app *app);
int admin_app_start(struct admin_app *app, struct proxy *proxy, char *err, size_t errlen);
void admin_app_poll(struct admin_app *app, uint32_t now_ms);
int admin_app_apply(struct admin_app *app, const struct config *cfg,
		    const struct tls_credentials *creds, char *err, size_t errlen);
void admin_app_stop(struct admin_app *app);

#endif
