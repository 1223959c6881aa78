/* meshgate TLS: BearSSL 0.6 server engine with SPIFFE mutual TLS.
 *
 * Two objects:
 *
 *   struct tls_credentials  loaded at boot / reload (malloc allowed there),
 *                           immutable afterwards, shared read-only by every
 *                           connection: the server chain and key, one trust
 *                           bundle per SPIFFE trust domain, and the BearSSL
 *                           implementations (AES-NI, PCLMUL, ... looked up once).
 *   struct tls_conn         one per connection, caller-allocated (it embeds the
 *                           BearSSL context and its ~33 KB I/O buffer: take it from
 *                           a pool sized at start). No allocation, no I/O, no
 *                           clock reads other than time() at certificate check.
 *
 * Policy (not configurable, on purpose): TLS 1.2 only; ECDHE with
 * AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 (server preference, in that
 * order) for ECDSA or RSA server keys; X25519 and P-256 for key exchange;
 * renegotiation refused; session resumption by session ID that keeps the
 * client identity (tls/cache.h; no tickets); client certificate REQUIRED:
 *   - the end-entity certificate has exactly one URI SAN, a well-formed
 *     spiffe://TRUST_DOMAIN/PATH whose trust domain is configured;
 *   - the chain verifies (br_x509_minimal) to THAT trust domain's roots only;
 *   - every certificate is valid at the current time;
 *   - Extended Key Usage, when present, includes clientAuth (absent = accepted).
 *   - CertificateVerify hashed with one of the hashes the CertificateRequest
 *     listed: the transcript hashes kept once the suite is chosen (SHA-256;
 *     also SHA-384 for a SHA-384 suite, or the SHA-384/512 a client demanded
 *     for our ServerKeyExchange signature). Another is refused.
 *   - then the optional authorize callback of the connection is asked.
 * Every refusal during the handshake sends the matching fatal alert (see
 * enum tls_error) before the connection reports TLS_STATE_FAILED.
 *
 * ------------------------------------------------------------ how to drive it
 * The proxy owns the transport (lwIP). For each accepted TCP connection:
 *
 *   tls_conn_reset(c, creds, authorize_or_NULL, arg);   // also the first init
 *
 * then run this "pump" after every event (data received, data acked by TCP,
 * plaintext consumed by the upstream side, timer):
 *
 *   1. Ciphertext received from the client: n = tls_conn_feed(c, p, len).
 *      n < len means the engine is full: do steps 2-3, then feed the rest.
 *      If steps 2-3 made no progress, keep the rest (do not tcp_recved it)
 *      and retry later: that is backpressure, not an error.
 *   2. Ciphertext to send: while ((p = tls_conn_output(c, &len)) != NULL):
 *      send up to len bytes (tcp_write), then tls_conn_output_ack(c, sent).
 *      tls_conn_output() != NULL is THE test for "bytes pending to send".
 *   3. Plaintext received: while ((p = tls_conn_read(c, &len)) != NULL):
 *      hand it upstream, tls_conn_read_ack(c, consumed). Only when OPEN.
 *   4. Plaintext to send (OPEN only): n = tls_conn_write(c, p, len) copies up
 *      to len bytes (0 = no room now: drain step 2 first); after the last
 *      write of a burst call tls_conn_flush(c), then step 2.
 *   5. The transport saw the peer's FIN: tls_conn_eof(c), then step 2.
 *   6. To end the connection: tls_conn_close(c) (queues close_notify), step 2.
 *
 *   Then look at tls_conn_state(c):
 *     TLS_STATE_HANDSHAKING  keep pumping (the proxy enforces the handshake timeout)
 *     TLS_STATE_OPEN         data flows; tls_conn_peer(c) is the client identity
 *     TLS_STATE_CLOSING      we sent (or queued) close_notify: once
 *                            tls_conn_output() is NULL, close the TCP connection
 *     TLS_STATE_CLOSED       clean end (close_notify exchanged)
 *     TLS_STATE_FAILED       tls_conn_error(c) says why (counter label:
 *                            tls_error_name()); a fatal alert may still be
 *                            pending: drain step 2, THEN close TCP.
 *   In CLOSED and FAILED every call is a harmless no-op except output draining;
 *   errors are sticky until tls_conn_reset(). When the pool slot is released,
 *   call tls_conn_wipe(c) (erases session keys).
 *
 * Cost (server CPU per mTLS handshake, P-256 server key and client cert,
 * measured in process by `make bench-tls`, tests/bench/RESULTS.md): ~1.6 ms
 * with BearSSL's own EC code; ~0.2 ms with the defaults (OpenSSL's P-256
 * behind BearSSL's vtables, tls/ec.h; libcrypto's SHA-256, tls/hash.h;
 * BearSSL built with -O2 and a 3-slot suite table, tests/unit/tls_build.mk;
 * P-256 preferred for ECDHE; verified-chain cache); ~21 µs for a resumed
 * session. Of the ~0.2 ms, about 70% is libcrypto's P-256 arithmetic
 * (CertificateVerify check, ECDH, signature, key generation) and 20%
 * BearSSL's handshake interpreter (perf, December 2026).
 * sizeof(struct tls_conn) is ~47 KB (33 KB of it the BearSSL I/O buffer,
 * 4 KB the client certificate); an idle connection touches fewer pages.
 *
 * Threading: a tls_conn is used by one thread at a time. Credentials are
 * read-only after load except their caches and seed generator (tls/cache.h),
 * which every handshake writes: one set of credentials serves one thread
 * (meshgate runs a single polling loop). */
#ifndef MESHGATE_TLS_H
#define MESHGATE_TLS_H
#include <stddef.h>
#include <stdint.h>
#include <bearssl.h>

#include "appliance/config.h"
#include "tls/cache.h"
#include "tls/ec.h"
#include "tls/gcm.h"
#include "tls/hash.h"
#include "tls/x509.h"

/* Limits, with the reason beside each. */
#define TLS_MAX_CLIENT_CERT 4096    /* client end-entity certificate is buffered whole
				     * (its trust domain picks the anchors before BearSSL
				     * sees it); SPIFFE certs are ~0.6-1.5 KB */
#define TLS_MAX_CLIENT_CHAIN 8      /* certificates in the client chain */
#define TLS_MAX_TRUST_DOMAINS CONFIG_MAX_TRUST_BUNDLES

/* Why a connection failed. Values are stable; names are counter labels. */
enum tls_error {
	TLS_OK = 0,                 /* no error (open, or cleanly closed) */
	TLS_ERR_NO_CLIENT_CERT,     /* client sent no certificate        -> alert 40 handshake_failure */
	TLS_ERR_UNKNOWN_CA,         /* chain does not verify to the domain's roots -> 48 unknown_ca */
	TLS_ERR_CERT_EXPIRED,       /* a certificate is past notAfter    -> 45 certificate_expired */
	TLS_ERR_CERT_NOT_YET_VALID, /* end-entity before notBefore       -> 45 certificate_expired */
	TLS_ERR_BAD_CERT,           /* malformed certificate, bad signature, bad key usage -> 42 */
	TLS_ERR_NO_SPIFFE_ID,       /* no URI SAN, or the URI is not spiffe:// -> 42 bad_certificate */
	TLS_ERR_BAD_SPIFFE_ID,      /* spiffe:// URI that breaks the SPIFFE-ID rules -> 42 */
	TLS_ERR_MULTIPLE_URI_SANS,  /* more than one URI SAN             -> 42 bad_certificate */
	TLS_ERR_UNKNOWN_TRUST_DOMAIN,  /* trust domain not configured    -> 48 unknown_ca */
	TLS_ERR_EKU_NOT_CLIENT_AUTH,   /* EKU present without clientAuth -> 43 unsupported_certificate */
	TLS_ERR_ACCESS_DENIED,      /* authorize callback refused        -> 49 access_denied */
	TLS_ERR_UNSUPPORTED_VERSION,   /* client cannot do TLS 1.2       -> 70 protocol_version */
	TLS_ERR_NO_SHARED_CIPHER,   /* no common suite / curve           -> 40 handshake_failure */
	TLS_ERR_PROTOCOL,           /* anything else malformed, e.g. plaintext HTTP on the TLS port
				     * -> 10 unexpected_message (or BearSSL's own alert) */
	TLS_ERR_PEER_ALERT,         /* the client sent a fatal alert (tls_conn_alerts()) */
	TLS_ERR_CLOSED_BY_PEER,     /* transport EOF without close_notify */
	TLS_ERR_INTERNAL,           /* RNG failure, bad credentials: a bug or a boot problem */
	TLS_ERR_COUNT
};

/* Stable snake_case name: "ok", "no_client_cert", ... "internal". */
const char *tls_error_name(enum tls_error err);

enum tls_state {
	TLS_STATE_HANDSHAKING,
	TLS_STATE_OPEN,
	TLS_STATE_CLOSING,
	TLS_STATE_CLOSED,
	TLS_STATE_FAILED,
};

const char *tls_state_name(enum tls_state st);

/* The verified client identity. */
struct tls_peer {
	char spiffe_id[TLS_SPIFFE_MAX_ID + 1];      /* "spiffe://cluster.local/ns/prod/sa/frontend" */
	char trust_domain[TLS_SPIFFE_MAX_TRUST_DOMAIN + 1];   /* "cluster.local" */
	char namespace_[TLS_SPIFFE_MAX_NAME + 1];   /* "prod"; "" unless the path is /ns/NS/sa/SA */
	char service_account[TLS_SPIFFE_MAX_NAME + 1];        /* "frontend"; "" likewise */
	int64_t not_after;          /* end-entity notAfter, Unix seconds */
	int trust_domain_index;     /* index in the credentials' trust bundles */
};

/* Istio principal: the SPIFFE ID without "spiffe://". */
static inline const char *tls_peer_principal(const struct tls_peer *p)
{
	return p->spiffe_id + 9;
}

/* Authorization hook, called once the client chain is verified, before the
 * handshake finishes. Return 0 to accept; non-zero refuses the handshake with
 * TLS_ERR_ACCESS_DENIED (alert access_denied). Must not block. */
typedef int (*tls_authorize_fn)(void *arg, const struct tls_peer *peer);

/* ------------------------------------------------------------ credentials */

/* BearSSL implementations, looked up once (the *_get functions run CPUID). */
struct tls_impls {
	const br_block_ctr_class *aes_ctr;
	br_ghash ghash;
	br_chacha20_run chacha20;
	br_poly1305_run poly1305;
	const br_ec_impl *ec;       /* all curves: signatures, chain validation */
	br_ec_impl ec_ecdhe;        /* same code, curves limited to X25519 + P-256 */
	br_ecdsa_sign ecdsa_sign;
	br_ecdsa_vrfy ecdsa_vrfy;
	br_rsa_private rsa_private;
	br_rsa_pkcs1_sign rsa_sign;
	br_rsa_pkcs1_vrfy rsa_vrfy;
	/* SHA-256 for the handshake transcript, the engine's DRBG, chain
	 * validation and the chain cache key, and the TLS 1.2 PRF built on it:
	 * libcrypto's (tls/hash.h); BearSSL's br_sha256_vtable and
	 * br_tls12_sha256_prf are drop-in replacements. */
	const br_hash_class *sha256;
	br_tls_prf_impl prf_sha256;
	enum tls_ec_backend ec_backend;     /* who does ec/ecdsa_* (tls/ec.h) */
	/* ECDHE curve when the client offers both (BearSSL alone would always
	 * take X25519): the cheaper one with this backend, by measurement.
	 * OpenSSL: P-256 keygen+ECDH ~60 µs < BearSSL's X25519 ~210 µs;
	 * BearSSL: X25519 ~210 µs < its P-256 ~660 µs. */
	int ecdhe_prefer_p256;
	/* AES-GCM records: tls_gcm_*_vtable (large records by libcrypto,
	 * tls/gcm.h); BearSSL's br_sslrec_*_gcm_vtable are drop-in
	 * replacements (tests). */
	const br_sslrec_in_gcm_class *gcm_in;
	const br_sslrec_out_gcm_class *gcm_out;
};

struct tls_trust_domain {
	char name[CONFIG_MAX_TRUST_DOMAIN];
	char roots_path[CONFIG_MAX_PATH];
	br_x509_trust_anchor *anchors;
	size_t nanchors;
};

struct tls_credentials {
	br_x509_certificate *chain;     /* server chain, end-entity first */
	size_t chain_len;
	int key_type;                   /* BR_KEYTYPE_EC or BR_KEYTYPE_RSA */
	br_skey_decoder_context *key;   /* holds the private key; wiped on free */
	struct tls_trust_domain domains[TLS_MAX_TRUST_DOMAINS];
	int ndomains;
	br_x509_trust_anchor *all_anchors;  /* every domain's roots: CA names sent in
					     * CertificateRequest (shallow copies) */
	size_t nall_anchors;
	struct tls_impls impl;
	int64_t not_after;              /* server certificate notAfter, for status */
	struct tls_ec_openssl_key *ec_sign_key;  /* the EC private key as libcrypto's
						  * object (tls/ec.h), used when
						  * impl.ec_backend is OpenSSL; may be NULL */
	struct tls_cache *cache;        /* sessions + verified chains (tls/cache.h);
					 * mutable, written by handshakes */
};

/* Loads the server identity (PEM chain: end-entity first, any intermediates
 * after; PEM key: "EC PRIVATE KEY", "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE
 * KEY", unencrypted) and one trust bundle per entry of `bundles` (PEM file of
 * root certificates for that trust domain). `cr` is caller-allocated.
 * Returns 0, or -1 with a one-line reason in err naming the file, e.g.
 * "/etc/mg/key.pem: private key does not match certificate /etc/mg/chain.pem".
 * On failure nothing is left to free. Trust domain names must be valid SPIFFE
 * trust domains and unique. */
int tls_credentials_load(struct tls_credentials *cr, const char *chain_path, const char *key_path,
			 const struct config_trust_bundle *bundles, int nbundles,
			 char *err, size_t errlen);

/* Switches the EC and ECDSA code of loaded credentials (tls/ec.h); the
 * build's default is applied at load. Connections reset afterwards use it.
 * Falls back to BearSSL when libcrypto cannot provide the curves. */
void tls_ec_select(struct tls_impls *im, enum tls_ec_backend backend);

/* Session resumption (with the client identity) and the verified-chain
 * cache, both on after load (tls/cache.h). Turn them off for credentials
 * shared by several threads, or to measure without them. */
void tls_credentials_set_caching(struct tls_credentials *cr, int sessions, int chains);

/* Releases everything and wipes the private key. Safe on a zeroed struct. */
void tls_credentials_free(struct tls_credentials *cr);

/* Index of trust domain `name` (exact, case-sensitive), or -1. */
int tls_credentials_find_domain(const struct tls_credentials *cr, const char *name, size_t len);

/* ------------------------------------------------------------ connection */

/* Internal: the br_x509_class wrapper (vtable first, BearSSL style). */
struct tls_x509_wrap {
	const br_x509_class *vtable;
	unsigned cert_index;        /* certificates seen in this chain */
	int minimal_started;
	int ee_overflow;
	enum tls_error err;         /* first refusal reason, TLS_OK if none */
	int bearssl_x509_err;       /* BR_ERR_X509_* from br_x509_minimal, for diagnostics */
	struct tls_x509_info ee_info;
	int cached;                 /* chain verified earlier: br_x509_minimal skipped */
	unsigned cached_usages;
	br_x509_pkey cached_pkey;   /* points into cached_q */
	unsigned char cached_q[133];
	unsigned char ee_hash[32];  /* SHA-256 of the end-entity certificate */
	size_t ee_len;
	uint8_t ee[TLS_MAX_CLIENT_CERT];
	/* Last, and initialised only when a chain is walked (not on a cache
	 * hit): an idle connection does not keep its pages resident. */
	br_x509_minimal_context minimal;
};

/* Internal: wraps the server policy (vtable first) to steer the ECDHE curve. */
struct tls_policy_wrap {
	const br_ssl_server_policy_class *vtable;
	const br_ssl_server_policy_class **inner;
};

struct tls_conn {
	br_ssl_server_context sc;
	struct tls_policy_wrap policy;
	struct tls_x509_wrap x509;
	const struct tls_credentials *cred;
	tls_authorize_fn authorize;
	void *authorize_arg;
	int64_t fixed_time;         /* 0 = time(NULL); else tests' clock */
	struct tls_peer peer;
	int peer_valid;
	int handshake_done;
	int close_requested;
	int finished;               /* engine closed and classified */
	enum tls_error error;
	int resumed;                /* abbreviated handshake from the session cache */
	const br_ssl_session_cache_class *session_cache_vtable;   /* BearSSL's cache context */
	int alert_sent;             /* fatal alert description we sent, -1 = none */
	int alert_received;         /* fatal alert description received, -1 = none */
	int bearssl_err;            /* br_ssl_engine_last_error() at closure */
	int first_byte;             /* first byte ever received, -1 before: tells
				     * plaintext protocols from TLS */
	uint8_t alert_rec[7];       /* alert record we emit ourselves (plaintext) */
	uint8_t alert_len, alert_off;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
	/* AES-GCM record state for tls_gcm_{in,out}_vtable (tls/gcm.h) */
	struct tls_gcm_dir gcm_in, gcm_out;
};

/* Prepares `c` for a new connection (first use and every reuse). `cred` must
 * outlive the connection; `authorize` may be NULL (accept every verified
 * client). Never fails; a BearSSL setup failure (RNG) shows as
 * TLS_STATE_FAILED with TLS_ERR_INTERNAL. */
void tls_conn_reset(struct tls_conn *c, const struct tls_credentials *cred,
		    tls_authorize_fn authorize, void *authorize_arg);

/* Admin listener only: after tls_conn_reset(), let a client without a
 * usable certificate finish the handshake (BR_OPT_TOLERATE_NO_CLIENT_AUTH):
 * tls_conn_peer() is then NULL. A certificate that is sent is checked
 * exactly as above; one that fails leaves the peer unauthenticated (BearSSL
 * carries on without client auth) with the reason in c->x509.err, for the
 * application to refuse. */
void tls_conn_set_client_cert_optional(struct tls_conn *c);

/* Tests only: validate certificates at this Unix time instead of time(NULL).
 * Call after tls_conn_reset(). 0 restores the real clock. */
void tls_conn_set_time(struct tls_conn *c, int64_t unix_seconds);

/* Copies up to len received ciphertext bytes into the engine; returns how
 * many were taken (0 when the engine cannot take input now, or is finished). */
size_t tls_conn_feed(struct tls_conn *c, const void *data, size_t len);

/* Ciphertext to send: pointer and length, or NULL (*len = 0) when nothing is
 * pending. Valid until the next call on `c`. Ack what was actually sent. */
const unsigned char *tls_conn_output(struct tls_conn *c, size_t *len);
void tls_conn_output_ack(struct tls_conn *c, size_t len);

/* Received plaintext: pointer and length, or NULL. Ack what was consumed. */
const unsigned char *tls_conn_read(struct tls_conn *c, size_t *len);
void tls_conn_read_ack(struct tls_conn *c, size_t len);

/* Copies up to len plaintext bytes for sending; returns how many were taken
 * (0 when not OPEN or the record buffer is full: drain output first). */
size_t tls_conn_write(struct tls_conn *c, const void *data, size_t len);
/* Closes the current record so that it appears in tls_conn_output(). */
void tls_conn_flush(struct tls_conn *c);

/* Graceful close: queues close_notify (state becomes CLOSING). */
void tls_conn_close(struct tls_conn *c);

/* The transport reached EOF. Before a close_notify this is a truncation:
 * TLS_STATE_FAILED with TLS_ERR_CLOSED_BY_PEER. */
void tls_conn_eof(struct tls_conn *c);

enum tls_state tls_conn_state(const struct tls_conn *c);
enum tls_error tls_conn_error(const struct tls_conn *c);

/* The verified client identity once the handshake completed (OPEN and after),
 * else NULL. Also non-NULL after TLS_ERR_ACCESS_DENIED, for logs only: the
 * authorize callback runs before the client proved possession of the key
 * (CertificateVerify), so that identity is a claim. Valid until
 * tls_conn_reset()/tls_conn_wipe(). */
const struct tls_peer *tls_conn_peer(const struct tls_conn *c);

/* Diagnostics for logs: alert sent / received (-1 if none) and the raw
 * BearSSL error code (br_ssl_engine_last_error, BR_ERR_X509_* in x509_err). */
void tls_conn_alerts(const struct tls_conn *c, int *sent, int *received);
int tls_conn_bearssl_error(const struct tls_conn *c, int *x509_err);

/* 1 if the handshake resumed a cached session (identity restored from the
 * cache, tls/cache.h), 0 for a full handshake. */
int tls_conn_resumed(const struct tls_conn *c);

/* Negotiated cipher suite (e.g. 0xC02B), 0 before the handshake. */
unsigned tls_conn_cipher_suite(const struct tls_conn *c);

/* Erases keys and buffers (explicit_bzero). The struct must be reset before reuse. */
void tls_conn_wipe(struct tls_conn *c);

/* ------------------------------------------------------------ demo PKI */

/* Creates in `dir` (created 0700 if missing), only for files that are
 * missing: ca.pem (+ca.key), gateway.pem (chain: gateway then CA) and
 * gateway.key (SAN DNS localhost, meshgate.demo, IP 198.18.3.2, URI
 * spiffe://TD/ns/meshgate/sa/gateway; EKU serverAuth+clientAuth),
 * client.pem/.key (spiffe://TD/ns/demo/sa/client), intruder.pem/.key
 * (spiffe://TD/ns/demo/sa/intruder). EC P-256, keys mode 0600. If the CA
 * is missing, everything is regenerated (old leaves would not chain).
 * Returns 0, or -1 with the reason in err. Uses OpenSSL's libcrypto. */
int tls_demo_pki_ensure(const char *dir, const char *trust_domain, char *err, size_t errlen);

/* The server name (SNI) the client asked for, "" when it sent none. Known
 * once the ClientHello is in: from the authorize callback on. */
static inline const char *tls_conn_server_name(const struct tls_conn *c)
{
	return br_ssl_engine_get_server_name(&c->sc.eng);
}

#endif
