/* Metrics tables and Prometheus rendering, checked by `promtool check
 * metrics` (Debian package prometheus, see tests/console/console.mk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "appliance/metrics.h"
#include "appliance/policy.h"

static struct metrics M;
static char text[8 << 20];
static char chunked[8 << 20];

/* The one lint finding we accept: Istio's mandated metric name. */
static const char accepted_lint[] =
	"istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"";

static void promtool_check(const char *body, size_t len)
{
	char path[] = "/tmp/meshgate-metrics-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, len), (ssize_t)len);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[1024];
	int bad = 0;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, accepted_lint) != 0) {
			print_error("promtool: %s\n", line);
			bad++;
		}
	}
	int st = pclose(p);
	unlink(path);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 127)
		fail_msg("promtool not installed (Debian package prometheus; `make test-deps`)");
	/* 0 = clean; 3 = lint findings only, all of them the accepted one */
	assert_true(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3);
	assert_int_equal(bad, 0);
}

static size_t render(const struct metrics_sources *src)
{
	size_t n;
	assert_int_equal(metrics_render(&M, src, text, sizeof(text), &n), METRICS_OK);
	assert_int_equal(strlen(text), n);
	return n;
}

static struct metrics_labels labels(const char *principal, const char *svc, uint16_t code)
{
	return (struct metrics_labels){ principal, "frontend-ns", svc, "prod", principal != NULL, code };
}

static int setup(void **state)
{
	metrics_init(&M);
	return 0;
}

static void test_request_histogram(void **state)
{
	struct metrics_labels l = labels("spiffe://cluster.local/ns/frontend-ns/sa/web", "api", 200);
	metrics_request(&M, &l, 400);            /* 0.4 ms -> le 0.5 */
	metrics_request(&M, &l, 1000);           /* exactly 1 ms -> le 1 (inclusive) */
	metrics_request(&M, &l, 7000);           /* 7 ms -> le 10 */
	metrics_request(&M, &l, 4000000000ull);  /* > 3600000 ms -> +Inf only */
	l.response_code = 403;
	metrics_request(&M, &l, 2000);
	assert_int_equal(M.nreq, 2);
	render(NULL);
	const char *lab = "{reporter=\"destination\",source_principal=\"spiffe://cluster.local/ns/frontend-ns/sa/web\","
			  "source_workload_namespace=\"frontend-ns\",destination_service_name=\"api\","
			  "destination_service_namespace=\"prod\",response_code=\"200\","
			  "connection_security_policy=\"mutual_tls\"";
	char want[1024];
	snprintf(want, sizeof(want), "istio_requests_total%s} 4\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_bucket%s,le=\"0.5\"} 1\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_bucket%s,le=\"1\"} 2\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_bucket%s,le=\"5\"} 2\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_bucket%s,le=\"10\"} 3\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_bucket%s,le=\"3600000\"} 3\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_bucket%s,le=\"+Inf\"} 4\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_sum%s} 4000008.400\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_request_duration_milliseconds_count%s} 4\n", lab);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "response_code=\"403\",connection_security_policy=\"mutual_tls\"} 1\n"));
	assert_non_null(strstr(text, "# TYPE istio_request_duration_milliseconds histogram\n"));
	assert_non_null(strstr(text, "# TYPE istio_requests_total counter\n"));
	promtool_check(text, strlen(text));
}

static void test_tcp_and_meshgate_series(void **state)
{
	struct metrics_labels l = labels(NULL, "db", 0);   /* plaintext peer */
	int s = metrics_tcp_series(&M, &l);
	assert_int_equal(s, 0);
	l.response_code = 500;      /* ignored for tcp */
	assert_int_equal(metrics_tcp_series(&M, &l), s);
	metrics_tcp_opened(&M, s);
	metrics_tcp_opened(&M, s);
	metrics_tcp_bytes(&M, s, 100, 2000);
	metrics_tcp_bytes(&M, s, 5, 0);
	metrics_tcp_closed(&M, s);
	metrics_refusal(&M, "pool_exhausted");
	metrics_refusal(&M, "bad_cert");
	metrics_refusal(&M, "pool_exhausted");
	metrics_tls_handshake(&M, "ok");
	metrics_tls_handshake(&M, "unknown_ca");
	struct policy_decision d = { .action = POLICY_ALLOW };
	snprintf(d.policy_namespace, sizeof(d.policy_namespace), "prod");
	snprintf(d.policy_name, sizeof(d.policy_name), "allow-web");
	metrics_policy_decision(&M, &d);
	d.dry_run_matched = true;
	d.dry_run_action = POLICY_DENY;
	snprintf(d.dry_run_namespace, sizeof(d.dry_run_namespace), "prod");
	snprintf(d.dry_run_name, sizeof(d.dry_run_name), "deny-all");
	metrics_policy_decision(&M, &d);
	struct policy_decision none = { .action = POLICY_DENY };
	metrics_policy_decision(&M, &none);
	render(NULL);
	const char *lab = "{reporter=\"destination\",source_principal=\"unknown\",source_workload_namespace=\"frontend-ns\","
			  "destination_service_name=\"db\",destination_service_namespace=\"prod\","
			  "connection_security_policy=\"none\"}";
	char want[1024];
	snprintf(want, sizeof(want), "istio_tcp_connections_opened_total%s 2\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_tcp_connections_closed_total%s 1\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_tcp_sent_bytes_total%s 105\n", lab);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "istio_tcp_received_bytes_total%s 2000\n", lab);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "meshgate_refusals_total{reason=\"pool_exhausted\"} 2\n"));
	assert_non_null(strstr(text, "meshgate_refusals_total{reason=\"bad_cert\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_tls_handshakes_total{result=\"unknown_ca\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_policy_decisions_total{policy=\"prod/allow-web\",action=\"allow\",dry_run=\"false\"} 2\n"));
	assert_non_null(strstr(text, "meshgate_policy_decisions_total{policy=\"prod/deny-all\",action=\"deny\",dry_run=\"true\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_policy_decisions_total{policy=\"none\",action=\"deny\",dry_run=\"false\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_metrics_overflow_total{table=\"requests\"} 0\n"));
	promtool_check(text, strlen(text));
}

static int pools_cb(void *arg, struct metrics_pool_sample *out, int max)
{
	assert_true(max >= 2);
	out[0] = (struct metrics_pool_sample){ "connections", 3, 4096 };
	out[1] = (struct metrics_pool_sample){ "mbufs:eth0", 1200, 8191 };
	return 2;
}

static int ports_cb(void *arg, struct metrics_port_sample *out, int max)
{
	out[0] = (struct metrics_port_sample){ "eth0", 10, 20, 1000, 2000, 1, 2, true, 7, 1, 5 };
	out[1] = (struct metrics_port_sample){ "eth1", 0, 0, 0, 0, 0, 0, false, 0, 0, 0 };
	return 2;
}

static void test_pool_and_port_sources(void **state)
{
	struct metrics_sources src = { pools_cb, ports_cb, NULL };
	render(&src);
	assert_non_null(strstr(text, "meshgate_pool_in_use{pool=\"connections\"} 3\n"));
	assert_non_null(strstr(text, "meshgate_pool_size{pool=\"mbufs:eth0\"} 8191\n"));
	assert_non_null(strstr(text, "meshgate_port_rx_packets_total{port=\"eth0\"} 10\n"));
	assert_non_null(strstr(text, "meshgate_port_tx_bytes_total{port=\"eth0\"} 2000\n"));
	assert_non_null(strstr(text, "meshgate_port_rx_dropped_total{port=\"eth0\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_port_tx_dropped_total{port=\"eth0\"} 2\n"));
	assert_non_null(strstr(text, "meshgate_port_link_up{port=\"eth0\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_port_link_up{port=\"eth1\"} 0\n"));
	assert_non_null(strstr(text, "meshgate_port_tx_offload_frames_total{port=\"eth0\"} 7\n"));
	assert_non_null(strstr(text, "meshgate_port_tx_offload_refused_total{port=\"eth0\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_port_tx_offload_frames_total{port=\"eth1\"} 0\n"));
	assert_non_null(strstr(text, "meshgate_port_rx_offload_frames_total{port=\"eth0\"} 5\n"));
	promtool_check(text, strlen(text));
}

static void test_hostile_label_values(void **state)
{
	/* quotes, backslashes, newlines, control bytes, valid UTF-8, invalid
	 * UTF-8 (lone continuation, overlong '/', surrogate, > U+10FFFF, truncated) */
	const char *evil[] = {
		"spiffe://td/ns/\"x\"/sa/\\y",
		"line\nbreak\r\ttab\x01",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		"\x80lone",
		"over\xc0\xaflong",
		"surr\xed\xa0\x80ogate",
		"big\xf4\x90\x80\x80",
		"trunc\xe2\x82",
		"\xff\xfe",
	};
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		struct metrics_labels l = { evil[i], evil[i], evil[i], "prod", true, 200 };
		metrics_request(&M, &l, 1);
		metrics_tcp_opened(&M, metrics_tcp_series(&M, &l));
		metrics_refusal(&M, evil[i]);
	}
	assert_int_equal(M.nreq, 9);
	render(NULL);
	assert_non_null(strstr(text, "source_principal=\"spiffe://td/ns/\\\"x\\\"/sa/\\\\y\""));
	assert_non_null(strstr(text, "source_principal=\"line\\nbreak\r\ttab\x01\""));
	assert_non_null(strstr(text, "source_principal=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
	assert_non_null(strstr(text, "source_principal=\"\xef\xbf\xbdlone\""));
	assert_non_null(strstr(text, "source_principal=\"over\xef\xbf\xbd\xef\xbf\xbdlong\""));
	assert_non_null(strstr(text, "source_principal=\"surr\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdogate\""));
	assert_non_null(strstr(text, "source_principal=\"trunc\xef\xbf\xbd\xef\xbf\xbd\""));
	assert_non_null(strstr(text, "reason=\"\xef\xbf\xbd\xef\xbf\xbd\"} 1"));
	promtool_check(text, strlen(text));
}

static void test_overflow(void **state)
{
	char p[64];
	for (int i = 0; i < METRICS_REQUEST_SERIES; i++) {
		snprintf(p, sizeof(p), "spiffe://td/ns/n/sa/sa%d", i);
		struct metrics_labels l = labels(p, "api", 200);
		assert_int_equal(metrics_request_series(&M, &l), i);
		metrics_request(&M, &l, 10);
	}
	/* existing label sets still find their series */
	struct metrics_labels l = labels("spiffe://td/ns/n/sa/sa7", "api", 200);
	assert_int_equal(metrics_request_series(&M, &l), 7);
	/* a new one goes to the overflow series and is counted */
	l = labels("spiffe://td/ns/n/sa/new", "api", 200);
	assert_int_equal(metrics_request_series(&M, &l), METRICS_OVERFLOW);
	metrics_request(&M, &l, 10);
	assert_int_equal(M.nreq, METRICS_REQUEST_SERIES);
	assert_int_equal(M.overflow[0], 2);
	assert_int_equal(M.req_overflow.requests, 1);
	/* a label longer than its field is not truncated into a wrong series */
	char longp[METRICS_PRINCIPAL_MAX + 10];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	struct metrics_labels lt = labels(longp, "api", 200);
	assert_int_equal(metrics_tcp_series(&M, &lt), METRICS_OVERFLOW);
	metrics_tcp_opened(&M, METRICS_OVERFLOW);
	assert_int_equal(M.overflow[1], 1);
	/* named tables */
	for (int i = 0; i < METRICS_REASONS + 5; i++) {
		snprintf(p, sizeof(p), "reason%d", i);
		metrics_refusal(&M, p);
	}
	assert_int_equal(M.nrefusals, METRICS_REASONS);
	assert_int_equal(M.overflow[2], 5);
	render(NULL);
	assert_non_null(strstr(text, "source_principal=\"overflow\",source_workload_namespace=\"overflow\","
				     "destination_service_name=\"overflow\",destination_service_namespace=\"overflow\","
				     "response_code=\"0\",connection_security_policy=\"none\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_refusals_total{reason=\"overflow\"} 5\n"));
	assert_non_null(strstr(text, "meshgate_metrics_overflow_total{table=\"requests\"} 2\n"));
	assert_non_null(strstr(text, "meshgate_metrics_overflow_total{table=\"tcp\"} 1\n"));
	assert_non_null(strstr(text, "meshgate_metrics_overflow_total{table=\"refusals\"} 5\n"));
	promtool_check(text, strlen(text));
}

static void test_chunked_equals_one_shot(void **state)
{
	char p[64];
	for (int i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "spiffe://td/ns/n/sa/sa%d", i);
		struct metrics_labels l = labels(p, "api", (uint16_t)(200 + i % 3));
		metrics_request(&M, &l, (uint64_t)i * 997);
		metrics_tcp_opened(&M, metrics_tcp_series(&M, &l));
	}
	struct metrics_sources src = { pools_cb, ports_cb, NULL };
	size_t n = render(&src);
	assert_true(n > 10 * METRICS_RENDER_MIN);
	static char buf[METRICS_RENDER_MIN];
	struct metrics_render_state st;
	metrics_render_begin(&st);
	size_t total = 0, k, chunks = 0;
	while ((k = metrics_render_chunk(&M, &src, &st, buf, sizeof(buf))) > 0) {
		assert_true(k <= sizeof(buf));
		assert_int_equal(buf[k - 1], '\n');    /* whole lines only */
		memcpy(chunked + total, buf, k);
		total += k;
		chunks++;
	}
	assert_true(chunks > 10);
	assert_int_equal(total, n);
	assert_memory_equal(chunked, text, n);
	/* too small a chunk buffer is refused, not looped on */
	metrics_render_begin(&st);
	assert_int_equal(metrics_render_chunk(&M, &src, &st, buf, 100), 0);
	/* one-shot into a small buffer reports it */
	size_t w;
	assert_int_equal(metrics_render(&M, &src, buf, sizeof(buf), &w), METRICS_ERR_BUFFER);
	assert_true(w < sizeof(buf));
	assert_int_equal(buf[w], '\0');
	promtool_check(text, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_request_histogram, setup),
		cmocka_unit_test_setup(test_tcp_and_meshgate_series, setup),
		cmocka_unit_test_setup(test_pool_and_port_sources, setup),
		cmocka_unit_test_setup(test_hostile_label_values, setup),
		cmocka_unit_test_setup(test_overflow, setup),
		cmocka_unit_test_setup(test_chunked_equals_one_shot, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
