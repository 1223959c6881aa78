/* spec.admin / spec.accessLog loader: see admin_config.h. */
#include "appliance/admin_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/config.h"
#include "appliance/console_auth.h"
#include "appliance/yaml_node.h"

_Static_assert(CONFIG_ADMIN_HASH_MAX == CONSOLE_AUTH_ENCODED_MAX, "hash field size");

static bool parse_port_number(const struct ydoc *d, const yaml_node_t *n, const char *field,
			      uint16_t *out)
{
	unsigned long v;
	if (!yget_uint(d, n, field, 1, 65535, &v))
		return false;
	*out = (uint16_t)v;
	return true;
}

/* "3600", "3600s", "30m", "1h" */
static bool parse_ttl(const struct ydoc *d, const yaml_node_t *n, const char *field, unsigned *out)
{
	const char *s = ystr(n);
	char *end = NULL;
	unsigned long v = 0, mul = 1;
	bool ok = s && s[0] >= '0' && s[0] <= '9' && strlen(s) <= 10;
	if (ok) {
		v = strtoul(s, &end, 10);
		if (!strcmp(end, "h"))
			mul = 3600;
		else if (!strcmp(end, "m"))
			mul = 60;
		else if (*end && strcmp(end, "s"))
			ok = false;
	}
	if (ok)
		v *= mul;
	if (!ok || v < CONFIG_ADMIN_MIN_TTL_S || v > CONFIG_ADMIN_MAX_TTL_S) {
		yerr(d, n, field, "must be a duration of %u s to %u s (e.g. 3600, 30m, 1h), got \"%s\"",
		     CONFIG_ADMIN_MIN_TTL_S, CONFIG_ADMIN_MAX_TTL_S, s ? s : ytype_name(n));
		return false;
	}
	*out = (unsigned)v;
	return true;
}

static bool principal_ok(const char *p)
{
	/* TRUST_DOMAIN/PATH, or a prefix ending in '*', or "*" */
	if (!strcmp(p, "*"))
		return true;
	const char *slash = strchr(p, '/');
	if (!slash || slash == p)
		return false;
	for (const char *c = p; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			return false;
		if (ch == '*' && c[1] != 0)
			return false;
	}
	return true;
}

static void parse_admin(const struct ydoc *d, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {"port", "listen", "allowedPrincipals", "passwordHash",
		"sessionTtl", NULL};
	struct config_admin *a = &cfg->admin;
	if (!yget_map(d, n, "spec.admin"))
		return;
	ymap_check_keys(d, n, "spec.admin", keys);
	a->enabled = true;
	a->line = yline(n);
	a->port = -1;
	a->session_ttl_s = CONFIG_ADMIN_DEFAULT_TTL_S;
	yaml_node_t *v;
	char buf[CONFIG_ADMIN_PRINCIPAL_MAX + 16];
	if (!(v = ymap_get(d, n, "port"))) {
		yerr(d, n, "spec.admin.port", "required (the name of an entry in spec.ports)");
	} else if (yget_str(d, v, "spec.admin.port", buf, sizeof buf)) {
		const struct config_port *p = config_port_by_name(cfg, buf);
		if (!p)
			yerr(d, v, "spec.admin.port", "no port named \"%s\" in spec.ports", buf);
		else
			a->port = (int)(p - cfg->ports);
	}
	if (!(v = ymap_get(d, n, "listen"))) {
		yerr(d, n, "spec.admin.listen", "required (a TCP port number)");
	} else if (parse_port_number(d, v, "spec.admin.listen", &a->listen) && a->port >= 0) {
		for (int j = 0; j < cfg->nlisteners; j++)
			if (cfg->listeners[j].port == a->port && cfg->listeners[j].listen == a->listen)
				yerr(d, v, "spec.admin.listen", "port %u on \"%s\" is already used by listener \"%s\"",
				     a->listen, cfg->ports[a->port].name, cfg->listeners[j].name);
	}
	if ((v = ymap_get(d, n, "allowedPrincipals")) && yget_seq(d, v, "spec.admin.allowedPrincipals")) {
		int cnt = yseq_len(v);
		cnt = ylimit(d, v, "spec.admin.allowedPrincipals", cnt, CONFIG_ADMIN_MAX_PRINCIPALS, "principals");
		for (int i = 0; i < cnt; i++) {
			char field[64];
			snprintf(field, sizeof field, "spec.admin.allowedPrincipals[%d]", i);
			yaml_node_t *e = yseq_at(d, v, i);
			if (!yget_str(d, e, field, buf, sizeof buf))
				continue;
			const char *p = strncmp(buf, "spiffe://", 9) ? buf : buf + 9;
			if (!principal_ok(p) || strlen(p) >= CONFIG_ADMIN_PRINCIPAL_MAX) {
				yerr(d, e, field, "must be a principal TRUST_DOMAIN/PATH (optionally ending in *), got \"%s\"", buf);
				continue;
			}
			snprintf(a->allowed_principals[a->nallowed++], CONFIG_ADMIN_PRINCIPAL_MAX, "%s", p);
		}
	}
	if ((v = ymap_get(d, n, "passwordHash")) &&
	    yget_str(d, v, "spec.admin.passwordHash", a->password_hash, sizeof a->password_hash)) {
		struct console_auth_hash h;
		enum console_auth_err e = console_auth_parse(a->password_hash, &h);
		if (e != CONSOLE_AUTH_OK) {
			yerr(d, v, "spec.admin.passwordHash", "%s (make one with `meshgate console hash-password`)",
			     console_auth_strerror(e));
			a->password_hash[0] = 0;
		}
	} else if (v) {
		a->password_hash[0] = 0;
	}
	if ((v = ymap_get(d, n, "sessionTtl")))
		parse_ttl(d, v, "spec.admin.sessionTtl", &a->session_ttl_s);
	if (!ymap_get(d, n, "allowedPrincipals") && !ymap_get(d, n, "passwordHash"))
		yerr(d, n, "spec.admin", "set allowedPrincipals and/or passwordHash (nobody could get in)");
}

static void parse_accesslog(const struct ydoc *d, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {"console", "syslog", NULL};
	struct config_accesslog *l = &cfg->access_log;
	if (!yget_map(d, n, "spec.accessLog"))
		return;
	ymap_check_keys(d, n, "spec.accessLog", keys);
	l->configured = true;
	l->console = true;
	yaml_node_t *v;
	if ((v = ymap_get(d, n, "console")))
		yget_bool(d, v, "spec.accessLog.console", &l->console);
	char buf[64];
	if ((v = ymap_get(d, n, "syslog")) && yget_str(d, v, "spec.accessLog.syslog", buf, sizeof buf)) {
		char *colon = strchr(buf, ':');
		unsigned long port = 514;
		bool ok = true;
		if (colon) {
			*colon = 0;
			char *end;
			port = strtoul(colon + 1, &end, 10);
			ok = colon[1] >= '0' && colon[1] <= '9' && !*end && port >= 1 && port <= 65535;
		}
		if (!ok || !yparse_ipv4(buf, &l->syslog_ip)) {
			if (colon)
				*colon = ':';
			yerr(d, v, "spec.accessLog.syslog", "must be IPV4:PORT of a syslog collector (UDP), got \"%s\"", buf);
		} else {
			l->syslog = true;
			l->syslog_port = (uint16_t)port;
		}
	}
}

void admin_config_parse(const struct ydoc *d, const struct yaml_node_s *spec, struct config *cfg)
{
	const yaml_node_t *v;
	if ((v = ymap_get(d, spec, "admin")))
		parse_admin(d, v, cfg);
	if ((v = ymap_get(d, spec, "accessLog")))
		parse_accesslog(d, v, cfg);
}

bool admin_principal_allowed(const struct config_admin *cfg, const char *principal)
{
	if (!principal || !*principal)
		return false;
	for (int i = 0; i < cfg->nallowed; i++) {
		const char *a = cfg->allowed_principals[i];
		size_t n = strlen(a);
		if (n && a[n - 1] == '*') {
			if (!strncmp(a, principal, n - 1))
				return true;
		} else if (!strcmp(a, principal)) {
			return true;
		}
	}
	return false;
}
