/* The egress area in the run loop: see run_egress.h. lwIP headers only (no
 * DPDK here). */
#include "appliance/run_egress.h"
#include "appliance/textw.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

#include "appliance/config.h"
#include "appliance/egress.h"
#include "appliance/proxy_egress.h"
#include "appliance/run_internal.h"
#include "net/dns.h"
#include "net/filter.h"
#include "net/stack.h"

#define RUN_DNS_RL_SETS 1024        /* x 4 ways: live sources tracked per port */
#define RUN_DNS_MAX_QUERY 1500      /* one Ethernet frame of UDP payload at most */
#define RUN_DNS_TCP_CONNS 64        /* DNS-over-TCP connections at once (all ports) */
#define RUN_DNS_TCP_MAX 1024        /* a longer query over TCP closes the connection */
#define RUN_DNS_TCP_IDLE_MS 10000u
#define RUN_DNS_FORWARD_SLOTS 256   /* ALLOW_ANY queries waiting for the upstream resolver */
#define RUN_DNS_FORWARD_TIMEOUT_MS 5000u
#define RUN_DNS_MAX_RESPONSE 4096   /* EDNS answers relayed from upstream */
/* Connections to an address of spec.egress.addressRange: lwIP accepts only
 * the port's own address, so such TCP frames are rewritten to it on the way
 * in and back on the way out; the table remembers which address a client's
 * connection was for. 4-way sets, entries expire when idle. */
#define RUN_NAT_SETS 2048
#define RUN_NAT_IDLE_MS 600000u

struct dns_tcp_conn {
	struct dns_port *dp;
	struct tcp_pcb *pcb;
	bool used, dead;
	bool waiting;               /* a forwarded query's answer comes first (in order) */
	uint32_t last_ms;
	size_t len;
	uint8_t buf[2 + RUN_DNS_TCP_MAX];
};

struct dns_port {
	struct run_egress *re;
	struct udp_pcb *pcb;
	struct tcp_pcb *tcp_listener;
	int port;                   /* config port index */
	struct egress_dns_arg arg;
	struct dns_responder resp;
	struct dns_rl_entry *rl;
	uint64_t send_failed, forward_unsupported, tcp_refused;
};

struct dns_forward {
	bool used;
	uint16_t up_id, client_id, qtype, client_port;
	uint32_t client_be, expires_ms;
	struct dns_port *dp;
	struct dns_tcp_conn *tcp;   /* asked over TCP: answer there (NULL: UDP) */
	char qname[DNS_MAX_NAME_TEXT];
};

struct nat_entry {
	uint32_t client_be, alloc_be, expires_ms;
	uint16_t cport, lport;
	uint8_t port, used;
};

struct run_egress {
	const struct config *cfg;
	struct nat_entry *nat;      /* RUN_NAT_SETS * 4; moves to the next state on reload */
	uint64_t nat_in, nat_out, nat_full, nat_clash, nat_unknown;
	/* ALLOW_ANY: unknown names go to the upstream resolver with a fresh
	 * random id; an answer is relayed only from that resolver, for an id
	 * in flight and the same question (no blind spoofing by id alone) */
	struct udp_pcb *upstream;
	struct dns_forward fwd[RUN_DNS_FORWARD_SLOTS];
	uint32_t rnd;
	uint64_t fwd_sent, fwd_answered, fwd_timeout, fwd_full, fwd_mismatch;
	struct filter *filter;      /* NULL: no networkPolicies */
	struct filter_flows *flows;
	struct egress *engine;      /* NULL: no spec.egress */
	struct dns_port dns[CONFIG_MAX_PORTS];
	int ndns;
	struct egress_proxy *proxy; /* the TLS splice; moves to the next state on reload */
	struct dns_tcp_conn tcp[RUN_DNS_TCP_CONNS];
};

static void dns_tcp_close(struct dns_tcp_conn *t, bool abort)
{
	if (t->pcb) {
		tcp_arg(t->pcb, NULL);
		tcp_recv(t->pcb, NULL);
		tcp_err(t->pcb, NULL);
		if (abort || tcp_close(t->pcb) != ERR_OK)
			tcp_abort(t->pcb);
	}
	t->pcb = NULL;
	t->used = t->dead = t->waiting = false;
	t->len = 0;
	/* forwarded answers for this connection have nowhere to go now */
	struct run_egress *re = t->dp ? t->dp->re : NULL;
	for (int i = 0; re && i < RUN_DNS_FORWARD_SLOTS; i++)
		if (re->fwd[i].used && re->fwd[i].tcp == t)
			re->fwd[i].used = false;
}

static void free_state(struct run_egress *re)
{
	if (!re)
		return;
	for (int i = 0; i < RUN_DNS_TCP_CONNS; i++)
		if (re->tcp[i].used)
			dns_tcp_close(&re->tcp[i], true);
	if (re->upstream)
		udp_remove(re->upstream);
	for (int i = 0; i < re->ndns; i++) {
		if (re->dns[i].pcb)
			udp_remove(re->dns[i].pcb);
		if (re->dns[i].tcp_listener) {
			tcp_arg(re->dns[i].tcp_listener, NULL);
			tcp_accept(re->dns[i].tcp_listener, NULL);
			tcp_close(re->dns[i].tcp_listener);
		}
		free(re->dns[i].rl);
	}
	egress_proxy_free(re->proxy);
	free(re->nat);
	filter_free(re->filter);
	filter_flows_free(re->flows);
	egress_free(re->engine);
	free(re);
}

void run_egress_abort(struct run_egress *re)
{
	free_state(re);
}

static int build_filter(struct run_egress *re, const struct config *cfg, char *err, size_t errlen)
{
	const struct egress_config *E = cfg->egress;
	struct filter_config fc;
	memset(&fc, 0, sizeof fc);
	fc.rules = E->rules;
	fc.nrules = E->nrules;
	fc.ngroups = E->ngroups;
	fc.nports = (unsigned)cfg->nports;
	for (int p = 0; p < cfg->nports; p++) {
		fc.enforce[p][FILTER_INGRESS] = E->enforce[p][FILTER_INGRESS];
		fc.enforce[p][FILTER_EGRESS] = E->enforce[p][FILTER_EGRESS];
		fc.local_addr[p] = ntohl(cfg->ports[p].address);
	}
	/* local services: the listeners, the DNS responder and the egress
	 * listener ports (ServiceEntry port numbers) on the inside ports */
	size_t cap = (size_t)cfg->nlisteners + 2 * CONFIG_MAX_PORTS, n = 0;
	for (int e = 0; E->enabled && e < E->nentries; e++)
		cap += (size_t)E->entries[e].nports * (size_t)E->ninside;
	struct filter_local *locals = calloc(cap, sizeof *locals);
	if (!locals) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < cfg->nlisteners; i++)
		locals[n++] = (struct filter_local){(uint8_t)cfg->listeners[i].port, FILTER_PROTO_TCP,
						    cfg->listeners[i].listen};
	for (int k = 0; E->enabled && k < E->ninside; k++) {
		uint8_t p = (uint8_t)E->inside[k];
		if (E->dns) {
			locals[n++] = (struct filter_local){p, FILTER_PROTO_UDP, DNS_PORT};
			locals[n++] = (struct filter_local){p, FILTER_PROTO_TCP, DNS_PORT};
		}
		for (int e = 0; e < E->nentries; e++)
			for (int q = 0; q < E->entries[e].nports; q++)
				locals[n++] = (struct filter_local){p, FILTER_PROTO_TCP, E->entries[e].ports[q].number};
	}
	fc.locals = locals;
	fc.nlocals = n;
	re->filter = filter_new(&fc, err, errlen);
	free(locals);
	return re->filter ? 0 : -1;
}

int run_egress_prepare(struct appliance *a, const struct config *cfg, struct run_egress **out,
		       char *err, size_t errlen)
{
	*out = NULL;
	const struct egress_config *E = cfg->egress;
	if (!E || (!E->enabled && !E->npolicies))
		return 0;
	struct run_egress *re = calloc(1, sizeof *re);
	if (!re) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	re->cfg = cfg;
	if (E->npolicies && build_filter(re, cfg, err, errlen) != 0)
		goto fail;
	if (E->enabled) {
		re->engine = egress_new(E, a->egress ? a->egress->engine : NULL, err, errlen);
		if (!re->engine)
			goto fail;
		for (int k = 0; E->dns && k < E->ninside; k++) {
			struct dns_port *dp = &re->dns[re->ndns++];
			dp->re = re;
			dp->port = E->inside[k];
			dp->arg = (struct egress_dns_arg){re->engine, cfg->ports[dp->port].address};
			dp->rl = calloc((size_t)RUN_DNS_RL_SETS * DNS_RL_WAYS, sizeof *dp->rl);
			if (!dp->rl) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			uint32_t seed = 0;
			if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
				seed = (uint32_t)(uintptr_t)dp;
			dp->resp = (struct dns_responder){
				.lookup = egress_dns_lookup, .lookup_arg = &dp->arg,
				.allow_any = E->mode == EGRESS_MODE_ALLOW_ANY, .unknown = E->dns_unknown,
				.ttl = E->dns_ttl,
				.rl = {.table = dp->rl, .nsets = RUN_DNS_RL_SETS, .seed = seed,
				       .rate_per_s = E->dns_rate, .burst = E->dns_burst},
			};
		}
	}
	*out = re;
	return 0;
fail:
	free_state(re);
	return -1;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Sends a query on to the upstream resolver; false = could not (answer
 * SERVFAIL). */
static bool forward_start(struct dns_port *dp, const uint8_t *in, size_t n, uint32_t client_be,
			  uint16_t client_port, struct dns_tcp_conn *tcp)
{
	struct run_egress *re = dp->re;
	const struct egress_config *E = re->cfg->egress;
	struct dns_query q;
	if (!re->upstream || dns_parse_query(in, n, &q) != DNS_OK || n > RUN_DNS_MAX_QUERY)
		return false;
	struct dns_forward *f = NULL;
	uint32_t now = net_pass_ms();
	for (int i = 0; i < RUN_DNS_FORWARD_SLOTS && !f; i++)
		if (!re->fwd[i].used)
			f = &re->fwd[i];
	if (!f) {
		re->fwd_full++;
		return false;
	}
	uint16_t id;
	bool clash;
	do {
		re->rnd ^= re->rnd << 13;
		re->rnd ^= re->rnd >> 17;
		re->rnd ^= re->rnd << 5;
		id = (uint16_t)(re->rnd >> 8);
		clash = false;
		for (int i = 0; i < RUN_DNS_FORWARD_SLOTS; i++)
			clash |= re->fwd[i].used && re->fwd[i].up_id == id;
	} while (clash);
	struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
	if (!p)
		return false;
	memcpy(p->payload, in, n);
	((uint8_t *)p->payload)[0] = (uint8_t)(id >> 8);
	((uint8_t *)p->payload)[1] = (uint8_t)id;
	ip4_addr_t up;
	up.addr = E->dns_upstream;
	err_t e = udp_sendto(re->upstream, p, &up, E->dns_upstream_port);
	pbuf_free(p);
	if (e != ERR_OK)
		return false;
	*f = (struct dns_forward){.used = true, .up_id = id, .client_id = q.id, .qtype = q.qtype,
				  .client_port = client_port, .client_be = client_be,
				  .expires_ms = now + RUN_DNS_FORWARD_TIMEOUT_MS, .dp = dp, .tcp = tcp};
	snprintf(f->qname, sizeof f->qname, "%s", q.name);
	re->fwd_sent++;
	return true;
}

static void dns_tcp_process(struct dns_tcp_conn *t);

static void upstream_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	struct run_egress *re = arg;
	static uint8_t buf[RUN_DNS_MAX_RESPONSE];
	size_t n = pbuf_copy_partial(p, buf, sizeof buf, 0), next;
	bool whole = n == p->tot_len;
	pbuf_free(p);
	const struct egress_config *E = re->cfg->egress;
	if (ip_2_ip4(addr)->addr != E->dns_upstream || port != E->dns_upstream_port || !whole ||
	    n < DNS_HEADER_LEN) {
		re->fwd_mismatch++;
		return;
	}
	struct dns_forward *f = NULL;
	for (int i = 0; i < RUN_DNS_FORWARD_SLOTS && !f; i++)
		if (re->fwd[i].used && re->fwd[i].up_id == rd16(buf))
			f = &re->fwd[i];
	if (!f || !dns_response_matches(buf, n, f->qname, f->qtype, &next)) {
		re->fwd_mismatch++;
		return;
	}
	buf[0] = (uint8_t)(f->client_id >> 8);
	buf[1] = (uint8_t)f->client_id;
	f->used = false;
	if (f->tcp) {
		struct dns_tcp_conn *t = f->tcp;
		uint8_t len2[2] = {(uint8_t)(n >> 8), (uint8_t)n};
		t->waiting = false;
		if (!t->used || !t->pcb || tcp_sndbuf(t->pcb) < n + 2 ||
		    tcp_write(t->pcb, len2, 2, TCP_WRITE_FLAG_COPY | TCP_WRITE_FLAG_MORE) != ERR_OK ||
		    tcp_write(t->pcb, buf, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK) {
			f->dp->send_failed++;
			t->dead = true;
			return;
		}
		tcp_output(t->pcb);
		re->fwd_answered++;
		dns_tcp_process(t);     /* queries that waited behind this one */
		return;
	}
	struct pbuf *r = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
	if (!r || !f->dp->pcb) {
		if (r)
			pbuf_free(r);
		f->dp->send_failed++;
		return;
	}
	memcpy(r->payload, buf, n);
	ip4_addr_t client;
	client.addr = f->client_be;
	if (udp_sendto(f->dp->pcb, r, &client, f->client_port) != ERR_OK)
		f->dp->send_failed++;
	else
		re->fwd_answered++;
	pbuf_free(r);
}

/* One query in, at most one answer out now (olen 0 = nothing now: dropped,
 * or forwarded and answered later: *forwarded). Over TCP, `tcp` is the
 * connection the forwarded answer goes back on. */
static size_t dns_answer(struct dns_port *dp, uint32_t src_be, uint16_t client_port, struct dns_tcp_conn *tcp,
			 const uint8_t *in, size_t n, uint8_t *out, size_t cap, bool *forwarded)
{
	size_t olen = 0;
	*forwarded = false;
	enum dns_action act = dns_respond(&dp->resp, src_be, net_pass_ms(), in, n, out, cap, &olen);
	if (act == DNS_ACTION_FORWARD) {
		if (forward_start(dp, in, n, src_be, client_port, tcp)) {
			*forwarded = true;
			return 0;
		}
		/* not forwarded (table full, no route): SERVFAIL rather than
		 * silence, counted */
		struct dns_query q;
		dp->forward_unsupported++;
		if (dns_parse_query(in, n, &q) != DNS_OK)
			return 0;
		return dns_build_answer(&q, DNS_RCODE_SERVFAIL, 0, 0, out, cap);
	}
	return act == DNS_ACTION_REPLY ? olen : 0;
}

static void dns_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	struct dns_port *dp = arg;
	static uint8_t in[RUN_DNS_MAX_QUERY];
	uint8_t out[DNS_ANSWER_MAX];
	size_t n = pbuf_copy_partial(p, in, sizeof in, 0);
	pbuf_free(p);
	bool forwarded;
	size_t olen = dns_answer(dp, ip_2_ip4(addr)->addr, port ? port : 1, NULL, in, n, out, sizeof out, &forwarded);
	if (!olen)
		return;
	struct pbuf *r = pbuf_alloc(PBUF_TRANSPORT, (u16_t)olen, PBUF_RAM);
	if (!r) {
		dp->send_failed++;
		return;
	}
	memcpy(r->payload, out, olen);
	if (udp_sendto(pcb, r, addr, port) != ERR_OK)
		dp->send_failed++;
	pbuf_free(r);
}

/* DNS over TCP (RFC 1035 4.2.2, RFC 7766): 2-byte length framing, several
 * queries per connection answered in order. */
static err_t dns_tcp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct dns_tcp_conn *t = arg;
	if (!t || t->dead) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p) {
		t->dead = true;             /* FIN: answers already written go out first */
		return ERR_OK;
	}
	t->last_ms = net_pass_ms();
	size_t n = p->tot_len;
	if (t->len + n > sizeof t->buf) {
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		t->dp->tcp_refused++;
		t->dead = true;
		return ERR_OK;
	}
	pbuf_copy_partial(p, t->buf + t->len, (u16_t)n, 0);
	t->len += n;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	dns_tcp_process(t);
	return ERR_OK;
}

/* Answers the whole queries buffered on t, in order; stops behind a query
 * forwarded upstream until its answer is written (upstream_recv). */
static void dns_tcp_process(struct dns_tcp_conn *t)
{
	struct tcp_pcb *pcb = t->pcb;
	long m;
	while (!t->waiting && !t->dead && pcb && (m = dns_tcp_message_len(t->buf, t->len)) != 0) {
		if (m < 0) {
			t->dead = true;
			return;
		}
		uint8_t out[2 + DNS_ANSWER_MAX];
		bool forwarded;
		size_t olen = dns_answer(t->dp, ip_2_ip4(&pcb->remote_ip)->addr, 0, t, t->buf + 2, (size_t)m,
					 out + 2, sizeof out - 2, &forwarded);
		if (forwarded) {
			t->waiting = true;
		} else if (!olen || tcp_sndbuf(pcb) < olen + 2) {
			t->dead = true;     /* nothing to say (dropped): close, as a server would */
			return;
		} else {
			out[0] = (uint8_t)(olen >> 8);
			out[1] = (uint8_t)olen;
			if (tcp_write(pcb, out, (u16_t)(olen + 2), TCP_WRITE_FLAG_COPY) != ERR_OK)
				t->dp->send_failed++;
			tcp_output(pcb);
		}
		memmove(t->buf, t->buf + 2 + m, t->len - 2 - (size_t)m);
		t->len -= 2 + (size_t)m;
	}
	if (t->len >= sizeof t->buf) {
		t->dp->tcp_refused++;
		t->dead = true;
	}
}

static void dns_tcp_err(void *arg, err_t err)
{
	struct dns_tcp_conn *t = arg;
	if (t) {
		t->pcb = NULL;              /* freed by lwIP */
		t->dead = true;
	}
}

static err_t dns_tcp_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct dns_port *dp = arg;
	if (!dp || err != ERR_OK || !pcb)
		return ERR_VAL;
	struct dns_tcp_conn *t = NULL;
	for (int i = 0; i < RUN_DNS_TCP_CONNS && !t; i++)
		if (!dp->re->tcp[i].used)
			t = &dp->re->tcp[i];
	if (!t) {
		dp->tcp_refused++;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	t->used = true;
	t->dead = false;
	t->dp = dp;
	t->pcb = pcb;
	t->len = 0;
	t->last_ms = net_pass_ms();
	tcp_arg(pcb, t);
	tcp_recv(pcb, dns_tcp_recv);
	tcp_err(pcb, dns_tcp_err);
	return ERR_OK;
}

static int port_of(const struct appliance *a, const struct net_if *nif)
{
	for (int i = 0; i < a->nports; i++)
		if (a->ifs[i] == nif)
			return i;
	return -1;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 1624 incremental update of the checksum at `sum` for a 4-byte field
 * changing from `from` to `to` (both as on the wire). */
static void csum_replace4(uint8_t *sum, const uint8_t *from, const uint8_t *to)
{
	uint32_t x = (uint16_t)~rd16(sum);
	x += (uint16_t)~rd16(from) + (uint16_t)~rd16(from + 2) + rd16(to) + rd16(to + 2);
	while (x >> 16)
		x = (x & 0xffff) + (x >> 16);
	x = (uint16_t)~x;
	sum[0] = (uint8_t)(x >> 8);
	sum[1] = (uint8_t)x;
}

/* The TCP header of an unfragmented IPv4 frame, or NULL. */
static uint8_t *tcp_of(uint8_t *frame, size_t len, uint8_t **ip)
{
	if (len < 14 + 20 + 20 || rd16(frame + 12) != 0x0800)
		return NULL;
	*ip = frame + 14;
	size_t ihl = (size_t)((*ip)[0] & 0xf) * 4;
	if (((*ip)[0] >> 4) != 4 || ihl < 20 || 14 + ihl + 20 > len || (*ip)[9] != 6 || (rd16(*ip + 6) & 0x3fff))
		return NULL;
	return *ip + ihl;
}

static struct nat_entry *nat_set(const struct run_egress *re, uint32_t client_be, uint16_t cport, uint16_t lport)
{
	uint32_t h = client_be * 0x9e3779b1u ^ ((uint32_t)cport << 16 | lport) * 0x85ebca77u;
	h ^= h >> 15;
	return re->nat + (size_t)(h & (RUN_NAT_SETS - 1)) * 4;
}

static struct nat_entry *nat_find(const struct run_egress *re, uint8_t port, uint32_t client_be, uint16_t cport,
				  uint16_t lport, uint32_t now)
{
	struct nat_entry *set = nat_set(re, client_be, cport, lport);
	for (int i = 0; i < 4; i++) {
		struct nat_entry *e = &set[i];
		if (e->used && e->client_be == client_be && e->cport == cport && e->lport == lport && e->port == port &&
		    (int32_t)(now - e->expires_ms) < 0)
			return e;
	}
	return NULL;
}

/* Inbound TCP to an allocated address: rewrite to the port's own address.
 * false = drop (a client port already in use for another address). */
static bool nat_in(struct run_egress *re, int port, uint8_t *frame, size_t len)
{
	const struct egress_config *E = re->cfg->egress;
	uint8_t *ip, *tcp = tcp_of(frame, len, &ip);
	if (!tcp)
		return true;
	uint32_t dst = rd32(ip + 16);
	uint32_t dst_be = htonl(dst), client_be, now = net_pass_ms();
	memcpy(&client_be, ip + 12, 4);
	uint16_t cport = rd16(tcp), lport = rd16(tcp + 2);
	bool in_range = E->range_prefix && (dst & (~0u << (32 - E->range_prefix))) == E->range_addr;
	if (in_range) {
		if (!egress_host_for_address(re->engine, dst_be)) {
			re->nat_unknown++;
			return true;        /* not ours: lwIP drops it */
		}
	} else {
		/* ALLOW_ANY: any other destination on a splice port is carried
		 * out to where the client dialled (never to our own addresses) */
		if (E->mode != EGRESS_MODE_ALLOW_ANY || !egress_proxy_listens(re->proxy, lport))
			return true;
		for (int i = 0; i < re->cfg->nports; i++)
			if (re->cfg->ports[i].address == dst_be)
				return true;
	}
	struct nat_entry *e = nat_find(re, (uint8_t)port, client_be, cport, lport, now);
	if (e && e->alloc_be != dst_be) {
		re->nat_clash++;
		return false;
	}
	if (!e) {
		struct nat_entry *set = nat_set(re, client_be, cport, lport);
		for (int i = 0; i < 4 && !e; i++)
			if (!set[i].used || (int32_t)(now - set[i].expires_ms) >= 0)
				e = &set[i];
		if (!e) {
			re->nat_full++;
			return false;
		}
		*e = (struct nat_entry){.client_be = client_be, .alloc_be = dst_be, .cport = cport, .lport = lport,
					.port = (uint8_t)port, .used = 1};
	}
	e->expires_ms = now + RUN_NAT_IDLE_MS;
	uint32_t own = re->cfg->ports[port].address;
	csum_replace4(ip + 10, ip + 16, (const uint8_t *)&own);
	csum_replace4(tcp + 16, ip + 16, (const uint8_t *)&own);
	memcpy(ip + 16, &own, 4);
	re->nat_in++;
	return true;
}

/* Outbound TCP of such a connection: its source back to the allocated address. */
static void nat_out(struct run_egress *re, int port, uint8_t *frame, size_t len)
{
	uint8_t *ip, *tcp = tcp_of(frame, len, &ip);
	if (!tcp || memcmp(ip + 12, &re->cfg->ports[port].address, 4))
		return;
	uint32_t client_be, now = net_pass_ms();
	memcpy(&client_be, ip + 16, 4);
	struct nat_entry *e = nat_find(re, (uint8_t)port, client_be, rd16(tcp + 2), rd16(tcp), now);
	if (!e)
		return;
	e->expires_ms = now + RUN_NAT_IDLE_MS;
	csum_replace4(ip + 10, ip + 12, (const uint8_t *)&e->alloc_be);
	csum_replace4(tcp + 16, ip + 12, (const uint8_t *)&e->alloc_be);
	memcpy(ip + 12, &e->alloc_be, 4);
	re->nat_out++;
}

/* For the splice: the address a client's connection was really for. */
static uint32_t nat_orig_dst(void *arg, uint32_t client_be, uint16_t cport, uint16_t lport)
{
	struct appliance *a = arg;
	struct run_egress *re = a->egress;
	if (!re || !re->nat)
		return 0;
	for (int p = 0; p < a->nports; p++) {
		struct nat_entry *e = nat_find(re, (uint8_t)p, client_be, cport, lport, net_pass_ms());
		if (e)
			return e->alloc_be;
	}
	return 0;
}

static bool tx_filter(void *arg, struct net_if *nif, void *head, uint16_t head_len, uint16_t frame_len)
{
	struct appliance *a = arg;
	struct run_egress *re = a->egress;
	int p = port_of(a, nif);
	if (!re || p < 0)
		return true;
	if (re->filter && !filter_reason_passes(filter_frame_head(re->filter, re->flows, (unsigned)p, FILTER_EGRESS,
								  head, head_len, frame_len, net_pass_ms())))
		return false;
	if (re->nat)
		nat_out(re, p, head, head_len);
	return true;
}

bool run_egress_rx(struct appliance *a, struct net_if *nif, const void *frame, size_t len)
{
	struct run_egress *re = a->egress;
	int p;
	if (!re || (p = port_of(a, nif)) < 0)
		return true;
	/* the frame is the driver's receive buffer, ours until we return */
	if (re->nat && !nat_in(re, p, (uint8_t *)(uintptr_t)frame, len))
		return false;
	if (!re->filter)
		return true;
	return filter_reason_passes(filter_frame(re->filter, re->flows, (unsigned)p, FILTER_INGRESS,
						 frame, len, net_pass_ms()));
}

static void proxy_log(void *arg, const char *line)
{
	struct appliance *a = arg;
	run_console_log(&a->console, line);
}

void run_egress_commit(struct appliance *a, struct run_egress *re)
{
	struct run_egress *old = a->egress;
	if (re && re->engine) {
		/* open splices carry on under the new config */
		if (old && old->proxy) {
			re->proxy = old->proxy;
			old->proxy = NULL;
		} else {
			unsigned n = re->cfg->limits.max_connections < 256 ? re->cfg->limits.max_connections : 256;
			re->proxy = egress_proxy_new(n, proxy_log, a);
			if (!re->proxy)
				fprintf(stderr, "meshgate: egress: no memory for the splice pool\n");
		}
		char err[256];
		if (re->proxy && egress_proxy_apply(re->proxy, re->cfg, re->engine, err, sizeof err) != 0)
			fprintf(stderr, "meshgate: egress: %s\n", err);
	}
	if (re && re->filter) {
		/* established flows survive a reload */
		if (old && old->flows) {
			re->flows = old->flows;
			old->flows = NULL;
		} else {
			uint32_t seed = 0, cap = re->cfg->limits.max_connections > 1024
							 ? 4 * re->cfg->limits.max_connections : 4096;
			if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
				seed = 0x9e3779b9u;
			re->flows = filter_flows_new(cap, seed);
			if (!re->flows)
				fprintf(stderr, "meshgate: filter: no memory for the flow table; replies are not tracked\n");
		}
	}
	if (re && re->engine && (re->cfg->egress->range_prefix || re->cfg->egress->mode == EGRESS_MODE_ALLOW_ANY)) {
		if (old && old->nat) {
			re->nat = old->nat;
			old->nat = NULL;
		} else if (!(re->nat = calloc((size_t)RUN_NAT_SETS * 4, sizeof *re->nat))) {
			fprintf(stderr, "meshgate: egress: no memory for the address table; addressRange connections refused\n");
		}
	}
	if (re && re->proxy)
		egress_proxy_set_orig_dst(re->proxy, nat_orig_dst, a);
	/* counters stay monotonic across reloads (Prometheus counters) */
	if (re && old) {
		for (int i = 0; i < re->ndns; i++)
			for (int k = 0; k < old->ndns; k++) {
				if (old->dns[k].port != re->dns[i].port)
					continue;
				re->dns[i].resp.counters = old->dns[k].resp.counters;
				re->dns[i].send_failed = old->dns[k].send_failed;
				re->dns[i].forward_unsupported = old->dns[k].forward_unsupported;
				re->dns[i].tcp_refused = old->dns[k].tcp_refused;
			}
		re->fwd_sent = old->fwd_sent;
		re->fwd_answered = old->fwd_answered;
		re->fwd_timeout = old->fwd_timeout;
		re->fwd_full = old->fwd_full;
		re->fwd_mismatch = old->fwd_mismatch;
		re->nat_in = old->nat_in;
		re->nat_out = old->nat_out;
		re->nat_full = old->nat_full;
		re->nat_clash = old->nat_clash;
		re->nat_unknown = old->nat_unknown;
	}
	free_state(old);
	a->egress = re;
	net_set_tx_filter(re && (re->filter || re->nat) ? tx_filter : NULL, a);
	if (re && re->ndns && re->cfg->egress->mode == EGRESS_MODE_ALLOW_ANY && re->cfg->egress->dns_upstream) {
		if (getrandom(&re->rnd, sizeof re->rnd, 0) != sizeof re->rnd || !re->rnd)
			re->rnd = 0x2545f491u;
		re->upstream = udp_new();
		if (!re->upstream || udp_bind(re->upstream, IP4_ADDR_ANY, 0) != ERR_OK) {
			fprintf(stderr, "meshgate: egress: cannot open the upstream resolver socket\n");
			if (re->upstream)
				udp_remove(re->upstream);
			re->upstream = NULL;
		} else {
			udp_recv(re->upstream, upstream_recv, re);
		}
	}
	for (int i = 0; re && i < re->ndns; i++) {
		struct dns_port *dp = &re->dns[i];
		ip4_addr_t any_on_port;
		any_on_port.addr = re->cfg->ports[dp->port].address;
		dp->pcb = udp_new();
		if (!dp->pcb || udp_bind(dp->pcb, &any_on_port, DNS_PORT) != ERR_OK) {
			fprintf(stderr, "meshgate: egress: cannot bind the DNS responder on port %s\n",
				re->cfg->ports[dp->port].name);
			if (dp->pcb)
				udp_remove(dp->pcb);
			dp->pcb = NULL;
			continue;
		}
		udp_recv(dp->pcb, dns_recv, dp);
		struct tcp_pcb *l = tcp_new();
		if (l && tcp_bind(l, &any_on_port, DNS_PORT) == ERR_OK && (dp->tcp_listener = tcp_listen(l))) {
			tcp_arg(dp->tcp_listener, dp);
			tcp_accept(dp->tcp_listener, dns_tcp_accept);
		} else {
			if (l)
				tcp_abort(l);
			fprintf(stderr, "meshgate: egress: cannot listen for DNS over TCP on port %s\n",
				re->cfg->ports[dp->port].name);
		}
	}
}

/* Prometheus text for /metrics: meshgate_egress_*, meshgate_dns_*,
 * meshgate_filter_* series (names stable, labels fixed by the config). */
size_t run_egress_metrics(const struct appliance *a, char *buf, size_t cap)
{
	const struct run_egress *re = a->egress;
	if (!re || !cap)
		return 0;
	const struct config *cfg = re->cfg;
	const struct egress_config *E = cfg->egress;
	struct textw b = {buf, cap, 0, false};
	if (re->proxy) {
		const struct egress_proxy_counters *c = egress_proxy_counters(re->proxy);
		const struct { const char *name; uint64_t v; } o[] = {
			{"accepted", c->accepted}, {"spliced", c->spliced}, {"refused", c->refused},
			{"policy_denied", c->policy_denied}, {"pool_empty", c->pool_empty},
			{"peek_timeout", c->peek_timeout}, {"no_upstream", c->no_upstream},
			{"connect_failed", c->connect_failed}, {"allowed_any", c->allowed_any},
			{"revoked_by_reload", c->revoked},
		};
		tw_fmt(&b, "# HELP meshgate_egress_connections_total Egress connections from the inside, by outcome.\n"
			 "# TYPE meshgate_egress_connections_total counter\n");
		for (size_t i = 0; i < sizeof o / sizeof o[0]; i++)
			tw_fmt(&b, "meshgate_egress_connections_total{outcome=\"%s\"} %llu\n", o[i].name,
			     (unsigned long long)o[i].v);
		tw_fmt(&b, "# HELP meshgate_egress_bytes_total Bytes carried by egress splices.\n"
			 "# TYPE meshgate_egress_bytes_total counter\n"
			 "meshgate_egress_bytes_total{direction=\"out\"} %llu\n"
			 "meshgate_egress_bytes_total{direction=\"in\"} %llu\n",
			 (unsigned long long)c->bytes_out, (unsigned long long)c->bytes_in);
	}
	if (re->engine) {
		const struct egress_counters *c = egress_counters(re->engine);
		const struct { const char *name; uint64_t v; } o[] = {
			{"allowed", c->allowed}, {"allowed_any", c->allowed_any}, {"denied_host", c->denied_host},
			{"denied_port", c->denied_port}, {"denied_protocol", c->denied_protocol},
			{"denied_no_host", c->denied_no_host},
		};
		tw_fmt(&b, "# HELP meshgate_egress_decisions_total Egress destination decisions (ServiceEntry), by verdict.\n"
			 "# TYPE meshgate_egress_decisions_total counter\n");
		for (size_t i = 0; i < sizeof o / sizeof o[0]; i++)
			tw_fmt(&b, "meshgate_egress_decisions_total{verdict=\"%s\"} %llu\n", o[i].name,
			     (unsigned long long)o[i].v);
	}
	if (re->ndns) {
		tw_fmt(&b, "# HELP meshgate_dns_messages_total DNS responder outcomes, by port.\n"
			 "# TYPE meshgate_dns_messages_total counter\n");
		for (int i = 0; i < re->ndns; i++) {
			const struct dns_port *dp = &re->dns[i];
			const struct dns_counters *c = &dp->resp.counters;
			const struct { const char *name; uint64_t v; } o[] = {
				{"received", c->received}, {"answered", c->answered}, {"nodata", c->nodata},
				{"nxdomain", c->nxdomain}, {"refused", c->refused}, {"forwarded", c->forwarded},
				{"formerr", c->formerr}, {"notimp", c->notimp}, {"ratelimited", c->ratelimited},
				{"dropped", c->dropped_short + c->dropped_response},
			};
			for (size_t k = 0; k < sizeof o / sizeof o[0]; k++)
				tw_fmt(&b, "meshgate_dns_messages_total{port=\"%s\",result=\"%s\"} %llu\n",
				     cfg->ports[dp->port].name, o[k].name, (unsigned long long)o[k].v);
		}
	}
	if (re->filter) {
		static const char *const dirs[2] = {"ingress", "egress"};
		tw_fmt(&b, "# HELP meshgate_filter_packets_total Packet filter verdicts, by port, direction and reason.\n"
			 "# TYPE meshgate_filter_packets_total counter\n");
		for (int p = 0; p < cfg->nports; p++)
			for (int d = 0; d < 2; d++) {
				if (!E->enforce[p][d])
					continue;
				for (int r = 0; r < FILTER_NREASONS; r++)
					tw_fmt(&b, "meshgate_filter_packets_total{port=\"%s\",direction=\"%s\",reason=\"%s\"} %llu\n",
					     cfg->ports[p].name, dirs[d], filter_reason_name((enum filter_reason)r),
					     (unsigned long long)filter_count(re->filter, (unsigned)p,
									      (enum filter_dir)d, (enum filter_reason)r));
			}
	}
	return b.full ? 0 : b.pos;
}

void run_egress_report(const struct appliance *a, FILE *out)
{
	const struct run_egress *re = a->egress;
	if (!re)
		return;
	const struct config *cfg = re->cfg;
	const struct egress_config *E = cfg->egress;
	static const char *const dirs[2] = {"ingress", "egress"};
	for (int p = 0; re->filter && p < cfg->nports; p++)
		for (int d = 0; d < 2; d++) {
			if (!E->enforce[p][d])
				continue;
			fprintf(out, "filter %s %s", cfg->ports[p].name, dirs[d]);
			for (int r = 0; r < FILTER_NREASONS; r++)
				fprintf(out, " %s=%llu", filter_reason_name((enum filter_reason)r),
					(unsigned long long)filter_count(re->filter, (unsigned)p, (enum filter_dir)d,
									 (enum filter_reason)r));
			fprintf(out, "\n");
		}
	for (uint32_t g = 0; re->filter && g < E->ngroups; g++)
		fprintf(out, "filter-rule %s %s[%d] packets=%llu\n", E->groups[g].policy, dirs[E->groups[g].dir],
			E->groups[g].rule, (unsigned long long)filter_group_hits(re->filter, g));
	for (int i = 0; i < re->ndns; i++) {
		const struct dns_port *dp = &re->dns[i];
		const struct dns_counters *c = &dp->resp.counters;
		fprintf(out, "dns %s received=%llu answered=%llu nodata=%llu nxdomain=%llu refused=%llu "
			"formerr=%llu notimp=%llu ratelimited=%llu dropped=%llu forward_unsupported=%llu send_failed=%llu tcp_refused=%llu\n",
			cfg->ports[dp->port].name, (unsigned long long)c->received, (unsigned long long)c->answered,
			(unsigned long long)c->nodata, (unsigned long long)c->nxdomain, (unsigned long long)c->refused,
			(unsigned long long)c->formerr, (unsigned long long)c->notimp,
			(unsigned long long)c->ratelimited,
			(unsigned long long)(c->dropped_short + c->dropped_response),
			(unsigned long long)dp->forward_unsupported, (unsigned long long)dp->send_failed,
			(unsigned long long)dp->tcp_refused);
	}
	if (re->nat)
		fprintf(out, "egress-nat in=%llu out=%llu full=%llu clash=%llu unknown=%llu\n",
			(unsigned long long)re->nat_in, (unsigned long long)re->nat_out,
			(unsigned long long)re->nat_full, (unsigned long long)re->nat_clash,
			(unsigned long long)re->nat_unknown);
	if (re->upstream)
		fprintf(out, "dns-forward sent=%llu answered=%llu timeout=%llu full=%llu mismatch=%llu\n",
			(unsigned long long)re->fwd_sent, (unsigned long long)re->fwd_answered,
			(unsigned long long)re->fwd_timeout, (unsigned long long)re->fwd_full,
			(unsigned long long)re->fwd_mismatch);
	if (re->engine) {
		const struct egress_counters *c = egress_counters(re->engine);
		fprintf(out, "egress allocations=%llu alloc_full=%llu allowed=%llu allowed_any=%llu denied_host=%llu "
			"denied_port=%llu denied_protocol=%llu denied_no_host=%llu\n",
			(unsigned long long)c->allocations, (unsigned long long)c->alloc_full,
			(unsigned long long)c->allowed, (unsigned long long)c->allowed_any,
			(unsigned long long)c->denied_host, (unsigned long long)c->denied_port,
			(unsigned long long)c->denied_protocol, (unsigned long long)c->denied_no_host);
	}
	if (re->proxy) {
		const struct egress_proxy_counters *c = egress_proxy_counters(re->proxy);
		fprintf(out, "egress-splice accepted=%llu spliced=%llu refused=%llu pool_empty=%llu peek_timeout=%llu "
			"no_upstream=%llu connect_failed=%llu policy_denied=%llu allowed_any=%llu bytes_out=%llu bytes_in=%llu\n",
			(unsigned long long)c->accepted, (unsigned long long)c->spliced, (unsigned long long)c->refused,
			(unsigned long long)c->pool_empty, (unsigned long long)c->peek_timeout,
			(unsigned long long)c->no_upstream, (unsigned long long)c->connect_failed,
			(unsigned long long)c->policy_denied, (unsigned long long)c->allowed_any,
			(unsigned long long)c->bytes_out, (unsigned long long)c->bytes_in);
	}
}

static int cmd_show_egress(struct console *c, void *ctx, int argc, char **argv)
{
	struct run_egress_console *ec = ctx;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	if (!ec->a->egress) {
		console_printf(c, "egress: no spec.egress or spec.networkPolicies in the configuration\n");
		return CONSOLE_CMD_OK;
	}
	static char buf[16384];
	FILE *f = fmemopen(buf, sizeof buf, "w");
	if (!f)
		return CONSOLE_CMD_OK;
	run_egress_report(ec->a, f);
	long len = ftell(f);
	fclose(f);
	if (len > 0)
		console_write(c, buf, (size_t)len);
	return CONSOLE_CMD_OK;
}

enum console_err run_egress_console_register(struct console_registry *reg, struct run_egress_console *ec,
					     struct appliance *a)
{
	ec->a = a;
	ec->cmd = (struct console_command){"show egress", "",
		"packet filter counters by port, reason and rule; DNS responder; egress decisions and splices",
		cmd_show_egress, ec};
	return console_register(reg, &ec->cmd);
}

void run_egress_poll(struct appliance *a, uint32_t now_ms)
{
	struct run_egress *re = a->egress;
	if (!re)
		return;
	if (re->proxy)
		egress_proxy_poll(re->proxy, now_ms);
	for (int i = 0; i < RUN_DNS_FORWARD_SLOTS; i++)
		if (re->fwd[i].used && (int32_t)(now_ms - re->fwd[i].expires_ms) >= 0) {
			re->fwd[i].used = false;        /* the client retries or gives up */
			re->fwd_timeout++;
			if (re->fwd[i].tcp)
				re->fwd[i].tcp->dead = true;
		}
	for (int i = 0; i < RUN_DNS_TCP_CONNS; i++) {
		struct dns_tcp_conn *t = &re->tcp[i];
		if (t->used && !t->dead && (int32_t)(now_ms - t->last_ms) > (int32_t)RUN_DNS_TCP_IDLE_MS)
			t->dead = true;
		if (t->used && t->dead)
			dns_tcp_close(t, false);
	}
}

void run_egress_stop(struct appliance *a)
{
	if (!a->egress)
		return;
	run_egress_report(a, stdout);
	fflush(stdout);
	net_set_tx_filter(NULL, NULL);
	free_state(a->egress);
	a->egress = NULL;
}
