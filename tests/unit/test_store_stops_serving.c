/* A store that stops serving in the middle of a command (an HA replica whose partner was
 * lost and that may not go on alone) fails its I/O with -ENOTCONN.  Every command that
 * reaches the store then answers NOT READY, asymmetric access state transition, which a
 * multipath initiator retries on another path: never a medium error, which it would not. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_scsi_fixture.h"

static void fail_fire(struct reactor_op *op, int res)
{
	struct store_io *io = container_of(op, struct store_io, op);

	(void)res;
	io->done(io, -ENOTCONN);
}

/* Every I/O fails, from the loop (never inside the call), as the HA device fails it. */
static void fail_later(struct reactor *r, struct store_io *io) { reactor_defer(r, &io->op, fail_fire); }

static void lost_readv(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
                       uint64_t offset)
{
	fail_later(r, io);
}

static void lost_writev(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
                        uint64_t offset, bool fua)
{
	fail_later(r, io);
}

static void lost_flush(void *impl, struct reactor *r, struct store_io *io) { fail_later(r, io); }

static void lost_discard(void *impl, struct reactor *r, struct store_io *io, uint64_t offset, uint64_t length)
{
	fail_later(r, io);
}

static void no_close(void *impl) {}

static const struct store_ops lost_ops = {
	.readv = lost_readv,
	.writev = lost_writev,
	.flush = lost_flush,
	.discard = lost_discard,
	.close = no_close,
};

/* The fixture's target, with its logical unit on a store that stops serving. */
static int setup_lost(void **state)
{
	const struct store_caps caps = { .size = (uint64_t)BLOCKS * BS, .alignment = BS, .can_discard = true };
	struct scsi_lu_params lp = { .block_size = BS, .write_cache = true, .uuid = { 7, 7 } };
	struct fixture *f;
	char err[128];

	setup(state);
	f = *state;
	scsi_target_free(f->target);
	scsi_lu_free(f->lu);
	store_close(f->store);
	f->store = store_new(&lost_ops, NULL, &caps);
	assert_non_null(f->store);
	assert_int_equal(scsi_lu_new(&lp, f->store, &f->lu, err, sizeof(err)), 0);
	assert_int_equal(scsi_target_new(&f->target), 0);
	assert_int_equal(scsi_target_add_lu(f->target, 0, f->lu), 0);
	return 0;
}

static void expect_retryable(struct fixture *f, const uint8_t *cdb, size_t len, const uint8_t *out, uint32_t out_len)
{
	struct scsi_task t;

	run(f, &t, cdb, len, out, out_len);
	expect_sense(&t, 0x2, 0x040a);
	scsi_task_release(&t);
}

static void every_command_that_reaches_the_store_is_retryable(void **state)
{
	static uint8_t block[2 * BS];
	const uint8_t read10_cdb[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	const uint8_t write10_cdb[10] = { 0x2a, 0x08, 0, 0, 0, 8, 0, 0, 1, 0 };      /* FUA */
	const uint8_t write_verify10[10] = { 0x2e, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	const uint8_t sync_cache10[10] = { 0x35 };
	const uint8_t write_same10[10] = { 0x41, 0, 0, 0, 0, 8, 0, 0, 4, 0 };
	const uint8_t write_same_unmap[10] = { 0x41, 0x08, 0, 0, 0, 8, 0, 0, 4, 0 };
	const uint8_t caw[16] = { 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 };
	const uint8_t unmap_cdb[10] = { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
	uint8_t unmap_list[24] = { 0, 22, 0, 16 };
	uint8_t xcopy[16] = { 0x83 }, list[XCOPY_LIST_LEN];
	struct fixture *f = *state;

	clear_ua(f);
	expect_retryable(f, read10_cdb, sizeof(read10_cdb), NULL, 0);
	expect_retryable(f, write10_cdb, sizeof(write10_cdb), block, BS);
	expect_retryable(f, write_verify10, sizeof(write_verify10), block, BS);
	expect_retryable(f, sync_cache10, sizeof(sync_cache10), NULL, 0);
	expect_retryable(f, write_same10, sizeof(write_same10), block, BS);
	expect_retryable(f, write_same_unmap, sizeof(write_same_unmap), block, BS);
	expect_retryable(f, caw, sizeof(caw), block, 2 * BS);
	put_be64(unmap_list + 8, 8);
	put_be32(unmap_list + 16, 4);
	expect_retryable(f, unmap_cdb, sizeof(unmap_cdb), unmap_list, sizeof(unmap_list));
	xcopy_list(f, list, 8, 64, 4);
	put_be32(xcopy + 10, sizeof(list));
	expect_retryable(f, xcopy, sizeof(xcopy), list, sizeof(list));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_command_that_reaches_the_store_is_retryable, setup_lost, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
