/* Metrics: the counters the proxy updates and a Prometheus text renderer.
 * No I/O, no allocation: every table is a fixed array inside struct metrics.
 *
 * Series (names and labels as Istio's standard metrics, reporter="destination"):
 *   istio_requests_total                        counter   per request series
 *   istio_request_duration_milliseconds         histogram per request series,
 *       Istio's default buckets METRICS_BUCKETS_MS
 *   istio_tcp_connections_opened_total / _closed_total,
 *   istio_tcp_sent_bytes_total / _received_bytes_total   counters per tcp series
 *   labels: source_principal, source_workload_namespace,
 *           destination_service_name, destination_service_namespace,
 *           response_code (requests only), connection_security_policy
 *           ("mutual_tls" or "none"), reporter="destination"
 * and meshgate_*:
 *   meshgate_refusals_total{reason}
 *   meshgate_policy_decisions_total{policy,action,dry_run}
 *   meshgate_tls_handshakes_total{result}
 *   meshgate_pool_in_use{pool} / meshgate_pool_size{pool}           gauges
 *   meshgate_port_{rx,tx}_{packets,bytes}_total{port},
 *   meshgate_port_{rx,tx}_dropped_total{port}, meshgate_port_link_up{port}
 *   meshgate_metrics_overflow_total{table}   label sets that found a full table
 * Pools and ports are not stored here: the renderer asks for them through
 * struct metrics_sources each time it runs.
 *
 * Tables fill in arrival order and never shrink (until metrics_init). When a
 * table is full, or a label value is longer than its field, the update goes
 * to that table's single overflow series, whose string labels are all
 * "overflow", and meshgate_metrics_overflow_total{table} counts it.
 *
 * ---- How the proxy drives it --------------------------------------------
 *   boot:        static struct metrics metrics; metrics_init(&metrics);
 *   tcp accept (after the handshake, when the identity is known):
 *                conn->mseries = metrics_tcp_series(&metrics, &labels);
 *                metrics_tcp_opened(&metrics, conn->mseries);
 *   as bytes move (or at close): metrics_tcp_bytes(&metrics, conn->mseries, sent, received);
 *   close:       metrics_tcp_closed(&metrics, conn->mseries);
 *   http response done: metrics_request(&metrics, &labels, duration_us);
 *   refusal:     metrics_refusal(&metrics, "pool_exhausted");
 *   policy:      metrics_policy_decision(&metrics, &decision);
 *   handshake:   metrics_tls_handshake(&metrics, "ok" | "bad_cert" | ...);
 * Series handles stay valid until metrics_init(). Label strings are copied.
 *
 * ---- Rendering (/metrics, the console) ------------------------------------
 *   one shot:   metrics_render(&metrics, &sources, buf, len, &written)
 *               returns METRICS_ERR_BUFFER when the text did not fit
 *   streaming:  struct metrics_render_state st; metrics_render_begin(&st);
 *               while ((n = metrics_render_chunk(&metrics, &sources, &st, buf, len)) > 0)
 *                   send(buf, n);
 *               each chunk holds whole lines; len >= METRICS_RENDER_MIN.
 * Label values are escaped (\\ \" \n) and invalid UTF-8 becomes U+FFFD,
 * so any principal a peer presents renders as valid exposition text.
 */
#ifndef MESHGATE_METRICS_H
#define MESHGATE_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy_decision;

#define METRICS_PRINCIPAL_MAX 256       /* bytes incl. NUL; BearSSL caps a SAN URI at 255 */
#define METRICS_NAME_MAX 64             /* k8s names and namespaces are at most 63 */
#define METRICS_REASON_MAX 64           /* refusal reason / handshake result strings */
#define METRICS_POLICY_MAX 130          /* "namespace/name" */
#define METRICS_REQUEST_SERIES 1024     /* distinct request label sets */
#define METRICS_TCP_SERIES 512          /* distinct tcp label sets */
#define METRICS_REASONS 64              /* distinct refusal reasons */
#define METRICS_TLS_RESULTS 32          /* distinct handshake results */
#define METRICS_DECISIONS 256           /* distinct (policy, action, dry_run) */
#define METRICS_MAX_POOLS 32            /* samples the pool callback may return */
#define METRICS_MAX_PORTS 8
#define METRICS_NBUCKETS 19             /* Istio's default buckets, +Inf extra */
#define METRICS_BUCKETS_MS 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, \
	10000, 30000, 60000, 300000, 600000, 1800000, 3600000
#define METRICS_RENDER_MIN 8192         /* smallest chunk buffer: longest line fits */
#define METRICS_OVERFLOW (-1)           /* handle of a table's overflow series */

enum metrics_err { METRICS_OK = 0, METRICS_ERR_BUFFER };

/* What the proxy knows about a request or connection. NULL strings render
 * as "unknown" (Istio's value for an absent peer identity). */
struct metrics_labels {
	const char *source_principal;       /* "spiffe://td/ns/x/sa/y" */
	const char *source_namespace;       /* "x" */
	const char *destination_service;    /* service name */
	const char *destination_namespace;
	bool mutual_tls;                    /* connection_security_policy */
	uint16_t response_code;             /* requests only */
};

struct metrics_key {
	char source_principal[METRICS_PRINCIPAL_MAX];
	char source_namespace[METRICS_NAME_MAX];
	char destination_service[METRICS_NAME_MAX];
	char destination_namespace[METRICS_NAME_MAX];
	uint16_t response_code;
	bool mutual_tls;
};

struct metrics_request_series {
	struct metrics_key key;
	uint64_t requests;
	uint64_t buckets[METRICS_NBUCKETS + 1];     /* non-cumulative; last = +Inf */
	uint64_t duration_sum_us;
};

struct metrics_tcp_series {
	struct metrics_key key;
	uint64_t opened, closed, sent_bytes, received_bytes;
};

struct metrics_named_counter { char name[METRICS_POLICY_MAX]; uint64_t value; };

struct metrics_decision_counter {
	char policy[METRICS_POLICY_MAX];    /* "ns/name", or "none" */
	bool deny;
	bool dry_run;
	uint64_t value;
};

struct metrics {
	struct metrics_request_series req[METRICS_REQUEST_SERIES];
	int nreq;
	struct metrics_request_series req_overflow;
	uint16_t req_slots[2 * METRICS_REQUEST_SERIES];    /* hash: index + 1, 0 empty */
	struct metrics_tcp_series tcp[METRICS_TCP_SERIES];
	int ntcp;
	struct metrics_tcp_series tcp_overflow;
	uint16_t tcp_slots[2 * METRICS_TCP_SERIES];
	struct metrics_named_counter refusals[METRICS_REASONS + 1];    /* last: overflow */
	int nrefusals;
	struct metrics_named_counter tls[METRICS_TLS_RESULTS + 1];
	int ntls;
	struct metrics_decision_counter decisions[METRICS_DECISIONS + 1];
	int ndecisions;
	/* overflow events per table: requests, tcp, refusals, tls, decisions */
	uint64_t overflow[5];
};

void metrics_init(struct metrics *m);

/* Data path: never allocate, never fail (full tables use the overflow series). */
int metrics_request_series(struct metrics *m, const struct metrics_labels *l);
void metrics_request_observe(struct metrics *m, int series, uint64_t duration_us);
void metrics_request(struct metrics *m, const struct metrics_labels *l, uint64_t duration_us);

int metrics_tcp_series(struct metrics *m, const struct metrics_labels *l);  /* response_code ignored */
void metrics_tcp_opened(struct metrics *m, int series);
void metrics_tcp_closed(struct metrics *m, int series);
void metrics_tcp_bytes(struct metrics *m, int series, uint64_t sent, uint64_t received);

void metrics_refusal(struct metrics *m, const char *reason);
void metrics_tls_handshake(struct metrics *m, const char *result);
/* One decision: policy = "ns/name" (NULL/"" = "none"), deny or allow, dry_run. */
void metrics_policy_count(struct metrics *m, const char *policy_namespace, const char *policy_name,
			  bool deny, bool dry_run);
/* From policy_evaluate()'s output: the enforced decision, plus the dry-run
 * one when a dry-run policy matched. */
void metrics_policy_decision(struct metrics *m, const struct policy_decision *d);

/* Render-time sources (may be NULL / have NULL functions). */
struct metrics_pool_sample { const char *name; uint64_t in_use, size; };
struct metrics_port_sample {
	const char *name;
	uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped;
	bool link_up;
	/* TCP segmentation offload: frames handed to it (their packets are in
	 * tx_packets), and frames it refused (sent as separate segments) */
	uint64_t tx_offload_frames, tx_offload_refused;
	uint64_t rx_offload_frames;     /* frames over the MTU's, taken whole */
};
struct metrics_sources {
	/* fill out[0..max-1], return the count */
	int (*pools)(void *arg, struct metrics_pool_sample *out, int max);
	int (*ports)(void *arg, struct metrics_port_sample *out, int max);
	void *arg;
};

struct metrics_render_state { int section, item, sub; };

void metrics_render_begin(struct metrics_render_state *st);
/* Writes the next whole lines into buf; returns bytes written, 0 when the
 * exposition is complete (or len < METRICS_RENDER_MIN). */
size_t metrics_render_chunk(const struct metrics *m, const struct metrics_sources *src,
			    struct metrics_render_state *st, char *buf, size_t len);
/* Everything into one buffer; NUL-terminated when it fits. */
enum metrics_err metrics_render(const struct metrics *m, const struct metrics_sources *src,
				char *buf, size_t len, size_t *written);

#endif
