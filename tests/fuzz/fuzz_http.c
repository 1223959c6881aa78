/* Fuzz target for appliance/http.c.
 *
 * For each input it feeds the bytes to the request parser and to the
 * response parser, once all at once and several times split at
 * pseudo-random points (seeded from the input) and one byte at a time, and
 * checks: consumed never exceeds the input, body spans lie within the
 * consumed bytes, NEED_MORE means everything was consumed, no loop without
 * progress, and every split gives exactly the same transcript (events, head
 * fields, body bytes, total consumed). Any failure aborts.
 *
 * libFuzzer:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBFUZZER -I. \
 *     -include appliance/banned.h tests/fuzz/fuzz_http.c appliance/http.c \
 *     -lhttp_parser -o build/fuzz_http
 *   build/fuzz_http tests/data/http/            (corpus dir; -max_total_time=60)
 * Replay driver (gcc, no libFuzzer): same sources without -DLIBFUZZER and
 * -fsanitize=fuzzer; run `fuzz_http FILE...` (tests/unit/test_http.c replays
 * tests/data/http/ through this same function). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/test_http_transcript.h"

static struct transcript fuzz_ref, fuzz_alt;

static void fuzz_fail(const char *what, const struct transcript *a, const struct transcript *b)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	if (a)
		fprintf(stderr, "--- reference (%zu bytes)\n%.*s\n", a->len, (int)(a->len > 4000 ? 4000 : a->len), a->text);
	if (b)
		fprintf(stderr, "--- split (%zu bytes)\n%.*s\n", b->len, (int)(b->len > 4000 ? 4000 : b->len), b->text);
	abort();
}

static void fuzz_compare(void)
{
	if (fuzz_ref.violation[0])
		fuzz_fail(fuzz_ref.violation, &fuzz_ref, NULL);
	if (fuzz_alt.violation[0])
		fuzz_fail(fuzz_alt.violation, &fuzz_alt, NULL);
	if (fuzz_ref.truncated || fuzz_alt.truncated)
		return;                     /* too big to compare; invariants held */
	if (fuzz_ref.len != fuzz_alt.len || memcmp(fuzz_ref.text, fuzz_alt.text, fuzz_ref.len) != 0)
		fuzz_fail("transcripts differ between splits", &fuzz_ref, &fuzz_alt);
}

/* Returns 0 (libFuzzer convention); aborts on a finding. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 65536)
		return 0;
	/* byte 0: which methods the response side expects and whether it
	 * sees EOF; byte 1: head limit for the request side */
	uint8_t ctl = data[0];
	size_t max_head = HTTP_MIN_HEAD + (size_t)data[1] * 64;
	const char *in = (const char *)data + 2;
	size_t len = size - 2;
	unsigned seed = 2166136261u;
	for (size_t i = 0; i < len && i < 64; i++)
		seed = (seed ^ data[2 + i]) * 16777619u;
	static const char *const method_sets[8] = { "G", "H", "GG", "HG", "GHGP", "P", "GGGGGGGG", "" };
	const char *methods = method_sets[ctl & 7];
	bool eof = (ctl & 8) != 0;

	drive_request(in, len, max_head, 0, 0, &fuzz_ref);
	drive_request(in, len, max_head, 1, 0, &fuzz_alt);
	fuzz_compare();
	for (unsigned k = 0; k < 3; k++) {
		drive_request(in, len, max_head, 2 + (k * 37 + ctl) % 200, seed + k, &fuzz_alt);
		fuzz_compare();
	}

	drive_response(in, len, methods, eof, 0, 0, &fuzz_ref);
	drive_response(in, len, methods, eof, 1, 0, &fuzz_alt);
	fuzz_compare();
	for (unsigned k = 0; k < 3; k++) {
		drive_response(in, len, methods, eof, 2 + (k * 53 + ctl) % 200, seed + 7 * k, &fuzz_alt);
		fuzz_compare();
	}
	return 0;
}

/* Reads one file and runs it; returns 0 or -1 when unreadable. */
static int fuzz_http_replay_file(const char *path)
{
	static uint8_t buf[65536 + 2];
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fuzz_http: %s: cannot open\n", path);
		return -1;
	}
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

#if !defined(LIBFUZZER) && !defined(FUZZ_HTTP_NO_MAIN)
int main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++)
		if (fuzz_http_replay_file(argv[i]) != 0)
			failed = 1;
	printf("fuzz_http: replayed %d file(s)\n", argc - 1);
	return failed;
}
#endif
