/* JSON writer: see admin_json.h. */
#include "appliance/admin_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "appliance/accesslog.h"

void admin_json_init(struct admin_json *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->buf = buf;
	w->cap = cap;
	if (cap)
		buf[0] = 0;
	else
		w->overflow = true;
}

static void put(struct admin_json *w, const char *s, size_t n)
{
	if (w->overflow)
		return;
	if (w->len + n + 1 > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

/* Before any value: the comma, unless first in its container or after a key. */
static void sep(struct admin_json *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth - 1])
			put(w, ",", 1);
		w->first[w->depth - 1] = false;
	}
}

static void open(struct admin_json *w, char o, char c)
{
	sep(w);
	if (w->depth >= ADMIN_JSON_DEPTH) {
		w->overflow = true;
		return;
	}
	put(w, &o, 1);
	w->first[w->depth] = true;
	w->closer[w->depth] = c;
	w->depth++;
}

void admin_json_obj(struct admin_json *w) { open(w, '{', '}'); }
void admin_json_arr(struct admin_json *w) { open(w, '[', ']'); }

void admin_json_end(struct admin_json *w)
{
	if (w->depth <= 0) {
		w->overflow = true;
		return;
	}
	w->depth--;
	put(w, &w->closer[w->depth], 1);
}

void admin_json_strn(struct admin_json *w, const char *s, size_t n)
{
	sep(w);
	if (w->overflow)
		return;
	if (!s) {
		put(w, "null", 4);
		return;
	}
	size_t k = accesslog_json_string(s, n, w->buf + w->len, w->cap - w->len);
	if (!k || w->len + k + 1 > w->cap) {
		w->overflow = true;
		w->buf[w->len] = 0;
		return;
	}
	w->len += k;
	w->buf[w->len] = 0;
}

void admin_json_str(struct admin_json *w, const char *s)
{
	admin_json_strn(w, s, s ? strlen(s) : 0);
}

void admin_json_key(struct admin_json *w, const char *key)
{
	admin_json_str(w, key);
	put(w, ":", 1);
	w->after_key = true;
}

void admin_json_u64(struct admin_json *w, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%" PRIu64, v);
	sep(w);
	put(w, b, (size_t)n);
}

void admin_json_i64(struct admin_json *w, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%" PRId64, v);
	sep(w);
	put(w, b, (size_t)n);
}

void admin_json_bool(struct admin_json *w, bool v)
{
	sep(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void admin_json_null(struct admin_json *w)
{
	sep(w);
	put(w, "null", 4);
}

void admin_json_kv_str(struct admin_json *w, const char *key, const char *s)
{
	admin_json_key(w, key);
	admin_json_str(w, s);
}

void admin_json_kv_u64(struct admin_json *w, const char *key, uint64_t v)
{
	admin_json_key(w, key);
	admin_json_u64(w, v);
}

void admin_json_kv_i64(struct admin_json *w, const char *key, int64_t v)
{
	admin_json_key(w, key);
	admin_json_i64(w, v);
}

void admin_json_kv_bool(struct admin_json *w, const char *key, bool v)
{
	admin_json_key(w, key);
	admin_json_bool(w, v);
}
