/* The replicated SCSI state's provider: ships, publishes and installs through the device
 * channel, and keeps what waits for the partner until it answers or is lost. */
#include "ha/scsi_peer.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "ha/scsi_msg.h"

/* A request of ours the partner has to answer. */
struct pending {
	struct pending *next;
	uint64_t id;
	enum scsi_msg_kind kind;   /* EXEC: task was shipped; STATE: task published */
	struct scsi_task *task;
};

/* A command the partner shipped, running here. */
struct remote_task {
	struct scsi_task task;
	struct scsi_itn itn;
	struct ha_scsi_peer *p;    /* NULL once the provider is gone */
	struct remote_task *prev, *next;
	uint64_t id;
	uint32_t epoch;            /* the meeting it belongs to: no answer crosses into a later one */
};

struct ha_scsi_peer {
	struct reactor *r;
	struct ha_device *d;
	struct scsi_lu *lu;
	bool up;
	bool source;               /* this node's data is the newer one (of this meeting) */
	uint8_t rank;              /* what this node's MEET said */
	bool live;                 /* met a partner or changed the state since the start */
	bool changed_apart;        /* changed the state while the partner was away */
	uint32_t epoch;
	uint64_t next_id;
	struct pending *pending;
	struct remote_task *remote;
};

static int send_msg(struct ha_scsi_peer *p, const struct scsi_msg *m)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (scsi_msg_encode(m, &buf, &len) != 0) {
		log_err("ha scsi: out of memory for a message to the partner");
		return -1;
	}
	rc = ha_device_channel_send(p->d, buf, len);
	free(buf);
	return rc;
}

static bool add_pending(struct ha_scsi_peer *p, uint64_t id, enum scsi_msg_kind kind, struct scsi_task *task)
{
	struct pending *w = malloc(sizeof(*w));

	if (!w)
		return false;
	*w = (struct pending){ p->pending, id, kind, task };
	p->pending = w;
	return true;
}

static struct pending *take_pending(struct ha_scsi_peer *p, uint64_t id, enum scsi_msg_kind kind)
{
	for (struct pending **pp = &p->pending; *pp; pp = &(*pp)->next) {
		struct pending *w = *pp;

		if (w->id == id && w->kind == kind) {
			*pp = w->next;
			return w;
		}
	}
	return NULL;
}

/* The partner will answer nothing more: shipped commands fail (retryable), published
 * changes count as told. */
static void fail_pending(struct ha_scsi_peer *p)
{
	while (p->pending) {
		struct pending *w = p->pending;

		p->pending = w->next;
		if (w->kind == SCSI_MSG_EXEC)
			scsi_task_ship_failed(w->task);
		else
			scsi_task_published(w->task);
		free(w);
	}
}

/* ---- the SCSI layer's side ---- */

static bool peer_owner(void *ctx)
{
	struct ha_scsi_peer *p = ctx;

	return !p->up || ha_device_is_primary(p->d);
}

static void peer_ship(void *ctx, struct scsi_task *task)
{
	struct ha_scsi_peer *p = ctx;
	struct scsi_msg m = {
		.kind = SCSI_MSG_EXEC, .id = ++p->next_id, .itn = *task->itn, .attr = (uint8_t)task->attr,
		.cdb_len = task->cdb_len, .data_out = task->data_out, .data_out_len = task->data_out_len,
	};

	memcpy(m.cdb, task->cdb, sizeof(m.cdb));
	if (send_msg(p, &m) != 0 || !add_pending(p, m.id, SCSI_MSG_EXEC, task)) {
		scsi_task_ship_failed(task);
		return;
	}
	p->live = true;
}

static void peer_publish(void *ctx, struct scsi_task *task, const uint8_t *state, size_t len)
{
	struct ha_scsi_peer *p = ctx;
	struct scsi_msg m = { .kind = SCSI_MSG_STATE, .id = ++p->next_id, .state = state, .state_len = (uint32_t)len };

	p->live = true;
	if (!p->up) {
		p->changed_apart = true;
		scsi_task_published(task);
		return;
	}
	if (send_msg(p, &m) != 0 || !add_pending(p, m.id, SCSI_MSG_STATE, task))
		scsi_task_published(task); /* the partner is going: it meets our state again */
}

static void peer_reset(void *ctx)
{
	struct ha_scsi_peer *p = ctx;
	struct scsi_msg m = { .kind = SCSI_MSG_RESET };

	if (!p->up || send_msg(p, &m) != 0)
		p->changed_apart = true;
}

static void peer_nexus_lost(void *ctx, const struct scsi_itn *itn)
{
	struct ha_scsi_peer *p = ctx;
	struct scsi_msg m = { .kind = SCSI_MSG_NEXUS_LOST, .itn = *itn };

	if (!p->up || send_msg(p, &m) != 0)
		p->changed_apart = true;
}

static const struct scsi_state_peer_ops peer_ops = {
	.owner = peer_owner,
	.ship = peer_ship,
	.publish = peer_publish,
	.reset = peer_reset,
	.nexus_lost = peer_nexus_lost,
};

/* ---- the partner's messages ---- */

static void remote_unlink(struct remote_task *rt)
{
	if (!rt->p)
		return;
	if (rt->prev)
		rt->prev->next = rt->next;
	else
		rt->p->remote = rt->next;
	if (rt->next)
		rt->next->prev = rt->prev;
}

static void remote_done(struct scsi_task *task)
{
	struct remote_task *rt = container_of(task, struct remote_task, task);
	struct ha_scsi_peer *p = rt->p;

	if (p && p->up && rt->epoch == p->epoch) {
		struct scsi_msg m = {
			.kind = SCSI_MSG_EXEC_REPLY, .id = rt->id, .status = task->status,
			.sense_len = task->sense_len, .state = task->state, .state_len = task->state_len,
		};

		memcpy(m.sense, task->sense, task->sense_len);
		send_msg(p, &m);
	}
	remote_unlink(rt);
	scsi_task_release(task);
	free(task->data_out);
	free(rt);
}

static void on_exec(struct ha_scsi_peer *p, const struct scsi_msg *m)
{
	struct remote_task *rt = calloc(1, sizeof(*rt));
	struct scsi_task *t;

	if (!rt || (m->data_out_len && !(rt->task.data_out = malloc(m->data_out_len)))) {
		struct scsi_msg busy = { .kind = SCSI_MSG_EXEC_REPLY, .id = m->id, .status = SCSI_STATUS_BUSY };

		log_err("ha scsi: out of memory for the partner's command; it gets BUSY");
		free(rt);
		send_msg(p, &busy);
		return;
	}
	rt->itn = m->itn;
	rt->itn.id = 0; /* not a nexus of this node */
	rt->p = p;
	rt->id = m->id;
	rt->epoch = p->epoch;
	rt->next = p->remote;
	if (p->remote)
		p->remote->prev = rt;
	p->remote = rt;
	t = &rt->task;
	t->itn = &rt->itn;
	t->attr = (enum scsi_task_attr)m->attr;
	memcpy(t->cdb, m->cdb, sizeof(t->cdb));
	t->cdb_len = m->cdb_len;
	t->expected_len = m->data_out_len;
	t->write_dir = m->data_out_len > 0;
	if (m->data_out_len)
		memcpy(t->data_out, m->data_out, m->data_out_len);
	t->data_out_len = m->data_out_len;
	t->reactor = p->r;
	t->done = remote_done;
	scsi_lu_execute_shipped(p->lu, t);
}

static void on_exec_reply(struct ha_scsi_peer *p, const struct scsi_msg *m)
{
	struct pending *w = take_pending(p, m->id, SCSI_MSG_EXEC);
	struct scsi_task *task;

	if (!w) {
		log_warn("ha scsi: an answer to no command of ours (id %llu) ignored", (unsigned long long)m->id);
		return;
	}
	task = w->task;
	free(w);
	task->status = m->status;
	task->sense_len = m->sense_len;
	memcpy(task->sense, m->sense, m->sense_len);
	scsi_task_shipped(task, m->state_len ? m->state : NULL, m->state_len);
}

static void on_state(struct ha_scsi_peer *p, const struct scsi_msg *m)
{
	struct scsi_msg ack = { .kind = SCSI_MSG_STATE_ACK, .id = m->id };

	scsi_lu_state_install(p->lu, m->state, m->state_len);
	send_msg(p, &ack);
}

static void on_state_ack(struct ha_scsi_peer *p, const struct scsi_msg *m)
{
	struct pending *w = take_pending(p, m->id, SCSI_MSG_STATE);

	if (!w)
		return;
	scsi_task_published(w->task);
	free(w);
}

/* The partner's state on meeting: kept if it ranks higher, or equal and its data is the
 * newer one. */
static void on_meet(struct ha_scsi_peer *p, const struct scsi_msg *m)
{
	bool theirs = m->rank > p->rank || (m->rank == p->rank && !p->source);

	log_info("ha scsi: met the partner's SCSI state (rank %u, ours %u): keeping %s", m->rank, p->rank,
	         theirs ? "the partner's" : "ours");
	if (theirs)
		scsi_lu_state_install(p->lu, m->state, m->state_len);
	p->live = true;
	p->changed_apart = false;
}

static void on_message(void *ctx, const uint8_t *body, size_t len)
{
	struct ha_scsi_peer *p = ctx;
	struct scsi_msg m;
	char err[256];

	if (scsi_msg_decode(body, len, &m, err, sizeof(err)) != 0) {
		log_err("ha scsi: from the partner: %s", err);
		return;
	}
	switch (m.kind) {
	case SCSI_MSG_MEET: on_meet(p, &m); break;
	case SCSI_MSG_EXEC: on_exec(p, &m); break;
	case SCSI_MSG_EXEC_REPLY: on_exec_reply(p, &m); break;
	case SCSI_MSG_STATE: on_state(p, &m); break;
	case SCSI_MSG_STATE_ACK: on_state_ack(p, &m); break;
	case SCSI_MSG_RESET: scsi_lu_partner_reset(p->lu); break;
	case SCSI_MSG_NEXUS_LOST: scsi_lu_partner_nexus_lost(p->lu, &m.itn); break;
	case SCSI_MSG_KIND_END: break;
	}
}

static void on_down(void *ctx)
{
	struct ha_scsi_peer *p = ctx;

	p->up = false;
	p->epoch++;
	fail_pending(p);
}

static void on_up(void *ctx, bool source)
{
	struct ha_scsi_peer *p = ctx;
	struct scsi_msg m = { .kind = SCSI_MSG_MEET };
	uint8_t *state;
	size_t len;

	if (p->up)
		on_down(p); /* a new round of the meeting: what the last one left is void */
	p->up = true;
	p->source = source;
	p->rank = p->changed_apart ? SCSI_RANK_CHANGED : p->live ? SCSI_RANK_LIVE : SCSI_RANK_LOADED;
	if (scsi_lu_state_export(p->lu, &state, &len) != 0) {
		log_err("ha scsi: out of memory for the state to meet the partner with");
		return;
	}
	m.rank = p->rank;
	m.state = state;
	m.state_len = (uint32_t)len;
	send_msg(p, &m);
	free(state);
}

static const struct ha_channel_ops channel_ops = {
	.up = on_up,
	.down = on_down,
	.message = on_message,
};

int ha_scsi_peer_new(struct reactor *r, struct ha_device *d, struct scsi_lu *lu, struct ha_scsi_peer **out)
{
	struct ha_scsi_peer *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	p->r = r;
	p->d = d;
	p->lu = lu;
	ha_device_set_channel(d, &channel_ops, p);
	scsi_lu_set_state_peer(lu, &peer_ops, p);
	*out = p;
	return 0;
}

void ha_scsi_peer_free(struct ha_scsi_peer *p)
{
	if (!p)
		return;
	ha_device_set_channel(p->d, NULL, NULL);
	scsi_lu_set_state_peer(p->lu, NULL, NULL);
	p->up = false;
	fail_pending(p);
	for (struct remote_task *rt = p->remote; rt; rt = rt->next)
		rt->p = NULL;
	free(p);
}
