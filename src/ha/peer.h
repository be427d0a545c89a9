/* The connection manager of one HA device: keeps a TCP connection to the partner for
 * every configured sync and heartbeat link and hands each connected socket to the
 * device (ha_device_add_link()), which authenticates and uses it.
 *
 * - The primary dials PARTNER from LOCAL's address (bound before connecting, so the link
 *   uses that interface) whenever ha_device_link_connected() says the slot is empty,
 *   pausing 250 ms after a failure, doubling up to 2 s, but only 100 ms after a refused
 *   connection (the partner's daemon is restarting: meet it as soon as it listens).  A
 *   connect that hangs (a partner that drops packets) is given up after a few seconds.
 * - The secondary listens on LOCAL and hands over every socket it accepts; the device
 *   replaces a stale link in that slot (the partner restarted).
 * Both set TCP_NODELAY and keepalive.  Everything runs on the reactor; failures are
 * logged once per change ("HA1: sync link 0 to 127.0.0.2:3401: connection refused,
 * retrying"), not once per attempt.  A link the device drops right after it was handed
 * over (the partner refused our secret) is dialed again only after the backoff. */
#ifndef TWINSAN_HA_PEER_H
#define TWINSAN_HA_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/device.h"

struct ha_peer;

struct ha_peer_link {
	enum proto_link_kind kind;
	unsigned index;               /* the device's link slot of that kind */
	const char *local_address;    /* numeric IPv4 or IPv6 */
	uint16_t local_port;          /* the secondary listens here; the primary dials from port 0 */
	const char *partner_address;
	uint16_t partner_port;
};

struct ha_peer_params {
	const char *name;             /* the device's alias, for logs (copied) */
	struct ha_device *device;
	enum ha_role role;            /* primary dials, secondary listens */
	const struct ha_peer_link *links; /* copied */
	unsigned n_links;             /* 1 .. 2 * HA_MAX_LINKS */
};

/* Starts listening (secondary: a busy address fails here) or dialing (primary).
 * -1 with err naming the link and the fault. */
int ha_peer_start(struct reactor *r, const struct ha_peer_params *params, struct ha_peer **out, char *err,
                  size_t errlen);

/* Stops dialing and accepting; the operations in flight end soon after on the loop. */
void ha_peer_stop(struct ha_peer *p);

/* Closes the sockets and frees the manager: after ha_peer_stop() once the reactor no
 * longer runs (shutdown), or once nothing is in flight (ha_peer_idle()).  NULL is fine. */
void ha_peer_free(struct ha_peer *p);
bool ha_peer_idle(const struct ha_peer *p);

#endif
