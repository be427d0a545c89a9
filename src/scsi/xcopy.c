/* EXTENDED COPY (LID1) with identification-descriptor targets (0xE4) resolved to logical
 * units of the same target by their NAA designator, and block-to-block segments (0x02),
 * copied in chunks through one buffer.  RECEIVE COPY RESULTS reports the limits below
 * and the last copy's status.
 *
 * A copy holds the LBA range it writes on its own logical unit, like any write. */
#include "scsi/xcopy.h"

#include <stdlib.h>
#include <string.h>

#include "common/iobuf.h"
#include "common/log.h"
#include "common/util.h"
#include "scsi/lu_state.h"

#define HDR_LEN 16
#define TGT_DESC_LEN 32
#define SEG_DESC_LEN 28
#define MAX_TARGETS 8
#define MAX_SEGMENTS 64
#define MAX_DESC_LIST 2048
#define MAX_SEGMENT_BYTES (16u << 20)
#define CHUNK (1u << 20)

#define TYPE_IDENTIFICATION 0xe4
#define TYPE_BLOCK_TO_BLOCK 0x02

struct segment {
	struct scsi_lu *src, *dst;
	uint64_t src_lba, dst_lba;
	uint32_t blocks; /* in the source's block size: equal sizes are required */
};

struct job {
	struct segment seg[MAX_SEGMENTS];
	uint32_t count;
	uint32_t at;        /* current segment */
	uint32_t done;      /* blocks of it copied */
	uint32_t chunk;     /* blocks in flight */
	uint8_t buf[] __attribute__((aligned(IOBUF_ALIGN))); /* O_DIRECT-ready */
};

static void copy_aborted(struct scsi_task *task, enum sense_asc asc)
{
	lu_sense(task, SENSE_COPY_ABORTED, asc);
}

static bool bad_list(struct scsi_task *task, enum sense_asc asc, uint16_t byte)
{
	log_debug("scsi: EXTENDED COPY parameter list refused at byte %u (asc 0x%04x)", byte, asc);
	lu_sense_field(task, SENSE_ILLEGAL_REQUEST, asc, false, byte, -1);
	return false;
}

/* Resolves target descriptor i to a logical unit; NULL if unreachable. */
static struct scsi_lu *resolve_target(const struct scsi_lu *lu, const uint8_t *d)
{
	const uint8_t *id = d + 4;

	if ((id[0] & 0x0f) != 0x01 || (id[1] & 0x0f) != 0x03 || id[3] != 16 || (d[1] & 0x1f) != 0)
		return NULL;
	return target_find_lu_by_naa(lu->target, id + 4);
}

static bool parse(struct scsi_task *task, struct job *job, uint32_t list_len)
{
	const uint8_t *p = task->data_out;
	uint32_t tgt_len, seg_len, ntgt;
	struct scsi_lu *targets[MAX_TARGETS];

	tgt_len = get_be16(p + 2);
	seg_len = get_be32(p + 8);
	if (tgt_len + (uint64_t)seg_len > MAX_DESC_LIST)
		return bad_list(task, ASC_PARAMETER_LIST_LENGTH_ERROR, 2);
	if (HDR_LEN + tgt_len + (uint64_t)seg_len + get_be32(p + 12) > list_len) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		return false;
	}
	if (get_be32(p + 12))
		return bad_list(task, ASC_INVALID_FIELD_IN_PARAMETER_LIST, 12);
	if (tgt_len % TGT_DESC_LEN)
		return bad_list(task, ASC_INVALID_FIELD_IN_PARAMETER_LIST, 2);
	ntgt = tgt_len / TGT_DESC_LEN;
	if (ntgt > MAX_TARGETS)
		return bad_list(task, ASC_TOO_MANY_TARGET_DESCRIPTORS, 2);
	for (uint32_t i = 0; i < ntgt; i++) {
		const uint8_t *d = p + HDR_LEN + TGT_DESC_LEN * i;

		if (d[0] != TYPE_IDENTIFICATION)
			return bad_list(task, ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE, (uint16_t)(HDR_LEN + TGT_DESC_LEN * i));
		targets[i] = resolve_target(task->lu, d);
	}
	for (uint32_t off = HDR_LEN + tgt_len; off < HDR_LEN + tgt_len + seg_len; job->count++) {
		const uint8_t *d = p + off;
		struct segment *s = &job->seg[job->count];
		uint16_t si, di;

		if (job->count == MAX_SEGMENTS)
			return bad_list(task, ASC_TOO_MANY_SEGMENT_DESCRIPTORS, 8);
		if (d[0] != TYPE_BLOCK_TO_BLOCK)
			return bad_list(task, ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE, (uint16_t)off);
		if (get_be16(d + 2) != SEG_DESC_LEN - 4 || off + SEG_DESC_LEN > HDR_LEN + tgt_len + seg_len)
			return bad_list(task, ASC_INVALID_FIELD_IN_PARAMETER_LIST, (uint16_t)(off + 2));
		si = get_be16(d + 4);
		di = get_be16(d + 6);
		if (si >= ntgt || di >= ntgt || !targets[si] || !targets[di]) {
			copy_aborted(task, ASC_UNREACHABLE_COPY_TARGET);
			return false;
		}
		s->src = targets[si];
		s->dst = targets[di];
		s->blocks = get_be16(d + 10);
		s->src_lba = get_be64(d + 12);
		s->dst_lba = get_be64(d + 20);
		if (s->src->block_size != s->dst->block_size ||
		    ((uint64_t)s->blocks << s->src->block_shift) > MAX_SEGMENT_BYTES) {
			copy_aborted(task, ASC_NO_ADDITIONAL_SENSE);
			return false;
		}
		if (s->src_lba > s->src->nblocks || s->blocks > s->src->nblocks - s->src_lba ||
		    s->dst_lba > s->dst->nblocks || s->blocks > s->dst->nblocks - s->dst_lba) {
			copy_aborted(task, ASC_NO_ADDITIONAL_SENSE);
			return false;
		}
		off += SEG_DESC_LEN;
	}
	return true;
}

static void finish(struct scsi_task *task, struct job *job, bool ok)
{
	struct xcopy_state *st = &task->lu->xcopy;

	st->status = ok ? 1 : 2;
	st->segments_done = (uint16_t)job->at;
	lu_complete(task);
}

static void copy_step(struct store_io *io, int err);

static void copy_write(struct store_io *io, int err)
{
	struct scsi_task *task = container_of(io, struct scsi_task, io);
	struct job *job = (struct job *)(void *)task->scratch;
	const struct segment *s = &job->seg[job->at];

	if (err || task->aborted) {
		if (err)
			lu_sense_store_error(task, err, false);
		finish(task, job, false);
		return;
	}
	task->io.done = copy_step;
	store_write(s->dst->store, task->reactor, &task->io, job->buf, (size_t)job->chunk << s->dst->block_shift,
	            (s->dst_lba + job->done) << s->dst->block_shift, !s->dst->mode.wce);
}

static void copy_step(struct store_io *io, int err)
{
	struct scsi_task *task = container_of(io, struct scsi_task, io);
	struct job *job = (struct job *)(void *)task->scratch;
	const struct segment *s;

	if (err || task->aborted) {
		if (err)
			lu_sense_store_error(task, err, true);
		finish(task, job, false);
		return;
	}
	job->done += job->chunk;
	task->lu->xcopy.blocks_done += job->chunk;
	while (job->at < job->count && job->done == job->seg[job->at].blocks) {
		job->at++;
		job->done = 0;
	}
	if (job->at == job->count) {
		finish(task, job, true);
		return;
	}
	s = &job->seg[job->at];
	job->chunk = MIN(s->blocks - job->done, CHUNK >> s->src->block_shift);
	task->io.done = copy_write;
	store_read(s->src->store, task->reactor, &task->io, job->buf, (size_t)job->chunk << s->src->block_shift,
	           (s->src_lba + job->done) << s->src->block_shift);
}

/* The range the copy writes on its own logical unit (copies to other logical units of
 * the target are not ordered against their writers). */
static void lock_destinations(struct scsi_task *task, const struct job *job)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	for (uint32_t i = 0; i < job->count; i++) {
		const struct segment *s = &job->seg[i];

		if (s->dst == task->lu && s->blocks) {
			lo = MIN(lo, s->dst_lba);
			hi = MAX(hi, s->dst_lba + s->blocks);
		}
	}
	range_lock_span(task, lo, hi);
}

void xcopy_extended_copy(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	uint32_t list_len = get_be32(task->cdb + 10);
	struct job *job;

	if (list_len == 0) {
		lu_complete(task);
		return;
	}
	if (list_len < HDR_LEN || task->data_out_len < list_len) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		lu_complete(task);
		return;
	}
	free(task->scratch); /* a resumed task parses again */
	task->scratch = NULL;
	job = iobuf_zalloc(sizeof(*job) + CHUNK);
	if (!job) {
		lu_sense(task, SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		lu_complete(task);
		return;
	}
	task->scratch = (uint8_t *)job;
	if (!parse(task, job, list_len)) {
		lu_complete(task);
		return;
	}
	for (uint32_t i = 0; i < job->count; i++) {
		if (job->seg[i].dst->mode.swp || store_read_only(job->seg[i].dst->store)) {
			lu_sense(task, SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
			lu_complete(task);
			return;
		}
	}
	lock_destinations(task, job);
	if (!range_lock_acquire(&lu->ranges, lu->active, task))
		return;
	lu->xcopy = (struct xcopy_state){ .known = true, .nexus_id = task->itn->id, .list_id = task->data_out[0] };
	job->chunk = 0;
	copy_step(&task->io, 0);
}

/* A third-party copy descriptor: type, then the body padded to a multiple of 4. */
static uint32_t tpc_descriptor(uint8_t *p, uint16_t type, uint32_t body_len)
{
	uint32_t len = (body_len + 3) & ~3u;

	put_be16(p, type);
	put_be16(p + 2, (uint16_t)len);
	return 4 + len;
}

uint32_t xcopy_vpd_page(uint8_t *body)
{
	/* opcode, number of service actions, service actions */
	static const uint8_t commands[] = { 0x83, 1, 0x00, 0x84, 2, 0x00, 0x03 };
	static const uint8_t descriptors[] = { TYPE_BLOCK_TO_BLOCK, TYPE_IDENTIFICATION };
	uint8_t *p = body;

	memset(body, 0, XCOPY_VPD_MAX);
	p[4] = sizeof(commands);
	memcpy(p + 5, commands, sizeof(commands));
	p += tpc_descriptor(p, 0x0001, 1 + sizeof(commands));   /* supported commands */
	put_be16(p + 8, MAX_TARGETS);
	put_be16(p + 10, MAX_SEGMENTS);
	put_be32(p + 12, MAX_DESC_LIST);
	p += tpc_descriptor(p, 0x0004, 28);                      /* parameter data */
	p[4] = sizeof(descriptors);
	memcpy(p + 5, descriptors, sizeof(descriptors));
	p += tpc_descriptor(p, 0x0008, 1 + sizeof(descriptors)); /* supported descriptors */
	return (uint32_t)(p - body);
}

static void operating_parameters(struct scsi_task *task, uint32_t alloc_len)
{
	static const uint8_t implemented[] = { TYPE_BLOCK_TO_BLOCK, TYPE_IDENTIFICATION };
	uint8_t buf[44 + sizeof(implemented)] = { 0 };

	put_be32(buf, sizeof(buf) - 4);
	put_be16(buf + 8, MAX_TARGETS);
	put_be16(buf + 10, MAX_SEGMENTS);
	put_be32(buf + 12, MAX_DESC_LIST);
	put_be32(buf + 16, MAX_SEGMENT_BYTES);
	put_be16(buf + 34, 1); /* total concurrent copies */
	buf[36] = 1;           /* maximum concurrent copies */
	buf[37] = 9;           /* data segment granularity: 2^9 bytes */
	buf[43] = sizeof(implemented);
	memcpy(buf + 44, implemented, sizeof(implemented));
	lu_reply(task, buf, sizeof(buf), alloc_len);
}

void xcopy_receive_copy_results(struct scsi_task *task)
{
	const struct xcopy_state *st = &task->lu->xcopy;
	uint32_t alloc_len = get_be32(task->cdb + 10);
	uint8_t buf[12] = { 0 };

	if ((task->cdb[1] & 0x1f) == 0x03) {
		operating_parameters(task, alloc_len);
	} else if (!st->known || st->nexus_id != task->itn->id || st->list_id != task->cdb[2]) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 2, -1);
	} else {
		put_be32(buf, sizeof(buf) - 4);
		buf[4] = st->status;
		put_be16(buf + 5, st->segments_done);
		buf[7] = 0xf1; /* transfer count in KiB */
		put_be32(buf + 8, (uint32_t)(((uint64_t)st->blocks_done << task->lu->block_shift) >> 10));
		lu_reply(task, buf, sizeof(buf), alloc_len);
	}
	lu_complete(task);
}
