#include "iscsi/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "iscsi/cmd.h"
#include "iscsi/discovery.h"
#include "iscsi/login_keys.h"
#include "iscsi/session.h"
#include "iscsi/text.h"
#include "iscsi/tmf.h"

/* RFC 7143 §13.12: login PDUs carry at most 8192 bytes of data before negotiation. */
#define LOGIN_MAX_DATA 8192
#define TX_FREE_MAX 64
/* Output an initiator leaves unread stops us reading its input, which bounds what one
 * connection can make us hold; reading resumes once most of it went out.  Only memory a
 * PDU holds for itself counts: Data-In points into its command, and commands are bounded
 * by the CmdSN window already, but NOP-Out echoes and Rejects are not. */
#define TX_HIGH_WATER (8u * 1024 * 1024)
#define TX_LOW_WATER (1u * 1024 * 1024)
/* A Text request spanning PDUs (C bit) is bounded. */
#define TEXT_REQ_MAX (64 * 1024)

static void conn_recv(struct iscsi_conn *conn);
static void conn_maybe_free(struct iscsi_conn *conn);
static void conn_text(struct iscsi_conn *conn, const struct iscsi_pdu *pdu);

/* ---- lifetime ---- */

static void format_peer(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			port = ntohs(s6->sin6_port);
			snprintf(buf, len, "[%s]:%u", host, port);
			return;
		}
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		}
	}
	snprintf(buf, len, "%s:%u", host, port);
}

int conn_new(struct iscsi_conn_env *env, int fd, uint16_t tpgt, struct iscsi_conn **out)
{
	struct iscsi_conn *conn = calloc(1, sizeof(*conn));
	uint32_t max_data = MAX(env->limits.max_recv_data_segment_length, LOGIN_MAX_DATA);

	if (!conn)
		return -ENOMEM;
	conn->env = env;
	conn->fd = fd;
	conn->tpgt = tpgt;
	conn->state = CONN_LOGIN;
	/* Room for one largest PDU plus some following ones, so small PDUs batch. */
	conn->rx_cap = ISCSI_BHS_LEN + ISCSI_MAX_AHS_LEN + 2 * ISCSI_DIGEST_LEN + ISCSI_PAD(max_data) +
	               64 * 1024;
	conn->rx = malloc(conn->rx_cap);
	conn->login_env = (struct iscsi_login_env){
		.registry = env->registry,
		.limits = env->limits,
		.tpgt = tpgt,
		.binder = { .bind = sessions_bind, .ctx = conn },
	};
	conn->login = conn->rx ? iscsi_login_new(&conn->login_env) : NULL;
	if (!conn->login) {
		free(conn->rx);
		free(conn);
		return -ENOMEM;
	}
	conn->login_started_ms = conn->last_rx_ms = now_ms();
	conn->next_ttt = 1;
	conn->text_ttt = ISCSI_RSVD_TAG;
	format_peer(fd, conn->peer, sizeof(conn->peer));
	conn->next = env->conns;
	if (env->conns)
		env->conns->prev = conn;
	env->conns = conn;
	log_info("%s: connected (portal group %u)", conn->peer, tpgt);
	conn_recv(conn);
	*out = conn;
	return 0;
}

static uint64_t tx_held_bytes(const struct iscsi_tx *tx)
{
	return sizeof(*tx) + (tx->owned ? tx->data_len : 0);
}

static void tx_release(struct iscsi_conn *conn, struct iscsi_tx *tx)
{
	free(tx->owned);
	if (tx->cmd)
		cmd_tx_done(tx->cmd);
	if (conn->tx_free_count < TX_FREE_MAX) {
		tx->next = conn->tx_free;
		conn->tx_free = tx;
		conn->tx_free_count++;
	} else {
		free(tx);
	}
}

static void tx_release_list(struct iscsi_conn *conn, struct iscsi_tx *tx)
{
	while (tx) {
		struct iscsi_tx *next = tx->next;

		tx_release(conn, tx);
		tx = next;
	}
}

static void abort_cmd_cb(struct iscsi_cmd *cmd, void *arg)
{
	cmd_abort(cmd, NULL);
}

void conn_close(struct iscsi_conn *conn, const char *why)
{
	struct iscsi_tx *queued;

	if (conn->state == CONN_CLOSING)
		return;
	if (conn->logged_out)
		log_info("%s: logged out", conn->peer);
	else
		log_info("%s: closing connection: %s", conn->peer, why);
	conn->state = CONN_CLOSING;
	/* Completes the RECV and SENDMSG in flight; the socket is closed when they are done. */
	shutdown(conn->fd, SHUT_RDWR);
	queued = conn->txq_head;
	conn->txq_head = conn->txq_tail = NULL;
	tx_release_list(conn, queued);
	cmd_for_each(conn, abort_cmd_cb, NULL);
	if (conn->session)
		session_conn_closing(conn->session, conn);
	conn_maybe_free(conn);
}

void conn_finish(struct iscsi_conn *conn, const char *why)
{
	struct iscsi_tx *last = conn->txq_tail;

	if (!last)
		for (last = conn->sending; last && last->next; last = last->next)
			;
	if (!last || conn->state == CONN_CLOSING) {
		conn_close(conn, why);
		return;
	}
	log_debug("%s: closing connection after the last response: %s", conn->peer, why);
	last->close_after = true;
	conn->input_stopped = true;
	conn->finish_reason = why;
}

static void conn_free(struct reactor_op *op, int res)
{
	struct iscsi_conn *conn = container_of(op, struct iscsi_conn, rx_op);
	struct iscsi_tx *tx;

	if (conn->prev)
		conn->prev->next = conn->next;
	else
		conn->env->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	if (conn->session)
		session_conn_gone(conn->session, conn);
	while ((tx = conn->tx_free)) {
		conn->tx_free = tx->next;
		free(tx);
	}
	cmd_free_cache(conn);
	iscsi_login_free(conn->login);
	free(conn->text_req);
	free(conn->text_rsp);
	free(conn->rx);
	close(conn->fd);
	free(conn);
}

static void conn_maybe_free(struct iscsi_conn *conn)
{
	if (conn->state != CONN_CLOSING || conn->ops || conn->tasks || conn->freeing)
		return;
	conn->freeing = true;
	/* Freed from the loop, never inside a caller that still holds the connection. */
	reactor_defer(conn->env->reactor, &conn->rx_op, conn_free);
}

void conn_task_put(struct iscsi_conn *conn)
{
	conn->tasks--;
	conn_maybe_free(conn);
}

/* ---- send ---- */

struct iscsi_tx *conn_tx_new(struct iscsi_conn *conn)
{
	struct iscsi_tx *tx = conn->tx_free;

	if (tx) {
		conn->tx_free = tx->next;
		conn->tx_free_count--;
		memset(tx, 0, sizeof(*tx));
		return tx;
	}
	tx = calloc(1, sizeof(*tx));
	if (!tx) {
		/* Nothing sensible is left to do for a connection we cannot answer on. */
		log_err("%s: out of memory for a PDU", conn->peer);
		abort();
	}
	return tx;
}

uint32_t conn_next_stat_sn(struct iscsi_conn *conn) { return conn->stat_sn++; }

uint32_t conn_next_ttt(struct iscsi_conn *conn)
{
	if (conn->next_ttt == ISCSI_RSVD_TAG)
		conn->next_ttt = 1;
	return conn->next_ttt++;
}

static void conn_sent(struct reactor_op *op, int res);

static void conn_flush(struct reactor_op *op, int res)
{
	struct iscsi_conn *conn = container_of(op, struct iscsi_conn, flush_op);
	struct iscsi_tx *tx, **tail = &conn->sending;
	unsigned n = 0;

	conn->flush_scheduled = false;
	conn->ops--;
	if (conn->state == CONN_CLOSING || conn->sending || !conn->txq_head) {
		conn_maybe_free(conn);
		return;
	}
	while ((tx = conn->txq_head) && n + 3 <= CONN_MAX_IOV) {
		conn->txq_head = tx->next;
		tx->next = NULL;
		*tail = tx;
		tail = &tx->next;
		conn->iov[n++] = (struct iovec){ tx->hdr, tx->hdr_len };
		if (tx->data_len)
			conn->iov[n++] = (struct iovec){ (void *)tx->data, tx->data_len };
		if (tx->tail_len)
			conn->iov[n++] = (struct iovec){ tx->tail, tx->tail_len };
	}
	if (!conn->txq_head)
		conn->txq_tail = NULL;
	conn->msg = (struct msghdr){ .msg_iov = conn->iov, .msg_iovlen = n };
	io_uring_prep_sendmsg(reactor_sqe(conn->env->reactor, &conn->tx_op, conn_sent), conn->fd,
	                      &conn->msg, MSG_NOSIGNAL);
	conn->ops++;
}

static void conn_schedule_flush(struct iscsi_conn *conn)
{
	if (conn->flush_scheduled || conn->sending)
		return;
	conn->flush_scheduled = true;
	conn->ops++;
	reactor_defer(conn->env->reactor, &conn->flush_op, conn_flush);
}

static void conn_sent(struct reactor_op *op, int res)
{
	struct iscsi_conn *conn = container_of(op, struct iscsi_conn, tx_op);
	struct iscsi_tx *done;
	size_t left = res > 0 ? (size_t)res : 0;
	bool close_after = false;

	conn->ops--;
	if (res < 0 || conn->state == CONN_CLOSING) {
		done = conn->sending;
		conn->sending = NULL;
		tx_release_list(conn, done);
		if (res < 0)
			conn_close(conn, strerror(-res));
		conn_maybe_free(conn);
		return;
	}
	while (conn->msg.msg_iovlen && left >= conn->msg.msg_iov->iov_len) {
		left -= conn->msg.msg_iov->iov_len;
		conn->msg.msg_iov++;
		conn->msg.msg_iovlen--;
	}
	if (conn->msg.msg_iovlen) {
		/* Short send: the rest of the batch goes again. */
		conn->msg.msg_iov->iov_base = (uint8_t *)conn->msg.msg_iov->iov_base + left;
		conn->msg.msg_iov->iov_len -= left;
		io_uring_prep_sendmsg(reactor_sqe(conn->env->reactor, &conn->tx_op, conn_sent), conn->fd,
		                      &conn->msg, MSG_NOSIGNAL);
		conn->ops++;
		return;
	}
	done = conn->sending;
	conn->sending = NULL;
	for (struct iscsi_tx *tx = done; tx; tx = tx->next) {
		close_after |= tx->close_after;
		conn->tx_bytes -= tx_held_bytes(tx);
	}
	tx_release_list(conn, done);
	if (conn->rx_paused && conn->tx_bytes <= TX_LOW_WATER && !close_after) {
		conn->rx_paused = false;
		conn_recv(conn);
	}
	if (close_after)
		conn_close(conn, conn->finish_reason ? conn->finish_reason : "final response sent");
	else if (conn->txq_head)
		conn_schedule_flush(conn);
}

void conn_tx_queue(struct iscsi_conn *conn, struct iscsi_tx *tx)
{
	uint32_t pad;

	if (conn->state == CONN_CLOSING) {
		tx_release(conn, tx);
		return;
	}
	if (conn->session) {
		put_be32(tx->hdr + 28, session_exp_cmd_sn(conn->session));
		put_be32(tx->hdr + 32, session_max_cmd_sn(conn->session));
	}
	pdu_set_data_seg_len(tx->hdr, tx->data_len);
	tx->hdr_len = ISCSI_BHS_LEN;
	if (conn->framing.header_digest) {
		pdu_put_digest(tx->hdr + ISCSI_BHS_LEN, crc32c(tx->hdr, ISCSI_BHS_LEN));
		tx->hdr_len += ISCSI_DIGEST_LEN;
	}
	pad = ISCSI_PAD(tx->data_len) - tx->data_len;
	memset(tx->tail, 0, pad);
	tx->tail_len = (uint8_t)pad;
	if (tx->data_len && conn->framing.data_digest) {
		uint32_t crc = crc32c_update(CRC32C_INIT, tx->data, tx->data_len);

		crc = crc32c_final(crc32c_update(crc, tx->tail, pad));
		pdu_put_digest(tx->tail + pad, crc);
		tx->tail_len += ISCSI_DIGEST_LEN;
	}
	conn->tx_bytes += tx_held_bytes(tx);
	tx->next = NULL;
	if (conn->txq_tail)
		conn->txq_tail->next = tx;
	else
		conn->txq_head = tx;
	conn->txq_tail = tx;
	conn_schedule_flush(conn);
}

void conn_send_copy(struct iscsi_conn *conn, const uint8_t *bhs, const void *data, uint32_t len,
                    bool close_after)
{
	struct iscsi_tx *tx = conn_tx_new(conn);

	memcpy(tx->hdr, bhs, ISCSI_BHS_LEN);
	if (len) {
		tx->owned = malloc(len);
		if (!tx->owned) {
			log_err("%s: out of memory for a %u byte PDU", conn->peer, len);
			len = 0;
		} else {
			memcpy(tx->owned, data, len);
		}
	}
	tx->data = tx->owned;
	tx->data_len = len;
	tx->close_after = close_after;
	conn_tx_queue(conn, tx);
}

void conn_reject(struct iscsi_conn *conn, const uint8_t *bhs, int reason, const char *why)
{
	uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_REJECT, ISCSI_FLAG_FINAL, (uint8_t)reason };

	log_warn("%s: rejecting PDU opcode 0x%02x ITT 0x%08x (reason 0x%02x): %s", conn->peer,
	         pdu_opcode(bhs), get_be32(bhs + BHS_ITT), reason, why);
	put_be32(hdr + BHS_ITT, ISCSI_RSVD_TAG);
	put_be32(hdr + 24, conn_next_stat_sn(conn));
	conn_send_copy(conn, hdr, bhs, ISCSI_BHS_LEN, false);
}

/* ---- login phase ---- */

static void conn_login(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	struct iscsi_login_response rsp;
	enum iscsi_login_outcome outcome;
	uint32_t cmd_sn = get_be32(pdu->bhs + BHS_CMDSN);

	if (pdu_opcode(pdu->bhs) != ISCSI_OP_LOGIN_REQ) {
		conn_close(conn, "a PDU other than Login Request during login");
		return;
	}
	if (!conn->stat_sn)
		conn->stat_sn = get_be32(pdu->bhs + BHS_EXPSTATSN);
	conn->login_cmd_sn = cmd_sn;
	outcome = iscsi_login_step(conn->login, pdu, conn->stat_sn, cmd_sn,
	                           cmd_sn + SESSION_CMD_WINDOW - 1, &rsp);
	conn->stat_sn++;
	if (outcome == ISCSI_LOGIN_FULL_FEATURE && !conn->session) {
		/* The binder did not run or failed without saying so: never run unbound. */
		outcome = ISCSI_LOGIN_FAILED;
	}
	conn_send_copy(conn, rsp.bhs, rsp.data, rsp.data_len, false);
	switch (outcome) {
	case ISCSI_LOGIN_CONTINUE:
		break;
	case ISCSI_LOGIN_FAILED:
		conn_finish(conn, "login failed");
		break;
	case ISCSI_LOGIN_FULL_FEATURE:
		conn->params = *iscsi_login_conn_params(conn->login);
		conn->framing.header_digest = conn->params.header_digest;
		conn->framing.data_digest = conn->params.data_digest;
		iscsi_login_free(conn->login);
		conn->login = NULL;
		conn->state = CONN_FULL_FEATURE;
		log_debug("%s: full feature phase in %s for %s (TSIH %u, CID %u%s%s)", conn->peer,
		         session_params(conn->session)->type == ISCSI_SESSION_DISCOVERY
		             ? "discovery" : session_params(conn->session)->target_name,
		         session_params(conn->session)->initiator_name, session_params(conn->session)->tsih,
		         conn->params.cid, conn->params.header_digest ? ", header digest" : "",
		         conn->params.data_digest ? ", data digest" : "");
		break;
	}
}

/* ---- full feature phase: connection-level requests ---- */

static void conn_nop_out(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL };
	uint32_t itt = get_be32(pdu->bhs + BHS_ITT);
	uint32_t ttt = get_be32(pdu->bhs + BHS_TTT);

	if (itt == ISCSI_RSVD_TAG) {
		/* An answer to our ping, or a ping that wants no answer. */
		if (ttt != ISCSI_RSVD_TAG)
			conn->ping_outstanding = false;
		return;
	}
	memcpy(hdr + BHS_LUN, pdu->bhs + BHS_LUN, 8);
	put_be32(hdr + BHS_ITT, itt);
	put_be32(hdr + BHS_TTT, ISCSI_RSVD_TAG);
	put_be32(hdr + 24, conn_next_stat_sn(conn));
	conn_send_copy(conn, hdr, pdu->data, MIN(pdu->data_len, conn->params.max_send_data_segment_length),
	               false);
}

enum logout_reason { LOGOUT_SESSION = 0, LOGOUT_CONNECTION = 1, LOGOUT_RECOVERY = 2 };
enum logout_response { LOGOUT_OK = 0, LOGOUT_NO_CID = 1, LOGOUT_NO_RECOVERY = 2 };

static void conn_logout(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_LOGOUT_RSP, ISCSI_FLAG_FINAL };
	const struct iscsi_session_params *sp = session_params(conn->session);
	unsigned reason = pdu->bhs[1] & 0x7f;
	uint16_t cid = get_be16(pdu->bhs + BHS_TTT);
	bool close_self = false;
	struct iscsi_conn *other;

	switch (reason) {
	case LOGOUT_SESSION:
		for (other = session_conns(conn->session); other; other = other->next_in_session)
			if (other != conn)
				conn_close(other, "session logout on another connection");
		hdr[2] = LOGOUT_OK;
		close_self = true;
		break;
	case LOGOUT_CONNECTION:
		for (other = session_conns(conn->session); other; other = other->next_in_session)
			if (other->state == CONN_FULL_FEATURE && other->params.cid == cid)
				break;
		if (!other) {
			hdr[2] = LOGOUT_NO_CID;
		} else if (other == conn) {
			close_self = true;
		} else {
			conn_close(other, "logged out from another connection");
		}
		break;
	case LOGOUT_RECOVERY:
		hdr[2] = LOGOUT_NO_RECOVERY;
		break;
	default:
		conn_reject(conn, pdu->bhs, ISCSI_REJECT_INVALID_PDU_FIELD, "unknown logout reason");
		return;
	}
	put_be32(hdr + BHS_ITT, get_be32(pdu->bhs + BHS_ITT));
	put_be32(hdr + 24, conn_next_stat_sn(conn));
	put_be16(hdr + 40, (uint16_t)sp->default_time2wait);
	put_be16(hdr + 42, (uint16_t)sp->default_time2retain);
	conn_send_copy(conn, hdr, NULL, 0, false);
	if (close_self) {
		conn->logged_out = true;
		conn_finish(conn, "logged out");
	}
}

/* What the full feature phase does with each initiator opcode (RFC 7143 §11). */
struct opcode_rule {
	const char *name;
	void (*handle)(struct iscsi_conn *conn, const struct iscsi_pdu *pdu);
	bool ordered;                 /* goes through the session's CmdSN ordering */
	bool discovery;               /* allowed in a discovery session */
	uint8_t reject;               /* no handler: the Reject reason */
};

static const struct opcode_rule opcode_rules[ISCSI_BHS_OPCODE_MASK + 1] = {
	[ISCSI_OP_NOP_OUT] = { "NOP-Out", conn_nop_out, true, true, 0 },
	[ISCSI_OP_SCSI_CMD] = { "SCSI Command", cmd_receive, true, false, 0 },
	[ISCSI_OP_TMF_REQ] = { "Task Management Function Request", tmf_receive, true, false, 0 },
	[ISCSI_OP_LOGIN_REQ] = { "Login Request in full feature phase", NULL, false, false,
	                         ISCSI_REJECT_PROTOCOL_ERROR },
	[ISCSI_OP_TEXT_REQ] = { "Text Request", conn_text, true, true, 0 },
	[ISCSI_OP_DATA_OUT] = { "SCSI Data-Out", cmd_data_out, false, false, 0 },
	[ISCSI_OP_LOGOUT_REQ] = { "Logout Request", conn_logout, true, true, 0 },
	/* Error recovery level 0: there is nothing to resend. */
	[ISCSI_OP_SNACK_REQ] = { "SNACK at error recovery level 0", NULL, false, false,
	                         ISCSI_REJECT_PROTOCOL_ERROR },
};

/* The rule for the PDU's opcode, or NULL after rejecting it. */
static const struct opcode_rule *conn_rule(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	const struct opcode_rule *rule = &opcode_rules[pdu_opcode(pdu->bhs)];

	if (!rule->handle) {
		conn_reject(conn, pdu->bhs, rule->reject ? rule->reject : ISCSI_REJECT_CMD_NOT_SUPPORTED,
		            rule->name ? rule->name : "unknown opcode");
		return NULL;
	}
	if (!rule->discovery && session_params(conn->session)->type == ISCSI_SESSION_DISCOVERY) {
		conn_reject(conn, pdu->bhs, ISCSI_REJECT_PROTOCOL_ERROR, "not allowed in a discovery session");
		return NULL;
	}
	return rule;
}

void conn_execute_pdu(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	const struct opcode_rule *rule;

	if (conn->state == CONN_FULL_FEATURE && (rule = conn_rule(conn, pdu)))
		rule->handle(conn, pdu);
}

static void conn_full_feature(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	const struct opcode_rule *rule = &opcode_rules[pdu_opcode(pdu->bhs)];

	conn->exp_stat_sn = get_be32(pdu->bhs + BHS_EXPSTATSN);
	/* Requests in CmdSN order are checked when their turn comes. */
	if (rule->ordered)
		session_receive(conn->session, conn, pdu);
	else if ((rule = conn_rule(conn, pdu)))
		rule->handle(conn, pdu);
}

/* ---- receive ---- */

static void conn_parse(struct iscsi_conn *conn)
{
	uint32_t head = 0;

	while (conn->state != CONN_CLOSING && !conn->input_stopped && conn->rx_len - head >= ISCSI_BHS_LEN) {
		const uint8_t *wire = conn->rx + head;
		uint32_t max = conn->state == CONN_LOGIN ? LOGIN_MAX_DATA
		                                         : conn->env->limits.max_recv_data_segment_length;
		struct iscsi_pdu pdu;
		uint32_t need;
		int reason = pdu_check_header(wire, max);

		if (reason && conn->state == CONN_LOGIN) {
			/* Login has no Reject (RFC 7143 §6.3); the stream cannot be trusted. */
			log_warn("%s: Login PDU with %u bytes of data", conn->peer, pdu_data_seg_len(wire));
			conn_close(conn, "oversized Login PDU");
			break;
		}
		if (reason) {
			conn_reject(conn, wire, reason, "data segment longer than MaxRecvDataSegmentLength");
			conn_finish(conn, "oversized PDU");
			break;
		}
		need = pdu_wire_len(wire, &conn->framing);
		if (conn->rx_len - head < need)
			break;
		reason = pdu_parse(wire, &conn->framing, &pdu);
		head += need;
		if (reason == ISCSI_REJECT_PROTOCOL_ERROR) {
			log_warn("%s: header digest error", conn->peer);
			conn_close(conn, "header digest error");
			break;
		}
		if (reason == ISCSI_REJECT_DATA_DIGEST) {
			/* Without error recovery the lost data cannot be asked for again. */
			conn_reject(conn, pdu.bhs, reason, "data digest error");
			conn_finish(conn, "data digest error");
			break;
		}
		if (conn->state == CONN_LOGIN)
			conn_login(conn, &pdu);
		else
			conn_full_feature(conn, &pdu);
	}
	if (head) {
		memmove(conn->rx, conn->rx + head, conn->rx_len - head);
		conn->rx_len -= head;
	}
}

void conn_receive_bytes(struct iscsi_conn *conn, const uint8_t *buf, uint32_t len)
{
	while (len && conn->state != CONN_CLOSING && !conn->input_stopped) {
		uint32_t n = MIN(len, conn->rx_cap - conn->rx_len);

		memcpy(conn->rx + conn->rx_len, buf, n);
		conn->rx_len += n;
		buf += n;
		len -= n;
		conn_parse(conn);
	}
}

static void conn_received(struct reactor_op *op, int res)
{
	struct iscsi_conn *conn = container_of(op, struct iscsi_conn, rx_op);

	conn->ops--;
	if (conn->state == CONN_CLOSING) {
		conn_maybe_free(conn);
		return;
	}
	if (res <= 0) {
		conn_close(conn, res == 0 ? "closed by the initiator" : strerror(-res));
		return;
	}
	conn->rx_len += (uint32_t)res;
	conn->last_rx_ms = now_ms();
	conn_parse(conn);
	conn_recv(conn);
}

static void conn_recv(struct iscsi_conn *conn)
{
	if (conn->state == CONN_CLOSING) {
		conn_maybe_free(conn);
		return;
	}
	if (conn->input_stopped)
		return;
	if (conn->tx_bytes > TX_HIGH_WATER) {
		conn->rx_paused = true;
		return;
	}
	io_uring_prep_recv(reactor_sqe(conn->env->reactor, &conn->rx_op, conn_received), conn->fd,
	                   conn->rx + conn->rx_len, conn->rx_cap - conn->rx_len, 0);
	conn->ops++;
}

/* ---- timers ---- */

void conn_tick(struct iscsi_conn *conn, uint64_t now)
{
	uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL };

	switch (conn->state) {
	case CONN_LOGIN:
		if (now - conn->login_started_ms > conn->env->login_timeout_ms)
			conn_close(conn, "login timed out");
		return;
	case CONN_CLOSING:
		return;
	case CONN_FULL_FEATURE:
		break;
	}
	if (conn->ping_outstanding) {
		if (now - conn->ping_sent_ms > conn->env->nop_timeout_ms)
			conn_close(conn, "no answer to NOP-In ping");
		return;
	}
	if (now - conn->last_rx_ms < conn->env->nop_interval_ms)
		return;
	/* A ping with a TTT asks for a NOP-Out; StatSN is not advanced (RFC 7143 §11.19). */
	put_be32(hdr + BHS_ITT, ISCSI_RSVD_TAG);
	put_be32(hdr + BHS_TTT, conn_next_ttt(conn));
	put_be32(hdr + 24, conn->stat_sn);
	conn->ping_outstanding = true;
	conn->ping_sent_ms = now;
	conn_send_copy(conn, hdr, NULL, 0, false);
}

/* ---- Text requests (RFC 7143 §11.10, §11.11) ---- */

static void text_reset(struct iscsi_conn *conn)
{
	free(conn->text_req);
	free(conn->text_rsp);
	conn->text_req = conn->text_rsp = NULL;
	conn->text_req_len = conn->text_rsp_len = conn->text_rsp_off = 0;
	conn->text_ttt = ISCSI_RSVD_TAG;
}

/* Sends the next piece of the prepared answer, asking to be asked for more if needed. */
static void text_send_piece(struct iscsi_conn *conn, const uint8_t *req_bhs)
{
	uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_TEXT_RSP };
	uint32_t left = conn->text_rsp_len - conn->text_rsp_off;
	uint32_t n = MIN(left, conn->params.max_send_data_segment_length);
	bool last = n == left;

	hdr[1] = last ? ISCSI_FLAG_FINAL : ISCSI_FLAG_TEXT_CONTINUE;
	memcpy(hdr + BHS_LUN, req_bhs + BHS_LUN, 8);
	put_be32(hdr + BHS_ITT, conn->text_itt);
	conn->text_ttt = last ? ISCSI_RSVD_TAG : conn_next_ttt(conn);
	put_be32(hdr + BHS_TTT, conn->text_ttt);
	put_be32(hdr + 24, conn_next_stat_sn(conn));
	conn_send_copy(conn, hdr, conn->text_rsp ? conn->text_rsp + conn->text_rsp_off : NULL, n, false);
	conn->text_rsp_off += n;
	if (last)
		text_reset(conn);
}

static void text_answer(struct iscsi_conn *conn, struct iscsi_text_buf *out)
{
	struct iscsi_text_list list;
	enum iscsi_text_error err = iscsi_text_parse(conn->text_req, conn->text_req_len, &list);

	if (err != ISCSI_TEXT_OK) {
		log_warn("%s: malformed Text request: %s", conn->peer, iscsi_text_strerror(err));
		return;
	}
	for (size_t i = 0; i < list.count; i++) {
		const struct iscsi_text_pair *p = &list.pairs[i];

		if (!strcmp(p->key, "SendTargets"))
			discovery_send_targets(conn->env->registry, session_params(conn->session),
			                       p->value, out);
		else
			iscsi_neg_text_key(session_params(conn->session), &conn->params, p->key, p->value, out);
	}
	iscsi_text_list_free(&list);
}

static void conn_text(struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	uint32_t itt = get_be32(pdu->bhs + BHS_ITT);
	uint32_t ttt = get_be32(pdu->bhs + BHS_TTT);
	bool more = pdu->bhs[1] & ISCSI_FLAG_TEXT_CONTINUE;
	struct iscsi_text_buf out;
	uint8_t *grown;

	if (ttt != ISCSI_RSVD_TAG) {
		/* The initiator asks for the rest of a long answer, or sends more of its request. */
		if (ttt != conn->text_ttt || itt != conn->text_itt) {
			conn_reject(conn, pdu->bhs, ISCSI_REJECT_INVALID_PDU_FIELD, "Text request with unknown TTT");
			return;
		}
		if (conn->text_rsp) {
			text_send_piece(conn, pdu->bhs);
			return;
		}
	} else {
		text_reset(conn);
	}
	conn->text_itt = itt;
	if (conn->text_req_len + pdu->data_len > TEXT_REQ_MAX) {
		text_reset(conn);
		conn_reject(conn, pdu->bhs, ISCSI_REJECT_OUT_OF_RESOURCES, "Text request too long");
		return;
	}
	grown = realloc(conn->text_req, conn->text_req_len + pdu->data_len + 1);
	if (!grown) {
		conn_reject(conn, pdu->bhs, ISCSI_REJECT_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	conn->text_req = grown;
	if (pdu->data_len)
		memcpy(conn->text_req + conn->text_req_len, pdu->data, pdu->data_len);
	conn->text_req_len += pdu->data_len;
	if (more) {
		/* An empty answer with a TTT asks for the rest of the request. */
		uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_TEXT_RSP };

		memcpy(hdr + BHS_LUN, pdu->bhs + BHS_LUN, 8);
		put_be32(hdr + BHS_ITT, itt);
		conn->text_ttt = conn_next_ttt(conn);
		put_be32(hdr + BHS_TTT, conn->text_ttt);
		put_be32(hdr + 24, conn_next_stat_sn(conn));
		conn_send_copy(conn, hdr, NULL, 0, false);
		return;
	}
	iscsi_text_buf_init(&out);
	text_answer(conn, &out);
	if (out.failed) {
		iscsi_text_buf_free(&out);
		text_reset(conn);
		conn_reject(conn, pdu->bhs, ISCSI_REJECT_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	free(conn->text_req);
	conn->text_req = NULL;
	conn->text_req_len = 0;
	conn->text_rsp = out.data;
	conn->text_rsp_len = (uint32_t)out.len;
	conn->text_rsp_off = 0;
	text_send_piece(conn, pdu->bhs);
}
