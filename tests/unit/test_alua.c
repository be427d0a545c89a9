/* Implicit ALUA: INQUIRY says TPGS 01b; REPORT TARGET PORT GROUPS in both formats and cut
 * by the allocation length; the gate each asymmetric access state puts on commands; the
 * unit attention on a state change and only on one; the iSCSI target's port identity. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "iscsi/target.h"
#include "test_scsi_fixture.h"

static const uint8_t tur[6] = { 0 };

/* RTPG with PARAMETER DATA FORMAT `format` and allocation length `alloc`. */
static void rtpg(struct fixture *f, struct scsi_task *t, const struct scsi_itn *itn, uint8_t format,
                 uint32_t alloc)
{
	uint8_t cdb[12] = { 0xa3, (uint8_t)(format << 5 | 0x0a) };

	put_be32(cdb + 6, alloc);
	run_on(f, t, itn, cdb, sizeof(cdb), NULL, 0);
}

/* A provider reading its answer from the test: two nodes, two ports each. */
static void two_nodes(void *ctx, struct scsi_port_groups *out) { *out = *(const struct scsi_port_groups *)ctx; }

static struct scsi_port_groups pair(enum scsi_alua_state local, enum scsi_alua_state partner)
{
	struct scsi_port_groups g = {
		.n_groups = 2,
		.local = 1,
		.transition_s = 5,
		.groups = {
			{ .id = 1, .state = local, .n_ports = 2, .ports = { 1, 2 } },
			{ .id = 2, .state = partner, .n_ports = 2, .ports = { 0x101, 0x102 } },
		},
	};
	return g;
}

static void inquiry_reports_implicit_tpgs(void **state)
{
	struct fixture *f = *state;
	const uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 };
	struct scsi_task t;

	assert_int_equal(run(f, &t, inq, 6, NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[5] & 0x30, 0x10);
	scsi_task_release(&t);
}

static void plain_lun_reports_one_active_group_with_its_port(void **state)
{
	struct fixture *f = *state;
	struct scsi_task t;

	clear_ua(f);
	rtpg(f, &t, &f->itn, 0, 1024);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 4 + 8 + 4);
	assert_int_equal(get_be32(t.data_in), 12);
	assert_int_equal(t.data_in[4] & 0x8f, SCSI_ALUA_ACTIVE_OPTIMIZED); /* PREF off */
	assert_int_equal(t.data_in[5], 0x8f);                              /* T, U, S, AN, AO */
	assert_int_equal(get_be16(t.data_in + 6), 1);
	assert_int_equal(t.data_in[9], 0);                                 /* no status */
	assert_int_equal(t.data_in[11], 1);
	assert_int_equal(get_be16(t.data_in + 14), f->itn.relative_port);
	scsi_task_release(&t);
}

/* Without a provider the one group is the one the nexuses' target port is in. */
static void plain_group_takes_the_port_group_of_its_nexuses(void **state)
{
	struct fixture *f = *state;
	struct scsi_task t;

	f->itn.relative_port = 0x101;
	f->itn.port_group = 2;
	f->other.relative_port = 0x102;
	f->other.port_group = 2;
	clear_ua(f);
	rtpg(f, &t, &f->itn, 0, 1024);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 4 + 8 + 2 * 4);
	assert_int_equal(get_be16(t.data_in + 6), 2);
	assert_int_equal(get_be16(t.data_in + 14), 0x101);
	assert_int_equal(get_be16(t.data_in + 18), 0x102);
	scsi_task_release(&t);
	/* Learning the id is no state change. */
	scsi_lu_port_groups_changed(f->lu);
	assert_int_equal(run(f, &t, tur, 6, NULL, 0), SCSI_STATUS_GOOD);
}

static void extended_header_carries_format_and_transition_time(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g = pair(SCSI_ALUA_ACTIVE_OPTIMIZED, SCSI_ALUA_STANDBY);
	struct scsi_task t;

	scsi_lu_set_port_groups(f->lu, two_nodes, &g);
	clear_ua(f);
	rtpg(f, &t, &f->itn, 1, 1024);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 8 + 2 * (8 + 2 * 4));
	assert_int_equal(get_be32(t.data_in), t.data_in_len - 4);
	assert_int_equal(t.data_in[4], 0x10);
	assert_int_equal(t.data_in[5], 5);
	assert_int_equal(get_be16(t.data_in + 8 + 2), 1);
	assert_int_equal(get_be16(t.data_in + 8 + 16 + 2), 2);
	assert_int_equal(t.data_in[8 + 16] & 0x0f, SCSI_ALUA_STANDBY);
	assert_int_equal(get_be16(t.data_in + 8 + 16 + 8 + 6), 0x102);
	scsi_task_release(&t);
}

static void allocation_length_cuts_the_report(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g = pair(SCSI_ALUA_ACTIVE_OPTIMIZED, SCSI_ALUA_ACTIVE_OPTIMIZED);
	struct scsi_task t;

	scsi_lu_set_port_groups(f->lu, two_nodes, &g);
	clear_ua(f);
	rtpg(f, &t, &f->itn, 0, 4);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 4);
	assert_int_equal(get_be32(t.data_in), 2 * (8 + 2 * 4)); /* the whole length, not the cut */
	scsi_task_release(&t);
	rtpg(f, &t, &f->itn, 0, 10);
	assert_int_equal(t.data_in_len, 10);
	scsi_task_release(&t);
	rtpg(f, &t, &f->itn, 0, 0);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 0);
	scsi_task_release(&t);
}

static void unknown_parameter_data_format_is_invalid_field(void **state)
{
	struct fixture *f = *state;
	struct scsi_task t;

	clear_ua(f);
	rtpg(f, &t, &f->itn, 2, 1024);
	expect_sense(&t, 0x5, 0x2400);
	assert_int_equal(get_be16(t.sense + 16), 1);
}

/* Runs cdb in the local group's state and checks GOOD or NOT READY with asc. */
static void expect_gate(struct fixture *f, const uint8_t *cdb, size_t len, uint16_t asc)
{
	struct scsi_task t;

	run(f, &t, cdb, len, NULL, 0);
	if (asc == 0)
		assert_int_equal(t.status, SCSI_STATUS_GOOD);
	else
		expect_sense(&t, 0x2, asc);
	scsi_task_release(&t);
}

static const uint8_t inquiry[6] = { 0x12, 0, 0, 0, 96, 0 };
static const uint8_t report_luns[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
static const uint8_t mode_sense6[6] = { 0x1a, 0, 0x3f, 0, 0xff, 0 };
static const uint8_t read_capacity10[10] = { 0x25 };
static const uint8_t pr_in_read_keys[10] = { 0x5e, 0, 0, 0, 0, 0, 0, 0x01, 0, 0 };
static const uint8_t read10_cdb[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
static const uint8_t rtpg_cdb[12] = { 0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };

/* Sets the local group's state and takes both nexuses' unit attention (POWER ON, or the
 * state change), which comes before any NOT READY. */
static void set_local_state(struct fixture *f, struct scsi_port_groups *g, enum scsi_alua_state s)
{
	struct scsi_task t;

	*g = pair(s, SCSI_ALUA_ACTIVE_OPTIMIZED);
	scsi_lu_set_port_groups(f->lu, two_nodes, g);
	run_on(f, &t, &f->itn, tur, 6, NULL, 0);
	assert_int_equal(t.sense[2] & 0x0f, 0x6);
	run_on(f, &t, &f->other, tur, 6, NULL, 0);
	assert_int_equal(t.sense[2] & 0x0f, 0x6);
}

static void standby_runs_only_what_spc_lists(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g;

	set_local_state(f, &g, SCSI_ALUA_STANDBY);
	expect_gate(f, tur, 6, 0x040b);
	expect_gate(f, read10_cdb, 10, 0x040b);
	expect_gate(f, inquiry, 6, 0);
	expect_gate(f, report_luns, 12, 0);
	expect_gate(f, rtpg_cdb, 12, 0);
	expect_gate(f, mode_sense6, 6, 0);
	expect_gate(f, pr_in_read_keys, 10, 0);
	expect_gate(f, read_capacity10, 10, 0);
}

static void unavailable_and_transitioning_run_only_the_inventory(void **state)
{
	struct fixture *f = *state;
	const enum scsi_alua_state states[] = { SCSI_ALUA_UNAVAILABLE, SCSI_ALUA_TRANSITIONING };
	const uint16_t ascs[] = { 0x040c, 0x040a };
	struct scsi_port_groups g;

	for (unsigned i = 0; i < 2; i++) {
		set_local_state(f, &g, states[i]);
		expect_gate(f, tur, 6, ascs[i]);
		expect_gate(f, read10_cdb, 10, ascs[i]);
		expect_gate(f, mode_sense6, 6, ascs[i]);
		expect_gate(f, pr_in_read_keys, 10, ascs[i]);
		expect_gate(f, inquiry, 6, 0);
		expect_gate(f, report_luns, 12, 0);
		expect_gate(f, rtpg_cdb, 12, 0);
	}
}

static void request_sense_reports_why_the_port_is_not_ready(void **state)
{
	struct fixture *f = *state;
	const uint8_t request_sense[6] = { 0x03, 0, 0, 0, 252, 0 };
	struct scsi_port_groups g;
	struct scsi_task t;

	set_local_state(f, &g, SCSI_ALUA_UNAVAILABLE);
	assert_int_equal(run(f, &t, request_sense, 6, NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[2] & 0x0f, 0x2);
	assert_int_equal(t.data_in[12] << 8 | t.data_in[13], 0x040c);
	scsi_task_release(&t);
}

static void active_non_optimized_runs_everything(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g;

	set_local_state(f, &g, SCSI_ALUA_ACTIVE_NON_OPTIMIZED);
	expect_gate(f, tur, 6, 0);
	expect_gate(f, read10_cdb, 10, 0);
}

/* A nexus through the partner's ports is gated by the partner's group, not the local one. */
static void nexus_follows_the_group_of_its_port(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g = pair(SCSI_ALUA_ACTIVE_OPTIMIZED, SCSI_ALUA_STANDBY);
	struct scsi_task t;

	f->other.relative_port = 0x101;
	f->other.port_group = 2;
	f->itn.port_group = 1;
	scsi_lu_set_port_groups(f->lu, two_nodes, &g);
	clear_ua(f);
	run_on(f, &t, &f->other, tur, 6, NULL, 0);
	expect_sense(&t, 0x2, 0x040b);
	assert_int_equal(run(f, &t, tur, 6, NULL, 0), SCSI_STATUS_GOOD);
}

static void state_change_raises_ua_on_every_nexus_once(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g = pair(SCSI_ALUA_ACTIVE_OPTIMIZED, SCSI_ALUA_ACTIVE_OPTIMIZED);
	struct scsi_task t;

	scsi_lu_set_port_groups(f->lu, two_nodes, &g);
	clear_ua(f);
	/* Nothing changed: no unit attention. */
	scsi_lu_port_groups_changed(f->lu);
	assert_int_equal(run(f, &t, tur, 6, NULL, 0), SCSI_STATUS_GOOD);
	run_on(f, &t, &f->other, tur, 6, NULL, 0);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);

	g.groups[1].state = SCSI_ALUA_TRANSITIONING;
	scsi_lu_port_groups_changed(f->lu);
	scsi_lu_port_groups_changed(f->lu);
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2a06);
	assert_int_equal(run(f, &t, tur, 6, NULL, 0), SCSI_STATUS_GOOD);
	run_on(f, &t, &f->other, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2a06);

	/* The changed group says its state was altered implicitly; the other does not. */
	rtpg(f, &t, &f->itn, 0, 1024);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[4 + 5], 0x00);
	assert_int_equal(t.data_in[4 + 16 + 5], 0x02);
	scsi_task_release(&t);
}

static void bad_provider_groups_are_dropped_not_reported(void **state)
{
	struct fixture *f = *state;
	struct scsi_port_groups g = pair(SCSI_ALUA_ACTIVE_OPTIMIZED, (enum scsi_alua_state)7);
	struct scsi_task t;

	g.groups[0].n_ports = 1000;
	scsi_lu_set_port_groups(f->lu, two_nodes, &g);
	clear_ua(f);
	rtpg(f, &t, &f->itn, 0, 65535);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 4 + 8 + 4 * SCSI_GROUP_PORTS_MAX);
	scsi_task_release(&t);
}

/* A store whose access the test sets: only access() is ever called. */
static enum store_access test_access;

static enum store_access access_of(const void *impl) { return test_access; }
static void no_close(void *impl) {}

static void store_that_stops_serving_is_noticed_without_a_call(void **state)
{
	static const struct store_ops ops = { .access = access_of, .close = no_close };
	const struct store_caps caps = { .size = 1 << 20, .alignment = 512 };
	struct scsi_lu_params lp = { .block_size = BS, .uuid = { 9 } };
	struct fixture *f = *state;
	struct store *s = store_new(&ops, NULL, &caps);
	struct scsi_target *fixture_target = f->target, *target;
	struct scsi_port_groups g;
	struct scsi_lu *lu;
	struct scsi_task t;
	char err[128];

	assert_non_null(s);
	test_access = STORE_ACCESS_OK;
	assert_int_equal(scsi_lu_new(&lp, s, &lu, err, sizeof(err)), 0);
	assert_int_equal(scsi_target_new(&target), 0);
	assert_int_equal(scsi_target_add_lu(target, 0, lu), 0);
	f->target = target;
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2900);
	assert_int_equal(run(f, &t, tur, 6, NULL, 0), SCSI_STATUS_GOOD);

	test_access = STORE_ACCESS_UNAVAILABLE;
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2a06);
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x2, 0x040c);
	rtpg(f, &t, &f->itn, 0, 1024);
	assert_int_equal(t.data_in[4] & 0x0f, SCSI_ALUA_UNAVAILABLE);
	scsi_task_release(&t);

	test_access = STORE_ACCESS_TRANSITIONING;
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2a06);
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x2, 0x040a);

	/* Nor does a provider that calls the nexus's group active override the store. */
	g = pair(SCSI_ALUA_ACTIVE_OPTIMIZED, SCSI_ALUA_ACTIVE_OPTIMIZED);
	f->itn.port_group = 2;
	scsi_lu_set_port_groups(lu, two_nodes, &g);
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2a06); /* a group appeared */
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x2, 0x040a);

	f->target = fixture_target;
	scsi_target_free(target);
	scsi_lu_free(lu);
	store_close(s);
}

static void target_port_identity_offsets_the_relative_port(void **state)
{
	struct iscsi_registry *reg;
	struct iscsi_target *t;
	uint16_t port, group;

	assert_int_equal(iscsi_registry_new(&reg), 0);
	t = iscsi_target_add(reg, "iqn.2026-11.org.twinsan:t", "");
	assert_non_null(t);
	iscsi_target_port_identity(t, 0, &port, &group);
	assert_int_equal(port, 1);
	assert_int_equal(group, 1);
	iscsi_target_port_identity(t, 3, &port, &group);
	assert_int_equal(port, 3);
	iscsi_target_set_port_identity(t, 0x100, 2);
	iscsi_target_port_identity(t, 1, &port, &group);
	assert_int_equal(port, 0x101);
	assert_int_equal(group, 2);
	iscsi_target_set_port_identity(t, 0xffff, 2);
	iscsi_target_port_identity(t, 1, &port, &group);
	assert_int_not_equal(port, 0);
	iscsi_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(inquiry_reports_implicit_tpgs, setup, teardown),
		cmocka_unit_test_setup_teardown(plain_lun_reports_one_active_group_with_its_port, setup, teardown),
		cmocka_unit_test_setup_teardown(plain_group_takes_the_port_group_of_its_nexuses, setup, teardown),
		cmocka_unit_test_setup_teardown(extended_header_carries_format_and_transition_time, setup, teardown),
		cmocka_unit_test_setup_teardown(allocation_length_cuts_the_report, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_parameter_data_format_is_invalid_field, setup, teardown),
		cmocka_unit_test_setup_teardown(standby_runs_only_what_spc_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(unavailable_and_transitioning_run_only_the_inventory, setup, teardown),
		cmocka_unit_test_setup_teardown(request_sense_reports_why_the_port_is_not_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(active_non_optimized_runs_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(nexus_follows_the_group_of_its_port, setup, teardown),
		cmocka_unit_test_setup_teardown(state_change_raises_ua_on_every_nexus_once, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_provider_groups_are_dropped_not_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(store_that_stops_serving_is_noticed_without_a_call, setup, teardown),
		cmocka_unit_test(target_port_identity_offsets_the_relative_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
