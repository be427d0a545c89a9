/* HA devices in the management API: the adapter from struct ha_device (ha/device.h) to
 * the API's device operations and event stream. */
#ifndef TWINSAN_MGMT_API_HA_H
#define TWINSAN_MGMT_API_HA_H

#include <jansson.h>

#include "ha/device.h"
#include "mgmt/api.h"

/* Makes d visible and controllable through the API under its status name.  arbiter is
 * what device.set_failover passes for the majority strategy (NULL: the node has no
 * witness, so majority is refused). */
int mgmt_api_add_ha_device(struct mgmt_api *api, struct ha_device *d, const struct ha_arbiter *arbiter);

/* Forwards an HA device event to the API's subscribers: call it from the device's event
 * callback (struct ha_device_params.event). */
void mgmt_api_publish_ha_event(struct mgmt_api *api, struct ha_device *d, enum ha_event ev, const char *detail);

/* The status object of device.status (docs/twinctl.md). */
json_t *mgmt_ha_status_json(const struct ha_device_status *st);

#endif
