/* LBA range locks of one logical unit: every command that writes the medium holds the
 * range it writes, so COMPARE AND WRITE (and any other read-modify-write) is atomic
 * against overlapping writes.  Waiters are granted in arrival order. */
#ifndef TWINSAN_SCSI_RANGE_LOCK_H
#define TWINSAN_SCSI_RANGE_LOCK_H

#include <stdbool.h>

#include "scsi/scsi.h"
#include "scsi/task_queue.h"

struct range_lock {
	struct task_queue waiting;
	/* runs a task again once it holds its range */
	void (*resume)(struct scsi_task *task);
};

/* Sets the task's range to [lo, hi), the hull of what a multi-range command writes (lo
 * UINT64_MAX: nothing), capped at what a task can describe. */
void range_lock_span(struct scsi_task *task, uint64_t lo, uint64_t hi);
/* Takes [task->lba, task->lba + task->nblocks) for the task.  True if the task holds it
 * now; false if it was queued and will be resumed holding it.  holders are the logical
 * unit's active tasks (linked by next_active), of which those with holds_range count. */
bool range_lock_acquire(struct range_lock *rl, struct scsi_task *holders, struct scsi_task *task);
/* Gives the task's range back (the task must be off the holders list) and resumes
 * waiters that no longer overlap anything. */
void range_lock_release(struct range_lock *rl, struct scsi_task *holders, struct scsi_task *task);
/* Takes a waiting task off the queue; true if it was waiting. */
bool range_lock_cancel(struct range_lock *rl, struct scsi_task *task);

#endif
