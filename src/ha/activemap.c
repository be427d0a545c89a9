/* The activemap: per-extent write counts and resync flags in memory, the on-disk bitmap
 * image with a version per page, and an LRU of clean-but-kept-dirty extents (a list
 * threaded through per-extent links, so a touch costs the same for any keepdirty). */
#include "ha/activemap.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define BITS_PER_PAGE (ACTIVEMAP_PAGE_SIZE * 8u)
#define MAX_EXTENTS (1u << 31)
#define NONE UINT32_MAX /* end of the LRU list */

enum extent_flag {
	EXT_SYNC = 1,    /* the partner's copy may be stale: resync must copy it */
	EXT_COPYING = 2, /* handed out by sync_next, copy not yet complete */
	EXT_REDO = 4,    /* written while being copied: the copy may be stale, copy again */
	EXT_SUSPECT = 8, /* with EXT_SYNC: only suspected to differ, compare before copying */
	EXT_KEPT = 16,   /* in the kept-dirty LRU */
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
	uint32_t *prev, *next;   /* LRU links per extent, most recent at head */
	uint32_t head, tail, lru_len;
	uint32_t dirty;          /* extents with EXT_SYNC */
	uint32_t suspect;        /* of those, with EXT_SUSPECT */
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
	am->prev = malloc((size_t)am->nextents * sizeof(*am->prev));
	am->next = malloc((size_t)am->nextents * sizeof(*am->next));
	am->head = am->tail = NONE;
	if (!am->disk || !am->flags || !am->pending || !am->pages || !am->prev || !am->next) {
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
	free(am->prev);
	free(am->next);
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

/* Known beats suspect: an extent once known to differ stays so until copied. */
static bool mark_sync(struct activemap *am, uint32_t e, bool known)
{
	uint8_t *f = &am->flags[e];

	if (!(*f & EXT_SYNC)) {
		*f |= EXT_SYNC | (known ? 0 : EXT_SUSPECT);
		am->dirty++;
		am->suspect += !known;
	} else if (known && (*f & EXT_SUSPECT)) {
		*f &= (uint8_t)~EXT_SUSPECT;
		am->suspect--;
	}
	return disk_set(am, e);
}

/* The extent no longer needs resync. */
static void unmark_sync(struct activemap *am, uint32_t e)
{
	if (am->flags[e] & EXT_SUSPECT)
		am->suspect--;
	am->flags[e] &= (uint8_t)~(EXT_SYNC | EXT_SUSPECT);
	am->dirty--;
}

/* An extent with no writes in flight and nothing to resync may be clear on disk. */
static bool clear_if_idle(struct activemap *am, uint32_t e)
{
	if (am->pending[e] != 0 || (am->flags[e] & EXT_SYNC))
		return false;
	return disk_clear(am, e);
}

static void lru_unlink(struct activemap *am, uint32_t e)
{
	if (am->prev[e] != NONE)
		am->next[am->prev[e]] = am->next[e];
	else
		am->head = am->next[e];
	if (am->next[e] != NONE)
		am->prev[am->next[e]] = am->prev[e];
	else
		am->tail = am->prev[e];
	am->flags[e] &= (uint8_t)~EXT_KEPT;
	am->lru_len--;
}

/* Makes e the most recent kept-dirty extent; the one pushed out of the LRU is cleared. */
static bool lru_touch(struct activemap *am, uint32_t e)
{
	if (am->flags[e] & EXT_KEPT)
		lru_unlink(am, e);
	am->prev[e] = NONE;
	am->next[e] = am->head;
	if (am->head != NONE)
		am->prev[am->head] = e;
	am->head = e;
	if (am->tail == NONE)
		am->tail = e;
	am->flags[e] |= EXT_KEPT;
	if (++am->lru_len <= am->keepdirty)
		return false;
	uint32_t old = am->tail;
	lru_unlink(am, old);
	return clear_if_idle(am, old);
}

/* Forgets the LRU (its members were cleared or now need resync). */
static void lru_reset(struct activemap *am)
{
	for (uint32_t e = am->head; e != NONE; e = am->next[e])
		am->flags[e] &= (uint8_t)~EXT_KEPT;
	am->head = am->tail = NONE;
	am->lru_len = 0;
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
			mark_sync(am, e, false);
	}
	set_loaded_image(am);
	return 0;
}

static int merge(struct activemap *am, uint64_t byte_offset, const uint8_t *bytes, size_t len, bool known)
{
	if (byte_offset > activemap_ondisk_size(am) || len > activemap_ondisk_size(am) - byte_offset)
		return -1;
	for (size_t i = 0; i < len; i++) {
		for (uint32_t b = 0; b < 8 && bytes[i]; b++) {
			uint64_t e = (byte_offset + i) * 8 + b;
			if ((bytes[i] & (1u << b)) && e < am->nextents)
				mark_sync(am, (uint32_t)e, known);
		}
	}
	return 0;
}

int activemap_merge(struct activemap *am, uint64_t byte_offset, const uint8_t *bytes, size_t len)
{
	return merge(am, byte_offset, bytes, len, false);
}

int activemap_merge_known(struct activemap *am, uint64_t byte_offset, const uint8_t *bytes, size_t len)
{
	return merge(am, byte_offset, bytes, len, true);
}

void activemap_known_image(const struct activemap *am, uint32_t page, uint8_t *out)
{
	uint32_t first = page * BITS_PER_PAGE;

	memset(out, 0, ACTIVEMAP_PAGE_SIZE);
	for (uint32_t i = 0; i < BITS_PER_PAGE && first + i < am->nextents; i++) {
		if ((am->flags[first + i] & (EXT_SYNC | EXT_SUSPECT)) == EXT_SYNC)
			out[i / 8] |= (uint8_t)(1u << (i % 8));
	}
}

bool activemap_write_start(struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;

	if (!extent_range(am, offset, length, &first, &last))
		return false;
	for (uint32_t e = first; e <= last; e++) {
		am->pending[e]++;
		if (am->partner_lost)
			mark_sync(am, e, true);
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
	lru_reset(am); /* every member now needs resync */
	for (uint32_t e = 0; e < am->nextents; e++) {
		am->flags[e] &= (uint8_t)~(EXT_COPYING | EXT_REDO);
		/* A write in flight may have reached one replica only; a kept extent's writes
		 * reached both, and differ only if one node loses what it had not flushed. */
		if (am->pending[e] > 0)
			mark_sync(am, e, true);
		else if (disk_bit(am, e))
			mark_sync(am, e, false);
	}
	am->copying = 0;
}

void activemap_mark_differs(struct activemap *am, uint64_t offset, uint64_t length)
{
	uint32_t first, last;

	if (!extent_range(am, offset, length, &first, &last))
		return;
	for (uint32_t e = first; e <= last; e++) {
		if (am->flags[e] & EXT_KEPT)
			lru_unlink(am, e);
		mark_sync(am, e, true);
		if (am->flags[e] & EXT_COPYING)
			am->flags[e] |= EXT_REDO;
	}
}

void activemap_partner_back(struct activemap *am)
{
	am->partner_lost = false;
	am->cursor = 0;
}

bool activemap_sync_next(struct activemap *am, uint64_t *offset, uint64_t *length, bool *suspect)
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
		*suspect = am->flags[e] & EXT_SUSPECT;
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
		*f &= (uint8_t)~EXT_COPYING;
		unmark_sync(am, e);
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

/* The bytes of `count` extents, the last one counting its real length if `last_in`. */
static uint64_t extent_bytes(const struct activemap *am, uint32_t count, bool last_in)
{
	uint64_t bytes = (uint64_t)count << am->shift;

	if (last_in)
		bytes -= ((uint64_t)am->nextents << am->shift) - am->size;
	return bytes;
}

uint64_t activemap_dirty_bytes(const struct activemap *am)
{
	return extent_bytes(am, am->dirty, am->flags[am->nextents - 1] & EXT_SYNC);
}

uint64_t activemap_suspect_bytes(const struct activemap *am)
{
	return extent_bytes(am, am->suspect, am->flags[am->nextents - 1] & EXT_SUSPECT);
}

void activemap_mark_all(struct activemap *am)
{
	lru_reset(am);
	for (uint32_t e = 0; e < am->nextents; e++)
		mark_sync(am, e, true);
}

void activemap_clear_all(struct activemap *am)
{
	lru_reset(am);
	for (uint32_t e = 0; e < am->nextents; e++) {
		am->flags[e] = 0;
		clear_if_idle(am, e);
	}
	am->dirty = 0;
	am->suspect = 0;
	am->copying = 0;
	am->cursor = 0;
}

void activemap_clear_suspect(struct activemap *am)
{
	lru_reset(am);
	for (uint32_t e = 0; e < am->nextents; e++) {
		am->flags[e] &= (uint8_t)~(EXT_COPYING | EXT_REDO);
		if ((am->flags[e] & (EXT_SYNC | EXT_SUSPECT)) == EXT_SYNC)
			continue;
		if (am->flags[e] & EXT_SYNC)
			unmark_sync(am, e);
		clear_if_idle(am, e);
	}
	am->copying = 0;
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

/* ---- resize ---- */

/* p (n elements of size bytes) grown to m elements, the new ones zero; NULL when out of
 * memory (p unchanged). */
static void *grow_zeroed(void *p, size_t n, size_t m, size_t size)
{
	char *q = realloc(p, m * size);

	if (q != NULL)
		memset(q + n * size, 0, (m - n) * size);
	return q;
}

int activemap_grow(struct activemap *am, uint64_t size)
{
	uint32_t nextents, npages;
	void *p;

	if (size < am->size || (size - 1) / am->extent_size >= MAX_EXTENTS)
		return -1;
	nextents = extents_for(size, am->extent_size);
	npages = activemap_pages_for(size, am->extent_size);
	/* Every per-extent and per-page array of struct activemap grows here.  Each is
	 * replaced as soon as it is grown: a later failure leaves bigger arrays behind the same
	 * counts, which is harmless. */
	if ((p = grow_zeroed(am->disk, am->npages, npages, ACTIVEMAP_PAGE_SIZE)) == NULL)
		return -1;
	am->disk = p;
	if ((p = grow_zeroed(am->flags, am->nextents, nextents, sizeof(*am->flags))) == NULL)
		return -1;
	am->flags = p;
	if ((p = grow_zeroed(am->pending, am->nextents, nextents, sizeof(*am->pending))) == NULL)
		return -1;
	am->pending = p;
	if ((p = grow_zeroed(am->pages, am->npages, npages, sizeof(*am->pages))) == NULL)
		return -1;
	am->pages = p;
	/* The LRU links: only members' are read, and no new extent is one. */
	if ((p = grow_zeroed(am->prev, am->nextents, nextents, sizeof(*am->prev))) == NULL)
		return -1;
	am->prev = p;
	if ((p = grow_zeroed(am->next, am->nextents, nextents, sizeof(*am->next))) == NULL)
		return -1;
	am->next = p;
	am->size = size;
	am->nextents = nextents;
	am->npages = npages;
	return 0;
}
