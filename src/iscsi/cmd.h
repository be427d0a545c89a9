/* SCSI commands over iSCSI (RFC 7143 §11.3-§11.8): SCSI Command PDU to struct scsi_task,
 * immediate and unsolicited data, R2Ts and Data-Out checking for the rest, execution, and
 * the answer: Data-In split by the initiator's limits, status in the last Data-In when
 * possible, else a SCSI Response with sense; residuals in both directions. */
#ifndef TWINSAN_ISCSI_CMD_H
#define TWINSAN_ISCSI_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi/conn.h"
#include "scsi/scsi.h"

struct iscsi_tmf;

#define CMD_MAX_R2T 8

enum iscsi_cmd_state {
	CMD_RECEIVING,    /* waiting for Data-Out */
	CMD_EXECUTING,    /* in the SCSI layer */
	CMD_ANSWERED,     /* response queued; waiting for the sends of its data */
};

/* An R2T sent and not yet satisfied. */
struct iscsi_r2t {
	uint32_t ttt, offset, length, received, data_sn;
};

struct iscsi_cmd {
	struct scsi_task task;
	struct iscsi_conn *conn;
	struct iscsi_cmd *hash_next;
	enum iscsi_cmd_state state;
	uint32_t itt, cmd_sn, edtl;
	uint8_t lun_field[8];
	uint8_t *buf;                 /* Data-Out; kept for reuse while small */
	uint32_t buf_cap;
	uint32_t budget;              /* counted in conn->data_out_bytes */
	uint32_t received;            /* Data-Out bytes, all in order from offset 0 */
	uint32_t unsol_end;           /* unsolicited data may run up to this offset */
	uint32_t unsol_data_sn;
	bool unsol_open;              /* unsolicited Data-Out still expected */
	uint32_t solicit_off;         /* next offset an R2T asks for */
	uint32_t r2t_sn;
	struct iscsi_r2t r2t[CMD_MAX_R2T];
	unsigned nr_r2t;
	unsigned tx_refs;             /* queued PDUs pointing into this command */
	bool aborted;                 /* no response will be sent */
	struct iscsi_tmf *tmf;        /* a TMF waiting for this command to end */
};

/* A SCSI Command PDU, delivered in CmdSN order. */
void cmd_receive(struct iscsi_conn *conn, const struct iscsi_pdu *pdu);
/* A SCSI Data-Out PDU (not CmdSN ordered). */
void cmd_data_out(struct iscsi_conn *conn, const struct iscsi_pdu *pdu);

/* The SCSI layer's LUN from an 8-byte LUN field: SAM-5 peripheral (00b) and flat (01b)
 * addressing of the first level; UINT64_MAX (no such LUN) for anything else. */
uint64_t cmd_decode_lun(const uint8_t *field);

/* Commands not answered yet, by ITT. */
struct iscsi_cmd *cmd_find(struct iscsi_conn *conn, uint32_t itt);
/* Calls fn for every command of the connection not answered yet (fn may abort it). */
void cmd_for_each(struct iscsi_conn *conn, void (*fn)(struct iscsi_cmd *cmd, void *arg), void *arg);

/* Aborts a command: no response is sent.  Returns true if it is still in the SCSI layer,
 * in which case tmf (if not NULL) hears tmf_task_gone() when it has ended. */
bool cmd_abort(struct iscsi_cmd *cmd, struct iscsi_tmf *tmf);

/* A queued PDU that pointed into cmd was sent or dropped. */
void cmd_tx_done(struct iscsi_cmd *cmd);

/* Frees the connection's recycled commands (the connection is being freed). */
void cmd_free_cache(struct iscsi_conn *conn);

#endif
