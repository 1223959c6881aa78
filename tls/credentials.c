/* Loading of the server identity and the per-trust-domain bundles.
 * Boot / reload time only: malloc is fine here, never on the data path. */
#include "tls/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TLS_MAX_PEM_FILE (4u << 20)     /* a bundle bigger than 4 MB is a mistake */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct bytes {
	unsigned char *data;
	size_t len, cap;
	int oom;
};

static void bytes_add(struct bytes *b, const void *src, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->data, cap);
		if (n == NULL) {
			b->oom = 1;
			return;
		}
		b->data = n;
		b->cap = cap;
	}
	memcpy(b->data + b->len, src, len);
	b->len += len;
}

static void bytes_cb(void *ctx, const void *src, size_t len)
{
	bytes_add(ctx, src, len);
}

static void bytes_wipe(struct bytes *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	memset(b, 0, sizeof *b);
}

static int read_file(const char *path, struct bytes *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	unsigned char buf[4096];
	size_t n;

	memset(out, 0, sizeof *out);
	if (f == NULL) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		bytes_add(out, buf, n);
		if (out->len > TLS_MAX_PEM_FILE) {
			seterr(err, errlen, "%s: larger than %u bytes", path, TLS_MAX_PEM_FILE);
			goto fail;
		}
	}
	if (ferror(f)) {
		seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
		goto fail;
	}
	if (out->oom) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	fclose(f);
	explicit_bzero(buf, sizeof buf);
	return 0;
fail:
	fclose(f);
	explicit_bzero(buf, sizeof buf);
	bytes_wipe(out);
	return -1;
}

struct pem_obj {
	char name[128];     /* br_pem_decoder keeps at most 127 */
	struct bytes der;
};

struct pem_list {
	struct pem_obj *objs;
	size_t n;
};

static void pem_list_free(struct pem_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		bytes_wipe(&l->objs[i].der);
	free(l->objs);
	memset(l, 0, sizeof *l);
}

/* Decodes every PEM object of a file. */
static int pem_load(const char *path, struct pem_list *out, char *err, size_t errlen)
{
	struct bytes file;
	br_pem_decoder_context pc;
	const unsigned char *p;
	size_t len, pushed;
	int inobj = 0, extra_nl = 1;
	struct pem_obj *cur = NULL;

	memset(out, 0, sizeof *out);
	if (read_file(path, &file, err, errlen) != 0)
		return -1;
	br_pem_decoder_init(&pc);
	p = file.data;
	len = file.len;
	/* BearSSL needs a newline after the last END line: push one extra. */
	while (len > 0 || extra_nl) {
		if (len == 0) {
			p = (const unsigned char *)"\n";
			len = 1;
			extra_nl = 0;
		}
		pushed = br_pem_decoder_push(&pc, p, len);
		p += pushed;
		len -= pushed;
		switch (br_pem_decoder_event(&pc)) {
		case BR_PEM_BEGIN_OBJ: {
			struct pem_obj *n = realloc(out->objs, (out->n + 1) * sizeof *n);

			if (n == NULL) {
				seterr(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			out->objs = n;
			cur = &out->objs[out->n++];
			memset(cur, 0, sizeof *cur);
			snprintf(cur->name, sizeof cur->name, "%s", br_pem_decoder_name(&pc));
			br_pem_decoder_setdest(&pc, bytes_cb, &cur->der);
			inobj = 1;
			break;
		}
		case BR_PEM_END_OBJ:
			if (cur && cur->der.oom) {
				seterr(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			inobj = 0;
			break;
		case BR_PEM_ERROR:
			seterr(err, errlen, "%s: PEM syntax error (object %zu)", path, out->n);
			goto fail;
		default:
			break;
		}
	}
	if (inobj) {
		seterr(err, errlen, "%s: truncated PEM object \"%s\" (no END line)", path,
		       cur ? cur->name : "?");
		goto fail;
	}
	bytes_wipe(&file);
	return 0;
fail:
	bytes_wipe(&file);
	pem_list_free(out);
	return -1;
}

/* Decodes a certificate's public key, DN (optional), CA flag. */
struct cert_info {
	br_x509_decoder_context dc;
	struct bytes dn;
};

static int cert_decode(struct cert_info *ci, const struct bytes *der)
{
	memset(&ci->dn, 0, sizeof ci->dn);
	br_x509_decoder_init(&ci->dc, bytes_cb, &ci->dn);
	br_x509_decoder_push(&ci->dc, der->data, der->len);
	if (ci->dn.oom)
		return BR_ERR_X509_LIMIT_EXCEEDED;
	return br_x509_decoder_last_error(&ci->dc);
}

void tls_ec_select(struct tls_impls *im, enum tls_ec_backend backend)
{
	if (backend == TLS_EC_OPENSSL && !tls_ec_openssl_available())
		backend = TLS_EC_BEARSSL;
	im->ec_backend = backend;
	if (backend == TLS_EC_OPENSSL) {
		im->ec = tls_ec_openssl_impl();
		im->ecdsa_sign = tls_ecdsa_openssl_sign;
		im->ecdsa_vrfy = tls_ecdsa_openssl_vrfy;
	} else {
		im->ec = br_ec_get_default();
		im->ecdsa_sign = br_ecdsa_sign_asn1_get_default();
		im->ecdsa_vrfy = br_ecdsa_vrfy_asn1_get_default();
	}
	im->ec_ecdhe = *im->ec;
	im->ec_ecdhe.supported_curves &= ((uint32_t)1 << BR_EC_secp256r1) |
					 ((uint32_t)1 << BR_EC_curve25519);
	im->ecdhe_prefer_p256 = backend == TLS_EC_OPENSSL;
}

static void impls_lookup(struct tls_impls *im)
{
	im->aes_ctr = br_aes_x86ni_ctr_get_vtable();
	if (im->aes_ctr == NULL)
		im->aes_ctr = &br_aes_ct_ctr_vtable;
	im->ghash = br_ghash_pclmul_get();
	if (im->ghash == 0)
		im->ghash = &br_ghash_ctmul64;
	im->gcm_in = &tls_gcm_in_vtable;
	im->gcm_out = &tls_gcm_out_vtable;
	im->chacha20 = br_chacha20_sse2_get();
	if (im->chacha20 == 0)
		im->chacha20 = &br_chacha20_ct_run;
	im->poly1305 = br_poly1305_ctmulq_get();
	if (im->poly1305 == 0)
		im->poly1305 = &br_poly1305_ctmul_run;
	tls_ec_select(im, TLS_EC_DEFAULT);
	im->sha256 = &tls_sha256_openssl_vtable;
	im->prf_sha256 = tls_prf_sha256_openssl;
	im->rsa_private = br_rsa_private_get_default();
	im->rsa_sign = br_rsa_pkcs1_sign_get_default();
	im->rsa_vrfy = br_rsa_pkcs1_vrfy_get_default();
}

/* Big-endian unsigned compare, ignoring leading zeros. */
static int same_uint(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	while (alen > 0 && *a == 0) {
		a++;
		alen--;
	}
	while (blen > 0 && *b == 0) {
		b++;
		blen--;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int key_matches(const struct tls_credentials *cr, const br_x509_pkey *pk)
{
	if (cr->key_type == BR_KEYTYPE_EC) {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(cr->key);
		unsigned char buf[BR_EC_KBUF_PUB_MAX_SIZE];
		br_ec_public_key pub;
		size_t n;

		if (pk->key_type != BR_KEYTYPE_EC || pk->key.ec.curve != sk->curve)
			return 0;
		n = br_ec_compute_pub(cr->impl.ec, &pub, buf, sk);
		return n != 0 && n == pk->key.ec.qlen && memcmp(buf, pk->key.ec.q, n) == 0;
	} else {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(cr->key);
		br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
		unsigned char n[4096 / 8 + 1];   /* BearSSL caps RSA at 4096 bits */
		size_t nlen;

		/* The modulus identifies the key pair (br_rsa_compute_pubexp of
		 * 0.6 returns 0 for ordinary keys here, so e is not compared). */
		if (pk->key_type != BR_KEYTYPE_RSA)
			return 0;
		nlen = modulus(NULL, sk);
		if (nlen == 0 || nlen > sizeof n || modulus(n, sk) != nlen)
			return 0;
		return same_uint(n, nlen, pk->key.rsa.n, pk->key.rsa.nlen);
	}
}

static int load_identity(struct tls_credentials *cr, const char *chain_path, const char *key_path,
			 char *err, size_t errlen)
{
	struct pem_list pl;
	struct cert_info ci;
	size_t i, nkeys = 0;
	int rc = -1, x;
	struct tls_x509_info info;

	if (pem_load(chain_path, &pl, err, errlen) != 0)
		return -1;
	for (i = 0; i < pl.n; i++)
		if (strcmp(pl.objs[i].name, "CERTIFICATE") == 0 ||
		    strcmp(pl.objs[i].name, "X509 CERTIFICATE") == 0)
			cr->chain_len++;
	if (cr->chain_len == 0) {
		seterr(err, errlen, "%s: no certificate in PEM (expected \"BEGIN CERTIFICATE\")",
		       chain_path);
		goto out;
	}
	cr->chain = calloc(cr->chain_len, sizeof *cr->chain);
	if (cr->chain == NULL) {
		seterr(err, errlen, "%s: out of memory", chain_path);
		goto out;
	}
	cr->chain_len = 0;
	for (i = 0; i < pl.n; i++) {
		struct pem_obj *o = &pl.objs[i];

		if (strcmp(o->name, "CERTIFICATE") != 0 && strcmp(o->name, "X509 CERTIFICATE") != 0)
			continue;
		cr->chain[cr->chain_len].data = o->der.data;   /* ownership moves */
		cr->chain[cr->chain_len].data_len = o->der.len;
		cr->chain_len++;
		memset(&o->der, 0, sizeof o->der);
	}
	pem_list_free(&pl);

	/* The private key. */
	if (pem_load(key_path, &pl, err, errlen) != 0)
		return -1;
	cr->key = calloc(1, sizeof *cr->key);
	if (cr->key == NULL) {
		seterr(err, errlen, "%s: out of memory", key_path);
		goto out;
	}
	for (i = 0; i < pl.n; i++) {
		const char *name = pl.objs[i].name;

		if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
			seterr(err, errlen, "%s: encrypted private keys are not supported", key_path);
			goto out;
		}
		if (strcmp(name, "EC PRIVATE KEY") && strcmp(name, "PRIVATE KEY") &&
		    strcmp(name, "RSA PRIVATE KEY"))
			continue;
		if (nkeys++) {
			seterr(err, errlen, "%s: more than one private key", key_path);
			goto out;
		}
		br_skey_decoder_init(cr->key);
		br_skey_decoder_push(cr->key, pl.objs[i].der.data, pl.objs[i].der.len);
		if ((x = br_skey_decoder_last_error(cr->key)) != 0) {
			seterr(err, errlen, "%s: cannot decode %s (BearSSL error %d)", key_path, name, x);
			goto out;
		}
		cr->key_type = br_skey_decoder_key_type(cr->key);
	}
	if (nkeys == 0) {
		seterr(err, errlen, "%s: no private key in PEM (expected EC PRIVATE KEY, "
		       "PRIVATE KEY or RSA PRIVATE KEY)", key_path);
		goto out;
	}
	if (cr->key_type == BR_KEYTYPE_EC &&
	    !((cr->impl.ec->supported_curves >> br_skey_decoder_get_ec(cr->key)->curve) & 1)) {
		seterr(err, errlen, "%s: EC curve %d not supported", key_path,
		       br_skey_decoder_get_ec(cr->key)->curve);
		goto out;
	}

	/* The end-entity certificate must carry this key. */
	x = cert_decode(&ci, &(struct bytes){ .data = cr->chain[0].data, .len = cr->chain[0].data_len });
	bytes_wipe(&ci.dn);
	if (x != 0) {
		seterr(err, errlen, "%s: certificate #1: cannot decode (BearSSL error %d)", chain_path, x);
		goto out;
	}
	if (!key_matches(cr, br_x509_decoder_get_pkey(&ci.dc))) {
		seterr(err, errlen, "%s: private key does not match certificate %s", key_path, chain_path);
		goto out;
	}
	if (tls_x509_parse(cr->chain[0].data, cr->chain[0].data_len, &info) == TLS_X509_OK)
		cr->not_after = info.not_after;
	/* NULL (no libcrypto curve, no memory) only costs the per-signature
	 * key setup: tls/conn.c then signs through impl.ecdsa_sign. */
	if (cr->key_type == BR_KEYTYPE_EC && tls_ec_openssl_available())
		cr->ec_sign_key = tls_ec_openssl_key_new(br_skey_decoder_get_ec(cr->key));
	rc = 0;
out:
	pem_list_free(&pl);
	return rc;
}

static int load_bundle(struct tls_credentials *cr, const struct config_trust_bundle *b,
		       char *err, size_t errlen)
{
	struct tls_trust_domain *d = &cr->domains[cr->ndomains];
	struct pem_list pl;
	size_t i;
	int x, rc = -1;

	if (!tls_spiffe_trust_domain_valid(b->trust_domain)) {
		seterr(err, errlen, "trust domain \"%s\": not a valid SPIFFE trust domain name "
		       "(lowercase letters, digits, '.', '-', '_')", b->trust_domain);
		return -1;
	}
	if (tls_credentials_find_domain(cr, b->trust_domain, strlen(b->trust_domain)) >= 0) {
		seterr(err, errlen, "trust domain \"%s\": configured twice", b->trust_domain);
		return -1;
	}
	if (pem_load(b->roots, &pl, err, errlen) != 0)
		return -1;
	snprintf(d->name, sizeof d->name, "%s", b->trust_domain);
	snprintf(d->roots_path, sizeof d->roots_path, "%s", b->roots);
	d->anchors = calloc(pl.n ? pl.n : 1, sizeof *d->anchors);
	if (d->anchors == NULL) {
		seterr(err, errlen, "%s: out of memory", b->roots);
		goto out;
	}
	cr->ndomains++;   /* from here tls_credentials_free() releases it */
	for (i = 0; i < pl.n; i++) {
		struct cert_info ci;
		br_x509_trust_anchor *ta = &d->anchors[d->nanchors];
		const br_x509_pkey *pk;

		if (strcmp(pl.objs[i].name, "CERTIFICATE") != 0 &&
		    strcmp(pl.objs[i].name, "X509 CERTIFICATE") != 0)
			continue;
		x = cert_decode(&ci, &pl.objs[i].der);
		if (x != 0) {
			bytes_wipe(&ci.dn);
			seterr(err, errlen, "%s: certificate #%zu: cannot decode (BearSSL error %d)",
			       b->roots, d->nanchors + 1, x);
			goto out;
		}
		pk = br_x509_decoder_get_pkey(&ci.dc);
		ta->dn.data = ci.dn.data;
		ta->dn.len = ci.dn.len;
		ta->flags = br_x509_decoder_isCA(&ci.dc) ? BR_X509_TA_CA : 0;
		ta->pkey.key_type = pk->key_type;
		d->nanchors++;
		if (pk->key_type == BR_KEYTYPE_EC) {
			ta->pkey.key.ec.curve = pk->key.ec.curve;
			ta->pkey.key.ec.qlen = pk->key.ec.qlen;
			ta->pkey.key.ec.q = malloc(pk->key.ec.qlen);
			if (ta->pkey.key.ec.q == NULL)
				goto oom;
			memcpy(ta->pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
		} else if (pk->key_type == BR_KEYTYPE_RSA) {
			ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
			ta->pkey.key.rsa.elen = pk->key.rsa.elen;
			ta->pkey.key.rsa.n = malloc(pk->key.rsa.nlen);
			ta->pkey.key.rsa.e = malloc(pk->key.rsa.elen);
			if (ta->pkey.key.rsa.n == NULL || ta->pkey.key.rsa.e == NULL)
				goto oom;
			memcpy(ta->pkey.key.rsa.n, pk->key.rsa.n, pk->key.rsa.nlen);
			memcpy(ta->pkey.key.rsa.e, pk->key.rsa.e, pk->key.rsa.elen);
		} else {
			seterr(err, errlen, "%s: certificate #%zu: unsupported key type", b->roots,
			       d->nanchors);
			goto out;
		}
	}
	if (d->nanchors == 0) {
		seterr(err, errlen, "%s: no certificate in PEM (trust bundle of \"%s\")", b->roots,
		       b->trust_domain);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	seterr(err, errlen, "%s: out of memory", b->roots);
out:
	pem_list_free(&pl);
	return rc;
}

/* 1 if the linked BearSSL was built with the BR_MAX_CIPHER_SUITES of the
 * headers we were compiled with (tests/unit/tls_build.mk changes it; it sizes
 * arrays inside br_ssl_engine_context, so a mismatch would corrupt memory).
 * br_ssl_engine_set_suites() refuses more suites than the library's table
 * holds: the library takes exactly ours when it takes that many and refuses
 * one more. The scratch engine has room for a library with a larger table. */
static int bearssl_suite_table_matches(void)
{
	uint16_t suites[BR_MAX_CIPHER_SUITES + 1];
	br_ssl_engine_context *eng;
	int ok;

	for (size_t i = 0; i < BR_MAX_CIPHER_SUITES + 1; i++)
		suites[i] = BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
	eng = calloc(1, sizeof *eng + 4096);
	if (eng == NULL)
		return 0;
	/* Any I/O mode but BR_IO_FAILED (0), or br_ssl_engine_fail() records
	 * nothing; err and iomode come before the table in every layout. */
	eng->iomode = 3;
	br_ssl_engine_set_suites(eng, suites, BR_MAX_CIPHER_SUITES);
	ok = br_ssl_engine_last_error(eng) == BR_ERR_OK;
	br_ssl_engine_set_suites(eng, suites, BR_MAX_CIPHER_SUITES + 1);
	ok = ok && br_ssl_engine_last_error(eng) == BR_ERR_BAD_PARAM;
	free(eng);
	return ok;
}

int tls_credentials_load(struct tls_credentials *cr, const char *chain_path, const char *key_path,
			 const struct config_trust_bundle *bundles, int nbundles,
			 char *err, size_t errlen)
{
	int i;
	size_t n = 0, k;

	memset(cr, 0, sizeof *cr);
	if (!bearssl_suite_table_matches()) {
		seterr(err, errlen, "BearSSL library and headers disagree on BR_MAX_CIPHER_SUITES "
		       "(%d here): rebuild everything", BR_MAX_CIPHER_SUITES);
		return -1;
	}
	impls_lookup(&cr->impl);
	if (nbundles < 1 || nbundles > TLS_MAX_TRUST_DOMAINS) {
		seterr(err, errlen, "need 1 to %d trust bundles, got %d", TLS_MAX_TRUST_DOMAINS,
		       nbundles);
		return -1;
	}
	if (load_identity(cr, chain_path, key_path, err, errlen) != 0)
		goto fail;
	for (i = 0; i < nbundles; i++)
		if (load_bundle(cr, &bundles[i], err, errlen) != 0)
			goto fail;
	for (i = 0; i < cr->ndomains; i++)
		n += cr->domains[i].nanchors;
	cr->all_anchors = calloc(n, sizeof *cr->all_anchors);
	if (cr->all_anchors == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < cr->ndomains; i++)
		for (k = 0; k < cr->domains[i].nanchors; k++)
			cr->all_anchors[cr->nall_anchors++] = cr->domains[i].anchors[k];
	/* calloc: pages of the caches are only touched as entries are used. */
	cr->cache = calloc(1, sizeof *cr->cache);
	if (cr->cache == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	cr->cache->sessions_enabled = cr->cache->chains_enabled = 1;
	tls_cache_seed(cr->cache, cr->impl.sha256);   /* on failure, engines seed from the OS */
	return 0;
fail:
	tls_credentials_free(cr);
	return -1;
}

void tls_credentials_set_caching(struct tls_credentials *cr, int sessions, int chains)
{
	if (cr->cache == NULL)
		return;
	if (!sessions) {
		explicit_bzero(cr->cache->sessions, sizeof cr->cache->sessions);
	}
	if (!chains)
		memset(cr->cache->chains, 0, sizeof cr->cache->chains);
	cr->cache->sessions_enabled = sessions != 0;
	cr->cache->chains_enabled = chains != 0;
}

void tls_credentials_free(struct tls_credentials *cr)
{
	int i;
	size_t k;

	for (k = 0; k < cr->chain_len; k++)
		free(cr->chain[k].data);
	free(cr->chain);
	if (cr->key) {
		explicit_bzero(cr->key, sizeof *cr->key);
		free(cr->key);
	}
	tls_ec_openssl_key_free(cr->ec_sign_key);
	for (i = 0; i < cr->ndomains; i++) {
		struct tls_trust_domain *d = &cr->domains[i];

		for (k = 0; k < d->nanchors; k++) {
			br_x509_trust_anchor *ta = &d->anchors[k];

			free(ta->dn.data);
			if (ta->pkey.key_type == BR_KEYTYPE_EC) {
				free(ta->pkey.key.ec.q);
			} else if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
				free(ta->pkey.key.rsa.n);
				free(ta->pkey.key.rsa.e);
			}
		}
		free(d->anchors);
	}
	free(cr->all_anchors);
	if (cr->cache) {
		explicit_bzero(cr->cache, sizeof *cr->cache);   /* master secrets */
		free(cr->cache);
	}
	explicit_bzero(cr, sizeof *cr);
}

int tls_credentials_find_domain(const struct tls_credentials *cr, const char *name, size_t len)
{
	int i;

	for (i = 0; i < cr->ndomains; i++)
		if (strlen(cr->domains[i].name) == len && memcmp(cr->domains[i].name, name, len) == 0)
			return i;
	return -1;
}
