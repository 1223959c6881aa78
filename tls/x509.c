/* DER walker for end-entity certificate fields, and the SPIFFE ID parser.
 * See tls/x509.h. Every read is bounds-checked against its container. */
#include "tls/x509.h"

#include <string.h>

struct der {
	const uint8_t *p;
	const uint8_t *end;
};

/* Reads one TLV at d->p; on success *val is the content and d->p moves
 * past it. Only low-tag-number form (all X.509 tags are) and DER lengths. */
static enum tls_x509_status der_next(struct der *d, uint8_t *tag, struct der *val)
{
	size_t avail = (size_t)(d->end - d->p);
	size_t len, n, i;
	const uint8_t *q = d->p;

	if (avail < 2)
		return TLS_X509_TRUNCATED;
	*tag = q[0];
	if ((q[0] & 0x1f) == 0x1f)
		return TLS_X509_BAD_TAG;
	if (q[1] < 0x80) {
		len = q[1];
		q += 2;
		avail -= 2;
	} else {
		n = q[1] & 0x7f;
		if (n == 0 || n > 4)    /* indefinite, or over 4 GB */
			return TLS_X509_BAD_LENGTH;
		if (avail - 2 < n)
			return TLS_X509_TRUNCATED;
		if (q[2] == 0)           /* non-minimal */
			return TLS_X509_BAD_LENGTH;
		len = 0;
		for (i = 0; i < n; i++)
			len = (len << 8) | q[2 + i];
		if (len < 0x80)
			return TLS_X509_BAD_LENGTH;
		q += 2 + n;
		avail -= 2 + n;
	}
	if (len > avail)
		return TLS_X509_TRUNCATED;
	val->p = q;
	val->end = q + len;
	d->p = q + len;
	return TLS_X509_OK;
}

static enum tls_x509_status der_expect(struct der *d, uint8_t want, struct der *val)
{
	uint8_t tag;
	enum tls_x509_status st = der_next(d, &tag, val);

	if (st != TLS_X509_OK)
		return st;
	return tag == want ? TLS_X509_OK : TLS_X509_BAD_TAG;
}

static int der_peek(const struct der *d, uint8_t tag)
{
	return d->p < d->end && d->p[0] == tag;
}

static size_t der_len(const struct der *d)
{
	return (size_t)(d->end - d->p);
}

int64_t tls_x509_timegm(int year, int month, int day, int hour, int minute, int second)
{
	/* Howard Hinnant's days_from_civil. */
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t mp = (month + 9) % 12;
	int64_t doy = (153 * mp + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;

	return days * 86400 + hour * 3600 + minute * 60 + second;
}

static int digits(const uint8_t *p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static enum tls_x509_status parse_time(struct der *d, int64_t *out)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	uint8_t tag;
	struct der v;
	const uint8_t *p;
	int year, mon, day, hour, min, sec;
	enum tls_x509_status st = der_next(d, &tag, &v);

	if (st != TLS_X509_OK)
		return st;
	p = v.p;
	if (tag == 0x17 && der_len(&v) == 13) {          /* UTCTime YYMMDDHHMMSSZ */
		if (digits(p, 2, &year))
			return TLS_X509_BAD_TIME;
		year += year < 50 ? 2000 : 1900;
		p += 2;
	} else if (tag == 0x18 && der_len(&v) == 15) {   /* GeneralizedTime */
		if (digits(p, 4, &year))
			return TLS_X509_BAD_TIME;
		p += 4;
	} else {
		return tag == 0x17 || tag == 0x18 ? TLS_X509_BAD_TIME : TLS_X509_BAD_TAG;
	}
	if (digits(p, 2, &mon) || digits(p + 2, 2, &day) || digits(p + 4, 2, &hour) ||
	    digits(p + 6, 2, &min) || digits(p + 8, 2, &sec) || p[10] != 'Z')
		return TLS_X509_BAD_TIME;
	if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hour > 23 || min > 59 ||
	    sec > 60)
		return TLS_X509_BAD_TIME;
	*out = tls_x509_timegm(year, mon, day, hour, min, sec);
	return TLS_X509_OK;
}

static const uint8_t OID_SAN[] = { 0x55, 0x1d, 0x11 };
static const uint8_t OID_EKU[] = { 0x55, 0x1d, 0x25 };
static const uint8_t OID_ANY_EKU[] = { 0x55, 0x1d, 0x25, 0x00 };
static const uint8_t OID_KP_SERVER[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01 };
static const uint8_t OID_KP_CLIENT[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02 };

static int oid_is(const struct der *v, const uint8_t *oid, size_t n)
{
	return der_len(v) == n && memcmp(v->p, oid, n) == 0;
}

static enum tls_x509_status parse_san(struct der v, struct tls_x509_info *out)
{
	struct der seq, name;
	uint8_t tag;
	enum tls_x509_status st = der_expect(&v, 0x30, &seq);

	if (st != TLS_X509_OK)
		return TLS_X509_BAD_EXTENSION;
	if (der_len(&v) != 0 || der_len(&seq) == 0)
		return TLS_X509_BAD_EXTENSION;
	while (der_len(&seq) > 0) {
		if (der_next(&seq, &tag, &name) != TLS_X509_OK)
			return TLS_X509_BAD_EXTENSION;
		if (tag == 0x86) {               /* [6] uniformResourceIdentifier */
			if (out->uri_count++ == 0) {
				out->uri = name.p;
				out->uri_len = der_len(&name);
			}
		} else if (tag == 0x82) {        /* [2] dNSName */
			out->dns_count++;
		}
	}
	return TLS_X509_OK;
}

static enum tls_x509_status parse_eku(struct der v, struct tls_x509_info *out)
{
	struct der seq, oid;

	if (der_expect(&v, 0x30, &seq) != TLS_X509_OK || der_len(&v) != 0 || der_len(&seq) == 0)
		return TLS_X509_BAD_EXTENSION;
	while (der_len(&seq) > 0) {
		if (der_expect(&seq, 0x06, &oid) != TLS_X509_OK)
			return TLS_X509_BAD_EXTENSION;
		if (oid_is(&oid, OID_KP_CLIENT, sizeof OID_KP_CLIENT))
			out->eku_client_auth = 1;
		else if (oid_is(&oid, OID_KP_SERVER, sizeof OID_KP_SERVER))
			out->eku_server_auth = 1;
		else if (oid_is(&oid, OID_ANY_EKU, sizeof OID_ANY_EKU))
			out->eku_client_auth = out->eku_server_auth = 1;
	}
	out->has_eku = 1;
	return TLS_X509_OK;
}

static enum tls_x509_status parse_extensions(struct der exts, struct tls_x509_info *out)
{
	struct der list, ext, oid, value, crit;
	int seen_san = 0;
	enum tls_x509_status st;

	if ((st = der_expect(&exts, 0x30, &list)) != TLS_X509_OK)
		return st;
	if (der_len(&exts) != 0)
		return TLS_X509_TRAILING_DATA;
	while (der_len(&list) > 0) {
		if ((st = der_expect(&list, 0x30, &ext)) != TLS_X509_OK)
			return st;
		if ((st = der_expect(&ext, 0x06, &oid)) != TLS_X509_OK)
			return st;
		if (der_peek(&ext, 0x01) && (st = der_expect(&ext, 0x01, &crit)) != TLS_X509_OK)
			return st;
		if ((st = der_expect(&ext, 0x04, &value)) != TLS_X509_OK)
			return st;
		if (der_len(&ext) != 0)
			return TLS_X509_TRAILING_DATA;
		if (oid_is(&oid, OID_SAN, sizeof OID_SAN)) {
			if (seen_san++)
				return TLS_X509_DUPLICATE_EXTENSION;
			if ((st = parse_san(value, out)) != TLS_X509_OK)
				return st;
		} else if (oid_is(&oid, OID_EKU, sizeof OID_EKU)) {
			if (out->has_eku)
				return TLS_X509_DUPLICATE_EXTENSION;
			if ((st = parse_eku(value, out)) != TLS_X509_OK)
				return st;
		}
	}
	return TLS_X509_OK;
}

enum tls_x509_status tls_x509_parse(const uint8_t *der, size_t len, struct tls_x509_info *out)
{
	struct der all = { der, der + len }, cert, tbs, skip, validity;
	enum tls_x509_status st;
	uint8_t tag;

	memset(out, 0, sizeof *out);
	if (der == NULL)
		return TLS_X509_TRUNCATED;
	if ((st = der_expect(&all, 0x30, &cert)) != TLS_X509_OK)
		return st;
	if (der_len(&all) != 0)
		return TLS_X509_TRAILING_DATA;
	if ((st = der_expect(&cert, 0x30, &tbs)) != TLS_X509_OK)
		return st;
	if (der_peek(&tbs, 0xa0) && (st = der_expect(&tbs, 0xa0, &skip)) != TLS_X509_OK)
		return st;
	if ((st = der_expect(&tbs, 0x02, &skip)) != TLS_X509_OK)     /* serialNumber */
		return st;
	if ((st = der_expect(&tbs, 0x30, &skip)) != TLS_X509_OK)     /* signature */
		return st;
	if ((st = der_expect(&tbs, 0x30, &skip)) != TLS_X509_OK)     /* issuer */
		return st;
	if ((st = der_expect(&tbs, 0x30, &validity)) != TLS_X509_OK)
		return st;
	if ((st = parse_time(&validity, &out->not_before)) != TLS_X509_OK)
		return st;
	if ((st = parse_time(&validity, &out->not_after)) != TLS_X509_OK)
		return st;
	if (der_len(&validity) != 0)
		return TLS_X509_TRAILING_DATA;
	if ((st = der_expect(&tbs, 0x30, &skip)) != TLS_X509_OK)     /* subject */
		return st;
	if ((st = der_expect(&tbs, 0x30, &skip)) != TLS_X509_OK)     /* subjectPublicKeyInfo */
		return st;
	while (der_len(&tbs) > 0) {
		if ((st = der_next(&tbs, &tag, &skip)) != TLS_X509_OK)
			return st;
		if (tag == 0x81 || tag == 0xa1 || tag == 0x82 || tag == 0xa2)
			continue;    /* issuerUniqueID / subjectUniqueID */
		if (tag != 0xa3)
			return TLS_X509_BAD_TAG;
		if ((st = parse_extensions(skip, out)) != TLS_X509_OK)
			return st;
		if (der_len(&tbs) != 0)
			return TLS_X509_TRAILING_DATA;
	}
	/* signatureAlgorithm, signatureValue: present and well-formed TLVs. */
	if ((st = der_expect(&cert, 0x30, &skip)) != TLS_X509_OK)
		return st;
	if ((st = der_expect(&cert, 0x03, &skip)) != TLS_X509_OK)
		return st;
	return der_len(&cert) == 0 ? TLS_X509_OK : TLS_X509_TRAILING_DATA;
}

const char *tls_x509_status_name(enum tls_x509_status st)
{
	switch (st) {
	case TLS_X509_OK: return "ok";
	case TLS_X509_TRUNCATED: return "truncated";
	case TLS_X509_BAD_TAG: return "bad_tag";
	case TLS_X509_BAD_LENGTH: return "bad_length";
	case TLS_X509_BAD_TIME: return "bad_time";
	case TLS_X509_BAD_EXTENSION: return "bad_extension";
	case TLS_X509_DUPLICATE_EXTENSION: return "duplicate_extension";
	case TLS_X509_TRAILING_DATA: return "trailing_data";
	}
	return "unknown";
}

/* ---------------------------------------------------------------- SPIFFE */

static int td_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

int tls_spiffe_trust_domain_valid(const char *td)
{
	size_t n = strlen(td), i;

	if (n == 0 || n > TLS_SPIFFE_MAX_TRUST_DOMAIN)
		return 0;
	for (i = 0; i < n; i++)
		if (!td_char(td[i]))
			return 0;
	return 1;
}

enum tls_spiffe_status tls_spiffe_parse(const char *uri, size_t len, struct tls_spiffe_id *out)
{
	static const char scheme[] = "spiffe://";
	const size_t slen = sizeof scheme - 1;
	size_t i, td_end, seg_start, nseg = 0;
	const char *segs[4];
	size_t seglen[4];

	memset(out, 0, sizeof *out);
	if (len < slen || memcmp(uri, scheme, slen) != 0)
		return TLS_SPIFFE_NOT_SPIFFE;
	if (len > TLS_SPIFFE_MAX_ID)
		return TLS_SPIFFE_TOO_LONG;
	for (td_end = slen; td_end < len && uri[td_end] != '/'; td_end++)
		if (!td_char(uri[td_end]))
			return TLS_SPIFFE_BAD_TRUST_DOMAIN;
	if (td_end == slen || td_end - slen > TLS_SPIFFE_MAX_TRUST_DOMAIN)
		return TLS_SPIFFE_BAD_TRUST_DOMAIN;
	if (td_end == len)
		return TLS_SPIFFE_BAD_PATH;  /* workload IDs have a path */
	/* Path: one or more "/segment". */
	i = td_end;
	while (i < len) {
		i++;                         /* skip '/' */
		seg_start = i;
		while (i < len && uri[i] != '/') {
			if (!path_char(uri[i]))
				return TLS_SPIFFE_BAD_PATH;
			i++;
		}
		if (i == seg_start)
			return TLS_SPIFFE_BAD_PATH;   /* empty segment or trailing '/' */
		if ((i - seg_start == 1 && uri[seg_start] == '.') ||
		    (i - seg_start == 2 && uri[seg_start] == '.' && uri[seg_start + 1] == '.'))
			return TLS_SPIFFE_BAD_PATH;
		if (nseg < 4) {
			segs[nseg] = uri + seg_start;
			seglen[nseg] = i - seg_start;
		}
		nseg++;
	}
	memcpy(out->id, uri, len);
	memcpy(out->trust_domain, uri + slen, td_end - slen);
	if (nseg == 4 && seglen[0] == 2 && memcmp(segs[0], "ns", 2) == 0 && seglen[2] == 2 &&
	    memcmp(segs[2], "sa", 2) == 0 && seglen[1] <= TLS_SPIFFE_MAX_NAME &&
	    seglen[3] <= TLS_SPIFFE_MAX_NAME) {
		memcpy(out->namespace_, segs[1], seglen[1]);
		memcpy(out->service_account, segs[3], seglen[3]);
	}
	return TLS_SPIFFE_OK;
}

const char *tls_spiffe_status_name(enum tls_spiffe_status st)
{
	switch (st) {
	case TLS_SPIFFE_OK: return "ok";
	case TLS_SPIFFE_NOT_SPIFFE: return "not_spiffe";
	case TLS_SPIFFE_BAD_TRUST_DOMAIN: return "bad_trust_domain";
	case TLS_SPIFFE_BAD_PATH: return "bad_path";
	case TLS_SPIFFE_TOO_LONG: return "too_long";
	}
	return "unknown";
}
