/* Per logical unit I/O statistics, for the metrics endpoint (mgmt/metrics.h).
 *
 * Kept by the reactor thread that completes the tasks, so plain counters need no lock.
 * Latency runs from the task entering the logical unit to its completion; the histogram
 * has fixed log2 buckets (16 us .. 8 s) with per-bucket, not cumulative, counts. */
#ifndef TWINSAN_SCSI_LU_STATS_H
#define TWINSAN_SCSI_LU_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct scsi_lu;
struct scsi_task;

#define LU_STATS_BUCKETS 20 /* upper bounds 16 us << i, i < LU_STATS_BUCKETS; then +Inf */

struct lu_latency {
	uint64_t buckets[LU_STATS_BUCKETS + 1]; /* the last one: above every bound */
	uint64_t count;
	uint64_t sum_us;
};

struct scsi_lu_stats {
	uint64_t commands;
	uint64_t read_commands, write_commands;
	uint64_t read_bytes, written_bytes;
	uint64_t errors;               /* ended with CHECK CONDITION */
	struct lu_latency read_latency, write_latency;
};

/* Upper bound of bucket i in microseconds (i < LU_STATS_BUCKETS). */
uint64_t lu_stats_bucket_us(unsigned i);
/* Adds one latency sample. */
void lu_stats_add_latency(struct lu_latency *l, uint64_t us);
/* Now on the monotonic clock, in nanoseconds: a task's start stamp. */
uint64_t lu_stats_now_ns(void);
/* Accounts a completed task (final status set) that started at task->start_ns. */
void lu_stats_task_done(struct scsi_lu_stats *s, const struct scsi_task *task);

/* A copy of the logical unit's statistics. */
void scsi_lu_stats(const struct scsi_lu *lu, struct scsi_lu_stats *out);

#endif
