/* The SCSI layer end to end below the transport: tasks built by hand run through
 * scsi_target_execute() on a real reactor against a file store in /dev/shm. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_scsi_fixture.h"

static void inquiry_does_not_consume_unit_attention(void **state)
{
	struct fixture *f = *state;
	const uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 };
	const uint8_t tur[6] = { 0 };
	struct scsi_task t;

	assert_int_equal(run(f, &t, inq, 6, NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 96);
	assert_int_equal(t.data_in[0], 0x00);
	assert_int_equal(t.data_in[2], 0x06);
	scsi_task_release(&t);
	run(f, &t, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2900);
	assert_int_equal(run(f, &t, tur, 6, NULL, 0), SCSI_STATUS_GOOD);
}

static void reserved_bit_in_read10_points_at_byte1_bit7(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[10] = { 0x28, 0x80, 0, 0, 0, 0, 0, 0, 1, 0 };
	struct scsi_task t;

	clear_ua(f);
	run(f, &t, cdb, sizeof(cdb), NULL, 0);
	expect_sense(&t, 0x5, 0x2400);
	assert_int_equal(t.sense[15], 0x80 | 0x40 | 0x08 | 7); /* SKSV, C/D, BPV, bit 7 */
	assert_int_equal(get_be16(t.sense + 16), 1);
}

static void unknown_opcode_is_invalid_command_operation_code(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[10] = { 0xd7 };
	struct scsi_task t;

	clear_ua(f);
	run(f, &t, cdb, sizeof(cdb), NULL, 0);
	expect_sense(&t, 0x5, 0x2000);
}

static void write_then_read_returns_the_data(void **state)
{
	struct fixture *f = *state;
	uint8_t out[4 * BS], in[4 * BS];

	clear_ua(f);
	for (unsigned i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7);
	write10(f, 100, 4, out);
	read10(f, 100, 4, in);
	assert_memory_equal(in, out, sizeof(out));
}

/* A Data-Out shorter than the CDB's transfer length writes what arrived and tells the
 * transport how much was wanted, for the overflow residual. */
static void short_data_out_writes_what_arrived(void **state)
{
	struct fixture *f = *state;
	uint8_t data[BS], back[BS], cdb[10] = { 0x2a };
	struct scsi_task t;

	clear_ua(f);
	memset(data, 'b', BS);
	put_be32(cdb + 2, 40);
	put_be16(cdb + 7, 2);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), data, BS), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_out_wanted, 2 * BS);
	read10(f, 40, 1, back);
	assert_memory_equal(back, data, BS);
}

static void read_beyond_end_is_lba_out_of_range(void **state)
{
	struct fixture *f = *state;
	uint8_t cdb[16] = { 0x88 };
	struct scsi_task t;

	clear_ua(f);
	put_be64(cdb + 2, BLOCKS - 1);
	put_be32(cdb + 10, 2);
	run(f, &t, cdb, sizeof(cdb), NULL, 0);
	expect_sense(&t, 0x5, 0x2100);
}

static void compare_and_write_miscompare_reports_offset(void **state)
{
	struct fixture *f = *state;
	uint8_t data[2 * BS], buf[4 * BS], cdb[16] = { 0x89 };
	struct scsi_task t;

	clear_ua(f);
	memset(data, 0xaa, sizeof(data));
	write10(f, 10, 2, data);
	memset(buf, 0xaa, 2 * BS);
	buf[BS + 77] = 0x55; /* compare half differs at offset BS + 77 */
	memset(buf + 2 * BS, 0x11, 2 * BS);
	put_be64(cdb + 2, 10);
	cdb[13] = 2;
	run(f, &t, cdb, sizeof(cdb), buf, sizeof(buf));
	expect_sense(&t, 0xe, 0x1d00);
	assert_true(t.sense[0] & 0x80);
	assert_int_equal(get_be32(t.sense + 3), BS + 77);
	read10(f, 10, 2, buf);
	assert_memory_equal(buf, data, sizeof(data)); /* nothing written */
}

static void compare_and_write_on_unwritten_blocks_compares_zeros(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[2 * BS], back[BS], cdb[16] = { 0x89 };
	struct scsi_task t;

	clear_ua(f);
	memset(buf, 0, BS);
	memset(buf + BS, 0x5a, BS);
	put_be64(cdb + 2, 1500);
	cdb[13] = 1;
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), buf, sizeof(buf)), SCSI_STATUS_GOOD);
	read10(f, 1500, 1, back);
	assert_memory_equal(back, buf + BS, BS);
}

/* A write queued behind a COMPARE AND WRITE on the same LBA waits for it: the compare
 * sees the old data and the later write wins. */
static void compare_and_write_is_atomic_against_overlapping_write(void **state)
{
	struct fixture *f = *state;
	uint8_t old[BS], caw[2 * BS], later[BS], back[BS];
	uint8_t caw_cdb[16] = { 0x89 }, w_cdb[10] = { 0x2a };
	struct scsi_task t1, t2;

	clear_ua(f);
	memset(old, 1, BS);
	write10(f, 20, 1, old);
	memset(caw, 1, BS);
	memset(caw + BS, 2, BS);
	memset(later, 3, BS);
	put_be64(caw_cdb + 2, 20);
	caw_cdb[13] = 1;
	put_be32(w_cdb + 2, 20);
	put_be16(w_cdb + 7, 1);
	prepare(f, &t1, &f->itn, caw_cdb, sizeof(caw_cdb), caw, sizeof(caw));
	prepare(f, &t2, &f->itn, w_cdb, sizeof(w_cdb), later, BS);
	wait_all(f);
	assert_int_equal(t1.status, SCSI_STATUS_GOOD);
	assert_int_equal(t2.status, SCSI_STATUS_GOOD);
	read10(f, 20, 1, back);
	assert_memory_equal(back, later, BS);
}

static void write_same_unmap_reads_back_zeros(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8 * BS], zero[BS] = { 0 }, cdb[10] = { 0x41, 0x08 };
	struct scsi_task t;

	clear_ua(f);
	memset(data, 0xff, sizeof(data));
	write10(f, 64, 8, data);
	put_be32(cdb + 2, 64);
	put_be16(cdb + 7, 8);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), zero, BS), SCSI_STATUS_GOOD);
	read10(f, 64, 8, data);
	for (unsigned i = 0; i < sizeof(data); i++)
		assert_int_equal(data[i], 0);
}

static void write_same_repeats_the_block(void **state)
{
	struct fixture *f = *state;
	uint8_t block[BS], back[5 * BS], cdb[16] = { 0x93 };
	struct scsi_task t;

	clear_ua(f);
	for (unsigned i = 0; i < BS; i++)
		block[i] = (uint8_t)i;
	put_be64(cdb + 2, 300);
	put_be32(cdb + 10, 5);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), block, BS), SCSI_STATUS_GOOD);
	read10(f, 300, 5, back);
	for (unsigned b = 0; b < 5; b++)
		assert_memory_equal(back + b * BS, block, BS);
}

static void verify_bytchk1_miscompare_reports_offset(void **state)
{
	struct fixture *f = *state;
	uint8_t data[3 * BS], cdb[10] = { 0x2f, 0x02 };
	struct scsi_task t;

	clear_ua(f);
	memset(data, 0x42, sizeof(data));
	write10(f, 200, 3, data);
	put_be32(cdb + 2, 200);
	put_be16(cdb + 7, 3);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), data, sizeof(data)), SCSI_STATUS_GOOD);
	data[2 * BS + 5] ^= 0xff;
	run(f, &t, cdb, sizeof(cdb), data, sizeof(data));
	expect_sense(&t, 0xe, 0x1d00);
	assert_int_equal(get_be32(t.sense + 3), 2 * BS + 5);
}

static void unmap_deallocates_and_get_lba_status_reports_it(void **state)
{
	struct fixture *f = *state;
	uint8_t data[16 * BS], list[24] = { 0 }, cdb[10] = { 0x42 }, gls[16] = { 0x9e, 0x12 };
	struct scsi_task t;

	clear_ua(f);
	memset(data, 0x77, sizeof(data));
	write10(f, 512, 16, data);
	put_be16(list, 22);
	put_be16(list + 2, 16);
	put_be64(list + 8, 512);
	put_be32(list + 16, 16);
	put_be16(cdb + 7, sizeof(list));
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), list, sizeof(list)), SCSI_STATUS_GOOD);
	put_be64(gls + 2, 512);
	put_be32(gls + 10, 64);
	assert_int_equal(run(f, &t, gls, sizeof(gls), NULL, 0), SCSI_STATUS_GOOD);
	assert_true(t.data_in_len >= 24);
	assert_int_equal(get_be64(t.data_in + 8), 512);
	assert_int_equal(t.data_in[8 + 12] & 0x0f, 1); /* deallocated */
	scsi_task_release(&t);
}

static void mode_select_raises_mode_parameters_changed_elsewhere(void **state)
{
	struct fixture *f = *state;
	const uint8_t sense_cdb[6] = { 0x1a, 0x08, 0x0a, 0, 255, 0 };
	uint8_t select_cdb[6] = { 0x15, 0x10 }, tur[6] = { 0 }, list[4 + 12];
	struct scsi_task t;

	clear_ua(f);
	assert_int_equal(run(f, &t, sense_cdb, sizeof(sense_cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 4 + 12);
	memcpy(list, t.data_in, sizeof(list));
	scsi_task_release(&t);
	list[0] = 0;
	list[4 + 2] |= 0x04; /* D_SENSE */
	select_cdb[4] = sizeof(list);
	assert_int_equal(run(f, &t, select_cdb, sizeof(select_cdb), list, sizeof(list)), SCSI_STATUS_GOOD);
	run_on(f, &t, &f->other, tur, sizeof(tur), NULL, 0);
	assert_int_equal(t.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(t.sense[0], 0x72); /* descriptor format now */
	assert_int_equal(t.sense[2] << 8 | t.sense[3], 0x2a01);
	assert_int_equal(run(f, &t, tur, sizeof(tur), NULL, 0), SCSI_STATUS_GOOD);
}

static void swp_makes_writes_fail_with_write_protected(void **state)
{
	struct fixture *f = *state;
	uint8_t select_cdb[6] = { 0x15, 0x10, 0, 0, 16 }, list[16] = { 0 }, block[BS] = { 0 };
	uint8_t w[10] = { 0x2a, 0, 0, 0, 0, 1, 0, 0, 1 };
	struct scsi_task t;

	clear_ua(f);
	list[4] = 0x0a;
	list[5] = 0x0a;
	list[4 + 3] = 0x10;
	list[4 + 4] = 0x08; /* SWP */
	put_be16(list + 4 + 8, 0xffff);
	assert_int_equal(run(f, &t, select_cdb, sizeof(select_cdb), list, sizeof(list)), SCSI_STATUS_GOOD);
	run(f, &t, w, sizeof(w), block, BS);
	expect_sense(&t, 0x7, 0x2700);
}

static void report_luns_lists_lun0(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	struct scsi_task t;

	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 16);
	assert_int_equal(get_be32(t.data_in), 8);
	assert_int_equal(get_be64(t.data_in + 8), 0);
	scsi_task_release(&t);
}

static void absent_lun_is_not_supported(void **state)
{
	struct fixture *f = *state;
	const uint8_t tur[6] = { 0 };
	struct scsi_task t;

	memset(&t, 0, sizeof(t));
	t.itn = &f->itn;
	t.lun = 5;
	memcpy(t.cdb, tur, sizeof(tur));
	t.reactor = f->reactor;
	t.done = task_done;
	f->outstanding++;
	scsi_target_execute(f->target, &t);
	wait_all(f);
	expect_sense(&t, 0x5, 0x2500);
}

static void rsoc_one_command_reports_usage_mask(void **state)
{
	struct fixture *f = *state;
	const uint8_t cdb[12] = { 0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 1, 0 };
	struct scsi_task t;

	clear_ua(f);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[1] & 0x07, 3);
	assert_int_equal(get_be16(t.data_in + 2), 10);
	assert_int_equal(t.data_in[4], 0x28);
	assert_int_equal(t.data_in[5], 0x1a); /* DPO, FUA, FUA_NV */
	scsi_task_release(&t);
}

/* EXTENDED COPY within the logical unit, addressed by its own NAA designator. */
static void extended_copy_copies_blocks_and_reports_status(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4 * BS], back[4 * BS], list[XCOPY_LIST_LEN], cdb[16] = { 0x83 };
	uint8_t rcr[16] = { 0x84, 0x00, 0x05 };
	struct scsi_task t;

	clear_ua(f);
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5c);
	write10(f, 1000, 4, data);
	xcopy_list(f, list, 1000, 1800, 4);
	put_be32(cdb + 10, sizeof(list));
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), list, sizeof(list)), SCSI_STATUS_GOOD);
	read10(f, 1800, 4, back);
	assert_memory_equal(back, data, sizeof(data));
	put_be32(rcr + 10, 64);
	assert_int_equal(run(f, &t, rcr, sizeof(rcr), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[4] & 0x7f, 1); /* completed */
	assert_int_equal(get_be16(t.data_in + 5), 1);
	scsi_task_release(&t);
	run_on(f, &t, &f->other, rcr, sizeof(rcr), NULL, 0); /* not that nexus's list */
	expect_sense(&t, 0x5, 0x2400);
}

static void third_party_copy_page_lists_the_copy_commands(void **state)
{
	struct fixture *f = *state;
	const uint8_t vpd[6] = { 0x12, 0x01, 0x8f, 0, 255, 0 };
	struct scsi_task t;
	uint32_t off, page_len;

	assert_int_equal(run(f, &t, vpd, sizeof(vpd), NULL, 0), SCSI_STATUS_GOOD);
	page_len = get_be16(t.data_in + 2);
	assert_int_equal(t.data_in_len, 4 + page_len);
	for (off = 4; off < t.data_in_len; off += 4 + get_be16(t.data_in + off + 2))
		assert_int_equal(get_be16(t.data_in + off + 2) % 4, 0);
	assert_int_equal(off, t.data_in_len);
	assert_int_equal(get_be16(t.data_in + 4), 0x0001); /* supported commands */
	assert_int_equal(t.data_in[4 + 5], 0x83);
	assert_int_equal(t.data_in[4 + 8], 0x84);
	scsi_task_release(&t);
}

static void lun_reset_raises_bus_device_reset_on_every_nexus(void **state)
{
	struct fixture *f = *state;
	const uint8_t tur[6] = { 0 }, reserve[6] = { 0x16 }, read[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1 };
	struct scsi_task t;

	clear_ua(f);
	assert_int_equal(run(f, &t, reserve, sizeof(reserve), NULL, 0), SCSI_STATUS_GOOD);
	run_on(f, &t, &f->other, read, sizeof(read), NULL, 0);
	assert_int_equal(t.status, SCSI_STATUS_RESERVATION_CONFLICT);
	assert_int_equal(scsi_target_lun_reset(f->target, &f->itn, 0), SCSI_TMF_COMPLETE);
	assert_int_equal(scsi_target_lun_reset(f->target, &f->itn, 9), SCSI_TMF_NO_SUCH_LUN);
	run(f, &t, tur, sizeof(tur), NULL, 0);
	expect_sense(&t, 0x6, 0x2903);
	run_on(f, &t, &f->other, tur, sizeof(tur), NULL, 0);
	expect_sense(&t, 0x6, 0x2903);
	run_on(f, &t, &f->other, read, sizeof(read), NULL, 0); /* RESERVE(6) is gone */
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
	scsi_task_release(&t);
}

static void clear_task_set_tells_the_other_nexus(void **state)
{
	struct fixture *f = *state;
	const uint8_t tur[6] = { 0 };
	struct scsi_task t;

	clear_ua(f);
	run_on(f, &t, &f->other, tur, sizeof(tur), NULL, 0);
	assert_int_equal(scsi_target_clear_task_set(f->target, &f->itn, 0), SCSI_TMF_COMPLETE);
	assert_int_equal(run(f, &t, tur, sizeof(tur), NULL, 0), SCSI_STATUS_GOOD);
	run_on(f, &t, &f->other, tur, sizeof(tur), NULL, 0);
	expect_sense(&t, 0x6, 0x2f00);
}

static void request_sense_reports_and_clears_a_unit_attention(void **state)
{
	struct fixture *f = *state;
	const uint8_t rs[6] = { 0x03, 0, 0, 0, 252, 0 }, tur[6] = { 0 };
	struct scsi_task t;

	assert_int_equal(run(f, &t, rs, sizeof(rs), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, 18);
	assert_int_equal(t.data_in[2], 0x06);
	assert_int_equal(t.data_in[12] << 8 | t.data_in[13], 0x2900);
	scsi_task_release(&t);
	assert_int_equal(run(f, &t, tur, sizeof(tur), NULL, 0), SCSI_STATUS_GOOD);
}

static struct scsi_task *finished[8];
static unsigned n_finished;

static void record_done(struct scsi_task *task)
{
	finished[n_finished++] = task;
	task_done(task);
}

/* An ORDERED task waits for the older task and the newer SIMPLE one waits for it. */
static void ordered_task_completes_between_older_and_newer(void **state)
{
	struct fixture *f = *state;
	uint8_t data[3][BS], cdb[3][10];
	struct scsi_task t[3];

	clear_ua(f);
	n_finished = 0;
	for (unsigned i = 0; i < 3; i++) {
		memset(data[i], (int)i + 1, BS);
		memset(cdb[i], 0, sizeof(cdb[i]));
		cdb[i][0] = 0x2a;
		put_be32(cdb[i] + 2, 600 + 10 * i);
		put_be16(cdb[i] + 7, 1);
		memset(&t[i], 0, sizeof(t[i]));
		t[i].itn = &f->itn;
		t[i].attr = i == 1 ? SCSI_ATTR_ORDERED : SCSI_ATTR_SIMPLE;
		memcpy(t[i].cdb, cdb[i], sizeof(cdb[i]));
		t[i].data_out = data[i];
		t[i].data_out_len = BS;
		t[i].reactor = f->reactor;
		t[i].done = record_done;
		f->outstanding++;
		scsi_target_execute(f->target, &t[i]);
	}
	wait_all(f);
	assert_int_equal(n_finished, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_ptr_equal(finished[i], &t[i]);
		assert_int_equal(t[i].status, SCSI_STATUS_GOOD);
	}
}

/* A task blocked behind an ORDERED one is aborted without ever starting. */
static void blocked_task_aborts_at_once(void **state)
{
	struct fixture *f = *state;
	uint8_t data[BS] = { 0 }, w[10] = { 0x2a, 0, 0, 0, 2, 0, 0, 0, 1 };
	struct scsi_task first, blocked;

	clear_ua(f);
	n_finished = 0;
	prepare(f, &first, &f->itn, w, sizeof(w), data, BS);
	first.done = record_done;
	memset(&blocked, 0, sizeof(blocked));
	blocked.itn = &f->itn;
	blocked.attr = SCSI_ATTR_ORDERED;
	memcpy(blocked.cdb, w, sizeof(w));
	blocked.data_out = data;
	blocked.data_out_len = BS;
	blocked.reactor = f->reactor;
	blocked.done = record_done;
	f->outstanding++;
	scsi_target_execute(f->target, &blocked);
	scsi_task_abort(&blocked);
	wait_all(f);
	assert_int_equal(blocked.status, SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(first.status, SCSI_STATUS_GOOD);
	assert_ptr_equal(finished[0], &blocked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(inquiry_does_not_consume_unit_attention, setup, teardown),
		cmocka_unit_test_setup_teardown(reserved_bit_in_read10_points_at_byte1_bit7, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_opcode_is_invalid_command_operation_code, setup, teardown),
		cmocka_unit_test_setup_teardown(write_then_read_returns_the_data, setup, teardown),
		cmocka_unit_test_setup_teardown(short_data_out_writes_what_arrived, setup, teardown),
		cmocka_unit_test_setup_teardown(read_beyond_end_is_lba_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(compare_and_write_miscompare_reports_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(compare_and_write_on_unwritten_blocks_compares_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(compare_and_write_is_atomic_against_overlapping_write, setup, teardown),
		cmocka_unit_test_setup_teardown(write_same_unmap_reads_back_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(write_same_repeats_the_block, setup, teardown),
		cmocka_unit_test_setup_teardown(verify_bytchk1_miscompare_reports_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(unmap_deallocates_and_get_lba_status_reports_it, setup, teardown),
		cmocka_unit_test_setup_teardown(mode_select_raises_mode_parameters_changed_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(swp_makes_writes_fail_with_write_protected, setup, teardown),
		cmocka_unit_test_setup_teardown(report_luns_lists_lun0, setup, teardown),
		cmocka_unit_test_setup_teardown(absent_lun_is_not_supported, setup, teardown),
		cmocka_unit_test_setup_teardown(rsoc_one_command_reports_usage_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(extended_copy_copies_blocks_and_reports_status, setup, teardown),
		cmocka_unit_test_setup_teardown(third_party_copy_page_lists_the_copy_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(lun_reset_raises_bus_device_reset_on_every_nexus, setup, teardown),
		cmocka_unit_test_setup_teardown(clear_task_set_tells_the_other_nexus, setup, teardown),
		cmocka_unit_test_setup_teardown(request_sense_reports_and_clears_a_unit_attention, setup, teardown),
		cmocka_unit_test_setup_teardown(ordered_task_completes_between_older_and_newer, setup, teardown),
		cmocka_unit_test_setup_teardown(blocked_task_aborts_at_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
