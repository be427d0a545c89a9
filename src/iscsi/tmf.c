#include "iscsi/tmf.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "iscsi/cmd.h"
#include "iscsi/session.h"

struct iscsi_tmf {
	struct iscsi_conn *conn;
	uint8_t rsp[ISCSI_BHS_LEN];
	uint64_t lun;
	unsigned waiting;             /* aborted tasks still in the SCSI layer */
	bool cold_reset;
};

static const char *const tmf_names[] = {
	[ISCSI_TMF_ABORT_TASK] = "ABORT TASK",
	[ISCSI_TMF_ABORT_TASK_SET] = "ABORT TASK SET",
	[ISCSI_TMF_CLEAR_ACA] = "CLEAR ACA",
	[ISCSI_TMF_CLEAR_TASK_SET] = "CLEAR TASK SET",
	[ISCSI_TMF_LUN_RESET] = "LUN RESET",
	[ISCSI_TMF_TARGET_WARM_RESET] = "TARGET WARM RESET",
	[ISCSI_TMF_TARGET_COLD_RESET] = "TARGET COLD RESET",
	[ISCSI_TMF_TASK_REASSIGN] = "TASK REASSIGN",
};

static void tmf_respond(struct iscsi_tmf *tmf)
{
	struct iscsi_conn *conn = tmf->conn;

	put_be32(tmf->rsp + 24, conn_next_stat_sn(conn));
	conn_send_copy(conn, tmf->rsp, NULL, 0, false);
	if (tmf->cold_reset && conn->session) {
		/* Every other session of the target goes now; ours after the response. */
		struct scsi_target *target = session_scsi(conn->session);

		for (struct iscsi_conn *c = conn->env->conns; c; c = c->next)
			if (c != conn && c->session && session_scsi(c->session) == target)
				conn_close(c, "target cold reset");
		conn_finish(conn, "target cold reset");
	}
	conn_task_put(conn);
	free(tmf);
}

void tmf_task_gone(struct iscsi_tmf *tmf)
{
	if (--tmf->waiting == 0)
		tmf_respond(tmf);
}

struct tmf_scope {
	struct iscsi_tmf *tmf;
	bool whole_target;
};

static void abort_in_scope(struct iscsi_cmd *cmd, void *arg)
{
	struct tmf_scope *scope = arg;

	if (scope->whole_target || cmd->task.lun == scope->tmf->lun)
		scope->tmf->waiting += cmd_abort(cmd, scope->tmf);
}

/* Aborts this session's commands the function affects; other nexuses' tasks the SCSI
 * layer aborts through the transport hook. */
static void abort_own(struct iscsi_tmf *tmf, bool whole_target)
{
	struct tmf_scope scope = { tmf, whole_target };

	for (struct iscsi_conn *c = session_conns(tmf->conn->session); c; c = c->next_in_session)
		cmd_for_each(c, abort_in_scope, &scope);
}

static struct iscsi_cmd *find_in_session(struct iscsi_session *s, uint32_t itt)
{
	for (struct iscsi_conn *c = session_conns(s); c; c = c->next_in_session) {
		struct iscsi_cmd *cmd = cmd_find(c, itt);

		if (cmd)
			return cmd;
	}
	return NULL;
}

static enum iscsi_tmf_response abort_task(struct iscsi_tmf *tmf, const uint8_t *bhs)
{
	struct iscsi_session *s = tmf->conn->session;
	uint32_t rtt = get_be32(bhs + 20);
	uint32_t ref_cmd_sn = get_be32(bhs + 32);
	struct iscsi_cmd *cmd = find_in_session(s, rtt);

	if (cmd) {
		tmf->waiting += cmd_abort(cmd, tmf);
		return ISCSI_TMF_RSP_COMPLETE;
	}
	/* RFC 7143 §11.5.1: a task not received yet counts as received, and aborted. */
	if (!sn_lt(ref_cmd_sn, session_exp_cmd_sn(s)))
		return ISCSI_TMF_RSP_COMPLETE;
	return ISCSI_TMF_RSP_NO_TASK;
}

static enum iscsi_tmf_response from_scsi(enum scsi_tmf_response r)
{
	switch (r) {
	case SCSI_TMF_COMPLETE:
		return ISCSI_TMF_RSP_COMPLETE;
	case SCSI_TMF_NO_SUCH_LUN:
		return ISCSI_TMF_RSP_NO_LUN;
	case SCSI_TMF_REJECTED:
		break;
	}
	return ISCSI_TMF_RSP_REJECTED;
}

void tmf_receive(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	const uint8_t *bhs = pdu->bhs;
	unsigned function = bhs[1] & 0x7f;
	struct scsi_target *target = session_scsi(conn->session);
	const struct scsi_itn *itn = session_itn(conn->session);
	struct iscsi_tmf *tmf = calloc(1, sizeof(*tmf));
	enum iscsi_tmf_response response;

	if (!tmf) {
		conn_reject(conn, bhs, ISCSI_REJECT_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	tmf->conn = conn;
	conn->tasks++;
	tmf->lun = cmd_decode_lun(bhs + BHS_LUN);
	tmf->waiting = 1; /* this function itself, until it has been handed out */
	tmf->rsp[0] = ISCSI_OP_TMF_RSP;
	tmf->rsp[1] = ISCSI_FLAG_FINAL;
	put_be32(tmf->rsp + BHS_ITT, get_be32(bhs + BHS_ITT));
	log_info("%s: %s (LUN %llu)", conn->peer,
	         function < ARRAY_SIZE(tmf_names) && tmf_names[function] ? tmf_names[function] : "unknown TMF",
	         (unsigned long long)tmf->lun);
	switch (function) {
	case ISCSI_TMF_ABORT_TASK:
		response = abort_task(tmf, bhs);
		break;
	case ISCSI_TMF_ABORT_TASK_SET:
		abort_own(tmf, false);
		response = from_scsi(scsi_target_abort_task_set(target, itn, tmf->lun));
		break;
	case ISCSI_TMF_CLEAR_TASK_SET:
		abort_own(tmf, false);
		response = from_scsi(scsi_target_clear_task_set(target, itn, tmf->lun));
		break;
	case ISCSI_TMF_LUN_RESET:
		abort_own(tmf, false);
		response = from_scsi(scsi_target_lun_reset(target, itn, tmf->lun));
		break;
	case ISCSI_TMF_TARGET_WARM_RESET:
	case ISCSI_TMF_TARGET_COLD_RESET:
		abort_own(tmf, true);
		response = from_scsi(scsi_target_reset(target, itn));
		tmf->cold_reset = function == ISCSI_TMF_TARGET_COLD_RESET;
		break;
	case ISCSI_TMF_CLEAR_ACA:
		response = ISCSI_TMF_RSP_NOT_SUPPORTED;
		break;
	case ISCSI_TMF_TASK_REASSIGN:
		/* Only error recovery level 2 reassigns tasks. */
		response = ISCSI_TMF_RSP_NO_REASSIGN;
		break;
	default:
		response = ISCSI_TMF_RSP_REJECTED;
		break;
	}
	tmf->rsp[2] = (uint8_t)response;
	tmf_task_gone(tmf);
}
