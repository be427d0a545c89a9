#include "scsi/range_lock.h"

#include "common/util.h"

void range_lock_span(struct scsi_task *task, uint64_t lo, uint64_t hi)
{
	task->lba = lo == UINT64_MAX ? 0 : lo;
	task->nblocks = (uint32_t)MIN(hi > task->lba ? hi - task->lba : 0, UINT32_MAX);
}

static bool overlap(const struct scsi_task *a, const struct scsi_task *b)
{
	/* A zero-length range still orders against writes starting at its LBA. */
	uint64_t a_end = a->lba + (a->nblocks ? a->nblocks : 1);
	uint64_t b_end = b->lba + (b->nblocks ? b->nblocks : 1);

	return a->lba < b_end && b->lba < a_end;
}

static bool held_by_other(const struct scsi_task *holders, const struct scsi_task *task)
{
	for (const struct scsi_task *t = holders; t; t = t->next_active)
		if (t != task && t->holds_range && overlap(t, task))
			return true;
	return false;
}

/* True if a task queued before `task` wants an overlapping range: it goes first. */
static bool earlier_waiter(const struct range_lock *rl, const struct scsi_task *task)
{
	for (const struct scsi_task *t = rl->waiting.head; t && t != task; t = t->next_waiting)
		if (overlap(t, task))
			return true;
	return false;
}

bool range_lock_acquire(struct range_lock *rl, struct scsi_task *holders, struct scsi_task *task)
{
	if (task->holds_range)
		return true;
	if (!held_by_other(holders, task) && !earlier_waiter(rl, task)) {
		task->holds_range = true;
		return true;
	}
	task_queue_push(&rl->waiting, task);
	return false;
}

void range_lock_release(struct range_lock *rl, struct scsi_task *holders, struct scsi_task *task)
{
	struct scsi_task *prev = NULL, *t = rl->waiting.head;

	task->holds_range = false;
	while (t) {
		struct scsi_task *next = t->next_waiting;

		if (!held_by_other(holders, t) && !earlier_waiter(rl, t)) {
			task_queue_unlink(&rl->waiting, prev, t);
			t->holds_range = true;
			rl->resume(t);
		} else {
			prev = t;
		}
		t = next;
	}
}

bool range_lock_cancel(struct range_lock *rl, struct scsi_task *task)
{
	return task_queue_remove(&rl->waiting, task);
}
