/* The reactor: one thread's event loop over one io_uring.
 *
 * Every asynchronous operation (socket receive/send, disk read/write/fsync, accept,
 * timers) is an io_uring submission carrying a struct reactor_op that the owner embeds in
 * its own object; on completion the reactor calls op->fn(op, res) with the CQE result
 * (>= 0 or -errno).  Owners recover themselves with container_of().
 *
 * One reactor runs all connections, logical units and stores it is given, so the data
 * path needs no locks (see docs/design.md). */
#ifndef TWINSAN_COMMON_REACTOR_H
#define TWINSAN_COMMON_REACTOR_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct reactor;
struct reactor_op;

typedef void (*reactor_fn)(struct reactor_op *op, int res);

struct reactor_op {
	reactor_fn fn;
	struct reactor_op *next; /* reactor-private: deferred queue link */
};

int reactor_new(unsigned entries, struct reactor **out);
void reactor_free(struct reactor *r);

/* A submission slot tied to op; the caller fills it with io_uring_prep_*() and must not
 * overwrite its user data.  Never NULL: a full ring is flushed to the kernel first. */
struct io_uring_sqe *reactor_sqe(struct reactor *r, struct reactor_op *op, reactor_fn fn);

/* Runs op->fn(op, 0) from the loop soon, never from inside this call: lets completion
 * paths finish without recursing into their callers. */
void reactor_defer(struct reactor *r, struct reactor_op *op, reactor_fn fn);

/* Calls fn(arg) about every interval_ms (keepalives, timeouts, statistics). At most
 * REACTOR_MAX_TICKERS per reactor; returns -1 when full. */
#define REACTOR_MAX_TICKERS 16
int reactor_add_ticker(struct reactor *r, unsigned interval_ms, void (*fn)(void *arg), void *arg);
void reactor_remove_ticker(struct reactor *r, void (*fn)(void *arg), void *arg);

/* A one-shot timer the owner embeds in its object: fn(t) runs from the loop about `ms`
 * after reactor_timer_start().  Starting an armed timer moves it; cancelling is
 * immediate and safe on a timer that is not armed, so the owner may free it right after.
 * Zero-initialised means not armed. */
struct reactor_timer {
	void (*fn)(struct reactor_timer *t);
	uint64_t due_ms;
	struct reactor_timer *prev, *next; /* reactor-private: the list of armed timers */
	int armed;
};
void reactor_timer_start(struct reactor *r, struct reactor_timer *t, unsigned ms,
                         void (*fn)(struct reactor_timer *t));
void reactor_timer_cancel(struct reactor *r, struct reactor_timer *t);
static inline int reactor_timer_armed(const struct reactor_timer *t) { return t->armed; }

/* Runs until reactor_stop() is called from a callback; returns 0, or -errno if the ring
 * failed.  It can run again afterwards. */
int reactor_run(struct reactor *r);
void reactor_stop(struct reactor *r);

/* True when every submission has completed and nothing is deferred: what a shutdown
 * waits for before freeing objects that completions would still reach. */
bool reactor_idle(const struct reactor *r);

#endif
