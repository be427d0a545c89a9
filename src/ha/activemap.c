/* The activemap: per-extent write counts and resync flags in memory, the on-disk bitmap
 * image with a version per page, and a small LRU of clean-but-kept-dirty extents. */
#include "ha/activemap.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define BITS_PER_PAGE (ACTIVEMAP_PAGE_SIZE * 8u)
#define MAX_EXTENTS (1u << 31)

enum extent_flag {
	EXT_SYNC = 1,    /* the partner's copy may be stale: resync must copy it */
	EXT_COPYING = 2, /* handed out by sync_next, copy not yet complete */
	EXT_REDO = 4,    /* written while being copied: the copy may be stale, copy again */
};

struct page_state {
	uint64_t version;     /* bumped by every change of the page's image */
	uint64_t set_version; /* the version that set its newest bit */
	uint64_t written;     /* newest version known durable */
};

struct activemap {
	uint64_t size;
	uint32_t extent_size, shift, nextents, npages, keepdirty;
	uint8_t *disk;           /* the bitmap as it must be on disk */
	uint8_t *flags;          /* enum extent_flag, per extent */
	uint32_t *pending;       /* writes in flight, per extent */
	struct page_state *pages;
	uint32_t *lru;           /* kept-dirty extents, most recent first */
	uint32_t lru_len;
	uint32_t dirty;          /* extents with EXT_SYNC */
	uint32_t copying;        /* extents with EXT_COPYING */
	uint32_t cursor;         /* where sync_next resumes */
	bool partner_lost;
};

static uint32_t extents_for(uint64_t size, uint32_t extent_size)
{
	return (uint32_t)((size + extent_size - 1) / extent_size);
}

uint32_t activemap_pages_for(uint64_t size, uint32_t extent_size)
{
	return (extents_for(size, extent_size) + BITS_PER_PAGE - 1) / BITS_PER_PAGE;
}

int activemap_new(uint64_t size, uint32_t extent_size, uint32_t keepdirty, struct activemap **out)
{
	*out = NULL;
	if (size == 0 || extent_size < ACTIVEMAP_MIN_EXTENT || (extent_size & (extent_size - 1)) != 0 ||
	    keepdirty > ACTIVEMAP_MAX_KEEPDIRTY || (size - 1) / extent_size >= MAX_EXTENTS)
		return -1;
	struct activemap *am = calloc(1, sizeof(*am));
	if (!am)
		return -1;
	am->size = size;
	am->extent_size = extent_size;
	am->shift = (uint32_t)__builtin_ctz(extent_size);
	am->nextents = extents_for(size, extent_size);
	am->npages = activemap_pages_for(size, extent_size);
	am->keepdirty = keepdirty;
	am->disk = calloc(am->npages, ACTIVEMAP_PAGE_SIZE);
	am->flags = calloc(am->nextents, sizeof(*am->flags));
	am->pending = calloc(am->nextents, sizeof(*am->pending));
	am->pages = calloc(am->npages, sizeof(*am->pages));
	am->lru = calloc(keepdirty + 1, sizeof(*am->lru));
	if (!am->disk || !am->flags || !am->pending || !am->pages || !am->lru) {
		activemap_free(am);
		return -1;
	}
	*out = am;
	return 0;
}

void activemap_free(struct activemap *am)
{
	if (!am)
		return;
	free(am->disk);
	free(am->flags);
	free(am->pending);
	free(am->pages);
	free(am->lru);
	free(am);
}

uint64_t activemap_size(const struct activemap *am) { return am->size; }
uint32_t activemap_extent_size(const struct activemap *am) { return am->extent_size; }
uint32_t activemap_extent_count(const struct activemap *am) { return am->nextents; }
uint32_t activemap_page_count(const struct activemap *am) { return am->npages; }
size_t activemap_ondisk_size(const struct activemap *am) { return (size_t)am->npages * ACTIVEMAP_PAGE_SIZE; }

/* The extents of a byte range; false for an empty range or one outside the device. */
static bool extent_range(const struct activemap *am, uint64_t offset, uint64_t length, uint32_t *first,
                         uint32_t *last)
{
	if (length == 0 || offset >= am->size || length > am->size - offset)
		return false;
	*first = (uint32_t)(offset >> am->shift);
	*last = (uint32_t)((offset + length - 1) >> am->shift);
	return true;
}

static bool disk_bit(const struct activemap *am, uint32_t e)
{
	return am->disk[e / 8] & (1u << (e % 8));
}

/* Both return true if the page image changed. */
static bool disk_set(struct activemap *am, uint32_t e)
{
	if (disk_bit(am, e))
		return false;
	am->disk[e / 8] |= (uint8_t)(1u << (e % 8));
	struct page_state *p = &am->pages[e / BITS_PER_PAGE];
	p->set_version = ++p->version;
	return true;
}

static bool disk_clear(struct activemap *am, uint32_t e)
{
	if (!disk_bit(am, e))
		return false;
	am->disk[e / 8] &= (uint8_t)~(1u << (e % 8));
	am->pages[e / BITS_PER_PAGE].version++;
	return true;
}

static bool mark_sync(struct activemap *am, uint32_t e)
{
	if (!(am->flags[e] & EXT_SYNC)) {
		am->flags[e] |= EXT_SYNC;
		am->dirty++;
	}
	return disk_set(am, e);
}

/* An extent with no writes in flight and nothing to resync may be clear on disk. */
static bool clear_if_idle(struct activemap *am, uint32_t e)
{
	if (am->pending[e] != 0 || (am->flags[e] & EXT_SYNC))
		return false;
	return disk_clear(am, e);
}

/* Makes e the most recent kept-dirty extent; the one pushed out of the LRU is cleared. */
static bool lru_touch(struct activemap *am, uint32_t e)
{
	uint32_t i = 0;

	while (i < am->lru_len && am->lru[i] != e)
		i++;
	if (i == am->lru_len)
		am->lru_len++;
	memmove(am->lru + 1, am->lru, i * sizeof(*am->lru));
	am->lru[0] = e;
	if (am->lru_len <= am->keepdirty)
		return false;
	am->lru_len--;
	return clear_if_idle(am, am->lru[am->lru_len]);
}

static void set_loaded_image(struct activemap *am)
{
	for (uint32_t p = 0; p < am->npages; p++)
		am->pages[p].written = am->pages[p].version;
}

int activemap_load(struct activemap *am, const uint8_t *bitmap, size_t len)
{
	if (len != activemap_ondisk_size(am))
		return -1;
	activemap_clear_all(am);
	for (uint32_t e = 0; e < am->nextents; e++) {
		if (bitmap[e / 8] & (1u << (e % 8)))
			mark_sync(am, e);
	}
	set_loaded_image(am);
	return 0;
}

int activemap_merge(struct activemap *am, uint64_t byte_offset, const uint8_t *bytes, size_t len)
{
	if (byte_offset > activemap_ondisk_size(am) || len > activemap_ondisk_size(am) - byte_offset)
		return -1;
	for (size_t i = 0; i < len; i++) {
		for (uint32_t b = 0; b < 8 && bytes[i]; b++) {
			uint64_t e = (byte_offset + i) * 8 + b;
			if ((bytes[i] & (1u << b)) && e < am->nextents)
				mark_sync(am, (uint32_t)e);
		}
	}
	return 0;
}

bool activemap_write_start(struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;

	if (!extent_range(am, offset, length, &first, &last))
		return false;
	for (uint32_t e = first; e <= last; e++) {
		am->pending[e]++;
		if (am->partner_lost)
			mark_sync(am, e);
		else
			disk_set(am, e);
		if (am->flags[e] & EXT_COPYING)
			am->flags[e] |= EXT_REDO;
	}
	return !activemap_write_ready(am, offset, length);
}

bool activemap_write_ready(const struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;

	if (!extent_range(am, offset, length, &first, &last))
		return true;
	for (uint32_t p = first / BITS_PER_PAGE; p <= last / BITS_PER_PAGE; p++) {
		if (am->pages[p].written < am->pages[p].set_version)
			return false;
	}
	return true;
}

bool activemap_write_complete(struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;
	bool stale = false;

	if (!extent_range(am, offset, length, &first, &last))
		return false;
	for (uint32_t e = first; e <= last; e++) {
		if (am->pending[e] > 0)
			am->pending[e]--;
		if (am->pending[e] == 0 && !(am->flags[e] & EXT_SYNC))
			stale |= am->keepdirty ? lru_touch(am, e) : clear_if_idle(am, e);
	}
	return stale;
}

void activemap_partner_lost(struct activemap *am)
{
	am->partner_lost = true;
	for (uint32_t e = 0; e < am->nextents; e++) {
		am->flags[e] &= (uint8_t)~(EXT_COPYING | EXT_REDO);
		if (disk_bit(am, e))
			mark_sync(am, e);
	}
	am->copying = 0;
	am->lru_len = 0; /* every member now needs resync */
}

void activemap_partner_back(struct activemap *am)
{
	am->partner_lost = false;
	am->cursor = 0;
}

bool activemap_sync_next(struct activemap *am, uint64_t *offset, uint64_t *length)
{
	if (am->partner_lost || am->copying == am->dirty)
		return false;
	for (uint32_t k = 0; k < am->nextents; k++) {
		uint32_t e = (uint32_t)(((uint64_t)am->cursor + k) % am->nextents);
		if ((am->flags[e] & (EXT_SYNC | EXT_COPYING)) != EXT_SYNC)
			continue;
		am->flags[e] |= EXT_COPYING;
		/* a write already in flight may land locally after the copy read the extent */
		if (am->pending[e] > 0)
			am->flags[e] |= EXT_REDO;
		am->copying++;
		am->cursor = e + 1 == am->nextents ? 0 : e + 1;
		*offset = (uint64_t)e << am->shift;
		*length = MIN((uint64_t)am->extent_size, am->size - *offset);
		return true;
	}
	return false;
}

bool activemap_sync_complete(struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;
	bool stale = false;

	if (!extent_range(am, offset, length, &first, &last))
		return false;
	for (uint32_t e = first; e <= last; e++) {
		uint8_t *f = &am->flags[e];
		if (!(*f & EXT_COPYING))
			continue;
		am->copying--;
		if (*f & EXT_REDO) {
			*f &= (uint8_t)~(EXT_COPYING | EXT_REDO);
			continue;
		}
		*f &= (uint8_t)~(EXT_COPYING | EXT_SYNC);
		am->dirty--;
		stale |= clear_if_idle(am, e);
	}
	return stale;
}

bool activemap_needs_sync(const struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;

	if (!extent_range(am, offset, length, &first, &last))
		return false;
	for (uint32_t e = first; e <= last; e++) {
		if (am->flags[e] & EXT_SYNC)
			return true;
	}
	return false;
}

bool activemap_next_dirty(const struct activemap *am, uint64_t from, uint64_t *offset, uint64_t *length)
{
	if (from >= am->size)
		return false;
	uint32_t e = (uint32_t)(from >> am->shift);
	while (e < am->nextents && !(am->flags[e] & EXT_SYNC))
		e++;
	if (e == am->nextents)
		return false;
	uint32_t end = e;
	while (end < am->nextents && (am->flags[end] & EXT_SYNC))
		end++;
	*offset = (uint64_t)e << am->shift;
	*length = MIN((uint64_t)end << am->shift, am->size) - *offset;
	return true;
}

uint32_t activemap_dirty_count(const struct activemap *am) { return am->dirty; }

uint64_t activemap_dirty_bytes(const struct activemap *am)
{
	uint64_t bytes = (uint64_t)am->dirty << am->shift;
	uint32_t last = am->nextents - 1;

	if (am->flags[last] & EXT_SYNC)
		bytes -= ((uint64_t)am->nextents << am->shift) - am->size;
	return bytes;
}

void activemap_mark_all(struct activemap *am)
{
	for (uint32_t e = 0; e < am->nextents; e++)
		mark_sync(am, e);
	am->lru_len = 0;
}

void activemap_clear_all(struct activemap *am)
{
	for (uint32_t e = 0; e < am->nextents; e++) {
		am->flags[e] = 0;
		clear_if_idle(am, e);
	}
	am->dirty = 0;
	am->copying = 0;
	am->lru_len = 0;
	am->cursor = 0;
}

bool activemap_stale_page(const struct activemap *am, uint32_t from, uint32_t *page)
{
	for (uint32_t p = from; p < am->npages; p++) {
		if (am->pages[p].written < am->pages[p].version) {
			*page = p;
			return true;
		}
	}
	return false;
}

const uint8_t *activemap_page(const struct activemap *am, uint32_t page, uint64_t *version)
{
	*version = am->pages[page].version;
	return am->disk + (size_t)page * ACTIVEMAP_PAGE_SIZE;
}

void activemap_page_written(struct activemap *am, uint32_t page, uint64_t version)
{
	if (page < am->npages && version > am->pages[page].written && version <= am->pages[page].version)
		am->pages[page].written = version;
}
