/* A JSON writer into a caller-provided buffer, for the admin console's API.
 * No allocation. Errors are sticky: once something did not fit, `overflow`
 * is set, nothing more is written, and the caller answers 500 instead of
 * sending a cut document. Commas between members/elements are inserted by
 * the writer (it tracks whether the current container is empty).
 *
 *   struct admin_json w; admin_json_init(&w, buf, sizeof buf);
 *   admin_json_obj(&w);
 *     admin_json_key(&w, "name"); admin_json_str(&w, "x");
 *     admin_json_kv_u64(&w, "count", 3);
 *   admin_json_end(&w);     // closes the innermost object or array
 *   if (w.overflow) ...
 * Strings are escaped by accesslog_json_string() (hostile SPIFFE IDs and
 * paths stay valid JSON). */
#ifndef MESHGATE_ADMIN_JSON_H
#define MESHGATE_ADMIN_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_JSON_DEPTH 16

struct admin_json {
	char *buf;
	size_t len, cap;
	bool overflow;
	int depth;
	bool first[ADMIN_JSON_DEPTH];   /* container at this depth still empty */
	char closer[ADMIN_JSON_DEPTH];
	bool after_key;                 /* a key was written: no comma before the value */
};

void admin_json_init(struct admin_json *w, char *buf, size_t cap);
void admin_json_obj(struct admin_json *w);
void admin_json_arr(struct admin_json *w);
void admin_json_end(struct admin_json *w);
void admin_json_key(struct admin_json *w, const char *key);
void admin_json_str(struct admin_json *w, const char *s);       /* NULL = null */
void admin_json_strn(struct admin_json *w, const char *s, size_t n);
void admin_json_u64(struct admin_json *w, uint64_t v);
void admin_json_i64(struct admin_json *w, int64_t v);
void admin_json_bool(struct admin_json *w, bool v);
void admin_json_null(struct admin_json *w);
/* key + value shorthands */
void admin_json_kv_str(struct admin_json *w, const char *key, const char *s);
void admin_json_kv_u64(struct admin_json *w, const char *key, uint64_t v);
void admin_json_kv_i64(struct admin_json *w, const char *key, int64_t v);
void admin_json_kv_bool(struct admin_json *w, const char *key, bool v);

#endif
