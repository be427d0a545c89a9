/* Block commands (SBC-3) and the limits the logical unit advertises for them. */
#ifndef TWINSAN_SCSI_SBC_H
#define TWINSAN_SCSI_SBC_H

#include "scsi/scsi.h"

/* Limits, in logical blocks unless named otherwise (Block Limits VPD page). */
#define SBC_MAX_TRANSFER_BYTES (32u << 20)
/* COMPARE AND WRITE: the CDB's one-byte count, but no more than a store does atomically
 * (128 blocks of 4 KiB). */
#define SBC_MAX_COMPARE_AND_WRITE(block_shift) \
	(STORE_MAX_COMPARE_AND_WRITE >> (block_shift) < 255u ? STORE_MAX_COMPARE_AND_WRITE >> (block_shift) : 255u)
#define SBC_MAX_UNMAP_BLOCKS (1u << 20)
#define SBC_MAX_UNMAP_DESCRIPTORS 255u
#define SBC_MAX_WRITE_SAME_BLOCKS (1u << 22)

void sbc_read_capacity10(struct scsi_task *task);
void sbc_read_capacity16(struct scsi_task *task);
void sbc_get_lba_status(struct scsi_task *task);
void sbc_read(struct scsi_task *task);
void sbc_write(struct scsi_task *task);
void sbc_write_verify(struct scsi_task *task);
void sbc_verify(struct scsi_task *task);
void sbc_orwrite(struct scsi_task *task);
void sbc_compare_and_write(struct scsi_task *task);
void sbc_prefetch(struct scsi_task *task);
void sbc_synchronize_cache(struct scsi_task *task);
void sbc_write_same(struct scsi_task *task);
void sbc_unmap(struct scsi_task *task);

#endif
