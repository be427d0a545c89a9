/* Task attributes (SAM-5 §8.6) in one logical unit's task set: an ORDERED task enters
 * the enabled state only once every older task has ended, and tasks that arrive after it
 * wait until it has ended; HEAD OF QUEUE tasks start at once; SIMPLE tasks start at once
 * unless an ORDERED task is ahead of them.  Blocked tasks start in arrival order. */
#ifndef TWINSAN_SCSI_TASK_ORDER_H
#define TWINSAN_SCSI_TASK_ORDER_H

#include <stdbool.h>

#include "scsi/scsi.h"
#include "scsi/task_queue.h"

struct task_order {
	struct task_queue blocked;
	unsigned enabled;                              /* enabled tasks */
	unsigned ordered;                              /* enabled ORDERED tasks */
	void (*start)(struct scsi_task *task);         /* runs a task that may start */
};

/* True if the task is enabled now (the caller starts it); false if it was queued and
 * will be started through start(). */
bool task_order_admit(struct task_order *o, struct scsi_task *task);
/* An enabled task ended: starts the blocked tasks that may run now. */
void task_order_end(struct task_order *o, struct scsi_task *task);
/* Takes a blocked task off the queue; true if it was blocked. */
bool task_order_cancel(struct task_order *o, struct scsi_task *task);

#endif
