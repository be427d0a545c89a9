/* The logical unit: its task set and the path every command takes through it
 * (look up → validate → unit attention → not ready → asymmetric access → reservation →
 * handler). */
#include "scsi/lu_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/iobuf.h"
#include "common/log.h"
#include "common/util.h"
#include "scsi/cdb_table.h"
#include "scsi/pr.h"

bool lu_descriptor_sense(const struct scsi_lu *lu) { return lu && lu->mode.d_sense; }

void lu_sense(struct scsi_task *task, enum sense_key key, enum sense_asc asc)
{
	sense_set(task, lu_descriptor_sense(task->lu), key, asc);
}

void lu_sense_field(struct scsi_task *task, enum sense_key key, enum sense_asc asc,
                    bool in_cdb, uint16_t byte, int bit)
{
	sense_set_field(task, lu_descriptor_sense(task->lu), key, asc, in_cdb, byte, bit);
}

void lu_sense_store_error(struct scsi_task *task, int err, bool writing)
{
	if (err == -ENOTCONN) {
		log_info("scsi: store stopped serving at LBA %llu; the initiator may retry elsewhere",
		         (unsigned long long)task->lba);
		lu_sense(task, SENSE_NOT_READY, ASC_LUN_NOT_READY_ASYMMETRIC_TRANSITION);
		return;
	}
	log_err("scsi: store %s failed at LBA %llu: %d", writing ? "write" : "read",
	        (unsigned long long)task->lba, err);
	lu_sense(task, SENSE_MEDIUM_ERROR, writing ? ASC_WRITE_ERROR : ASC_UNRECOVERED_READ_ERROR);
}

static bool alloc_data_in(struct scsi_task *task, uint32_t len, bool zeroed)
{
	free(task->data_in);
	task->data_in = zeroed ? iobuf_zalloc(len) : iobuf_alloc(len);
	task->data_in_len = task->data_in ? len : 0;
	if (!task->data_in) {
		log_err("scsi: out of memory for %u bytes of Data-In", len);
		lu_sense(task, SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return false;
	}
	return true;
}

bool lu_alloc_data_in(struct scsi_task *task, uint32_t len) { return alloc_data_in(task, len, true); }

bool lu_alloc_read_buffer(struct scsi_task *task, uint32_t len) { return alloc_data_in(task, len, false); }

bool lu_reply(struct scsi_task *task, const void *data, uint32_t len, uint32_t alloc_len)
{
	uint32_t n = MIN(len, alloc_len);

	if (!lu_alloc_data_in(task, n))
		return false;
	memcpy(task->data_in, data, n);
	task->status = SCSI_STATUS_GOOD;
	return true;
}

static void drop_data_in(struct scsi_task *task)
{
	free(task->data_in);
	task->data_in = NULL;
	task->data_in_len = 0;
}

static void drop_scratch(struct scsi_task *task)
{
	free(task->scratch);
	task->scratch = NULL;
	task->scratch_len = 0;
}

void scsi_task_release(struct scsi_task *task)
{
	drop_data_in(task);
	drop_scratch(task);
	free(task->state);
	task->state = NULL;
	task->state_len = 0;
}

static void task_unlink(struct scsi_lu *lu, struct scsi_task *task)
{
	if (task->prev_active)
		task->prev_active->next_active = task->next_active;
	else if (lu->active == task)
		lu->active = task->next_active;
	if (task->next_active)
		task->next_active->prev_active = task->prev_active;
	task->next_active = task->prev_active = NULL;
}

/* ---- the state shared with an HA partner ---- */

static int encode_state(struct scsi_lu *lu, const struct lu_journal *j, uint8_t **out, size_t *len)
{
	struct pr_snapshot snap;

	pr_snapshot(lu->pr, &snap);
	return lu_image_encode(&snap, &lu->mode, j, out, len);
}

/* A shared-state command ended on the owner: the partner gets the new state and the
 * effects the command had here; a shipped one carries them back in its answer. */
static void publish(struct scsi_lu *lu, struct scsi_task *task)
{
	uint8_t *state = NULL;
	size_t len = 0;
	int rc = encode_state(lu, &lu->journal, &state, &len);

	task->publish = false;
	if (lu->journal.overflow)
		log_warn("scsi: more effects of one change than the partner can be told; it gets the state only");
	lu_journal_clear(&lu->journal);
	if (rc != 0) {
		/* The partner keeps the older state until the next change: better than no answer. */
		log_err("scsi: out of memory for the shared state; the partner is not told of this change");
		task->done(task);
		return;
	}
	if (task->shipped_in) {
		task->state = state;
		task->state_len = (uint32_t)len;
		task->done(task);
		return;
	}
	lu->peer->publish(lu->peer_ctx, task, state, len);
	free(state);
}

static void record_ua(void *arg, const struct nexus_set *set, enum sense_asc asc)
{
	struct scsi_lu *lu = arg;

	lu_journal_add(&lu->journal, LU_EFFECT_UA, asc, set);
}

/* Runs a shared-state command's handler (synchronous, as all of them are), recording the
 * unit attentions and aborts it causes for the partner. */
static void run_journaled(struct scsi_lu *lu, struct scsi_task *task, const struct cdb_desc *d)
{
	task->publish = true;
	lu->journaling = true;
	ua_set_recorder(lu->ua, record_ua, lu);
	d->handler(task);
	ua_set_recorder(lu->ua, NULL, NULL);
	lu->journaling = false;
}

void lu_abort_set(struct scsi_lu *lu, const struct nexus_set *set, const struct scsi_task *except)
{
	lu_abort_tasks(lu, nexus_set_has, (void *)set, except);
	if (lu->journaling)
		lu_journal_add(&lu->journal, LU_EFFECT_ABORT, ASC_NO_ADDITIONAL_SENSE, set);
}

static void task_finish(struct reactor_op *op, int res)
{
	struct scsi_task *task = container_of(op, struct scsi_task, io.op);
	struct scsi_lu *lu = task->lu;

	if (lu) {
		task_unlink(lu, task);
		if (task->holds_range)
			range_lock_release(&lu->ranges, lu->active, task);
		if (task->enabled)
			task_order_end(&lu->order, task);
	}
	drop_scratch(task);
	if (task->aborted) {
		task->status = SCSI_STATUS_TASK_ABORTED;
		task->sense_len = 0;
	}
	/* A failed command returns no data, whatever it had read before failing. */
	if (task->status != SCSI_STATUS_GOOD && task->status != SCSI_STATUS_CONDITION_MET)
		drop_data_in(task);
	if (lu && !task->shipped_in)
		lu_stats_task_done(&lu->stats, task);
	if (lu && task->publish) {
		publish(lu, task);
		return;
	}
	task->done(task);
}

void lu_complete(struct scsi_task *task)
{
	/* Always from the loop: the transport may still be inside scsi_target_execute(). */
	reactor_defer(task->reactor, &task->io.op, task_finish);
}

static void resume(struct scsi_task *task)
{
	const struct cdb_desc *d = task->desc;

	if (task->aborted) {
		lu_complete(task);
		return;
	}
	d->handler(task);
}

static void dispatch(struct scsi_task *task);

int scsi_lu_new(const struct scsi_lu_params *p, struct store *store, struct scsi_lu **out,
                char *err, size_t errlen)
{
	struct scsi_lu *lu;

	if (p->block_size != 512 && p->block_size != 4096) {
		snprintf(err, errlen, "block size %u: must be 512 or 4096", p->block_size);
		return -1;
	}
	if (store_size(store) < p->block_size) {
		snprintf(err, errlen, "store smaller than one block");
		return -1;
	}
	lu = calloc(1, sizeof(*lu));
	if (!lu || ua_set_new(&lu->ua) < 0 || alua_new(&lu->alua) < 0) {
		if (lu)
			ua_set_free(lu->ua);
		free(lu);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pr_state_new(p->state_path, lu->ua, &lu->pr, err, errlen) < 0) {
		alua_free(lu->alua);
		ua_set_free(lu->ua);
		free(lu);
		return -1;
	}
	lu->store = store;
	alua_set_provider(lu->alua, NULL, NULL, store_access(store));
	memcpy(lu->uuid, p->uuid, sizeof(lu->uuid));
	if (p->serial)
		str_copy(lu->serial, sizeof(lu->serial), p->serial);
	else
		for (unsigned i = 0; i < 16; i++)
			snprintf(lu->serial + 2 * i, 3, "%02x", p->uuid[i]);
	snprintf(lu->vendor, sizeof(lu->vendor), "%-8.8s", p->vendor ? p->vendor : "TWINSAN");
	snprintf(lu->product, sizeof(lu->product), "%-16.16s", p->product ? p->product : "twinsan disk");
	snprintf(lu->revision, sizeof(lu->revision), "%-4.4s", p->revision ? p->revision : "0001");
	lu->block_size = p->block_size;
	lu->block_shift = p->block_size == 4096 ? 12 : 9;
	lu->nblocks = store_size(store) >> lu->block_shift;
	lu->thin = store_can_discard(store);
	mode_defaults(&lu->mode_default, p->write_cache);
	lu->mode = lu->mode_default;
	lu->ranges.resume = resume;
	lu->order.start = dispatch;
	*out = lu;
	return 0;
}

void scsi_lu_free(struct scsi_lu *lu)
{
	if (!lu)
		return;
	/* A task whose completion is already queued (one run for the HA partner, or one that
	 * waited for it) ends without its logical unit. */
	for (struct scsi_task *t = lu->active; t; t = t->next_active)
		t->lu = NULL;
	pr_state_free(lu->pr);
	lu_journal_clear(&lu->journal);
	alua_free(lu->alua);
	ua_set_free(lu->ua);
	free(lu);
}

void scsi_lu_capacity_changed(struct scsi_lu *lu)
{
	lu->nblocks = store_size(lu->store) >> lu->block_shift;
	log_info("scsi: capacity now %llu blocks", (unsigned long long)lu->nblocks);
	ua_raise_all(lu->ua, NULL, ASC_CAPACITY_DATA_HAS_CHANGED);
}

/* Implicit ALUA: every nexus learns of a state change; SPC-4 leaves none out. */
static void access_changed(struct scsi_lu *lu, bool changed)
{
	if (changed)
		ua_raise_all(lu->ua, NULL, ASC_ASYMMETRIC_ACCESS_STATE_CHANGED);
}

void scsi_lu_set_port_groups(struct scsi_lu *lu, scsi_port_groups_fn fn, void *ctx)
{
	access_changed(lu, alua_set_provider(lu->alua, fn, ctx, store_access(lu->store)));
}

void scsi_lu_port_groups_changed(struct scsi_lu *lu)
{
	access_changed(lu, alua_refresh(lu->alua, store_access(lu->store)));
}

bool lu_prevented(const struct scsi_lu *lu) { return lu->n_prevent > 0; }

static void task_link(struct scsi_lu *lu, struct scsi_task *task)
{
	task->prev_active = NULL;
	task->next_active = lu->active;
	if (lu->active)
		lu->active->prev_active = task;
	lu->active = task;
}

void lu_task_start(struct scsi_task *task, struct scsi_lu *lu)
{
	task->lu = lu;
	task->desc = NULL;
	task->status = SCSI_STATUS_GOOD;
	task->sense_len = 0;
	task->data_in = NULL;
	task->data_in_len = 0;
	task->data_out_wanted = task->data_out_len;
	task->scratch = NULL;
	task->scratch_len = 0;
	task->step = 0;
	task->aborted = false;
	task->holds_range = false;
	task->enabled = false;
	task->shipped_in = false;
	task->publish = false;
	task->state = NULL;
	task->state_len = 0;
	task->next_waiting = NULL;
	task->next_active = task->prev_active = NULL;
	task->start_ns = lu_stats_now_ns();
	if (lu)
		task_link(lu, task);
}

/* Checks that gate every command before its handler runs; false if the task failed. */
static bool admit(struct scsi_lu *lu, struct scsi_task *task, const struct cdb_desc *d)
{
	enum sense_asc asc;

	if (!cdb_validate(d, task))
		return false;
	/* Before the unit attention check, so a store that stopped serving is reported to
	 * this very command as ASYMMETRIC ACCESS STATE CHANGED. */
	access_changed(lu, alua_follow_store(lu->alua, store_access(lu->store)));
	alua_note_port(lu->alua, task->itn);
	if (!(d->flags & CDB_NO_UA) && ua_take(lu->ua, task->itn, &asc)) {
		lu_sense(task, SENSE_UNIT_ATTENTION, asc);
		return false;
	}
	if (lu->stopped && !(d->flags & CDB_WHILE_STOPPED)) {
		lu_sense(task, SENSE_NOT_READY, ASC_LUN_NOT_READY_INIT_REQUIRED);
		return false;
	}
	/* A port whose group is not active (a replica that may hold stale data among them)
	 * runs only what the table allows there. */
	if (!alua_allows(alua_state(lu->alua, task->itn), d->flags, &asc)) {
		lu_sense(task, SENSE_NOT_READY, asc);
		return false;
	}
	if (!pr_allows(lu->pr, task->itn, d->pr_gate)) {
		task->status = SCSI_STATUS_RESERVATION_CONFLICT;
		task->sense_len = 0;
		return false;
	}
	return true;
}

/* Runs an enabled task: look up, validate and gate it, then hand it to its handler. */
static void dispatch(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	const struct cdb_desc *d;

	if (task->aborted) {
		lu_complete(task);
		return;
	}
	switch (cdb_lookup(task->cdb, &d)) {
	case CDB_BAD_OPCODE:
		log_debug("scsi: unsupported opcode 0x%02x", task->cdb[0]);
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE, true, 0, 7);
		lu_complete(task);
		return;
	case CDB_BAD_SERVICE_ACTION:
		log_debug("scsi: unsupported service action 0x%02x of opcode 0x%02x",
		          task->cdb[1] & 0x1f, task->cdb[0]);
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 1, 4);
		lu_complete(task);
		return;
	case CDB_FOUND:
		break;
	}
	task->desc = d;
	if (!admit(lu, task, d)) {
		lu_complete(task);
		return;
	}
	if (lu->peer && (d->flags & CDB_SHARED_STATE)) {
		if (lu->peer->owner(lu->peer_ctx))
			run_journaled(lu, task, d);
		else
			lu->peer->ship(lu->peer_ctx, task);
		return;
	}
	d->handler(task);
}

void scsi_lu_set_state_peer(struct scsi_lu *lu, const struct scsi_state_peer_ops *ops, void *ctx)
{
	lu->peer = ops;
	lu->peer_ctx = ctx;
}

void scsi_lu_execute_shipped(struct scsi_lu *lu, struct scsi_task *task)
{
	const struct cdb_desc *d;

	lu_task_start(task, lu);
	task->shipped_in = true;
	/* The partner checked unit attentions, access state and the order of tasks for its
	 * nexus; the reservation gate is checked again against the owner's latest state. */
	if (cdb_lookup(task->cdb, &d) != CDB_FOUND || !(d->flags & CDB_SHARED_STATE)) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE, true, 0, 7);
		lu_complete(task);
		return;
	}
	task->desc = d;
	if (!cdb_validate(d, task)) {
		lu_complete(task);
		return;
	}
	if (!pr_allows(lu->pr, task->itn, d->pr_gate)) {
		task->status = SCSI_STATUS_RESERVATION_CONFLICT;
		task->sense_len = 0;
		task->publish = true; /* the answer still brings the owner's state */
		lu_complete(task);
		return;
	}
	run_journaled(lu, task, d);
}

void scsi_task_shipped(struct scsi_task *task, const uint8_t *state, size_t len)
{
	if (state && task->lu)
		scsi_lu_state_install(task->lu, state, len);
	lu_complete(task);
}

void scsi_task_ship_failed(struct scsi_task *task)
{
	lu_sense(task, SENSE_NOT_READY, ASC_LUN_NOT_READY_ASYMMETRIC_TRANSITION);
	lu_complete(task);
}

static void published(struct reactor_op *op, int res)
{
	struct scsi_task *task = container_of(op, struct scsi_task, io.op);

	task->done(task);
}

void scsi_task_published(struct scsi_task *task)
{
	/* From the loop: the provider may be in the middle of its own work. */
	reactor_defer(task->reactor, &task->io.op, published);
}

int scsi_lu_state_export(struct scsi_lu *lu, uint8_t **out, size_t *len)
{
	return encode_state(lu, NULL, out, len);
}

int scsi_lu_state_install(struct scsi_lu *lu, const uint8_t *state, size_t len)
{
	struct lu_image im;
	char err[256];

	if (lu_image_decode(state, len, &im, err, sizeof(err)) != 0) {
		log_err("scsi: the partner's state refused: %s", err);
		return -1;
	}
	if (pr_install(lu->pr, &im.pr, &im.rest, err, sizeof(err)) != 0)
		log_err("persistent reservations: the partner's state: %s", err);
	if (memcmp(&lu->mode, &im.mode, sizeof(im.mode)) != 0)
		log_info("scsi: mode parameters changed through the partner");
	lu->mode = im.mode;
	for (size_t i = 0; i < im.journal.n; i++) {
		const struct lu_effect *e = &im.journal.effects[i];
		struct nexus_set set;

		lu_effect_set(e, &set);
		if (e->kind == LU_EFFECT_UA)
			ua_raise_matching(lu->ua, nexus_set_has, &set, e->asc);
		else
			lu_abort_tasks(lu, nexus_set_has, &set, NULL);
	}
	lu_image_free(&im);
	return 0;
}

void lu_execute(struct scsi_lu *lu, struct scsi_task *task)
{
	lu_task_start(task, lu);
	if (task_order_admit(&lu->order, task))
		dispatch(task);
}

void scsi_task_abort(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;

	if (task->aborted)
		return;
	task->aborted = true;
	/* A task waiting for its range or its turn has nothing in flight; others end at
	 * their next step. */
	if (lu && (range_lock_cancel(&lu->ranges, task) || task_order_cancel(&lu->order, task)))
		lu_complete(task);
}

void lu_abort_tasks(struct scsi_lu *lu, bool (*match)(const struct scsi_itn *itn, void *arg),
                    void *arg, const struct scsi_task *except)
{
	for (struct scsi_task *t = lu->active; t; t = t->next_active)
		if (t != except && match(t->itn, arg))
			scsi_task_abort(t);
	if (lu->target)
		target_abort_transport_tasks(lu->target, lu, match, arg, except);
}

bool lu_set_prevent(struct scsi_lu *lu, uint64_t nexus_id, bool prevent)
{
	unsigned i;

	for (i = 0; i < lu->n_prevent && lu->prevent[i] != nexus_id; i++)
		;
	if (prevent && i == lu->n_prevent) {
		if (lu->n_prevent == LU_PREVENT_MAX)
			return false;
		lu->prevent[lu->n_prevent++] = nexus_id;
	} else if (!prevent && i < lu->n_prevent) {
		lu->prevent[i] = lu->prevent[--lu->n_prevent];
	}
	return true;
}

bool lu_any_nexus(const struct scsi_itn *itn, void *arg) { return true; }

static void reset_here(struct scsi_lu *lu)
{
	lu_abort_tasks(lu, lu_any_nexus, NULL, NULL);
	lu->n_prevent = 0;
	pr_reset(lu->pr);
	ua_raise_all(lu->ua, NULL, ASC_BUS_DEVICE_RESET_OCCURRED); /* the issuer too (SAM-5) */
}

void lu_reset(struct scsi_lu *lu)
{
	reset_here(lu);
	if (lu->peer)
		lu->peer->reset(lu->peer_ctx);
}

void scsi_lu_partner_reset(struct scsi_lu *lu)
{
	log_info("scsi: logical unit reset through the partner");
	reset_here(lu);
}

void lu_nexus_lost(struct scsi_lu *lu, const struct scsi_itn *itn)
{
	lu_set_prevent(lu, itn->id, false);
	if (lu->peer && pr_resv6_held_by(lu->pr, itn))
		lu->peer->nexus_lost(lu->peer_ctx, itn);
	pr_nexus_lost(lu->pr, itn);
	ua_forget(lu->ua, itn);
}

void scsi_lu_partner_nexus_lost(struct scsi_lu *lu, const struct scsi_itn *itn)
{
	pr_nexus_lost(lu->pr, itn);
}
