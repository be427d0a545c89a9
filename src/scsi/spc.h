/* Primary commands (SPC-4) every logical unit answers. */
#ifndef TWINSAN_SCSI_SPC_H
#define TWINSAN_SCSI_SPC_H

#include "scsi/scsi.h"

void spc_test_unit_ready(struct scsi_task *task);
void spc_request_sense(struct scsi_task *task);
void spc_inquiry(struct scsi_task *task);
void spc_start_stop_unit(struct scsi_task *task);
void spc_prevent_allow(struct scsi_task *task);
void spc_report_luns(struct scsi_task *task);
void spc_reserve6(struct scsi_task *task);
void spc_release6(struct scsi_task *task);
void spc_persistent_reserve_in(struct scsi_task *task);
void spc_persistent_reserve_out(struct scsi_task *task);

/* Standard INQUIRY data of a logical unit (or of no logical unit: lu NULL). */
#define SPC_STD_INQUIRY_LEN 96
void spc_standard_inquiry(const struct scsi_lu *lu, uint8_t buf[SPC_STD_INQUIRY_LEN]);

/* VPD pages (vpd.c): the INQUIRY EVPD=1 handler body. */
void vpd_inquiry(struct scsi_task *task);

#endif
