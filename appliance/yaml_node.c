/* libyaml document helpers: see yaml_node.h. */
#include "appliance/yaml_node.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

bool yis_null(const yaml_node_t *n)
{
	if (!yis_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = ystr(n);
	return s[0] == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

const char *ytype_name(const yaml_node_t *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_SCALAR_NODE: return yis_null(n) ? "null" : "a scalar";
	default: return "an empty node";
	}
}

yaml_node_t *ynode(const struct ydoc *d, int id)
{
	return yaml_document_get_node(d->doc, id);
}

int yseq_len(const yaml_node_t *n)
{
	return yis_seq(n) ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

yaml_node_t *yseq_at(const struct ydoc *d, const yaml_node_t *n, int i)
{
	return ynode(d, n->data.sequence.items.start[i]);
}

int ymap_len(const yaml_node_t *n)
{
	return yis_map(n) ? (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) : 0;
}

yaml_node_t *ymap_key(const struct ydoc *d, const yaml_node_t *n, int i)
{
	return ynode(d, n->data.mapping.pairs.start[i].key);
}

yaml_node_t *ymap_val(const struct ydoc *d, const yaml_node_t *n, int i)
{
	return ynode(d, n->data.mapping.pairs.start[i].value);
}

yaml_node_t *ymap_get(const struct ydoc *d, const yaml_node_t *map, const char *key)
{
	int n = ymap_len(map);
	for (int i = 0; i < n; i++) {
		const char *k = ystr(ymap_key(d, map, i));
		if (k && !strcmp(k, key))
			return ymap_val(d, map, i);
	}
	return NULL;
}

void yerr(const struct ydoc *d, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	config_error_add(d->errs, d->file, yline(n), field, "%s", msg);
}

void yfield(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n >= (int)cap && cap > 4)
		memcpy(out + cap - 4, "...", 4);
}

int ylimit(const struct ydoc *d, const yaml_node_t *at, const char *field, int cnt, int max,
	   const char *what)
{
	if (cnt <= max)
		return cnt;
	yerr(d, at, field, "at most %d %s, got %d", max, what, cnt);
	return max;
}

static void join(char *out, size_t cap, const char *path, const char *key)
{
	if (path && path[0])
		snprintf(out, cap, "%s.%s", path, key);
	else
		snprintf(out, cap, "%s", key);
}

void ymap_check_keys(const struct ydoc *d, const yaml_node_t *map, const char *path,
		     const char *const *allowed)
{
	int n = ymap_len(map);
	for (int i = 0; i < n; i++) {
		yaml_node_t *kn = ymap_key(d, map, i);
		const char *k = ystr(kn);
		char field[128];
		if (!k) {
			yerr(d, kn, path, "keys must be scalars, got %s", ytype_name(kn));
			continue;
		}
		join(field, sizeof field, path, k);
		bool known = false;
		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(*a, k))
				known = true;
		if (!known) {
			yerr(d, kn, field, "unknown field");
			continue;
		}
		for (int j = 0; j < i; j++) {
			const char *pk = ystr(ymap_key(d, map, j));
			if (pk && !strcmp(pk, k)) {
				yerr(d, kn, field, "duplicate field (first at line %d)",
				     yline(ymap_key(d, map, j)));
				break;
			}
		}
	}
}

bool yget_map(const struct ydoc *d, const yaml_node_t *n, const char *field)
{
	if (yis_map(n))
		return true;
	yerr(d, n, field, "must be a mapping, got %s", ytype_name(n));
	return false;
}

bool yget_seq(const struct ydoc *d, const yaml_node_t *n, const char *field)
{
	if (yis_seq(n))
		return true;
	yerr(d, n, field, "must be a list, got %s", ytype_name(n));
	return false;
}

bool yget_str(const struct ydoc *d, const yaml_node_t *n, const char *field, char *out, size_t cap)
{
	if (!yis_scalar(n) || yis_null(n)) {
		yerr(d, n, field, "must be a string, got %s", ytype_name(n));
		return false;
	}
	const char *s = ystr(n);
	size_t len = n->data.scalar.length;
	if (len == 0) {
		yerr(d, n, field, "must not be empty");
		return false;
	}
	if (strlen(s) != len) {
		yerr(d, n, field, "must not contain NUL characters");
		return false;
	}
	if (len >= cap) {
		yerr(d, n, field, "too long (%zu characters, at most %zu)", len, cap - 1);
		return false;
	}
	memcpy(out, s, len + 1);
	return true;
}

bool yget_uint(const struct ydoc *d, const yaml_node_t *n, const char *field, unsigned long min,
	       unsigned long max, unsigned long *out)
{
	const char *s = ystr(n);
	bool ok = s && !yis_null(n) && s[0] >= '0' && s[0] <= '9';
	unsigned long v = 0;
	if (ok) {
		char *end;
		errno = 0;
		v = strtoul(s, &end, 10);
		ok = !*end && errno == 0;
	}
	if (!ok) {
		if (s && !yis_null(n))
			yerr(d, n, field, "must be a number %lu-%lu, got \"%s\"", min, max, s);
		else
			yerr(d, n, field, "must be a number %lu-%lu, got %s", min, max, ytype_name(n));
		return false;
	}
	if (v < min || v > max) {
		yerr(d, n, field, "must be a number %lu-%lu, got \"%s\"", min, max, s);
		return false;
	}
	*out = v;
	return true;
}

bool yget_bool(const struct ydoc *d, const yaml_node_t *n, const char *field, bool *out)
{
	const char *s = ystr(n);
	if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
		*out = true;
		return true;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
		*out = false;
		return true;
	}
	if (s)
		yerr(d, n, field, "must be true or false, got \"%s\"", s);
	else
		yerr(d, n, field, "must be true or false, got %s", ytype_name(n));
	return false;
}

bool yparse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = a.s_addr;
	return true;
}

bool yparse_cidr(const char *s, bool allow_bare, uint32_t *addr, uint8_t *prefix)
{
	char ip[32];
	const char *slash = strchr(s, '/');
	size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
	if (iplen == 0 || iplen >= sizeof ip)
		return false;
	memcpy(ip, s, iplen);
	ip[iplen] = 0;
	if (!yparse_ipv4(ip, addr))
		return false;
	if (!slash) {
		if (!allow_bare)
			return false;
		*prefix = 32;
		return true;
	}
	const char *p = slash + 1;
	if (!*p || strlen(p) > 2)
		return false;
	unsigned v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > 32)
		return false;
	*prefix = (uint8_t)v;
	return true;
}
