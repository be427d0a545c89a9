/* The daemon's served objects, built from what a configuration (or the quick-export
 * command line) describes: iSCSI targets with their portal groups, ACLs and CHAP; LUNs on
 * files and block devices with their stable identity; HA devices with their links, witness
 * and ALUA port groups.  The same builders serve changes through the management API
 * (mgmt/apply.h), and the object drains and closes them at shutdown.
 *
 * Everything runs on the daemon's reactor. */
#ifndef TWINSAN_MGMT_BUILD_H
#define TWINSAN_MGMT_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "iscsi/server.h"
#include "iscsi/target.h"
#include "mgmt/api.h"
#include "mgmt/apply.h"
#include "mgmt/config.h"
#include "mgmt/metrics_server.h"

struct mgmt_build;

/* What the objects are registered with; none is owned.  node: this node's id towards HA
 * partners, 0 until an HA device needs one (then it is loaded from the state directory). */
struct mgmt_build_params {
	struct reactor *reactor;
	struct iscsi_registry *registry;
	struct mgmt_api *api;
	struct metrics_server *metrics;
	uint64_t node;
};

int mgmt_build_new(const struct mgmt_build_params *p, struct mgmt_build **out);
/* Closes what is left (a failed start's half-built objects too); after the registry and
 * the server are gone, since targets point at the logical units. */
void mgmt_build_free(struct mgmt_build *b);

/* The server that serves targets added while running. */
void mgmt_build_set_server(struct mgmt_build *b, struct iscsi_server *server);
/* The API and the metrics endpoint are freed before the objects: nothing is registered
 * with them, nor are events published, from here on. */
void mgmt_build_forget_api(struct mgmt_build *b);

/* Every target and LUN of cfg; path names the main file in messages.  0, or -1 logged. */
int mgmt_build_config(struct mgmt_build *b, const struct config *cfg, const char *path);

/* A LUN of a file or block device in target (quick export mode). */
struct mgmt_build_file {
	const char *target;        /* its target's name */
	const char *path;
	uint64_t lun;
	uint64_t create_size;      /* create a missing file sparse with this size; 0: must exist */
	bool direct;
	uint32_t block_size;
	const char *state_path;    /* persistent reservations */
};
int mgmt_build_add_file_lun(struct mgmt_build *b, const struct mgmt_build_file *f);

size_t mgmt_build_lun_count(const struct mgmt_build *b);

/* How changes through the API are served: the ops of mgmt_apply_new(), with b as arg. */
const struct mgmt_apply_ops *mgmt_build_apply_ops(void);

/* Shutdown, in this order, after the server stopped: the HA links stop dialing and
 * listening; every completed write is made durable (the reactor turns until the flushes
 * end, or 10 s); the HA devices close, saying goodbye on their links, and their witness
 * clients release their claims (3 s at most). */
void mgmt_build_stop_peers(struct mgmt_build *b);
void mgmt_build_flush(struct mgmt_build *b);
void mgmt_build_close_ha(struct mgmt_build *b);

#endif
