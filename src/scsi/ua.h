/* Unit attention conditions (SAM-5 §5.14, SPC-4 §5.12) of one logical unit, queued per
 * I_T nexus.  A nexus is known from its first command on; that command reports POWER ON,
 * RESET, OR BUS DEVICE RESET OCCURRED as the standard requires. */
#ifndef TWINSAN_SCSI_UA_H
#define TWINSAN_SCSI_UA_H

#include <stdbool.h>

#include "scsi/nexus_set.h"
#include "scsi/scsi.h"
#include "scsi/sense.h"

struct ua_set;

int ua_set_new(struct ua_set **out);
void ua_set_free(struct ua_set *ua);

/* True if the two nexuses are the same I_T nexus (initiator port and target port: its
 * portal group tag and relative port, which tells the two nodes of an HA pair apart). */
bool ua_same_nexus(const struct scsi_itn *a, const struct scsi_itn *b);

void ua_raise(struct ua_set *ua, const struct scsi_itn *itn, enum sense_asc asc);
/* Raises asc for every known nexus except `except` (NULL: all). */
void ua_raise_all(struct ua_set *ua, const struct scsi_itn *except, enum sense_asc asc);
/* Raises asc for every known nexus match() accepts. */
void ua_raise_matching(struct ua_set *ua, bool (*match)(const struct scsi_itn *itn, void *arg),
                       void *arg, enum sense_asc asc);

/* Raises asc for every known nexus of the set; while a recorder is set, also tells it (the
 * partner of an HA pair replays the same raise against its own nexuses). */
void ua_raise_set(struct ua_set *ua, const struct nexus_set *set, enum sense_asc asc);
typedef void (*ua_recorder_fn)(void *arg, const struct nexus_set *set, enum sense_asc asc);
/* Sets (fn NULL: clears) the recorder of ua_raise_set(). */
void ua_set_recorder(struct ua_set *ua, ua_recorder_fn fn, void *arg);

/* If the nexus has a pending unit attention, takes the oldest one off the queue and returns
 * true with *asc set (first contact with a nexus yields POWER ON OCCURRED). */
bool ua_take(struct ua_set *ua, const struct scsi_itn *itn, enum sense_asc *asc);
/* True if a unit attention is pending for the nexus, without taking it. */
bool ua_pending(struct ua_set *ua, const struct scsi_itn *itn);
/* Forgets the nexus (logout, connection loss); it starts afresh if it returns. */
void ua_forget(struct ua_set *ua, const struct scsi_itn *itn);

#endif
