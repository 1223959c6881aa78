/* Reads a test data file (path relative to tests/, where the unit tests
 * run) into buf, failing the test when it cannot be opened. Returns the
 * bytes read, at most cap. Include after <cmocka.h>. */
#ifndef MESHGATE_TESTS_DATA_FILE_H
#define MESHGATE_TESTS_DATA_FILE_H
#include <stdint.h>
#include <stdio.h>

static inline size_t read_data(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

#endif
