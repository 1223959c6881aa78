/* Access-log JSON lines and RFC 5424 framing: see accesslog.h. */
#include "appliance/accesslog.h"
#include "appliance/policy.h"
#include "appliance/textw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The escaped characters of a JSON string, without the quotes. */
static void w_json_chars(struct textw *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n && !w->full;) {
		/* a run of printable ASCII other than '"' and '\\' goes as is */
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			tw_bytes(w, s + i, run - i);
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
		if (esc) { tw_str(w, esc); i++; continue; }
		if (c < 0x20 || c == 0x7f) { tw_fmt(w, "\\u%04x", c); i++; continue; }
		size_t l = utf8_valid_len(p + i, n - i);
		if (l == 0) { tw_str(w, "\\ufffd"); i++; continue; }
		/* U+2028 / U+2029 end lines in JavaScript: escape them */
		if (l == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
			tw_str(w, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
			i += 3;
			continue;
		}
		tw_bytes(w, s + i, l);
		i += l;
	}
}

static void w_json(struct textw *w, const char *s, size_t n)
{
	tw_bytes(w, "\"", 1);
	w_json_chars(w, s, n);
	tw_bytes(w, "\"", 1);
}

/* "namespace/name" from two fixed-size (maybe unterminated) fields */
static void w_json_policy(struct textw *w, const char *ns, size_t ns_cap, const char *name, size_t name_cap)
{
	tw_bytes(w, "\"", 1);
	w_json_chars(w, ns, strnlen(ns, ns_cap));
	tw_bytes(w, "/", 1);
	w_json_chars(w, name, strnlen(name, name_cap));
	tw_bytes(w, "\"", 1);
}

size_t accesslog_json_string(const char *s, size_t n, char *buf, size_t len)
{
	struct textw w = { buf, len, 0, false };
	w_json(&w, s, n);
	return w.full ? 0 : w.pos;
}

static void w_key_string(struct textw *w, const char *key, const char *value, size_t cap)
{
	tw_bytes(w, ",\"", 2);
	tw_str(w, key);
	tw_bytes(w, "\":", 2);
	if (!value) {
		tw_str(w, "null");
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
	struct textw w = { buf, len - 1, 0, false };
	tw_bytes(&w, cached, 19);
	tw_bytes(&w, ".", 1);
	tw_u64_width(&w, time_unix_us % 1000000, 6);
	tw_bytes(&w, "Z", 1);
	buf[w.pos] = '\0';
	return w.pos;
}

size_t accesslog_format(const struct accesslog_entry *e, char *buf, size_t len)
{
	struct textw w = { buf, len ? len - 1 : 0, 0, false };
	char ts[32];
	if (!accesslog_timestamp(e->time_unix_us, ts, sizeof(ts)))
		snprintf(ts, sizeof(ts), "invalid");
	const uint8_t *ip = (const uint8_t *)&e->peer_ip;
	tw_str(&w, "{\"time\":\"");
	tw_str(&w, ts);
	tw_str(&w, e->kind == ACCESSLOG_REQUEST ? "\",\"kind\":\"request\",\"peer\":\""
					   : "\",\"kind\":\"connection\",\"peer\":\"");
	for (int i = 0; i < 4; i++) {
		tw_u64(&w, ip[i]);
		tw_bytes(&w, i < 3 ? "." : ":", 1);
	}
	tw_u64(&w, e->peer_port);
	tw_bytes(&w, "\"", 1);
	w_key_string(&w, "listener", e->listener, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "spiffe_id", e->spiffe_id, ACCESSLOG_ID_CAP);
	w_key_string(&w, "service", e->service, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "namespace", e->service_namespace, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "method", e->method, ACCESSLOG_FIELD_CAP);
	tw_str(&w, ",\"path\":");
	bool truncated = false;
	if (e->path) {
		size_t n = e->path_len;
		if (n > ACCESSLOG_PATH_CAP) {
			n = ACCESSLOG_PATH_CAP;
			truncated = true;
		}
		w_json(&w, e->path, n);
	} else {
		tw_str(&w, "null");
	}
	tw_str(&w, truncated ? ",\"path_truncated\":true" : ",\"path_truncated\":false");
	if (e->response_code > 0) {
		tw_str(&w, ",\"response_code\":");
		tw_u64(&w, (uint64_t)e->response_code);
	} else if (e->response_code)
		tw_fmt(&w, ",\"response_code\":%d", e->response_code);
	else
		tw_str(&w, ",\"response_code\":null");
	const struct policy_decision *d = e->decision;
	if (d) {
		tw_str(&w, d->action == POLICY_DENY ? ",\"decision\":\"deny\"" : ",\"decision\":\"allow\"");
		tw_str(&w, ",\"policy\":");
		if (d->policy_name[0])
			w_json_policy(&w, d->policy_namespace, sizeof d->policy_namespace, d->policy_name,
				      sizeof d->policy_name);
		else
			tw_str(&w, "null");
		if (d->dry_run_matched) {
			tw_str(&w, d->dry_run_action == POLICY_DENY ? ",\"dry_run\":{\"action\":\"deny\",\"policy\":"
								   : ",\"dry_run\":{\"action\":\"allow\",\"policy\":");
			w_json_policy(&w, d->dry_run_namespace, sizeof d->dry_run_namespace, d->dry_run_name,
				      sizeof d->dry_run_name);
			tw_str(&w, "}");
		} else {
			tw_str(&w, ",\"dry_run\":null");
		}
	} else {
		tw_str(&w, ",\"decision\":null,\"policy\":null,\"dry_run\":null");
	}
	w_key_string(&w, "refusal", e->refusal, ACCESSLOG_FIELD_CAP);
	tw_str(&w, ",\"bytes_received\":");
	tw_u64(&w, e->bytes_received);
	tw_str(&w, ",\"bytes_sent\":");
	tw_u64(&w, e->bytes_sent);
	tw_str(&w, ",\"duration_ms\":");
	tw_u64(&w, e->duration_us / 1000);
	tw_bytes(&w, ".", 1);
	tw_u64_width(&w, e->duration_us % 1000, 3);
	w_key_string(&w, "tls_version", e->tls_version, ACCESSLOG_FIELD_CAP);
	w_key_string(&w, "tls_suite", e->tls_suite, ACCESSLOG_FIELD_CAP);
	tw_str(&w, "}\n");
	if (w.full || len == 0) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	buf[w.pos] = '\0';
	return w.pos;
}

/* One RFC 5424 header field: PRINTUSASCII, at most max bytes, "-" if empty. */
static void w_header_field(struct textw *w, const char *s, size_t max)
{
	tw_str(w, " ");
	if (!s || !*s) {
		tw_str(w, "-");
		return;
	}
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		char out = c >= 33 && c <= 126 ? (char)c : '_';
		tw_bytes(w, &out, 1);
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
	struct textw w = { buf, len, 0, false };
	tw_fmt(&w, "<%d>1 %s", hdr->facility * 8 + hdr->severity, ts);
	w_header_field(&w, hdr->hostname, 255);
	w_header_field(&w, hdr->app_name, 48);
	w_header_field(&w, hdr->procid, 128);
	w_header_field(&w, hdr->msgid, 32);
	tw_str(&w, " -");            /* no STRUCTURED-DATA */
	while (msglen > 0 && (msg[msglen - 1] == '\n' || msg[msglen - 1] == '\r'))
		msglen--;
	if (msglen > 0) {
		tw_str(&w, " ");
		tw_bytes(&w, msg, msglen);
	}
	return w.full ? 0 : w.pos;
}
