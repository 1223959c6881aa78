/* A bounded text writer for one-line formats (access log, Prometheus
 * exposition): appends into a caller's buffer and remembers overflow
 * instead of writing past it.
 *
 *   struct textw w = { buf, sizeof buf, 0, false };
 *   tw_str(&w, "requests ");
 *   tw_u64(&w, n);
 *   if (w.full) ...   // did not fit; w.pos bytes are valid
 */
#ifndef MESHGATE_TEXTW_H
#define MESHGATE_TEXTW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct textw { char *buf; size_t size, pos; bool full; };

static inline void tw_bytes(struct textw *w, const char *s, size_t n)
{
	if (w->full || n > w->size - w->pos) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->pos, s, n);
	w->pos += n;
}

static inline void tw_str(struct textw *w, const char *s) { tw_bytes(w, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
void tw_fmt(struct textw *w, const char *fmt, ...);

/* Decimal without printf, zero-padded to `width` digits. */
void tw_u64_width(struct textw *w, uint64_t v, unsigned width);
static inline void tw_u64(struct textw *w, uint64_t v) { tw_u64_width(w, v, 1); }

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
size_t utf8_valid_len(const unsigned char *s, size_t n);

#endif
