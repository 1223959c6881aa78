/* AES-GCM TLS 1.2 records: BearSSL's record code for small records,
 * OpenSSL's libcrypto for large ones.
 *
 * BearSSL encrypts a record with AES-CTR (AES-NI) and, separately, GHASH
 * (PCLMUL): ~3.7 µs per 16 KB record here, a quarter of the appliance's CPU
 * in a bulk transfer. libcrypto's EVP AES-GCM runs both in one stitched pass
 * (~2.3 µs), but its per-call overhead makes a 100-byte record cost 0.20
 * instead of 0.12 µs (tests/bench/RESULTS.md). These classes take records
 * of TLS_GCM_EVP_MIN bytes and more to libcrypto and leave the others to
 * BearSSL's own br_sslrec_{in,out}_gcm_vtable, which keeps the keys and the
 * sequence number for both: the record format, nonce (4-byte implicit IV,
 * the sequence number as explicit nonce) and additional data are those of
 * RFC 5288, so the two are interchangeable record by record.
 *
 * The classes only serve engines inside a struct tls_conn (tls/tls.h):
 * their state lives in its gcm_in / gcm_out, found from the engine's record
 * context. libcrypto's context is allocated on the first large record of a
 * direction (idle and small-request connections never pay for it) and
 * freed by tls_gcm_release (tls_conn_wipe). When it cannot be had, the
 * record goes to BearSSL. */
#ifndef MESHGATE_TLS_GCM_H
#define MESHGATE_TLS_GCM_H
#include <stddef.h>
#include <bearssl.h>

/* Plaintext bytes from which a record goes to libcrypto (measured:
 * tests/bench/RESULTS.md). */
#define TLS_GCM_EVP_MIN 1024

struct tls_gcm_dir {
	br_sslrec_gcm_context bear;     /* keys, implicit IV, sequence number */
	void *evp;                      /* EVP_CIPHER_CTX, NULL until needed */
	int evp_keyed;                  /* evp holds this connection's key */
	unsigned char key[32];
	size_t key_len;
	unsigned long evp_records;      /* records libcrypto did under these keys (tests) */
};

extern const br_sslrec_in_gcm_class tls_gcm_in_vtable;
extern const br_sslrec_out_gcm_class tls_gcm_out_vtable;

/* Frees libcrypto's context and wipes the keys. */
void tls_gcm_release(struct tls_gcm_dir *d);

#endif
