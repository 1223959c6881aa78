/* The appliance run loop. This file owns the event loop and is the one place
 * with mutable process state (STYLE.md habit 1): the current config and
 * credentials, the ports, the proxy, the console, and the signal flags.
 *
 * One iteration: every port's RX burst → lwIP; lwIP timers; proxy work; TX
 * flush on every port; console; reload / shutdown requests. When nothing
 * happened for a while, an adaptive back-off sleeps (20 µs doubling to 50 µs
 * while traffic is recent, to 1 ms when idle) so an idle appliance costs
 * little CPU and a loaded one adds little latency; --busy-poll never sleeps. */
#include "appliance/run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appliance/admin_app.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include "appliance/proxy.h"
#include "appliance/run_egress.h"
#include "appliance/run_internal.h"
#include "drivers/boot.h"
#include "drivers/hostif.h"
#include "drivers/port.h"
#include "net/stack.h"
#include "tls/tls.h"

#define DEMO_TAP "mg-demo"
#define DEMO_HOST_ADDR "198.18.3.1"
#define DEMO_GW_ADDR "198.18.3.2"

/* The embedded demo: one port, the built-in demo service, one ALLOW policy
 * for the demo client identity; paths resolve in the state dir. The host
 * demo (`make run`) puts it on a tap with the admin console; the image
 * (run_init.c) on the machine's first NIC. Returns buf, or NULL if it does
 * not fit. */
const char *run_demo_config(char *buf, size_t len, const char *port_name, const char *port_fields,
			    bool with_admin)
{
	char admin[160] = "";
	if (with_admin)
		snprintf(admin, sizeof admin,
			 "  admin: {port: %s, listen: 9443, allowedPrincipals: [\"cluster.local/ns/demo/sa/client\"]}\n",
			 port_name);
	int n = snprintf(buf, len,
		"apiVersion: meshgate.dev/v1alpha1\n"
		"kind: Appliance\n"
		"metadata: {name: demo}\n"
		"spec:\n"
		"  trustDomain: cluster.local\n"
		"  identity: {certificateChain: gateway.pem, privateKey: gateway.key}\n"
		"  trustBundles:\n"
		"    - {trustDomain: cluster.local, roots: ca.pem}\n"
		"  ports:\n"
		"    - {name: %s, %s}\n"
		"  services:\n"
		"    - {name: hello, namespace: demo, labels: {app: hello}, demo: true}\n"
		"  listeners:\n"
		"    - {name: hello, port: %s, listen: 8443, protocol: http, service: hello}\n"
		"%s"
		"---\n"
		"apiVersion: security.istio.io/v1\n"
		"kind: AuthorizationPolicy\n"
		"metadata: {name: allow-demo-client, namespace: demo}\n"
		"spec:\n"
		"  selector: {matchLabels: {app: hello}}\n"
		"  action: ALLOW\n"
		"  rules:\n"
		"    - from: [{source: {principals: [\"cluster.local/ns/demo/sa/client\"]}}]\n",
		port_name, port_fields, port_name, admin);
	return n > 0 && (size_t)n < len ? buf : NULL;
}

static volatile sig_atomic_t sig_reload, sig_stop;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		sig_reload = 1;
	else
		sig_stop = 1;
}

static void log_line(void *arg, const char *line)
{
	struct appliance *a = arg;
	run_console_log(&a->console, line);
}

static int mkdir_p(const char *path)
{
	char tmp[CONFIG_MAX_PATH];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Loads config + credentials into fresh objects. Returns 0, or -1 after
 * printing every problem to `out`. */
static int load_all(struct appliance *a, struct config **cfg_out, struct tls_credentials **cr_out,
		    FILE *out)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	struct tls_credentials *cr = calloc(1, sizeof *cr);
	int rc = -1;
	if (!cfg || !errs || !cr) {
		fprintf(out, "meshgate: out of memory loading the configuration\n");
		goto done;
	}
	int r;
	if (a->upload_text) {
		r = config_load_buffer("upload", a->upload_base_dir, a->upload_text, a->upload_len, cfg, errs);
	} else if (a->demo) {
		static char host_demo[2048];
		const char *text = a->opt.demo_config ? a->opt.demo_config
			: run_demo_config(host_demo, sizeof host_demo, "demo",
					  "device: \"net_tap0,iface=" DEMO_TAP "\", address: " DEMO_GW_ADDR "/24", true);
		if (!text) {
			fprintf(out, "meshgate: the demo configuration does not fit its buffer\n");
			goto done;
		}
		r = config_load_buffer("<embedded demo>", a->state_dir, text, strlen(text), cfg, errs);
	}
	else
		r = config_load(a->opt.configs, a->opt.nconfigs, cfg, errs);
	if (r != 0) {
		config_errors_print(errs, out);
		goto done;
	}
	for (int i = 0; i < cfg->warnings.count && i < CONFIG_MAX_ERRORS; i++) {
		const struct config_error *w = &cfg->warnings.items[i];
		fprintf(out, "meshgate: warning: %s:%d: %s: %s\n", w->file, w->line, w->field, w->message);
	}
	char err[512];
	if (a->opt.prepare_ports && a->opt.prepare_ports(cfg, err, sizeof err) != 0) {
		fprintf(out, "%s: spec.ports: %s\n", cfg->file0, err);
		config_free(cfg);
		goto done;
	}
	if (tls_credentials_load(cr, cfg->identity_chain, cfg->identity_key, cfg->trust_bundles,
				 cfg->ntrust_bundles, err, sizeof err) != 0) {
		fprintf(out, "%s: spec.identity: %s\n", cfg->file0, err);
		config_free(cfg);
		goto done;
	}
	*cfg_out = cfg;
	*cr_out = cr;
	cfg = NULL;
	cr = NULL;
	rc = 0;
done:
	free(cfg);
	free(errs);
	free(cr);
	return rc;
}

static void free_all(struct config *cfg, struct tls_credentials *cr)
{
	if (cfg) {
		config_free(cfg);
		free(cfg);
	}
	if (cr) {
		tls_credentials_free(cr);
		free(cr);
	}
}

static bool ports_same(const struct config *a, const struct config *b)
{
	if (a->nports != b->nports)
		return false;
	for (int i = 0; i < a->nports; i++) {
		const struct config_port *x = &a->ports[i], *y = &b->ports[i];
		if (strcmp(x->name, y->name) || strcmp(x->device, y->device) || x->address != y->address ||
		    x->prefix != y->prefix || x->gateway != y->gateway || x->mbufs != y->mbufs || x->mtu != y->mtu ||
		    x->no_offload != y->no_offload)
			return false;
	}
	return true;
}

/* Frees retired credentials whose handshakes are over (all when `all`). */
static void retired_sweep(struct appliance *a, uint32_t now, bool all)
{
	int k = 0;
	for (int i = 0; i < a->nretired; i++) {
		if (all || (int32_t)(now - a->retired[i].free_at_ms) >= 0)
			free_all(NULL, a->retired[i].creds);
		else
			a->retired[k++] = a->retired[i];
	}
	a->nretired = k;
}

/* Reload: validate everything first; only a complete, valid set replaces
 * the running one. Prints the outcome to `out`. Returns 0 on success. */
int run_reload(struct appliance *a, FILE *out)
{
	struct config *cfg = NULL;
	struct tls_credentials *cr = NULL;
	if (load_all(a, &cfg, &cr, out) != 0) {
		fprintf(out, "reload refused: the configuration in service (generation %u) is unchanged\n",
			a->generation);
		return -1;
	}
	if (!ports_same(a->cfg, cfg)) {
		fprintf(out, "%s: spec.ports: ports cannot change at run time (restart meshgate); "
			"reload refused, generation %u keeps serving\n", cfg->file0, a->generation);
		free_all(cfg, cr);
		return -1;
	}
	uint32_t now = net_now_ms();
	retired_sweep(a, now, false);
	if (a->nretired == RUN_MAX_RETIRED) {
		fprintf(out, "reload refused: %d reloads within the TLS handshake timeout (%u ms); "
			"try again in a few seconds, generation %u keeps serving\n", RUN_MAX_RETIRED,
			a->cfg->limits.handshake_timeout_ms, a->generation);
		free_all(cfg, cr);
		return -1;
	}
	char err[256];
	struct run_egress *re;
	if (run_egress_prepare(a, cfg, &re, err, sizeof err) != 0) {
		fprintf(out, "reload refused: egress: %s; generation %u keeps serving\n", err, a->generation);
		free_all(cfg, cr);
		return -1;
	}
	int closed = proxy_apply(a->proxy, cfg, cr, err, sizeof err);
	if (closed < 0) {
		fprintf(out, "reload refused: %s; generation %u keeps serving\n", err, a->generation);
		run_egress_abort(re);
		free_all(cfg, cr);
		return -1;
	}
	run_egress_commit(a, re);
	if (admin_app_apply(a->admin, cfg, cr, err, sizeof err) != 0)
		fprintf(out, "%s: spec.admin: %s (the admin console is off until fixed)\n", cfg->file0, err);
	/* handshakes in progress still use the old credentials: retire them
	 * until the old handshake timeout (plus a poll period) has passed */
	uint32_t hs = a->cfg->limits.handshake_timeout_ms > 10000 ? a->cfg->limits.handshake_timeout_ms : 10000;
	a->retired[a->nretired].creds = a->creds;
	a->retired[a->nretired++].free_at_ms = now + hs + 2000;
	free_all(a->cfg, NULL);
	a->cfg = cfg;
	a->creds = cr;
	a->generation++;
	fprintf(out, "reload: generation %u in service (%zu policies); %d connection%s closed by the new policy\n",
		a->generation, policy_set_count(cfg->policies), closed, closed == 1 ? "" : "s");
	return 0;
}

static int open_ports(struct appliance *a)
{
	const struct config *cfg = a->cfg;
	char err[512];
	const char *args[CONFIG_MAX_EAL_ARGS];
	const char *pci[CONFIG_MAX_PORTS];
	int npci = 0;
	for (int i = 0; i < cfg->neal_args; i++)
		args[i] = cfg->eal_args[i];
	for (int i = 0; i < cfg->nports; i++)
		if (strncmp(cfg->ports[i].device, "net_", 4) != 0)
			pci[npci++] = cfg->ports[i].device;
	if (port_eal_init(args, cfg->neal_args, pci, npci, err, sizeof err) != 0) {
		fprintf(stderr, "meshgate: DPDK: %s\n", err);
		return -1;
	}
	net_init();
	for (int i = 0; i < cfg->nports; i++) {
		const struct config_port *cp = &cfg->ports[i];
		struct port *port = port_open(cp->name, cp->device, cp->mbufs, cp->mtu, err, sizeof err);
		if (!port) {
			fprintf(stderr, "%s: spec.ports[%d].device: %s\n", cfg->file0, i, err);
			return -1;
		}
		a->ports[i] = port;
		a->nports = i + 1;
		uint8_t mac[6];
		port_mac(port, mac);
		a->ifs[i] = net_if_add(cp->name, mac, cp->address, cp->prefix, cp->gateway,
				       (net_tx_reserve_fn)port_tx_reserve, port);
		if (!a->ifs[i]) {
			fprintf(stderr, "meshgate: port %s: too many interfaces\n", cp->name);
			return -1;
		}
		net_if_set_mtu(a->ifs[i], (uint16_t)port_mtu(port));
		if (!cp->no_offload && port_has_gso(port) && net_if_set_gso(a->ifs[i], port_tx_gso_drv) != 0) {
			fprintf(stderr, "meshgate: port %s: out of memory\n", cp->name);
			return -1;
		}
		if (!cp->no_offload && port_rx_offload_start(port, err, sizeof err) != 0)
			fprintf(stderr, "meshgate: %s; receiving through the driver's ring (peers on the interface "
				"must then send full checksums: ethtool -K PEER tx off)\n", err);
	}
	return 0;
}

_Static_assert(NET_RX_CSUM_OK == PORT_RX_CSUM_OK, "the driver's checksum flag is the stack's");

static void deliver(void *arg, const void *frame, uint32_t len, unsigned flags)
{
	if (!run_egress_rx(&the_appliance, arg, frame, len))
		return;                 /* dropped by the packet filter, counted there */
	net_if_input(arg, frame, len, flags);
}

static void print_demo_help(const struct appliance *a)
{
	const char *d = a->state_dir;
	printf("\nmeshgate demo is running: port demo = DPDK net_tap on host interface %s.\n"
	       "The host reaches meshgate at %s (host side %s/24). Try, from another shell:\n\n"
	       "  # allowed: spiffe://cluster.local/ns/demo/sa/client -> 200 from the demo service\n"
	       "  curl --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key https://%s:8443/\n\n"
	       "  # denied: spiffe://cluster.local/ns/demo/sa/intruder -> 403 RBAC: access denied\n"
	       "  curl --cacert %s/ca.pem --cert %s/intruder.pem --key %s/intruder.key https://%s:8443/\n\n"
	       "  # no client certificate -> the TLS handshake is refused with an alert\n"
	       "  curl --cacert %s/ca.pem https://%s:8443/\n\n"
	       "  # the admin console (mTLS as the demo client): status, then Prometheus metrics\n"
	       "  curl --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key https://%s:9443/api/v1/status\n"
	       "  curl --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key https://%s:9443/metrics\n\n"
	       "Type 'help' here for the console; Ctrl-C or 'shutdown' stops meshgate.\n\n",
	       DEMO_TAP, DEMO_GW_ADDR, DEMO_HOST_ADDR, d, d, d, DEMO_GW_ADDR, d, d, d, DEMO_GW_ADDR, d,
	       DEMO_GW_ADDR, d, d, d, DEMO_GW_ADDR, d, d, d, DEMO_GW_ADDR);
	fflush(stdout);
}

/* Adaptive polling (see loop()). */
#define RUN_IDLE_PASSES 64          /* empty passes before the loop rests */
#define RUN_WARM_MS 200             /* "warm" this long after the last packet */
#define RUN_WARM_SLEEP_US 50        /* longest sleep while warm */
#define RUN_COLD_SLEEP_US 1000      /* longest sleep when idle */
#define RUN_LOG_FLUSH_MS 100        /* buffered stdout is written at least this often */
#define RUN_EVENT_WARM_US 1000      /* event-driven: longest wait while warm (delayed ACKs) */
#define RUN_EVENT_COLD_MS 250       /* event-driven: longest wait when idle; lwIP's next
				     * timer may cut it shorter; the egress and admin
				     * timeouts (seconds) are checked at least this often */

/* Event-driven waiting: when every port has a descriptor that poll() reports
 * readable on a waiting frame (drivers/port.h, port_wait_fds), the idle loop
 * sleeps in ppoll() until a frame, console input, a signal or the next
 * timer, instead of waking on a short timer to look. Returns the number of
 * descriptors, 0 if some port has none (then the loop sleeps on a timer). */
#define RUN_WAIT_FDS (CONFIG_MAX_PORTS * PORT_MAX_WAIT_FDS + 1)

static int wait_fds(const struct appliance *a, struct pollfd *pfd, int max)
{
	int n = 0;
	for (int i = 0; i < a->nports; i++) {
		int fds[PORT_MAX_WAIT_FDS];
		int k = port_wait_fds(a->ports[i], fds, PORT_MAX_WAIT_FDS);
		if (k == 0 || n + k > max)
			return 0;
		for (int j = 0; j < k; j++)
			pfd[n++] = (struct pollfd){.fd = fds[j], .events = POLLIN};
	}
	if (a->console.enabled && a->console.input_open && serial_fd(&a->console.ser) >= 0 && n < max)
		pfd[n++] = (struct pollfd){.fd = serial_fd(&a->console.ser), .events = POLLIN};
	return n;
}

static void log_flush(uint32_t now, uint32_t *last_flush_ms, bool idle)
{
	if (!__fpending(stdout))
		return;
	if (idle || now - *last_flush_ms >= RUN_LOG_FLUSH_MS) {
		fflush(stdout);
		*last_flush_ms = now;
	}
}

/* Sleeps once. Event-driven: until a frame, console input, a signal or a
 * timer (warm: at most RUN_EVENT_WARM_US, for the delayed ACKs; cold: until
 * lwIP's next timer, at most RUN_EVENT_COLD_MS). Otherwise a timed nap that
 * doubles up to RUN_WARM_SLEEP_US while warm, so a request arriving while we
 * sleep waits little, or RUN_COLD_SLEEP_US when idle. */
static void idle_sleep(struct appliance *a, bool event, bool warm, unsigned *sleep_us)
{
	struct pollfd pfd[RUN_WAIT_FDS];
	/* made again each time: the console's input may have closed */
	int npfd = event ? wait_fds(a, pfd, RUN_WAIT_FDS) : 0;
	if (npfd) {
		long us = RUN_EVENT_WARM_US;
		if (!warm) {
			uint32_t due = net_timers_due_ms();
			us = (long)(due < RUN_EVENT_COLD_MS ? due : RUN_EVENT_COLD_MS) * 1000;
		}
		struct timespec ts = {us / 1000000, us % 1000000 * 1000};
		ppoll(pfd, (nfds_t)npfd, &ts, NULL);
		/* An error condition stays set until cleared (an interface going
		 * down, say): have the drivers clear it and nap once, instead of
		 * spinning on it. */
		for (int i = 0; i < npfd; i++)
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				for (int j = 0; j < a->nports; j++)
					port_wait_reset(a->ports[j]);
				struct timespec nap = {0, RUN_COLD_SLEEP_US * 1000L};
				nanosleep(&nap, NULL);
				break;
			}
		return;
	}
	unsigned cap = warm ? RUN_WARM_SLEEP_US : RUN_COLD_SLEEP_US;
	if (*sleep_us > cap)
		*sleep_us = cap;
	struct timespec ts = {0, (long)*sleep_us * 1000};
	nanosleep(&ts, NULL);
	if (*sleep_us < cap)
		*sleep_us *= 2;
}

static void loop(struct appliance *a)
{
	unsigned idle = 0;
	unsigned sleep_us = 20;
	uint32_t last_busy_ms = net_now_ms() - RUN_WARM_MS;
	uint32_t last_flush_ms = net_now_ms();
	struct pollfd pfd[RUN_WAIT_FDS];
	int npfd = a->opt.busy_poll ? 0 : wait_fds(a, pfd, RUN_WAIT_FDS);
	bool event = npfd > 0;
	if (event)
		printf("meshgate: event-driven polling: idle waits on %d descriptor%s\n", npfd, npfd == 1 ? "" : "s");
	while (!sig_stop && !a->console.stop_requested) {
		/* one clock reading for the pass (net/stack.h) */
		net_clock_pass();
		uint32_t now = net_pass_ms();
		unsigned rx = 0;
		for (int i = 0; i < a->nports; i++)
			rx += port_poll(a->ports[i], deliver, a->ifs[i]);
		net_timers();
		proxy_poll(a->proxy, now);
		admin_app_poll(a->admin, now);
		if (a->nretired)
			retired_sweep(a, now, false);
		run_egress_poll(a, now);
		/* While frames keep arriving, replies gather into bigger TX
		 * batches (one sendto per batch on af_packet; a full batch goes
		 * at once in port_tx_reserve); the first pass that finds no new
		 * frame sends what is left. */
		if (!rx)
			for (int i = 0; i < a->nports; i++) {
				net_if_flush(a->ifs[i]);
				port_tx_flush(a->ports[i]);
			}
		bool console_busy = run_console_poll(&a->console, now);
		if (sig_reload || a->console.reload_requested) {
			sig_reload = 0;
			a->console.reload_requested = false;
			run_console_reload(&a->console);
		}
		if (a->console.drain_requested) {
			a->console.drain_requested = false;
			proxy_drain(a->proxy);
		}
		bool busy = rx || console_busy;
		if (busy) {
			idle = 0;
			sleep_us = 20;
			last_busy_ms = now;
		}
		/* after RUN_IDLE_PASSES empty passes (never with --busy-poll) */
		bool rest = !busy && !a->opt.busy_poll && ++idle >= RUN_IDLE_PASSES;
		log_flush(now, &last_flush_ms, rest);
		if (rest)
			idle_sleep(a, event, now - last_busy_ms < RUN_WARM_MS, &sleep_us);
	}
}

struct appliance the_appliance;

int run_inner(struct appliance *a)
{
	a->demo = a->opt.nconfigs == 0;
	snprintf(a->state_dir, sizeof a->state_dir, "%s",
		 a->opt.state_dir ? a->opt.state_dir : "/var/lib/meshgate/demo");
	if (a->demo) {
		char err[512];
		if (mkdir_p(a->state_dir) != 0) {
			fprintf(stderr, "meshgate: state directory %s: %s\n", a->state_dir, strerror(errno));
			return 1;
		}
		if (tls_demo_pki_ensure(a->state_dir, "cluster.local", err, sizeof err) != 0) {
			fprintf(stderr, "meshgate: demo PKI in %s: %s\n", a->state_dir, err);
			return 1;
		}
	}
	if (load_all(a, &a->cfg, &a->creds, stderr) != 0)
		return 2;
	if (open_ports(a) != 0)
		return 1;
	if (a->demo && !a->opt.demo_config) {
		char err[256];
		if (hostif_set_ipv4(DEMO_TAP, DEMO_HOST_ADDR, 24, err, sizeof err) != 0)
			fprintf(stderr, "meshgate: demo: %s (configure %s/24 on %s yourself)\n", err,
				DEMO_HOST_ADDR, DEMO_TAP);
	}
	struct proxy_options po = {.log = log_line, .log_arg = a};
	char err[512];
	if (!(a->admin = run_admin_create(a, log_line, err, sizeof err))) {
		fprintf(stderr, "meshgate: %s\n", err);
		return 1;
	}
	po.obs = admin_app_obs(a->admin);
	a->proxy = proxy_start(a->cfg, a->creds, a->ifs, &po, err, sizeof err);
	if (!a->proxy) {
		fprintf(stderr, "meshgate: %s\n", err);
		return 1;
	}
	if (run_admin_start(a, err, sizeof err) != 0) {
		fprintf(stderr, "%s: spec.admin: %s\n", a->cfg->file0, err);
		return 1;
	}
	struct run_egress *re;
	if (run_egress_prepare(a, a->cfg, &re, err, sizeof err) != 0) {
		fprintf(stderr, "meshgate: egress: %s\n", err);
		return 1;
	}
	run_egress_commit(a, re);
	a->generation = 1;
	a->started_ms = net_now_ms();
	a->started_wall = time(NULL);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	printf("meshgate %s: %s, %d port%s, %d listener%s, %zu polic%s, pool %u connections\n",
	       MESHGATE_VERSION, a->demo ? "embedded demo" : a->cfg->file0, a->cfg->nports,
	       a->cfg->nports == 1 ? "" : "s", a->cfg->nlisteners, a->cfg->nlisteners == 1 ? "" : "s",
	       policy_set_count(a->cfg->policies), policy_set_count(a->cfg->policies) == 1 ? "y" : "ies",
	       proxy_pool_size(a->proxy));
	for (int i = 0; i < a->cfg->nlisteners; i++) {
		const struct config_listener *l = &a->cfg->listeners[i];
		const struct config_port *p = &a->cfg->ports[l->port];
		const uint8_t *b = (const uint8_t *)&p->address;
		printf("listener %s: %u.%u.%u.%u:%u %s -> %s/%s\n", l->name, b[0], b[1], b[2], b[3],
		       l->listen, l->protocol == CONFIG_PROTOCOL_HTTP ? "http" : "tcp",
		       a->cfg->services[l->service].namespace_, a->cfg->services[l->service].name);
	}
	printf("meshgate: ready\n");
	if (a->demo && !a->opt.demo_config)
		print_demo_help(a);
	fflush(stdout);
	/* after the boot messages: a stdio console makes stdout non-blocking */
	if (run_console_start(&a->console, a, a->opt.console, err, sizeof err) != 0) {
		fprintf(stderr, "meshgate: console: %s\n", err);
		return 1;
	}
	run_console_ready(&a->console);

	loop(a);
	run_console_stop(&a->console);   /* terminal and stdout back to normal */

	printf("meshgate: shutting down (%u connection%s open)\n", proxy_active(a->proxy),
	       proxy_active(a->proxy) == 1 ? "" : "s");
	fflush(stdout);
	return 0;
}

void run_teardown(struct appliance *a)
{
	run_egress_stop(a);
	run_console_stop(&a->console);
	/* the proxy first: closing its connections reports them to the admin
	 * console's observer (metrics, live view), which admin_app_stop frees */
	proxy_stop(a->proxy);
	a->proxy = NULL;
	admin_app_stop(a->admin);
	a->admin = NULL;
	for (int i = 0; i < a->nports; i++)
		port_close(a->ports[i]);
	if (a->nports)
		port_eal_cleanup();
	free_all(a->cfg, a->creds);
	retired_sweep(a, 0, true);
	a->cfg = NULL;
	a->creds = NULL;
}

int run_appliance(const struct run_options *opt)
{
	struct appliance *a = &the_appliance;
	memset(a, 0, sizeof *a);
	a->opt = *opt;
	/* The access log goes to stdout. On a terminal, a line at a time; to a
	 * file or pipe, a 64 KB buffer that the loop flushes when it goes idle
	 * and at least every RUN_LOG_FLUSH_MS (a write(2) per request was ~3%
	 * of a keep-alive request's CPU). */
	static char stdout_buf[64 * 1024];   /* glibc ignores the size without a buffer */
	if (isatty(STDOUT_FILENO))
		setvbuf(stdout, NULL, _IOLBF, 0);
	else
		setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
	int rc = run_inner(a);
	run_teardown(a);
	return rc;
}
