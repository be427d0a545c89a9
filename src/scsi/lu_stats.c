/* Per logical unit I/O statistics: which commands count as reads and writes, and the
 * latency histogram. */
#include "scsi/lu_stats.h"

#include <time.h>

#include "scsi/lu_state.h"
#include "scsi/scsi.h"

#define FIRST_BOUND_US 16

uint64_t lu_stats_bucket_us(unsigned i) { return (uint64_t)FIRST_BOUND_US << i; }

void lu_stats_add_latency(struct lu_latency *l, uint64_t us)
{
	unsigned i = 0;

	while (i < LU_STATS_BUCKETS && us > lu_stats_bucket_us(i))
		i++;
	l->buckets[i]++;
	l->count++;
	l->sum_us += us;
}

uint64_t lu_stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum io_kind { IO_OTHER, IO_READ, IO_WRITE };

static enum io_kind io_kind(uint8_t opcode)
{
	switch (opcode) {
	case 0x08: case 0x28: case 0xa8: case 0x88: /* READ (6, 10, 12, 16) */
		return IO_READ;
	case 0x0a: case 0x2a: case 0xaa: case 0x8a: /* WRITE (6, 10, 12, 16) */
		return IO_WRITE;
	default:
		return IO_OTHER;
	}
}

void lu_stats_task_done(struct scsi_lu_stats *s, const struct scsi_task *task)
{
	uint64_t *commands, *bytes;
	struct lu_latency *latency;
	uint32_t len;

	s->commands++;
	if (task->status == SCSI_STATUS_CHECK_CONDITION)
		s->errors++;
	switch (io_kind(task->cdb[0])) {
	case IO_READ:
		commands = &s->read_commands, bytes = &s->read_bytes, latency = &s->read_latency;
		len = task->data_in_len;
		break;
	case IO_WRITE:
		commands = &s->write_commands, bytes = &s->written_bytes, latency = &s->write_latency;
		len = task->data_out_len;
		break;
	default:
		return;
	}
	(*commands)++;
	if (task->status == SCSI_STATUS_GOOD)
		*bytes += len;
	lu_stats_add_latency(latency, (lu_stats_now_ns() - task->start_ns) / 1000);
}

void scsi_lu_stats(const struct scsi_lu *lu, struct scsi_lu_stats *out) { *out = lu->stats; }
