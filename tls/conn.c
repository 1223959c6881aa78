/* One TLS server connection: BearSSL engine + SPIFFE client authentication.
 * See tls/tls.h for the contract and how the proxy drives it. */
#include "tls/tls.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

/* TLS alert descriptions (RFC 5246 7.2). */
enum {
	ALERT_CLOSE_NOTIFY = 0,
	ALERT_UNEXPECTED_MESSAGE = 10,
	ALERT_BAD_RECORD_MAC = 20,
	ALERT_HANDSHAKE_FAILURE = 40,
	ALERT_BAD_CERTIFICATE = 42,
	ALERT_UNSUPPORTED_CERTIFICATE = 43,
	ALERT_CERTIFICATE_EXPIRED = 45,
	ALERT_UNKNOWN_CA = 48,
	ALERT_ACCESS_DENIED = 49,
	ALERT_DECODE_ERROR = 50,
	ALERT_DECRYPT_ERROR = 51,
	ALERT_PROTOCOL_VERSION = 70,
	ALERT_INTERNAL_ERROR = 80,
};

/* Server preference order: AES-GCM first (AES-NI here), ChaCha20 for clients
 * that prefer it on machines without AES hardware. Only the suites of the
 * server key type are given to the engine: BearSSL's handshake code looks
 * each configured suite up in its table of all suites (a linear scan, by
 * its interpreter) on every ClientHello, matched by the client or not. */
static const uint16_t tls_suites_ecdsa[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const uint16_t tls_suites_rsa[] = {
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};
/* BearSSL refuses more suites than its table holds; the build may shrink it
 * to what we configure (tests/unit/tls_build.mk, TLS_BEARSSL_MAX_SUITES). */
_Static_assert(sizeof tls_suites_ecdsa / sizeof tls_suites_ecdsa[0] <= BR_MAX_CIPHER_SUITES &&
		       sizeof tls_suites_rsa / sizeof tls_suites_rsa[0] <= BR_MAX_CIPHER_SUITES,
	       "more suites than BR_MAX_CIPHER_SUITES");

const char *tls_error_name(enum tls_error err)
{
	switch (err) {
	case TLS_OK: return "ok";
	case TLS_ERR_NO_CLIENT_CERT: return "no_client_cert";
	case TLS_ERR_UNKNOWN_CA: return "unknown_ca";
	case TLS_ERR_CERT_EXPIRED: return "cert_expired";
	case TLS_ERR_CERT_NOT_YET_VALID: return "cert_not_yet_valid";
	case TLS_ERR_BAD_CERT: return "bad_cert";
	case TLS_ERR_NO_SPIFFE_ID: return "no_spiffe_id";
	case TLS_ERR_BAD_SPIFFE_ID: return "bad_spiffe_id";
	case TLS_ERR_MULTIPLE_URI_SANS: return "multiple_uri_sans";
	case TLS_ERR_UNKNOWN_TRUST_DOMAIN: return "unknown_trust_domain";
	case TLS_ERR_EKU_NOT_CLIENT_AUTH: return "eku_not_client_auth";
	case TLS_ERR_ACCESS_DENIED: return "access_denied";
	case TLS_ERR_UNSUPPORTED_VERSION: return "unsupported_version";
	case TLS_ERR_NO_SHARED_CIPHER: return "no_shared_cipher";
	case TLS_ERR_PROTOCOL: return "protocol_error";
	case TLS_ERR_PEER_ALERT: return "peer_alert";
	case TLS_ERR_CLOSED_BY_PEER: return "closed_by_peer";
	case TLS_ERR_INTERNAL: return "internal";
	case TLS_ERR_COUNT: break;
	}
	return "unknown";
}

const char *tls_state_name(enum tls_state st)
{
	switch (st) {
	case TLS_STATE_HANDSHAKING: return "handshaking";
	case TLS_STATE_OPEN: return "open";
	case TLS_STATE_CLOSING: return "closing";
	case TLS_STATE_CLOSED: return "closed";
	case TLS_STATE_FAILED: return "failed";
	}
	return "unknown";
}

static int alert_for(enum tls_error err)
{
	switch (err) {
	case TLS_ERR_NO_CLIENT_CERT:
	case TLS_ERR_NO_SHARED_CIPHER: return ALERT_HANDSHAKE_FAILURE;
	case TLS_ERR_UNKNOWN_CA:
	case TLS_ERR_UNKNOWN_TRUST_DOMAIN: return ALERT_UNKNOWN_CA;
	case TLS_ERR_CERT_EXPIRED:
	case TLS_ERR_CERT_NOT_YET_VALID: return ALERT_CERTIFICATE_EXPIRED;
	case TLS_ERR_BAD_CERT:
	case TLS_ERR_NO_SPIFFE_ID:
	case TLS_ERR_BAD_SPIFFE_ID:
	case TLS_ERR_MULTIPLE_URI_SANS: return ALERT_BAD_CERTIFICATE;
	case TLS_ERR_EKU_NOT_CLIENT_AUTH: return ALERT_UNSUPPORTED_CERTIFICATE;
	case TLS_ERR_ACCESS_DENIED: return ALERT_ACCESS_DENIED;
	case TLS_ERR_UNSUPPORTED_VERSION: return ALERT_PROTOCOL_VERSION;
	case TLS_ERR_PROTOCOL: return ALERT_UNEXPECTED_MESSAGE;
	case TLS_ERR_INTERNAL: return ALERT_INTERNAL_ERROR;
	default: return -1;
	}
}

static struct tls_conn *conn_of_wrap(struct tls_x509_wrap *w)
{
	return (struct tls_conn *)(void *)((char *)w - offsetof(struct tls_conn, x509));
}

static int64_t conn_now(const struct tls_conn *c)
{
	return c->fixed_time ? c->fixed_time : (int64_t)time(NULL);
}

/* ------------------------------------------------------------ x509 wrapper */

static void xw_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct tls_x509_wrap *w = (struct tls_x509_wrap *)(void *)ctx;

	(void)server_name;
	w->cert_index = 0;
	w->minimal_started = 0;
	w->ee_overflow = 0;
	w->ee_len = 0;
	w->err = TLS_OK;
	w->bearssl_x509_err = 0;
}

static void xw_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct tls_x509_wrap *w = (struct tls_x509_wrap *)(void *)ctx;

	if (w->cert_index == 0) {
		w->ee_len = 0;
		if (length > sizeof w->ee)
			w->ee_overflow = 1;
	} else if (w->minimal_started) {
		w->minimal.vtable->start_cert(&w->minimal.vtable, length);
	}
}

static void xw_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct tls_x509_wrap *w = (struct tls_x509_wrap *)(void *)ctx;

	if (w->cert_index == 0) {
		if (w->ee_overflow || len > sizeof w->ee - w->ee_len) {
			w->ee_overflow = 1;
			return;
		}
		memcpy(w->ee + w->ee_len, buf, len);
		w->ee_len += len;
	} else if (w->minimal_started) {
		w->minimal.vtable->append(&w->minimal.vtable, buf, len);
	}
}

static void xw_fail(struct tls_x509_wrap *w, enum tls_error err)
{
	if (w->err == TLS_OK)
		w->err = err;
}

/* The end-entity certificate is complete: pick its trust domain, then start
 * br_x509_minimal with only that domain's anchors. */
static void xw_process_ee(struct tls_x509_wrap *w)
{
	struct tls_conn *c = conn_of_wrap(w);
	const struct tls_credentials *cr = c->cred;
	const struct tls_impls *im = &cr->impl;
	struct tls_spiffe_id id;
	enum tls_spiffe_status sst;
	int td;
	int64_t now = conn_now(c);
	uint32_t days, secs;

	if (w->ee_overflow || tls_x509_parse(w->ee, w->ee_len, &w->ee_info) != TLS_X509_OK) {
		xw_fail(w, TLS_ERR_BAD_CERT);
		return;
	}
	if (w->ee_info.uri_count == 0) {
		xw_fail(w, TLS_ERR_NO_SPIFFE_ID);
		return;
	}
	if (w->ee_info.uri_count > 1) {
		xw_fail(w, TLS_ERR_MULTIPLE_URI_SANS);
		return;
	}
	sst = tls_spiffe_parse((const char *)w->ee_info.uri, w->ee_info.uri_len, &id);
	if (sst == TLS_SPIFFE_NOT_SPIFFE) {
		xw_fail(w, TLS_ERR_NO_SPIFFE_ID);
		return;
	}
	if (sst != TLS_SPIFFE_OK) {
		xw_fail(w, TLS_ERR_BAD_SPIFFE_ID);
		return;
	}
	td = tls_credentials_find_domain(cr, id.trust_domain, strlen(id.trust_domain));
	if (td < 0) {
		xw_fail(w, TLS_ERR_UNKNOWN_TRUST_DOMAIN);
		return;
	}
	memcpy(c->peer.spiffe_id, id.id, sizeof c->peer.spiffe_id);
	memcpy(c->peer.trust_domain, id.trust_domain, sizeof c->peer.trust_domain);
	memcpy(c->peer.namespace_, id.namespace_, sizeof c->peer.namespace_);
	memcpy(c->peer.service_account, id.service_account, sizeof c->peer.service_account);
	c->peer.not_after = w->ee_info.not_after;
	c->peer.trust_domain_index = td;

	if (cr->cache != NULL && cr->cache->chains_enabled) {
		const struct tls_chain_entry *hit;
		br_hash_compat_context h;

		im->sha256->init(&h.vtable);
		im->sha256->update(&h.vtable, w->ee, w->ee_len);
		im->sha256->out(&h.vtable, w->ee_hash);
		hit = tls_chain_cache_find(cr->cache, w->ee_hash, td, now);
		if (hit != NULL) {
			/* Verified to this domain's roots before: skip the chain
			 * walk; dates, EKU, authorize and CertificateVerify still
			 * run (tls/cache.h). */
			memcpy(w->cached_q, hit->q, hit->qlen);
			w->cached_pkey.key_type = BR_KEYTYPE_EC;
			w->cached_pkey.key.ec.curve = hit->curve;
			w->cached_pkey.key.ec.q = w->cached_q;
			w->cached_pkey.key.ec.qlen = hit->qlen;
			w->cached_usages = hit->usages;
			w->cached = 1;
			return;
		}
	}

	/* Not br_x509_minimal_init_full(): it would run the CPUID lookups. */
	br_x509_minimal_init(&w->minimal, im->sha256, cr->domains[td].anchors,
			     cr->domains[td].nanchors);
	br_x509_minimal_set_hash(&w->minimal, br_sha256_ID, im->sha256);
	br_x509_minimal_set_hash(&w->minimal, br_sha384_ID, &br_sha384_vtable);
	br_x509_minimal_set_hash(&w->minimal, br_sha512_ID, &br_sha512_vtable);
	br_x509_minimal_set_rsa(&w->minimal, im->rsa_vrfy);
	br_x509_minimal_set_ecdsa(&w->minimal, im->ec, im->ecdsa_vrfy);
	/* BearSSL counts days from 0000-01-01 (proleptic Gregorian): 719528 to 1970. */
	days = (uint32_t)(now / 86400 + 719528);
	secs = (uint32_t)(now % 86400);
	br_x509_minimal_set_time(&w->minimal, days, secs);
	w->minimal.vtable->start_chain(&w->minimal.vtable, NULL);
	w->minimal.vtable->start_cert(&w->minimal.vtable, (uint32_t)w->ee_len);
	w->minimal.vtable->append(&w->minimal.vtable, w->ee, w->ee_len);
	w->minimal.vtable->end_cert(&w->minimal.vtable);
	w->minimal_started = 1;
}

static void xw_end_cert(const br_x509_class **ctx)
{
	struct tls_x509_wrap *w = (struct tls_x509_wrap *)(void *)ctx;

	if (w->cert_index == 0)
		xw_process_ee(w);
	else if (w->minimal_started)
		w->minimal.vtable->end_cert(&w->minimal.vtable);
	if (++w->cert_index > TLS_MAX_CLIENT_CHAIN)
		xw_fail(w, TLS_ERR_BAD_CERT);
}

static unsigned xw_end_chain(const br_x509_class **ctx)
{
	struct tls_x509_wrap *w = (struct tls_x509_wrap *)(void *)ctx;
	struct tls_conn *c = conn_of_wrap(w);
	int64_t now = conn_now(c);
	unsigned r;

	if (w->cert_index == 0)
		xw_fail(w, TLS_ERR_NO_CLIENT_CERT);
	if (w->err != TLS_OK)
		return BR_ERR_X509_NOT_TRUSTED;
	r = w->cached ? 0 : w->minimal.vtable->end_chain(&w->minimal.vtable);
	if (r != 0 && r != BR_ERR_X509_OK) {     /* minimal returns 0 on success */
		w->bearssl_x509_err = (int)r;
		if (r == BR_ERR_X509_EXPIRED) {
			if (now < w->ee_info.not_before)
				xw_fail(w, TLS_ERR_CERT_NOT_YET_VALID);
			else
				xw_fail(w, TLS_ERR_CERT_EXPIRED);   /* end-entity or an intermediate */
		} else if (r == BR_ERR_X509_NOT_TRUSTED) {
			xw_fail(w, TLS_ERR_UNKNOWN_CA);
		} else {
			xw_fail(w, TLS_ERR_BAD_CERT);
		}
		return r;
	}
	/* br_x509_minimal checked the dates already; this is belt and braces
	 * with our own parser (and the only check that sees leap-second edge
	 * cases the same way everywhere). */
	if (now < w->ee_info.not_before) {
		xw_fail(w, TLS_ERR_CERT_NOT_YET_VALID);
		return BR_ERR_X509_EXPIRED;
	}
	if (now > w->ee_info.not_after) {
		xw_fail(w, TLS_ERR_CERT_EXPIRED);
		return BR_ERR_X509_EXPIRED;
	}
	if (w->ee_info.has_eku && !w->ee_info.eku_client_auth) {
		xw_fail(w, TLS_ERR_EKU_NOT_CLIENT_AUTH);
		return BR_ERR_X509_FORBIDDEN_KEY_USAGE;
	}
	if (!w->cached && c->cred->cache != NULL) {
		unsigned usages = 0;
		const br_x509_pkey *pk = w->minimal.vtable->get_pkey(&w->minimal.vtable, &usages);

		tls_chain_cache_store(c->cred->cache, w->ee_hash, c->peer.trust_domain_index, pk, usages,
				      now, w->ee_info.not_after);
	}
	c->peer_valid = 1;
	if (c->authorize != NULL && c->authorize(c->authorize_arg, &c->peer) != 0) {
		xw_fail(w, TLS_ERR_ACCESS_DENIED);
		return BR_ERR_X509_NOT_TRUSTED;
	}
	return 0;
}

static const br_x509_pkey *xw_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct tls_x509_wrap *w = (const struct tls_x509_wrap *)(const void *)ctx;

	if (w->err != TLS_OK)
		return NULL;
	if (w->cached) {
		if (usages != NULL)
			*usages = w->cached_usages;
		return &w->cached_pkey;
	}
	if (!w->minimal_started)
		return NULL;
	return w->minimal.vtable->get_pkey(&w->minimal.vtable, usages);
}

static const br_x509_class tls_x509_wrap_vtable = {
	sizeof(struct tls_x509_wrap),
	xw_start_chain,
	xw_start_cert,
	xw_append,
	xw_end_cert,
	xw_end_chain,
	xw_get_pkey,
};

/* ------------------------------------------------------------ policy wrapper */

static struct tls_conn *conn_of_policy(const br_ssl_server_policy_class **pctx)
{
	return (struct tls_conn *)(void *)((char *)pctx - offsetof(struct tls_conn, policy));
}

/* BearSSL takes X25519 whenever the client offers it: its ServerKeyExchange
 * code picks from the curve mask it stored while parsing ClientHello
 * (client's curves AND the engine's). choose() runs in between, so it drops
 * X25519 from that mask when P-256 is the cheaper curve here and the client
 * offers it too. */
/* 1 for the suites of tls_suites_*[] whose TLS 1.2 PRF is SHA-384. */
static int suite_prf_sha384(unsigned suite)
{
	return suite == BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ||
	       suite == BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384;
}

/* Once the suite and the ServerKeyExchange hash are chosen, the transcript
 * needs SHA-256 (and SHA-384 for a SHA-384 PRF suite): drop the others from
 * the engine's running hashes, which each cost a full hash of every later
 * handshake message. BearSSL builds the CertificateRequest list of signature
 * algorithms from the hashes still present, so the client is asked to sign
 * its CertificateVerify with one we kept (a client that uses another anyway
 * is refused: BR_ERR_INVALID_ALGORITHM). SHA-256 stays: it is also the hash
 * of the engine's DRBG. */
static void trim_transcript_hashes(struct tls_conn *c, const br_ssl_server_choices *choices)
{
	unsigned sign_hash = choices->algo_id & 0xFF;
	int keep384 = suite_prf_sha384(choices->cipher_suite) || sign_hash == br_sha384_ID;

	if (!keep384)
		br_multihash_setimpl(&c->sc.eng.mhash, br_sha384_ID, NULL);
	if (sign_hash != br_sha512_ID)
		br_multihash_setimpl(&c->sc.eng.mhash, br_sha512_ID, NULL);
}

static int pw_choose(const br_ssl_server_policy_class **pctx, const br_ssl_server_context *cc,
		     br_ssl_server_choices *choices)
{
	struct tls_conn *c = conn_of_policy(pctx);
	const struct tls_impls *im = &c->cred->impl;
	int r = (*c->policy.inner)->choose(c->policy.inner, cc, choices);

	if (r && im->ecdhe_prefer_p256 && (c->sc.curves >> BR_EC_secp256r1) & 1)
		c->sc.curves &= ~((uint32_t)1 << BR_EC_curve25519);
	if (r)
		trim_transcript_hashes(c, choices);
	return r;
}

static uint32_t pw_do_keyx(const br_ssl_server_policy_class **pctx, unsigned char *data, size_t *len)
{
	struct tls_conn *c = conn_of_policy(pctx);

	return (*c->policy.inner)->do_keyx(c->policy.inner, data, len);
}

/* ServerKeyExchange signature: `data` holds the hash on entry and gets the
 * signature. With libcrypto's ECDSA, the key object built at load signs
 * directly (BearSSL's own path would set the key up again each time). */
static size_t pw_do_sign(const br_ssl_server_policy_class **pctx, unsigned algo_id,
			 unsigned char *data, size_t hv_len, size_t len)
{
	struct tls_conn *c = conn_of_policy(pctx);
	const struct tls_credentials *cr = c->cred;

	if (cr->ec_sign_key != NULL && cr->impl.ec_backend == TLS_EC_OPENSSL)
		return tls_ecdsa_openssl_sign_key(cr->ec_sign_key, data, hv_len, data, len);
	return (*c->policy.inner)->do_sign(c->policy.inner, algo_id, data, hv_len, len);
}

static const br_ssl_server_policy_class tls_policy_wrap_vtable = {
	sizeof(struct tls_policy_wrap),
	pw_choose,
	pw_do_keyx,
	pw_do_sign,
};

/* ------------------------------------------------------------ connection */

void tls_conn_reset(struct tls_conn *c, const struct tls_credentials *cr,
		    tls_authorize_fn authorize, void *authorize_arg)
{
	br_ssl_engine_context *eng = &c->sc.eng;
	const struct tls_impls *im = &cr->impl;

	/* Not br_ssl_server_init_full_*(): it enables TLS 1.0/1.1, CBC, 3DES and
	 * static ECDH, and runs every CPUID lookup again. */
	br_ssl_server_zero(&c->sc);
	memset(&c->x509, 0, offsetof(struct tls_x509_wrap, ee));
	c->cred = cr;
	c->authorize = authorize;
	c->authorize_arg = authorize_arg;
	c->fixed_time = 0;
	memset(&c->peer, 0, sizeof c->peer);
	c->peer_valid = 0;
	c->handshake_done = 0;
	c->close_requested = 0;
	c->finished = 0;
	c->error = TLS_OK;
	c->alert_sent = -1;
	c->alert_received = -1;
	c->bearssl_err = 0;
	c->alert_len = c->alert_off = 0;
	c->first_byte = -1;
	c->resumed = 0;

	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	if (cr->key_type == BR_KEYTYPE_EC)
		br_ssl_engine_set_suites(eng, tls_suites_ecdsa,
					 sizeof tls_suites_ecdsa / sizeof tls_suites_ecdsa[0]);
	else
		br_ssl_engine_set_suites(eng, tls_suites_rsa,
					 sizeof tls_suites_rsa / sizeof tls_suites_rsa[0]);
	br_ssl_engine_set_all_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_hash(eng, br_sha256_ID, im->sha256);      /* also the engine's DRBG */
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(eng, br_sha512_ID, &br_sha512_vtable);
	br_ssl_engine_set_prf_sha256(eng, im->prf_sha256);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_aes_ctr(eng, im->aes_ctr);
	br_ssl_engine_set_ghash(eng, im->ghash);
	br_ssl_engine_set_gcm(eng, im->gcm_in, im->gcm_out);
	br_ssl_engine_set_chacha20(eng, im->chacha20);
	br_ssl_engine_set_poly1305(eng, im->poly1305);
	br_ssl_engine_set_chapol(eng, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
	br_ssl_engine_set_ec(eng, &im->ec_ecdhe);
	br_ssl_engine_set_ecdsa(eng, im->ecdsa_vrfy);
	br_ssl_engine_set_rsavrfy(eng, im->rsa_vrfy);
	if (cr->key_type == BR_KEYTYPE_EC)
		br_ssl_server_set_single_ec(&c->sc, cr->chain, cr->chain_len,
					    br_skey_decoder_get_ec(cr->key), BR_KEYTYPE_SIGN,
					    BR_KEYTYPE_EC, im->ec, im->ecdsa_sign);
	else
		br_ssl_server_set_single_rsa(&c->sc, cr->chain, cr->chain_len,
					     br_skey_decoder_get_rsa(cr->key), BR_KEYTYPE_SIGN,
					     im->rsa_private, im->rsa_sign);
	c->policy.vtable = &tls_policy_wrap_vtable;
	c->policy.inner = c->sc.policy_vtable;
	br_ssl_server_set_policy(&c->sc, &c->policy.vtable);
	/* Setting CA names is what makes BearSSL send CertificateRequest; with
	 * BR_OPT_TOLERATE_NO_CLIENT_AUTH unset, a certificate is required. */
	br_ssl_server_set_trust_anchor_names_alt(&c->sc, cr->all_anchors, cr->nall_anchors);
	c->x509.vtable = &tls_x509_wrap_vtable;
	br_ssl_engine_set_x509(eng, &c->x509.vtable);
	if (cr->cache != NULL && cr->cache->sessions_enabled) {
		c->session_cache_vtable = &tls_session_cache_vtable;
		br_ssl_server_set_cache(&c->sc, &c->session_cache_vtable);
	}
	br_ssl_engine_set_buffer(eng, c->iobuf, sizeof c->iobuf, 1);
	tls_cache_seed_engine(cr->cache, eng);
	if (!br_ssl_server_reset(&c->sc)) {
		c->finished = 1;
		c->error = TLS_ERR_INTERNAL;
		c->bearssl_err = br_ssl_engine_last_error(eng);
	}
}

void tls_conn_set_client_cert_optional(struct tls_conn *c)
{
	br_ssl_engine_add_flags(&c->sc.eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
}

void tls_conn_set_time(struct tls_conn *c, int64_t unix_seconds)
{
	c->fixed_time = unix_seconds;
}

/* Classifies an engine that just closed, and queues our own fatal alert when
 * BearSSL closed without one (it does for client-authentication failures). */
static void conn_finish(struct tls_conn *c)
{
	int err = br_ssl_engine_last_error(&c->sc.eng);
	int alert = -1;
	unsigned version;

	c->finished = 1;
	c->bearssl_err = err;
	if (c->error != TLS_OK)
		return;          /* already decided (e.g. transport EOF) */
	if (err >= BR_ERR_SEND_FATAL_ALERT)
		c->alert_sent = err - BR_ERR_SEND_FATAL_ALERT;
	if (err == BR_ERR_OK) {
		c->error = TLS_OK;
		return;
	}
	if (c->x509.err != TLS_OK) {
		c->error = c->x509.err;
	} else if (c->first_byte >= 0 && c->first_byte != 22) {
		/* Not even a TLS handshake record: plaintext HTTP ("GET "), SSH
		 * banner, scanner noise. BearSSL calls it a version error. */
		c->error = TLS_ERR_PROTOCOL;
	} else if (err == BR_ERR_NO_CLIENT_AUTH) {
		c->error = TLS_ERR_NO_CLIENT_CERT;
	} else if (err >= BR_ERR_SEND_FATAL_ALERT) {
		if (c->alert_sent == ALERT_PROTOCOL_VERSION)
			c->error = TLS_ERR_UNSUPPORTED_VERSION;
		else if (c->alert_sent == ALERT_HANDSHAKE_FAILURE)
			c->error = TLS_ERR_NO_SHARED_CIPHER;
		else
			c->error = TLS_ERR_PROTOCOL;
		return;           /* BearSSL sent it */
	} else if (err >= BR_ERR_RECV_FATAL_ALERT) {
		c->alert_received = err - BR_ERR_RECV_FATAL_ALERT;
		c->error = TLS_ERR_PEER_ALERT;
		return;
	} else if (err == BR_ERR_UNSUPPORTED_VERSION) {
		c->error = TLS_ERR_UNSUPPORTED_VERSION;
	} else if (err == BR_ERR_BAD_SIGNATURE || err == BR_ERR_WRONG_KEY_USAGE) {
		c->error = TLS_ERR_BAD_CERT;      /* CertificateVerify did not verify */
		alert = ALERT_DECRYPT_ERROR;
	} else if (err == BR_ERR_BAD_MAC || err == BR_ERR_BAD_FINISHED) {
		c->error = TLS_ERR_PROTOCOL;
		alert = err == BR_ERR_BAD_MAC ? ALERT_BAD_RECORD_MAC : ALERT_DECRYPT_ERROR;
	} else if (err == BR_ERR_BAD_PARAM || err == BR_ERR_NO_RANDOM) {
		c->error = TLS_ERR_INTERNAL;
	} else {
		c->error = TLS_ERR_PROTOCOL;
		if (err == BR_ERR_BAD_LENGTH || err == BR_ERR_TOO_LARGE)
			alert = ALERT_DECODE_ERROR;
	}
	if (alert < 0)
		alert = alert_for(c->error);
	/* Only in cleartext: after our ChangeCipherSpec an alert would have to be
	 * encrypted, and BearSSL's fatal errors there are the peer's fault. */
	if (alert < 0 || c->handshake_done || c->alert_sent >= 0)
		return;
	version = br_ssl_engine_get_version(&c->sc.eng);
	if (version < BR_TLS10 || version > BR_TLS12)
		version = BR_TLS10;   /* before ServerHello: what BearSSL itself uses */
	c->alert_rec[0] = 21;             /* ContentType alert */
	c->alert_rec[1] = (uint8_t)(version >> 8);
	c->alert_rec[2] = (uint8_t)version;
	c->alert_rec[3] = 0;
	c->alert_rec[4] = 2;
	c->alert_rec[5] = 2;              /* fatal */
	c->alert_rec[6] = (uint8_t)alert;
	c->alert_len = 7;
	c->alert_off = 0;
	c->alert_sent = alert;
}

static void conn_update(struct tls_conn *c)
{
	unsigned st;

	if (c->finished)
		return;
	st = br_ssl_engine_current_state(&c->sc.eng);
	if (st & BR_SSL_CLOSED) {
		conn_finish(c);
		return;
	}
	/* application_data is 1 once the handshake is complete (BearSSL sets it
	 * after the Finished exchange; 2 while closing). */
	if (!c->handshake_done && c->sc.eng.application_data == 1)
		c->handshake_done = 1;
}

size_t tls_conn_feed(struct tls_conn *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t done = 0;

	conn_update(c);
	if (c->first_byte < 0 && len > 0 && !c->finished)
		c->first_byte = p[0];
	while (done < len && !c->finished) {
		size_t cap, n;
		unsigned char *buf = br_ssl_engine_recvrec_buf(&c->sc.eng, &cap);

		if (buf == NULL || cap == 0)
			break;
		n = len - done < cap ? len - done : cap;
		memcpy(buf, p + done, n);
		br_ssl_engine_recvrec_ack(&c->sc.eng, n);
		done += n;
		conn_update(c);
	}
	return done;
}

const unsigned char *tls_conn_output(struct tls_conn *c, size_t *len)
{
	unsigned char *buf;

	conn_update(c);
	if (!c->finished) {
		buf = br_ssl_engine_sendrec_buf(&c->sc.eng, len);
		if (buf != NULL && *len > 0)
			return buf;
	}
	if (c->alert_off < c->alert_len) {
		*len = (size_t)(c->alert_len - c->alert_off);
		return c->alert_rec + c->alert_off;
	}
	*len = 0;
	return NULL;
}

void tls_conn_output_ack(struct tls_conn *c, size_t len)
{
	size_t have;

	if (len == 0)
		return;
	if (!c->finished && br_ssl_engine_sendrec_buf(&c->sc.eng, &have) != NULL && have > 0) {
		br_ssl_engine_sendrec_ack(&c->sc.eng, len);
	} else if (c->alert_off < c->alert_len) {
		if (len > (size_t)(c->alert_len - c->alert_off))
			len = (size_t)(c->alert_len - c->alert_off);
		c->alert_off = (uint8_t)(c->alert_off + len);
	}
	conn_update(c);
}

const unsigned char *tls_conn_read(struct tls_conn *c, size_t *len)
{
	unsigned char *buf;

	conn_update(c);
	*len = 0;
	if (c->finished)
		return NULL;
	buf = br_ssl_engine_recvapp_buf(&c->sc.eng, len);
	if (buf == NULL || *len == 0) {
		*len = 0;
		return NULL;
	}
	return buf;
}

void tls_conn_read_ack(struct tls_conn *c, size_t len)
{
	if (len == 0 || c->finished)
		return;
	br_ssl_engine_recvapp_ack(&c->sc.eng, len);
	conn_update(c);
}

size_t tls_conn_write(struct tls_conn *c, const void *data, size_t len)
{
	size_t cap, n;
	unsigned char *buf;

	conn_update(c);
	if (c->finished || !c->handshake_done || c->close_requested)
		return 0;
	buf = br_ssl_engine_sendapp_buf(&c->sc.eng, &cap);
	if (buf == NULL || cap == 0)
		return 0;
	n = len < cap ? len : cap;
	memcpy(buf, data, n);
	br_ssl_engine_sendapp_ack(&c->sc.eng, n);
	return n;
}

void tls_conn_flush(struct tls_conn *c)
{
	if (!c->finished)
		br_ssl_engine_flush(&c->sc.eng, 0);
	conn_update(c);
}

void tls_conn_close(struct tls_conn *c)
{
	if (c->finished || c->close_requested)
		return;
	c->close_requested = 1;
	br_ssl_engine_close(&c->sc.eng);
	conn_update(c);
}

void tls_conn_eof(struct tls_conn *c)
{
	conn_update(c);
	if (c->finished)
		return;
	/* After our close_notify the peer may just hang up: that is a clean end. */
	c->error = c->close_requested && c->handshake_done ? TLS_OK : TLS_ERR_CLOSED_BY_PEER;
	c->finished = 1;
	c->bearssl_err = br_ssl_engine_last_error(&c->sc.eng);
}

enum tls_state tls_conn_state(const struct tls_conn *c)
{
	unsigned st;

	if (c->finished)
		return c->error == TLS_OK ? TLS_STATE_CLOSED : TLS_STATE_FAILED;
	st = br_ssl_engine_current_state(&c->sc.eng);
	if (st & BR_SSL_CLOSED) {
		/* Not yet classified (const): report by the raw error. */
		return br_ssl_engine_last_error(&c->sc.eng) == BR_ERR_OK ? TLS_STATE_CLOSED
									   : TLS_STATE_FAILED;
	}
	if (c->close_requested || c->sc.eng.application_data == 2)
		return TLS_STATE_CLOSING;
	if (c->handshake_done || c->sc.eng.application_data == 1)
		return TLS_STATE_OPEN;
	return TLS_STATE_HANDSHAKING;
}

enum tls_error tls_conn_error(const struct tls_conn *c)
{
	if (!c->finished && (br_ssl_engine_current_state(&c->sc.eng) & BR_SSL_CLOSED)) {
		/* Classification happens on the next non-const call; give the best
		 * answer now without mutating. */
		if (c->x509.err != TLS_OK)
			return c->x509.err;
		return br_ssl_engine_last_error(&c->sc.eng) == BR_ERR_OK ? TLS_OK : TLS_ERR_PROTOCOL;
	}
	return c->error;
}

const struct tls_peer *tls_conn_peer(const struct tls_conn *c)
{
	/* A chain can verify and CertificateVerify still fail (a stolen public
	 * certificate): only a finished handshake proves the identity. The
	 * access_denied case is shown for logs (possession not yet proven). */
	if (!c->peer_valid)
		return NULL;
	return c->handshake_done || c->error == TLS_ERR_ACCESS_DENIED ? &c->peer : NULL;
}

void tls_conn_alerts(const struct tls_conn *c, int *sent, int *received)
{
	if (sent)
		*sent = c->alert_sent;
	if (received)
		*received = c->alert_received;
}

int tls_conn_bearssl_error(const struct tls_conn *c, int *x509_err)
{
	if (x509_err)
		*x509_err = c->x509.bearssl_x509_err;
	return c->finished ? c->bearssl_err : br_ssl_engine_last_error(&c->sc.eng);
}

int tls_conn_resumed(const struct tls_conn *c)
{
	return c->handshake_done && c->resumed;
}

unsigned tls_conn_cipher_suite(const struct tls_conn *c)
{
	return c->handshake_done ? c->sc.eng.session.cipher_suite : 0;
}

void tls_conn_wipe(struct tls_conn *c)
{
	tls_gcm_release(&c->gcm_in);
	tls_gcm_release(&c->gcm_out);
	explicit_bzero(c, sizeof *c);
}
