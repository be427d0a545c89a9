/* FIFO range ordering: one list in arrival order; a request is granted when no earlier
 * entry overlaps it.  Queues are short (the I/O depth), so a linear scan is enough. */
#include "ha/order.h"

#include <stdlib.h>

struct order {
	struct order_req *head, *tail;
	unsigned count;
};

struct order *order_new(void)
{
	return calloc(1, sizeof(struct order));
}

void order_free(struct order *o)
{
	free(o);
}

static bool overlap(const struct order_req *a, const struct order_req *b)
{
	return a->offset < b->offset + b->length && b->offset < a->offset + a->length;
}

static bool blocked(const struct order_req *req)
{
	for (const struct order_req *p = req->prev; p != NULL; p = p->prev) {
		if (overlap(p, req))
			return true;
	}
	return false;
}

void order_lock(struct order *o, struct order_req *req)
{
	req->held = false;
	req->next = NULL;
	req->prev = o->tail;
	if (o->tail != NULL)
		o->tail->next = req;
	else
		o->head = req;
	o->tail = req;
	o->count++;
	if (!blocked(req)) {
		req->held = true;
		req->granted(req);
	}
}

void order_release(struct order *o, struct order_req *req)
{
	struct order_req *next = req->next;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		o->head = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	else
		o->tail = req->prev;
	req->prev = req->next = NULL;
	req->held = false;
	o->count--;
	/* Only requests after the removed one can have been waiting for it.  Grant callbacks
	 * may release (and so unlink) requests, so each step re-reads the list from a
	 * request that is still queued: restart from the head after any grant. */
	for (struct order_req *p = next; p != NULL;) {
		if (!p->held && overlap(p, req) && !blocked(p)) {
			p->held = true;
			p->granted(p);
			p = o->head;
			continue;
		}
		p = p->next;
	}
}

unsigned order_count(const struct order *o)
{
	return o->count;
}
