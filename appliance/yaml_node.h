/* Small helpers over libyaml's document API for the config and policy
 * loaders: typed access to nodes with their line numbers, and error reports
 * in the one format the project uses ("FILE:LINE: field.path: message").
 *
 * Nothing here allocates; strings returned point into the yaml_document_t,
 * which the caller owns (yaml_document_delete). Boot / reload time only. */
#ifndef MESHGATE_YAML_NODE_H
#define MESHGATE_YAML_NODE_H
#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>
#include "appliance/config.h"

/* One document being read: where it came from and where errors go. */
struct ydoc {
	yaml_document_t *doc;
	const char *file;
	struct config_errors *errs;
};

static inline int yline(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }
static inline bool yis_map(const yaml_node_t *n) { return n && n->type == YAML_MAPPING_NODE; }
static inline bool yis_seq(const yaml_node_t *n) { return n && n->type == YAML_SEQUENCE_NODE; }
static inline bool yis_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE; }
/* A scalar's text, NUL-terminated (libyaml guarantees it), or NULL. */
static inline const char *ystr(const yaml_node_t *n)
{
	return yis_scalar(n) ? (const char *)n->data.scalar.value : NULL;
}
/* A plain (unquoted) null: "", "~", "null". */
bool yis_null(const yaml_node_t *n);
/* Human name of a node's type for messages: "a mapping", "a list", ... */
const char *ytype_name(const yaml_node_t *n);

yaml_node_t *ynode(const struct ydoc *d, int id);
/* Value for `key` in a mapping, or NULL (also when `map` is not a mapping). */
yaml_node_t *ymap_get(const struct ydoc *d, const yaml_node_t *map, const char *key);
/* Reports every key of `map` not in the NULL-terminated `allowed` list as
 * "unknown field", and repeated keys as "duplicate field". */
void ymap_check_keys(const struct ydoc *d, const yaml_node_t *map, const char *path,
		     const char *const *allowed);

void yerr(const struct ydoc *d, const yaml_node_t *n, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A field path into `out` (snprintf); one too long ends in "..." so it
 * still reads as a path in messages. */
void yfield(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* `cnt` items where at most `max` fit: more is the error "at most MAX WHAT,
 * got CNT" at `field` (node `at`), and the first `max` are kept. */
int ylimit(const struct ydoc *d, const yaml_node_t *at, const char *field, int cnt, int max,
	   const char *what);

/* Typed getters: report a typed error at the node and return false when the
 * node has the wrong type. `field` is the full path for messages. */
bool yget_map(const struct ydoc *d, const yaml_node_t *n, const char *field);
bool yget_seq(const struct ydoc *d, const yaml_node_t *n, const char *field);
/* A string scalar that fits in `cap` bytes (including the NUL), non-empty. */
bool yget_str(const struct ydoc *d, const yaml_node_t *n, const char *field, char *out, size_t cap);
/* Unsigned integer scalar within [min, max]. */
bool yget_uint(const struct ydoc *d, const yaml_node_t *n, const char *field, unsigned long min,
	       unsigned long max, unsigned long *out);
bool yget_bool(const struct ydoc *d, const yaml_node_t *n, const char *field, bool *out);

/* Seq / map iteration: number of items, and the i-th item (or key/value). */
int yseq_len(const yaml_node_t *n);
yaml_node_t *yseq_at(const struct ydoc *d, const yaml_node_t *n, int i);
int ymap_len(const yaml_node_t *n);
yaml_node_t *ymap_key(const struct ydoc *d, const yaml_node_t *n, int i);
yaml_node_t *ymap_val(const struct ydoc *d, const yaml_node_t *n, int i);

/* Parses "a.b.c.d" (strict dotted quad). IPv6 is refused by the callers with
 * their own message. Result in network byte order. */
bool yparse_ipv4(const char *s, uint32_t *out);
/* "a.b.c.d/len" or (when allow_bare) "a.b.c.d" = /32. Network byte order. */
bool yparse_cidr(const char *s, bool allow_bare, uint32_t *addr, uint8_t *prefix);

#endif
