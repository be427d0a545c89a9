/* The logical unit as command handlers see it (inside the SCSI layer only). */
#ifndef TWINSAN_SCSI_LU_H
#define TWINSAN_SCSI_LU_H

#include <stdbool.h>

#include "scsi/nexus_set.h"
#include "scsi/scsi.h"
#include "scsi/sense.h"

/* D_SENSE in the control mode page: descriptor-format sense. */
bool lu_descriptor_sense(const struct scsi_lu *lu);

/* Shorthands that apply the logical unit's sense format. */
void lu_sense(struct scsi_task *task, enum sense_key key, enum sense_asc asc);
void lu_sense_field(struct scsi_task *task, enum sense_key key, enum sense_asc asc,
                    bool in_cdb, uint16_t byte, int bit);
/* The sense for a store operation that failed with err (-errno), as store.h says: a store
 * that stopped serving mid-command (-ENOTCONN, an HA replica taken out of service) gives
 * NOT READY, asymmetric access state transition, which an initiator retries on another
 * path; anything else is a medium error of the write or the read. */
void lu_sense_store_error(struct scsi_task *task, int err, bool writing);

/* Gives the task a Data-In buffer of len bytes (zeroed); false when out of memory (the
 * task then already carries the error). */
bool lu_alloc_data_in(struct scsi_task *task, uint32_t len);
/* The same, uninitialised, for Data-In that a store read fills completely. */
bool lu_alloc_read_buffer(struct scsi_task *task, uint32_t len);

/* Aborts tasks of other nexuses on this logical unit (PREEMPT AND ABORT, CLEAR TASK SET):
 * those still in the SCSI layer end with TASK ABORTED (or TASK SET FULL-free silence, as
 * TAS says), and the transport drops the ones it holds. */
void lu_abort_tasks(struct scsi_lu *lu, bool (*match)(const struct scsi_itn *itn, void *arg),
                    void *arg, const struct scsi_task *except);

/* lu_abort_tasks() for a set of nexuses that an HA partner replays too. */
void lu_abort_set(struct scsi_lu *lu, const struct nexus_set *set, const struct scsi_task *except);

/* Ends the task: its status and sense are set; done() runs from the reactor. */
void lu_complete(struct scsi_task *task);

#endif
