/* Fuzz target for egress_sni_peek and egress_http_host (appliance/egress.c).
 *
 * For each input: the result on the whole input is a valid enum, FOUND gives
 * a non-empty valid lower-case host name and any other result an empty one;
 * and every prefix of the input (as if it arrived in segments) gives either
 * NEED_MORE or exactly the whole input's result and name, so what is decided
 * never depends on how the bytes were split. Any failure aborts.
 *
 * libFuzzer:
 *   make fuzz-sni FUZZ_SECONDS=60     (corpus tests/data/sni/)
 * Replay driver (gcc): make build/fuzz/fuzz_sni; tests/unit/test_egress.c
 * replays tests/data/sni/ through this same function. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "appliance/egress.h"

static void fuzz_sni_fail(const char *what, size_t at)
{
	fprintf(stderr, "fuzz_sni: %s (prefix %zu)\n", what, at);
	abort();
}

typedef enum egress_sni (*peek_fn)(const uint8_t *buf, size_t len, char out[EGRESS_MAX_HOST]);

static void fuzz_one(peek_fn peek, const uint8_t *data, size_t size)
{
	char full[EGRESS_MAX_HOST], part[EGRESS_MAX_HOST], check[EGRESS_MAX_HOST];
	enum egress_sni r = peek(data, size, full);
	if ((unsigned)r > EGRESS_SNI_TOO_BIG)
		fuzz_sni_fail("result out of range", size);
	if (r == EGRESS_SNI_FOUND) {
		memcpy(check, full, sizeof check);
		if (!full[0] || strlen(full) > 253 || !egress_host_valid(check, false) || strcmp(check, full))
			fuzz_sni_fail("FOUND with an invalid or non-canonical name", size);
	} else if (full[0]) {
		fuzz_sni_fail("a name without FOUND", size);
	}
	size_t step = size > 2048 ? size / 512 : 1;
	for (size_t k = 0; k < size; k += step) {
		enum egress_sni p = peek(data, k, part);
		if (p == EGRESS_SNI_NEED_MORE)
			continue;
		if (p != r || strcmp(part, full))
			fuzz_sni_fail("a prefix decided differently from the whole", k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > EGRESS_SNI_MAX_HELLO + 4096)
		return 0;
	fuzz_one(egress_sni_peek, data, size);
	fuzz_one(egress_http_host, data, size);
	return 0;
}

static int fuzz_sni_replay_file(const char *path)
{
	static uint8_t buf[EGRESS_SNI_MAX_HELLO + 4096];
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fuzz_sni: %s: cannot open\n", path);
		return -1;
	}
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

#if !defined(LIBFUZZER) && !defined(FUZZ_SNI_NO_MAIN)
int main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++)
		if (fuzz_sni_replay_file(argv[i]) != 0)
			failed = 1;
	printf("fuzz_sni: replayed %d file(s)\n", argc - 1);
	return failed;
}
#endif
