/* The HA device, two nodes in one process on one reactor, their sync (and heartbeat)
 * links socketpairs, their replicas and metadata tmpfs files.  Each test names what it
 * proves; the replicas are compared byte for byte through their backing files. */
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
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/reactor.h"
#include "common/util.h"
#include "ha/device.h"

#define DEV_SIZE (4u << 20)
#define EXTENT (64u << 10)
#define HANG_GUARD_MS 20000 /* a test that needs this long is stuck, not slow */

struct node {
	struct ha_device *d;
	struct store *s;
	char img[96], meta[96];
	int events[HA_EVENT_VERIFY_FINISHED + 1];
	int sync_fd, hb_fd; /* our duplicates of the link sockets, to cut them */
	uint64_t node_id;
	enum ha_role role;
	uint64_t bad_offset; /* nonzero: the replica's writes there fail (node_open) */
};

struct io_req {
	struct store_io io;
	int done, err;
	uint8_t *buf;
	struct node *check_partner; /* FUA: the partner's file must hold buf on completion */
	uint64_t offset;
	size_t len;
	bool partner_had_it;
};

static struct reactor *r;
static struct node A, B;
static enum ha_failover strategy;
static unsigned n_hb, n_sync;
static const struct ha_arbiter *arbiter;
static enum ha_initial_sync initial;

/* ---- the loop ------------------------------------------------------------------------------ */

static bool (*cond)(void);
static uint64_t deadline;

static void check_tick(void *arg)
{
	if ((cond != NULL && cond()) || now_ms() > deadline)
		reactor_stop(r);
}

/* Runs the loop until c() holds (NULL: for `ms`); false if it never did. */
static bool run_until(bool (*c)(void), unsigned ms)
{
	cond = c;
	deadline = now_ms() + ms;
	if (c == NULL || !c()) {
		assert_int_equal(reactor_add_ticker(r, 2, check_tick, NULL), 0);
		assert_int_equal(reactor_run(r), 0);
		reactor_remove_ticker(r, check_tick, NULL);
	}
	return c == NULL || c();
}

/* Runs once at the next event of that kind (from inside the device), then is cleared. */
static void (*at_event)(struct node *n, enum ha_event ev);

static void on_event(void *arg, struct ha_device *d, enum ha_event ev, const char *detail)
{
	((struct node *)arg)->events[ev]++;
	if (at_event != NULL)
		at_event(arg, ev);
}

/* ---- nodes --------------------------------------------------------------------------------- */

static void node_init(struct node *n, const char *tag, enum ha_role role, uint64_t id)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->img, sizeof(n->img), "/dev/shm/twinsan-test-ha-%d-%s.img", (int)getpid(), tag);
	snprintf(n->meta, sizeof(n->meta), "/dev/shm/twinsan-test-ha-%d-%s.meta", (int)getpid(), tag);
	unlink(n->img);
	unlink(n->meta);
	n->role = role;
	n->node_id = id;
	n->sync_fd = n->hb_fd = -1;
}

/* A replica with a bad spot: the first write at one offset fails, the rest goes to the file. */
struct faulty {
	struct store *inner;
	uint64_t bad_offset;
};

static void faulty_fire(struct reactor_op *op, int res)
{
	struct store_io *io = container_of(op, struct store_io, op);

	io->done(io, io->sync_result);
}

static void f_readv(void *impl, struct reactor *rr, struct store_io *io, const struct iovec *iov, int iovcnt,
                    uint64_t offset)
{
	store_readv(((struct faulty *)impl)->inner, rr, io, iov, iovcnt, offset);
}

static void f_writev(void *impl, struct reactor *rr, struct store_io *io, const struct iovec *iov, int iovcnt,
                     uint64_t offset, bool fua)
{
	struct faulty *f = impl;

	if (offset != f->bad_offset) {
		store_writev(f->inner, rr, io, iov, iovcnt, offset, fua);
		return;
	}
	f->bad_offset = UINT64_MAX;
	io->sync_result = -EIO;
	reactor_defer(rr, &io->op, faulty_fire);
}

static void f_flush(void *impl, struct reactor *rr, struct store_io *io)
{
	store_flush(((struct faulty *)impl)->inner, rr, io);
}

static void f_discard(void *impl, struct reactor *rr, struct store_io *io, uint64_t offset, uint64_t length)
{
	store_discard(((struct faulty *)impl)->inner, rr, io, offset, length);
}

static int f_map_status(void *impl, uint64_t offset, bool *mapped, uint64_t *length)
{
	return store_map_status(((struct faulty *)impl)->inner, offset, mapped, length);
}

static void f_close(void *impl)
{
	store_close(((struct faulty *)impl)->inner);
	free(impl);
}

static const struct store_ops faulty_ops = {
	.readv = f_readv, .writev = f_writev, .flush = f_flush, .discard = f_discard,
	.map_status = f_map_status, .close = f_close,
};

static struct store *faulty_new(struct store *inner, uint64_t bad_offset)
{
	struct faulty *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*f = (struct faulty){inner, bad_offset};
	return store_new(&faulty_ops, f, &(struct store_caps){.size = store_size(inner),
	                                                      .alignment = store_alignment(inner),
	                                                      .can_discard = true});
}

static void node_open(struct node *n)
{
	static const uint8_t secret[] = "test link secret";
	struct store_params sp = {.path = n->img, .create_size = DEV_SIZE};
	struct ha_device_params p = {
		.name = n->role == HA_ROLE_PRIMARY ? "HA1" : "HA1-partner", .meta_path = n->meta,
		.uuid = {0x7a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, .role = n->role, .node_id = n->node_id,
		.initial_sync = initial, .failover = strategy, .extent_size = EXTENT, .secret = secret,
		.secret_len = sizeof(secret) - 1, .n_sync_links = n_sync, .n_heartbeat_links = n_hb, .ping_interval_ms = 100,
		.timeout_ms = 4000, .arbiter = arbiter, .event = on_event, .arg = n,
	};
	char err[256];

	assert_int_equal(store_open(&sp, &p.backing, err, sizeof(err)), 0);
	if (n->bad_offset != 0)
		p.backing = faulty_new(p.backing, n->bad_offset);
	if (ha_device_open(r, &p, &n->d, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	n->s = ha_device_store(n->d);
	memset(n->events, 0, sizeof(n->events));
}

static void node_close(struct node *n)
{
	if (n->s)
		store_close(n->s);
	n->s = NULL;
	n->d = NULL;
	if (n->sync_fd >= 0)
		close(n->sync_fd);
	if (n->hb_fd >= 0)
		close(n->hb_fd);
	n->sync_fd = n->hb_fd = -1;
}

static void connect_kind(enum proto_link_kind kind)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (kind == PROTO_LINK_SYNC) {
		A.sync_fd = dup(sv[0]);
		B.sync_fd = dup(sv[1]);
	} else {
		A.hb_fd = dup(sv[0]);
		B.hb_fd = dup(sv[1]);
	}
	ha_device_add_link(A.d, sv[0], kind, 0);
	ha_device_add_link(B.d, sv[1], kind, 0);
}

static void cut(int *fd)
{
	shutdown(*fd, SHUT_RDWR);
	close(*fd);
	*fd = -1;
}

/* Every sync connection dies at once, seen from both nodes. */
static void cut_sync(void)
{
	cut(&A.sync_fd);
	close(B.sync_fd);
	B.sync_fd = -1;
}

static struct ha_device_status st(const struct node *n)
{
	struct ha_device_status s;

	ha_device_status(n->d, &s);
	return s;
}

static bool both_synchronized(void)
{
	return st(&A).state == HA_SYNC_SYNCHRONIZED && st(&B).state == HA_SYNC_SYNCHRONIZED &&
	       st(&A).access == STORE_ACCESS_OK && st(&B).access == STORE_ACCESS_OK;
}

static void test_setup_pair(enum ha_failover f, unsigned hb, enum ha_initial_sync mode)
{
	strategy = f;
	n_hb = hb;
	n_sync = 1;
	initial = mode;
	node_init(&A, "a", HA_ROLE_PRIMARY, 1);
	node_init(&B, "b", HA_ROLE_SECONDARY, 2);
}

/* A new pair, connected and in sync. */
static void start_pair(void)
{
	node_open(&A);
	node_open(&B);
	connect_kind(PROTO_LINK_SYNC);
	if (n_hb)
		connect_kind(PROTO_LINK_HEARTBEAT);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
}

static int setup(void **state)
{
	log_set_level(getenv("HA_TEST_LOG") && *getenv("HA_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	arbiter = NULL;
	at_event = NULL;
	return reactor_new(256, &r);
}

static int teardown(void **state)
{
	node_close(&A);
	node_close(&B);
	run_until(NULL, 400); /* the links say goodbye and free themselves (a heartbeat tick at most) */
	unlink(A.img);
	unlink(A.meta);
	unlink(B.img);
	unlink(B.meta);
	reactor_free(r);
	return 0;
}

/* ---- I/O ------------------------------------------------------------------------------------ */

static bool file_has(const char *path, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	int fd = open(path, O_RDONLY);
	bool same = fd >= 0 && pread(fd, got, len, (off_t)off) == (ssize_t)len && memcmp(got, want, len) == 0;

	if (fd >= 0)
		close(fd);
	free(got);
	return same;
}

static void on_io(struct store_io *io, int err)
{
	struct io_req *q = container_of(io, struct io_req, io);

	q->done = 1;
	q->err = err;
	if (q->check_partner)
		q->partner_had_it = file_has(q->check_partner->img, q->offset, q->buf, q->len);
}

static struct io_req *pending_reqs[512];
static unsigned n_pending;

static bool all_done(void)
{
	for (unsigned i = 0; i < n_pending; i++) {
		if (!pending_reqs[i]->done)
			return false;
	}
	return true;
}

static struct io_req *start_write(struct node *n, uint64_t off, size_t len, uint8_t seed, bool fua)
{
	struct io_req *q = calloc(1, sizeof(*q));

	q->buf = malloc(len);
	for (size_t i = 0; i < len; i++)
		q->buf[i] = (uint8_t)(seed + i * 13 + (i >> 9));
	q->offset = off;
	q->len = len;
	q->io.done = on_io;
	pending_reqs[n_pending++] = q;
	store_write(n->s, r, &q->io, q->buf, len, off, fua);
	return q;
}

static void wait_all(void)
{
	assert_true(run_until(all_done, HANG_GUARD_MS));
	for (unsigned i = 0; i < n_pending; i++) {
		assert_int_equal(pending_reqs[i]->err, 0);
		free(pending_reqs[i]->buf);
		free(pending_reqs[i]);
	}
	n_pending = 0;
}

static void write_sync(struct node *n, uint64_t off, size_t len, uint8_t seed)
{
	start_write(n, off, len, seed, false);
	wait_all();
}

static int read_sync(struct node *n, uint64_t off, uint8_t *buf, size_t len)
{
	struct io_req q = {.io.done = on_io};

	pending_reqs[n_pending++] = &q;
	store_read(n->s, r, &q.io, buf, len, off);
	assert_true(run_until(all_done, HANG_GUARD_MS));
	n_pending = 0;
	return q.err;
}

static bool replicas_identical(void)
{
	uint8_t *a = malloc(DEV_SIZE);
	bool same = false;
	int fd = open(A.img, O_RDONLY);

	if (fd >= 0 && pread(fd, a, DEV_SIZE, 0) == DEV_SIZE)
		same = file_has(B.img, 0, a, DEV_SIZE);
	if (fd >= 0)
		close(fd);
	free(a);
	return same;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void fill_file(const char *path, uint8_t byte)
{
	uint8_t *buf = malloc(DEV_SIZE);
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	memset(buf, byte, DEV_SIZE);
	assert_int_equal(pwrite(fd, buf, DEV_SIZE, 0), DEV_SIZE);
	close(fd);
	free(buf);
}

static void test_new_pair_with_clear_sync_is_synchronized_and_reads_zeros(void **state)
{
	uint8_t *buf = malloc(EXTENT), zero[EXTENT] = {0};

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_CLEAR);
	fill_file(A.img, 0xa5); /* old contents of both disks must not show through */
	fill_file(B.img, 0x5a);
	start_pair();
	assert_true(replicas_identical());
	assert_int_equal(read_sync(&A, 0, buf, EXTENT), 0);
	assert_memory_equal(buf, zero, EXTENT);
	assert_int_equal(read_sync(&B, DEV_SIZE - EXTENT, buf, EXTENT), 0);
	assert_memory_equal(buf, zero, EXTENT);
	assert_int_equal(st(&A).gen.current, st(&B).gen.current);
	assert_int_equal(st(&B).resync_received_bytes, 0); /* zeroed, not copied */
	free(buf);
}

static void test_write_through_either_node_reads_back_on_both(void **state)
{
	uint8_t *buf = malloc(1u << 20);

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&A, 8192, 4096, 1);
	write_sync(&B, 1u << 20, 1u << 20, 2);
	write_sync(&B, 3u << 20, 200u << 10, 3);
	assert_int_equal(read_sync(&B, 8192, buf, 4096), 0);
	assert_true(file_has(A.img, 8192, buf, 4096));
	assert_int_equal(read_sync(&A, 1u << 20, buf, 1u << 20), 0);
	assert_true(file_has(B.img, 1u << 20, buf, 1u << 20));
	assert_true(replicas_identical());
	free(buf);
}

static void test_concurrent_overlapping_writes_through_both_nodes_leave_identical_replicas(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	srand(7);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 100; i++) {
			/* a hot 256 KiB window so that writes overlap a lot */
			uint64_t off = (uint64_t)(rand() % 64) * 4096;
			size_t len = (size_t)(1 + rand() % 32) * 4096;

			start_write(i % 2 ? &A : &B, off, len, (uint8_t)rand(), rand() % 4 == 0);
		}
		wait_all();
		assert_true(replicas_identical());
	}
}

static void test_flush_and_fua_reach_both_replicas(void **state)
{
	struct io_req *q, fl = {.io.done = on_io};

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	/* A FUA write completes only once the partner wrote it, whichever node took it. */
	q = start_write(&A, 65536, 8192, 9, true);
	q->check_partner = &B;
	run_until(all_done, HANG_GUARD_MS);
	assert_true(q->partner_had_it);
	wait_all();
	q = start_write(&B, 131072, 8192, 10, true);
	q->check_partner = &A;
	run_until(all_done, HANG_GUARD_MS);
	assert_true(q->partner_had_it);
	wait_all();
	pending_reqs[n_pending++] = &fl;
	store_flush(A.s, r, &fl.io);
	assert_true(run_until(all_done, HANG_GUARD_MS));
	assert_int_equal(fl.err, 0);
	n_pending = 0;
}

static void test_partner_lost_survivor_serves_and_resync_moves_only_dirty_extents(void **state)
{
	struct ha_device_status sa;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	node_close(&B); /* the secondary goes away (GOODBYE) */
	assert_true(run_until(NULL, 50));
	sa = st(&A);
	assert_int_equal(sa.access, STORE_ACCESS_OK);
	assert_int_equal(sa.reason, HA_REASON_PARTNER_LOST);
	/* 3 extents and a bit: 4 extents dirty */
	write_sync(&A, 0, 3 * EXTENT, 21);
	write_sync(&A, 10 * EXTENT + 4096, 4096, 22);
	assert_int_equal(st(&A).dirty_bytes, 4 * EXTENT);
	node_open(&B);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	sa = st(&A);
	assert_true(sa.resync_sent_bytes <= 4 * EXTENT * 11 / 10);
	assert_true(sa.resync_sent_bytes >= 4 * EXTENT);
	assert_int_equal(A.events[HA_EVENT_SYNC_FINISHED], 1);
	/* both nodes show the finished resync's progress */
	assert_int_equal(sa.sync_total_bytes, 4 * EXTENT);
	assert_int_equal(sa.sync_done_bytes, 4 * EXTENT);
	assert_int_equal(st(&B).sync_done_bytes, 4 * EXTENT);
	assert_true(replicas_identical());
}

static void copy_file(const char *from, const char *to)
{
	static uint8_t buf[DEV_SIZE];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n = read(in, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

static bool b_alone(void);

/* The power of the nodes goes: what is on disk now is all that survives of them. */
static void crash(struct node *const *nodes, int n)
{
	char snap[4][128];
	const char *files[4];

	for (int i = 0; i < 2 * n; i++) {
		files[i] = i % 2 ? nodes[i / 2]->meta : nodes[i / 2]->img;
		snprintf(snap[i], sizeof(snap[i]), "%s.crash", files[i]);
		copy_file(files[i], snap[i]);
	}
	for (int i = 0; i < n; i++)
		node_close(nodes[i]);
	run_until(NULL, 50);
	for (int i = 0; i < 2 * n; i++) {
		copy_file(snap[i], files[i]);
		unlink(snap[i]);
	}
}

static void crash_both(void)
{
	crash((struct node *const[]){&A, &B}, 2);
}

/* Six extents written through either node, each node keeping its own marked. */
static void write_six_kept_extents(void)
{
	for (int i = 0; i < 6; i++)
		start_write(i % 2 ? &A : &B, (uint64_t)i * 3 * EXTENT, 8192, (uint8_t)i, false);
	wait_all();
}

static void test_restart_of_both_after_crash_needs_no_full_resync(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_six_kept_extents();
	crash_both();
	start_pair();
	/* the kept extents are compared, and being equal, nothing moves */
	assert_int_equal(st(&A).sync_total_bytes, 6 * EXTENT);
	assert_int_equal(st(&A).resync_compared_bytes, 6 * EXTENT);
	assert_int_equal(st(&A).resync_sent_bytes, 0);
	assert_true(replicas_identical());
}

static void test_a_suspect_extent_that_really_differs_is_found_by_digest_and_repaired(void **state)
{
	int fd;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_six_kept_extents();
	crash_both();
	/* B lost part of a write it had acknowledged (a volatile cache), behind the device's back */
	fd = open(B.img, O_WRONLY);
	assert_int_equal(pwrite(fd, "lost", 4, 9 * EXTENT + 100), 4);
	close(fd);
	start_pair();
	assert_int_equal(st(&A).resync_compared_bytes, 6 * EXTENT);
	assert_int_equal(st(&B).resync_compared_bytes, 6 * EXTENT);
	/* one digest chunk moved: the extent, as extents here are one chunk */
	assert_int_equal(st(&A).resync_sent_bytes, EXTENT);
	assert_int_equal(st(&B).resync_received_bytes, EXTENT);
	assert_true(replicas_identical());
}

static void test_primary_as_target_repairs_a_differing_suspect_extent_from_the_secondary(void **state)
{
	int fd;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_six_kept_extents();
	/* the primary dies; B goes on alone with the six extents suspect */
	cut_sync();
	crash((struct node *const[]){&A}, 1);
	assert_true(run_until(b_alone, HANG_GUARD_MS));
	write_sync(&B, 20 * EXTENT, EXTENT, 7);
	fd = open(A.img, O_WRONLY);
	assert_int_equal(pwrite(fd, "lost", 4, 3 * EXTENT + 5), 4);
	close(fd);
	node_open(&A);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	/* the written extent, known, and the damaged suspect one moved; the rest compared */
	assert_int_equal(st(&A).resync_received_bytes, 2 * EXTENT);
	assert_true(replicas_identical());
}

static bool a_clean_and_replicas_identical(void)
{
	return st(&A).dirty_bytes == 0 && replicas_identical();
}

static void test_a_write_failed_on_the_partner_only_is_repaired_by_the_primary_at_once(void **state)
{
	struct io_req *q;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	B.bad_offset = 5 * EXTENT;
	start_pair();
	q = start_write(&A, 5 * EXTENT, 4096, 9, false);
	assert_true(run_until(all_done, HANG_GUARD_MS));
	assert_int_equal(q->err, -EIO);
	free(q->buf);
	free(q);
	n_pending = 0;
	/* A has the data, B not: A marks the extent and copies it, staying in sync */
	assert_true(run_until(a_clean_and_replicas_identical, HANG_GUARD_MS));
	assert_int_equal(st(&A).resync_sent_bytes, EXTENT);
	assert_int_equal(st(&A).resync_compared_bytes, 0);
	assert_int_equal(st(&A).state, HA_SYNC_SYNCHRONIZED);
}

static bool b_stopped_a_alone(void)
{
	return st(&B).access == STORE_ACCESS_UNAVAILABLE && st(&B).reason == HA_REASON_FAILOVER_STOPPED &&
	       st(&A).access == STORE_ACCESS_OK && st(&A).reason == HA_REASON_PARTNER_LOST;
}

static void test_heartbeat_strategy_stops_secondary_when_only_heartbeat_answers(void **state)
{
	uint8_t buf[4096];

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 1, HA_INITIAL_NONE);
	start_pair();
	cut(&A.sync_fd);
	assert_true(run_until(b_stopped_a_alone, HANG_GUARD_MS));
	assert_int_equal(read_sync(&B, 0, buf, sizeof(buf)), -ENOTCONN);
	write_sync(&A, 0, 4096, 5);
}

/* ---- a fake witness: grants node 1, refuses node 2, answers from the loop ----------------------- */

struct fake_witness {
	struct reactor_timer t;
	void (*verdict)(void *arg, bool granted);
	void *arg;
	bool grant;
	int claims, releases;
};
static struct fake_witness fw[3];

static void fw_answer(struct reactor_timer *t)
{
	struct fake_witness *w = container_of(t, struct fake_witness, t);

	w->verdict(w->arg, w->grant);
}

static void fw_claim(void *ctx, const uint8_t uuid[16], uint64_t node_id, const struct generation *gen,
                     void (*verdict)(void *arg, bool granted), void *arg)
{
	struct fake_witness *w = &fw[node_id];

	w->claims++;
	w->verdict = verdict;
	w->arg = arg;
	w->grant = node_id == 1;
	reactor_timer_start(r, &w->t, 20, fw_answer);
}

static void fw_release(void *ctx, const uint8_t uuid[16])
{
	fw[0].releases++;
}

static const struct ha_arbiter fake_arbiter = {fw_claim, fw_release, NULL};

static void test_majority_strategy_serves_alone_only_with_grant(void **state)
{
	memset(fw, 0, sizeof(fw));
	test_setup_pair(HA_FAILOVER_MAJORITY, 0, HA_INITIAL_NONE);
	arbiter = &fake_arbiter;
	start_pair();
	cut(&A.sync_fd);
	assert_true(run_until(b_stopped_a_alone, HANG_GUARD_MS));
	assert_int_equal(fw[1].claims, 1);
	assert_int_equal(fw[2].claims, 1);
	write_sync(&A, 0, 4096, 6);
	reactor_timer_cancel(r, &fw[1].t);
	reactor_timer_cancel(r, &fw[2].t);
}

static bool split_brain_seen(void)
{
	return st(&A).reason == HA_REASON_SPLIT_BRAIN && st(&B).reason == HA_REASON_SPLIT_BRAIN;
}

static bool both_alone(void)
{
	return st(&A).access == STORE_ACCESS_OK && st(&B).access == STORE_ACCESS_OK && !st(&A).partner_connected &&
	       !st(&B).partner_connected;
}

static void test_split_brain_is_detected_and_not_merged_until_resolved(void **state)
{
	uint8_t *a = malloc(8192);
	char err[256];

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	/* Nothing answers on either side: both go on alone and both write. */
	cut_sync();
	assert_true(run_until(both_alone, HANG_GUARD_MS));
	write_sync(&A, 0, 8192, 31);
	write_sync(&B, 5 * EXTENT, 8192, 32);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(split_brain_seen, HANG_GUARD_MS));
	assert_int_equal(A.events[HA_EVENT_SPLIT_BRAIN], 1);
	assert_int_equal(B.events[HA_EVENT_SPLIT_BRAIN], 1);
	assert_false(replicas_identical());
	assert_int_equal(st(&A).access, STORE_ACCESS_OK); /* the primary keeps serving */
	assert_int_equal(st(&B).access, STORE_ACCESS_UNAVAILABLE);
	run_until(NULL, 100);
	assert_false(replicas_identical()); /* still nothing merged */
	assert_int_equal(read_sync(&A, 0, a, 8192), 0);
	assert_int_equal(ha_device_resolve_split_brain(A.d, true, err, sizeof(err)), 0);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_true(replicas_identical());
	assert_true(file_has(B.img, 0, a, 8192)); /* A's data won */
	assert_true(st(&A).resync_sent_bytes <= 2 * EXTENT);
	free(a);
}

static struct node *verifier;

static bool verify_done(void)
{
	return st(verifier).verify_done;
}

/* A byte of one replica changed behind the device's back, then a verify from `from`. */
static void plant_and_verify(struct node *replica, uint64_t offset, struct node *from)
{
	char err[256];
	int fd = open(replica->img, O_WRONLY);

	assert_int_equal(pwrite(fd, "X", 1, (off_t)offset), 1);
	close(fd);
	verifier = from;
	assert_int_equal(ha_device_verify(from->d, err, sizeof(err)), 0);
}

static void test_verify_finds_a_planted_difference(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&A, 0, 65536, 41);
	plant_and_verify(&B, 3 * 4096 + 17, &A);
	assert_true(run_until(verify_done, HANG_GUARD_MS));
	assert_int_equal(st(&A).verify_differing_blocks, 1);
	assert_int_equal(st(&A).verify_done_bytes, DEV_SIZE);
	assert_int_equal(A.events[HA_EVENT_VERIFY_FINISHED], 1);
}

static void test_verify_from_the_secondary_under_writes_finds_only_the_planted_difference(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	plant_and_verify(&A, DEV_SIZE - 100, &B);
	/* writes through both nodes while it runs cause no false differences */
	srand(3);
	while (!verify_done()) {
		for (int i = 0; i < 8; i++)
			start_write(i % 2 ? &A : &B, (uint64_t)(rand() % (DEV_SIZE / 4096 - 1)) * 4096, 4096, (uint8_t)rand(),
			            false);
		wait_all();
	}
	assert_int_equal(st(&B).verify_differing_blocks, 1);
	assert_int_equal(st(&B).verify_done_bytes, DEV_SIZE);
}

static bool b_alone(void)
{
	return st(&B).access == STORE_ACCESS_OK && st(&B).reason == HA_REASON_PARTNER_LOST;
}

static void test_primary_lost_secondary_takes_over_and_primary_resyncs_from_it(void **state)
{
	uint8_t *buf = malloc(2 * EXTENT);

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	node_close(&A);
	assert_true(run_until(b_alone, HANG_GUARD_MS));
	write_sync(&B, 7 * EXTENT, 2 * EXTENT, 51);
	node_open(&A);
	connect_kind(PROTO_LINK_SYNC);
	/* the primary is the target: it must not serve until it has the secondary's data */
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_int_equal(st(&A).resync_received_bytes, 2 * EXTENT);
	assert_int_equal(read_sync(&A, 7 * EXTENT, buf, 2 * EXTENT), 0);
	assert_true(file_has(B.img, 7 * EXTENT, buf, 2 * EXTENT));
	assert_true(replicas_identical());
	free(buf);
}

static void test_discard_through_either_node_reads_back_zeros_on_both(void **state)
{
	static const uint8_t zero[2 * EXTENT];
	struct io_req q = {.io.done = on_io};

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&A, 0, 4 * EXTENT, 61);
	pending_reqs[n_pending++] = &q;
	store_discard(B.s, r, &q.io, EXTENT, 2 * EXTENT);
	assert_true(run_until(all_done, HANG_GUARD_MS));
	assert_int_equal(q.err, 0);
	n_pending = 0;
	assert_true(file_has(A.img, EXTENT, zero, 2 * EXTENT));
	assert_true(file_has(B.img, EXTENT, zero, 2 * EXTENT));
	assert_true(replicas_identical());
}

/* COMPARE AND WRITE through node n: `expect` then `data`, `len` bytes each, in q->buf. */
static struct io_req *start_caw(struct node *n, uint64_t off, const uint8_t *expect, const uint8_t *data, size_t len)
{
	struct io_req *q = calloc(1, sizeof(*q));

	q->buf = malloc(2 * len);
	memcpy(q->buf, expect, len);
	memcpy(q->buf + len, data, len);
	q->offset = off;
	q->len = len;
	q->io.done = on_io;
	pending_reqs[n_pending++] = q;
	assert_true(store_compare_and_write(n->s, r, &q->io, q->buf, q->buf + len, len, off, false));
	return q;
}

static void free_pending(void)
{
	for (unsigned i = 0; i < n_pending; i++) {
		free(pending_reqs[i]->buf);
		free(pending_reqs[i]);
	}
	n_pending = 0;
}

static void test_compare_and_writes_through_both_nodes_at_once_exactly_one_wins(void **state)
{
	enum { BLOCK = 4096, PER_NODE = 3 };
	uint8_t *now = malloc(BLOCK), *got = malloc(BLOCK);

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&A, 8 * BLOCK, BLOCK, 90);
	assert_int_equal(read_sync(&A, 8 * BLOCK, now, BLOCK), 0);
	for (int round = 0; round < 6; round++) {
		struct io_req *winner = NULL;

		/* Every request expects what the block holds now and would write its own
		 * pattern, so after the first one lands every other one must miscompare. */
		for (int i = 0; i < 2 * PER_NODE; i++) {
			uint8_t *mine = malloc(BLOCK);

			memset(mine, 16 * round + i + 1, BLOCK);
			start_caw((i + round) % 2 ? &A : &B, 8 * BLOCK, now, mine, BLOCK);
			free(mine);
		}
		assert_true(run_until(all_done, HANG_GUARD_MS));
		for (unsigned i = 0; i < n_pending; i++) {
			struct io_req *q = pending_reqs[i];

			if (q->err == 0) {
				assert_null(winner);
				winner = q;
			} else {
				assert_int_equal(q->err, -EILSEQ);
				assert_int_equal(q->io.miscompare, 0); /* every byte changed */
			}
		}
		assert_non_null(winner);
		memcpy(now, winner->buf + BLOCK, BLOCK);
		free_pending();
		assert_int_equal(read_sync(&B, 8 * BLOCK, got, BLOCK), 0);
		assert_memory_equal(got, now, BLOCK);
		assert_true(replicas_identical());
	}
	free(now);
	free(got);
}

static void test_compare_and_write_miscompare_names_the_offset_and_writes_nothing_on_either_node(void **state)
{
	enum { LEN = 8192 };
	uint8_t *expect = malloc(LEN), *data = malloc(LEN);
	struct node *through[] = {&A, &B};

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&B, 3 * LEN, LEN, 17);
	assert_int_equal(read_sync(&A, 3 * LEN, expect, LEN), 0);
	memset(data, 0xee, LEN);
	for (int i = 0; i < 2; i++) {
		expect[5000 + i] ^= 0x40;
		start_caw(through[i], 3 * LEN, expect, data, LEN);
		assert_true(run_until(all_done, HANG_GUARD_MS));
		assert_int_equal(pending_reqs[0]->err, -EILSEQ);
		assert_int_equal(pending_reqs[0]->io.miscompare, 5000 + i);
		free_pending();
		expect[5000 + i] ^= 0x40;
		assert_true(file_has(A.img, 3 * LEN, expect, LEN));
		assert_true(replicas_identical());
	}
	/* And a matching one writes through either node. */
	start_caw(&B, 3 * LEN, expect, data, LEN);
	assert_true(run_until(all_done, HANG_GUARD_MS));
	assert_int_equal(pending_reqs[0]->err, 0);
	free_pending();
	assert_true(file_has(A.img, 3 * LEN, data, LEN));
	assert_true(replicas_identical());
	free(expect);
	free(data);
}

/* COMPARE AND WRITEs in flight through both nodes when the link dies each end (written,
 * miscompared or retryable), none hangs; a node that goes on alone compares against its
 * own replica, the forwarded ones included. */
static void test_compare_and_writes_in_flight_when_the_link_dies_end_and_the_survivors_compare_locally(void **state)
{
	enum { BLOCK = 4096 };
	uint8_t *now = malloc(BLOCK), *mine = malloc(BLOCK);
	int written = 0;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&A, 0, BLOCK, 5);
	assert_int_equal(read_sync(&A, 0, now, BLOCK), 0);
	for (int i = 0; i < 8; i++) {
		memset(mine, i + 1, BLOCK);
		start_caw(i % 2 ? &A : &B, 0, now, mine, BLOCK);
	}
	cut_sync();
	assert_true(run_until(all_done, HANG_GUARD_MS));
	for (unsigned i = 0; i < n_pending; i++) {
		int err = pending_reqs[i]->err;

		assert_true(err == 0 || err == -EILSEQ || err == -ENOTCONN);
		written += err == 0;
	}
	assert_true(written <= 2); /* at most one in the pair's order and one per node alone */
	free_pending();
	assert_true(run_until(both_alone, HANG_GUARD_MS));
	assert_int_equal(read_sync(&B, 0, now, BLOCK), 0);
	memset(mine, 0x77, BLOCK);
	start_caw(&B, 0, now, mine, BLOCK);
	start_caw(&B, 0, now, mine + 1, BLOCK - 1); /* a shorter one on the same bytes */
	assert_true(run_until(all_done, HANG_GUARD_MS));
	assert_int_equal(pending_reqs[0]->err, 0);
	assert_int_equal(pending_reqs[1]->err, -EILSEQ);
	free_pending();
	assert_true(file_has(B.img, 0, mine, BLOCK));
	free(now);
	free(mine);
}

static uint8_t caw_now[4096], caw_new[4096];

static void caw_when_b_starts_feeding_the_resync(struct node *n, enum ha_event ev)
{
	if (n == &B && ev == HA_EVENT_SYNC_STARTED) {
		at_event = NULL;
		start_caw(&B, 40 * EXTENT, caw_now, caw_new, sizeof(caw_now));
	}
}

/* The primary returns after the secondary served alone: it is the resync target and its
 * replica may not hold the bytes yet, so a COMPARE AND WRITE through the secondary then
 * is compared against the data the secondary serves, not refused. */
static void test_compare_and_write_through_the_secondary_while_the_primary_resyncs_compares_served_data(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	node_close(&A);
	assert_true(run_until(b_alone, HANG_GUARD_MS));
	write_sync(&B, 0, 48 * EXTENT, 53);
	assert_int_equal(read_sync(&B, 40 * EXTENT, caw_now, sizeof(caw_now)), 0);
	memset(caw_new, 0x3c, sizeof(caw_new));
	at_event = caw_when_b_starts_feeding_the_resync;
	node_open(&A);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_true(run_until(all_done, HANG_GUARD_MS));
	assert_int_equal(n_pending, 1);
	assert_int_equal(pending_reqs[0]->err, 0);
	free_pending();
	assert_true(file_has(A.img, 40 * EXTENT, caw_new, sizeof(caw_new)));
	assert_true(replicas_identical());
}

static void test_clean_shutdown_in_sync_needs_no_resync(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	for (int i = 0; i < 8; i++)
		start_write(i % 2 ? &A : &B, (uint64_t)i * EXTENT, 4096, (uint8_t)i, false);
	wait_all();
	node_close(&B);
	node_close(&A);
	run_until(NULL, 50);
	start_pair();
	assert_int_equal(st(&A).sync_total_bytes, 0);
	assert_int_equal(st(&A).resync_sent_bytes, 0);
	assert_int_equal(A.events[HA_EVENT_SYNC_STARTED], 0);
}

static void test_copy_initial_sync_copies_the_primary_data_to_a_new_replica(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_COPY);
	fill_file(A.img, 0x3c);
	start_pair();
	assert_int_equal(st(&A).resync_sent_bytes, DEV_SIZE);
	assert_true(replicas_identical());
}

static void test_writes_in_flight_when_the_link_dies_end_cleanly_and_replicas_converge(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	for (int i = 0; i < 40; i++)
		start_write(i % 2 ? &A : &B, (uint64_t)(i % 10) * 8192, 65536, (uint8_t)i, false);
	cut_sync();
	assert_true(run_until(all_done, HANG_GUARD_MS));
	/* Each write ended, successfully or with a retryable error; none hangs. */
	for (unsigned i = 0; i < n_pending; i++)
		assert_true(pending_reqs[i]->err == 0 || pending_reqs[i]->err == -ENOTCONN);
	for (unsigned i = 0; i < n_pending; i++) {
		free(pending_reqs[i]->buf);
		free(pending_reqs[i]);
	}
	n_pending = 0;
	connect_kind(PROTO_LINK_SYNC);
	/* Both went on alone and both may have written: an operator decides. */
	run_until(split_brain_seen, 2000);
	if (st(&A).reason == HA_REASON_SPLIT_BRAIN) {
		char err[256];

		assert_int_equal(ha_device_resolve_split_brain(B.d, false, err, sizeof(err)), 0);
	}
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_true(replicas_identical());
}

static bool a_on_link_1(void)
{
	return both_synchronized() && st(&A).partner_connected && st(&A).links[0].up == false;
}

static void test_second_sync_link_carries_the_session_when_the_first_dies(void **state)
{
	int sv[2];

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	n_sync = 2;
	start_pair();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ha_device_add_link(A.d, sv[0], PROTO_LINK_SYNC, 1);
	ha_device_add_link(B.d, sv[1], PROTO_LINK_SYNC, 1);
	run_until(NULL, 100);
	cut(&A.sync_fd);
	assert_true(run_until(a_on_link_1, HANG_GUARD_MS));
	write_sync(&B, 0, 8192, 71);
	assert_true(replicas_identical());
}

static void test_resync_under_steady_writes_ends_with_identical_replicas(void **state)
{
	int rounds = 0;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	node_close(&B);
	run_until(NULL, 50);
	for (int i = 0; i < 64; i++)
		start_write(&A, (uint64_t)i * EXTENT, 4096, (uint8_t)i, false);
	wait_all();
	node_open(&B);
	connect_kind(PROTO_LINK_SYNC);
	srand(11);
	/* The source keeps taking writes all over the device while it copies. */
	while (!both_synchronized()) {
		assert_true(rounds++ < 2000);
		for (int i = 0; i < 8; i++)
			start_write(&A, (uint64_t)(rand() % (DEV_SIZE / 4096)) * 4096, 4096, (uint8_t)rand(), false);
		wait_all();
	}
	assert_true(replicas_identical());
	assert_true(st(&A).resync_sent_bytes <= 2ull * DEV_SIZE);
}

static void test_digest_resync_under_writes_through_both_nodes_ends_with_identical_replicas(void **state)
{
	int rounds = 0, fd;

	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	for (int i = 0; i < 64; i++) /* every extent kept marked on one node or the other */
		start_write(i % 2 ? &A : &B, (uint64_t)i * EXTENT, 4096, (uint8_t)i, false);
	wait_all();
	crash_both();
	fd = open(B.img, O_WRONLY); /* and a few really differ */
	for (int i = 0; i < 8; i++)
		assert_int_equal(pwrite(fd, "lost", 4, (off_t)(i * 7 + 1) * EXTENT + 4096), 4);
	close(fd);
	node_open(&A);
	node_open(&B);
	connect_kind(PROTO_LINK_SYNC);
	srand(12);
	/* Both nodes take writes all over the device while the extents are compared. */
	while (!both_synchronized()) {
		assert_true(rounds++ < 2000);
		for (int i = 0; i < 8; i++)
			start_write(i % 2 ? &A : &B, (uint64_t)(rand() % (DEV_SIZE / 4096)) * 4096, 4096, (uint8_t)rand(),
			            false);
		run_until(all_done, HANG_GUARD_MS);
		for (unsigned k = 0; k < n_pending; k++) { /* NOT READY while B is a target: retried later */
			free(pending_reqs[k]->buf);
			free(pending_reqs[k]);
		}
		n_pending = 0;
	}
	assert_true(st(&A).resync_compared_bytes > 0);
	assert_true(replicas_identical());
}

static void test_closing_with_io_in_flight_ends_every_request(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	for (int i = 0; i < 32; i++)
		start_write(i % 2 ? &A : &B, (uint64_t)i * 8192, 65536, (uint8_t)i, i % 3 == 0);
	node_close(&A); /* the partner's writes may be in A's store right now */
	assert_true(run_until(all_done, HANG_GUARD_MS));
	for (unsigned i = 0; i < n_pending; i++) {
		assert_true(pending_reqs[i]->err == 0 || pending_reqs[i]->err == -ENOTCONN);
		free(pending_reqs[i]->buf);
		free(pending_reqs[i]);
	}
	n_pending = 0;
}

static bool both_refused_unrelated(void)
{
	return st(&A).reason == HA_REASON_UNRELATED && st(&B).reason == HA_REASON_UNRELATED;
}

static void test_replicas_of_unrelated_histories_are_refused_not_overwritten(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	write_sync(&A, 0, 8192, 81);
	node_close(&A);
	node_close(&B);
	run_until(NULL, 50);
	/* The primary's metadata is lost: it starts a new device history on the old data. */
	unlink(A.meta);
	node_open(&A);
	node_open(&B);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_refused_unrelated, HANG_GUARD_MS));
	assert_int_equal(st(&A).resync_sent_bytes, 0);
	assert_int_equal(st(&B).resync_received_bytes, 0);
	assert_int_equal(st(&B).access, STORE_ACCESS_UNAVAILABLE);
}

static void test_a_replaced_blank_secondary_gets_a_full_copy_not_zeros(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_CLEAR);
	start_pair();
	write_sync(&A, 5 * EXTENT, 8192, 91);
	node_close(&B);
	run_until(NULL, 50);
	/* B's disk and metadata are replaced (or B crashed while zeroing): a blank replica */
	unlink(B.meta);
	unlink(B.img);
	node_open(&B);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_int_equal(st(&B).resync_received_bytes, DEV_SIZE);
	assert_true(replicas_identical());
}

static bool a_alone(void)
{
	return st(&A).access == STORE_ACCESS_OK && !st(&A).partner_connected;
}

static void test_links_reset_and_redialed_at_once_end_in_a_resync_not_a_split_brain(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	start_pair();
	cut_sync();
	assert_true(run_until(a_alone, HANG_GUARD_MS));
	write_sync(&A, 2 * EXTENT, 4096, 101); /* the primary goes on alone at once */
	assert_int_equal(st(&B).access, STORE_ACCESS_TRANSITIONING); /* the secondary waits */
	connect_kind(PROTO_LINK_SYNC);          /* the primary dials again */
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_int_equal(B.events[HA_EVENT_SPLIT_BRAIN], 0);
	assert_int_equal(st(&A).resync_sent_bytes, EXTENT);
	assert_true(replicas_identical());
}

/* ---- the channel --------------------------------------------------------------------------- */

struct chan_rec {
	int ups, downs, msgs;
	bool source;
	char last[16];
};

static struct chan_rec ca, cb;

static void ch_up(void *ctx, bool source)
{
	struct chan_rec *c = ctx;

	c->ups++;
	c->source = source;
}

static void ch_down(void *ctx) { ((struct chan_rec *)ctx)->downs++; }

static void ch_message(void *ctx, const uint8_t *body, size_t len)
{
	struct chan_rec *c = ctx;

	c->msgs++;
	snprintf(c->last, sizeof(c->last), "%.*s", (int)len, (const char *)body);
}

static const struct ha_channel_ops chan_ops = { ch_up, ch_down, ch_message };

static bool both_got_messages(void) { return ca.msgs > 0 && cb.msgs > 0; }

static bool b_channel_down_and_alone(void) { return cb.downs > 0 && b_alone(); }

/* The channel is up exactly while a session is: messages cross both ways in it, and the
 * node whose replica is newer (the primary when in sync, the survivor that wrote alone
 * after an outage) is told it is the source. */
static void test_channel_follows_the_session_and_names_the_newer_replica_its_source(void **state)
{
	test_setup_pair(HA_FAILOVER_HEARTBEAT, 0, HA_INITIAL_NONE);
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	node_open(&A);
	node_open(&B);
	ha_device_set_channel(A.d, &chan_ops, &ca);
	ha_device_set_channel(B.d, &chan_ops, &cb);
	assert_int_equal(ha_device_channel_send(A.d, (const uint8_t *)"early", 5), -1);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_int_equal(ca.ups, 1);
	assert_int_equal(cb.ups, 1);
	assert_true(ca.source);
	assert_false(cb.source);
	assert_int_equal(ha_device_channel_send(A.d, (const uint8_t *)"to B", 4), 0);
	assert_int_equal(ha_device_channel_send(B.d, (const uint8_t *)"to A", 4), 0);
	assert_true(run_until(both_got_messages, HANG_GUARD_MS));
	assert_string_equal(cb.last, "to B");
	assert_string_equal(ca.last, "to A");

	node_close(&A);
	assert_true(run_until(b_channel_down_and_alone, HANG_GUARD_MS));
	assert_int_equal(ha_device_channel_send(B.d, (const uint8_t *)"alone", 5), -1);
	write_sync(&B, 0, EXTENT, 61);
	memset(&ca, 0, sizeof(ca));
	node_open(&A);
	ha_device_set_channel(A.d, &chan_ops, &ca);
	connect_kind(PROTO_LINK_SYNC);
	assert_true(run_until(both_synchronized, HANG_GUARD_MS));
	assert_int_equal(cb.ups, 2);
	assert_true(cb.source);
	assert_false(ca.source);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_pair_with_clear_sync_is_synchronized_and_reads_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_through_either_node_reads_back_on_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_overlapping_writes_through_both_nodes_leave_identical_replicas,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_and_fua_reach_both_replicas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partner_lost_survivor_serves_and_resync_moves_only_dirty_extents, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_restart_of_both_after_crash_needs_no_full_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_suspect_extent_that_really_differs_is_found_by_digest_and_repaired,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_as_target_repairs_a_differing_suspect_extent_from_the_secondary,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_write_failed_on_the_partner_only_is_repaired_by_the_primary_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_strategy_stops_secondary_when_only_heartbeat_answers, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_majority_strategy_serves_alone_only_with_grant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_brain_is_detected_and_not_merged_until_resolved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_finds_a_planted_difference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_from_the_secondary_under_writes_finds_only_the_planted_difference,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_lost_secondary_takes_over_and_primary_resyncs_from_it, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_discard_through_either_node_reads_back_zeros_on_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compare_and_writes_through_both_nodes_at_once_exactly_one_wins, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
			test_compare_and_write_miscompare_names_the_offset_and_writes_nothing_on_either_node, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_compare_and_writes_in_flight_when_the_link_dies_end_and_the_survivors_compare_locally, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_compare_and_write_through_the_secondary_while_the_primary_resyncs_compares_served_data, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_clean_shutdown_in_sync_needs_no_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_initial_sync_copies_the_primary_data_to_a_new_replica, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_writes_in_flight_when_the_link_dies_end_cleanly_and_replicas_converge,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_sync_link_carries_the_session_when_the_first_dies, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_resync_under_steady_writes_ends_with_identical_replicas, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_digest_resync_under_writes_through_both_nodes_ends_with_identical_replicas,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_closing_with_io_in_flight_ends_every_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicas_of_unrelated_histories_are_refused_not_overwritten, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_replaced_blank_secondary_gets_a_full_copy_not_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_follows_the_session_and_names_the_newer_replica_its_source,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_reset_and_redialed_at_once_end_in_a_resync_not_a_split_brain, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
