/* The admin console's request handler: see admin.h for the rules. */
#include "appliance/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

static const char *const section_names[ADMIN_SECTION_COUNT] = {
	[ADMIN_SECTION_STATUS] = "status",
	[ADMIN_SECTION_PORTS] = "ports",
	[ADMIN_SECTION_LISTENERS] = "listeners",
	[ADMIN_SECTION_CONNECTIONS] = "connections",
	[ADMIN_SECTION_POLICIES] = "policies",
	[ADMIN_SECTION_EVENTS] = "events",
	[ADMIN_SECTION_CERTS] = "certs",
	[ADMIN_SECTION_GRAPH] = "graph",
};

const char *admin_section_name(enum admin_section s)
{
	return (unsigned)s < ADMIN_SECTION_COUNT ? section_names[s] : "unknown";
}

void admin_init(struct admin *a, const struct admin_source *src)
{
	memset(a, 0, sizeof *a);
	a->src = src;
}

int admin_configure(struct admin *a, const struct config_admin *cfg)
{
	bool had = a->has_password;
	struct console_auth_hash old = a->hash;
	a->cfg = *cfg;
	memset(&a->hash, 0, sizeof a->hash);
	a->has_password = false;
	int rc = 0;
	if (cfg->password_hash[0]) {
		if (console_auth_parse(cfg->password_hash, &a->hash) == CONSOLE_AUTH_OK)
			a->has_password = true;
		else
			rc = -1;
	}
	/* a changed (or removed) password ends every password session */
	if (had != a->has_password || (had && CRYPTO_memcmp(&old, &a->hash, sizeof old) != 0))
		memset(a->sessions, 0, sizeof a->sessions);
	OPENSSL_cleanse(&old, sizeof old);
	return rc;
}

/* ------------------------------------------------------------ sessions */

static bool expired(const struct admin_session *s, uint32_t now)
{
	return (int32_t)(now - s->expires_ms) >= 0;
}

unsigned admin_sessions_active(const struct admin *a, uint32_t now_ms)
{
	unsigned n = 0;
	for (int i = 0; i < ADMIN_MAX_SESSIONS; i++)
		n += a->sessions[i].used && !expired(&a->sessions[i], now_ms);
	return n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The mg_session value of a Cookie header, decoded; false if absent/bad. */
static bool cookie_token(const char *cookie, uint8_t token[ADMIN_TOKEN_BYTES])
{
	static const char name[] = ADMIN_COOKIE_NAME "=";
	const char *p = cookie;
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, name, sizeof name - 1)) {
			p += sizeof name - 1;
			for (int i = 0; i < ADMIN_TOKEN_BYTES; i++) {
				int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return false;
				token[i] = (uint8_t)(hi << 4 | lo);
			}
			char end = p[2 * ADMIN_TOKEN_BYTES];
			return end == 0 || end == ';' || end == ' ';
		}
		p = strchr(p, ';');
	}
	return false;
}

static struct admin_session *session_find(struct admin *a, const char *cookie, uint32_t now)
{
	uint8_t token[ADMIN_TOKEN_BYTES];
	if (!cookie || !cookie_token(cookie, token))
		return NULL;
	struct admin_session *found = NULL;
	for (int i = 0; i < ADMIN_MAX_SESSIONS; i++) {
		struct admin_session *s = &a->sessions[i];
		if (!s->used)
			continue;
		if (expired(s, now)) {
			memset(s, 0, sizeof *s);
			continue;
		}
		/* constant time per slot; every live slot is compared */
		if (CRYPTO_memcmp(s->token, token, sizeof token) == 0)
			found = s;
	}
	OPENSSL_cleanse(token, sizeof token);
	return found;
}

static struct admin_session *session_new(struct admin *a, uint32_t now)
{
	struct admin_session *slot = NULL;
	for (int i = 0; i < ADMIN_MAX_SESSIONS; i++) {
		struct admin_session *s = &a->sessions[i];
		if (!s->used || expired(s, now)) {
			slot = s;
			break;
		}
		if (!slot || (int32_t)(s->created_ms - slot->created_ms) < 0)
			slot = s;       /* oldest, evicted when the table is full */
	}
	uint8_t token[ADMIN_TOKEN_BYTES];
	if (getrandom(token, sizeof token, 0) != (ssize_t)sizeof token)
		return NULL;
	memcpy(slot->token, token, sizeof token);
	OPENSSL_cleanse(token, sizeof token);
	slot->used = true;
	slot->created_ms = now;
	slot->expires_ms = now + a->cfg.session_ttl_s * 1000u;
	return slot;
}

/* ------------------------------------------------------------ login limit */

static struct admin_limiter_slot *limiter_slot(struct admin *a, uint32_t ip)
{
	struct admin_limiter_slot *lru = &a->limiter[0];
	for (int i = 0; i < ADMIN_LIMITER_SLOTS; i++) {
		struct admin_limiter_slot *s = &a->limiter[i];
		if (s->used && s->ip == ip)
			return s;
		if (!s->used) {
			lru = s;
			break;
		}
		if ((int32_t)(s->last_ms - lru->last_ms) < 0)
			lru = s;
	}
	memset(lru, 0, sizeof *lru);
	lru->used = true;
	lru->ip = ip;
	return lru;
}

/* 0 = may try now; else milliseconds to wait. */
static uint32_t limiter_check(struct admin *a, struct admin_limiter_slot *s, uint32_t now)
{
	if (s->failures >= ADMIN_LOGIN_FREE_FAILURES && (int32_t)(s->locked_until_ms - now) > 0)
		return s->locked_until_ms - now;
	if (now - a->window_start_ms >= 1000) {
		a->window_start_ms = now;
		a->window_attempts = 0;
	}
	if (a->window_attempts >= ADMIN_LOGIN_PER_SECOND)
		return 1000 - (now - a->window_start_ms);
	a->window_attempts++;
	return 0;
}

static void limiter_fail(struct admin_limiter_slot *s, uint32_t now)
{
	s->failures++;
	s->last_ms = now;
	if (s->failures >= ADMIN_LOGIN_FREE_FAILURES) {
		unsigned shift = s->failures - ADMIN_LOGIN_FREE_FAILURES;
		uint32_t lock = shift >= 6 ? ADMIN_LOGIN_MAX_LOCK_MS : 1000u << shift;
		if (lock > ADMIN_LOGIN_MAX_LOCK_MS)
			lock = ADMIN_LOGIN_MAX_LOCK_MS;
		s->locked_until_ms = now + lock;
	}
}

/* ------------------------------------------------------------ responses */

static void header_add(struct admin_response *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void header_add(struct admin_response *r, const char *fmt, ...)
{
	size_t used = strlen(r->headers);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->headers + used, sizeof r->headers - used, fmt, ap);
	va_end(ap);
}

static void respond_text(struct admin_response *r, int status, const char *ctype, const char *body)
{
	r->status = status;
	r->content_type = ctype;
	r->body = body;
	r->body_len = strlen(body);
}

/* {"error":"...","status":N} into out */
static void respond_error(struct admin_response *r, int status, const char *msg, char *out, size_t cap)
{
	struct admin_json w;
	admin_json_init(&w, out, cap);
	admin_json_obj(&w);
	admin_json_kv_u64(&w, "status", (uint64_t)status);
	admin_json_kv_str(&w, "error", msg);
	admin_json_end(&w);
	r->status = status;
	r->content_type = "application/json";
	if (w.overflow) {
		r->body = "{}";
		r->body_len = 2;
	} else {
		r->body = out;
		r->body_len = w.len;
	}
}

static void respond_json(struct admin_response *r, struct admin_json *w, int status, char *out,
			 size_t cap)
{
	if (w->overflow || w->depth != 0) {
		respond_error(r, 500, "response larger than the admin buffer", out, cap);
		return;
	}
	r->status = status;
	r->content_type = "application/json";
	r->body = out;
	r->body_len = w->len;
}

static void refused(struct admin *a, const char *reason)
{
	if (a->src && a->src->refused)
		a->src->refused(a->src->arg, reason);
}

/* ------------------------------------------------------------ helpers */

static bool method_is(const struct admin_request *q, const char *m)
{
	return q->method && !strcmp(q->method, m);
}

/* Copies the path (target without query) into buf; false if too long. */
static bool request_path(const struct admin_request *q, char *buf, size_t cap)
{
	size_t n = 0;
	while (n < q->target_len && q->target[n] != '?' && q->target[n] != '#')
		n++;
	if (n >= cap)
		return false;
	memcpy(buf, q->target, n);
	buf[n] = 0;
	return true;
}

/* password=... from an application/x-www-form-urlencoded body, decoded. */
static bool form_password(const char *body, size_t len, char *out, size_t cap)
{
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && body[i] != '&')
			i++;
		if (i - start > 9 && !memcmp(body + start, "password=", 9)) {
			size_t o = 0;
			for (size_t k = start + 9; k < i; k++) {
				char c = body[k];
				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					if (k + 2 >= i)
						return false;
					int hi = hexval((char)(body[k + 1] | 0x20));
					int lo = hexval((char)(body[k + 2] | 0x20));
					if (hi < 0 || lo < 0)
						return false;
					c = (char)(hi << 4 | lo);
					k += 2;
				}
				if (o + 1 >= cap)
					return false;
				out[o++] = c;
			}
			out[o] = 0;
			return o > 0;
		}
		i++;
	}
	return false;
}

/* ------------------------------------------------------------ routes */

static void do_login(struct admin *a, const struct admin_request *q, struct admin_response *r,
		     char *out, size_t cap)
{
	if (!a->has_password) {
		refused(a, "admin_login_disabled");
		respond_error(r, 403, "password login is not configured (spec.admin.passwordHash)", out, cap);
		return;
	}
	struct admin_limiter_slot *slot = limiter_slot(a, q->peer_ip);
	uint32_t wait = limiter_check(a, slot, q->now_ms);
	if (wait) {
		a->counters.logins_rate_limited++;
		refused(a, "admin_login_rate_limited");
		header_add(r, "retry-after: %u\r\n", (wait + 999) / 1000);
		respond_error(r, 429, "too many login attempts; wait and retry", out, cap);
		return;
	}
	char password[CONSOLE_AUTH_PASSWORD_MAX + 1];
	bool have = form_password(q->body, q->body_len, password, sizeof password);
	enum console_auth_err e = have ? console_auth_verify(&a->hash, password, strlen(password))
				       : CONSOLE_AUTH_BAD_PASSWORD;
	OPENSSL_cleanse(password, sizeof password);
	if (e != CONSOLE_AUTH_OK) {
		limiter_fail(slot, q->now_ms);
		a->counters.logins_failed++;
		refused(a, "admin_login_failed");
		respond_error(r, 401, "wrong password", out, cap);
		return;
	}
	slot->failures = 0;
	slot->locked_until_ms = 0;
	struct admin_session *s = session_new(a, q->now_ms);
	if (!s) {
		respond_error(r, 500, "no random bytes for a session", out, cap);
		return;
	}
	a->counters.logins_ok++;
	char hex[2 * ADMIN_TOKEN_BYTES + 1];
	for (int i = 0; i < ADMIN_TOKEN_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", s->token[i]);
	header_add(r, "set-cookie: " ADMIN_COOKIE_NAME "=%s; Path=/; Max-Age=%u; Secure; HttpOnly; SameSite=Strict\r\n",
		   hex, a->cfg.session_ttl_s);
	OPENSSL_cleanse(hex, sizeof hex);
	struct admin_json w;
	admin_json_init(&w, out, cap);
	admin_json_obj(&w);
	admin_json_kv_bool(&w, "authenticated", true);
	admin_json_kv_str(&w, "via", "session");
	admin_json_kv_u64(&w, "expires_in_s", a->cfg.session_ttl_s);
	admin_json_end(&w);
	respond_json(r, &w, 200, out, cap);
}

static void do_section(struct admin *a, struct admin_json *w, enum admin_section s)
{
	if (a->src && a->src->section)
		a->src->section(a->src->arg, s, w);
	else
		admin_json_null(w);
}

void admin_handle(struct admin *a, const struct admin_request *q, char *out, size_t cap,
		  struct admin_response *r)
{
	memset(r, 0, sizeof *r);
	a->counters.requests++;
	header_add(r, "cache-control: no-store\r\n");
	char path[128];
	if (!request_path(q, path, sizeof path)) {
		a->counters.not_found++;
		respond_error(r, 404, "not found", out, cap);
		return;
	}
	bool get = method_is(q, "GET") || method_is(q, "HEAD");
	bool post = method_is(q, "POST");

	/* --- open to anyone --- */
	if (!strcmp(path, "/healthz")) {
		respond_text(r, 200, "text/plain", "ok\n");
		return;
	}
	if (!strcmp(path, "/readyz")) {
		bool ready = !a->src || !a->src->ready || a->src->ready(a->src->arg);
		respond_text(r, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n");
		return;
	}
	const struct admin_asset *asset = admin_asset_find(!strcmp(path, "/") ? "/index.html" : path);
	if (asset && get) {
		r->status = 200;
		r->content_type = asset->content_type;
		r->body = (const char *)asset->data;
		r->body_len = asset->len;
		return;
	}
	if (!strcmp(path, "/api/v1/login")) {
		if (!post) {
			header_add(r, "allow: POST\r\n");
			respond_error(r, 405, "method not allowed", out, cap);
			return;
		}
		do_login(a, q, r, out, cap);
		return;
	}

	/* --- authenticated from here --- */
	const char *principal = q->peer_spiffe_id && !strncmp(q->peer_spiffe_id, "spiffe://", 9)
		? q->peer_spiffe_id + 9 : NULL;
	bool by_mtls = admin_principal_allowed(&a->cfg, principal);
	struct admin_session *sess = by_mtls ? NULL : session_find(a, q->cookie, q->now_ms);
	if (!by_mtls && !sess) {
		if (principal && !a->has_password) {
			a->counters.forbidden++;
			refused(a, "admin_forbidden");
			respond_error(r, 403, "this SPIFFE ID is not in spec.admin.allowedPrincipals", out, cap);
		} else if (principal && !q->cookie) {
			a->counters.forbidden++;
			refused(a, "admin_forbidden");
			respond_error(r, 403, "this SPIFFE ID is not in spec.admin.allowedPrincipals; log in with the password", out, cap);
		} else {
			a->counters.unauthenticated++;
			refused(a, "admin_unauthenticated");
			respond_error(r, 401, "authentication required (allowed client certificate or password login)", out, cap);
		}
		return;
	}

	if (!strcmp(path, "/api/v1/logout") && post) {
		if (sess)
			memset(sess, 0, sizeof *sess);
		header_add(r, "set-cookie: " ADMIN_COOKIE_NAME "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict\r\n");
		respond_text(r, 200, "application/json", "{\"authenticated\":false}");
		return;
	}
	if (!strcmp(path, "/metrics") && get) {
		size_t n = a->src && a->src->metrics ? a->src->metrics(a->src->arg, out, cap) : 0;
		if (!n) {
			respond_error(r, 500, "metrics larger than the admin buffer", out, cap);
			return;
		}
		r->status = 200;
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		r->body = out;
		r->body_len = n;
		return;
	}
	struct admin_json w;
	admin_json_init(&w, out, cap);
	if (!strcmp(path, "/api/v1/session") && get) {
		admin_json_obj(&w);
		admin_json_kv_bool(&w, "authenticated", true);
		admin_json_kv_str(&w, "via", by_mtls ? "mtls" : "session");
		admin_json_kv_str(&w, "spiffe_id", q->peer_spiffe_id);
		if (sess)
			admin_json_kv_u64(&w, "expires_in_s", (sess->expires_ms - q->now_ms) / 1000);
		admin_json_end(&w);
		respond_json(r, &w, 200, out, cap);
		return;
	}
	if (!strcmp(path, "/api/v1/dashboard") && get) {
		admin_json_obj(&w);
		for (int s = 0; s < ADMIN_SECTION_COUNT; s++) {
			admin_json_key(&w, section_names[s]);
			do_section(a, &w, (enum admin_section)s);
		}
		admin_json_end(&w);
		respond_json(r, &w, 200, out, cap);
		return;
	}
	if (!strncmp(path, "/api/v1/", 8)) {
		for (int s = 0; s < ADMIN_SECTION_COUNT; s++) {
			if (strcmp(path + 8, section_names[s]))
				continue;
			if (!get) {
				header_add(r, "allow: GET\r\n");
				respond_error(r, 405, "method not allowed", out, cap);
				return;
			}
			do_section(a, &w, (enum admin_section)s);
			respond_json(r, &w, 200, out, cap);
			return;
		}
		if (!strcmp(path + 8, "config")) {
			if (!post) {
				header_add(r, "allow: POST\r\n");
				respond_error(r, 405, "method not allowed", out, cap);
				return;
			}
			if (!a->src || !a->src->apply_config) {
				respond_error(r, 501, "config upload not available", out, cap);
				return;
			}
			int status = a->src->apply_config(a->src->arg, q->body ? q->body : "", q->body_len, &w);
			if (status == 200)
				a->counters.config_applied++;
			else
				a->counters.config_refused++;
			respond_json(r, &w, status, out, cap);
			return;
		}
	}
	a->counters.not_found++;
	respond_error(r, 404, "not found", out, cap);
}
