/* Reservations of one logical unit: SPC-4 persistent reservations (PERSISTENT RESERVE
 * IN/OUT, every service action and type, APTPL persisted crash-safely) and the older
 * RESERVE(6)/RELEASE(6).  The opcode table marks each command with PR_GATE_* flags and
 * the logical unit asks pr_allows() before running it. */
#ifndef TWINSAN_SCSI_PR_H
#define TWINSAN_SCSI_PR_H

#include <stdbool.h>
#include <stddef.h>

#include "scsi/pr_file.h"
#include "scsi/scsi.h"
#include "scsi/ua.h"

/* How a command touches the logical unit, for reservation checks (SPC-4 §5.13.1 tables). */
#define PR_GATE_READ      0x1u /* reads the medium: conflicts under Exclusive Access types */
#define PR_GATE_WRITE     0x2u /* changes medium or state: conflicts under Write Exclusive too */
#define PR_GATE_RESV6_OK  0x4u /* allowed to other nexuses while a RESERVE(6) is held */
#define PR_GATE_NEVER     0x8u /* never conflicts (INQUIRY, REPORT LUNS, PR IN/OUT ...) */

struct pr_state;

/* Persistent state goes to state_path (NULL: APTPL is refused); an existing file is
 * loaded, so registrations made with APTPL survive a restart. */
int pr_state_new(const char *state_path, struct ua_set *ua, struct pr_state **out,
                 char *err, size_t errlen);
void pr_state_free(struct pr_state *pr);

/* The reservation gate: true if itn may run a command with these PR_GATE_* flags. */
bool pr_allows(const struct pr_state *pr, const struct scsi_itn *itn, unsigned gate);

/* Command handlers; each sets status/sense/data-in on the task and returns; the caller
 * completes the task.  PREEMPT AND ABORT asks the logical unit to abort the preempted
 * nexuses' tasks through lu_abort_tasks() (see lu.h). */
void pr_persistent_reserve_in(struct pr_state *pr, struct scsi_task *task);
void pr_persistent_reserve_out(struct pr_state *pr, struct scsi_task *task);
void pr_reserve6(struct pr_state *pr, struct scsi_task *task);
void pr_release6(struct pr_state *pr, struct scsi_task *task);

/* RESERVE(6) ends with the nexus that holds it, and with LUN RESET. */
void pr_nexus_lost(struct pr_state *pr, const struct scsi_itn *itn);
void pr_reset(struct pr_state *pr);

/* True if itn holds the RESERVE(6) reservation. */
bool pr_resv6_held_by(const struct pr_state *pr, const struct scsi_itn *itn);

/* The state an HA partner shares: the persistent reservation image (borrowed from pr,
 * valid until its next change), whether it is persisted (APTPL), the RESERVE(6) holder. */
struct pr_snapshot {
	const struct pr_image *img;
	bool aptpl;
	bool resv6_held;
	struct pr_port resv6_port;
	uint16_t resv6_relative_port;
};
void pr_snapshot(const struct pr_state *pr, struct pr_snapshot *out);
/* Replaces the state with the partner's: *img is taken over (left empty), rest gives the
 * other fields (its img is ignored).  APTPL state is written to this node's file (or the
 * file removed); -1 with err if that fails or this node cannot persist (the state is
 * installed all the same). */
int pr_install(struct pr_state *pr, struct pr_image *img, const struct pr_snapshot *rest, char *err,
               size_t errlen);

#endif
