/* The proxy: see proxy.h for the contract.
 *
 * Shape of one connection (struct conn):
 *
 *   client --TCP--> down pcb --ciphertext--> tls_conn --plaintext--> up pcb --> endpoint
 *                   down_rx ring (pbufs)                             up_rx ring (pbufs)
 *
 * lwIP callbacks never do work themselves: they queue pbufs or note an event
 * and put the connection on the dirty queue; proxy_poll() then runs
 * conn_progress() once per dirty connection. That keeps every free and close
 * outside lwIP's own call stack.
 *
 * Backpressure: received pbufs are acknowledged to lwIP with tcp_recved() only
 * once they have been moved on (into the TLS engine, or into the other pcb's
 * send buffer), so a slow side closes the fast side's TCP window instead of
 * growing a buffer. Each ring holds at most PROXY_RX_RING chains; when full,
 * the recv callback returns ERR_MEM and lwIP keeps the data for later. */
#include "appliance/proxy.h"
#include "appliance/proxy_conn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/tcp.h"
#include "lwip/pbuf.h"
#include "lwip/ip_addr.h"

#include "appliance/admin_obs.h"
#include "appliance/config.h"
#include "appliance/policy.h"
#include "net/pcb_index.h"
#include "net/stack.h"
#include "tls/tls.h"

_Static_assert(PROXY_TLS_ERRORS >= TLS_ERR_COUNT, "PROXY_TLS_ERRORS too small");

static const char *const reason_names[PROXY_REASON_COUNT] = {
	[PROXY_REASON_NONE] = "none",
	[PROXY_REASON_POOL_EXHAUSTED] = "pool_exhausted",
	[PROXY_REASON_DRAINING] = "draining",
	[PROXY_REASON_TLS_HANDSHAKE] = "tls_handshake",
	[PROXY_REASON_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[PROXY_REASON_POLICY_DENIED] = "policy_denied",
	[PROXY_REASON_POLICY_REVOKED] = "policy_revoked",
	[PROXY_REASON_UPSTREAM_CONNECT] = "upstream_connect_failed",
	[PROXY_REASON_UPSTREAM_RESET] = "upstream_reset",
	[PROXY_REASON_DOWNSTREAM_RESET] = "downstream_reset",
	[PROXY_REASON_IDLE_TIMEOUT] = "idle_timeout",
	[PROXY_REASON_HTTP_BAD_REQUEST] = "http_bad_request",
	[PROXY_REASON_HTTP_HEAD_TOO_LARGE] = "http_head_too_large",
	[PROXY_REASON_HTTP_BAD_RESPONSE] = "http_bad_response",
	[PROXY_REASON_NO_MEMORY] = "no_memory",
};

const char *proxy_reason_name(enum proxy_reason r)
{
	if ((unsigned)r >= PROXY_REASON_COUNT || !reason_names[r])
		return "unknown";
	return reason_names[r];
}

/* ------------------------------------------------------------ pbuf rings */

static bool ring_full(const struct pbuf_ring *r) { return r->count == PROXY_RX_RING; }
static bool ring_empty(const struct pbuf_ring *r) { return r->count == 0; }

static void ring_push(struct pbuf_ring *r, struct pbuf *p)
{
	r->items[(r->head + r->count) % PROXY_RX_RING] = p;
	r->count++;
	r->bytes += p->tot_len;
}

/* Peeks at the front chain: pointer and length of its first contiguous run. */
static const uint8_t *ring_peek(const struct pbuf_ring *r, size_t *len)
{
	if (!r->count) {
		*len = 0;
		return NULL;
	}
	struct pbuf *p = r->items[r->head];
	size_t off = r->offset;
	while (p && off >= p->len) {
		off -= p->len;
		p = p->next;
	}
	if (!p) {
		*len = 0;
		return NULL;
	}
	*len = p->len - off;
	return (const uint8_t *)p->payload + off;
}

static void ring_skip(struct pbuf_ring *r, size_t n)
{
	while (n && r->count) {
		struct pbuf *p = r->items[r->head];
		size_t avail = p->tot_len - r->offset;
		size_t k = avail < n ? avail : n;
		r->offset += k;
		r->bytes -= k;
		n -= k;
		if (r->offset == p->tot_len) {
			pbuf_free(p);
			r->head = (r->head + 1) % PROXY_RX_RING;
			r->count--;
			r->offset = 0;
		}
	}
}

/* Drops everything queued; returns how many bytes were dropped. */
static size_t ring_clear(struct pbuf_ring *r)
{
	size_t bytes = r->bytes;
	while (r->count) {
		pbuf_free(r->items[r->head]);
		r->head = (r->head + 1) % PROXY_RX_RING;
		r->count--;
	}
	r->offset = 0;
	r->bytes = 0;
	return bytes;
}

/* tcp_recved takes u16_t. */
static void pcb_recved(struct tcp_pcb *pcb, size_t n)
{
	while (pcb && n) {
		u16_t k = n > 0xffff ? 0xffff : (u16_t)n;
		tcp_recved(pcb, k);
		n -= k;
	}
}

static void pcb_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
}

/* Graceful close (FIN); falls back to abort when lwIP has no memory. */
static void pcb_close(struct tcp_pcb *pcb)
{
	pcb_detach(pcb);
	if (tcp_close(pcb) != ERR_OK)
		tcp_abort(pcb);
}

static void pcb_abort(struct tcp_pcb *pcb)
{
	pcb_detach(pcb);
	tcp_abort(pcb);
}

/* ------------------------------------------------------------ pool */

/* The configuration in force, and what is made from it once rather than
 * per request: the gateway's own SPIFFE ID for XFCC "By=". */
static void proxy_set_config(struct proxy *p, const struct config *cfg)
{
	p->cfg = cfg;
	p->cfg_generation++;
	snprintf(p->gateway_id, sizeof p->gateway_id, "spiffe://%s/ns/meshgate/sa/%s", cfg->trust_domain,
		 cfg->name[0] ? cfg->name : "gateway");
}

static void mark_dirty(struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	struct proxy *p = c->proxy;
	p->dirty[p->ndirty++] = c;
}

static struct conn *conn_alloc(struct proxy *p)
{
	struct conn *c = p->free_list;
	if (!c)
		return NULL;
	p->free_list = c->next_free;
	/* Everything up to the TLS context is reset; the TLS context is reset by
	 * tls_conn_init and the HTTP parsers by their own init. */
	struct proxy *owner = p;
	bool dirty = c->dirty, ack_listed = c->ack_listed;
	memset(c, 0, offsetof(struct conn, tls));
	c->proxy = owner;
	c->dirty = dirty;
	c->ack_listed = ack_listed;
	c->in_use = true;
	c->id = ++p->next_id;
	/* active list */
	c->next = p->active;
	if (p->active)
		p->active->prev = c;
	p->active = c;
	p->nactive++;
	return c;
}

static void conn_log(struct conn *c);

static void conn_free(struct conn *c)
{
	struct proxy *p = c->proxy;
	if (!c->in_use)
		return;
	if (c->down) {
		pcb_recved(c->down, ring_clear(&c->down_rx));
		if (c->abort_down)
			pcb_abort(c->down);
		else
			pcb_close(c->down);
		c->down = NULL;
	}
	ring_clear(&c->down_rx);
	if (c->up) {
		pcb_recved(c->up, ring_clear(&c->up_rx));
		if (c->abort_up)
			pcb_abort(c->up);
		else
			pcb_close(c->up);
		c->up = NULL;
	}
	ring_clear(&c->up_rx);
	conn_log(c);
	p->counters.closed++;
	tls_conn_wipe(&c->tls);
	c->in_use = false;
	if (c->prev)
		c->prev->next = c->next;
	else
		p->active = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	p->nactive--;
	c->next_free = p->free_list;
	p->free_list = c;
}

void pconn_refuse(struct conn *c, enum proxy_reason why)
{
	if (c->reason == PROXY_REASON_NONE) {
		c->reason = why;
		c->proxy->counters.refused[why]++;
		admin_obs_refusal(c->proxy->opt.obs, why);
	}
}

/* ------------------------------------------------------------ logging */

void pconn_ip_text(uint32_t ip_be, char *buf, size_t len)
{
	const uint8_t *b = (const uint8_t *)&ip_be;
	snprintf(buf, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

/* One access-log line and the connection metrics, by the observer
 * (appliance/admin_obs.c, accesslog.c format). */
static void conn_log(struct conn *c)
{
	admin_obs_closed(c);
}

/* ------------------------------------------------------------ policy */

void pconn_fill_request(struct conn *c, struct policy_request *r)
{
	const struct config *cfg = c->proxy->cfg;
	const struct config_service *s = &cfg->services[c->service];
	memset(r, 0, sizeof *r);
	r->workload_namespace = s->namespace_;
	r->workload_labels = s->labels;
	r->workload_nlabels = s->nlabels;
	r->principal = c->principal[0] ? c->principal : NULL;
	r->source_ip = c->peer_ip;
	r->dest_ip = c->local_ip;
	r->dest_port = c->local_port;
	r->sni = c->sni[0] ? c->sni : NULL;
}

/* Evaluates and records the decision; returns true when allowed. */
bool pconn_decide(struct conn *c, const struct policy_request *r)
{
	struct proxy *p = c->proxy;
	policy_evaluate(p->cfg->policies, r, &c->decision);
	c->decided = true;
	admin_obs_decision(c);
	if (c->decision.dry_run_matched) {
		if (c->decision.dry_run_action == POLICY_ALLOW)
			p->counters.dry_run_would_allow++;
		else
			p->counters.dry_run_would_deny++;
	}
	if (c->decision.action == POLICY_ALLOW) {
		p->counters.policy_allow++;
		return true;
	}
	p->counters.policy_deny++;
	return false;
}

/* TLS authorize hook: runs once the client chain is verified, before the
 * handshake completes. tcp listeners decide here (the identity is all there
 * is), so a denied peer gets an access_denied alert; http listeners decide
 * per request. */
static int conn_authorize(void *arg, const struct tls_peer *peer)
{
	struct conn *c = arg;
	snprintf(c->principal, sizeof c->principal, "%s", tls_peer_principal(peer));
	snprintf(c->sni, sizeof c->sni, "%s", tls_conn_server_name(&c->tls));
	if (c->listener->cfg.protocol != CONFIG_PROTOCOL_TCP)
		return 0;
	struct policy_request r;
	pconn_fill_request(c, &r);
	if (pconn_decide(c, &r))
		return 0;
	pconn_refuse(c, PROXY_REASON_POLICY_DENIED);
	return -1;
}

/* ------------------------------------------------------------ lwIP callbacks */

/* Delayed ACKs (appliance/ack_wait.h). lwIP ACKs every second full segment
 * at once and leaves a lone segment's ACK to its 250 ms timer; ACKing every
 * short segment at once cost a pure ACK per request each way (17% of the CPU
 * per keep-alive request, measured). A connection that received data goes on
 * proxy.acks, and an ACK owed for PROXY_ACK_DELAY_US is sent then. */
#define PROXY_ACK_DELAY_US 1000u

/* proxy.acks is a FIFO of connections to look at again (a ring of pool_size
 * entries: a connection is on it at most once), each at ack_due_us. Entries
 * are pushed at the tail with a due time at most PROXY_ACK_DELAY_US ahead,
 * so the ring is nearly in due order and acks_flush only looks at its head;
 * an ACK is sent at most 2 * PROXY_ACK_DELAY_US after it became owed. */
static void ack_list(struct conn *c, uint64_t due_us)
{
	struct proxy *p = c->proxy;
	c->ack_listed = true;
	c->ack_due_us = due_us;
	p->acks[(p->acks_head + p->nacks++) % p->pool_size] = c;
}

/* A segment arrived on one side: its ACK is owed (appliance/ack_wait.h). */
static void ack_later(struct conn *c, struct ack_wait *w, const struct tcp_pcb *pcb)
{
	/* TF_ACK_NOW: lwIP sends the ACK itself when tcp_input ends */
	ack_wait_segment(w, net_pass_us(), pcb->snd_nxt, pcb->flags & TF_ACK_NOW);
	if (w->waiting && !c->ack_listed)
		ack_list(c, w->since_us + PROXY_ACK_DELAY_US);
}

/* One side of a connection that came due: sends its ACK if it has been owed
 * for the whole delay; returns when to look again (0: nothing owed). */
static uint64_t ack_check(struct tcp_pcb *pcb, struct ack_wait *w, uint64_t now, uint64_t *sent)
{
	bool owed = pcb && (pcb->flags & TF_ACK_DELAY);
	uint64_t r = ack_wait_check(w, now, pcb ? pcb->snd_nxt : 0, owed, PROXY_ACK_DELAY_US);
	if (r != ACK_WAIT_SEND)
		return r;
	pcb->flags |= TF_ACK_NOW;   /* tcp_ack_now() is in a private lwIP header */
	tcp_output(pcb);
	++*sent;
	return 0;
}

/* Sends the ACKs that came due (an ACK that went out with data meanwhile
 * is not owed any more); stops at the first entry not yet due. */
static void acks_flush(struct proxy *p)
{
	if (!p->nacks)
		return;
	uint64_t now = net_pass_us();
	unsigned n = p->nacks;      /* entries put back go behind: look once */
	while (n-- && p->nacks) {
		struct conn *c = p->acks[p->acks_head];
		if (c->in_use && now < c->ack_due_us)
			break;
		c->ack_listed = false;
		p->acks_head = (p->acks_head + 1) % p->pool_size;
		p->nacks--;
		if (!c->in_use)
			continue;
		uint64_t sent = 0;
		uint64_t d1 = ack_check(c->down, &c->down_ack, now, &sent);
		uint64_t d2 = ack_check(c->up, &c->up_ack, now, &sent);
		if (sent)
			p->counters.delayed_acks++;
		if (d1 && d2)
			ack_list(c, d1 < d2 ? d1 : d2);     /* the side due first */
		else if (d1 || d2)
			ack_list(c, d1 | d2);               /* the one still waiting */
	}
}

/* Both sides' receive callback: queue the segment on `ring` (or note EOF)
 * for proxy_poll; the window opens again only as the bytes are consumed. */
static err_t queue_recv(struct conn *c, struct tcp_pcb *pcb, struct pbuf *pb, struct pbuf_ring *ring,
			bool *eof, struct ack_wait *ack)
{
	if (!c) {
		if (pb) {
			tcp_recved(pcb, pb->tot_len);
			pbuf_free(pb);
		}
		return ERR_OK;
	}
	if (!pb) {
		*eof = true;
		mark_dirty(c);
		return ERR_OK;
	}
	if (ring_full(ring))
		return ERR_MEM;     /* lwIP keeps it and offers it again */
	ring_push(ring, pb);
	c->last_activity_ms = c->proxy->now_ms;
	ack_later(c, ack, pcb);
	mark_dirty(c);
	return ERR_OK;
}

static err_t down_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *pb, err_t err)
{
	struct conn *c = arg;
	return queue_recv(c, pcb, pb, c ? &c->down_rx : NULL, c ? &c->down_eof : NULL,
			  c ? &c->down_ack : NULL);
}

/* Either side acknowledged data: there may be room to move more. */
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct conn *c = arg;
	if (c)
		mark_dirty(c);
	return ERR_OK;
}

static void down_err(void *arg, err_t err)
{
	struct conn *c = arg;
	if (!c)
		return;
	c->down = NULL;     /* lwIP already freed it */
	c->down_reset = true;
	mark_dirty(c);
}

/* lwIP's periodic poll of either side: time for timeouts to be checked. */
static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	struct conn *c = arg;
	if (c)
		mark_dirty(c);
	return ERR_OK;
}

static err_t up_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *pb, err_t err)
{
	struct conn *c = arg;
	return queue_recv(c, pcb, pb, c ? &c->up_rx : NULL, c ? &c->up_eof : NULL,
			  c ? &c->up_ack : NULL);
}

static void up_err(void *arg, err_t err)
{
	struct conn *c = arg;
	if (!c)
		return;
	c->up = NULL;
	if (c->up_state == UP_CONNECTING)
		c->up_connect_failed = true;
	else
		c->up_reset = true;
	mark_dirty(c);
}

static err_t up_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct conn *c = arg;
	if (!c)
		return ERR_OK;
	c->up_state = UP_OPEN;
	mark_dirty(c);
	return ERR_OK;
}

/* ------------------------------------------------------------ upstream */

bool pconn_upstream_connect(struct conn *c)
{
	struct proxy *p = c->proxy;
	const struct config_service *s = &p->cfg->services[c->service];
	if (s->nendpoints == 0) {
		c->up_connect_failed = true;
		return false;
	}
	struct proxy_listener *l = c->listener;
	const struct config_endpoint *ep = &s->endpoints[l->next_endpoint++ % (unsigned)s->nendpoints];
	struct tcp_pcb *up = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (!up) {
		pconn_refuse(c, PROXY_REASON_NO_MEMORY);
		c->up_connect_failed = true;
		return false;
	}
	tcp_arg(up, c);
	tcp_recv(up, up_recv);
	tcp_sent(up, on_sent);
	tcp_err(up, up_err);
	tcp_poll(up, on_poll, 2);
	tcp_nagle_disable(up);
	ip_addr_t a;
	ip_addr_set_ip4_u32(&a, ep->ip);
	c->up = up;
	c->up_state = UP_CONNECTING;
	c->up_deadline_ms = p->now_ms + p->cfg->limits.connect_timeout_ms;
	if (net_pcb_index_connect(up, &a, ep->port, up_connected) != ERR_OK) {
		pcb_abort(up);
		c->up = NULL;
		c->up_connect_failed = true;
		return false;
	}
	return true;
}

/* Moves plaintext into the upstream pcb; returns bytes written. */
size_t pconn_upstream_write(struct conn *c, const uint8_t *data, size_t len)
{
	if (!c->up || c->up_state != UP_OPEN)
		return 0;
	size_t room = tcp_sndbuf(c->up);
	size_t qroom = TCP_SND_QUEUELEN > tcp_sndqueuelen(c->up)
		? (size_t)(TCP_SND_QUEUELEN - tcp_sndqueuelen(c->up)) : 0;
	if (qroom < 4)
		return 0;
	if (len > room)
		len = room;
	if (len > NET_MAX_CHUNK)
		len = NET_MAX_CHUNK;
	if (!len)
		return 0;
	if (tcp_write(c->up, data, (u16_t)len, TCP_WRITE_FLAG_COPY) != ERR_OK)
		return 0;
	c->up_needs_output = true;
	c->proxy->counters.bytes_to_upstream += len;
	c->bytes_to_up += len;
	return len;
}

/* ------------------------------------------------------------ TLS pumps */

/* Ciphertext from the client into the engine. */
static bool pump_down_rx(struct conn *c)
{
	if (c->plain || c->sniffing)
		return false;       /* plaintext is read straight from the ring */
	bool moved = false;
	size_t total = 0;
	for (;;) {
		size_t len;
		const uint8_t *data = ring_peek(&c->down_rx, &len);
		if (!data || !len)
			break;
		size_t n = tls_conn_feed(&c->tls, data, len);
		if (!n)
			break;
		ring_skip(&c->down_rx, n);
		total += n;
		moved = true;
	}
	pcb_recved(c->down, total);
	return moved;
}

/* Ciphertext from the engine to the client. */
static bool pump_down_tx(struct conn *c)
{
	if (c->plain)
		return false;       /* plaintext went to lwIP in pconn_down_write */
	bool moved = false;
	while (c->down) {
		size_t len;
		const uint8_t *data = tls_conn_output(&c->tls, &len);
		if (!data || !len)
			break;
		size_t room = tcp_sndbuf(c->down);
		if (tcp_sndqueuelen(c->down) + 4 >= TCP_SND_QUEUELEN)
			break;
		if (len > room)
			len = room;
		if (len > NET_MAX_CHUNK)
			len = NET_MAX_CHUNK;
		if (!len)
			break;
		if (tcp_write(c->down, data, (u16_t)len, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		tls_conn_output_ack(&c->tls, len);
		c->down_needs_output = true;
		moved = true;
	}
	return moved;
}

/* Plaintext for the client: queued into the engine (all or part). */
size_t pconn_down_write(struct conn *c, const uint8_t *data, size_t len)
{
	size_t done = 0;
	while (c->plain && c->down && done < len) {
		size_t room = tcp_sndbuf(c->down), n = len - done;
		if (tcp_sndqueuelen(c->down) + 4 >= TCP_SND_QUEUELEN)
			break;
		if (n > room)
			n = room;
		if (n > NET_MAX_CHUNK)
			n = NET_MAX_CHUNK;
		if (!n || tcp_write(c->down, data + done, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		c->down_needs_output = true;
		done += n;
	}
	while (!c->plain && done < len) {
		size_t n = tls_conn_write(&c->tls, data + done, len - done);
		if (!n) {
			/* record buffer full: move ciphertext out, then retry */
			if (!pump_down_tx(c))
				break;
			continue;
		}
		done += n;
	}
	if (done) {
		c->bytes_to_down += done;
		c->proxy->counters.bytes_to_downstream += done;
	}
	return done;
}

const uint8_t *pconn_in_read(struct conn *c, size_t *len)
{
	if (c->plain)
		return ring_peek(&c->down_rx, len);
	return tls_conn_read(&c->tls, len);
}

void pconn_in_ack(struct conn *c, size_t n)
{
	if (c->plain) {
		ring_skip(&c->down_rx, n);
		pcb_recved(c->down, n);
	} else {
		tls_conn_read_ack(&c->tls, n);
	}
}

void pconn_flush(struct conn *c)
{
	if (!c->plain)
		tls_conn_flush(&c->tls);
}

/* The client stream's state; a plaintext stream is open until we close it. */
static enum tls_state conn_stream_state(struct conn *c)
{
	if (c->plain)
		return c->closing ? TLS_STATE_CLOSING : TLS_STATE_OPEN;
	return tls_conn_state(&c->tls);
}

static bool conn_output_pending(struct conn *c)
{
	size_t pending;
	return !c->plain && tls_conn_output(&c->tls, &pending) != NULL;
}

const uint8_t *pconn_up_peek(struct conn *c, size_t *len)
{
	return ring_peek(&c->up_rx, len);
}

void pconn_up_consume(struct conn *c, size_t n)
{
	ring_skip(&c->up_rx, n);
	pcb_recved(c->up, n);
	c->proxy->counters.bytes_from_upstream += n;
}

/* Ends the upstream connection gracefully (between HTTP requests). */
void pconn_close_up(struct conn *c)
{
	if (c->up) {
		pcb_recved(c->up, ring_clear(&c->up_rx));
		pcb_close(c->up);
		c->up = NULL;
	}
	ring_clear(&c->up_rx);
	c->up_state = UP_NONE;
	c->up_eof = c->up_reset = c->up_connect_failed = c->up_shut = false;
}

/* ------------------------------------------------------------ protocol: tcp */

static bool tcp_from_client(struct conn *c)
{
	bool moved = false;
	for (;;) {
		size_t len;
		const uint8_t *data = pconn_in_read(c, &len);
		if (!data || !len)
			break;
		size_t n = pconn_upstream_write(c, data, len);
		if (!n)
			break;
		pconn_in_ack(c, n);
		c->bytes_from_down += n;
		c->proxy->counters.bytes_from_downstream += n;
		moved = true;
	}
	return moved;
}

static bool tcp_from_upstream(struct conn *c)
{
	bool moved = false;
	for (;;) {
		size_t len;
		const uint8_t *data = ring_peek(&c->up_rx, &len);
		if (!data || !len)
			break;
		size_t n = pconn_down_write(c, data, len);
		if (!n)
			break;
		pconn_up_consume(c, n);
		moved = true;
	}
	if (moved)
		pconn_flush(c);
	return moved;
}

/* ------------------------------------------------------------ progress */

void pconn_start_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (!c->plain)
		tls_conn_close(&c->tls);
}


/* Returns true if the connection was freed. */
static bool conn_check_end(struct conn *c)
{
	struct proxy *p = c->proxy;
	uint32_t now = p->now_ms;

	if (c->down_reset) {
		/* the client reset: reset the upstream too */
		pconn_refuse(c, PROXY_REASON_DOWNSTREAM_RESET);
		c->abort_up = true;
		conn_free(c);
		return true;
	}
	if (c->up_reset && c->state == CONN_OPEN) {
		pconn_refuse(c, PROXY_REASON_UPSTREAM_RESET);
		c->abort_down = true;
		conn_free(c);
		return true;
	}
	if (c->state == CONN_HANDSHAKE && (int32_t)(now - c->deadline_ms) > 0) {
		pconn_refuse(c, PROXY_REASON_HANDSHAKE_TIMEOUT);
		conn_free(c);
		return true;
	}
	if (c->up_state == UP_CONNECTING && (int32_t)(now - c->up_deadline_ms) > 0) {
		if (c->up) {
			pcb_abort(c->up);
			c->up = NULL;
		}
		c->up_connect_failed = true;
	}
	if (c->state == CONN_OPEN && p->cfg->limits.idle_timeout_ms &&
	    now - c->last_activity_ms > p->cfg->limits.idle_timeout_ms) {
		pconn_refuse(c, PROXY_REASON_IDLE_TIMEOUT);
		pconn_start_close(c);
		c->close_deadline_ms = now + 1000;
	}

	enum tls_state ts = conn_stream_state(c);
	if (ts == TLS_STATE_FAILED) {
		if (!c->tls_failed) {
			c->tls_failed = true;
			c->tls_error = tls_conn_error(&c->tls);
			if ((unsigned)c->tls_error < PROXY_TLS_ERRORS)
				p->counters.tls_errors[c->tls_error]++;
			if (c->state == CONN_HANDSHAKE)
				pconn_refuse(c, PROXY_REASON_TLS_HANDSHAKE);
			c->abort_up = c->up != NULL && c->state != CONN_HANDSHAKE;
		}
	}
	/* The engine is finished (closed or failed): once its last bytes (an
	 * alert or close_notify) are in lwIP's hands, close the TCP side. */
	if (ts == TLS_STATE_CLOSED || ts == TLS_STATE_FAILED) {
		if (!c->down || !conn_output_pending(c)) {
			conn_free(c);
			return true;
		}
	}
	/* We sent close_notify: once it is queued, shut our sending side and
	 * linger for the client's close_notify or FIN (closing outright would
	 * make lwIP answer late client bytes with a reset that can overtake the
	 * response). Plaintext arriving meanwhile is discarded. */
	if (ts == TLS_STATE_CLOSING && c->down) {
		size_t pending;
		const uint8_t *d;
		while ((d = pconn_in_read(c, &pending)) != NULL && pending)
			pconn_in_ack(c, pending);
		if (!conn_output_pending(c) && !c->down_shut) {
			tcp_shutdown(c->down, 0, 1);
			c->down_shut = true;
			if (!c->close_deadline_ms || (int32_t)(c->close_deadline_ms - (now + 2000)) > 0)
				c->close_deadline_ms = now + 2000;
		}
	}
	if (c->closing && c->close_deadline_ms && (int32_t)(now - c->close_deadline_ms) > 0) {
		conn_free(c);
		return true;
	}
	if (!c->down) {
		conn_free(c);
		return true;
	}
	return false;
}

static void conn_handshake_done(struct conn *c)
{
	struct proxy *p = c->proxy;
	const struct tls_peer *peer = tls_conn_peer(&c->tls);
	p->counters.tls_handshakes_ok++;
	if (peer)
		snprintf(c->principal, sizeof c->principal, "%s", tls_peer_principal(peer));
	c->state = CONN_OPEN;
	c->last_activity_ms = p->now_ms;
	admin_obs_opened(c);
	if (c->listener->cfg.protocol == CONFIG_PROTOCOL_TCP) {
		/* decided in conn_authorize; connect now */
		if (!pconn_upstream_connect(c))
			c->up_connect_failed = true;
	}
}

/* A plaintext peer on a PERMISSIVE or DISABLE listener: no identity. tcp
 * listeners decide now (a denied peer is closed: there is no TLS alert to
 * send); http listeners decide per request. */
static void conn_plain_open(struct conn *c)
{
	struct proxy *p = c->proxy;
	c->plain = true;
	c->sniffing = false;
	c->state = CONN_OPEN;
	c->principal[0] = 0;
	c->last_activity_ms = p->now_ms;
	p->counters.plaintext_accepted++;
	if (c->listener->cfg.protocol != CONFIG_PROTOCOL_TCP)
		return;
	struct policy_request r;
	pconn_fill_request(c, &r);
	if (!pconn_decide(c, &r)) {
		pconn_refuse(c, PROXY_REASON_POLICY_DENIED);
		pconn_start_close(c);
		c->close_deadline_ms = p->now_ms + 2000;
		return;
	}
	if (!pconn_upstream_connect(c))
		c->up_connect_failed = true;
}

/* PERMISSIVE: the first byte tells TLS (a handshake record, 0x16) from
 * plaintext. Returns true when the connection's mode is now known. */
static bool conn_sniff(struct conn *c)
{
	size_t len;
	const uint8_t *d = ring_peek(&c->down_rx, &len);
	if (!d || !len)
		return false;
	if (d[0] == 0x16)
		c->sniffing = false;
	else
		conn_plain_open(c);
	return true;
}

static void conn_progress(struct conn *c)
{
	struct proxy *p = c->proxy;
	for (int round = 0; round < 32; round++) {
		bool progress = false;
		if (c->sniffing)
			progress |= conn_sniff(c);
		progress |= pump_down_rx(c);
		if (c->state == CONN_HANDSHAKE && !c->plain && !c->sniffing &&
		    tls_conn_state(&c->tls) == TLS_STATE_OPEN) {
			conn_handshake_done(c);
			progress = true;
		}
		if (c->state == CONN_OPEN) {
			if (c->listener->cfg.protocol == CONFIG_PROTOCOL_TCP) {
				progress |= tcp_from_client(c);
				progress |= tcp_from_upstream(c);
				if (c->up_connect_failed && !c->closing) {
					pconn_refuse(c, PROXY_REASON_UPSTREAM_CONNECT);
					pconn_start_close(c);
					c->close_deadline_ms = p->now_ms + 2000;
					progress = true;
				}
				/* client half-closed: pass the FIN on, keep relaying back */
				if (c->down_eof && !c->up_shut && c->up && c->up_state == UP_OPEN &&
				    ring_empty(&c->down_rx) && !pconn_in_read(c, &(size_t){0})) {
					tcp_shutdown(c->up, 0, 1);
					c->up_shut = true;
					progress = true;
				}
				/* upstream finished: close_notify once all it sent is queued */
				if (c->up_eof && ring_empty(&c->up_rx) && !c->closing) {
					pconn_start_close(c);
					c->close_deadline_ms = p->now_ms + 5000;
					progress = true;
				}
			} else {
				progress |= http_progress(c);
			}
		}
		progress |= pump_down_tx(c);
		if (conn_check_end(c))
			return;
		if (!progress)
			break;
	}
	if (c->down_eof && c->state == CONN_HANDSHAKE) {
		/* client went away mid-handshake */
		pconn_refuse(c, PROXY_REASON_TLS_HANDSHAKE);
		conn_free(c);
		return;
	}
	if (c->down_eof && c->closing) {
		conn_free(c);
		return;
	}
	if (c->down_eof && c->listener->cfg.protocol != CONFIG_PROTOCOL_TCP && !c->up) {
		conn_free(c);
		return;
	}
	if (c->down_eof && c->listener->cfg.protocol == CONFIG_PROTOCOL_TCP &&
	    (c->up_eof || !c->up) && ring_empty(&c->up_rx)) {
		conn_free(c);
		return;
	}
	if (c->down_needs_output && c->down) {
		tcp_output(c->down);
		c->down_needs_output = false;
	}
	if (c->up_needs_output && c->up) {
		tcp_output(c->up);
		c->up_needs_output = false;
	}
}

/* ------------------------------------------------------------ accept */

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct proxy_listener *l = arg;
	struct proxy *p = l->proxy;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	if (p->draining || !l->open) {
		p->counters.refused[PROXY_REASON_DRAINING]++;
		admin_obs_refusal(p->opt.obs, PROXY_REASON_DRAINING);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	struct conn *c = conn_alloc(p);
	if (!c) {
		p->counters.refused[PROXY_REASON_POOL_EXHAUSTED]++;
		admin_obs_refusal(p->opt.obs, PROXY_REASON_POOL_EXHAUSTED);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	p->counters.accepted++;
	c->listener = l;
	c->service = l->cfg.service;
	c->down = pcb;
	c->state = CONN_HANDSHAKE;
	c->started_ms = p->now_ms;
	c->last_activity_ms = p->now_ms;
	c->deadline_ms = p->now_ms + p->cfg->limits.handshake_timeout_ms;
	c->peer_ip = ip_addr_get_ip4_u32(&pcb->remote_ip);
	c->peer_port = pcb->remote_port;
	c->local_ip = ip_addr_get_ip4_u32(&pcb->local_ip);
	c->local_port = pcb->local_port;
	tls_conn_reset(&c->tls, p->creds, conn_authorize, c);
	http_conn_init(c);
	const struct config_service *svc = &p->cfg->services[c->service];
	enum policy_mtls_mode mode = policy_mtls_mode(p->cfg->policies, svc->namespace_, svc->labels,
						      svc->nlabels, l->cfg.listen);
	if (mode == POLICY_MTLS_PERMISSIVE)
		c->sniffing = true;
	tcp_arg(pcb, c);
	tcp_recv(pcb, down_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, down_err);
	tcp_poll(pcb, on_poll, 2);
	tcp_nagle_disable(pcb);
	if (mode == POLICY_MTLS_DISABLE)
		conn_plain_open(c);
	mark_dirty(c);
	return ERR_OK;
}

static int listener_open(struct proxy *p, struct proxy_listener *l, struct net_if *nif,
			 char *err, size_t errlen)
{
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (!pcb) {
		snprintf(err, errlen, "listener %s: out of lwIP pcbs", l->cfg.name);
		return -1;
	}
	ip_addr_t a;
	ip_addr_set_ip4_u32(&a, net_if_addr(nif));
	if (tcp_bind(pcb, &a, l->cfg.listen) != ERR_OK) {
		tcp_close(pcb);
		snprintf(err, errlen, "listener %s: port %u already in use", l->cfg.name, l->cfg.listen);
		return -1;
	}
	struct tcp_pcb *lp = tcp_listen_with_backlog(pcb, 255);
	if (!lp) {
		tcp_close(pcb);
		snprintf(err, errlen, "listener %s: cannot listen", l->cfg.name);
		return -1;
	}
	l->pcb = lp;
	l->proxy = p;
	l->open = true;
	tcp_arg(lp, l);
	tcp_accept(lp, on_accept);
	return 0;
}

static void listener_close(struct proxy_listener *l)
{
	if (l->pcb) {
		tcp_arg(l->pcb, NULL);
		tcp_accept(l->pcb, NULL);
		tcp_close(l->pcb);
		l->pcb = NULL;
	}
	l->open = false;
}

/* ------------------------------------------------------------ public */

struct proxy *proxy_start(const struct config *cfg, const struct tls_credentials *creds,
			  struct net_if *const *ifs, const struct proxy_options *opt,
			  char *err, size_t errlen)
{
	struct proxy *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	proxy_set_config(p, cfg);
	p->creds = creds;
	if (opt)
		p->opt = *opt;
	p->pool_size = cfg->limits.max_connections ? cfg->limits.max_connections : 4096;
	/* calloc of a large pool maps zero pages lazily: untouched entries cost
	 * no resident memory until first used. */
	p->pool = calloc(p->pool_size, sizeof *p->pool);
	p->dirty = calloc(p->pool_size, sizeof *p->dirty);
	p->acks = calloc(p->pool_size, sizeof *p->acks);
	if (!p->pool || !p->dirty || !p->acks) {
		snprintf(err, errlen, "cannot allocate %u connections (%zu bytes each)",
			 p->pool_size, sizeof *p->pool);
		free(p->pool);
		free(p->dirty);
		free(p->acks);
		free(p);
		return NULL;
	}
	for (unsigned i = p->pool_size; i-- > 0;) {
		p->pool[i].next_free = p->free_list;
		p->free_list = &p->pool[i];
	}
	p->now_ms = net_now_ms();
	p->ifs_count = cfg->nports;
	for (int i = 0; i < cfg->nports; i++)
		p->ifs[i] = ifs[i];
	for (int i = 0; i < cfg->nlisteners; i++) {
		struct proxy_listener *l = &p->listeners[i];
		l->cfg = cfg->listeners[i];
		if (listener_open(p, l, ifs[l->cfg.port], err, errlen) != 0) {
			proxy_stop(p);
			return NULL;
		}
	}
	p->nlisteners = cfg->nlisteners;
	return p;
}

void proxy_poll(struct proxy *p, uint32_t now_ms)
{
	p->now_ms = now_ms;
	/* conn_progress may mark other connections dirty: loop until empty */
	while (p->ndirty) {
		struct conn *c = p->dirty[--p->ndirty];
		c->dirty = false;
		if (c->in_use)
			conn_progress(c);
	}
	acks_flush(p);
}

static bool listener_same(const struct config_listener *a, const struct config_listener *b)
{
	return a->port == b->port && a->listen == b->listen && a->protocol == b->protocol &&
	       strcmp(a->name, b->name) == 0;
}

int proxy_apply(struct proxy *p, const struct config *cfg, const struct tls_credentials *creds,
		char *err, size_t errlen)
{
	/* Listeners: keep the ones that did not change (their pcbs and open
	 * connections stay), close removed ones, open new ones. */
	struct proxy_listener old[CONFIG_MAX_LISTENERS];
	int nold = p->nlisteners;
	memcpy(old, p->listeners, sizeof(old[0]) * (size_t)nold);
	bool kept[CONFIG_MAX_LISTENERS] = {0};
	struct proxy_listener fresh[CONFIG_MAX_LISTENERS];
	memset(fresh, 0, sizeof fresh);
	for (int i = 0; i < cfg->nlisteners; i++) {
		fresh[i].cfg = cfg->listeners[i];
		fresh[i].proxy = p;
		for (int j = 0; j < nold; j++) {
			if (!kept[j] && listener_same(&old[j].cfg, &cfg->listeners[i])) {
				fresh[i].pcb = old[j].pcb;
				fresh[i].open = true;
				fresh[i].next_endpoint = old[j].next_endpoint;
				kept[j] = true;
				break;
			}
		}
	}
	for (int i = 0; i < cfg->nlisteners; i++) {
		if (!fresh[i].pcb &&
		    listener_open(p, &fresh[i], p->ifs[fresh[i].cfg.port], err, errlen) != 0) {
			for (int k = 0; k < i; k++)
				if (fresh[k].pcb && !fresh[k].open)
					listener_close(&fresh[k]);
			return -1;
		}
	}
	/* Connections point at listener slots: remap them. */
	for (struct conn *c = p->active; c; c = c->next) {
		int idx = (int)(c->listener - p->listeners);
		int to = -1;
		for (int i = 0; i < cfg->nlisteners && idx >= 0 && idx < nold; i++)
			if (kept[idx] && fresh[i].pcb == old[idx].pcb)
				to = i;
		c->orphan = to < 0;
		c->new_listener = to;
	}
	for (int j = 0; j < nold; j++)
		if (!kept[j])
			listener_close(&old[j]);
	memcpy(p->listeners, fresh, sizeof(fresh[0]) * (size_t)cfg->nlisteners);
	p->nlisteners = cfg->nlisteners;
	for (int i = 0; i < p->nlisteners; i++)
		if (p->listeners[i].pcb)
			tcp_arg(p->listeners[i].pcb, &p->listeners[i]);
	proxy_set_config(p, cfg);
	p->creds = creds;

	/* Re-evaluate open connections against the new policy, as ztunnel does. */
	int closed = 0;
	struct conn *next;
	for (struct conn *c = p->active; c; c = next) {
		next = c->next;
		if (c->orphan) {
			/* its listener is gone: the service it fronted is no longer
			 * configured here */
			c->listener = NULL;
			pconn_refuse(c, PROXY_REASON_POLICY_REVOKED);
			c->abort_down = true;
			c->abort_up = true;
			conn_free(c);
			closed++;
			continue;
		}
		c->listener = &p->listeners[c->new_listener];
		/* services may have been renumbered */
		c->service = c->listener->cfg.service;
		if (c->state != CONN_OPEN && c->state != CONN_HANDSHAKE)
			continue;
		if (!http_reevaluate(c)) {
			pconn_refuse(c, PROXY_REASON_POLICY_REVOKED);
			c->abort_down = true;
			c->abort_up = true;
			conn_free(c);
			closed++;
		}
	}
	return closed;
}

void proxy_drain(struct proxy *p)
{
	p->draining = true;
	for (int i = 0; i < p->nlisteners; i++)
		listener_close(&p->listeners[i]);
}

unsigned proxy_active(const struct proxy *p) { return p->nactive; }
unsigned proxy_pool_size(const struct proxy *p) { return p->pool_size; }
const struct proxy_counters *proxy_counters(const struct proxy *p) { return &p->counters; }

void proxy_foreach_connection(const struct proxy *p, uint32_t now_ms,
			      void (*fn)(void *arg, const char *line), void *arg)
{
	static const char *const state_names[] = {"free", "handshake", "open"};
	for (const struct conn *c = p->active; c; c = c->next) {
		char peer[32], line[512];
		pconn_ip_text(c->peer_ip, peer, sizeof peer);
		const struct config_service *s = &p->cfg->services[c->service];
		snprintf(line, sizeof line, "%llu %s:%u %s%s %s/%s %s in=%llu out=%llu age=%us",
			 (unsigned long long)c->id, peer, c->peer_port,
			 c->principal[0] ? "spiffe://" : "", c->principal[0] ? c->principal : "-",
			 s->namespace_, s->name, state_names[c->state],
			 (unsigned long long)c->bytes_from_down, (unsigned long long)c->bytes_to_down,
			 (now_ms - c->started_ms) / 1000);
		fn(arg, line);
	}
}

void proxy_stop(struct proxy *p)
{
	if (!p)
		return;
	while (p->active) {
		p->active->abort_down = true;
		p->active->abort_up = true;
		conn_free(p->active);
	}
	for (int i = 0; i < p->nlisteners; i++)
		listener_close(&p->listeners[i]);
	free(p->pool);
	free(p->dirty);
	free(p->acks);
	free(p);
}
