/* The SCSI target device: logical units by LUN, REPORT LUNS, commands to absent LUNs,
 * and the task management functions that span logical units. */
#include "scsi/scsi.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "scsi/lu_state.h"
#include "scsi/spc.h"

#define TARGET_MAX_LUNS 256
#define LUN_MAX 16383

struct target_lun {
	uint64_t lun;
	struct scsi_lu *lu;
};

struct scsi_target {
	struct target_lun luns[TARGET_MAX_LUNS]; /* sorted by LUN */
	size_t count;
	struct scsi_transport_ops ops;
};

int scsi_target_new(struct scsi_target **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -1;
}

void scsi_target_free(struct scsi_target *t) { free(t); }

int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, struct scsi_lu *lu)
{
	size_t i;

	if (lun > LUN_MAX || t->count == TARGET_MAX_LUNS || lu->target)
		return -1;
	for (i = 0; i < t->count && t->luns[i].lun < lun; i++)
		;
	if (i < t->count && t->luns[i].lun == lun)
		return -1;
	memmove(t->luns + i + 1, t->luns + i, (t->count - i) * sizeof(t->luns[0]));
	for (size_t j = 0; j < t->count; j++)
		ua_raise_all(t->luns[j].lu->ua, NULL, ASC_REPORTED_LUNS_DATA_CHANGED);
	t->luns[i] = (struct target_lun){ .lun = lun, .lu = lu };
	t->count++;
	lu->target = t;
	return 0;
}

int scsi_target_remove_lu(struct scsi_target *t, uint64_t lun)
{
	size_t i;

	for (i = 0; i < t->count && t->luns[i].lun != lun; i++)
		;
	if (i == t->count)
		return -1;
	t->count--;
	memmove(t->luns + i, t->luns + i + 1, (t->count - i) * sizeof(t->luns[0]));
	for (size_t j = 0; j < t->count; j++)
		ua_raise_all(t->luns[j].lu->ua, NULL, ASC_REPORTED_LUNS_DATA_CHANGED);
	return 0;
}

void scsi_target_set_transport(struct scsi_target *t, const struct scsi_transport_ops *ops)
{
	t->ops = *ops;
}

static struct scsi_lu *find_lu(const struct scsi_target *t, uint64_t lun)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->luns[i].lun == lun)
			return t->luns[i].lu;
	return NULL;
}

struct scsi_lu *target_find_lu_by_naa(const struct scsi_target *t, const uint8_t naa[16])
{
	uint8_t mine[16];

	for (size_t i = 0; i < t->count; i++) {
		lu_naa(t->luns[i].lu, mine);
		if (memcmp(mine, naa, sizeof(mine)) == 0)
			return t->luns[i].lu;
	}
	return NULL;
}

void target_report_luns(const struct scsi_target *t, struct scsi_task *task)
{
	uint8_t buf[8 + TARGET_MAX_LUNS * 8];
	uint8_t select = task->cdb[2];
	uint32_t alloc_len = get_be32(task->cdb + 6);
	size_t n = 0;

	/* Select report 0, 1 and 2 all mean our logical units: there are no well-known ones. */
	if (select > 2) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 2, -1);
		return;
	}
	if (alloc_len < 16) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 6, -1);
		return;
	}
	memset(buf, 0, sizeof(buf));
	if (select != 1) {
		for (; n < t->count; n++) {
			uint64_t lun = t->luns[n].lun;
			uint8_t *p = buf + 8 + 8 * n;

			/* Peripheral device addressing below 256, flat space above. */
			if (lun < 256) {
				p[1] = (uint8_t)lun;
			} else {
				p[0] = (uint8_t)(0x40 | lun >> 8);
				p[1] = (uint8_t)lun;
			}
		}
	}
	put_be32(buf, (uint32_t)(8 * n));
	lu_reply(task, buf, (uint32_t)(8 + 8 * n), alloc_len);
}

void target_abort_transport_tasks(const struct scsi_target *t, struct scsi_lu *lu,
                                  bool (*match)(const struct scsi_itn *itn, void *arg), void *arg,
                                  const struct scsi_task *except)
{
	if (t->ops.abort_tasks)
		t->ops.abort_tasks(t->ops.ctx, lu, match, arg, except);
}

/* A command addressed to a LUN with no logical unit (SPC-4 §4.6.3 / SAM-5 §5.9.2). */
static void execute_absent(const struct scsi_target *t, struct scsi_task *task)
{
	uint8_t buf[SPC_STD_INQUIRY_LEN];
	struct scsi_task probe = { .lu = NULL };

	lu_task_start(task, NULL);
	switch (task->cdb[0]) {
	case 0xa0: /* REPORT LUNS */
		target_report_luns(t, task);
		break;
	case 0x12: /* INQUIRY */
		if (task->cdb[1] & 0x01 || task->cdb[2]) {
			lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true,
			               task->cdb[2] ? 2 : 1, task->cdb[2] ? -1 : 0);
			break;
		}
		spc_standard_inquiry(NULL, buf);
		lu_reply(task, buf, sizeof(buf), get_be16(task->cdb + 3));
		break;
	case 0x03: /* REQUEST SENSE */
		sense_set(&probe, task->cdb[1] & 0x01, SENSE_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
		lu_reply(task, probe.sense, probe.sense_len, task->cdb[4]);
		break;
	default:
		log_debug("scsi: opcode 0x%02x for absent LUN %llu", task->cdb[0],
		          (unsigned long long)task->lun);
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
		break;
	}
	lu_complete(task);
}

void scsi_target_execute(struct scsi_target *t, struct scsi_task *task)
{
	struct scsi_lu *lu = find_lu(t, task->lun);

	if (lu)
		lu_execute(lu, task);
	else
		execute_absent(t, task);
}

enum scsi_tmf_response scsi_target_lun_reset(struct scsi_target *t, const struct scsi_itn *itn,
                                             uint64_t lun)
{
	struct scsi_lu *lu = find_lu(t, lun);

	if (!lu)
		return SCSI_TMF_NO_SUCH_LUN;
	lu_reset(lu);
	return SCSI_TMF_COMPLETE;
}

enum scsi_tmf_response scsi_target_reset(struct scsi_target *t, const struct scsi_itn *itn)
{
	for (size_t i = 0; i < t->count; i++)
		lu_reset(t->luns[i].lu);
	return SCSI_TMF_COMPLETE;
}

static bool same_nexus(const struct scsi_itn *itn, void *arg)
{
	return ua_same_nexus(itn, arg);
}

static bool other_nexus(const struct scsi_itn *itn, void *arg)
{
	return !ua_same_nexus(itn, arg);
}

enum scsi_tmf_response scsi_target_abort_task_set(struct scsi_target *t, const struct scsi_itn *itn,
                                                  uint64_t lun)
{
	struct scsi_lu *lu = find_lu(t, lun);

	if (!lu)
		return SCSI_TMF_NO_SUCH_LUN;
	lu_abort_tasks(lu, same_nexus, (void *)itn, NULL);
	return SCSI_TMF_COMPLETE;
}

enum scsi_tmf_response scsi_target_clear_task_set(struct scsi_target *t, const struct scsi_itn *itn,
                                                  uint64_t lun)
{
	struct scsi_lu *lu = find_lu(t, lun);

	if (!lu)
		return SCSI_TMF_NO_SUCH_LUN;
	lu_abort_tasks(lu, lu_any_nexus, NULL, NULL);
	ua_raise_matching(lu->ua, other_nexus, (void *)itn, ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR);
	return SCSI_TMF_COMPLETE;
}

void scsi_target_nexus_lost(struct scsi_target *t, const struct scsi_itn *itn)
{
	for (size_t i = 0; i < t->count; i++)
		lu_nexus_lost(t->luns[i].lu, itn);
}
