/* The activemap as the daemon will drive it: a simulated metadata disk receives the stale
 * pages, and a "crash" reloads the map from that disk only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ha/activemap.h"

#define MiB (1ull << 20)
#define EXT MiB
#define EXTENTS_PER_PAGE (ACTIVEMAP_PAGE_SIZE * 8ull)

struct sim {
	struct activemap *am;
	uint8_t *disk; /* what survives a crash */
	unsigned page_writes;
};

static void sim_init(struct sim *s, uint64_t size, uint32_t keepdirty)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(activemap_new(size, EXT, keepdirty, &s->am), 0);
	s->disk = calloc(1, activemap_ondisk_size(s->am));
	assert_non_null(s->disk);
}

static void sim_free(struct sim *s)
{
	activemap_free(s->am);
	free(s->disk);
}

/* Writes every stale page to the simulated disk. */
static void flush(struct sim *s)
{
	uint32_t page = 0;
	uint64_t version;

	while (activemap_stale_page(s->am, page, &page)) {
		const uint8_t *img = activemap_page(s->am, page, &version);
		memcpy(s->disk + (size_t)page * ACTIVEMAP_PAGE_SIZE, img, ACTIVEMAP_PAGE_SIZE);
		activemap_page_written(s->am, page, version);
		s->page_writes++;
	}
}

static bool disk_has(const struct sim *s, uint64_t extent)
{
	return s->disk[extent / 8] & (1u << (extent % 8));
}

/* A whole mirrored write: metadata first when needed, then data, then completion. */
static void write_extent(struct sim *s, uint64_t extent)
{
	if (activemap_write_start(s->am, extent * EXT, 4096)) {
		assert_false(activemap_write_ready(s->am, extent * EXT, 4096));
		flush(s);
	}
	assert_true(activemap_write_ready(s->am, extent * EXT, 4096));
	assert_true(disk_has(s, extent));
	activemap_write_complete(s->am, extent * EXT, 4096);
}

/* The next extent to resync, known or suspect alike. */
static bool next_copy(struct activemap *am, uint64_t *off, uint64_t *len)
{
	bool suspect;
	return activemap_sync_next(am, off, len, &suspect);
}

/* The map a restarted node builds from its disk. */
static struct activemap *crash_and_reload(const struct sim *s)
{
	struct activemap *am;
	assert_int_equal(activemap_new(activemap_size(s->am), EXT, 4, &am), 0);
	assert_int_equal(activemap_load(am, s->disk, activemap_ondisk_size(am)), 0);
	return am;
}

static void geometry_and_bad_parameters_are_refused(void **state)
{
	struct activemap *am;

	assert_int_equal(activemap_new(0, EXT, 4, &am), -1);
	assert_int_equal(activemap_new(MiB, 3 * 4096, 4, &am), -1);
	assert_int_equal(activemap_new(MiB, 2048, 4, &am), -1);
	assert_int_equal(activemap_new(MiB, EXT, ACTIVEMAP_MAX_KEEPDIRTY + 1, &am), -1);
	assert_int_equal(activemap_new(1ull << 52, 4096, 4, &am), -1); /* 2^40 extents */
	assert_int_equal(activemap_new(10 * MiB + 512, EXT, 4, &am), 0);
	assert_int_equal(activemap_extent_count(am), 11);
	assert_int_equal(activemap_page_count(am), 1);
	assert_int_equal(activemap_ondisk_size(am), 4096);
	activemap_free(am);
	/* one page covers 32768 extents */
	assert_int_equal(activemap_pages_for(EXTENTS_PER_PAGE * EXT + 1, EXT), 2);
	assert_int_equal(activemap_pages_for(EXTENTS_PER_PAGE * EXT, EXT), 1);
}

static void first_write_to_an_extent_waits_for_its_bit_on_disk(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 4);

	assert_true(activemap_write_start(s.am, 3 * EXT + 512, 8192));
	assert_false(activemap_write_ready(s.am, 3 * EXT + 512, 8192));
	flush(&s);
	assert_int_equal(s.page_writes, 1);
	assert_true(activemap_write_ready(s.am, 3 * EXT + 512, 8192));
	assert_true(disk_has(&s, 3));
	assert_false(disk_has(&s, 4));
	/* a second write to the same extent costs no metadata write */
	assert_false(activemap_write_start(s.am, 3 * EXT, 512));
	activemap_write_complete(s.am, 3 * EXT + 512, 8192);
	activemap_write_complete(s.am, 3 * EXT, 512);
	flush(&s);
	assert_int_equal(s.page_writes, 1);
	sim_free(&s);
}

static void write_spanning_two_extents_sets_both(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 4);

	assert_true(activemap_write_start(s.am, 2 * EXT - 4096, 8192));
	flush(&s);
	assert_true(disk_has(&s, 1) && disk_has(&s, 2));
	sim_free(&s);
}

static void a_write_behind_an_unfinished_page_write_also_waits(void **state)
{
	struct sim s;
	uint64_t version;
	sim_init(&s, 64 * MiB, 4);

	assert_true(activemap_write_start(s.am, 0, 4096));
	(void)activemap_page(s.am, 0, &version); /* page write submitted, not complete */
	/* the bit of extent 0 is set in memory already, yet not durable: wait too */
	assert_true(activemap_write_start(s.am, 4096, 4096));
	activemap_page_written(s.am, 0, version);
	assert_true(activemap_write_ready(s.am, 0, 8192));
	sim_free(&s);
}

static void newer_bit_needs_newer_page_write(void **state)
{
	struct sim s;
	uint64_t old;
	sim_init(&s, 64 * MiB, 4);

	activemap_write_start(s.am, 0, 4096);
	(void)activemap_page(s.am, 0, &old);
	/* extent 5 set after the image of extent 0 was taken: that old image does not cover it */
	assert_true(activemap_write_start(s.am, 5 * EXT, 4096));
	activemap_page_written(s.am, 0, old);
	assert_false(activemap_write_ready(s.am, 5 * EXT, 4096));
	flush(&s);
	assert_true(activemap_write_ready(s.am, 5 * EXT, 4096));
	sim_free(&s);
}

static void keepdirty_clears_only_the_least_recent_extent(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 2);

	write_extent(&s, 0);
	write_extent(&s, 1);
	assert_true(disk_has(&s, 0) && disk_has(&s, 1));
	unsigned before = s.page_writes;
	/* hot extent 0 again: no metadata write, and it becomes most recent */
	write_extent(&s, 0);
	assert_int_equal(s.page_writes, before);
	write_extent(&s, 2); /* pushes out extent 1 */
	flush(&s);
	assert_true(disk_has(&s, 0));
	assert_false(disk_has(&s, 1));
	assert_true(disk_has(&s, 2));
	assert_int_equal(activemap_dirty_count(s.am), 0);
	sim_free(&s);
}

static void keepdirty_zero_clears_at_completion(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 0);

	write_extent(&s, 7);
	flush(&s);
	assert_false(disk_has(&s, 7));
	sim_free(&s);
}

static void evicted_extent_with_writes_in_flight_stays_set(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 1);

	write_extent(&s, 0);
	activemap_write_start(s.am, 0, 4096); /* still in flight */
	flush(&s);
	write_extent(&s, 1);                  /* pushes extent 0 out of the LRU */
	flush(&s);
	assert_true(disk_has(&s, 0));
	activemap_write_complete(s.am, 0, 4096);
	write_extent(&s, 2);
	flush(&s);
	assert_false(disk_has(&s, 0));
	assert_false(disk_has(&s, 1));
	sim_free(&s);
}

static void crash_while_in_sync_resyncs_only_extents_in_flight_or_kept(void **state)
{
	struct sim s;
	sim_init(&s, 1024 * MiB, 2);

	for (uint64_t e = 0; e < 100; e++)
		write_extent(&s, e);
	activemap_write_start(s.am, 500 * EXT, 4096); /* in flight at the crash */
	flush(&s);
	struct activemap *after = crash_and_reload(&s);
	/* kept-dirty 98, 99 and in-flight 500; every older one was cleared lazily */
	assert_int_equal(activemap_dirty_count(after), 3);
	assert_true(activemap_needs_sync(after, 98 * EXT, 2 * EXT));
	assert_true(activemap_needs_sync(after, 500 * EXT, 1));
	assert_false(activemap_needs_sync(after, 0, 98 * EXT));
	activemap_free(after);
	sim_free(&s);
}

static void unflushed_lazy_clears_cost_only_a_needless_resync(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 0);

	assert_true(activemap_write_start(s.am, 0, 4096));
	flush(&s);
	assert_true(activemap_write_complete(s.am, 0, 4096)); /* clear not yet written */
	struct activemap *after = crash_and_reload(&s);
	assert_int_equal(activemap_dirty_count(after), 1);
	activemap_free(after);
	sim_free(&s);
}

static void partner_lost_keeps_written_extents_until_resync(void **state)
{
	struct sim s;
	uint64_t off, len;
	sim_init(&s, 64 * MiB, 4);

	write_extent(&s, 1); /* in sync, kept dirty */
	activemap_partner_lost(s.am);
	assert_int_equal(activemap_dirty_count(s.am), 1); /* kept extent: state unknown to partner */
	write_extent(&s, 10);
	write_extent(&s, 20);
	write_extent(&s, 10);
	flush(&s);
	assert_int_equal(activemap_dirty_count(s.am), 3);
	assert_int_equal(activemap_dirty_bytes(s.am), 3 * EXT);
	assert_false(next_copy(s.am, &off, &len)); /* nobody to copy to */

	activemap_partner_back(s.am);
	uint64_t expect[] = { 1, 10, 20 };
	for (size_t i = 0; i < 3; i++) {
		assert_true(next_copy(s.am, &off, &len));
		assert_int_equal(off, expect[i] * EXT);
		assert_int_equal(len, EXT);
	}
	assert_false(next_copy(s.am, &off, &len)); /* all in flight */
	for (size_t i = 0; i < 3; i++)
		activemap_sync_complete(s.am, expect[i] * EXT, EXT);
	flush(&s);
	assert_int_equal(activemap_dirty_count(s.am), 0);
	assert_false(disk_has(&s, 1) || disk_has(&s, 10) || disk_has(&s, 20));
	sim_free(&s);
}

static void extent_written_while_copied_is_copied_again(void **state)
{
	struct sim s;
	uint64_t off, len;
	sim_init(&s, 64 * MiB, 4);

	activemap_partner_lost(s.am);
	write_extent(&s, 4);
	activemap_partner_back(s.am);
	assert_true(next_copy(s.am, &off, &len));
	write_extent(&s, 4); /* lands between the copy's read and its arrival */
	assert_false(activemap_sync_complete(s.am, off, len));
	assert_int_equal(activemap_dirty_count(s.am), 1);
	assert_true(next_copy(s.am, &off, &len));
	assert_int_equal(off, 4 * EXT);
	activemap_sync_complete(s.am, off, len);
	assert_int_equal(activemap_dirty_count(s.am), 0);
	sim_free(&s);
}

static void copy_started_under_a_write_in_flight_is_copied_again(void **state)
{
	struct sim s;
	uint64_t off, len;
	sim_init(&s, 64 * MiB, 4);

	activemap_mark_all(s.am);
	activemap_write_start(s.am, 0, 4096);
	assert_true(next_copy(s.am, &off, &len));
	assert_int_equal(off, 0);
	activemap_write_complete(s.am, 0, 4096);
	activemap_sync_complete(s.am, off, len);
	assert_true(activemap_needs_sync(s.am, 0, 1));
	sim_free(&s);
}

static void partner_lost_during_resync_voids_copies_in_flight(void **state)
{
	struct sim s;
	uint64_t off, len;
	sim_init(&s, 64 * MiB, 4);

	activemap_mark_all(s.am);
	assert_true(next_copy(s.am, &off, &len));
	activemap_partner_lost(s.am);
	assert_false(activemap_sync_complete(s.am, off, len));
	assert_int_equal(activemap_dirty_count(s.am), 64);
	activemap_partner_back(s.am);
	assert_true(next_copy(s.am, &off, &len));
	assert_int_equal(off, 0);
	sim_free(&s);
}

static void load_marks_set_extents_for_resync_and_ignores_tail_bits(void **state)
{
	struct activemap *am;
	uint8_t bitmap[4096] = { 0 };

	assert_int_equal(activemap_new(10 * MiB, EXT, 4, &am), 0);
	bitmap[0] = 0x05;      /* extents 0 and 2 */
	bitmap[1] = 0xfe;      /* extent 9, then bits past the 10 extents */
	bitmap[4095] = 0xff;
	assert_int_equal(activemap_load(am, bitmap, 100), -1);
	assert_int_equal(activemap_load(am, bitmap, sizeof(bitmap)), 0);
	assert_int_equal(activemap_dirty_count(am), 3);
	uint32_t page;
	assert_false(activemap_stale_page(am, 0, &page)); /* it is what the disk holds */
	activemap_free(am);
}

static void merge_adds_the_partners_extents_chunk_by_chunk(void **state)
{
	struct sim s;
	uint8_t other[4096] = { 0 };
	sim_init(&s, 64 * MiB, 4);

	activemap_partner_lost(s.am);
	write_extent(&s, 3);
	other[0] = 0x18; /* partner had 3 and 4 */
	other[7] = 0xc0; /* and 62, 63 */
	assert_int_equal(activemap_merge(s.am, 0, other, 4), 0);
	assert_int_equal(activemap_merge(s.am, 4, other + 4, 4), 0);
	assert_int_equal(activemap_merge(s.am, 4090, other, 7), -1);
	assert_int_equal(activemap_merge(s.am, UINT64_MAX, other, 1), -1);
	assert_int_equal(activemap_dirty_count(s.am), 4);
	flush(&s);
	assert_true(disk_has(&s, 4) && disk_has(&s, 63));
	sim_free(&s);
}

static void mark_all_and_clear_all_for_the_initial_sync(void **state)
{
	struct sim s;
	sim_init(&s, 10 * MiB + 4096, 4);

	activemap_mark_all(s.am);
	assert_int_equal(activemap_dirty_count(s.am), 11);
	assert_int_equal(activemap_dirty_bytes(s.am), 10 * MiB + 4096);
	flush(&s);
	assert_true(disk_has(&s, 10));
	activemap_write_start(s.am, 2 * EXT, 512);
	activemap_clear_all(s.am);
	flush(&s);
	assert_int_equal(activemap_dirty_count(s.am), 0);
	assert_int_equal(activemap_dirty_bytes(s.am), 0);
	assert_false(disk_has(&s, 10));
	assert_true(disk_has(&s, 2)); /* a write in flight keeps its bit */
	sim_free(&s);
}

static void resync_moves_only_changed_extents(void **state)
{
	struct sim s;
	uint64_t off, len, moved = 0;
	sim_init(&s, 4096 * MiB, 64);

	activemap_partner_lost(s.am);
	/* 10 MiB written as scattered 64 KiB writes into 10 distinct extents, some twice */
	for (int i = 0; i < 160; i++) {
		uint64_t e = (uint64_t)(i % 10) * 300;
		activemap_write_start(s.am, e * EXT + (uint64_t)(i / 10) * 65536, 65536);
		activemap_write_complete(s.am, e * EXT + (uint64_t)(i / 10) * 65536, 65536);
	}
	activemap_partner_back(s.am);
	while (next_copy(s.am, &off, &len)) {
		moved += len;
		activemap_sync_complete(s.am, off, len);
	}
	assert_int_equal(moved, 10 * MiB);
	sim_free(&s);
}

/* What resync must copy and what it only compares, in handing-out order. */
static void expect_next(struct activemap *am, uint64_t extent, bool suspect)
{
	uint64_t off, len;
	bool got;

	assert_true(activemap_sync_next(am, &off, &len, &got));
	assert_int_equal(off, extent * EXT);
	assert_int_equal(got, suspect);
}

static void kept_extents_are_suspect_written_and_in_flight_ones_known(void **state)
{
	struct sim s;
	sim_init(&s, 64 * MiB, 4);

	write_extent(&s, 1);                          /* in sync, completed on both: kept */
	activemap_write_start(s.am, 2 * EXT, 4096);  /* in flight when the partner goes */
	flush(&s);
	activemap_partner_lost(s.am);
	write_extent(&s, 10);                         /* written alone */
	write_extent(&s, 1);                          /* a kept one written alone: now known */
	activemap_write_complete(s.am, 2 * EXT, 4096);
	write_extent(&s, 5);
	assert_int_equal(activemap_dirty_count(s.am), 4);
	assert_int_equal(activemap_suspect_bytes(s.am), 0);
	sim_free(&s);

	sim_init(&s, 64 * MiB, 4);
	write_extent(&s, 1);
	write_extent(&s, 7);
	activemap_partner_lost(s.am);
	write_extent(&s, 10);
	assert_int_equal(activemap_suspect_bytes(s.am), 2 * EXT);
	activemap_partner_back(s.am);
	expect_next(s.am, 1, true);
	expect_next(s.am, 7, true);
	expect_next(s.am, 10, false);
	sim_free(&s);
}

static void a_restarted_map_suspects_every_set_extent_until_the_partner_says_known(void **state)
{
	struct sim s;
	struct activemap *am;
	uint8_t known[ACTIVEMAP_PAGE_SIZE];
	sim_init(&s, 64 * MiB, 4);

	activemap_partner_lost(s.am);
	write_extent(&s, 3);
	write_extent(&s, 9);
	am = crash_and_reload(&s);
	assert_int_equal(activemap_suspect_bytes(am), 2 * EXT);
	activemap_known_image(am, 0, known);
	assert_int_equal(known[0] | known[1], 0);
	/* the surviving partner knows 3 and 9 differ (written alone); it sends 9 and 12 set,
	 * of them 9 known */
	activemap_known_image(s.am, 0, known);
	assert_int_equal(known[0], 0x08);
	assert_int_equal(known[1], 0x02);
	known[0] = 0;
	assert_int_equal(activemap_merge(am, 0, (const uint8_t[]){0, 0x12}, 2), 0);
	assert_int_equal(activemap_merge_known(am, 0, known, 2), 0);
	assert_int_equal(activemap_dirty_count(am), 3);
	assert_int_equal(activemap_suspect_bytes(am), 2 * EXT); /* 3 and 12 */
	assert_int_equal(activemap_merge_known(am, 4095, known, 2), -1);
	activemap_partner_back(am);
	expect_next(am, 3, true);
	expect_next(am, 9, false);
	expect_next(am, 12, true);
	activemap_free(am);
	sim_free(&s);
}

static void a_write_failed_on_one_replica_is_known_until_copied(void **state)
{
	struct sim s;
	uint64_t off, len;
	sim_init(&s, 64 * MiB, 4);

	write_extent(&s, 6);
	activemap_write_start(s.am, 6 * EXT, 4096);
	activemap_mark_differs(s.am, 6 * EXT, 4096);
	activemap_write_complete(s.am, 6 * EXT, 4096);
	for (uint64_t e = 20; e < 30; e++) /* pushes every kept extent out */
		write_extent(&s, e);
	flush(&s);
	assert_true(disk_has(&s, 6));
	assert_true(activemap_needs_sync(s.am, 6 * EXT, 1));
	activemap_clear_suspect(s.am); /* an orderly goodbye in sync */
	flush(&s);
	assert_true(disk_has(&s, 6));
	assert_false(disk_has(&s, 29)); /* kept, not known: cleared */
	assert_int_equal(activemap_dirty_count(s.am), 1);
	expect_next(s.am, 6, false);
	assert_false(next_copy(s.am, &off, &len));
	activemap_sync_complete(s.am, 6 * EXT, EXT);
	flush(&s);
	assert_false(disk_has(&s, 6));
	sim_free(&s);
}

static void a_warm_set_of_default_keepdirty_extents_needs_no_metadata_write(void **state)
{
	struct sim s;
	sim_init(&s, (uint64_t)ACTIVEMAP_DEFAULT_KEEPDIRTY * EXT, ACTIVEMAP_DEFAULT_KEEPDIRTY);

	for (uint64_t e = 0; e < ACTIVEMAP_DEFAULT_KEEPDIRTY; e++)
		write_extent(&s, e);
	for (uint64_t e = 0; e < ACTIVEMAP_DEFAULT_KEEPDIRTY; e++) {
		uint64_t x = (e * 389) % ACTIVEMAP_DEFAULT_KEEPDIRTY; /* in another order */
		assert_false(activemap_write_start(s.am, x * EXT, 4096));
		activemap_write_complete(s.am, x * EXT, 4096);
	}
	sim_free(&s);
}

static void ranges_outside_the_device_change_nothing(void **state)
{
	struct sim s;
	uint32_t page;
	sim_init(&s, 8 * MiB, 4);

	assert_false(activemap_write_start(s.am, 8 * MiB, 512));
	assert_false(activemap_write_start(s.am, 7 * MiB, 2 * MiB));
	assert_false(activemap_write_start(s.am, 0, 0));
	assert_false(activemap_write_complete(s.am, UINT64_MAX, 2));
	assert_false(activemap_sync_complete(s.am, 0, 0));
	assert_false(activemap_stale_page(s.am, 0, &page));
	sim_free(&s);
}

static void extents_on_a_later_page_make_that_page_stale(void **state)
{
	struct sim s;
	uint32_t page;
	sim_init(&s, (EXTENTS_PER_PAGE + 10) * EXT, 4);

	assert_int_equal(activemap_page_count(s.am), 2);
	activemap_write_start(s.am, (EXTENTS_PER_PAGE + 1) * EXT, 4096);
	assert_true(activemap_stale_page(s.am, 0, &page));
	assert_int_equal(page, 1);
	assert_false(activemap_stale_page(s.am, 2, &page));
	flush(&s);
	assert_true(disk_has(&s, EXTENTS_PER_PAGE + 1));
	assert_true(activemap_write_ready(s.am, 0, 4096));
	sim_free(&s);
}

static void dirty_runs_are_reported_without_changing_the_map(void **state)
{
	struct sim s;
	uint64_t off, len;
	sim_init(&s, 10 * MiB + 4096, 4);

	activemap_partner_lost(s.am);
	write_extent(&s, 2);
	write_extent(&s, 3);
	write_extent(&s, 7);
	write_extent(&s, 10);
	assert_true(activemap_next_dirty(s.am, 0, &off, &len));
	assert_int_equal(off, 2 * EXT);
	assert_int_equal(len, 2 * EXT);
	assert_true(activemap_next_dirty(s.am, off + len, &off, &len));
	assert_int_equal(off, 7 * EXT);
	assert_int_equal(len, EXT);
	assert_true(activemap_next_dirty(s.am, off + len, &off, &len));
	assert_int_equal(off, 10 * EXT);
	assert_int_equal(len, 4096); /* the short last extent */
	assert_false(activemap_next_dirty(s.am, off + len, &off, &len));
	assert_int_equal(activemap_dirty_count(s.am), 4);
	sim_free(&s);
}

/* A device grown: set extents stay set, the new ones are clear and writable, the new page
 * is written like any other. */
static void grow_keeps_the_bits_and_adds_clear_extents(void **state)
{
	struct sim s;
	uint64_t off, len;

	sim_init(&s, 10 * MiB + 512, 4);
	activemap_partner_lost(s.am);
	write_extent(&s, 3);
	assert_int_equal(activemap_grow(s.am, 5 * MiB), -1); /* smaller */
	assert_int_equal(activemap_grow(s.am, EXTENTS_PER_PAGE * EXT + 2 * EXT), 0);
	assert_int_equal(activemap_extent_count(s.am), EXTENTS_PER_PAGE + 2);
	assert_int_equal(activemap_page_count(s.am), 2);
	assert_int_equal(activemap_dirty_count(s.am), 1);
	assert_true(activemap_needs_sync(s.am, 3 * EXT, 4096));
	assert_false(activemap_needs_sync(s.am, 11 * EXT, EXTENTS_PER_PAGE * EXT - 9 * EXT));
	assert_true(activemap_next_dirty(s.am, 0, &off, &len));
	assert_int_equal(off, 3 * EXT);
	s.disk = realloc(s.disk, activemap_ondisk_size(s.am));
	memset(s.disk + ACTIVEMAP_PAGE_SIZE, 0, ACTIVEMAP_PAGE_SIZE);
	write_extent(&s, EXTENTS_PER_PAGE + 1); /* on the new page */
	assert_int_equal(activemap_dirty_count(s.am), 2);
	sim_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(geometry_and_bad_parameters_are_refused),
		cmocka_unit_test(first_write_to_an_extent_waits_for_its_bit_on_disk),
		cmocka_unit_test(write_spanning_two_extents_sets_both),
		cmocka_unit_test(a_write_behind_an_unfinished_page_write_also_waits),
		cmocka_unit_test(newer_bit_needs_newer_page_write),
		cmocka_unit_test(keepdirty_clears_only_the_least_recent_extent),
		cmocka_unit_test(keepdirty_zero_clears_at_completion),
		cmocka_unit_test(evicted_extent_with_writes_in_flight_stays_set),
		cmocka_unit_test(crash_while_in_sync_resyncs_only_extents_in_flight_or_kept),
		cmocka_unit_test(unflushed_lazy_clears_cost_only_a_needless_resync),
		cmocka_unit_test(partner_lost_keeps_written_extents_until_resync),
		cmocka_unit_test(extent_written_while_copied_is_copied_again),
		cmocka_unit_test(copy_started_under_a_write_in_flight_is_copied_again),
		cmocka_unit_test(partner_lost_during_resync_voids_copies_in_flight),
		cmocka_unit_test(load_marks_set_extents_for_resync_and_ignores_tail_bits),
		cmocka_unit_test(merge_adds_the_partners_extents_chunk_by_chunk),
		cmocka_unit_test(mark_all_and_clear_all_for_the_initial_sync),
		cmocka_unit_test(resync_moves_only_changed_extents),
		cmocka_unit_test(ranges_outside_the_device_change_nothing),
		cmocka_unit_test(kept_extents_are_suspect_written_and_in_flight_ones_known),
		cmocka_unit_test(a_restarted_map_suspects_every_set_extent_until_the_partner_says_known),
		cmocka_unit_test(a_write_failed_on_one_replica_is_known_until_copied),
		cmocka_unit_test(a_warm_set_of_default_keepdirty_extents_needs_no_metadata_write),
		cmocka_unit_test(extents_on_a_later_page_make_that_page_stale),
		cmocka_unit_test(dirty_runs_are_reported_without_changing_the_map),
		cmocka_unit_test(grow_keeps_the_bits_and_adds_clear_extents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
