/* DNS responder engine: parses queries, answers from a lookup callback,
 * rate-limits per source. No I/O (STYLE.md habit 2): the caller hands in the
 * bytes of one UDP datagram or one TCP-framed message and sends what comes
 * back. No allocation: every struct is caller-owned.
 *
 * What is answered (RFC 1035 subset, IN class, one question):
 *   - a name the lookup callback knows: A -> one A record (its address),
 *     other types -> NOERROR with no answer (NODATA), so AAAA-first clients
 *     fall back to A;
 *   - an unknown name: DNS_ACTION_FORWARD in ALLOW_ANY mode (the caller
 *     relays the query upstream), else NXDOMAIN or REFUSED (configured);
 *   - a malformed query with a readable header: FORMERR; an opcode other
 *     than QUERY: NOTIMP; a query that is not even 12 bytes, or a response
 *     (QR=1, never answered: reflection loops), or a rate-limited source:
 *     DNS_ACTION_DROP, no reply.
 * Every outcome is counted in struct dns_counters.
 *
 * Names are checked while read: labels of 1..63 bytes, at most 255 wire
 * bytes in all, compression pointers only backwards and at most
 * DNS_MAX_POINTERS of them (so loops end), no extended label types. */
#ifndef MESHGATE_NET_DNS_H
#define MESHGATE_NET_DNS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- wire constants and limits (RFC 1035 unless said) */
#define DNS_PORT 53
#define DNS_HEADER_LEN 12
#define DNS_MAX_NAME_WIRE 255       /* RFC 1035 2.3.4, includes length bytes */
#define DNS_MAX_NAME_TEXT 254       /* 253 characters + NUL, dotted, no final dot */
#define DNS_MAX_LABEL 63
#define DNS_MAX_POINTERS 16         /* a legal name has < 128 labels; 16 jumps is plenty */
#define DNS_MAX_UDP 512             /* answered without EDNS; our answers are far smaller */
#define DNS_MAX_MESSAGE 65535       /* TCP: 2-byte length prefix (RFC 1035 4.2.2) */
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_OPT 41
#define DNS_TYPE_ANY 255
#define DNS_CLASS_IN 1
#define DNS_OPCODE_QUERY 0
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
#define DNS_RCODE_REFUSED 5
/* An A answer: header + question (name wire + 4) + answer (2 + 10 + 4). */
#define DNS_ANSWER_MAX (DNS_HEADER_LEN + DNS_MAX_NAME_WIRE + 4 + 16)

enum dns_error {
	DNS_OK = 0,
	DNS_ERR_SHORT,              /* fewer than 12 bytes: no header to answer */
	DNS_ERR_NOT_QUERY,          /* QR=1: a response, never answered */
	DNS_ERR_OPCODE,             /* opcode other than QUERY -> NOTIMP */
	DNS_ERR_COUNTS,             /* QDCOUNT != 1, answers/authority present, ARCOUNT > 1 */
	DNS_ERR_TRUNCATED,          /* a name or field runs past the end */
	DNS_ERR_LABEL,              /* label > 63, extended label type, bad characters */
	DNS_ERR_NAME_TOO_LONG,      /* > 255 wire bytes */
	DNS_ERR_POINTER,            /* forward/self pointer or more than DNS_MAX_POINTERS */
	DNS_ERR_CLASS,              /* class other than IN (or ANY) */
	DNS_ERR_TRAILING,           /* bytes after the last record */
};
const char *dns_error_name(enum dns_error e);

/* Reads the (possibly compressed) name at `off` of `msg`. On success writes
 * it lower-cased and dotted without the final dot ("" for the root) into
 * `out` (DNS_MAX_NAME_TEXT bytes), and the offset just past the name in the
 * original position (after the first pointer, if any) into `*next`. Any
 * byte in a label other than letters, digits, '-' and '_' is refused
 * (DNS_ERR_LABEL): names that cannot be written dotted are not served. */
enum dns_error dns_name_read(const uint8_t *msg, size_t len, size_t off,
			     char out[DNS_MAX_NAME_TEXT], size_t *next);

/* One parsed query. `name` is the question name as dns_name_read gives it. */
struct dns_query {
	uint16_t id;
	uint16_t flags;             /* as received */
	uint16_t qtype, qclass;
	bool edns;                  /* an OPT record was present */
	char name[DNS_MAX_NAME_TEXT];
};

enum dns_error dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q);

/* Writes an answer to `q` into out (cap >= DNS_ANSWER_MAX is always
 * enough). addr_be != 0 and qtype A/ANY -> one A record with `ttl`; else no
 * answer records. rcode as given. Returns the length, 0 if cap is too small. */
size_t dns_build_answer(const struct dns_query *q, uint8_t rcode, uint32_t addr_be,
			uint32_t ttl, uint8_t *out, size_t cap);

/* Writes a header-only error reply (FORMERR, NOTIMP) echoing id, opcode and
 * RD of the 12-byte header at `msg`. Returns DNS_HEADER_LEN, or 0 when len or
 * cap < DNS_HEADER_LEN. */
size_t dns_build_header_error(const uint8_t *msg, size_t len, uint8_t rcode, uint8_t *out,
			      size_t cap);

/* ---- the client side: meshgate asking an upstream resolver ---- */

/* Writes a recursive query (RD) for `name` (dotted, no final dot) and qtype
 * into out. Returns the length, 0 if the name is not valid or cap too small. */
size_t dns_build_query(uint16_t id, const char *name, uint16_t qtype, uint8_t *out, size_t cap);

/* Whether `msg` is a response (QR) with exactly one question, equal to
 * (qname, qtype) (names compared case-insensitively). On true, *next is the
 * offset just past the question. The id is the caller's to check. */
bool dns_response_matches(const uint8_t *msg, size_t len, const char *qname, uint16_t qtype,
			  size_t *next);

/* The first A record of a matching response's answer section (`off` from
 * dns_response_matches), NOERROR only: its address and TTL. false = none. */
bool dns_response_first_a(const uint8_t *msg, size_t len, size_t off, uint32_t *addr_be,
			  uint32_t *ttl);

/* ---- per-source rate limiting: token buckets in a fixed table.
 * 4-way set associative by a seeded hash of the source address; a new source
 * takes the least recently seen way of its set. Sources evicted under a
 * flood of spoofed addresses start again with a full bucket: the limit holds
 * per source as long as the table is large enough for the live sources. */
#define DNS_RL_WAYS 4
struct dns_rl_entry {
	uint32_t addr;
	uint32_t last_ms;
	uint32_t tokens_milli;      /* tokens * 1000 */
	uint32_t used;              /* 0 = free way */
};
struct dns_ratelimit {
	struct dns_rl_entry *table; /* caller-owned, nsets * DNS_RL_WAYS entries, zeroed */
	uint32_t nsets;             /* power of two */
	uint32_t seed;
	uint32_t rate_per_s;        /* refill; 0 = no limit */
	uint32_t burst;             /* bucket size */
};
/* true = allowed (a token was taken). */
bool dns_ratelimit_allow(struct dns_ratelimit *rl, uint32_t addr, uint32_t now_ms);

/* ---- the responder */
enum dns_unknown_answer { DNS_UNKNOWN_NXDOMAIN, DNS_UNKNOWN_REFUSED };

/* Returns true and the address to answer when `name` (lower-case, dotted)
 * is served; false for an unknown name. */
typedef bool (*dns_lookup_fn)(void *arg, const char *name, uint32_t *addr_be);

struct dns_counters {
	uint64_t received;          /* every message handed in */
	uint64_t answered;          /* NOERROR with an A record */
	uint64_t nodata;            /* known name, type without records */
	uint64_t nxdomain, refused, forwarded;
	uint64_t formerr, notimp;
	uint64_t dropped_short, dropped_response, ratelimited;
	uint64_t err_pointer, err_name;     /* breakdown of formerr */
};

struct dns_responder {
	dns_lookup_fn lookup;
	void *lookup_arg;
	bool allow_any;             /* unknown names: forward instead of refusing */
	enum dns_unknown_answer unknown;
	uint32_t ttl;               /* seconds, for our A records */
	struct dns_ratelimit rl;
	struct dns_counters counters;
};

enum dns_action {
	DNS_ACTION_DROP,            /* send nothing */
	DNS_ACTION_REPLY,           /* send out[0..*out_len) to the source */
	DNS_ACTION_FORWARD,         /* relay the query (unchanged) upstream */
};

/* Handles one query from src_be at now_ms. `out` needs DNS_ANSWER_MAX bytes. */
enum dns_action dns_respond(struct dns_responder *r, uint32_t src_be, uint32_t now_ms,
			    const uint8_t *in, size_t len, uint8_t *out, size_t cap,
			    size_t *out_len);

/* TCP framing (RFC 1035 4.2.2): the length of the first whole message in
 * `buf` (its bytes start at buf + 2), 0 = need more bytes, -1 = a zero
 * length prefix (the connection should be closed). */
long dns_tcp_message_len(const uint8_t *buf, size_t len);

#endif
