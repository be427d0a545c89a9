/* HA metadata under arbitrary input; the first byte picks one of four harnesses.
 *  0: the rest is a metadata file.  ha_meta_parse() and ha_meta_open() agree on it; an
 *     accepted file re-encodes to the same superblock, and its bitmap loads into an
 *     activemap of its geometry.  A refusal always says why.
 *  3: the rest is superblock fields.  ha_meta_encode() refuses them with a reason, or
 *     writes a slot that parses back to the same fields in a file of their geometry.
 *  1: the rest is two generations (wire form).  The two nodes always reach mirror
 *     verdicts, and from any in-sync pair one writer alone is newer, two are split brain.
 *  2: the rest is a script of activemap operations against a simulated metadata disk.
 *     Whatever the order: a data write that was allowed to start has its extents set on
 *     disk (crash safety), every extent needing resync is set in the bitmap, the dirty
 *     count and the dirty runs match, and a resync with no writes ends with nothing dirty. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "ha/activemap.h"
#include "ha/generation.h"
#include "ha/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const char *scratch_path(void)
{
	static char path[64];

	if (!path[0])
		snprintf(path, sizeof(path), "/dev/shm/fuzz_ha_meta.%d", (int)getpid());
	return path;
}

static void metadata_file(const uint8_t *data, size_t size)
{
	struct ha_meta_super sb, again, opened;
	uint64_t seq, seq_again;
	char err[512] = "";

	int parsed = ha_meta_parse(data, size, &sb, &seq, err, sizeof(err));
	check(parsed == 0 || err[0] != '\0');

	FILE *f = fopen(scratch_path(), "w");
	check(f && fwrite(data, 1, size, f) == size && fclose(f) == 0);
	struct ha_meta *m;
	int rc = ha_meta_open(scratch_path(), &opened, &m, err, sizeof(err));
	unlink(scratch_path());
	check((rc == 0) == (parsed == 0));
	if (rc != 0) {
		check(strstr(err, scratch_path()) != NULL);
		return;
	}
	check(ha_meta_super_same(&opened, &sb));
	ha_meta_close(m);

	/* the same superblock alone in its slot of a fresh image reads back identically */
	uint8_t *image = calloc(1, size);
	check(image && ha_meta_encode(&sb, seq, image + (seq % 2) * HA_META_SLOT_SIZE, err, sizeof(err)) == 0);
	check(ha_meta_parse(image, size, &again, &seq_again, err, sizeof(err)) == 0);
	check(seq_again == seq && ha_meta_super_same(&again, &sb));
	free(image);

	struct activemap *am;
	check(activemap_new(sb.size, sb.extent_size, 4, &am) == 0);
	check(activemap_ondisk_size(am) == size - HA_META_BITMAP_OFFSET);
	check(activemap_load(am, data + HA_META_BITMAP_OFFSET, size - HA_META_BITMAP_OFFSET) == 0);
	check(activemap_dirty_count(am) <= activemap_extent_count(am));
	check(activemap_dirty_bytes(am) <= sb.size);
	activemap_free(am);
}

static void superblock_fields(const uint8_t *data, size_t size)
{
	struct ha_meta_super sb = { 0 }, back;
	uint8_t slot[HA_META_SLOT_SIZE];
	char err[256] = "";
	uint64_t seq;

	if (size < HA_META_UUID_LEN + 8 + 4 + 4 + GENERATION_WIRE_SIZE + 8)
		return;
	memcpy(sb.uuid, data, HA_META_UUID_LEN);
	data += HA_META_UUID_LEN;
	sb.size = get_be64(data);
	sb.extent_size = get_be32(data + 8);
	sb.role = data[12];
	sb.state = data[13];
	sb.reason = data[14];
	sb.initial_sync = data[15];
	if (generation_decode(data + 16, &sb.gen) != 0)
		return;
	seq = get_be64(data + 16 + GENERATION_WIRE_SIZE);
	if (ha_meta_encode(&sb, seq, slot, err, sizeof(err)) != 0) {
		check(err[0] != '\0');
		return;
	}
	uint32_t pages = activemap_pages_for(sb.size, sb.extent_size);
	if (pages > 4)
		return; /* valid, but too big a file to build per input */
	size_t len = HA_META_BITMAP_OFFSET + (size_t)pages * ACTIVEMAP_PAGE_SIZE;
	uint8_t *image = calloc(1, len);
	check(image != NULL);
	memcpy(image + (seq % 2) * HA_META_SLOT_SIZE, slot, sizeof(slot));
	check(ha_meta_parse(image, len, &back, &seq, err, sizeof(err)) == 0 && ha_meta_super_same(&back, &sb));
	check(ha_meta_parse(image, len - 1, &back, &seq, err, sizeof(err)) != 0);
	free(image);
}

static enum generation_verdict mirror(enum generation_verdict v)
{
	switch (v) {
	case GENERATION_LOCAL_NEWER: return GENERATION_REMOTE_NEWER;
	case GENERATION_REMOTE_NEWER: return GENERATION_LOCAL_NEWER;
	case GENERATION_FULL_FROM_LOCAL: return GENERATION_FULL_FROM_REMOTE;
	case GENERATION_FULL_FROM_REMOTE: return GENERATION_FULL_FROM_LOCAL;
	default: return v;
	}
}

static void check_mirror(const struct generation *a, const struct generation *b)
{
	check(generation_compare(b, a) == mirror(generation_compare(a, b)));
}

/* Two disjoint streams, so the nodes never draw the same identifier. */
static uint64_t stream_rng(void *ctx)
{
	uint64_t *s = ctx;
	*s += 2;
	return *s * 0x9e3779b97f4a7c15ull;
}

static void generations(const uint8_t *data, size_t size)
{
	struct generation a, b;

	if (size < 2 * GENERATION_WIRE_SIZE)
		return;
	if (generation_decode(data, &a) != 0 || generation_decode(data + GENERATION_WIRE_SIZE, &b) != 0)
		return;
	check_mirror(&a, &b);
	check_mirror(&a, &a);
	if (generation_compare(&a, &b) != GENERATION_IN_SYNC)
		return;
	/* an in-sync pair settles its bitmaps, then parts */
	uint64_t ra = 1, rb = 2;
	generation_sync_source_done(&a);
	generation_sync_source_done(&b);
	struct generation lone = a;
	check(generation_partner_lost_write(&lone, stream_rng, &ra) == 0);
	check(generation_compare(&lone, &b) == GENERATION_LOCAL_NEWER);
	check_mirror(&lone, &b);
	struct generation other = b;
	check(generation_partner_lost_write(&other, stream_rng, &rb) == 0);
	check(generation_compare(&lone, &other) == GENERATION_SPLIT_BRAIN);
	check_mirror(&lone, &other);
	/* the operator keeps `lone`; a bitmap resync then brings them together */
	generation_discard_local(&other, &lone);
	check(generation_compare(&lone, &other) == GENERATION_LOCAL_NEWER);
	struct generation done = lone;
	generation_sync_source_done(&done);
	generation_sync_target_done(&other, &done);
	check(generation_compare(&done, &other) == GENERATION_IN_SYNC);
}

#define MAX_OPEN 16

struct range {
	uint64_t offset, length;
	bool started; /* the data write was allowed to start */
};

struct script {
	struct activemap *am;
	uint8_t *disk;
	uint64_t size;
	uint32_t extents;
	struct range writes[MAX_OPEN], copies[MAX_OPEN];
	size_t nwrites, ncopies;
	bool lost;
};

static bool bit(const uint8_t *map, uint32_t e)
{
	return map[e / 8] & (1u << (e % 8));
}

static void flush(struct script *s)
{
	uint32_t page = 0;
	uint64_t version;

	while (activemap_stale_page(s->am, page, &page)) {
		memcpy(s->disk + (size_t)page * ACTIVEMAP_PAGE_SIZE, activemap_page(s->am, page, &version),
		       ACTIVEMAP_PAGE_SIZE);
		activemap_page_written(s->am, page, version);
	}
	for (size_t i = 0; i < s->nwrites; i++) {
		check(activemap_write_ready(s->am, s->writes[i].offset, s->writes[i].length));
		s->writes[i].started = true;
	}
}

static void remove_at(struct range *r, size_t *n, size_t i)
{
	r[i] = r[--*n];
}

static void invariants(const struct script *s)
{
	uint64_t version;
	const uint8_t *image = activemap_page(s->am, 0, &version);
	uint32_t dirty = 0;

	for (size_t i = 0; i < s->nwrites; i++) {
		if (!s->writes[i].started)
			continue;
		for (uint64_t off = s->writes[i].offset; off < s->writes[i].offset + s->writes[i].length; off += 4096)
			check(bit(s->disk, (uint32_t)(off / 4096)));
	}
	for (uint32_t e = 0; e < s->extents; e++) {
		bool needs = activemap_needs_sync(s->am, (uint64_t)e * 4096, 1);
		dirty += needs;
		check(!needs || bit(image, e));
	}
	check(dirty == activemap_dirty_count(s->am));
	uint64_t off = 0, len = 0, bytes = 0;
	while (activemap_next_dirty(s->am, off + len, &off, &len))
		bytes += len;
	check(bytes == activemap_dirty_bytes(s->am));
}

/* With nothing in flight, a resync copies every dirty extent exactly once and ends clean. */
static void drain(struct script *s)
{
	uint64_t off, len;
	uint32_t rounds = 0;
	bool suspect;

	if (s->nwrites || s->ncopies || s->lost)
		return;
	while (activemap_sync_next(s->am, &off, &len, &suspect)) {
		check(++rounds <= s->extents);
		activemap_sync_complete(s->am, off, len);
	}
	check(activemap_dirty_count(s->am) == 0);
}

static void activemap_script(const uint8_t *data, size_t size)
{
	struct script s = { 0 };

	if (size < 2)
		return;
	s.size = ((uint64_t)(data[0] % 64) + 1) * 4096 - (data[1] % 8) * 512;
	s.extents = (uint32_t)((s.size + 4095) / 4096);
	check(activemap_new(s.size, 4096, data[1] / 8 % 8, &s.am) == 0);
	s.disk = calloc(1, activemap_ondisk_size(s.am));
	check(s.disk != NULL);
	for (size_t i = 2; i + 1 < size; i += 2) {
		uint8_t op = data[i] % 15, arg = data[i + 1];
		uint64_t off = (uint64_t)(arg % s.extents) * 4096, len = MIN((uint64_t)(arg / 64 + 1) * 2048, s.size - off);
		bool suspect;
		switch (op) {
		case 0:
			if (s.nwrites < MAX_OPEN) {
				bool wait = activemap_write_start(s.am, off, len);
				s.writes[s.nwrites++] = (struct range){ off, len, !wait };
			}
			break;
		case 1:
			flush(&s);
			break;
		case 2:
			if (s.nwrites && s.writes[arg % s.nwrites].started) {
				activemap_write_complete(s.am, s.writes[arg % s.nwrites].offset, s.writes[arg % s.nwrites].length);
				remove_at(s.writes, &s.nwrites, arg % s.nwrites);
			}
			break;
		case 3:
			activemap_partner_lost(s.am);
			s.lost = true;
			s.ncopies = 0;
			break;
		case 4:
			activemap_partner_back(s.am);
			s.lost = false;
			break;
		case 5:
			if (s.ncopies < MAX_OPEN && activemap_sync_next(s.am, &off, &len, &suspect))
				s.copies[s.ncopies++] = (struct range){ off, len, true };
			break;
		case 6:
			if (s.ncopies) {
				activemap_sync_complete(s.am, s.copies[arg % s.ncopies].offset, s.copies[arg % s.ncopies].length);
				remove_at(s.copies, &s.ncopies, arg % s.ncopies);
			}
			break;
		case 7: {
			uint8_t chunk = (uint8_t)(1u << (arg % 8));
			check(activemap_merge(s.am, arg / 8 % 8, &chunk, 1) == 0);
			break;
		}
		case 8:
			activemap_mark_all(s.am);
			break;
		case 9:
			if (s.nwrites == 0)
				activemap_clear_all(s.am);
			break;
		case 10: {
			/* a crash now: the restarted map needs resync for every extent written since */
			struct activemap *after;
			check(activemap_new(s.size, 4096, 2, &after) == 0);
			check(activemap_load(after, s.disk, activemap_ondisk_size(after)) == 0);
			for (size_t w = 0; w < s.nwrites; w++)
				check(!s.writes[w].started || activemap_needs_sync(after, s.writes[w].offset, s.writes[w].length));
			activemap_free(after);
			break;
		}
		case 11:
			drain(&s);
			break;
		case 12: {
			uint8_t chunk = (uint8_t)(1u << (arg % 8));
			check(activemap_merge_known(s.am, arg / 8 % 8, &chunk, 1) == 0);
			break;
		}
		case 13:
			activemap_mark_differs(s.am, off, len);
			break;
		case 14:
			activemap_clear_suspect(s.am);
			break;
		}
		check(activemap_suspect_bytes(s.am) <= activemap_dirty_bytes(s.am));
		invariants(&s);
	}
	activemap_free(s.am);
	free(s.disk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
		metadata_file(data + 1, size - 1);
		break;
	case 3:
		superblock_fields(data + 1, size - 1);
		break;
	case 1:
		generations(data + 1, size - 1);
		break;
	case 2:
		activemap_script(data + 1, size - 1);
		break;
	}
	return 0;
}
