/* The reactor runs deferred work outside the caller, in order, and fires tickers and
 * one-shot timers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/reactor.h"
#include "common/util.h"

struct counter {
	struct reactor_op op;
	struct reactor *reactor;
	int *log;
	int *n;
	int id;
};

static void record(struct reactor_op *op, int res)
{
	struct counter *c = container_of(op, struct counter, op);

	assert_int_equal(res, 0);
	c->log[(*c->n)++] = c->id;
	if (c->id == 3)
		reactor_stop(c->reactor);
}

static void deferred_ops_run_later_in_order(void **state)
{
	struct reactor *r;
	int log[3], n = 0;
	struct counter c[3];

	(void)state;
	assert_int_equal(reactor_new(8, &r), 0);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct counter){ .reactor = r, .log = log, .n = &n, .id = i + 1 };
		reactor_defer(r, &c[i].op, record);
	}
	assert_int_equal(n, 0); /* nothing runs inside reactor_defer() */
	assert_int_equal(reactor_run(r), 0);
	assert_int_equal(n, 3);
	assert_int_equal(log[0], 1);
	assert_int_equal(log[1], 2);
	assert_int_equal(log[2], 3);
	reactor_free(r);
}

struct tick_state {
	struct reactor *reactor;
	int ticks;
};

static void on_tick(void *arg)
{
	struct tick_state *t = arg;

	if (++t->ticks == 3)
		reactor_stop(t->reactor);
}

static void ticker_fires_repeatedly_until_removed(void **state)
{
	struct tick_state t = { 0 };

	(void)state;
	assert_int_equal(reactor_new(8, &t.reactor), 0);
	assert_int_equal(reactor_add_ticker(t.reactor, 10, on_tick, &t), 0);
	assert_int_equal(reactor_run(t.reactor), 0);
	assert_int_equal(t.ticks, 3);
	reactor_remove_ticker(t.reactor, on_tick, &t);
	reactor_free(t.reactor);
}

static void noop_completion(struct reactor_op *op, int res)
{
	struct counter *c = container_of(op, struct counter, op);

	assert_int_equal(res, 0);
	reactor_stop(c->reactor);
}

static void submitted_operation_completes_through_its_op(void **state)
{
	struct counter c = { 0 };
	struct reactor *r;

	(void)state;
	assert_int_equal(reactor_new(8, &r), 0);
	c.reactor = r;
	io_uring_prep_nop(reactor_sqe(r, &c.op, noop_completion));
	assert_int_equal(reactor_run(r), 0);
	reactor_free(r);
}

struct timer_case {
	struct reactor *reactor;
	struct reactor_timer early, late, cancelled;
	int order[3], n;
};

static void timer_early(struct reactor_timer *t)
{
	struct timer_case *c = container_of(t, struct timer_case, early);

	c->order[c->n++] = 1;
	reactor_timer_cancel(c->reactor, &c->cancelled); /* cancelling from a callback */
}

static void timer_late(struct reactor_timer *t)
{
	struct timer_case *c = container_of(t, struct timer_case, late);

	c->order[c->n++] = 2;
	reactor_stop(c->reactor);
}

static void timer_never(struct reactor_timer *t)
{
	struct timer_case *c = container_of(t, struct timer_case, cancelled);

	c->order[c->n++] = 3;
}

static void timers_fire_once_in_due_order_and_cancel(void **state)
{
	struct timer_case c = { 0 };

	(void)state;
	assert_int_equal(reactor_new(8, &c.reactor), 0);
	reactor_timer_start(c.reactor, &c.late, 40, timer_late);
	reactor_timer_start(c.reactor, &c.cancelled, 30, timer_never);
	reactor_timer_start(c.reactor, &c.early, 50, timer_early);
	reactor_timer_start(c.reactor, &c.early, 10, timer_early); /* re-arming moves it */
	assert_true(reactor_timer_armed(&c.early));
	assert_int_equal(reactor_run(c.reactor), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.order[0], 1);
	assert_int_equal(c.order[1], 2);
	assert_false(reactor_timer_armed(&c.early));
	assert_false(reactor_timer_armed(&c.cancelled));
	reactor_timer_cancel(c.reactor, &c.late); /* not armed: nothing happens */
	reactor_free(c.reactor);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deferred_ops_run_later_in_order),
		cmocka_unit_test(ticker_fires_repeatedly_until_removed),
		cmocka_unit_test(submitted_operation_completes_through_its_op),
		cmocka_unit_test(timers_fire_once_in_due_order_and_cancel),
	};

	return cmocka_run_group_tests_name("reactor", tests, NULL, NULL);
}
