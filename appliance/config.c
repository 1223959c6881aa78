/* Configuration loader: see config.h. Boot / reload time only. */
#include "appliance/config.h"
#include "appliance/config_console.h"
#include "appliance/egress.h"
#include "appliance/policy.h"
#include "appliance/yaml_node.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ errors */

void config_error_add(struct config_errors *errs, const char *file, int line, const char *field,
		      const char *fmt, ...)
{
	if (errs->count < CONFIG_MAX_ERRORS) {
		struct config_error *e = &errs->items[errs->count];
		snprintf(e->file, sizeof e->file, "%s", file ? file : "");
		e->line = line;
		snprintf(e->field, sizeof e->field, "%s", field ? field : "");
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof e->message, fmt, ap);
		va_end(ap);
	}
	errs->count++;
}

void config_errors_print(const struct config_errors *errs, FILE *out)
{
	int n = errs->count < CONFIG_MAX_ERRORS ? errs->count : CONFIG_MAX_ERRORS;
	for (int i = 0; i < n; i++) {
		const struct config_error *e = &errs->items[i];
		char where[CONFIG_MAX_PATH + 16];
		if (e->line > 0)
			snprintf(where, sizeof where, "%s:%d", e->file, e->line);
		else
			snprintf(where, sizeof where, "%s", e->file);
		if (e->field[0])
			fprintf(out, "%s: %s: %s\n", where, e->field, e->message);
		else
			fprintf(out, "%s: %s\n", where, e->message);
	}
	if (errs->count > n)
		fprintf(out, "... and %d more (only the first %d are shown)\n", errs->count - n, n);
}

/* ------------------------------------------------------------ loader */

struct loader {
	struct config *cfg;
	struct config_errors *errs;
	struct policy_builder *pb;
	int nappliance;
	char appliance_file[CONFIG_MAX_PATH];
	int appliance_line;
};

static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '-' && i > 0 && i + 1 < n)
			continue;
		return false;
	}
	return true;
}

static bool get_name(const struct ydoc *d, const yaml_node_t *n, const char *field, char *out)
{
	if (!yget_str(d, n, field, out, CONFIG_MAX_NAME))
		return false;
	if (!dns_label(out)) {
		yerr(d, n, field, "must be a lower-case DNS label (a-z, 0-9, '-', at most 63), got \"%s\"", out);
		return false;
	}
	return true;
}

static bool trust_domain_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= CONFIG_MAX_TRUST_DOMAIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return false;
	}
	return s[0] != '.' && s[n - 1] != '.';
}

static bool get_trust_domain(const struct ydoc *d, const yaml_node_t *n, const char *field, char *out)
{
	if (!yget_str(d, n, field, out, CONFIG_MAX_TRUST_DOMAIN))
		return false;
	if (!trust_domain_ok(out)) {
		yerr(d, n, field, "must be a trust domain (lower-case letters, digits, '.', '-', '_'; no \"spiffe://\"), got \"%s\"", out);
		return false;
	}
	return true;
}

static bool get_port_number(const struct ydoc *d, const yaml_node_t *n, const char *field, uint16_t *out)
{
	const char *s = ystr(n);
	unsigned long v = 0;
	bool ok = s && !yis_null(n) && s[0] >= '1' && s[0] <= '9' && strlen(s) <= 5;
	for (const char *p = s; ok && *p; p++)
		ok = *p >= '0' && *p <= '9';
	if (ok)
		v = strtoul(s, NULL, 10);
	if (!ok || v < 1 || v > 65535) {
		if (s && !yis_null(n))
			yerr(d, n, field, "must be a port number 1-65535, got \"%s\"", s);
		else
			yerr(d, n, field, "must be a port number 1-65535, got %s", ytype_name(n));
		return false;
	}
	*out = (uint16_t)v;
	return true;
}

/* Resolves `rel` against `base_dir`, stores it absolute and checks it is a
 * readable regular file. */
static void get_file(const struct ydoc *d, const yaml_node_t *n, const char *field,
		     const char *base_dir, char *out)
{
	char rel[CONFIG_MAX_PATH];
	if (!yget_str(d, n, field, rel, sizeof rel))
		return;
	int len;
	if (rel[0] == '/')
		len = snprintf(out, CONFIG_MAX_PATH, "%s", rel);
	else
		len = snprintf(out, CONFIG_MAX_PATH, "%s/%s", base_dir, rel);
	if (len >= CONFIG_MAX_PATH) {
		yerr(d, n, field, "path too long: \"%s\"", rel);
		out[0] = 0;
		return;
	}
	int fd = open(out, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		yerr(d, n, field, "cannot read \"%s\": %s", out, strerror(errno));
	} else {
		if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
			yerr(d, n, field, "\"%s\" is not a regular file", out);
		close(fd);
	}
}

static int find_service(const struct config *cfg, const char *name)
{
	const char *slash = strchr(name, '/');
	int found = -1;
	for (int i = 0; i < cfg->nservices; i++) {
		const struct config_service *s = &cfg->services[i];
		if (slash) {
			size_t nl = (size_t)(slash - name);
			if (strlen(s->namespace_) == nl && !memcmp(s->namespace_, name, nl) &&
			    !strcmp(s->name, slash + 1))
				return i;
		} else if (!strcmp(s->name, name)) {
			if (found >= 0)
				return -2;      /* ambiguous */
			found = i;
		}
	}
	return found;
}

int config_service_by_name(const struct config *cfg, const char *name)
{
	int i = find_service(cfg, name);
	return i >= 0 ? i : -1;
}

const struct config_port *config_port_by_name(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nports; i++)
		if (!strcmp(cfg->ports[i].name, name))
			return &cfg->ports[i];
	return NULL;
}

static void parse_limits(const struct ydoc *d, const yaml_node_t *n, struct config_limits *l)
{
	static const char *const keys[] = {"maxConnections", "handshakeTimeoutMs", "idleTimeoutMs",
		"connectTimeoutMs", "maxRequestHead", NULL};
	if (!yget_map(d, n, "spec.limits"))
		return;
	ymap_check_keys(d, n, "spec.limits", keys);
	struct { const char *key; unsigned long min, max; unsigned *out; } f[] = {
		{"maxConnections", 1, 1048576, &l->max_connections},
		{"handshakeTimeoutMs", 1, 3600000, &l->handshake_timeout_ms},
		{"idleTimeoutMs", 1, 86400000, &l->idle_timeout_ms},
		{"connectTimeoutMs", 1, 3600000, &l->connect_timeout_ms},
		{"maxRequestHead", 1024, 1048576, &l->max_request_head},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		yaml_node_t *v = ymap_get(d, n, f[i].key);
		unsigned long x;
		char field[64];
		yfield(field, sizeof field, "spec.limits.%s", f[i].key);
		if (v && yget_uint(d, v, field, f[i].min, f[i].max, &x))
			*f[i].out = (unsigned)x;
	}
}

static void parse_ports(const struct ydoc *d, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {"name", "device", "address", "gateway", "mbufs", "mtu", "offload", NULL};
	if (!yget_seq(d, n, "spec.ports"))
		return;
	int cnt = yseq_len(n);
	if (cnt == 0)
		yerr(d, n, "spec.ports", "at least one port is required");
	cnt = ylimit(d, n, "spec.ports", cnt, CONFIG_MAX_PORTS, "ports");
	for (int i = 0; i < cnt; i++) {
		yaml_node_t *e = yseq_at(d, n, i), *v;
		char base[64], field[128];
		yfield(base, sizeof base, "spec.ports[%d]", i);
		if (!yget_map(d, e, base))
			continue;
		ymap_check_keys(d, e, base, keys);
		struct config_port *p = &cfg->ports[cfg->nports++];
		yfield(field, sizeof field, "%s.name", base);
		if (!(v = ymap_get(d, e, "name")))
			yerr(d, e, field, "required");
		else if (get_name(d, v, field, p->name))
			for (int j = 0; j < cfg->nports - 1; j++)
				if (!strcmp(cfg->ports[j].name, p->name))
					yerr(d, v, field, "duplicate port name \"%s\" (also spec.ports[%d])", p->name, j);
		yfield(field, sizeof field, "%s.device", base);
		if (!(v = ymap_get(d, e, "device")))
			yerr(d, e, field, "required (a DPDK device string, e.g. \"net_af_packet0,iface=eth1\")");
		else if (yget_str(d, v, field, p->device, sizeof p->device))
			for (int j = 0; j < cfg->nports - 1; j++)
				if (!strcmp(cfg->ports[j].device, p->device))
					yerr(d, v, field, "device \"%s\" is already used by spec.ports[%d]", p->device, j);
		yfield(field, sizeof field, "%s.address", base);
		char buf[64];
		bool have_addr = false;
		if (!(v = ymap_get(d, e, "address")))
			yerr(d, e, field, "required (IPv4 address with prefix length, e.g. 198.18.0.2/24)");
		else if (yget_str(d, v, field, buf, sizeof buf)) {
			if (strchr(buf, ':'))
				yerr(d, v, field, "IPv6 is not supported, got \"%s\"", buf);
			else if (!yparse_cidr(buf, false, &p->address, &p->prefix) || p->prefix == 0)
				yerr(d, v, field, "must be an IPv4 address with prefix length 1-32 (e.g. 198.18.0.2/24), got \"%s\"", buf);
			else
				have_addr = true;
		}
		yfield(field, sizeof field, "%s.gateway", base);
		if ((v = ymap_get(d, e, "gateway")) && yget_str(d, v, field, buf, sizeof buf)) {
			if (!yparse_ipv4(buf, &p->gateway))
				yerr(d, v, field, "must be an IPv4 address, got \"%s\"", buf);
			else if (have_addr) {
				uint32_t mask = htonl(p->prefix == 32 ? ~0u : ~(~0u >> p->prefix));
				if ((p->gateway & mask) != (p->address & mask))
					yerr(d, v, field, "gateway %s is outside the port's subnet", buf);
			}
		}
		yfield(field, sizeof field, "%s.mbufs", base);
		unsigned long x;
		if ((v = ymap_get(d, e, "mbufs")) && yget_uint(d, v, field, 512, 1048576, &x))
			p->mbufs = (unsigned)x;
		/* same range as drivers/port.h (PORT_MIN_MTU..PORT_MAX_MTU) */
		yfield(field, sizeof field, "%s.mtu", base);
		if ((v = ymap_get(d, e, "mtu")) && yget_uint(d, v, field, 576, 9000, &x))
			p->mtu = (unsigned)x;
		yfield(field, sizeof field, "%s.offload", base);
		bool offload = true;
		if ((v = ymap_get(d, e, "offload")) && yget_bool(d, v, field, &offload))
			p->no_offload = !offload;
	}
}

static void parse_services(const struct ydoc *d, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {"name", "namespace", "labels", "endpoints", "demo", NULL};
	if (!yget_seq(d, n, "spec.services"))
		return;
	int cnt = yseq_len(n);
	cnt = ylimit(d, n, "spec.services", cnt, CONFIG_MAX_SERVICES, "services");
	for (int i = 0; i < cnt; i++) {
		yaml_node_t *e = yseq_at(d, n, i), *v;
		char base[64], field[128];
		yfield(base, sizeof base, "spec.services[%d]", i);
		if (!yget_map(d, e, base))
			continue;
		ymap_check_keys(d, e, base, keys);
		struct config_service *s = &cfg->services[cfg->nservices++];
		yfield(field, sizeof field, "%s.name", base);
		yaml_node_t *name_node = ymap_get(d, e, "name");
		if (!name_node)
			yerr(d, e, field, "required");
		else
			get_name(d, name_node, field, s->name);
		yfield(field, sizeof field, "%s.namespace", base);
		if (!(v = ymap_get(d, e, "namespace")))
			yerr(d, e, field, "required");
		else
			get_name(d, v, field, s->namespace_);
		if (s->name[0] && s->namespace_[0])
			for (int j = 0; j < cfg->nservices - 1; j++)
				if (!strcmp(cfg->services[j].name, s->name) &&
				    !strcmp(cfg->services[j].namespace_, s->namespace_))
					yerr(d, name_node, base, "duplicate service %s/%s (also spec.services[%d])",
					     s->namespace_, s->name, j);
		yfield(field, sizeof field, "%s.labels", base);
		if ((v = ymap_get(d, e, "labels")) && yget_map(d, v, field)) {
			int nl = ymap_len(v);
			nl = ylimit(d, v, field, nl, CONFIG_MAX_LABELS, "labels");
			for (int j = 0; j < nl; j++) {
				struct config_label *l = &s->labels[s->nlabels];
				const char *k = ystr(ymap_key(d, v, j));
				yfield(field, sizeof field, "%s.labels.%s", base, k ? k : "?");
				if (yget_str(d, ymap_key(d, v, j), field, l->key, sizeof l->key) &&
				    yget_str(d, ymap_val(d, v, j), field, l->value, sizeof l->value))
					s->nlabels++;
			}
			for (int j = 1; j < s->nlabels; j++)
				for (int k = 0; k < j; k++)
					if (!strcmp(s->labels[j].key, s->labels[k].key))
						yerr(d, v, base, "duplicate label \"%s\"", s->labels[j].key);
		}
		yfield(field, sizeof field, "%s.demo", base);
		bool demo = false;
		if ((v = ymap_get(d, e, "demo")) && yget_bool(d, v, field, &demo))
			s->builtin_demo = demo;
		yfield(field, sizeof field, "%s.endpoints", base);
		v = ymap_get(d, e, "endpoints");
		if (!v && !demo)
			yerr(d, e, field, "required: a service needs at least one endpoint (or demo: true)");
		if (v && yget_seq(d, v, field)) {
			int ne = yseq_len(v);
			if (demo && ne)
				yerr(d, v, field, "a demo service is served by meshgate itself and takes no endpoints");
			else if (!demo && ne == 0)
				yerr(d, v, field, "a service needs at least one endpoint (or demo: true)");
			ne = ylimit(d, v, field, ne, CONFIG_MAX_ENDPOINTS, "endpoints");
			for (int j = 0; j < ne; j++) {
				yaml_node_t *ep = yseq_at(d, v, j);
				char buf[64], ef[128];
				yfield(ef, sizeof ef, "%s.endpoints[%d]", base, j);
				if (!yget_str(d, ep, ef, buf, sizeof buf))
					continue;
				char *colon = strrchr(buf, ':');
				struct config_endpoint *out = &s->endpoints[s->nendpoints];
				unsigned long port = 0;
				bool ok = colon && colon[1] && strlen(colon + 1) <= 5;
				if (buf[0] == '[' || (colon && memchr(buf, ':', (size_t)(colon - buf)))) {
					yerr(d, ep, ef, "IPv6 is not supported, got \"%s\"", buf);
					continue;
				}
				if (ok) {
					*colon = 0;
					for (const char *p = colon + 1; ok && *p; p++)
						ok = *p >= '0' && *p <= '9';
					if (ok)
						port = strtoul(colon + 1, NULL, 10);
					ok = ok && port >= 1 && port <= 65535 && yparse_ipv4(buf, &out->ip);
					*colon = ':';
				}
				if (!ok) {
					yerr(d, ep, ef, "must be IPv4ADDRESS:PORT (e.g. 198.18.1.10:8080), got \"%s\"", buf);
					continue;
				}
				out->port = (uint16_t)port;
				s->nendpoints++;
			}
		}
	}
}

static void parse_listeners(const struct ydoc *d, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {"name", "port", "listen", "protocol", "service", NULL};
	if (!yget_seq(d, n, "spec.listeners"))
		return;
	int cnt = yseq_len(n);
	cnt = ylimit(d, n, "spec.listeners", cnt, CONFIG_MAX_LISTENERS, "listeners");
	for (int i = 0; i < cnt; i++) {
		yaml_node_t *e = yseq_at(d, n, i), *v;
		char base[64], field[128], buf[CONFIG_MAX_NAME * 2 + 2];
		yfield(base, sizeof base, "spec.listeners[%d]", i);
		if (!yget_map(d, e, base))
			continue;
		ymap_check_keys(d, e, base, keys);
		struct config_listener *l = &cfg->listeners[cfg->nlisteners++];
		l->line = yline(e);
		l->port = -1;
		l->service = -1;
		yfield(field, sizeof field, "%s.name", base);
		if (!(v = ymap_get(d, e, "name")))
			yerr(d, e, field, "required");
		else if (get_name(d, v, field, l->name))
			for (int j = 0; j < cfg->nlisteners - 1; j++)
				if (!strcmp(cfg->listeners[j].name, l->name))
					yerr(d, v, field, "duplicate listener name \"%s\" (also spec.listeners[%d])", l->name, j);
		yfield(field, sizeof field, "%s.port", base);
		if (!(v = ymap_get(d, e, "port")))
			yerr(d, e, field, "required (the name of an entry in spec.ports)");
		else if (yget_str(d, v, field, buf, sizeof buf)) {
			const struct config_port *p = config_port_by_name(cfg, buf);
			if (!p)
				yerr(d, v, field, "no port named \"%s\" in spec.ports", buf);
			else
				l->port = (int)(p - cfg->ports);
		}
		yfield(field, sizeof field, "%s.listen", base);
		if (!(v = ymap_get(d, e, "listen")))
			yerr(d, e, field, "required (a TCP port number)");
		else if (get_port_number(d, v, field, &l->listen) && l->port >= 0)
			for (int j = 0; j < cfg->nlisteners - 1; j++)
				if (cfg->listeners[j].port == l->port && cfg->listeners[j].listen == l->listen)
					yerr(d, v, field, "port %u on \"%s\" is already used by listener \"%s\"",
					     l->listen, cfg->ports[l->port].name, cfg->listeners[j].name);
		yfield(field, sizeof field, "%s.protocol", base);
		if (!(v = ymap_get(d, e, "protocol")))
			yerr(d, e, field, "required (tcp or http)");
		else if (yget_str(d, v, field, buf, sizeof buf)) {
			if (!strcmp(buf, "tcp"))
				l->protocol = CONFIG_PROTOCOL_TCP;
			else if (!strcmp(buf, "http"))
				l->protocol = CONFIG_PROTOCOL_HTTP;
			else
				yerr(d, v, field, "must be tcp or http, got \"%s\"", buf);
		}
		yfield(field, sizeof field, "%s.service", base);
		if (!(v = ymap_get(d, e, "service")))
			yerr(d, e, field, "required (the name of an entry in spec.services)");
		else if (yget_str(d, v, field, buf, sizeof buf)) {
			int s = find_service(cfg, buf);
			if (s == -2)
				yerr(d, v, field, "\"%s\" names services in several namespaces: write NAMESPACE/NAME", buf);
			else if (s < 0)
				yerr(d, v, field, "no service named \"%s\" in spec.services", buf);
			else
				l->service = s;
		}
	}
}

static void dirname_of(const char *file, char *out, size_t cap)
{
	char cwd[CONFIG_MAX_PATH];
	const char *slash = strrchr(file, '/');
	if (file[0] == '/') {
		snprintf(out, cap, "%.*s", slash == file ? 1 : (int)(slash - file), file);
		return;
	}
	if (!getcwd(cwd, sizeof cwd))
		snprintf(cwd, sizeof cwd, ".");
	if (slash)
		yfield(out, cap, "%s/%.*s", cwd, (int)(slash - file), file);
	else
		yfield(out, cap, "%s", cwd);
}

static void parse_appliance(struct loader *L, const struct ydoc *d, yaml_node_t *root,
			    const char *base_dir)
{
	struct config *cfg = L->cfg;
	if (L->nappliance++) {
		yerr(d, root, "kind", "a second Appliance document (the first is at %s:%d); exactly one is allowed",
		     L->appliance_file, L->appliance_line);
		return;
	}
	snprintf(L->appliance_file, sizeof L->appliance_file, "%s", d->file);
	L->appliance_line = yline(root);
	cfg->appliance_line = yline(root);
	static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
	ymap_check_keys(d, root, "", top);
	yaml_node_t *v = ymap_get(d, root, "apiVersion");
	const char *api = ystr(v);
	if (!v)
		yerr(d, root, "apiVersion", "required (meshgate.dev/v1alpha1)");
	else if (!api || strcmp(api, "meshgate.dev/v1alpha1"))
		yerr(d, v, "apiVersion", "must be meshgate.dev/v1alpha1 for kind Appliance, got %s%s%s",
		     api ? "\"" : "", api ? api : ytype_name(v), api ? "\"" : "");
	yaml_node_t *md = ymap_get(d, root, "metadata");
	if (!md)
		yerr(d, root, "metadata", "required");
	else if (yget_map(d, md, "metadata")) {
		static const char *const mk[] = {"name", "namespace", "labels", "annotations", NULL};
		ymap_check_keys(d, md, "metadata", mk);
		if (!(v = ymap_get(d, md, "name")))
			yerr(d, md, "metadata.name", "required");
		else
			get_name(d, v, "metadata.name", cfg->name);
	}
	yaml_node_t *spec = ymap_get(d, root, "spec");
	if (!spec) {
		yerr(d, root, "spec", "required");
		return;
	}
	if (!yget_map(d, spec, "spec"))
		return;
	static const char *const sk[] = {"trustDomain", "rootNamespace", "identity", "trustBundles",
		"dpdk", "ports", "services", "listeners", "limits", "console", "admin", "accessLog", "egress", "networkPolicies", NULL};
	ymap_check_keys(d, spec, "spec", sk);
	if (!(v = ymap_get(d, spec, "trustDomain")))
		yerr(d, spec, "spec.trustDomain", "required (e.g. cluster.local)");
	else
		get_trust_domain(d, v, "spec.trustDomain", cfg->trust_domain);
	if ((v = ymap_get(d, spec, "rootNamespace")))
		get_name(d, v, "spec.rootNamespace", cfg->root_namespace);
	yaml_node_t *id = ymap_get(d, spec, "identity");
	if (!id)
		yerr(d, spec, "spec.identity", "required ({certificateChain: FILE, privateKey: FILE})");
	else if (yget_map(d, id, "spec.identity")) {
		static const char *const ik[] = {"certificateChain", "privateKey", NULL};
		ymap_check_keys(d, id, "spec.identity", ik);
		if (!(v = ymap_get(d, id, "certificateChain")))
			yerr(d, id, "spec.identity.certificateChain", "required (PEM file)");
		else
			get_file(d, v, "spec.identity.certificateChain", base_dir, cfg->identity_chain);
		if (!(v = ymap_get(d, id, "privateKey")))
			yerr(d, id, "spec.identity.privateKey", "required (PEM file)");
		else
			get_file(d, v, "spec.identity.privateKey", base_dir, cfg->identity_key);
	}
	yaml_node_t *tb = ymap_get(d, spec, "trustBundles");
	if (!tb)
		yerr(d, spec, "spec.trustBundles", "required (a list of {trustDomain, roots})");
	else if (yget_seq(d, tb, "spec.trustBundles")) {
		int cnt = yseq_len(tb);
		if (cnt == 0)
			yerr(d, tb, "spec.trustBundles", "at least one trust bundle is required");
		cnt = ylimit(d, tb, "spec.trustBundles", cnt, CONFIG_MAX_TRUST_BUNDLES, "trust bundles");
		for (int i = 0; i < cnt; i++) {
			yaml_node_t *e = yseq_at(d, tb, i);
			char base[64], field[128];
			yfield(base, sizeof base, "spec.trustBundles[%d]", i);
			if (!yget_map(d, e, base))
				continue;
			static const char *const tk[] = {"trustDomain", "roots", NULL};
			ymap_check_keys(d, e, base, tk);
			struct config_trust_bundle *b = &cfg->trust_bundles[cfg->ntrust_bundles++];
			yfield(field, sizeof field, "%s.trustDomain", base);
			if (!(v = ymap_get(d, e, "trustDomain")))
				yerr(d, e, field, "required");
			else if (get_trust_domain(d, v, field, b->trust_domain))
				for (int j = 0; j < cfg->ntrust_bundles - 1; j++)
					if (!strcmp(cfg->trust_bundles[j].trust_domain, b->trust_domain))
						yerr(d, v, field, "duplicate trust domain \"%s\" (also spec.trustBundles[%d])", b->trust_domain, j);
			yfield(field, sizeof field, "%s.roots", base);
			if (!(v = ymap_get(d, e, "roots")))
				yerr(d, e, field, "required (PEM file of root certificates)");
			else
				get_file(d, v, field, base_dir, b->roots);
		}
	}
	yaml_node_t *dp = ymap_get(d, spec, "dpdk");
	if (dp && yget_map(d, dp, "spec.dpdk")) {
		static const char *const dk[] = {"args", NULL};
		ymap_check_keys(d, dp, "spec.dpdk", dk);
		if ((v = ymap_get(d, dp, "args")) && yget_seq(d, v, "spec.dpdk.args")) {
			int cnt = yseq_len(v);
			cnt = ylimit(d, v, "spec.dpdk.args", cnt, CONFIG_MAX_EAL_ARGS, "arguments");
			for (int i = 0; i < cnt; i++) {
				char field[64];
				yfield(field, sizeof field, "spec.dpdk.args[%d]", i);
				if (yget_str(d, yseq_at(d, v, i), field, cfg->eal_args[cfg->neal_args], sizeof cfg->eal_args[0]))
					cfg->neal_args++;
			}
		}
	}
	if (!(v = ymap_get(d, spec, "ports")))
		yerr(d, spec, "spec.ports", "required (at least one {name, device, address})");
	else
		parse_ports(d, v, cfg);
	if ((v = ymap_get(d, spec, "services")))
		parse_services(d, v, cfg);
	if ((v = ymap_get(d, spec, "listeners")))
		parse_listeners(d, v, cfg);
	if ((v = ymap_get(d, spec, "limits")))
		parse_limits(d, v, &cfg->limits);
	if ((v = ymap_get(d, spec, "console")))
		config_parse_console(d, v, cfg);
	admin_config_parse(d, spec, cfg);
	config_egress_parse_appliance(d, spec, cfg);
}

static void load_text(struct loader *L, const char *name, const char *base_dir, const char *text,
		      size_t len)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		config_error_add(L->errs, name, 0, "", "out of memory");
		return;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			config_error_add(L->errs, name, (int)parser.problem_mark.line + 1, "",
					 "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
					 parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		struct ydoc d = {&doc, name, L->errs};
		if (yis_null(root)) {
			/* empty document (e.g. a trailing ---) */
		} else if (!yis_map(root)) {
			yerr(&d, root, "", "a document must be a mapping with apiVersion and kind, got %s", ytype_name(root));
		} else {
			yaml_node_t *kn = ymap_get(&d, root, "kind");
			const char *kind = ystr(kn);
			if (!kn)
				yerr(&d, root, "kind", "required (Appliance, AuthorizationPolicy or PeerAuthentication)");
			else if (kind && !strcmp(kind, "Appliance"))
				parse_appliance(L, &d, root, base_dir);
			else if (kind && (!strcmp(kind, "AuthorizationPolicy") || !strcmp(kind, "PeerAuthentication")))
				policy_builder_add(L->pb, &doc, root, name, L->errs);
			else if (kind && !strcmp(kind, "ServiceEntry"))
				config_egress_parse_service_entry(&d, root, L->cfg);
			else
				yerr(&d, kn, "kind", "unknown kind %s%s%s (Appliance, AuthorizationPolicy or PeerAuthentication)",
				     kind ? "\"" : "", kind ? kind : ytype_name(kn), kind ? "\"" : "");
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
}

static char *read_file(const char *path, size_t *len, struct config_errors *errs)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		config_error_add(errs, path, 0, "", "cannot read: %s", strerror(errno));
		return NULL;
	}
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		char *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	bool err = ferror(f);
	fclose(f);
	if (!buf || err) {
		config_error_add(errs, path, 0, "", "%s", !buf ? "out of memory" : "read error");
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static void set_defaults(struct config *cfg)
{
	cfg->limits.max_connections = 4096;
	cfg->limits.handshake_timeout_ms = 10000;
	cfg->limits.idle_timeout_ms = 300000;
	cfg->limits.connect_timeout_ms = 5000;
	cfg->limits.max_request_head = 16384;
}

static void warn_l7_on_tcp(struct config *cfg)
{
	size_t np = policy_set_count(cfg->policies);
	for (size_t i = 0; i < np; i++) {
		struct policy_info info;
		policy_set_info(cfg->policies, i, &info);
		if (!info.has_l7)
			continue;
		for (int j = 0; j < cfg->nlisteners; j++) {
			const struct config_listener *l = &cfg->listeners[j];
			if (l->protocol != CONFIG_PROTOCOL_TCP || l->service < 0)
				continue;
			const struct config_service *s = &cfg->services[l->service];
			if (!policy_applies(cfg->policies, i, s->namespace_, s->labels, s->nlabels))
				continue;
			config_error_add(&cfg->warnings, info.file, info.line, "spec.rules",
					 "%s policy %s/%s uses HTTP-only fields (methods, paths, hosts, request.headers) but applies to tcp listener \"%s\": %s",
					 info.action, info.namespace_, info.name, l->name,
					 !strcmp(info.action, "ALLOW") ? "its rules that need them never match"
								       : "its rules are enforced without those fields");
		}
	}
}

static int finish(struct loader *L, unsigned flags)
{
	struct config *cfg = L->cfg;
	if (L->nappliance == 0 && !(flags & CONFIG_LOAD_POLICIES_ONLY))
		config_error_add(L->errs, cfg->file0, 0, "", "no Appliance document (kind: Appliance, apiVersion: meshgate.dev/v1alpha1) found");
	if (!cfg->root_namespace[0])
		snprintf(cfg->root_namespace, sizeof cfg->root_namespace, "istio-system");
	config_egress_finish(cfg, L->errs);
	if (L->errs->count) {
		config_egress_free(cfg);
		policy_builder_free(L->pb);
		memset(cfg, 0, sizeof *cfg);
		return -1;
	}
	cfg->policies = policy_builder_finish(L->pb, cfg->root_namespace);
	L->pb = NULL;
	if (!cfg->policies) {
		config_error_add(L->errs, cfg->file0, 0, "", "out of memory building the policy index");
		config_egress_free(cfg);
		memset(cfg, 0, sizeof *cfg);
		return -1;
	}
	warn_l7_on_tcp(cfg);
	return 0;
}

static bool start(struct loader *L, struct config *out, struct config_errors *errs)
{
	memset(out, 0, sizeof *out);
	memset(L, 0, sizeof *L);
	errs->count = 0;
	L->cfg = out;
	L->errs = errs;
	set_defaults(out);
	L->pb = policy_builder_new();
	if (!L->pb) {
		config_error_add(errs, "", 0, "", "out of memory");
		return false;
	}
	return true;
}

int config_load_ex(const char *const *files, int nfiles, unsigned flags, struct config *out,
		   struct config_errors *errs)
{
	struct loader L;
	if (!start(&L, out, errs))
		return -1;
	if (nfiles < 1)
		config_error_add(errs, "", 0, "", "no configuration file given");
	else
		snprintf(out->file0, sizeof out->file0, "%s", files[0]);
	for (int i = 0; i < nfiles; i++) {
		size_t len;
		char *text = read_file(files[i], &len, errs);
		if (!text)
			continue;
		char dir[CONFIG_MAX_PATH];
		dirname_of(files[i], dir, sizeof dir);
		load_text(&L, files[i], dir, text, len);
		free(text);
	}
	return finish(&L, flags);
}

int config_load(const char *const *files, int nfiles, struct config *out, struct config_errors *errs)
{
	return config_load_ex(files, nfiles, 0, out, errs);
}

int config_load_buffer(const char *name, const char *base_dir, const char *text, size_t len,
		       struct config *out, struct config_errors *errs)
{
	struct loader L;
	if (!start(&L, out, errs))
		return -1;
	snprintf(out->file0, sizeof out->file0, "%s", name);
	char dir[CONFIG_MAX_PATH];
	if (base_dir)
		snprintf(dir, sizeof dir, "%s", base_dir);
	else if (!getcwd(dir, sizeof dir))
		snprintf(dir, sizeof dir, ".");
	load_text(&L, name, dir, text, len);
	return finish(&L, 0);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	policy_set_free(cfg->policies);
	cfg->policies = NULL;
	config_egress_free(cfg);
}
