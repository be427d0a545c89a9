/* The Prometheus text: HELP and TYPE once per family, label values escaped, histogram
 * buckets cumulative and ending in +Inf equal to the count, HA device and link samples;
 * and how the LU statistics count commands into them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ha/meta.h"
#include "mgmt/metrics.h"
#include "scsi/lu_stats.h"
#include "scsi/scsi.h"

static char *render(const struct metrics_snapshot *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	metrics_render(f, s);
	assert_int_equal(fclose(f), 0);
	return text;
}

static unsigned count_of(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Fails unless every one of the n lines is in text. */
static void expect_lines(const char *text, const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strstr(text, lines[i]))
			fail_msg("missing: %s", lines[i]);
}

static void families_have_one_help_and_type(void **state)
{
	struct metrics_lun luns[2] = {
		{ .target = "iqn.a", .lun = 0, .stats = { .commands = 7, .written_bytes = 4096 } },
		{ .target = "iqn.b", .lun = 3, .device = "ha0", .stats = { .commands = 2 } },
	};
	struct metrics_snapshot s = { .version = "1.2", .uptime_ms = 1500, .luns = luns, .n_luns = 2 };
	char *text = render(&s);

	assert_int_equal(count_of(text, "# TYPE twinsan_lun_commands_total counter\n"), 1);
	assert_int_equal(count_of(text, "# HELP twinsan_lun_commands_total "), 1);
	assert_int_equal(count_of(text, "# TYPE twinsan_lun_write_latency_seconds histogram\n"), 1);
	assert_non_null(strstr(text, "twinsan_lun_commands_total{target=\"iqn.a\",lun=\"0\",device=\"\"} 7\n"));
	assert_non_null(strstr(text, "twinsan_lun_commands_total{target=\"iqn.b\",lun=\"3\",device=\"ha0\"} 2\n"));
	assert_non_null(strstr(text, "twinsan_lun_written_bytes_total{target=\"iqn.a\",lun=\"0\",device=\"\"} 4096\n"));
	assert_non_null(strstr(text, "twinsan_build_info{version=\"1.2\"} 1\n"));
	assert_non_null(strstr(text, "twinsan_uptime_seconds 1.500000\n"));
	/* Both LUNs' samples follow their family's header before the next family starts. */
	assert_true(strstr(text, "twinsan_lun_commands_total{target=\"iqn.b\"") <
	            strstr(text, "# HELP twinsan_lun_read_commands_total"));
	free(text);
}

static void label_values_are_escaped(void **state)
{
	struct metrics_lun lun = { .target = "a\"b\\c\nd", .lun = 1 };
	struct metrics_snapshot s = { .version = "v", .luns = &lun, .n_luns = 1 };
	char *text = render(&s);

	assert_non_null(strstr(text, "twinsan_lun_errors_total{target=\"a\\\"b\\\\c\\nd\",lun=\"1\",device=\"\"} 0\n"));
	assert_null(strstr(text, "a\"b"));
	free(text);
}

static void histogram_buckets_are_cumulative(void **state)
{
	struct metrics_lun lun = { .target = "t", .lun = 0 };
	struct metrics_snapshot s = { .version = "v", .luns = &lun, .n_luns = 1 };
	static const char *const buckets[] = {
		"twinsan_lun_read_latency_seconds_bucket{target=\"t\",lun=\"0\",device=\"\",le=\"0.000016\"} 2\n",
		"le=\"0.000032\"} 3\n",
		"le=\"0.000512\"} 3\n",
		"le=\"0.001024\"} 4\n",
		"le=\"8.388608\"} 4\n",
		"twinsan_lun_read_latency_seconds_bucket{target=\"t\",lun=\"0\",device=\"\",le=\"+Inf\"} 5\n",
		"twinsan_lun_read_latency_seconds_count{target=\"t\",lun=\"0\",device=\"\"} 5\n",
		"twinsan_lun_read_latency_seconds_sum{target=\"t\",lun=\"0\",device=\"\"} 60.001043\n",
	};
	char *text;

	lu_stats_add_latency(&lun.stats.read_latency, 10);       /* <= 16 us */
	lu_stats_add_latency(&lun.stats.read_latency, 16);       /* <= 16 us: bounds are inclusive */
	lu_stats_add_latency(&lun.stats.read_latency, 17);       /* <= 32 us */
	lu_stats_add_latency(&lun.stats.read_latency, 1000);     /* <= 1.024 ms */
	lu_stats_add_latency(&lun.stats.read_latency, 60000000); /* above 8 s */
	text = render(&s);
	expect_lines(text, buckets, sizeof(buckets) / sizeof(buckets[0]));
	assert_int_equal(count_of(text, "twinsan_lun_read_latency_seconds_bucket{"), LU_STATS_BUCKETS + 1);
	free(text);
}

static void ha_device_state_and_links(void **state)
{
	struct ha_device_status d = {
		.name = "ha\"0", .state = HA_SYNC_SYNCHRONIZING, .reason = HA_REASON_NONE,
		.access = STORE_ACCESS_OK, .partner_connected = true, .sync_total_bytes = 1000,
		.sync_done_bytes = 250, .sync_rate_bps = 50, .n_links = 2,
		.links = { { .kind = PROTO_LINK_SYNC, .index = 0, .up = true, .rtt_ms = 3 },
		           { .kind = PROTO_LINK_HEARTBEAT, .index = 1, .up = false } },
	};
	struct metrics_snapshot s = { .version = "v", .devices = &d, .n_devices = 1 };
	static const char *const lines[] = {
		"twinsan_ha_serving{device=\"ha\\\"0\"} 1\n",
		"twinsan_ha_partner_connected{device=\"ha\\\"0\"} 1\n",
		"twinsan_ha_sync_done_bytes{device=\"ha\\\"0\"} 250\n",
		"twinsan_ha_sync_total_bytes{device=\"ha\\\"0\"} 1000\n",
		"twinsan_ha_sync_rate_bytes_per_second{device=\"ha\\\"0\"} 50\n",
		"twinsan_ha_link_up{device=\"ha\\\"0\",kind=\"sync\",index=\"0\"} 1\n",
		"twinsan_ha_link_up{device=\"ha\\\"0\",kind=\"heartbeat\",index=\"1\"} 0\n",
		"twinsan_ha_link_rtt_seconds{device=\"ha\\\"0\",kind=\"sync\",index=\"0\"} 0.003000\n",
	};
	char *text = render(&s);
	char want[160];

	snprintf(want, sizeof(want), "twinsan_ha_state{device=\"ha\\\"0\",state=\"%s\",reason=\"%s\"} 1\n",
	         ha_sync_state_name(HA_SYNC_SYNCHRONIZING), ha_sync_reason_name(HA_REASON_NONE));
	assert_non_null(strstr(text, want));
	expect_lines(text, lines, sizeof(lines) / sizeof(lines[0]));
	free(text);
}

static void task_done(struct scsi_lu_stats *st, uint8_t opcode, uint8_t status, uint32_t in, uint32_t out)
{
	struct scsi_task t;

	memset(&t, 0, sizeof(t));
	t.cdb[0] = opcode;
	t.status = status;
	t.data_in_len = in;
	t.data_out_len = out;
	t.start_ns = lu_stats_now_ns();
	lu_stats_task_done(st, &t);
}

static void tasks_count_as_reads_writes_and_errors(void **state)
{
	struct scsi_lu_stats st;

	memset(&st, 0, sizeof(st));
	task_done(&st, 0x2a, SCSI_STATUS_GOOD, 0, 4096);            /* WRITE (10) */
	task_done(&st, 0x8a, SCSI_STATUS_CHECK_CONDITION, 0, 512);  /* WRITE (16), failed */
	task_done(&st, 0x28, SCSI_STATUS_GOOD, 8192, 0);            /* READ (10) */
	task_done(&st, 0x00, SCSI_STATUS_GOOD, 0, 0);               /* TEST UNIT READY */
	assert_int_equal(st.commands, 4);
	assert_int_equal(st.write_commands, 2);
	assert_int_equal(st.written_bytes, 4096);
	assert_int_equal(st.read_commands, 1);
	assert_int_equal(st.read_bytes, 8192);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.write_latency.count, 2);
	assert_int_equal(st.read_latency.count, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(families_have_one_help_and_type),
		cmocka_unit_test(label_values_are_escaped),
		cmocka_unit_test(histogram_buckets_are_cumulative),
		cmocka_unit_test(ha_device_state_and_links),
		cmocka_unit_test(tasks_count_as_reads_writes_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
