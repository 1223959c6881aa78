/* Session and verified-chain caches. See tls/cache.h for the rules. */
#include "tls/tls.h"

#include <stddef.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

static struct tls_conn *conn_of_cache(const br_ssl_session_cache_class **ctx)
{
	return (struct tls_conn *)(void *)((char *)ctx - offsetof(struct tls_conn, session_cache_vtable));
}

static int64_t cache_now(const struct tls_conn *c)
{
	return c->fixed_time ? c->fixed_time : (int64_t)time(NULL);
}

/* Session IDs are 32 random bytes from BearSSL's DRBG: any 4 index well. */
static struct tls_session_entry *session_slot(struct tls_cache *tc, const unsigned char *id)
{
	uint32_t h = (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 |
		     (uint32_t)id[3] << 24;

	return &tc->sessions[h % TLS_SESSION_CACHE_ENTRIES];
}

static void session_save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
			 const br_ssl_session_parameters *params)
{
	struct tls_conn *c = conn_of_cache(ctx);
	struct tls_cache *tc = c->cred->cache;
	struct tls_session_entry *e;
	int64_t now = cache_now(c), expires = now + TLS_SESSION_LIFETIME;

	(void)sc;
	/* Only sessions whose client proved its identity; BearSSL calls this
	 * once the full handshake (CertificateVerify included) succeeded. */
	if (tc == NULL || !tc->sessions_enabled || !c->peer_valid || c->x509.err != TLS_OK ||
	    params->session_id_len != 32)
		return;
	if (c->peer.not_after < expires)
		expires = c->peer.not_after;
	if (expires <= now)
		return;
	e = session_slot(tc, params->session_id);
	explicit_bzero(e, sizeof *e);
	memcpy(e->id, params->session_id, 32);
	e->version = params->version;
	e->cipher_suite = params->cipher_suite;
	memcpy(e->master_secret, params->master_secret, sizeof e->master_secret);
	e->trust_domain_index = c->peer.trust_domain_index;
	e->not_after = c->peer.not_after;
	memcpy(e->spiffe_id, c->peer.spiffe_id, sizeof e->spiffe_id);
	e->expires = expires;
	tc->counters.session_saved++;
}

static int session_load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
			br_ssl_session_parameters *params)
{
	struct tls_conn *c = conn_of_cache(ctx);
	struct tls_cache *tc = c->cred->cache;
	struct tls_session_entry *e;
	struct tls_spiffe_id id;
	int64_t now = cache_now(c);

	(void)sc;
	if (tc == NULL || !tc->sessions_enabled || params->session_id_len != 32)
		return 0;
	e = session_slot(tc, params->session_id);
	if (e->expires == 0 || now >= e->expires || now > e->not_after ||
	    memcmp(e->id, params->session_id, 32) != 0) {
		tc->counters.session_misses++;
		return 0;
	}
	if (tls_spiffe_parse(e->spiffe_id, strlen(e->spiffe_id), &id) != TLS_SPIFFE_OK) {
		explicit_bzero(e, sizeof *e);
		return 0;
	}
	memset(&c->peer, 0, sizeof c->peer);
	memcpy(c->peer.spiffe_id, id.id, sizeof c->peer.spiffe_id);
	memcpy(c->peer.trust_domain, id.trust_domain, sizeof c->peer.trust_domain);
	memcpy(c->peer.namespace_, id.namespace_, sizeof c->peer.namespace_);
	memcpy(c->peer.service_account, id.service_account, sizeof c->peer.service_account);
	c->peer.not_after = e->not_after;
	c->peer.trust_domain_index = e->trust_domain_index;
	/* Policy may have changed since: ask again; a refusal means a full
	 * handshake, which meets the same refusal with its alert. */
	if (c->authorize != NULL && c->authorize(c->authorize_arg, &c->peer) != 0) {
		memset(&c->peer, 0, sizeof c->peer);
		tc->counters.session_refused++;
		return 0;
	}
	c->peer_valid = 1;
	c->resumed = 1;
	params->version = e->version;
	params->cipher_suite = e->cipher_suite;
	memcpy(params->master_secret, e->master_secret, sizeof params->master_secret);
	tc->counters.session_resumed++;
	return 1;
}

const br_ssl_session_cache_class tls_session_cache_vtable = {
	sizeof(const br_ssl_session_cache_class *),
	session_save,
	session_load,
};

static struct tls_chain_entry *chain_slot(struct tls_cache *tc, const unsigned char *hash, int td)
{
	uint32_t h = ((uint32_t)hash[0] | (uint32_t)hash[1] << 8 | (uint32_t)hash[2] << 16 |
		      (uint32_t)hash[3] << 24) ^ (uint32_t)td;

	return &tc->chains[h % TLS_CHAIN_CACHE_ENTRIES];
}

const struct tls_chain_entry *tls_chain_cache_find(struct tls_cache *tc, const unsigned char hash[32],
						   int trust_domain_index, int64_t now)
{
	struct tls_chain_entry *e;

	if (tc == NULL || !tc->chains_enabled)
		return NULL;
	e = chain_slot(tc, hash, trust_domain_index);
	if (e->expires == 0 || now >= e->expires || e->trust_domain_index != trust_domain_index ||
	    memcmp(e->ee_hash, hash, 32) != 0) {
		tc->counters.chain_misses++;
		return NULL;
	}
	tc->counters.chain_hits++;
	return e;
}

void tls_chain_cache_store(struct tls_cache *tc, const unsigned char hash[32], int trust_domain_index,
			   const br_x509_pkey *pk, unsigned usages, int64_t now, int64_t ee_not_after)
{
	struct tls_chain_entry *e;
	int64_t expires = now + TLS_CHAIN_CACHE_LIFETIME;

	if (tc == NULL || !tc->chains_enabled || pk == NULL || pk->key_type != BR_KEYTYPE_EC ||
	    pk->key.ec.qlen > sizeof e->q)
		return;
	if (ee_not_after < expires)
		expires = ee_not_after;
	if (expires <= now)
		return;
	e = chain_slot(tc, hash, trust_domain_index);
	memcpy(e->ee_hash, hash, 32);
	e->trust_domain_index = trust_domain_index;
	e->usages = usages;
	e->curve = pk->key.ec.curve;
	e->qlen = pk->key.ec.qlen;
	memcpy(e->q, pk->key.ec.q, pk->key.ec.qlen);
	e->expires = expires;
	tc->counters.chain_stored++;
}

int tls_cache_seed(struct tls_cache *tc, const br_hash_class *hash)
{
	unsigned char seed[48];

	tc->drbg_ok = 0;
	if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		return -1;
	br_hmac_drbg_init(&tc->drbg, hash, seed, sizeof seed);
	explicit_bzero(seed, sizeof seed);
	tc->drbg_uses = 0;
	tc->drbg_ok = 1;
	return 0;
}

int tls_cache_seed_engine(struct tls_cache *tc, br_ssl_engine_context *eng)
{
	unsigned char seed[32];

	if (tc == NULL || !tc->drbg_ok)
		return -1;
	if (++tc->drbg_uses >= TLS_DRBG_RESEED) {
		unsigned char fresh[32];

		/* A failed reseed keeps the current state: still a sound DRBG. */
		if (getrandom(fresh, sizeof fresh, GRND_NONBLOCK) == (ssize_t)sizeof fresh)
			br_hmac_drbg_update(&tc->drbg, fresh, sizeof fresh);
		explicit_bzero(fresh, sizeof fresh);
		tc->drbg_uses = 0;
	}
	br_hmac_drbg_generate(&tc->drbg, seed, sizeof seed);
	br_ssl_engine_inject_entropy(eng, seed, sizeof seed);
	explicit_bzero(seed, sizeof seed);
	/* BearSSL would still add an OS seed once per engine reset; the
	 * injected 32 bytes are the full seed (rng_init_done is now 2). */
	eng->rng_os_rand_done = 1;
	return 0;
}
