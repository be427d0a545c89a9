/* The HA metadata file on a real file: create/open round trips, atomic superblock updates
 * across two slots (a torn or corrupt newest slot falls back to the older one), error
 * text for every kind of bad file, and the activemap surviving a restart through it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "ha/activemap.h"
#include "ha/meta.h"

#define MiB (1ull << 20)

struct fixture {
	char dir[64], path[96];
	struct ha_meta_super sb;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ha_meta.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/ha1.meta", f->dir);
	f->sb = (struct ha_meta_super){
		.uuid = { 0x60, 0x01, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
		.size = 40000 * MiB, /* two bitmap pages at 1 MiB extents */
		.extent_size = 1 << 20,
		.role = HA_ROLE_PRIMARY,
		.state = HA_SYNC_SYNCHRONIZED,
		.reason = HA_REASON_NONE,
		.initial_sync = HA_INITIAL_CLEAR,
		.gen = { .current = 0x1234, .history = { 7, 0 } },
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void create_file(struct fixture *f)
{
	struct ha_meta *m;
	assert_int_equal(ha_meta_create(f->path, &f->sb, &m, f->err, sizeof(f->err)), 0);
	ha_meta_close(m);
}

/* Opens expecting failure; returns the error text. */
static const char *open_fails(struct fixture *f)
{
	struct ha_meta *m;
	struct ha_meta_super sb;
	assert_int_equal(ha_meta_open(f->path, &sb, &m, f->err, sizeof(f->err)), -1);
	assert_null(m);
	assert_non_null(strstr(f->err, f->path));
	return f->err;
}

static struct ha_meta *open_ok(struct fixture *f, struct ha_meta_super *sb)
{
	struct ha_meta *m;
	assert_int_equal(ha_meta_open(f->path, sb, &m, f->err, sizeof(f->err)), 0);
	return m;
}

static void poke(struct fixture *f, off_t off, const void *bytes, size_t len)
{
	int fd = open(f->path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

/* Rewrites slot `slot` with a valid checksum after `edit` changed its bytes. */
static void reseal(struct fixture *f, unsigned slot, void (*edit)(uint8_t *buf))
{
	uint8_t buf[HA_META_SLOT_SIZE];
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), slot * HA_META_SLOT_SIZE), (ssize_t)sizeof(buf));
	edit(buf);
	put_be32(buf + HA_META_SLOT_SIZE - 4, crc32c(buf, HA_META_SLOT_SIZE - 4));
	assert_int_equal(pwrite(fd, buf, sizeof(buf), slot * HA_META_SLOT_SIZE), (ssize_t)sizeof(buf));
	close(fd);
}

static void created_file_opens_with_the_same_superblock_and_a_clear_bitmap(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	struct stat st;

	create_file(f);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, HA_META_BITMAP_OFFSET + 2 * 4096);
	struct ha_meta *m = open_ok(f, &sb);
	assert_true(ha_meta_super_same(&sb, &f->sb));
	assert_int_equal(ha_meta_bitmap_size(m), 8192);
	uint8_t bitmap[8192], zero[8192] = { 0 };
	memset(bitmap, 0xaa, sizeof(bitmap));
	assert_int_equal(ha_meta_read_bitmap(m, bitmap, sizeof(bitmap), f->err, sizeof(f->err)), 0);
	assert_memory_equal(bitmap, zero, sizeof(zero));
	assert_int_equal(ha_meta_read_bitmap(m, bitmap, 4096, f->err, sizeof(f->err)), -1);
	ha_meta_close(m);
}

static void create_refuses_an_existing_file_and_a_bad_superblock(void **state)
{
	struct fixture *f = *state;
	struct ha_meta *m;

	create_file(f);
	assert_int_equal(ha_meta_create(f->path, &f->sb, &m, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "exists"));
	unlink(f->path);
	f->sb.extent_size = 3000;
	assert_int_equal(ha_meta_create(f->path, &f->sb, &m, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "extent size"));
	assert_int_equal(access(f->path, F_OK), -1);
}

static void updates_alternate_slots_and_the_newest_wins(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	struct ha_meta *m;
	uint8_t buf[HA_META_SLOT_SIZE];

	create_file(f);
	m = open_ok(f, &sb);
	/* slot 1 holds the newest (sequence 1): the next goes to slot 0, then 1 */
	assert_int_equal(ha_meta_super_encode(m, &sb, buf), 0);
	for (int i = 0; i < 5; i++) {
		sb.gen.current = 0x1000 + (uint64_t)i;
		sb.state = i % 2 ? HA_SYNC_SYNCHRONIZING : HA_SYNC_SYNCHRONIZED;
		assert_int_equal(ha_meta_update(m, &sb, f->err, sizeof(f->err)), 0);
	}
	ha_meta_close(m);
	struct ha_meta_super back;
	m = open_ok(f, &back);
	assert_true(ha_meta_super_same(&back, &sb));
	ha_meta_close(m);
}

static void torn_write_of_the_newest_slot_falls_back_to_the_older(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb, back;
	struct ha_meta *m;

	create_file(f);
	m = open_ok(f, &sb);
	sb.gen.current = 0xaaaa;
	assert_int_equal(ha_meta_update(m, &sb, f->err, sizeof(f->err)), 0); /* seq 2, slot 0 */
	struct ha_meta_super older = sb;
	sb.gen.current = 0xbbbb;
	assert_int_equal(ha_meta_update(m, &sb, f->err, sizeof(f->err)), 0); /* seq 3, slot 1 */
	ha_meta_close(m);
	/* the second half of slot 1 never reached the disk */
	static const uint8_t junk[2048] = { 0x5a };
	poke(f, HA_META_SLOT_SIZE + 2048, junk, sizeof(junk));
	m = open_ok(f, &back);
	assert_true(ha_meta_super_same(&back, &older));
	/* the next update overwrites the torn slot, never the good one */
	back.gen.current = 0xcccc;
	assert_int_equal(ha_meta_update(m, &back, f->err, sizeof(f->err)), 0);
	ha_meta_close(m);
	m = open_ok(f, &sb);
	assert_int_equal(sb.gen.current, 0xcccc);
	ha_meta_close(m);
}

static void update_encoded_but_not_written_leaves_the_slot_choice(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	uint8_t buf[HA_META_SLOT_SIZE];

	create_file(f);
	struct ha_meta *m = open_ok(f, &sb);
	assert_int_equal(ha_meta_super_encode(m, &sb, buf), 0);
	assert_int_equal(ha_meta_super_encode(m, &sb, buf), 0); /* the write failed: same slot again */
	ha_meta_super_written(m);
	assert_int_equal(ha_meta_super_encode(m, &sb, buf), HA_META_SLOT_SIZE);
	ha_meta_close(m);
}

static void update_written_by_the_caller_is_what_open_returns(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb, back;
	uint8_t buf[HA_META_SLOT_SIZE];

	create_file(f);
	struct ha_meta *m = open_ok(f, &sb);
	sb.gen.flags = GENERATION_INCONSISTENT;
	sb.state = HA_SYNC_SYNCHRONIZING;
	int64_t off = ha_meta_super_encode(m, &sb, buf);
	assert_true(off >= 0);
	/* what the daemon does through io_uring: write, fdatasync, report */
	assert_int_equal(pwrite(ha_meta_fd(m), buf, sizeof(buf), off), (ssize_t)sizeof(buf));
	assert_int_equal(fdatasync(ha_meta_fd(m)), 0);
	ha_meta_super_written(m);
	ha_meta_close(m);
	m = open_ok(f, &back);
	assert_true(ha_meta_super_same(&back, &sb));
	assert_false(ha_meta_super_same(&back, &f->sb));
	ha_meta_close(m);
}

static void update_may_not_change_identity_or_carry_bad_fields(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;

	create_file(f);
	struct ha_meta *m = open_ok(f, &sb);
	sb.size += MiB;
	assert_int_equal(ha_meta_update(m, &sb, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "geometry"));
	sb.size -= MiB;
	sb.state = HA_SYNC_NOT_SYNCHRONIZED; /* without a reason */
	assert_int_equal(ha_meta_update(m, &sb, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "reason"));
	sb.reason = HA_REASON_SPLIT_BRAIN;
	assert_int_equal(ha_meta_update(m, &sb, f->err, sizeof(f->err)), 0);
	ha_meta_close(m);
}

static void missing_or_short_file_is_named_in_the_error(void **state)
{
	struct fixture *f = *state;

	assert_non_null(strstr(open_fails(f), "No such file"));
	poke(f, 0, "x", 1);
	assert_non_null(strstr(open_fails(f), "shorter than the two superblocks"));
}

static void wrong_magic_is_not_a_metadata_file(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	poke(f, 0, "NOTMAGIC", 8);
	poke(f, HA_META_SLOT_SIZE, "NOTMAGIC", 8);
	const char *err = open_fails(f);
	assert_non_null(strstr(err, "slot 0: not an HA metadata superblock"));
	assert_non_null(strstr(err, "slot 1: not an HA metadata superblock"));
}

static void corrupt_slots_report_a_checksum_mismatch(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;

	create_file(f);
	poke(f, 100, "\1", 1); /* slot 0 damaged: slot 1 still serves */
	ha_meta_close(open_ok(f, &sb));
	poke(f, HA_META_SLOT_SIZE + 60, "\1", 1);
	assert_non_null(strstr(open_fails(f), "checksum mismatch"));
}

static void future_version(uint8_t *buf) { put_be32(buf + 8, 2); }

static void newer_format_version_is_refused_by_name(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	reseal(f, 0, future_version);
	reseal(f, 1, future_version);
	assert_non_null(strstr(open_fails(f), "format version 2"));
}

static void other_device(uint8_t *buf) { buf[24] ^= 0xff; }

static void slots_of_different_devices_are_refused(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	reseal(f, 0, other_device);
	assert_non_null(strstr(open_fails(f), "different devices"));
}

static void misplaced_sequence(uint8_t *buf) { put_be64(buf + 16, 4); }

static void sequence_in_the_wrong_slot_is_refused(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	uint64_t seq;

	create_file(f);
	reseal(f, 1, misplaced_sequence); /* 4 belongs to slot 0: slot 0 (seq 0) is used */
	struct ha_meta *m = open_ok(f, &sb);
	ha_meta_close(m);
	uint8_t file[HA_META_BITMAP_OFFSET + 8192];
	int fd = open(f->path, O_RDONLY);
	assert_int_equal(read(fd, file, sizeof(file)), (ssize_t)sizeof(file));
	close(fd);
	assert_int_equal(ha_meta_parse(file, sizeof(file), &sb, &seq, f->err, sizeof(f->err)), 0);
	assert_int_equal(seq, 0);
}

static void huge_extent(uint8_t *buf) { put_be32(buf + 48, 1u << 30); }

/* A file shorter than its geometry is refused; a longer one is what a grow cut short by a
 * crash leaves (bitmap extended, superblock not yet written): it opens with the old size
 * and is trimmed back to it. */
static void short_file_refused_long_file_trimmed(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	struct stat st;

	create_file(f);
	assert_int_equal(truncate(f->path, HA_META_BITMAP_OFFSET + 4096), 0);
	assert_non_null(strstr(open_fails(f), "geometry needs"));
	assert_int_equal(truncate(f->path, HA_META_BITMAP_OFFSET + 8192), 0);
	reseal(f, 0, huge_extent);
	reseal(f, 1, huge_extent);
	struct ha_meta *m = open_ok(f, &sb);
	assert_int_equal(sb.extent_size, 1u << 30);
	ha_meta_close(m);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, HA_META_BITMAP_OFFSET + ACTIVEMAP_PAGE_SIZE);
}

/* A grown file opens with the new size, its bitmap kept and the new pages clear; a
 * smaller size is refused. */
static void grow_keeps_the_bitmap_and_opens_with_the_new_size(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	struct ha_meta *m;
	uint8_t page[ACTIVEMAP_PAGE_SIZE] = { 0x05 }, back[3 * ACTIVEMAP_PAGE_SIZE];
	uint64_t bigger = 80000 * MiB; /* three bitmap pages */

	create_file(f);
	m = open_ok(f, &sb);
	assert_int_equal(ha_meta_write_page(m, 0, page, f->err, sizeof(f->err)), 0);
	assert_int_equal(ha_meta_grow(m, f->sb.size - MiB, &sb, f->err, sizeof(f->err)), -1);
	assert_int_equal(ha_meta_grow(m, bigger, &sb, f->err, sizeof(f->err)), 0);
	assert_int_equal(ha_meta_bitmap_size(m), 3 * ACTIVEMAP_PAGE_SIZE);
	assert_int_equal(ha_meta_write_page(m, 2, page, f->err, sizeof(f->err)), 0);
	ha_meta_close(m);
	m = open_ok(f, &sb);
	assert_int_equal(sb.size, bigger);
	assert_int_equal(ha_meta_read_bitmap(m, back, sizeof(back), f->err, sizeof(f->err)), 0);
	assert_int_equal(back[0], 0x05);                          /* kept */
	assert_int_equal(back[ACTIVEMAP_PAGE_SIZE], 0);           /* a new page, clear */
	assert_int_equal(back[2 * ACTIVEMAP_PAGE_SIZE], 0x05);
	ha_meta_close(m);
}

static void bad_role(uint8_t *buf) { buf[52] = 9; }

static void out_of_range_fields_are_refused(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	reseal(f, 0, bad_role);
	reseal(f, 1, bad_role);
	assert_non_null(strstr(open_fails(f), "unknown node role"));
}

static void activemap_survives_a_restart_through_the_file(void **state)
{
	struct fixture *f = *state;
	struct ha_meta_super sb;
	struct activemap *am;
	uint32_t page = 0;
	uint64_t version;

	create_file(f);
	struct ha_meta *m = open_ok(f, &sb);
	assert_int_equal(activemap_new(sb.size, sb.extent_size, 4, &am), 0);
	assert_int_equal(activemap_ondisk_size(am), ha_meta_bitmap_size(m));
	activemap_partner_lost(am);
	activemap_write_start(am, 5 * MiB, 4096);
	activemap_write_start(am, 39000 * MiB, 4096); /* on the second page */
	while (activemap_stale_page(am, page, &page)) {
		const uint8_t *img = activemap_page(am, page, &version);
		assert_int_equal(ha_meta_write_page(m, page, img, f->err, sizeof(f->err)), 0);
		activemap_page_written(am, page, version);
	}
	assert_int_equal(ha_meta_write_page(m, 2, activemap_page(am, 0, &version), f->err, sizeof(f->err)), -1);
	activemap_free(am);
	ha_meta_close(m);

	m = open_ok(f, &sb);
	uint8_t bitmap[8192];
	assert_int_equal(ha_meta_read_bitmap(m, bitmap, sizeof(bitmap), f->err, sizeof(f->err)), 0);
	assert_int_equal(activemap_new(sb.size, sb.extent_size, 4, &am), 0);
	assert_int_equal(activemap_load(am, bitmap, sizeof(bitmap)), 0);
	assert_int_equal(activemap_dirty_count(am), 2);
	assert_true(activemap_needs_sync(am, 39000 * MiB, 1));
	activemap_free(am);
	ha_meta_close(m);
}

static void state_and_reason_names(void **state)
{
	assert_string_equal(ha_sync_state_name(HA_SYNC_SYNCHRONIZING), "synchronizing");
	assert_null(ha_sync_state_name(0));
	assert_string_equal(ha_sync_reason_name(HA_REASON_SPLIT_BRAIN), "split brain");
	assert_null(ha_sync_reason_name(200));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(created_file_opens_with_the_same_superblock_and_a_clear_bitmap),
		T(create_refuses_an_existing_file_and_a_bad_superblock),
		T(updates_alternate_slots_and_the_newest_wins),
		T(torn_write_of_the_newest_slot_falls_back_to_the_older),
		T(update_encoded_but_not_written_leaves_the_slot_choice),
		T(update_written_by_the_caller_is_what_open_returns),
		T(update_may_not_change_identity_or_carry_bad_fields),
		T(missing_or_short_file_is_named_in_the_error),
		T(wrong_magic_is_not_a_metadata_file),
		T(corrupt_slots_report_a_checksum_mismatch),
		T(newer_format_version_is_refused_by_name),
		T(slots_of_different_devices_are_refused),
		T(sequence_in_the_wrong_slot_is_refused),
		T(short_file_refused_long_file_trimmed),
		T(grow_keeps_the_bitmap_and_opens_with_the_new_size),
		T(out_of_range_fields_are_refused),
		T(activemap_survives_a_restart_through_the_file),
		cmocka_unit_test(state_and_reason_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
