/* The egress splice: see proxy_egress.h. */
#include "appliance/proxy_egress.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

#include "appliance/config.h"
#include "appliance/egress.h"
#include "appliance/policy.h"
#include "net/dns.h"
#include "net/pcb_index.h"
#include "net/stack.h"

#define EGRESS_MAX_LISTENERS 64     /* lwIP MEMP_NUM_TCP_PCB_LISTEN */

enum eg_state { EG_FREE = 0, EG_PEEK, EG_RESOLVING, EG_CONNECTING, EG_SPLICE };

struct eg_conn {
	struct egress_proxy *ep;
	enum eg_state state;
	bool dead, abort;           /* poll closes (gracefully unless abort) */
	struct tcp_pcb *down, *up;
	uint32_t src_be, dst_be, up_be;
	uint16_t sport, dport, up_port;
	uint32_t started_ms, resolve_deadline_ms;
	uint8_t *peek;              /* EGRESS_PROXY_PEEK_MAX bytes of the pool */
	size_t peek_len, peek_sent;
	struct pbuf *to_up, *to_down;   /* received, not yet written to the other side */
	bool down_eof, up_eof, up_fin_sent, down_fin_sent;
	uint64_t bytes_out, bytes_in;
	char host[EGRESS_MAX_HOST];
	const char *decision;
	char policy[2 * CONFIG_MAX_NAME + 2];   /* deciding AuthorizationPolicy, "" none */
	enum egress_protocol seen;  /* how the destination was named (for re-checks) */
};

struct eg_listener { struct tcp_pcb *pcb; uint32_t addr_be; uint16_t port; };

struct eg_cached { char host[EGRESS_MAX_HOST]; uint32_t addr_be, expires_ms; };
struct eg_query { char host[EGRESS_MAX_HOST]; uint16_t id; bool used; uint32_t deadline_ms; };

struct egress_proxy {
	struct eg_conn *conns;
	uint8_t *peek_pool;
	unsigned nconns;
	struct eg_listener listeners[EGRESS_MAX_LISTENERS];
	int nlisteners;
	const struct config *cfg;
	struct egress *engine;
	egress_proxy_log_fn log;
	void *log_arg;
	egress_orig_dst_fn orig_dst;
	void *orig_dst_arg;
	struct egress_proxy_counters c;
	/* the resolver for resolution: DNS entries */
	struct udp_pcb *dns;
	uint16_t next_id;
	struct eg_cached cache[EGRESS_RESOLVE_CACHE];
	struct eg_query queries[EGRESS_RESOLVE_PENDING];
};

void egress_proxy_set_orig_dst(struct egress_proxy *ep, egress_orig_dst_fn fn, void *arg)
{
	ep->orig_dst = fn;
	ep->orig_dst_arg = arg;
}

static void ip_text(uint32_t be, char *out, size_t cap)
{
	const uint8_t *b = (const uint8_t *)&be;
	snprintf(out, cap, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

static void conn_log(struct eg_conn *c)
{
	struct egress_proxy *ep = c->ep;
	char src[16], dst[16], up[16], line[512];
	if (!ep->log)
		return;
	ip_text(c->src_be, src, sizeof src);
	ip_text(c->dst_be, dst, sizeof dst);
	ip_text(c->up_be, up, sizeof up);
	snprintf(line, sizeof line,
		 "{\"egress\":true,\"source\":\"%s:%u\",\"sni\":\"%s\",\"destination\":\"%s:%u\",\"upstream\":\"%s:%u\","
		 "\"decision\":\"%s\",\"policy\":\"%s\",\"bytes_out\":%llu,\"bytes_in\":%llu}",
		 src, c->sport, c->host, dst, c->dport, up, c->up_port, c->decision ? c->decision : "", c->policy,
		 (unsigned long long)c->bytes_out, (unsigned long long)c->bytes_in);
	ep->log(ep->log_arg, line);
}

static void pcb_detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
}

static void conn_kill(struct eg_conn *c, bool abort, const char *decision)
{
	if (decision && !c->decision)
		c->decision = decision;
	c->dead = true;
	c->abort |= abort;
}

/* Writes as much of *chain to `to` as it takes; acknowledges it on `from`. */
static size_t pump(struct pbuf **chain, struct tcp_pcb *to, struct tcp_pcb *from)
{
	size_t moved = 0;
	while (*chain) {
		struct pbuf *p = *chain;
		uint32_t space = tcp_sndbuf(to);
		if (p->len == 0) {
			if (!p->next)
				break;
			struct pbuf *rest = p->next;
			pbuf_ref(rest);
			p->next = NULL;
			p->tot_len = 0;
			pbuf_free(p);
			*chain = rest;
			continue;
		}
		u16_t n = (u16_t)(p->len < space ? p->len : space);
		if (n == 0 || tcp_write(to, p->payload, n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		if (from)
			tcp_recved(from, n);
		*chain = pbuf_free_header(p, n);
		moved += n;
	}
	if (moved)
		tcp_output(to);
	return moved;
}

/* Moves what can move both ways, sends FINs after the last byte, and marks
 * the connection done when both directions are. */
static void progress(struct eg_conn *c)
{
	if (c->dead || c->state != EG_SPLICE)
		return;
	if (c->peek_sent < c->peek_len) {
		size_t space = tcp_sndbuf(c->up), n = c->peek_len - c->peek_sent;
		if (n > space)
			n = space;
		if (n > 0xffff)
			n = 0xffff;
		if (n && tcp_write(c->up, c->peek + c->peek_sent, (u16_t)n, TCP_WRITE_FLAG_COPY) == ERR_OK) {
			c->peek_sent += n;
			c->bytes_out += n;
			tcp_output(c->up);
		}
		if (c->peek_sent < c->peek_len)
			return;
	}
	c->bytes_out += pump(&c->to_up, c->up, c->down);
	c->bytes_in += pump(&c->to_down, c->down, c->up);
	if (c->down_eof && !c->to_up && !c->up_fin_sent) {
		tcp_shutdown(c->up, 0, 1);
		c->up_fin_sent = true;
	}
	if (c->up_eof && !c->to_down && !c->down_fin_sent) {
		tcp_shutdown(c->down, 0, 1);
		c->down_fin_sent = true;
	}
	if (c->up_fin_sent && c->down_fin_sent)
		conn_kill(c, false, NULL);
}

static err_t up_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct eg_conn *c = arg;
	if (!c || c->dead) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p)
		c->up_eof = true;
	else if (c->to_down)
		pbuf_cat(c->to_down, p);
	else
		c->to_down = p;
	progress(c);
	return ERR_OK;
}

static err_t down_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	if (arg)
		progress(arg);
	return ERR_OK;
}

static void up_err(void *arg, err_t err)
{
	struct eg_conn *c = arg;
	if (!c)
		return;
	c->up = NULL;               /* lwIP has freed it */
	if (c->state == EG_CONNECTING) {
		c->ep->c.connect_failed++;
		conn_kill(c, true, "upstream-connect-failed");
	} else {
		conn_kill(c, true, "upstream-reset");
	}
}

static void down_err(void *arg, err_t err)
{
	struct eg_conn *c = arg;
	if (!c)
		return;
	c->down = NULL;
	conn_kill(c, true, "downstream-reset");
}

static err_t up_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct eg_conn *c = arg;
	if (!c || c->dead)
		return ERR_OK;
	c->state = EG_SPLICE;
	c->ep->c.spliced++;
	progress(c);
	return ERR_OK;
}

static err_t up_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	if (arg)
		progress(arg);
	return ERR_OK;
}

static bool upstream_for(const struct egress_entry *s, int port, uint32_t *ip, uint16_t *nport)
{
	const struct egress_port *p = &s->ports[port];
	*nport = p->target ? p->target : p->number;
	for (int i = 0; i < s->nendpoints; i++) {
		const struct egress_endpoint *e = &s->endpoints[i];
		if (!e->ip)
			continue;
		*ip = e->ip;
		for (int k = 0; k < e->nports; k++)
			if (!strcmp(e->ports[k].name, p->name))
				*nport = e->ports[k].number;
		return true;
	}
	for (int i = 0; i < s->naddresses; i++)
		if (s->addresses[i].prefix == 32) {
			*ip = htonl(s->addresses[i].addr);
			return true;
		}
	return false;
}

static void splice_connect(struct eg_conn *c, const char *decision);
static void resolve_start(struct eg_conn *c);

/* AuthorizationPolicy on egress, with the same engine: the workload is
 * the ServiceEntry's namespace (the root namespace for ALLOW_ANY traffic);
 * the inside client has no SPIFFE identity here (its TLS is not
 * terminated), so rules select it by source ipBlocks and the destination by
 * connection.sni (the SNI or Host) and ports, as for an Istio egress
 * gateway. false = refused (the connection is being killed). */
static bool policy_check(struct eg_conn *c, const char *workload_namespace)
{
	struct egress_proxy *ep = c->ep;
	struct policy_request q = {
		.workload_namespace = workload_namespace,
		.source_ip = c->src_be,
		.dest_ip = c->dst_be,
		.dest_port = c->dport,
		.sni = c->host[0] ? c->host : NULL,
	};
	struct policy_decision pd;
	policy_evaluate(ep->cfg->policies, &q, &pd);
	c->policy[0] = '\0';
	if (pd.policy_name[0])
		snprintf(c->policy, sizeof c->policy, "%s/%s", pd.policy_namespace, pd.policy_name);
	return pd.action == POLICY_ALLOW;
}

static bool policy_allows(struct eg_conn *c, const char *workload_namespace)
{
	struct egress_proxy *ep = c->ep;
	if (policy_check(c, workload_namespace))
		return true;
	ep->c.policy_denied++;
	ep->c.refused++;
	conn_kill(c, true, "policy-denied");
	return false;
}

/* ALLOW_ANY and no ServiceEntry matched: let it out, logged, to the
 * address the client dialled (its DNS answer came from the upstream
 * resolver), never to one of meshgate's own addresses. */
static void allow_any(struct eg_conn *c)
{
	struct egress_proxy *ep = c->ep;
	for (int i = 0; i < ep->cfg->nports; i++)
		if (ep->cfg->ports[i].address == c->dst_be) {
			ep->c.no_upstream++;
			ep->c.refused++;
			conn_kill(c, true, "no-upstream-address");
			return;
		}
	if (!policy_allows(c, ep->cfg->root_namespace))
		return;
	c->up_be = c->dst_be;
	c->up_port = c->dport;
	ep->c.allowed_any++;
	splice_connect(c, "allowed-any");
}

/* ------------------------------------------------------------ resolver */

static void resolve_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port);

static const struct eg_cached *cache_find(struct egress_proxy *ep, const char *host)
{
	for (int i = 0; i < EGRESS_RESOLVE_CACHE; i++) {
		const struct eg_cached *e = &ep->cache[i];
		if (e->host[0] && (int32_t)(e->expires_ms - net_pass_ms()) > 0 && !strcasecmp(e->host, host))
			return e;
	}
	return NULL;
}

static void cache_put(struct egress_proxy *ep, const char *host, uint32_t addr_be, uint32_t ttl_s)
{
	if (ttl_s < EGRESS_RESOLVE_MIN_TTL_S)
		ttl_s = EGRESS_RESOLVE_MIN_TTL_S;
	if (ttl_s > EGRESS_RESOLVE_MAX_TTL_S)
		ttl_s = EGRESS_RESOLVE_MAX_TTL_S;
	struct eg_cached *slot = &ep->cache[0];
	for (int i = 0; i < EGRESS_RESOLVE_CACHE; i++) {
		struct eg_cached *e = &ep->cache[i];
		if (!strcasecmp(e->host, host)) {
			slot = e;
			break;
		}
		if ((int32_t)(e->expires_ms - slot->expires_ms) < 0)
			slot = e;           /* the one expiring first (or empty) */
	}
	snprintf(slot->host, sizeof slot->host, "%s", host);
	slot->addr_be = addr_be;
	slot->expires_ms = net_pass_ms() + ttl_s * 1000u;
}

/* Sends an A query for host to the upstream resolver; false if it cannot. */
static bool query_send(struct egress_proxy *ep, struct eg_query *q)
{
	if (!ep->dns) {
		ep->dns = udp_new();
		if (!ep->dns || udp_bind(ep->dns, IP4_ADDR_ANY, 0) != ERR_OK) {
			if (ep->dns)
				udp_remove(ep->dns);
			ep->dns = NULL;
			return false;
		}
		udp_recv(ep->dns, resolve_recv, ep);
	}
	uint8_t msg[DNS_HEADER_LEN + DNS_MAX_NAME_WIRE + 4];
	size_t n = dns_build_query(q->id, q->host, DNS_TYPE_A, msg, sizeof msg);
	if (!n)
		return false;
	struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
	if (!p)
		return false;
	memcpy(p->payload, msg, n);
	ip_addr_t to;
	ip_addr_set_ip4_u32(&to, ep->cfg->egress->dns_upstream);
	err_t e = udp_sendto(ep->dns, p, &to, ep->cfg->egress->dns_upstream_port ? ep->cfg->egress->dns_upstream_port : 53);
	pbuf_free(p);
	return e == ERR_OK;
}

/* resolution: DNS: the upstream address comes from the resolver. */
static void resolve_start(struct eg_conn *c)
{
	struct egress_proxy *ep = c->ep;
	const struct eg_cached *hit = cache_find(ep, c->host);
	if (hit) {
		ep->c.resolve_cached++;
		c->up_be = hit->addr_be;
		splice_connect(c, "allowed");
		return;
	}
	c->state = EG_RESOLVING;
	c->resolve_deadline_ms = net_pass_ms() + EGRESS_RESOLVE_TIMEOUT_MS;
	struct eg_query *free_q = NULL;
	for (int i = 0; i < EGRESS_RESOLVE_PENDING; i++) {
		struct eg_query *q = &ep->queries[i];
		if (q->used && !strcasecmp(q->host, c->host))
			return;             /* already asked: the answer wakes us */
		if (!q->used && !free_q)
			free_q = q;
	}
	if (!free_q) {
		ep->c.resolve_failed++;
		ep->c.refused++;
		conn_kill(c, true, "resolver-busy");
		return;
	}
	snprintf(free_q->host, sizeof free_q->host, "%s", c->host);
	ep->next_id = (uint16_t)(ep->next_id * 25173u + 13849u + (net_pass_ms() & 0xffffu));
	free_q->id = ep->next_id;
	free_q->used = true;
	free_q->deadline_ms = c->resolve_deadline_ms;
	ep->c.resolve_queries++;
	if (!query_send(ep, free_q)) {
		free_q->used = false;
		ep->c.resolve_failed++;
		ep->c.refused++;
		conn_kill(c, true, "resolve-failed");
	}
}

/* Every connection waiting for host: connect to addr, or refuse (addr 0). */
static void resolve_wake(struct egress_proxy *ep, const char *host, uint32_t addr_be)
{
	for (unsigned i = 0; i < ep->nconns; i++) {
		struct eg_conn *c = &ep->conns[i];
		if (c->state != EG_RESOLVING || c->dead || strcasecmp(c->host, host))
			continue;
		if (addr_be) {
			c->up_be = addr_be;
			splice_connect(c, "allowed");
		} else {
			ep->c.resolve_failed++;
			ep->c.refused++;
			conn_kill(c, true, "resolve-failed");
		}
	}
}

static uint16_t get16(const uint8_t *b) { return (uint16_t)(b[0] << 8 | b[1]); }

/* An answer from the upstream resolver: only from its address and port, for
 * an id in flight and the question asked. */
static void resolve_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	struct egress_proxy *ep = arg;
	uint8_t msg[512];
	size_t len = p->tot_len < sizeof msg ? p->tot_len : sizeof msg;
	pbuf_copy_partial(p, msg, (u16_t)len, 0);
	pbuf_free(p);
	uint16_t want_port = ep->cfg->egress->dns_upstream_port ? ep->cfg->egress->dns_upstream_port : 53;
	if (!ep->cfg->egress->dns_upstream || ip_addr_get_ip4_u32(addr) != ep->cfg->egress->dns_upstream ||
	    port != want_port || len < DNS_HEADER_LEN)
		return;
	struct eg_query *q = NULL;
	for (int i = 0; i < EGRESS_RESOLVE_PENDING && !q; i++)
		if (ep->queries[i].used && ep->queries[i].id == get16(msg))
			q = &ep->queries[i];
	size_t off;
	if (!q || !dns_response_matches(msg, len, q->host, DNS_TYPE_A, &off))
		return;
	uint32_t addr_be = 0, ttl = 0;
	if (!dns_response_first_a(msg, len, off, &addr_be, &ttl))
		addr_be = 0;
	char host[EGRESS_MAX_HOST];
	snprintf(host, sizeof host, "%s", q->host);
	q->used = false;
	if (addr_be)
		cache_put(ep, host, addr_be, ttl);
	resolve_wake(ep, host, addr_be);
}

/* The head is complete (or never will be): decide and connect. `seen` is
 * TLS (ClientHello, host = SNI), HTTP (host = Host header) or TCP (by
 * address); `r` says how reading the host went. */
static void decide(struct eg_conn *c, enum egress_protocol seen, enum egress_sni r)
{
	struct egress_proxy *ep = c->ep;
	struct egress_decision d;
	if (r != EGRESS_SNI_FOUND && r != EGRESS_SNI_NONE && seen != EGRESS_PROTO_TCP) {
		ep->c.refused++;
		conn_kill(c, true, egress_sni_name(r));
		return;
	}
	c->seen = seen;
	egress_decide(ep->engine, seen, r == EGRESS_SNI_FOUND ? c->host : NULL, c->dst_be, c->dport, &d);
	if (d.host[0])
		snprintf(c->host, sizeof c->host, "%s", d.host);
	if (d.verdict == EGRESS_ALLOW_ANY) {
		allow_any(c);
		return;
	}
	if (d.verdict != EGRESS_ALLOW) {
		ep->c.refused++;
		conn_kill(c, true, egress_verdict_name(d.verdict));
		return;
	}
	const struct egress_entry *s = &ep->cfg->egress->entries[d.entry];
	/* AuthorizationPolicy on egress, with the same engine: the workload is
	 * the ServiceEntry's namespace; the inside client has no SPIFFE
	 * identity here (its TLS is not terminated), so rules select it by
	 * source ipBlocks and the destination by connection.sni (the SNI or
	 * Host) and ports, as for an Istio egress gateway. */
	if (!policy_allows(c, s->namespace_))
		return;
	if (!upstream_for(s, d.port, &c->up_be, &c->up_port)) {
		if ((s->resolution == EGRESS_RES_DNS || s->resolution == EGRESS_RES_DNS_ROUND_ROBIN) &&
		    ep->cfg->egress->dns_upstream && c->host[0]) {
			resolve_start(c);   /* up_port is set: the entry's target port */
			return;
		}
		ep->c.no_upstream++;
		ep->c.refused++;
		conn_kill(c, true, "no-upstream-address");
		return;
	}
	splice_connect(c, "allowed");
}

/* Opens the upstream side of an allowed splice to c->up_be:c->up_port. */
static void splice_connect(struct eg_conn *c, const char *decision)
{
	struct egress_proxy *ep = c->ep;
	c->up = tcp_new();
	if (!c->up) {
		conn_kill(c, true, "no-memory");
		return;
	}
	tcp_arg(c->up, c);
	tcp_recv(c->up, up_recv);
	tcp_sent(c->up, up_sent);
	tcp_err(c->up, up_err);
	ip4_addr_t ip;
	ip.addr = c->up_be;
	c->state = EG_CONNECTING;
	c->decision = decision;
	if (net_pcb_index_connect(c->up, &ip, c->up_port, up_connected) != ERR_OK) {
		ep->c.connect_failed++;
		conn_kill(c, true, "upstream-connect-failed");
	}
}

static err_t down_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct eg_conn *c = arg;
	if (!c || c->dead) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p) {
		c->down_eof = true;
		if (c->state == EG_PEEK)
			conn_kill(c, true, "closed-before-client-hello");
		progress(c);
		return ERR_OK;
	}
	if (c->state != EG_PEEK) {
		if (c->to_up)
			pbuf_cat(c->to_up, p);
		else
			c->to_up = p;
		progress(c);
		return ERR_OK;
	}
	size_t n = p->tot_len;
	if (c->peek_len + n > EGRESS_PROXY_PEEK_MAX)
		n = EGRESS_PROXY_PEEK_MAX - c->peek_len;
	pbuf_copy_partial(p, c->peek + c->peek_len, (u16_t)n, 0);
	c->peek_len += n;
	tcp_recved(pcb, p->tot_len);
	bool overflow = n < p->tot_len;
	pbuf_free(p);
	enum egress_protocol seen = EGRESS_PROTO_TLS;
	enum egress_sni r = egress_sni_peek(c->peek, c->peek_len, c->host);
	if (r == EGRESS_SNI_NOT_TLS) {
		seen = EGRESS_PROTO_HTTP;
		r = egress_http_host(c->peek, c->peek_len, c->host);
		if (r == EGRESS_SNI_MALFORMED && c->peek_len >= 4 && !(c->peek[0] >= 'A' && c->peek[0] <= 'Z'))
			seen = EGRESS_PROTO_TCP;    /* neither TLS nor HTTP: by address */
	}
	if (r == EGRESS_SNI_NEED_MORE && !overflow)
		return ERR_OK;
	decide(c, seen, r == EGRESS_SNI_NEED_MORE ? EGRESS_SNI_TOO_BIG : r);
	return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct egress_proxy *ep = arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	struct eg_conn *c = NULL;
	for (unsigned i = 0; i < ep->nconns && !c; i++)
		if (ep->conns[i].state == EG_FREE)
			c = &ep->conns[i];
	if (!c || !ep->engine) {
		ep->c.pool_empty++;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	uint8_t *peek = c->peek;
	memset(c, 0, sizeof *c);
	c->peek = peek;
	c->ep = ep;
	c->state = EG_PEEK;
	c->down = pcb;
	c->src_be = ip_2_ip4(&pcb->remote_ip)->addr;
	c->sport = pcb->remote_port;
	c->dst_be = ip_2_ip4(&pcb->local_ip)->addr;
	c->dport = pcb->local_port;
	if (ep->orig_dst) {
		uint32_t d = ep->orig_dst(ep->orig_dst_arg, c->src_be, c->sport, c->dport);
		if (d)
			c->dst_be = d;
	}
	c->started_ms = net_pass_ms();
	ep->c.accepted++;
	tcp_arg(pcb, c);
	tcp_recv(pcb, down_recv);
	tcp_sent(pcb, down_sent);
	tcp_err(pcb, down_err);
	return ERR_OK;
}

struct egress_proxy *egress_proxy_new(unsigned max_conns, egress_proxy_log_fn log, void *log_arg)
{
	struct egress_proxy *ep = calloc(1, sizeof *ep);
	if (!ep)
		return NULL;
	ep->nconns = max_conns ? max_conns : 1;
	ep->conns = calloc(ep->nconns, sizeof *ep->conns);
	ep->peek_pool = malloc((size_t)ep->nconns * EGRESS_PROXY_PEEK_MAX);
	if (!ep->conns || !ep->peek_pool) {
		free(ep->conns);
		free(ep->peek_pool);
		free(ep);
		return NULL;
	}
	for (unsigned i = 0; i < ep->nconns; i++)
		ep->conns[i].peek = ep->peek_pool + (size_t)i * EGRESS_PROXY_PEEK_MAX;
	ep->log = log;
	ep->log_arg = log_arg;
	return ep;
}

static void close_listeners(struct egress_proxy *ep)
{
	for (int i = 0; i < ep->nlisteners; i++)
		if (ep->listeners[i].pcb) {
			tcp_arg(ep->listeners[i].pcb, NULL);
			tcp_accept(ep->listeners[i].pcb, NULL);
			tcp_close(ep->listeners[i].pcb);
		}
	ep->nlisteners = 0;
}

/* After a reload, open splices are checked again against the new
 * ServiceEntries and AuthorizationPolicies (as ztunnel does for policy
 * changes): those now refused are reset, logged "revoked-by-reload" and
 * counted; the others carry on untouched. */
static void recheck_open(struct egress_proxy *ep)
{
	const struct egress_config *E = ep->cfg->egress;
	for (unsigned i = 0; i < ep->nconns; i++) {
		struct eg_conn *c = &ep->conns[i];
		if (c->dead || (c->state != EG_RESOLVING && c->state != EG_CONNECTING && c->state != EG_SPLICE))
			continue;
		struct egress_decision d;
		bool ok = E && E->enabled && ep->engine;
		if (ok) {
			egress_decide(ep->engine, c->seen, c->host[0] ? c->host : NULL, c->dst_be, c->dport, &d);
			ok = (d.verdict == EGRESS_ALLOW || d.verdict == EGRESS_ALLOW_ANY) &&
			     policy_check(c, d.verdict == EGRESS_ALLOW ? E->entries[d.entry].namespace_
								   : ep->cfg->root_namespace);
		}
		if (ok)
			continue;
		ep->c.revoked++;
		c->decision = "revoked-by-reload";
		conn_kill(c, true, NULL);
	}
}

int egress_proxy_apply(struct egress_proxy *ep, const struct config *cfg, struct egress *engine,
		       char *err, size_t errlen)
{
	ep->cfg = cfg;
	ep->engine = engine;
	const struct egress_config *E = cfg->egress;
	int rc = 0;
	err[0] = '\0';
	/* Listeners still wanted stay open (a closed listener's port cannot be
	 * bound again while splices accepted on it are open); the others close. */
	bool wanted[EGRESS_MAX_LISTENERS] = {false};
	for (int k = 0; E && E->enabled && k < E->ninside; k++) {
		uint32_t addr = cfg->ports[E->inside[k]].address;
		for (int e = 0; e < E->nentries; e++)
			for (int q = 0; q < E->entries[e].nports; q++)
				for (int i = 0; i < ep->nlisteners; i++)
					if (ep->listeners[i].addr_be == addr &&
					    ep->listeners[i].port == E->entries[e].ports[q].number)
						wanted[i] = true;
	}
	int kept = 0;
	for (int i = 0; i < ep->nlisteners; i++) {
		if (wanted[i]) {
			ep->listeners[kept++] = ep->listeners[i];
		} else if (ep->listeners[i].pcb) {
			tcp_arg(ep->listeners[i].pcb, NULL);
			tcp_accept(ep->listeners[i].pcb, NULL);
			tcp_close(ep->listeners[i].pcb);
		}
	}
	ep->nlisteners = kept;
	for (int k = 0; E && E->enabled && k < E->ninside; k++) {
		uint32_t addr = cfg->ports[E->inside[k]].address;
		for (int e = 0; e < E->nentries; e++)
			for (int q = 0; q < E->entries[e].nports; q++) {
				uint16_t port = E->entries[e].ports[q].number;
				bool have = false;
				for (int i = 0; i < ep->nlisteners; i++)
					have |= ep->listeners[i].addr_be == addr && ep->listeners[i].port == port;
				if (have)
					continue;
				if (ep->nlisteners == EGRESS_MAX_LISTENERS) {
					snprintf(err, errlen, "more than %d egress listeners", EGRESS_MAX_LISTENERS);
					return -1;
				}
				struct tcp_pcb *pcb = tcp_new();
				ip4_addr_t ip;
				ip.addr = addr;
				struct tcp_pcb *l = NULL;
				if (pcb && tcp_bind(pcb, &ip, port) == ERR_OK)
					l = tcp_listen_with_backlog(pcb, 255);
				if (!l) {
					if (pcb)
						tcp_abort(pcb);
					snprintf(err, errlen, "cannot listen on %s:%u", cfg->ports[E->inside[k]].name, port);
					rc = -1;
					continue;
				}
				tcp_arg(l, ep);
				tcp_accept(l, on_accept);
				ep->listeners[ep->nlisteners++] = (struct eg_listener){l, addr, port};
			}
	}
	recheck_open(ep);
	return rc;
}

static void conn_close(struct eg_conn *c)
{
	struct tcp_pcb *pcbs[2] = {c->down, c->up};
	for (int i = 0; i < 2; i++) {
		if (!pcbs[i])
			continue;
		pcb_detach(pcbs[i]);
		if (c->abort || tcp_close(pcbs[i]) != ERR_OK)
			tcp_abort(pcbs[i]);
	}
	if (c->to_up)
		pbuf_free(c->to_up);
	if (c->to_down)
		pbuf_free(c->to_down);
	c->ep->c.bytes_out += c->bytes_out;
	c->ep->c.bytes_in += c->bytes_in;
	conn_log(c);
	c->state = EG_FREE;
	c->down = c->up = NULL;
	c->to_up = c->to_down = NULL;
}

void egress_proxy_poll(struct egress_proxy *ep, uint32_t now_ms)
{
	for (int i = 0; i < EGRESS_RESOLVE_PENDING; i++)
		if (ep->queries[i].used && (int32_t)(now_ms - ep->queries[i].deadline_ms) > 0)
			ep->queries[i].used = false;
	for (unsigned i = 0; i < ep->nconns; i++) {
		struct eg_conn *c = &ep->conns[i];
		if (c->state == EG_FREE)
			continue;
		if (c->state == EG_RESOLVING && !c->dead && (int32_t)(now_ms - c->resolve_deadline_ms) > 0) {
			ep->c.resolve_failed++;
			ep->c.refused++;
			conn_kill(c, true, "resolve-timeout");
		}
		/* signed, as every time here: a start stamped from a fresher clock
		 * than now_ms once read as ~49 days unsigned and killed the
		 * connection at once (started_ms is the pass clock now) */
		if (c->state == EG_PEEK && !c->dead &&
		    (int32_t)(now_ms - c->started_ms) > (int32_t)EGRESS_PROXY_PEEK_TIMEOUT_MS) {
			ep->c.peek_timeout++;
			conn_kill(c, true, "client-hello-timeout");
		}
		if (c->dead)
			conn_close(c);
	}
}

const struct egress_proxy_counters *egress_proxy_counters(const struct egress_proxy *ep)
{
	return &ep->c;
}

void egress_proxy_free(struct egress_proxy *ep)
{
	if (!ep)
		return;
	for (unsigned i = 0; i < ep->nconns; i++)
		if (ep->conns[i].state != EG_FREE) {
			conn_kill(&ep->conns[i], true, "shutdown");
			conn_close(&ep->conns[i]);
		}
	close_listeners(ep);
	if (ep->dns)
		udp_remove(ep->dns);
	free(ep->conns);
	free(ep->peek_pool);
	free(ep);
}

bool egress_proxy_listens(const struct egress_proxy *ep, uint16_t port)
{
	for (int i = 0; ep && i < ep->nlisteners; i++)
		if (ep->listeners[i].pcb && ep->listeners[i].port == port)
			return true;
	return false;
}
