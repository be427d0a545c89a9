/* Block commands.  Every command that changes the medium holds its LBA range (range_lock)
 * from before its first read or write to completion, so read-modify-write commands are
 * atomic against overlapping writes.  Multi-step commands advance through store_io
 * completions; each step checks for an abort first. */
#include "scsi/sbc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/iobuf.h"
#include "common/log.h"
#include "common/util.h"
#include "scsi/cdb_table.h"
#include "scsi/lu_state.h"

#define WRITE_SAME_CHUNK (1u << 20)

static struct scsi_task *io_task(struct store_io *io) { return container_of(io, struct scsi_task, io); }

/* Where a CDB keeps its LBA and transfer length, by CDB group. */
static void decode(const uint8_t *cdb, uint64_t *lba, uint32_t *n, uint16_t *len_byte)
{
	switch (cdb[0] >> 5) {
	case 0:
		*lba = get_be24(cdb + 1) & 0x1fffff;
		*n = cdb[4] ? cdb[4] : 256;
		*len_byte = 4;
		break;
	case 1:
	case 2:
		*lba = get_be32(cdb + 2);
		*n = get_be16(cdb + 7);
		*len_byte = 7;
		break;
	case 5:
		*lba = get_be32(cdb + 2);
		*n = get_be32(cdb + 6);
		*len_byte = 6;
		break;
	default:
		*lba = get_be64(cdb + 2);
		*n = get_be32(cdb + 10);
		*len_byte = 10;
		break;
	}
}

/* Decodes the CDB into task->lba/nblocks and checks them against the medium and a
 * per-command maximum; false (error set) if the command must end here. */
static bool check_range(struct scsi_task *task, uint32_t max_blocks)
{
	const struct scsi_lu *lu = task->lu;
	uint16_t len_byte;

	decode(task->cdb, &task->lba, &task->nblocks, &len_byte);
	if (task->lba > lu->nblocks || task->nblocks > lu->nblocks - task->lba) {
		log_debug("scsi: opcode 0x%02x: LBA %llu + %u beyond %llu blocks", task->cdb[0],
		          (unsigned long long)task->lba, task->nblocks, (unsigned long long)lu->nblocks);
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	if (task->nblocks > max_blocks) {
		log_debug("scsi: opcode 0x%02x: %u blocks over the limit of %u", task->cdb[0],
		          task->nblocks, max_blocks);
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, len_byte, -1);
		return false;
	}
	return true;
}

static uint32_t max_transfer(const struct scsi_lu *lu) { return SBC_MAX_TRANSFER_BYTES >> lu->block_shift; }

static bool writable(struct scsi_task *task)
{
	const struct scsi_lu *lu = task->lu;

	if (lu->mode.swp || store_read_only(lu->store)) {
		lu_sense(task, SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return false;
	}
	return true;
}

/* The Data-Out must hold what the CDB describes; a shorter one ends the command. */
static bool has_data(struct scsi_task *task, uint64_t need)
{
	if (task->data_out_len < need) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_COMMAND_IU);
		return false;
	}
	return true;
}

static uint64_t bytes(const struct scsi_task *task, uint64_t blocks) { return blocks << task->lu->block_shift; }
static uint64_t offset(const struct scsi_task *task) { return task->lba << task->lu->block_shift; }

/* Write-through when FUA is set or the write cache is disabled. */
static bool want_fua(const struct scsi_task *task, bool fua_bit) { return fua_bit || !task->lu->mode.wce; }

static bool lock_range(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;

	return range_lock_acquire(&lu->ranges, lu->active, task);
}

static void io_done(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);

	if (err)
		lu_sense_store_error(task, err, task->desc && (((const struct cdb_desc *)task->desc)->flags & CDB_DATA_OUT));
	lu_complete(task);
}

/* READ CAPACITY */

void sbc_read_capacity10(struct scsi_task *task)
{
	const struct scsi_lu *lu = task->lu;
	uint8_t buf[8];

	put_be32(buf, lu->nblocks - 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(lu->nblocks - 1));
	put_be32(buf + 4, lu->block_size);
	lu_reply(task, buf, sizeof(buf), sizeof(buf));
	lu_complete(task);
}

void sbc_read_capacity16(struct scsi_task *task)
{
	const struct scsi_lu *lu = task->lu;
	uint8_t buf[32] = { 0 };

	put_be64(buf, lu->nblocks - 1);
	put_be32(buf + 8, lu->block_size);
	if (lu->thin)
		buf[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	lu_reply(task, buf, sizeof(buf), get_be32(task->cdb + 10));
	lu_complete(task);
}

/* READ, WRITE, WRITE AND VERIFY */

void sbc_read(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;

	if (!check_range(task, max_transfer(lu)) || task->nblocks == 0 ||
	    !lu_alloc_read_buffer(task, (uint32_t)bytes(task, task->nblocks))) {
		lu_complete(task);
		return;
	}
	task->io.done = io_done;
	store_read(lu->store, task->reactor, &task->io, task->data_in, task->data_in_len, offset(task));
}

static void write_blocks(struct scsi_task *task, bool fua_bit)
{
	struct scsi_lu *lu = task->lu;

	bool in_range = check_range(task, max_transfer(lu));

	if (in_range)
		task->data_out_wanted = (uint32_t)bytes(task, task->nblocks);
	if (!in_range || !writable(task) || task->nblocks == 0 || task->data_out_len == 0) {
		lu_complete(task);
		return;
	}
	if (!lock_range(task))
		return;
	/* A Data-Out shorter than the CDB says is written as far as it goes (the transport
	 * reports the overflow), as FCP-4 and the iSCSI residual tests expect. */
	task->io.done = io_done;
	store_write(lu->store, task->reactor, &task->io, task->data_out,
	            MIN(bytes(task, task->nblocks), task->data_out_len), offset(task), want_fua(task, fua_bit));
}

void sbc_write(struct scsi_task *task) { write_blocks(task, task->cdb[0] != 0x0a && (task->cdb[1] & 0x08)); }

/* The write goes to stable storage before GOOD, which is the verification a file gives. */
void sbc_write_verify(struct scsi_task *task) { write_blocks(task, true); }

/* Reads the task's range into scratch, then runs next. */
static bool read_scratch(struct scsi_task *task, uint64_t len, void (*next)(struct store_io *io, int err))
{
	struct scsi_lu *lu = task->lu;

	free(task->scratch);
	task->scratch = iobuf_alloc(len);
	if (!task->scratch) {
		lu_sense(task, SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return false;
	}
	task->scratch_len = (uint32_t)len;
	task->io.done = next;
	store_read(lu->store, task->reactor, &task->io, task->scratch, len, offset(task));
	return true;
}

/* Offset of the first differing byte, or -1. */
static int64_t first_difference(const uint8_t *a, const uint8_t *b, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return (int64_t)i;
	return -1;
}

static void miscompare(struct scsi_task *task, uint64_t at)
{
	sense_set_info(task, lu_descriptor_sense(task->lu), SENSE_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY, at);
}

/* VERIFY: BYTCHK 0 checks the medium only, 1 compares the Data-Out with the range, 3
 * compares one block of Data-Out with every block. */

static void verify_compare(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);
	uint32_t bs = task->lu->block_size;
	bool one_block = ((task->cdb[1] >> 1) & 3) == 3;

	if (err) {
		lu_sense_store_error(task, err, false);
	} else if (!task->aborted) {
		for (uint32_t b = 0; b < task->nblocks; b++) {
			const uint8_t *want = task->data_out + (one_block ? 0 : (uint64_t)b * bs);
			int64_t at = first_difference(task->scratch + (uint64_t)b * bs, want, bs);

			if (at >= 0) {
				miscompare(task, (one_block ? 0 : (uint64_t)b * bs) + (uint64_t)at);
				break;
			}
		}
	}
	lu_complete(task);
}

void sbc_verify(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	uint8_t bytchk = (task->cdb[1] >> 1) & 3;

	if (bytchk == 2) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 1, 2);
		lu_complete(task);
		return;
	}
	if (!check_range(task, max_transfer(lu)) || task->nblocks == 0 || bytchk == 0 ||
	    !has_data(task, bytes(task, bytchk == 3 ? 1 : task->nblocks)) ||
	    !read_scratch(task, bytes(task, task->nblocks), verify_compare))
		lu_complete(task);
}

/* ORWRITE: read, OR the Data-Out in, write back, all under the range lock. */

static void orwrite_merge(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);

	if (err || task->aborted) {
		if (err)
			lu_sense_store_error(task, err, false);
		lu_complete(task);
		return;
	}
	for (uint32_t i = 0; i < task->scratch_len; i++)
		task->scratch[i] |= task->data_out[i];
	task->io.done = io_done;
	store_write(task->lu->store, task->reactor, &task->io, task->scratch, task->scratch_len, offset(task),
	            want_fua(task, task->cdb[1] & 0x08));
}

void sbc_orwrite(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;

	if (!writable(task) || !check_range(task, max_transfer(lu)) || task->nblocks == 0 ||
	    !has_data(task, bytes(task, task->nblocks))) {
		lu_complete(task);
		return;
	}
	if (lock_range(task) && !read_scratch(task, bytes(task, task->nblocks), orwrite_merge))
		lu_complete(task);
}

/* COMPARE AND WRITE: Data-Out is the compare half then the write half.  A store that
 * offers the operation does it atomically against every path to it (an HA device orders
 * it on the primary); otherwise it is read, compared and written here under the range
 * lock, atomic against this logical unit's own commands. */

static void caw_done(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);

	if (err == -EILSEQ)
		miscompare(task, io->miscompare);
	else if (err)
		lu_sense_store_error(task, err, true);
	lu_complete(task);
}

static void caw_compare(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);
	int64_t at;

	if (err || task->aborted) {
		if (err)
			lu_sense_store_error(task, err, false);
		lu_complete(task);
		return;
	}
	at = first_difference(task->scratch, task->data_out, task->scratch_len);
	if (at >= 0) {
		miscompare(task, (uint64_t)at);
		lu_complete(task);
		return;
	}
	task->io.done = io_done;
	store_write(task->lu->store, task->reactor, &task->io, task->data_out + task->scratch_len,
	            task->scratch_len, offset(task), want_fua(task, task->cdb[1] & 0x08));
}

void sbc_compare_and_write(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	uint64_t half;

	task->lba = get_be64(task->cdb + 2);
	task->nblocks = task->cdb[13];
	if (!writable(task)) {
		lu_complete(task);
		return;
	}
	if (task->lba > lu->nblocks || task->nblocks > lu->nblocks - task->lba) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		lu_complete(task);
		return;
	}
	/* A Data-Out that is not twice the blocks means the block count is wrong (a count
	 * of 256 wraps to 0 in this one-byte field). */
	if (task->nblocks > SBC_MAX_COMPARE_AND_WRITE(lu->block_shift) ||
	    task->data_out_len != bytes(task, 2 * (uint64_t)task->nblocks)) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 13, -1);
		lu_complete(task);
		return;
	}
	if (task->nblocks == 0) {
		lu_complete(task);
		return;
	}
	if (!lock_range(task))
		return;
	half = bytes(task, task->nblocks);
	task->io.done = caw_done;
	if (store_compare_and_write(lu->store, task->reactor, &task->io, task->data_out, task->data_out + half, half,
	                            offset(task), want_fua(task, task->cdb[1] & 0x08)))
		return;
	if (!read_scratch(task, half, caw_compare))
		lu_complete(task);
}

/* PRE-FETCH and SYNCHRONIZE CACHE */

void sbc_prefetch(struct scsi_task *task)
{
	/* Nothing is staged in a cache of ours, so GOOD rather than CONDITION MET. */
	check_range(task, UINT32_MAX);
	lu_complete(task);
}

void sbc_synchronize_cache(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;

	if (!check_range(task, UINT32_MAX)) {
		lu_complete(task);
		return;
	}
	task->io.done = io_done;
	store_flush(lu->store, task->reactor, &task->io);
}

/* WRITE SAME: UNMAP with a zero block (or NDOB) deallocates; anything else writes the
 * block repeatedly from a chunk-sized scratch pattern. */

static void write_same_next(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);
	struct scsi_lu *lu = task->lu;
	uint32_t per_chunk = task->scratch_len >> lu->block_shift;
	uint32_t n;

	if (err || task->aborted || task->step == task->nblocks) {
		if (err)
			lu_sense_store_error(task, err, true);
		lu_complete(task);
		return;
	}
	n = MIN(per_chunk, task->nblocks - task->step);
	task->io.done = write_same_next;
	store_write(lu->store, task->reactor, &task->io, task->scratch, bytes(task, n),
	            offset(task) + bytes(task, task->step), !lu->mode.wce);
	task->step += n;
}

static bool all_zero(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

void sbc_write_same(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	bool sixteen = task->cdb[0] == 0x93;
	bool unmap = task->cdb[1] & 0x08, ndob = sixteen && (task->cdb[1] & 0x01);
	uint32_t chunk;

	if (!writable(task) || !check_range(task, SBC_MAX_WRITE_SAME_BLOCKS)) {
		lu_complete(task);
		return;
	}
	if (task->nblocks == 0) { /* WSNZ */
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, sixteen ? 10 : 7, -1);
		lu_complete(task);
		return;
	}
	if (!ndob && task->data_out_len != lu->block_size) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_COMMAND_IU);
		lu_complete(task);
		return;
	}
	if (!lock_range(task))
		return;
	if (unmap && lu->thin && (ndob || all_zero(task->data_out, lu->block_size))) {
		task->io.done = io_done;
		store_discard(lu->store, task->reactor, &task->io, offset(task), bytes(task, task->nblocks));
		return;
	}
	chunk = (uint32_t)MIN(bytes(task, task->nblocks), WRITE_SAME_CHUNK);
	task->scratch = ndob ? iobuf_zalloc(chunk) : iobuf_alloc(chunk);
	if (!task->scratch) {
		lu_sense(task, SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		lu_complete(task);
		return;
	}
	task->scratch_len = chunk;
	for (uint32_t at = 0; !ndob && at < chunk; at += lu->block_size)
		memcpy(task->scratch + at, task->data_out, lu->block_size);
	task->step = 0;
	write_same_next(&task->io, 0);
}

/* UNMAP: validates the whole parameter list, then deallocates descriptor by descriptor
 * (task->step is the next one). */

#define UNMAP_HDR 8
#define UNMAP_DESC 16

static void unmap_next(struct store_io *io, int err)
{
	struct scsi_task *task = io_task(io);
	uint32_t count = get_be16(task->data_out + 2) / UNMAP_DESC;
	const uint8_t *d;

	while (!err && !task->aborted && task->step < count) {
		d = task->data_out + UNMAP_HDR + UNMAP_DESC * task->step++;
		if (get_be32(d + 8) == 0)
			continue;
		task->io.done = unmap_next;
		store_discard(task->lu->store, task->reactor, &task->io, get_be64(d) << task->lu->block_shift,
		              (uint64_t)get_be32(d + 8) << task->lu->block_shift);
		return;
	}
	if (err)
		lu_sense_store_error(task, err, true);
	lu_complete(task);
}

/* Checks the UNMAP parameter list; sets task->lba/nblocks to the span it touches. */
static bool unmap_valid(struct scsi_task *task, uint32_t list_len)
{
	const struct scsi_lu *lu = task->lu;
	const uint8_t *p = task->data_out;
	uint32_t desc_len, count;
	uint64_t lo = UINT64_MAX, hi = 0;

	if (list_len < UNMAP_HDR || task->data_out_len < list_len) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		return false;
	}
	desc_len = get_be16(p + 2);
	if (desc_len % UNMAP_DESC || UNMAP_HDR + desc_len > list_len) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, 2, -1);
		return false;
	}
	count = desc_len / UNMAP_DESC;
	if (count > SBC_MAX_UNMAP_DESCRIPTORS) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, 2, -1);
		return false;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = p + UNMAP_HDR + UNMAP_DESC * i;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);

		if (lba > lu->nblocks || n > lu->nblocks - lba) {
			lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
			return false;
		}
		if (n > SBC_MAX_UNMAP_BLOCKS) {
			lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false,
			               (uint16_t)(UNMAP_HDR + UNMAP_DESC * i + 8), -1);
			return false;
		}
		if (n) {
			lo = MIN(lo, lba);
			hi = MAX(hi, lba + n);
		}
	}
	range_lock_span(task, lo, hi);
	return true;
}

void sbc_unmap(struct scsi_task *task)
{
	uint32_t list_len = get_be16(task->cdb + 7);

	if (!writable(task) || list_len == 0 || !unmap_valid(task, list_len)) {
		lu_complete(task);
		return;
	}
	if (!lock_range(task))
		return;
	task->step = 0;
	unmap_next(&task->io, 0);
}

/* GET LBA STATUS: mapped and deallocated extents from the starting LBA on. */

#define LBA_STATUS_MAX 64

void sbc_get_lba_status(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	uint64_t lba = get_be64(task->cdb + 2);
	uint32_t alloc_len = get_be32(task->cdb + 10);
	uint8_t buf[8 + 16 * LBA_STATUS_MAX] = { 0 };
	uint32_t n = 0;

	if (lba >= lu->nblocks) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		lu_complete(task);
		return;
	}
	while (lba < lu->nblocks && n < LBA_STATUS_MAX && 8 + 16 * n < MAX(alloc_len, 24u)) {
		uint8_t *d = buf + 8 + 16 * n;
		uint64_t len, blocks;
		bool mapped;

		if (store_map_status(lu->store, lba << lu->block_shift, &mapped, &len) < 0) {
			lu_sense(task, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR);
			lu_complete(task);
			return;
		}
		blocks = MAX(len >> lu->block_shift, 1);
		blocks = MIN(blocks, lu->nblocks - lba);
		blocks = MIN(blocks, UINT32_MAX);
		put_be64(d, lba);
		put_be32(d + 8, (uint32_t)blocks);
		d[12] = mapped ? 0x00 : 0x01;
		lba += blocks;
		n++;
	}
	put_be32(buf, 4 + 16 * n);
	lu_reply(task, buf, 8 + 16 * n, alloc_len);
	lu_complete(task);
}
