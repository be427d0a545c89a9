/* The management API of a daemon: newline-delimited JSON requests on a local Unix socket
 * and optionally over TCP with TLS (wire format in mgmt/api_proto.h), served on the
 * daemon's reactor.
 *
 * On the Unix socket only root and the daemon's own user may connect (SO_PEERCRED); the
 * socket file is created mode 0600.  Over TCP a client must first log in with the
 * administrator secret (session.login, mgmt/api_auth.h).  The daemon registers what the API shows and controls: the iSCSI
 * target registry, each LUN, and each device (an HA device through mgmt/api_ha.h); HA
 * events it publishes reach every connection that called events.subscribe.
 *
 * Methods: session.login, server.info, target.list, session.list, device.list, device.status,
 * device.resolve_split_brain, device.set_failover, device.verify, events.subscribe,
 * target.create, target.delete, device.create, device.delete, device.resize (docs/twinctl.md lists their
 * parameters and results). */
#ifndef TWINSAN_MGMT_API_H
#define TWINSAN_MGMT_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/reactor.h"
#include "iscsi/target.h"
#include "store/store.h"

#define MGMT_API_DEFAULT_SOCKET "/run/twinsan/twinsand.sock"

struct mgmt_api;

struct mgmt_api_params {
	const char *version;   /* the daemon's, for server.info (copied) */
	uint64_t node_id;      /* 0 when the node has none */
};

int mgmt_api_new(struct reactor *r, const struct mgmt_api_params *p, struct mgmt_api **out);
/* Listens on a Unix socket at path, creating its directory (mode 0700) if missing.  A
 * stale socket file is replaced; one a running daemon still answers on is an error. */
int mgmt_api_listen(struct mgmt_api *api, const char *path, char *err, size_t errlen);
/* The TCP listener for remote administration: TLS 1.3 with the node's key and
 * self-signed certificate (made at first start), and the administrator secret every
 * client must prove before anything else (a random one is made at first start, readable
 * by its owner only). */
struct mgmt_api_tcp_params {
	const char *address;     /* numeric IPv4 or IPv6 */
	uint16_t port;
	const char *secret_path;
	const char *key_path, *cert_path;
};
int mgmt_api_listen_tcp(struct mgmt_api *api, const struct mgmt_api_tcp_params *p, char *err, size_t errlen);

/* Closes every connection and the socket (removing its file).  Call it outside the
 * reactor's callbacks: it runs the reactor until its own operations have ended. */
void mgmt_api_free(struct mgmt_api *api);

/* What target.list shows: the daemon's targets and portals, and each LUN's backing
 * store (device: the HA device name serving it, or NULL). */
void mgmt_api_set_registry(struct mgmt_api *api, const struct iscsi_registry *reg);
int mgmt_api_add_lun(struct mgmt_api *api, const char *target, uint64_t lun, const char *backing,
                     const struct store *s, const char *device);
/* A LUN (by its store) or a device (by name) deleted while serving: no longer shown; a
 * device's release() is called. */
void mgmt_api_remove_lun(struct mgmt_api *api, const struct store *s);
void mgmt_api_remove_device(struct mgmt_api *api, const char *name);
/* What session.list shows: the sessions logged in to the iSCSI server. */
struct iscsi_server;
void mgmt_api_set_server(struct mgmt_api *api, const struct iscsi_server *srv);

/* A device as the API sees it.  Each command returns 0, or -1 with err saying what to do. */
struct mgmt_device_ops {
	json_t *(*status)(void *dev);    /* a new status object (docs/twinctl.md) */
	int (*resolve_split_brain)(void *dev, bool keep_local, char *err, size_t errlen);
	int (*set_failover)(void *dev, const char *strategy, char *err, size_t errlen);
	int (*verify)(void *dev, char *err, size_t errlen);
	void (*release)(void *dev);      /* at mgmt_api_free(); NULL: nothing to do */
};
int mgmt_api_add_device(struct mgmt_api *api, const char *name, const struct mgmt_device_ops *ops, void *dev);

/* Where target.create and the other configuration changes go (mgmt/apply.h); without one
 * they are refused.  The api does not own it. */
struct mgmt_apply;
void mgmt_api_set_apply(struct mgmt_api *api, struct mgmt_apply *apply);

/* "ok", "transitioning", "unavailable": how status objects name store_access(). */
const char *mgmt_access_name(enum store_access a);

/* Sends an event line to every subscriber; device and detail may be NULL. */
void mgmt_api_publish_event(struct mgmt_api *api, const char *event, const char *device, const char *detail);

/* Answers one request line as if from root on a connection that cannot subscribe: the
 * response line (malloc'd; NULL when out of memory).  For tests and fuzzers. */
char *mgmt_api_execute(struct mgmt_api *api, const char *line, size_t len);

#endif
