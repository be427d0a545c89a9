/* iSCSI sessions (RFC 7143 §4.4, §6.3): the session table behind login's binder, TSIH
 * allocation, session and connection reinstatement, the I_T nexus, and the session-wide
 * CmdSN window that orders non-immediate requests from all of a session's connections. */
#ifndef TWINSAN_ISCSI_SESSION_H
#define TWINSAN_ISCSI_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi/params.h"
#include "iscsi/pdu.h"
#include "scsi/scsi.h"

struct iscsi_conn;
struct iscsi_session;
struct iscsi_sessions;

/* How many non-immediate commands the initiator may have outstanding. */
#define SESSION_CMD_WINDOW 128

int sessions_new(struct iscsi_sessions **out);
/* Sessions must have been ended (their connections freed) first. */
void sessions_free(struct iscsi_sessions *table);

/* The iscsi_session_binder.bind of login.h, with the connection as ctx. */
int sessions_bind(void *conn_ctx, const struct iscsi_session_params *sp,
                  const struct iscsi_conn_params *cp, uint16_t *tsih_out);

/* The table the abort hook of the SCSI layer walks (scsi_transport_ops of scsi.h). */
void sessions_transport_ops(struct iscsi_sessions *table, struct scsi_transport_ops *ops);

/* Commands of the session that exist (they bound how far the CmdSN window opens). */
void session_task_get(struct iscsi_session *s);
void session_task_put(struct iscsi_session *s);

/* CmdSN window values to put in target PDUs. */
uint32_t session_exp_cmd_sn(const struct iscsi_session *s);
uint32_t session_max_cmd_sn(struct iscsi_session *s);

/* Orders a non-immediate request (RFC 7143 §4.2.2.1): delivers it through
 * conn_execute_pdu() now if its CmdSN is the expected one, keeps a copy if it is ahead in
 * the window, drops it (with a log line) otherwise.  Immediate requests go straight through. */
void session_receive(struct iscsi_session *s, struct iscsi_conn *conn, const struct iscsi_pdu *pdu);

const struct iscsi_session_params *session_params(const struct iscsi_session *s);
const struct scsi_itn *session_itn(const struct iscsi_session *s);
struct scsi_target *session_scsi(const struct iscsi_session *s);     /* NULL: discovery */
struct iscsi_conn *session_conns(const struct iscsi_session *s);     /* via next_in_session */

/* Ends the session: closes its connections, aborts its tasks, tells the SCSI layer the
 * nexus is gone.  Safe to call more than once. */
void session_end(struct iscsi_session *s, const char *why);
/* A connection closes: its queued out-of-order requests are dropped, and the session
 * ends with its last connection (error recovery level 0). */
void session_conn_closing(struct iscsi_session *s, struct iscsi_conn *conn);
/* A connection is freed: the session forgets it, and is freed after its last one. */
void session_conn_gone(struct iscsi_session *s, struct iscsi_conn *conn);

/* Calls fn for every session not ended, newest first. */
void sessions_each(const struct iscsi_sessions *table, void (*fn)(void *arg, const struct iscsi_session *s),
                   void *arg);
/* Ends the sessions logged in to target t; how many there were. */
unsigned sessions_end_target(struct iscsi_sessions *table, const struct scsi_target *t, const char *why);

/* Ends every session (shutdown). */
void sessions_close_all(struct iscsi_sessions *table, const char *why);

#endif
