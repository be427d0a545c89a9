/* The witness client of a twinsand node: the `struct ha_arbiter` of the node-majority
 * failover strategy (ha/device.h), talking to twinwitness (ha/witness_server.h).
 *
 * It keeps one TCP connection per configured witness address (several addresses reach
 * the same witness over different networks), reconnecting with exponential backoff.
 * Requests go out on every authenticated connection; the first answer counts.
 *
 * Semantics of the arbiter:
 * - claim() sends CLAIM; its verdict follows from the loop, never inside claim(): true
 *   on GRANT; false on REFUSE, or if no answer came within claim_timeout_ms (no witness
 *   reachable).  A false verdict ends the claim; the device may claim again later.
 * - While granted, a RENEW goes out every lease/3.  A GRANT answering a renewal sent at
 *   time S extends the lease to S + lease: measured from the SENDING, so the node always
 *   gives up before the witness's lease (measured from receipt) ends.  When the lease
 *   runs out unconfirmed, or a renewal is refused: verdict(false) once, and the claim ends.
 *   The witness keeps this node as the holder: nobody else is granted the device.
 * - release() ends the claim without a verdict and sends RELEASE, repeated on every new
 *   connection until the witness confirms it: only then may the partner be granted.
 * - A claim() for a device already claimed replaces the earlier claim (its verdict is
 *   never called). */
#ifndef TWINSAN_HA_WITNESS_H
#define TWINSAN_HA_WITNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/device.h"

#define WITNESS_MAX_ADDRESSES 4

struct witness_client;

struct witness_client_params {
	const char *addresses[WITNESS_MAX_ADDRESSES]; /* "ADDR:PORT", IPv6 as [::1]:PORT */
	size_t n_addresses;                           /* 1..WITNESS_MAX_ADDRESSES */
	const uint8_t *secret;                        /* copied; no default */
	size_t secret_len;
	uint64_t node_id;                             /* nonzero, this node's */
	unsigned ping_interval_ms;                    /* 0: 1000 */
	unsigned timeout_ms;                          /* silence dropping a connection; 0: 5000 */
	unsigned claim_timeout_ms;                    /* 0: 5000 */
	unsigned backoff_max_ms;                      /* reconnect backoff cap; 0: 5000 */
};

/* Starts connecting.  -1 with err if a parameter is unusable (an address that is not
 * numeric ADDR:PORT, an empty secret). */
int witness_client_new(struct reactor *r, const struct witness_client_params *p, struct witness_client **out,
                       char *err, size_t errlen);

/* The arbiter for ha_device_params.arbiter; valid while the client lives. */
struct ha_arbiter witness_arbiter(struct witness_client *c);

/* True while some connection to the witness is authenticated. */
bool witness_client_connected(const struct witness_client *c);

/* Closes every connection (pending claims get no verdict); `done(arg)` follows from the
 * loop once nothing is in flight, then witness_client_free() may be called. */
void witness_client_stop(struct witness_client *c, void (*done)(void *arg), void *arg);
void witness_client_free(struct witness_client *c);

#endif
