/* Buffers that data moves through between the network and a store.  They are aligned for
 * O_DIRECT (any logical block size up to 4 KiB) and released with free(). */
#ifndef TWINSAN_COMMON_IOBUF_H
#define TWINSAN_COMMON_IOBUF_H

#include <stddef.h>

#define IOBUF_ALIGN 4096

/* Uninitialised: for buffers a read fills completely. */
void *iobuf_alloc(size_t len);
/* Zeroed: for buffers built piecewise. */
void *iobuf_zalloc(size_t len);

#endif
