/* Sense data layout: fixed and descriptor formats, field pointers with and without a
 * bit, and INFORMATION that does or does not fit the fixed format's four bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/util.h"
#include "scsi/sense.h"

static void fixed_format_field_pointer_with_bit(void **state)
{
	struct scsi_task t;

	memset(&t, 0, sizeof(t));
	sense_set_field(&t, false, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 9, 3);
	assert_int_equal(t.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(t.sense_len, 18);
	assert_int_equal(t.sense[0], 0x70);
	assert_int_equal(t.sense[2], 0x05);
	assert_int_equal(t.sense[7], 10);
	assert_int_equal(t.sense[12], 0x24);
	assert_int_equal(t.sense[13], 0x00);
	assert_int_equal(t.sense[15], 0x80 | 0x40 | 0x08 | 3);
	assert_int_equal(get_be16(t.sense + 16), 9);
}

static void parameter_list_pointer_without_bit(void **state)
{
	struct scsi_task t;

	memset(&t, 0, sizeof(t));
	sense_set_field(&t, false, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, 300, -1);
	assert_int_equal(t.sense[15], 0x80);
	assert_int_equal(get_be16(t.sense + 16), 300);
}

static void descriptor_format_carries_information_and_field_pointer(void **state)
{
	struct scsi_task t;

	memset(&t, 0, sizeof(t));
	sense_set_info(&t, true, SENSE_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY, 0x123456789ull);
	assert_int_equal(t.sense[0], 0x72);
	assert_int_equal(t.sense[1], 0x0e);
	assert_int_equal(t.sense[2], 0x1d);
	assert_int_equal(t.sense[7], 12);
	assert_int_equal(t.sense[8], 0x00);
	assert_int_equal(t.sense[9], 0x0a);
	assert_int_equal(t.sense[10], 0x80);
	assert_true(get_be64(t.sense + 12) == 0x123456789ull);
	assert_int_equal(t.sense_len, 20);

	sense_set_field(&t, true, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 1, 7);
	assert_int_equal(t.sense[8], 0x02);
	assert_int_equal(t.sense[9], 0x06);
	assert_int_equal(t.sense[12], 0xcf);
	assert_int_equal(get_be16(t.sense + 13), 1);
}

static void fixed_format_information_too_big_is_not_valid(void **state)
{
	struct scsi_task t;

	memset(&t, 0, sizeof(t));
	sense_set_info(&t, false, SENSE_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY, 1ull << 33);
	assert_int_equal(t.sense[0], 0x70);
	sense_set_info(&t, false, SENSE_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY, 4096);
	assert_int_equal(t.sense[0], 0xf0);
	assert_int_equal(get_be32(t.sense + 3), 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixed_format_field_pointer_with_bit),
		cmocka_unit_test(parameter_list_pointer_without_bit),
		cmocka_unit_test(descriptor_format_carries_information_and_field_pointer),
		cmocka_unit_test(fixed_format_information_too_big_is_not_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
