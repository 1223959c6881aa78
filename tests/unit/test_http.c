/* Unit tests for appliance/http.{h,c}: request/response engines, head
 * rewrite, local responses, split-equivalence, seed-corpus replay of the
 * fuzz target. Runs from tests/ (data at data/http/). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#define FUZZ_HTTP_NO_MAIN
#include "tests/fuzz/fuzz_http.c"   /* also brings test_http_transcript.h */

static char head_buf[HTTP_HEAD_BUF_SIZE(16384)];
static struct transcript ta, tb;

/* Feeds everything at once, collects events; returns the transcript text. */
static const char *req_all(const char *in, size_t max_head)
{
	drive_request(in, strlen(in), max_head, 0, 0, &ta);
	assert_string_equal(ta.violation, "");
	ta.text[ta.len] = '\0';
	return ta.text;
}

static const char *resp_all(const char *in, const char *methods, bool eof)
{
	drive_response(in, strlen(in), methods, eof, 0, 0, &ta);
	assert_string_equal(ta.violation, "");
	ta.text[ta.len] = '\0';
	return ta.text;
}

static void init_req(struct http_request_parser *p)
{
	assert_int_equal(http_request_parser_init(p, head_buf, sizeof head_buf, 16384), 0);
}

/* Feeds a complete head; asserts HEAD_COMPLETE consumed exactly it. */
static void feed_head(struct http_request_parser *p, const char *in)
{
	struct http_feed_result r = http_request_feed(p, in, strlen(in));
	assert_int_equal(r.event, HTTP_EVENT_HEAD_COMPLETE);
	assert_int_equal(r.consumed, strlen(in));
}

static void test_single_request(void **state)
{
	struct http_request_parser p;
	init_req(&p);
	const char *in = "GET /api/items?id=7&q=a%20b HTTP/1.1\r\nHost: svc.prod:8080\r\n"
			 "User-Agent: curl/7.88\r\nX-Trailing:  spaced value  \r\n\r\n";
	feed_head(&p, in);
	size_t tl;
	const char *t = http_request_target(&p, &tl);
	assert_string_equal(t, "/api/items?id=7&q=a%20b");   /* query kept */
	assert_int_equal(tl, strlen("/api/items?id=7&q=a%20b"));
	assert_string_equal(http_request_method_name(&p), "GET");
	assert_int_equal(http_request_method(&p), HTTP_GET);
	assert_string_equal(http_request_host(&p), "svc.prod:8080");
	int n;
	const struct policy_header *h = http_request_headers(&p, &n);
	assert_int_equal(n, 3);
	assert_string_equal(h[1].name, "User-Agent");         /* case as sent */
	assert_string_equal(h[2].value, "spaced value");      /* blanks trimmed */
	assert_int_equal(h[2].value_len, 12);
	assert_true(http_request_keep_alive(&p));
	assert_false(http_request_chunked(&p));
	assert_int_equal(http_request_content_length(&p), HTTP_NO_CONTENT_LENGTH);
	struct http_feed_result r = http_request_feed(&p, "", 0);
	assert_int_equal(r.event, HTTP_EVENT_MESSAGE_COMPLETE);
	assert_int_equal(r.consumed, 0);
	/* accessors survive MESSAGE_COMPLETE until the next request's bytes */
	assert_string_equal(http_request_host(&p), "svc.prod:8080");
	r = http_request_feed(&p, "", 0);
	assert_int_equal(r.event, HTTP_EVENT_NEED_MORE);
	assert_true(http_request_idle(&p));
}

static void test_header_name_case(void **state)
{
	struct http_request_parser p;
	init_req(&p);
	feed_head(&p, "GET / HTTP/1.1\r\nHOST: upper.example\r\nx-lower: a\r\nX-MiXeD: b\r\n\r\n");
	assert_string_equal(http_request_host(&p), "upper.example");
	size_t vl;
	assert_string_equal(http_request_header(&p, "X-LOWER", &vl), "a");
	assert_int_equal(vl, 1);
	assert_string_equal(http_request_header(&p, "x-mixed", NULL), "b");
	assert_null(http_request_header(&p, "x-absent", NULL));
	int n;
	const struct policy_header *h = http_request_headers(&p, &n);
	assert_string_equal(h[0].name, "HOST");
	assert_string_equal(h[2].name, "X-MiXeD");
}

static void test_pipelined(void **state)
{
	const char *in = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
			 "POST /b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
			 "GET /c HTTP/1.1\r\nhost: h\r\nConnection: close\r\n\r\n";
	assert_int_equal(strlen(in), 132);
	const char *out = req_all(in, 16384);
	assert_string_equal(out,
		"HEAD GET /a host=h cl=-1 chunked=0 ka=1 expect=0 upgrade=0\n  Host: h\nMESSAGE_COMPLETE\n"
		"HEAD POST /b?x=1 host=h cl=5 chunked=0 ka=1 expect=0 upgrade=0\n  Host: h\n  Content-Length: 5\n"
		"B 5 [hello]\nMESSAGE_COMPLETE\n"
		"HEAD GET /c host=h cl=-1 chunked=0 ka=0 expect=0 upgrade=0\n  host: h\n  Connection: close\n"
		"MESSAGE_COMPLETE\nconsumed 132 of 132\n");
}

static void test_body_span_points_into_input(void **state)
{
	struct http_request_parser p;
	init_req(&p);
	const char *in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET";
	struct http_feed_result r = http_request_feed(&p, in, strlen(in));
	assert_int_equal(r.event, HTTP_EVENT_HEAD_COMPLETE);
	size_t off = r.consumed;
	r = http_request_feed(&p, in + off, strlen(in) - off);
	assert_int_equal(r.event, HTTP_EVENT_BODY);
	assert_int_equal(r.span_offset, 0);
	assert_int_equal(r.span_len, 3);
	assert_int_equal(r.consumed, 3);
	assert_memory_equal(in + off + r.span_offset, "abc", 3);
	off += r.consumed;
	r = http_request_feed(&p, in + off, strlen(in) - off);
	assert_int_equal(r.event, HTTP_EVENT_MESSAGE_COMPLETE);
	r = http_request_feed(&p, in + off, strlen(in) - off);
	assert_int_equal(r.event, HTTP_EVENT_NEED_MORE);   /* "GET" is the next head */
	assert_int_equal(r.consumed, 3);
	assert_false(http_request_idle(&p));
}

static void test_chunked_extensions_trailers(void **state)
{
	const char *body = "5;name=val\r\nhello\r\n6 ; q\r\n world\r\n0\r\nX-Trailer: t\r\nX-Two: 2\r\n\r\n";
	char in[512];
	snprintf(in, sizeof in, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%sGET /next HTTP/1.1\r\nHost: h\r\n\r\n", body);
	const char *out = req_all(in, 16384);
	char want[1024];
	snprintf(want, sizeof want,
		 "HEAD POST /up host=h cl=-1 chunked=1 ka=1 expect=0 upgrade=0\n  Host: h\n  Transfer-Encoding: chunked\n"
		 "B %zu [%s]\nMESSAGE_COMPLETE\n"
		 "HEAD GET /next host=h cl=-1 chunked=0 ka=1 expect=0 upgrade=0\n  Host: h\nMESSAGE_COMPLETE\n"
		 "consumed %zu of %zu\n", strlen(body), body, strlen(in), strlen(in));
	assert_string_equal(out, want);
}

/* Every input here, split byte by byte and at random points, must give the
 * transcript of feeding it at once. */
static const char *const split_inputs[] = {
	"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
	"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"\r\nGET /leading-crlf HTTP/1.1\r\nHost: h\r\n\r\n",
	"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX",
	"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nopaque bytes",
	"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
};

static void test_split_equivalence_request(void **state)
{
	for (size_t i = 0; i < sizeof split_inputs / sizeof split_inputs[0]; i++) {
		const char *in = split_inputs[i];
		for (size_t max_head = 256; max_head <= 16384; max_head *= 64) {
			drive_request(in, strlen(in), max_head, 0, 0, &ta);
			assert_string_equal(ta.violation, "");
			for (unsigned mode = 1; mode < 40; mode++) {
				drive_request(in, strlen(in), max_head, mode, 1234 + mode, &tb);
				assert_string_equal(tb.violation, "");
				if (ta.len != tb.len || memcmp(ta.text, tb.text, ta.len)) {
					print_error("input %zu mode %u:\n%.*s---\n%.*s", i, mode, (int)ta.len, ta.text,
						    (int)tb.len, tb.text);
					fail();
				}
			}
		}
	}
}

static const char *const split_responses[] = {
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nread until close",
	"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
};

static void test_split_equivalence_response(void **state)
{
	for (size_t i = 0; i < sizeof split_responses / sizeof split_responses[0]; i++) {
		const char *in = split_responses[i];
		drive_response(in, strlen(in), "GG", true, 0, 0, &ta);
		assert_string_equal(ta.violation, "");
		for (unsigned mode = 1; mode < 40; mode++) {
			drive_response(in, strlen(in), "GG", true, mode, 99 + mode, &tb);
			assert_string_equal(tb.violation, "");
			assert_int_equal(ta.len, tb.len);
			assert_memory_equal(ta.text, tb.text, ta.len);
		}
	}
}

static void test_expect_continue(void **state)
{
	struct http_request_parser p;
	init_req(&p);
	/* the client sends only the head and waits for 100 */
	feed_head(&p, "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-Continue\r\n\r\n");
	assert_true(http_request_expect_continue(&p));
	assert_int_equal(http_request_content_length(&p), 4);
	assert_int_equal(http_request_feed(&p, "", 0).event, HTTP_EVENT_NEED_MORE);

	struct http_response_parser rp;
	http_response_parser_init(&rp, 16384);
	assert_int_equal(http_response_expect(&rp, http_request_method(&p)), 0);
	const char *c = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http_feed_result r = http_response_feed(&rp, c, strlen(c));
	assert_int_equal(r.event, HTTP_EVENT_HEAD_COMPLETE);
	assert_int_equal(r.consumed, strlen(c));
	assert_int_equal(http_response_status(&rp), 100);
	assert_true(http_response_is_interim(&rp));
	assert_int_equal(http_response_feed(&rp, "", 0).event, HTTP_EVENT_MESSAGE_COMPLETE);
	assert_int_equal(http_response_pending(&rp), 1);    /* final still to come */

	r = http_request_feed(&p, "abcd", 4);
	assert_int_equal(r.event, HTTP_EVENT_BODY);
	assert_int_equal(r.span_len, 4);
	assert_int_equal(http_request_feed(&p, "", 0).event, HTTP_EVENT_MESSAGE_COMPLETE);

	const char *fin = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
	r = http_response_feed(&rp, fin, strlen(fin));
	assert_int_equal(r.event, HTTP_EVENT_HEAD_COMPLETE);
	assert_int_equal(http_response_status(&rp), 201);
	assert_false(http_response_is_interim(&rp));
	r = http_response_feed(&rp, fin + r.consumed, 2);
	assert_int_equal(r.event, HTTP_EVENT_BODY);
	assert_int_equal(http_response_feed(&rp, "", 0).event, HTTP_EVENT_MESSAGE_COMPLETE);
	assert_int_equal(http_response_pending(&rp), 0);
}

static void test_head_response_no_body(void **state)
{
	/* HEAD's response announces 10 bytes but has none; the next response
	 * (to a GET) follows at once. */
	const char *out = resp_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
				   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "HG", false);
	assert_string_equal(out, "HEAD 200 ka=1 interim=0\nMESSAGE_COMPLETE\n"
			    "HEAD 200 ka=1 interim=0\nB 2 [hi]\nMESSAGE_COMPLETE\nconsumed 79 of 79 pending 0\n");
	/* the same bytes answering a GET are a 10-byte body */
	out = resp_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
		       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "GG", false);
	assert_non_null(strstr(out, "B 10 [HTTP/1.1 2]"));
}

static void test_204_304(void **state)
{
	const char *in = "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"
			 "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
	assert_int_equal(strlen(in), 142);
	const char *out = resp_all(in, "GGG", false);
	assert_string_equal(out, "HEAD 204 ka=1 interim=0\nMESSAGE_COMPLETE\n"
			    "HEAD 304 ka=1 interim=0\nMESSAGE_COMPLETE\n"
			    "HEAD 200 ka=1 interim=0\nB 1 [x]\nMESSAGE_COMPLETE\nconsumed 142 of 142 pending 0\n");
}

static void test_read_until_close(void **state)
{
	const char *out = resp_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", "G", true);
	assert_string_equal(out, "HEAD 200 ka=0 interim=0\nB 9 [all of it]\nEOF: MESSAGE_COMPLETE\nEOF: clean\n"
			    "consumed 54 of 54 pending 0\n");
	out = resp_all("HTTP/1.0 200 OK\r\n\r\n", "G", true);
	assert_string_equal(out, "HEAD 200 ka=0 interim=0\nEOF: MESSAGE_COMPLETE\nEOF: clean\nconsumed 19 of 19 pending 0\n");
	/* a non-chunked transfer coding is also delimited by close */
	out = resp_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", "G", true);
	assert_non_null(strstr(out, "B 2 [zz]\nEOF: MESSAGE_COMPLETE\n"));
	/* EOF inside a length-delimited body is truncation */
	out = resp_all("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "G", true);
	assert_non_null(strstr(out, "EOF: ERROR truncated\n"));
	/* EOF before any response while a request is pending */
	out = resp_all("", "G", true);
	assert_string_equal(out, "EOF: ERROR truncated\nconsumed 0 of 0 pending 1\n");
	/* bytes after a close-delimited response */
	struct http_response_parser rp;
	http_response_parser_init(&rp, 16384);
	http_response_expect(&rp, HTTP_GET);
	http_response_eof(&rp);
	assert_int_equal(http_response_eof(&rp).event, HTTP_EVENT_ERROR);
}

static void test_head_too_large(void **state)
{
	char in[2048];
	size_t base = (size_t)snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
	/* head = base + pad + 4 (CRLF CRLF); exactly at the limit passes */
	size_t limit = 512, pad = limit - base - 4;
	memset(in + base, 'a', pad);
	memcpy(in + base + pad, "\r\n\r\n", 5);
	assert_int_equal(strlen(in), limit);
	assert_non_null(strstr(req_all(in, limit), "MESSAGE_COMPLETE\nconsumed 512 of 512\n"));
	assert_null(strstr(req_all(in, limit), "ERROR"));
	/* one byte more fails, whichever way it is split */
	memset(in + base, 'a', pad + 1);
	memcpy(in + base + pad + 1, "\r\n\r\n", 5);
	assert_string_equal(req_all(in, limit), "ERROR head_too_large\nconsumed 512 of 513\n");
	drive_request(in, strlen(in), limit, 1, 0, &tb);
	tb.text[tb.len] = '\0';
	assert_string_equal(tb.text, "ERROR head_too_large\nconsumed 512 of 513\n");
	/* too many headers */
	size_t off = (size_t)snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		off += (size_t)snprintf(in + off, sizeof in - off, "a:\r\n");
	snprintf(in + off, sizeof in - off, "\r\n");
	assert_non_null(strstr(req_all(in, 16384), "ERROR head_too_large\n"));
	struct http_request_parser p;
	assert_int_equal(http_request_parser_init(&p, head_buf, 100, 16384), -1);  /* buffer too small */
	assert_int_equal(http_error_status(HTTP_ERR_HEAD_TOO_LARGE), 431);
}

static void expect_error(const char *in, const char *name)
{
	const char *out = req_all(in, 16384);
	char want[64];
	snprintf(want, sizeof want, "ERROR %s\n", name);
	if (!strstr(out, want)) {
		print_error("input:\n%s\ngot:\n%s\nwant %s", in, out, want);
		fail();
	}
	/* the error is never preceded by a HEAD_COMPLETE for a smuggled head */
	drive_request(in, strlen(in), 16384, 1, 0, &tb);
	tb.text[tb.len] = '\0';
	assert_string_equal(tb.text, out);
}

static void test_smuggling(void **state)
{
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 5\r\n\r\nabcd", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "smuggling");
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", "smuggling");
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\nX: y\r\n\r\n", "smuggling");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", "smuggling");
	/* body bytes before the bad chunk are reported, then the error */
	const char *out = req_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2;\x01\r\n", 16384);
	if (!strstr(out, "B 9 [2\r\nab\r\n2;]\nERROR smuggling\n")) {
		print_error("%s", out);
		fail();
	}
	assert_int_equal(http_error_status(HTTP_ERR_SMUGGLING), 400);
}

static void test_other_errors(void **state)
{
	expect_error("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "unsupported");
	expect_error("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "unsupported");
	expect_error("GET / HTTP/1.1\r\n\r\n", "bad_host");
	expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "bad_host");
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", "bad_request");
	expect_error("GARBAGE\r\n\r\n", "bad_request");
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n", "after_close");
	/* HTTP/1.0 needs no Host */
	assert_null(strstr(req_all("GET / HTTP/1.0\r\n\r\n", 16384), "ERROR"));
	assert_string_equal(http_error_name(HTTP_ERR_BAD_HOST), "bad_host");
	assert_string_equal(http_error_name((enum http_error)999), "unknown");
	/* the response side */
	assert_non_null(strstr(resp_all("HTTP/1.1 200 OK\r\n\r\n", "", false), "ERROR unsolicited_response"));
	assert_non_null(strstr(resp_all("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", "G", false),
			       "ERROR bad_response"));
	assert_non_null(strstr(resp_all("HTTQ/1.1 200 OK\r\n\r\n", "G", false), "ERROR bad_response"));
	struct http_response_parser rp;
	http_response_parser_init(&rp, 16384);
	for (int i = 0; i < HTTP_MAX_PIPELINE; i++)
		assert_int_equal(http_response_expect(&rp, HTTP_GET), 0);
	assert_int_equal(http_response_expect(&rp, HTTP_GET), -1);
}

static void test_upgrade_tunnel(void **state)
{
	const char *out = req_all("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes", 16384);
	assert_non_null(strstr(out, "upgrade=1\n"));
	assert_non_null(strstr(out, "MESSAGE_COMPLETE\nT 6 [frames]\n"));
	out = resp_all("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nback", "G", true);
	assert_string_equal(out, "HEAD 101 ka=1 interim=0\nMESSAGE_COMPLETE\nT 4 [back]\nEOF: clean\n"
			    "consumed 81 of 81 pending 0\n");
}

static void test_xfcc_rewrite(void **state)
{
	struct http_request_parser p;
	init_req(&p);
	feed_head(&p, "POST /p?q=1 HTTP/1.1\r\nHost: svc\r\nX-Forwarded-Client-Cert: By=spiffe://evil;URI=spiffe://evil\r\n"
		      "Content-Length: 0\r\nx-forwarded-client-cert: again\r\nX-FORWARDED-PROTO: http\r\nAccept: */*\r\n\r\n");
	struct http_forward_identity id = {
		.gateway_id = "spiffe://cluster.local/ns/mesh/sa/meshgate",
		.client_id = "spiffe://cluster.local/ns/prod/sa/frontend",
	};
	char out[1024];
	const char *want = "POST /p?q=1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\nAccept: */*\r\n"
			   "x-forwarded-client-cert: By=spiffe://cluster.local/ns/mesh/sa/meshgate;"
			   "URI=spiffe://cluster.local/ns/prod/sa/frontend\r\nx-forwarded-proto: https\r\n\r\n";
	int n = http_request_head_write(&p, &id, out, sizeof out);
	assert_int_equal(n, (int)strlen(want));
	assert_memory_equal(out, want, (size_t)n);
	/* every smaller buffer is refused */
	for (size_t len = 0; len < strlen(want); len++)
		assert_int_equal(http_request_head_write(&p, &id, out, len), HTTP_WRITE_TOO_SMALL);
	/* plaintext peer: no URI */
	id.client_id = NULL;
	n = http_request_head_write(&p, &id, out, sizeof out);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "\r\nx-forwarded-client-cert: By=spiffe://cluster.local/ns/mesh/sa/meshgate\r\n"));
	assert_null(strstr(out, "URI="));
	assert_null(strstr(out, "evil"));
	/* identities that could inject header syntax are refused */
	id.client_id = "spiffe://x/y\r\nX-Admin: 1";
	assert_int_equal(http_request_head_write(&p, &id, out, sizeof out), HTTP_WRITE_BAD_IDENTITY);
	id.client_id = "spiffe://x/y;By=z";
	assert_int_equal(http_request_head_write(&p, &id, out, sizeof out), HTTP_WRITE_BAD_IDENTITY);
	id.client_id = NULL;
	id.gateway_id = NULL;
	assert_int_equal(http_request_head_write(&p, &id, out, sizeof out), HTTP_WRITE_BAD_IDENTITY);
	/* the rewritten head parses back to the same request */
	id.gateway_id = "spiffe://td/gw";
	id.client_id = "spiffe://td/c";
	n = http_request_head_write(&p, &id, out, sizeof out);
	out[n] = '\0';
	struct http_request_parser q;
	static char head_buf2[HTTP_HEAD_BUF_SIZE(16384)];
	assert_int_equal(http_request_parser_init(&q, head_buf2, sizeof head_buf2, 16384), 0);
	feed_head(&q, out);
	assert_string_equal(http_request_header(&q, "X-Forwarded-Client-Cert", NULL), "By=spiffe://td/gw;URI=spiffe://td/c");
	assert_string_equal(http_request_target(&q, NULL), "/p?q=1");
}

static void test_local_responses(void **state)
{
	char buf[512];
	int n = http_write_response(buf, sizeof buf, 403, NULL, "text/plain", HTTP_BODY_RBAC_DENIED,
				    strlen(HTTP_BODY_RBAC_DENIED), true);
	const char *want = "HTTP/1.1 403 Forbidden\r\nserver: meshgate\r\ncontent-type: text/plain\r\n"
			   "content-length: 19\r\n\r\nRBAC: access denied";
	assert_int_equal(n, (int)strlen(want));
	assert_memory_equal(buf, want, (size_t)n);
	for (size_t len = 0; len < strlen(want); len++)
		assert_int_equal(http_write_response(buf, len, 403, NULL, "text/plain", HTTP_BODY_RBAC_DENIED,
						     strlen(HTTP_BODY_RBAC_DENIED), true), HTTP_WRITE_TOO_SMALL);
	n = http_write_response(buf, sizeof buf, 200, NULL, NULL, "hi", 2, false);
	buf[n] = '\0';
	assert_string_equal(buf, "HTTP/1.1 200 OK\r\nserver: meshgate\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi");
	assert_int_equal(http_write_response(buf, sizeof buf, 200, "OK\r\nX: y", NULL, NULL, 0, true), HTTP_WRITE_BAD_ARGUMENT);
	n = http_write_error_response(buf, sizeof buf, HTTP_ERR_HEAD_TOO_LARGE);
	buf[n] = '\0';
	assert_true(strncmp(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
	assert_non_null(strstr(buf, "connection: close\r\n"));
	n = http_write_error_response(buf, sizeof buf, HTTP_ERR_TRUNCATED);
	buf[n] = '\0';
	assert_true(strncmp(buf, "HTTP/1.1 502 Bad Gateway\r\n", 26) == 0);
	assert_non_null(strstr(buf, "\r\n\r\n" HTTP_BODY_UPSTREAM_ERROR));
	/* what we write parses as a response */
	const char *out = resp_all(want, "G", false);
	assert_string_equal(out, "HEAD 403 ka=1 interim=0\nB 19 [RBAC: access denied]\nMESSAGE_COMPLETE\n"
			    "consumed 109 of 109 pending 0\n");
}

/* Replays the fuzz target over the seed corpus; it aborts on a finding. */
static void test_fuzz_seed_corpus(void **state)
{
	DIR *d = opendir("data/http");
	assert_non_null(d);
	int files = 0;
	struct dirent *e;
	char path[512];
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "data/http/%s", e->d_name);
		assert_int_equal(fuzz_http_replay_file(path), 0);
		files++;
	}
	closedir(d);
	assert_true(files >= 10);
	/* and some pseudo-random mutations of them would be the fuzzer's job */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_request),
		cmocka_unit_test(test_header_name_case),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_body_span_points_into_input),
		cmocka_unit_test(test_chunked_extensions_trailers),
		cmocka_unit_test(test_split_equivalence_request),
		cmocka_unit_test(test_split_equivalence_response),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_head_response_no_body),
		cmocka_unit_test(test_204_304),
		cmocka_unit_test(test_read_until_close),
		cmocka_unit_test(test_head_too_large),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_other_errors),
		cmocka_unit_test(test_upgrade_tunnel),
		cmocka_unit_test(test_xfcc_rewrite),
		cmocka_unit_test(test_local_responses),
		cmocka_unit_test(test_fuzz_seed_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
