/* The status object of an HA device as the API shows it: every field of struct
 * ha_device_status, named as docs/twinctl.md says, progress and ETA derived right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mgmt/api_ha.h"

static void fill(struct ha_device_status *st)
{
	memset(st, 0, sizeof(*st));
	strcpy(st->name, "HA1");
	st->role = HA_ROLE_SECONDARY;
	st->failover = HA_FAILOVER_MAJORITY;
	st->state = HA_SYNC_SYNCHRONIZING;
	st->reason = HA_REASON_NONE;
	st->access = STORE_ACCESS_TRANSITIONING;
	st->partner_connected = true;
	st->partner_alive = true;
	st->size = 1 << 30;
	st->sync_total_bytes = 400 << 20;
	st->sync_done_bytes = 100 << 20;
	st->sync_rate_bps = 100 << 20;
	st->dirty_bytes = 300 << 20;
	st->resync_received_bytes = 100 << 20;
	st->gen.current = 0x1122334455667788ull;
	st->gen.flags = GENERATION_INCONSISTENT;
	st->n_links = 2;
	st->links[0] = (struct ha_link_status){ PROTO_LINK_SYNC, 0, true, 3 };
	st->links[1] = (struct ha_link_status){ PROTO_LINK_HEARTBEAT, 1, false, 0 };
	st->verify_total_bytes = 1 << 30;
}

static void test_synchronizing_device(void **state)
{
	struct ha_device_status st;
	json_t *j, *sync, *links;

	(void)state;
	fill(&st);
	j = mgmt_ha_status_json(&st);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "HA1");
	assert_string_equal(json_string_value(json_object_get(j, "role")), "secondary");
	assert_string_equal(json_string_value(json_object_get(j, "failover")), "majority");
	assert_string_equal(json_string_value(json_object_get(j, "state")), ha_sync_state_name(HA_SYNC_SYNCHRONIZING));
	assert_string_equal(json_string_value(json_object_get(j, "access")), "transitioning");
	assert_true(json_is_true(json_object_get(j, "partner_connected")));
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 1 << 30);
	assert_int_equal(json_integer_value(json_object_get(j, "dirty_bytes")), 300 << 20);
	sync = json_object_get(j, "sync");
	assert_true(json_number_value(json_object_get(sync, "percent")) == 25.0);
	assert_int_equal(json_integer_value(json_object_get(sync, "eta_seconds")), 3);
	assert_int_equal(json_integer_value(json_object_get(sync, "rate_bps")), 100 << 20);
	assert_false(json_is_true(json_object_get(sync, "source")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "resync_tally"), "received_bytes")),
	                 100 << 20);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "generation"), "current")),
	                    "1122334455667788");
	assert_true(json_is_true(json_object_get(json_object_get(j, "generation"), "inconsistent")));
	links = json_object_get(j, "links");
	assert_int_equal(json_array_size(links), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(links, 0), "kind")), "sync");
	assert_true(json_is_true(json_object_get(json_array_get(links, 0), "up")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(links, 1), "kind")), "heartbeat");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(links, 1), "index")), 1);
	assert_false(json_is_true(json_object_get(json_object_get(j, "verify"), "running")));
	json_decref(j);
}

/* No rate yet, or not synchronizing: the ETA is unknown (null), not zero or a division. */
static void test_eta_unknown_without_a_rate(void **state)
{
	struct ha_device_status st;
	json_t *j;

	(void)state;
	fill(&st);
	st.sync_rate_bps = 0;
	j = mgmt_ha_status_json(&st);
	assert_true(json_is_null(json_object_get(json_object_get(j, "sync"), "eta_seconds")));
	json_decref(j);
	fill(&st);
	st.state = HA_SYNC_SYNCHRONIZED;
	st.sync_total_bytes = 0;
	j = mgmt_ha_status_json(&st);
	assert_true(json_is_null(json_object_get(json_object_get(j, "sync"), "eta_seconds")));
	assert_true(json_number_value(json_object_get(json_object_get(j, "sync"), "percent")) == 0.0);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synchronizing_device),
		cmocka_unit_test(test_eta_unknown_without_a_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
