/* The replicated SCSI state seen from the SCSI layer: two logical units (node A, the
 * owner, and node B) joined by an in-memory provider that does what the HA layer does
 * over the link.  A registration shipped from B is on both; PREEMPT AND ABORT through A
 * aborts B's task in flight and owes B's nexus REGISTRATIONS PREEMPTED; MODE SELECT
 * through B changes A's parameters and raises MODE PARAMETERS CHANGED there; a LUN reset
 * through B releases A's RESERVE(6) and raises the reset on A; a lost RESERVE(6) holder
 * releases it on the partner. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/reactor.h"
#include "common/util.h"
#include "scsi/scsi.h"
#include "store/store.h"

#define BS 512u
#define BLOCKS 2048u

struct node {
	char path[64];
	struct store *store;
	struct scsi_lu *lu;
	struct scsi_target *target;
	struct scsi_itn itn;   /* initiator 1 through this node */
	struct scsi_itn itn2;  /* initiator 2 through this node */
};

struct twin {
	struct reactor *reactor;
	struct node a, b;
	unsigned outstanding;
};

/* A command B shipped, run on A. */
struct shipped {
	struct scsi_task task;
	struct scsi_itn itn;
	struct scsi_task *origin;
};

static struct twin *tw;

static void task_done(struct scsi_task *task)
{
	if (--tw->outstanding == 0)
		reactor_stop(task->reactor);
}

static bool is_owner(void *ctx) { return ctx == &tw->a; }

static void shipped_done(struct scsi_task *task)
{
	struct shipped *s = container_of(task, struct shipped, task);

	s->origin->status = task->status;
	s->origin->sense_len = task->sense_len;
	memcpy(s->origin->sense, task->sense, task->sense_len);
	scsi_task_shipped(s->origin, task->state, task->state_len);
	scsi_task_release(task);
	free(s);
}

static void ship(void *ctx, struct scsi_task *task)
{
	struct shipped *s = calloc(1, sizeof(*s));

	s->itn = *task->itn;
	s->origin = task;
	s->task.itn = &s->itn;
	memcpy(s->task.cdb, task->cdb, sizeof(task->cdb));
	s->task.cdb_len = task->cdb_len;
	s->task.data_out = task->data_out;
	s->task.data_out_len = task->data_out_len;
	s->task.reactor = task->reactor;
	s->task.done = shipped_done;
	scsi_lu_execute_shipped(tw->a.lu, &s->task);
}

static struct node *partner(void *ctx) { return ctx == &tw->a ? &tw->b : &tw->a; }

static void publish(void *ctx, struct scsi_task *task, const uint8_t *state, size_t len)
{
	assert_int_equal(scsi_lu_state_install(partner(ctx)->lu, state, len), 0);
	scsi_task_published(task);
}

static void reset(void *ctx) { scsi_lu_partner_reset(partner(ctx)->lu); }

static void nexus_lost(void *ctx, const struct scsi_itn *itn) { scsi_lu_partner_nexus_lost(partner(ctx)->lu, itn); }

static const struct scsi_state_peer_ops ops = { is_owner, ship, publish, reset, nexus_lost };

static void node_open(struct node *n, const char *name, uint16_t port)
{
	struct store_params sp = { .create_size = (uint64_t)BLOCKS * BS };
	struct scsi_lu_params lp = { .block_size = BS, .write_cache = true, .uuid = { 9, 9, 9 } };
	char err[256];

	snprintf(n->path, sizeof(n->path), "/dev/shm/test_lu_state_peer.%s.%d", name, getpid());
	unlink(n->path);
	sp.path = n->path;
	assert_int_equal(store_open(&sp, &n->store, err, sizeof(err)), 0);
	assert_int_equal(scsi_lu_new(&lp, n->store, &n->lu, err, sizeof(err)), 0);
	assert_int_equal(scsi_target_new(&n->target), 0);
	assert_int_equal(scsi_target_add_lu(n->target, 0, n->lu), 0);
	scsi_lu_set_state_peer(n->lu, &ops, n);
	strcpy(n->itn.initiator_name, "iqn.2026-11.org.test:host1");
	strcpy(n->itn.target_name, "iqn.2026-11.org.twinsan:t");
	n->itn.tpgt = 1;
	n->itn.relative_port = port;
	n->itn.id = port;
	n->itn2 = n->itn;
	strcpy(n->itn2.initiator_name, "iqn.2026-11.org.test:host2");
	n->itn2.id = port + 1000u;
}

static void node_close(struct node *n)
{
	scsi_target_free(n->target);
	scsi_lu_free(n->lu);
	store_close(n->store);
	unlink(n->path);
}

static int setup(void **state)
{
	tw = calloc(1, sizeof(*tw));
	assert_int_equal(reactor_new(64, &tw->reactor), 0);
	node_open(&tw->a, "a", 1);
	node_open(&tw->b, "b", 257);
	*state = tw;
	return 0;
}

static int teardown(void **state)
{
	node_close(&tw->a);
	node_close(&tw->b);
	reactor_free(tw->reactor);
	free(tw);
	return 0;
}

/* Starts a command without running the loop. */
static void start(struct node *n, struct scsi_task *t, const struct scsi_itn *itn, const uint8_t *cdb,
                  size_t cdb_len, const void *out, uint32_t out_len)
{
	*t = (struct scsi_task){
		.itn = itn, .cdb_len = (uint8_t)cdb_len, .data_out = (uint8_t *)out, .data_out_len = out_len,
		.expected_len = out_len ? out_len : 4096, .reactor = tw->reactor, .done = task_done,
	};
	memcpy(t->cdb, cdb, cdb_len);
	tw->outstanding++;
	scsi_target_execute(n->target, t);
}

static void wait_all(void)
{
	if (tw->outstanding)
		assert_int_equal(reactor_run(tw->reactor), 0);
	assert_int_equal(tw->outstanding, 0);
}

static uint8_t cmd(struct node *n, const struct scsi_itn *itn, const uint8_t *cdb, size_t cdb_len,
                   const void *out, uint32_t out_len, uint16_t *asc)
{
	struct scsi_task t;

	start(n, &t, itn, cdb, cdb_len, out, out_len);
	wait_all();
	if (asc) {
		/* D_SENSE (descriptor format) moves ASC and ASCQ to bytes 2 and 3 */
		unsigned at = (t.sense[0] & 0x7f) >= 0x72 ? 2 : 12;

		*asc = t.status == SCSI_STATUS_CHECK_CONDITION ? (uint16_t)(t.sense[at] << 8 | t.sense[at + 1]) : 0;
	}
	scsi_task_release(&t);
	return t.status;
}

static uint16_t tur(struct node *n, const struct scsi_itn *itn)
{
	static const uint8_t cdb[6] = { 0 };
	uint16_t asc;

	cmd(n, itn, cdb, 6, NULL, 0, &asc);
	return asc;
}

static void clear_uas(void)
{
	tur(&tw->a, &tw->a.itn);
	tur(&tw->a, &tw->a.itn2);
	tur(&tw->b, &tw->b.itn);
	tur(&tw->b, &tw->b.itn2);
}

static uint8_t prout(struct node *n, const struct scsi_itn *itn, uint8_t sa, uint8_t type, uint64_t key,
                     uint64_t sa_key)
{
	uint8_t cdb[10] = { 0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0 }, p[24] = { 0 };

	put_be64(p, key);
	put_be64(p + 8, sa_key);
	return cmd(n, itn, cdb, 10, p, 24, NULL);
}

/* The keys READ KEYS reports through a node, as a count and the first one. */
static unsigned read_keys(struct node *n, const struct scsi_itn *itn, uint64_t *first)
{
	static const uint8_t cdb[10] = { 0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0 };
	struct scsi_task t;
	unsigned count;

	start(n, &t, itn, cdb, 10, NULL, 0);
	wait_all();
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	count = get_be32(t.data_in + 4) / 8;
	if (count)
		*first = get_be64(t.data_in + 8);
	scsi_task_release(&t);
	return count;
}

static void registration_shipped_from_b_is_on_both(void **state)
{
	uint64_t key = 0;

	clear_uas();
	assert_int_equal(prout(&tw->b, &tw->b.itn2, 0, 0, 0, 34), SCSI_STATUS_GOOD);
	assert_int_equal(read_keys(&tw->a, &tw->a.itn, &key), 1);
	assert_int_equal(key, 34);
	assert_int_equal(read_keys(&tw->b, &tw->b.itn, &key), 1);
	assert_int_equal(key, 34);
	/* a wrong key through B is refused by the owner */
	assert_int_equal(prout(&tw->b, &tw->b.itn2, 0, 0, 99, 35), SCSI_STATUS_RESERVATION_CONFLICT);
}

static void preempt_and_abort_through_a_aborts_on_b(void **state)
{
	static const uint8_t block[BS];
	uint8_t write[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t cdb[10] = { 0x5f, 5, 1, 0, 0, 0, 0, 0, 24, 0 }, p[24] = { 0 };
	struct scsi_task w, pa;

	clear_uas();
	assert_int_equal(prout(&tw->a, &tw->a.itn, 0, 0, 0, 17), SCSI_STATUS_GOOD);
	assert_int_equal(prout(&tw->b, &tw->b.itn2, 0, 0, 0, 34), SCSI_STATUS_GOOD);
	assert_int_equal(prout(&tw->b, &tw->b.itn2, 1, 1, 34, 0), SCSI_STATUS_GOOD);
	/* B's write is in flight when A preempts initiator 2 with abort */
	start(&tw->b, &w, &tw->b.itn2, write, 10, block, BS);
	put_be64(p, 17);
	put_be64(p + 8, 34);
	start(&tw->a, &pa, &tw->a.itn, cdb, 10, p, 24);
	wait_all();
	assert_int_equal(pa.status, SCSI_STATUS_GOOD);
	assert_int_equal(w.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(tur(&tw->b, &tw->b.itn2), 0x2a05); /* REGISTRATIONS PREEMPTED */
	assert_int_equal(tur(&tw->a, &tw->a.itn), 0);       /* not the issuer */
	assert_int_equal(cmd(&tw->b, &tw->b.itn2, write, 10, block, BS, NULL), SCSI_STATUS_RESERVATION_CONFLICT);
}

static void mode_select_through_b_changes_a(void **state)
{
	uint8_t sel[10] = { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0 };
	uint8_t list[20] = { 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 10, 0x04, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0 };
	uint8_t sense_cdb[10] = { 0x5a, 0x08, 0x0a, 0, 0, 0, 0, 0, 64, 0 };
	struct scsi_task t;

	clear_uas();
	assert_int_equal(cmd(&tw->b, &tw->b.itn, sel, 10, list, 20, NULL), SCSI_STATUS_GOOD);
	assert_int_equal(tur(&tw->a, &tw->a.itn), 0x2a01); /* MODE PARAMETERS CHANGED */
	assert_int_equal(tur(&tw->b, &tw->b.itn2), 0x2a01);
	assert_int_equal(tur(&tw->b, &tw->b.itn), 0);      /* the issuer learns from its status */
	start(&tw->a, &t, &tw->a.itn, sense_cdb, 10, NULL, 0);
	wait_all();
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[8 + 2] & 0x04, 0x04);   /* D_SENSE on A too */
	scsi_task_release(&t);
}

static void lun_reset_and_nexus_loss_reach_the_partner(void **state)
{
	static const uint8_t reserve6[6] = { 0x16 }, read6[6] = { 0x08, 0, 0, 0, 1, 0 };

	clear_uas();
	assert_int_equal(cmd(&tw->a, &tw->a.itn, reserve6, 6, NULL, 0, NULL), SCSI_STATUS_GOOD);
	assert_int_equal(cmd(&tw->b, &tw->b.itn2, read6, 6, NULL, 0, NULL), SCSI_STATUS_RESERVATION_CONFLICT);
	assert_int_equal(scsi_target_lun_reset(tw->b.target, &tw->b.itn2, 0), SCSI_TMF_COMPLETE);
	assert_int_equal(tur(&tw->a, &tw->a.itn), 0x2903); /* the reset, on the other node */
	assert_int_equal(tur(&tw->b, &tw->b.itn2), 0x2903);
	assert_int_equal(cmd(&tw->b, &tw->b.itn2, read6, 6, NULL, 0, NULL), SCSI_STATUS_GOOD);
	/* B's nexus takes RESERVE(6) (through the owner) and leaves: A lets others in again */
	assert_int_equal(cmd(&tw->b, &tw->b.itn2, reserve6, 6, NULL, 0, NULL), SCSI_STATUS_GOOD);
	assert_int_equal(cmd(&tw->a, &tw->a.itn, read6, 6, NULL, 0, NULL), SCSI_STATUS_RESERVATION_CONFLICT);
	scsi_target_nexus_lost(tw->b.target, &tw->b.itn2);
	assert_int_equal(cmd(&tw->a, &tw->a.itn, read6, 6, NULL, 0, NULL), SCSI_STATUS_GOOD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(registration_shipped_from_b_is_on_both, setup, teardown),
		cmocka_unit_test_setup_teardown(preempt_and_abort_through_a_aborts_on_b, setup, teardown),
		cmocka_unit_test_setup_teardown(mode_select_through_b_changes_a, setup, teardown),
		cmocka_unit_test_setup_teardown(lun_reset_and_nexus_loss_reach_the_partner, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
