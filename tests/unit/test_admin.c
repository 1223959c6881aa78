/* The admin console's request handler (appliance/admin.c) with fake data
 * sources: routing, authentication by SPIFFE ID and by password session,
 * cookie flags and parsing, session expiry and eviction, the login rate
 * limit, config upload plumbing, JSON validity (python3's parser) and the
 * spec.admin / spec.accessLog loader's FILE:LINE: field: messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "appliance/admin.h"
#include "appliance/admin_obs.h"
#include "appliance/proxy_conn.h"
#include "appliance/admin_json.h"
#include "appliance/config.h"
#include "appliance/console_auth.h"

#define PASSWORD "s3cret pass"
#define ALLOWED "spiffe://cluster.local/ns/ops/sa/prometheus"

static struct admin A;
static char out[1 << 16];
static struct admin_response R;
static char hash[CONSOLE_AUTH_ENCODED_MAX];
static int refusals, applies;
static char last_refusal[64];
static char applied_body[256];
static int apply_status = 200;
static bool metrics_fit = true;

static void fake_section(void *arg, enum admin_section s, struct admin_json *w)
{
	admin_json_obj(w);
	admin_json_kv_str(w, "section", admin_section_name(s));
	/* hostile strings stay valid JSON */
	admin_json_kv_str(w, "spiffe_id", "spiffe://td/ns/a\"b\\c\n\x01/sa/\xff");
	admin_json_key(w, "list");
	admin_json_arr(w);
	admin_json_u64(w, 1);
	admin_json_i64(w, -2);
	admin_json_bool(w, true);
	admin_json_null(w);
	admin_json_end(w);
	admin_json_end(w);
}

static size_t fake_metrics(void *arg, char *buf, size_t cap)
{
	if (!metrics_fit)
		return 0;
	return (size_t)snprintf(buf, cap, "# TYPE x counter\nx 1\n");
}

static int fake_apply(void *arg, const char *text, size_t len, struct admin_json *w)
{
	applies++;
	snprintf(applied_body, sizeof applied_body, "%.*s", (int)len, text);
	admin_json_obj(w);
	admin_json_kv_bool(w, "applied", apply_status == 200);
	admin_json_end(w);
	return apply_status;
}

static void fake_refused(void *arg, const char *reason)
{
	refusals++;
	snprintf(last_refusal, sizeof last_refusal, "%s", reason);
}

static const struct admin_source SRC = {
	.section = fake_section, .metrics = fake_metrics, .apply_config = fake_apply,
	.refused = fake_refused,
};

static struct config_admin admin_cfg(bool password)
{
	struct config_admin c;
	memset(&c, 0, sizeof c);
	c.enabled = true;
	c.session_ttl_s = 600;
	snprintf(c.allowed_principals[c.nallowed++], CONFIG_ADMIN_PRINCIPAL_MAX, "cluster.local/ns/ops/sa/prometheus");
	snprintf(c.allowed_principals[c.nallowed++], CONFIG_ADMIN_PRINCIPAL_MAX, "cluster.local/ns/sre/*");
	if (password)
		snprintf(c.password_hash, sizeof c.password_hash, "%s", hash);
	return c;
}

static int setup(void **state)
{
	static const uint8_t salt[16] = "0123456789abcdef";
	if (!hash[0])
		assert_int_equal(console_auth_hash_with_salt(PASSWORD, strlen(PASSWORD), 1000, salt,
							     sizeof salt, hash, sizeof hash), CONSOLE_AUTH_OK);
	admin_init(&A, &SRC);
	struct config_admin c = admin_cfg(true);
	assert_int_equal(admin_configure(&A, &c), 0);
	refusals = applies = 0;
	apply_status = 200;
	metrics_fit = true;
	return 0;
}

struct req_opts {
	const char *cookie, *spiffe, *body, *ctype;
	uint32_t ip, now;
};

static int do_req(const char *method, const char *target, struct req_opts o)
{
	struct admin_request q = {
		.method = method, .target = target, .target_len = strlen(target), .cookie = o.cookie,
		.content_type = o.ctype, .body = o.body, .body_len = o.body ? strlen(o.body) : 0,
		.peer_spiffe_id = o.spiffe, .peer_ip = o.ip ? o.ip : inet_addr("198.18.20.1"),
		.now_ms = o.now ? o.now : 1000,
	};
	admin_handle(&A, &q, out, sizeof out, &R);
	return R.status;
}
#define REQ(m, t, ...) do_req(m, t, (struct req_opts){__VA_ARGS__})

static bool body_has(const char *s)
{
	return memmem(R.body, R.body_len, s, strlen(s)) != NULL;
}

/* The body parses as JSON (python3's json module). */
static void assert_json(void)
{
	char path[] = "/tmp/meshgate-admin-json-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, R.body, R.body_len), (ssize_t)R.body_len);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s", path);
	int st = system(cmd);
	unlink(path);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("not JSON: %.*s", (int)R.body_len, R.body);
}

/* login with the password; returns the Cookie header value to send back */
static const char *login(uint32_t now, uint32_t ip)
{
	static char cookie[128];
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=s3cret+pass", .now = now, .ip = ip), 200);
	const char *sc = strstr(R.headers, "set-cookie: mg_session=");
	assert_non_null(sc);
	snprintf(cookie, sizeof cookie, "theme=dark; mg_session=%.64s; other=1", sc + 23);
	return cookie;
}

/* ------------------------------------------------------------ tests */

static void test_open_routes(void **state)
{
	assert_int_equal(REQ("GET", "/healthz"), 200);
	assert_int_equal(REQ("GET", "/readyz"), 200);
	assert_int_equal(REQ("GET", "/"), 200);
	assert_string_equal(R.content_type, "text/html; charset=utf-8");
	assert_true(body_has("<title>meshgate admin</title>"));
	assert_int_equal(REQ("GET", "/admin.js?v=1"), 200);
	assert_true(body_has("/api/v1/dashboard"));
	assert_int_equal(REQ("GET", "/admin.css"), 200);
	/* the shell holds no data and no external assets */
	assert_int_equal(REQ("GET", "/index.html"), 200);
	assert_false(body_has("http://") || body_has("https://"));
	assert_true(strstr(R.headers, "cache-control: no-store") != NULL);
	assert_int_equal(refusals, 0);
}

static void test_unauthenticated(void **state)
{
	const char *paths[] = {"/api/v1/dashboard", "/metrics", "/api/v1/status", "/api/v1/session",
		"/api/v1/nope", "/api/v1/config", "/api/v1/logout"};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		assert_int_equal(REQ("GET", paths[i]), 401);
		assert_string_equal(R.content_type, "application/json");
		assert_json();
	}
	assert_int_equal(REQ("POST", "/api/v1/config", .body = "x"), 401);
	assert_int_equal(applies, 0);
	assert_int_equal(refusals, 8);
	assert_string_equal(last_refusal, "admin_unauthenticated");
	assert_int_equal(A.counters.unauthenticated, 8);
	/* a garbage or truncated cookie is no session */
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = "mg_session=zz"), 401);
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = "mg_session=00112233"), 401);
}

static void test_mtls_principals(void **state)
{
	assert_int_equal(REQ("GET", "/api/v1/dashboard", .spiffe = ALLOWED), 200);
	assert_json();
	for (int s = 0; s < ADMIN_SECTION_COUNT; s++) {
		char key[40];
		snprintf(key, sizeof key, "\"%s\":{\"section\":\"%s\"", admin_section_name(s), admin_section_name(s));
		assert_true(body_has(key));
	}
	assert_int_equal(REQ("GET", "/api/v1/graph?x=1", .spiffe = ALLOWED), 200);
	assert_true(body_has("\"section\":\"graph\""));
	assert_json();
	/* the prefix entry (ns/sre/ and a star) */
	assert_int_equal(REQ("GET", "/api/v1/session", .spiffe = "spiffe://cluster.local/ns/sre/sa/x"), 200);
	assert_true(body_has("\"via\":\"mtls\""));
	/* a verified certificate with another SPIFFE ID: 403, counted */
	assert_int_equal(REQ("GET", "/api/v1/dashboard", .spiffe = "spiffe://cluster.local/ns/ops/sa/prometheus2"), 403);
	assert_true(body_has("allowedPrincipals"));
	assert_string_equal(last_refusal, "admin_forbidden");
	assert_int_equal(REQ("GET", "/metrics", .spiffe = "spiffe://cluster.local/ns/sre2/sa/x"), 403);
	assert_int_equal(A.counters.forbidden, 2);
	/* exact match only: a prefix of an allowed ID is not it */
	assert_int_equal(REQ("GET", "/metrics", .spiffe = "spiffe://cluster.local/ns/ops/sa/prom"), 403);
	/* metrics */
	assert_int_equal(REQ("GET", "/metrics", .spiffe = ALLOWED), 200);
	assert_string_equal(R.content_type, "text/plain; version=0.0.4; charset=utf-8");
	assert_true(body_has("x 1\n"));
	metrics_fit = false;
	assert_int_equal(REQ("GET", "/metrics", .spiffe = ALLOWED), 500);
}

static void test_login_session(void **state)
{
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=wrong"), 401);
	assert_string_equal(last_refusal, "admin_login_failed");
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "user=x"), 401);
	assert_int_equal(REQ("GET", "/api/v1/login"), 405);
	assert_non_null(strstr(R.headers, "allow: POST\r\n"));
	/* percent-encoding and '+' decode to the password */
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "a=1&password=s3cret%20pass&b=2", .now = 2000,
			     .ip = inet_addr("198.18.20.9")), 200);
	assert_non_null(strstr(R.headers, "; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Strict\r\n"));
	assert_json();
	const char *cookie = login(3000, 0);
	assert_int_equal(admin_sessions_active(&A, 3000), 2);
	assert_int_equal(REQ("GET", "/api/v1/session", .cookie = cookie, .now = 4000), 200);
	assert_true(body_has("\"via\":\"session\""));
	assert_true(body_has("\"expires_in_s\":599"));
	/* one flipped hex digit is no session */
	char forged[128];
	snprintf(forged, sizeof forged, "%s", cookie);
	char *h = strstr(forged, "mg_session=") + 11;
	h[5] = h[5] == 'a' ? 'b' : 'a';
	assert_int_equal(REQ("GET", "/api/v1/session", .cookie = forged, .now = 4000), 401);
	/* expiry: TTL 600 s after login at t=3000 ms */
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = cookie, .now = 3000 + 599999), 200);
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = cookie, .now = 3000 + 600000), 401);
	/* logout ends the session and clears the cookie */
	cookie = login(700000, 0);
	assert_int_equal(REQ("POST", "/api/v1/logout", .cookie = cookie, .now = 700001), 200);
	assert_non_null(strstr(R.headers, "mg_session=; Path=/; Max-Age=0"));
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = cookie, .now = 700002), 401);
}

static void test_password_change_drops_sessions(void **state)
{
	const char *cookie = login(1000, 0);
	char saved[128];
	snprintf(saved, sizeof saved, "%s", cookie);
	struct config_admin c = admin_cfg(true);
	admin_configure(&A, &c);            /* same hash: sessions survive a reload */
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = saved, .now = 2000), 200);
	static const uint8_t salt2[16] = "fedcba9876543210";
	char other[CONSOLE_AUTH_ENCODED_MAX];
	assert_int_equal(console_auth_hash_with_salt("new", 3, 1000, salt2, sizeof salt2, other, sizeof other),
			 CONSOLE_AUTH_OK);
	snprintf(c.password_hash, sizeof c.password_hash, "%s", other);
	admin_configure(&A, &c);
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = saved, .now = 3000), 401);
	/* no password configured: login is refused, mTLS still works */
	c = admin_cfg(false);
	admin_configure(&A, &c);
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=new"), 403);
	assert_string_equal(last_refusal, "admin_login_disabled");
	assert_int_equal(REQ("GET", "/api/v1/status", .spiffe = ALLOWED), 200);
	/* no password: a listed-but-wrong identity is told 403, no login offered */
	assert_int_equal(REQ("GET", "/api/v1/status", .spiffe = "spiffe://cluster.local/ns/x/sa/y"), 403);
}

static void test_session_table_evicts_oldest(void **state)
{
	char first[128];
	snprintf(first, sizeof first, "%s", login(1000, 0));
	for (int i = 0; i < ADMIN_MAX_SESSIONS - 1; i++)
		login(2000 + (uint32_t)i * 300, 0);    /* under ADMIN_LOGIN_PER_SECOND */
	assert_int_equal(admin_sessions_active(&A, 20000), ADMIN_MAX_SESSIONS);
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = first, .now = 20000), 200);
	char newest[128];
	snprintf(newest, sizeof newest, "%s", login(30000, 0));
	assert_int_equal(admin_sessions_active(&A, 30000), ADMIN_MAX_SESSIONS);
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = first, .now = 30001), 401);
	assert_int_equal(REQ("GET", "/api/v1/status", .cookie = newest, .now = 30001), 200);
}

static void test_rate_limit(void **state)
{
	uint32_t ip = inet_addr("198.18.20.7"), other = inet_addr("198.18.20.8");
	uint32_t t = 10000;
	for (int i = 0; i < ADMIN_LOGIN_FREE_FAILURES; i++, t += 400)
		assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=x", .ip = ip, .now = t), 401);
	/* locked for 1 s: even the right password is not checked */
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=s3cret+pass", .ip = ip, .now = t), 429);
	assert_non_null(strstr(R.headers, "retry-after: 1\r\n"));
	assert_string_equal(last_refusal, "admin_login_rate_limited");
	/* another address is not locked */
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=s3cret+pass", .ip = other, .now = t + 500), 200);
	/* after the lock: one more failure locks for 2 s, then 4 s */
	t += 1001;
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=x", .ip = ip, .now = t), 401);
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=x", .ip = ip, .now = t + 1999), 429);
	assert_non_null(strstr(R.headers, "retry-after: 1\r\n"));
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=x", .ip = ip, .now = t + 2000), 401);
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=x", .ip = ip, .now = t + 2100), 429);
	assert_non_null(strstr(R.headers, "retry-after: 4\r\n"));
	/* success after the lock resets the count */
	t += 2000 + 4000;
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=s3cret+pass", .ip = ip, .now = t), 200);
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=x", .ip = ip, .now = t + 300), 401);
	assert_int_equal(A.counters.logins_rate_limited, 3);
	/* overall: at most ADMIN_LOGIN_PER_SECOND checks per second, any address */
	t += 5000;
	int limited = 0;
	for (int i = 0; i < ADMIN_LOGIN_PER_SECOND + 3; i++)
		limited += REQ("POST", "/api/v1/login", .body = "password=s3cret+pass",
			       .ip = htonl(0xC6121600u + (uint32_t)i), .now = t + (uint32_t)i) == 429;
	assert_int_equal(limited, 3);
	assert_int_equal(REQ("POST", "/api/v1/login", .body = "password=s3cret+pass", .ip = other, .now = t + 1000), 200);
}

static void test_routing_and_upload(void **state)
{
	assert_int_equal(REQ("GET", "/api/v1/nope", .spiffe = ALLOWED), 404);
	assert_json();
	assert_int_equal(REQ("POST", "/api/v1/status", .spiffe = ALLOWED), 405);
	assert_non_null(strstr(R.headers, "allow: GET\r\n"));
	assert_int_equal(REQ("GET", "/api/v1/config", .spiffe = ALLOWED), 405);
	assert_int_equal(applies, 0);
	assert_int_equal(REQ("POST", "/api/v1/config", .spiffe = ALLOWED, .body = "kind: Appliance\n"), 200);
	assert_int_equal(applies, 1);
	assert_string_equal(applied_body, "kind: Appliance\n");
	assert_int_equal(A.counters.config_applied, 1);
	apply_status = 400;
	assert_int_equal(REQ("POST", "/api/v1/config", .spiffe = ALLOWED, .body = "bad"), 400);
	assert_true(body_has("\"applied\":false"));
	assert_int_equal(A.counters.config_refused, 1);
	/* a target longer than any route */
	char longpath[300];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = 0;
	assert_int_equal(REQ("GET", longpath, .spiffe = ALLOWED), 404);
}

static void test_json_writer_overflow(void **state)
{
	char small[16];
	struct admin_json w;
	admin_json_init(&w, small, sizeof small);
	admin_json_obj(&w);
	admin_json_kv_str(&w, "key", "a value that does not fit");
	admin_json_end(&w);
	assert_true(w.overflow);
	assert_true(strlen(small) < sizeof small);
	/* the handler turns an overflowing section into a 500, never a cut document */
	struct admin_request q = {.method = "GET", .target = "/api/v1/dashboard", .target_len = 17,
				  .peer_spiffe_id = ALLOWED, .now_ms = 1};
	admin_handle(&A, &q, out, 200, &R);
	assert_int_equal(R.status, 500);
	assert_json();
}

/* ------------------------------------------------------------ config */

static const char base[] =
	"apiVersion: meshgate.dev/v1alpha1\n"                           /* 1 */
	"kind: Appliance\n"                                             /* 2 */
	"metadata: {name: a}\n"                                         /* 3 */
	"spec:\n"                                                       /* 4 */
	"  trustDomain: cluster.local\n"                                /* 5 */
	"  identity: {certificateChain: gw.pem, privateKey: gw.key}\n"  /* 6 */
	"  trustBundles: [{trustDomain: cluster.local, roots: ca.pem}]\n"   /* 7 */
	"  ports: [{name: mgmt, device: net_ring0, address: 198.18.20.2/24}]\n" /* 8 */
	"  services: [{name: s, namespace: n, demo: true}]\n"           /* 9 */
	"  listeners: [{name: l, port: mgmt, listen: 8443, protocol: http, service: s}]\n"   /* 10 */
	"%s";                                                           /* 11.. */

static int load(const char *extra, struct config *cfg, struct config_errors *errs)
{
	char text[4096];
	int n = snprintf(text, sizeof text, base, extra);
	return config_load_buffer("t.yaml", "data/config/good", text, (size_t)n, cfg, errs);
}

static void test_config_good(void **state)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	char extra[1024];
	snprintf(extra, sizeof extra,
		 "  admin:\n"
		 "    port: mgmt\n"
		 "    listen: 9443\n"
		 "    allowedPrincipals: [\"spiffe://cluster.local/ns/ops/sa/p\", \"cluster.local/ns/sre/*\"]\n"
		 "    passwordHash: \"%s\"\n"
		 "    sessionTtl: 30m\n"
		 "  accessLog: {console: false, syslog: \"198.18.21.1:5514\"}\n", hash);
	int rc = load(extra, cfg, errs);
	if (rc)
		config_errors_print(errs, stderr);
	assert_int_equal(rc, 0);
	assert_true(cfg->admin.enabled);
	assert_int_equal(cfg->admin.port, 0);
	assert_int_equal(cfg->admin.listen, 9443);
	assert_int_equal(cfg->admin.nallowed, 2);
	assert_string_equal(cfg->admin.allowed_principals[0], "cluster.local/ns/ops/sa/p");
	assert_true(admin_principal_allowed(&cfg->admin, "cluster.local/ns/sre/sa/anyone"));
	assert_false(admin_principal_allowed(&cfg->admin, "cluster.local/ns/ops/sa/px"));
	assert_string_equal(cfg->admin.password_hash, hash);
	assert_int_equal(cfg->admin.session_ttl_s, 1800);
	assert_true(cfg->access_log.configured);
	assert_false(cfg->access_log.console);
	assert_true(cfg->access_log.syslog);
	assert_int_equal(cfg->access_log.syslog_ip, inet_addr("198.18.21.1"));
	assert_int_equal(cfg->access_log.syslog_port, 5514);
	config_free(cfg);
	/* neither section: no admin listener, the proxy keeps its own log lines */
	memset(cfg, 0, sizeof *cfg);
	assert_int_equal(load("", cfg, errs), 0);
	assert_false(cfg->admin.enabled);
	assert_false(cfg->access_log.configured);
	config_free(cfg);
	free(cfg);
	free(errs);
}

static void expect_errors(const char *extra, const char *const *want, int nwant)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	struct config_errors *errs = calloc(1, sizeof *errs);
	assert_int_equal(load(extra, cfg, errs), -1);
	char got[8192] = "";
	for (int i = 0; i < errs->count && i < CONFIG_MAX_ERRORS; i++) {
		const struct config_error *e = &errs->items[i];
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s:%d: %s: %s\n", e->file, e->line,
			 e->field, e->message);
	}
	for (int i = 0; i < nwant; i++)
		if (!strstr(got, want[i]))
			fail_msg("missing \"%s\" in:\n%s", want[i], got);
	assert_int_equal(errs->count, nwant);
	free(cfg);
	free(errs);
}

static void test_config_errors(void **state)
{
	static const char *const w1[] = {
		"t.yaml:12: spec.admin.port: no port named \"nope\" in spec.ports",
		"t.yaml:13: spec.admin.listen: must be",
		"t.yaml:14: spec.admin.allowedPrincipals[0]: must be a principal TRUST_DOMAIN/PATH",
		"t.yaml:14: spec.admin.allowedPrincipals[1]: must be a principal",
		"t.yaml:15: spec.admin.passwordHash: ",
		"t.yaml:16: spec.admin.sessionTtl: must be a duration of 60 s to 604800 s",
		"t.yaml:17: spec.admin.color: unknown field",
	};
	expect_errors("  admin:\n"
		      "    port: nope\n"
		      "    listen: 70000\n"
		      "    allowedPrincipals: [\"no-slash\", \"td/a*b\"]\n"
		      "    passwordHash: \"pbkdf2-sha256$1$AAAA$BBBB\"\n"
		      "    sessionTtl: 5s\n"
		      "    color: blue\n", w1, 7);
	static const char *const w2[] = {
		"t.yaml:11: spec.admin.listen: port 8443 on \"mgmt\" is already used by listener \"l\"",
		"t.yaml:11: spec.admin: set allowedPrincipals and/or passwordHash",
	};
	expect_errors("  admin: {port: mgmt, listen: 8443}\n", w2, 2);
	static const char *const w2b[] = {
		"t.yaml:13: spec.admin.listen: port 8443 on \"mgmt\" is already used by listener \"l\"",
	};
	expect_errors("  admin:\n    port: mgmt\n    listen: 8443\n    allowedPrincipals: [a/b]\n", w2b, 1);
	static const char *const w3[] = {
		"t.yaml:11: spec.accessLog.syslog: must be IPV4:PORT of a syslog collector (UDP), got \"collector:514\"",
		"t.yaml:11: spec.accessLog.console: ",
	};
	expect_errors("  accessLog: {syslog: \"collector:514\", console: maybe}\n", w3, 2);
	static const char *const w4[] = {"t.yaml:11: spec.admin: "};
	expect_errors("  admin: [1]\n", w4, 1);
}

/* ------------------------------------------------------------ observer */

static char log_lines[8][2048];
static int nlog;

static void capture_log(void *arg, const char *line)
{
	if (nlog < 8)
		snprintf(log_lines[nlog], sizeof log_lines[0], "%s", line);
	nlog++;
}

static void test_observer(void **state)
{
	struct config *cfg = calloc(1, sizeof *cfg);
	struct proxy *p = calloc(1, sizeof *p);
	struct conn *c = calloc(1, sizeof *c);
	struct proxy_listener *l = calloc(1, sizeof *l);
	struct admin_obs *o = admin_obs_create(capture_log, NULL);
	assert_non_null(cfg && p && c && l && o);
	snprintf(cfg->name, sizeof cfg->name, "edge");
	cfg->nservices = 1;
	snprintf(cfg->services[0].name, CONFIG_MAX_NAME, "api");
	snprintf(cfg->services[0].namespace_, CONFIG_MAX_NAME, "prod");
	cfg->access_log.configured = true;
	cfg->access_log.console = true;
	admin_obs_configure(o, cfg);
	p->cfg = cfg;
	p->opt.obs = o;
	p->now_ms = 5000;
	snprintf(l->cfg.name, sizeof l->cfg.name, "web");
	l->cfg.protocol = CONFIG_PROTOCOL_HTTP;
	c->proxy = p;
	c->listener = l;
	c->service = 0;
	c->peer_ip = inet_addr("198.18.20.1");
	c->peer_port = 40000;
	c->started_ms = 1000;
	snprintf(c->principal, sizeof c->principal, "cluster.local/ns/shop/sa/web");
	c->state = CONN_OPEN;
	admin_obs_opened(c);
	/* a denied request by a policy, with a dry-run hit */
	c->decided = true;
	c->decision.action = POLICY_DENY;
	snprintf(c->decision.policy_namespace, 64, "prod");
	snprintf(c->decision.policy_name, 64, "deny-web");
	c->decision.dry_run_matched = true;
	c->decision.dry_run_action = POLICY_ALLOW;
	snprintf(c->decision.dry_run_namespace, 64, "prod");
	snprintf(c->decision.dry_run_name, 64, "try-allow");
	snprintf(c->http.method, sizeof c->http.method, "GET");
	snprintf(c->http.path, sizeof c->http.path, "/admin\"x");
	admin_obs_decision(c);
	admin_obs_refusal(o, PROXY_REASON_POLICY_DENIED);
	c->http.status = 403;
	c->http.started_ms = 4990;
	c->http.resp_bytes = 19;
	assert_true(admin_obs_request(c));
	c->bytes_to_down = 300;
	c->bytes_from_down = 120;
	assert_true(admin_obs_closed(c));

	const struct metrics *m = &o->metrics;
	assert_int_equal(m->nreq, 1);
	assert_string_equal(m->req[0].key.source_principal, "spiffe://cluster.local/ns/shop/sa/web");
	assert_string_equal(m->req[0].key.source_namespace, "shop");
	assert_string_equal(m->req[0].key.destination_service, "api");
	assert_string_equal(m->req[0].key.destination_namespace, "prod");
	assert_int_equal(m->req[0].key.response_code, 403);
	assert_true(m->req[0].key.mutual_tls);
	assert_int_equal(m->req[0].requests, 1);
	assert_int_equal(m->req[0].duration_sum_us, 10000);
	assert_int_equal(m->ntcp, 1);
	assert_int_equal(m->tcp[0].opened, 1);
	assert_int_equal(m->tcp[0].closed, 1);
	assert_int_equal(m->tcp[0].sent_bytes, 300);
	assert_int_equal(m->tcp[0].received_bytes, 120);
	assert_int_equal(m->ndecisions, 2);
	assert_int_equal(m->nrefusals, 1);
	assert_string_equal(m->refusals[0].name, "policy_denied");
	assert_int_equal(m->ntls, 1);
	assert_string_equal(m->tls[0].name, "ok");
	/* events: newest first; the enforced denial and the dry-run hit */
	assert_int_equal(admin_obs_event_count(o), 2);
	const struct admin_obs_event *e = admin_obs_event_at(o, 0);
	assert_false(e->enforced_deny);
	assert_string_equal(e->policy, "prod/try-allow");
	e = admin_obs_event_at(o, 1);
	assert_true(e->enforced_deny);
	assert_string_equal(e->policy, "prod/deny-web");
	assert_string_equal(e->service, "prod/api");
	assert_string_equal(e->path, "/admin\"x");
	/* access log: one request line, one connection line, accesslog.h format */
	assert_int_equal(nlog, 2);
	assert_non_null(strstr(log_lines[0], "\"kind\":\"request\",\"peer\":\"198.18.20.1:40000\",\"listener\":\"web\","
				"\"spiffe_id\":\"spiffe://cluster.local/ns/shop/sa/web\",\"service\":\"api\",\"namespace\":\"prod\","
				"\"method\":\"GET\",\"path\":\"/admin\\\"x\""));
	assert_non_null(strstr(log_lines[0], "\"response_code\":403,\"decision\":\"deny\",\"policy\":\"prod/deny-web\""));
	assert_non_null(strstr(log_lines[1], "\"kind\":\"connection\""));
	assert_non_null(strstr(log_lines[1], "\"bytes_received\":120,\"bytes_sent\":300,\"duration_ms\":4000.000"));
	/* a handshake that failed: counted by its TLS result, no tcp series */
	memset(c, 0, offsetof(struct conn, tls));
	c->proxy = p;
	c->listener = l;
	c->state = CONN_HANDSHAKE;
	c->tls_failed = true;
	c->tls_error = TLS_ERR_UNKNOWN_CA;
	c->reason = PROXY_REASON_TLS_HANDSHAKE;
	assert_true(admin_obs_closed(c));
	assert_int_equal(m->ntls, 2);
	assert_string_equal(m->tls[1].name, "unknown_ca");
	assert_int_equal(m->ntcp, 1);
	assert_non_null(strstr(log_lines[2], "\"refusal\":\"unknown_ca\""));
	/* without spec.accessLog: the same lines, on the console */
	cfg->access_log.configured = false;
	admin_obs_configure(o, cfg);
	assert_true(admin_obs_closed(c));
	assert_int_equal(nlog, 4);
	assert_non_null(strstr(log_lines[3], "\"refusal\":\"unknown_ca\""));
	/* accessLog.console: false and no syslog: no line is made at all, the
	 * metrics still count */
	cfg->access_log.configured = true;
	cfg->access_log.console = false;
	admin_obs_configure(o, cfg);
	uint64_t lines = o->counters.log_lines;
	assert_false(admin_obs_closed(c));
	assert_int_equal(nlog, 4);
	assert_int_equal(o->counters.log_lines, lines);
	assert_int_equal(m->ntls, 2);
	assert_int_equal(m->tls[1].value, 3);
	/* no observer at all: every hook is a no-op */
	p->opt.obs = NULL;
	assert_false(admin_obs_request(c));
	admin_obs_opened(c);
	admin_obs_decision(c);
	admin_obs_destroy(o);
	free(l);
	free(c);
	free(p);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_open_routes, setup),
		cmocka_unit_test_setup(test_unauthenticated, setup),
		cmocka_unit_test_setup(test_mtls_principals, setup),
		cmocka_unit_test_setup(test_login_session, setup),
		cmocka_unit_test_setup(test_password_change_drops_sessions, setup),
		cmocka_unit_test_setup(test_session_table_evicts_oldest, setup),
		cmocka_unit_test_setup(test_rate_limit, setup),
		cmocka_unit_test_setup(test_routing_and_upload, setup),
		cmocka_unit_test_setup(test_json_writer_overflow, setup),
		cmocka_unit_test_setup(test_config_good, setup),
		cmocka_unit_test_setup(test_config_errors, setup),
		cmocka_unit_test_setup(test_observer, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
