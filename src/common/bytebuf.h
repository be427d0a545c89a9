/* Building and reading big-endian binary messages: a growable writer that remembers an
 * allocation failure, and a bounded reader that remembers its first fault, so codecs
 * check once at the end instead of after every field. */
#ifndef TWINSAN_COMMON_BYTEBUF_H
#define TWINSAN_COMMON_BYTEBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wbuf {
	uint8_t *p;      /* malloc'd; the caller takes it when !failed */
	size_t len, cap;
	bool failed;     /* out of memory: p is freed by wbuf_free() */
};

void wbuf_bytes(struct wbuf *w, const void *src, size_t n);
void wbuf_u8(struct wbuf *w, uint8_t v);
void wbuf_u16(struct wbuf *w, uint16_t v);
void wbuf_u32(struct wbuf *w, uint32_t v);
void wbuf_u64(struct wbuf *w, uint64_t v);
/* A string of at most max-1 bytes as its length (u8) and bytes. */
void wbuf_name(struct wbuf *w, const char *s, size_t max);
void wbuf_free(struct wbuf *w);

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	const char *why; /* the first fault: what was being read */
};

/* n bytes, or NULL (fault `what`) if fewer are left or a fault came before. */
const uint8_t *rbuf_take(struct rbuf *r, size_t n, const char *what);
uint8_t rbuf_u8(struct rbuf *r, const char *what);
uint16_t rbuf_u16(struct rbuf *r, const char *what);
uint32_t rbuf_u32(struct rbuf *r, const char *what);
uint64_t rbuf_u64(struct rbuf *r, const char *what);
/* A byte that must be 0 or 1. */
bool rbuf_bool(struct rbuf *r, const char *what);
/* A string written by wbuf_name(): 1..max-1 bytes without NUL, copied NUL-terminated. */
void rbuf_name(struct rbuf *r, char *out, size_t max, const char *what);
/* Records a fault found by the caller (the first one stays). */
void rbuf_fail(struct rbuf *r, const char *what);

#endif
