/* The generation decision table, driven through the transitions two nodes go through:
 * each case names the history it plays and what the comparison must conclude, from both
 * nodes' points of view. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ha/generation.h"

/* A deterministic random source: 0x100, 0x200, ... */
static uint64_t counter_rng(void *ctx)
{
	uint64_t *n = ctx;
	return (*n += 0x100);
}

struct pair {
	struct generation a, b; /* a is the creating (primary) node */
	uint64_t rng;
};

static void pair_new(struct pair *p, enum generation_initial_sync mode)
{
	memset(p, 0, sizeof(*p));
	generation_new_device(&p->a, counter_rng, &p->rng);
	generation_new_partner(&p->a, mode, &p->b);
}

/* The verdict seen from a, and the mirror verdict seen from b. */
static void expect(const struct pair *p, enum generation_verdict from_a)
{
	static const enum generation_verdict mirror[] = {
		[GENERATION_IN_SYNC] = GENERATION_IN_SYNC,
		[GENERATION_LOCAL_NEWER] = GENERATION_REMOTE_NEWER,
		[GENERATION_REMOTE_NEWER] = GENERATION_LOCAL_NEWER,
		[GENERATION_FULL_FROM_LOCAL] = GENERATION_FULL_FROM_REMOTE,
		[GENERATION_FULL_FROM_REMOTE] = GENERATION_FULL_FROM_LOCAL,
		[GENERATION_SPLIT_BRAIN] = GENERATION_SPLIT_BRAIN,
		[GENERATION_NO_SOURCE] = GENERATION_NO_SOURCE,
		[GENERATION_UNRELATED] = GENERATION_UNRELATED,
	};
	assert_string_equal(generation_verdict_name(generation_compare(&p->a, &p->b)),
	                    generation_verdict_name(from_a));
	assert_string_equal(generation_verdict_name(generation_compare(&p->b, &p->a)),
	                    generation_verdict_name(mirror[from_a]));
}

/* A full resync from `src` to `dst`, target adopting first. */
static void resync(struct generation *src, struct generation *dst)
{
	generation_sync_target_start(dst);
	struct generation done = *src;
	generation_sync_source_done(&done);
	generation_sync_target_done(dst, &done);
	*src = done;
}

static void new_device_cleared_or_declared_identical_is_in_sync(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	assert_int_not_equal(p.a.current, 0);
	expect(&p, GENERATION_IN_SYNC);
	pair_new(&p, GENERATION_SYNC_NONE);
	expect(&p, GENERATION_IN_SYNC);
}

static void new_device_in_copy_mode_needs_a_full_sync_from_its_creator(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_COPY);
	assert_true(p.b.flags & GENERATION_INCONSISTENT);
	expect(&p, GENERATION_FULL_FROM_LOCAL);
	resync(&p.a, &p.b);
	expect(&p, GENERATION_IN_SYNC);
	assert_false(p.b.flags & GENERATION_INCONSISTENT);
}

static void power_cut_of_both_nodes_keeps_them_in_sync(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	/* nothing changes on a crash: writes in flight are in the activemaps, not here */
	expect(&p, GENERATION_IN_SYNC);
}

static void link_cut_without_writes_stays_in_sync(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	/* each side noticed the loss, but nobody accepted a write */
	expect(&p, GENERATION_IN_SYNC);
}

static void survivor_that_wrote_is_bitmap_sync_source(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	uint64_t shared = p.a.current;
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	assert_int_equal(p.a.bitmap, shared);
	assert_int_not_equal(p.a.current, shared);
	expect(&p, GENERATION_LOCAL_NEWER);
}

static void secondary_that_wrote_alone_is_the_source(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.b, counter_rng, &p.rng);
	expect(&p, GENERATION_REMOTE_NEWER);
}

static void survivor_restarted_while_alone_still_syncs_by_bitmap(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	uint64_t shared = p.a.current;
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng); /* after its own restart */
	assert_int_equal(p.a.bitmap, shared);
	expect(&p, GENERATION_LOCAL_NEWER);
}

static void finished_resync_is_in_sync_and_remembers_the_past(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	uint64_t shared = p.a.current;
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	resync(&p.a, &p.b);
	expect(&p, GENERATION_IN_SYNC);
	assert_int_equal(p.a.bitmap, 0);
	assert_int_equal(p.a.history[0], shared);
	assert_int_equal(p.b.history[0], shared);
}

static void crash_after_target_adopted_but_before_source_finished_is_in_sync(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_sync_target_start(&p.b);
	struct generation done = p.a;
	generation_sync_source_done(&done);
	generation_sync_target_done(&p.b, &done);
	/* p.a not yet persisted as done */
	expect(&p, GENERATION_IN_SYNC);
}

static void interrupted_resync_resumes_from_the_same_source(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_sync_target_start(&p.b);
	expect(&p, GENERATION_LOCAL_NEWER);
	/* the link fails again and the source keeps writing alone */
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	expect(&p, GENERATION_LOCAL_NEWER);
}

static void both_wrote_while_parted_is_split_brain(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_partner_lost_write(&p.b, counter_rng, &p.rng);
	expect(&p, GENERATION_SPLIT_BRAIN);
}

static void split_brain_found_after_one_side_resynced_elsewhere(void **state)
{
	struct pair p;
	struct generation spare;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_partner_lost_write(&p.b, counter_rng, &p.rng);
	/* a resynced a replacement replica by bitmap, forgetting its bitmap id */
	spare = p.b;
	spare.current = p.a.bitmap;
	spare.bitmap = 0;
	resync(&p.a, &spare);
	expect(&p, GENERATION_SPLIT_BRAIN);
}

static void operator_choice_makes_the_loser_a_bitmap_sync_target(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_partner_lost_write(&p.b, counter_rng, &p.rng);
	generation_discard_local(&p.b, &p.a);
	assert_true(p.b.flags & GENERATION_INCONSISTENT);
	expect(&p, GENERATION_LOCAL_NEWER);
	resync(&p.a, &p.b);
	expect(&p, GENERATION_IN_SYNC);
}

static void replica_older_than_the_bitmap_needs_a_full_sync(void **state)
{
	struct pair p;
	struct generation replacement;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	/* b stays away; a resyncs a new replica and writes alone again */
	generation_new_partner(&p.a, GENERATION_SYNC_COPY, &replacement);
	resync(&p.a, &replacement);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	resync(&p.a, &replacement);
	/* b's generation is now only in a's history: its bitmap no longer covers b */
	expect(&p, GENERATION_FULL_FROM_LOCAL);
}

static void inconsistent_newer_side_cannot_be_a_source(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	p.a.flags |= GENERATION_INCONSISTENT;
	expect(&p, GENERATION_NO_SOURCE);
	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_sync_target_start(&p.a);
	generation_sync_target_start(&p.b);
	expect(&p, GENERATION_NO_SOURCE);
	pair_new(&p, GENERATION_SYNC_COPY);
	p.a.flags |= GENERATION_INCONSISTENT;
	expect(&p, GENERATION_NO_SOURCE);
}

static void incomplete_replica_may_not_start_a_generation_alone(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_partner_lost_write(&p.a, counter_rng, &p.rng);
	generation_sync_target_start(&p.b);
	struct generation before = p.b;
	assert_int_equal(generation_partner_lost_write(&p.b, counter_rng, &p.rng), -1);
	assert_int_equal(p.b.current, before.current);
	assert_int_equal(p.b.bitmap, before.bitmap);
	expect(&p, GENERATION_LOCAL_NEWER);
}

static void inconsistent_side_with_the_same_generation_is_the_target(void **state)
{
	struct pair p;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	generation_sync_target_start(&p.b);
	expect(&p, GENERATION_LOCAL_NEWER);
}

static void different_devices_are_unrelated(void **state)
{
	struct pair p, q;

	pair_new(&p, GENERATION_SYNC_CLEAR);
	pair_new(&q, GENERATION_SYNC_CLEAR);
	q.rng = 0x5000;
	generation_new_device(&q.a, counter_rng, &q.rng);
	p.b = q.a;
	expect(&p, GENERATION_UNRELATED);
	/* two blank replicas hold nothing to agree on */
	memset(&p, 0, sizeof(p));
	expect(&p, GENERATION_UNRELATED);
}

static uint64_t stuck_rng(void *ctx)
{
	static const uint64_t seq[] = { 0, 0x100, 0x100, 0, 0x777 };
	unsigned *i = ctx;
	return seq[(*i)++];
}

static void new_identifiers_are_never_zero_or_reused(void **state)
{
	struct generation g;
	unsigned i = 0;

	generation_new_device(&g, stuck_rng, &i);
	assert_int_equal(g.current, 0x100);
	generation_partner_lost_write(&g, stuck_rng, &i);
	assert_int_equal(g.bitmap, 0x100);
	assert_int_equal(g.current, 0x777);
}

static void wire_form_round_trips_and_refuses_unknown_flags(void **state)
{
	struct generation g = { .current = 1, .bitmap = 0x1122334455667788ull, .history = { 3, 4 },
	                        .flags = GENERATION_INCONSISTENT }, back;
	uint8_t wire[GENERATION_WIRE_SIZE];

	generation_encode(&g, wire);
	assert_int_equal(wire[8], 0x11);
	assert_int_equal(generation_decode(wire, &back), 0);
	assert_true(back.current == g.current && back.bitmap == g.bitmap && back.history[0] == g.history[0] &&
	            back.history[1] == g.history[1] && back.flags == g.flags);
	wire[35] |= 0x2;
	assert_int_equal(generation_decode(wire, &back), -1);
	wire[35] &= (uint8_t)~0x2;
	wire[39] = 1;
	assert_int_equal(generation_decode(wire, &back), -1);
	assert_string_equal(generation_verdict_name((enum generation_verdict)99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(new_device_cleared_or_declared_identical_is_in_sync),
		cmocka_unit_test(new_device_in_copy_mode_needs_a_full_sync_from_its_creator),
		cmocka_unit_test(power_cut_of_both_nodes_keeps_them_in_sync),
		cmocka_unit_test(link_cut_without_writes_stays_in_sync),
		cmocka_unit_test(survivor_that_wrote_is_bitmap_sync_source),
		cmocka_unit_test(secondary_that_wrote_alone_is_the_source),
		cmocka_unit_test(survivor_restarted_while_alone_still_syncs_by_bitmap),
		cmocka_unit_test(finished_resync_is_in_sync_and_remembers_the_past),
		cmocka_unit_test(crash_after_target_adopted_but_before_source_finished_is_in_sync),
		cmocka_unit_test(interrupted_resync_resumes_from_the_same_source),
		cmocka_unit_test(both_wrote_while_parted_is_split_brain),
		cmocka_unit_test(split_brain_found_after_one_side_resynced_elsewhere),
		cmocka_unit_test(operator_choice_makes_the_loser_a_bitmap_sync_target),
		cmocka_unit_test(replica_older_than_the_bitmap_needs_a_full_sync),
		cmocka_unit_test(inconsistent_newer_side_cannot_be_a_source),
		cmocka_unit_test(incomplete_replica_may_not_start_a_generation_alone),
		cmocka_unit_test(inconsistent_side_with_the_same_generation_is_the_target),
		cmocka_unit_test(different_devices_are_unrelated),
		cmocka_unit_test(new_identifiers_are_never_zero_or_reused),
		cmocka_unit_test(wire_form_round_trips_and_refuses_unknown_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
