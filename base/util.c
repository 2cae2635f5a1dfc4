/* Small helpers: formatted strings, growable buffers, clocks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

char *base_strdupf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* A byte a terminal would act on rather than show: C0 controls (escape
 * sequences start with ESC), DEL, and the UTF-8 spelling of the C1 controls
 * (U+0080..U+009F, e.g. CSI), which some terminals honour too. */
static size_t control_len(const unsigned char *p)
{
	if (p[0] < 0x20 || p[0] == 0x7f)
		return 1;
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	return 0;
}

size_t base_escape(char *out, size_t cap, const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	if (cap == 0)
		return 0;
	while (*p) {
		size_t n = control_len(p);
		if (n == 0) {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)*p++;
			continue;
		}
		if (o + 4 * n >= cap)
			break;
		for (size_t i = 0; i < n; i++, p++)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
	}
	out[o] = 0;
	return o;
}

char *base_escape_dup(const char *in)
{
	size_t cap = 4 * strlen(in) + 1;
	char *out = malloc(cap);
	if (out)
		base_escape(out, cap, in);
	return out;
}

int base_buf_append(BaseBuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0; /* always NUL-terminated, for text use */
	return 0;
}

void *base_grow(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	if (n < *cap)
		return v;
	size_t c = *cap ? 2 * *cap : first;
	if (c < *cap || c > SIZE_MAX / size)
		return NULL;
	void *nv = realloc(v, c * size);
	if (nv)
		*cap = c;
	return nv;
}

int base_buf_printf(BaseBuf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	int r = base_buf_append(b, s, (size_t)n);
	free(s);
	return r;
}

void base_buf_free(BaseBuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

uint64_t base_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
