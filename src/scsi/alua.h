/* Implicit ALUA of one logical unit (SPC-4 §5.15): which target port groups it has and in
 * which asymmetric access state, the gate that state puts on commands, and REPORT TARGET
 * PORT GROUPS.  The groups come from a provider (scsi_lu_set_port_groups()) or, without
 * one, are a single group holding the ports nexuses used. */
#ifndef TWINSAN_SCSI_ALUA_H
#define TWINSAN_SCSI_ALUA_H

#include <stdbool.h>

#include "scsi/scsi.h"
#include "scsi/sense.h"
#include "store/store.h"

struct alua;

int alua_new(struct alua **out);
void alua_free(struct alua *a);

/* Sets the provider (fn NULL: the plain single group) and re-reads the groups; true if
 * some group's state changed (the caller raises the unit attention). */
bool alua_set_provider(struct alua *a, scsi_port_groups_fn fn, void *ctx, enum store_access access);
/* Re-reads the groups; true if some group's state changed. */
bool alua_refresh(struct alua *a, enum store_access access);
/* Re-reads the groups only if the store's access changed since the last reading; true if
 * some group's state changed.  Cheap: called for every command. */
bool alua_follow_store(struct alua *a, enum store_access access);

/* Notes the target port a nexus came through (the plain group lists those ports). */
void alua_note_port(struct alua *a, const struct scsi_itn *itn);

/* The access state of the group the nexus's target port is in. */
enum scsi_alua_state alua_state(const struct alua *a, const struct scsi_itn *itn);
/* Whether a command whose descriptor has `cdb_flags` runs in state s; if not, *asc is the
 * NOT READY reason. */
bool alua_allows(enum scsi_alua_state s, unsigned cdb_flags, enum sense_asc *asc);
/* The NOT READY reason a state gives a command it does not run (REQUEST SENSE reports it
 * too); false for the active states. */
bool alua_not_ready(enum scsi_alua_state s, enum sense_asc *asc);

/* REPORT TARGET PORT GROUPS (MAINTENANCE IN, service action 0x0a) handler. */
void alua_report_target_port_groups(struct scsi_task *task);

#endif
