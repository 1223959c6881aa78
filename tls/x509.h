/* Small DER walker for the fields of an X.509 end-entity certificate that
 * BearSSL does not check for us: validity dates, Subject Alternative Name
 * URIs and Extended Key Usage. And the SPIFFE ID parser.
 *
 * No allocation, no I/O: tls_x509_parse() reads a caller-owned DER buffer and
 * fills a struct whose pointers point INTO that buffer (valid as long as it).
 * Signatures are NOT checked here: br_x509_minimal does that (tls/conn.c). */
#ifndef MESHGATE_TLS_X509_H
#define MESHGATE_TLS_X509_H
#include <stddef.h>
#include <stdint.h>

/* Limits, with the reason beside each. */
#define TLS_X509_MAX_DEPTH 8        /* nesting we ever descend into; the walker is not recursive */
#define TLS_SPIFFE_MAX_ID 1024      /* spiffe:// + trust domain (255) + /ns/63/sa/253 fits
				     * with room; the SPIFFE spec allows 2048, longer IDs
				     * are refused (bad_spiffe_id) to keep tls_peer small */
#define TLS_SPIFFE_MAX_TRUST_DOMAIN 255  /* SPIFFE spec */
#define TLS_SPIFFE_MAX_NAME 253     /* namespace (63) and service account (253), k8s limits */

enum tls_x509_status {
	TLS_X509_OK = 0,
	TLS_X509_TRUNCATED,         /* a length runs past its container */
	TLS_X509_BAD_TAG,           /* an element is not the expected type */
	TLS_X509_BAD_LENGTH,        /* indefinite, non-minimal or oversized length */
	TLS_X509_BAD_TIME,          /* validity is not a well-formed UTCTime/GeneralizedTime */
	TLS_X509_BAD_EXTENSION,     /* malformed SAN or EKU contents */
	TLS_X509_DUPLICATE_EXTENSION,  /* RFC 5280 4.2: each extension at most once */
	TLS_X509_TRAILING_DATA,     /* bytes after the outer SEQUENCE */
};

/* Stable snake_case name ("truncated", "bad_tag", ...). */
const char *tls_x509_status_name(enum tls_x509_status st);

struct tls_x509_info {
	int64_t not_before;         /* Unix seconds (UTC) */
	int64_t not_after;
	int has_eku;                /* the extendedKeyUsage extension is present */
	int eku_client_auth;        /* EKU lists id-kp-clientAuth or anyExtendedKeyUsage */
	int eku_server_auth;        /* EKU lists id-kp-serverAuth or anyExtendedKeyUsage */
	unsigned uri_count;         /* URI entries in the SAN (all SAN extensions) */
	const uint8_t *uri;         /* the first URI SAN, not NUL-terminated; NULL if none */
	size_t uri_len;
	unsigned dns_count;         /* DNS entries in the SAN, for information */
};

/* Parses one DER certificate. Returns TLS_X509_OK and fills *out, or an
 * error (then *out is unspecified). Never reads outside der[0..len). */
enum tls_x509_status tls_x509_parse(const uint8_t *der, size_t len, struct tls_x509_info *out);

/* A parsed SPIFFE ID: spiffe://TRUST_DOMAIN/PATH. */
struct tls_spiffe_id {
	char id[TLS_SPIFFE_MAX_ID + 1];          /* full, NUL-terminated */
	char trust_domain[TLS_SPIFFE_MAX_TRUST_DOMAIN + 1];
	char namespace_[TLS_SPIFFE_MAX_NAME + 1];  /* "" unless path is /ns/NS/sa/SA */
	char service_account[TLS_SPIFFE_MAX_NAME + 1];
};

enum tls_spiffe_status {
	TLS_SPIFFE_OK = 0,
	TLS_SPIFFE_NOT_SPIFFE,      /* scheme is not "spiffe://" (case-sensitive, per spec) */
	TLS_SPIFFE_BAD_TRUST_DOMAIN,   /* empty, too long, or a character outside [a-z0-9.-_] */
	TLS_SPIFFE_BAD_PATH,        /* empty path, empty/"."/".." segment, trailing '/',
				     * a character outside [A-Za-z0-9.-_], query/fragment */
	TLS_SPIFFE_TOO_LONG,
};

const char *tls_spiffe_status_name(enum tls_spiffe_status st);

/* Validates and splits a SPIFFE ID per the SPIFFE-ID specification (workload
 * IDs: the path must be non-empty). `uri` need not be NUL-terminated. */
enum tls_spiffe_status tls_spiffe_parse(const char *uri, size_t len, struct tls_spiffe_id *out);

/* 1 if `td` is a syntactically valid trust domain name. */
int tls_spiffe_trust_domain_valid(const char *td);

/* Days-from-civil helper, exposed for tests: Unix seconds of a UTC date. */
int64_t tls_x509_timegm(int year, int month, int day, int hour, int minute, int second);

#endif
