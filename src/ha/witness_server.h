/* The witness: the third vote of the node-majority failover strategy (HA_FAILOVER_MAJORITY
 * in ha/device.h).  It listens for HA nodes (witness_proto.h) and decides, per device,
 * which single node may serve it alone.
 *
 * Rules, per device (its uuid):
 *   CLAIM    granted if nobody holds the device or the claimant is the holder; the
 *            claimant becomes (or stays) the holder and its record is made durable
 *            (witness_state.h) BEFORE the GRANT is sent.  Refused otherwise, also when
 *            the holder's lease has expired.
 *   RENEW    the holder's lease is extended (GRANT); anybody else is refused.
 *   RELEASE  sent by the holder once the pair is back in sync: the record is removed
 *            durably, then RELEASED is answered.  Only this, or the operator's
 *            `twinwitness --forget`, ever clears a record.
 *   An expired lease keeps the record: it only means the holder stopped serving.
 *
 * Why this is safe (no split brain, no outdated data served):
 * - Two nodes can serve alone only if both were granted; a grant goes only to the
 *   recorded holder, and there is at most one per device, so at most one node serves
 *   alone at any time, whatever the network does.
 * - The holder may have written alone, so the other node's replica may be outdated: it
 *   is never granted the device until the holder releases it (after a resync) or the
 *   operator declares the holder lost forever.  A holder that died therefore blocks the
 *   other node: that is the price of never serving stale data.
 * - The record is durable before the GRANT leaves, so a witness crash or restart cannot
 *   forget a holder it told about; a record it cannot read stops it from starting.
 * - The node measures its lease from when it SENT the renewal the GRANT answers, the
 *   witness from when it received it, so the node always gives up first.  (Serving
 *   alone without the witness, in the node's view, stops within one lease.)
 * Outcomes: both nodes alive but cut apart -> the first to claim serves, the other is
 * refused and stops; one node dead -> the survivor serves with the witness's grant (if it
 * is the holder or nobody is); a node that loses the witness too -> its lease lapses and
 * it stops.
 *
 * Runs on one reactor; the only blocking calls are the record writes (rare). */
#ifndef TWINSAN_HA_WITNESS_SERVER_H
#define TWINSAN_HA_WITNESS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/witness_state.h"

#define WITNESS_DEFAULT_LEASE_MS 3000
#define WITNESS_DEFAULT_IDLE_MS 10000

struct witness_server;

struct witness_server_params {
	const char *listen;          /* "ADDR:PORT", IPv6 as [::1]:PORT */
	const uint8_t *secret;       /* copied; 1..WITNESS_SECRET_MAX bytes, no default */
	size_t secret_len;
	struct witness_state *state; /* the caller's; outlives the server */
	unsigned lease_ms;           /* granted leases; 0: WITNESS_DEFAULT_LEASE_MS */
	unsigned idle_ms;            /* silence that drops a node; 0: WITNESS_DEFAULT_IDLE_MS */
};

/* Listens and serves from the reactor.  -1 with err if the address is unusable or busy. */
int witness_server_new(struct reactor *r, const struct witness_server_params *p, struct witness_server **out,
                       char *err, size_t errlen);

/* Stops listening and says BYE to every node; `done(arg)` follows from the loop once
 * nothing is in flight, then witness_server_free() may be called. */
void witness_server_stop(struct witness_server *s, void (*done)(void *arg), void *arg);
void witness_server_free(struct witness_server *s);

/* Nodes connected and authenticated now. */
size_t witness_server_nodes(const struct witness_server *s);

#endif
