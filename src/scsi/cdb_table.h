/* The opcode table: one descriptor per supported command (and service action).  It drives
 * CDB validation, REPORT SUPPORTED OPERATION CODES, reservation gating, unit attention
 * handling and the asymmetric access gate, so a command's surface is described in exactly one place. */
#ifndef TWINSAN_SCSI_CDB_TABLE_H
#define TWINSAN_SCSI_CDB_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi/scsi.h"

#define CDB_MAX_LEN 16

/* Descriptor flags. */
#define CDB_SA           0x01u /* byte 1 bits 4..0 hold a service action */
#define CDB_NO_UA        0x02u /* neither reports nor clears unit attentions */
#define CDB_WHILE_STOPPED 0x04u /* runs while the logical unit is stopped */
#define CDB_DATA_IN      0x08u
#define CDB_DATA_OUT     0x10u
/* Asymmetric access (SPC-4 §5.15.2.4): what runs while the target port's group is not
 * active.  Commands with neither flag get NOT READY there. */
#define CDB_ANY_ACCESS   0x20u /* in every state: standby, unavailable, transitioning */
#define CDB_STANDBY      0x40u /* also in the standby state */
/* Changes the state an HA pair shares (reservations, mode parameters): runs on the state's
 * owner (scsi_lu_set_state_peer()). */
#define CDB_SHARED_STATE 0x80u

struct cdb_desc {
	uint8_t opcode;
	uint8_t service_action;
	uint8_t len;
	unsigned flags;
	unsigned pr_gate;            /* PR_GATE_* (scsi/pr.h) */
	uint32_t nominal_timeout_s;  /* for the RCTD timeouts descriptor */
	const char *name;
	void (*handler)(struct scsi_task *task);
	/* Bits a CDB may set, byte by byte; byte 0 (opcode) and the service action bits
	 * count as used, as in the CDB USAGE DATA of REPORT SUPPORTED OPERATION CODES. */
	uint8_t usage[CDB_MAX_LEN];
};

/* Outcome of looking a CDB up. */
enum cdb_lookup_result { CDB_FOUND, CDB_BAD_OPCODE, CDB_BAD_SERVICE_ACTION };

enum cdb_lookup_result cdb_lookup(const uint8_t *cdb, const struct cdb_desc **out);

/* Checks every CDB bit against the usage mask; on a violation sets INVALID FIELD IN CDB
 * with the field pointer on the task and returns false. */
bool cdb_validate(const struct cdb_desc *d, struct scsi_task *task);

/* REPORT SUPPORTED OPERATION CODES handler. */
void cdb_report_supported_opcodes(struct scsi_task *task);

#endif
