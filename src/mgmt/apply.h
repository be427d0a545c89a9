/* Changes to a running daemon's managed configuration (docs/config.md): each change
 * through the management API becomes configuration text, is validated together with the
 * main file exactly as at startup, is applied to the running daemon through the daemon's
 * builders, and is persisted crash-safely (write, fsync, rename, fsync of the directory),
 * so a restart comes back with the same targets, LUNs and HA devices.  An invalid change is refused
 * with the parser's message and changes nothing; a change the daemon cannot apply leaves
 * the file as it was.  Deletes take effect at once; a target with sessions logged in (or
 * one of its LUNs) is only deleted with "force", which ends those sessions first. */
#ifndef TWINSAN_MGMT_APPLY_H
#define TWINSAN_MGMT_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "mgmt/api_proto.h"
#include "mgmt/config.h"

struct mgmt_apply;

/* How the daemon serves a new object of cfg: 0, or -1 with err (and nothing of it left
 * behind). */
struct mgmt_apply_ops {
	int (*add_target)(void *arg, const struct config *cfg, size_t target, char *err, size_t errlen);
	int (*add_lun)(void *arg, const struct config *cfg, size_t lun, char *err, size_t errlen);
	/* Grows the served LUN cfg->luns[lun] to its size in cfg (bigger than now). */
	int (*grow_lun)(void *arg, const struct config *cfg, size_t lun, char *err, size_t errlen);
	/* How many sessions are logged in to the served target cfg->targets[target]; its LUNs
	 * are in use while there are any. */
	unsigned (*sessions)(void *arg, const struct config *cfg, size_t target);
	/* Ends those sessions (their connections close). */
	void (*end_sessions)(void *arg, const struct config *cfg, size_t target);
	/* Stops serving the LUN (an HA device's links and device close too) or the target
	 * (logins and discovery no longer find it); freed once nothing uses them. */
	void (*remove_lun)(void *arg, const struct config *cfg, size_t lun);
	void (*remove_target)(void *arg, const struct config *cfg, size_t target);
	/* Gives the served HA device cfg->has[ha] its failover strategy and witness in cfg. */
	int (*set_failover)(void *arg, const struct config *cfg, size_t ha, char *err, size_t errlen);
};

/* cfg is what the daemon was built from, loaded from config_path; the new object owns it. */
int mgmt_apply_new(const char *config_path, struct config *cfg, const struct mgmt_apply_ops *ops, void *arg,
                   struct mgmt_apply **out);
void mgmt_apply_free(struct mgmt_apply *a);

/* The API methods' work (docs/twinctl.md lists the parameters): a result object, or NULL
 * with err filled. */
json_t *mgmt_apply_target_create(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err);
json_t *mgmt_apply_target_delete(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err);
json_t *mgmt_apply_device_create(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err);
json_t *mgmt_apply_device_delete(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err);
json_t *mgmt_apply_device_resize(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err);
/* device.set_failover of an HA device made through the API: kept, and applied live. */
bool mgmt_apply_has_ha(const struct mgmt_apply *a, const char *name);
json_t *mgmt_apply_device_set_failover(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err);

#endif
