#include "common/reactor.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"

struct ticker {
	void (*fn)(void *arg);
	void *arg;
	unsigned interval_ms;
	uint64_t due_ms;
};

struct reactor {
	struct io_uring ring;
	bool stopping;
	struct reactor_op *deferred_head, *deferred_tail;
	struct ticker tickers[REACTOR_MAX_TICKERS];
	unsigned nr_tickers;
	struct reactor_timer *timers; /* armed one-shot timers, soonest first */
	unsigned in_flight;           /* submissions whose completion has not been handled */
};

int reactor_new(unsigned entries, struct reactor **out)
{
	struct reactor *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = io_uring_queue_init(entries, &r->ring, 0);
	if (ret < 0) {
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

void reactor_free(struct reactor *r)
{
	if (!r)
		return;
	io_uring_queue_exit(&r->ring);
	free(r);
}

struct io_uring_sqe *reactor_sqe(struct reactor *r, struct reactor_op *op, reactor_fn fn)
{
	struct io_uring_sqe *sqe;

	op->fn = fn;
	while (!(sqe = io_uring_get_sqe(&r->ring)))
		io_uring_submit(&r->ring);
	io_uring_sqe_set_data(sqe, op);
	r->in_flight++;
	return sqe;
}

bool reactor_idle(const struct reactor *r) { return r->in_flight == 0 && !r->deferred_head; }

void reactor_defer(struct reactor *r, struct reactor_op *op, reactor_fn fn)
{
	op->fn = fn;
	op->next = NULL;
	if (r->deferred_tail)
		r->deferred_tail->next = op;
	else
		r->deferred_head = op;
	r->deferred_tail = op;
}

int reactor_add_ticker(struct reactor *r, unsigned interval_ms, void (*fn)(void *arg), void *arg)
{
	if (r->nr_tickers == REACTOR_MAX_TICKERS)
		return -1;
	r->tickers[r->nr_tickers++] = (struct ticker){
		.fn = fn, .arg = arg, .interval_ms = interval_ms, .due_ms = now_ms() + interval_ms,
	};
	return 0;
}

void reactor_remove_ticker(struct reactor *r, void (*fn)(void *arg), void *arg)
{
	for (unsigned i = 0; i < r->nr_tickers; i++) {
		if (r->tickers[i].fn == fn && r->tickers[i].arg == arg) {
			r->tickers[i] = r->tickers[--r->nr_tickers];
			return;
		}
	}
}

void reactor_timer_cancel(struct reactor *r, struct reactor_timer *t)
{
	if (!t->armed)
		return;
	if (t->prev)
		t->prev->next = t->next;
	else
		r->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->armed = 0;
}

void reactor_timer_start(struct reactor *r, struct reactor_timer *t, unsigned ms,
                         void (*fn)(struct reactor_timer *t))
{
	struct reactor_timer **link = &r->timers, *prev = NULL;

	reactor_timer_cancel(r, t);
	t->fn = fn;
	t->due_ms = now_ms() + ms;
	/* Few timers are armed at once (a handful per HA device), so a sorted list is enough. */
	while (*link && (*link)->due_ms <= t->due_ms) {
		prev = *link;
		link = &(*link)->next;
	}
	t->prev = prev;
	t->next = *link;
	if (*link)
		(*link)->prev = t;
	*link = t;
	t->armed = 1;
}

void reactor_stop(struct reactor *r) { r->stopping = true; }

static void run_deferred(struct reactor *r)
{
	struct reactor_op *op = r->deferred_head;

	/* Ops deferred while this batch runs wait for the next turn of the loop. */
	r->deferred_head = r->deferred_tail = NULL;
	while (op) {
		struct reactor_op *next = op->next;

		op->fn(op, 0);
		op = next;
	}
}

/* Runs due tickers and timers; returns milliseconds until the next one is due. */
static unsigned run_tickers(struct reactor *r)
{
	uint64_t now = now_ms();
	uint64_t wait = 1000;

	for (unsigned i = 0; i < r->nr_tickers; i++) {
		struct ticker *t = &r->tickers[i];

		if (t->due_ms <= now) {
			t->due_ms = now + t->interval_ms;
			t->fn(t->arg);
		}
	}
	while (r->timers && r->timers->due_ms <= now) {
		struct reactor_timer *t = r->timers;

		reactor_timer_cancel(r, t);
		t->fn(t);
	}
	for (unsigned i = 0; i < r->nr_tickers; i++)
		wait = MIN(wait, r->tickers[i].due_ms > now ? r->tickers[i].due_ms - now : 0);
	if (r->timers)
		wait = MIN(wait, r->timers->due_ms > now ? r->timers->due_ms - now : 0);
	return (unsigned)wait;
}

int reactor_run(struct reactor *r)
{
	struct io_uring_cqe *cqes[64];

	r->stopping = false;
	while (!r->stopping) {
		struct __kernel_timespec ts = { 0 };
		struct io_uring_cqe *cqe = NULL;
		unsigned n, wait_ms;
		int ret;

		run_deferred(r);
		wait_ms = run_tickers(r);
		if (r->stopping)
			break;
		if (!r->deferred_head) {
			ts.tv_sec = wait_ms / 1000;
			ts.tv_nsec = (long long)(wait_ms % 1000) * 1000000;
		}
		ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, r->deferred_head ? 0 : 1, &ts, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
		/* Copy the batch out first: callbacks may submit and reap more work. */
		while ((n = io_uring_peek_batch_cqe(&r->ring, cqes, ARRAY_SIZE(cqes))) > 0) {
			struct { struct reactor_op *op; int res; } done[ARRAY_SIZE(cqes)];

			for (unsigned i = 0; i < n; i++) {
				done[i].op = io_uring_cqe_get_data(cqes[i]);
				done[i].res = cqes[i]->res;
			}
			io_uring_cq_advance(&r->ring, n);
			r->in_flight -= MIN(r->in_flight, n);
			for (unsigned i = 0; i < n; i++)
				if (done[i].op)
					done[i].op->fn(done[i].op, done[i].res);
		}
	}
	return 0;
}
