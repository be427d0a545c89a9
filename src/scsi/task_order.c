#include "scsi/task_order.h"

static bool may_start(const struct task_order *o, const struct scsi_task *task)
{
	if (task->attr == SCSI_ATTR_HEAD_OF_QUEUE)
		return true;
	if (o->ordered)
		return false;
	return task->attr != SCSI_ATTR_ORDERED || o->enabled == 0;
}

static void enable(struct task_order *o, struct scsi_task *task)
{
	task->enabled = true;
	o->enabled++;
	if (task->attr == SCSI_ATTR_ORDERED)
		o->ordered++;
}

bool task_order_admit(struct task_order *o, struct scsi_task *task)
{
	/* Nothing overtakes a blocked task except HEAD OF QUEUE. */
	if ((!o->blocked.head || task->attr == SCSI_ATTR_HEAD_OF_QUEUE) && may_start(o, task)) {
		enable(o, task);
		return true;
	}
	task_queue_push(&o->blocked, task);
	return false;
}

void task_order_end(struct task_order *o, struct scsi_task *task)
{
	task->enabled = false;
	o->enabled--;
	if (task->attr == SCSI_ATTR_ORDERED)
		o->ordered--;
	while (o->blocked.head && may_start(o, o->blocked.head)) {
		struct scsi_task *next = o->blocked.head;

		task_queue_unlink(&o->blocked, NULL, next);
		enable(o, next);
		o->start(next);
	}
}

bool task_order_cancel(struct task_order *o, struct scsi_task *task)
{
	return task_queue_remove(&o->blocked, task);
}
