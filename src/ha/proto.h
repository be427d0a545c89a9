/* The sync-link protocol between the two nodes of an HA device: framing and messages.
 *
 * Every message is one frame:
 *   header (32 bytes, big-endian)
 *     0  magic "TWHA"          8  sequence number (u64, per direction, from 0, +1 a frame)
 *     4  frame version (u8)   16  payload length (u32, at most the receiver's limit)
 *     5  message type (u8)    20  payload CRC32C (0 under GMAC)
 *     6  flags (u16)          24  reserved, 0
 *                             28  header CRC32C over bytes 0..27
 *   payload: the message's fixed fields, then its variable part (data, bitmap bytes...)
 *   tag: PROTO_TAG_LEN bytes, present exactly when the frame's flags say PROTO_FLAG_MAC:
 *        from protocol version 2 on GMAC(direction key, nonce = 4 zero bytes || sequence
 *        number, header || payload), i.e. AES-256-GCM authenticating without encrypting;
 *        in version 1 HMAC-SHA256(direction key, header || payload), cut to 16 bytes.
 *
 * Checksums: the header's CRC32C is always there, so a length is judged before anything
 * else is read.  The payload's CRC32C guards the untagged handshake frames and version 1's
 * tagged ones; GMAC frames leave it 0, because their 128-bit tag already catches any
 * corruption (and forgery), and computing both would cost twice per byte.
 *
 * Guarantees of the receive side (struct proto_rx):
 * - A header is judged as soon as its 32 bytes are in (magic, version, CRC, type, length
 *   limit, MAC mode), so a peer speaking garbage is refused before it can make us buffer
 *   anything, and a length is never trusted before its CRC checked.
 * - Once a key is set, a frame without a valid tag is refused: the MAC mode is the
 *   receiver's setting, not the sender's flag, so the flag cannot be stripped.  The
 *   sequence number is covered by the tag and must be exactly the next one: replayed,
 *   dropped or reordered frames are refused.  Each direction has its own key (see
 *   handshake.h), so a frame reflected back to its sender does not verify either.
 * - Every field of every message is range-checked; a variable part's length field must
 *   equal what the payload holds.  Any error is fatal for the link and comes with a
 *   log-ready message.
 * - Bulk data (WRITE, RESYNC_DATA, BITMAP, VERIFY_DIGEST, STATE bodies, COMPARE_AND_WRITE)
 *   is not copied: the decoded message points into the receiver's buffer, valid until the
 *   next feed.
 * The send side (struct proto_tx) produces a frame as three pieces (head, data, tag) for
 * one sendmsg() without copying the data. */
#ifndef TWINSAN_HA_PROTO_H
#define TWINSAN_HA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha/generation.h"

#define PROTO_MAGIC 0x54574841u /* "TWHA" */
#define PROTO_FRAME_VERSION 1
/* Protocol versions this build speaks; HELLO carries a range, the handshake picks one. */
#define PROTO_VERSION_MIN 1
#define PROTO_VERSION_MAX 3
/* The first version whose tags are GMAC (faster than HMAC-SHA256 by about 3x here). */
#define PROTO_VERSION_GMAC 2
/* The first version with BITMAP_KNOWN and DIGEST_READ / DIGEST_DATA: an older partner
 * gets neither, and resync copies every extent either side marked, as it did then. */
#define PROTO_VERSION_DIGESTS 3

#define PROTO_HEADER_LEN 32
#define PROTO_TAG_LEN 16      /* GMAC, or truncated HMAC-SHA256 */
#define PROTO_KEY_LEN 32
#define PROTO_NONCE_LEN 32
#define PROTO_UUID_LEN 16
#define PROTO_MAX_DATA (1u << 20)          /* largest WRITE / RESYNC_DATA / BITMAP chunk */
#define PROTO_FIXED_MAX 64                 /* largest fixed part of any message */
#define PROTO_MAX_PAYLOAD (PROTO_MAX_DATA + PROTO_FIXED_MAX)
#define PROTO_HEAD_MAX (PROTO_HEADER_LEN + PROTO_FIXED_MAX)

#define PROTO_FLAG_MAC 0x0001u

enum proto_type {
	PROTO_HELLO = 1,
	PROTO_AUTH,
	PROTO_GENERATIONS,
	PROTO_BITMAP,
	PROTO_WRITE,
	PROTO_WRITE_ACK,
	PROTO_FLUSH,
	PROTO_FLUSH_ACK,
	PROTO_RESYNC_READ,
	PROTO_RESYNC_DATA,
	PROTO_VERIFY,
	PROTO_VERIFY_DIGEST,
	PROTO_PING,
	PROTO_PONG,
	PROTO_STATE,
	PROTO_GOODBYE,
	PROTO_COMPARE_AND_WRITE,
	PROTO_COMPARE_AND_WRITE_ACK,
	PROTO_BITMAP_KNOWN,
	PROTO_DIGEST_READ,
	PROTO_DIGEST_DATA,
	PROTO_TYPE_END
};

const char *proto_type_name(unsigned type);

enum proto_role { PROTO_ROLE_PRIMARY = 1, PROTO_ROLE_SECONDARY = 2 };    /* priority */
enum proto_link_kind { PROTO_LINK_SYNC = 1, PROTO_LINK_HEARTBEAT = 2 };

struct proto_hello {
	uint8_t version_min, version_max;
	uint8_t role;      /* enum proto_role */
	uint8_t link_kind; /* enum proto_link_kind */
	uint64_t node_id;  /* nonzero */
	uint8_t device_uuid[PROTO_UUID_LEN]; /* not all zero */
};

enum proto_auth_kind { PROTO_AUTH_NONCE = 1, PROTO_AUTH_PROOF = 2 };
struct proto_auth {
	uint8_t kind; /* enum proto_auth_kind */
	uint8_t value[PROTO_NONCE_LEN]; /* the nonce, or the HMAC-SHA256 proof */
};

enum proto_sync_state { PROTO_SYNC_IN_SYNC = 1, PROTO_SYNC_SOURCE, PROTO_SYNC_TARGET, PROTO_SYNC_ALONE };
/* GENERATIONS flags. */
#define PROTO_GEN_SERVING 0x1u /* the sender serves the device now (alone, or in sync) */
#define PROTO_GEN_FLAGS_KNOWN PROTO_GEN_SERVING
/* GENERATIONS opens every meeting of two nodes, followed by the sender's whole BITMAP.
 * The creator's initial sync mode travels with it because a blank replica follows the
 * mode of the node that created the device, not its own configuration. */
struct proto_generations {
	struct generation gen;
	uint8_t sync_state;   /* enum proto_sync_state */
	uint8_t initial_sync; /* the sender's mode: 1 clear, 2 none, 3 copy (enum ha_initial_sync) */
	uint8_t failover;     /* the sender's strategy: 1 heartbeat, 2 majority (enum ha_failover) */
	uint8_t flags;        /* PROTO_GEN_* */
	uint64_t device_size; /* bytes, nonzero */
	uint32_t extent_size; /* bytes, a power of two, 4 KiB..1 GiB */
};

/* BITMAP: a chunk of the dirty-extent bitmap (as on the sender's disk): `length` bytes
 * starting at byte `offset` of it.  BITMAP_KNOWN, after the BITMAP chunks: the same for
 * the extents the sender KNOWS differ; its other set extents are only suspect (their
 * writes completed on both replicas) and resync compares them by digest before copying. */
struct proto_bitmap {
	uint64_t offset;
	uint32_t length; /* 1..PROTO_MAX_DATA */
	const uint8_t *bytes;
};

#define PROTO_WRITE_FUA 0x1u
/* A discard: `length` bytes (up to PROTO_MAX_DISCARD) read back as zeros; no data. */
#define PROTO_WRITE_DISCARD 0x2u
#define PROTO_WRITE_FLAGS_KNOWN (PROTO_WRITE_FUA | PROTO_WRITE_DISCARD)
#define PROTO_MAX_DISCARD (1u << 30)
/* WRITE and RESYNC_DATA: `length` bytes of device data at byte `offset`. */
struct proto_write {
	uint64_t request_id;
	uint64_t offset;
	uint32_t length; /* 1..PROTO_MAX_DATA (DISCARD: ..PROTO_MAX_DISCARD), no wrap */
	uint32_t flags;  /* PROTO_WRITE_*; always 0 in RESYNC_DATA */
	const uint8_t *data;
};

enum proto_status { PROTO_STATUS_OK = 0, PROTO_STATUS_IO_ERROR, PROTO_STATUS_NO_SPACE,
	PROTO_STATUS_OUT_OF_RANGE, PROTO_STATUS_NOT_SERVING,
	PROTO_STATUS_MISCOMPARE, /* COMPARE_AND_WRITE_ACK only: nothing was written */
	PROTO_STATUS_END };
/* WRITE_ACK, FLUSH_ACK, COMPARE_AND_WRITE_ACK. */
struct proto_ack {
	uint64_t request_id;
	uint32_t status;     /* enum proto_status */
	uint32_t miscompare; /* status MISCOMPARE: offset of the first differing byte; else 0 */
};

/* COMPARE_AND_WRITE, secondary to primary: if the `length` bytes at `offset` equal the
 * first half of `data`, the primary writes the second half there, under its order like any
 * write; COMPARE_AND_WRITE_ACK answers (OK: written, the secondary applies it in
 * acknowledgement order as a forwarded WRITE; MISCOMPARE: nothing changed). */
#define PROTO_MAX_COMPARE (PROTO_MAX_DATA / 2)
struct proto_compare_and_write {
	uint64_t request_id;
	uint64_t offset;
	uint32_t length; /* 1..PROTO_MAX_COMPARE, no wrap */
	uint32_t flags;  /* PROTO_WRITE_FUA or 0 */
	const uint8_t *data; /* 2 * length bytes: the expected bytes, then the new ones */
};

/* FLUSH. */
struct proto_flush {
	uint64_t request_id;
};

/* RESYNC_READ, VERIFY and DIGEST_READ: a range to send back as RESYNC_DATA,
 * VERIFY_DIGEST or DIGEST_DATA. */
struct proto_range {
	uint64_t request_id;
	uint64_t offset;
	uint32_t length;     /* 1..PROTO_MAX_DATA; a multiple of block_size in VERIFY, DIGEST_READ */
	uint32_t block_size; /* VERIFY, DIGEST_READ: a power of two, 512..PROTO_MAX_DATA;
	                        0 in RESYNC_READ */
};

/* SHA-256, in DIGEST_DATA: strong enough that equal digests mean equal data (resync then
 * skips the block, so a false match would be silent divergence). */
#define PROTO_STRONG_DIGEST_LEN 32
/* VERIFY_DIGEST: one CRC32C per block of block_size bytes from offset; `digests` holds
 * `count` big-endian u32 (read with proto_digest_at()).  DIGEST_DATA: the same with one
 * SHA-256 (PROTO_STRONG_DIGEST_LEN bytes) per block, `count` at most
 * PROTO_MAX_DATA / PROTO_STRONG_DIGEST_LEN. */
struct proto_verify_digest {
	uint64_t request_id;
	uint64_t offset;
	uint32_t block_size; /* as in VERIFY */
	uint32_t count;      /* 1..PROTO_MAX_DATA / 4 */
	const uint8_t *digests;
};
uint32_t proto_digest_at(const struct proto_verify_digest *d, uint32_t i);

/* PING carries the sender's monotonic clock; PONG echoes it with the responder's. */
struct proto_ping {
	uint64_t sent_ms;
	uint64_t echo_ms; /* PONG: the PING's sent_ms; 0 in PING */
};

/* STATE: whether the sender serves the device and why.  Between the nodes of an HA device
 * two NODE states are commands: {serving 1, reason NONE} after a resync says the sender
 * finished its side of it; {reason OPERATOR} ends a split brain, serving 1 meaning the
 * sender keeps its data (the receiver discards its own), serving 0 that the sender
 * discarded its own.  Kind SCSI carries the device channel's messages (the replicated
 * SCSI state, ha/scsi_msg.h), its body opaque here. */
enum proto_state_kind { PROTO_STATE_NODE = 1, PROTO_STATE_SCSI = 2 };
enum proto_state_reason { PROTO_REASON_NONE = 0, PROTO_REASON_STARTING, PROTO_REASON_SYNCING,
	PROTO_REASON_SPLIT_BRAIN, PROTO_REASON_OPERATOR, PROTO_REASON_IO_ERROR,
	PROTO_REASON_PARTNER_LOST, PROTO_REASON_END };
struct proto_state {
	uint16_t kind;   /* enum proto_state_kind */
	uint8_t serving; /* 0 or 1 */
	uint8_t reason;  /* enum proto_state_reason */
	uint32_t length; /* body bytes: 0 for NODE, 0..PROTO_MAX_DATA for SCSI */
	const uint8_t *body;
};

enum proto_goodbye_reason { PROTO_BYE_SHUTDOWN = 1, PROTO_BYE_VERSION, PROTO_BYE_AUTH,
	PROTO_BYE_PROTOCOL, PROTO_BYE_CONFIG, PROTO_BYE_END };
const char *proto_goodbye_name(unsigned reason);
struct proto_goodbye {
	uint32_t reason; /* enum proto_goodbye_reason */
};

struct proto_msg {
	enum proto_type type;
	union {
		struct proto_hello hello;
		struct proto_auth auth;
		struct proto_generations generations;
		struct proto_bitmap bitmap;       /* BITMAP, BITMAP_KNOWN */
		struct proto_write write;         /* WRITE, RESYNC_DATA */
		struct proto_ack ack;             /* WRITE_ACK, FLUSH_ACK, COMPARE_AND_WRITE_ACK */
		struct proto_flush flush;
		struct proto_range range;         /* RESYNC_READ, VERIFY, DIGEST_READ */
		struct proto_verify_digest digest; /* VERIFY_DIGEST, DIGEST_DATA */
		struct proto_ping ping;           /* PING, PONG */
		struct proto_state state;
		struct proto_goodbye goodbye;
		struct proto_compare_and_write caw;
	} u;
};

/* Errors; every one is fatal for the link.  proto_error_name() is for the log. */
enum proto_error {
	PROTO_OK = 0,
	PROTO_NEED_MORE,       /* not an error: feed more bytes */
	PROTO_ERR_MAGIC,
	PROTO_ERR_VERSION,
	PROTO_ERR_HEADER_CRC,
	PROTO_ERR_PAYLOAD_CRC,
	PROTO_ERR_MAC,
	PROTO_ERR_MAC_MODE,    /* tag present without a key, or absent with one */
	PROTO_ERR_OVERSIZE,
	PROTO_ERR_TYPE,
	PROTO_ERR_FIELD,
	PROTO_ERR_SEQUENCE,
	PROTO_ERR_FAILED,      /* an earlier error stopped this decoder */
};
const char *proto_error_name(enum proto_error e);

/* One frame ready to send: head (header + fixed fields), then data, then tag. */
struct proto_frame {
	uint8_t head[PROTO_HEAD_MAX];
	size_t head_len;
	const uint8_t *data;
	size_t data_len;
	uint8_t tag[PROTO_TAG_LEN];
	size_t tag_len;
};

struct proto_tx;
struct proto_tx *proto_tx_new(void);
void proto_tx_free(struct proto_tx *tx);
/* From now on every frame carries a tag made with `key` (handshake_keys()) as the
 * negotiated protocol `version` says; -1 for a version this build does not speak. */
int proto_tx_set_key(struct proto_tx *tx, const uint8_t key[PROTO_KEY_LEN], unsigned version);
/* Validates `msg` as a receiver would (-1 and nothing consumed if invalid), then frames
 * it with the next sequence number.  `out` points at msg's data: keep it alive until sent. */
int proto_encode(struct proto_tx *tx, const struct proto_msg *msg, struct proto_frame *out);
/* Copies a frame into one buffer; returns its length, or 0 if it does not fit. */
size_t proto_frame_flatten(const struct proto_frame *f, uint8_t *buf, size_t cap);

struct proto_rx;
/* `max_payload` is at most PROTO_MAX_PAYLOAD; heartbeat links can use a small one. */
struct proto_rx *proto_rx_new(uint32_t max_payload);
void proto_rx_free(struct proto_rx *rx);
int proto_rx_set_key(struct proto_rx *rx, const uint8_t key[PROTO_KEY_LEN], unsigned version);
/* Consumes bytes up to the end of the current frame at most (*used says how many) and
 * returns PROTO_OK with *msg filled when a frame completed (its pointers valid until the
 * next call), PROTO_NEED_MORE when all of `len` was taken, or an error; after an error
 * every call fails.  Set a new key between the frame that calls for it and the next call. */
enum proto_error proto_rx_feed(struct proto_rx *rx, const uint8_t *buf, size_t len, size_t *used,
                               struct proto_msg *msg);
/* The last error, with its detail (which field, which sequence number). */
const char *proto_rx_error(const struct proto_rx *rx);

#endif
