/* Handshake caches of one set of credentials: TLS session resumption that
 * keeps the client identity, and verified client certificates.
 *
 * Both live in a `struct tls_cache` allocated with the credentials (boot or
 * reload) and freed (wiped: it holds master secrets) with them, so a reload
 * of the trust bundles or the server identity forgets everything cached
 * under the old ones. Fixed size, direct-mapped: a colliding entry simply
 * replaces the older one (the cost is a full handshake, never a wrong answer).
 *
 * Sessions (BearSSL's own cache forgets who the client was, so a resumed
 * session would have no identity): an entry is written after a full
 * handshake whose client chain verified and whose CertificateVerify checked;
 * it holds the session parameters and the SPIFFE ID. On resumption the
 * identity is restored and the connection's authorize callback is asked
 * again (policy may have changed); a refusal there turns the resumption into
 * a full handshake, which is then refused with its alert. Lifetime:
 * TLS_SESSION_LIFETIME seconds, never past the client certificate's notAfter.
 *
 * Verified chains: keyed by the SHA-256 of the end-entity certificate (its
 * bytes include the issuer's signature, so the same bytes verified once to a
 * configured root verify again) plus the trust domain; holds the end-entity
 * public key. A hit skips br_x509_minimal (chain signatures, parsing of the
 * intermediates); everything else is still done per handshake: our own
 * parse of the end-entity certificate (SPIFFE ID, dates, EKU), the authorize
 * callback, and the CertificateVerify signature, which proves possession of
 * the key on every handshake. Lifetime: TLS_CHAIN_CACHE_LIFETIME seconds
 * (bounds how long an intermediate that expired since is still trusted),
 * never past the end-entity notAfter. EC keys only (RSA clients are verified
 * in full every time).
 *
 * Threading: handshakes write the caches and the seed generator below, so
 * one set of credentials serves one thread (meshgate's single polling loop).
 * tls_credentials_set_caching() turns the two caches off (measurements,
 * tests); the seed generator stays. */
#ifndef MESHGATE_TLS_CACHE_H
#define MESHGATE_TLS_CACHE_H
#include <stdint.h>
#include <bearssl.h>

#include "tls/x509.h"

#define TLS_SESSION_CACHE_ENTRIES 2048  /* ~1.1 KB each (the SPIFFE ID dominates);
					 * pages are touched only as used */
#define TLS_SESSION_LIFETIME 300        /* seconds, like nginx's default */
#define TLS_CHAIN_CACHE_ENTRIES 512     /* distinct client certificates kept */
#define TLS_CHAIN_CACHE_LIFETIME 300    /* seconds */

struct tls_session_entry {
	int64_t expires;                /* Unix seconds; 0 = empty */
	unsigned char id[32];
	uint16_t version, cipher_suite;
	unsigned char master_secret[48];
	int trust_domain_index;
	int64_t not_after;              /* client certificate notAfter */
	char spiffe_id[TLS_SPIFFE_MAX_ID + 1];
};

struct tls_chain_entry {
	int64_t expires;                /* 0 = empty */
	unsigned char ee_hash[32];
	int trust_domain_index;
	unsigned usages;                /* BR_KEYTYPE_* usages from br_x509_minimal */
	int curve;
	size_t qlen;
	unsigned char q[133];           /* uncompressed point, up to P-521 */
};

struct tls_cache_counters {
	uint64_t session_saved, session_resumed, session_misses, session_refused;
	uint64_t chain_hits, chain_misses, chain_stored;
};

/* Per-connection randomness: BearSSL seeds each engine from the OS
 * (RDRAND or getrandom, ~10 µs here, 3% of a handshake). Instead each
 * connection gets 32 bytes from this HMAC-DRBG, itself seeded from
 * getrandom() at load and reseeded every TLS_DRBG_RESEED connections. */
#define TLS_DRBG_RESEED 4096

struct tls_cache {
	struct tls_cache_counters counters;
	br_hmac_drbg_context drbg;
	unsigned drbg_uses;
	int drbg_ok;
	int sessions_enabled, chains_enabled;
	struct tls_session_entry sessions[TLS_SESSION_CACHE_ENTRIES];
	struct tls_chain_entry chains[TLS_CHAIN_CACHE_ENTRIES];
};

/* BearSSL session cache class used by tls_conn (the context is the
 * `session_cache_vtable` member of struct tls_conn). */
extern const br_ssl_session_cache_class tls_session_cache_vtable;

/* Seeds the DRBG (HMAC with `hash`, SHA-256) from the OS
 * (tls_credentials_load). Returns 0 or -1. */
int tls_cache_seed(struct tls_cache *tc, const br_hash_class *hash);
/* Gives engine `eng` (hashes set, before br_ssl_server_reset) its seed.
 * Returns 0, or -1 (then BearSSL seeds itself from the OS as usual). */
int tls_cache_seed_engine(struct tls_cache *tc, br_ssl_engine_context *eng);

/* Chain cache lookup / insert for the x509 wrapper (tls/conn.c). */
const struct tls_chain_entry *tls_chain_cache_find(struct tls_cache *tc, const unsigned char hash[32],
						   int trust_domain_index, int64_t now);
void tls_chain_cache_store(struct tls_cache *tc, const unsigned char hash[32], int trust_domain_index,
			   const br_x509_pkey *pk, unsigned usages, int64_t now, int64_t ee_not_after);

#endif
