/* BearSSL EC / ECDSA vtables backed by OpenSSL's libcrypto. See tls/ec.h.
 *
 * The EC_KEY / EC_POINT interfaces are deprecated in OpenSSL 3 in favour of
 * EVP_PKEY, but the EVP path costs several times more per operation (provider
 * dispatch, key import) than the arithmetic itself; they remain supported in
 * 3.0, which is what Debian 12 ships. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "tls/ec.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

/* BearSSL's code for what is not delegated (Curve25519, muladd, generator
 * and order tables). br_ec_all_m31 is what br_ec_get_default() returns on
 * this platform; naming it directly avoids the CPUID probe. */
#define EC_BASE (&br_ec_all_m31)

static struct {
	pthread_once_t once;
	EC_GROUP *group[3];         /* P-256, P-384, P-521; NULL if unavailable */
	int ok;
} ossl = {.once = PTHREAD_ONCE_INIT};

static void ossl_init(void)
{
	static const int nids[3] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};

	ossl.ok = 1;
	for (int i = 0; i < 3; i++) {
		ossl.group[i] = EC_GROUP_new_by_curve_name(nids[i]);
		if (ossl.group[i] == NULL)
			ossl.ok = 0;
	}
	ERR_clear_error();
}

/* The libcrypto group for a BearSSL curve id and its field length, or NULL. */
static const EC_GROUP *group_for(int curve, size_t *flen)
{
	int i;

	switch (curve) {
	case BR_EC_secp256r1: i = 0; *flen = 32; break;
	case BR_EC_secp384r1: i = 1; *flen = 48; break;
	case BR_EC_secp521r1: i = 2; *flen = 66; break;
	default: return NULL;
	}
	pthread_once(&ossl.once, ossl_init);
	return ossl.group[i];
}

int tls_ec_openssl_available(void)
{
	pthread_once(&ossl.once, ossl_init);
	return ossl.ok;
}

const char *tls_ec_backend_name(enum tls_ec_backend b)
{
	return b == TLS_EC_OPENSSL ? "openssl" : "bearssl";
}

/* R = k*P (P NULL: the generator); writes the uncompressed point to out
 * (2*flen+1 bytes). Returns 1, or 0 on any failure. */
static int point_mul(const EC_GROUP *g, size_t flen, unsigned char *out, const unsigned char *in,
		     size_t inlen, const unsigned char *k, size_t klen)
{
	BN_CTX *ctx = BN_CTX_new();
	EC_POINT *p = NULL, *r = EC_POINT_new(g);
	BIGNUM *bk = BN_secure_new();
	int ok = 0;

	if (ctx == NULL || r == NULL || bk == NULL || klen == 0 || klen > flen)
		goto out;
	BN_set_flags(bk, BN_FLG_CONSTTIME);
	if (BN_bin2bn(k, (int)klen, bk) == NULL || BN_is_zero(bk))
		goto out;
	if (in != NULL) {
		/* Uncompressed only, exact length; oct2point checks the curve equation. */
		if (inlen != 2 * flen + 1 || in[0] != 0x04)
			goto out;
		p = EC_POINT_new(g);
		if (p == NULL || !EC_POINT_oct2point(g, p, in, inlen, ctx))
			goto out;
		if (!EC_POINT_mul(g, r, NULL, p, bk, ctx))
			goto out;
	} else if (!EC_POINT_mul(g, r, bk, NULL, NULL, ctx)) {
		goto out;
	}
	if (EC_POINT_is_at_infinity(g, r))
		goto out;
	ok = EC_POINT_point2oct(g, r, POINT_CONVERSION_UNCOMPRESSED, out, 2 * flen + 1, ctx) ==
	     2 * flen + 1;
out:
	BN_clear_free(bk);
	EC_POINT_free(p);
	EC_POINT_clear_free(r);
	BN_CTX_free(ctx);
	if (!ok)
		ERR_clear_error();
	return ok;
}

static const unsigned char *ec_generator(int curve, size_t *len)
{
	return EC_BASE->generator(curve, len);
}

static const unsigned char *ec_order(int curve, size_t *len)
{
	return EC_BASE->order(curve, len);
}

static size_t ec_xoff(int curve, size_t *len)
{
	return EC_BASE->xoff(curve, len);
}

static uint32_t ec_mul(unsigned char *G, size_t Glen, const unsigned char *x, size_t xlen, int curve)
{
	size_t flen;
	const EC_GROUP *g = group_for(curve, &flen);
	unsigned char out[2 * 66 + 1];

	if (g == NULL)
		return EC_BASE->mul(G, Glen, x, xlen, curve);
	if (!point_mul(g, flen, out, G, Glen, x, xlen))
		return 0;
	memcpy(G, out, Glen);
	explicit_bzero(out, sizeof out);
	return 1;
}

static size_t ec_mulgen(unsigned char *R, const unsigned char *x, size_t xlen, int curve)
{
	size_t flen;
	const EC_GROUP *g = group_for(curve, &flen);

	if (g == NULL)
		return EC_BASE->mulgen(R, x, xlen, curve);
	return point_mul(g, flen, R, NULL, 0, x, xlen) ? 2 * flen + 1 : 0;
}

static uint32_t ec_muladd(unsigned char *A, const unsigned char *B, size_t len,
			  const unsigned char *x, size_t xlen, const unsigned char *y, size_t ylen,
			  int curve)
{
	return EC_BASE->muladd(A, B, len, x, xlen, y, ylen, curve);
}

static const br_ec_impl ec_openssl = {
	((uint32_t)1 << BR_EC_secp256r1) | ((uint32_t)1 << BR_EC_secp384r1) |
		((uint32_t)1 << BR_EC_secp521r1) | ((uint32_t)1 << BR_EC_curve25519),
	ec_generator,
	ec_order,
	ec_xoff,
	ec_mul,
	ec_mulgen,
	ec_muladd,
};

const br_ec_impl *tls_ec_openssl_impl(void)
{
	return &ec_openssl;
}

/* ------------------------------------------------------------ ECDSA */

size_t tls_ecdsa_openssl_sign(const br_ec_impl *impl, const br_hash_class *hf,
			      const void *hash_value, const br_ec_private_key *sk, void *sig)
{
	size_t flen, hlen = (hf->desc >> BR_HASHDESC_OUT_OFF) & BR_HASHDESC_OUT_MASK;
	const EC_GROUP *g = group_for(sk->curve, &flen);
	EC_KEY *key;
	BIGNUM *d;
	ECDSA_SIG *s = NULL;
	size_t n = 0;
	int len;

	if (g == NULL)
		return br_ecdsa_i31_sign_asn1(impl, hf, hash_value, sk, sig);
	key = EC_KEY_new();
	d = BN_secure_new();
	if (key == NULL || d == NULL || sk->xlen == 0 || sk->xlen > flen ||
	    BN_bin2bn(sk->x, (int)sk->xlen, d) == NULL || EC_KEY_set_group(key, g) != 1 ||
	    EC_KEY_set_private_key(key, d) != 1)
		goto out;
	s = ECDSA_do_sign(hash_value, (int)hlen, key);
	if (s == NULL)
		goto out;
	/* The caller's buffer holds the largest signature of the curve
	 * (BearSSL's contract: 2*flen+9 bytes in asn1 form). */
	len = i2d_ECDSA_SIG(s, NULL);
	if (len > 0 && (size_t)len <= 2 * flen + 9) {
		unsigned char *p = sig;

		if (i2d_ECDSA_SIG(s, &p) == len)
			n = (size_t)len;
	}
out:
	ECDSA_SIG_free(s);
	BN_clear_free(d);
	EC_KEY_free(key);
	if (n == 0)
		ERR_clear_error();
	return n;
}

/* The key object is libcrypto's EC_KEY; the struct name only hides it from
 * headers. */
struct tls_ec_openssl_key *tls_ec_openssl_key_new(const br_ec_private_key *sk)
{
	size_t flen;
	const EC_GROUP *g = group_for(sk->curve, &flen);
	EC_KEY *key;
	BIGNUM *d;

	if (g == NULL || sk->xlen == 0 || sk->xlen > flen)
		return NULL;
	key = EC_KEY_new();
	d = BN_secure_new();
	if (key == NULL || d == NULL || BN_bin2bn(sk->x, (int)sk->xlen, d) == NULL ||
	    EC_KEY_set_group(key, g) != 1 || EC_KEY_set_private_key(key, d) != 1) {
		EC_KEY_free(key);
		key = NULL;
	}
	BN_clear_free(d);
	ERR_clear_error();
	return (struct tls_ec_openssl_key *)key;
}

void tls_ec_openssl_key_free(struct tls_ec_openssl_key *key)
{
	EC_KEY_free((EC_KEY *)key);     /* clears the private scalar */
}

size_t tls_ecdsa_openssl_sign_key(const struct tls_ec_openssl_key *key, const void *hash,
				  size_t hash_len, void *sig, size_t sig_max)
{
	ECDSA_SIG *s;
	size_t n = 0;
	int len;

	if (key == NULL || hash_len == 0 || hash_len > 64)
		return 0;
	/* ECDSA_do_sign takes a non-const key but does not modify it. */
	s = ECDSA_do_sign(hash, (int)hash_len, (EC_KEY *)(uintptr_t)key);
	if (s != NULL) {
		len = i2d_ECDSA_SIG(s, NULL);
		if (len > 0 && (size_t)len <= sig_max) {
			unsigned char *p = sig;

			if (i2d_ECDSA_SIG(s, &p) == len)
				n = (size_t)len;
		}
		ECDSA_SIG_free(s);
	}
	if (n == 0)
		ERR_clear_error();
	return n;
}

uint32_t tls_ecdsa_openssl_vrfy(const br_ec_impl *impl, const void *hash, size_t hash_len,
				const br_ec_public_key *pk, const void *sig, size_t sig_len)
{
	size_t flen;
	const EC_GROUP *g = group_for(pk->curve, &flen);
	const unsigned char *p = sig;
	unsigned char der[2 * 66 + 9];
	unsigned char *q = der;
	EC_KEY *key = NULL;
	EC_POINT *pt = NULL;
	ECDSA_SIG *s = NULL;
	uint32_t ok = 0;

	if (g == NULL)
		return br_ecdsa_i31_vrfy_asn1(impl, hash, hash_len, pk, sig, sig_len);
	if (pk->qlen != 2 * flen + 1 || pk->q[0] != 0x04 || sig_len > sizeof der || hash_len == 0)
		goto out;
	/* Canonical DER only: parse, re-encode, compare. */
	s = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
	if (s == NULL || (size_t)(p - (const unsigned char *)sig) != sig_len ||
	    i2d_ECDSA_SIG(s, NULL) != (int)sig_len || i2d_ECDSA_SIG(s, &q) != (int)sig_len ||
	    memcmp(der, sig, sig_len) != 0)
		goto out;
	key = EC_KEY_new();
	pt = EC_POINT_new(g);
	if (key == NULL || pt == NULL || EC_KEY_set_group(key, g) != 1 ||
	    !EC_POINT_oct2point(g, pt, pk->q, pk->qlen, NULL) || EC_KEY_set_public_key(key, pt) != 1)
		goto out;
	ok = ECDSA_do_verify(hash, (int)hash_len, s, key) == 1;
out:
	ECDSA_SIG_free(s);
	EC_POINT_free(pt);
	EC_KEY_free(key);
	if (!ok)
		ERR_clear_error();
	return ok;
}
