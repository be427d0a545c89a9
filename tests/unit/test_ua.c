/* Unit attention queues: first contact reports POWER ON, conditions come out oldest
 * first and only once, other nexuses are untouched, and a forgotten nexus starts afresh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "scsi/ua.h"

static struct scsi_itn nexus(uint8_t isid_last)
{
	struct scsi_itn itn;

	memset(&itn, 0, sizeof(itn));
	strcpy(itn.initiator_name, "iqn.2026-11.org.test:i");
	strcpy(itn.target_name, "iqn.2026-11.org.twinsan:t");
	itn.isid[5] = isid_last;
	itn.tpgt = 1;
	return itn;
}

static void first_contact_reports_power_on_once(void **state)
{
	struct ua_set *ua;
	struct scsi_itn a = nexus(1);
	enum sense_asc asc;

	assert_int_equal(ua_set_new(&ua), 0);
	assert_true(ua_pending(ua, &a));
	assert_true(ua_take(ua, &a, &asc));
	assert_int_equal(asc, ASC_POWER_ON_RESET);
	assert_false(ua_pending(ua, &a));
	assert_false(ua_take(ua, &a, &asc));
	ua_set_free(ua);
}

static void conditions_come_out_oldest_first_without_duplicates(void **state)
{
	struct ua_set *ua;
	struct scsi_itn a = nexus(1);
	enum sense_asc asc;

	assert_int_equal(ua_set_new(&ua), 0);
	ua_take(ua, &a, &asc);
	ua_raise(ua, &a, ASC_MODE_PARAMETERS_CHANGED);
	ua_raise(ua, &a, ASC_CAPACITY_DATA_HAS_CHANGED);
	ua_raise(ua, &a, ASC_MODE_PARAMETERS_CHANGED);
	assert_true(ua_take(ua, &a, &asc));
	assert_int_equal(asc, ASC_MODE_PARAMETERS_CHANGED);
	assert_true(ua_take(ua, &a, &asc));
	assert_int_equal(asc, ASC_CAPACITY_DATA_HAS_CHANGED);
	assert_false(ua_take(ua, &a, &asc));
	ua_set_free(ua);
}

static void raise_all_skips_the_excepted_nexus(void **state)
{
	struct ua_set *ua;
	struct scsi_itn a = nexus(1), b = nexus(2);
	enum sense_asc asc;

	assert_int_equal(ua_set_new(&ua), 0);
	ua_take(ua, &a, &asc);
	ua_take(ua, &b, &asc);
	assert_false(ua_same_nexus(&a, &b));
	ua_raise_all(ua, &a, ASC_RESERVATIONS_PREEMPTED);
	assert_false(ua_pending(ua, &a));
	assert_true(ua_take(ua, &b, &asc));
	assert_int_equal(asc, ASC_RESERVATIONS_PREEMPTED);
	ua_set_free(ua);
}

static void forgotten_nexus_gets_power_on_again(void **state)
{
	struct ua_set *ua;
	struct scsi_itn a = nexus(1);
	enum sense_asc asc;

	assert_int_equal(ua_set_new(&ua), 0);
	ua_take(ua, &a, &asc);
	ua_raise(ua, &a, ASC_MODE_PARAMETERS_CHANGED);
	ua_forget(ua, &a);
	assert_true(ua_take(ua, &a, &asc));
	assert_int_equal(asc, ASC_POWER_ON_RESET);
	assert_false(ua_pending(ua, &a));
	ua_set_free(ua);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_contact_reports_power_on_once),
		cmocka_unit_test(conditions_come_out_oldest_first_without_duplicates),
		cmocka_unit_test(raise_all_skips_the_excepted_nexus),
		cmocka_unit_test(forgotten_nexus_gets_power_on_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
