/* One sync or heartbeat link to the partner node over a connected TCP socket, driven by
 * the reactor: it runs the handshake (handshake.h), then frames messages both ways
 * (proto.h) and keeps a heartbeat.
 *
 * Guarantees:
 * - Nothing but HELLO/AUTH/GOODBYE is accepted or sent before the peer proved it knows
 *   the secret; afterwards every frame is tagged with the per-direction session keys.
 * - PING is answered with PONG inside the link; any frame counts as a sign of life, and
 *   a PING goes out every ping_interval_ms.  Silence for timeout_ms (during the handshake
 *   too) loses the link.
 * - `lost` is called exactly once, with a log-ready reason, when the link dies for any
 *   cause but link_close(): framing error, failed handshake, peer GOODBYE, connection
 *   closed or reset, heartbeat timeout.  The link then frees itself once its I/O has
 *   completed: the owner must forget it when `lost` returns.  Failures are logged here.
 * - link_send() copies the frame, so the caller's data may be reused at once (a
 *   zero-copy send for WRITE data is a later refinement). */
#ifndef TWINSAN_HA_LINK_H
#define TWINSAN_HA_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/handshake.h"
#include "ha/proto.h"

struct link;

struct link_ops {
	void (*up)(void *arg, struct link *l);                      /* authenticated */
	void (*message)(void *arg, struct link *l, const struct proto_msg *m); /* not PING/PONG */
	void (*lost)(void *arg, struct link *l, const char *why);
};

struct link_config {
	struct handshake_config hs;
	uint32_t max_payload;       /* receive limit, at most PROTO_MAX_PAYLOAD */
	unsigned ping_interval_ms;  /* > 0 */
	unsigned timeout_ms;        /* > ping_interval_ms */
};

/* Takes ownership of `fd` (closed when the link is freed, also on failure) and starts
 * the handshake.  NULL with *why set if the configuration is unusable. */
struct link *link_start(struct reactor *r, int fd, const struct link_config *cfg, const struct link_ops *ops,
                        void *arg, const char **why);

/* Queues one message; -1 if the link is not up or the message is invalid. */
int link_send(struct link *l, const struct proto_msg *m);

/* Bytes queued and not yet taken by the kernel: the owner's flow control (stop feeding
 * WRITEs above a bound of its choosing, resume when it falls). */
size_t link_queued_bytes(const struct link *l);

/* Says GOODBYE(shutdown) if up and closes; `lost` is not called. */
void link_close(struct link *l, const char *why);

/* Inside `lost`: true if the peer closed the link with GOODBYE(shutdown), so everything
 * it sent before is all it will ever send (an orderly shutdown, not a crash). */
bool link_peer_shut_down(const struct link *l);

/* The protocol version the handshake chose (0 before it ended): which messages the peer
 * understands. */
uint8_t link_version(const struct link *l);

/* The last heartbeat round trip, in milliseconds (0 before the first PONG). */
uint64_t link_rtt_ms(const struct link *l);

/* Read leases (ha/device.c).  link_peer_seen_ms(): when the latest of this node's PINGs
 * that the peer answered left (or the link started, once the handshake is done): the
 * peer was on the link at or after that moment.  link_answer_given_ms(): when this node
 * last answered the peer (a PONG, or the end of the handshake), which no peer_seen of the
 * peer's is later than.  Both on this node's monotonic clock, 0 before the link is up. */
uint64_t link_peer_seen_ms(const struct link *l);
uint64_t link_answer_given_ms(const struct link *l);

#endif
