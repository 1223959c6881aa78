/* A small deterministic mutation fuzzer for the suite (no clang/libFuzzer on
 * the build machine): links with any LLVMFuzzerTestOneInput target, built
 * with -fsanitize=address,undefined, so `make test` runs every parser's
 * fuzzer for a bounded number of inputs on every run.
 *
 *   fuzz_X [-n ITERATIONS] [-s SEED] CORPUS_DIR_OR_FILE...
 *
 * Each iteration takes a seed input (or two, spliced) and applies 1-8
 * mutations: bit flips, byte sets to interesting values, insertions and
 * deletions of runs, duplication of a run, truncation. A crash or an abort()
 * in the target fails the run (sanitizers print the input's iteration and
 * the driver saves it to fuzz-crash.bin first, via a signal-safe copy). For
 * coverage-guided fuzzing use the same targets with libFuzzer (see each). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 512
#define MAX_INPUT (256 * 1024)

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static int nseeds;
static uint8_t cur[MAX_INPUT];
static size_t cur_len;
static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic for a given -s */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void add_file(const char *path)
{
	if (nseeds == MAX_SEEDS)
		return;
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	uint8_t *buf = malloc(MAX_INPUT);
	size_t n = buf ? fread(buf, 1, MAX_INPUT / 2, f) : 0;
	fclose(f);
	if (!buf)
		return;
	seeds[nseeds] = buf;
	seed_len[nseeds++] = n;
}

static void add_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		add_file(path);
		return;
	}
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", path, e->d_name);
		add_path(p);
	}
	closedir(d);
}

static void mutate_once(void)
{
	static const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '\n', '\r', ':', '*', '/',
		'[', ']', '{', '}', '"', '\'', '-', ' ', '\t', '&', '!', '%', '?', '#', 0x30, 0x16};
	size_t room = MAX_INPUT - cur_len;
	switch (below(7)) {
	case 0:     /* bit flip */
		if (cur_len)
			cur[below(cur_len)] ^= (uint8_t)(1u << below(8));
		break;
	case 1:     /* interesting byte */
		if (cur_len)
			cur[below(cur_len)] = interesting[below(sizeof interesting)];
		break;
	case 2: {   /* insert a few interesting bytes */
		size_t n = 1 + below(4), at = below(cur_len + 1);
		if (n > room)
			break;
		memmove(cur + at + n, cur + at, cur_len - at);
		for (size_t i = 0; i < n; i++)
			cur[at + i] = interesting[below(sizeof interesting)];
		cur_len += n;
		break;
	}
	case 3: {   /* delete a run */
		if (!cur_len)
			break;
		size_t at = below(cur_len), n = 1 + below(cur_len - at < 16 ? cur_len - at : 16);
		memmove(cur + at, cur + at + n, cur_len - at - n);
		cur_len -= n;
		break;
	}
	case 4: {   /* duplicate a run (nesting, repetition) */
		if (!cur_len)
			break;
		size_t at = below(cur_len), n = 1 + below(cur_len - at < 64 ? cur_len - at : 64);
		if (n > room)
			break;
		memmove(cur + at + n, cur + at, cur_len - at);
		cur_len += n;
		break;
	}
	case 5:     /* truncate */
		cur_len = below(cur_len + 1);
		break;
	case 6: {   /* splice in a run from another seed */
		int j = (int)below((size_t)nseeds);
		if (!seed_len[j])
			break;
		size_t from = below(seed_len[j]), n = 1 + below(seed_len[j] - from);
		size_t at = below(cur_len + 1);
		if (n > room)
			n = room;
		memmove(cur + at + n, cur + at, cur_len - at);
		memcpy(cur + at, seeds[j] + from, n);
		cur_len += n;
		break;
	}
	}
}

static long iteration;

static void on_crash(int sig)
{
	int fd = open("fuzz-crash.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, cur, cur_len);
		(void)w;
		close(fd);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	long n = 10000;
	uint64_t seed = 1;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atol(argv[++i]);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
	}
	for (; i < argc; i++)
		add_path(argv[i]);
	if (!nseeds) {
		fprintf(stderr, "usage: %s [-n N] [-s SEED] CORPUS...  (no seed inputs found)\n", argv[0]);
		return 2;
	}
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	signal(SIGSEGV, on_crash);
	signal(SIGABRT, on_crash);
	signal(SIGBUS, on_crash);
	/* every seed as is, then mutants */
	for (int s = 0; s < nseeds; s++) {
		memcpy(cur, seeds[s], seed_len[s]);
		cur_len = seed_len[s];
		LLVMFuzzerTestOneInput(cur, cur_len);
	}
	for (iteration = 0; iteration < n; iteration++) {
		int s = (int)below((size_t)nseeds);
		memcpy(cur, seeds[s], seed_len[s]);
		cur_len = seed_len[s];
		int m = 1 + (int)below(8);
		for (int k = 0; k < m; k++)
			mutate_once();
		LLVMFuzzerTestOneInput(cur, cur_len);
	}
	printf("%s: %d seeds, %ld mutated inputs, no crash\n", argv[0], nseeds, n);
	for (int s = 0; s < nseeds; s++)
		free(seeds[s]);
	return 0;
}
