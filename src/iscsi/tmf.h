/* Task management over iSCSI (RFC 7143 §11.5, §11.6): ABORT TASK, ABORT TASK SET, CLEAR
 * TASK SET, LUN RESET, TARGET WARM/COLD RESET.  The response waits until every affected
 * task of this connection that the SCSI layer still held has ended; responses for aborted
 * tasks are never sent. */
#ifndef TWINSAN_ISCSI_TMF_H
#define TWINSAN_ISCSI_TMF_H

#include "iscsi/conn.h"

struct iscsi_tmf;

/* A Task Management Function Request, delivered in CmdSN order (or immediate). */
void tmf_receive(struct iscsi_conn *conn, const struct iscsi_pdu *pdu);

/* An aborted task this TMF waits for has ended. */
void tmf_task_gone(struct iscsi_tmf *tmf);

#endif
