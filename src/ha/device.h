/* An HA device: one disk mirrored synchronously on two twinsand nodes.
 *
 * Each node holds a full replica (its backing store) and a metadata file (meta.h: the
 * generation identifiers and the activemap of extents that may differ from the partner).
 * The device is itself a store (store.h), so a logical unit serves it unchanged; both
 * nodes present the same identity (the device UUID) and accept I/O (active-active).
 *
 * Data path, while both replicas are in sync:
 * - Reads are served from the local replica, in session only under a read lease from the
 *   partner's heartbeat answers, which a node that lost the sync link waits out before
 *   it writes alone: no read misses a write the partner took alone.
 * - The primary (priority) node is the sequencer: every change of the replicas' contents
 *   is ordered by the primary's range lock on the bytes it touches.  A write arriving at
 *   the primary is written locally and sent to the secondary; one arriving at the
 *   secondary is forwarded to the primary, which orders and writes it and acknowledges;
 *   the secondary then applies it locally, in the order the acknowledgements arrive on the
 *   sync link (the same order the primary chose).  Overlapping writes thus land in one
 *   order on both replicas, whichever nodes they arrived through.
 * - COMPARE AND WRITE is compared where writes are ordered: the primary reads, compares
 *   and (if equal) writes and replicates it under its range lock; a secondary forwards the
 *   whole command and applies the write when acknowledged, like a forwarded write.  So it
 *   is atomic against every write, whichever node either arrived through.
 * - The initiator's write completes only when every in-sync replica has it, with the
 *   durability asked for: FUA travels with the write, a flush flushes both replicas.
 * - Before the first write to an extent starts on a node, the extent's bit is persisted in
 *   that node's activemap (metadata before data), so a crash of either or both nodes
 *   leaves every possibly-different extent marked: no full resync after a power cut.
 *
 * Partner lost (every sync link down): the failover strategy decides whether this node
 * goes on alone (it then records every written extent and starts a new generation) or
 * stops serving (I/O fails with -ENOTCONN, access says UNAVAILABLE).  When the partner
 * is back, the generations say who is newer; only the extents marked on either side are
 * copied, while the source keeps serving.  Two nodes that both wrote alone are a split
 * brain: never merged silently, the device stays degraded until an operator chooses the
 * survivor (ha_device_resolve_split_brain()).
 *
 * Everything runs on one reactor; no call blocks for long except ha_device_open(). */
#ifndef TWINSAN_HA_DEVICE_H
#define TWINSAN_HA_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/reactor.h"
#include "ha/generation.h"
#include "ha/meta.h"
#include "ha/proto.h"
#include "store/store.h"

struct ha_device;

/* What a node does when it can no longer replicate to its partner. */
enum ha_failover {
	/* If a heartbeat link still answers, the partner is alive: the secondary stops, the
	 * primary goes on alone.  If nothing answers, the partner is presumed dead and the
	 * survivor goes on alone (a network partition can then end in a split brain, which is
	 * detected and never merged silently).  The primary decides at once; the secondary
	 * only after a timeout without any link back, so that links that were merely reset
	 * are dialed again before it concludes anything. */
	HA_FAILOVER_HEARTBEAT = 1,
	/* A node goes on alone only while the witness grants it the device's vote (itself and
	 * the witness are a majority of three); otherwise it stops. */
	HA_FAILOVER_MAJORITY = 2,
};
const char *ha_failover_name(enum ha_failover f);
/* "heartbeat" / "majority" (also "node-majority"); -1 if neither. */
int ha_failover_parse(const char *s, enum ha_failover *out);

#define HA_MAX_LINKS 4 /* of each kind */

/* The third vote of the majority strategy: the witness client (ha/witness.h) implements
 * it.  claim() asks for the right to serve alone for device `uuid` with generation `gen`;
 * verdict(arg, granted) follows from the loop (never inside claim), and is called again
 * with false if a grant lapses (the lease could not be renewed), until release().  A node
 * holding no grant must not serve alone. */
struct ha_arbiter {
	void (*claim)(void *ctx, const uint8_t uuid[16], uint64_t node_id, const struct generation *gen,
	              void (*verdict)(void *arg, bool granted), void *arg);
	void (*release)(void *ctx, const uint8_t uuid[16]);
	void *ctx;
};

enum ha_event {
	HA_EVENT_STATE,            /* sync state, reason or access changed */
	HA_EVENT_LINK_UP,          /* detail: "sync 0" / "heartbeat 1" */
	HA_EVENT_LINK_DOWN,        /* detail: the link and why */
	HA_EVENT_PARTNER_CONNECTED,
	HA_EVENT_PARTNER_LOST,
	HA_EVENT_SYNC_STARTED,     /* detail: source or target, how many bytes */
	HA_EVENT_SYNC_FINISHED,    /* detail: bytes moved, seconds */
	HA_EVENT_SPLIT_BRAIN,      /* detail: what differs */
	HA_EVENT_VERIFY_FINISHED,  /* detail: blocks compared, blocks that differ */
};
const char *ha_event_name(enum ha_event e);

struct ha_device_params {
	const char *name;                 /* alias, for logs and status (copied) */
	struct store *backing;            /* this node's replica; owned by the device from
	                                     ha_device_open() on, also when it fails */
	const char *meta_path;            /* created on first start */
	uint8_t uuid[16];                 /* the device's identity, the same on both nodes */
	enum ha_role role;
	uint64_t node_id;                 /* nonzero, differs from the partner's */
	enum ha_initial_sync initial_sync;/* what a new device does on first meeting */
	enum ha_failover failover;
	uint32_t extent_size;             /* 0: ACTIVEMAP_DEFAULT_EXTENT */
	const uint8_t *secret;            /* sync/heartbeat link secret (copied), not empty */
	size_t secret_len;
	unsigned n_sync_links;            /* configured, 1..HA_MAX_LINKS */
	unsigned n_heartbeat_links;       /* configured, 0..HA_MAX_LINKS */
	unsigned ping_interval_ms;        /* 0: 200 */
	unsigned timeout_ms;              /* silence that loses a link; 0: 2000 */
	const struct ha_arbiter *arbiter; /* required for HA_FAILOVER_MAJORITY */
	/* Notification of every event, for logs, the event stream and unit attentions. */
	void (*event)(void *arg, struct ha_device *d, enum ha_event ev, const char *detail);
	void *arg;
};

/* Opens (or, on first start, creates) the metadata and the device.  The device serves
 * nothing until it has met its partner or the failover strategy let it go on alone:
 * without a partner it waits timeout_ms (a secondary three times as long, so that a live
 * primary can dial it again first), then goes on alone only if its replica was usable
 * (in sync, or the one serving alone) and the strategy allows.  A node whose own loop
 * stood still for a timeout (SIGSTOP, a paused VM) never goes on alone afterwards under
 * the heartbeat strategy: the silence it saw was its own.
 * -1 with err naming the file and the fault. */
int ha_device_open(struct reactor *r, const struct ha_device_params *p, struct ha_device **out, char *err,
                   size_t errlen);

/* The device as a store, for the logical unit; store_close() on it closes the device:
 * it says GOODBYE on its links, persists its metadata and closes the backing store. */
struct store *ha_device_store(struct ha_device *d);

/* A connected socket to the partner for link `index` of `kind` (the connection manager,
 * ha/peer.h, dialed or accepted it).  The device owns fd from now on; it runs the
 * handshake and uses the link once authenticated.  A new socket for a slot whose link is
 * still up replaces it (the partner restarted and the old one has not timed out yet). */
void ha_device_add_link(struct ha_device *d, int fd, enum proto_link_kind kind, unsigned index);
/* True while link `index` of `kind` is connected (handshaking or up): the connection
 * manager dials or accepts again when it is not. */
bool ha_device_link_connected(const struct ha_device *d, enum proto_link_kind kind, unsigned index);

struct ha_link_status {
	enum proto_link_kind kind;
	unsigned index;
	bool up;          /* authenticated */
	uint64_t rtt_ms;
};

struct ha_device_status {
	char name[64];
	enum ha_role role;
	enum ha_failover failover;
	enum ha_sync_state state;
	enum ha_sync_reason reason;
	enum store_access access;
	bool partner_connected;      /* some sync link is up */
	bool partner_alive;          /* some link of either kind is up */
	bool sync_source;            /* this node feeds the running resync */
	uint64_t size;
	uint64_t sync_total_bytes;   /* the running (or last) resync: bytes to move or compare */
	uint64_t sync_done_bytes;
	uint64_t sync_rate_bps;      /* bytes/s over the last seconds; 0 when idle */
	uint64_t dirty_bytes;        /* bytes that may differ from the partner's replica */
	uint64_t resync_sent_bytes;  /* totals since the daemon started: the resync tally */
	uint64_t resync_received_bytes;
	uint64_t resync_compared_bytes; /* compared by digest (suspect extents), not moved */
	struct generation gen;
	unsigned n_links;
	struct ha_link_status links[2 * HA_MAX_LINKS];
	bool verify_running;
	uint64_t verify_done_bytes, verify_total_bytes;
	uint64_t verify_differing_blocks; /* of the running or last verify */
	bool verify_done;                 /* a verify has finished since start */
};
void ha_device_status(const struct ha_device *d, struct ha_device_status *st);

/* A channel for what must follow the device on both nodes besides its data: the SCSI
 * state of the logical unit serving it (ha/scsi_peer.h).  Its messages are opaque here;
 * they travel on the session in order with the data traffic. */
struct ha_channel_ops {
	/* The partner was met and replication starts (or restarts after a resolved split
	 * brain).  `source`: this node's replica is the newer one (the resync source, or the
	 * primary when in sync), so its state is the one to keep when nothing says otherwise. */
	void (*up)(void *ctx, bool source);
	/* The session ended: nothing sent since `up` will be answered. */
	void (*down)(void *ctx);
	/* A message from the partner's channel (body valid during the call only). */
	void (*message)(void *ctx, const uint8_t *body, size_t len);
};
/* Sets the channel (ops NULL: none); `up` follows at the next meeting. */
void ha_device_set_channel(struct ha_device *d, const struct ha_channel_ops *ops, void *ctx);
/* Sends a message (at most PROTO_MAX_DATA bytes, copied) to the partner's channel; -1 when
 * the channel is not up. */
int ha_device_channel_send(struct ha_device *d, const uint8_t *body, size_t len);
/* True on the node whose priority is primary. */
bool ha_device_is_primary(const struct ha_device *d);

/* Operator commands; each returns 0, or -1 with a message saying what to do. */

/* Ends a split brain keeping this node's data (keep_local) or the partner's; the partner
 * must be connected.  The loser's divergent extents are logged, then overwritten by a
 * resync of the extents either side changed. */
int ha_device_resolve_split_brain(struct ha_device *d, bool keep_local, char *err, size_t errlen);
/* Changes the failover strategy on the live device (both nodes must be told; a node
 * whose partner runs another strategy logs it and behaves as its own says). */
int ha_device_set_failover(struct ha_device *d, enum ha_failover f, const struct ha_arbiter *arbiter, char *err,
                           size_t errlen);
/* Starts an online verify from this node (either one): both replicas compared by CRC32C
 * per block while I/O goes on, each block read on both nodes at the same point of the
 * primary's order; progress and result in this node's status, HA_EVENT_VERIFY_FINISHED at
 * the end.  Needs the partner connected and the device in sync. */
int ha_device_verify(struct ha_device *d, char *err, size_t errlen);

/* Grows the device on this node to `size` bytes (a multiple of 512; the same size is a
 * no-op): the replica grows with zeros, then the metadata (the bitmap, then the
 * superblock), and the new region is in sync, since the partner's replica grows with
 * zeros too.  Needs the device synchronized with its partner connected and no verify
 * running; the partner must be grown right after (twinctl device resize does both): until
 * then the partner refuses writes past its end and a reconnect finds the sizes differ.
 * ha_device_resize_check() says whether it would be refused, without changing anything.
 * The store front grows through store_grow(), which calls this. */
int ha_device_resize_check(const struct ha_device *d, uint64_t size, char *err, size_t errlen);
int ha_device_resize(struct ha_device *d, uint64_t size, char *err, size_t errlen);

#endif
