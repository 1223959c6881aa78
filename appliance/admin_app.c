/* The admin console in the appliance: see admin_app.h.
 *
 * Transport per admin connection, the proxy's pattern in small (one side
 * only, no upstream):
 *   lwIP recv → rx ring of pbufs → tls_conn_feed → plaintext → http parser
 *   → admin_handle() → response head + body → tls_conn_write → tcp_write.
 * lwIP callbacks only queue pbufs and mark the connection dirty;
 * admin_app_poll() does the work and every close/free. One request at a
 * time per connection; the next one is read once the response is queued. */
#include "appliance/admin_app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "appliance/admin.h"
#include "appliance/admin_app_internal.h"
#include "appliance/admin_obs.h"
#include "appliance/config.h"
#include "appliance/http.h"
#include "net/stack.h"
#include "tls/tls.h"

void admin_app_log(struct admin_app *app, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (app->opt.log)
		app->opt.log(app->opt.log_arg, line);
}

void admin_ip_text(uint32_t ip_be, char *buf, size_t len)
{
	const uint8_t *b = (const uint8_t *)&ip_be;
	snprintf(buf, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

unsigned admin_app_conns_in_use(const struct admin_app *app)
{
	return app->nconns;
}

/* ============================================================ transport */

static void conn_mark(struct admin_conn *c)
{
	c->dirty = true;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct admin_conn *c = arg;
	if (!c) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p) {
		c->eof = true;
		conn_mark(c);
		return ERR_OK;
	}
	if (c->rx_count == ADMIN_RX_RING)
		return ERR_MEM;     /* lwIP keeps it */
	c->rx[(c->rx_head + c->rx_count) % ADMIN_RX_RING] = p;
	c->rx_count++;
	c->last_ms = c->app->now_ms;
	conn_mark(c);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	if (arg)
		conn_mark(arg);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct admin_conn *c = arg;
	if (!c)
		return;
	c->pcb = NULL;
	c->reset = true;
	conn_mark(c);
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	if (arg)
		conn_mark(arg);
	return ERR_OK;
}

static void pcb_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
}

static void conn_free(struct admin_conn *c, bool abort)
{
	while (c->rx_count) {
		struct pbuf *p = c->rx[c->rx_head];
		if (c->pcb)
			tcp_recved(c->pcb, p->tot_len);
		pbuf_free(p);
		c->rx_head = (c->rx_head + 1) % ADMIN_RX_RING;
		c->rx_count--;
	}
	if (c->pcb) {
		pcb_detach(c->pcb);
		if (abort || tcp_close(c->pcb) != ERR_OK)
			tcp_abort(c->pcb);
		c->pcb = NULL;
	}
	tls_conn_wipe(&c->tls);
	if (c->in_use)
		c->app->nconns--;
	c->in_use = false;
	c->dirty = false;
}

static void request_reset(struct admin_conn *c)
{
	c->in_body = c->too_large = c->chunked = c->is_head = false;
	c->has_cookie = c->has_ctype = false;
	c->body_len = 0;
	c->target_len = 0;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct admin_app *app = arg;
	if (!app || err != ERR_OK || !pcb)
		return ERR_VAL;
	struct admin_conn *c = NULL;
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		if (!app->conns[i].in_use) {
			c = &app->conns[i];
			break;
		}
	if (!c) {
		app->pool_refused++;
		metrics_refusal(&app->obs->metrics, "admin_pool_exhausted");
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	app->accepted++;
	char *body = c->body, *out = c->out;
	memset(c, 0, offsetof(struct admin_conn, req));
	c->body = body;
	c->out = out;
	c->app = app;
	c->in_use = true;
	app->nconns++;
	c->pcb = pcb;
	c->started_ms = c->last_ms = app->now_ms;
	c->peer_ip = ip_addr_get_ip4_u32(&pcb->remote_ip);
	c->peer_port = pcb->remote_port;
	tls_conn_reset(&c->tls, app->creds, NULL, NULL);
	tls_conn_set_client_cert_optional(&c->tls);
	http_request_parser_init(&c->req, c->head_buf, sizeof c->head_buf, HTTP_DEFAULT_HEAD);
	request_reset(c);
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, 2);
	tcp_nagle_disable(pcb);
	conn_mark(c);
	return ERR_OK;
}

/* ciphertext in */
static bool pump_in(struct admin_conn *c)
{
	bool moved = false;
	while (c->rx_count) {
		struct pbuf *p = c->rx[c->rx_head];
		/* walk to rx_off inside the chain */
		size_t off = c->rx_off;
		struct pbuf *q = p;
		while (q && off >= q->len) {
			off -= q->len;
			q = q->next;
		}
		if (!q)
			break;
		size_t n = tls_conn_feed(&c->tls, (const uint8_t *)q->payload + off, q->len - off);
		if (!n)
			break;
		moved = true;
		c->rx_off += n;
		if (c->pcb)
			tcp_recved(c->pcb, (u16_t)n);
		if (c->rx_off == p->tot_len) {
			pbuf_free(p);
			c->rx_head = (c->rx_head + 1) % ADMIN_RX_RING;
			c->rx_count--;
			c->rx_off = 0;
		}
	}
	if (c->eof && !c->rx_count && !c->eof_fed) {
		tls_conn_eof(&c->tls);
		c->eof_fed = true;
		moved = true;
	}
	return moved;
}

/* ciphertext out */
static bool pump_out(struct admin_conn *c)
{
	bool moved = false;
	while (c->pcb) {
		size_t len;
		const uint8_t *d = tls_conn_output(&c->tls, &len);
		if (!d || !len)
			break;
		size_t room = tcp_sndbuf(c->pcb);
		if (tcp_sndqueuelen(c->pcb) + 4 >= TCP_SND_QUEUELEN)
			break;
		if (len > room)
			len = room;
		if (len > NET_MAX_CHUNK)
			len = NET_MAX_CHUNK;
		if (!len || tcp_write(c->pcb, d, (u16_t)len, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		tls_conn_output_ack(&c->tls, len);
		moved = true;
	}
	if (moved && c->pcb)
		tcp_output(c->pcb);
	return moved;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 100: return "Continue";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static void start_response(struct admin_conn *c, const struct admin_response *r)
{
	int n = snprintf(c->head, sizeof c->head,
			 "HTTP/1.1 %d %s\r\n"
			 "content-type: %s\r\n"
			 "content-length: %zu\r\n"
			 "%s"
			 "x-content-type-options: nosniff\r\n"
			 "x-frame-options: DENY\r\n"
			 "referrer-policy: no-referrer\r\n"
			 "content-security-policy: default-src 'self'; frame-ancestors 'none'\r\n"
			 "strict-transport-security: max-age=31536000\r\n"
			 "%s\r\n",
			 r->status, reason_phrase(r->status),
			 r->content_type ? r->content_type : "text/plain", r->body_len, r->headers,
			 c->close_after ? "connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof c->head)
		n = snprintf(c->head, sizeof c->head,
			     "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
	c->head_len = (size_t)n;
	c->head_off = 0;
	c->resp = r->body;
	c->resp_len = c->is_head ? 0 : r->body_len;
	c->resp_off = 0;
	c->responding = true;
}

static void simple_response(struct admin_conn *c, int status, const char *msg)
{
	struct admin_response r;
	memset(&r, 0, sizeof r);
	r.status = status;
	r.content_type = "application/json";
	int n = snprintf(c->out, ADMIN_OUT_MAX, "{\"status\":%d,\"error\":\"%s\"}", status, msg);
	r.body = c->out;
	r.body_len = (size_t)n;
	c->close_after = true;
	start_response(c, &r);
}

static void dispatch(struct admin_conn *c)
{
	struct admin_app *app = c->app;
	if (c->too_large) {
		simple_response(c, 413, "request body too large");
		return;
	}
	if (c->chunked) {
		simple_response(c, 411, "send the body with a content-length (chunked uploads are not taken)");
		return;
	}
	const struct tls_peer *peer = tls_conn_peer(&c->tls);
	if (!peer && c->tls.x509.err != TLS_OK) {
		/* a certificate was sent and failed (BearSSL tolerated it as "no
		 * client auth"): refuse with the reason instead of offering a login */
		char msg[128];
		snprintf(msg, sizeof msg, "client certificate refused: %s", tls_error_name(c->tls.x509.err));
		metrics_refusal(&app->obs->metrics, "admin_bad_client_cert");
		app->admin.counters.forbidden++;
		simple_response(c, 403, msg);
		return;
	}
	struct admin_request q = {
		.method = c->method,
		.target = c->target,
		.target_len = c->target_len,
		.cookie = c->has_cookie ? c->cookie : NULL,
		.content_type = c->has_ctype ? c->ctype : NULL,
		.body = c->body,
		.body_len = c->body_len,
		.peer_spiffe_id = peer ? peer->spiffe_id : NULL,
		.peer_ip = c->peer_ip,
		.now_ms = app->now_ms,
	};
	static struct admin_response r;
	admin_handle(&app->admin, &q, c->out, ADMIN_OUT_MAX, &r);
	if (r.status >= 400) {
		char ip[20];
		admin_ip_text(c->peer_ip, ip, sizeof ip);
		admin_app_log(app, "admin: %s:%u %s %.*s -> %d%s%s", ip, c->peer_port, c->method,
			 (int)(c->target_len > 200 ? 200 : c->target_len), c->target, r.status,
			 peer ? " " : "", peer ? peer->spiffe_id : "");
	}
	start_response(c, &r);
}

static void copy_header(const struct http_request_parser *req, const char *name, char *out,
			size_t cap, bool *has)
{
	size_t n;
	const char *v = http_request_header(req, name, &n);
	*has = false;
	if (!v || n >= cap)
		return;
	memcpy(out, v, n);
	out[n] = 0;
	*has = true;
}

/* plaintext in: feed the parser until one request is complete */
static bool read_request(struct admin_conn *c)
{
	bool moved = false;
	while (!c->responding && !c->closing) {
		size_t len;
		const uint8_t *data = tls_conn_read(&c->tls, &len);
		if (!data) {
			/* events may come with nothing new to feed: call until NEED_MORE */
			data = (const uint8_t *)"";
			len = 0;
		}
		struct http_feed_result r = http_request_feed(&c->req, (const char *)data, len);
		switch (r.event) {
		case HTTP_EVENT_NEED_MORE:
			if (r.consumed) {
				tls_conn_read_ack(&c->tls, r.consumed);
				moved = true;
			}
			return moved;
		case HTTP_EVENT_HEAD_COMPLETE: {
			request_reset(c);
			snprintf(c->method, sizeof c->method, "%s", http_request_method_name(&c->req));
			c->is_head = !strcmp(c->method, "HEAD");
			size_t tl;
			const char *t = http_request_target(&c->req, &tl);
			if (tl >= sizeof c->target)
				tl = sizeof c->target - 1;
			memcpy(c->target, t, tl);
			c->target[tl] = 0;
			c->target_len = tl;
			copy_header(&c->req, "cookie", c->cookie, sizeof c->cookie, &c->has_cookie);
			copy_header(&c->req, "content-type", c->ctype, sizeof c->ctype, &c->has_ctype);
			c->keep_alive = http_request_keep_alive(&c->req);
			uint64_t cl = http_request_content_length(&c->req);
			if (cl != HTTP_NO_CONTENT_LENGTH && cl > ADMIN_BODY_MAX)
				c->too_large = true;
			/* chunked BODY spans carry the chunk framing: uploads need a length */
			c->chunked = http_request_chunked(&c->req);
			if (http_request_expect_continue(&c->req) && !c->too_large) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				tls_conn_write(&c->tls, cont, sizeof cont - 1);
				tls_conn_flush(&c->tls);
			}
			c->in_body = true;
			break;
		}
		case HTTP_EVENT_BODY:
			if (c->body_len + r.span_len > ADMIN_BODY_MAX) {
				c->too_large = true;
			} else {
				memcpy(c->body + c->body_len, data + r.span_offset, r.span_len);
				c->body_len += r.span_len;
			}
			break;
		case HTTP_EVENT_MESSAGE_COMPLETE:
			c->in_body = false;
			c->close_after = !c->keep_alive || c->too_large;
			tls_conn_read_ack(&c->tls, r.consumed);
			dispatch(c);
			return true;
		case HTTP_EVENT_TUNNEL:
		case HTTP_EVENT_ERROR: {
			tls_conn_read_ack(&c->tls, r.consumed ? r.consumed : len);
			char buf[512];
			int n = http_write_error_response(buf, sizeof buf, http_request_error(&c->req));
			if (n > 0) {
				tls_conn_write(&c->tls, buf, (size_t)n);
				tls_conn_flush(&c->tls);
			}
			metrics_refusal(&c->app->obs->metrics, "admin_bad_request");
			c->closing = true;
			tls_conn_close(&c->tls);
			c->close_deadline_ms = c->app->now_ms + 2000;
			return true;
		}
		}
		if (r.consumed)
			tls_conn_read_ack(&c->tls, r.consumed);
		moved = true;
	}
	return moved;
}

/* response bytes into the TLS engine as room allows */
static bool write_response(struct admin_conn *c)
{
	bool moved = false;
	while (c->responding) {
		const char *d;
		size_t left;
		if (c->head_off < c->head_len) {
			d = c->head + c->head_off;
			left = c->head_len - c->head_off;
		} else if (c->resp_off < c->resp_len) {
			d = c->resp + c->resp_off;
			left = c->resp_len - c->resp_off;
		} else {
			c->responding = false;
			tls_conn_flush(&c->tls);
			if (c->close_after) {
				c->closing = true;
				tls_conn_close(&c->tls);
				c->close_deadline_ms = c->app->now_ms + 2000;
			} else {
				request_reset(c);
			}
			return true;
		}
		size_t n = tls_conn_write(&c->tls, d, left);
		if (!n) {
			tls_conn_flush(&c->tls);
			if (!pump_out(c))
				break;
			continue;
		}
		if (c->head_off < c->head_len)
			c->head_off += n;
		else
			c->resp_off += n;
		moved = true;
	}
	return moved;
}

static void conn_progress(struct admin_conn *c)
{
	struct admin_app *app = c->app;
	for (int round = 0; round < 64; round++) {
		bool moved = pump_in(c);
		enum tls_state st = tls_conn_state(&c->tls);
		if (st == TLS_STATE_OPEN && !c->opened) {
			c->opened = true;
			moved = true;
		}
		if (st == TLS_STATE_OPEN) {
			moved |= read_request(c);
			moved |= write_response(c);
		}
		moved |= pump_out(c);
		if (!moved)
			break;
	}
	enum tls_state st = tls_conn_state(&c->tls);
	size_t pending;
	bool out_pending = tls_conn_output(&c->tls, &pending) != NULL;
	if (c->reset) {
		conn_free(c, true);
		return;
	}
	if (st == TLS_STATE_FAILED && !c->opened && !out_pending) {
		enum tls_error e = tls_conn_error(&c->tls);
		if (e != TLS_ERR_CLOSED_BY_PEER) {
			app->tls_failed++;
			metrics_refusal(&app->obs->metrics, "admin_tls_handshake");
			char ip[20];
			admin_ip_text(c->peer_ip, ip, sizeof ip);
			admin_app_log(app, "admin: %s:%u TLS handshake refused: %s", ip, c->peer_port, tls_error_name(e));
		}
		conn_free(c, false);
		return;
	}
	if ((st == TLS_STATE_FAILED || st == TLS_STATE_CLOSED) && !out_pending) {
		conn_free(c, false);
		return;
	}
	if (st == TLS_STATE_CLOSING && !out_pending && c->eof) {
		conn_free(c, false);
		return;
	}
	if (c->eof && st == TLS_STATE_OPEN && !c->responding && !out_pending) {
		conn_free(c, false);
		return;
	}
}

static void conn_timers(struct admin_conn *c)
{
	uint32_t now = c->app->now_ms;
	if (!c->opened && now - c->started_ms > ADMIN_HANDSHAKE_TIMEOUT_MS) {
		metrics_refusal(&c->app->obs->metrics, "admin_handshake_timeout");
		conn_free(c, true);
	} else if (c->closing && (int32_t)(now - c->close_deadline_ms) > 0) {
		conn_free(c, false);
	} else if (now - c->last_ms > ADMIN_IDLE_TIMEOUT_MS && !c->responding) {
		conn_free(c, false);
	}
}

/* ============================================================ listener */

static void listener_close(struct admin_app *app)
{
	if (app->listener) {
		tcp_arg(app->listener, NULL);
		tcp_accept(app->listener, NULL);
		tcp_close(app->listener);
		app->listener = NULL;
	}
}

static int listener_open(struct admin_app *app, const struct config *cfg, char *err, size_t errlen)
{
	const struct config_admin *a = &cfg->admin;
	if (!a->enabled)
		return 0;
	if (a->port < 0 || a->port >= cfg->nports || !app->opt.ifs || !app->opt.ifs[a->port]) {
		snprintf(err, errlen, "spec.admin.port: no interface for port index %d", a->port);
		return -1;
	}
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (!pcb) {
		snprintf(err, errlen, "admin listener: out of lwIP pcbs");
		return -1;
	}
	ip_addr_t addr;
	ip_addr_set_ip4_u32(&addr, net_if_addr(app->opt.ifs[a->port]));
	if (tcp_bind(pcb, &addr, a->listen) != ERR_OK) {
		tcp_close(pcb);
		snprintf(err, errlen, "admin listener: port %u already in use", a->listen);
		return -1;
	}
	struct tcp_pcb *lp = tcp_listen_with_backlog(pcb, 16);
	if (!lp) {
		tcp_close(pcb);
		snprintf(err, errlen, "admin listener: cannot listen");
		return -1;
	}
	tcp_arg(lp, app);
	tcp_accept(lp, on_accept);
	app->listener = lp;
	app->listen_port_index = a->port;
	app->listen_port = a->listen;
	char ip[20];
	admin_ip_text(cfg->ports[a->port].address, ip, sizeof ip);
	admin_app_log(app, "admin console: https://%s:%u/ (%d allowed principal%s, password login %s)", ip,
		 a->listen, a->nallowed, a->nallowed == 1 ? "" : "s", a->password_hash[0] ? "on" : "off");
	return 0;
}

/* ============================================================ public */

struct admin_app *admin_app_create(const struct admin_app_options *opt, char *err, size_t errlen)
{
	struct admin_app *app = calloc(1, sizeof *app);
	if (!app) {
		snprintf(err, errlen, "admin: out of memory");
		return NULL;
	}
	app->opt = *opt;
	app->cfg = opt->cfg;
	app->creds = opt->creds;
	snprintf(app->base_dir, sizeof app->base_dir, "%s", opt->upload_base_dir ? opt->upload_base_dir : ".");
	app->obs = admin_obs_create(opt->log, opt->log_arg);
	app->conns = calloc(ADMIN_MAX_CONNS, sizeof *app->conns);
	app->bodies = calloc(ADMIN_MAX_CONNS, ADMIN_BODY_MAX);
	app->outs = calloc(ADMIN_MAX_CONNS, ADMIN_OUT_MAX);
	if (!app->obs || !app->conns || !app->bodies || !app->outs) {
		snprintf(err, errlen, "admin: out of memory");
		admin_app_stop(app);
		return NULL;
	}
	for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
		app->conns[i].body = app->bodies + (size_t)i * ADMIN_BODY_MAX;
		app->conns[i].out = app->outs + (size_t)i * ADMIN_OUT_MAX;
	}
	admin_view_source(app, &app->src);
	admin_init(&app->admin, &app->src);
	admin_configure(&app->admin, &app->cfg->admin);
	app->now_ms = net_now_ms();
	return app;
}

struct admin_obs *admin_app_obs(struct admin_app *app) { return app ? app->obs : NULL; }

int admin_app_start(struct admin_app *app, struct proxy *proxy, char *err, size_t errlen)
{
	app->proxy = proxy;
	admin_obs_configure(app->obs, app->cfg);
	return listener_open(app, app->cfg, err, errlen);
}

void admin_app_poll(struct admin_app *app, uint32_t now_ms)
{
	app->now_ms = now_ms;
	/* every loop pass: look at the slots only when one is in use */
	for (int i = 0; app->nconns && i < ADMIN_MAX_CONNS; i++) {
		struct admin_conn *c = &app->conns[i];
		if (!c->in_use)
			continue;
		if (c->dirty) {
			c->dirty = false;
			conn_progress(c);
		}
		if (c->in_use)
			conn_timers(c);
	}
}

int admin_app_apply(struct admin_app *app, const struct config *cfg,
		    const struct tls_credentials *creds, char *err, size_t errlen)
{
	const struct config_admin *a = &cfg->admin;
	bool same = app->listener && a->enabled && a->port == app->listen_port_index &&
		a->listen == app->listen_port;
	app->cfg = cfg;
	app->creds = creds;
	admin_configure(&app->admin, &cfg->admin);
	admin_obs_configure(app->obs, cfg);
	if (same)
		return 0;
	listener_close(app);
	if (!a->enabled)
		return 0;
	return listener_open(app, cfg, err, errlen);
}

void admin_app_stop(struct admin_app *app)
{
	if (!app)
		return;
	for (int i = 0; app->conns && i < ADMIN_MAX_CONNS; i++)
		if (app->conns[i].in_use)
			conn_free(&app->conns[i], true);
	listener_close(app);
	admin_obs_destroy(app->obs);
	free(app->conns);
	free(app->bodies);
	free(app->outs);
	free(app);
}
