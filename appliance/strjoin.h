/* Bounded string joining for per-request paths, where snprintf("%s...")
 * showed in profiles (vfprintf per field copied).
 *
 *   str_join(dst, sizeof dst, "spiffe://", principal, NULL);
 *
 * Copies the parts (NULL ones skipped) into dst, truncating to cap - 1 bytes,
 * always NUL-terminated (cap > 0). Returns the length the whole join has, as
 * snprintf does, so `>= cap` means it was truncated. */
#ifndef MESHGATE_STRJOIN_H
#define MESHGATE_STRJOIN_H
#include <stddef.h>
#include <string.h>

static inline size_t str_join(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
	const char *parts[3] = {a, b, c};
	size_t total = 0;
	for (int i = 0; i < 3; i++) {
		if (!parts[i])
			continue;
		size_t n = strlen(parts[i]);
		if (total < cap) {
			size_t room = cap - 1 - total;
			memcpy(dst + total, parts[i], n < room ? n : room);
		}
		total += n;
	}
	if (cap)
		dst[total < cap ? total : cap - 1] = 0;
	return total;
}
#endif
