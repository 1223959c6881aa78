/* HTTP/1.1 engine: see http.h for the contract and how the proxy drives it.
 *
 * http-parser does the tokenising. We stop it at event boundaries by pausing
 * it from callbacks (http_parser_pause), and run two small scanners beside
 * it over the raw bytes for things it accepts but that other HTTP servers
 * read differently (obs-fold, control bytes in chunk extensions, bare-LF
 * trailer lines): since chunk framing is forwarded verbatim, anything the
 * upstream could frame differently from us is refused as smuggling. */
#include "appliance/http.h"
#include <string.h>
#include <stdio.h>
#include <limits.h>

enum phase { PHASE_HEAD, PHASE_BODY, PHASE_TUNNEL, PHASE_ERROR, PHASE_CLOSED };
enum last_cb { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

/* ------------------------------------------------------------------ errors */
static const char *const error_names[HTTP_ERR_COUNT] = {
	[HTTP_ERR_NONE] = "none",
	[HTTP_ERR_BAD_REQUEST] = "bad_request",
	[HTTP_ERR_HEAD_TOO_LARGE] = "head_too_large",
	[HTTP_ERR_SMUGGLING] = "smuggling",
	[HTTP_ERR_BAD_HOST] = "bad_host",
	[HTTP_ERR_UNSUPPORTED] = "unsupported",
	[HTTP_ERR_AFTER_CLOSE] = "after_close",
	[HTTP_ERR_BAD_RESPONSE] = "bad_response",
	[HTTP_ERR_RESPONSE_TOO_LARGE] = "response_head_too_large",
	[HTTP_ERR_UNSOLICITED] = "unsolicited_response",
	[HTTP_ERR_TRUNCATED] = "truncated",
};

const char *http_error_name(enum http_error e)
{
	if ((unsigned)e >= HTTP_ERR_COUNT)
		return "unknown";
	return error_names[e];
}

int http_error_status(enum http_error e)
{
	switch (e) {
	case HTTP_ERR_NONE: return 200;
	case HTTP_ERR_HEAD_TOO_LARGE: return 431;
	case HTTP_ERR_UNSUPPORTED: return 501;
	case HTTP_ERR_BAD_RESPONSE:
	case HTTP_ERR_RESPONSE_TOO_LARGE:
	case HTTP_ERR_UNSOLICITED:
	case HTTP_ERR_TRUNCATED: return 502;
	default: return 400;
	}
}

/* ------------------------------------------------------------------ scanners */
/* Head scanner: finds obs-fold (a header line starting with SP/HT), which
 * RFC 7230 3.2.4 says a server must reject; http-parser would join it. */
static void scan_reset(struct http_scan *s)
{
	memset(s, 0, sizeof *s);
}

enum scan_bad { SCAN_OK, SCAN_FOLD, SCAN_BARE_CR, SCAN_BAD_START };

/* Returns how many bytes of d[0..n) may be fed; *bad says why it stopped
 * early. After the empty line ending the head the scan stops. A CR must be
 * followed by LF: Debian builds http-parser with HTTP_PARSER_STRICT=0,
 * which would take any byte after a CR as the line end; for the same
 * reason a response must start with `prefix` ("HTTP/1."), which non-strict
 * http-parser does not check. */
static size_t scan_head(struct http_scan *s, const char *d, size_t n, const char *prefix,
			enum scan_bad *bad)
{
	*bad = SCAN_OK;
	for (size_t i = 0; i < n && !s->head_ended; i++) {
		/* inside a line (past the start-line prefix, not after a CR)
		 * only CR and LF matter: skip to the next one */
		if (s->line_len && !s->prev_cr && (!prefix || s->lines || !prefix[s->prefix_pos])) {
			const char *end = d + i;
			while (end < d + n && *end != '\r' && *end != '\n')
				end++;
			s->line_len += (uint32_t)(end - (d + i));
			i = (size_t)(end - d);
			if (i == n)
				break;
		}
		unsigned char c = (unsigned char)d[i];
		if (prefix && s->lines == 0 && (s->started || (c != '\r' && c != '\n')) &&
		    prefix[s->prefix_pos] != '\0') {
			if (c != (unsigned char)prefix[s->prefix_pos]) {
				*bad = SCAN_BAD_START;
				return i;
			}
			s->prefix_pos++;
		}
		if (s->prev_cr && c != '\n') {
			*bad = SCAN_BARE_CR;
			return i;
		}
		s->prev_cr = 0;
		if (c == '\n') {
			if (!s->started)
				continue;           /* CRLFs before a message are skipped */
			if (s->line_len == 0 && s->lines > 0)
				s->head_ended = 1;
			s->lines = 1;
			s->line_len = 0;
		} else if (c == '\r') {
			s->prev_cr = 1;
		} else if ((c == ' ' || c == '\t') && s->line_len == 0 && s->lines > 0) {
			*bad = SCAN_FOLD;
			return i;
		} else {
			s->started = 1;
			s->line_len++;
		}
	}
	return n;
}

enum chunk_state {
	CS_SIZE0, CS_SIZE, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR, CS_DATA_LF,
	CS_TR0, CS_TR, CS_TR_LF, CS_END_LF, CS_DONE
};

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Chunked framing scanner, strict where http-parser is lenient: control
 * bytes (bare LF!) inside chunk extensions, bare LF or folding in trailers.
 * Returns bytes that may be fed; *bad when stopped at a refused byte. */
static size_t scan_chunk(struct http_scan *s, const char *d, size_t n, bool *bad)
{
	*bad = false;
	size_t i = 0;
	while (i < n && s->chunk_state != CS_DONE) {
		unsigned char c = (unsigned char)d[i];
		int h;
		switch (s->chunk_state) {
		case CS_SIZE0:
		case CS_SIZE:
			h = hexval(c);
			if (h >= 0) {
				if (s->chunk_left > (UINT64_MAX >> 4))
					goto refuse;
				s->chunk_left = (s->chunk_left << 4) | (uint64_t)h;
				s->chunk_state = CS_SIZE;
			} else if (s->chunk_state == CS_SIZE && (c == ';' || c == ' ')) {
				s->chunk_state = CS_EXT;
			} else if (s->chunk_state == CS_SIZE && c == '\r') {
				s->chunk_state = CS_SIZE_LF;
			} else {
				goto refuse;
			}
			break;
		case CS_EXT:
			if (c == '\r')
				s->chunk_state = CS_SIZE_LF;
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				goto refuse;
			break;
		case CS_SIZE_LF:
			if (c != '\n')
				goto refuse;
			s->chunk_state = s->chunk_left ? CS_DATA : CS_TR0;
			break;
		case CS_DATA: {
			uint64_t take = n - i;
			if (take > s->chunk_left)
				take = s->chunk_left;
			s->chunk_left -= take;
			i += (size_t)take;
			if (s->chunk_left == 0)
				s->chunk_state = CS_DATA_CR;
			continue;
		}
		case CS_DATA_CR:
			if (c != '\r')
				goto refuse;
			s->chunk_state = CS_DATA_LF;
			break;
		case CS_DATA_LF:
			if (c != '\n')
				goto refuse;
			s->chunk_state = CS_SIZE0;
			break;
		case CS_TR0:
			if (c == '\r')
				s->chunk_state = CS_END_LF;
			else if (c == ' ' || c == '\t' || c == '\n')
				goto refuse;
			else
				s->chunk_state = CS_TR;
			break;
		case CS_TR:
			if (c == '\r')
				s->chunk_state = CS_TR_LF;
			else if (c == '\n')
				goto refuse;
			break;
		case CS_TR_LF:
			if (c != '\n')
				goto refuse;
			s->chunk_state = CS_TR0;
			break;
		case CS_END_LF:
			if (c != '\n')
				goto refuse;
			s->chunk_state = CS_DONE;
			break;
		default:
			break;
		}
		i++;
	}
	return n;
refuse:
	*bad = true;
	return i;
}

static bool is_body_framing_errno(enum http_errno e)
{
	return e == HPE_INVALID_CONTENT_LENGTH || e == HPE_UNEXPECTED_CONTENT_LENGTH ||
	       e == HPE_INVALID_CHUNK_SIZE || e == HPE_INVALID_TRANSFER_ENCODING;
}

static struct http_feed_result result(enum http_event ev, size_t consumed)
{
	struct http_feed_result r = { .event = ev, .consumed = consumed };
	if (ev == HTTP_EVENT_BODY || ev == HTTP_EVENT_TUNNEL)
		r.span_len = consumed;
	return r;
}

static bool name_equals(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ request */
#define REQ(hp) ((struct http_request_parser *)(hp)->data)

/* Ends the string being appended: NUL-terminates it (values trimmed of
 * trailing blanks) and points the target/header at it. */
static void req_finish_string(struct http_request_parser *p)
{
	char *s = p->buf + p->str_start;
	size_t len = p->buf_used - p->str_start;
	if (p->last_cb == CB_NONE)
		return;
	if (p->last_cb == CB_VALUE)
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
	s[len] = '\0';
	p->buf_used++;                      /* room was reserved by req_append */
	switch (p->last_cb) {
	case CB_URL:
		p->target = s;
		p->target_len = len;
		break;
	case CB_FIELD:
		p->headers[p->nheaders - 1].name = s;
		p->headers[p->nheaders - 1].name_len = len;
		break;
	case CB_VALUE:
		p->headers[p->nheaders - 1].value = s;
		p->headers[p->nheaders - 1].value_len = len;
		break;
	default:
		break;
	}
	p->last_cb = CB_NONE;
}

/* Too many headers (or, defensively, no room) is only recorded here and
 * reported when the head ends: where http-parser calls back depends on how
 * the input was split, the end of the head does not. */
static int req_append(struct http_request_parser *p, int which, const char *at, size_t len)
{
	if (p->overflow)
		return 0;
	if (p->last_cb != which) {
		req_finish_string(p);
		if (which == CB_FIELD) {
			if (p->nheaders >= HTTP_MAX_HEADERS) {
				p->overflow = true;
				return 0;
			}
			struct policy_header *h = &p->headers[p->nheaders++];
			h->name = "";
			h->name_len = 0;
			h->value = "";
			h->value_len = 0;
		}
		p->last_cb = which;
		p->str_start = p->buf_used;
	}
	/* +1 keeps room for the NUL req_finish_string writes */
	if (len + 1 > p->buf_size - p->buf_used) {
		p->overflow = true;
		return 0;
	}
	memcpy(p->buf + p->buf_used, at, len);
	p->buf_used += len;
	return 0;
}

static int req_on_url(http_parser *hp, const char *at, size_t len)
{
	return req_append(REQ(hp), CB_URL, at, len);
}

static int req_on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct http_request_parser *p = REQ(hp);
	if (p->phase != PHASE_HEAD)
		return 0;                   /* trailers: forwarded raw, not stored */
	return req_append(p, CB_FIELD, at, len);
}

static int req_on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct http_request_parser *p = REQ(hp);
	if (p->phase != PHASE_HEAD)
		return 0;
	return req_append(p, CB_VALUE, at, len);
}

static int req_on_headers_complete(http_parser *hp)
{
	struct http_request_parser *p = REQ(hp);
	if (!p->overflow)
		req_finish_string(p);
	p->head_done = true;
	http_parser_pause(hp, 1);
	return 0;
}

static int req_on_message_complete(http_parser *hp)
{
	struct http_request_parser *p = REQ(hp);
	p->msg_done = true;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings req_settings = {
	.on_url = req_on_url,
	.on_header_field = req_on_header_field,
	.on_header_value = req_on_header_value,
	.on_headers_complete = req_on_headers_complete,
	.on_message_complete = req_on_message_complete,
};

static void req_reset_head(struct http_request_parser *p)
{
	p->buf_used = 0;
	p->head_used = 0;
	p->last_cb = CB_NONE;
	p->str_start = 0;
	p->target = NULL;
	p->target_len = 0;
	p->nheaders = 0;
	p->host_index = -1;
	p->nhosts = 0;
	p->keep_alive = p->chunked = p->expect_continue = p->upgrade = false;
	p->content_length = HTTP_NO_CONTENT_LENGTH;
	p->h2_match = 0;
	p->head_done = p->msg_done = p->overflow = false;
	scan_reset(&p->scan);
	p->needs_reset = false;
}

int http_request_parser_init(struct http_request_parser *p, char *head_buf, size_t head_buf_size,
			     size_t max_head)
{
	memset(p, 0, sizeof *p);
	if (!head_buf || max_head < HTTP_MIN_HEAD || head_buf_size < HTTP_HEAD_BUF_SIZE(max_head))
		return -1;
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	p->buf = head_buf;
	p->buf_size = head_buf_size;
	p->max_head = max_head;
	p->phase = PHASE_HEAD;
	req_reset_head(p);
	return 0;
}

static enum http_error req_map_errno(struct http_request_parser *p, enum http_errno e)
{
	if (p->error != HTTP_ERR_NONE)
		return p->error;            /* a callback said why */
	if (p->phase == PHASE_BODY || is_body_framing_errno(e))
		return HTTP_ERR_SMUGGLING;
	switch (e) {
	case HPE_HEADER_OVERFLOW: return HTTP_ERR_HEAD_TOO_LARGE;
	case HPE_CLOSED_CONNECTION: return HTTP_ERR_AFTER_CLOSE;
	case HPE_INVALID_METHOD: return p->h2_match == 3 ? HTTP_ERR_UNSUPPORTED : HTTP_ERR_BAD_REQUEST;
	default: return HTTP_ERR_BAD_REQUEST;
	}
}

static struct http_feed_result req_fail_result(struct http_request_parser *p, enum http_error e, size_t consumed)
{
	if (p->error == HTTP_ERR_NONE)
		p->error = e;
	p->phase = PHASE_ERROR;
	return result(HTTP_EVENT_ERROR, consumed);
}

/* RFC 7230 tchar. http-parser built non-strict lets a space into a name
 * ("Content-Length : 5"), which another server may read as the header. */
static bool is_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c != 0 && strchr("!#$%&'*+-.^_`|~", c))))
			return false;
	}
	return true;
}

/* The target is forwarded as received: only visible ASCII (non-strict
 * http-parser also takes TAB, FF and bytes >= 0x80). */
static bool target_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* Rules checked once the whole head is known. */
static enum http_error req_check_head(struct http_request_parser *p)
{
	if (p->overflow)
		return HTTP_ERR_HEAD_TOO_LARGE;
	if (!p->target || !target_ok(p->target, p->target_len))
		return HTTP_ERR_BAD_REQUEST;
	for (int i = 0; i < p->nheaders; i++) {
		const struct policy_header *h = &p->headers[i];
		if (!is_token(h->name, h->name_len))
			return HTTP_ERR_BAD_REQUEST;
		if (name_equals(h->name, h->name_len, "host")) {
			if (p->nhosts++ == 0)
				p->host_index = i;
		} else if (name_equals(h->name, h->name_len, "expect")) {
			if (name_equals(h->value, h->value_len, "100-continue"))
				p->expect_continue = true;
		}
	}
	if (p->hp.http_major != 1)
		return p->hp.http_major > 1 ? HTTP_ERR_UNSUPPORTED : HTTP_ERR_BAD_REQUEST;
	if (p->hp.method == HTTP_CONNECT)
		return HTTP_ERR_UNSUPPORTED;
	if (p->nhosts > 1 || (p->nhosts == 0 && p->hp.http_minor >= 1))
		return HTTP_ERR_BAD_HOST;
	p->keep_alive = http_should_keep_alive(&p->hp) != 0;
	p->chunked = (p->hp.flags & F_CHUNKED) != 0;
	p->upgrade = p->hp.upgrade != 0;
	p->content_length = (p->hp.flags & F_CONTENTLENGTH) ? p->hp.content_length : HTTP_NO_CONTENT_LENGTH;
	return HTTP_ERR_NONE;
}

static struct http_feed_result req_feed_head(struct http_request_parser *p, const char *data, size_t len)
{
	static const char h2_preface[] = "PRI";
	if (p->needs_reset)
		req_reset_head(p);
	size_t budget = p->max_head - p->head_used;
	size_t window = len < budget ? len : budget;
	enum scan_bad bad;
	window = scan_head(&p->scan, data, window, NULL, &bad);
	enum http_error stop_error = bad == SCAN_FOLD ? HTTP_ERR_SMUGGLING :
				     bad == SCAN_BARE_CR ? HTTP_ERR_BAD_REQUEST : HTTP_ERR_HEAD_TOO_LARGE;
	for (size_t i = 0; i < window && p->head_used + i < 3; i++)
		if (p->h2_match == p->head_used + i && data[i] == h2_preface[p->head_used + i])
			p->h2_match++;
	if (window == 0)
		return req_fail_result(p, stop_error, 0);

	size_t n = http_parser_execute(&p->hp, &req_settings, data, window);
	p->head_used += n;
	if (p->head_done) {
		/* Paused on the LF ending the head: feed that LF now so that the
		 * event's consumed count covers the whole head. */
		http_parser_pause(&p->hp, 0);
		size_t n2 = http_parser_execute(&p->hp, &req_settings, data + n, 1);
		n += n2;
		p->head_used += n2;
		enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
		if (e == HPE_PAUSED)
			http_parser_pause(&p->hp, 0);
		else if (e != HPE_OK)
			return req_fail_result(p, req_map_errno(p, e), n);
		enum http_error he = req_check_head(p);
		if (he != HTTP_ERR_NONE)
			return req_fail_result(p, he, n);
		p->phase = PHASE_BODY;
		if (p->msg_done)
			p->pending = HTTP_EVENT_MESSAGE_COMPLETE;
		scan_reset(&p->scan);       /* now tracks chunk framing */
		return result(HTTP_EVENT_HEAD_COMPLETE, n);
	}
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	if (e != HPE_OK)
		return req_fail_result(p, req_map_errno(p, e), n);
	if (window < len)
		return req_fail_result(p, stop_error, n);
	return result(HTTP_EVENT_NEED_MORE, n);
}

static struct http_feed_result req_feed_body(struct http_request_parser *p, const char *data, size_t len)
{
	size_t window = len;
	bool bad = false;
	if (p->chunked)
		window = scan_chunk(&p->scan, data, len, &bad);
	size_t n = window ? http_parser_execute(&p->hp, &req_settings, data, window) : 0;
	if (p->msg_done) {
		http_parser_pause(&p->hp, 0);
		p->pending = HTTP_EVENT_MESSAGE_COMPLETE;
		return result(HTTP_EVENT_BODY, n);
	}
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	enum http_error he = HTTP_ERR_NONE;
	if (e != HPE_OK)
		he = req_map_errno(p, e);
	else if (window < len)
		he = HTTP_ERR_SMUGGLING;
	if (he != HTTP_ERR_NONE) {
		/* Body bytes before the bad byte are still reported, so that any
		 * split of the input gives the same events. */
		struct http_feed_result r = req_fail_result(p, he, n);
		if (n > 0) {
			p->pending = HTTP_EVENT_ERROR;
			r = result(HTTP_EVENT_BODY, n);
		}
		return r;
	}
	return result(HTTP_EVENT_BODY, n);
}

struct http_feed_result http_request_feed(struct http_request_parser *p, const char *data, size_t len)
{
	if (p->pending != HTTP_EVENT_NEED_MORE) {
		enum http_event ev = p->pending;
		p->pending = HTTP_EVENT_NEED_MORE;
		if (ev == HTTP_EVENT_MESSAGE_COMPLETE) {
			p->msg_done = false;
			if (p->upgrade) {
				p->phase = PHASE_TUNNEL;
			} else if (!p->keep_alive) {
				/* Debian's non-strict http-parser would read on */
				p->phase = PHASE_CLOSED;
			} else {
				p->phase = PHASE_HEAD;
				p->needs_reset = true;
			}
		}
		return result(ev, 0);
	}
	if (p->phase == PHASE_ERROR)
		return result(HTTP_EVENT_ERROR, 0);
	if (len == 0)
		return result(HTTP_EVENT_NEED_MORE, 0);
	switch (p->phase) {
	case PHASE_HEAD: return req_feed_head(p, data, len);
	case PHASE_BODY: return req_feed_body(p, data, len);
	case PHASE_TUNNEL: return result(HTTP_EVENT_TUNNEL, len);
	case PHASE_CLOSED: return req_fail_result(p, HTTP_ERR_AFTER_CLOSE, 0);
	default: return req_fail_result(p, HTTP_ERR_BAD_REQUEST, 0);
	}
}

enum http_error http_request_error(const struct http_request_parser *p) { return p->error; }

bool http_request_idle(const struct http_request_parser *p)
{
	return p->pending == HTTP_EVENT_NEED_MORE && p->phase == PHASE_HEAD &&
	       (p->needs_reset || (p->head_used == 0));
}

enum http_method http_request_method(const struct http_request_parser *p)
{
	return (enum http_method)p->hp.method;
}

const char *http_request_method_name(const struct http_request_parser *p)
{
	return http_method_str((enum http_method)p->hp.method);
}

const char *http_request_target(const struct http_request_parser *p, size_t *len)
{
	if (len)
		*len = p->target ? p->target_len : 0;
	return p->target ? p->target : "";
}

const char *http_request_host(const struct http_request_parser *p)
{
	return p->host_index >= 0 ? p->headers[p->host_index].value : "";
}

const struct policy_header *http_request_headers(const struct http_request_parser *p, int *n)
{
	*n = p->nheaders;
	return p->headers;
}

const char *http_request_header(const struct http_request_parser *p, const char *name, size_t *value_len)
{
	for (int i = 0; i < p->nheaders; i++) {
		if (name_equals(p->headers[i].name, p->headers[i].name_len, name)) {
			if (value_len)
				*value_len = p->headers[i].value_len;
			return p->headers[i].value;
		}
	}
	return NULL;
}

uint64_t http_request_content_length(const struct http_request_parser *p) { return p->content_length; }
bool http_request_chunked(const struct http_request_parser *p) { return p->chunked; }
bool http_request_keep_alive(const struct http_request_parser *p) { return p->keep_alive; }
bool http_request_expect_continue(const struct http_request_parser *p) { return p->expect_continue; }
bool http_request_upgrade(const struct http_request_parser *p) { return p->upgrade; }
unsigned http_request_version_minor(const struct http_request_parser *p) { return p->hp.http_minor; }

/* ------------------------------------------------------------------ head rewrite */
struct writer { char *out; size_t len, pos; bool overflow; };

static void put(struct writer *w, const char *s, size_t n)
{
	if (w->overflow || n > w->len - w->pos) {
		w->overflow = true;
		return;
	}
	memcpy(w->out + w->pos, s, n);
	w->pos += n;
}

static void puts_(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/* A SPIFFE ID goes into a header value unquoted: printable, no separators
 * of the XFCC grammar. */
static bool identity_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"')
			return false;
	}
	return true;
}

int http_request_head_write(const struct http_request_parser *p, const struct http_forward_identity *id,
			    char *out, size_t out_len)
{
	if (!p->target || p->phase == PHASE_ERROR || p->needs_reset)
		return HTTP_WRITE_NO_HEAD;
	if (!id || !identity_ok(id->gateway_id) || (id->client_id && !identity_ok(id->client_id)))
		return HTTP_WRITE_BAD_IDENTITY;
	struct writer w = { .out = out, .len = out_len };
	char version[32] = " HTTP/1.x\r\n";
	if (p->hp.http_major == 1 && p->hp.http_minor <= 9)
		version[8] = (char)('0' + p->hp.http_minor);   /* the usual case, without printf */
	else
		snprintf(version, sizeof version, " HTTP/%u.%u\r\n", p->hp.http_major, p->hp.http_minor);
	puts_(&w, http_request_method_name(p));
	put(&w, " ", 1);
	put(&w, p->target, p->target_len);
	puts_(&w, version);
	for (int i = 0; i < p->nheaders; i++) {
		const struct policy_header *h = &p->headers[i];
		if (name_equals(h->name, h->name_len, "x-forwarded-client-cert") ||
		    name_equals(h->name, h->name_len, "x-forwarded-proto"))
			continue;
		put(&w, h->name, h->name_len);
		put(&w, ": ", 2);
		put(&w, h->value, h->value_len);
		put(&w, "\r\n", 2);
	}
	puts_(&w, "x-forwarded-client-cert: By=");
	puts_(&w, id->gateway_id);
	if (id->client_id) {
		puts_(&w, ";URI=");
		puts_(&w, id->client_id);
	}
	puts_(&w, "\r\nx-forwarded-proto: https\r\n\r\n");
	if (w.overflow || w.pos > INT_MAX)
		return HTTP_WRITE_TOO_SMALL;
	return (int)w.pos;
}

/* ------------------------------------------------------------------ response */
#define RESP(hp) ((struct http_response_parser *)(hp)->data)

static int resp_on_headers_complete(http_parser *hp)
{
	struct http_response_parser *p = RESP(hp);
	enum http_method m = (enum http_method)p->methods[p->mhead];
	p->status = hp->status_code;
	p->interim = p->status / 100 == 1 && p->status != 101;
	p->tunnel = p->status == 101;
	p->head_done = true;
	http_parser_pause(hp, 1);
	if (p->tunnel)
		return 2;                   /* no body, then another protocol */
	if (p->interim || p->status == 204 || p->status == 304 || m == HTTP_HEAD)
		return 1;                   /* no body whatever the headers say */
	return 0;
}

static int resp_on_message_complete(http_parser *hp)
{
	struct http_response_parser *p = RESP(hp);
	p->msg_done = true;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_on_headers_complete,
	.on_message_complete = resp_on_message_complete,
};

static void resp_reset_head(struct http_response_parser *p)
{
	p->head_used = 0;
	p->head_done = p->msg_done = false;
	p->status = 0;
	p->keep_alive = p->interim = p->tunnel = p->eof_body = p->chunked = false;
	scan_reset(&p->scan);
}

void http_response_parser_init(struct http_response_parser *p, size_t max_head)
{
	memset(p, 0, sizeof *p);
	http_parser_init(&p->hp, HTTP_RESPONSE);
	p->hp.data = p;
	p->max_head = max_head < HTTP_MIN_HEAD ? HTTP_MIN_HEAD : max_head;
	p->phase = PHASE_HEAD;
	resp_reset_head(p);
}

int http_response_expect(struct http_response_parser *p, enum http_method method)
{
	if (p->mcount >= HTTP_MAX_PIPELINE)
		return -1;
	p->methods[(p->mhead + p->mcount) % HTTP_MAX_PIPELINE] = (uint8_t)method;
	p->mcount++;
	return 0;
}

unsigned http_response_pending(const struct http_response_parser *p) { return p->mcount; }

static struct http_feed_result resp_fail_result(struct http_response_parser *p, enum http_error e, size_t consumed)
{
	if (p->error == HTTP_ERR_NONE)
		p->error = e;
	p->phase = PHASE_ERROR;
	return result(HTTP_EVENT_ERROR, consumed);
}

static enum http_error resp_map_errno(struct http_response_parser *p, enum http_errno e)
{
	if (e == HPE_HEADER_OVERFLOW)
		return HTTP_ERR_RESPONSE_TOO_LARGE;
	if (e == HPE_CLOSED_CONNECTION)
		return HTTP_ERR_AFTER_CLOSE;
	return HTTP_ERR_BAD_RESPONSE;
}

static struct http_feed_result resp_feed_head(struct http_response_parser *p, const char *data, size_t len)
{
	if (p->mcount == 0)
		return resp_fail_result(p, HTTP_ERR_UNSOLICITED, 0);
	size_t budget = p->max_head - p->head_used;
	size_t window = len < budget ? len : budget;
	enum scan_bad bad;
	window = scan_head(&p->scan, data, window, "HTTP/1.", &bad);
	enum http_error stop_error = bad != SCAN_OK ? HTTP_ERR_BAD_RESPONSE : HTTP_ERR_RESPONSE_TOO_LARGE;
	if (window == 0)
		return resp_fail_result(p, stop_error, 0);
	size_t n = http_parser_execute(&p->hp, &resp_settings, data, window);
	p->head_used += n;
	if (p->head_done) {
		http_parser_pause(&p->hp, 0);
		size_t n2 = http_parser_execute(&p->hp, &resp_settings, data + n, 1);
		n += n2;
		p->head_used += n2;
		enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
		if (e == HPE_PAUSED)
			http_parser_pause(&p->hp, 0);
		else if (e != HPE_OK)
			return resp_fail_result(p, resp_map_errno(p, e), n);
		p->keep_alive = http_should_keep_alive(&p->hp) != 0;
		/* cached: http-parser clears F_CHUNKED while it reads a
		 * Transfer-Encoding trailer */
		p->chunked = !p->msg_done && (p->hp.flags & F_CHUNKED);
		p->eof_body = !p->msg_done && !(p->hp.flags & F_CHUNKED) &&
			      (p->hp.uses_transfer_encoding || p->hp.content_length == UINT64_MAX);
		p->phase = PHASE_BODY;
		if (p->msg_done)
			p->pending = HTTP_EVENT_MESSAGE_COMPLETE;
		scan_reset(&p->scan);
		return result(HTTP_EVENT_HEAD_COMPLETE, n);
	}
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	if (e != HPE_OK)
		return resp_fail_result(p, resp_map_errno(p, e), n);
	if (window < len)
		return resp_fail_result(p, stop_error, n);
	return result(HTTP_EVENT_NEED_MORE, n);
}

static struct http_feed_result resp_feed_body(struct http_response_parser *p, const char *data, size_t len)
{
	size_t window = len;
	bool bad = false;
	if (p->chunked)
		window = scan_chunk(&p->scan, data, len, &bad);
	size_t n = window ? http_parser_execute(&p->hp, &resp_settings, data, window) : 0;
	if (p->msg_done) {
		http_parser_pause(&p->hp, 0);
		p->pending = HTTP_EVENT_MESSAGE_COMPLETE;
		return result(HTTP_EVENT_BODY, n);
	}
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	enum http_error he = HTTP_ERR_NONE;
	if (e != HPE_OK)
		he = resp_map_errno(p, e);
	else if (window < len)
		he = HTTP_ERR_BAD_RESPONSE;
	if (he != HTTP_ERR_NONE) {
		struct http_feed_result r = resp_fail_result(p, he, n);
		if (n > 0) {
			p->pending = HTTP_EVENT_ERROR;
			r = result(HTTP_EVENT_BODY, n);
		}
		return r;
	}
	return result(HTTP_EVENT_BODY, n);
}

/* Delivers a pending event; a completed final response retires its request. */
static struct http_feed_result resp_deliver_pending(struct http_response_parser *p)
{
	enum http_event ev = p->pending;
	p->pending = HTTP_EVENT_NEED_MORE;
	if (ev == HTTP_EVENT_MESSAGE_COMPLETE) {
		p->msg_done = false;
		if (!p->interim && p->mcount > 0) {
			p->mhead = (p->mhead + 1) % HTTP_MAX_PIPELINE;
			p->mcount--;
		}
		if (p->tunnel)
			p->phase = PHASE_TUNNEL;
		else if (!p->interim && !p->keep_alive)
			p->phase = PHASE_CLOSED;    /* the upstream closes after this */
		else if (p->phase != PHASE_CLOSED)
			p->phase = PHASE_HEAD;
		/* the status and flags stay readable until the next head starts */
		p->head_used = 0;
		p->head_done = false;
		scan_reset(&p->scan);
	}
	return result(ev, 0);
}

struct http_feed_result http_response_feed(struct http_response_parser *p, const char *data, size_t len)
{
	if (p->pending != HTTP_EVENT_NEED_MORE)
		return resp_deliver_pending(p);
	if (p->phase == PHASE_ERROR)
		return result(HTTP_EVENT_ERROR, 0);
	if (len == 0)
		return result(HTTP_EVENT_NEED_MORE, 0);
	switch (p->phase) {
	case PHASE_HEAD:
		if (p->head_used == 0 && !p->head_done)
			resp_reset_head(p);     /* a new response starts */
		return resp_feed_head(p, data, len);
	case PHASE_BODY: return resp_feed_body(p, data, len);
	case PHASE_TUNNEL: return result(HTTP_EVENT_TUNNEL, len);
	case PHASE_CLOSED: return resp_fail_result(p, HTTP_ERR_AFTER_CLOSE, 0);
	default: return resp_fail_result(p, HTTP_ERR_BAD_RESPONSE, 0);
	}
}

struct http_feed_result http_response_eof(struct http_response_parser *p)
{
	if (p->pending != HTTP_EVENT_NEED_MORE)
		return resp_deliver_pending(p);
	switch (p->phase) {
	case PHASE_ERROR:
		return result(HTTP_EVENT_ERROR, 0);
	case PHASE_TUNNEL:
	case PHASE_CLOSED:
		p->phase = PHASE_CLOSED;
		return result(HTTP_EVENT_NEED_MORE, 0);
	case PHASE_HEAD:
		if (p->head_used == 0 && p->mcount == 0) {
			p->phase = PHASE_CLOSED;
			return result(HTTP_EVENT_NEED_MORE, 0);
		}
		return resp_fail_result(p, HTTP_ERR_TRUNCATED, 0);
	case PHASE_BODY:
		if (p->eof_body) {
			http_parser_execute(&p->hp, &resp_settings, "", 0);
			if (p->msg_done) {
				http_parser_pause(&p->hp, 0);
				p->phase = PHASE_CLOSED;
				p->pending = HTTP_EVENT_MESSAGE_COMPLETE;
				return resp_deliver_pending(p);
			}
		}
		return resp_fail_result(p, HTTP_ERR_TRUNCATED, 0);
	default:
		return resp_fail_result(p, HTTP_ERR_TRUNCATED, 0);
	}
}

enum http_error http_response_error(const struct http_response_parser *p) { return p->error; }
unsigned http_response_status(const struct http_response_parser *p) { return p->status; }
bool http_response_keep_alive(const struct http_response_parser *p) { return p->keep_alive; }
bool http_response_is_interim(const struct http_response_parser *p) { return p->interim; }

/* ------------------------------------------------------------------ local responses */
static bool has_crlf(const char *s)
{
	return s && (strchr(s, '\r') || strchr(s, '\n'));
}

int http_write_response(char *buf, size_t len, int status, const char *reason, const char *content_type,
			const char *body, size_t body_len, bool keep_alive)
{
	if (status < 100 || status > 999 || has_crlf(reason) || has_crlf(content_type) ||
	    (body_len && !body))
		return HTTP_WRITE_BAD_ARGUMENT;
	if (!reason)
		reason = http_status_str((enum http_status)status);
	int n = snprintf(buf, len,
			 "HTTP/1.1 %d %s\r\n"
			 "server: " HTTP_SERVER_NAME "\r\n"
			 "%s%s%s"
			 "content-length: %zu\r\n"
			 "%s"
			 "\r\n",
			 status, reason,
			 content_type ? "content-type: " : "", content_type ? content_type : "",
			 content_type ? "\r\n" : "",
			 body_len, keep_alive ? "" : "connection: close\r\n");
	if (n < 0 || (size_t)n >= len || body_len > len - (size_t)n || body_len > (size_t)INT_MAX - (size_t)n)
		return HTTP_WRITE_TOO_SMALL;
	if (body_len)
		memcpy(buf + n, body, body_len);
	return n + (int)body_len;
}

int http_write_error_response(char *buf, size_t len, enum http_error e)
{
	int status = http_error_status(e);
	const char *body;
	switch (status) {
	case 431: body = "Request Header Fields Too Large"; break;
	case 501: body = "Not Implemented"; break;
	case 502: body = HTTP_BODY_UPSTREAM_ERROR; break;
	default: body = "Bad Request"; break;
	}
	return http_write_response(buf, len, status, NULL, "text/plain", body, strlen(body), false);
}
