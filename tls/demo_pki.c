/* Demo PKI for `meshgate run`: BearSSL cannot create certificates, so this
 * uses OpenSSL's libcrypto (statically linked in the final binary). Boot
 * time only. See tls_demo_pki_ensure() in tls/tls.h. */
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DEMO_CA_DAYS 3650
#define DEMO_LEAF_DAYS 825     /* the longest lifetime clients commonly accept */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	unsigned long e = ERR_peek_last_error();
	size_t n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (e != 0 && n + 3 < errlen) {
		snprintf(err + n, errlen - n, ": ");
		ERR_error_string_n(e, err + n + 2, errlen - n - 2);
	}
	ERR_clear_error();
}

static int path_of(char *out, size_t len, const char *dir, const char *name)
{
	return snprintf(out, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

static int exists(const char *dir, const char *name)
{
	char p[CONFIG_MAX_PATH];

	return path_of(p, sizeof p, dir, name) == 0 && access(p, F_OK) == 0;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Makes a certificate for `key`; issuer NULL = self-signed CA. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       const char *san, const char *eku)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = 0, is_ca = issuer == NULL;

	if (x == NULL || name == NULL || RAND_bytes(serial, sizeof serial) != 1)
		goto out;
	serial[0] &= 0x7f;      /* positive */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (bn == NULL || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	if (!X509_set_version(x, 2) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"meshgate demo", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, is_ca ? name : X509_get_subject_name(issuer)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * (is_ca ? DEMO_CA_DAYS : DEMO_LEAF_DAYS)) ||
	    !X509_set_pubkey(x, key))
		goto out;
	if (is_ca) {
		issuer = x;
		issuer_key = key;
	}
	if (add_ext(x, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    add_ext(x, issuer, NID_key_usage, is_ca ? "critical,keyCertSign,cRLSign"
						    : "critical,digitalSignature,keyEncipherment") ||
	    add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
	    (!is_ca && add_ext(x, issuer, NID_authority_key_identifier, "keyid")) ||
	    (san && add_ext(x, issuer, NID_subject_alt_name, san)) ||
	    (eku && add_ext(x, issuer, NID_ext_key_usage, eku)))
		goto out;
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		goto out;
	ok = 1;
out:
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_key(const char *dir, const char *file, EVP_PKEY *key, char *err, size_t errlen)
{
	char p[CONFIG_MAX_PATH];
	int fd;
	FILE *f;
	int ok;

	if (path_of(p, sizeof p, dir, file)) {
		seterr(err, errlen, "%s/%s: path too long", dir, file);
		return -1;
	}
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
		seterr(err, errlen, "%s: cannot write: %s", p, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0 || !ok) {
		seterr(err, errlen, "%s: cannot write key", p);
		return -1;
	}
	return 0;
}

static int write_certs(const char *dir, const char *file, X509 *a, X509 *b, char *err, size_t errlen)
{
	char p[CONFIG_MAX_PATH];
	FILE *f;
	int ok;

	if (path_of(p, sizeof p, dir, file)) {
		seterr(err, errlen, "%s/%s: path too long", dir, file);
		return -1;
	}
	f = fopen(p, "w");
	if (f == NULL) {
		seterr(err, errlen, "%s: cannot write: %s", p, strerror(errno));
		return -1;
	}
	ok = PEM_write_X509(f, a) && (b == NULL || PEM_write_X509(f, b));
	if (fclose(f) != 0 || !ok) {
		seterr(err, errlen, "%s: cannot write certificate", p);
		return -1;
	}
	return 0;
}

static EVP_PKEY *read_key(const char *dir, const char *file)
{
	char p[CONFIG_MAX_PATH];
	FILE *f;
	EVP_PKEY *k;

	if (path_of(p, sizeof p, dir, file) || (f = fopen(p, "r")) == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *read_cert(const char *dir, const char *file)
{
	char p[CONFIG_MAX_PATH];
	FILE *f;
	X509 *x;

	if (path_of(p, sizeof p, dir, file) || (f = fopen(p, "r")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

/* One leaf: NAME.pem (with the CA appended when chain) and NAME.key. */
static int make_leaf(const char *dir, const char *name, const char *cn, X509 *ca, EVP_PKEY *ca_key,
		     const char *san, const char *eku, int chain, char *err, size_t errlen)
{
	char pem[CONFIG_MAX_NAME], keyf[CONFIG_MAX_NAME];
	EVP_PKEY *key;
	X509 *x;
	int rc = -1;

	snprintf(pem, sizeof pem, "%s.pem", name);
	snprintf(keyf, sizeof keyf, "%s.key", name);
	key = EVP_EC_gen("P-256");
	if (key == NULL) {
		seterr(err, errlen, "%s: EC key generation failed", name);
		return -1;
	}
	x = make_cert(key, cn, ca, ca_key, san, eku);
	if (x == NULL) {
		seterr(err, errlen, "%s: certificate creation failed", name);
		goto out;
	}
	if (write_key(dir, keyf, key, err, errlen) == 0 &&
	    write_certs(dir, pem, x, chain ? ca : NULL, err, errlen) == 0)
		rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int tls_demo_pki_ensure(const char *dir, const char *trust_domain, char *err, size_t errlen)
{
	static const char *const leaves[] = { "gateway", "client", "intruder" };
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	char san[3 * CONFIG_MAX_TRUST_DOMAIN];
	int rc = -1, regen_all, i;

	if (!tls_spiffe_trust_domain_valid(trust_domain)) {
		seterr(err, errlen, "demo PKI: \"%s\" is not a valid SPIFFE trust domain", trust_domain);
		return -1;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		seterr(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
		return -1;
	}
	regen_all = !exists(dir, "ca.pem") || !exists(dir, "ca.key");
	if (regen_all) {
		ca_key = EVP_EC_gen("P-256");
		ca = ca_key ? make_cert(ca_key, "meshgate demo CA", NULL, NULL, NULL, NULL) : NULL;
		if (ca == NULL) {
			seterr(err, errlen, "%s: demo CA creation failed", dir);
			goto out;
		}
		if (write_key(dir, "ca.key", ca_key, err, errlen) ||
		    write_certs(dir, "ca.pem", ca, NULL, err, errlen))
			goto out;
	} else {
		ca_key = read_key(dir, "ca.key");
		ca = read_cert(dir, "ca.pem");
		if (ca_key == NULL || ca == NULL) {
			seterr(err, errlen, "%s: cannot read ca.pem / ca.key (delete them to regenerate)", dir);
			goto out;
		}
	}
	for (i = 0; i < 3; i++) {
		char pem[32], key[32];

		snprintf(pem, sizeof pem, "%s.pem", leaves[i]);
		snprintf(key, sizeof key, "%s.key", leaves[i]);
		if (!regen_all && exists(dir, pem) && exists(dir, key))
			continue;
		if (i == 0)
			snprintf(san, sizeof san, "DNS:localhost,DNS:meshgate.demo,IP:198.18.3.2,"
				 "URI:spiffe://%s/ns/meshgate/sa/gateway", trust_domain);
		else
			snprintf(san, sizeof san, "URI:spiffe://%s/ns/demo/sa/%s", trust_domain,
				 leaves[i]);
		if (make_leaf(dir, leaves[i], leaves[i], ca, ca_key, san,
			      i == 0 ? "serverAuth,clientAuth" : "clientAuth", i == 0, err, errlen))
			goto out;
	}
	rc = 0;
out:
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	ERR_clear_error();
	return rc;
}
