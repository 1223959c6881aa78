/* Config sections of the egress area (see egress.h): `kind: ServiceEntry`
 * documents, the Appliance's `spec.egress` and `spec.networkPolicies`.
 * Boot / reload time only; errors FILE:LINE: field.path: message. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/config.h"
#include "appliance/egress.h"
#include "appliance/yaml_node.h"

/* The egress part of the config, created on first use. */
static struct egress_config *ecfg(const struct ydoc *d, struct config *cfg)
{
	if (!cfg->egress) {
		cfg->egress = calloc(1, sizeof *cfg->egress);
		if (!cfg->egress) {
			config_error_add(d->errs, d->file, 0, "", "out of memory");
			return NULL;
		}
		cfg->egress->outside = -1;
	}
	return cfg->egress;
}

static int port_index(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nports; i++)
		if (!strcmp(cfg->ports[i].name, name))
			return i;
	return -1;
}

/* A list of port names into indices; false (reported) on any bad one. */
static int get_port_names(const struct ydoc *d, const yaml_node_t *n, const char *field,
			  const struct config *cfg, int *out)
{
	if (!yget_seq(d, n, field))
		return -1;
	int cnt = yseq_len(n), k = 0;
	if (cnt == 0) {
		yerr(d, n, field, "at least one port name (from spec.ports) is required");
		return -1;
	}
	for (int i = 0; i < cnt && k < CONFIG_MAX_PORTS; i++) {
		char f[160], name[CONFIG_MAX_NAME];
		yaml_node_t *v = yseq_at(d, n, i);
		yfield(f, sizeof f, "%s[%d]", field, i);
		if (!yget_str(d, v, f, name, sizeof name))
			continue;
		int p = port_index(cfg, name);
		if (p < 0) {
			yerr(d, v, f, "no port named \"%s\" in spec.ports", name);
			continue;
		}
		bool dup = false;
		for (int j = 0; j < k; j++)
			dup |= out[j] == p;
		if (dup)
			yerr(d, v, f, "port \"%s\" is listed twice", name);
		else
			out[k++] = p;
	}
	return k;
}

/* "a.b.c.d/len" into host-order CIDR; bare address = /32. */
static bool get_cidr(const struct ydoc *d, const yaml_node_t *n, const char *field,
		     struct filter_cidr *out)
{
	char buf[64];
	uint32_t a;
	if (!yget_str(d, n, field, buf, sizeof buf))
		return false;
	if (strchr(buf, ':')) {
		yerr(d, n, field, "IPv6 is not supported, got \"%s\"", buf);
		return false;
	}
	if (!yparse_cidr(buf, true, &a, &out->prefix)) {
		yerr(d, n, field, "must be an IPv4 CIDR (e.g. 198.18.28.0/24), got \"%s\"", buf);
		return false;
	}
	out->addr = ntohl(a);
	uint32_t mask = out->prefix ? ~0u << (32 - out->prefix) : 0;
	if (out->addr & ~mask) {
		yerr(d, n, field, "host bits set in \"%s\" (did you mean %u.%u.%u.%u/%u?)", buf,
		     (out->addr & mask) >> 24, (out->addr & mask) >> 16 & 255, (out->addr & mask) >> 8 & 255,
		     (out->addr & mask) & 255, out->prefix);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ spec.egress */

static void parse_dns(const struct ydoc *d, const yaml_node_t *n, struct egress_config *E)
{
	static const char *const keys[] = {"enabled", "upstream", "unknownAnswer", "ttl", "rateLimit", NULL};
	yaml_node_t *v;
	char buf[64];
	unsigned long x;
	if (!yget_map(d, n, "spec.egress.dns"))
		return;
	ymap_check_keys(d, n, "spec.egress.dns", keys);
	if ((v = ymap_get(d, n, "enabled")))
		yget_bool(d, v, "spec.egress.dns.enabled", &E->dns);
	if ((v = ymap_get(d, n, "upstream")) && yget_str(d, v, "spec.egress.dns.upstream", buf, sizeof buf)) {
		char *colon = strchr(buf, ':');
		unsigned long port = 53;
		bool ok = true;
		if (colon) {
			*colon = 0;
			char *end;
			port = strtoul(colon + 1, &end, 10);
			ok = colon[1] && !*end && port >= 1 && port <= 65535;
		}
		if (!ok || !yparse_ipv4(buf, &E->dns_upstream) || !E->dns_upstream) {
			if (colon)
				*colon = ':';
			yerr(d, v, "spec.egress.dns.upstream", "must be an IPv4 address with an optional :PORT (e.g. 198.18.31.53), got \"%s\"", buf);
			E->dns_upstream = 0;
		}
		E->dns_upstream_port = (uint16_t)port;
	}
	if ((v = ymap_get(d, n, "unknownAnswer")) && yget_str(d, v, "spec.egress.dns.unknownAnswer", buf, sizeof buf)) {
		if (!strcmp(buf, "NXDOMAIN"))
			E->dns_unknown = DNS_UNKNOWN_NXDOMAIN;
		else if (!strcmp(buf, "REFUSED"))
			E->dns_unknown = DNS_UNKNOWN_REFUSED;
		else
			yerr(d, v, "spec.egress.dns.unknownAnswer", "must be NXDOMAIN or REFUSED, got \"%s\"", buf);
	}
	if ((v = ymap_get(d, n, "ttl")) && yget_uint(d, v, "spec.egress.dns.ttl", 0, 86400, &x))
		E->dns_ttl = (uint32_t)x;
	if ((v = ymap_get(d, n, "rateLimit")) && yget_map(d, v, "spec.egress.dns.rateLimit")) {
		static const char *const rk[] = {"perSecond", "burst", NULL};
		ymap_check_keys(d, v, "spec.egress.dns.rateLimit", rk);
		yaml_node_t *w;
		if ((w = ymap_get(d, v, "perSecond")) && yget_uint(d, w, "spec.egress.dns.rateLimit.perSecond", 0, 1000000, &x))
			E->dns_rate = (uint32_t)x;
		if ((w = ymap_get(d, v, "burst")) && yget_uint(d, w, "spec.egress.dns.rateLimit.burst", 1, 1000000, &x))
			E->dns_burst = (uint32_t)x;
	}
}

static void parse_egress(const struct ydoc *d, const yaml_node_t *n, struct config *cfg,
			 struct egress_config *E)
{
	static const char *const keys[] = {"ports", "outsidePort", "mode", "addressRange",
		"maxAllocations", "dns", NULL};
	yaml_node_t *v;
	char buf[64];
	if (!yget_map(d, n, "spec.egress"))
		return;
	ymap_check_keys(d, n, "spec.egress", keys);
	E->enabled = true;
	E->mode = EGRESS_MODE_REGISTRY_ONLY;
	E->dns = true;
	E->dns_ttl = EGRESS_DEFAULT_DNS_TTL;
	E->dns_rate = EGRESS_DEFAULT_DNS_RATE;
	E->dns_burst = EGRESS_DEFAULT_DNS_BURST;
	E->max_allocations = EGRESS_DEFAULT_ALLOCATIONS;
	if (!(v = ymap_get(d, n, "ports")))
		yerr(d, n, "spec.egress.ports", "required (the inside port names, from spec.ports)");
	else {
		int k = get_port_names(d, v, "spec.egress.ports", cfg, E->inside);
		E->ninside = k < 0 ? 0 : k;
	}
	if ((v = ymap_get(d, n, "outsidePort")) && yget_str(d, v, "spec.egress.outsidePort", buf, sizeof buf)) {
		E->outside = port_index(cfg, buf);
		if (E->outside < 0)
			yerr(d, v, "spec.egress.outsidePort", "no port named \"%s\" in spec.ports", buf);
		for (int i = 0; i < E->ninside; i++)
			if (E->inside[i] == E->outside)
				yerr(d, v, "spec.egress.outsidePort", "\"%s\" is also an inside port (spec.egress.ports)", buf);
	}
	if ((v = ymap_get(d, n, "mode")) && yget_str(d, v, "spec.egress.mode", buf, sizeof buf)) {
		if (!strcmp(buf, "REGISTRY_ONLY"))
			E->mode = EGRESS_MODE_REGISTRY_ONLY;
		else if (!strcmp(buf, "ALLOW_ANY"))
			E->mode = EGRESS_MODE_ALLOW_ANY;
		else
			yerr(d, v, "spec.egress.mode", "must be REGISTRY_ONLY or ALLOW_ANY, got \"%s\"", buf);
	}
	if ((v = ymap_get(d, n, "addressRange"))) {
		struct filter_cidr r;
		if (get_cidr(d, v, "spec.egress.addressRange", &r)) {
			if (r.prefix < 8 || r.prefix > 30)
				yerr(d, v, "spec.egress.addressRange", "prefix length must be 8-30, got /%u", r.prefix);
			else {
				E->range_addr = r.addr;
				E->range_prefix = r.prefix;
			}
			for (int i = 0; i < cfg->nports; i++) {
				uint32_t a = ntohl(cfg->ports[i].address);
				uint8_t p = cfg->ports[i].prefix < r.prefix ? cfg->ports[i].prefix : r.prefix;
				uint32_t m = p ? ~0u << (32 - p) : 0;
				if ((a & m) == (r.addr & m))
					yerr(d, v, "spec.egress.addressRange", "overlaps the subnet of port \"%s\"", cfg->ports[i].name);
			}
		}
	}
	unsigned long x;
	if ((v = ymap_get(d, n, "maxAllocations")) && yget_uint(d, v, "spec.egress.maxAllocations", 1, 1048576, &x))
		E->max_allocations = (unsigned)x;
	if (E->range_prefix && E->max_allocations > (1u << (32 - E->range_prefix)) - 2)
		E->max_allocations = (1u << (32 - E->range_prefix)) - 2;
	if ((v = ymap_get(d, n, "dns")))
		parse_dns(d, v, E);
	if (E->mode == EGRESS_MODE_ALLOW_ANY && E->dns && !E->dns_upstream)
		yerr(d, v ? v : n, "spec.egress.dns.upstream", "required in ALLOW_ANY mode (unknown names are forwarded there)");
}

/* ------------------------------------------------------------ spec.networkPolicies */

static bool add_rule(const struct ydoc *d, const yaml_node_t *at, struct egress_config *E,
		     const struct filter_rule *r)
{
	if (E->nrules >= FILTER_MAX_RULES) {
		if (E->nrules == FILTER_MAX_RULES)
			yerr(d, at, "spec.networkPolicies", "more than %d expanded rules (ports x peers x port entries)", FILTER_MAX_RULES);
		E->nrules = FILTER_MAX_RULES + 1;
		return false;
	}
	if (E->nrules == E->cap_rules) {
		size_t cap = E->cap_rules ? E->cap_rules * 2 : 64;
		struct filter_rule *nr = realloc(E->rules, cap * sizeof *nr);
		if (!nr) {
			yerr(d, at, "spec.networkPolicies", "out of memory");
			return false;
		}
		E->rules = nr;
		E->cap_rules = cap;
	}
	E->rules[E->nrules++] = *r;
	return true;
}

static int add_group(const struct ydoc *d, const yaml_node_t *at, struct egress_config *E,
		     const char *policy, uint8_t dir, int rule)
{
	if (E->ngroups == E->cap_groups) {
		uint32_t cap = E->cap_groups ? E->cap_groups * 2 : 32;
		struct egress_policy_group *g = realloc(E->groups, cap * sizeof *g);
		if (!g) {
			yerr(d, at, "spec.networkPolicies", "out of memory");
			return -1;
		}
		E->groups = g;
		E->cap_groups = cap;
	}
	struct egress_policy_group *g = &E->groups[E->ngroups];
	memset(g, 0, sizeof *g);
	snprintf(g->policy, sizeof g->policy, "%s", policy);
	g->dir = dir;
	g->rule = rule;
	g->line = yline(at);
	return (int)E->ngroups++;
}

#define NP_MAX_PEERS 64
#define NP_MAX_PORTS 64

struct np_peer { struct filter_cidr cidr; struct filter_cidr except[FILTER_MAX_EXCEPT]; uint8_t nexcept; };
struct np_port { uint8_t proto; uint16_t lo, hi; };

static int parse_peers(const struct ydoc *d, const yaml_node_t *n, const char *field, struct np_peer *out)
{
	if (!yget_seq(d, n, field))
		return -1;
	int cnt = yseq_len(n), k = 0;
	if (cnt > NP_MAX_PEERS) {
		yerr(d, n, field, "at most %d peers, got %d", NP_MAX_PEERS, cnt);
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		char base[160], f[200];
		yaml_node_t *e = yseq_at(d, n, i), *b, *v;
		yfield(base, sizeof base, "%s[%d]", field, i);
		if (!yget_map(d, e, base))
			continue;
		if (ymap_get(d, e, "podSelector") || ymap_get(d, e, "namespaceSelector")) {
			yerr(d, e, base, "podSelector and namespaceSelector select nothing on an appliance: use ipBlock");
			continue;
		}
		static const char *const pk[] = {"ipBlock", NULL};
		ymap_check_keys(d, e, base, pk);
		yfield(f, sizeof f, "%s.ipBlock", base);
		if (!(b = ymap_get(d, e, "ipBlock"))) {
			yerr(d, e, f, "required ({cidr: A.B.C.D/N, except: [...]})");
			continue;
		}
		if (!yget_map(d, b, f))
			continue;
		static const char *const bk[] = {"cidr", "except", NULL};
		ymap_check_keys(d, b, f, bk);
		struct np_peer *p = &out[k];
		memset(p, 0, sizeof *p);
		char cf[220];
		yfield(cf, sizeof cf, "%s.cidr", f);
		if (!(v = ymap_get(d, b, "cidr"))) {
			yerr(d, b, cf, "required");
			continue;
		}
		if (!get_cidr(d, v, cf, &p->cidr))
			continue;
		bool ok = true;
		yfield(cf, sizeof cf, "%s.except", f);
		if ((v = ymap_get(d, b, "except")) && yget_seq(d, v, cf)) {
			int ne = yseq_len(v);
			if (ne > FILTER_MAX_EXCEPT) {
				yerr(d, v, cf, "at most %d except CIDRs, got %d", FILTER_MAX_EXCEPT, ne);
				ok = false;
				ne = FILTER_MAX_EXCEPT;
			}
			for (int j = 0; j < ne; j++) {
				char ef[240];
				yaml_node_t *x = yseq_at(d, v, j);
				struct filter_cidr c;
				yfield(ef, sizeof ef, "%s[%d]", cf, j);
				if (!get_cidr(d, x, ef, &c)) {
					ok = false;
					continue;
				}
				uint32_t m = p->cidr.prefix ? ~0u << (32 - p->cidr.prefix) : 0;
				if (c.prefix <= p->cidr.prefix || (c.addr & m) != p->cidr.addr) {
					yerr(d, x, ef, "must be a smaller block inside the cidr (as in Kubernetes)");
					ok = false;
					continue;
				}
				p->except[p->nexcept++] = c;
			}
		}
		if (ok)
			k++;
	}
	return k;
}

static int parse_np_ports(const struct ydoc *d, const yaml_node_t *n, const char *field, struct np_port *out)
{
	if (!yget_seq(d, n, field))
		return -1;
	int cnt = yseq_len(n), k = 0;
	if (cnt > NP_MAX_PORTS) {
		yerr(d, n, field, "at most %d port entries, got %d", NP_MAX_PORTS, cnt);
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		char base[160], f[200], buf[32];
		yaml_node_t *e = yseq_at(d, n, i), *v;
		yfield(base, sizeof base, "%s[%d]", field, i);
		if (!yget_map(d, e, base))
			continue;
		static const char *const pk[] = {"protocol", "port", "endPort", NULL};
		ymap_check_keys(d, e, base, pk);
		struct np_port *p = &out[k];
		memset(p, 0, sizeof *p);
		p->proto = FILTER_PROTO_TCP;
		bool ok = true;
		yfield(f, sizeof f, "%s.protocol", base);
		if ((v = ymap_get(d, e, "protocol")) && yget_str(d, v, f, buf, sizeof buf)) {
			if (!strcmp(buf, "TCP"))
				p->proto = FILTER_PROTO_TCP;
			else if (!strcmp(buf, "UDP"))
				p->proto = FILTER_PROTO_UDP;
			else if (!strcmp(buf, "ICMP"))
				p->proto = FILTER_PROTO_ICMP;
			else {
				yerr(d, v, f, "must be TCP, UDP or ICMP, got \"%s\"", buf);
				ok = false;
			}
		}
		unsigned long x;
		yfield(f, sizeof f, "%s.port", base);
		if ((v = ymap_get(d, e, "port"))) {
			const char *s = ystr(v);
			if (s && !yis_null(v) && !(s[0] >= '0' && s[0] <= '9')) {
				yerr(d, v, f, "named ports are not supported on an appliance, got \"%s\"", s);
				ok = false;
			} else if (yget_uint(d, v, f, 1, 65535, &x)) {
				p->lo = p->hi = (uint16_t)x;
			} else {
				ok = false;
			}
			if (ok && p->proto == FILTER_PROTO_ICMP) {
				yerr(d, v, f, "ICMP has no ports");
				ok = false;
			}
		}
		yfield(f, sizeof f, "%s.endPort", base);
		if ((v = ymap_get(d, e, "endPort"))) {
			if (!ymap_get(d, e, "port")) {
				yerr(d, v, f, "needs port (the start of the range)");
				ok = false;
			} else if (yget_uint(d, v, f, 1, 65535, &x)) {
				if (x < p->lo) {
					yerr(d, v, f, "must be at least port (%u), got %lu", p->lo, x);
					ok = false;
				}
				p->hi = (uint16_t)x;
			} else {
				ok = false;
			}
		}
		if (ok)
			k++;
	}
	return k;
}

static void parse_np_rules(const struct ydoc *d, const yaml_node_t *n, const char *base,
			   const char *policy, uint8_t dir, const int *ports, int nports,
			   struct egress_config *E)
{
	const char *peer_key = dir == FILTER_INGRESS ? "from" : "to";
	const char *list = dir == FILTER_INGRESS ? "ingress" : "egress";
	char field[128];
	yfield(field, sizeof field, "%s.%s", base, list);
	if (!yget_seq(d, n, field))
		return;
	int cnt = yseq_len(n);
	for (int i = 0; i < cnt; i++) {
		char rb[160], f[200];
		yaml_node_t *e = yseq_at(d, n, i), *v;
		yfield(rb, sizeof rb, "%s[%d]", field, i);
		if (!yget_map(d, e, rb))
			continue;
		const char *const keys[] = {peer_key, "ports", NULL};
		ymap_check_keys(d, e, rb, keys);
		static struct np_peer peers[NP_MAX_PEERS];
		static struct np_port pp[NP_MAX_PORTS];
		int npeers = 0, npp = 0;
		yfield(f, sizeof f, "%s.%s", rb, peer_key);
		if ((v = ymap_get(d, e, peer_key)) && (npeers = parse_peers(d, v, f, peers)) < 0)
			continue;
		yfield(f, sizeof f, "%s.ports", rb);
		if ((v = ymap_get(d, e, "ports")) && (npp = parse_np_ports(d, v, f, pp)) < 0)
			continue;
		/* an empty list after errors must not widen the rule to "any" */
		if (d->errs->count)
			continue;
		int g = add_group(d, e, E, policy, dir, i);
		if (g < 0)
			return;
		struct np_peer any_peer = {{0, 0}, {{0, 0}}, 0};
		struct np_port any_port = {FILTER_PROTO_ANY, 0, 0};
		for (int p = 0; p < nports; p++)
			for (int a = 0; a < (npeers ? npeers : 1); a++)
				for (int b = 0; b < (npp ? npp : 1); b++) {
					const struct np_peer *pe = npeers ? &peers[a] : &any_peer;
					const struct np_port *po = npp ? &pp[b] : &any_port;
					struct filter_rule r;
					memset(&r, 0, sizeof r);
					r.port = (uint8_t)ports[p];
					r.dir = dir;
					r.proto = po->proto;
					r.port_lo = po->lo;
					r.port_hi = po->hi;
					r.peer = pe->cidr;
					r.nexcept = pe->nexcept;
					memcpy(r.except, pe->except, sizeof r.except);
					r.group = (uint32_t)g;
					if (!add_rule(d, e, E, &r))
						return;
				}
	}
}

static void parse_network_policies(const struct ydoc *d, const yaml_node_t *n, struct config *cfg,
				   struct egress_config *E)
{
	if (!yget_seq(d, n, "spec.networkPolicies"))
		return;
	int cnt = yseq_len(n);
	cnt = ylimit(d, n, "spec.networkPolicies", cnt, EGRESS_MAX_POLICIES, "policies");
	char names[EGRESS_MAX_POLICIES][CONFIG_MAX_NAME];
	for (int i = 0; i < cnt; i++) {
		static const char *const keys[] = {"name", "ports", "policyTypes", "ingress", "egress", NULL};
		char base[64], f[128], name[CONFIG_MAX_NAME] = "";
		yaml_node_t *e = yseq_at(d, n, i), *v;
		yfield(base, sizeof base, "spec.networkPolicies[%d]", i);
		names[i][0] = 0;
		if (!yget_map(d, e, base))
			continue;
		ymap_check_keys(d, e, base, keys);
		yfield(f, sizeof f, "%s.name", base);
		if (!(v = ymap_get(d, e, "name")))
			yerr(d, e, f, "required");
		else if (yget_str(d, v, f, name, sizeof name)) {
			if (!egress_label_valid(name, strlen(name)))
				yerr(d, v, f, "must be a lower-case DNS label (a-z, 0-9, '-', at most 63), got \"%s\"", name);
			for (int j = 0; j < i; j++)
				if (!strcmp(names[j], name))
					yerr(d, v, f, "duplicate policy name \"%s\" (also spec.networkPolicies[%d])", name, j);
			snprintf(names[i], sizeof names[i], "%s", name);
		}
		int ports[CONFIG_MAX_PORTS], np = -1;
		yfield(f, sizeof f, "%s.ports", base);
		if (!(v = ymap_get(d, e, "ports")))
			yerr(d, e, f, "required (the port names it applies to, from spec.ports)");
		else
			np = get_port_names(d, v, f, cfg, ports);
		yaml_node_t *in = ymap_get(d, e, "ingress"), *out = ymap_get(d, e, "egress");
		bool types[2] = {true, out != NULL};    /* Kubernetes' default */
		yfield(f, sizeof f, "%s.policyTypes", base);
		if ((v = ymap_get(d, e, "policyTypes")) && yget_seq(d, v, f)) {
			types[0] = types[1] = false;
			int nt = yseq_len(v);
			if (nt == 0)
				yerr(d, v, f, "list Ingress, Egress or both");
			for (int j = 0; j < nt; j++) {
				char tf[160], t[16];
				yaml_node_t *x = yseq_at(d, v, j);
				yfield(tf, sizeof tf, "%s[%d]", f, j);
				if (!yget_str(d, x, tf, t, sizeof t))
					continue;
				if (!strcmp(t, "Ingress"))
					types[0] = true;
				else if (!strcmp(t, "Egress"))
					types[1] = true;
				else
					yerr(d, x, tf, "must be Ingress or Egress, got \"%s\"", t);
			}
			if (in && !types[0])
				yerr(d, in, f, "ingress rules are given but policyTypes does not list Ingress");
			if (out && !types[1])
				yerr(d, out, f, "egress rules are given but policyTypes does not list Egress");
		}
		E->npolicies++;
		if (np <= 0)
			continue;
		for (int dir = 0; dir < 2; dir++)
			if (types[dir])
				for (int p = 0; p < np; p++)
					E->enforce[ports[p]][dir] = true;
		if (in)
			parse_np_rules(d, in, base, name, FILTER_INGRESS, ports, np, E);
		if (out)
			parse_np_rules(d, out, base, name, FILTER_EGRESS, ports, np, E);
	}
}

void config_egress_parse_appliance(const struct ydoc *d, yaml_node_t *spec, struct config *cfg)
{
	yaml_node_t *eg = ymap_get(d, spec, "egress"), *np = ymap_get(d, spec, "networkPolicies");
	if (!eg && !np)
		return;
	struct egress_config *E = ecfg(d, cfg);
	if (!E)
		return;
	snprintf(E->appliance_file, sizeof E->appliance_file, "%s", d->file);
	if (eg)
		parse_egress(d, eg, cfg, E);
	if (np)
		parse_network_policies(d, np, cfg, E);
}

/* ------------------------------------------------------------ ServiceEntry */

static void parse_se_ports(const struct ydoc *d, const yaml_node_t *n, struct egress_entry *s)
{
	if (!yget_seq(d, n, "spec.ports"))
		return;
	int cnt = yseq_len(n);
	if (cnt == 0)
		yerr(d, n, "spec.ports", "at least one port is required");
	cnt = ylimit(d, n, "spec.ports", cnt, EGRESS_MAX_ENTRY_PORTS, "ports");
	for (int i = 0; i < cnt; i++) {
		static const char *const keys[] = {"number", "protocol", "name", "targetPort", NULL};
		char base[64], f[96], buf[32];
		yaml_node_t *e = yseq_at(d, n, i), *v;
		unsigned long x;
		yfield(base, sizeof base, "spec.ports[%d]", i);
		if (!yget_map(d, e, base))
			continue;
		ymap_check_keys(d, e, base, keys);
		struct egress_port *p = &s->ports[s->nports];
		memset(p, 0, sizeof *p);
		bool ok = true;
		yfield(f, sizeof f, "%s.number", base);
		if (!(v = ymap_get(d, e, "number"))) {
			yerr(d, e, f, "required");
			ok = false;
		} else if (yget_uint(d, v, f, 1, 65535, &x)) {
			p->number = (uint16_t)x;
			for (int j = 0; j < s->nports; j++)
				if (s->ports[j].number == p->number) {
					yerr(d, v, f, "port %lu is declared twice (also spec.ports[%d])", x, j);
					ok = false;
				}
		} else {
			ok = false;
		}
		yfield(f, sizeof f, "%s.protocol", base);
		if (!(v = ymap_get(d, e, "protocol"))) {
			yerr(d, e, f, "required (TLS, HTTPS, HTTP or TCP)");
			ok = false;
		} else if (yget_str(d, v, f, buf, sizeof buf)) {
			if (!strcmp(buf, "TLS"))
				p->protocol = EGRESS_PROTO_TLS;
			else if (!strcmp(buf, "HTTPS"))
				p->protocol = EGRESS_PROTO_HTTPS;
			else if (!strcmp(buf, "HTTP"))
				p->protocol = EGRESS_PROTO_HTTP;
			else if (!strcmp(buf, "TCP"))
				p->protocol = EGRESS_PROTO_TCP;
			else {
				yerr(d, v, f, "must be TLS, HTTPS, HTTP or TCP (the protocols the egress gateway can route), got \"%s\"", buf);
				ok = false;
			}
		} else {
			ok = false;
		}
		yfield(f, sizeof f, "%s.name", base);
		if ((v = ymap_get(d, e, "name")))
			ok &= yget_str(d, v, f, p->name, sizeof p->name);
		yfield(f, sizeof f, "%s.targetPort", base);
		if ((v = ymap_get(d, e, "targetPort"))) {
			if (yget_uint(d, v, f, 1, 65535, &x))
				p->target = (uint16_t)x;
			else
				ok = false;
		}
		if (ok)
			s->nports++;
	}
}

static void parse_se_endpoints(const struct ydoc *d, const yaml_node_t *n, struct egress_entry *s)
{
	if (!yget_seq(d, n, "spec.endpoints"))
		return;
	int cnt = yseq_len(n);
	cnt = ylimit(d, n, "spec.endpoints", cnt, EGRESS_MAX_ENTRY_ENDPOINTS, "endpoints");
	for (int i = 0; i < cnt; i++) {
		static const char *const keys[] = {"address", "ports", "labels", "network", "locality", "weight", NULL};
		char base[64], f[96];
		yaml_node_t *e = yseq_at(d, n, i), *v;
		yfield(base, sizeof base, "spec.endpoints[%d]", i);
		if (!yget_map(d, e, base))
			continue;
		ymap_check_keys(d, e, base, keys);
		struct egress_endpoint *ep = &s->endpoints[s->nendpoints];
		memset(ep, 0, sizeof *ep);
		yfield(f, sizeof f, "%s.address", base);
		if (!(v = ymap_get(d, e, "address"))) {
			yerr(d, e, f, "required (an IPv4 address or a host name)");
			continue;
		}
		if (!yget_str(d, v, f, ep->address, sizeof ep->address))
			continue;
		if (strchr(ep->address, ':')) {
			yerr(d, v, f, "IPv6 and unix addresses are not supported, got \"%s\"", ep->address);
			continue;
		}
		bool numeric = ep->address[0] >= '0' && ep->address[0] <= '9';
		if (numeric && !yparse_ipv4(ep->address, &ep->ip)) {
			yerr(d, v, f, "not an IPv4 address: \"%s\"", ep->address);
			continue;
		}
		if (!numeric && !egress_host_valid(ep->address, false)) {
			yerr(d, v, f, "must be an IPv4 address or a host name, got \"%s\"", ep->address);
			continue;
		}
		if (!numeric && s->resolution == EGRESS_RES_STATIC) {
			yerr(d, v, f, "resolution STATIC needs IP addresses, got \"%s\"", ep->address);
			continue;
		}
		yfield(f, sizeof f, "%s.ports", base);
		if ((v = ymap_get(d, e, "ports")) && yget_map(d, v, f)) {
			int np = ymap_len(v);
			if (np > 4) {
				yerr(d, v, f, "at most 4 port overrides, got %d", np);
				np = 4;
			}
			for (int j = 0; j < np; j++) {
				unsigned long x;
				const char *k = ystr(ymap_key(d, v, j));
				char pf[160];
				yfield(pf, sizeof pf, "%s.%s", f, k ? k : "?");
				bool known = false;
				for (int q = 0; k && q < s->nports; q++)
					known |= !strcmp(s->ports[q].name, k);
				if (!known) {
					yerr(d, ymap_key(d, v, j), pf, "no port named \"%s\" in spec.ports", k ? k : "?");
					continue;
				}
				if (yget_uint(d, ymap_val(d, v, j), pf, 1, 65535, &x)) {
					snprintf(ep->ports[ep->nports].name, sizeof ep->ports[0].name, "%s", k);
					ep->ports[ep->nports++].number = (uint16_t)x;
				}
			}
		}
		s->nendpoints++;
	}
}

void config_egress_parse_service_entry(const struct ydoc *d, yaml_node_t *root, struct config *cfg)
{
	struct egress_config *E = ecfg(d, cfg);
	if (!E)
		return;
	static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
	ymap_check_keys(d, root, "", top);
	yaml_node_t *v = ymap_get(d, root, "apiVersion"), *md, *spec;
	const char *api = ystr(v);
	if (!v)
		yerr(d, root, "apiVersion", "required (networking.istio.io/v1)");
	else if (!api || (strcmp(api, "networking.istio.io/v1") && strcmp(api, "networking.istio.io/v1beta1") &&
			  strcmp(api, "networking.istio.io/v1alpha3")))
		yerr(d, v, "apiVersion", "must be networking.istio.io/v1 (or v1beta1, v1alpha3) for kind ServiceEntry, got %s%s%s",
		     api ? "\"" : "", api ? api : ytype_name(v), api ? "\"" : "");
	if (E->nentries >= EGRESS_MAX_ENTRIES) {
		yerr(d, root, "kind", "more than %d ServiceEntry documents", EGRESS_MAX_ENTRIES);
		return;
	}
	if (E->nentries == E->cap_entries) {
		int cap = E->cap_entries ? E->cap_entries * 2 : 8;
		struct egress_entry *ne = realloc(E->entries, (size_t)cap * sizeof *ne);
		if (!ne) {
			yerr(d, root, "kind", "out of memory");
			return;
		}
		E->entries = ne;
		E->cap_entries = cap;
	}
	struct egress_entry *s = &E->entries[E->nentries];
	memset(s, 0, sizeof *s);
	snprintf(s->file, sizeof s->file, "%s", d->file);
	s->line = yline(root);
	snprintf(s->namespace_, sizeof s->namespace_, "default");
	if (!(md = ymap_get(d, root, "metadata")))
		yerr(d, root, "metadata", "required");
	else if (yget_map(d, md, "metadata")) {
		static const char *const mk[] = {"name", "namespace", "labels", "annotations", NULL};
		ymap_check_keys(d, md, "metadata", mk);
		if (!(v = ymap_get(d, md, "name")))
			yerr(d, md, "metadata.name", "required");
		else if (yget_str(d, v, "metadata.name", s->name, sizeof s->name) && !egress_label_valid(s->name, strlen(s->name)))
			yerr(d, v, "metadata.name", "must be a lower-case DNS label, got \"%s\"", s->name);
		if ((v = ymap_get(d, md, "namespace")) && yget_str(d, v, "metadata.namespace", s->namespace_, sizeof s->namespace_) &&
		    !egress_label_valid(s->namespace_, strlen(s->namespace_)))
			yerr(d, v, "metadata.namespace", "must be a lower-case DNS label, got \"%s\"", s->namespace_);
		for (int j = 0; j < E->nentries; j++)
			if (s->name[0] && !strcmp(E->entries[j].name, s->name) && !strcmp(E->entries[j].namespace_, s->namespace_))
				yerr(d, md, "metadata.name", "duplicate ServiceEntry %s/%s (also %s:%d)", s->namespace_, s->name,
				     E->entries[j].file, E->entries[j].line);
	}
	if (!(spec = ymap_get(d, root, "spec"))) {
		yerr(d, root, "spec", "required");
		return;
	}
	if (!yget_map(d, spec, "spec"))
		return;
	static const char *const sk[] = {"hosts", "addresses", "ports", "location", "resolution",
		"endpoints", "exportTo", NULL};
	if (ymap_get(d, spec, "workloadSelector"))
		yerr(d, ymap_get(d, spec, "workloadSelector"), "spec.workloadSelector", "not supported on an appliance (use endpoints)");
	else
		ymap_check_keys(d, spec, "spec", sk);
	char buf[64];
	if ((v = ymap_get(d, spec, "resolution")) && yget_str(d, v, "spec.resolution", buf, sizeof buf)) {
		if (!strcmp(buf, "NONE"))
			s->resolution = EGRESS_RES_NONE;
		else if (!strcmp(buf, "STATIC"))
			s->resolution = EGRESS_RES_STATIC;
		else if (!strcmp(buf, "DNS"))
			s->resolution = EGRESS_RES_DNS;
		else if (!strcmp(buf, "DNS_ROUND_ROBIN"))
			s->resolution = EGRESS_RES_DNS_ROUND_ROBIN;
		else
			yerr(d, v, "spec.resolution", "must be NONE, STATIC, DNS or DNS_ROUND_ROBIN, got \"%s\"", buf);
	}
	if ((v = ymap_get(d, spec, "location")) && yget_str(d, v, "spec.location", buf, sizeof buf)) {
		if (!strcmp(buf, "MESH_INTERNAL"))
			s->mesh_internal = true;
		else if (strcmp(buf, "MESH_EXTERNAL"))
			yerr(d, v, "spec.location", "must be MESH_EXTERNAL or MESH_INTERNAL, got \"%s\"", buf);
	}
	bool wildcard = false;
	if (!(v = ymap_get(d, spec, "hosts")))
		yerr(d, spec, "spec.hosts", "required (at least one host name, e.g. api.example.com or *.example.com)");
	else if (yget_seq(d, v, "spec.hosts")) {
		int cnt = yseq_len(v);
		if (cnt == 0)
			yerr(d, v, "spec.hosts", "at least one host is required");
		cnt = ylimit(d, v, "spec.hosts", cnt, EGRESS_MAX_ENTRY_HOSTS, "hosts");
		for (int i = 0; i < cnt; i++) {
			char f[64];
			yaml_node_t *h = yseq_at(d, v, i);
			char *out = s->hosts[s->nhosts];
			yfield(f, sizeof f, "spec.hosts[%d]", i);
			if (!yget_str(d, h, f, out, EGRESS_MAX_HOST))
				continue;
			if (!strcmp(out, "*")) {
				yerr(d, h, f, "\"*\" would declare every host: use mode ALLOW_ANY in spec.egress instead");
				continue;
			}
			if (!egress_host_valid(out, true)) {
				yerr(d, h, f, "must be a DNS name, optionally starting with \"*.\" (e.g. *.example.com), got \"%s\"", ystr(h));
				continue;
			}
			bool dup = false;
			for (int j = 0; j < s->nhosts; j++)
				dup |= !strcmp(s->hosts[j], out);
			if (dup) {
				yerr(d, h, f, "host \"%s\" is listed twice", out);
				continue;
			}
			wildcard |= out[0] == '*';
			s->nhosts++;
		}
	}
	if ((v = ymap_get(d, spec, "addresses")) && yget_seq(d, v, "spec.addresses")) {
		int cnt = yseq_len(v);
		cnt = ylimit(d, v, "spec.addresses", cnt, EGRESS_MAX_ENTRY_ADDRESSES, "addresses");
		for (int i = 0; i < cnt; i++) {
			char f[64];
			yfield(f, sizeof f, "spec.addresses[%d]", i);
			if (get_cidr(d, yseq_at(d, v, i), f, &s->addresses[s->naddresses]))
				s->naddresses++;
		}
	}
	if (!(v = ymap_get(d, spec, "ports")))
		yerr(d, spec, "spec.ports", "required (e.g. [{number: 443, name: https, protocol: TLS}])");
	else
		parse_se_ports(d, v, s);
	if ((v = ymap_get(d, spec, "endpoints")))
		parse_se_endpoints(d, v, s);
	if ((v = ymap_get(d, spec, "exportTo")))
		yget_seq(d, v, "spec.exportTo");    /* accepted: one appliance, no namespaces to export to */
	yaml_node_t *res = ymap_get(d, spec, "resolution");
	if (s->resolution == EGRESS_RES_STATIC && s->nendpoints == 0)
		yerr(d, res ? res : spec, "spec.endpoints", "resolution STATIC needs endpoints");
	if ((s->resolution == EGRESS_RES_DNS || s->resolution == EGRESS_RES_DNS_ROUND_ROBIN) && wildcard &&
	    s->nendpoints == 0)
		yerr(d, res ? res : spec, "spec.resolution", "DNS resolution of a wildcard host needs endpoints (which name would be resolved?)");
	E->nentries++;
}

/* ------------------------------------------------------------ whole config */

void config_egress_finish(struct config *cfg, struct config_errors *errs)
{
	struct egress_config *E = cfg->egress;
	if (!E)
		return;
	if (E->nentries && !E->enabled)
		config_error_add(&cfg->warnings, E->entries[0].file, E->entries[0].line, "kind",
				 "ServiceEntry documents have no effect without spec.egress in the Appliance");
	if (!E->enabled)
		return;
	/* resolution: DNS without endpoint addresses: meshgate resolves the host
	 * through the upstream resolver, which must then be configured */
	for (int e = 0; e < E->nentries; e++) {
		const struct egress_entry *s = &E->entries[e];
		bool has_ip = false;
		for (int i = 0; i < s->nendpoints; i++)
			has_ip |= s->endpoints[i].ip != 0;
		if ((s->resolution == EGRESS_RES_DNS || s->resolution == EGRESS_RES_DNS_ROUND_ROBIN) && !has_ip &&
		    !E->dns_upstream)
			config_error_add(errs, s->file, s->line, "spec.resolution",
					 "DNS resolution needs spec.egress.dns.upstream in the Appliance (meshgate resolves %s itself)",
					 s->nhosts ? s->hosts[0] : "the host");
	}
	/* the egress listener takes the ServiceEntry ports on the inside ports,
	 * the DNS responder port 53: none may be a configured listener too */
	for (int i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		bool inside = false;
		for (int k = 0; k < E->ninside; k++)
			inside |= E->inside[k] == l->port;
		if (!inside)
			continue;
		if (E->dns && l->listen == DNS_PORT)
			config_error_add(errs, E->appliance_file, l->line, "spec.listeners",
					 "listener \"%s\" takes port 53 on an inside port, where the egress DNS responder answers",
					 l->name);
		for (int e = 0; e < E->nentries; e++)
			for (int p = 0; p < E->entries[e].nports; p++)
				if (E->entries[e].ports[p].number == l->listen)
					config_error_add(errs, E->entries[e].file, E->entries[e].line, "spec.ports",
							 "port %u is also listener \"%s\" on inside port \"%s\"",
							 l->listen, l->name, cfg->ports[l->port].name);
	}
}

void config_egress_free(struct config *cfg)
{
	if (!cfg || !cfg->egress)
		return;
	free(cfg->egress->entries);
	free(cfg->egress->rules);
	free(cfg->egress->groups);
	free(cfg->egress);
	cfg->egress = NULL;
}
