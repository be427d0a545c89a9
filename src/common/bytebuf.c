/* Big-endian message writer and reader. */
#include "common/bytebuf.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static uint8_t *room(struct wbuf *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = MAX(w->cap * 2, w->len + n + 256);
		uint8_t *p = realloc(w->p, cap);

		if (!p) {
			w->failed = true;
			return NULL;
		}
		w->p = p;
		w->cap = cap;
	}
	w->len += n;
	return w->p + w->len - n;
}

void wbuf_bytes(struct wbuf *w, const void *src, size_t n)
{
	uint8_t *p = room(w, n);

	if (p && n)
		memcpy(p, src, n);
}

void wbuf_u8(struct wbuf *w, uint8_t v) { wbuf_bytes(w, &v, 1); }

void wbuf_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2];

	put_be16(b, v);
	wbuf_bytes(w, b, sizeof(b));
}

void wbuf_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	wbuf_bytes(w, b, sizeof(b));
}

void wbuf_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];

	put_be64(b, v);
	wbuf_bytes(w, b, sizeof(b));
}

void wbuf_name(struct wbuf *w, const char *s, size_t max)
{
	size_t n = strnlen(s, MIN(max - 1, (size_t)UINT8_MAX));

	wbuf_u8(w, (uint8_t)n);
	wbuf_bytes(w, s, n);
}

void wbuf_free(struct wbuf *w)
{
	free(w->p);
	memset(w, 0, sizeof(*w));
}

void rbuf_fail(struct rbuf *r, const char *what)
{
	if (!r->why)
		r->why = what;
}

const uint8_t *rbuf_take(struct rbuf *r, size_t n, const char *what)
{
	if (r->why)
		return NULL;
	if (r->len - r->off < n) {
		r->why = what;
		return NULL;
	}
	r->off += n;
	return r->p + r->off - n;
}

uint8_t rbuf_u8(struct rbuf *r, const char *what)
{
	const uint8_t *p = rbuf_take(r, 1, what);

	return p ? p[0] : 0;
}

uint16_t rbuf_u16(struct rbuf *r, const char *what)
{
	const uint8_t *p = rbuf_take(r, 2, what);

	return p ? get_be16(p) : 0;
}

uint32_t rbuf_u32(struct rbuf *r, const char *what)
{
	const uint8_t *p = rbuf_take(r, 4, what);

	return p ? get_be32(p) : 0;
}

uint64_t rbuf_u64(struct rbuf *r, const char *what)
{
	const uint8_t *p = rbuf_take(r, 8, what);

	return p ? get_be64(p) : 0;
}

bool rbuf_bool(struct rbuf *r, const char *what)
{
	uint8_t v = rbuf_u8(r, what);

	if (v > 1)
		rbuf_fail(r, what);
	return v == 1;
}

void rbuf_name(struct rbuf *r, char *out, size_t max, const char *what)
{
	uint8_t n = rbuf_u8(r, what);
	const uint8_t *p;

	out[0] = '\0';
	if (r->why)
		return;
	if (n == 0 || n >= max) {
		rbuf_fail(r, what);
		return;
	}
	p = rbuf_take(r, n, what);
	if (!p)
		return;
	if (memchr(p, '\0', n)) {
		rbuf_fail(r, what);
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}
