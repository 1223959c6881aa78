/* Shared by tests/unit/test_http.c and tests/fuzz/fuzz_http.c: drive the
 * HTTP engines over an input split into pieces and write down what they
 * said as text, so that two ways of splitting the same bytes can be
 * compared, and check the invariants every call must keep. */
#ifndef MESHGATE_TEST_HTTP_TRANSCRIPT_H
#define MESHGATE_TEST_HTTP_TRANSCRIPT_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include "appliance/http.h"

#define TRANSCRIPT_MAX (1 << 18)

struct transcript {
	char text[TRANSCRIPT_MAX];
	size_t len;
	bool truncated;
	/* body/tunnel bytes are merged across events until something else happens */
	char span_tag;
	size_t span_len;
	char span[TRANSCRIPT_MAX / 2];
	/* invariant violations, described */
	char violation[256];
};

static void tr_printf(struct transcript *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tr_printf(struct transcript *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->text + t->len, sizeof t->text - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof t->text - t->len) {
		t->truncated = true;
		return;
	}
	t->len += (size_t)n;
}

static void tr_flush_span(struct transcript *t)
{
	if (!t->span_tag)
		return;
	tr_printf(t, "%c %zu [", t->span_tag, t->span_len);
	size_t room = sizeof t->text - t->len;
	if (t->span_len + 3 < room) {
		memcpy(t->text + t->len, t->span, t->span_len);
		t->len += t->span_len;
	} else {
		t->truncated = true;
	}
	tr_printf(t, "]\n");
	t->span_tag = 0;
	t->span_len = 0;
}

static void tr_span(struct transcript *t, char tag, const char *p, size_t n)
{
	if (t->span_tag && t->span_tag != tag)
		tr_flush_span(t);
	t->span_tag = tag;
	if (n > sizeof t->span - t->span_len) {
		t->truncated = true;
		n = sizeof t->span - t->span_len;
	}
	memcpy(t->span + t->span_len, p, n);
	t->span_len += n;
}

static void tr_violation(struct transcript *t, const char *what, size_t a, size_t b)
{
	if (!t->violation[0])
		snprintf(t->violation, sizeof t->violation, "%s (%zu, %zu)", what, a, b);
}

/* Splits: mode 0 = all at once, 1 = one byte at a time, otherwise pieces of
 * pseudo-random length 1..mode drawn from *seed. */
static size_t next_piece(unsigned mode, unsigned *seed, size_t left)
{
	if (mode == 0)
		return left;
	if (mode == 1)
		return 1;
	*seed = *seed * 1103515245u + 12345u;
	size_t n = 1 + (*seed >> 8) % mode;
	return n < left ? n : left;
}

static void tr_request_head(struct transcript *t, const struct http_request_parser *p)
{
	size_t tlen;
	const char *target = http_request_target(p, &tlen);
	tr_printf(t, "HEAD %s %.*s host=%s cl=%lld chunked=%d ka=%d expect=%d upgrade=%d\n",
		  http_request_method_name(p), (int)tlen, target, http_request_host(p),
		  (long long)(int64_t)http_request_content_length(p), http_request_chunked(p),
		  http_request_keep_alive(p), http_request_expect_continue(p), http_request_upgrade(p));
	int n;
	const struct policy_header *h = http_request_headers(p, &n);
	for (int i = 0; i < n; i++)
		tr_printf(t, "  %.*s: %.*s\n", (int)h[i].name_len, h[i].name, (int)h[i].value_len, h[i].value);
}

/* One event from either parser; returns false when the stream must stop. */
static bool tr_event(struct transcript *t, struct http_feed_result r, const char *piece, size_t len,
		     const void *parser, bool is_request)
{
	if (r.consumed > len)
		tr_violation(t, "consumed > len", r.consumed, len);
	if (r.event == HTTP_EVENT_BODY || r.event == HTTP_EVENT_TUNNEL) {
		if (r.span_offset > r.consumed || r.span_len > r.consumed - r.span_offset)
			tr_violation(t, "span outside consumed bytes", r.span_offset, r.span_len);
		else
			tr_span(t, r.event == HTTP_EVENT_BODY ? 'B' : 'T', piece + r.span_offset, r.span_len);
		return true;
	}
	if (r.event == HTTP_EVENT_NEED_MORE) {
		if (r.consumed != len)
			tr_violation(t, "NEED_MORE without consuming everything", r.consumed, len);
		return true;
	}
	tr_flush_span(t);
	switch (r.event) {
	case HTTP_EVENT_HEAD_COMPLETE:
		if (is_request) {
			tr_request_head(t, parser);
		} else {
			const struct http_response_parser *rp = parser;
			tr_printf(t, "HEAD %u ka=%d interim=%d\n", http_response_status(rp),
				  http_response_keep_alive(rp), http_response_is_interim(rp));
		}
		return true;
	case HTTP_EVENT_MESSAGE_COMPLETE:
		tr_printf(t, "MESSAGE_COMPLETE\n");
		return true;
	case HTTP_EVENT_ERROR:
		tr_printf(t, "ERROR %s\n", http_error_name(is_request ? http_request_error(parser)
								       : http_response_error(parser)));
		return false;
	default:
		tr_violation(t, "unknown event", r.event, 0);
		return false;
	}
}

/* Feeds `in` to a fresh request parser in pieces; writes the transcript
 * (and total bytes consumed) to *t. */
static void drive_request(const char *in, size_t len, size_t max_head, unsigned mode, unsigned seed,
			  struct transcript *t)
{
	static char head_buf[HTTP_HEAD_BUF_SIZE(65536)];
	struct http_request_parser p;
	memset(t, 0, sizeof *t);
	if (max_head > 65536 || http_request_parser_init(&p, head_buf, sizeof head_buf, max_head) != 0) {
		tr_violation(t, "init failed", max_head, 0);
		return;
	}
	size_t off = 0, total = 0;
	bool alive = true;
	int guard = 0;
	while (alive && off < len) {
		size_t piece = next_piece(mode, &seed, len - off);
		const char *d = in + off;
		size_t left = piece;
		for (;;) {
			struct http_feed_result r = http_request_feed(&p, d, left);
			alive = tr_event(t, r, d, left, &p, true);
			if (r.consumed <= left) {
				d += r.consumed;
				left -= r.consumed;
				total += r.consumed;
			}
			if (!alive || (r.event == HTTP_EVENT_NEED_MORE))
				break;
			if (++guard > 1000000) {
				tr_violation(t, "no progress", off, left);
				alive = false;
				break;
			}
		}
		off += piece;
	}
	tr_flush_span(t);
	tr_printf(t, "consumed %zu of %zu\n", total, len);
}

/* Same for the response parser; `methods` are the requests forwarded
 * before (e.g. "GHG" = GET, HEAD, GET; P = POST); eof = signal EOF at the end. */
static void drive_response(const char *in, size_t len, const char *methods, bool eof, unsigned mode,
			   unsigned seed, struct transcript *t)
{
	struct http_response_parser p;
	memset(t, 0, sizeof *t);
	http_response_parser_init(&p, 16384);
	for (const char *m = methods; *m; m++)
		http_response_expect(&p, *m == 'H' ? HTTP_HEAD : *m == 'P' ? HTTP_POST : HTTP_GET);
	size_t off = 0, total = 0;
	bool alive = true;
	int guard = 0;
	while (alive && off < len) {
		size_t piece = next_piece(mode, &seed, len - off);
		const char *d = in + off;
		size_t left = piece;
		for (;;) {
			struct http_feed_result r = http_response_feed(&p, d, left);
			alive = tr_event(t, r, d, left, &p, false);
			if (r.consumed <= left) {
				d += r.consumed;
				left -= r.consumed;
				total += r.consumed;
			}
			if (!alive || r.event == HTTP_EVENT_NEED_MORE)
				break;
			if (++guard > 1000000) {
				tr_violation(t, "no progress", off, left);
				alive = false;
				break;
			}
		}
		off += piece;
	}
	tr_flush_span(t);
	while (alive && eof) {
		struct http_feed_result r = http_response_eof(&p);
		tr_printf(t, "EOF: ");
		alive = tr_event(t, r, "", 0, &p, false);
		if (r.event == HTTP_EVENT_NEED_MORE) {
			tr_printf(t, "clean\n");
			break;
		}
		if (++guard > 1000000)
			break;
	}
	tr_flush_span(t);
	tr_printf(t, "consumed %zu of %zu pending %u\n", total, len, http_response_pending(&p));
}

#endif
