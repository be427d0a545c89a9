/* One connection between a node and the witness over a connected TCP socket, driven by
 * the reactor: it runs the handshake of witness_proto.h from either side, then carries
 * tagged messages both ways and keeps the connection alive.
 *
 * Guarantees:
 * - Nothing but the handshake is accepted or sent before the peer proved it knows the
 *   secret; a wrong proof ends the connection (the witness tells the node BYE(auth)).
 * - PING is answered with PONG here; any frame counts as a sign of life.  The node side
 *   pings every ping_interval_ms; silence for timeout_ms (during the handshake too) ends
 *   the connection.
 * - `lost` is called exactly once, with a log-ready reason, when the connection dies for
 *   any cause but witness_conn_close(); the owner must forget the connection when `lost`
 *   returns (it frees itself once its I/O completed).  Logging is the owner's. */
#ifndef TWINSAN_HA_WITNESS_CONN_H
#define TWINSAN_HA_WITNESS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/witness_proto.h"

struct witness_conn;

struct witness_conn_ops {
	void (*up)(void *arg, struct witness_conn *c); /* authenticated */
	/* CLAIM .. RELEASED; never handshake messages, PING, PONG or BYE. */
	void (*message)(void *arg, struct witness_conn *c, const struct witness_msg *m);
	void (*lost)(void *arg, struct witness_conn *c, const char *why);
	/* Optional: the connection's memory is gone (also after witness_conn_close()), so
	 * an owner that is shutting down knows when nothing refers to it any more. */
	void (*gone)(void *arg);
};

struct witness_conn_config {
	enum witness_side side;
	const uint8_t *secret;     /* copied; 1..WITNESS_SECRET_MAX bytes */
	size_t secret_len;
	uint64_t node_id;          /* the node side's own id (nonzero); unused by the witness */
	unsigned ping_interval_ms; /* node side: > 0; witness side: 0 (it only answers) */
	unsigned timeout_ms;       /* > ping_interval_ms */
};

/* Takes ownership of `fd` (closed when the connection is freed, also on failure) and
 * starts the handshake.  NULL with *why set if the configuration is unusable. */
struct witness_conn *witness_conn_start(struct reactor *r, int fd, const struct witness_conn_config *cfg,
                                        const struct witness_conn_ops *ops, void *arg, const char **why);

/* Queues one message; -1 if the connection is not up or the message is invalid. */
int witness_conn_send(struct witness_conn *c, const struct witness_msg *m);

/* Says BYE(shutdown) if up and closes; `lost` is not called. */
void witness_conn_close(struct witness_conn *c);

/* The authenticated node's id (0 before `up`; kept after the connection ended). */
uint64_t witness_conn_node(const struct witness_conn *c);
/* Splits "ADDR:PORT" or "[V6ADDR]:PORT" (numeric; the port is required, the witness has
 * no well-known one); -1 if malformed. */
int witness_conn_parse_address(const char *spec, char *addr, size_t addrlen, uint16_t *port);

/* The peer's address:port, for the log. */
const char *witness_conn_peer(const struct witness_conn *c);

#endif
