/* A SCSI target with one 1 MiB logical unit on /dev/shm, a real reactor, two nexuses,
 * and helpers to run commands to completion: shared by the SCSI layer's unit tests.
 * Include after cmocka.h. */
#ifndef TEST_SCSI_FIXTURE_H
#define TEST_SCSI_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/reactor.h"
#include "common/util.h"
#include "scsi/scsi.h"
#include "store/store.h"

#define BLOCKS 2048u
#define BS 512u

struct fixture {
	char path[64];
	struct reactor *reactor;
	struct store *store;
	struct scsi_lu *lu;
	struct scsi_target *target;
	struct scsi_itn itn, other;
	unsigned outstanding;
};

static struct fixture *current;

static void task_done(struct scsi_task *task)
{
	if (--current->outstanding == 0)
		reactor_stop(task->reactor);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params sp = { .create_size = (uint64_t)BLOCKS * BS };
	struct scsi_lu_params lp = { .block_size = BS, .write_cache = true, .uuid = { 1, 2, 3, 4, 5 } };
	char err[256];

	snprintf(f->path, sizeof(f->path), "/dev/shm/test_scsi.%d", getpid());
	unlink(f->path);
	sp.path = f->path;
	assert_int_equal(reactor_new(64, &f->reactor), 0);
	assert_int_equal(store_open(&sp, &f->store, err, sizeof(err)), 0);
	assert_int_equal(scsi_lu_new(&lp, f->store, &f->lu, err, sizeof(err)), 0);
	assert_int_equal(scsi_target_new(&f->target), 0);
	assert_int_equal(scsi_target_add_lu(f->target, 0, f->lu), 0);
	strcpy(f->itn.initiator_name, "iqn.2026-11.org.test:a");
	strcpy(f->itn.target_name, "iqn.2026-11.org.twinsan:t");
	f->itn.relative_port = 1;
	f->itn.id = 1;
	f->other = f->itn;
	f->other.isid[5] = 1;
	f->other.id = 2;
	current = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	scsi_target_free(f->target);
	scsi_lu_free(f->lu);
	store_close(f->store);
	reactor_free(f->reactor);
	unlink(f->path);
	free(f);
	return 0;
}

static inline void prepare(struct fixture *f, struct scsi_task *t, const struct scsi_itn *itn,
                    const uint8_t *cdb, size_t cdb_len, const void *out, uint32_t out_len)
{
	memset(t, 0, sizeof(*t));
	t->itn = itn;
	memcpy(t->cdb, cdb, cdb_len);
	t->cdb_len = (uint8_t)cdb_len;
	t->data_out = (uint8_t *)out;
	t->data_out_len = out_len;
	t->expected_len = out_len ? out_len : 65536;
	t->reactor = f->reactor;
	t->done = task_done;
	f->outstanding++;
	scsi_target_execute(f->target, t);
}

static inline void wait_all(struct fixture *f)
{
	if (f->outstanding)
		assert_int_equal(reactor_run(f->reactor), 0);
	assert_int_equal(f->outstanding, 0);
}

/* Runs one command to completion on a nexus; the caller releases the task. */
static inline void run_on(struct fixture *f, struct scsi_task *t, const struct scsi_itn *itn,
                   const uint8_t *cdb, size_t cdb_len, const void *out, uint32_t out_len)
{
	prepare(f, t, itn, cdb, cdb_len, out, out_len);
	wait_all(f);
}

static inline uint8_t run(struct fixture *f, struct scsi_task *t, const uint8_t *cdb, size_t cdb_len,
                   const void *out, uint32_t out_len)
{
	run_on(f, t, &f->itn, cdb, cdb_len, out, out_len);
	return t->status;
}

static inline void expect_sense(const struct scsi_task *t, uint8_t key, uint16_t asc)
{
	assert_int_equal(t->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(t->sense[2] & 0x0f, key);
	assert_int_equal(t->sense[12] << 8 | t->sense[13], asc);
}

/* Consumes the POWER ON unit attention of both nexuses. */
static inline void clear_ua(struct fixture *f)
{
	static const uint8_t tur[6] = { 0 };
	struct scsi_task t;

	run_on(f, &t, &f->itn, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2900);
	run_on(f, &t, &f->other, tur, 6, NULL, 0);
	expect_sense(&t, 0x6, 0x2900);
	run_on(f, &t, &f->itn, tur, 6, NULL, 0);
	assert_int_equal(t.status, SCSI_STATUS_GOOD);
}

static inline void write10(struct fixture *f, uint32_t lba, uint16_t n, const uint8_t *data)
{
	uint8_t cdb[10] = { 0x2a };
	struct scsi_task t;

	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, n);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), data, n * BS), SCSI_STATUS_GOOD);
}

static inline void read10(struct fixture *f, uint32_t lba, uint16_t n, uint8_t *data)
{
	uint8_t cdb[10] = { 0x28 };
	struct scsi_task t;

	put_be32(cdb + 2, lba);
	put_be16(cdb + 7, n);
	assert_int_equal(run(f, &t, cdb, sizeof(cdb), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in_len, n * BS);
	memcpy(data, t.data_in, n * BS);
	scsi_task_release(&t);
}

/* An EXTENDED COPY (LID1) parameter list copying n blocks from src to dst within the
 * logical unit, which it names by its NAA designator (VPD page 0x83). */
#define XCOPY_LIST_LEN (16 + 32 + 28)
static inline void xcopy_list(struct fixture *f, uint8_t list[XCOPY_LIST_LEN], uint64_t src, uint64_t dst,
                              uint16_t n)
{
	const uint8_t vpd[6] = { 0x12, 0x01, 0x83, 0, 255, 0 };
	struct scsi_task t;

	assert_int_equal(run(f, &t, vpd, sizeof(vpd), NULL, 0), SCSI_STATUS_GOOD);
	assert_int_equal(t.data_in[4 + 1] & 0x0f, 3); /* NAA first */
	memset(list, 0, XCOPY_LIST_LEN);
	memcpy(list + 16 + 4, t.data_in + 4, 20);
	scsi_task_release(&t);
	list[0] = 5;                 /* list identifier */
	put_be16(list + 2, 32);
	put_be32(list + 8, 28);
	list[16] = 0xe4;
	put_be24(list + 16 + 29, BS);
	list[48] = 0x02;             /* block to block */
	put_be16(list + 48 + 2, 24);
	put_be16(list + 48 + 10, n);
	put_be64(list + 48 + 12, src);
	put_be64(list + 48 + 20, dst);
}

#endif
