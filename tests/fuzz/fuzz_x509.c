/* Fuzzer for tls/x509.c (DER walker + SPIFFE parser).
 *
 * libFuzzer: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_x509.c tls/x509.c
 * Replay:    gcc -DFUZZ_REPLAY -fsanitize=address -I. tests/fuzz/fuzz_x509.c tls/x509.c -o fx
 *            ./fx DIR_OR_FILE...   (e.g. the DER of tests/pki certificates)
 * Invariants checked: pointers returned stay inside the input; the SPIFFE
 * parser's output is NUL-terminated and no longer than its input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_x509_info info;
	static struct tls_spiffe_id id;

	if (tls_x509_parse(data, size, &info) == TLS_X509_OK) {
		if (info.uri != NULL &&
		    (info.uri < data || info.uri + info.uri_len > data + size))
			abort();
		if (info.uri != NULL)
			(void)tls_spiffe_parse((const char *)info.uri, info.uri_len, &id);
	}
	if (tls_spiffe_parse((const char *)data, size, &id) == TLS_SPIFFE_OK &&
	    (strlen(id.id) != size || id.id[size] != '\0'))
		abort();
	return 0;
}

#ifdef FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
		fprintf(stderr, "%s: cannot read\n", path);
		if (f)
			fclose(f);
		return 1;
	}
	rewind(f);
	buf = malloc(n ? (size_t)n : 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int i, fails = 0, count = 0;

	for (i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;
		char p[4096];

		if (stat(argv[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
			fails += run_file(argv[i]);
			count++;
			continue;
		}
		d = opendir(argv[i]);
		while (d && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
			fails += run_file(p);
			count++;
		}
		if (d)
			closedir(d);
	}
	printf("%d inputs replayed, %d unreadable\n", count, fails);
	return fails != 0;
}
#endif
