/* Mode pages through MODE SENSE/SELECT: changeable masks, saved values refused, fixed
 * bits guarded with a parameter-list field pointer, WCE taking effect, and block
 * descriptors in short and long form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_scsi_fixture.h"

/* MODE SENSE(6) of one page with page control pc; copies the reply to out. */
static uint32_t sense6(struct fixture *f, uint8_t pc, uint8_t page, bool dbd, uint8_t *out)
{
	uint8_t cdb[6] = { 0x1a, dbd ? 0x08 : 0, (uint8_t)(pc << 6 | page), 0, 255, 0 };
	struct scsi_task t;
	uint32_t len;

	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	len = t.data_in_len;
	memcpy(out, t.data_in, len);
	scsi_task_release(&t);
	return len;
}

static void changeable_values_show_what_mode_select_may_change(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[256];

	clear_ua(f);
	assert_int_equal(sense6(f, 1, 0x08, true, buf), 4 + 20);
	assert_int_equal(buf[4], 0x08);
	assert_int_equal(buf[4 + 2], 0x04); /* WCE */
	assert_int_equal(sense6(f, 1, 0x0a, true, buf), 4 + 12);
	assert_int_equal(buf[4 + 2], 0x04); /* D_SENSE */
	assert_int_equal(buf[4 + 4], 0x08); /* SWP */
	assert_int_equal(buf[4 + 5], 0x00); /* TAS stays 0 */
}

static void saved_values_are_not_supported(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[6] = { 0x1a, 0, 0xc0 | 0x3f, 0, 255, 0 };
	struct scsi_task t;

	clear_ua(f);
	run(f, &t, cdb, sizeof(cdb), NULL, 0);
	expect_sense(&t, 0x5, 0x3900);
}

static void all_pages_with_block_descriptor(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[256];
	uint32_t len;

	clear_ua(f);
	len = sense6(f, 0, 0x3f, false, buf);
	assert_int_equal(len, 4 + 8 + 20 + 12 + 12);
	assert_int_equal(buf[0], len - 1);
	assert_int_equal(buf[3], 8);
	assert_int_equal(get_be32(buf + 4), BLOCKS);
	assert_int_equal(get_be24(buf + 4 + 5), BS);
	assert_int_equal(buf[2] & 0x10, 0x10); /* DPOFUA */
}

static void mode_sense10_long_lba_descriptor(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[10] = { 0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0 };
	struct scsi_task t;

	clear_ua(f);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 8 + 16 + 20);
	assert_int_equal(t.data_in[4] & 0x01, 0x01);
	assert_int_equal(get_be16(t.data_in + 6), 16);
	assert_true(get_be64(t.data_in + 8) == BLOCKS);
	scsi_task_release(&t);
}

static void changing_a_fixed_bit_points_into_the_parameter_list(void **state)
{
	struct fixture *f = *state;
	uint8_t list[4 + 20], cdb[6] = { 0x15, 0x10, 0, 0, sizeof(list), 0 };
	struct scsi_task t;

	clear_ua(f);
	sense6(f, 0, 0x08, true, list);
	list[0] = 0;
	list[4 + 3] ^= 0x01; /* caching page byte 3 is not changeable */
	run(f, &t, cdb, sizeof(cdb), list, sizeof(list));
	expect_sense(&t, 0x5, 0x2600);
	assert_int_equal(t.sense[15], 0x80 | 0x08 | 0); /* parameter list, bit 0 */
	assert_int_equal(get_be16(t.sense + 16), 4 + 3);
}

static void clearing_wce_takes_effect(void **state)
{
	struct fixture *f = *state;
	uint8_t list[4 + 20], buf[64], cdb[6] = { 0x15, 0x10, 0, 0, sizeof(list), 0 };
	struct scsi_task t;

	clear_ua(f);
	sense6(f, 0, 0x08, true, list);
	assert_int_equal(list[4 + 2] & 0x04, 0x04);
	list[0] = 0;
	list[4 + 2] &= (uint8_t)~0x04;
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), list, sizeof(list)), SCSI_STATUS_GOOD);
	sense6(f, 0, 0x08, true, buf);
	assert_int_equal(buf[4 + 2] & 0x04, 0);
	sense6(f, 2, 0x08, true, buf);
	assert_int_equal(buf[4 + 2] & 0x04, 0x04); /* the default is unchanged */
}

static void short_parameter_list_is_a_length_error(void **state)
{
	struct fixture *f = *state;
	uint8_t list[2] = { 0 }, cdb[6] = { 0x15, 0x10, 0, 0, sizeof(list), 0 };
	struct scsi_task t;

	clear_ua(f);
	run(f, &t, cdb, sizeof(cdb), list, sizeof(list));
	expect_sense(&t, 0x5, 0x1a00);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(changeable_values_show_what_mode_select_may_change, setup, teardown),
		cmocka_unit_test_setup_teardown(saved_values_are_not_supported, setup, teardown),
		cmocka_unit_test_setup_teardown(all_pages_with_block_descriptor, setup, teardown),
		cmocka_unit_test_setup_teardown(mode_sense10_long_lba_descriptor, setup, teardown),
		cmocka_unit_test_setup_teardown(changing_a_fixed_bit_points_into_the_parameter_list, setup, teardown),
		cmocka_unit_test_setup_teardown(clearing_wce_takes_effect, setup, teardown),
		cmocka_unit_test_setup_teardown(short_parameter_list_is_a_length_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
