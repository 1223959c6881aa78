/* tls_conn against a real client: OpenSSL's libssl over memory BIOs.
 * Every refusal is checked twice: the server's tls_error, and the alert the
 * OpenSSL client actually received. The PKI comes from tests/pki/gen.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

#define PKI "../build/test-pki"
#include "test_pki.h"

static struct tls_credentials creds, creds_rsa;
static struct tls_conn conn;

struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *to_client;     /* server output goes here (client's rbio) */
	BIO *from_client;   /* client output (client's wbio) */
	unsigned char pend[16384];
	size_t pend_len, pend_off;
	int alert_received;     /* -1 none */
	int done, failed;
};

static int last_alert = -1;

static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if ((where & SSL_CB_READ_ALERT) && last_alert < 0)
		last_alert = ret & 0xff;
}

static void client_init(struct client *cl, const char *name, int maxver)
{
	char cert[256], key[256];

	memset(cl, 0, sizeof *cl);
	cl->alert_received = -1;
	last_alert = -1;
	cl->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cl->ctx);
	if (maxver) {
		SSL_CTX_set_security_level(cl->ctx, 0);
		SSL_CTX_set_cipher_list(cl->ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(cl->ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(cl->ctx, maxver);
	}
	assert_int_equal(SSL_CTX_load_verify_locations(cl->ctx, PKI "/ca.pem", NULL), 1);
	SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_info_callback(cl->ctx, info_cb);
	if (name) {
		snprintf(cert, sizeof cert, PKI "/%s.pem", name);
		snprintf(key, sizeof key, PKI "/%s.key", name);
		assert_int_equal(SSL_CTX_use_certificate_file(cl->ctx, cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(cl->ctx, key, SSL_FILETYPE_PEM), 1);
	}
	cl->ssl = SSL_new(cl->ctx);
	cl->to_client = BIO_new(BIO_s_mem());
	cl->from_client = BIO_new(BIO_s_mem());
	SSL_set_bio(cl->ssl, cl->to_client, cl->from_client);
	SSL_set_connect_state(cl->ssl);
	SSL_set_tlsext_host_name(cl->ssl, "localhost");
	SSL_set1_host(cl->ssl, "localhost");
}

static void client_free(struct client *cl)
{
	SSL_free(cl->ssl);
	SSL_CTX_free(cl->ctx);
	ERR_clear_error();
}

/* When set, the next client CertificateVerify passing through pump() gets
 * the last byte of its signature flipped (a client without the key). */
static int tamper_cv;

static void maybe_tamper(unsigned char *b, size_t n)
{
	size_t off = 0;

	while (tamper_cv && off + 5 <= n) {
		size_t rlen = (size_t)b[off + 3] << 8 | b[off + 4], m = off + 5;

		if (off + 5 + rlen > n)
			return;
		while (b[off] == 22 && m + 4 <= off + 5 + rlen) {
			size_t mlen = (size_t)b[m + 1] << 16 | (size_t)b[m + 2] << 8 | b[m + 3];

			if (b[m] == 15 && m + 4 + mlen <= off + 5 + rlen) {
				b[m + 4 + mlen - 1] ^= 0x01;
				tamper_cv = 0;
				return;
			}
			m += 4 + mlen;
		}
		off += 5 + rlen;
	}
}

/* Moves bytes both ways; returns non-zero if anything moved. */
static int pump(struct client *cl, struct tls_conn *c)
{
	int progress = 0;
	const unsigned char *p;
	size_t len;

	for (;;) {
		if (cl->pend_off == cl->pend_len) {
			int n = BIO_read(cl->from_client, cl->pend, sizeof cl->pend);

			if (n <= 0)
				break;
			cl->pend_len = (size_t)n;
			cl->pend_off = 0;
			maybe_tamper(cl->pend, cl->pend_len);
		}
		len = tls_conn_feed(c, cl->pend + cl->pend_off, cl->pend_len - cl->pend_off);
		if (len == 0) {
			/* The engine may want its output drained first. */
			if ((p = tls_conn_output(c, &len)) == NULL)
				break;
			BIO_write(cl->to_client, p, (int)len);
			tls_conn_output_ack(c, len);
			progress = 1;
			continue;
		}
		cl->pend_off += len;
		progress = 1;
	}
	while ((p = tls_conn_output(c, &len)) != NULL) {
		BIO_write(cl->to_client, p, (int)len);
		tls_conn_output_ack(c, len);
		progress = 1;
	}
	return progress;
}

static void handshake(struct client *cl, struct tls_conn *c)
{
	int i;

	for (i = 0; i < 100; i++) {
		int moved;

		if (!cl->done && !cl->failed) {
			int r = SSL_do_handshake(cl->ssl);

			if (r == 1) {
				cl->done = 1;
			} else {
				int e = SSL_get_error(cl->ssl, r);

				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					cl->failed = 1;
			}
		}
		moved = pump(cl, c);
		if (!moved && (cl->done || cl->failed) && tls_conn_state(c) != TLS_STATE_HANDSHAKING)
			break;
	}
	cl->alert_received = last_alert;
	if (getenv("TLS_TEST_DEBUG")) {
		int x509err, sent, recv;
		int be = tls_conn_bearssl_error(c, &x509err);

		tls_conn_alerts(c, &sent, &recv);
		fprintf(stderr, "# server %s/%s bearssl=%d x509=%d alert sent=%d recv=%d; client "
			"done=%d failed=%d alert=%d\n", tls_state_name(tls_conn_state(c)),
			tls_error_name(tls_conn_error(c)), be, x509err, sent, recv, cl->done,
			cl->failed, cl->alert_received);
		ERR_print_errors_fp(stderr);
	}
}

static void expect_refusal(const char *client_cert, enum tls_error want, int alert)
{
	struct client cl;

	client_init(&cl, client_cert, 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	if (tls_conn_error(&conn) != want)
		fail_msg("client %s: got %s, want %s", client_cert ? client_cert : "(none)",
			 tls_error_name(tls_conn_error(&conn)), tls_error_name(want));
	assert_true(cl.failed);
	assert_false(cl.done);
	if (cl.alert_received != alert)
		fail_msg("client %s: OpenSSL received alert %d, want %d",
			 client_cert ? client_cert : "(none)", cl.alert_received, alert);
	assert_null(tls_conn_peer(&conn));
	client_free(&cl);
}

static int64_t x509_not_after(const char *name)
{
	X509 *x = pki_x509(name);
	struct tm tm;
	assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
	X509_free(x);
	return (int64_t)timegm(&tm);
}

/* ------------------------------------------------------------ tests */

static void test_allowed_identity_and_data(void **state)
{
	struct client cl;
	const struct tls_peer *peer;
	const unsigned char *p;
	size_t len, got = 0;
	char buf[64];
	int n, i;

	(void)state;
	client_init(&cl, "frontend", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_HANDSHAKING);
	handshake(&cl, &conn);
	assert_true(cl.done);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_int_equal(tls_conn_error(&conn), TLS_OK);
	assert_string_equal(SSL_get_version(cl.ssl), "TLSv1.2");
	assert_int_equal(tls_conn_cipher_suite(&conn), 0xC02B);  /* ECDHE-ECDSA-AES128-GCM */
	assert_int_equal(SSL_get_verify_result(cl.ssl), X509_V_OK);
	peer = tls_conn_peer(&conn);
	assert_non_null(peer);
	assert_string_equal(peer->spiffe_id, "spiffe://cluster.local/ns/prod/sa/frontend");
	assert_string_equal(tls_peer_principal(peer), "cluster.local/ns/prod/sa/frontend");
	assert_string_equal(peer->trust_domain, "cluster.local");
	assert_string_equal(peer->namespace_, "prod");
	assert_string_equal(peer->service_account, "frontend");
	assert_int_equal(peer->trust_domain_index, 0);
	assert_true(peer->not_after == x509_not_after("frontend"));

	/* client -> server */
	assert_int_equal(SSL_write(cl.ssl, "hello gateway", 13), 13);
	pump(&cl, &conn);
	p = tls_conn_read(&conn, &len);
	assert_non_null(p);
	assert_int_equal(len, 13);
	assert_memory_equal(p, "hello gateway", 13);
	tls_conn_read_ack(&conn, len);
	assert_null(tls_conn_read(&conn, &len));

	/* server -> client, more than one record */
	for (i = 0; i < 3; i++) {
		static unsigned char big[20000];
		size_t off = 0;

		memset(big, 'a' + i, sizeof big);
		while (off < sizeof big) {
			size_t w = tls_conn_write(&conn, big + off, sizeof big - off);

			if (w == 0) {
				tls_conn_flush(&conn);
				pump(&cl, &conn);
				continue;
			}
			off += w;
		}
	}
	tls_conn_flush(&conn);
	pump(&cl, &conn);
	for (;;) {
		n = SSL_read(cl.ssl, buf, sizeof buf);
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			assert_int_equal(buf[i], 'a' + (int)((got + (size_t)i) / 20000));
		got += (size_t)n;
	}
	assert_int_equal(got, 60000);

	/* client close_notify -> server answers and is CLOSED cleanly */
	SSL_shutdown(cl.ssl);
	pump(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_CLOSED);
	assert_int_equal(tls_conn_error(&conn), TLS_OK);
	assert_int_equal(SSL_shutdown(cl.ssl), 1);   /* server's close_notify arrived */
	client_free(&cl);
}

static void test_server_close_notify(void **state)
{
	struct client cl;
	char buf[16];
	int n;

	(void)state;
	client_init(&cl, "frontend", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_int_equal(tls_conn_write(&conn, "bye", 3), 3);
	tls_conn_close(&conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_CLOSING);
	assert_int_equal(tls_conn_write(&conn, "x", 1), 0);
	pump(&cl, &conn);
	n = SSL_read(cl.ssl, buf, sizeof buf);
	assert_int_equal(n, 3);
	n = SSL_read(cl.ssl, buf, sizeof buf);
	assert_true(n <= 0);
	assert_int_equal(SSL_get_error(cl.ssl, n), SSL_ERROR_ZERO_RETURN);
	/* The peer hangs up without answering: still a clean end. */
	tls_conn_eof(&conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_CLOSED);
	assert_int_equal(tls_conn_error(&conn), TLS_OK);
	client_free(&cl);
}

static void test_second_trust_domain(void **state)
{
	struct client cl;
	const struct tls_peer *peer;

	(void)state;
	client_init(&cl, "otherdomain", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	peer = tls_conn_peer(&conn);
	assert_non_null(peer);
	assert_string_equal(peer->trust_domain, "other.example");
	assert_string_equal(peer->namespace_, "payments");
	assert_string_equal(peer->service_account, "api");
	assert_int_equal(peer->trust_domain_index, 1);
	client_free(&cl);
}

static void test_no_eku_accepted(void **state)
{
	struct client cl;

	(void)state;
	client_init(&cl, "no-eku", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	client_free(&cl);
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refusal(NULL, TLS_ERR_NO_CLIENT_CERT, 40);
	expect_refusal("other-ca", TLS_ERR_UNKNOWN_CA, 48);
	expect_refusal("expired", TLS_ERR_CERT_EXPIRED, 45);
	expect_refusal("not-yet-valid", TLS_ERR_CERT_NOT_YET_VALID, 45);
	expect_refusal("no-uri", TLS_ERR_NO_SPIFFE_ID, 42);
	expect_refusal("http-uri", TLS_ERR_NO_SPIFFE_ID, 42);
	expect_refusal("bad-spiffe", TLS_ERR_BAD_SPIFFE_ID, 42);
	expect_refusal("two-uris", TLS_ERR_MULTIPLE_URI_SANS, 42);
	expect_refusal("server-eku-only", TLS_ERR_EKU_NOT_CLIENT_AUTH, 43);
	expect_refusal("unknown-td", TLS_ERR_UNKNOWN_TRUST_DOMAIN, 48);
}

struct authz_log {
	int calls;
	char seen[TLS_SPIFFE_MAX_ID + 1];
};

static int deny_dev(void *arg, const struct tls_peer *peer)
{
	struct authz_log *log = arg;

	log->calls++;
	snprintf(log->seen, sizeof log->seen, "%s", peer->spiffe_id);
	return strcmp(peer->namespace_, "dev") == 0;
}

static void test_authorize_hook(void **state)
{
	struct client cl;
	struct authz_log log = { 0 };

	(void)state;
	client_init(&cl, "ns-dev", 0);
	tls_conn_reset(&conn, &creds, deny_dev, &log);
	handshake(&cl, &conn);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.seen, "spiffe://cluster.local/ns/dev/sa/tool");
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_ACCESS_DENIED);
	assert_int_equal(cl.alert_received, 49);
	assert_true(cl.failed);
	assert_non_null(tls_conn_peer(&conn));   /* for the log line */
	client_free(&cl);

	memset(&log, 0, sizeof log);
	client_init(&cl, "frontend", 0);
	tls_conn_reset(&conn, &creds, deny_dev, &log);
	handshake(&cl, &conn);
	assert_int_equal(log.calls, 1);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	client_free(&cl);
}

static void test_plaintext_http(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: meshgate\r\n\r\n";
	const unsigned char *p;
	size_t len;

	(void)state;
	tls_conn_reset(&conn, &creds, NULL, NULL);
	tls_conn_feed(&conn, req, sizeof req - 1);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_PROTOCOL);
	p = tls_conn_output(&conn, &len);
	if (p != NULL) {     /* an alert record, if any, is a well-formed one */
		assert_int_equal(len, 7);
		assert_int_equal(p[0], 21);
		assert_int_equal(p[5], 2);
		tls_conn_output_ack(&conn, len);
	}
	assert_null(tls_conn_output(&conn, &len));
	/* Sticky: nothing more is taken. */
	assert_int_equal(tls_conn_feed(&conn, req, sizeof req - 1), 0);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_PROTOCOL);
}

static void test_tls11_refused(void **state)
{
	struct client cl;
	int sent;

	(void)state;
	client_init(&cl, "frontend", TLS1_1_VERSION);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_true(cl.failed);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_UNSUPPORTED_VERSION);
	/* BearSSL sends protocol_version itself, in a TLS 1.2 record that a
	 * TLS 1.1-only OpenSSL reports as "wrong version number" instead. */
	tls_conn_alerts(&conn, &sent, NULL);
	assert_int_equal(sent, 70);
	assert_true(cl.alert_received == 70 || cl.alert_received == -1);
	client_free(&cl);
}

static void test_eof_during_handshake(void **state)
{
	struct client cl;

	(void)state;
	client_init(&cl, "frontend", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	SSL_do_handshake(cl.ssl);
	pump(&cl, &conn);    /* ClientHello in, ServerHello..Done out */
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_HANDSHAKING);
	tls_conn_eof(&conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_CLOSED_BY_PEER);
	assert_string_equal(tls_error_name(tls_conn_error(&conn)), "closed_by_peer");
	client_free(&cl);
}

/* A handshake with a client offering only SUITES (OpenSSL names; NULL: its
 * default list) against credentials CR: the suite chosen, or 0 if refused
 * (then with TLS_ERR_NO_SHARED_CIPHER). */
static unsigned suite_with(struct tls_credentials *cr, const char *suites)
{
	struct client cl;
	unsigned got = 0;

	client_init(&cl, "frontend", 0);
	if (suites && SSL_set_cipher_list(cl.ssl, suites) != 1)
		fail_msg("OpenSSL here cannot offer %s", suites);
	tls_conn_reset(&conn, cr, NULL, NULL);
	handshake(&cl, &conn);
	if (cl.done) {
		assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
		got = tls_conn_cipher_suite(&conn);
	} else {
		assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
		if (tls_conn_error(&conn) != TLS_ERR_NO_SHARED_CIPHER)
			fail_msg("client offering %s: %s, want no_shared_cipher", suites,
				 tls_error_name(tls_conn_error(&conn)));
	}
	client_free(&cl);
	return got;
}

static void test_rsa_server(void **state)
{
	(void)state;
	assert_int_equal(suite_with(&creds_rsa, NULL), 0xC02F);  /* ECDHE-RSA-AES128-GCM */
}

/* Every suite we configure works, with each key type, and none other does,
 * though BearSSL's table knows them: the build moves ours to the front of
 * that table (tls/bearssl_suite_order.pl), and a slip there would give a
 * suite another's properties or let an unconfigured one through. */
static void test_suite_table(void **state)
{
	static const struct {
		const char *name;
		unsigned id;
		int rsa;
	} ok[] = {
		{"ECDHE-ECDSA-AES128-GCM-SHA256", 0xC02B, 0},
		{"ECDHE-ECDSA-AES256-GCM-SHA384", 0xC02C, 0},
		{"ECDHE-ECDSA-CHACHA20-POLY1305", 0xCCA9, 0},
		{"ECDHE-RSA-AES128-GCM-SHA256", 0xC02F, 1},
		{"ECDHE-RSA-AES256-GCM-SHA384", 0xC030, 1},
		{"ECDHE-RSA-CHACHA20-POLY1305", 0xCCA8, 1},
	};
	/* in BearSSL's table, not configured: CBC, static RSA, CCM (3DES: not in
	 * OpenSSL 3 here) */
	static const char *const refused[] = {
		"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES128-CCM", "ECDHE-RSA-AES128-SHA", "AES256-SHA256",
	};

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		unsigned got = suite_with(ok[i].rsa ? &creds_rsa : &creds, ok[i].name);
		if (got != ok[i].id)
			fail_msg("%s: negotiated %04X, want %04X", ok[i].name, got, ok[i].id);
		/* the other key type's suites are not offered to this client */
		assert_int_equal(suite_with(ok[i].rsa ? &creds : &creds_rsa, ok[i].name), 0);
	}
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		char list[96];

		snprintf(list, sizeof list, "%s:@SECLEVEL=0", refused[i]);
		assert_int_equal(suite_with(&creds, list), 0);
		assert_int_equal(suite_with(&creds_rsa, list), 0);
	}
}

static void test_credentials_errors(void **state)
{
	struct tls_credentials cr;
	struct config_trust_bundle b[2];
	char err[512];

	(void)state;
	memset(b, 0, sizeof b);
	snprintf(b[0].trust_domain, sizeof b[0].trust_domain, "cluster.local");
	snprintf(b[0].roots, sizeof b[0].roots, PKI "/ca.pem");

	assert_int_equal(tls_credentials_load(&cr, PKI "/missing.pem", PKI "/gateway.key", b, 1,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "missing.pem: cannot open: No such file"));

	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.key", PKI "/gateway.key", b, 1,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "gateway.key: no certificate in PEM"));

	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.pem", PKI "/frontend.key", b, 1,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "frontend.key: private key does not match certificate"));

	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.pem", PKI "/gateway.pem", b, 1,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "gateway.pem: no private key in PEM"));

	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway-rsa.pem", PKI "/gateway.key", b, 1,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "does not match"));

	snprintf(b[1].trust_domain, sizeof b[1].trust_domain, "Bad.Domain");
	snprintf(b[1].roots, sizeof b[1].roots, PKI "/ca.pem");
	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.pem", PKI "/gateway.key", b, 2,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "\"Bad.Domain\": not a valid SPIFFE trust domain"));

	snprintf(b[1].trust_domain, sizeof b[1].trust_domain, "cluster.local");
	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.pem", PKI "/gateway.key", b, 2,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "configured twice"));

	snprintf(b[1].trust_domain, sizeof b[1].trust_domain, "other.example");
	snprintf(b[1].roots, sizeof b[1].roots, PKI "/gateway.key");
	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.pem", PKI "/gateway.key", b, 2,
					      err, sizeof err), -1);
	assert_non_null(strstr(err, "gateway.key: no certificate in PEM (trust bundle of \"other.example\")"));

	/* Good: chain without the CA, bundle with two roots in one file. */
	snprintf(b[0].roots, sizeof b[0].roots, PKI "/bundle.pem");
	assert_int_equal(tls_credentials_load(&cr, PKI "/gateway.pem", PKI "/gateway.key", b, 1,
					      err, sizeof err), 0);
	assert_int_equal(cr.domains[0].nanchors, 2);
	assert_int_equal(cr.chain_len, 1);
	assert_true(cr.not_after == x509_not_after("gateway"));
	tls_credentials_free(&cr);
}

static void test_demo_pki(void **state)
{
	char dir[] = "/tmp/mg-demo-pki-XXXXXX", err[512], path[256], keypath[256];
	struct config_trust_bundle b;
	struct tls_credentials cr;
	struct stat st1, st2;
	struct client cl;
	X509 *x;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(tls_demo_pki_ensure(dir, "demo.local", err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/client.key", dir);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(st1.st_mode & 0777, 0600);
	/* Idempotent: a second call leaves existing files alone. */
	assert_int_equal(tls_demo_pki_ensure(dir, "demo.local", err, sizeof err), 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	assert_true(st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec && st1.st_mtime == st2.st_mtime);

	memset(&b, 0, sizeof b);
	snprintf(b.trust_domain, sizeof b.trust_domain, "demo.local");
	snprintf(b.roots, sizeof b.roots, "%s/ca.pem", dir);
	snprintf(path, sizeof path, "%s/gateway.pem", dir);
	snprintf(keypath, sizeof keypath, "%s/gateway.key", dir);
	assert_int_equal(tls_credentials_load(&cr, path, keypath, &b, 1, err, sizeof err), 0);
	assert_int_equal(cr.chain_len, 2);

	/* A real handshake with the demo client identity. */
	client_init(&cl, NULL, 0);
	snprintf(path, sizeof path, "%s/intruder.pem", dir);
	assert_int_equal(SSL_use_certificate_file(cl.ssl, path, SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof path, "%s/intruder.key", dir);
	assert_int_equal(SSL_use_PrivateKey_file(cl.ssl, path, SSL_FILETYPE_PEM), 1);
	SSL_set_verify(cl.ssl, SSL_VERIFY_NONE, NULL);
	tls_conn_reset(&conn, &cr, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_string_equal(tls_conn_peer(&conn)->spiffe_id, "spiffe://demo.local/ns/demo/sa/intruder");
	client_free(&cl);
	tls_conn_wipe(&conn);
	tls_credentials_free(&cr);

	snprintf(path, sizeof path, "%s/gateway.pem", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "meshgate.demo", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "198.18.3.2", 0), 1);
	X509_free(x);

	assert_int_equal(tls_demo_pki_ensure(dir, "Bad Domain", err, sizeof err), -1);
	assert_non_null(strstr(err, "not a valid SPIFFE trust domain"));
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

static void test_error_names(void **state)
{
	int i, j;

	(void)state;
	for (i = 0; i < TLS_ERR_COUNT; i++) {
		const char *n = tls_error_name((enum tls_error)i);

		assert_string_not_equal(n, "unknown");
		for (j = 0; n[j]; j++)
			assert_true((n[j] >= 'a' && n[j] <= 'z') || n[j] == '_');
		for (j = 0; j < i; j++)
			assert_string_not_equal(n, tls_error_name((enum tls_error)j));
	}
	assert_string_equal(tls_error_name(TLS_ERR_PROTOCOL), "protocol_error");
	assert_string_equal(tls_error_name(TLS_ERR_NO_CLIENT_CERT), "no_client_cert");
}

/* ------------------------------------------------------------ caches (tls/cache.h) */

/* Full handshake as frontend with `cr`; returns the client's session. */
static SSL_SESSION *full_handshake(const struct tls_credentials *cr, int resumable)
{
	struct client cl;
	SSL_SESSION *sess;

	client_init(&cl, "frontend", 0);
	if (!resumable)
		SSL_set_options(cl.ssl, SSL_OP_NO_TICKET);
	tls_conn_reset(&conn, cr, NULL, NULL);
	handshake(&cl, &conn);
	assert_true(cl.done);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_int_equal(tls_conn_resumed(&conn), 0);
	assert_int_equal(SSL_session_reused(cl.ssl), 0);
	sess = SSL_get1_session(cl.ssl);
	assert_non_null(sess);
	/* Freed without a shutdown, OpenSSL marks the session not resumable. */
	SSL_set_shutdown(cl.ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	client_free(&cl);
	return sess;
}

/* Offers `sess` again; returns 1 if the handshake resumed it. */
static int try_resume(const struct tls_credentials *cr, SSL_SESSION *sess, tls_authorize_fn az,
		      void *arg, int64_t at)
{
	struct client cl;
	int reused;

	client_init(&cl, "frontend", 0);
	SSL_set_options(cl.ssl, SSL_OP_NO_TICKET);
	assert_int_equal(SSL_set_session(cl.ssl, sess), 1);
	tls_conn_reset(&conn, cr, az, arg);
	if (at)
		tls_conn_set_time(&conn, at);
	handshake(&cl, &conn);
	reused = cl.done && SSL_session_reused(cl.ssl);
	assert_int_equal(tls_conn_resumed(&conn), reused);
	client_free(&cl);
	return reused;
}

static void test_session_resumption_keeps_identity(void **state)
{
	SSL_SESSION *sess;
	const struct tls_peer *peer;
	uint64_t before = creds.cache->counters.session_resumed;

	(void)state;
	tls_credentials_set_caching(&creds, 1, 1);
	sess = full_handshake(&creds, 0);
	assert_int_equal(try_resume(&creds, sess, NULL, NULL, 0), 1);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	peer = tls_conn_peer(&conn);
	assert_non_null(peer);
	assert_string_equal(peer->spiffe_id, "spiffe://cluster.local/ns/prod/sa/frontend");
	assert_string_equal(peer->namespace_, "prod");
	assert_string_equal(peer->service_account, "frontend");
	assert_int_equal(peer->trust_domain_index, 0);
	assert_true(peer->not_after == x509_not_after("frontend"));
	assert_int_equal(creds.cache->counters.session_resumed, before + 1);
	SSL_SESSION_free(sess);
}

static int deny_frontend(void *arg, const struct tls_peer *peer)
{
	(*(int *)arg)++;
	return strcmp(peer->service_account, "frontend") == 0;
}

static void test_resumption_asks_authorize_again(void **state)
{
	SSL_SESSION *sess;
	int calls = 0;

	(void)state;
	sess = full_handshake(&creds, 0);
	/* The policy now refuses frontend: no resumption, and the full
	 * handshake that follows is refused with access_denied. */
	assert_int_equal(try_resume(&creds, sess, deny_frontend, &calls, 0), 0);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_ACCESS_DENIED);
	assert_int_equal(calls, 2);     /* once at resumption, once in the full handshake */
	SSL_SESSION_free(sess);
}

static void test_resumption_expires_and_is_per_credentials(void **state)
{
	SSL_SESSION *sess;
	struct tls_credentials other;
	struct config_trust_bundle b;
	char err[256];

	(void)state;
	sess = full_handshake(&creds, 0);
	/* past the lifetime: a full handshake (that succeeds) */
	assert_int_equal(try_resume(&creds, sess, NULL, NULL,
				    (int64_t)time(NULL) + TLS_SESSION_LIFETIME + 5), 0);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_non_null(tls_conn_peer(&conn));
	SSL_SESSION_free(sess);
	/* a reload (new credentials) forgets the sessions of the old ones */
	sess = full_handshake(&creds, 0);
	memset(&b, 0, sizeof b);
	snprintf(b.trust_domain, sizeof b.trust_domain, "cluster.local");
	snprintf(b.roots, sizeof b.roots, PKI "/ca.pem");
	assert_int_equal(tls_credentials_load(&other, PKI "/gateway-chain.pem", PKI "/gateway.key",
					      &b, 1, err, sizeof err), 0);
	tls_ec_select(&other.impl, creds.impl.ec_backend);
	assert_int_equal(try_resume(&other, sess, NULL, NULL, 0), 0);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	/* sessions off: never resumed */
	tls_credentials_set_caching(&creds, 0, 1);
	assert_int_equal(try_resume(&creds, sess, NULL, NULL, 0), 0);
	tls_credentials_set_caching(&creds, 1, 1);
	tls_conn_wipe(&conn);
	tls_credentials_free(&other);
	SSL_SESSION_free(sess);
}

static void test_chain_cache_still_checks_certificate_verify(void **state)
{
	uint64_t hits;

	(void)state;
	tls_credentials_set_caching(&creds, 1, 1);
	SSL_SESSION_free(full_handshake(&creds, 0));     /* verified in full, stored */
	hits = creds.cache->counters.chain_hits;
	SSL_SESSION_free(full_handshake(&creds, 0));     /* from the cache */
	assert_int_equal(creds.cache->counters.chain_hits, hits + 1);
	assert_non_null(tls_conn_peer(&conn));
	/* Same certificate, signature not made with its key: refused, cached or not. */
	tamper_cv = 1;
	expect_refusal("frontend", TLS_ERR_BAD_CERT, 51);
	assert_int_equal(tamper_cv, 0);
	assert_int_equal(creds.cache->counters.chain_hits, hits + 2);
	tls_credentials_set_caching(&creds, 1, 0);
	tamper_cv = 1;
	expect_refusal("frontend", TLS_ERR_BAD_CERT, 51);
	assert_int_equal(creds.cache->counters.chain_hits, hits + 2);
	/* an expired certificate is never served from the cache: dates are ours */
	tls_credentials_set_caching(&creds, 1, 1);
	expect_refusal("expired", TLS_ERR_CERT_EXPIRED, 45);
}

/* Transcript hashes (tls/conn.c trim_transcript_hashes): after the suite is
 * chosen the engine keeps SHA-256 plus what the suite's PRF and the
 * ServerKeyExchange signature need, and the CertificateRequest asks for
 * those only, so the client's CertificateVerify uses one of them. */
static void signature_hashes(const char *suites, const char *sigalgs, unsigned want_suite,
			     int want_server_hash, int want_client_hash)
{
	struct client cl;
	int nid = 0, n;

	client_init(&cl, "frontend", 0);
	if (suites)
		assert_int_equal(SSL_set_cipher_list(cl.ssl, suites), 1);
	if (sigalgs)
		assert_int_equal(SSL_set1_sigalgs_list(cl.ssl, sigalgs), 1);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_true(cl.done);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_non_null(tls_conn_peer(&conn));
	assert_int_equal(tls_conn_cipher_suite(&conn), want_suite);
	assert_int_equal(SSL_get_peer_signature_nid(cl.ssl, &nid), 1);
	assert_int_equal(nid, want_server_hash);
	assert_int_equal(SSL_get_signature_nid(cl.ssl, &nid), 1);
	assert_int_equal(nid, want_client_hash);
	/* what the CertificateRequest listed */
	n = SSL_get_sigalgs(cl.ssl, -1, NULL, NULL, NULL, NULL, NULL);
	assert_true(n >= 2);            /* ECDSA and RSA */
	for (int i = 0; i < n; i++) {
		int hash = 0;

		SSL_get_sigalgs(cl.ssl, i, NULL, &hash, NULL, NULL, NULL);
		assert_true(hash == NID_sha256 || hash == want_server_hash ||
			    (hash == NID_sha384 && want_suite == 0xC02C));
	}
	client_free(&cl);
}

static void test_transcript_hashes(void **state)
{
	(void)state;
	/* the usual case: SHA-256 everywhere */
	signature_hashes(NULL, NULL, 0xC02B, NID_sha256, NID_sha256);
	/* SHA-384 PRF suite: SHA-384 kept for Finished */
	signature_hashes("ECDHE-ECDSA-AES256-GCM-SHA384", NULL, 0xC02C, NID_sha256, NID_sha256);
	/* a client that signs (and accepts) only SHA-384 or SHA-512 */
	signature_hashes(NULL, "ECDSA+SHA384", 0xC02B, NID_sha384, NID_sha384);
	signature_hashes(NULL, "ECDSA+SHA512", 0xC02B, NID_sha512, NID_sha512);
}

/* The engine gets only the suites of the server key type, and BearSSL's
 * table of common suites may be built that small (tests/unit/tls_build.mk):
 * each suite alone, and a long client list in another order, still work
 * (server preference). */
static void test_suite_choice(void **state)
{
	(void)state;
	signature_hashes("ECDHE-ECDSA-CHACHA20-POLY1305", NULL, 0xCCA9, NID_sha256, NID_sha256);
	signature_hashes("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256", NULL, 0xC02B,
			 NID_sha256, NID_sha256);
	signature_hashes("AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
			 "ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384:AES256-GCM-SHA384",
			 NULL, 0xC02C, NID_sha256, NID_sha256);
}

/* SHA-256 of certificate NAME's DER (the chain-cache key) and its public
 * point, uncompressed. */
static void cert_hash_and_key(const char *name, unsigned char hash[32], unsigned char *q, size_t *qlen)
{
	unsigned char *der = NULL, *p;
	X509 *x = pki_x509(name);
	int n = i2d_X509(x, &der);
	assert_true(n > 0);
	SHA256(der, (size_t)n, hash);
	OPENSSL_free(der);
	n = i2d_PublicKey(X509_get0_pubkey(x), NULL);
	assert_int_equal(n, 65);
	p = q;
	assert_int_equal(i2d_PublicKey(X509_get0_pubkey(x), &p), 65);
	*qlen = 65;
	X509_free(x);
}

/* What a chain-cache hit skips is only the chain walk (tls/cache.h): the
 * dates, the EKU, the SPIFFE ID and the CertificateVerify are checked on the
 * hit path too, and the key is the certificate's own. */
static void test_chain_cache_hit_path_checks(void **state)
{
	struct tls_cache_counters *cnt = &creds.cache->counters;
	unsigned char hash[32], q[65];
	const struct tls_chain_entry *e;
	br_x509_pkey pk;
	uint64_t hits, misses;
	size_t qlen;
	unsigned usages;
	int64_t now = (int64_t)time(NULL);
	struct client cl;

	(void)state;
	tls_credentials_set_caching(&creds, 0, 0);
	tls_credentials_set_caching(&creds, 0, 1);      /* empty chain cache */
	SSL_SESSION_free(full_handshake(&creds, 0));     /* frontend, stored */
	cert_hash_and_key("frontend", hash, q, &qlen);
	e = tls_chain_cache_find(creds.cache, hash, 0, now);
	assert_non_null(e);
	usages = e->usages;

	/* Dates: a hit at a time before the certificate's notBefore is refused. */
	hits = cnt->chain_hits;
	client_init(&cl, "frontend", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	tls_conn_set_time(&conn, x509_not_after("frontend") - 4 * 366 * 86400);
	handshake(&cl, &conn);
	assert_int_equal(cnt->chain_hits, hits + 1);
	assert_int_equal(tls_conn_error(&conn), TLS_ERR_CERT_NOT_YET_VALID);
	assert_int_equal(cl.alert_received, 45);
	client_free(&cl);

	/* EKU: an entry for a serverAuth-only certificate (as if its chain had
	 * verified) still leaves the EKU check to the hit path. */
	cert_hash_and_key("server-eku-only", hash, q, &qlen);
	pk.key_type = BR_KEYTYPE_EC;
	pk.key.ec.curve = BR_EC_secp256r1;
	pk.key.ec.q = q;
	pk.key.ec.qlen = qlen;
	tls_chain_cache_store(creds.cache, hash, 0, &pk, usages, now, x509_not_after("server-eku-only"));
	hits = cnt->chain_hits;
	expect_refusal("server-eku-only", TLS_ERR_EKU_NOT_CLIENT_AUTH, 43);
	assert_int_equal(cnt->chain_hits, hits + 1);

	/* An entry never outlives its certificate: stored 100 s before
	 * notAfter, gone one second after it (a miss, then refused in full). */
	cert_hash_and_key("frontend", hash, q, &qlen);
	tls_chain_cache_store(creds.cache, hash, 0, &pk, usages, x509_not_after("frontend") - 100,
			      x509_not_after("frontend"));
	assert_null(tls_chain_cache_find(creds.cache, hash, 0, x509_not_after("frontend") + 1));

	/* Same SPIFFE ID, another key (no-eku): not the cached certificate, so
	 * a miss and a full verification, then a hit of its own. */
	misses = cnt->chain_misses;
	client_init(&cl, "no-eku", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_string_equal(tls_conn_peer(&conn)->spiffe_id, "spiffe://cluster.local/ns/prod/sa/frontend");
	assert_int_equal(cnt->chain_misses, misses + 1);
	client_free(&cl);
	/* Same SPIFFE ID from a CA that is not a root: refused, whatever is cached. */
	expect_refusal("other-ca", TLS_ERR_UNKNOWN_CA, 48);
	tls_credentials_set_caching(&creds, 1, 1);
}

/* ECDHE curve: with OpenSSL's P-256 the server prefers P-256 when the client
 * offers it (cheaper than BearSSL's X25519); with BearSSL's own code, X25519.
 * (A TLS 1.2 client must offer P-256 anyway: the certificates are P-256.) */
static int negotiated_group(const char *groups)
{
	struct client cl;
	int nid;

	client_init(&cl, "frontend", 0);
	assert_int_equal(SSL_set1_groups_list(cl.ssl, groups), 1);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_true(cl.done);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	nid = SSL_get_negotiated_group(cl.ssl);
	client_free(&cl);
	return nid;
}

static void test_ecdhe_curve_choice(void **state)
{
	int both = creds.impl.ec_backend == TLS_EC_OPENSSL ? NID_X9_62_prime256v1 : NID_X25519;

	(void)state;
	assert_int_equal(negotiated_group("X25519:P-256"), both);
	assert_int_equal(negotiated_group("P-256:X25519"), both);
	assert_int_equal(negotiated_group("P-256"), NID_X9_62_prime256v1);
}

/* Engines are seeded from the credentials' DRBG (tls/cache.h), not from the
 * OS each time: every handshake must still get its own server random and
 * ECDHE key. */
static void test_engine_seeds_differ(void **state)
{
	unsigned char r[3][32];
	struct client cl;

	(void)state;
	for (int i = 0; i < 3; i++) {
		client_init(&cl, "frontend", 0);
		tls_conn_reset(&conn, &creds, NULL, NULL);
		handshake(&cl, &conn);
		assert_true(cl.done);
		assert_int_equal(SSL_get_server_random(cl.ssl, r[i], 32), 32);
		client_free(&cl);
	}
	assert_memory_not_equal(r[0], r[1], 32);
	assert_memory_not_equal(r[1], r[2], 32);
	assert_memory_not_equal(r[0], r[2], 32);
	assert_true(creds.cache->drbg_ok);
}

static int setup(void **state)
{
	struct config_trust_bundle b[2];
	char err[512];

	(void)state;
	if (system("pki/gen.sh " PKI) != 0) {
		fprintf(stderr, "pki/gen.sh failed\n");
		return -1;
	}
	memset(b, 0, sizeof b);
	snprintf(b[0].trust_domain, sizeof b[0].trust_domain, "cluster.local");
	snprintf(b[0].roots, sizeof b[0].roots, PKI "/ca.pem");
	snprintf(b[1].trust_domain, sizeof b[1].trust_domain, "other.example");
	snprintf(b[1].roots, sizeof b[1].roots, PKI "/otherdomain-ca.pem");
	if (tls_credentials_load(&creds, PKI "/gateway-chain.pem", PKI "/gateway.key", b, 2, err,
				 sizeof err) != 0 ||
	    tls_credentials_load(&creds_rsa, PKI "/gateway-rsa-chain.pem", PKI "/gateway-rsa.key", b,
				 2, err, sizeof err) != 0) {
		fprintf(stderr, "credentials: %s\n", err);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ AES-GCM records
 * tls/gcm.h: records of every size both ways, those of TLS_GCM_EVP_MIN
 * plaintext bytes and more done by libcrypto, smaller ones by BearSSL, on
 * one sequence of numbers; AES-128 and AES-256; the same exchange through
 * BearSSL's own classes (the counters stay at 0). A large record whose
 * ciphertext was altered on the way fails the connection. */
static void gcm_send_both_ways(struct client *cl, size_t n, unsigned char fill)
{
	static unsigned char out[16384], in[16384];
	size_t off = 0, got = 0, len;
	const unsigned char *p;

	memset(out, fill, n);
	while (off < n) {
		size_t w = tls_conn_write(&conn, out + off, n - off);
		off += w;
		if (w == 0 || off == n) {
			tls_conn_flush(&conn);
			pump(cl, &conn);
		}
	}
	while (got < n) {
		int r = SSL_read(cl->ssl, in + got, (int)(n - got));
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_memory_equal(in, out, n);

	memset(out, fill ^ 0xff, n);
	assert_int_equal(SSL_write(cl->ssl, out, (int)n), (int)n);
	pump(cl, &conn);
	for (got = 0; got < n && (p = tls_conn_read(&conn, &len)) != NULL; got += len) {
		assert_memory_equal(p, out + got, len);
		tls_conn_read_ack(&conn, len);
	}
	assert_int_equal(got, n);
}

static void gcm_exchange(const char *cipher, int libcrypto)
{
	static const size_t small[] = { 1, 100, TLS_GCM_EVP_MIN - 1 };
	static const size_t large[] = { TLS_GCM_EVP_MIN, TLS_GCM_EVP_MIN + 1, 4096, 16384 };
	struct client cl;
	struct tls_credentials saved = creds;

	if (!libcrypto) {
		creds.impl.gcm_in = &br_sslrec_in_gcm_vtable;
		creds.impl.gcm_out = &br_sslrec_out_gcm_vtable;
	}
	client_init(&cl, "frontend", 0);
	assert_int_equal(SSL_set_cipher_list(cl.ssl, cipher), 1);
	tls_conn_wipe(&conn);                   /* a fresh slot, as the proxy's pool gives */
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	assert_string_equal(SSL_get_cipher_name(cl.ssl), cipher);
	for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
		gcm_send_both_ways(&cl, small[i], (unsigned char)i);
	assert_int_equal(conn.gcm_out.evp_records + conn.gcm_in.evp_records, 0);
	assert_null(conn.gcm_out.evp);          /* not even allocated */
	for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
		gcm_send_both_ways(&cl, large[i], (unsigned char)(0x40 + i));
	gcm_send_both_ways(&cl, 7, 0x77);       /* BearSSL again, on the same sequence */
	unsigned long want = libcrypto ? sizeof large / sizeof large[0] : 0;
	assert_int_equal(conn.gcm_out.evp_records, want);
	assert_int_equal(conn.gcm_in.evp_records, want);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	client_free(&cl);
	tls_conn_wipe(&conn);
	assert_null(conn.gcm_out.evp);
	creds = saved;
}

static void test_gcm_records(void **state)
{
	(void)state;
	gcm_exchange("ECDHE-ECDSA-AES128-GCM-SHA256", 1);
	gcm_exchange("ECDHE-ECDSA-AES256-GCM-SHA384", 1);
	gcm_exchange("ECDHE-ECDSA-AES128-GCM-SHA256", 0);
}

static void test_gcm_altered_record(void **state)
{
	static unsigned char buf[8192];
	struct client cl;
	int x509err;

	(void)state;
	client_init(&cl, "frontend", 0);
	tls_conn_reset(&conn, &creds, NULL, NULL);
	handshake(&cl, &conn);
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_OPEN);
	memset(buf, 'x', 5000);
	assert_int_equal(SSL_write(cl.ssl, buf, 5000), 5000);
	int n = BIO_read(cl.from_client, buf, sizeof buf);
	assert_int_equal(n, 5 + 8 + 5000 + 16);
	buf[5 + 8 + 2500] ^= 0x01;
	size_t off = 0;
	while (off < (size_t)n) {
		size_t k = tls_conn_feed(&conn, buf + off, (size_t)n - off);
		if (k == 0)
			break;
		off += k;
	}
	assert_int_equal(tls_conn_state(&conn), TLS_STATE_FAILED);
	assert_int_equal(tls_conn_bearssl_error(&conn, &x509err), BR_ERR_BAD_MAC);
	assert_int_equal(conn.gcm_in.evp_records, 0);
	client_free(&cl);
	tls_conn_wipe(&conn);
}

/* The same tests run once per EC backend (tls/ec.h): OpenSSL's libcrypto
 * and BearSSL's own code must both carry every handshake and refusal. */
static int setup_backend(enum tls_ec_backend b)
{
	if (setup(NULL) != 0)
		return -1;
	tls_ec_select(&creds.impl, b);
	tls_ec_select(&creds_rsa.impl, b);
	if (creds.impl.ec_backend != b) {
		fprintf(stderr, "backend %s not available\n", tls_ec_backend_name(b));
		return -1;
	}
	fprintf(stderr, "[ ec backend: %s ]\n", tls_ec_backend_name(b));
	return 0;
}

static int setup_openssl(void **state)
{
	(void)state;
	return setup_backend(TLS_EC_OPENSSL);
}

static int setup_bearssl(void **state)
{
	(void)state;
	return setup_backend(TLS_EC_BEARSSL);
}

static int teardown(void **state)
{
	(void)state;
	tls_conn_wipe(&conn);
	tls_credentials_free(&creds);
	tls_credentials_free(&creds_rsa);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_allowed_identity_and_data),
		cmocka_unit_test(test_gcm_records),
		cmocka_unit_test(test_gcm_altered_record),
		cmocka_unit_test(test_server_close_notify),
		cmocka_unit_test(test_second_trust_domain),
		cmocka_unit_test(test_no_eku_accepted),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_authorize_hook),
		cmocka_unit_test(test_plaintext_http),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_eof_during_handshake),
		cmocka_unit_test(test_rsa_server),
		cmocka_unit_test(test_suite_table),
		cmocka_unit_test(test_credentials_errors),
		cmocka_unit_test(test_demo_pki),
		cmocka_unit_test(test_ecdhe_curve_choice),
		cmocka_unit_test(test_transcript_hashes),
		cmocka_unit_test(test_suite_choice),
		cmocka_unit_test(test_engine_seeds_differ),
		cmocka_unit_test(test_session_resumption_keeps_identity),
		cmocka_unit_test(test_resumption_asks_authorize_again),
		cmocka_unit_test(test_resumption_expires_and_is_per_credentials),
		cmocka_unit_test(test_chain_cache_still_checks_certificate_verify),
		cmocka_unit_test(test_chain_cache_hit_path_checks),
	};

	int fails = 0;

	fails += cmocka_run_group_tests_name("tls_openssl_ec", tests, setup_openssl, teardown);
	fails += cmocka_run_group_tests_name("tls_bearssl_ec", tests, setup_bearssl, teardown);
	return fails;
}
