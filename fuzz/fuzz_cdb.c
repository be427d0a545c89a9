/* Arbitrary CDBs through the whole SCSI layer: lookup, validation, unit attentions,
 * reservations and every handler, against a small thin file store.  The input is a
 * sequence of commands, each: one byte of flags (nexus, Data-Out length class, LUN), a 16-byte
 * CDB, then Data-Out bytes; flags also pick the task attribute and whether to abort the
 * previous command.  Every command must complete exactly once with a valid status and
 * sense data that fits, and nothing may crash or leak. */
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
#define COMMANDS_MAX 8

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

struct command {
	struct scsi_task task;
	uint8_t *out;
	unsigned completions;
};

static void task_done(struct scsi_task *task)
{
	struct command *c = container_of(task, struct command, task);

	if (task->status == SCSI_STATUS_CHECK_CONDITION && (task->sense_len < 8 || task->sense_len > SCSI_SENSE_MAX))
		abort();
	if (task->data_in_len && !task->data_in)
		abort();
	if (c->completions++ || h->outstanding == 0)
		abort();
	if (--h->outstanding == 0)
		reactor_stop(task->reactor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t data_out_class[4] = { 0, 512, 1024, DATA_OUT_MAX };
	static const enum scsi_task_attr attrs[4] = {
		SCSI_ATTR_SIMPLE, SCSI_ATTR_SIMPLE, SCSI_ATTR_ORDERED, SCSI_ATTR_HEAD_OF_QUEUE,
	};
	struct command cmds[COMMANDS_MAX];
	unsigned n = 0;

	if (!h)
		setup();
	/* All commands of an input run concurrently, so range locks, task attributes and
	 * aborts meet each other. */
	while (size >= 1 + CDB_BYTES && n < COMMANDS_MAX) {
		uint8_t flags = data[0];
		struct command *c = &cmds[n++];
		struct scsi_task *task = &c->task;
		uint32_t have = (uint32_t)MIN(data_out_class[(flags >> 1) & 3], size - 1 - CDB_BYTES);

		c->out = malloc(have ? have : 1);
		if (!c->out)
			abort();
		memcpy(c->out, data + 1 + CDB_BYTES, have);
		c->completions = 0;
		memset(task, 0, sizeof(*task));
		task->itn = &h->itn[flags & 1];
		task->lun = (flags & 0x80) ? 1 : 0;
		task->attr = attrs[(flags >> 3) & 3];
		memcpy(task->cdb, data + 1, CDB_BYTES);
		task->cdb_len = CDB_BYTES;
		task->expected_len = 65536;
		task->data_out = c->out;
		task->data_out_len = have;
		task->reactor = h->reactor;
		task->done = task_done;
		h->outstanding++;
		scsi_target_execute(h->target, task);
		if ((flags & 0x40) && n > 1)
			scsi_task_abort(&cmds[n - 2].task);
		data += 1 + CDB_BYTES + have;
		size -= 1 + CDB_BYTES + have;
	}
	if (h->outstanding && reactor_run(h->reactor) < 0)
		abort();
	for (unsigned i = 0; i < n; i++) {
		if (cmds[i].completions != 1)
			abort();
		scsi_task_release(&cmds[i].task);
		free(cmds[i].out);
	}
	return 0;
}
