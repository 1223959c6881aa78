/* Bounded text writer: see textw.h. */
#include "appliance/textw.h"

#include <stdarg.h>
#include <stdio.h>

void tw_fmt(struct textw *w, const char *fmt, ...)
{
	if (w->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(w->buf + w->pos, w->size - w->pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->size - w->pos)
		w->full = true;
	else
		w->pos += (size_t)n;
}

void tw_u64_width(struct textw *w, uint64_t v, unsigned width)
{
	char d[24];
	unsigned n = 0;
	do {
		d[sizeof d - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof d);
	while (n < width && n < sizeof d)
		d[sizeof d - 1 - n++] = '0';
	tw_bytes(w, d + sizeof d - n, n);
}

size_t utf8_valid_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80) return 1;
	size_t len;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
	else return 0;
	if (len > n) return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	return len;
}
