/* Persisting the activemap through the reactor, so marking an extent never blocks the
 * loop on a disk flush.
 *
 * Follows the protocol of activemap.h: every stale page is written (with RWF_DSYNC), at
 * most one write per page in flight, a newer image after the older one completed.  A
 * data write whose extents are not yet on disk waits here and resumes once they are.
 * A metadata file in memory (tmpfs) is written by plain system calls from the loop
 * instead, once per loop pass for all the marks made in it: such a write cannot block,
 * and io_uring would hand each one to a worker thread and back. */
#ifndef TWINSAN_HA_MAPSYNC_H
#define TWINSAN_HA_MAPSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/activemap.h"

struct mapsync;

/* Embedded in the waiter's request. */
struct mapsync_wait {
	uint64_t offset, length;
	/* 0 once the range is marked on disk, -EIO if the metadata cannot be written. */
	void (*ready)(struct mapsync_wait *w, int err);
	struct mapsync_wait *next; /* private */
};

/* Writes pages of `am` into the metadata file `fd` (page p at ha_meta_page_offset(p)).
 * `name` (copied) is for the log.  NULL when out of memory. */
struct mapsync *mapsync_new(struct reactor *r, struct activemap *am, int fd, const char *name);
/* Forgets waiters (their owners are going too); writes in flight finish on their own,
 * without touching the activemap any more. */
void mapsync_free(struct mapsync *ms);

/* After activemap_write_start() returned true: ready() runs from the loop once
 * activemap_write_ready() holds for the range. */
void mapsync_wait(struct mapsync *ms, struct mapsync_wait *w);
/* Writes whatever is stale (lazy clears); nothing waits for it. */
void mapsync_kick(struct mapsync *ms);
/* The activemap grew (activemap_grow()): its new pages can be written.  -1 when out of
 * memory. */
int mapsync_grow(struct mapsync *ms);

#endif
