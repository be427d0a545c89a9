#include "iscsi/session.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "iscsi/cmd.h"
#include "iscsi/conn.h"
#include "iscsi/login.h"

/* A non-immediate request that arrived ahead of its turn: a private copy. */
struct pending_pdu {
	struct pending_pdu *next;
	struct iscsi_conn *conn;
	uint32_t cmd_sn;
	struct iscsi_pdu pdu;
	uint8_t bytes[];              /* AHS then data */
};

struct iscsi_session {
	struct iscsi_sessions *table;
	struct iscsi_session *next;   /* in the table while not ended */
	struct iscsi_session_params params;
	struct scsi_itn itn;
	struct iscsi_target *target;
	struct iscsi_conn *conns;
	uint32_t exp_cmd_sn, max_cmd_sn;
	unsigned tasks;
	struct pending_pdu *pending;  /* sorted by CmdSN */
	unsigned npending;
	bool ended;
};

struct iscsi_sessions {
	struct iscsi_session *list;
	uint16_t last_tsih;
	uint64_t last_itn_id;
};

int sessions_new(struct iscsi_sessions **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -1;
}

static void session_free_pending(struct iscsi_session *s, const struct iscsi_conn *only)
{
	struct pending_pdu **pp = &s->pending;

	while (*pp) {
		struct pending_pdu *p = *pp;

		if (!only || p->conn == only) {
			*pp = p->next;
			s->npending--;
			free(p);
		} else {
			pp = &p->next;
		}
	}
}

void sessions_free(struct iscsi_sessions *table)
{
	if (!table)
		return;
	while (table->list) {
		struct iscsi_session *s = table->list;

		table->list = s->next;
		session_free_pending(s, NULL);
		free(s);
	}
	free(table);
}

static bool tsih_in_use(const struct iscsi_sessions *table, uint16_t tsih)
{
	for (const struct iscsi_session *s = table->list; s; s = s->next)
		if (s->params.tsih == tsih)
			return true;
	return false;
}

static uint16_t allocate_tsih(struct iscsi_sessions *table)
{
	do {
		table->last_tsih++;
	} while (table->last_tsih == 0 || tsih_in_use(table, table->last_tsih));
	return table->last_tsih;
}

static bool same_initiator_port(const struct iscsi_session_params *a, const struct iscsi_session_params *b)
{
	return !strcmp(a->initiator_name, b->initiator_name) && !memcmp(a->isid, b->isid, sizeof(a->isid));
}

static void session_attach(struct iscsi_session *s, struct iscsi_conn *conn)
{
	conn->session = s;
	conn->next_in_session = s->conns;
	s->conns = conn;
}

static int session_create(struct iscsi_conn *conn, const struct iscsi_session_params *sp, uint16_t *tsih_out)
{
	struct iscsi_sessions *table = conn->env->sessions;
	struct iscsi_session *s, *old, *next;

	/* Session reinstatement (RFC 7143 §6.3.5): the same initiator port logging in to the
	 * same target again replaces its old session. */
	for (old = table->list; old; old = next) {
		next = old->next;
		if (same_initiator_port(&old->params, sp) && old->params.type == sp->type &&
		    !strcmp(old->params.target_name, sp->target_name))
			session_end(old, "reinstated by a new login");
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return ISCSI_LOGIN_OUT_OF_RESOURCES;
	s->table = table;
	s->params = *sp;
	s->params.tsih = allocate_tsih(table);
	if (sp->type == ISCSI_SESSION_NORMAL) {
		s->target = iscsi_registry_find(conn->env->registry, sp->target_name);
		if (!s->target) {
			free(s);
			return ISCSI_LOGIN_NOT_FOUND;
		}
	}
	str_copy(s->itn.initiator_name, sizeof(s->itn.initiator_name), sp->initiator_name);
	memcpy(s->itn.isid, sp->isid, sizeof(s->itn.isid));
	str_copy(s->itn.target_name, sizeof(s->itn.target_name), sp->target_name);
	s->itn.tpgt = conn->tpgt;
	if (s->target)
		iscsi_target_port_identity(s->target, conn->tpgt, &s->itn.relative_port, &s->itn.port_group);
	s->itn.id = ++table->last_itn_id;
	/* The leading login's CmdSN is the session's first (RFC 7143 §4.2.2.1). */
	s->exp_cmd_sn = conn->login_cmd_sn;
	s->max_cmd_sn = s->exp_cmd_sn + SESSION_CMD_WINDOW - 1;
	s->next = table->list;
	table->list = s;
	session_attach(s, conn);
	*tsih_out = s->params.tsih;
	return ISCSI_LOGIN_SUCCESS;
}

static int session_add_connection(struct iscsi_conn *conn, const struct iscsi_session_params *sp,
                                  const struct iscsi_conn_params *cp, uint16_t *tsih_out)
{
	struct iscsi_session *s;
	struct iscsi_conn *other, *replaced = NULL;
	unsigned count = 0;

	for (s = conn->env->sessions->list; s; s = s->next)
		if (s->params.tsih == sp->tsih && same_initiator_port(&s->params, sp))
			break;
	if (!s || s->ended)
		return ISCSI_LOGIN_SESSION_DOES_NOT_EXIST;
	for (other = s->conns; other; other = other->next_in_session) {
		if (other->state == CONN_CLOSING)
			continue;
		if (other->params.cid == cp->cid)
			replaced = other;
		else
			count++;
	}
	if (count >= s->params.max_connections)
		return ISCSI_LOGIN_TOO_MANY_CONNECTIONS;
	/* Connection reinstatement: a new login with a CID in use replaces that connection. */
	if (replaced)
		conn_close(replaced, "reinstated by a new login with its CID");
	session_attach(s, conn);
	*tsih_out = s->params.tsih;
	return ISCSI_LOGIN_SUCCESS;
}

int sessions_bind(void *conn_ctx, const struct iscsi_session_params *sp,
                  const struct iscsi_conn_params *cp, uint16_t *tsih_out)
{
	struct iscsi_conn *conn = conn_ctx;

	if (conn->session)
		return ISCSI_LOGIN_INVALID_DURING_LOGIN;
	if (sp->tsih == 0)
		return session_create(conn, sp, tsih_out);
	return session_add_connection(conn, sp, cp, tsih_out);
}

/* ---- the SCSI layer's abort hook ---- */

struct abort_match {
	struct scsi_lu *lu;
	bool (*match)(const struct scsi_itn *itn, void *arg);
	void *arg;
	const struct scsi_task *except;
};

static void abort_if_matching(struct iscsi_cmd *cmd, void *arg)
{
	struct abort_match *m = arg;

	if (cmd->state == CMD_EXECUTING && cmd->task.lu == m->lu && &cmd->task != m->except &&
	    m->match(cmd->task.itn, m->arg))
		cmd->aborted = true; /* the SCSI layer ends it; we only stay silent */
}

static void sessions_abort_tasks(void *ctx, struct scsi_lu *lu,
                                 bool (*match)(const struct scsi_itn *itn, void *arg), void *arg,
                                 const struct scsi_task *except)
{
	struct iscsi_sessions *table = ctx;
	struct abort_match m = { lu, match, arg, except };

	for (struct iscsi_session *s = table->list; s; s = s->next)
		for (struct iscsi_conn *c = s->conns; c; c = c->next_in_session)
			cmd_for_each(c, abort_if_matching, &m);
}

void sessions_transport_ops(struct iscsi_sessions *table, struct scsi_transport_ops *ops)
{
	ops->abort_tasks = sessions_abort_tasks;
	ops->ctx = table;
}

/* ---- CmdSN ordering ---- */

void session_task_get(struct iscsi_session *s) { s->tasks++; }
void session_task_put(struct iscsi_session *s) { s->tasks--; }

uint32_t session_exp_cmd_sn(const struct iscsi_session *s) { return s->exp_cmd_sn; }

uint32_t session_max_cmd_sn(struct iscsi_session *s)
{
	/* The window shrinks while many commands exist, so memory stays bounded, but never
	 * below what was already granted. */
	uint32_t open = s->tasks < SESSION_CMD_WINDOW ? SESSION_CMD_WINDOW - s->tasks : 0;
	uint32_t max = s->exp_cmd_sn + open - 1;

	if (sn_lt(s->max_cmd_sn, max))
		s->max_cmd_sn = max;
	return s->max_cmd_sn;
}

static void session_queue(struct iscsi_session *s, struct iscsi_conn *conn, const struct iscsi_pdu *pdu,
                          uint32_t cmd_sn)
{
	struct pending_pdu *p, **pp;

	for (pp = &s->pending; *pp && sn_lt((*pp)->cmd_sn, cmd_sn); pp = &(*pp)->next)
		;
	if (*pp && (*pp)->cmd_sn == cmd_sn) {
		log_warn("%s: duplicate CmdSN %u dropped", conn->peer, cmd_sn);
		return;
	}
	p = malloc(sizeof(*p) + pdu->ahs_len + pdu->data_len);
	if (!p) {
		log_err("%s: out of memory queueing CmdSN %u", conn->peer, cmd_sn);
		return;
	}
	p->conn = conn;
	p->cmd_sn = cmd_sn;
	p->pdu = *pdu;
	if (pdu->ahs_len)
		memcpy(p->bytes, pdu->ahs, pdu->ahs_len);
	if (pdu->data_len)
		memcpy(p->bytes + pdu->ahs_len, pdu->data, pdu->data_len);
	p->pdu.ahs = pdu->ahs_len ? p->bytes : NULL;
	p->pdu.data = pdu->data_len ? p->bytes + pdu->ahs_len : NULL;
	p->next = *pp;
	*pp = p;
	s->npending++;
}

void session_receive(struct iscsi_session *s, struct iscsi_conn *conn, const struct iscsi_pdu *pdu)
{
	uint32_t cmd_sn = get_be32(pdu->bhs + BHS_CMDSN);

	if (pdu_immediate(pdu->bhs)) {
		conn_execute_pdu(conn, pdu);
		return;
	}
	if (cmd_sn != s->exp_cmd_sn) {
		if (sn_lt(s->exp_cmd_sn, cmd_sn) && sn_le(cmd_sn, s->max_cmd_sn))
			session_queue(s, conn, pdu, cmd_sn);
		else
			log_warn("%s: CmdSN %u outside the window [%u, %u]: dropped (opcode 0x%02x)",
			         conn->peer, cmd_sn, s->exp_cmd_sn, s->max_cmd_sn, pdu_opcode(pdu->bhs));
		return;
	}
	s->exp_cmd_sn++;
	conn_execute_pdu(conn, pdu);
	while (s->pending && s->pending->cmd_sn == s->exp_cmd_sn && !s->ended) {
		struct pending_pdu *p = s->pending;

		s->pending = p->next;
		s->npending--;
		s->exp_cmd_sn++;
		conn_execute_pdu(p->conn, &p->pdu);
		free(p);
	}
}

/* ---- accessors and the end ---- */

const struct iscsi_session_params *session_params(const struct iscsi_session *s) { return &s->params; }
const struct scsi_itn *session_itn(const struct iscsi_session *s) { return &s->itn; }
struct iscsi_conn *session_conns(const struct iscsi_session *s) { return s->conns; }

struct scsi_target *session_scsi(const struct iscsi_session *s)
{
	return s->target ? iscsi_target_scsi(s->target) : NULL;
}

void session_end(struct iscsi_session *s, const char *why)
{
	struct iscsi_session **pp;

	if (s->ended)
		return;
	s->ended = true;
	for (pp = &s->table->list; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	log_info("session TSIH %u of %s ended: %s", s->params.tsih, s->params.initiator_name, why);
	session_free_pending(s, NULL);
	for (struct iscsi_conn *c = s->conns; c; c = c->next_in_session)
		conn_close(c, why);
	if (s->target)
		scsi_target_nexus_lost(iscsi_target_scsi(s->target), &s->itn);
}

void session_conn_closing(struct iscsi_session *s, struct iscsi_conn *conn)
{
	session_free_pending(s, conn);
	for (struct iscsi_conn *c = s->conns; c; c = c->next_in_session)
		if (c->state != CONN_CLOSING)
			return;
	session_end(s, "its last connection closed");
}

void session_conn_gone(struct iscsi_session *s, struct iscsi_conn *conn)
{
	struct iscsi_conn **pp;

	for (pp = &s->conns; *pp; pp = &(*pp)->next_in_session) {
		if (*pp == conn) {
			*pp = conn->next_in_session;
			break;
		}
	}
	if (!s->conns && s->ended)
		free(s);
}

void sessions_each(const struct iscsi_sessions *table, void (*fn)(void *arg, const struct iscsi_session *s),
                   void *arg)
{
	for (const struct iscsi_session *s = table->list; s; s = s->next)
		fn(arg, s);
}

unsigned sessions_end_target(struct iscsi_sessions *table, const struct scsi_target *t, const char *why)
{
	unsigned n = 0;

	for (struct iscsi_session *s = table->list, *next; s; s = next) {
		next = s->next;
		if (s->target && iscsi_target_scsi(s->target) == t) {
			session_end(s, why);
			n++;
		}
	}
	return n;
}

void sessions_close_all(struct iscsi_sessions *table, const char *why)
{
	while (table->list)
		session_end(table->list, why);
}
