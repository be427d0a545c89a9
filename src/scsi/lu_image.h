/* The state of a logical unit that the two nodes of an HA pair share, as bytes: the
 * persistent reservations (the APTPL file's JSON), whether they are persisted, the
 * RESERVE(6) holder and the mode parameters, followed by the side effects of the change
 * that produced it (unit attentions to raise, tasks to abort), each for a set of nexuses
 * the receiving node evaluates against its own (nexus_set.h).
 *
 * The bytes come from the partner over the network: decoding checks every field and the
 * PR image's invariants, and never trusts a length. */
#ifndef TWINSAN_SCSI_LU_IMAGE_H
#define TWINSAN_SCSI_LU_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/mode.h"
#include "scsi/nexus_set.h"
#include "scsi/pr.h"
#include "scsi/sense.h"

#define LU_JOURNAL_MAX 64 /* effects of one change; more means the image is refused */

enum lu_effect_kind { LU_EFFECT_UA = 1, LU_EFFECT_ABORT = 2 };

/* One side effect; the set is kept by value so it outlives the change. */
struct lu_effect {
	enum lu_effect_kind kind;
	enum sense_asc asc;      /* LU_EFFECT_UA */
	bool all;
	struct pr_reg *regs;     /* the registrations whose nexuses are meant, unless all */
	size_t nregs;
	bool has_except;
	struct scsi_itn except;  /* the nexus left out (names, ISID, tpgt, relative port) */
};

struct lu_journal {
	struct lu_effect effects[LU_JOURNAL_MAX];
	size_t n;
	bool overflow;           /* an effect could not be kept (full, out of memory) */
};

/* Records an effect on set (copied). */
void lu_journal_add(struct lu_journal *j, enum lu_effect_kind kind, enum sense_asc asc,
                    const struct nexus_set *set);
void lu_journal_clear(struct lu_journal *j);
/* The effect's nexuses as a set (pointing into e). */
void lu_effect_set(const struct lu_effect *e, struct nexus_set *out);

/* A decoded image. */
struct lu_image {
	struct pr_image pr;
	struct pr_snapshot rest;  /* APTPL and RESERVE(6); rest.img unused */
	struct mode_state mode;
	struct lu_journal journal;
};

/* Encodes the state and the journal (NULL: no effects) into a malloc'd buffer; -1 when
 * out of memory. */
int lu_image_encode(const struct pr_snapshot *pr, const struct mode_state *mode, const struct lu_journal *j,
                    uint8_t **out, size_t *len);
/* Decodes an image; -1 with err set if it is malformed (nothing to free then). */
int lu_image_decode(const uint8_t *buf, size_t len, struct lu_image *out, char *err, size_t errlen);
void lu_image_free(struct lu_image *im);

#endif
