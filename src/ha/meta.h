/* The metadata file of one replica of an HA device.
 *
 * Layout (big-endian, offsets in bytes):
 *   0      superblock slot 0   (HA_META_SLOT_SIZE)
 *   4096   superblock slot 1
 *   8192   activemap bitmap, activemap_pages_for(size, extent_size) pages of 4 KiB
 *
 * A superblock carries a sequence number and a CRC32C; sequence n lives in slot n % 2.
 * An update writes sequence n + 1 into the slot NOT holding the newest valid superblock
 * and makes it durable (fdatasync), so a crash or torn write at any moment leaves one
 * valid superblock, old or new, without rename or journal.  Opening takes the newest
 * valid slot.  Bitmap pages are written in place: a page write is single-sector-atomic or
 * torn between two images that are both safe (activemap.h explains why).
 *
 * Synchronous small I/O is fine for this rare metadata; the daemon may instead build the
 * bytes with ha_meta_super_encode() / ha_meta_page_offset() and write them through the
 * reactor, then report with ha_meta_super_written(). */
#ifndef TWINSAN_HA_META_H
#define TWINSAN_HA_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha/generation.h"

#define HA_META_SLOT_SIZE 4096u
#define HA_META_BITMAP_OFFSET (2 * HA_META_SLOT_SIZE)
#define HA_META_VERSION 1u
#define HA_META_UUID_LEN 16

enum ha_role {
	HA_ROLE_PRIMARY = 1,   /* the priority node: orders writes and wins ties */
	HA_ROLE_SECONDARY = 2,
};

enum ha_sync_state {
	HA_SYNC_SYNCHRONIZED = 1,
	HA_SYNC_SYNCHRONIZING = 2,
	HA_SYNC_NOT_SYNCHRONIZED = 3,
};

/* Why a replica is not synchronized (HA_SYNC_NOT_SYNCHRONIZED), else NONE. */
enum ha_sync_reason {
	HA_REASON_NONE = 0,
	HA_REASON_PARTNER_LOST = 1,    /* the partner wrote without us, or we without it */
	HA_REASON_NEW_REPLICA = 2,     /* awaiting its initial full sync */
	HA_REASON_SPLIT_BRAIN = 3,     /* waiting for an operator to choose the survivor */
	HA_REASON_UNRELATED = 4,       /* the partner's data has no common history */
	HA_REASON_NO_SOURCE = 5,       /* no replica has complete data */
	HA_REASON_FAILOVER_STOPPED = 6, /* the failover strategy stopped this node's I/O */
};

enum ha_initial_sync {
	HA_INITIAL_CLEAR = 1,
	HA_INITIAL_NONE = 2,
	HA_INITIAL_COPY = 3,
};

struct ha_meta_super {
	uint8_t uuid[HA_META_UUID_LEN]; /* the device's identity, the same on both nodes */
	uint64_t size;                  /* bytes of the device */
	uint32_t extent_size;           /* activemap extent, a power of two >= 4096 */
	enum ha_role role;
	enum ha_sync_state state;
	enum ha_sync_reason reason;
	enum ha_initial_sync initial_sync;
	struct generation gen;
};

/* True if every field is equal (an update that changes nothing need not be written). */
bool ha_meta_super_same(const struct ha_meta_super *a, const struct ha_meta_super *b);

const char *ha_sync_state_name(enum ha_sync_state s);
const char *ha_sync_reason_name(enum ha_sync_reason r);

struct ha_meta;

/* Creates the file (it must not exist), both superblock slots and a clear bitmap, durably.
 * -1 with err naming the file on a bad superblock or an I/O error. */
int ha_meta_create(const char *path, const struct ha_meta_super *sb, struct ha_meta **out, char *err,
                   size_t errlen);
/* Opens and validates the file: magic, version, checksums, geometry, file length.  *sb is
 * the newest valid superblock.  -1 with err naming the file and the fault. */
int ha_meta_open(const char *path, struct ha_meta_super *sb, struct ha_meta **out, char *err, size_t errlen);
void ha_meta_close(struct ha_meta *m);

int ha_meta_fd(const struct ha_meta *m);
/* Bytes of the bitmap (activemap_ondisk_size() for the file's geometry). */
size_t ha_meta_bitmap_size(const struct ha_meta *m);
int ha_meta_read_bitmap(struct ha_meta *m, uint8_t *buf, size_t len, char *err, size_t errlen);

/* Durably replaces the superblock.  The geometry and uuid must not change. */
int ha_meta_update(struct ha_meta *m, const struct ha_meta_super *sb, char *err, size_t errlen);
/* The device grew to `size` bytes: the bitmap grows with clear pages, then the superblock
 * (sb with the new size) is replaced.  A crash between the two leaves the old size with a
 * longer file, which opens.  -1 with err. */
int ha_meta_grow(struct ha_meta *m, uint64_t size, const struct ha_meta_super *sb, char *err, size_t errlen);
/* Durably writes bitmap page `page` (HA_META_SLOT_SIZE bytes from buf). */
int ha_meta_write_page(struct ha_meta *m, uint32_t page, const uint8_t *buf, char *err, size_t errlen);

/* The asynchronous form of ha_meta_update: encodes the next superblock into buf and
 * returns the file offset to write it at (then fdatasync), -1 on a bad superblock; at
 * most one in flight.  ha_meta_super_written() reports it durable. */
int64_t ha_meta_super_encode(struct ha_meta *m, const struct ha_meta_super *sb, uint8_t buf[HA_META_SLOT_SIZE]);
void ha_meta_super_written(struct ha_meta *m);
uint64_t ha_meta_page_offset(uint32_t page);

/* Validates a whole file image (what open reads): 0 with *sb and *seq of the newest valid
 * slot, else -1 with err (without the file name). */
int ha_meta_parse(const uint8_t *file, size_t len, struct ha_meta_super *sb, uint64_t *seq, char *err,
                  size_t errlen);
/* Encodes a superblock with sequence seq; -1 if sb is not valid (err says why). */
int ha_meta_encode(const struct ha_meta_super *sb, uint64_t seq, uint8_t buf[HA_META_SLOT_SIZE], char *err,
                   size_t errlen);

#endif
