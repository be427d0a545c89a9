/* Mode pages (SPC-4 §7.5, SBC-3 §6.4): caching, control, informational exceptions, with
 * current, changeable, default and saved values, and MODE SENSE/SELECT 6 and 10. */
#ifndef TWINSAN_SCSI_MODE_H
#define TWINSAN_SCSI_MODE_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi/scsi.h"

/* The changeable parameters of a logical unit.  Only what the logical unit honours is
 * changeable: RCD, TAS and QERR stay 0 (tasks aborted for another nexus end silently, as
 * TAS=0 says). */
struct mode_state {
	bool wce;     /* caching page: write cache enabled */
	bool d_sense; /* control page: descriptor-format sense data */
	bool swp;     /* control page: software write protect */
	uint8_t mrie; /* informational exceptions page: reporting method */
	bool dexcpt;  /* informational exceptions page: disable exceptions */
};

void mode_defaults(struct mode_state *m, bool write_cache);

/* MODE SENSE(6)/(10) and MODE SELECT(6)/(10) handlers. */
void mode_sense(struct scsi_task *task);
void mode_select(struct scsi_task *task);

#endif
