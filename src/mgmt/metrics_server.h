/* The metrics endpoint: GET /metrics over HTTP (libmicrohttpd) answers with the Prometheus
 * text (mgmt/metrics.h) of the LUNs and HA devices registered here; every other request
 * gets 404.
 *
 * Threading: libmicrohttpd runs without a thread of its own, in external epoll mode; its
 * epoll descriptor is polled on the daemon's reactor and MHD_run() is called from there
 * (and from a timer for its timeouts), so the statistics are read on the thread that
 * writes them and need no lock or snapshot copy. */
#ifndef TWINSAN_MGMT_METRICS_SERVER_H
#define TWINSAN_MGMT_METRICS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/device.h"
#include "scsi/scsi.h"

struct metrics_server;

/* version: the daemon's, for twinsan_build_info (copied).  The uptime counts from here. */
int metrics_server_new(struct reactor *r, const char *version, struct metrics_server **out);
/* Registers what the endpoint shows; the objects must outlive metrics_server_free().
 * device: the HA device serving the LUN, or NULL.  -1 when out of memory. */
int metrics_server_add_lun(struct metrics_server *m, const char *target, uint64_t lun, const char *device,
                           const struct scsi_lu *lu);
int metrics_server_add_ha_device(struct metrics_server *m, const struct ha_device *dev);
/* A LUN or HA device deleted while serving: no longer shown (before it is freed). */
void metrics_server_remove_lun(struct metrics_server *m, const struct scsi_lu *lu);
void metrics_server_remove_ha_device(struct metrics_server *m, const struct ha_device *dev);
/* Starts serving on a numeric IPv4 or IPv6 address; -1 with err saying why. */
int metrics_server_listen(struct metrics_server *m, const char *address, uint16_t port, char *err,
                          size_t errlen);
/* The current exposition (malloc'd, NUL-terminated, *len its length); NULL when out of memory. */
char *metrics_server_render(const struct metrics_server *m, size_t *len);
/* Stops serving and frees.  Call it outside the reactor's callbacks: it runs the reactor
 * until its poll has ended. */
void metrics_server_free(struct metrics_server *m);

#endif
