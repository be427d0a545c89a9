/* Primary commands: INQUIRY, REQUEST SENSE, TEST UNIT READY, START STOP UNIT, PREVENT
 * ALLOW MEDIUM REMOVAL, REPORT LUNS, and the reservation commands' entry into pr.c. */
#include "scsi/spc.h"

#include <string.h>

#include "common/util.h"
#include "scsi/lu_state.h"
#include "scsi/pr.h"

void spc_test_unit_ready(struct scsi_task *task) { lu_complete(task); }

/* Version descriptors: SAM-5, SPC-4, SBC-3, iSCSI (RFC 7143). */
static const uint16_t version_descriptors[] = { 0x00a0, 0x0460, 0x04c0, 0x0960 };

void spc_standard_inquiry(const struct scsi_lu *lu, uint8_t buf[SPC_STD_INQUIRY_LEN])
{
	memset(buf, 0, SPC_STD_INQUIRY_LEN);
	if (!lu) {
		buf[0] = 0x7f; /* qualifier 3, type 0x1f: no logical unit here */
	}
	buf[2] = 0x06; /* SPC-4 */
	buf[3] = 0x12; /* HISUP, response data format 2 */
	buf[4] = SPC_STD_INQUIRY_LEN - 5;
	buf[5] = 0x18; /* TPGS 01b: implicit ALUA; 3PC: EXTENDED COPY */
	buf[7] = 0x02; /* CMDQUE */
	memcpy(buf + 8, lu ? lu->vendor : "TWINSAN ", 8);
	memcpy(buf + 16, lu ? lu->product : "twinsan disk    ", 16);
	memcpy(buf + 32, lu ? lu->revision : "0001", 4);
	for (size_t i = 0; i < ARRAY_SIZE(version_descriptors); i++)
		put_be16(buf + 58 + 2 * i, version_descriptors[i]);
}

void spc_inquiry(struct scsi_task *task)
{
	uint8_t buf[SPC_STD_INQUIRY_LEN];

	if (task->cdb[1] & 0x01) {
		vpd_inquiry(task);
		return;
	}
	if (task->cdb[2]) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 2, -1);
	} else {
		spc_standard_inquiry(task->lu, buf);
		lu_reply(task, buf, sizeof(buf), get_be16(task->cdb + 3));
	}
	lu_complete(task);
}

void spc_request_sense(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	bool desc = task->cdb[1] & 0x01;
	enum sense_asc asc;
	struct scsi_task probe = { .lu = lu };

	/* A pending unit attention is the sense data to report (SPC-4 §5.12), else why other
	 * commands would fail. */
	if (ua_take(lu->ua, task->itn, &asc))
		sense_set(&probe, desc, SENSE_UNIT_ATTENTION, asc);
	else if (alua_not_ready(alua_state(lu->alua, task->itn), &asc))
		sense_set(&probe, desc, SENSE_NOT_READY, asc);
	else if (lu->stopped)
		sense_set(&probe, desc, SENSE_NOT_READY, ASC_LUN_NOT_READY_INIT_REQUIRED);
	else
		sense_set(&probe, desc, SENSE_NO_SENSE, ASC_NO_ADDITIONAL_SENSE);
	lu_reply(task, probe.sense, probe.sense_len, task->cdb[4]);
	lu_complete(task);
}

void spc_start_stop_unit(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	uint8_t b4 = task->cdb[4];
	bool start = b4 & 0x01, loej = b4 & 0x02;

	/* A power condition other than START_VALID leaves START and LOEJ unused. */
	if ((b4 >> 4) == 0) {
		if (loej && !start && lu_prevented(lu))
			lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED);
		else
			lu->stopped = !start;
	}
	lu_complete(task);
}

void spc_prevent_allow(struct scsi_task *task)
{
	if (!lu_set_prevent(task->lu, task->itn->id, task->cdb[4] & 0x01))
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
	lu_complete(task);
}

void spc_report_luns(struct scsi_task *task)
{
	target_report_luns(task->lu->target, task);
	lu_complete(task);
}

void spc_reserve6(struct scsi_task *task)
{
	pr_reserve6(task->lu->pr, task);
	lu_complete(task);
}

void spc_release6(struct scsi_task *task)
{
	pr_release6(task->lu->pr, task);
	lu_complete(task);
}

void spc_persistent_reserve_in(struct scsi_task *task)
{
	pr_persistent_reserve_in(task->lu->pr, task);
	lu_complete(task);
}

void spc_persistent_reserve_out(struct scsi_task *task)
{
	pr_persistent_reserve_out(task->lu->pr, task);
	lu_complete(task);
}
