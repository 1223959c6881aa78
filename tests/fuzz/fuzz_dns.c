/* Fuzz target for net/dns.c.
 *
 * For each input: reads a name at every offset of the first 600 bytes
 * (terminates, stays in bounds, text <= 253 characters, next offset inside
 * the message); parses it as a query and, when it parses, checks that the
 * answer we build carries back exactly the same question (round trip
 * through dns_name_read) and fits DNS_ANSWER_MAX; builds answers into every
 * too-small capacity with a guard region behind (never written); runs the
 * responder (lookup: names under "allowed.example") and checks a reply is a
 * response with the query's id. Any failure aborts.
 *
 * libFuzzer:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBFUZZER -I. \
 *     -include appliance/banned.h tests/fuzz/fuzz_dns.c net/dns.c -o build/fuzz_dns
 *   build/fuzz_dns tests/data/dns/               (corpus dir; -max_total_time=60)
 * Replay driver (gcc): `make build/fuzz/fuzz_dns` then `build/fuzz/fuzz_dns FILE...`;
 * tests/unit/test_dns.c replays tests/data/dns/ through this same function. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/dns.h"

#define FUZZ_GUARD 64

static void fuzz_dns_fail(const char *what)
{
	fprintf(stderr, "fuzz_dns: %s\n", what);
	abort();
}

static bool fuzz_lookup(void *arg, const char *name, uint32_t *addr)
{
	size_t n = strlen(name);
	static const char suffix[] = "allowed.example";
	if (n >= sizeof suffix - 1 && !strcmp(name + n - (sizeof suffix - 1), suffix)) {
		*addr = 0x0100f0f0;         /* 240.240.0.1 */
		return true;
	}
	return false;
}

static void check_guard(const uint8_t *buf, size_t from)
{
	for (size_t i = 0; i < FUZZ_GUARD; i++)
		if (buf[from + i] != 0xa5)
			fuzz_dns_fail("wrote past the capacity it was given");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[DNS_ANSWER_MAX + FUZZ_GUARD];
	char name[DNS_MAX_NAME_TEXT + 1];
	if (size > DNS_MAX_MESSAGE)
		return 0;
	for (size_t off = 0; off < size && off < 600; off++) {
		size_t next = 0;
		if (dns_name_read(data, size, off, name, &next) == DNS_OK) {
			if (strlen(name) > 253)
				fuzz_dns_fail("name text longer than 253");
			if (next <= off || next > size)
				fuzz_dns_fail("next offset out of range");
		}
	}

	struct dns_query q;
	enum dns_error e = dns_parse_query(data, size, &q);
	if (e == DNS_OK) {
		memset(out, 0xa5, sizeof out);
		size_t n = dns_build_answer(&q, DNS_RCODE_NOERROR, 0x0100f0f0, 60, out, DNS_ANSWER_MAX);
		if (n == 0 || n > DNS_ANSWER_MAX)
			fuzz_dns_fail("answer does not fit DNS_ANSWER_MAX");
		check_guard(out, DNS_ANSWER_MAX);
		size_t next;
		if (dns_name_read(out, n, DNS_HEADER_LEN, name, &next) != DNS_OK || strcmp(name, q.name))
			fuzz_dns_fail("answer's question differs from the query's");
		if (next + 4 > n || memcmp(out, data, 2) != 0)
			fuzz_dns_fail("answer's question or id malformed");
		for (size_t cap = 0; cap < n; cap += 1 + cap / 8) {
			memset(out, 0xa5, sizeof out);
			if (dns_build_answer(&q, DNS_RCODE_NOERROR, 0x0100f0f0, 60, out, cap) != 0)
				fuzz_dns_fail("answer built into a too-small buffer");
			check_guard(out, cap);
		}
	}

	struct dns_rl_entry table[4 * DNS_RL_WAYS];
	memset(table, 0, sizeof table);
	struct dns_responder r = {
		.lookup = fuzz_lookup,
		.unknown = size & 1 ? DNS_UNKNOWN_REFUSED : DNS_UNKNOWN_NXDOMAIN,
		.allow_any = (size & 2) != 0,
		.ttl = 30,
		.rl = {.table = table, .nsets = 4, .rate_per_s = 10, .burst = 5},
	};
	size_t out_len;
	memset(out, 0xa5, sizeof out);
	enum dns_action a = dns_respond(&r, 0x0a000001, 1000, data, size, out, DNS_ANSWER_MAX, &out_len);
	check_guard(out, DNS_ANSWER_MAX);
	if (a == DNS_ACTION_REPLY) {
		if (out_len < DNS_HEADER_LEN || out_len > DNS_ANSWER_MAX)
			fuzz_dns_fail("reply length out of range");
		if (memcmp(out, data, 2) != 0 || !(out[2] & 0x80))
			fuzz_dns_fail("reply is not a response with the query's id");
	} else if (a == DNS_ACTION_FORWARD) {
		if (e != DNS_OK || !r.allow_any)
			fuzz_dns_fail("forwarded a query that is malformed or in REGISTRY_ONLY mode");
	} else if (e == DNS_OK) {
		fuzz_dns_fail("dropped a well-formed query");
	}
	if (r.counters.received != 1)
		fuzz_dns_fail("received not counted once");
	(void)dns_tcp_message_len(data, size);
	return 0;
}

/* Reads one file and runs it; returns 0 or -1 when unreadable. */
static int fuzz_dns_replay_file(const char *path)
{
	static uint8_t buf[DNS_MAX_MESSAGE];
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fuzz_dns: %s: cannot open\n", path);
		return -1;
	}
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

#if !defined(LIBFUZZER) && !defined(FUZZ_DNS_NO_MAIN)
int main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++)
		if (fuzz_dns_replay_file(argv[i]) != 0)
			failed = 1;
	printf("fuzz_dns: replayed %d file(s)\n", argc - 1);
	return failed;
}
#endif
