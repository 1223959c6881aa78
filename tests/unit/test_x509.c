/* tls/x509.c: the DER walker on real certificates (tests/pki/gen.sh) and on
 * crafted input (truncations, oversized and indefinite lengths, garbage),
 * and the SPIFFE ID parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/x509.h"

#define PKI "../build/test-pki"
#include "test_pki.h"

struct der {
	unsigned char *p;
	size_t len;
};

static struct der load(const char *name)
{
	X509 *x = pki_x509(name);
	struct der d = { 0 };
	int n = i2d_X509(x, &d.p);
	assert_true(n > 0);
	d.len = (size_t)n;
	X509_free(x);
	return d;
}

static void test_real_certificates(void **state)
{
	struct tls_x509_info info;
	struct der d;

	(void)state;
	d = load("frontend");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_int_equal(info.uri_count, 1);
	assert_int_equal(info.uri_len, strlen("spiffe://cluster.local/ns/prod/sa/frontend"));
	assert_memory_equal(info.uri, "spiffe://cluster.local/ns/prod/sa/frontend", info.uri_len);
	assert_true(info.has_eku);
	assert_true(info.eku_client_auth);
	assert_false(info.eku_server_auth);
	assert_true(info.not_after > info.not_before);
	OPENSSL_free(d.p);

	d = load("expired");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_true(info.not_before == 1577836800);   /* 2020-01-01 */
	assert_true(info.not_after == 1609459200);    /* 2021-01-01 */
	OPENSSL_free(d.p);

	d = load("not-yet-valid");   /* GeneralizedTime: years >= 2050 */
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_true(info.not_before == tls_x509_timegm(2099, 1, 1, 0, 0, 0));
	assert_true(info.not_after == tls_x509_timegm(2100, 1, 1, 0, 0, 0));
	OPENSSL_free(d.p);

	d = load("two-uris");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_int_equal(info.uri_count, 2);
	OPENSSL_free(d.p);

	d = load("no-eku");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_false(info.has_eku);
	OPENSSL_free(d.p);

	d = load("server-eku-only");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_true(info.has_eku);
	assert_true(info.eku_server_auth);
	assert_false(info.eku_client_auth);
	OPENSSL_free(d.p);

	d = load("no-uri");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_int_equal(info.uri_count, 0);
	assert_null(info.uri);
	assert_int_equal(info.dns_count, 1);
	OPENSSL_free(d.p);

	d = load("gateway");
	assert_int_equal(tls_x509_parse(d.p, d.len, &info), TLS_X509_OK);
	assert_int_equal(info.dns_count, 2);
	assert_int_equal(info.uri_count, 1);
	assert_true(info.eku_client_auth && info.eku_server_auth);
	OPENSSL_free(d.p);
}

static void test_truncations_and_mutations(void **state)
{
	struct tls_x509_info info;
	struct der d = load("frontend");
	unsigned char *buf = malloc(d.len + 1);
	size_t i;
	int ok = 0;

	(void)state;
	/* Every strict prefix fails; each on its own heap block of exact size
	 * so that a read past the end would be caught by sanitizers/valgrind. */
	for (i = 0; i < d.len; i++) {
		unsigned char *p = malloc(i ? i : 1);

		memcpy(p, d.p, i);
		assert_int_not_equal(tls_x509_parse(p, i, &info), TLS_X509_OK);
		free(p);
	}
	/* One trailing byte. */
	memcpy(buf, d.p, d.len);
	buf[d.len] = 0;
	assert_int_equal(tls_x509_parse(buf, d.len + 1, &info), TLS_X509_TRAILING_DATA);
	/* Every byte set to 0x00, 0x80, 0xff: no crash; some still parse
	 * (signature bytes, key bytes are opaque here). */
	for (i = 0; i < d.len; i++) {
		static const unsigned char vals[] = { 0x00, 0x80, 0xff };
		size_t k;

		for (k = 0; k < sizeof vals; k++) {
			memcpy(buf, d.p, d.len);
			if (buf[i] == vals[k])
				continue;
			buf[i] = vals[k];
			if (tls_x509_parse(buf, d.len, &info) == TLS_X509_OK) {
				ok++;
				assert_true(info.uri_count <= 1);
				if (info.uri)
					assert_true(info.uri >= buf && info.uri + info.uri_len <= buf + d.len);
			}
		}
	}
	assert_true(ok > 0 && (size_t)ok < 3 * d.len);
	free(buf);
	OPENSSL_free(d.p);
}

static void test_crafted(void **state)
{
	struct tls_x509_info info;
	static const unsigned char huge[] = { 0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00 };
	static const unsigned char five[] = { 0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00, 0x30 };
	static const unsigned char indefinite[] = { 0x30, 0x80, 0x30, 0x00, 0x00, 0x00 };
	static const unsigned char nonminimal[] = { 0x30, 0x81, 0x02, 0x30, 0x00 };
	static const unsigned char leadzero[] = { 0x30, 0x82, 0x00, 0x02, 0x30, 0x00 };
	static const unsigned char hightag[] = { 0x1f, 0x01, 0x00 };
	static const unsigned char notseq[] = { 0x31, 0x00 };
	static const unsigned char empty_seq[] = { 0x30, 0x00 };
	static const unsigned char nested[] = { 0x30, 0x06, 0x30, 0x04, 0x30, 0x08, 0x30, 0x00 };
	/* tbs with a bogus validity: UTCTime "991332..." (month 13) */
	static const unsigned char badtime[] = {   /* month 13 */
		0x30, 0x31, 0x30, 0x2b,
		0x02, 0x01, 0x01,                    /* serial */
		0x30, 0x00,                          /* sigalg */
		0x30, 0x00,                          /* issuer */
		0x30, 0x1e,
		0x17, 0x0d, '9', '9', '1', '3', '0', '1', '0', '0', '0', '0', '0', '0', 'Z',
		0x17, 0x0d, '9', '9', '1', '2', '0', '1', '0', '0', '0', '0', '0', '0', 'Z',
		0x30, 0x00, 0x30, 0x00,              /* subject, spki */
		0x30, 0x00, 0x03, 0x00,              /* outer sigalg, signature */
	};

	(void)state;
	assert_int_equal(tls_x509_parse(NULL, 0, &info), TLS_X509_TRUNCATED);
	assert_int_equal(tls_x509_parse(huge, 0, &info), TLS_X509_TRUNCATED);
	assert_int_equal(tls_x509_parse(huge, sizeof huge, &info), TLS_X509_TRUNCATED);
	assert_int_equal(tls_x509_parse(five, sizeof five, &info), TLS_X509_BAD_LENGTH);
	assert_int_equal(tls_x509_parse(indefinite, sizeof indefinite, &info), TLS_X509_BAD_LENGTH);
	assert_int_equal(tls_x509_parse(nonminimal, sizeof nonminimal, &info), TLS_X509_BAD_LENGTH);
	assert_int_equal(tls_x509_parse(leadzero, sizeof leadzero, &info), TLS_X509_BAD_LENGTH);
	assert_int_equal(tls_x509_parse(hightag, sizeof hightag, &info), TLS_X509_BAD_TAG);
	assert_int_equal(tls_x509_parse(notseq, sizeof notseq, &info), TLS_X509_BAD_TAG);
	assert_int_equal(tls_x509_parse(empty_seq, sizeof empty_seq, &info), TLS_X509_TRUNCATED);
	assert_int_equal(tls_x509_parse(nested, sizeof nested, &info), TLS_X509_TRUNCATED);
	assert_int_equal(tls_x509_parse(badtime, sizeof badtime, &info), TLS_X509_BAD_TIME);
	assert_string_equal(tls_x509_status_name(TLS_X509_BAD_LENGTH), "bad_length");
}

static void test_timegm(void **state)
{
	(void)state;
	assert_true(tls_x509_timegm(1970, 1, 1, 0, 0, 0) == 0);
	assert_true(tls_x509_timegm(2000, 2, 29, 0, 0, 0) == 951782400);
	assert_true(tls_x509_timegm(2038, 1, 19, 3, 14, 8) == 2147483648LL);
	assert_true(tls_x509_timegm(1950, 1, 1, 0, 0, 0) == -631152000LL);
}

static void test_spiffe(void **state)
{
	struct tls_spiffe_id id;
	static const struct {
		const char *uri;
		enum tls_spiffe_status want;
	} cases[] = {
		{ "spiffe://cluster.local/ns/prod/sa/frontend", TLS_SPIFFE_OK },
		{ "spiffe://td/a", TLS_SPIFFE_OK },
		{ "spiffe://td/a/b.c-d_e/F", TLS_SPIFFE_OK },
		{ "https://td/a", TLS_SPIFFE_NOT_SPIFFE },
		{ "SPIFFE://td/a", TLS_SPIFFE_NOT_SPIFFE },
		{ "spiffe:/td/a", TLS_SPIFFE_NOT_SPIFFE },
		{ "spiffe://", TLS_SPIFFE_BAD_TRUST_DOMAIN },
		{ "spiffe:///a", TLS_SPIFFE_BAD_TRUST_DOMAIN },
		{ "spiffe://TD/a", TLS_SPIFFE_BAD_TRUST_DOMAIN },
		{ "spiffe://td:443/a", TLS_SPIFFE_BAD_TRUST_DOMAIN },
		{ "spiffe://user@td/a", TLS_SPIFFE_BAD_TRUST_DOMAIN },
		{ "spiffe://td", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/a/", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td//a", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/./a", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/a/..", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/a?x=1", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/a#f", TLS_SPIFFE_BAD_PATH },
		{ "spiffe://td/a%20b", TLS_SPIFFE_BAD_PATH },
	};
	size_t i;
	char longid[TLS_SPIFFE_MAX_ID + 16];

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum tls_spiffe_status st = tls_spiffe_parse(cases[i].uri, strlen(cases[i].uri), &id);

		if (st != cases[i].want)
			fail_msg("%s: got %s want %s", cases[i].uri, tls_spiffe_status_name(st),
				 tls_spiffe_status_name(cases[i].want));
	}
	assert_int_equal(tls_spiffe_parse("spiffe://cluster.local/ns/prod/sa/frontend", 42, &id),
			 TLS_SPIFFE_OK);
	assert_string_equal(id.id, "spiffe://cluster.local/ns/prod/sa/frontend");
	assert_string_equal(id.trust_domain, "cluster.local");
	assert_string_equal(id.namespace_, "prod");
	assert_string_equal(id.service_account, "frontend");
	/* Not the /ns/NS/sa/SA shape: no namespace / service account. */
	assert_int_equal(tls_spiffe_parse("spiffe://td/ns/prod/sa/x/extra", 30, &id), TLS_SPIFFE_OK);
	assert_string_equal(id.namespace_, "");
	assert_int_equal(tls_spiffe_parse("spiffe://td/ns/prod/xx/y", 24, &id), TLS_SPIFFE_OK);
	assert_string_equal(id.service_account, "");
	/* Length is respected (no NUL needed) and bounded. */
	assert_int_equal(tls_spiffe_parse("spiffe://td/abc", 13, &id), TLS_SPIFFE_OK);
	assert_string_equal(id.id, "spiffe://td/a");
	memset(longid, 'a', sizeof longid);
	memcpy(longid, "spiffe://td/", 12);
	assert_int_equal(tls_spiffe_parse(longid, TLS_SPIFFE_MAX_ID, &id), TLS_SPIFFE_OK);
	assert_int_equal(tls_spiffe_parse(longid, TLS_SPIFFE_MAX_ID + 1, &id), TLS_SPIFFE_TOO_LONG);
	assert_true(tls_spiffe_trust_domain_valid("cluster.local"));
	assert_false(tls_spiffe_trust_domain_valid(""));
	assert_false(tls_spiffe_trust_domain_valid("Cluster.local"));
}

static int setup(void **state)
{
	(void)state;
	return system("pki/gen.sh " PKI) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_certificates),
		cmocka_unit_test(test_truncations_and_mutations),
		cmocka_unit_test(test_crafted),
		cmocka_unit_test(test_timegm),
		cmocka_unit_test(test_spiffe),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
