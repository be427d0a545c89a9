/* FIFO byte-range ordering of the mutations of one replica.
 *
 * A request waits until every request queued before it that overlaps its bytes has been
 * released; requests that overlap nothing earlier pass at once.  On the primary this is
 * the sequencer: the order in which it grants overlapping ranges is the one order both
 * replicas apply.  On the secondary it applies mutations in the order they arrived from
 * the primary, so a write whose local I/O is still running is never overtaken by a later
 * overlapping one.
 *
 * Pure bookkeeping, no I/O: granted() runs inside order_lock() (when the range is free)
 * or inside the order_release() that freed it. */
#ifndef TWINSAN_HA_ORDER_H
#define TWINSAN_HA_ORDER_H

#include <stdbool.h>
#include <stdint.h>

struct order;

/* Embedded in the caller's request; zero-initialised apart from the fields below. */
struct order_req {
	uint64_t offset, length;                 /* length > 0 */
	void (*granted)(struct order_req *req);
	/* private */
	struct order_req *prev, *next;
	bool held;
};

struct order *order_new(void);
/* Requests still queued are forgotten (their owners must not release them afterwards). */
void order_free(struct order *o);

/* Queues req; granted(req) runs once no earlier overlapping request remains. */
void order_lock(struct order *o, struct order_req *req);
/* Ends req, granted or still waiting; waiters it was holding up are granted in FIFO order. */
void order_release(struct order *o, struct order_req *req);
/* Requests queued or held. */
unsigned order_count(const struct order *o);

#endif
