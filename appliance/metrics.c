/* Metrics tables and Prometheus text exposition: see metrics.h. */
#include "appliance/metrics.h"
#include "appliance/policy.h"
#include "appliance/strjoin.h"
#include "appliance/textw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { OV_REQUESTS, OV_TCP, OV_REFUSALS, OV_TLS, OV_DECISIONS };
static const char *const overflow_table_names[] = { "requests", "tcp", "refusals", "tls_handshakes", "policy_decisions" };

/* Istio's default buckets in microseconds (le is inclusive). */
static const uint64_t bucket_us[METRICS_NBUCKETS] = {
	500, 1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
	5000000, 10000000, 30000000, 60000000, 300000000, 600000000, 1800000000, 3600000000ull,
};
static const char *const bucket_le[METRICS_NBUCKETS + 1] = {
	"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
	"10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
};

static void set_overflow_key(struct metrics_key *k)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->source_principal, sizeof(k->source_principal), "overflow");
	snprintf(k->source_namespace, sizeof(k->source_namespace), "overflow");
	snprintf(k->destination_service, sizeof(k->destination_service), "overflow");
	snprintf(k->destination_namespace, sizeof(k->destination_namespace), "overflow");
}

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	set_overflow_key(&m->req_overflow.key);
	set_overflow_key(&m->tcp_overflow.key);
	snprintf(m->refusals[METRICS_REASONS].name, METRICS_POLICY_MAX, "overflow");
	snprintf(m->tls[METRICS_TLS_RESULTS].name, METRICS_POLICY_MAX, "overflow");
	snprintf(m->decisions[METRICS_DECISIONS].policy, METRICS_POLICY_MAX, "overflow");
}

/* ------------------------------------------------------------ keys */

static bool copy_field(char *dst, size_t size, const char *src)
{
	if (!src || !*src)
		src = "unknown";
	size_t n = strlen(src);
	if (n >= size)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* Builds the key; false when a label does not fit (→ overflow series). */
static bool make_key(struct metrics_key *k, const struct metrics_labels *l, bool with_code)
{
	memset(k, 0, sizeof(*k));
	k->response_code = with_code ? l->response_code : 0;
	k->mutual_tls = l->mutual_tls;
	return copy_field(k->source_principal, sizeof(k->source_principal), l->source_principal) &&
	       copy_field(k->source_namespace, sizeof(k->source_namespace), l->source_namespace) &&
	       copy_field(k->destination_service, sizeof(k->destination_service), l->destination_service) &&
	       copy_field(k->destination_namespace, sizeof(k->destination_namespace), l->destination_namespace);
}

static uint32_t fnv(uint32_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static uint32_t key_hash(const struct metrics_key *k)
{
	uint32_t h = 2166136261u;
	h = fnv(h, k->source_principal, strlen(k->source_principal) + 1);
	h = fnv(h, k->source_namespace, strlen(k->source_namespace) + 1);
	h = fnv(h, k->destination_service, strlen(k->destination_service) + 1);
	h = fnv(h, k->destination_namespace, strlen(k->destination_namespace) + 1);
	h = fnv(h, &k->response_code, sizeof(k->response_code));
	return fnv(h, &k->mutual_tls, sizeof(k->mutual_tls));
}

static bool key_equal(const struct metrics_key *a, const struct metrics_key *b)
{
	return a->response_code == b->response_code && a->mutual_tls == b->mutual_tls &&
	       strcmp(a->source_principal, b->source_principal) == 0 &&
	       strcmp(a->source_namespace, b->source_namespace) == 0 &&
	       strcmp(a->destination_service, b->destination_service) == 0 &&
	       strcmp(a->destination_namespace, b->destination_namespace) == 0;
}

/* Open addressing over `slots` (2x the table, so probes stay short).
 * `keys` is a stride walk over the series array to reach each key. */
static int table_find(uint16_t *slots, size_t nslots, const void *series, size_t stride,
		      int *count, int max, const struct metrics_key *k, bool *created)
{
	uint32_t h = key_hash(k);
	*created = false;
	for (size_t probe = 0; probe < nslots; probe++) {
		size_t i = (h + probe) & (nslots - 1);
		if (slots[i] == 0) {
			if (*count >= max)
				return METRICS_OVERFLOW;
			slots[i] = (uint16_t)(*count + 1);
			*created = true;
			return (*count)++;
		}
		const struct metrics_key *have = (const struct metrics_key *)((const char *)series + (size_t)(slots[i] - 1) * stride);
		if (key_equal(have, k))
			return slots[i] - 1;
	}
	return METRICS_OVERFLOW;
}

/* ------------------------------------------------------------ requests / tcp */

int metrics_request_series(struct metrics *m, const struct metrics_labels *l)
{
	struct metrics_key k;
	bool created;
	int idx = METRICS_OVERFLOW;
	if (make_key(&k, l, true))
		idx = table_find(m->req_slots, 2 * METRICS_REQUEST_SERIES, m->req, sizeof(m->req[0]),
				 &m->nreq, METRICS_REQUEST_SERIES, &k, &created);
	if (idx == METRICS_OVERFLOW) {
		m->overflow[OV_REQUESTS]++;
		return METRICS_OVERFLOW;
	}
	if (created)
		m->req[idx].key = k;
	return idx;
}

void metrics_request_observe(struct metrics *m, int series, uint64_t duration_us)
{
	struct metrics_request_series *s =
		series >= 0 && series < m->nreq ? &m->req[series] : &m->req_overflow;
	s->requests++;
	s->duration_sum_us += duration_us;
	int b = 0;
	while (b < METRICS_NBUCKETS && duration_us > bucket_us[b])
		b++;
	s->buckets[b]++;
}

void metrics_request(struct metrics *m, const struct metrics_labels *l, uint64_t duration_us)
{
	metrics_request_observe(m, metrics_request_series(m, l), duration_us);
}

int metrics_tcp_series(struct metrics *m, const struct metrics_labels *l)
{
	struct metrics_key k;
	bool created;
	int idx = METRICS_OVERFLOW;
	if (make_key(&k, l, false))
		idx = table_find(m->tcp_slots, 2 * METRICS_TCP_SERIES, m->tcp, sizeof(m->tcp[0]),
				 &m->ntcp, METRICS_TCP_SERIES, &k, &created);
	if (idx == METRICS_OVERFLOW) {
		m->overflow[OV_TCP]++;
		return METRICS_OVERFLOW;
	}
	if (created)
		m->tcp[idx].key = k;
	return idx;
}

static struct metrics_tcp_series *tcp_at(struct metrics *m, int series)
{
	return series >= 0 && series < m->ntcp ? &m->tcp[series] : &m->tcp_overflow;
}

void metrics_tcp_opened(struct metrics *m, int series) { tcp_at(m, series)->opened++; }
void metrics_tcp_closed(struct metrics *m, int series) { tcp_at(m, series)->closed++; }

void metrics_tcp_bytes(struct metrics *m, int series, uint64_t sent, uint64_t received)
{
	struct metrics_tcp_series *s = tcp_at(m, series);
	s->sent_bytes += sent;
	s->received_bytes += received;
}

/* ------------------------------------------------------------ named counters */

static void named_count(struct metrics_named_counter *t, int *n, int max, uint64_t *overflow,
			const char *name)
{
	if (!name || !*name)
		name = "unknown";
	size_t len = strlen(name);
	if (len < METRICS_REASON_MAX) {
		for (int i = 0; i < *n; i++) {
			if (t[i].name[0] == name[0] && strcmp(t[i].name, name) == 0) {
				t[i].value++;
				return;
			}
		}
		if (*n < max) {
			memcpy(t[*n].name, name, len + 1);
			t[(*n)++].value = 1;
			return;
		}
	}
	(*overflow)++;
	t[max].value++;
}

void metrics_refusal(struct metrics *m, const char *reason)
{
	named_count(m->refusals, &m->nrefusals, METRICS_REASONS, &m->overflow[OV_REFUSALS], reason);
}

void metrics_tls_handshake(struct metrics *m, const char *result)
{
	named_count(m->tls, &m->ntls, METRICS_TLS_RESULTS, &m->overflow[OV_TLS], result);
}

void metrics_policy_count(struct metrics *m, const char *policy_namespace, const char *policy_name,
			  bool deny, bool dry_run)
{
	char policy[METRICS_POLICY_MAX];
	size_t n;
	if (policy_name && *policy_name)
		n = str_join(policy, sizeof(policy), policy_namespace, "/", policy_name);
	else
		n = str_join(policy, sizeof(policy), "none", NULL, NULL);
	if (n >= sizeof(policy))
		goto overflow;
	for (int i = 0; i < m->ndecisions; i++) {
		struct metrics_decision_counter *d = &m->decisions[i];
		if (d->deny == deny && d->dry_run == dry_run && strcmp(d->policy, policy) == 0) {
			d->value++;
			return;
		}
	}
	if (m->ndecisions < METRICS_DECISIONS) {
		struct metrics_decision_counter *d = &m->decisions[m->ndecisions++];
		memcpy(d->policy, policy, (size_t)n + 1);
		d->deny = deny;
		d->dry_run = dry_run;
		d->value = 1;
		return;
	}
overflow:
	m->overflow[OV_DECISIONS]++;
	m->decisions[METRICS_DECISIONS].value++;
}

void metrics_policy_decision(struct metrics *m, const struct policy_decision *d)
{
	metrics_policy_count(m, d->policy_namespace, d->policy_name, d->action == POLICY_DENY, false);
	if (d->dry_run_matched)
		metrics_policy_count(m, d->dry_run_namespace, d->dry_run_name,
				     d->dry_run_action == POLICY_DENY, true);
}

/* ------------------------------------------------------------ writer (textw.h) */

static void w_label_value(struct textw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c == '\\') { tw_str(w, "\\\\"); i++; continue; }
		if (c == '"') { tw_str(w, "\\\""); i++; continue; }
		if (c == '\n') { tw_str(w, "\\n"); i++; continue; }
		size_t l = utf8_valid_len(p + i, n - i);
		if (l == 0) { tw_str(w, "\xef\xbf\xbd"); i++; continue; }
		tw_bytes(w, s + i, l);
		i += l;
	}
}

static void w_label(struct textw *w, bool first, const char *name, const char *value)
{
	tw_str(w, first ? "{" : ",");
	tw_str(w, name);
	tw_str(w, "=\"");
	w_label_value(w, value);
	tw_str(w, "\"");
}

static void w_istio_labels(struct textw *w, const struct metrics_key *k, bool with_code)
{
	w_label(w, true, "reporter", "destination");
	w_label(w, false, "source_principal", k->source_principal);
	w_label(w, false, "source_workload_namespace", k->source_namespace);
	w_label(w, false, "destination_service_name", k->destination_service);
	w_label(w, false, "destination_service_namespace", k->destination_namespace);
	if (with_code)
		tw_fmt(w, ",response_code=\"%u\"", k->response_code);
	w_label(w, false, "connection_security_policy", k->mutual_tls ? "mutual_tls" : "none");
}

/* ------------------------------------------------------------ families */

enum family {
	F_REQ_TOTAL, F_REQ_DURATION, F_TCP_OPENED, F_TCP_CLOSED, F_TCP_SENT, F_TCP_RECEIVED,
	F_REFUSALS, F_DECISIONS, F_TLS, F_POOL_IN_USE, F_POOL_SIZE,
	F_PORT_RX_PACKETS, F_PORT_TX_PACKETS, F_PORT_RX_BYTES, F_PORT_TX_BYTES,
	F_PORT_RX_DROPPED, F_PORT_TX_DROPPED, F_PORT_LINK_UP, F_PORT_TX_OFFLOAD_FRAMES,
	F_PORT_TX_OFFLOAD_REFUSED, F_PORT_RX_OFFLOAD_FRAMES, F_OVERFLOW, F_END
};

static const struct { const char *name, *type, *help; } families[F_END] = {
	[F_REQ_TOTAL] = { "istio_requests_total", "counter", "Requests served, by peer identity, service and response code." },
	[F_REQ_DURATION] = { "istio_request_duration_milliseconds", "histogram", "Request duration in milliseconds." },
	[F_TCP_OPENED] = { "istio_tcp_connections_opened_total", "counter", "TCP connections opened." },
	[F_TCP_CLOSED] = { "istio_tcp_connections_closed_total", "counter", "TCP connections closed." },
	[F_TCP_SENT] = { "istio_tcp_sent_bytes_total", "counter", "Bytes sent to the peer on TCP connections." },
	[F_TCP_RECEIVED] = { "istio_tcp_received_bytes_total", "counter", "Bytes received from the peer on TCP connections." },
	[F_REFUSALS] = { "meshgate_refusals_total", "counter", "Connections and requests refused, by reason." },
	[F_DECISIONS] = { "meshgate_policy_decisions_total", "counter", "Authorization decisions by deciding policy and action; dry_run=\"true\" for dry-run policies." },
	[F_TLS] = { "meshgate_tls_handshakes_total", "counter", "TLS handshakes by result." },
	[F_POOL_IN_USE] = { "meshgate_pool_in_use", "gauge", "Pool entries in use." },
	[F_POOL_SIZE] = { "meshgate_pool_size", "gauge", "Pool size, fixed at start." },
	[F_PORT_RX_PACKETS] = { "meshgate_port_rx_packets_total", "counter", "Packets received by the port." },
	[F_PORT_TX_PACKETS] = { "meshgate_port_tx_packets_total", "counter", "Packets sent by the port." },
	[F_PORT_RX_BYTES] = { "meshgate_port_rx_bytes_total", "counter", "Bytes received by the port." },
	[F_PORT_TX_BYTES] = { "meshgate_port_tx_bytes_total", "counter", "Bytes sent by the port." },
	[F_PORT_RX_DROPPED] = { "meshgate_port_rx_dropped_total", "counter", "Packets dropped on receive (NIC missed, no mbuf)." },
	[F_PORT_TX_DROPPED] = { "meshgate_port_tx_dropped_total", "counter", "Packets dropped on transmit (ring full, no mbuf)." },
	[F_PORT_LINK_UP] = { "meshgate_port_link_up", "gauge", "1 when the port's link is up." },
	[F_PORT_TX_OFFLOAD_FRAMES] = { "meshgate_port_tx_offload_frames_total", "counter",
				       "TCP frames of up to 64 KB handed to the port's segmentation offload (their packets count in tx_packets)." },
	[F_PORT_TX_OFFLOAD_REFUSED] = { "meshgate_port_tx_offload_refused_total", "counter",
					"Offload frames the port refused, sent as separate segments instead." },
	[F_PORT_RX_OFFLOAD_FRAMES] = { "meshgate_port_rx_offload_frames_total", "counter",
				       "Frames larger than the MTU's received whole (segments the kernel merged, or a local sender's offload frames; also in rx_packets)." },
	[F_OVERFLOW] = { "meshgate_metrics_overflow_total", "counter", "Label sets counted in a table's overflow series because the table was full or a label too long." },
};

struct render_ctx {
	const struct metrics *m;
	struct metrics_pool_sample pools[METRICS_MAX_POOLS];
	int npools;
	struct metrics_port_sample ports[METRICS_MAX_PORTS];
	int nports;
};

static const struct metrics_request_series *req_at(const struct metrics *m, int i)
{
	if (i < m->nreq) return &m->req[i];
	if (i == m->nreq && m->req_overflow.requests) return &m->req_overflow;
	return NULL;
}

static const struct metrics_tcp_series *tcp_series_at(const struct metrics *m, int i)
{
	if (i < m->ntcp) return &m->tcp[i];
	if (i == m->ntcp && (m->tcp_overflow.opened || m->tcp_overflow.closed ||
			     m->tcp_overflow.sent_bytes || m->tcp_overflow.received_bytes))
		return &m->tcp_overflow;
	return NULL;
}

static const struct metrics_named_counter *named_at(const struct metrics_named_counter *t, int n,
						    int max, int i)
{
	if (i < n) return &t[i];
	if (i == n && t[max].value) return &t[max];
	return NULL;
}

static void next_family(struct metrics_render_state *st)
{
	st->section++;
	st->item = -1;
	st->sub = 0;
}

/* Writes one unit (a header, one sample line, or nothing when moving to
 * the next family). Returns false when the exposition is complete. */
static bool step(const struct render_ctx *r, struct metrics_render_state *st, struct textw *w)
{
	const struct metrics *m = r->m;
	if (st->section >= F_END)
		return false;
	const char *name = families[st->section].name;
	if (st->item < 0) {
		tw_fmt(w, "# HELP %s %s\n# TYPE %s %s\n", name, families[st->section].help, name,
		      families[st->section].type);
		st->item = 0;
		st->sub = 0;
		return true;
	}
	int i = st->item;
	switch ((enum family)st->section) {
	case F_REQ_TOTAL: {
		const struct metrics_request_series *s = req_at(m, i);
		if (!s) break;
		tw_str(w, name);
		w_istio_labels(w, &s->key, true);
		tw_fmt(w, "} %" PRIu64 "\n", s->requests);
		st->item++;
		return true;
	}
	case F_REQ_DURATION: {
		const struct metrics_request_series *s = req_at(m, i);
		if (!s) break;
		tw_str(w, name);
		if (st->sub <= METRICS_NBUCKETS) {
			uint64_t cum = 0;
			for (int b = 0; b <= st->sub; b++)
				cum += s->buckets[b];
			tw_str(w, "_bucket");
			w_istio_labels(w, &s->key, true);
			tw_fmt(w, ",le=\"%s\"} %" PRIu64 "\n", bucket_le[st->sub], cum);
		} else if (st->sub == METRICS_NBUCKETS + 1) {
			tw_str(w, "_sum");
			w_istio_labels(w, &s->key, true);
			tw_fmt(w, "} %" PRIu64 ".%03" PRIu64 "\n", s->duration_sum_us / 1000, s->duration_sum_us % 1000);
		} else {
			tw_str(w, "_count");
			w_istio_labels(w, &s->key, true);
			tw_fmt(w, "} %" PRIu64 "\n", s->requests);
		}
		if (++st->sub > METRICS_NBUCKETS + 2) {
			st->sub = 0;
			st->item++;
		}
		return true;
	}
	case F_TCP_OPENED: case F_TCP_CLOSED: case F_TCP_SENT: case F_TCP_RECEIVED: {
		const struct metrics_tcp_series *s = tcp_series_at(m, i);
		if (!s) break;
		uint64_t v = st->section == F_TCP_OPENED ? s->opened : st->section == F_TCP_CLOSED ? s->closed :
			     st->section == F_TCP_SENT ? s->sent_bytes : s->received_bytes;
		tw_str(w, name);
		w_istio_labels(w, &s->key, false);
		tw_fmt(w, "} %" PRIu64 "\n", v);
		st->item++;
		return true;
	}
	case F_REFUSALS: case F_TLS: {
		const struct metrics_named_counter *c = st->section == F_REFUSALS
			? named_at(m->refusals, m->nrefusals, METRICS_REASONS, i)
			: named_at(m->tls, m->ntls, METRICS_TLS_RESULTS, i);
		if (!c) break;
		tw_str(w, name);
		w_label(w, true, st->section == F_REFUSALS ? "reason" : "result", c->name);
		tw_fmt(w, "} %" PRIu64 "\n", c->value);
		st->item++;
		return true;
	}
	case F_DECISIONS: {
		const struct metrics_decision_counter *d = NULL;
		if (i < m->ndecisions) d = &m->decisions[i];
		else if (i == m->ndecisions && m->decisions[METRICS_DECISIONS].value) d = &m->decisions[METRICS_DECISIONS];
		if (!d) break;
		tw_str(w, name);
		w_label(w, true, "policy", d->policy);
		w_label(w, false, "action", d == &m->decisions[METRICS_DECISIONS] ? "overflow" : d->deny ? "deny" : "allow");
		w_label(w, false, "dry_run", d->dry_run ? "true" : "false");
		tw_fmt(w, "} %" PRIu64 "\n", d->value);
		st->item++;
		return true;
	}
	case F_POOL_IN_USE: case F_POOL_SIZE: {
		if (i >= r->npools) break;
		const struct metrics_pool_sample *p = &r->pools[i];
		tw_str(w, name);
		w_label(w, true, "pool", p->name ? p->name : "unknown");
		tw_fmt(w, "} %" PRIu64 "\n", st->section == F_POOL_IN_USE ? p->in_use : p->size);
		st->item++;
		return true;
	}
	case F_PORT_RX_PACKETS: case F_PORT_TX_PACKETS: case F_PORT_RX_BYTES: case F_PORT_TX_BYTES:
	case F_PORT_RX_DROPPED: case F_PORT_TX_DROPPED: case F_PORT_LINK_UP:
	case F_PORT_TX_OFFLOAD_FRAMES: case F_PORT_TX_OFFLOAD_REFUSED: case F_PORT_RX_OFFLOAD_FRAMES: {
		if (i >= r->nports) break;
		const struct metrics_port_sample *p = &r->ports[i];
		uint64_t v = 0;
		switch (st->section) {
		case F_PORT_RX_PACKETS: v = p->rx_packets; break;
		case F_PORT_TX_PACKETS: v = p->tx_packets; break;
		case F_PORT_RX_BYTES: v = p->rx_bytes; break;
		case F_PORT_TX_BYTES: v = p->tx_bytes; break;
		case F_PORT_RX_DROPPED: v = p->rx_dropped; break;
		case F_PORT_TX_DROPPED: v = p->tx_dropped; break;
		case F_PORT_TX_OFFLOAD_FRAMES: v = p->tx_offload_frames; break;
		case F_PORT_TX_OFFLOAD_REFUSED: v = p->tx_offload_refused; break;
		case F_PORT_RX_OFFLOAD_FRAMES: v = p->rx_offload_frames; break;
		default: v = p->link_up ? 1 : 0;
		}
		tw_str(w, name);
		w_label(w, true, "port", p->name ? p->name : "unknown");
		tw_fmt(w, "} %" PRIu64 "\n", v);
		st->item++;
		return true;
	}
	case F_OVERFLOW:
		if (i >= (int)(sizeof(m->overflow) / sizeof(m->overflow[0]))) break;
		tw_str(w, name);
		w_label(w, true, "table", overflow_table_names[i]);
		tw_fmt(w, "} %" PRIu64 "\n", m->overflow[i]);
		st->item++;
		return true;
	case F_END:
		return false;
	}
	next_family(st);
	return true;
}

void metrics_render_begin(struct metrics_render_state *st)
{
	st->section = 0;
	st->item = -1;
	st->sub = 0;
}

static void gather(struct render_ctx *r, const struct metrics *m, const struct metrics_sources *src)
{
	r->m = m;
	r->npools = r->nports = 0;
	if (src && src->pools) {
		r->npools = src->pools(src->arg, r->pools, METRICS_MAX_POOLS);
		if (r->npools < 0) r->npools = 0;
		if (r->npools > METRICS_MAX_POOLS) r->npools = METRICS_MAX_POOLS;
	}
	if (src && src->ports) {
		r->nports = src->ports(src->arg, r->ports, METRICS_MAX_PORTS);
		if (r->nports < 0) r->nports = 0;
		if (r->nports > METRICS_MAX_PORTS) r->nports = METRICS_MAX_PORTS;
	}
}

size_t metrics_render_chunk(const struct metrics *m, const struct metrics_sources *src,
			    struct metrics_render_state *st, char *buf, size_t len)
{
	if (len < METRICS_RENDER_MIN)
		return 0;
	struct render_ctx r;
	gather(&r, m, src);
	struct textw w = { buf, len, 0, false };
	for (;;) {
		struct metrics_render_state saved = *st;
		size_t mark = w.pos;
		if (!step(&r, st, &w))
			break;
		if (w.full) {
			/* the unit did not fit: undo it, it starts the next chunk */
			*st = saved;
			w.pos = mark;
			break;
		}
	}
	return w.pos;
}

enum metrics_err metrics_render(const struct metrics *m, const struct metrics_sources *src,
				char *buf, size_t len, size_t *written)
{
	struct render_ctx r;
	gather(&r, m, src);
	struct metrics_render_state st;
	metrics_render_begin(&st);
	struct textw w = { buf, len ? len - 1 : 0, 0, false };
	while (step(&r, &st, &w) && !w.full)
		;
	*written = w.pos;
	if (len)
		buf[w.pos] = '\0';
	return w.full ? METRICS_ERR_BUFFER : METRICS_OK;
}
