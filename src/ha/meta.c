/* The HA metadata file: two checksummed superblock slots, then the activemap bitmap. */
#include "ha/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/crc32c.h"
#include "common/util.h"
#include "ha/activemap.h"

static const uint8_t MAGIC[8] = { 'T', 'W', 'S', 'A', 'N', 'H', 'A', 'M' };

/* Superblock fields. */
enum {
	SB_MAGIC = 0,
	SB_VERSION = 8,
	SB_SEQ = 16,
	SB_UUID = 24,
	SB_SIZE = 40,
	SB_EXTENT = 48,
	SB_ROLE = 52,
	SB_STATE = 53,
	SB_REASON = 54,
	SB_INITIAL = 55,
	SB_GEN = 56,
	SB_CRC = HA_META_SLOT_SIZE - 4,
};

struct ha_meta {
	int fd;
	char *path;
	uint8_t uuid[HA_META_UUID_LEN];
	uint64_t size;
	uint32_t extent_size;
	uint64_t seq;         /* of the newest durable superblock */
	uint64_t pending_seq; /* of the one being written */
};

static const char *const state_names[] = {
	[HA_SYNC_SYNCHRONIZED] = "synchronized",
	[HA_SYNC_SYNCHRONIZING] = "synchronizing",
	[HA_SYNC_NOT_SYNCHRONIZED] = "not synchronized",
};

static const char *const reason_names[] = {
	[HA_REASON_NONE] = "none",
	[HA_REASON_PARTNER_LOST] = "partner lost",
	[HA_REASON_NEW_REPLICA] = "new replica awaiting full sync",
	[HA_REASON_SPLIT_BRAIN] = "split brain",
	[HA_REASON_UNRELATED] = "partner holds unrelated data",
	[HA_REASON_NO_SOURCE] = "no replica has complete data",
	[HA_REASON_FAILOVER_STOPPED] = "stopped by the failover strategy",
};

const char *ha_sync_state_name(enum ha_sync_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) && state_names[s] ? state_names[s] : NULL;
}

const char *ha_sync_reason_name(enum ha_sync_reason r)
{
	return (unsigned)r < ARRAY_SIZE(reason_names) ? reason_names[r] : NULL;
}

static bool same_device(const struct ha_meta_super *a, const struct ha_meta_super *b)
{
	return memcmp(a->uuid, b->uuid, HA_META_UUID_LEN) == 0 && a->size == b->size &&
	       a->extent_size == b->extent_size;
}

bool ha_meta_super_same(const struct ha_meta_super *a, const struct ha_meta_super *b)
{
	return same_device(a, b) && a->role == b->role && a->state == b->state && a->reason == b->reason &&
	       a->initial_sync == b->initial_sync && a->gen.current == b->gen.current &&
	       a->gen.bitmap == b->gen.bitmap && a->gen.history[0] == b->gen.history[0] &&
	       a->gen.history[1] == b->gen.history[1] && a->gen.flags == b->gen.flags;
}

static int super_check(const struct ha_meta_super *sb, char *err, size_t errlen)
{
	const char *why = NULL;

	if (sb->size == 0 || sb->size % 512 != 0)
		why = "device size is not a positive multiple of 512";
	else if (sb->extent_size < ACTIVEMAP_MIN_EXTENT || (sb->extent_size & (sb->extent_size - 1)) != 0 ||
	         (sb->size - 1) / sb->extent_size >= (1u << 31))
		why = "extent size is not a power of two fitting the device";
	else if (sb->role != HA_ROLE_PRIMARY && sb->role != HA_ROLE_SECONDARY)
		why = "unknown node role";
	else if (!ha_sync_state_name(sb->state))
		why = "unknown sync state";
	else if (!ha_sync_reason_name(sb->reason) || (sb->reason != HA_REASON_NONE) != (sb->state == HA_SYNC_NOT_SYNCHRONIZED))
		why = "sync reason does not match the sync state";
	else if (sb->initial_sync < HA_INITIAL_CLEAR || sb->initial_sync > HA_INITIAL_COPY)
		why = "unknown initial sync mode";
	else if (sb->gen.flags & ~(uint32_t)GENERATION_FLAGS_KNOWN)
		why = "unknown generation flags";
	if (why)
		snprintf(err, errlen, "%s", why);
	return why ? -1 : 0;
}

int ha_meta_encode(const struct ha_meta_super *sb, uint64_t seq, uint8_t buf[HA_META_SLOT_SIZE], char *err,
                   size_t errlen)
{
	if (super_check(sb, err, errlen) != 0)
		return -1;
	memset(buf, 0, HA_META_SLOT_SIZE);
	memcpy(buf + SB_MAGIC, MAGIC, sizeof(MAGIC));
	put_be32(buf + SB_VERSION, HA_META_VERSION);
	put_be64(buf + SB_SEQ, seq);
	memcpy(buf + SB_UUID, sb->uuid, HA_META_UUID_LEN);
	put_be64(buf + SB_SIZE, sb->size);
	put_be32(buf + SB_EXTENT, sb->extent_size);
	buf[SB_ROLE] = (uint8_t)sb->role;
	buf[SB_STATE] = (uint8_t)sb->state;
	buf[SB_REASON] = (uint8_t)sb->reason;
	buf[SB_INITIAL] = (uint8_t)sb->initial_sync;
	generation_encode(&sb->gen, buf + SB_GEN);
	put_be32(buf + SB_CRC, crc32c(buf, SB_CRC));
	return 0;
}

/* One slot: 0 with *sb and *seq, or -1 with err. */
static int slot_decode(const uint8_t *buf, unsigned slot, struct ha_meta_super *sb, uint64_t *seq, char *err,
                       size_t errlen)
{
	char why[128];

	if (memcmp(buf + SB_MAGIC, MAGIC, sizeof(MAGIC)) != 0) {
		snprintf(err, errlen, "slot %u: not an HA metadata superblock (bad magic)", slot);
		return -1;
	}
	if (get_be32(buf + SB_CRC) != crc32c(buf, SB_CRC)) {
		snprintf(err, errlen, "slot %u: checksum mismatch", slot);
		return -1;
	}
	if (get_be32(buf + SB_VERSION) != HA_META_VERSION) {
		snprintf(err, errlen, "slot %u: format version %" PRIu32 ", this program reads %u", slot,
		         get_be32(buf + SB_VERSION), HA_META_VERSION);
		return -1;
	}
	*seq = get_be64(buf + SB_SEQ);
	if (*seq % 2 != slot) {
		snprintf(err, errlen, "slot %u: sequence %" PRIu64 " belongs to the other slot", slot, *seq);
		return -1;
	}
	memcpy(sb->uuid, buf + SB_UUID, HA_META_UUID_LEN);
	sb->size = get_be64(buf + SB_SIZE);
	sb->extent_size = get_be32(buf + SB_EXTENT);
	sb->role = buf[SB_ROLE];
	sb->state = buf[SB_STATE];
	sb->reason = buf[SB_REASON];
	sb->initial_sync = buf[SB_INITIAL];
	if (generation_decode(buf + SB_GEN, &sb->gen) != 0) {
		snprintf(err, errlen, "slot %u: generation identifiers with unknown flags", slot);
		return -1;
	}
	if (super_check(sb, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "slot %u: %s", slot, why);
		return -1;
	}
	return 0;
}

static uint64_t file_size_for(uint64_t size, uint32_t extent_size)
{
	return HA_META_BITMAP_OFFSET + (uint64_t)activemap_pages_for(size, extent_size) * ACTIVEMAP_PAGE_SIZE;
}

/* The newest valid slot of the two at the start of `slots`, checked against the file length. */
static int slots_parse(const uint8_t *slots, uint64_t file_len, struct ha_meta_super *sb, uint64_t *seq,
                       char *err, size_t errlen)
{
	struct ha_meta_super cand[2];
	uint64_t cseq[2];
	char why[2][160];
	int ok[2];

	for (unsigned s = 0; s < 2; s++)
		ok[s] = slot_decode(slots + s * HA_META_SLOT_SIZE, s, &cand[s], &cseq[s], why[s], sizeof(why[s])) == 0;
	if (!ok[0] && !ok[1]) {
		snprintf(err, errlen, "no valid superblock (%s; %s)", why[0], why[1]);
		return -1;
	}
	/* The slots may differ in size only: a resize in progress, the newest wins. */
	if (ok[0] && ok[1] && (memcmp(cand[0].uuid, cand[1].uuid, HA_META_UUID_LEN) != 0 ||
	                       cand[0].extent_size != cand[1].extent_size)) {
		snprintf(err, errlen, "the two superblock slots describe different devices");
		return -1;
	}
	unsigned best = !ok[0] || (ok[1] && cseq[1] > cseq[0]);
	uint64_t want = file_size_for(cand[best].size, cand[best].extent_size);
	/* Longer is allowed: a resize grows the bitmap before a superblock names the new size,
	 * and a crash in between leaves the old geometry valid with a tail nobody reads. */
	if (file_len < want) {
		snprintf(err, errlen, "file is %" PRIu64 " bytes, the superblock's geometry needs %" PRIu64, file_len,
		         want);
		return -1;
	}
	*sb = cand[best];
	*seq = cseq[best];
	return 0;
}

int ha_meta_parse(const uint8_t *file, size_t len, struct ha_meta_super *sb, uint64_t *seq, char *err,
                  size_t errlen)
{
	if (len < HA_META_BITMAP_OFFSET) {
		snprintf(err, errlen, "file is %zu bytes, shorter than the two superblocks", len);
		return -1;
	}
	return slots_parse(file, len, sb, seq, err, errlen);
}

static int io_error(const struct ha_meta *m, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", m->path, what, strerror(errno));
	return -1;
}

static struct ha_meta *meta_alloc(const char *path, int fd, const struct ha_meta_super *sb, uint64_t seq)
{
	struct ha_meta *m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return NULL;
	}
	m->fd = fd;
	memcpy(m->uuid, sb->uuid, HA_META_UUID_LEN);
	m->size = sb->size;
	m->extent_size = sb->extent_size;
	m->seq = seq;
	m->pending_seq = seq;
	return m;
}

/* Makes the new file's directory entry durable. */
static int sync_parent(const struct ha_meta *m, char *err, size_t errlen)
{
	char *copy = strdup(m->path);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
	if (rc != 0)
		io_error(m, "fsync of its directory", err, errlen);
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

/* Zero-filled bitmap pages, written out so that later page writes cannot hit ENOSPC. */
static int write_clear_bitmap(struct ha_meta *m)
{
	static const uint8_t zero[ACTIVEMAP_PAGE_SIZE];
	uint32_t pages = activemap_pages_for(m->size, m->extent_size);

	for (uint32_t p = 0; p < pages; p++) {
		if (file_pwrite_all(m->fd, zero, sizeof(zero), ha_meta_page_offset(p)) != 0)
			return -1;
	}
	return 0;
}

int ha_meta_create(const char *path, const struct ha_meta_super *sb, struct ha_meta **out, char *err,
                   size_t errlen)
{
	uint8_t buf[HA_META_SLOT_SIZE];
	char why[128];

	*out = NULL;
	if (ha_meta_encode(sb, 0, buf, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct ha_meta *m = meta_alloc(path, fd, sb, 1);
	if (!m) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		unlink(path);
		return -1;
	}
	/* both slots valid from the start: sequence 0 and 1, the same content */
	int rc = file_pwrite_all(fd, buf, sizeof(buf), 0) != 0 || ha_meta_encode(sb, 1, buf, why, sizeof(why)) != 0 ||
	                 file_pwrite_all(fd, buf, sizeof(buf), HA_META_SLOT_SIZE) != 0 || write_clear_bitmap(m) != 0 ||
	                 fdatasync(fd) != 0
	             ? io_error(m, "create", err, errlen)
	             : sync_parent(m, err, errlen);
	if (rc != 0) {
		unlink(path);
		ha_meta_close(m);
		return -1;
	}
	*out = m;
	return 0;
}

int ha_meta_open(const char *path, struct ha_meta_super *sb, struct ha_meta **out, char *err, size_t errlen)
{
	uint8_t slots[HA_META_BITMAP_OFFSET];
	struct stat st;
	uint64_t seq;
	char why[400];

	*out = NULL;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(slots)) {
		snprintf(err, errlen, "%s: not an HA metadata file (%s)", path,
		         S_ISREG(st.st_mode) ? "shorter than the two superblocks" : "not a regular file");
		goto fail;
	}
	if (file_pread_all(fd, slots, sizeof(slots), 0) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (slots_parse(slots, (uint64_t)st.st_size, sb, &seq, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto fail;
	}
	/* A grow cut short by a crash: drop the tail, so the next grow starts from zeros. */
	uint64_t want = file_size_for(sb->size, sb->extent_size);
	if ((uint64_t)st.st_size > want && (ftruncate(fd, (off_t)want) != 0 || fsync(fd) != 0)) {
		snprintf(err, errlen, "%s: trimming a grow cut short: %s", path, strerror(errno));
		goto fail;
	}
	*out = meta_alloc(path, fd, sb, seq);
	if (!*out) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	return 0;
fail:
	close(fd);
	return -1;
}

void ha_meta_close(struct ha_meta *m)
{
	if (!m)
		return;
	close(m->fd);
	free(m->path);
	free(m);
}

int ha_meta_fd(const struct ha_meta *m) { return m->fd; }

size_t ha_meta_bitmap_size(const struct ha_meta *m)
{
	return (size_t)activemap_pages_for(m->size, m->extent_size) * ACTIVEMAP_PAGE_SIZE;
}

int ha_meta_read_bitmap(struct ha_meta *m, uint8_t *buf, size_t len, char *err, size_t errlen)
{
	if (len != ha_meta_bitmap_size(m)) {
		snprintf(err, errlen, "%s: bitmap is %zu bytes, not %zu", m->path, ha_meta_bitmap_size(m), len);
		return -1;
	}
	return file_pread_all(m->fd, buf, len, HA_META_BITMAP_OFFSET) == 0 ? 0 : io_error(m, "read bitmap", err, errlen);
}

uint64_t ha_meta_page_offset(uint32_t page)
{
	return HA_META_BITMAP_OFFSET + (uint64_t)page * ACTIVEMAP_PAGE_SIZE;
}

int64_t ha_meta_super_encode(struct ha_meta *m, const struct ha_meta_super *sb, uint8_t buf[HA_META_SLOT_SIZE])
{
	char why[128];
	uint64_t seq = m->seq + 1;

	if (memcmp(sb->uuid, m->uuid, HA_META_UUID_LEN) != 0 || sb->size != m->size ||
	    sb->extent_size != m->extent_size || ha_meta_encode(sb, seq, buf, why, sizeof(why)) != 0)
		return -1;
	m->pending_seq = seq;
	return (int64_t)((seq % 2) * HA_META_SLOT_SIZE);
}

void ha_meta_super_written(struct ha_meta *m)
{
	m->seq = m->pending_seq;
}

int ha_meta_update(struct ha_meta *m, const struct ha_meta_super *sb, char *err, size_t errlen)
{
	uint8_t buf[HA_META_SLOT_SIZE];
	char why[128];

	int64_t off = ha_meta_super_encode(m, sb, buf);
	if (off < 0) {
		if (super_check(sb, why, sizeof(why)) != 0)
			snprintf(err, errlen, "%s: %s", m->path, why);
		else
			snprintf(err, errlen, "%s: the superblock may not change the device's identity or geometry", m->path);
		return -1;
	}
	if (file_pwrite_all(m->fd, buf, sizeof(buf), (uint64_t)off) != 0 || fdatasync(m->fd) != 0)
		return io_error(m, "superblock write", err, errlen);
	ha_meta_super_written(m);
	return 0;
}

int ha_meta_write_page(struct ha_meta *m, uint32_t page, const uint8_t *buf, char *err, size_t errlen)
{
	if (page >= activemap_pages_for(m->size, m->extent_size)) {
		snprintf(err, errlen, "%s: bitmap page %" PRIu32 " is past the end", m->path, page);
		return -1;
	}
	if (file_pwrite_all(m->fd, buf, ACTIVEMAP_PAGE_SIZE, ha_meta_page_offset(page)) != 0 || fdatasync(m->fd) != 0)
		return io_error(m, "bitmap write", err, errlen);
	return 0;
}

/* ---- resize ---- */

int ha_meta_grow(struct ha_meta *m, uint64_t size, const struct ha_meta_super *sb, char *err, size_t errlen)
{
	struct ha_meta_super grown = *sb;
	uint64_t old = m->size;

	if (size < m->size || sb->size != m->size) {
		snprintf(err, errlen, "%s: a device only grows", m->path);
		return -1;
	}
	grown.size = size;
	/* The bitmap first (zero pages: nothing to resync there), durably; the superblock that
	 * names the new size last, so a crash leaves the old size or the new one. */
	if (ftruncate(m->fd, (off_t)file_size_for(size, m->extent_size)) != 0 || fsync(m->fd) != 0)
		return io_error(m, "growing the bitmap", err, errlen);
	m->size = size;
	if (ha_meta_update(m, &grown, err, errlen) != 0) {
		m->size = old;
		return -1;
	}
	return 0;
}
