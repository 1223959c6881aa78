/* tls_bench: server CPU per mTLS handshake, in process, for each TLS lever.
 *
 * An OpenSSL client (libssl over memory BIOs) handshakes with tls_conn; only
 * the time spent inside tls_conn_* calls is counted (CLOCK_THREAD_CPUTIME_ID),
 * so the client's own cost and the network are left out. Configurations:
 *   bearssl      BearSSL's own EC code, no caches (the starting point)
 *   openssl      EC/ECDSA through libcrypto (tls/ec.h), no caches
 *   +chaincache  and the verified-chain cache (tls/cache.h)
 *   default      and libcrypto's SHA-256 (tls/hash.h; the rows above use BearSSL's)
 *   resumed      abbreviated handshakes from the session cache
 * What is fixed at build or load time applies to every row: BearSSL's suite
 * table size (tests/unit/tls_build.mk), the trimmed transcript hashes and the
 * prebuilt server key object (tls/conn.c).
 * Each figure is the median of ROUNDS rounds of N handshakes.
 *
 *   build/bench/tls_bench [N] [ROUNDS] [CONFIG]   (from the repository root; needs build/pki)
 *
 * CONFIG (a name from `configs` below) runs that configuration alone, e.g.
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='tls_conn_*' \
 *     build/bench/tls_bench 20 1 default
 * counts the server's instructions only (the warm-up handshake included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/tls.h"

#define PKI "build/pki"

static struct tls_conn conn;
static double server_ns;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Moves bytes both ways, timing the server side. */
static int pump(SSL *ssl, BIO *to_client, BIO *from_client)
{
	unsigned char buf[16384];
	const unsigned char *p;
	size_t len, off;
	int n, moved = 0;
	double t;

	while ((n = BIO_read(from_client, buf, sizeof buf)) > 0) {
		off = 0;
		while (off < (size_t)n) {
			t = now_ns();
			len = tls_conn_feed(&conn, buf + off, (size_t)n - off);
			server_ns += now_ns() - t;
			off += len;
			if (len == 0) {
				t = now_ns();
				p = tls_conn_output(&conn, &len);
				if (p == NULL) {
					server_ns += now_ns() - t;
					return -1;
				}
				BIO_write(to_client, p, (int)len);
				tls_conn_output_ack(&conn, len);
				server_ns += now_ns() - t;
			}
		}
		moved = 1;
	}
	for (;;) {
		t = now_ns();
		p = tls_conn_output(&conn, &len);
		if (p != NULL) {
			BIO_write(to_client, p, (int)len);
			tls_conn_output_ack(&conn, len);
		}
		server_ns += now_ns() - t;
		if (p == NULL)
			break;
		moved = 1;
	}
	(void)ssl;
	return moved;
}

/* One handshake; returns 1 if it completed (and *resumed). */
static int handshake(SSL_CTX *ctx, const struct tls_credentials *cr, SSL_SESSION **sess, int *resumed)
{
	SSL *ssl = SSL_new(ctx);
	BIO *to_client = BIO_new(BIO_s_mem()), *from_client = BIO_new(BIO_s_mem());
	int done = 0;
	double t;

	SSL_set_bio(ssl, to_client, from_client);
	SSL_set_connect_state(ssl);
	if (sess && *sess)
		SSL_set_session(ssl, *sess);
	t = now_ns();
	tls_conn_reset(&conn, cr, NULL, NULL);
	server_ns += now_ns() - t;
	for (int i = 0; i < 50 && !done; i++) {
		int r = SSL_do_handshake(ssl);

		if (r == 1)
			done = 1;
		else if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
			break;
		if (pump(ssl, to_client, from_client) < 0)
			break;
	}
	pump(ssl, to_client, from_client);
	done = done && tls_conn_state(&conn) == TLS_STATE_OPEN && tls_conn_peer(&conn) != NULL;
	*resumed = SSL_session_reused(ssl);
	if (sess && done && !*sess)
		*sess = SSL_get1_session(ssl);
	SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(ssl);
	ERR_clear_error();
	return done;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double run(SSL_CTX *ctx, struct tls_credentials *cr, int n, int rounds, int resume)
{
	double per[64];
	SSL_SESSION *sess = NULL;
	int resumed;

	if (resume)
		handshake(ctx, cr, &sess, &resumed);     /* the session to resume */
	else
		handshake(ctx, cr, NULL, &resumed);      /* warm caches */
	for (int r = 0; r < rounds; r++) {
		int ok = 0;

		server_ns = 0;
		for (int i = 0; i < n; i++) {
			int done = handshake(ctx, cr, resume ? &sess : NULL, &resumed);

			ok += done && resumed == resume;
		}
		if (ok != n) {
			fprintf(stderr, "tls_bench: %d of %d handshakes as expected\n", ok, n);
			exit(1);
		}
		per[r] = server_ns / n / 1e3;
	}
	if (sess)
		SSL_SESSION_free(sess);
	qsort(per, (size_t)rounds, sizeof per[0], cmp);
	return per[rounds / 2];
}

/* The levers, in the order they were added. `name` selects one on the
 * command line (callgrind runs only the default one). */
static const struct bench_config {
	const char *name;
	const char *label;
	enum tls_ec_backend ec;
	int prefer_p256, sessions, chains, resume;
	int bearssl_sha256;             /* BearSSL's SHA-256 and PRF instead of tls/hash.h */
} configs[] = {
	{"bearssl", "BearSSL EC (X25519), no caches", TLS_EC_BEARSSL, 0, 0, 0, 0, 1},
	{"bearssl+chaincache", "BearSSL EC + verified-chain cache", TLS_EC_BEARSSL, 0, 0, 1, 0, 1},
	{"openssl-x25519", "OpenSSL EC, X25519 (BearSSL's), no caches", TLS_EC_OPENSSL, 0, 0, 0, 0, 1},
	{"openssl", "OpenSSL EC, P-256 preferred, no caches", TLS_EC_OPENSSL, 1, 0, 0, 0, 1},
	{"chaincache", "OpenSSL EC, P-256 + verified-chain cache, BearSSL's SHA-256", TLS_EC_OPENSSL,
	 1, 0, 1, 0, 1},
	{"default", "OpenSSL EC, P-256 + verified-chain cache, libcrypto's SHA-256 (default)",
	 TLS_EC_OPENSSL, 1, 0, 1, 0, 0},
	{"resumed", "resumed session (identity kept)", TLS_EC_OPENSSL, 1, 1, 1, 1, 0},
};
#define NCONFIGS (sizeof configs / sizeof configs[0])

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200, rounds = argc > 2 ? atoi(argv[2]) : 5;
	const char *only = argc > 3 ? argv[3] : NULL;
	struct tls_credentials cr;
	struct config_trust_bundle b;
	const br_hash_class *sha256;
	br_tls_prf_impl prf_sha256;
	char err[256];
	SSL_CTX *ctx;
	double base = 0, v;
	size_t i, matched = 0;

	if (n < 1 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: tls_bench [N] [ROUNDS (1-64)] [CONFIG]\n");
		return 2;
	}
	for (i = 0; i < NCONFIGS; i++)
		matched += only == NULL || strcmp(only, configs[i].name) == 0;
	if (matched == 0) {
		fprintf(stderr, "tls_bench: no configuration \"%s\"; one of:", only);
		for (i = 0; i < NCONFIGS; i++)
			fprintf(stderr, " %s", configs[i].name);
		fprintf(stderr, "\n");
		return 2;
	}
	memset(&b, 0, sizeof b);
	snprintf(b.trust_domain, sizeof b.trust_domain, "cluster.local");
	snprintf(b.roots, sizeof b.roots, PKI "/ca.pem");
	if (tls_credentials_load(&cr, PKI "/gateway-chain.pem", PKI "/gateway.key", &b, 1, err,
				 sizeof err) != 0) {
		fprintf(stderr, "tls_bench: %s (run tests/pki/gen.sh build/pki)\n", err);
		return 1;
	}
	sha256 = cr.impl.sha256;
	prf_sha256 = cr.impl.prf_sha256;
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256");
	SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_use_certificate_file(ctx, PKI "/frontend.pem", SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, PKI "/frontend.key", SSL_FILETYPE_PEM) != 1)
		return 1;

	printf("Server CPU per mTLS handshake (P-256 certificates, client offers X25519:P-256), "
	       "median of %d x %d, µs:\n\n", rounds, n);
	printf("| configuration | µs | vs BearSSL |\n|---|---|---|\n");
	for (i = 0; i < NCONFIGS; i++) {
		const struct bench_config *bc = &configs[i];

		if (only != NULL && strcmp(only, bc->name) != 0)
			continue;
		tls_ec_select(&cr.impl, bc->ec);
		cr.impl.ecdhe_prefer_p256 = bc->prefer_p256;
		tls_credentials_set_caching(&cr, bc->sessions, bc->chains);
		cr.impl.sha256 = bc->bearssl_sha256 ? &br_sha256_vtable : sha256;
		cr.impl.prf_sha256 = bc->bearssl_sha256 ? br_tls12_sha256_prf : prf_sha256;
		v = run(ctx, &cr, n, rounds, bc->resume);
		if (i == 0)
			base = v;
		if (base > 0)
			printf("| %s | %.0f | %.2f× |\n", bc->label, v, base / v);
		else
			printf("| %s | %.0f | – |\n", bc->label, v);
	}
	tls_conn_wipe(&conn);
	tls_credentials_free(&cr);
	SSL_CTX_free(ctx);
	return 0;
}
