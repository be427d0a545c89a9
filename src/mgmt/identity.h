/* Identities the daemon keeps on disk: a logical unit's uuid, kept with its backing file
 * (its VPD serial and NAA designator come from it, so multipath sees the same disk after a
 * restart), and the node id an HA partner knows this node by. */
#ifndef TWINSAN_MGMT_IDENTITY_H
#define TWINSAN_MGMT_IDENTITY_H

#include <stdint.h>

#include "mgmt/config.h"

/* The uuid of the LU served from path: the one kept in a user xattr of the file, or in a
 * sidecar file PATH.twinsan where there are no user xattrs (tmpfs, block devices); a new
 * random one is made and kept durably the first time.  0, or -1 with errno. */
int identity_lun_uuid(const char *path, uint8_t uuid[16]);

/* This node's id: node-id of cfg, or the one kept in <state-dir>/node-id (made the first
 * time, crash-safely: a torn file would make the node a stranger to its partner).  0, or
 * -1 logged. */
int identity_node_id(const struct config *cfg, uint64_t *out);

#endif
