/* The login phase of one connection (RFC 7143 §6, §12): security negotiation with CHAP,
 * operational negotiation of every §13 key from one declarative table, stage transitions,
 * and the final decision to admit the connection into a session.
 *
 * The connection feeds each Login Request PDU to iscsi_login_step(), which fills one Login
 * Response; this module never touches sockets.  When a response is final the connection
 * learns the result from iscsi_login_done(). */
#ifndef TWINSAN_ISCSI_LOGIN_H
#define TWINSAN_ISCSI_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/params.h"
#include "iscsi/pdu.h"
#include "iscsi/target.h"

/* Limits this target declares and enforces (defaults to the RFC's where sensible). */
struct iscsi_login_limits {
	uint32_t max_recv_data_segment_length;
	uint32_t max_burst_length;
	uint32_t first_burst_length;
	uint32_t max_outstanding_r2t;
	uint32_t max_connections;
};

/* What login asks of the session layer when the initiator moves to full feature phase. */
struct iscsi_session_binder {
	/* Admits the connection: TSIH 0 creates (or reinstates, same initiator+ISID) a
	 * session; a non-zero TSIH adds a connection to that session.  Returns an
	 * ISCSI_LOGIN_* status and sets *tsih_out on success. */
	int (*bind)(void *ctx, const struct iscsi_session_params *sp, const struct iscsi_conn_params *cp,
	            uint16_t *tsih_out);
	void *ctx;
};

struct iscsi_login_env {
	struct iscsi_registry *registry;
	struct iscsi_login_limits limits;
	uint16_t tpgt;                 /* portal group of the portal this connection arrived on */
	struct iscsi_session_binder binder;
};

struct iscsi_login;

struct iscsi_login *iscsi_login_new(const struct iscsi_login_env *env);
void iscsi_login_free(struct iscsi_login *login);

/* A response PDU to send: BHS plus text data (key=value\0 ...). */
struct iscsi_login_response {
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t *data;       /* owned by the login object, valid until the next step */
	uint32_t data_len;
};

enum iscsi_login_outcome {
	ISCSI_LOGIN_CONTINUE,  /* send the response, wait for the next request */
	ISCSI_LOGIN_FULL_FEATURE, /* send the response; the connection is now in full feature phase */
	ISCSI_LOGIN_FAILED,    /* send the (failure) response, then close the connection */
};

/* Processes one Login Request.  exp_stat_sn and the CmdSN window values for the response
 * are supplied by the caller (it owns the sequence numbers). */
enum iscsi_login_outcome iscsi_login_step(struct iscsi_login *login, const struct iscsi_pdu *req,
                                          uint32_t stat_sn, uint32_t exp_cmd_sn, uint32_t max_cmd_sn,
                                          struct iscsi_login_response *rsp);

/* After ISCSI_LOGIN_FULL_FEATURE: the negotiated parameters and the target (NULL for
 * discovery sessions). */
const struct iscsi_session_params *iscsi_login_session_params(const struct iscsi_login *login);
const struct iscsi_conn_params *iscsi_login_conn_params(const struct iscsi_login *login);
struct iscsi_target *iscsi_login_target(const struct iscsi_login *login);

#endif
