#include "scsi/task_queue.h"

void task_queue_push(struct task_queue *q, struct scsi_task *task)
{
	task->next_waiting = NULL;
	if (q->tail)
		q->tail->next_waiting = task;
	else
		q->head = task;
	q->tail = task;
}

void task_queue_unlink(struct task_queue *q, struct scsi_task *prev, struct scsi_task *task)
{
	if (prev)
		prev->next_waiting = task->next_waiting;
	else
		q->head = task->next_waiting;
	if (q->tail == task)
		q->tail = prev;
	task->next_waiting = NULL;
}

bool task_queue_remove(struct task_queue *q, struct scsi_task *task)
{
	struct scsi_task *prev = NULL;

	for (struct scsi_task *t = q->head; t; prev = t, t = t->next_waiting) {
		if (t == task) {
			task_queue_unlink(q, prev, t);
			return true;
		}
	}
	return false;
}
