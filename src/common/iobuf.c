#include "common/iobuf.h"

#include <stdlib.h>
#include <string.h>

void *iobuf_alloc(size_t len)
{
	/* aligned_alloc wants a multiple of the alignment; a zero length still gets a buffer. */
	size_t size = len ? (len + IOBUF_ALIGN - 1) & ~(size_t)(IOBUF_ALIGN - 1) : IOBUF_ALIGN;

	return aligned_alloc(IOBUF_ALIGN, size);
}

void *iobuf_zalloc(size_t len)
{
	void *p = iobuf_alloc(len);

	if (p)
		memset(p, 0, len);
	return p;
}
