/* SHA-256 and the TLS 1.2 PRF with libcrypto's SHA-256. See tls/hash.h. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "tls/hash.h"

#include <stdint.h>
#include <string.h>

#include <openssl/sha.h>

struct sha256_openssl_context {
	const br_hash_class *vtable;    /* first, as BearSSL requires */
	SHA256_CTX c;
};

_Static_assert(sizeof(struct sha256_openssl_context) <= sizeof(br_hash_compat_context),
	       "BearSSL keeps hash contexts in br_hash_compat_context");

static void sha256_init(const br_hash_class **ctx)
{
	struct sha256_openssl_context *h = (struct sha256_openssl_context *)(void *)ctx;

	h->vtable = &tls_sha256_openssl_vtable;
	SHA256_Init(&h->c);
}

static void sha256_update(const br_hash_class **ctx, const void *data, size_t len)
{
	struct sha256_openssl_context *h = (struct sha256_openssl_context *)(void *)ctx;

	if (len > 0)
		SHA256_Update(&h->c, data, len);
}

static void sha256_out(const br_hash_class *const *ctx, void *dst)
{
	const struct sha256_openssl_context *h = (const struct sha256_openssl_context *)(const void *)ctx;
	SHA256_CTX copy = h->c;         /* SHA256_Final consumes (and wipes) its context */

	SHA256_Final(dst, &copy);
}

static uint64_t sha256_state(const br_hash_class *const *ctx, void *dst)
{
	const struct sha256_openssl_context *h = (const struct sha256_openssl_context *)(const void *)ctx;
	unsigned char *p = dst;

	for (int i = 0; i < 8; i++) {
		uint32_t w = h->c.h[i];

		p[4 * i] = (unsigned char)(w >> 24);
		p[4 * i + 1] = (unsigned char)(w >> 16);
		p[4 * i + 2] = (unsigned char)(w >> 8);
		p[4 * i + 3] = (unsigned char)w;
	}
	/* OpenSSL counts bits in two 32-bit halves. */
	return ((uint64_t)h->c.Nh << 29) | (h->c.Nl >> 3);
}

static void sha256_set_state(const br_hash_class **ctx, const void *stb, uint64_t count)
{
	struct sha256_openssl_context *h = (struct sha256_openssl_context *)(void *)ctx;
	const unsigned char *p = stb;
	uint64_t bits = count << 3;

	memset(&h->c, 0, sizeof h->c);
	for (int i = 0; i < 8; i++)
		h->c.h[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
			    (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	h->c.Nl = (SHA_LONG)bits;
	h->c.Nh = (SHA_LONG)(bits >> 32);
	h->c.md_len = SHA256_DIGEST_LENGTH;
}

const br_hash_class tls_sha256_openssl_vtable = {
	sizeof(struct sha256_openssl_context),
	BR_HASHDESC_ID(br_sha256_ID) | BR_HASHDESC_OUT(32) | BR_HASHDESC_STATE(32) |
		BR_HASHDESC_LBLEN(6) | BR_HASHDESC_MD_PADDING | BR_HASHDESC_MD_PADDING_BE,
	sha256_init,
	sha256_update,
	sha256_out,
	sha256_state,
	sha256_set_state,
};

/* P_SHA256(secret, label || seed), RFC 5246 section 5:
 *   A(0) = label || seed, A(i) = HMAC(secret, A(i-1)),
 *   output = HMAC(secret, A(1) || label || seed) || HMAC(secret, A(2) || ...) ... */
void tls_prf_sha256_openssl(void *dst, size_t len, const void *secret, size_t secret_len,
			    const char *label, size_t seed_num, const br_tls_prf_seed_chunk *seed)
{
	br_hmac_key_context kc;
	br_hmac_context hc;
	unsigned char a[32], block[32];
	unsigned char *out = dst;
	size_t label_len = strlen(label);

	br_hmac_key_init(&kc, &tls_sha256_openssl_vtable, secret, secret_len);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, label, label_len);
	for (size_t i = 0; i < seed_num; i++)
		br_hmac_update(&hc, seed[i].data, seed[i].len);
	br_hmac_out(&hc, a);                            /* A(1) */
	while (len > 0) {
		size_t n = len < sizeof block ? len : sizeof block;

		br_hmac_init(&hc, &kc, 0);
		br_hmac_update(&hc, a, sizeof a);
		br_hmac_update(&hc, label, label_len);
		for (size_t i = 0; i < seed_num; i++)
			br_hmac_update(&hc, seed[i].data, seed[i].len);
		br_hmac_out(&hc, block);
		memcpy(out, block, n);
		out += n;
		len -= n;
		if (len == 0)
			break;
		br_hmac_init(&hc, &kc, 0);
		br_hmac_update(&hc, a, sizeof a);
		br_hmac_out(&hc, a);                    /* A(i+1) */
	}
	explicit_bzero(&kc, sizeof kc);
	explicit_bzero(&hc, sizeof hc);
	explicit_bzero(a, sizeof a);
	explicit_bzero(block, sizeof block);
}
