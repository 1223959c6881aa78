/* HTTP/1.1 engine for `protocol: http` listeners: bytes in, events and bytes
 * out, no I/O, no allocation. Built on Debian's http-parser 2.9.4, which does
 * the tokenising; this module adds the proxy's rules on top (event
 * boundaries, head limits, request-smuggling checks, head rewrite, response
 * framing, local responses).
 *
 * ------------------------------------------------------------------------
 * HOW THE PROXY DRIVES IT (one downstream connection, after mTLS)
 * ------------------------------------------------------------------------
 * Setup (once per connection; both structs are caller-allocated, e.g. part
 * of the proxy's connection slot):
 *
 *   char head_buf[HTTP_HEAD_BUF_SIZE(cfg->limits.max_request_head)];  (or a
 *        slice of a pool sized at start)
 *   http_request_parser_init(&req, head_buf, sizeof head_buf,
 *                            cfg->limits.max_request_head);
 *   http_response_parser_init(&resp, cfg->limits.max_request_head);
 *
 * Downstream (client → proxy) bytes, after TLS decryption, in `buf[0..len)`:
 *
 *   while (1) {
 *     struct http_feed_result r = http_request_feed(&req, buf, len);
 *     buf += r.consumed; len -= r.consumed;        // consumed <= len, always
 *     switch (r.event) {
 *     case HTTP_EVENT_NEED_MORE:  // everything was consumed; wait for input
 *       goto wait;
 *     case HTTP_EVENT_HEAD_COMPLETE:
 *       // The head was copied into head_buf: the input bytes consumed so far
 *       // for this head may be released (tcp_recved) at once.
 *       // Build a policy_request from http_request_method(), _target(),
 *       // _host(), _headers(); policy_evaluate().
 *       // DENY: http_write_response(403, HTTP_BODY_RBAC_DENIED), count it,
 *       //   and close after writing (the body, if any, was not read; the
 *       //   simplest correct answer is `Connection: close`).
 *       // ALLOW: http_request_head_write() into the upstream send buffer,
 *       //   http_response_expect(&resp, http_request_method(&req)),
 *       //   then keep looping: body bytes follow.
 *       break;
 *     case HTTP_EVENT_BODY:
 *       // r.span_offset/r.span_len point into the caller's buffer (before
 *       // the `buf += consumed` above): forward exactly those bytes to the
 *       // upstream, verbatim (for chunked bodies this includes the chunk
 *       // framing and trailers, which the forwarded head still announces).
 *       break;
 *     case HTTP_EVENT_MESSAGE_COMPLETE:
 *       // The request is over; the next request's head may follow at once
 *       // (pipelining). Accessors stay valid until the next feed call that
 *       // consumes bytes. If !http_request_keep_alive(): stop reading and
 *       // close after the response.
 *       break;
 *     case HTTP_EVENT_TUNNEL:
 *       // Only after an Upgrade request completed: the span is opaque bytes
 *       // for the upstream (e.g. WebSocket). Forward verbatim.
 *       break;
 *     case HTTP_EVENT_ERROR:
 *       // Sticky. http_request_error(&req) says why; count it by
 *       // http_error_name(), answer http_error_status() with
 *       // http_write_error_response() if no response is in flight for
 *       // this connection, then close.
 *       goto close;
 *     }
 *   }
 *
 * Events other than NEED_MORE may come with consumed == 0 (even with len 0):
 * keep calling until NEED_MORE. Feeding the same bytes split anywhere gives
 * the same sequence of events and the same body bytes (tests check it).
 *
 * Upstream (server → proxy) bytes: http_response_feed() in the same loop.
 * Every byte it consumes belongs to the response stream and is forwarded to
 * the client verbatim; the events only mark where things are:
 *   HEAD_COMPLETE     http_response_status() is known (for metrics/access
 *                     log); http_response_is_interim() for 1xx (100 Continue
 *                     is forwarded, the final response is still to come).
 *   BODY              span of body bytes (informational; forward all
 *                     consumed bytes anyway).
 *   MESSAGE_COMPLETE  a response ended: if it was final, the request it
 *                     answered is done; if !http_response_keep_alive(), close
 *                     the upstream (and the downstream) after forwarding.
 *   TUNNEL            after a 101: opaque bytes, forward verbatim.
 *   ERROR             upstream spoke bad HTTP: if no byte of this response
 *                     reached the client yet (the proxy may hold bytes
 *                     consumed before HEAD_COMPLETE for that), answer 502
 *                     (HTTP_BODY_UPSTREAM_ERROR); else close.
 * On upstream EOF call http_response_eof(), like feed, until it returns
 * NEED_MORE or ERROR: MESSAGE_COMPLETE for a read-until-close body, NEED_MORE
 * for a clean close between responses with no request pending, ERROR
 * (truncated) otherwise. Bytes fed after EOF are an error (after_close).
 *
 * Buffer ownership: the engines never keep pointers into fed buffers past
 * the call; spans are offsets into the buffer passed to that call. The
 * request head lives in the caller's head_buf, owned by the caller and used
 * by the parser until the parser is discarded.
 * ------------------------------------------------------------------------ */
#ifndef MESHGATE_HTTP_H
#define MESHGATE_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <http_parser.h>
#include "appliance/policy.h"

/* ------------------------------------------------------------------ limits */
/* Headers per request head. Envoy's default max_headers_count is 100: a
 * client Envoy accepts, we accept. More → HTTP_ERR_HEAD_TOO_LARGE (431). */
#define HTTP_MAX_HEADERS 100
/* Requests forwarded whose response has not completed (pipelining depth).
 * The proxy stops reading the client while http_response_expect() says full. */
#define HTTP_MAX_PIPELINE 16
/* Smallest and default head limits (config limits.maxRequestHead). */
#define HTTP_MIN_HEAD 256
#define HTTP_DEFAULT_HEAD 16384
/* Stored head (NUL-terminated target and header strings) never exceeds the
 * raw head; the slack is for the terminators of the request line. */
#define HTTP_HEAD_BUF_SIZE(max_head) ((size_t)(max_head) + 16)

/* Bodies of the local responses, exactly as Envoy/Istio send them. */
#define HTTP_BODY_RBAC_DENIED "RBAC: access denied"
#define HTTP_BODY_UPSTREAM_ERROR "upstream connect error or disconnect/reset before headers"
#define HTTP_SERVER_NAME "meshgate"

/* ------------------------------------------------------------------ events */
enum http_event {
	HTTP_EVENT_NEED_MORE = 0,   /* all input consumed, nothing complete */
	HTTP_EVENT_HEAD_COMPLETE,   /* head parsed: accessors are valid */
	HTTP_EVENT_BODY,            /* span = body bytes (raw, incl. chunk framing) */
	HTTP_EVENT_MESSAGE_COMPLETE,
	HTTP_EVENT_TUNNEL,          /* span = opaque bytes after an upgrade */
	HTTP_EVENT_ERROR,           /* sticky; see *_error() */
};

/* Why a stream was refused. Names (http_error_name) are counter names. */
enum http_error {
	HTTP_ERR_NONE = 0,
	HTTP_ERR_BAD_REQUEST,       /* malformed request syntax → 400 */
	HTTP_ERR_HEAD_TOO_LARGE,    /* head > max_head or > HTTP_MAX_HEADERS → 431 */
	HTTP_ERR_SMUGGLING,         /* ambiguous framing: CL+TE, duplicate CL,
				     * bad CL, obs-fold, bad chunk, TE not
				     * ending in chunked → 400 */
	HTTP_ERR_BAD_HOST,          /* HTTP/1.1 without Host, or two Hosts → 400 */
	HTTP_ERR_UNSUPPORTED,       /* HTTP/2 preface, CONNECT → 501 */
	HTTP_ERR_AFTER_CLOSE,       /* bytes after a Connection: close message */
	HTTP_ERR_BAD_RESPONSE,      /* upstream sent bad HTTP → 502 */
	HTTP_ERR_RESPONSE_TOO_LARGE,/* upstream response head too large → 502 */
	HTTP_ERR_UNSOLICITED,       /* upstream bytes with no request pending → 502 */
	HTTP_ERR_TRUNCATED,         /* EOF inside a message → 502 if nothing sent */
	HTTP_ERR_COUNT
};
const char *http_error_name(enum http_error e);        /* "head_too_large" ... */
int http_error_status(enum http_error e);              /* 400, 431, 501, 502 */

struct http_feed_result {
	enum http_event event;
	size_t consumed;            /* bytes of the input used; <= len */
	size_t span_offset;         /* BODY/TUNNEL: input[span_offset ..        */
	size_t span_len;            /*   span_offset + span_len) , within consumed */
};

/* Private scanner state shared by both parsers (line folding, chunk framing
 * that http-parser accepts but other servers read differently). */
struct http_scan {
	uint32_t line_len;
	uint8_t lines, started, head_ended, prev_cr, prefix_pos;
	uint8_t chunk_state;
	uint64_t chunk_left;
};

/* ------------------------------------------------------------------ request */
struct http_request_parser {
	/* private */
	http_parser hp;
	int phase;
	enum http_event pending;
	enum http_error error;
	char *buf;                  /* caller's head buffer */
	size_t buf_size, buf_used, max_head, head_used;
	int last_cb;                /* which string is being appended */
	size_t str_start;
	bool needs_reset, head_done, msg_done, overflow;
	struct http_scan scan;
	uint8_t h2_match;           /* bytes of the HTTP/2 preface matched */
	/* parsed head (valid from HEAD_COMPLETE, see above) */
	const char *target; size_t target_len;
	struct policy_header headers[HTTP_MAX_HEADERS];
	int nheaders;
	int host_index;             /* -1 = none */
	int nhosts;
	bool keep_alive, chunked, expect_continue, upgrade;
	uint64_t content_length;    /* HTTP_NO_CONTENT_LENGTH when absent */
};
#define HTTP_NO_CONTENT_LENGTH UINT64_MAX

/* head_buf must hold HTTP_HEAD_BUF_SIZE(max_head) bytes; max_head is the
 * limit on raw head bytes (request line + headers + CRLFs). Returns 0, or -1
 * if the buffer is too small or max_head < HTTP_MIN_HEAD. */
int http_request_parser_init(struct http_request_parser *p, char *head_buf, size_t head_buf_size,
			     size_t max_head);
struct http_feed_result http_request_feed(struct http_request_parser *p, const char *data, size_t len);
enum http_error http_request_error(const struct http_request_parser *p);
/* True between requests (nothing of a next request seen yet): a client EOF
 * here is a clean close; elsewhere the request was cut short. */
bool http_request_idle(const struct http_request_parser *p);

/* Accessors, valid from HEAD_COMPLETE until the next feed that consumes
 * bytes after MESSAGE_COMPLETE. Strings are NUL-terminated, in head_buf. */
enum http_method http_request_method(const struct http_request_parser *p);
const char *http_request_method_name(const struct http_request_parser *p);
const char *http_request_target(const struct http_request_parser *p, size_t *len); /* raw, with query */
const char *http_request_host(const struct http_request_parser *p); /* "" when absent (HTTP/1.0) */
const struct policy_header *http_request_headers(const struct http_request_parser *p, int *n);
/* first header with this name (case-insensitive), NULL if none */
const char *http_request_header(const struct http_request_parser *p, const char *name, size_t *value_len);
uint64_t http_request_content_length(const struct http_request_parser *p); /* or HTTP_NO_CONTENT_LENGTH */
bool http_request_chunked(const struct http_request_parser *p);
bool http_request_keep_alive(const struct http_request_parser *p);
bool http_request_expect_continue(const struct http_request_parser *p);
bool http_request_upgrade(const struct http_request_parser *p);
unsigned http_request_version_minor(const struct http_request_parser *p); /* 1.x */

/* Identity for the forwarded head. gateway_id: this appliance's SPIFFE ID
 * ("spiffe://td/ns/x/sa/y"); client_id: the peer's, NULL for a plaintext
 * peer (then URI= is omitted). */
struct http_forward_identity {
	const char *gateway_id;
	const char *client_id;
};
enum http_write_error { HTTP_WRITE_TOO_SMALL = -1, HTTP_WRITE_BAD_IDENTITY = -2, HTTP_WRITE_NO_HEAD = -3,
			 HTTP_WRITE_BAD_ARGUMENT = -4 /* CR/LF in reason or content type */ };
/* Re-serialises the parsed head for the upstream: request line and headers
 * as received (names as sent, values trimmed of surrounding blanks, CRLF
 * line ends), minus every incoming x-forwarded-client-cert and
 * x-forwarded-proto (case-insensitive: a client must not spoof them), plus
 * `x-forwarded-client-cert: By=<gw>;URI=<client>` (Envoy's XFCC) and
 * `x-forwarded-proto: https`. Returns bytes written (no NUL), or a negative
 * enum http_write_error; identities with characters outside a URI's
 * printable set, or ';' ',' '"', are refused (header injection). */
int http_request_head_write(const struct http_request_parser *p, const struct http_forward_identity *id,
			    char *out, size_t out_len);

/* ------------------------------------------------------------------ response */
struct http_response_parser {
	/* private */
	http_parser hp;
	int phase;
	enum http_event pending;
	enum http_error error;
	size_t max_head, head_used;
	bool head_done, msg_done;
	struct http_scan scan;
	uint8_t methods[HTTP_MAX_PIPELINE];
	unsigned mhead, mcount;
	/* current response */
	unsigned status;
	bool keep_alive, interim, tunnel, eof_body, chunked;
};
void http_response_parser_init(struct http_response_parser *p, size_t max_head);
/* Tells the parser a request with this method was forwarded (so a HEAD's
 * response has no body). Returns 0, or -1 when HTTP_MAX_PIPELINE responses
 * are already outstanding (stop reading the client until one completes). */
int http_response_expect(struct http_response_parser *p, enum http_method method);
unsigned http_response_pending(const struct http_response_parser *p);
struct http_feed_result http_response_feed(struct http_response_parser *p, const char *data, size_t len);
struct http_feed_result http_response_eof(struct http_response_parser *p);
enum http_error http_response_error(const struct http_response_parser *p);
/* valid from HEAD_COMPLETE until the next response's bytes */
unsigned http_response_status(const struct http_response_parser *p);
bool http_response_keep_alive(const struct http_response_parser *p);
bool http_response_is_interim(const struct http_response_parser *p); /* 1xx other than 101 */

/* ------------------------------------------------------------------ local responses */
/* Writes a complete response: status line (reason NULL → standard phrase),
 * `server: meshgate`, content-type (if not NULL), content-length, and
 * `connection: close` when !keep_alive, then the body. Returns bytes
 * written, or HTTP_WRITE_TOO_SMALL (nothing usable written). */
int http_write_response(char *buf, size_t len, int status, const char *reason, const char *content_type,
			const char *body, size_t body_len, bool keep_alive);
/* The answer for a parse error: status from http_error_status(), a short
 * text body, always `connection: close`. */
int http_write_error_response(char *buf, size_t len, enum http_error e);

#endif
