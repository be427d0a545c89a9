/* The activemap: which extents of an HA device may differ between the two replicas.
 *
 * The device is cut into extents (a power of two, 1 MiB by default).  One bitmap, kept on
 * disk in 4 KiB pages (bit i of the bitmap is bit i % 8 of byte i / 8), holds every extent
 * that may differ from the partner.  It serves two purposes:
 *
 *  - No full resync after a crash.  While in sync, an extent's bit is set ON DISK before
 *    the first write to it starts, and cleared lazily once every write to it completed on
 *    both replicas.  The `keepdirty` most recently written extents stay set (an LRU), so
 *    a hot extent costs no metadata write.  After a crash of one or both nodes only the
 *    set bits need resync: every write that could have reached one replica and not the
 *    other lies in a set extent.
 *  - Fast resync after an outage.  While the partner is lost, every extent written stays
 *    set until resync copied it; on reconnect only those move.
 *
 * In memory an extent needing resync is either KNOWN to differ (written while the
 * partner was lost, a write in flight when it was lost, a write that failed on one
 * replica only, a full copy) or only SUSPECT (set on disk by lazy clearing, or loaded
 * from disk after a restart: its writes completed on both replicas, which differ only if
 * a node lost data it had not flushed).  Resync copies known extents and compares
 * suspect ones by digest first, copying only what differs.  The disk holds one bit per
 * extent: after a restart every set extent is suspect, which is safe (a comparison finds
 * every difference), only slower.
 *
 * This module is pure logic: no I/O, no clock.  The caller persists pages:
 *  1. activemap_write_start() says whether the data write must wait for metadata;
 *  2. the caller writes every stale page (activemap_stale_page()/activemap_page()), at most
 *     one write per page in flight (a newer image is written after the older completed,
 *     so an old image can never land last), and reports each with activemap_page_written();
 *  3. the data write may start once activemap_write_ready() is true.
 * Clears made by activemap_write_complete() and activemap_sync_complete() only leave pages
 * stale; writing them is never urgent (a stale set bit costs a needless resync, never data).
 *
 * Offsets and lengths are bytes; a range must lie inside the device and not be empty. */
#ifndef TWINSAN_HA_ACTIVEMAP_H
#define TWINSAN_HA_ACTIVEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACTIVEMAP_PAGE_SIZE 4096u
#define ACTIVEMAP_DEFAULT_EXTENT (1u << 20)
/* Kept-dirty extents cost nothing while in sync and only a digest comparison after a
 * crash (no data moves for them), so many are kept: random writes over 1 GiB with 1 MiB
 * extents then never wait for a metadata write once warm. */
#define ACTIVEMAP_DEFAULT_KEEPDIRTY 1024u
/* Bounds that keep every count in 32 bits and the digest work after a crash bounded. */
#define ACTIVEMAP_MIN_EXTENT 4096u
#define ACTIVEMAP_MAX_KEEPDIRTY 65536u

struct activemap;

/* 0, or -1 if extent_size is not a power of two >= ACTIVEMAP_MIN_EXTENT, size is 0, the
 * device has more than 2^31 extents, keepdirty > ACTIVEMAP_MAX_KEEPDIRTY, or memory ran out.
 * A new map is all clear, in sync, partner present. */
int activemap_new(uint64_t size, uint32_t extent_size, uint32_t keepdirty, struct activemap **out);
void activemap_free(struct activemap *am);

uint64_t activemap_size(const struct activemap *am);
uint32_t activemap_extent_size(const struct activemap *am);
uint32_t activemap_extent_count(const struct activemap *am);
uint32_t activemap_page_count(const struct activemap *am);
/* Bytes of the on-disk bitmap: activemap_page_count() pages. */
size_t activemap_ondisk_size(const struct activemap *am);
/* Pages for a device of this geometry without building a map (for the metadata file). */
uint32_t activemap_pages_for(uint64_t size, uint32_t extent_size);

/* Installs the bitmap read from disk (len must be activemap_ondisk_size()).  Every set
 * extent needs resync, as a suspect: after a crash nobody knows whether the partner has
 * its last writes.  Bits past the last extent are ignored.  -1 on a wrong length. */
int activemap_load(struct activemap *am, const uint8_t *bitmap, size_t len);
/* Adds a chunk of the partner's bitmap (same geometry): `len` bytes that sit at byte
 * `byte_offset` of it, so chunks can be merged as they arrive.  Their extents need
 * resync, as suspects: on reconnect both replicas' dirty extents must be looked at.
 * Pages it sets go stale.  -1 (nothing merged) if the chunk does not lie inside
 * activemap_ondisk_size(). */
int activemap_merge(struct activemap *am, uint64_t byte_offset, const uint8_t *bytes, size_t len);
/* The same for the partner's extents known to differ (activemap_known_image()). */
int activemap_merge_known(struct activemap *am, uint64_t byte_offset, const uint8_t *bytes, size_t len);
/* The bitmap of extents known to differ, page `page` of it (ACTIVEMAP_PAGE_SIZE bytes into
 * out): what the partner needs besides the on-disk image to tell known from suspect. */
void activemap_known_image(const struct activemap *am, uint32_t page, uint8_t *out);

/* A write of [offset, offset + length) is about to start.  True if the on-disk bitmap
 * does not yet cover it: persist the stale pages and wait for activemap_write_ready(). */
bool activemap_write_start(struct activemap *am, uint64_t offset, uint64_t length);
/* True once every extent of the range has its bit persisted. */
bool activemap_write_ready(const struct activemap *am, uint64_t offset, uint64_t length);
/* The write finished on every replica that was in sync when it started (or failed).
 * Extents stay set while the partner is lost or resync needs them; the others join the
 * keepdirty LRU, and the least recent one beyond keepdirty is cleared.  True if a page
 * went stale (a lazy clear to write when convenient). */
bool activemap_write_complete(struct activemap *am, uint64_t offset, uint64_t length);

/* The partner is gone: every extent set now, and every extent written until it is back,
 * needs resync (known to differ if written or in flight, suspect if merely kept).
 * Copies in flight are void (their sync_complete is ignored). */
void activemap_partner_lost(struct activemap *am);
/* A write to the range reached one replica and failed on the other: its extents are
 * known to differ until a resync copies them (also while in sync). */
void activemap_mark_differs(struct activemap *am, uint64_t offset, uint64_t length);
/* The partner is back; resync may run. */
void activemap_partner_back(struct activemap *am);

/* Resync iterator: the next extent needing resync that is not being copied already, in
 * ascending order from where the last call stopped, wrapping once; *suspect says whether
 * it must be compared before copying.  False when none is left to start (all done, or all
 * in flight) or the partner is lost.  An extent written while its copy is in flight is
 * handed out again after that copy completes. */
bool activemap_sync_next(struct activemap *am, uint64_t *offset, uint64_t *length, bool *suspect);
/* The copy (or the comparison that found nothing to copy) of an extent returned by
 * activemap_sync_next() is done: the partner has what this node has.  True if a page
 * went stale. */
bool activemap_sync_complete(struct activemap *am, uint64_t offset, uint64_t length);
/* True if some extent of the range still needs resync (the partner's copy is stale). */
bool activemap_needs_sync(const struct activemap *am, uint64_t offset, uint64_t length);

/* The first run of consecutive extents needing resync at or after byte `from`, without
 * changing anything: what differs from the partner, for reports (a split brain's
 * divergent blocks are the loser's runs before activemap_merge()) and status pages. */
bool activemap_next_dirty(const struct activemap *am, uint64_t from, uint64_t *offset, uint64_t *length);

/* Extents needing resync, and their bytes (the last extent counts its real length); the
 * bytes of those only suspect. */
uint32_t activemap_dirty_count(const struct activemap *am);
uint64_t activemap_dirty_bytes(const struct activemap *am);
uint64_t activemap_suspect_bytes(const struct activemap *am);

/* The device grew to `size` bytes (device resize): the new extents are clear, in sync
 * (both replicas grow with zeros); pages of the new part start clean.  Pointers from
 * activemap_page() are void afterwards.  -1 (nothing changed) if size is smaller, too
 * large for the extent size, or memory ran out. */
int activemap_grow(struct activemap *am, uint64_t size);

/* Every extent needs resync (initial sync "copy" to a new replica). */
void activemap_mark_all(struct activemap *am);
/* No extent needs resync (initial sync "none", or "clear" after zeroing both replicas);
 * extents with writes in flight stay set on disk. */
void activemap_clear_all(struct activemap *am);
/* Both replicas have every write that completed (an orderly goodbye, or a close, in
 * sync): only the extents known to differ stay; extents with writes in flight stay set
 * on disk. */
void activemap_clear_suspect(struct activemap *am);

/* The lowest page at or after `from` whose image is newer than what was last written. */
bool activemap_stale_page(const struct activemap *am, uint32_t from, uint32_t *page);
/* The current image of a page (ACTIVEMAP_PAGE_SIZE bytes, valid until the next call that
 * changes the map) and its version, to hand back to activemap_page_written(). */
const uint8_t *activemap_page(const struct activemap *am, uint32_t page, uint64_t *version);
/* The image of `version` is durable on disk. */
void activemap_page_written(struct activemap *am, uint32_t page, uint64_t version);

#endif
