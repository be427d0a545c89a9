#include "iscsi/cmd.h"

#include <stdlib.h>
#include <string.h>

#include "common/iobuf.h"
#include "common/log.h"
#include "iscsi/session.h"
#include "iscsi/tmf.h"
#include "scsi/sense.h"

/* Largest Data-Out we gather for one command; the block limits VPD page advertises less. */
#define CMD_MAX_DATA_OUT (64u * 1024 * 1024)
/* Data-Out buffers up to this size stay with a recycled command, up to a total per
 * connection: fresh large buffers cost a page fault per page on every command. */
#define CMD_KEEP_BUF (1024u * 1024)
#define CONN_KEEP_BUF_TOTAL (32u * 1024 * 1024)
#define CMD_FREE_MAX 64
/* Data-Out one connection may have gathered or be gathering at once; more gets BUSY. */
#define CONN_DATA_OUT_BUDGET (128u * 1024 * 1024)

/* Extended CDB AHS (RFC 7143 §11.3.3.2) */
#define AHS_TYPE_EXTENDED_CDB 1

static unsigned hash_itt(uint32_t itt) { return (itt ^ itt >> 8) % CONN_CMD_BUCKETS; }

struct iscsi_cmd *cmd_find(struct iscsi_conn *conn, uint32_t itt)
{
	struct iscsi_cmd *cmd;

	for (cmd = conn->cmds[hash_itt(itt)]; cmd; cmd = cmd->hash_next)
		if (cmd->itt == itt)
			return cmd;
	return NULL;
}

void cmd_for_each(struct iscsi_conn *conn, void (*fn)(struct iscsi_cmd *cmd, void *arg), void *arg)
{
	for (unsigned i = 0; i < CONN_CMD_BUCKETS; i++) {
		struct iscsi_cmd *cmd = conn->cmds[i], *next;

		for (; cmd; cmd = next) {
			next = cmd->hash_next;
			fn(cmd, arg);
		}
	}
}

static void cmd_unhash(struct iscsi_cmd *cmd)
{
	struct iscsi_cmd **pp = &cmd->conn->cmds[hash_itt(cmd->itt)];

	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == cmd) {
			*pp = cmd->hash_next;
			return;
		}
	}
}

static struct iscsi_cmd *cmd_new(struct iscsi_conn *conn, uint32_t itt)
{
	struct iscsi_cmd *cmd = conn->cmd_free;
	uint8_t *buf = NULL;
	uint32_t cap = 0;
	unsigned h = hash_itt(itt);

	if (cmd) {
		conn->cmd_free = cmd->hash_next;
		conn->cmd_free_count--;
		conn->cmd_free_buf_bytes -= cmd->buf_cap;
		buf = cmd->buf;
		cap = cmd->buf_cap;
	} else {
		cmd = malloc(sizeof(*cmd));
		if (!cmd)
			return NULL;
	}
	memset(cmd, 0, sizeof(*cmd));
	cmd->buf = buf;
	cmd->buf_cap = cap;
	cmd->conn = conn;
	cmd->itt = itt;
	cmd->hash_next = conn->cmds[h];
	conn->cmds[h] = cmd;
	conn->tasks++;
	session_task_get(conn->session);
	return cmd;
}

/* The command is done as far as the initiator is concerned: its ITT may be reused at
 * once, even while its last PDUs are still being sent. */
static void cmd_answered(struct iscsi_cmd *cmd)
{
	cmd->state = CMD_ANSWERED;
	cmd_unhash(cmd);
	cmd->conn->data_out_bytes -= cmd->budget;
	cmd->budget = 0;
}

/* The command is gone for good: answered, and nothing refers to it any more. */
static void cmd_free(struct iscsi_cmd *cmd)
{
	struct iscsi_conn *conn = cmd->conn;

	scsi_task_release(&cmd->task);
	session_task_put(conn->session);
	if (cmd->buf_cap > CMD_KEEP_BUF || conn->cmd_free_buf_bytes + cmd->buf_cap > CONN_KEEP_BUF_TOTAL) {
		free(cmd->buf);
		cmd->buf = NULL;
		cmd->buf_cap = 0;
	}
	if (conn->cmd_free_count < CMD_FREE_MAX) {
		cmd->hash_next = conn->cmd_free;
		conn->cmd_free = cmd;
		conn->cmd_free_count++;
		conn->cmd_free_buf_bytes += cmd->buf_cap;
	} else {
		free(cmd->buf);
		free(cmd);
	}
	conn_task_put(conn);
}

void cmd_free_cache(struct iscsi_conn *conn)
{
	struct iscsi_cmd *cmd;

	while ((cmd = conn->cmd_free)) {
		conn->cmd_free = cmd->hash_next;
		free(cmd->buf);
		free(cmd);
	}
	conn->cmd_free_count = 0;
}

void cmd_tx_done(struct iscsi_cmd *cmd)
{
	if (--cmd->tx_refs == 0 && cmd->state == CMD_ANSWERED)
		cmd_free(cmd);
}

bool cmd_abort(struct iscsi_cmd *cmd, struct iscsi_tmf *tmf)
{
	switch (cmd->state) {
	case CMD_RECEIVING:
		cmd_answered(cmd);
		if (!cmd->tx_refs)
			cmd_free(cmd);
		return false;
	case CMD_EXECUTING:
		if (tmf && !cmd->tmf)
			cmd->tmf = tmf;
		if (!cmd->aborted) {
			cmd->aborted = true;
			scsi_task_abort(&cmd->task);
		}
		return cmd->tmf == tmf && tmf;
	case CMD_ANSWERED:
		break;
	}
	return false;
}

/* ---- answering ---- */

static void put_residual(uint8_t *hdr, const struct iscsi_cmd *cmd, uint8_t over, uint8_t under)
{
	const struct scsi_task *t = &cmd->task;
	uint32_t needed = t->write_dir ? t->data_out_wanted : t->data_in_len;

	if (needed > cmd->edtl) {
		hdr[1] |= over;
		put_be32(hdr + 44, needed - cmd->edtl);
	} else if (needed < cmd->edtl) {
		hdr[1] |= under;
		put_be32(hdr + 44, cmd->edtl - needed);
	}
}

static struct iscsi_tx *cmd_tx(struct iscsi_cmd *cmd, uint8_t opcode)
{
	struct iscsi_tx *tx = conn_tx_new(cmd->conn);

	tx->hdr[0] = opcode;
	memcpy(tx->hdr + BHS_LUN, cmd->lun_field, 8);
	put_be32(tx->hdr + BHS_ITT, cmd->itt);
	tx->cmd = cmd;
	cmd->tx_refs++;
	return tx;
}

/* Data-In PDUs straight from the task's buffer; returns how many were queued. */
static uint32_t cmd_send_data_in(struct iscsi_cmd *cmd, uint32_t len, bool with_status)
{
	struct iscsi_conn *conn = cmd->conn;
	const struct iscsi_session_params *sp = session_params(conn->session);
	uint32_t max_pdu = conn->params.max_send_data_segment_length;
	uint32_t off = 0, burst_left = sp->max_burst_length, data_sn = 0;

	while (off < len) {
		uint32_t n = MIN(MIN(len - off, max_pdu), burst_left);
		struct iscsi_tx *tx = cmd_tx(cmd, ISCSI_OP_DATA_IN);
		bool last = off + n == len;

		burst_left -= n;
		put_be32(tx->hdr + BHS_TTT, ISCSI_RSVD_TAG);
		if (last || !burst_left) {
			tx->hdr[1] |= ISCSI_FLAG_FINAL;
			burst_left = sp->max_burst_length;
		}
		if (last && with_status) {
			tx->hdr[1] |= ISCSI_FLAG_DATA_STATUS;
			tx->hdr[3] = cmd->task.status;
			put_be32(tx->hdr + 24, conn_next_stat_sn(conn));
			put_residual(tx->hdr, cmd, ISCSI_FLAG_DATA_OVERFLOW, ISCSI_FLAG_DATA_UNDERFLOW);
		}
		put_be32(tx->hdr + 36, data_sn++);
		put_be32(tx->hdr + 40, off);
		tx->data = cmd->task.data_in + off;
		tx->data_len = n;
		conn_tx_queue(conn, tx);
		off += n;
	}
	return data_sn;
}

static void cmd_send_response(struct iscsi_cmd *cmd, uint32_t data_pdus)
{
	struct iscsi_tx *tx = cmd_tx(cmd, ISCSI_OP_SCSI_RSP);
	const struct scsi_task *t = &cmd->task;

	tx->hdr[1] = ISCSI_FLAG_FINAL;
	tx->hdr[3] = t->status;
	put_be32(tx->hdr + 24, conn_next_stat_sn(cmd->conn));
	put_be32(tx->hdr + 36, data_pdus);
	put_residual(tx->hdr, cmd, ISCSI_FLAG_RSP_OVERFLOW, ISCSI_FLAG_RSP_UNDERFLOW);
	if (t->sense_len) {
		/* Sense data is preceded by its length (RFC 7143 §11.4.7.2). */
		uint8_t *d = malloc(2u + t->sense_len);

		if (d) {
			put_be16(d, t->sense_len);
			memcpy(d + 2, t->sense, t->sense_len);
			tx->owned = d;
			tx->data = d;
			tx->data_len = 2u + t->sense_len;
		} else {
			log_err("%s: out of memory for sense data", cmd->conn->peer);
		}
	}
	conn_tx_queue(cmd->conn, tx);
}

static void cmd_task_done(struct scsi_task *task)
{
	struct iscsi_cmd *cmd = container_of(task, struct iscsi_cmd, task);
	uint32_t len = 0, data_pdus = 0;
	bool status_in_data;

	cmd_answered(cmd);
	if (cmd->tmf) {
		struct iscsi_tmf *tmf = cmd->tmf;

		cmd->tmf = NULL;
		tmf_task_gone(tmf);
	}
	if (cmd->aborted || cmd->conn->state == CONN_CLOSING) {
		if (!cmd->tx_refs)
			cmd_free(cmd);
		return;
	}
	cmd->tx_refs++; /* hold the command while its PDUs are queued */
	if (task->read_dir && task->data_in)
		len = MIN(task->data_in_len, cmd->edtl);
	status_in_data = len && task->status == SCSI_STATUS_GOOD && !task->sense_len;
	if (len)
		data_pdus = cmd_send_data_in(cmd, len, status_in_data);
	if (!status_in_data)
		cmd_send_response(cmd, data_pdus);
	cmd_tx_done(cmd);
}

static void cmd_execute(struct iscsi_cmd *cmd)
{
	struct iscsi_session *s = cmd->conn->session;

	cmd->state = CMD_EXECUTING;
	cmd->task.itn = session_itn(s);
	cmd->task.data_out = cmd->task.write_dir ? cmd->buf : NULL;
	cmd->task.data_out_len = cmd->task.write_dir ? cmd->received : 0;
	cmd->task.data_out_wanted = cmd->task.data_out_len; /* the SCSI layer corrects it */
	cmd->task.reactor = cmd->conn->env->reactor;
	cmd->task.done = cmd_task_done;
	scsi_target_execute(session_scsi(s), &cmd->task);
}

/* ---- Data-Out: R2Ts and checking ---- */

static void cmd_send_r2ts(struct iscsi_cmd *cmd)
{
	struct iscsi_conn *conn = cmd->conn;
	const struct iscsi_session_params *sp = session_params(conn->session);
	unsigned max_r2t = MIN(MAX(sp->max_outstanding_r2t, 1u), CMD_MAX_R2T);

	while (cmd->nr_r2t < max_r2t && cmd->solicit_off < cmd->edtl) {
		struct iscsi_r2t *r2t = &cmd->r2t[cmd->nr_r2t++];
		struct iscsi_tx *tx = conn_tx_new(conn);

		*r2t = (struct iscsi_r2t){
			.ttt = conn_next_ttt(conn),
			.offset = cmd->solicit_off,
			.length = MIN(sp->max_burst_length, cmd->edtl - cmd->solicit_off),
		};
		cmd->solicit_off += r2t->length;
		tx->hdr[0] = ISCSI_OP_R2T;
		tx->hdr[1] = ISCSI_FLAG_FINAL;
		memcpy(tx->hdr + BHS_LUN, cmd->lun_field, 8);
		put_be32(tx->hdr + BHS_ITT, cmd->itt);
		put_be32(tx->hdr + BHS_TTT, r2t->ttt);
		put_be32(tx->hdr + 24, conn->stat_sn);
		put_be32(tx->hdr + 36, cmd->r2t_sn++);
		put_be32(tx->hdr + 40, r2t->offset);
		put_be32(tx->hdr + 44, r2t->length);
		conn_tx_queue(conn, tx);
	}
}

/* Executes once all data is in, else asks for more. */
static void cmd_progress(struct iscsi_cmd *cmd)
{
	if (cmd->unsol_open)
		return;
	if (cmd->received == cmd->edtl && !cmd->nr_r2t)
		cmd_execute(cmd);
	else
		cmd_send_r2ts(cmd);
}

/* Answers a command that never reaches the SCSI layer with a status (and sense). */
static void cmd_answer_now(struct iscsi_cmd *cmd, uint8_t status)
{
	cmd_answered(cmd);
	cmd->task.status = status;
	cmd->task.data_out_wanted = cmd->edtl; /* no residual to report for a failed transfer */
	cmd->tx_refs++;
	cmd_send_response(cmd, 0);
	cmd_tx_done(cmd);
}

/* A Data-Out that breaks the rules fails its command (ABORTED COMMAND), and later Data-Out
 * of it is dropped; the connection stays, as initiators expect (libiscsi iSCSIDataSnInvalid). */
static void data_out_violation(struct iscsi_cmd *cmd, enum sense_asc asc, const char *why)
{
	log_warn("%s: Data-Out for ITT 0x%08x: %s", cmd->conn->peer, cmd->itt, why);
	sense_set(&cmd->task, false, SENSE_ABORTED_COMMAND, asc);
	cmd_answer_now(cmd, SCSI_STATUS_CHECK_CONDITION);
}

void cmd_data_out(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	uint32_t itt = get_be32(pdu->bhs + BHS_ITT);
	uint32_t ttt = get_be32(pdu->bhs + BHS_TTT);
	uint32_t data_sn = get_be32(pdu->bhs + 36);
	uint32_t off = get_be32(pdu->bhs + 40);
	uint32_t len = pdu->data_len;
	bool final = pdu->bhs[1] & ISCSI_FLAG_FINAL;
	struct iscsi_cmd *cmd = cmd_find(conn, itt);
	struct iscsi_r2t *r2t = NULL;

	if (!cmd || cmd->state != CMD_RECEIVING) {
		/* Late data of an aborted task is normal; anything else is logged too. */
		log_warn("%s: Data-Out for ITT 0x%08x which expects none: dropped", conn->peer, itt);
		return;
	}
	if (off != cmd->received) {
		data_out_violation(cmd, ASC_DATA_OFFSET_ERROR, "buffer offset out of order");
		return;
	}
	if (ttt == ISCSI_RSVD_TAG) {
		if (!cmd->unsol_open || data_sn != cmd->unsol_data_sn || off + len > cmd->unsol_end) {
			data_out_violation(cmd, cmd->unsol_open ? ASC_DATA_PHASE_ERROR : ASC_UNEXPECTED_UNSOLICITED_DATA,
			                   "unexpected unsolicited data or wrong DataSN");
			return;
		}
		cmd->unsol_data_sn++;
		if (final) {
			cmd->unsol_open = false;
			cmd->solicit_off = off + len;
		}
	} else {
		unsigned i;

		for (i = 0; i < cmd->nr_r2t && cmd->r2t[i].ttt != ttt; i++)
			;
		if (i == cmd->nr_r2t) {
			data_out_violation(cmd, ASC_DATA_PHASE_ERROR, "unknown Target Transfer Tag");
			return;
		}
		r2t = &cmd->r2t[i];
		if (data_sn != r2t->data_sn || off != r2t->offset + r2t->received ||
		    r2t->received + len > r2t->length || (final && r2t->received + len != r2t->length)) {
			data_out_violation(cmd, ASC_DATA_PHASE_ERROR, "DataSN, offset or length does not match the R2T");
			return;
		}
		r2t->data_sn++;
		r2t->received += len;
		if (final) {
			cmd->r2t[i] = cmd->r2t[--cmd->nr_r2t];
		}
	}
	if (len)
		memcpy(cmd->buf + off, pdu->data, len);
	cmd->received += len;
	cmd_progress(cmd);
}

/* ---- SCSI Command PDU ---- */

uint64_t cmd_decode_lun(const uint8_t *f)
{
	const uint64_t invalid = UINT64_MAX;

	for (unsigned i = 2; i < 8; i++)
		if (f[i])
			return invalid;
	switch (f[0] >> 6) {
	case 0:
		return f[0] ? invalid : f[1];
	case 1:
		return (uint64_t)(f[0] & 0x3f) << 8 | f[1];
	default:
		return invalid;
	}
}

static bool ensure_buffer(struct iscsi_cmd *cmd, uint32_t len)
{
	if (cmd->buf_cap >= len)
		return true;
	free(cmd->buf);
	cmd->buf_cap = 0;
	/* Aligned so a store opened with O_DIRECT can use it as is. */
	cmd->buf = iobuf_alloc(len);
	if (!cmd->buf)
		return false;
	cmd->buf_cap = len;
	return true;
}

static int parse_cdb(struct scsi_task *task, const struct iscsi_pdu *pdu)
{
	memcpy(task->cdb, pdu->bhs + 32, 16);
	task->cdb_len = 16;
	if (pdu->ahs_len) {
		uint16_t ahs_len = get_be16(pdu->ahs);

		if (pdu->ahs_len < 4 || pdu->ahs[2] != AHS_TYPE_EXTENDED_CDB || ahs_len < 1 ||
		    ahs_len + 3u > pdu->ahs_len || 16u + ahs_len - 1 > SCSI_MAX_CDB)
			return -1;
		memcpy(task->cdb + 16, pdu->ahs + 4, ahs_len - 1u);
		task->cdb_len = (uint8_t)(16 + ahs_len - 1);
	}
	return 0;
}

static const enum scsi_task_attr task_attrs[8] = {
	[0] = SCSI_ATTR_SIMPLE, /* untagged */
	[1] = SCSI_ATTR_SIMPLE,
	[2] = SCSI_ATTR_ORDERED,
	[3] = SCSI_ATTR_HEAD_OF_QUEUE,
	[4] = SCSI_ATTR_ACA,
	[5] = SCSI_ATTR_SIMPLE,
	[6] = SCSI_ATTR_SIMPLE,
	[7] = SCSI_ATTR_SIMPLE,
};

void cmd_receive(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	const struct iscsi_session_params *sp = session_params(conn->session);
	const uint8_t *bhs = pdu->bhs;
	uint32_t itt = get_be32(bhs + BHS_ITT);
	uint32_t edtl = get_be32(bhs + BHS_TTT);
	bool final = bhs[1] & ISCSI_FLAG_FINAL;
	bool rd = bhs[1] & ISCSI_FLAG_CMD_READ, wr = bhs[1] & ISCSI_FLAG_CMD_WRITE;
	struct iscsi_cmd *cmd;
	const char *bad = NULL;

	if (cmd_find(conn, itt)) {
		conn_reject(conn, bhs, ISCSI_REJECT_TASK_IN_PROGRESS, "ITT already in use");
		return;
	}
	if (rd && wr)
		bad = "bidirectional commands are not supported";
	else if (pdu->data_len && (!wr || !sp->immediate_data))
		bad = "unexpected immediate data";
	else if (pdu->data_len > edtl || pdu->data_len > sp->first_burst_length)
		bad = "immediate data beyond EDTL or FirstBurstLength";
	else if (!final && (!wr || sp->initial_r2t))
		bad = "unsolicited Data-Out announced where none is allowed";
	else if (wr && edtl > CMD_MAX_DATA_OUT)
		bad = "expected data transfer length too large";
	if (bad) {
		conn_reject(conn, bhs, rd && wr ? ISCSI_REJECT_CMD_NOT_SUPPORTED : ISCSI_REJECT_PROTOCOL_ERROR, bad);
		return;
	}
	cmd = cmd_new(conn, itt);
	if (!cmd) {
		conn_reject(conn, bhs, ISCSI_REJECT_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	if (parse_cdb(&cmd->task, pdu)) {
		cmd_answered(cmd);
		cmd_free(cmd);
		conn_reject(conn, bhs, ISCSI_REJECT_INVALID_PDU_FIELD, "bad AHS");
		return;
	}
	cmd->cmd_sn = get_be32(bhs + BHS_CMDSN);
	cmd->edtl = edtl;
	memcpy(cmd->lun_field, bhs + BHS_LUN, 8);
	cmd->task.lun = cmd_decode_lun(cmd->lun_field);
	cmd->task.tag = itt;
	cmd->task.attr = task_attrs[bhs[1] & ISCSI_FLAG_CMD_ATTR_MASK];
	cmd->task.expected_len = edtl;
	cmd->task.read_dir = rd;
	cmd->task.write_dir = wr;
	cmd->state = CMD_RECEIVING;
	if (!wr) {
		cmd_execute(cmd);
		return;
	}
	if (cmd->conn->data_out_bytes + edtl > CONN_DATA_OUT_BUDGET) {
		log_warn("%s: too much write data outstanding; ITT 0x%08x gets BUSY", conn->peer, itt);
		cmd_answer_now(cmd, SCSI_STATUS_BUSY);
		return;
	}
	if (!ensure_buffer(cmd, edtl)) {
		log_err("%s: out of memory for %u bytes of Data-Out", conn->peer, edtl);
		cmd_answer_now(cmd, SCSI_STATUS_BUSY);
		return;
	}
	cmd->budget = edtl;
	conn->data_out_bytes += edtl;
	if (pdu->data_len)
		memcpy(cmd->buf, pdu->data, pdu->data_len);
	cmd->received = pdu->data_len;
	cmd->unsol_open = !final;
	cmd->unsol_end = cmd->unsol_open ? MIN(sp->first_burst_length, edtl) : cmd->received;
	cmd->solicit_off = cmd->unsol_end;
	cmd_progress(cmd);
}
