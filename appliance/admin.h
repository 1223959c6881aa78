/* The HTTP admin console's request handler: routing, authentication,
 * sessions, login rate limiting, the dashboard assets and the JSON API.
 * No I/O and no allocation: admin_net.c carries requests to it over lwIP +
 * BearSSL, and the appliance's data comes in through struct admin_source,
 * so the whole handler is unit-tested with fake sources
 * (tests/unit/test_admin.c).
 *
 * Access (the rules, in the order they are checked):
 *   GET /healthz, /readyz, / (the dashboard shell: no data in it),
 *       /admin.js, /admin.css             anyone (probes, the login page)
 *   POST /api/v1/login                     anyone, rate-limited (below)
 *   everything else needs one of:
 *     - an mTLS peer whose SPIFFE ID is in spec.admin.allowedPrincipals;
 *     - a valid session cookie (mg_session) from a password login.
 *   Without either: 401 when the peer presented no certificate (or no
 *   listed one and a password login exists), 403 when it presented a
 *   certificate whose SPIFFE ID is not allowed and no session. Both are
 *   counted (source->refused: "admin_unauthenticated" / "admin_forbidden").
 *
 * Sessions: 32 random bytes (getrandom), sent hex-encoded as
 *   mg_session=HEX; Path=/; Max-Age=TTL; Secure; HttpOnly; SameSite=Strict
 * compared in constant time; ADMIN_MAX_SESSIONS slots (a full table evicts
 * the oldest); expire after spec.admin.sessionTtl; all dropped when the
 * password hash changes on reload; POST /api/v1/logout ends one.
 *
 * Login rate limit (PBKDF2 runs on the polling thread, ~50 ms per try, so
 * the limit also bounds the stall): per peer IPv4 address, the first
 * ADMIN_LOGIN_FREE_FAILURES failures are free; each further failure locks
 * that address out for 1 s, 2 s, 4 s ... up to ADMIN_LOGIN_MAX_LOCK_MS; and
 * at most ADMIN_LOGIN_PER_SECOND attempts per second overall. A locked-out
 * attempt is answered 429 with Retry-After without checking the password.
 *
 * Routes (JSON unless said otherwise):
 *   GET  /api/v1/session        {"authenticated":..,"via":"mtls"|"session",..}
 *   GET  /api/v1/dashboard      every section below in one object
 *   GET  /api/v1/{status,ports,listeners,connections,policies,events,certs,graph}
 *   POST /api/v1/config         body: the YAML config; 200 {"applied":true,
 *                               "generation":N} or 400 {"applied":false,
 *                               "errors":[{"file","line","field","message"}]}
 *   POST /api/v1/login          form body password=...; 200 + Set-Cookie
 *   POST /api/v1/logout
 *   GET  /metrics               Prometheus text (metrics.c)
 */
#ifndef MESHGATE_ADMIN_H
#define MESHGATE_ADMIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appliance/admin_config.h"
#include "appliance/admin_json.h"
#include "appliance/console_auth.h"

#define ADMIN_MAX_SESSIONS 32
#define ADMIN_TOKEN_BYTES 32            /* 256 bits of session token */
#define ADMIN_COOKIE_NAME "mg_session"
#define ADMIN_LIMITER_SLOTS 64          /* peer addresses remembered for the login limit */
#define ADMIN_LOGIN_FREE_FAILURES 3
#define ADMIN_LOGIN_MAX_LOCK_MS 60000u
#define ADMIN_LOGIN_PER_SECOND 4
#define ADMIN_HEADERS_MAX 512           /* extra response header lines */

enum admin_section {
	ADMIN_SECTION_STATUS,
	ADMIN_SECTION_PORTS,
	ADMIN_SECTION_LISTENERS,
	ADMIN_SECTION_CONNECTIONS,
	ADMIN_SECTION_POLICIES,
	ADMIN_SECTION_EVENTS,
	ADMIN_SECTION_CERTS,
	ADMIN_SECTION_GRAPH,
	ADMIN_SECTION_COUNT
};
const char *admin_section_name(enum admin_section s);

/* Where the data comes from (the appliance, or a test). Any may be NULL. */
struct admin_source {
	void *arg;
	/* Writes one JSON value (object or array) for the section. */
	void (*section)(void *arg, enum admin_section s, struct admin_json *w);
	/* Prometheus text into buf; returns its length, 0 when it did not fit. */
	size_t (*metrics)(void *arg, char *buf, size_t cap);
	/* Validates and applies a config; writes one JSON object into w and
	 * returns the HTTP status (200 applied, 400 refused). */
	int (*apply_config)(void *arg, const char *text, size_t len, struct admin_json *w);
	bool (*ready)(void *arg);
	/* A refused request, by reason (counted in meshgate_refusals_total). */
	void (*refused)(void *arg, const char *reason);
};

struct admin_request {
	const char *method;             /* "GET" */
	const char *target;             /* raw request target, need not be NUL-terminated */
	size_t target_len;
	const char *cookie;             /* Cookie header value, or NULL */
	const char *content_type;       /* or NULL */
	const char *body;
	size_t body_len;
	const char *peer_spiffe_id;     /* verified client certificate, or NULL */
	uint32_t peer_ip;               /* network order */
	uint32_t now_ms;
};

struct admin_response {
	int status;
	const char *content_type;
	char headers[ADMIN_HEADERS_MAX];    /* extra "name: value\r\n" lines */
	const char *body;               /* into the caller's buffer or a static asset */
	size_t body_len;
};

struct admin_counters {
	uint64_t requests, unauthenticated, forbidden, not_found;
	uint64_t logins_ok, logins_failed, logins_rate_limited;
	uint64_t config_applied, config_refused;
};

struct admin_session {
	bool used;
	uint8_t token[ADMIN_TOKEN_BYTES];
	uint32_t created_ms, expires_ms;
};

struct admin_limiter_slot {
	bool used;
	uint32_t ip;
	unsigned failures;
	uint32_t last_ms, locked_until_ms;
};

struct admin {
	const struct admin_source *src;
	struct config_admin cfg;        /* copy: survives the config it came from */
	struct console_auth_hash hash;
	bool has_password;
	struct admin_session sessions[ADMIN_MAX_SESSIONS];
	struct admin_limiter_slot limiter[ADMIN_LIMITER_SLOTS];
	uint32_t window_start_ms;
	unsigned window_attempts;
	struct admin_counters counters;
};

void admin_init(struct admin *a, const struct admin_source *src);
/* Boot and every reload. Sessions survive unless the password hash changed.
 * The hash was validated by the config loader; returns -1 if it is bad. */
int admin_configure(struct admin *a, const struct config_admin *cfg);

/* Handles one complete request. The body (JSON, metrics) is written into
 * out[0..cap); resp->body points there or at a static asset. Never fails:
 * a body that does not fit becomes a 500 with a short message. */
void admin_handle(struct admin *a, const struct admin_request *req, char *out, size_t cap,
		  struct admin_response *resp);

/* Number of live sessions at now_ms (status, pools). */
unsigned admin_sessions_active(const struct admin *a, uint32_t now_ms);

/* The embedded dashboard (admin_ui.c, generated from appliance/admin_ui/). */
struct admin_asset { const char *path, *content_type; const unsigned char *data; size_t len; };
const struct admin_asset *admin_asset_find(const char *path);

#endif
