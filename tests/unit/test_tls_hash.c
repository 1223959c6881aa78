/* tls/hash_openssl.c against BearSSL's SHA-256 and TLS 1.2 PRF, the
 * reference: the same digests for random messages fed in random pieces, the
 * same running state and byte count (state/set_state, which BearSSL's HMAC and
 * br_multihash rely on), out() that leaves the context usable, and the same
 * HMAC, HMAC-DRBG, multihash and PRF outputs. Plus the FIPS 180-2 vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <cmocka.h>

#include "tls/hash.h"

#define ROUNDS 300

static const br_hash_class *os = &tls_sha256_openssl_vtable;
static const br_hash_class *ref = &br_sha256_vtable;

static unsigned rnd(unsigned below)
{
	uint32_t x;

	assert_int_equal(getrandom(&x, sizeof x, 0), (ssize_t)sizeof x);
	return below ? x % below : x;
}

static void random_bytes(void *p, size_t len)
{
	if (len > 0)
		assert_int_equal(getrandom(p, len, 0), (ssize_t)len);
}

static void test_desc_matches(void **state)
{
	(void)state;
	assert_int_equal(os->desc, ref->desc);
	assert_true(os->context_size <= sizeof(br_hash_compat_context));
}

static void test_fips_vectors(void **state)
{
	static const unsigned char abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
		0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
		0xf2, 0x00, 0x15, 0xad};
	static const unsigned char empty[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
		0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
		0x78, 0x52, 0xb8, 0x55};
	br_hash_compat_context h;
	unsigned char out[32];

	(void)state;
	os->init(&h.vtable);
	os->out(&h.vtable, out);
	assert_memory_equal(out, empty, 32);
	os->update(&h.vtable, "abc", 3);
	os->out(&h.vtable, out);
	assert_memory_equal(out, abc, 32);
}

/* Random messages in random pieces; out() in the middle must not disturb. */
static void test_random_messages_match(void **state)
{
	static unsigned char msg[3000];
	br_hash_compat_context a, b;
	unsigned char da[32], db[32];

	(void)state;
	for (int r = 0; r < ROUNDS; r++) {
		size_t len = rnd(sizeof msg + 1), off = 0;

		random_bytes(msg, len);
		os->init(&a.vtable);
		ref->init(&b.vtable);
		while (off < len) {
			size_t n = rnd((unsigned)(len - off) + 1);

			os->update(&a.vtable, msg + off, n);
			ref->update(&b.vtable, msg + off, n);
			off += n;
			if (rnd(4) == 0) {
				os->out(&a.vtable, da);
				ref->out(&b.vtable, db);
				assert_memory_equal(da, db, 32);
			}
		}
		os->out(&a.vtable, da);
		ref->out(&b.vtable, db);
		assert_memory_equal(da, db, 32);
	}
}

/* State exported by one implementation continues in the other, at block
 * boundaries (how BearSSL uses it), and the byte counts agree. */
static void test_state_roundtrip(void **state)
{
	unsigned char msg[10 * 64 + 200], sa[32], sb[32], da[32], db[32];
	br_hash_compat_context a, b;

	(void)state;
	for (int r = 0; r < ROUNDS; r++) {
		size_t blocks = rnd(10), tail = rnd(200);
		uint64_t ca, cb;

		random_bytes(msg, blocks * 64 + tail);
		os->init(&a.vtable);
		ref->init(&b.vtable);
		os->update(&a.vtable, msg, blocks * 64);
		ref->update(&b.vtable, msg, blocks * 64);
		ca = os->state(&a.vtable, sa);
		cb = ref->state(&b.vtable, sb);
		assert_int_equal(ca, blocks * 64);
		assert_int_equal(ca, cb);
		assert_memory_equal(sa, sb, 32);
		/* swap: OpenSSL continues BearSSL's state and the reverse */
		os->set_state(&a.vtable, sb, cb);
		ref->set_state(&b.vtable, sa, ca);
		os->update(&a.vtable, msg + blocks * 64, tail);
		ref->update(&b.vtable, msg + blocks * 64, tail);
		assert_int_equal(os->state(&a.vtable, sa), blocks * 64 + tail);
		os->out(&a.vtable, da);
		ref->out(&b.vtable, db);
		assert_memory_equal(da, db, 32);
	}
}

static void test_hmac_and_drbg_match(void **state)
{
	unsigned char key[200], msg[300], ma[32], mb[32], ra[100], rb[100];
	br_hmac_key_context ka, kb;
	br_hmac_context ha, hb;
	br_hmac_drbg_context ga, gb;

	(void)state;
	for (int r = 0; r < ROUNDS; r++) {
		size_t klen = rnd(sizeof key + 1), mlen = rnd(sizeof msg + 1);

		random_bytes(key, klen);
		random_bytes(msg, mlen);
		br_hmac_key_init(&ka, os, key, klen);
		br_hmac_key_init(&kb, ref, key, klen);
		br_hmac_init(&ha, &ka, 0);
		br_hmac_init(&hb, &kb, 0);
		br_hmac_update(&ha, msg, mlen);
		br_hmac_update(&hb, msg, mlen);
		br_hmac_out(&ha, ma);
		br_hmac_out(&hb, mb);
		assert_memory_equal(ma, mb, 32);
	}
	random_bytes(key, 48);
	br_hmac_drbg_init(&ga, os, key, 48);
	br_hmac_drbg_init(&gb, ref, key, 48);
	for (int r = 0; r < 20; r++) {
		size_t n = rnd(sizeof ra + 1);

		br_hmac_drbg_generate(&ga, ra, n);
		br_hmac_drbg_generate(&gb, rb, n);
		assert_memory_equal(ra, rb, n);
	}
}

/* br_multihash keeps states and counts itself, through state/set_state. */
static void test_multihash_match(void **state)
{
	static unsigned char msg[2000];
	br_multihash_context a, b;
	unsigned char da[32], db[32];

	(void)state;
	for (int r = 0; r < ROUNDS / 10; r++) {
		size_t len = rnd(sizeof msg + 1), off = 0;

		random_bytes(msg, len);
		br_multihash_zero(&a);
		br_multihash_zero(&b);
		br_multihash_setimpl(&a, br_sha256_ID, os);
		br_multihash_setimpl(&b, br_sha256_ID, ref);
		br_multihash_init(&a);
		br_multihash_init(&b);
		while (off < len) {
			size_t n = rnd((unsigned)(len - off) + 1);

			br_multihash_update(&a, msg + off, n);
			br_multihash_update(&b, msg + off, n);
			off += n;
		}
		assert_int_equal(br_multihash_out(&a, br_sha256_ID, da), 32);
		assert_int_equal(br_multihash_out(&b, br_sha256_ID, db), 32);
		assert_memory_equal(da, db, 32);
	}
}

static void test_prf_matches_bearssl(void **state)
{
	static const char *labels[] = {"master secret", "key expansion", "client finished",
				       "server finished", ""};
	unsigned char secret[100], s1[64], s2[64], oa[200], ob[200];

	(void)state;
	for (int r = 0; r < ROUNDS; r++) {
		size_t slen = rnd(sizeof secret + 1), len = rnd(sizeof oa + 1);
		br_tls_prf_seed_chunk seed[2] = {{s1, rnd(sizeof s1 + 1)}, {s2, rnd(sizeof s2 + 1)}};
		const char *label = labels[rnd(sizeof labels / sizeof labels[0])];
		size_t nseed = rnd(3);

		random_bytes(secret, slen);
		random_bytes(s1, sizeof s1);
		random_bytes(s2, sizeof s2);
		memset(oa, 0xAA, sizeof oa);
		memset(ob, 0xAA, sizeof ob);
		tls_prf_sha256_openssl(oa, len, secret, slen, label, nseed, seed);
		br_tls12_sha256_prf(ob, len, secret, slen, label, nseed, seed);
		assert_memory_equal(oa, ob, sizeof oa);   /* nothing written past len either */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desc_matches),
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_random_messages_match),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_hmac_and_drbg_match),
		cmocka_unit_test(test_multihash_match),
		cmocka_unit_test(test_prf_matches_bearssl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
