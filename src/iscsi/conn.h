/* One iSCSI connection (RFC 7143 §4, §7): TCP byte stream in and out on the reactor,
 * PDU framing, the login phase, and dispatch of full-feature PDUs to the session, command
 * and task management modules.
 *
 * Receive: one RECV in flight into a per-connection buffer sized for the largest PDU we
 * accept; every complete PDU in it is handled in place.  Send: PDUs queue as iovecs (BHS,
 * data straight from its owner, padding, digests); one SENDMSG in flight carries a batch.
 *
 * The struct is shared by the full-feature modules (session, cmd, tmf) only. */
#ifndef TWINSAN_ISCSI_CONN_H
#define TWINSAN_ISCSI_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/reactor.h"
#include "iscsi/login.h"
#include "iscsi/params.h"
#include "iscsi/pdu.h"

struct iscsi_session;
struct iscsi_sessions;
struct iscsi_cmd;

/* What all connections of a server share. */
struct iscsi_conn_env {
	struct reactor *reactor;
	struct iscsi_registry *registry;
	struct iscsi_sessions *sessions;
	struct iscsi_login_limits limits;
	unsigned login_timeout_ms;     /* a login that takes longer is dropped */
	unsigned nop_interval_ms;      /* idle time before a NOP-In ping */
	unsigned nop_timeout_ms;       /* an unanswered ping closes the connection */
	struct iscsi_conn *conns;      /* every live connection (for ticks and shutdown) */
};

/* One PDU on its way out. */
struct iscsi_tx {
	struct iscsi_tx *next;
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN];
	uint8_t tail[3 + ISCSI_DIGEST_LEN];   /* padding and data digest */
	uint8_t hdr_len, tail_len;
	const uint8_t *data;
	uint32_t data_len;
	struct iscsi_cmd *cmd;        /* data belongs to this command (a reference) */
	void *owned;                  /* or to the tx: freed once sent */
	bool close_after;             /* the connection ends once this is sent */
};

enum iscsi_conn_state {
	CONN_LOGIN,
	CONN_FULL_FEATURE,
	CONN_CLOSING,                 /* no more input; waiting for ops and tasks to drain */
};

#define CONN_CMD_BUCKETS 64
#define CONN_MAX_IOV 64

struct iscsi_conn {
	struct iscsi_conn_env *env;
	struct iscsi_conn *next, *prev;        /* env->conns */
	struct iscsi_conn *next_in_session;
	struct iscsi_session *session;
	enum iscsi_conn_state state;
	int fd;
	uint16_t tpgt;
	char peer[64];
	unsigned ops;                          /* reactor ops in flight */
	unsigned tasks;                        /* commands that still exist */
	uint64_t data_out_bytes;               /* Data-Out buffers of commands not yet done */
	bool freeing;
	bool logged_out;                       /* a Logout response is on its way */
	bool input_stopped;                    /* closing once the queued output is sent */
	const char *finish_reason;

	struct iscsi_login_env login_env;
	struct iscsi_login *login;
	struct iscsi_conn_params params;
	struct pdu_framing framing;
	uint32_t stat_sn;                      /* next StatSN */
	uint32_t exp_stat_sn;
	uint32_t login_cmd_sn;                 /* CmdSN of the Login Request being handled */
	uint32_t next_ttt;
	uint64_t login_started_ms;

	/* receive */
	struct reactor_op rx_op;
	uint8_t *rx;
	uint32_t rx_cap, rx_len;
	uint64_t last_rx_ms;
	bool ping_outstanding;
	uint64_t ping_sent_ms;

	/* Text request/response continuation (RFC 7143 §11.10) */
	uint8_t *text_req;
	uint32_t text_req_len;
	uint8_t *text_rsp;
	uint32_t text_rsp_len, text_rsp_off;
	uint32_t text_itt, text_ttt;

	/* send */
	struct reactor_op tx_op;
	struct reactor_op flush_op;
	struct iscsi_tx *txq_head, *txq_tail;  /* waiting */
	struct iscsi_tx *sending;              /* in the SENDMSG in flight */
	struct iscsi_tx *tx_free;
	unsigned tx_free_count;
	bool flush_scheduled;
	uint64_t tx_bytes;                     /* memory held by queued and in-flight PDUs */
	bool rx_paused;                        /* too much output waiting: no more input read */
	struct msghdr msg;
	struct iovec iov[CONN_MAX_IOV];

	/* commands by ITT, and recycled ones */
	struct iscsi_cmd *cmds[CONN_CMD_BUCKETS];
	struct iscsi_cmd *cmd_free;
	unsigned cmd_free_count;
	uint64_t cmd_free_buf_bytes;           /* Data-Out buffers kept by recycled commands */
};

/* Takes over an accepted socket and starts the login phase. */
int conn_new(struct iscsi_conn_env *env, int fd, uint16_t tpgt, struct iscsi_conn **out);
/* Ends the connection: no more input is handled; it is freed once nothing refers to it.
 * Queued output is dropped unless after_send. */
void conn_close(struct iscsi_conn *conn, const char *why);
/* Ends the connection once the output queued so far (a final response, a Reject) has been
 * sent; no more input is handled meanwhile. */
void conn_finish(struct iscsi_conn *conn, const char *why);
/* Every connection once a second: login timeout, keepalive ping, dead peer detection. */
void conn_tick(struct iscsi_conn *conn, uint64_t now);

/* Feeds received bytes through the PDU parser as RECV would (for tests and fuzzing). */
void conn_receive_bytes(struct iscsi_conn *conn, const uint8_t *buf, uint32_t len);

/* Output.  conn_tx_new() gives a zeroed tx; conn_tx_queue() fills ExpCmdSN/MaxCmdSN,
 * padding and digests and sends it in order. */
struct iscsi_tx *conn_tx_new(struct iscsi_conn *conn);
void conn_tx_queue(struct iscsi_conn *conn, struct iscsi_tx *tx);
/* Takes the next StatSN for a PDU that carries status. */
uint32_t conn_next_stat_sn(struct iscsi_conn *conn);
/* Sends a Reject of the PDU whose BHS is given, with a log line. */
void conn_reject(struct iscsi_conn *conn, const uint8_t *bhs, int reason, const char *why);
/* Sends a PDU whose data segment is a copy of data (NOP-In echo, Text responses). */
void conn_send_copy(struct iscsi_conn *conn, const uint8_t *bhs, const void *data, uint32_t len,
                    bool close_after);

/* A command left or joined the connection (it cannot be freed while commands exist). */
void conn_task_put(struct iscsi_conn *conn);

/* The next Target Transfer Tag (never the reserved value). */
uint32_t conn_next_ttt(struct iscsi_conn *conn);

/* Handles one full-feature PDU delivered in CmdSN order (or immediate). */
void conn_execute_pdu(struct iscsi_conn *conn, const struct iscsi_pdu *pdu);

#endif
