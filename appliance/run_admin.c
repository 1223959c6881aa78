/* The admin console's ties to the run loop (binary-only, like run.c: it
 * reaches drivers/ for port counters and run.c's reload path). The admin
 * console itself is appliance/admin*.c; run.c calls these few functions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/admin_app.h"
#include "appliance/run_internal.h"
#include "appliance/run_egress.h"
#include "drivers/port.h"
#include "net/stack.h"

/* relative paths in an uploaded config resolve here (the first config
 * file's directory, or the demo's state directory) */
static char base[CONFIG_MAX_PATH];

static int ports_cb(void *arg, struct metrics_port_sample *out, int max)
{
	struct appliance *a = arg;
	int n = 0;
	for (int i = 0; i < a->nports && n < max; i++) {
		struct port_stats st;
		struct net_if_stats ns;
		port_get_stats(a->ports[i], &st);
		net_if_get_stats(a->ifs[i], &ns);
		out[n++] = (struct metrics_port_sample){
			.name = a->cfg->ports[i].name,
			.rx_packets = st.rx_packets, .tx_packets = st.tx_packets,
			.rx_bytes = st.rx_bytes, .tx_bytes = st.tx_bytes,
			.rx_dropped = st.rx_dropped, .tx_dropped = st.tx_dropped,
			.link_up = st.link_up != 0,
			.tx_offload_frames = st.tx_gso_frames, .tx_offload_refused = ns.tx_gso_refused,
			.rx_offload_frames = st.rx_offload_frames,
		};
	}
	return n;
}

static unsigned generation_cb(void *arg)
{
	return ((struct appliance *)arg)->generation;
}

static size_t extra_metrics_cb(void *arg, char *buf, size_t cap)
{
	return run_egress_metrics(arg, buf, cap);
}

/* POST /api/v1/config: the uploaded text goes through run_reload, exactly
 * like `reload` and SIGHUP (all-or-nothing; the old config keeps serving). */
static int apply_cb(void *arg, const char *text, size_t len, char *msg, size_t msglen)
{
	struct appliance *a = arg;
	char *buf = NULL;
	size_t blen = 0;
	FILE *out = open_memstream(&buf, &blen);
	if (!out) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	a->upload_text = text;
	a->upload_len = len;
	a->upload_base_dir = base;
	int rc = run_reload(a, out);
	a->upload_text = NULL;
	a->upload_len = 0;
	fclose(out);
	snprintf(msg, msglen, "%s", buf ? buf : "");
	if (buf)
		run_console_log(&a->console, buf);
	free(buf);
	return rc;
}

struct admin_app *run_admin_create(struct appliance *a, proxy_log_fn log, char *err, size_t errlen)
{
	if (a->demo || a->opt.nconfigs == 0) {
		snprintf(base, sizeof base, "%s", a->state_dir);
	} else {
		snprintf(base, sizeof base, "%s", a->opt.configs[0]);
		char *slash = strrchr(base, '/');
		if (slash)
			*slash = 0;
		else
			snprintf(base, sizeof base, ".");
	}
	struct admin_app_options o = {
		.cfg = a->cfg, .creds = a->creds, .ifs = a->ifs, .log = log, .log_arg = a,
		.started_ms = net_now_ms(), .upload_base_dir = base, .arg = a,
		.ports = ports_cb, .apply_config = apply_cb, .generation = generation_cb,
		.extra_metrics = extra_metrics_cb,
	};
	return admin_app_create(&o, err, errlen);
}

int run_admin_start(struct appliance *a, char *err, size_t errlen)
{
	if (admin_app_start(a->admin, a->proxy, err, errlen) != 0)
		return -1;
	const struct config_admin *ad = &a->cfg->admin;
	if (ad->enabled) {
		const uint8_t *b = (const uint8_t *)&a->cfg->ports[ad->port].address;
		printf("admin console: https://%u.%u.%u.%u:%u/ (%d allowed principal%s, password login %s)\n",
		       b[0], b[1], b[2], b[3], ad->listen, ad->nallowed, ad->nallowed == 1 ? "" : "s",
		       ad->password_hash[0] ? "on" : "off");
	}
	return 0;
}
