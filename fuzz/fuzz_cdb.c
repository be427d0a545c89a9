/* Arbitrary CDBs through the whole SCSI layer: lookup, validation, unit attentions,
 * reservations and every handler, against a small thin file store.  The input is a
 * sequence of commands, each: one byte of flags (nexus, Data-Out length class), a 16-byte
 * CDB, then Data-Out bytes.  Every command must complete exactly once with a valid status
 * and sense data that fits, and nothing may crash or leak. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/reactor.h"
#include "common/util.h"
#include "scsi/scsi.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NEXUSES 2
#define CDB_BYTES 16
#define DATA_OUT_MAX 8192

struct harness {
	char path[64];
	struct reactor *reactor;
	struct store *store;
	struct scsi_lu *lu;
	struct scsi_target *target;
	struct scsi_itn itn[NEXUSES];
	unsigned outstanding;
};

static struct harness *h;

static void cleanup(void)
{
	unlink(h->path);
}

static void setup(void)
{
	struct store_params sp = { .create_size = 1 << 20 };
	struct scsi_lu_params lp = { .block_size = 512, .write_cache = true, .uuid = { 7 } };
	char err[256];

	h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	snprintf(h->path, sizeof(h->path), "/dev/shm/fuzz_cdb.%d", getpid());
	unlink(h->path);
	sp.path = h->path;
	if (reactor_new(64, &h->reactor) < 0 || store_open(&sp, &h->store, err, sizeof(err)) < 0 ||
	    scsi_lu_new(&lp, h->store, &h->lu, err, sizeof(err)) < 0 || scsi_target_new(&h->target) < 0 ||
	    scsi_target_add_lu(h->target, 0, h->lu) < 0)
		abort();
	atexit(cleanup);
	for (unsigned i = 0; i < NEXUSES; i++) {
		snprintf(h->itn[i].initiator_name, sizeof(h->itn[i].initiator_name), "iqn.2026-11.org.fuzz:%u", i);
		snprintf(h->itn[i].target_name, sizeof(h->itn[i].target_name), "iqn.2026-11.org.twinsan:t");
		h->itn[i].relative_port = 1;
		h->itn[i].id = i + 1;
	}
}

static void task_done(struct scsi_task *task)
{
	if (task->status == SCSI_STATUS_CHECK_CONDITION && (task->sense_len < 8 || task->sense_len > SCSI_SENSE_MAX))
		abort();
	if (task->data_in_len && !task->data_in)
		abort();
	if (h->outstanding-- == 0)
		abort();
	if (h->outstanding == 0)
		reactor_stop(task->reactor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t data_out_class[4] = { 0, 512, 1024, DATA_OUT_MAX };

	if (!h)
		setup();
	while (size >= 1 + CDB_BYTES) {
		uint8_t flags = data[0];
		struct scsi_task task;
		uint32_t want = data_out_class[(flags >> 1) & 3];
		uint32_t have = (uint32_t)MIN(want, size - 1 - CDB_BYTES);
		uint8_t *out = malloc(have ? have : 1);

		if (!out)
			abort();
		memcpy(out, data + 1 + CDB_BYTES, have);
		memset(&task, 0, sizeof(task));
		task.itn = &h->itn[flags & 1];
		task.lun = (flags & 0x80) ? 1 : 0;
		memcpy(task.cdb, data + 1, CDB_BYTES);
		task.cdb_len = CDB_BYTES;
		task.expected_len = 65536;
		task.data_out = out;
		task.data_out_len = have;
		task.reactor = h->reactor;
		task.done = task_done;
		h->outstanding = 1;
		scsi_target_execute(h->target, &task);
		if (h->outstanding && reactor_run(h->reactor) < 0)
			abort();
		scsi_task_release(&task);
		free(out);
		data += 1 + CDB_BYTES + have;
		size -= 1 + CDB_BYTES + have;
	}
	return 0;
}
