/* Test helper: a certificate of the test PKI (tests/pki/gen.sh, built into
 * PKI by the Makefile) as an OpenSSL X509. Include after cmocka.h and
 * OpenSSL's pem.h, with PKI defined. */
#ifndef MESHGATE_TEST_PKI_H
#define MESHGATE_TEST_PKI_H

static X509 *pki_x509(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, PKI "/%s.pem", name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}
#endif
