/* The http half of the proxy: one request at a time per connection.
 *
 *   client plaintext --http_request_feed--> HEAD_COMPLETE: policy per request
 *       allow: rewritten head (XFCC) + body verbatim --> upstream
 *       deny:  403 "RBAC: access denied", then close
 *       demo service: answered here after the request completes
 *   upstream bytes --> client verbatim; http_response_feed marks where each
 *       response ends (keep-alive) and its status (access log).
 *
 * The next request head is parsed only once the previous response is done,
 * so local answers never overtake upstream responses. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lwip/tcp.h"

#include "appliance/admin_obs.h"
#include "appliance/proxy_conn.h"
#include "appliance/strjoin.h"
#include "net/stack.h"

void http_conn_init(struct conn *c)
{
	/* not head_out: its 17 KB are written before use, and touching them
	 * here would cost every idle connection four pages */
	memset(&c->http, 0, offsetof(struct http_conn_state, head_out));
	size_t max_head = c->proxy->cfg->limits.max_request_head;
	if (max_head < HTTP_MIN_HEAD || max_head > HTTP_DEFAULT_HEAD)
		max_head = HTTP_DEFAULT_HEAD;
	http_request_parser_init(&c->req, c->req_head_buf, sizeof c->req_head_buf, max_head);
	http_response_parser_init(&c->resp, HTTP_DEFAULT_HEAD);
}

static const struct config_service *conn_service(struct conn *c)
{
	return &c->proxy->cfg->services[c->service];
}

/* One access-log line and the request metrics, by the observer. */
static void request_log(struct conn *c)
{
	admin_obs_request(c);
}

/* A response written by meshgate itself. Returns false if it did not fit
 * (cannot happen for our small bodies with an open TLS engine). */
static bool local_response(struct conn *c, int status, const char *ctype, const char *body,
			   size_t body_len, bool keep_alive)
{
	char buf[2048];
	int n = http_write_response(buf, sizeof buf, status, NULL, ctype, body, body_len, keep_alive);
	if (n < 0)
		return false;
	size_t w = pconn_down_write(c, (const uint8_t *)buf, (size_t)n);
	pconn_flush(c);
	c->http.status = (unsigned)status;
	c->http.resp_bytes += w;
	request_log(c);
	if (!keep_alive) {
		c->http.close_after = true;
		pconn_start_close(c);
		c->close_deadline_ms = c->proxy->now_ms + 5000;
	}
	return w == (size_t)n;
}

static void demo_response(struct conn *c, bool keep_alive)
{
	char body[1024];
	const struct config_service *s = conn_service(c);
	const bool named = c->decision.policy_name[0] != '\0';
	int n = snprintf(body, sizeof body,
			 "Hello from the meshgate demo service %s/%s.\n"
			 "You are spiffe://%s, and policy allowed you%s%s%s%s.\n",
			 s->namespace_, s->name, c->principal, named ? " by " : "",
			 named ? c->decision.policy_namespace : "", named ? "/" : "",
			 named ? c->decision.policy_name : "");
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof body)
		n = (int)sizeof body - 1;   /* cannot happen with the field limits; never overread */
	local_response(c, 200, "text/plain", body, (size_t)n, keep_alive);
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = 0;
}

/* Builds the policy request for the current head. */
static void fill_l7(struct conn *c, struct policy_request *r)
{
	pconn_fill_request(c, r);
	size_t tlen;
	const char *target = http_request_target(&c->req, &tlen);
	int nh = 0;
	r->has_l7 = true;
	r->method = http_request_method_name(&c->req);
	r->path = target;
	r->path_len = tlen;
	r->host = http_request_host(&c->req);
	r->headers = http_request_headers(&c->req, &nh);
	r->nheaders = nh;
}

static void on_head(struct conn *c)
{
	struct proxy *p = c->proxy;
	c->requests++;
	p->counters.requests++;
	c->http.started_ms = p->now_ms;
	c->http.req_bytes = 0;
	c->http.resp_bytes = 0;
	c->http.status = 0;
	c->http.body_done = false;
	c->http.response_started = false;
	size_t tlen;
	const char *target = http_request_target(&c->req, &tlen);
	str_join(c->http.method, sizeof c->http.method, http_request_method_name(&c->req), NULL, NULL);
	copy_field(c->http.path, sizeof c->http.path, target, tlen);
	str_join(c->http.host, sizeof c->http.host, http_request_host(&c->req), NULL, NULL);

	struct policy_request r;
	fill_l7(c, &r);
	if (!pconn_decide(c, &r)) {
		pconn_refuse(c, PROXY_REASON_POLICY_DENIED);
		c->reason = PROXY_REASON_NONE;  /* counted; the connection itself is fine */
		c->http.local = true;
		local_response(c, 403, "text/plain", HTTP_BODY_RBAC_DENIED,
			       sizeof HTTP_BODY_RBAC_DENIED - 1, false);
		return;
	}
	if (conn_service(c)->builtin_demo) {
		c->http.local = true;   /* answered at MESSAGE_COMPLETE */
		return;
	}
	c->http.local = false;
	char client_id[320];
	str_join(client_id, sizeof client_id, "spiffe://", c->principal, NULL);
	struct http_forward_identity fid = {
		.gateway_id = c->proxy->gateway_id,
		.client_id = c->principal[0] ? client_id : NULL,
	};
	int n = http_request_head_write(&c->req, &fid, c->http.head_out, sizeof c->http.head_out);
	if (n < 0) {
		pconn_refuse(c, PROXY_REASON_HTTP_HEAD_TOO_LARGE);
		c->http.local = true;
		local_response(c, 431, "text/plain", "request head too large\n", 23, false);
		return;
	}
	c->http.head_out_len = (size_t)n;
	c->http.head_out_off = 0;
	c->http.head_out_pending = true;
	c->http.in_flight = true;
	http_response_expect(&c->resp, http_request_method(&c->req));
	if (!c->up && !pconn_upstream_connect(c))
		c->up_connect_failed = true;
}

/* Sends the rewritten head once the upstream is connected. */
static bool flush_head(struct conn *c)
{
	if (!c->http.head_out_pending || !c->up || c->up_state != UP_OPEN)
		return false;
	bool moved = false;
	while (c->http.head_out_off < c->http.head_out_len) {
		size_t n = pconn_upstream_write(c, (const uint8_t *)c->http.head_out + c->http.head_out_off,
						c->http.head_out_len - c->http.head_out_off);
		if (!n)
			break;
		c->http.head_out_off += n;
		moved = true;
	}
	if (c->http.head_out_off == c->http.head_out_len)
		c->http.head_out_pending = false;
	return moved;
}

static size_t upstream_room(struct conn *c)
{
	if (!c->up || c->up_state != UP_OPEN)
		return 0;
	return tcp_sndbuf(c->up);
}

/* Client → upstream. */
static bool from_client(struct conn *c)
{
	bool moved = false;
	moved |= flush_head(c);
	for (;;) {
		if (c->closing || c->http.close_after)
			break;
		if (c->http.head_out_pending)
			break;              /* waiting for the upstream */
		/* one request at a time: wait for the response before the next head */
		if (c->http.body_done && (c->http.in_flight || c->http.local))
			break;
		size_t len = 0;
		const uint8_t *data = pconn_in_read(c, &len);
		if (!data) {
			/* no input: still drain a pending event (the parser may hold
			 * MESSAGE_COMPLETE after the last byte was consumed) */
			data = (const uint8_t *)"";
			len = 0;
		}
		/* body bytes go straight to the upstream: never feed more than it can
		 * take now, so every BODY span is forwarded whole */
		size_t feed = len;
		bool in_body = c->http.in_flight && !c->http.body_done;
		if (in_body) {
			size_t room = upstream_room(c);
			if (room > NET_MAX_CHUNK)
				room = NET_MAX_CHUNK;
			if (!room)
				break;
			if (feed > room)
				feed = room;
		}
		struct http_feed_result r = http_request_feed(&c->req, (const char *)data, feed);
		switch (r.event) {
		case HTTP_EVENT_NEED_MORE:
			break;
		case HTTP_EVENT_HEAD_COMPLETE:
			on_head(c);
			break;
		case HTTP_EVENT_BODY:
		case HTTP_EVENT_TUNNEL:
			if (!c->http.local) {
				size_t w = pconn_upstream_write(c, data + r.span_offset, r.span_len);
				if (w != r.span_len) {
					/* cannot happen: feed was limited to the room */
					pconn_refuse(c, PROXY_REASON_NO_MEMORY);
					c->abort_up = true;
					c->abort_down = true;
					c->down_reset = true;
				}
			}
			c->http.req_bytes += r.span_len;
			break;
		case HTTP_EVENT_MESSAGE_COMPLETE:
			c->http.body_done = true;
			if (!http_request_keep_alive(&c->req))
				c->http.close_after = true;
			if (c->http.local && c->decision.action == POLICY_ALLOW && c->http.status == 0) {
				demo_response(c, http_request_keep_alive(&c->req));
				c->http.local = false;
				c->http.body_done = false;
			}
			break;
		case HTTP_EVENT_ERROR: {
			enum http_error e = http_request_error(&c->req);
			pconn_refuse(c, e == HTTP_ERR_HEAD_TOO_LARGE ? PROXY_REASON_HTTP_HEAD_TOO_LARGE
							   : PROXY_REASON_HTTP_BAD_REQUEST);
			pconn_in_ack(c, r.consumed);
			if (!c->http.in_flight && !c->http.response_started) {
				char buf[512];
				int n = http_write_error_response(buf, sizeof buf, e);
				if (n > 0) {
					pconn_down_write(c, (const uint8_t *)buf, (size_t)n);
					pconn_flush(c);
				}
			}
			c->http.close_after = true;
			pconn_start_close(c);
			c->close_deadline_ms = c->proxy->now_ms + 5000;
			return true;
		}
		}
		if (r.consumed) {
			pconn_in_ack(c, r.consumed);
			c->bytes_from_down += r.consumed;
			c->proxy->counters.bytes_from_downstream += r.consumed;
			moved = true;
		} else if (r.event == HTTP_EVENT_NEED_MORE) {
			break;
		} else {
			moved = true;
		}
		if (c->closing)
			break;
	}
	if (c->up_needs_output && c->up)
		tcp_output(c->up);
	return moved;
}

static void response_done(struct conn *c)
{
	c->http.in_flight = false;
	request_log(c);
	c->http.body_done = false;
	if (c->http.close_after || !http_response_keep_alive(&c->resp)) {
		pconn_start_close(c);
		c->close_deadline_ms = c->proxy->now_ms + 5000;
	}
}

/* Upstream → client: bytes are forwarded verbatim; the parser only marks
 * response boundaries and status codes. */
static bool from_upstream(struct conn *c)
{
	bool moved = false;
	for (;;) {
		size_t len;
		const uint8_t *data = pconn_up_peek(c, &len);
		if (!data || !len)
			break;
		size_t w = pconn_down_write(c, data, len);
		if (!w)
			break;
		size_t off = 0;
		/* until NEED_MORE: events may come with nothing consumed */
		for (;;) {
			struct http_feed_result r = http_response_feed(&c->resp, (const char *)data + off, w - off);
			off += r.consumed;
			if (r.event == HTTP_EVENT_NEED_MORE)
				break;
			if (r.event == HTTP_EVENT_HEAD_COMPLETE) {
				if (!http_response_is_interim(&c->resp))
					c->http.status = http_response_status(&c->resp);
			} else if (r.event == HTTP_EVENT_MESSAGE_COMPLETE) {
				if (!http_response_is_interim(&c->resp) || c->http.status)
					if (c->http.in_flight && c->http.status)
						response_done(c);
			} else if (r.event == HTTP_EVENT_ERROR) {
				pconn_refuse(c, PROXY_REASON_HTTP_BAD_RESPONSE);
				c->abort_up = true;
				pconn_start_close(c);
				c->close_deadline_ms = c->proxy->now_ms + 2000;
				off = w;
				break;
			}
		}
		c->http.resp_bytes += w;
		c->http.response_started = true;
		pconn_up_consume(c, w);
		moved = true;
	}
	if (moved)
		pconn_flush(c);
	return moved;
}

static void upstream_failed(struct conn *c)
{
	pconn_refuse(c, PROXY_REASON_UPSTREAM_CONNECT);
	c->reason = PROXY_REASON_NONE;
	pconn_close_up(c);
	c->http.in_flight = false;
	c->http.head_out_pending = false;
	c->http.local = true;
	local_response(c, 503, "text/plain", HTTP_BODY_UPSTREAM_ERROR,
		       sizeof HTTP_BODY_UPSTREAM_ERROR - 1, false);
}

bool http_progress(struct conn *c)
{
	bool moved = false;
	if (c->up_connect_failed && c->http.in_flight && !c->http.response_started) {
		upstream_failed(c);
		return true;
	}
	moved |= from_client(c);
	moved |= from_upstream(c);
	if (c->up_reset) {
		if (c->http.in_flight && !c->http.response_started) {
			upstream_failed(c);
		} else if (c->http.in_flight) {
			pconn_refuse(c, PROXY_REASON_UPSTREAM_RESET);
			c->abort_down = true;
			c->down_reset = true;   /* propagate: conn_check_end frees */
		} else {
			pconn_close_up(c);
		}
		return true;
	}
	if (c->up_eof && !pconn_up_peek(c, &(size_t){0})) {
		/* upstream closed: a read-until-close body ends here */
		struct http_feed_result r = http_response_eof(&c->resp);
		if (c->http.in_flight) {
			if (r.event == HTTP_EVENT_MESSAGE_COMPLETE && c->http.status) {
				response_done(c);
			} else if (!c->http.response_started) {
				upstream_failed(c);
				return true;
			} else {
				pconn_refuse(c, PROXY_REASON_UPSTREAM_RESET);
			}
			pconn_start_close(c);
			c->close_deadline_ms = c->proxy->now_ms + 5000;
		}
		pconn_close_up(c);
		moved = true;
	}
	if (c->down_eof && !c->http.in_flight && !c->closing) {
		pconn_start_close(c);
		c->close_deadline_ms = c->proxy->now_ms + 1000;
		moved = true;
	}
	return moved;
}

bool http_reevaluate(struct conn *c)
{
	struct policy_request r;
	if (c->state == CONN_HANDSHAKE)
		return true;            /* decided when the handshake completes */
	if (c->listener->cfg.protocol == CONFIG_PROTOCOL_TCP) {
		pconn_fill_request(c, &r);
		return pconn_decide(c, &r);
	}
	if (!c->requests)
		return true;            /* each request is decided when it arrives */
	/* http: the last request's attributes stand for the connection */
	pconn_fill_request(c, &r);
	r.has_l7 = true;
	r.method = c->http.method;
	r.path = c->http.path;
	r.path_len = strlen(c->http.path);
	r.host = c->http.host;
	return pconn_decide(c, &r);
}
