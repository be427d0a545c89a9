/* A FIFO of tasks linked through next_waiting: the waiters of a range lock, the tasks
 * blocked by task attributes.  A task is on at most one such queue at a time. */
#ifndef TWINSAN_SCSI_TASK_QUEUE_H
#define TWINSAN_SCSI_TASK_QUEUE_H

#include <stdbool.h>

#include "scsi/scsi.h"

struct task_queue {
	struct scsi_task *head, *tail;
};

void task_queue_push(struct task_queue *q, struct scsi_task *task);
/* Unlinks task, whose predecessor on the queue is prev (NULL: it is the head). */
void task_queue_unlink(struct task_queue *q, struct scsi_task *prev, struct scsi_task *task);
/* Takes the task off the queue; true if it was on it. */
bool task_queue_remove(struct task_queue *q, struct scsi_task *task);

#endif
