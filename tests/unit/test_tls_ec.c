/* tls/ec_openssl.c against BearSSL's own EC code, the reference: the same
 * points for the same scalars, signatures that verify across both, and the
 * refusals BearSSL's contract requires (compressed or off-curve points, wrong
 * lengths, zero scalars, tampered or non-canonical signatures), with
 * OpenSSL's error queue left empty after each failure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <cmocka.h>

#include <openssl/err.h>

#include "tls/ec.h"

#define ROUNDS 200

static const br_ec_impl *ref = &br_ec_all_m15;    /* BearSSL's other code base */

static void random_scalar(int curve, unsigned char *k, size_t *klen)
{
	size_t olen;
	const unsigned char *order = ref->order(curve, &olen);

	/* Uniform below the order: draw, clear the top bits, retry if too big. */
	for (;;) {
		assert_int_equal(getrandom(k, olen, 0), (ssize_t)olen);
		k[0] &= order[0];
		if (memcmp(k, order, olen) < 0 && k[olen - 1] != 0)
			break;
	}
	*klen = olen;
}

static void check_curve_mul(int curve)
{
	const br_ec_impl *os = tls_ec_openssl_impl();
	unsigned char k[66], k2[66], a[133], b[133], pa[133], pb[133];
	size_t klen, k2len;

	for (int i = 0; i < ROUNDS; i++) {
		random_scalar(curve, k, &klen);
		random_scalar(curve, k2, &k2len);
		size_t la = os->mulgen(a, k, klen, curve);
		size_t lb = ref->mulgen(b, k, klen, curve);
		assert_true(la > 0);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		/* k2 * (k * G) both ways */
		memcpy(pa, a, la);
		memcpy(pb, b, lb);
		assert_int_equal(os->mul(pa, la, k2, k2len, curve), 1);
		assert_int_equal(ref->mul(pb, lb, k2, k2len, curve), 1);
		assert_memory_equal(pa, pb, la);
		assert_int_equal(ERR_peek_error(), 0);
	}
}

static void test_p256_mul_matches_bearssl(void **state)
{
	(void)state;
	assert_true(tls_ec_openssl_available());
	check_curve_mul(BR_EC_secp256r1);
}

static void test_p384_p521_mul_match_bearssl(void **state)
{
	(void)state;
	check_curve_mul(BR_EC_secp384r1);
	check_curve_mul(BR_EC_secp521r1);
}

/* Curve25519 stays BearSSL's: same answers, through the same vtable. */
static void test_x25519_passthrough(void **state)
{
	const br_ec_impl *os = tls_ec_openssl_impl();
	unsigned char k[32], a[32], b[32];
	size_t klen;

	(void)state;
	assert_true((os->supported_curves >> BR_EC_curve25519) & 1);
	random_scalar(BR_EC_curve25519, k, &klen);
	assert_int_equal(os->mulgen(a, k, klen, BR_EC_curve25519), 32);
	assert_int_equal(ref->mulgen(b, k, klen, BR_EC_curve25519), 32);
	assert_memory_equal(a, b, 32);
}

static void test_bad_points_refused(void **state)
{
	const br_ec_impl *os = tls_ec_openssl_impl();
	unsigned char k[32], p[65], q[65], c[33];
	size_t klen;

	(void)state;
	random_scalar(BR_EC_secp256r1, k, &klen);
	assert_int_equal(os->mulgen(p, k, klen, BR_EC_secp256r1), 65);
	/* off the curve: flip one bit of Y */
	memcpy(q, p, 65);
	q[64] ^= 1;
	assert_int_equal(os->mul(q, 65, k, klen, BR_EC_secp256r1), 0);
	assert_int_equal(ref->mul(q, 65, k, klen, BR_EC_secp256r1), 0);
	/* compressed form: BearSSL takes uncompressed points only */
	c[0] = (unsigned char)(0x02 | (p[64] & 1));
	memcpy(c + 1, p + 1, 32);
	assert_int_equal(os->mul(c, 33, k, klen, BR_EC_secp256r1), 0);
	/* hybrid/garbage prefix, wrong lengths */
	memcpy(q, p, 65);
	q[0] = 0x06;
	assert_int_equal(os->mul(q, 65, k, klen, BR_EC_secp256r1), 0);
	memcpy(q, p, 65);
	assert_int_equal(os->mul(q, 64, k, klen, BR_EC_secp256r1), 0);
	/* the point at infinity encoding */
	q[0] = 0;
	assert_int_equal(os->mul(q, 1, k, klen, BR_EC_secp256r1), 0);
	/* zero scalar, over-long scalar */
	memset(k, 0, sizeof k);
	memcpy(q, p, 65);
	assert_int_equal(os->mul(q, 65, k, 32, BR_EC_secp256r1), 0);
	assert_int_equal(os->mulgen(q, k, 32, BR_EC_secp256r1), 0);
	assert_int_equal(os->mulgen(q, p, 33, BR_EC_secp256r1), 0);
	assert_int_equal(ERR_peek_error(), 0);
}

struct keypair {
	int curve;
	unsigned char x[66], q[133];
	br_ec_private_key sk;
	br_ec_public_key pk;
};

static void keypair(struct keypair *kp, int curve)
{
	size_t xlen;

	kp->curve = curve;
	random_scalar(curve, kp->x, &xlen);
	kp->sk = (br_ec_private_key){curve, kp->x, xlen};
	kp->pk = (br_ec_public_key){curve, kp->q, ref->mulgen(kp->q, kp->x, xlen, curve)};
	assert_true(kp->pk.qlen > 0);
}

static void check_ecdsa(int curve, const br_hash_class *hc)
{
	const br_ec_impl *os = tls_ec_openssl_impl();
	struct keypair kp;
	unsigned char hv[64], sig[160];
	size_t hlen = (hc->desc >> BR_HASHDESC_OUT_OFF) & BR_HASHDESC_OUT_MASK;

	for (int i = 0; i < ROUNDS / 4; i++) {
		keypair(&kp, curve);
		assert_int_equal(getrandom(hv, hlen, 0), (ssize_t)hlen);
		/* OpenSSL signs, both verify */
		size_t n = tls_ecdsa_openssl_sign(os, hc, hv, &kp.sk, sig);
		assert_true(n > 0);
		assert_int_equal(br_ecdsa_i31_vrfy_asn1(ref, hv, hlen, &kp.pk, sig, n), 1);
		assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, hlen, &kp.pk, sig, n), 1);
		/* tampered hash and signature are refused by both */
		hv[0] ^= 0x80;
		assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, hlen, &kp.pk, sig, n), 0);
		assert_int_equal(br_ecdsa_i31_vrfy_asn1(ref, hv, hlen, &kp.pk, sig, n), 0);
		hv[0] ^= 0x80;
		sig[n - 1] ^= 1;
		assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, hlen, &kp.pk, sig, n), 0);
		sig[n - 1] ^= 1;
		/* truncated */
		assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, hlen, &kp.pk, sig, n - 1), 0);
		/* BearSSL signs, OpenSSL verifies */
		n = br_ecdsa_i31_sign_asn1(ref, hc, hv, &kp.sk, sig);
		assert_true(n > 0);
		assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, hlen, &kp.pk, sig, n), 1);
		assert_int_equal(ERR_peek_error(), 0);
	}
}

static void test_ecdsa_p256_cross(void **state)
{
	(void)state;
	check_ecdsa(BR_EC_secp256r1, &br_sha256_vtable);
}

static void test_ecdsa_p384_p521_cross(void **state)
{
	(void)state;
	check_ecdsa(BR_EC_secp384r1, &br_sha384_vtable);
	check_ecdsa(BR_EC_secp521r1, &br_sha512_vtable);
}

/* The server key object built once at load (tls_ec_openssl_key_new): its
 * signatures verify with BearSSL's code, a buffer too small or a curve that
 * libcrypto does not do here gives 0 / NULL, and nothing is left on
 * OpenSSL's error queue. */
static void check_prebuilt_key(int curve, size_t hlen)
{
	struct keypair kp;
	struct tls_ec_openssl_key *key;
	unsigned char hv[64], sig[160];

	for (int i = 0; i < ROUNDS / 10; i++) {
		keypair(&kp, curve);
		key = tls_ec_openssl_key_new(&kp.sk);
		assert_non_null(key);
		assert_int_equal(getrandom(hv, hlen, 0), (ssize_t)hlen);
		size_t n = tls_ecdsa_openssl_sign_key(key, hv, hlen, sig, sizeof sig);
		assert_true(n > 0);
		assert_int_equal(br_ecdsa_i31_vrfy_asn1(ref, hv, hlen, &kp.pk, sig, n), 1);
		hv[0] ^= 1;
		assert_int_equal(br_ecdsa_i31_vrfy_asn1(ref, hv, hlen, &kp.pk, sig, n), 0);
		assert_int_equal(tls_ecdsa_openssl_sign_key(key, hv, hlen, sig, 8), 0);
		assert_int_equal(tls_ecdsa_openssl_sign_key(key, hv, 0, sig, sizeof sig), 0);
		tls_ec_openssl_key_free(key);
		assert_int_equal(ERR_peek_error(), 0);
	}
}

static void test_ecdsa_prebuilt_key(void **state)
{
	unsigned char x[32] = {1};
	br_ec_private_key x25519 = {BR_EC_curve25519, x, sizeof x};

	(void)state;
	check_prebuilt_key(BR_EC_secp256r1, 32);
	check_prebuilt_key(BR_EC_secp384r1, 48);
	check_prebuilt_key(BR_EC_secp521r1, 64);
	assert_null(tls_ec_openssl_key_new(&x25519));
	assert_int_equal(tls_ecdsa_openssl_sign_key(NULL, x, 32, x, 0), 0);
	tls_ec_openssl_key_free(NULL);
}

/* DER that OpenSSL's parser would tolerate but is not canonical: a
 * redundant leading zero on r. BearSSL refuses it too. */
static void test_ecdsa_noncanonical_refused(void **state)
{
	const br_ec_impl *os = tls_ec_openssl_impl();
	struct keypair kp;
	unsigned char hv[32], sig[80], bad[84];
	size_t n;

	(void)state;
	keypair(&kp, BR_EC_secp256r1);
	memset(hv, 0x5a, sizeof hv);
	do {   /* a signature whose r has no leading zero byte, so one can be added */
		n = tls_ecdsa_openssl_sign(os, &br_sha256_vtable, hv, &kp.sk, sig);
		assert_true(n > 0);
	} while (sig[3] != 32 || (sig[4] & 0x80));
	/* 30 L 02 20 r... 02 l s...  ->  30 L+1 02 21 00 r... 02 l s... */
	bad[0] = 0x30;
	bad[1] = (unsigned char)(sig[1] + 1);
	bad[2] = 0x02;
	bad[3] = 33;
	bad[4] = 0;
	memcpy(bad + 5, sig + 4, n - 4);
	assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, 32, &kp.pk, sig, n), 1);
	assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, 32, &kp.pk, bad, n + 1), 0);
	/* trailing garbage */
	memcpy(bad, sig, n);
	bad[n] = 0;
	assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, 32, &kp.pk, bad, n + 1), 0);
	/* a public key in compressed form */
	br_ec_public_key cpk = kp.pk;
	unsigned char cq[33];
	cq[0] = (unsigned char)(0x02 | (kp.q[64] & 1));
	memcpy(cq + 1, kp.q + 1, 32);
	cpk.q = cq;
	cpk.qlen = 33;
	assert_int_equal(tls_ecdsa_openssl_vrfy(os, hv, 32, &cpk, sig, n), 0);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_backend_names(void **state)
{
	(void)state;
	assert_string_equal(tls_ec_backend_name(TLS_EC_OPENSSL), "openssl");
	assert_string_equal(tls_ec_backend_name(TLS_EC_BEARSSL), "bearssl");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_names),
		cmocka_unit_test(test_p256_mul_matches_bearssl),
		cmocka_unit_test(test_p384_p521_mul_match_bearssl),
		cmocka_unit_test(test_x25519_passthrough),
		cmocka_unit_test(test_bad_points_refused),
		cmocka_unit_test(test_ecdsa_p256_cross),
		cmocka_unit_test(test_ecdsa_p384_p521_cross),
		cmocka_unit_test(test_ecdsa_noncanonical_refused),
		cmocka_unit_test(test_ecdsa_prebuilt_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
