/* Access-log JSON lines and RFC 5424 framing: see accesslog.h. */
#include "appliance/accesslog.h"
#include "appliance/policy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct writer { char *buf; size_t size, pos; bool full; };

static void w_bytes(struct writer *w, const char *s, size_t n)
{
	if (w->full || n > w->size - w->pos) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->pos, s, n);
	w->pos += n;
}

static void w_str(struct writer *w, const char *s) { w_bytes(w, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
static void w_fmt(struct writer *w, const char *fmt, ...)
{
	if (w->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(w->buf + w->pos, w->size - w->pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->size - w->pos)
		w->full = true;
	else
		w->pos += (size_t)n;
}

/* Decimal without printf: the access log writes a line per request, and
 * vfprintf was ~4% of a keep-alive request's CPU. */
static void w_u64_width(struct writer *w, uint64_t v, unsigned width)
{
	char d[24];
	unsigned n = 0;
	do {
		d[sizeof d - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof d);
	while (n < width && n < sizeof d)
		d[sizeof d - 1 - n++] = '0';
	w_bytes(w, d + sizeof d - n, n);
}

static void w_u64(struct writer *w, uint64_t v) { w_u64_width(w, v, 1); }

/* Length of the valid UTF-8 sequence at s (1..4) or 0 when invalid
 * (overlong, surrogate, above U+10FFFF, truncated). Same rules as the
 * metrics label sanitizer. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80) return 1;
	size_t len;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
	else return 0;
	if (len > n) return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	return len;
}

/* The escaped characters of a JSON string, without the quotes. */
static void w_json_chars(struct writer *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n && !w->full;) {
		/* a run of printable ASCII other than '"' and '\\' goes as is */
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			w_bytes(w, s + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		const char *esc = NULL;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		}
		if (esc) { w_str(w, esc); i++; continue; }
		if (c < 0x20 || c == 0x7f) { w_fmt(w, "\\u%04x", c); i++; continue; }
		size_t l = utf8_valid_len(p + i, n - i);
		if (l == 0) { w_str(w, "\\ufffd"); i++; continue; }
		/* U+2028 / U+2029 end lines in JavaScript: escape them */
		if (l == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
			w_str(w, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
			i += 3;
			continue;
		}
		w_bytes(w, s + i, l);
		i += l;
	}
}

static void w_json(struct writer *w, const char *s, size_t n)
{
	w_bytes(w, "\"", 1);
	w_json_chars(w, s, n);
	w_bytes(w, "\"", 1);
}

/* "namespace/name" from two fixed-size (maybe unterminated) fields */
static void w_json_policy(struct writer *w, const char *ns, size_t ns_cap, const char *name, size_t name_cap)
{
	w_bytes(w, "\"", 1);
	w_json_chars(w, ns, strnlen(ns, ns_cap));
	w_bytes(w, "/", 1);
	w_json_chars(w, name, strnlen(name, name_cap));
	w_bytes(w, "\"", 1);
}

size_t accesslog_json_string(const char *s, size_t n, char *buf, size_t len)
{
	struct writer w = { buf, len, 0, false };
	w_json(&w, s, n);
	return w.full ? 0 : w.pos;
}

static void w_key_string(struct writer *w, const char *key, const char *value, size_t cap)
{
	w_bytes(w, ",\"", 2);
	w_str(w, key);
	w_bytes(w, "\":", 2);
	if (!value) {
		w_str(w, "null");
		return;
	}
	size_t n = strnlen(value, cap);
	w_json(w, value, n);
}

size_t accesslog_timestamp(uint64_t time_unix_us, char *buf, size_t len)
{
	/* "YYYY-MM-DDTHH:MM:SS" changes once a second: keep the last one */
	static __thread time_t cached_secs = -1;
	static __thread char cached[24];
	time_t secs = (time_t)(time_unix_us / 1000000);
	if (len < 28)
		return 0;
	if (secs != cached_secs) {
		struct tm tm;
		if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
			return 0;
		snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached_secs = secs;
	}
	struct writer w = { buf, len - 1, 0, false };
	w_bytes(&w, cached, 19);
	w_bytes(&w, ".", 1);
	w_u64_width(&w, time_unix_us % 1000000, 6);
	w_bytes(&w, "Z", 1);
	buf[w.pos] = '\0';
	return w.pos;
}

size_t accesslog_format(const struct accesslog_entry *e, char *buf, size_t len)
{
	struct writer w = { buf, len ? len - 1 : 0, 0, false };
	char ts[32];
	if (!accesslog_timestamp(e->time_unix_us, ts, sizeof(ts)))
		snprintf(ts, sizeof(ts), "invalid");
	const uint8_t *ip = (const uint8_t *)&e->peer_ip;
	w_str(&w, "{\"time\":\"");
	w_str(&w, ts);
	w_str(&w, e->kind == ACCESSLOG_REQUEST ? "\",\"kind\":\"request\",\"peer\":\""
					   : "\",\"kind\":\"connection\",\"peer\":\"");
	for (int i = 0; i < 4; i++) {
		w_u64(&w, ip[i]);
		w_bytes(&w, i < 3 ? "." : ":", 1);
	}
	w_u64(&w, e->peer_port);
	w_bytes(&w, "\"", 1);
	w_key_string(&w, "listener", e->listener, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "spiffe_id", e->spiffe_id, ACCESSLOG_ID_CAP);
	w_key_string(&w, "service", e->service, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "namespace", e->service_namespace, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "method", e->method, ACCESSLOG_FIELD_CAP);
	w_str(&w, ",\"path\":");
	bool truncated = false;
	if (e->path) {
		size_t n = e->path_len;
		if (n > ACCESSLOG_PATH_CAP) {
			n = ACCESSLOG_PATH_CAP;
			truncated = true;
		}
		w_json(&w, e->path, n);
	} else {
		w_str(&w, "null");
	}
	w_str(&w, truncated ? ",\"path_truncated\":true" : ",\"path_truncated\":false");
	if (e->response_code > 0) {
		w_str(&w, ",\"response_code\":");
		w_u64(&w, (uint64_t)e->response_code);
	} else if (e->response_code)
		w_fmt(&w, ",\"response_code\":%d", e->response_code);
	else
		w_str(&w, ",\"response_code\":null");
	const struct policy_decision *d = e->decision;
	if (d) {
		w_str(&w, d->action == POLICY_DENY ? ",\"decision\":\"deny\"" : ",\"decision\":\"allow\"");
		w_str(&w, ",\"policy\":");
		if (d->policy_name[0])
			w_json_policy(&w, d->policy_namespace, sizeof d->policy_namespace, d->policy_name,
				      sizeof d->policy_name);
		else
			w_str(&w, "null");
		if (d->dry_run_matched) {
			w_str(&w, d->dry_run_action == POLICY_DENY ? ",\"dry_run\":{\"action\":\"deny\",\"policy\":"
								   : ",\"dry_run\":{\"action\":\"allow\",\"policy\":");
			w_json_policy(&w, d->dry_run_namespace, sizeof d->dry_run_namespace, d->dry_run_name,
				      sizeof d->dry_run_name);
			w_str(&w, "}");
		} else {
			w_str(&w, ",\"dry_run\":null");
		}
	} else {
		w_str(&w, ",\"decision\":null,\"policy\":null,\"dry_run\":null");
	}
	w_key_string(&w, "refusal", e->refusal, ACCESSLOG_FIELD_CAP);
	w_str(&w, ",\"bytes_received\":");
	w_u64(&w, e->bytes_received);
	w_str(&w, ",\"bytes_sent\":");
	w_u64(&w, e->bytes_sent);
	w_str(&w, ",\"duration_ms\":");
	w_u64(&w, e->duration_us / 1000);
	w_bytes(&w, ".", 1);
	w_u64_width(&w, e->duration_us % 1000, 3);
	w_key_string(&w, "tls_version", e->tls_version, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "tls_suite", e->tls_suite, ACCESSLOG_FIELD_CAP);
	w_str(&w, "}\n");
	if (w.full || len == 0) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	buf[w.pos] = '\0';
	return w.pos;
}

/* One RFC 5424 header field: PRINTUSASCII, at most max bytes, "-" if empty. */
static void w_header_field(struct writer *w, const char *s, size_t max)
{
	w_str(w, " ");
	if (!s || !*s) {
		w_str(w, "-");
		return;
	}
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		char out = c >= 33 && c <= 126 ? (char)c : '_';
		w_bytes(w, &out, 1);
	}
}

size_t accesslog_syslog_frame(const struct accesslog_syslog *hdr, uint64_t time_unix_us,
			      const char *msg, size_t msglen, char *buf, size_t len)
{
	if (hdr->facility < 0 || hdr->facility > 23 || hdr->severity < 0 || hdr->severity > 7)
		return 0;
	char ts[32];
	if (!accesslog_timestamp(time_unix_us, ts, sizeof(ts)))
		return 0;
	struct writer w = { buf, len, 0, false };
	w_fmt(&w, "<%d>1 %s", hdr->facility * 8 + hdr->severity, ts);
	w_header_field(&w, hdr->hostname, 255);
	w_header_field(&w, hdr->app_name, 48);
	w_header_field(&w, hdr->procid, 128);
	w_header_field(&w, hdr->msgid, 32);
	w_str(&w, " -");            /* no STRUCTURED-DATA */
	while (msglen > 0 && (msg[msglen - 1] == '\n' || msg[msglen - 1] == '\r'))
		msglen--;
	if (msglen > 0) {
		w_str(&w, " ");
		w_bytes(&w, msg, msglen);
	}
	return w.full ? 0 : w.pos;
}
