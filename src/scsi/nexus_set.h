/* Sets of I_T nexuses named by what either node of an HA pair can evaluate against its
 * own nexuses: the initiator ports and target ports of registrations, or every nexus,
 * less the one that caused the change (it learns from its own status).  Unit attentions
 * and aborts owed to such a set are applied on one node and replayed on the other. */
#ifndef TWINSAN_SCSI_NEXUS_SET_H
#define TWINSAN_SCSI_NEXUS_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "scsi/pr_file.h"
#include "scsi/scsi.h"

struct nexus_set {
	bool all;                      /* every nexus (regs unused) */
	const struct pr_reg *regs;     /* else: the nexuses these registrations cover */
	size_t nregs;
	const struct scsi_itn *except; /* NULL: none left out */
};

/* True if a registration covers the nexus (its initiator port, on its target port or all). */
bool nexus_reg_covers(const struct pr_reg *r, const struct scsi_itn *itn);
/* A matcher for ua_raise_matching() and lu_abort_tasks(); arg is a struct nexus_set. */
bool nexus_set_has(const struct scsi_itn *itn, void *arg);

#endif
