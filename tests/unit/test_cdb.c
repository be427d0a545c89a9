/* The opcode table as the initiator sees it: REPORT SUPPORTED OPERATION CODES lists
 * every command, its one-command usage data matches, and every CDB bit outside a
 * command's usage data is refused with a field pointer at exactly that byte and bit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_scsi_fixture.h"

struct listed {
	uint8_t opcode;
	uint16_t sa;
	bool has_sa;
	uint16_t cdb_len;
};

/* Reads the all-commands list; returns the number of commands. */
static size_t list_commands(struct fixture *f, struct listed *out, size_t max)
{
	uint8_t cdb[12] = { 0xa3, 0x0c, 0x00 };
	struct scsi_task t;
	size_t n = 0;

	put_be32(cdb + 6, 8192);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(get_be32(t.data_in) + 4, t.data_in_len);
	for (uint32_t off = 4; off < t.data_in_len && n < max; off += 8, n++) {
		const uint8_t *d = t.data_in + off;

		out[n] = (struct listed){ .opcode = d[0], .sa = get_be16(d + 2), .has_sa = d[5] & 0x01,
		                          .cdb_len = get_be16(d + 6) };
	}
	scsi_task_release(&t);
	return n;
}

static void usage_data_of(struct fixture *f, const struct listed *c, uint8_t *usage)
{
	uint8_t cdb[12] = { 0xa3, 0x0c };
	struct scsi_task t;

	cdb[2] = c->has_sa ? 2 : 1;
	cdb[3] = c->opcode;
	put_be16(cdb + 4, c->sa);
	put_be32(cdb + 6, 64);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[1] & 0x07, 3);
	assert_int_equal(get_be16(t.data_in + 2), c->cdb_len);
	assert_int_equal(t.data_in[4], c->opcode);
	memcpy(usage, t.data_in + 4, c->cdb_len);
	scsi_task_release(&t);
}

static void every_bit_outside_usage_data_is_pointed_at(void **state)
{
	struct fixture *f = *state;
	struct listed cmds[128];
	size_t n;

	clear_ua(f);
	n = list_commands(f, cmds, 128);
	assert_true(n > 40);
	for (size_t i = 0; i < n; i++) {
		uint8_t usage[16];

		usage_data_of(f, &cmds[i], usage);
		if (cmds[i].has_sa)
			assert_int_equal(usage[1] & 0x1f, 0x1f);
		for (uint16_t byte = 1; byte < cmds[i].cdb_len; byte++) {
			for (int bit = 7; bit >= 0; bit--) {
				uint8_t cdb[16] = { cmds[i].opcode };
				struct scsi_task t;

				if (usage[byte] & (1u << bit))
					continue;
				if (cmds[i].has_sa)
					cdb[1] = (uint8_t)cmds[i].sa;
				cdb[byte] |= (uint8_t)(1u << bit);
				run(f, &t, cdb, sizeof(cdb), NULL, 0);
				expect_sense(&t, 0x5, 0x2400);
				assert_int_equal(t.sense[15], 0xc8 | bit);
				assert_int_equal(get_be16(t.sense + 16), byte);
			}
		}
	}
}

static void unknown_service_action_points_at_byte1(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[16] = { 0x9e, 0x1f };
	struct scsi_task t;

	clear_ua(f);
	run(f, &t, cdb, sizeof(cdb), NULL, 0);
	expect_sense(&t, 0x5, 0x2400);
	assert_int_equal(get_be16(t.sense + 16), 1);
}

static void rsoc_option1_on_a_service_action_opcode_is_invalid(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[12] = { 0xa3, 0x0c, 0x01, 0x9e, 0, 0, 0, 0, 1, 0 };
	struct scsi_task t;

	clear_ua(f);
	run(f, &t, cdb, sizeof(cdb), NULL, 0);
	expect_sense(&t, 0x5, 0x2400);
}

static void rsoc_rctd_adds_timeouts_descriptors(void **state)
{
	struct fixture *f = *state;
	uint8_t cdb[12] = { 0xa3, 0x0c, 0x80 };
	struct scsi_task t;

	clear_ua(f);
	put_be32(cdb + 6, 8192);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal((t.data_in_len - 4) % 20, 0);
	assert_int_equal(t.data_in[4 + 5] & 0x02, 0x02); /* CTDP */
	assert_int_equal(get_be16(t.data_in + 4 + 8), 10);
	scsi_task_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_bit_outside_usage_data_is_pointed_at, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_service_action_points_at_byte1, setup, teardown),
		cmocka_unit_test_setup_teardown(rsoc_option1_on_a_service_action_opcode_is_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(rsoc_rctd_adds_timeouts_descriptors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
