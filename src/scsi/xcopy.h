/* Third-party copy (SPC-4 §6.4, LID1): EXTENDED COPY with block-to-block segments between
 * logical units of the same target, and RECEIVE COPY RESULTS. */
#ifndef TWINSAN_SCSI_XCOPY_H
#define TWINSAN_SCSI_XCOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi/scsi.h"

/* The last copy operation's outcome, for RECEIVE COPY RESULTS (COPY STATUS). */
struct xcopy_state {
	bool known;
	uint64_t nexus_id;       /* list IDs belong to the I_T nexus that sent them */
	uint8_t list_id;
	uint8_t status;          /* copy manager status: 0 in progress, 1 done, 2 failed */
	uint16_t segments_done;
	uint32_t blocks_done;
};

void xcopy_extended_copy(struct scsi_task *task);
/* The Third-party Copy VPD page (0x8F) body after its 4-byte header; returns its length
 * (at most XCOPY_VPD_MAX). */
#define XCOPY_VPD_MAX 64
uint32_t xcopy_vpd_page(uint8_t *body);
void xcopy_receive_copy_results(struct scsi_task *task);

#endif
