/* Access-log JSON lines (checked by Python's json module as an independent
 * parser) and RFC 5424 syslog framing. */
#include <arpa/inet.h>
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

#include "appliance/accesslog.h"
#include "appliance/policy.h"
#include "appliance/strjoin.h"

static char line[ACCESSLOG_LINE_MAX];

/* Parses the line with python3 (strict UTF-8, one line, a JSON object) and
 * returns json.dumps(obj[key]) with ASCII escapes in out. */
static void python_field(const char *text, size_t len, const char *key, char *out, size_t outlen)
{
	char path[] = "/tmp/meshgate-accesslog-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys\n"
		 "b=open(sys.argv[1],\"rb\").read()\n"
		 "assert b.endswith(b\"\\n\") and b.count(b\"\\n\")==1, \"not one line\"\n"
		 "d=json.loads(b.decode(\"utf-8\",\"strict\"))\n"
		 "assert isinstance(d,dict)\n"
		 "print(json.dumps(d[sys.argv[2]]))' %s %s 2>&1",
		 path, key);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	unlink(path);
	if (n && out[n - 1] == '\n')
		out[n - 1] = '\0';
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("python3 rejected the line: %s\nline: %s", out, text);
}

static struct policy_decision allow_with_dry_run(void)
{
	struct policy_decision d = { .action = POLICY_ALLOW, .dry_run_matched = true, .dry_run_action = POLICY_DENY };
	snprintf(d.policy_namespace, sizeof(d.policy_namespace), "prod");
	snprintf(d.policy_name, sizeof(d.policy_name), "allow-web");
	snprintf(d.dry_run_namespace, sizeof(d.dry_run_namespace), "prod");
	snprintf(d.dry_run_name, sizeof(d.dry_run_name), "deny-all");
	return d;
}

static void test_request_line(void **state)
{
	struct policy_decision d = allow_with_dry_run();
	struct accesslog_entry e = {
		.kind = ACCESSLOG_REQUEST, .time_unix_us = 1700000000123456ull,
		.peer_ip = htonl(0xc6120001), .peer_port = 40000, .listener = "web",
		.spiffe_id = "spiffe://cluster.local/ns/frontend/sa/web", .service = "api",
		.service_namespace = "prod", .method = "GET", .path = "/v1/items?id=7", .path_len = 14,
		.response_code = 200, .decision = &d, .bytes_received = 512, .bytes_sent = 1024,
		.duration_us = 1234, .tls_version = "TLSv1.2", .tls_suite = "ECDHE-ECDSA-AES128-GCM-SHA256",
	};
	size_t n = accesslog_format(&e, line, sizeof(line));
	assert_string_equal(line,
		"{\"time\":\"2023-11-14T22:13:20.123456Z\",\"kind\":\"request\",\"peer\":\"198.18.0.1:40000\","
		"\"listener\":\"web\",\"spiffe_id\":\"spiffe://cluster.local/ns/frontend/sa/web\","
		"\"service\":\"api\",\"namespace\":\"prod\",\"method\":\"GET\",\"path\":\"/v1/items?id=7\","
		"\"path_truncated\":false,\"response_code\":200,\"decision\":\"allow\",\"policy\":\"prod/allow-web\","
		"\"dry_run\":{\"action\":\"deny\",\"policy\":\"prod/deny-all\"},\"refusal\":null,"
		"\"bytes_received\":512,\"bytes_sent\":1024,\"duration_ms\":1.234,"
		"\"tls_version\":\"TLSv1.2\",\"tls_suite\":\"ECDHE-ECDSA-AES128-GCM-SHA256\"}\n");
	assert_int_equal(n, strlen(line));
	char out[256];
	python_field(line, n, "dry_run", out, sizeof(out));
	assert_string_equal(out, "{\"action\": \"deny\", \"policy\": \"prod/deny-all\"}");
}

static void test_connection_line_nulls(void **state)
{
	struct accesslog_entry e = {
		.kind = ACCESSLOG_CONNECTION, .time_unix_us = 0, .peer_ip = htonl(0x7f000001), .peer_port = 1,
		.refusal = "pool_exhausted", .duration_us = 5,
	};
	size_t n = accesslog_format(&e, line, sizeof(line));
	assert_string_equal(line,
		"{\"time\":\"1970-01-01T00:00:00.000000Z\",\"kind\":\"connection\",\"peer\":\"127.0.0.1:1\","
		"\"listener\":null,\"spiffe_id\":null,\"service\":null,\"namespace\":null,\"method\":null,"
		"\"path\":null,\"path_truncated\":false,\"response_code\":null,\"decision\":null,\"policy\":null,"
		"\"dry_run\":null,\"refusal\":\"pool_exhausted\",\"bytes_received\":0,\"bytes_sent\":0,"
		"\"duration_ms\":0.005,\"tls_version\":null,\"tls_suite\":null}\n");
	char out[64];
	python_field(line, n, "refusal", out, sizeof(out));
	assert_string_equal(out, "\"pool_exhausted\"");
	/* a deny with no deciding policy */
	struct policy_decision d = { .action = POLICY_DENY };
	e.decision = &d;
	n = accesslog_format(&e, line, sizeof(line));
	assert_non_null(strstr(line, "\"decision\":\"deny\",\"policy\":null,\"dry_run\":null"));
	python_field(line, n, "decision", out, sizeof(out));
	assert_string_equal(out, "\"deny\"");
}

static void test_hostile_strings(void **state)
{
	/* every control byte (NUL included: the path has a length), quotes,
	 * backslashes, DEL, U+2028, valid multi-byte, invalid UTF-8 */
	char path[64];
	size_t pl = 0;
	for (int c = 0; c < 0x20; c++)
		path[pl++] = (char)c;
	const char tail[] = "\"\\\x7f\xe2\x80\xa8\xc3\xa9\x80\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82";
	memcpy(path + pl, tail, sizeof(tail) - 1);
	pl += sizeof(tail) - 1;
	struct accesslog_entry e = {
		.kind = ACCESSLOG_REQUEST, .path = path, .path_len = pl,
		.spiffe_id = "spiffe://td/ns/\"},\"decision\":\"allow\"/sa/x\n{", .method = "G\xff" "ET",
	};
	size_t n = accesslog_format(&e, line, sizeof(line));
	assert_true(n > 0);
	/* the line itself: one line, only the final newline */
	assert_int_equal(strchr(line, '\n') - line, (long)n - 1);
	for (size_t i = 0; i + 1 < n; i++)
		assert_true((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
	const char *want_path =
		"\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
		"\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
		"\\u001d\\u001e\\u001f\\\"\\\\\\u007f\\u2028\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
		"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"";
	assert_non_null(strstr(line, want_path));
	char out[1024];
	/* Python decodes it to exactly the bytes we meant (ASCII-escaped by dumps) */
	python_field(line, n, "path", out, sizeof(out));
	assert_string_equal(out,
		"\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
		"\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
		"\\u001d\\u001e\\u001f\\\"\\\\\\u007f\\u2028\\u00e9\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
		"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
	python_field(line, n, "spiffe_id", out, sizeof(out));
	assert_string_equal(out, "\"spiffe://td/ns/\\\"},\\\"decision\\\":\\\"allow\\\"/sa/x\\n{\"");
	python_field(line, n, "decision", out, sizeof(out));
	assert_string_equal(out, "null");   /* the injected key did not become one */
	python_field(line, n, "method", out, sizeof(out));
	assert_string_equal(out, "\"G\\ufffdET\"");
}

static void test_worst_case_fits_and_caps(void **state)
{
	static char big[8192];
	memset(big, 0x01, sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct policy_decision d = { .action = POLICY_DENY, .dry_run_matched = true };
	memset(d.policy_namespace, 0x01, sizeof(d.policy_namespace) - 1);
	memset(d.policy_name, 0x01, sizeof(d.policy_name) - 1);
	memset(d.dry_run_namespace, 0x01, sizeof(d.dry_run_namespace) - 1);
	memset(d.dry_run_name, 0x01, sizeof(d.dry_run_name) - 1);
	struct accesslog_entry e = {
		.kind = ACCESSLOG_REQUEST, .time_unix_us = UINT64_MAX / 2, .peer_ip = 0xffffffff, .peer_port = 65535,
		.listener = big, .spiffe_id = big, .service = big, .service_namespace = big, .method = big,
		.path = big, .path_len = sizeof(big) - 1, .response_code = 599, .decision = &d, .refusal = big,
		.bytes_received = UINT64_MAX, .bytes_sent = UINT64_MAX, .duration_us = UINT64_MAX,
		.tls_version = big, .tls_suite = big,
	};
	size_t n = accesslog_format(&e, line, sizeof(line));
	assert_true(n > 10000);
	assert_true(n < ACCESSLOG_LINE_MAX);
	assert_non_null(strstr(line, "\"path_truncated\":true"));
	char out[16];
	python_field(line, n, "path_truncated", out, sizeof(out));
	assert_string_equal(out, "true");
	/* too small: nothing half-written */
	assert_int_equal(accesslog_format(&e, line, 1000), 0);
	assert_string_equal(line, "");
	assert_int_equal(accesslog_json_string("a\"b", 3, out, 5), 0);
	assert_int_equal(accesslog_json_string("a\"b", 3, out, 6), 6);
	assert_memory_equal(out, "\"a\\\"b\"", 6);
}

static void test_syslog_frame(void **state)
{
	struct accesslog_syslog h = { 16, 6, "gate-1", "meshgate", "42", "access" };
	char dgram[ACCESSLOG_SYSLOG_MAX];
	const char *msg = "{\"kind\":\"request\"}\n";
	size_t n = accesslog_syslog_frame(&h, 1700000000123456ull, msg, strlen(msg), dgram, sizeof(dgram));
	const char *want = "<134>1 2023-11-14T22:13:20.123456Z gate-1 meshgate 42 access - {\"kind\":\"request\"}";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(dgram, want, n);
	/* nil values, sanitised and capped header fields */
	char app[100];
	memset(app, 'a', sizeof(app) - 1);
	app[sizeof(app) - 1] = '\0';
	struct accesslog_syslog h2 = { 23, 0, "my host\x01\xc3\xa9", app, NULL, "" };
	n = accesslog_syslog_frame(&h2, 0, "x", 1, dgram, sizeof(dgram));
	char want2[256];
	snprintf(want2, sizeof(want2), "<184>1 1970-01-01T00:00:00.000000Z my_host___ %.48s - - - x", app);
	assert_int_equal(n, strlen(want2));
	assert_memory_equal(dgram, want2, n);
	/* an empty message has no MSG part */
	n = accesslog_syslog_frame(&h, 0, "\n", 1, dgram, sizeof(dgram));
	assert_memory_equal(dgram, "<134>1 1970-01-01T00:00:00.000000Z gate-1 meshgate 42 access -", n);
	/* out of range and too small */
	struct accesslog_syslog bad = { 24, 6, NULL, NULL, NULL, NULL };
	assert_int_equal(accesslog_syslog_frame(&bad, 0, "x", 1, dgram, sizeof(dgram)), 0);
	bad = (struct accesslog_syslog){ 1, 8, NULL, NULL, NULL, NULL };
	assert_int_equal(accesslog_syslog_frame(&bad, 0, "x", 1, dgram, sizeof(dgram)), 0);
	assert_int_equal(accesslog_syslog_frame(&h, 0, msg, strlen(msg), dgram, 40), 0);
	/* a whole access-log line fits one datagram */
	struct accesslog_entry e = { .kind = ACCESSLOG_CONNECTION, .time_unix_us = 1 };
	size_t ln = accesslog_format(&e, line, sizeof(line));
	n = accesslog_syslog_frame(&h, 1, line, ln, dgram, sizeof(dgram));
	assert_true(n > ln);
	assert_memory_equal(dgram + n - (ln - 1), line, ln - 1);
}

static void test_timestamp(void **state)
{
	char ts[32];
	assert_int_equal(accesslog_timestamp(951782400000001ull, ts, sizeof(ts)), 27);  /* leap day 2000 */
	assert_string_equal(ts, "2000-02-29T00:00:00.000001Z");
	assert_int_equal(accesslog_timestamp(0, ts, 27), 0);
	/* the date part is cached per second: moving between seconds, and back,
	 * gives each its own date */
	assert_int_equal(accesslog_timestamp(951782400999999ull, ts, sizeof(ts)), 27);
	assert_string_equal(ts, "2000-02-29T00:00:00.999999Z");
	assert_int_equal(accesslog_timestamp(951868799000000ull, ts, sizeof(ts)), 27);
	assert_string_equal(ts, "2000-02-29T23:59:59.000000Z");
	assert_int_equal(accesslog_timestamp(951868800000010ull, ts, sizeof(ts)), 27);
	assert_string_equal(ts, "2000-03-01T00:00:00.000010Z");
	assert_int_equal(accesslog_timestamp(951782400000001ull, ts, sizeof(ts)), 27);
	assert_string_equal(ts, "2000-02-29T00:00:00.000001Z");
}

/* str_join (appliance/strjoin.h): like snprintf("%s%s%s") */
static void test_str_join(void **state)
{
	char b[8];
	assert_int_equal(str_join(b, sizeof b, "spiffe", "://", NULL), 9);   /* truncated */
	assert_string_equal(b, "spiffe:");
	assert_int_equal(str_join(b, sizeof b, NULL, "ab", "c"), 3);
	assert_string_equal(b, "abc");
	assert_int_equal(str_join(b, sizeof b, "", NULL, ""), 0);
	assert_string_equal(b, "");
	assert_int_equal(str_join(b, 1, "xyz", NULL, NULL), 3);
	assert_string_equal(b, "");
	memset(b, 'q', sizeof b);
	assert_int_equal(str_join(b, 0, "xyz", NULL, NULL), 3);        /* writes nothing */
	assert_int_equal(b[0], 'q');
	assert_int_equal(str_join(b, sizeof b, "1234567", "8", NULL), 8);
	assert_string_equal(b, "1234567");
}

/* numbers are written without printf: edges of the hand-made decimal */
static void test_numbers(void **state)
{
	struct accesslog_entry e = {
		.kind = ACCESSLOG_CONNECTION, .time_unix_us = 1700000000000000ull, .peer_ip = htonl(0xffffffff),
		.peer_port = 65535, .response_code = -1, .bytes_received = UINT64_MAX, .bytes_sent = 10,
		.duration_us = 60000999,
	};
	accesslog_format(&e, line, sizeof(line));
	assert_non_null(strstr(line, "\"peer\":\"255.255.255.255:65535\""));
	assert_non_null(strstr(line, "\"response_code\":-1,"));
	assert_non_null(strstr(line, "\"bytes_received\":18446744073709551615,\"bytes_sent\":10,"
				     "\"duration_ms\":60000.999,"));
	e.peer_ip = 0;
	e.peer_port = 0;
	e.duration_us = 1000;
	e.response_code = 503;
	accesslog_format(&e, line, sizeof(line));
	assert_non_null(strstr(line, "\"peer\":\"0.0.0.0:0\""));
	assert_non_null(strstr(line, "\"response_code\":503,"));
	assert_non_null(strstr(line, "\"duration_ms\":1.000,"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_connection_line_nulls),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_worst_case_fits_and_caps),
		cmocka_unit_test(test_syslog_frame),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_str_join),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
