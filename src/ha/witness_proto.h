/* The wire protocol between HA nodes and the witness (twinwitness): framing, messages and
 * the keyed hashes of its handshake.  Pure code: bytes in, messages out; the caller moves
 * the bytes (ha/witness_conn.h).
 *
 * Every message is one frame:
 *   header (24 bytes, big-endian)
 *     0  magic "TWWI"              8  sequence number (u64, per direction, from 0, +1 a frame)
 *     4  frame version (u8)       16  flags (u16): WITNESS_PROTO_FLAG_MAC
 *     5  message type (u8)        18  reserved, 0
 *     6  payload length (u16)     20  CRC32C over bytes 0..19 and the payload
 *   payload: the type's fixed fields, exactly its length (witness_proto_payload_len())
 *   tag: WITNESS_PROTO_TAG_LEN bytes of HMAC-SHA256(direction key, header || payload),
 *        present exactly when the receiver has a key (the flag must then say so too).
 *
 * Handshake (the node speaks first; nothing else is accepted before it ends):
 *   node    -> HELLO(version range, node id, node nonce)
 *   witness -> CHALLENGE(chosen version, witness nonce)
 *   node    -> PROOF(HMAC(secret, "node" label, version, node nonce, witness nonce, node id))
 *   witness -> PROOF(the same with the "witness" label), or BYE(auth) if the node's was wrong
 * Nonces are 32 fresh random bytes from each side, so a recorded proof is useless later,
 * and each side's label differs, so a proof reflected back to its sender never verifies.
 * Each direction then has its own session key (witness_proto_key()); every later frame
 * carries a tag under it and the exact next sequence number, so a replayed, reordered,
 * reflected or forged frame is refused.  The version is inside the proof: a man in the
 * middle cannot talk both sides down.  The node sets its send key right after sending
 * its PROOF, the witness its receive key when that PROOF verified and its send key after
 * sending its own; the node its receive key when the witness's PROOF verified.
 *
 * Every field of every message is range-checked on both sides: the encoder refuses what
 * the decoder would refuse.  Any error is fatal for the connection and comes with a
 * log-ready message (witness_proto_error()). */
#ifndef TWINSAN_HA_WITNESS_PROTO_H
#define TWINSAN_HA_WITNESS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WITNESS_PROTO_MAGIC 0x54575749u /* "TWWI" */
#define WITNESS_PROTO_FRAME_VERSION 1
#define WITNESS_PROTO_VERSION_MIN 1     /* protocol versions this build speaks */
#define WITNESS_PROTO_VERSION_MAX 1

#define WITNESS_PROTO_HEADER_LEN 24
#define WITNESS_PROTO_PAYLOAD_MAX 48
#define WITNESS_PROTO_TAG_LEN 16        /* truncated HMAC-SHA256 */
#define WITNESS_PROTO_FRAME_MAX (WITNESS_PROTO_HEADER_LEN + WITNESS_PROTO_PAYLOAD_MAX + WITNESS_PROTO_TAG_LEN)
#define WITNESS_PROTO_KEY_LEN 32
#define WITNESS_PROTO_NONCE_LEN 32
#define WITNESS_PROTO_UUID_LEN 16
#define WITNESS_PROTO_FLAG_MAC 0x0001u
#define WITNESS_SECRET_MAX 1024
#define WITNESS_LEASE_MAX_MS 600000u    /* a GRANT's lease: 1 ms .. 10 min */

enum witness_msg_type {
	WITNESS_HELLO = 1, /* version_min, version_max, node_id, nonce */
	WITNESS_CHALLENGE, /* version, nonce */
	WITNESS_PROOF,     /* proof */
	WITNESS_CLAIM,     /* request, uuid, node_id, gen_current, gen_bitmap */
	WITNESS_GRANT,     /* request, uuid, lease_ms: answers CLAIM and RENEW */
	WITNESS_REFUSE,    /* request, uuid, reason (enum witness_refusal), holder */
	WITNESS_RENEW,     /* request, uuid */
	WITNESS_RELEASE,   /* request, uuid */
	WITNESS_RELEASED,  /* request, uuid */
	WITNESS_PING,      /* stamp */
	WITNESS_PONG,      /* stamp (the PING's) */
	WITNESS_BYE,       /* reason (enum witness_bye) */
	WITNESS_MSG_END
};
const char *witness_msg_name(unsigned type);

/* Why a CLAIM, RENEW or RELEASE was refused. */
enum witness_refusal {
	WITNESS_REFUSE_HELD = 1,    /* another node holds the device (`holder`) */
	WITNESS_REFUSE_NOT_HOLDER,  /* RENEW/RELEASE from a node that holds nothing */
	WITNESS_REFUSE_NODE,        /* CLAIM names another node than the one authenticated */
	WITNESS_REFUSE_STORAGE,     /* the witness could not persist the record */
	WITNESS_REFUSE_END
};
const char *witness_refusal_name(unsigned reason);

enum witness_bye {
	WITNESS_BYE_SHUTDOWN = 1,
	WITNESS_BYE_AUTH,           /* the proof did not verify: wrong secret */
	WITNESS_BYE_VERSION,        /* no common protocol version */
	WITNESS_BYE_PROTOCOL,       /* a message out of place */
	WITNESS_BYE_END
};
const char *witness_bye_name(unsigned reason);

/* One message; only the fields of its type are read or written (see the enum). */
struct witness_msg {
	uint8_t type;
	uint8_t version_min, version_max; /* 1..255, min <= max */
	uint8_t version;                  /* 1..255 */
	uint64_t node_id;                 /* nonzero */
	uint8_t nonce[WITNESS_PROTO_NONCE_LEN];
	uint8_t proof[WITNESS_PROTO_KEY_LEN];
	uint64_t request;                 /* the node's id for a request, echoed in the answer */
	uint8_t uuid[WITNESS_PROTO_UUID_LEN]; /* the HA device; not all zero */
	uint64_t gen_current, gen_bitmap; /* the claimant's generation identifiers */
	uint32_t lease_ms;                /* 1..WITNESS_LEASE_MAX_MS */
	uint32_t reason;                  /* enum witness_refusal in REFUSE, witness_bye in BYE */
	uint64_t holder;                  /* REFUSE: the holding node, 0 if none */
	uint64_t stamp;
};

/* The payload length of a type, 0 if the type is unknown. */
size_t witness_proto_payload_len(unsigned type);

/* One direction pair of one connection: sequence numbers, keys, a partial frame. */
struct witness_proto;
struct witness_proto *witness_proto_new(void);
void witness_proto_free(struct witness_proto *wp); /* wipes the keys */
void witness_proto_set_tx_key(struct witness_proto *wp, const uint8_t key[WITNESS_PROTO_KEY_LEN]);
void witness_proto_set_rx_key(struct witness_proto *wp, const uint8_t key[WITNESS_PROTO_KEY_LEN]);

/* Frames `m` with the next sequence number into `out`; returns its length, or 0 (and
 * nothing consumed) if the message is invalid. */
size_t witness_proto_encode(struct witness_proto *wp, const struct witness_msg *m,
                            uint8_t out[WITNESS_PROTO_FRAME_MAX]);

enum witness_proto_result { WITNESS_PROTO_MSG, WITNESS_PROTO_MORE, WITNESS_PROTO_ERROR };
/* Consumes bytes up to the end of the current frame at most (*used says how many):
 * WITNESS_PROTO_MSG with *m filled when a frame completed, WITNESS_PROTO_MORE when all of
 * `len` was taken, or WITNESS_PROTO_ERROR; after an error every call fails.  A key takes
 * effect from the next frame fed. */
enum witness_proto_result witness_proto_feed(struct witness_proto *wp, const uint8_t *buf, size_t len,
                                             size_t *used, struct witness_msg *m);
/* The error, log-ready; "" before any. */
const char *witness_proto_error(const struct witness_proto *wp);

/* ---- the handshake's keyed hashes ---- */

enum witness_side { WITNESS_SIDE_NODE = 1, WITNESS_SIDE_WITNESS = 2 };

/* What one side's handshake inputs are. */
struct witness_auth {
	const uint8_t *secret;        /* 1..WITNESS_SECRET_MAX bytes */
	size_t secret_len;
	uint8_t version;
	uint8_t node_nonce[WITNESS_PROTO_NONCE_LEN];
	uint8_t witness_nonce[WITNESS_PROTO_NONCE_LEN];
	uint64_t node_id;
};
/* The PROOF `prover` sends; -1 if hashing failed. */
int witness_proto_proof(const struct witness_auth *a, enum witness_side prover,
                        uint8_t out[WITNESS_PROTO_KEY_LEN]);
/* Whether `proof` is the one `prover` must send (constant time). */
bool witness_proto_proof_ok(const struct witness_auth *a, enum witness_side prover,
                            const uint8_t proof[WITNESS_PROTO_KEY_LEN]);
/* The session key of the frames `sender` sends; -1 if hashing failed. */
int witness_proto_key(const struct witness_auth *a, enum witness_side sender,
                      uint8_t out[WITNESS_PROTO_KEY_LEN]);

#endif
