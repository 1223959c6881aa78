/* Access log: one JSON line per connection and per HTTP request, and RFC
 * 5424 framing for sending it to a syslog collector over UDP. No I/O, no
 * allocation, no clock reads: the proxy fills struct accesslog_entry (with
 * wall-clock time it read itself) and passes a buffer.
 *
 * A line looks like (one line, keys always present, in this order):
 *   {"time":"2024-05-01T12:00:00.123456Z","kind":"request",
 *    "peer":"198.18.0.1:40000","listener":"web","spiffe_id":"spiffe://td/ns/a/sa/b",
 *    "service":"api","namespace":"prod","method":"GET","path":"/v1/x",
 *    "path_truncated":false,"response_code":200,"decision":"allow",
 *    "policy":"prod/allow-web","dry_run":{"action":"deny","policy":"prod/deny-all"},
 *    "refusal":null,"bytes_received":512,"bytes_sent":1024,"duration_ms":1.234,
 *    "tls_version":"TLSv1.2","tls_suite":"ECDHE-ECDSA-AES128-GCM-SHA256"}
 * Absent values are null. Strings are JSON-escaped: '"' '\\' and control
 * bytes (as \n \r \t \b \f or \u00XX), DEL and U+2028/U+2029 as \uXXXX,
 * and every byte that is not part of valid UTF-8 as \ufffd, so a hostile
 * path or SPIFFE ID can neither break the line nor the JSON.
 *
 * Input strings are capped (ACCESSLOG_PATH_CAP for the path, with
 * "path_truncated":true; ACCESSLOG_ID_CAP for the SPIFFE ID;
 * ACCESSLOG_FIELD_CAP for the others, cut silently at a UTF-8 boundary or
 * escaped as invalid), so any entry fits in ACCESSLOG_LINE_MAX bytes.
 *
 * How the proxy drives it:
 *   char line[ACCESSLOG_LINE_MAX];
 *   size_t n = accesslog_format(&entry, line, sizeof line);   // ends with "\n"
 *   console_print_async(&console, line, n);                    // to the console
 *   char dgram[ACCESSLOG_SYSLOG_MAX];
 *   size_t d = accesslog_syslog_frame(&syslog_hdr, entry.time_unix_us, line, n,
 *                                     dgram, sizeof dgram);
 *   udp_send(collector, dgram, d);                              // one datagram
 */
#ifndef MESHGATE_ACCESSLOG_H
#define MESHGATE_ACCESSLOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy_decision;

#define ACCESSLOG_PATH_CAP 1024     /* path bytes logged; more sets path_truncated */
#define ACCESSLOG_ID_CAP 256        /* SPIFFE ID bytes (BearSSL caps a SAN URI at 255) */
#define ACCESSLOG_FIELD_CAP 128     /* every other string */
/* Worst case: every capped byte escaped as \u00XX (6 bytes): path 6144,
 * ID 1536, 7 fields + 2 policies ("ns/name", 127) well under 8000, keys
 * and numbers ~600. */
#define ACCESSLOG_LINE_MAX 16384
/* RFC 5424 header limits: HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32. */
#define ACCESSLOG_SYSLOG_HEADER_MAX 512
#define ACCESSLOG_SYSLOG_MAX (ACCESSLOG_SYSLOG_HEADER_MAX + ACCESSLOG_LINE_MAX)

enum accesslog_kind { ACCESSLOG_CONNECTION, ACCESSLOG_REQUEST };

struct accesslog_entry {
	enum accesslog_kind kind;
	uint64_t time_unix_us;          /* start of the connection / request, UTC */
	uint32_t peer_ip;               /* network byte order */
	uint16_t peer_port;             /* host order */
	const char *listener;           /* listener name */
	const char *spiffe_id;          /* "spiffe://..."; NULL = no client certificate */
	const char *service;
	const char *service_namespace;
	/* requests only (NULL / 0 for connections) */
	const char *method;
	const char *path;               /* need not be NUL-terminated: path_len bytes */
	size_t path_len;
	int response_code;              /* 0 = none (null) */
	/* the authorization result; NULL = no decision was made (refused before) */
	const struct policy_decision *decision;
	const char *refusal;            /* refusal reason (a metrics reason string) or NULL */
	uint64_t bytes_received;        /* from the peer */
	uint64_t bytes_sent;            /* to the peer */
	uint64_t duration_us;
	const char *tls_version;        /* "TLSv1.2"; NULL = plaintext */
	const char *tls_suite;
};

/* Writes one JSON line ending in "\n" and a NUL. Returns its length
 * (without the NUL), or 0 with buf[0] = '\0' when len is too small; len >=
 * ACCESSLOG_LINE_MAX always suffices. */
size_t accesslog_format(const struct accesslog_entry *e, char *buf, size_t len);

/* JSON-escapes s[0..n) as a quoted string (rules above). Returns bytes
 * written, or 0 (nothing useful written) when it does not fit. */
size_t accesslog_json_string(const char *s, size_t n, char *buf, size_t len);

/* RFC 3339 UTC with microseconds: "2024-05-01T12:00:00.123456Z" (27 chars).
 * Returns the length, or 0 when len < 28. */
size_t accesslog_timestamp(uint64_t time_unix_us, char *buf, size_t len);

/* RFC 5424 header fields. NULL or "" fields are sent as the NILVALUE "-";
 * bytes outside printable US-ASCII (33..126) become '_' and fields are cut
 * to their RFC maximum. */
struct accesslog_syslog {
	int facility;                   /* 0..23; 16 = local0 */
	int severity;                   /* 0..7; 6 = informational */
	const char *hostname;
	const char *app_name;           /* "meshgate" */
	const char *procid;
	const char *msgid;              /* "access" */
};

/* "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG" with no
 * structured data and no trailing newline (one UDP datagram per message;
 * a trailing "\n" of msg is dropped). MSG is sent as MSG-ANY without a BOM
 * (the JSON is valid UTF-8 anyway). Returns the datagram length, or 0 when
 * facility/severity are out of range or it does not fit. */
size_t accesslog_syslog_frame(const struct accesslog_syslog *hdr, uint64_t time_unix_us,
			      const char *msg, size_t msglen, char *buf, size_t len);

#endif
