/* Generation identifiers: the comparison table and the transitions that feed it. */
#include "ha/generation.h"

#include <string.h>

#include "common/util.h"

static const char *const verdict_names[] = {
	[GENERATION_IN_SYNC] = "in sync",
	[GENERATION_LOCAL_NEWER] = "local newer",
	[GENERATION_REMOTE_NEWER] = "remote newer",
	[GENERATION_FULL_FROM_LOCAL] = "full sync from local",
	[GENERATION_FULL_FROM_REMOTE] = "full sync from remote",
	[GENERATION_SPLIT_BRAIN] = "split brain",
	[GENERATION_NO_SOURCE] = "no consistent source",
	[GENERATION_UNRELATED] = "unrelated data",
};

const char *generation_verdict_name(enum generation_verdict v)
{
	return (unsigned)v < ARRAY_SIZE(verdict_names) ? verdict_names[v] : "?";
}

static bool inconsistent(const struct generation *g)
{
	return g->flags & GENERATION_INCONSISTENT;
}

static bool in_history(const struct generation *g, uint64_t id)
{
	return id != 0 && (g->history[0] == id || g->history[1] == id);
}

/* Some identifier both replicas wrote under before they parted, other than `current`. */
static bool common_past(const struct generation *a, const struct generation *b)
{
	const uint64_t mine[] = { a->bitmap, a->history[0], a->history[1] };

	for (size_t i = 0; i < ARRAY_SIZE(mine); i++) {
		if (mine[i] != 0 && (mine[i] == b->bitmap || in_history(b, mine[i])))
			return true;
	}
	return false;
}

/* `newer` may be a source only if its data is complete. */
static enum generation_verdict source(const struct generation *newer, enum generation_verdict v)
{
	return inconsistent(newer) ? GENERATION_NO_SOURCE : v;
}

enum generation_verdict generation_compare(const struct generation *l, const struct generation *r)
{
	if (l->current == 0 && r->current == 0)
		return GENERATION_UNRELATED;
	if (r->current == 0)
		return source(l, GENERATION_FULL_FROM_LOCAL);
	if (l->current == 0)
		return source(r, GENERATION_FULL_FROM_REMOTE);
	if (l->current == r->current) {
		if (inconsistent(l) && inconsistent(r))
			return GENERATION_NO_SOURCE;
		if (inconsistent(l))
			return GENERATION_REMOTE_NEWER;
		return inconsistent(r) ? GENERATION_LOCAL_NEWER : GENERATION_IN_SYNC;
	}
	/* Each test looks both ways, so the verdict from the other side is its mirror image
	 * even for identifiers no legal history produces (crossed claims are split brain). */
	bool l_newer = l->bitmap == r->current, r_newer = r->bitmap == l->current;
	if (l_newer != r_newer)
		return l_newer ? source(l, GENERATION_LOCAL_NEWER) : source(r, GENERATION_REMOTE_NEWER);
	if (l_newer || (l->bitmap != 0 && l->bitmap == r->bitmap))
		return GENERATION_SPLIT_BRAIN;
	bool l_ahead = in_history(l, r->current), r_ahead = in_history(r, l->current);
	if (l_ahead != r_ahead)
		return l_ahead ? source(l, GENERATION_FULL_FROM_LOCAL) : source(r, GENERATION_FULL_FROM_REMOTE);
	if (l_ahead)
		return GENERATION_SPLIT_BRAIN;
	return common_past(l, r) ? GENERATION_SPLIT_BRAIN : GENERATION_UNRELATED;
}

/* A random identifier that is not 0 and not one g already holds. */
static uint64_t fresh_id(const struct generation *g, generation_rng_fn *rng, void *ctx)
{
	uint64_t id;

	do
		id = rng(ctx);
	while (id == 0 || id == g->current || id == g->bitmap || in_history(g, id));
	return id;
}

void generation_new_device(struct generation *g, generation_rng_fn *rng, void *ctx)
{
	memset(g, 0, sizeof(*g));
	g->current = fresh_id(g, rng, ctx);
}

void generation_new_partner(const struct generation *creator, enum generation_initial_sync mode,
                            struct generation *partner)
{
	if (mode == GENERATION_SYNC_COPY) {
		memset(partner, 0, sizeof(*partner));
		partner->flags = GENERATION_INCONSISTENT;
	} else {
		*partner = *creator;
	}
}

int generation_partner_lost_write(struct generation *g, generation_rng_fn *rng, void *ctx)
{
	if (inconsistent(g))
		return -1;
	/* A bitmap already set still names the last point shared with the partner. */
	if (g->bitmap == 0)
		g->bitmap = g->current;
	g->current = fresh_id(g, rng, ctx);
	return 0;
}

void generation_sync_target_start(struct generation *target)
{
	target->flags |= GENERATION_INCONSISTENT;
}

void generation_sync_source_done(struct generation *source_g)
{
	if (source_g->bitmap == 0)
		return;
	source_g->history[1] = source_g->history[0];
	source_g->history[0] = source_g->bitmap;
	source_g->bitmap = 0;
}

void generation_sync_target_done(struct generation *target, const struct generation *source_done)
{
	*target = *source_done;
	target->flags &= ~(uint32_t)GENERATION_INCONSISTENT;
}

void generation_discard_local(struct generation *loser, const struct generation *survivor)
{
	loser->current = survivor->bitmap;
	loser->bitmap = 0;
	loser->flags |= GENERATION_INCONSISTENT;
}

void generation_encode(const struct generation *g, uint8_t out[GENERATION_WIRE_SIZE])
{
	put_be64(out, g->current);
	put_be64(out + 8, g->bitmap);
	put_be64(out + 16, g->history[0]);
	put_be64(out + 24, g->history[1]);
	put_be32(out + 32, g->flags);
	put_be32(out + 36, 0);
}

int generation_decode(const uint8_t in[GENERATION_WIRE_SIZE], struct generation *g)
{
	uint32_t flags = get_be32(in + 32);

	if ((flags & ~(uint32_t)GENERATION_FLAGS_KNOWN) != 0 || get_be32(in + 36) != 0)
		return -1;
	g->current = get_be64(in);
	g->bitmap = get_be64(in + 8);
	g->history[0] = get_be64(in + 16);
	g->history[1] = get_be64(in + 24);
	g->flags = flags;
	return 0;
}
