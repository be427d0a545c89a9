/* Generation identifiers: which replica of an HA device is newer when two nodes meet.
 *
 * In the spirit of DRBD's data generation UUIDs, each replica keeps 64-bit random
 * identifiers of the data histories it has been part of:
 *   current     the history it is writing now;
 *   bitmap      the `current` of the time it parted from the partner and started writing
 *               alone: its activemap records every change since; 0 while in sync;
 *   history[2]  older `bitmap` values whose resync finished, newest first.
 * Identifiers are never 0 except for "none": a blank replica has current 0.
 *
 * A replica starts a new generation on the first write it accepts while the partner is
 * lost, so two nodes that both wrote while parted have different `current` values with
 * the same `bitmap`: a split brain, detected when they meet and never merged silently.
 * Nodes that merely crashed, together or not, keep equal `current` values: their dirty
 * extents (the union of both activemaps) are resynced from the priority node, never all.
 *
 * Everything here is pure: the random source is the caller's, so tests are deterministic. */
#ifndef TWINSAN_HA_GENERATION_H
#define TWINSAN_HA_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The data is an incomplete resync target: it must neither serve nor be a sync source. */
#define GENERATION_INCONSISTENT 0x1u
#define GENERATION_FLAGS_KNOWN GENERATION_INCONSISTENT

struct generation {
	uint64_t current;
	uint64_t bitmap;
	uint64_t history[2];
	uint32_t flags;
};

#define GENERATION_WIRE_SIZE 40 /* big-endian: current, bitmap, history[0..1], flags, 0 */

/* Returns a random 64-bit value; zero and values already in use are drawn again. */
typedef uint64_t generation_rng_fn(void *ctx);

enum generation_initial_sync {
	GENERATION_SYNC_CLEAR, /* both replicas zeroed: identical */
	GENERATION_SYNC_NONE,  /* the operator declares them identical */
	GENERATION_SYNC_COPY,  /* the creating node's data is copied to the partner */
};

enum generation_verdict {
	GENERATION_IN_SYNC,          /* same data except both activemaps' extents (crash) */
	GENERATION_LOCAL_NEWER,      /* local is sync source; resync the merged activemaps */
	GENERATION_REMOTE_NEWER,     /* remote is sync source; resync the merged activemaps */
	GENERATION_FULL_FROM_LOCAL,  /* local is newer, but no bitmap covers the gap: copy all */
	GENERATION_FULL_FROM_REMOTE,
	GENERATION_SPLIT_BRAIN,      /* both wrote since they parted: an operator must choose */
	GENERATION_NO_SOURCE,        /* the newer side is an incomplete resync target: refuse */
	GENERATION_UNRELATED,        /* no common history: not the same device, refuse */
};

const char *generation_verdict_name(enum generation_verdict v);

/* What the two replicas' identifiers say about their data.  Each node runs it with itself
 * as `local`; the two verdicts are always mirror images (LOCAL_NEWER on one side is
 * REMOTE_NEWER on the other), so both agree who is the source without a tie-break.
 * After GENERATION_IN_SYNC both nodes copy the merged activemaps from the priority node
 * and then call generation_sync_source_done(), which retires a bitmap identifier left by
 * a resync that a crash interrupted. */
enum generation_verdict generation_compare(const struct generation *local, const struct generation *remote);

/* A new device on the node that creates it; the partner's replica is made by
 * generation_new_partner() from the creator's, and both are persisted before serving. */
void generation_new_device(struct generation *g, generation_rng_fn *rng, void *ctx);
void generation_new_partner(const struct generation *creator, enum generation_initial_sync mode,
                            struct generation *partner);

/* First write accepted while the partner is lost.  Persist before that write starts.
 * -1, changing nothing, on an inconsistent replica: it must not accept writes alone. */
int generation_partner_lost_write(struct generation *g, generation_rng_fn *rng, void *ctx);

/* Resync: the target marks itself inconsistent before the first copy; when the last
 * extent arrived, the target adopts the source's finished identifiers (persisted first:
 * a crash in between then still compares as in sync), then the source finishes. */
void generation_sync_target_start(struct generation *target);
void generation_sync_source_done(struct generation *source);
void generation_sync_target_done(struct generation *target, const struct generation *source_done);

/* The operator resolved a split brain keeping `survivor`'s data: the loser becomes an
 * inconsistent sync target that compares as older by bitmap, so the resync copies the
 * merged activemaps (what the survivor changed and what the loser changed, the loser's
 * activemap being its divergent extents, to report before merging). */
void generation_discard_local(struct generation *loser, const struct generation *survivor);

void generation_encode(const struct generation *g, uint8_t out[GENERATION_WIRE_SIZE]);
/* -1 if unknown flags or the reserved field are set. */
int generation_decode(const uint8_t in[GENERATION_WIRE_SIZE], struct generation *g);

#endif
