/* The store: where a logical unit's blocks live.
 *
 * The SCSI layer sees only this interface, never files or partners, so the same logical
 * unit can later sit on a replicated store.  Offsets and lengths are in bytes.
 *
 * I/O is asynchronous on the caller's reactor: each call takes a struct store_io that the
 * caller owns until its done() runs with 0 or -errno.  done() never runs inside the call
 * that started the I/O. */
#ifndef TWINSAN_STORE_STORE_H
#define TWINSAN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/reactor.h"

struct store;

struct store_params {
	const char *path;      /* regular file or block device */
	uint64_t create_size;  /* create a sparse file of this size if path is missing; 0: must exist */
	bool direct;           /* O_DIRECT: bypass the page cache */
	bool read_only;
};

int store_open(const struct store_params *params, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);

uint64_t store_size(const struct store *s);
/* Alignment the store needs for direct I/O (logical block size of the device, else 512). */
uint32_t store_alignment(const struct store *s);
/* True if discard (hole punching) deallocates space and reads back zeros. */
bool store_can_discard(const struct store *s);
bool store_read_only(const struct store *s);
/* True if writes go to a volatile cache that needs store_flush() to become durable. */
bool store_has_volatile_cache(const struct store *s);

struct store_io {
	struct reactor_op op;       /* private */
	void (*done)(struct store_io *io, int err);
	/* private progress of a request the kernel completed in part */
	struct store *store;
	struct reactor *reactor;
	int sync_result;            /* result of a request served without io_uring */
	int kind;
	struct iovec iov_whole;     /* the vector of store_read()/store_write() */
	struct iovec iov_first;     /* remainder of a partly transferred element */
	const struct iovec *iov;
	int iovcnt;
	size_t skip;
	uint64_t offset;
	uint64_t length;
	size_t progress;
	bool fua;
};

void store_readv(struct store *s, struct reactor *r, struct store_io *io,
                 const struct iovec *iov, int iovcnt, uint64_t offset);
/* fua: done() only once the data is on stable storage. */
void store_writev(struct store *s, struct reactor *r, struct store_io *io,
                  const struct iovec *iov, int iovcnt, uint64_t offset, bool fua);
void store_read(struct store *s, struct reactor *r, struct store_io *io,
                void *buf, size_t len, uint64_t offset);
void store_write(struct store *s, struct reactor *r, struct store_io *io,
                 const void *buf, size_t len, uint64_t offset, bool fua);
/* Makes every completed write durable. */
void store_flush(struct store *s, struct reactor *r, struct store_io *io);
/* Deallocates [offset, offset+length): reads return zeros afterwards.  Where the store
 * cannot deallocate it writes zeros instead. */
void store_discard(struct store *s, struct reactor *r, struct store_io *io,
                   uint64_t offset, uint64_t length);

/* Synchronous allocation query for GET LBA STATUS: sets *mapped for the extent starting at
 * offset and *length to how far that state runs (capped at the end of the store). */
int store_map_status(struct store *s, uint64_t offset, bool *mapped, uint64_t *length);

#endif
