/* The file store on a real reactor: data written reads back, FUA and flush complete,
 * discard leaves zeros and holes that map_status reports, and a missing file is created
 * sparse at the requested size. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/reactor.h"
#include "common/util.h"
#include "store/store.h"

#define SIZE (8u << 20)

struct fixture {
	char path[64];
	struct reactor *reactor;
	struct store *store;
};

struct waiter {
	struct store_io io;
	struct reactor *reactor;
	int err;
	bool done;
};

static void waiter_done(struct store_io *io, int err)
{
	struct waiter *w = container_of(io, struct waiter, io);

	w->err = err;
	w->done = true;
	reactor_stop(w->reactor);
}

/* Runs the reactor until the waiter's I/O completes; returns its result. */
static int wait_for(struct waiter *w)
{
	assert_int_equal(reactor_run(w->reactor), 0);
	assert_true(w->done);
	return w->err;
}

static struct waiter waiter_for(struct fixture *f)
{
	return (struct waiter){ .io.done = waiter_done, .reactor = f->reactor };
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p = { .create_size = SIZE };
	char err[256];

	snprintf(f->path, sizeof(f->path), "/dev/shm/twinsan-test-store-%d", getpid());
	unlink(f->path);
	p.path = f->path;
	assert_int_equal(reactor_new(64, &f->reactor), 0);
	assert_int_equal(store_open(&p, &f->store, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->store);
	reactor_free(f->reactor);
	unlink(f->path);
	free(f);
	return 0;
}

static void missing_file_is_created_sparse_at_size(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, SIZE);
	assert_int_equal(store_size(f->store), SIZE);
	assert_true(st.st_blocks == 0);
}

static void written_data_reads_back(void **state)
{
	struct fixture *f = *state;
	struct waiter w = waiter_for(f);
	uint8_t out[8192], in[8192];

	memset(out, 0x5a, sizeof(out));
	store_write(f->store, f->reactor, &w.io, out, sizeof(out), 4096, true);
	assert_int_equal(wait_for(&w), 0);

	w = waiter_for(f);
	store_read(f->store, f->reactor, &w.io, in, sizeof(in), 4096);
	assert_int_equal(wait_for(&w), 0);
	assert_memory_equal(in, out, sizeof(in));
}

static void vectored_write_lands_in_order(void **state)
{
	struct fixture *f = *state;
	struct waiter w = waiter_for(f);
	uint8_t a[512], b[1024], in[1536];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	store_writev(f->store, f->reactor, &w.io, iov, 2, 0, false);
	assert_int_equal(wait_for(&w), 0);

	w = waiter_for(f);
	store_read(f->store, f->reactor, &w.io, in, sizeof(in), 0);
	assert_int_equal(wait_for(&w), 0);
	assert_memory_equal(in, a, sizeof(a));
	assert_memory_equal(in + sizeof(a), b, sizeof(b));
}

static void flush_completes(void **state)
{
	struct fixture *f = *state;
	struct waiter w = waiter_for(f);

	store_flush(f->store, f->reactor, &w.io);
	assert_int_equal(wait_for(&w), 0);
}

static void discard_reads_back_zeros_and_maps_a_hole(void **state)
{
	struct fixture *f = *state;
	struct waiter w = waiter_for(f);
	static uint8_t buf[1 << 20];
	bool mapped;
	uint64_t len;

	assert_true(store_can_discard(f->store));
	memset(buf, 0xff, sizeof(buf));
	store_write(f->store, f->reactor, &w.io, buf, sizeof(buf), 0, false);
	assert_int_equal(wait_for(&w), 0);
	assert_int_equal(store_map_status(f->store, 0, &mapped, &len), 0);
	assert_true(mapped);
	assert_int_equal(len, sizeof(buf));

	w = waiter_for(f);
	store_discard(f->store, f->reactor, &w.io, 0, sizeof(buf));
	assert_int_equal(wait_for(&w), 0);

	w = waiter_for(f);
	store_read(f->store, f->reactor, &w.io, buf, sizeof(buf), 0);
	assert_int_equal(wait_for(&w), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(store_map_status(f->store, 0, &mapped, &len), 0);
	assert_false(mapped);
	assert_int_equal(len, SIZE);
}

static void map_status_beyond_end_is_an_error(void **state)
{
	struct fixture *f = *state;
	bool mapped;
	uint64_t len;

	assert_int_equal(store_map_status(f->store, SIZE, &mapped, &len), -EINVAL);
}

static void missing_file_without_size_names_the_path(void **state)
{
	struct store_params p = { .path = "/dev/shm/twinsan-test-store-does-not-exist" };
	struct store *s = NULL;
	char err[256];

	(void)state;
	assert_int_equal(store_open(&p, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "twinsan-test-store-does-not-exist"));
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(missing_file_is_created_sparse_at_size, setup, teardown),
		cmocka_unit_test_setup_teardown(written_data_reads_back, setup, teardown),
		cmocka_unit_test_setup_teardown(vectored_write_lands_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(flush_completes, setup, teardown),
		cmocka_unit_test_setup_teardown(discard_reads_back_zeros_and_maps_a_hole, setup, teardown),
		cmocka_unit_test_setup_teardown(map_status_beyond_end_is_an_error, setup, teardown),
		cmocka_unit_test(missing_file_without_size_names_the_path),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
