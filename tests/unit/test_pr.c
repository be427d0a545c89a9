/* Persistent reservations and RESERVE(6) driven through pr.h on a real logical unit (so
 * sense data, unit attentions and the abort hook are the real ones) with several I_T
 * nexuses: A and B are two initiators on target port 1, A2 is A's second initiator port,
 * A_P2 is A's first port reaching target port 2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "scsi/lu_state.h"
#include "scsi/pr.h"
#include "scsi/pr_file.h"
#include "scsi/pr_port.h"
#include "store/store.h"

enum { SA_REGISTER, SA_RESERVE, SA_RELEASE, SA_CLEAR, SA_PREEMPT, SA_PREEMPT_ABORT, SA_REGISTER_IGNORE,
       SA_REGISTER_MOVE };
enum { IN_READ_KEYS, IN_READ_RESERVATION, IN_REPORT_CAPABILITIES, IN_READ_FULL_STATUS };
enum { WE = 1, EA = 3, WE_RO = 5, EA_RO = 6, WE_AR = 7, EA_AR = 8 };
#define SPEC_I_PT 0x08
#define ALL_TG_PT 0x04
#define APTPL 0x01

#define GOOD SCSI_STATUS_GOOD
#define CHECK SCSI_STATUS_CHECK_CONDITION
#define CONFLICT SCSI_STATUS_RESERVATION_CONFLICT

struct fixture {
	char dir[64], state[96], disk[96];
	struct store *store;
	struct scsi_lu *lu;
	struct scsi_target *target;
	struct scsi_task task; /* the last command */
	struct scsi_itn a, a2, a_p2, b, c;
	/* what the transport's abort hook was asked */
	unsigned abort_calls;
	bool aborted_a, aborted_b, aborted_c;
	const struct scsi_task *abort_except;
};

static void itn_init(struct scsi_itn *itn, const char *name, uint8_t isid_last, uint16_t port, uint64_t id)
{
	memset(itn, 0, sizeof(*itn));
	str_copy(itn->initiator_name, sizeof(itn->initiator_name), name);
	itn->isid[0] = 0x23;
	itn->isid[5] = isid_last;
	str_copy(itn->target_name, sizeof(itn->target_name), "iqn.2026-11.org.twinsan:test");
	itn->tpgt = port;
	itn->relative_port = port;
	itn->id = id;
}

static void abort_hook(void *ctx, struct scsi_lu *lu, bool (*match)(const struct scsi_itn *itn, void *arg),
                       void *arg, const struct scsi_task *except)
{
	struct fixture *fx = ctx;
	fx->abort_calls++;
	fx->aborted_a = match(&fx->a, arg);
	fx->aborted_b = match(&fx->b, arg);
	fx->aborted_c = match(&fx->c, arg);
	fx->abort_except = except;
}

/* Makes each nexus known to the unit attention set and drains its POWER ON. */
static void introduce(struct fixture *fx, const struct scsi_itn *itn)
{
	enum sense_asc asc;
	while (ua_take(fx->lu->ua, itn, &asc))
		;
}

static void open_lu(struct fixture *fx, const char *state_path)
{
	char err[256];
	struct scsi_lu_params params = { .block_size = 512, .state_path = state_path };
	struct store_params sp = { .path = fx->disk, .create_size = 1 << 20 };

	assert_int_equal(store_open(&sp, &fx->store, err, sizeof(err)), 0);
	assert_int_equal(scsi_lu_new(&params, fx->store, &fx->lu, err, sizeof(err)), 0);
	assert_int_equal(scsi_target_new(&fx->target), 0);
	assert_int_equal(scsi_target_add_lu(fx->target, 0, fx->lu), 0);
	struct scsi_transport_ops ops = { .abort_tasks = abort_hook, .ctx = fx };
	scsi_target_set_transport(fx->target, &ops);
	introduce(fx, &fx->a);
	introduce(fx, &fx->a2);
	introduce(fx, &fx->a_p2);
	introduce(fx, &fx->b);
	introduce(fx, &fx->c);
}

static void close_lu(struct fixture *fx)
{
	scsi_task_release(&fx->task);
	scsi_target_free(fx->target);
	scsi_lu_free(fx->lu);
	store_close(fx->store);
	fx->lu = NULL;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_pr.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->state, sizeof(fx->state), "%s/pr.json", fx->dir);
	snprintf(fx->disk, sizeof(fx->disk), "%s/disk", fx->dir);
	itn_init(&fx->a, "iqn.2026-11.test:a", 1, 1, 1);
	itn_init(&fx->a2, "iqn.2026-11.test:a", 2, 1, 2);
	itn_init(&fx->a_p2, "iqn.2026-11.test:a", 1, 2, 3);
	itn_init(&fx->b, "iqn.2026-11.test:b", 1, 1, 4);
	itn_init(&fx->c, "iqn.2026-11.test:c", 1, 1, 5);
	open_lu(fx, fx->state);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	close_lu(fx);
	unlink(fx->state);
	unlink(fx->disk);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void task_reset(struct fixture *fx, const struct scsi_itn *itn)
{
	scsi_task_release(&fx->task);
	memset(&fx->task, 0, sizeof(fx->task));
	fx->task.itn = itn;
	fx->task.lu = fx->lu;
}

/* PERSISTENT RESERVE OUT with a parameter list of plen bytes (data may be longer). */
static uint8_t prout_raw(struct fixture *fx, const struct scsi_itn *itn, uint8_t sa, uint8_t scope_type,
                         uint8_t *data, uint32_t plen)
{
	task_reset(fx, itn);
	fx->task.cdb[0] = 0x5f;
	fx->task.cdb[1] = sa;
	fx->task.cdb[2] = scope_type;
	put_be32(fx->task.cdb + 5, plen);
	fx->task.cdb_len = 10;
	fx->task.data_out = data;
	fx->task.data_out_len = plen;
	fx->task.write_dir = true;
	pr_persistent_reserve_out(fx->lu->pr, &fx->task);
	return fx->task.status;
}

static uint8_t prout(struct fixture *fx, const struct scsi_itn *itn, uint8_t sa, uint8_t type, uint64_t key,
                     uint64_t sa_key, uint8_t flags)
{
	uint8_t d[24] = { 0 };
	put_be64(d, key);
	put_be64(d + 8, sa_key);
	d[20] = flags;
	return prout_raw(fx, itn, sa, type, d, sizeof(d));
}

static uint8_t prin(struct fixture *fx, const struct scsi_itn *itn, uint8_t sa, uint16_t alloc)
{
	task_reset(fx, itn);
	fx->task.cdb[0] = 0x5e;
	fx->task.cdb[1] = sa;
	put_be16(fx->task.cdb + 7, alloc);
	fx->task.cdb_len = 10;
	fx->task.read_dir = true;
	pr_persistent_reserve_in(fx->lu->pr, &fx->task);
	return fx->task.status;
}

static uint8_t reserve6(struct fixture *fx, const struct scsi_itn *itn, bool release)
{
	task_reset(fx, itn);
	fx->task.cdb[0] = release ? 0x17 : 0x16;
	fx->task.cdb_len = 6;
	if (release)
		pr_release6(fx->lu->pr, &fx->task);
	else
		pr_reserve6(fx->lu->pr, &fx->task);
	return fx->task.status;
}

/* Asserts the last command failed with this sense (fixed format) and field pointer. */
static void assert_sense(struct fixture *fx, uint8_t key, uint16_t asc)
{
	assert_int_equal(fx->task.status, CHECK);
	assert_int_equal(fx->task.sense[2] & 0xf, key);
	assert_int_equal(get_be16(fx->task.sense + 12), asc);
}

static void assert_field(struct fixture *fx, bool in_cdb, uint16_t byte, int bit)
{
	uint8_t sks = fx->task.sense[15];
	assert_true(sks & 0x80);
	assert_int_equal(!!(sks & 0x40), in_cdb);
	if (bit >= 0)
		assert_int_equal(sks & 0x0f, 0x08 | bit);
	assert_int_equal(get_be16(fx->task.sense + 16), byte);
}

/* The unit attention pending for a nexus (0: none), taken off the queue. */
static uint16_t ua_of(struct fixture *fx, const struct scsi_itn *itn)
{
	enum sense_asc asc;
	return ua_take(fx->lu->ua, itn, &asc) ? (uint16_t)asc : 0;
}

static uint32_t generation(struct fixture *fx)
{
	assert_int_equal(prin(fx, &fx->a, IN_READ_KEYS, 8), GOOD);
	return get_be32(fx->task.data_in);
}

static unsigned key_count(struct fixture *fx)
{
	assert_int_equal(prin(fx, &fx->a, IN_READ_KEYS, 4096), GOOD);
	return get_be32(fx->task.data_in + 4) / 8;
}

/* Type of the reservation, 0 if none; *key gets the holder key READ RESERVATION reports. */
static uint8_t reservation(struct fixture *fx, uint64_t *key)
{
	assert_int_equal(prin(fx, &fx->a, IN_READ_RESERVATION, 4096), GOOD);
	if (get_be32(fx->task.data_in + 4) == 0)
		return 0;
	assert_int_equal(get_be32(fx->task.data_in + 4), 16);
	if (key)
		*key = get_be64(fx->task.data_in + 8);
	return fx->task.data_in[21];
}

/* ---- registration ---- */

static void test_register_lists_key_and_bumps_generation(void **state)
{
	struct fixture *fx = *state;
	uint32_t gen = generation(fx);

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prin(fx, &fx->b, IN_READ_KEYS, 4096), GOOD);
	assert_int_equal(fx->task.data_in_len, 24);
	assert_int_equal(get_be32(fx->task.data_in), gen + 2);
	assert_int_equal(get_be32(fx->task.data_in + 4), 16);
	assert_true(get_be64(fx->task.data_in + 8) == 0x1111);
	assert_true(get_be64(fx->task.data_in + 16) == 0x2222);
}

static void test_register_with_wrong_key_conflicts(void **state)
{
	struct fixture *fx = *state;

	/* unregistered nexus naming a key */
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x5, 0x1111, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	/* registered nexus with the wrong current key */
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x9999, 0x2222, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x1111, 0x2222, 0), GOOD);
	assert_int_equal(key_count(fx), 1);
	assert_true(get_be64(fx->task.data_in + 8) == 0x2222);
}

static void test_register_and_ignore_replaces_any_key(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER_IGNORE, 0, 0x77, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER_IGNORE, 0, 0x77, 0x3333, 0), GOOD);
	assert_int_equal(key_count(fx), 1);
	assert_true(get_be64(fx->task.data_in + 8) == 0x3333);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER_IGNORE, 0, 0, 0, 0), GOOD);
	assert_int_equal(key_count(fx), 0);
}

static void test_unregistering_an_unregistered_nexus_changes_nothing(void **state)
{
	struct fixture *fx = *state;
	uint32_t gen = generation(fx);

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0, 0), GOOD);
	assert_int_equal(generation(fx), gen);
}

static void test_parameter_list_must_be_24_bytes(void **state)
{
	struct fixture *fx = *state;
	uint8_t d[32] = { 0 };
	put_be64(d + 8, 0x1111);

	assert_int_equal(prout_raw(fx, &fx->a, SA_REGISTER, 0, d, 23), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	assert_int_equal(prout_raw(fx, &fx->a, SA_REGISTER, 0, d, 25), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	assert_int_equal(prout_raw(fx, &fx->a, SA_REGISTER, 0, NULL, 0), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	/* a CDB claiming more than the transport delivered */
	task_reset(fx, &fx->a);
	fx->task.cdb[0] = 0x5f;
	put_be32(fx->task.cdb + 5, 24);
	fx->task.data_out = d;
	fx->task.data_out_len = 20;
	pr_persistent_reserve_out(fx->lu->pr, &fx->task);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	assert_int_equal(key_count(fx), 0);
}

static void test_invalid_service_actions_point_at_the_cdb_field(void **state)
{
	struct fixture *fx = *state;

	for (uint8_t sa = 4; sa < 0x20; sa++) {
		assert_int_equal(prin(fx, &fx->a, sa, 4096), CHECK);
		assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
		assert_field(fx, true, 1, 4);
	}
	for (uint8_t sa = 0; sa < 4; sa++)
		assert_int_equal(prin(fx, &fx->a, sa, 4096), GOOD);
	assert_int_equal(prout(fx, &fx->a, 8, 0, 0, 0, 0), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	assert_field(fx, true, 1, 4);
}

static void test_allocation_length_truncates_but_keeps_full_length_fields(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prin(fx, &fx->a, IN_READ_KEYS, 12), GOOD);
	assert_int_equal(fx->task.data_in_len, 12);
	assert_int_equal(get_be32(fx->task.data_in + 4), 16);
	assert_int_equal(prin(fx, &fx->a, IN_READ_FULL_STATUS, 0), GOOD);
	assert_int_equal(fx->task.data_in_len, 0);
}

/* ---- reservations ---- */

static void test_reserve_needs_registration_and_key(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0, 0, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0x1112, 0, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, 2, 0x1111, 0, 0), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	assert_field(fx, true, 2, 3);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, 0x10 | WE, 0x1111, 0, 0), CHECK);
	assert_field(fx, true, 2, 7);
	assert_int_equal(reservation(fx, NULL), 0);
}

static void test_reserve_reports_holder_and_type(void **state)
{
	struct fixture *fx = *state;
	uint64_t key = 0;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	uint32_t gen = generation(fx);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, EA, 0x1111, 0, 0), GOOD);
	assert_int_equal(reservation(fx, &key), EA);
	assert_true(key == 0x1111);
	/* RESERVE does not count as a registration change */
	assert_int_equal(generation(fx), gen);
	/* the holder may repeat it; a different type or another registrant conflicts */
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, EA, 0x1111, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0x1111, 0, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->b, SA_RESERVE, EA, 0x2222, 0, 0), CONFLICT);
}

static void test_all_registrants_reservation_reports_key_zero(void **state)
{
	struct fixture *fx = *state;
	uint64_t key = 1;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, EA_AR, 0x1111, 0, 0), GOOD);
	assert_int_equal(reservation(fx, &key), EA_AR);
	assert_true(key == 0);
}

/* Access per SPC-4 table "Read/write access with persistent reservations", as
 * [holder, other registrant, non-registrant] x [read, write]. */
static void test_each_type_grants_access_as_spc4_says(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		uint8_t type;
		bool reg_read, reg_write, other_read, other_write;
	} rows[] = {
		{ WE, true, false, true, false },    { EA, false, false, false, false },
		{ WE_RO, true, true, true, false },  { EA_RO, true, true, false, false },
		{ WE_AR, true, true, true, false },  { EA_AR, true, true, false, false },
	};
	const struct pr_state *pr = fx->lu->pr;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		assert_int_equal(prout(fx, &fx->a, SA_RESERVE, rows[i].type, 0x1111, 0, 0), GOOD);
		assert_true(pr_allows(pr, &fx->a, PR_GATE_READ));
		assert_true(pr_allows(pr, &fx->a, PR_GATE_WRITE));
		assert_int_equal(pr_allows(pr, &fx->b, PR_GATE_READ), rows[i].reg_read);
		assert_int_equal(pr_allows(pr, &fx->b, PR_GATE_WRITE), rows[i].reg_write);
		assert_int_equal(pr_allows(pr, &fx->c, PR_GATE_READ), rows[i].other_read);
		assert_int_equal(pr_allows(pr, &fx->c, PR_GATE_WRITE), rows[i].other_write);
		assert_true(pr_allows(pr, &fx->c, PR_GATE_NEVER));
		assert_true(pr_allows(pr, &fx->c, 0));
		/* the same initiator through another port is another nexus */
		assert_int_equal(pr_allows(pr, &fx->a2, PR_GATE_READ), rows[i].other_read);
		assert_int_equal(prout(fx, &fx->a, SA_RELEASE, rows[i].type, 0x1111, 0, 0), GOOD);
		assert_true(pr_allows(pr, &fx->c, PR_GATE_WRITE));
		while (ua_of(fx, &fx->b))
			;
	}
}

static void test_all_registrants_hold_the_reservation(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE_AR, 0x1111, 0, 0), GOOD);
	/* the reserving nexus leaves: B still holds it */
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x1111, 0, 0), GOOD);
	assert_int_equal(reservation(fx, NULL), WE_AR);
	assert_true(pr_allows(fx->lu->pr, &fx->b, PR_GATE_WRITE));
	assert_false(pr_allows(fx->lu->pr, &fx->a, PR_GATE_WRITE));
	/* the last registrant leaving ends it */
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0x2222, 0, 0), GOOD);
	assert_int_equal(reservation(fx, NULL), 0);
}

static void test_registrants_only_holder_unregistering_releases_with_ua(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, EA_RO, 0x1111, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x1111, 0, 0), GOOD);
	assert_int_equal(reservation(fx, NULL), 0);
	assert_int_equal(ua_of(fx, &fx->b), ASC_RESERVATIONS_RELEASED);
	assert_int_equal(ua_of(fx, &fx->a), 0);
	assert_int_equal(ua_of(fx, &fx->c), 0);
}

static void test_exclusive_holder_unregistering_releases_silently(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, EA, 0x1111, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x1111, 0, 0), GOOD);
	assert_int_equal(reservation(fx, NULL), 0);
	assert_int_equal(ua_of(fx, &fx->b), 0);
}

static void test_release_checks_type_and_notifies_registrants(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE_RO, 0x1111, 0, 0), GOOD);
	/* a non-holder's RELEASE is GOOD and does nothing */
	assert_int_equal(prout(fx, &fx->b, SA_RELEASE, WE_RO, 0x2222, 0, 0), GOOD);
	assert_int_equal(reservation(fx, NULL), WE_RO);
	assert_int_equal(prout(fx, &fx->a, SA_RELEASE, WE, 0x1111, 0, 0), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
	assert_int_equal(prout(fx, &fx->a, SA_RELEASE, WE_RO, 0x1111, 0, 0), GOOD);
	assert_int_equal(reservation(fx, NULL), 0);
	assert_int_equal(ua_of(fx, &fx->b), ASC_RESERVATIONS_RELEASED);
	assert_int_equal(ua_of(fx, &fx->a), 0);
	assert_int_equal(key_count(fx), 2);
}

static void test_clear_removes_everything_and_raises_preempted(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_RESERVE, EA, 0x2222, 0, 0), GOOD);
	uint32_t gen = generation(fx);
	assert_int_equal(prout(fx, &fx->c, SA_CLEAR, 0, 0, 0, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_CLEAR, 0, 0x1111, 0, 0), GOOD);
	assert_int_equal(key_count(fx), 0);
	assert_int_equal(reservation(fx, NULL), 0);
	assert_int_equal(generation(fx), gen + 1);
	assert_int_equal(ua_of(fx, &fx->b), ASC_RESERVATIONS_PREEMPTED);
	assert_int_equal(ua_of(fx, &fx->a), 0);
	assert_int_equal(ua_of(fx, &fx->c), 0);
}

/* ---- preemption ---- */

static void test_preempt_without_reservation_removes_registration(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	uint32_t gen = generation(fx);
	assert_int_equal(prout(fx, &fx->b, SA_PREEMPT, EA, 0x2222, 0x1111, 0), GOOD);
	assert_int_equal(generation(fx), gen + 1);
	assert_int_equal(key_count(fx), 1);
	assert_true(get_be64(fx->task.data_in + 8) == 0x2222);
	assert_int_equal(reservation(fx, NULL), 0);
	assert_int_equal(ua_of(fx, &fx->a), ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(ua_of(fx, &fx->b), 0);
}

static void test_preempt_errors(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->c, SA_PREEMPT, EA, 0, 0x1111, 0), CONFLICT);     /* unregistered */
	assert_int_equal(prout(fx, &fx->a, SA_PREEMPT, EA, 0x1111, 0x4444, 0), CONFLICT); /* no such key */
	assert_int_equal(prout(fx, &fx->a, SA_PREEMPT, EA, 0x1111, 0, 0), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	assert_field(fx, false, 8, -1);
	assert_int_equal(key_count(fx), 1);
}

static void test_preempt_takes_over_the_reservation(void **state)
{
	struct fixture *fx = *state;
	uint64_t key = 0;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->c, SA_REGISTER, 0, 0, 0x3333, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0x1111, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_PREEMPT, EA, 0x2222, 0x1111, 0), GOOD);
	assert_int_equal(reservation(fx, &key), EA);
	assert_true(key == 0x2222);
	assert_int_equal(key_count(fx), 2);
	assert_int_equal(ua_of(fx, &fx->a), ASC_REGISTRATIONS_PREEMPTED);
	/* the type changed: the remaining registrant hears the old one is gone */
	assert_int_equal(ua_of(fx, &fx->c), ASC_RESERVATIONS_RELEASED);
	assert_int_equal(ua_of(fx, &fx->b), 0);
	assert_int_equal(fx->abort_calls, 0);
}

static void test_preempt_and_abort_removes_others_raises_ua_and_aborts_their_tasks(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->c, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_RESERVE, WE, 0x2222, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_PREEMPT_ABORT, WE, 0x1111, 0x2222, 0), GOOD);
	assert_int_equal(key_count(fx), 1);
	uint64_t key = 0;
	assert_int_equal(reservation(fx, &key), WE);
	assert_true(key == 0x1111);
	assert_int_equal(ua_of(fx, &fx->b), ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(ua_of(fx, &fx->c), ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(ua_of(fx, &fx->a), 0);
	assert_int_equal(fx->abort_calls, 1);
	assert_true(fx->aborted_b);
	assert_true(fx->aborted_c);
	assert_false(fx->aborted_a);
}

static void test_preempt_all_registrants_with_key_zero_keeps_only_the_issuer(void **state)
{
	struct fixture *fx = *state;
	uint64_t key = 1;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->c, SA_REGISTER, 0, 0, 0x3333, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_RESERVE, EA_AR, 0x2222, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->c, SA_PREEMPT, EA_AR, 0x3333, 0, 0), GOOD);
	assert_int_equal(key_count(fx), 1);
	assert_true(get_be64(fx->task.data_in + 8) == 0x3333);
	assert_int_equal(reservation(fx, &key), EA_AR);
	assert_true(key == 0);
	assert_int_equal(ua_of(fx, &fx->a), ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(ua_of(fx, &fx->b), ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(ua_of(fx, &fx->c), 0);
}

/* ---- TransportIDs ---- */

static size_t put_tid(uint8_t *p, const char *text, uint8_t format)
{
	size_t len = strlen(text) + 1;
	size_t add = MAX((len + 3) & ~(size_t)3, (size_t)20);
	memset(p, 0, 4 + add);
	p[0] = (uint8_t)(format << 6 | 0x5);
	put_be16(p + 2, (uint16_t)add);
	memcpy(p + 4, text, len - 1);
	return 4 + add;
}

/* A REGISTER parameter list with SPEC_I_PT and two TransportIDs: a port (format 01h) and
 * `second` in the given format; returns its length. */
static size_t spec_i_pt_list(uint8_t d[512], uint64_t sa_key, const char *port, const char *second,
                             uint8_t second_format)
{
	memset(d, 0, 512);
	put_be64(d + 8, sa_key);
	d[20] = SPEC_I_PT;
	size_t off = 28;
	off += put_tid(d + off, port, 1);
	off += put_tid(d + off, second, second_format);
	put_be32(d + 24, (uint32_t)(off - 28));
	return off;
}

static void test_spec_i_pt_registers_listed_ports_and_full_status_shows_them(void **state)
{
	struct fixture *fx = *state;
	uint8_t d[512];
	size_t off = spec_i_pt_list(d, 0x1111, "iqn.2026-11.test:b,i,0x230000000001", "iqn.2026-11.test:c", 0);

	assert_int_equal(prout_raw(fx, &fx->a, SA_REGISTER, 0, d, (uint32_t)off), GOOD);
	assert_int_equal(key_count(fx), 3);
	assert_true(pr_allows(fx->lu->pr, &fx->b, PR_GATE_WRITE));
	assert_int_equal(prout(fx, &fx->b, SA_RESERVE, WE_RO, 0x1111, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a2, SA_REGISTER, 0, 0, 0x4444, ALL_TG_PT), GOOD);

	assert_int_equal(prin(fx, &fx->a, IN_READ_FULL_STATUS, 4096), GOOD);
	const uint8_t *p = fx->task.data_in;
	uint32_t add = get_be32(p + 4);
	assert_int_equal(fx->task.data_in_len, 8 + add);
	const char *names[] = { "iqn.2026-11.test:a,i,0x230000000001", "iqn.2026-11.test:b,i,0x230000000001",
	                        "iqn.2026-11.test:c", "iqn.2026-11.test:a,i,0x230000000002" };
	p += 8;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		uint32_t tid_len = get_be32(p + 20);
		assert_int_equal(tid_len % 4, 0);
		assert_int_equal(p[24] & 0xf, 5);
		assert_int_equal(p[24] >> 6, strchr(names[i], ',') ? 1 : 0);
		assert_int_equal(get_be16(p + 26), tid_len - 4);
		assert_string_equal((const char *)p + 28, names[i]);
		bool all_tg_pt = i == 3;
		assert_int_equal(!!(p[12] & 0x02), all_tg_pt);
		/* registrants-only: the reserving nexus alone is the holder (SPC-4 §5.13.10) */
		bool holder = i == 1;
		assert_int_equal(p[12] & 0x01, holder);
		assert_int_equal(p[13], holder ? WE_RO : 0);
		assert_int_equal(get_be16(p + 18), all_tg_pt ? 0 : 1);
		p += 24 + tid_len;
	}
	assert_ptr_equal(p, fx->task.data_in + 8 + add);
}

static void test_spec_i_pt_with_bad_transport_id_registers_nobody(void **state)
{
	struct fixture *fx = *state;
	uint8_t d[512];
	size_t off = spec_i_pt_list(d, 0x1111, "iqn.2026-11.test:b,i,0x230000000001", "iqn.2026-11.test:c,x", 1);

	assert_int_equal(prout_raw(fx, &fx->a, SA_REGISTER, 0, d, (uint32_t)off), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	assert_int_equal(key_count(fx), 0);
	/* a TransportID list longer than the parameter list */
	put_be32(d + 24, (uint32_t)off);
	assert_int_equal(prout_raw(fx, &fx->a, SA_REGISTER, 0, d, (uint32_t)off), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	/* SPEC_I_PT belongs to the register service actions only */
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0, 0, SPEC_I_PT), CHECK);
	assert_field(fx, false, 20, 3);
}

static void test_transport_id_parser_rejects_malformed_ids(void **state)
{
	struct pr_port port;
	uint8_t b[64];

	size_t n = put_tid(b, "iqn.x,i,0x1234", 1);
	assert_int_equal(pr_tid_parse(b, n, &port), n);
	assert_string_equal(port.name, "iqn.x");
	assert_int_equal(port.isid[5], 0x34);
	assert_int_equal(pr_tid_parse(b, n - 1, &port), 0);   /* cut short */
	b[0] = 0x44;                                          /* not iSCSI */
	assert_int_equal(pr_tid_parse(b, n, &port), 0);
	n = put_tid(b, "iqn.x,i,0x1234567890abc", 1);         /* ISID too long */
	assert_int_equal(pr_tid_parse(b, n, &port), 0);
	n = put_tid(b, "iqn.x", 1);                           /* port format without ISID */
	assert_int_equal(pr_tid_parse(b, n, &port), 0);
	n = put_tid(b, ",i,0x1", 1);                          /* no name */
	assert_int_equal(pr_tid_parse(b, n, &port), 0);
	n = put_tid(b, "iqn.x", 0);
	memset(b + 4, 'x', n - 4);                            /* no NUL */
	assert_int_equal(pr_tid_parse(b, n, &port), 0);
	n = put_tid(b, "iqn.x", 0);
	put_be16(b + 2, 21);                                  /* not a multiple of 4 */
	assert_int_equal(pr_tid_parse(b, 64, &port), 0);
}

/* ---- REGISTER AND MOVE ---- */

static uint8_t register_and_move(struct fixture *fx, uint64_t key, uint64_t sa_key, const char *tid,
                                 uint16_t rel_port, bool unreg)
{
	uint8_t d[128] = { 0 };
	put_be64(d, key);
	put_be64(d + 8, sa_key);
	d[17] = unreg ? 0x02 : 0;
	put_be16(d + 18, rel_port);
	size_t n = put_tid(d + 24, tid, 1);
	put_be32(d + 20, (uint32_t)n);
	return prout_raw(fx, &fx->a, SA_REGISTER_MOVE, WE, d, (uint32_t)(24 + n));
}

static void test_register_and_move_hands_the_reservation_over(void **state)
{
	struct fixture *fx = *state;
	uint64_t key = 0;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	/* not the holder yet */
	assert_int_equal(register_and_move(fx, 0x1111, 0x2222, "iqn.2026-11.test:b,i,0x230000000001", 1, false),
	                 CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0x1111, 0, 0), GOOD);
	/* to itself */
	assert_int_equal(register_and_move(fx, 0x1111, 0x2222, "iqn.2026-11.test:a,i,0x230000000001", 1, false),
	                 CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	assert_int_equal(register_and_move(fx, 0x1111, 0x2222, "iqn.2026-11.test:b,i,0x230000000001", 1, true),
	                 GOOD);
	assert_int_equal(reservation(fx, &key), WE);
	assert_true(key == 0x2222);
	assert_int_equal(key_count(fx), 1);
	assert_true(pr_allows(fx->lu->pr, &fx->b, PR_GATE_WRITE));
	assert_false(pr_allows(fx->lu->pr, &fx->a, PR_GATE_WRITE));
}

static void test_register_and_move_refuses_bad_requests(void **state)
{
	struct fixture *fx = *state;
	const char *b = "iqn.2026-11.test:b,i,0x230000000001";

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE_AR, 0x1111, 0, 0), GOOD);
	/* all-registrants reservations cannot move */
	assert_int_equal(register_and_move(fx, 0x1111, 0x2222, b, 1, false), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_RELEASE, WE_AR, 0x1111, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0x1111, 0, 0), GOOD);
	assert_int_equal(register_and_move(fx, 0x1112, 0x2222, b, 1, false), CONFLICT);
	assert_int_equal(register_and_move(fx, 0x1111, 0, b, 1, false), CHECK);
	assert_field(fx, false, 8, -1);
	assert_int_equal(register_and_move(fx, 0x1111, 0x2222, b, 0, false), CHECK);
	assert_field(fx, false, 18, -1);
	assert_int_equal(register_and_move(fx, 0x1111, 0x2222, "iqn.2026-11.test:b", 1, false), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	assert_field(fx, false, 24, -1);
	uint64_t key = 0;
	assert_int_equal(reservation(fx, &key), WE);
	assert_true(key == 0x1111);
	assert_int_equal(key_count(fx), 1);
}

static void test_registrations_beyond_the_limit_are_refused(void **state)
{
	struct fixture *fx = *state;
	struct scsi_itn itn;

	for (unsigned i = 0; i < PR_MAX_REGISTRATIONS; i++) {
		itn_init(&itn, "iqn.2026-11.test:many", (uint8_t)i, (uint16_t)(1 + i / 256), 100 + i);
		assert_int_equal(prout(fx, &itn, SA_REGISTER, 0, 0, 1 + i, 0), GOOD);
	}
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
	assert_int_equal(key_count(fx), PR_MAX_REGISTRATIONS);
	/* a registered nexus can still change its key and leave */
	assert_int_equal(prout(fx, &itn, SA_REGISTER, 0, PR_MAX_REGISTRATIONS, 0x7, 0), GOOD);
	assert_int_equal(prout(fx, &itn, SA_REGISTER, 0, 0x7, 0, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
}

/* ---- APTPL ---- */

static void test_aptpl_state_survives_reload(void **state)
{
	struct fixture *fx = *state;
	uint64_t key = 0;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, APTPL), GOOD);
	assert_int_equal(prout(fx, &fx->a2, SA_REGISTER, 0, 0, 0xfedcba9876543210ull, ALL_TG_PT | APTPL),
	                 GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, EA_RO, 0x1111, 0, 0), GOOD);
	uint32_t gen = generation(fx);
	assert_int_equal(access(fx->state, F_OK), 0);

	close_lu(fx);
	open_lu(fx, fx->state);
	assert_int_equal(generation(fx), gen);
	assert_int_equal(reservation(fx, &key), EA_RO);
	assert_true(key == 0x1111);
	assert_int_equal(key_count(fx), 2);
	assert_true(get_be64(fx->task.data_in + 16) == 0xfedcba9876543210ull);
	assert_true(pr_allows(fx->lu->pr, &fx->a, PR_GATE_WRITE));
	assert_true(pr_allows(fx->lu->pr, &fx->a2, PR_GATE_WRITE));
	assert_false(pr_allows(fx->lu->pr, &fx->a_p2, PR_GATE_READ));
	assert_false(pr_allows(fx->lu->pr, &fx->b, PR_GATE_READ));
	assert_int_equal(prin(fx, &fx->a, IN_REPORT_CAPABILITIES, 8), GOOD);
	assert_int_equal(fx->task.data_in[3] & 0x01, 1); /* PTPL_A */

	/* APTPL=0 forgets the file; the next start has nothing */
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0x1111, 0x1112, 0), GOOD);
	assert_int_equal(access(fx->state, F_OK), -1);
	close_lu(fx);
	open_lu(fx, fx->state);
	assert_int_equal(key_count(fx), 0);
}

static void test_corrupt_state_file_is_refused_with_a_message(void **state)
{
	struct fixture *fx = *state;
	static const char *bad[] = {
		"{",
		"[]",
		"{\"format\":\"twinsan-pr\",\"version\":2,\"generation\":0,\"type\":0,\"registrations\":[]}",
		"{\"format\":\"twinsan-pr\",\"version\":1,\"generation\":0,\"type\":4,\"registrations\":[]}",
		"{\"format\":\"twinsan-pr\",\"version\":1,\"generation\":0,\"type\":1,\"registrations\":[]}",
		"{\"format\":\"twinsan-pr\",\"version\":1,\"generation\":0,\"type\":0,\"registrations\":"
		"[{\"key\":\"0x0\",\"initiator\":\"iqn.a\",\"holder\":false}]}",
		"{\"format\":\"twinsan-pr\",\"version\":1,\"generation\":0,\"type\":0,\"registrations\":"
		"[{\"key\":\"0x1\",\"initiator\":\"iqn.a\",\"holder\":false},"
		"{\"key\":\"0x2\",\"initiator\":\"iqn.a\",\"isid\":\"000000000001\",\"holder\":false}]}",
	};
	char err[256];
	struct pr_state *pr;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		FILE *f = fopen(fx->state, "w");
		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		err[0] = '\0';
		assert_int_equal(pr_state_new(fx->state, fx->lu->ua, &pr, err, sizeof(err)), -1);
		assert_non_null(strstr(err, fx->state));
	}
	const char *good = "{\"format\":\"twinsan-pr\",\"version\":1,\"generation\":7,\"type\":8,\"registrations\":"
	                   "[{\"key\":\"0x1\",\"initiator\":\"iqn.a\",\"holder\":false}]}";
	FILE *f = fopen(fx->state, "w");
	assert_non_null(f);
	fputs(good, f);
	fclose(f);
	assert_int_equal(pr_state_new(fx->state, fx->lu->ua, &pr, err, sizeof(err)), 0);
	pr_state_free(pr);
}

static void test_aptpl_needs_a_state_path(void **state)
{
	struct fixture *fx = *state;

	close_lu(fx);
	open_lu(fx, NULL);
	assert_int_equal(prin(fx, &fx->a, IN_REPORT_CAPABILITIES, 8), GOOD);
	assert_int_equal(fx->task.data_in[2] & 0x01, 0); /* PTPL_C */
	assert_int_equal(get_be16(fx->task.data_in + 4), 0xea01);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, APTPL), CHECK);
	assert_sense(fx, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	assert_field(fx, false, 20, 0);
	assert_int_equal(key_count(fx), 0);
}

/* ---- RESERVE(6) / RELEASE(6) ---- */

static void test_reserve6_excludes_other_nexuses_until_released(void **state)
{
	struct fixture *fx = *state;
	const struct pr_state *pr = fx->lu->pr;

	assert_int_equal(reserve6(fx, &fx->a, false), GOOD);
	assert_int_equal(reserve6(fx, &fx->a, false), GOOD);
	assert_int_equal(reserve6(fx, &fx->b, false), CONFLICT);
	assert_true(pr_allows(pr, &fx->a, PR_GATE_WRITE));
	assert_false(pr_allows(pr, &fx->b, PR_GATE_READ));
	assert_false(pr_allows(pr, &fx->a2, 0));
	assert_true(pr_allows(pr, &fx->b, PR_GATE_RESV6_OK));
	assert_true(pr_allows(pr, &fx->b, PR_GATE_NEVER));
	/* persistent reservation commands conflict, the holder's too (SPC-2) */
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), CONFLICT);
	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), CONFLICT);
	assert_int_equal(prin(fx, &fx->a, IN_READ_KEYS, 8), CONFLICT);
	/* RELEASE from another nexus is GOOD and does nothing */
	assert_int_equal(reserve6(fx, &fx->b, true), GOOD);
	assert_false(pr_allows(pr, &fx->b, PR_GATE_READ));
	assert_int_equal(reserve6(fx, &fx->a, true), GOOD);
	assert_true(pr_allows(pr, &fx->b, PR_GATE_WRITE));
}

static void test_reserve6_ends_with_nexus_loss_and_reset(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(reserve6(fx, &fx->a, false), GOOD);
	pr_nexus_lost(fx->lu->pr, &fx->b);
	assert_false(pr_allows(fx->lu->pr, &fx->b, PR_GATE_READ));
	pr_nexus_lost(fx->lu->pr, &fx->a);
	assert_true(pr_allows(fx->lu->pr, &fx->b, PR_GATE_READ));
	assert_int_equal(reserve6(fx, &fx->b, false), GOOD);
	pr_reset(fx->lu->pr);
	assert_true(pr_allows(fx->lu->pr, &fx->a, PR_GATE_WRITE));
}

static void test_reserve6_under_persistent_reservation_follows_crh(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(prout(fx, &fx->a, SA_REGISTER, 0, 0, 0x1111, 0), GOOD);
	assert_int_equal(prout(fx, &fx->b, SA_REGISTER, 0, 0, 0x2222, 0), GOOD);
	assert_int_equal(prout(fx, &fx->a, SA_RESERVE, WE, 0x1111, 0, 0), GOOD);
	assert_int_equal(reserve6(fx, &fx->a, false), GOOD); /* holder: no effect */
	assert_int_equal(reserve6(fx, &fx->b, false), CONFLICT);
	assert_int_equal(reserve6(fx, &fx->c, true), CONFLICT);
	assert_true(pr_allows(fx->lu->pr, &fx->b, PR_GATE_READ)); /* no RESERVE(6) was made */
	assert_int_equal(prout(fx, &fx->a, SA_RELEASE, WE, 0x1111, 0, 0), GOOD);
	assert_true(pr_allows(fx->lu->pr, &fx->b, PR_GATE_WRITE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_register_lists_key_and_bumps_generation),
		T(test_register_with_wrong_key_conflicts),
		T(test_register_and_ignore_replaces_any_key),
		T(test_unregistering_an_unregistered_nexus_changes_nothing),
		T(test_parameter_list_must_be_24_bytes),
		T(test_invalid_service_actions_point_at_the_cdb_field),
		T(test_allocation_length_truncates_but_keeps_full_length_fields),
		T(test_reserve_needs_registration_and_key),
		T(test_reserve_reports_holder_and_type),
		T(test_all_registrants_reservation_reports_key_zero),
		T(test_each_type_grants_access_as_spc4_says),
		T(test_all_registrants_hold_the_reservation),
		T(test_registrants_only_holder_unregistering_releases_with_ua),
		T(test_exclusive_holder_unregistering_releases_silently),
		T(test_release_checks_type_and_notifies_registrants),
		T(test_clear_removes_everything_and_raises_preempted),
		T(test_preempt_without_reservation_removes_registration),
		T(test_preempt_errors),
		T(test_preempt_takes_over_the_reservation),
		T(test_preempt_and_abort_removes_others_raises_ua_and_aborts_their_tasks),
		T(test_preempt_all_registrants_with_key_zero_keeps_only_the_issuer),
		T(test_spec_i_pt_registers_listed_ports_and_full_status_shows_them),
		T(test_spec_i_pt_with_bad_transport_id_registers_nobody),
		T(test_transport_id_parser_rejects_malformed_ids),
		T(test_register_and_move_hands_the_reservation_over),
		T(test_register_and_move_refuses_bad_requests),
		T(test_registrations_beyond_the_limit_are_refused),
		T(test_aptpl_state_survives_reload),
		T(test_corrupt_state_file_is_refused_with_a_message),
		T(test_aptpl_needs_a_state_path),
		T(test_reserve6_excludes_other_nexuses_until_released),
		T(test_reserve6_ends_with_nexus_loss_and_reset),
		T(test_reserve6_under_persistent_reservation_follows_crh),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
