/* The logical unit's state, shared by the command modules of the SCSI layer (never
 * included outside src/scsi). */
#ifndef TWINSAN_SCSI_LU_STATE_H
#define TWINSAN_SCSI_LU_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi/alua.h"
#include "scsi/lu.h"
#include "scsi/lu_image.h"
#include "scsi/lu_stats.h"
#include "scsi/mode.h"
#include "scsi/range_lock.h"
#include "scsi/task_order.h"
#include "scsi/ua.h"
#include "scsi/xcopy.h"

#define LU_SERIAL_MAX 33
#define LU_PREVENT_MAX 32

struct scsi_lu {
	struct store *store;
	struct scsi_target *target;   /* the target it was added to (REPORT LUNS, TMF hooks) */
	uint8_t uuid[16];
	char serial[LU_SERIAL_MAX];
	char vendor[9], product[17], revision[5];
	uint32_t block_size;
	unsigned block_shift;
	uint64_t nblocks;
	bool thin;                    /* the store deallocates on discard */
	struct mode_state mode;
	struct mode_state mode_default;
	struct ua_set *ua;
	struct pr_state *pr;
	struct alua *alua;            /* target port groups and their access states */
	struct scsi_task *active;     /* task set, linked by next_active */
	struct task_order order;      /* task attributes */
	struct range_lock ranges;
	struct xcopy_state xcopy;
	bool stopped;                 /* START STOP UNIT with START=0 */
	uint64_t prevent[LU_PREVENT_MAX]; /* nexus ids holding PREVENT MEDIUM REMOVAL */
	unsigned n_prevent;
	struct scsi_lu_stats stats;   /* for the metrics endpoint */
	const struct scsi_state_peer_ops *peer; /* the HA partner's state provider, or NULL */
	void *peer_ctx;
	struct lu_journal journal;    /* effects of the shared-state command running now */
	bool journaling;
};

/* Replies with data: copies min(len, alloc_len) bytes to a new Data-In buffer and sets
 * GOOD status; false (error already set) when out of memory. */
bool lu_reply(struct scsi_task *task, const void *data, uint32_t len, uint32_t alloc_len);

/* True if some nexus holds PREVENT MEDIUM REMOVAL. */
bool lu_prevented(const struct scsi_lu *lu);
/* PREVENT (true) or ALLOW medium removal for a nexus; false when no slot is left. */
bool lu_set_prevent(struct scsi_lu *lu, uint64_t nexus_id, bool prevent);

/* REPORT LUNS data for the target the logical unit belongs to (target.c). */
void target_report_luns(const struct scsi_target *t, struct scsi_task *task);
/* The transport's hook to abort tasks it holds (target.c). */
void target_abort_transport_tasks(const struct scsi_target *t, struct scsi_lu *lu,
                                  bool (*match)(const struct scsi_itn *itn, void *arg), void *arg,
                                  const struct scsi_task *except);
/* A match for lu_abort_tasks() that takes every nexus. */
bool lu_any_nexus(const struct scsi_itn *itn, void *arg);
/* Logical unit entry points used by the target device (lu.c). */
void lu_task_start(struct scsi_task *task, struct scsi_lu *lu); /* resets the "out" fields */
void lu_execute(struct scsi_lu *lu, struct scsi_task *task);
void lu_reset(struct scsi_lu *lu);
void lu_nexus_lost(struct scsi_lu *lu, const struct scsi_itn *itn);
/* A logical unit found by its NAA designator among the target's (EXTENDED COPY). */
struct scsi_lu *target_find_lu_by_naa(const struct scsi_target *t, const uint8_t naa[16]);
/* NAA IEEE Registered Extended designator of a logical unit (16 bytes). */
void lu_naa(const struct scsi_lu *lu, uint8_t naa[16]);

#endif
