/* The opening of one sync or heartbeat link: version negotiation and mutual
 * authentication with a shared secret.  A pure state machine: messages in, at most one
 * message out per step, a verdict; the caller moves the bytes (see proto.h).
 *
 * Both sides run the same exchange, each at its own pace (no side waits for the other to
 * speak first):
 *   1. HELLO: version range, node id, device UUID, role (priority), link kind.  The peer's
 *      must name the same device, another node id, the other role and the same link kind,
 *      and share a version (the highest common one is used); otherwise GOODBYE.
 *   2. AUTH nonce: 32 fresh random bytes (the caller's RNG; RAND_bytes in the daemon).
 *   3. AUTH proof: HMAC-SHA256(secret, label || version || prover's nonce || verifier's nonce
 *      || prover's id || verifier's id || device UUID || prover's role), checked in constant
 *      time.  The prover's own values come first, so a proof reflected back to its sender,
 *      or our own nonce echoed to us, never verifies (an echoed nonce is refused outright),
 *      and fresh nonces make every recorded proof useless later.  The version is inside
 *      the proof, so a man in the middle cannot talk both sides down to an older one.
 *   4. Keys: each direction gets its own session key, HMAC-SHA256(secret, label || version ||
 *      sender's nonce || receiver's nonce || sender's id || receiver's id).  The side that reaches
 *      HANDSHAKE_DONE sets handshake_keys() into its proto_tx/proto_rx at once: the peer's
 *      proof was the last frame it receives untagged, its own proof the last it sends so.
 * Any failure ends in HANDSHAKE_FAILED with a GOODBYE to send (if the peer has not said
 * goodbye itself) and a log-ready reason; logging is the caller's (link.c).  The secret never appears in a reason; an empty
 * secret is refused at setup, there is no default one. */
#ifndef TWINSAN_HA_HANDSHAKE_H
#define TWINSAN_HA_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha/proto.h"

/* Fills `buf` with `len` random bytes; returns 0, or -1 if no randomness is available. */
typedef int handshake_rng_fn(void *ctx, uint8_t *buf, size_t len);
/* The daemon's RNG: OpenSSL RAND_bytes. */
int handshake_rng_openssl(void *ctx, uint8_t *buf, size_t len);

#define HANDSHAKE_SECRET_MAX 1024
struct handshake_config {
	const uint8_t *secret; /* copied; 1..HANDSHAKE_SECRET_MAX bytes */
	size_t secret_len;
	uint64_t node_id;      /* nonzero */
	uint8_t device_uuid[PROTO_UUID_LEN];
	uint8_t role;          /* enum proto_role */
	uint8_t link_kind;     /* enum proto_link_kind */
	uint8_t version_min, version_max; /* 0, 0: PROTO_VERSION_MIN..MAX */
	handshake_rng_fn *rng;
	void *rng_ctx;
};

enum handshake_result { HANDSHAKE_CONTINUE, HANDSHAKE_DONE, HANDSHAKE_FAILED };

struct handshake;
/* NULL with *why set if the configuration is unusable (empty secret, bad id or role). */
struct handshake *handshake_new(const struct handshake_config *cfg, const char **why);
/* Wipes the secret and keys. */
void handshake_free(struct handshake *hs);

/* The first message to send: our HELLO. */
void handshake_hello(const struct handshake *hs, struct proto_msg *out);

/* One received message.  *has_reply says whether `reply` must be sent (before any later
 * message; it never points at other memory than `reply` itself). */
enum handshake_result handshake_input(struct handshake *hs, const struct proto_msg *in,
                                      struct proto_msg *reply, bool *has_reply);

/* The link died underneath (a framing error, a lost connection): a failed handshake. */
void handshake_abort(struct handshake *hs, const char *why);

/* After HANDSHAKE_FAILED: why, for the log (never contains the secret). */
const char *handshake_reason(const struct handshake *hs);

/* After HANDSHAKE_DONE. */
void handshake_keys(const struct handshake *hs, uint8_t tx_key[PROTO_KEY_LEN], uint8_t rx_key[PROTO_KEY_LEN]);
uint8_t handshake_version(const struct handshake *hs);
const struct proto_hello *handshake_peer(const struct handshake *hs);

#endif
