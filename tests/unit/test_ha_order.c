/* The order module: overlapping ranges are granted strictly in arrival order, ranges that
 * overlap nothing earlier pass at once, and releasing a waiter that never ran unblocks
 * the requests behind it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"
#include "ha/order.h"

struct req {
	struct order_req r;
	int granted_as; /* 0: not yet */
};

static int grants;

static void on_granted(struct order_req *r)
{
	container_of(r, struct req, r)->granted_as = ++grants;
}

static void queue(struct order *o, struct req *q, uint64_t off, uint64_t len)
{
	*q = (struct req){.r = {.offset = off, .length = len, .granted = on_granted}};
	order_lock(o, &q->r);
}

static void test_overlapping_ranges_are_granted_in_arrival_order(void **state)
{
	struct order *o = order_new();
	struct req a, b, c;

	grants = 0;
	queue(o, &a, 0, 8192);
	queue(o, &b, 4096, 8192);
	queue(o, &c, 0, 4096);
	assert_int_equal(a.granted_as, 1);
	assert_int_equal(b.granted_as, 0);
	assert_int_equal(c.granted_as, 0);
	order_release(o, &a.r);
	assert_int_equal(b.granted_as, 2);
	/* c overlaps a but not b: it passes as soon as a goes */
	assert_int_equal(c.granted_as, 3);
	order_release(o, &b.r);
	order_release(o, &c.r);
	assert_int_equal(order_count(o), 0);
	order_free(o);
}

static void test_a_later_request_never_overtakes_an_earlier_overlapping_one(void **state)
{
	struct order *o = order_new();
	struct req a, b, c;

	grants = 0;
	queue(o, &a, 0, 4096);
	queue(o, &b, 0, 8192);    /* waits for a */
	queue(o, &c, 4096, 4096); /* free of a, but b came first and overlaps */
	assert_int_equal(b.granted_as, 0);
	assert_int_equal(c.granted_as, 0);
	order_release(o, &a.r);
	assert_int_equal(b.granted_as, 2);
	assert_int_equal(c.granted_as, 0);
	order_release(o, &b.r);
	assert_int_equal(c.granted_as, 3);
	order_release(o, &c.r);
	order_free(o);
}

static void test_non_overlapping_ranges_pass(void **state)
{
	struct order *o = order_new();
	struct req a, b, c;

	grants = 0;
	queue(o, &a, 0, 4096);
	queue(o, &b, 4096, 4096);
	queue(o, &c, 1u << 20, 512);
	assert_int_equal(a.granted_as, 1);
	assert_int_equal(b.granted_as, 2);
	assert_int_equal(c.granted_as, 3);
	assert_int_equal(order_count(o), 3);
	order_release(o, &b.r);
	order_release(o, &a.r);
	order_release(o, &c.r);
	order_free(o);
}

static void test_releasing_a_waiter_unblocks_those_behind_it(void **state)
{
	struct order *o = order_new();
	struct req a, b, c;

	grants = 0;
	queue(o, &a, 0, 4096);
	queue(o, &b, 0, 8192);
	queue(o, &c, 4096, 4096);
	order_release(o, &b.r); /* cancelled before it ran */
	assert_int_equal(b.granted_as, 0);
	assert_int_equal(c.granted_as, 2);
	order_release(o, &a.r);
	order_release(o, &c.r);
	assert_int_equal(order_count(o), 0);
	order_free(o);
}

/* Random locks and releases against the rules themselves: held ranges never overlap, and
 * of two overlapping requests the earlier one is always granted first. */
static void test_random_traffic_keeps_overlapping_grants_in_arrival_order(void **state)
{
	enum { N = 400 };
	static struct req q[N];
	static int arrival[N];
	struct order *o = order_new();
	int next = 0, live[N], nlive = 0;

	grants = 0;
	srand(5);
	while (next < N || nlive > 0) {
		if (next < N && (nlive == 0 || rand() % 2)) {
			arrival[next] = next;
			queue(o, &q[next], (uint64_t)(rand() % 64) * 512, (uint64_t)(1 + rand() % 8) * 512);
			live[nlive++] = next++;
		} else {
			/* release a granted one, or now and then cancel a waiter */
			int k = rand() % nlive, i = live[k];

			if (!q[i].granted_as && rand() % 8)
				continue;
			order_release(o, &q[i].r);
			live[k] = live[--nlive];
		}
		for (int a = 0; a < nlive; a++) {
			for (int b = 0; b < nlive; b++) {
				struct req *x = &q[live[a]], *y = &q[live[b]];
				bool ov = x->r.offset < y->r.offset + y->r.length && y->r.offset < x->r.offset + x->r.length;

				if (a == b || !ov)
					continue;
				assert_false(x->granted_as && y->granted_as);
				if (arrival[live[a]] < arrival[live[b]] && y->granted_as)
					assert_true(x->granted_as && x->granted_as < y->granted_as);
			}
		}
	}
	assert_int_equal(order_count(o), 0);
	order_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlapping_ranges_are_granted_in_arrival_order),
		cmocka_unit_test(test_a_later_request_never_overtakes_an_earlier_overlapping_one),
		cmocka_unit_test(test_non_overlapping_ranges_pass),
		cmocka_unit_test(test_releasing_a_waiter_unblocks_those_behind_it),
		cmocka_unit_test(test_random_traffic_keeps_overlapping_grants_in_arrival_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
