/* AES-GCM TLS 1.2 records, large ones by libcrypto (tls/gcm.h). */
#include "tls/gcm.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tls/tls.h"

/* The engine hands the classes its record context: the in or out union of
 * the br_ssl_engine_context inside a struct tls_conn. */
static struct tls_gcm_dir *dir_in(const void *ctx)
{
	return &((struct tls_conn *)(void *)((char *)(uintptr_t)ctx - offsetof(struct tls_conn, sc.eng.in)))->gcm_in;
}

static struct tls_gcm_dir *dir_out(const void *ctx)
{
	return &((struct tls_conn *)(void *)((char *)(uintptr_t)ctx - offsetof(struct tls_conn, sc.eng.out)))->gcm_out;
}

static void put64be(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void put16be(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void dir_init(struct tls_gcm_dir *d, const void *key, size_t key_len)
{
	memcpy(d->key, key, key_len);
	d->key_len = key_len;
	d->evp_keyed = 0;
	d->evp_records = 0;
}

/* libcrypto's context for direction d, keyed; NULL when it cannot be had
 * (the record then goes to BearSSL). */
static EVP_CIPHER_CTX *dir_evp(struct tls_gcm_dir *d, int enc)
{
	if (d->key_len != 16 && d->key_len != 32)
		return NULL;
	if (!d->evp && !(d->evp = EVP_CIPHER_CTX_new()))
		return NULL;
	EVP_CIPHER_CTX *x = d->evp;
	if (!d->evp_keyed) {
		const EVP_CIPHER *ci = d->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
		if (!EVP_CipherInit_ex(x, ci, NULL, NULL, NULL, enc) ||
		    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) ||
		    !EVP_CipherInit_ex(x, NULL, NULL, d->key, NULL, enc))
			return NULL;
		d->evp_keyed = 1;
	}
	return x;
}

/* Nonce and additional data of the record with sequence number seq
 * (RFC 5288 section 3, RFC 5246 section 6.2.3.3). */
static int evp_start(EVP_CIPHER_CTX *x, const struct tls_gcm_dir *d, uint64_t seq, const unsigned char *explicit8,
		     int record_type, unsigned version, size_t len, int enc)
{
	unsigned char nonce[12], aad[13];
	int n;
	memcpy(nonce, d->bear.iv, 4);
	memcpy(nonce + 4, explicit8, 8);
	put64be(aad, seq);
	aad[8] = (unsigned char)record_type;
	put16be(aad + 9, version);
	put16be(aad + 11, len);
	return EVP_CipherInit_ex(x, NULL, NULL, NULL, nonce, enc) && EVP_CipherUpdate(x, NULL, &n, aad, sizeof aad);
}

/* ------------------------------------------------------------ decrypt */

static void in_init(const br_sslrec_in_gcm_class **ctx, const br_block_ctr_class *bc_impl, const void *key,
		    size_t key_len, br_ghash gh_impl, const void *iv)
{
	struct tls_gcm_dir *d = dir_in(ctx);
	br_sslrec_in_gcm_vtable.init(&d->bear.vtable.in, bc_impl, key, key_len, gh_impl, iv);
	dir_init(d, key, key_len);
	*ctx = &tls_gcm_in_vtable;
}

static int in_check_length(const br_sslrec_in_class *const *ctx, size_t rlen)
{
	const struct tls_gcm_dir *d = dir_in(ctx);
	return br_sslrec_in_gcm_vtable.inner.check_length((const br_sslrec_in_class *const *)&d->bear.vtable.in, rlen);
}

static unsigned char *in_decrypt(const br_sslrec_in_class **ctx, int record_type, unsigned version, void *data,
				 size_t *data_len)
{
	struct tls_gcm_dir *d = dir_in(ctx);
	size_t len = *data_len - 24;            /* check_length: at least 24 */
	EVP_CIPHER_CTX *x = NULL;
	if (len < TLS_GCM_EVP_MIN || !(x = dir_evp(d, 0)) ||
	    !evp_start(x, d, d->bear.seq, data, record_type, version, len, 0))
		return br_sslrec_in_gcm_vtable.inner.decrypt((const br_sslrec_in_class **)&d->bear.vtable.in,
							      record_type, version, data, data_len);
	unsigned char *buf = (unsigned char *)data + 8;
	int n;
	d->bear.seq++;
	if (!EVP_CipherUpdate(x, buf, &n, buf, (int)len) ||
	    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, buf + len) || EVP_CipherFinal_ex(x, buf + len, &n) <= 0)
		return NULL;                    /* bad record MAC: the engine fails the connection */
	d->evp_records++;
	*data_len = len;
	return buf;
}

const br_sslrec_in_gcm_class tls_gcm_in_vtable = {
	{sizeof(br_sslrec_gcm_context), in_check_length, in_decrypt},
	in_init,
};

/* ------------------------------------------------------------ encrypt */

static void out_init(const br_sslrec_out_gcm_class **ctx, const br_block_ctr_class *bc_impl, const void *key,
		     size_t key_len, br_ghash gh_impl, const void *iv)
{
	struct tls_gcm_dir *d = dir_out(ctx);
	br_sslrec_out_gcm_vtable.init(&d->bear.vtable.out, bc_impl, key, key_len, gh_impl, iv);
	dir_init(d, key, key_len);
	*ctx = &tls_gcm_out_vtable;
}

static void out_max_plaintext(const br_sslrec_out_class *const *ctx, size_t *start, size_t *end)
{
	const struct tls_gcm_dir *d = dir_out(ctx);
	br_sslrec_out_gcm_vtable.inner.max_plaintext((const br_sslrec_out_class *const *)&d->bear.vtable.out, start, end);
}

static unsigned char *out_encrypt(const br_sslrec_out_class **ctx, int record_type, unsigned version, void *data,
				  size_t *data_len)
{
	struct tls_gcm_dir *d = dir_out(ctx);
	size_t len = *data_len;
	EVP_CIPHER_CTX *x = NULL;
	unsigned char *buf = data;
	uint64_t seq = d->bear.seq;
	int n;
	/* max_plaintext left 8 bytes before the data (explicit nonce) and 16
	 * after it (tag), and 5 more before for the header */
	put64be(buf - 8, seq);
	if (len < TLS_GCM_EVP_MIN || !(x = dir_evp(d, 1)) ||
	    !evp_start(x, d, seq, buf - 8, record_type, version, len, 1))
		return br_sslrec_out_gcm_vtable.inner.encrypt((const br_sslrec_out_class **)&d->bear.vtable.out,
							       record_type, version, data, data_len);
	/* From here the data is being encrypted in place: these calls fail
	 * only on invalid arguments, which the ones above would have shown. */
	EVP_CipherUpdate(x, buf, &n, buf, (int)len);
	EVP_CipherFinal_ex(x, buf + len, &n);
	EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, buf + len);
	d->bear.seq++;
	d->evp_records++;
	len += 24;
	buf -= 13;
	buf[0] = (unsigned char)record_type;
	put16be(buf + 1, version);
	put16be(buf + 3, len);
	*data_len = len + 5;
	return buf;
}

const br_sslrec_out_gcm_class tls_gcm_out_vtable = {
	{sizeof(br_sslrec_gcm_context), out_max_plaintext, out_encrypt},
	out_init,
};

void tls_gcm_release(struct tls_gcm_dir *d)
{
	EVP_CIPHER_CTX_free(d->evp);            /* cleanses its key schedule */
	d->evp = NULL;
	d->evp_keyed = 0;
	OPENSSL_cleanse(d->key, sizeof d->key);
}
