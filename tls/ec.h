/* Elliptic-curve arithmetic for the TLS engine: which code does the curve work.
 *
 * BearSSL 0.6 runs the TLS protocol; its EC and ECDSA code comes in through
 * vtables (br_ssl_engine_set_ec, br_ssl_engine_set_ecdsa,
 * br_x509_minimal_set_ecdsa, the server key's br_ecdsa_sign). Two backends fill
 * them:
 *
 *   TLS_EC_OPENSSL  P-256, P-384 and P-521 point multiplication and ECDSA from
 *                   OpenSSL's libcrypto (constant-time nistz256 assembly for
 *                   P-256 on x86-64). Measured here: ECDSA sign ~20 µs, verify
 *                   ~65 µs, ECDH ~50 µs, against BearSSL's 320 / 714 / 405 µs.
 *                   X25519 and any other curve stay BearSSL's.
 *   TLS_EC_BEARSSL  BearSSL's own portable code (br_ec_get_default and the
 *                   matching ECDSA), the reference the other is tested against.
 *
 * The build picks the default (`make TLS_EC=bearssl` for BearSSL; OpenSSL
 * otherwise); tests select either at run time with tls_ec_select().
 *
 * Contract kept by the OpenSSL functions, the same as BearSSL's:
 *   - points are uncompressed (0x04 || X || Y) of exactly the curve's length;
 *     anything else, or a point not on the curve, fails (returns 0);
 *   - scalars are big-endian; signatures use the "asn1" (DER) form, and a
 *     verify accepts only the canonical DER encoding;
 *   - failures leave nothing on OpenSSL's error queue.
 * libcrypto allocates inside these calls (BN contexts, temporary points): that
 * is heap use on the handshake path, bounded per operation, never retained.
 * The P-256/P-384/P-521 groups are built once per process (pthread_once) and
 * read-only afterwards. */
#ifndef MESHGATE_TLS_EC_H
#define MESHGATE_TLS_EC_H
#include <stddef.h>
#include <stdint.h>
#include <bearssl.h>

enum tls_ec_backend {
	TLS_EC_OPENSSL,
	TLS_EC_BEARSSL,
};

#ifdef TLS_EC_DEFAULT_BEARSSL
#define TLS_EC_DEFAULT TLS_EC_BEARSSL
#else
#define TLS_EC_DEFAULT TLS_EC_OPENSSL
#endif

/* "openssl" / "bearssl". */
const char *tls_ec_backend_name(enum tls_ec_backend b);

/* 1 if libcrypto's groups could be set up (else the OpenSSL backend is not
 * offered and tls_ec_select falls back to BearSSL). */
int tls_ec_openssl_available(void);

/* The OpenSSL-backed br_ec_impl: supported_curves = P-256, P-384, P-521 and
 * Curve25519; generator/order/xoff/muladd and Curve25519 are BearSSL's. */
const br_ec_impl *tls_ec_openssl_impl(void);

/* br_ecdsa_sign / br_ecdsa_vrfy compatible ("asn1" signatures). Curves that
 * libcrypto does not handle here go to BearSSL's i31 code with `impl`. */
size_t tls_ecdsa_openssl_sign(const br_ec_impl *impl, const br_hash_class *hf,
			      const void *hash_value, const br_ec_private_key *sk, void *sig);
uint32_t tls_ecdsa_openssl_vrfy(const br_ec_impl *impl, const void *hash, size_t hash_len,
				const br_ec_public_key *pk, const void *sig, size_t sig_len);

/* The server's private key as a libcrypto key object, built once when the
 * credentials are loaded, so that the ServerKeyExchange signature of each
 * handshake skips the key setup of tls_ecdsa_openssl_sign (~2.5 of ~28 µs).
 * Owned by the credentials; freed (private scalar cleared) with
 * tls_ec_openssl_key_free. New returns NULL for a curve libcrypto does not
 * handle here, or when out of memory: callers then use the br_ecdsa_sign path. */
struct tls_ec_openssl_key;
struct tls_ec_openssl_key *tls_ec_openssl_key_new(const br_ec_private_key *sk);
void tls_ec_openssl_key_free(struct tls_ec_openssl_key *key);
/* ECDSA signature ("asn1" form) of hash[0..hash_len) into sig (sig_max
 * bytes, at least 2*flen+9); returns its length, 0 on failure. */
size_t tls_ecdsa_openssl_sign_key(const struct tls_ec_openssl_key *key, const void *hash,
				  size_t hash_len, void *sig, size_t sig_max);

#endif
