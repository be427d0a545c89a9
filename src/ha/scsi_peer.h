/* The SCSI state of an HA device's logical unit kept as one for both nodes: the provider
 * of scsi_lu_set_state_peer() (scsi.h) on the device's channel (device.h), speaking the
 * messages of ha/scsi_msg.h.
 *
 * The owner of the state runs every command that changes it: the primary while the pair
 * is connected, each node for itself while apart.  On meeting, each node sends its state
 * with a rank (changed while apart > live since start > only loaded at start); both keep
 * the higher-ranked one, or the data source's on a tie, so a node that restarted never
 * overwrites what the survivor holds. */
#ifndef TWINSAN_HA_SCSI_PEER_H
#define TWINSAN_HA_SCSI_PEER_H

#include "common/reactor.h"
#include "ha/device.h"
#include "scsi/scsi.h"

struct ha_scsi_peer;

/* Couples lu's state with the partner's through d's channel; -1 when out of memory. */
int ha_scsi_peer_new(struct reactor *r, struct ha_device *d, struct scsi_lu *lu, struct ha_scsi_peer **out);
/* Uncouples them (before either is closed): commands waiting for the partner complete as
 * if it were lost; commands running for it finish unanswered. */
void ha_scsi_peer_free(struct ha_scsi_peer *p);

#endif
