/* Activemap pages written through the reactor: a waiter resumes only once its extent's
 * bit is in the file, waiters of one page share its write, and a file that cannot be
 * written fails the waiters instead of letting data go first.  Each test runs on a file
 * in memory (/dev/shm: synchronous writes from the loop) and on one on disk (/var/tmp:
 * io_uring), the two ways mapsync writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ha/mapsync.h"
#include "ha/meta.h"

#define EXTENT 65536u
#define SIZE (4ull << 30) /* two bitmap pages */

struct waiter {
	struct mapsync_wait w;
	int calls, err;
	bool bit_on_disk; /* what the file said when ready() ran */
};

static struct reactor *r;
static struct activemap *am;
static char path[96];
static int fd;
static int pending;

static bool bit_in_file(uint64_t offset)
{
	uint32_t e = (uint32_t)(offset / EXTENT);
	uint8_t byte;

	assert_int_equal(pread(fd, &byte, 1, (off_t)(HA_META_BITMAP_OFFSET + e / 8)), 1);
	return byte & (1u << (e % 8));
}

static void on_ready(struct mapsync_wait *w, int err)
{
	struct waiter *x = container_of(w, struct waiter, w);

	x->calls++;
	x->err = err;
	x->bit_on_disk = err == 0 && bit_in_file(w->offset);
	if (--pending == 0)
		reactor_stop(r);
}

static void wait_for(struct mapsync *ms, struct waiter *x, uint64_t offset)
{
	*x = (struct waiter){.w = {.offset = offset, .length = 4096, .ready = on_ready}};
	if (activemap_write_start(am, offset, 4096)) {
		pending++;
		mapsync_wait(ms, &x->w);
	}
}

static int setup_in(const char *dir)
{
	log_set_level(LOG_LEVEL_ERR);
	snprintf(path, sizeof(path), "%s/twinsan-test-mapsync-%d", dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(HA_META_BITMAP_OFFSET + 4 * 4096)), 0);
	assert_int_equal(activemap_new(SIZE, EXTENT, 0, &am), 0);
	pending = 0;
	return reactor_new(64, &r);
}

static int setup_memory(void **state)
{
	return setup_in("/dev/shm");
}

static int setup_disk(void **state)
{
	return setup_in("/var/tmp");
}

static int teardown(void **state)
{
	activemap_free(am);
	reactor_free(r);
	close(fd);
	unlink(path);
	return 0;
}

static void test_waiters_resume_once_their_bit_is_in_the_file(void **state)
{
	struct mapsync *ms = mapsync_new(r, am, fd, "t");
	struct waiter a, b, c;

	wait_for(ms, &a, 0);
	wait_for(ms, &b, 3 * EXTENT); /* same page as a */
	wait_for(ms, &c, 40000ull * EXTENT); /* another page */
	assert_int_equal(pending, 3);
	assert_int_equal(a.calls, 0); /* never from inside the call */
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(c.calls, 1);
	assert_true(a.bit_on_disk && b.bit_on_disk && c.bit_on_disk);
	assert_true(activemap_write_ready(am, 0, 4096));
	mapsync_free(ms);
}

static void test_an_unwritable_file_fails_the_waiters(void **state)
{
	int ro = open(path, O_RDONLY);
	struct mapsync *ms = mapsync_new(r, am, ro, "t");
	struct waiter a, b;

	wait_for(ms, &a, 0);
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(a.err, -EIO);
	wait_for(ms, &b, 5 * EXTENT); /* later waiters fail too, from the loop */
	assert_int_equal(b.calls, 0);
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(b.err, -EIO);
	mapsync_free(ms);
	close(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_waiters_resume_once_their_bit_is_in_the_file, setup_memory, teardown),
		cmocka_unit_test_setup_teardown(test_an_unwritable_file_fails_the_waiters, setup_memory, teardown),
		cmocka_unit_test_setup_teardown(test_waiters_resume_once_their_bit_is_in_the_file, setup_disk, teardown),
		cmocka_unit_test_setup_teardown(test_an_unwritable_file_fails_the_waiters, setup_disk, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
