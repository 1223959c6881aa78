/* SHA-256 for the TLS engine: which code hashes.
 *
 * BearSSL 0.6 computes SHA-256 in portable C (~180 ns per 64-byte block
 * here). A full mTLS handshake runs ~180 SHA-256 blocks: the handshake
 * transcript, the TLS 1.2 PRF (master secret, keys, Finished), the HMAC-DRBG
 * of the engine and of the credentials (tls/cache.h), the hash of the client
 * certificate for the chain cache. OpenSSL's libcrypto uses the SHA
 * extensions of the CPU when present (~32 ns per block here) and tuned
 * assembly otherwise; this file puts it behind BearSSL's br_hash_class so
 * every one of those users takes it.
 *
 * Contract, the same as br_sha256_vtable's, so the two are interchangeable
 * (tests/unit/test_tls_hash.c compares them):
 *   - desc: br_sha256_ID, 32-byte output, 32-byte state, MD padding (BE);
 *   - state() writes the 8 chaining words big-endian and returns the byte
 *     count; set_state() takes the same (count a multiple of 64, as every
 *     BearSSL caller does: HMAC keys, br_multihash);
 *   - out() leaves the context usable (more data may follow);
 *   - the context fits in br_hash_compat_context (BearSSL's HMAC and
 *     br_multihash keep hash contexts in that union).
 * No allocation; libcrypto's low-level SHA256_* functions (deprecated in
 * OpenSSL 3 in favour of EVP, whose per-call dispatch costs more than a
 * block on these short inputs) remain in 3.0, which Debian 12 ships. */
#ifndef MESHGATE_TLS_HASH_H
#define MESHGATE_TLS_HASH_H
#include <stddef.h>
#include <bearssl.h>

/* SHA-256 by libcrypto, as a BearSSL hash class. */
extern const br_hash_class tls_sha256_openssl_vtable;

/* The TLS 1.2 PRF with SHA-256 (RFC 5246 section 5), computed with
 * tls_sha256_openssl_vtable; same results as BearSSL's br_tls12_sha256_prf. */
void tls_prf_sha256_openssl(void *dst, size_t len, const void *secret, size_t secret_len,
			    const char *label, size_t seed_num, const br_tls_prf_seed_chunk *seed);

#endif
