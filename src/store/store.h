/* The store: where a logical unit's blocks live.
 *
 * The SCSI layer sees only this interface, never files or partners: a store is either a
 * local file or block device (store_open(), src/store/store.c) or an HA device mirrored
 * on two nodes (src/ha/device.h), both behind the same calls.  Offsets and lengths are
 * in bytes.
 *
 * I/O is asynchronous on the caller's reactor: each call takes a struct store_io that the
 * caller owns until its done() runs with 0 or -errno.  done() never runs inside the call
 * that started the I/O.  -ENOTCONN means this node stopped serving the store (an HA
 * device that lost its partner and must not go on alone): the command may succeed
 * through another path, so it is reported as a retryable NOT READY, not a medium error. */
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
/* Closes the store and whatever implements it. */
void store_close(struct store *s);

uint64_t store_size(const struct store *s);
/* Grows the store to size bytes (device resize): 0, or -ENOTSUP (this store cannot grow),
 * -EINVAL (smaller than now: shrinking would cut off data initiators have written) or
 * the implementation's -errno.  The logical unit must then be told
 * (scsi_lu_capacity_changed). */
int store_grow(struct store *s, uint64_t size);
/* Alignment the store needs for direct I/O (logical block size of the device, else 512). */
uint32_t store_alignment(const struct store *s);
/* True if discard (hole punching) deallocates space and reads back zeros. */
bool store_can_discard(const struct store *s);
bool store_read_only(const struct store *s);
/* True if writes go to a volatile cache that needs store_flush() to become durable. */
bool store_has_volatile_cache(const struct store *s);

/* Whether this node may serve the store's data now (an HA replica that is not in sync, or
 * that its failover strategy stopped, must not: it could return stale data). */
enum store_access {
	STORE_ACCESS_OK,
	STORE_ACCESS_TRANSITIONING, /* expected to serve again soon (synchronizing, taking over) */
	STORE_ACCESS_UNAVAILABLE,   /* needs the partner or an operator */
};
enum store_access store_access(const struct store *s);

struct store_io {
	struct reactor_op op;       /* private */
	void (*done)(struct store_io *io, int err);
	/* private progress of a request the kernel completed in part */
	void *impl;
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
	uint64_t miscompare;        /* store_compare_and_write() ended -EILSEQ: the offset of
	                               the first differing byte from its start */
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

/* COMPARE AND WRITE: if the len bytes at offset equal `compare`, writes `data` over them,
 * atomically against every other change of the store, whichever node of an HA device it
 * arrives through.  A miscompare changes nothing: done() gets -EILSEQ and io->miscompare.
 * len is 1..STORE_MAX_COMPARE_AND_WRITE.  False, and nothing started, if the store does
 * not offer it: the caller must then read, compare and write under its own lock, which
 * is atomic only against what passes that lock. */
#define STORE_MAX_COMPARE_AND_WRITE (512u << 10)
bool store_compare_and_write(struct store *s, struct reactor *r, struct store_io *io, const void *compare,
                             const void *data, size_t len, uint64_t offset, bool fua);

/* Synchronous allocation query for GET LBA STATUS: sets *mapped for the extent starting at
 * offset and *length to how far that state runs (capped at the end of the store). */
int store_map_status(struct store *s, uint64_t offset, bool *mapped, uint64_t *length);

/* For implementations of a store (the HA device): what it declares at creation, and the
 * calls that the functions above forward to, with the implementation's own pointer.
 * Requests arrive validated: inside the store, not on a read-only store. */
struct store_caps {
	uint64_t size;
	uint32_t alignment;
	bool can_discard;
	bool read_only;
	bool volatile_cache;
};

struct store_ops {
	void (*readv)(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
	              uint64_t offset);
	void (*writev)(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
	               uint64_t offset, bool fua);
	void (*flush)(void *impl, struct reactor *r, struct store_io *io);
	void (*discard)(void *impl, struct reactor *r, struct store_io *io, uint64_t offset, uint64_t length);
	int (*map_status)(void *impl, uint64_t offset, bool *mapped, uint64_t *length);
	enum store_access (*access)(const void *impl); /* NULL: always STORE_ACCESS_OK */
	void (*close)(void *impl);                     /* from store_close() */
	int (*grow)(void *impl, uint64_t size);        /* 0 or -errno; NULL: the size is fixed */
	/* NULL: not offered (store_compare_and_write() returns false) */
	void (*compare_and_write)(void *impl, struct reactor *r, struct store_io *io, const void *compare,
	                          const void *data, size_t len, uint64_t offset, bool fua);
};

/* A store whose calls go to ops with impl; NULL when out of memory. */
struct store *store_new(const struct store_ops *ops, void *impl, const struct store_caps *caps);

#endif
