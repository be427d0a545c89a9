/* The HA device: a store mirrored on two nodes (see device.h for the design).
 *
 * Every piece of work that touches the replicas is a struct xfer.  Mutations (initiator
 * writes and discards, the partner's writes, resync copies) and verify reads take the
 * node's order lock (order.h) on their bytes: on the primary that lock is the sequencer,
 * on the secondary it applies mutations in the order they arrived from the primary.
 *
 * The mode says what the node does with its partner:
 *   WAITING     no partner, no failover decision yet: serves nothing new
 *   ALONE       the failover strategy let this node go on alone
 *   STOPPED     the failover strategy (or the replica's state) forbids serving
 *   MEETING     a sync link is up; generations and bitmaps are being exchanged
 *   REPLICATING in sync or resyncing: mutations go to both replicas
 *   PARKED      met, but refused to replicate (split brain, unrelated data, no source)
 * A node serving while ALONE or PARKED writes only locally; its activemap records it. */
#include "ha/device.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/iobuf.h"
#include "common/log.h"
#include "common/util.h"
#include "ha/activemap.h"
#include "ha/link.h"
#include "ha/mapsync.h"
#include "ha/order.h"

#define HA_DEFAULT_PING_MS 200
#define HA_DEFAULT_TIMEOUT_MS 2000
#define HA_HEARTBEAT_MAX_PAYLOAD 4096
/* Replicated bytes queued on the sync link above which new writes wait. */
#define HA_FLOW_MAX_QUEUED (16u << 20)
#define HA_FLOW_RETRY_MS 1
/* Resync copies in flight, each holding an extent's buffer (32 MiB with 1 MiB extents):
 * enough to keep the link streaming while acknowledgements come back. */
#define HA_RESYNC_DEPTH 32
/* Bytes queued on the sync link above which no new copy starts, below HA_FLOW_MAX_QUEUED
 * so that a resync never holds up the initiators' writes. */
#define HA_RESYNC_MAX_QUEUED (8u << 20)
/* Copies started per pass of the loop: the window fills over a few passes, and the
 * requests of each pass leave before the next extents are read, so the partner works on
 * them meanwhile (on memory file systems reads are synchronous, and a pass that read
 * dozens of extents would leave both the partner and the links waiting). */
#define HA_RESYNC_BURST 4
/* Extent buffers of finished resync reads, copies and answers, kept for the next ones: a
 * fresh 1 MiB buffer costs 256 page faults, about as much CPU as reading the extent. */
#define HA_SPARE_BUFS 16
/* A suspect extent is compared in chunks of this size at most: a difference costs the
 * copy of one chunk, a chunk costs a 32-byte digest on the link. */
#define HA_DIGEST_CHUNK (64u << 10)
#define HA_VERIFY_BLOCK 4096u
#define HA_VERIFY_CHUNK (1u << 20)
#define HA_LAZY_PAGES_MS 500
#define HA_RATE_WINDOW_MS 2000

enum mode { MODE_WAITING, MODE_ALONE, MODE_STOPPED, MODE_MEETING, MODE_REPLICATING, MODE_PARKED };

static const char *const mode_names[] = {
	[MODE_WAITING] = "waiting", [MODE_ALONE] = "alone", [MODE_STOPPED] = "stopped",
	[MODE_MEETING] = "meeting", [MODE_REPLICATING] = "replicating", [MODE_PARKED] = "parked",
};

/* One configured link slot. */
struct dlink {
	struct ha_device *d;
	struct link *l;
	/* A newer connection still proving itself: it replaces l only once authenticated, so
	 * a stranger connecting to a link port cannot break a working link. */
	struct link *candidate;
	enum proto_link_kind kind;
	unsigned index;
	bool up;
};

/* An initiator request, split into xfers of at most one message each. */
struct op {
	struct ha_device *d;
	struct store_io *io;
	struct reactor_op done_op;
	unsigned remaining;
	int err;
};

enum xkind {
	X_MUTATE,     /* initiator write or discard */
	X_FLUSH,      /* initiator flush */
	X_PEER_WRITE, /* the partner's WRITE or RESYNC_DATA, applied here */
	X_PEER_READ,  /* the partner's RESYNC_READ or VERIFY, read here */
	X_PEER_FLUSH, /* the partner's FLUSH */
	X_RESYNC,     /* a resync copy driven by this node (the primary) */
	X_VERIFY,     /* a verify chunk driven by this node (the primary) */
	X_ZERO,       /* initial sync "clear": zero the whole replica */
	X_CAW,        /* initiator COMPARE AND WRITE */
	X_PEER_CAW,   /* the secondary's COMPARE_AND_WRITE, run here on the primary */
};

struct xfer {
	struct ha_device *d;
	struct xfer *prev, *next;
	enum xkind kind;
	struct op *parent;
	struct order_req ord;
	struct mapsync_wait mw;
	struct store_io io;
	void (*after_local)(struct xfer *x);
	void (*after_mark)(struct xfer *x, int err);
	uint64_t id;          /* ours, or the partner's to echo */
	uint64_t peer_id;     /* X_PEER_CAW: the partner's, to echo (id is ours: it may ask back) */
	uint32_t epoch;       /* the session it belongs to */
	enum proto_type reply; /* X_PEER_*: what the answer is */
	uint64_t offset;
	uint32_t length;
	uint32_t block_size;  /* verify; resync: the digest chunk of a suspect extent */
	uint8_t *digests;     /* verify: the partner's, big-endian CRC32C per block; resync:
	                         its SHA-256 per chunk */
	uint8_t *mine;        /* resync: ours, computed as soon as our read ends */
	unsigned parts;       /* resync: copies of this extent's pieces still unanswered */
	bool suspect;         /* resync: compare by digest before copying */
	bool resync_write;    /* resync: the local I/O writes (a target's), else reads */
	uint8_t *buf;
	uint8_t *compare;     /* CAW: the expected bytes, then the new ones (x->buf is read into) */
	bool comparing;       /* CAW: the next local I/O reads the bytes to compare */
	bool fua, discard;
	bool borrowed;        /* buf is the initiator's, alive until its request completes */
	bool local_busy;      /* a local I/O is in flight */
	bool forwarded;       /* secondary: sent to the primary, waiting for its ACK */
	bool wait_remote;     /* waiting for the partner's answer */
	bool orphan;          /* the partner went away while we waited */
	bool local_done, remote_done, locked, marked;
	int local_err, remote_err;
};

struct ha_device {
	struct reactor *r;
	struct ha_device_params p;
	char name[64];
	uint8_t *secret;
	struct store *backing, *front;
	struct ha_meta *meta;
	struct ha_meta_super sb;
	struct activemap *am;
	struct mapsync *ms;
	struct order *order;
	struct dlink sync[HA_MAX_LINKS], hb[HA_MAX_LINKS];
	enum mode mode;
	bool serving;
	bool alone_gen_done;  /* the generation for writing alone is persisted */
	bool closing;
	unsigned local_busy;  /* xfers with local I/O in flight: a closed device waits for them */

	/* the session: the one sync link carrying ordered traffic */
	struct dlink *sess;
	uint32_t epoch;       /* counts sessions: answers never cross into a later one */
	struct dlink *next_sess; /* where the partner moved the session, while switching */
	bool got_gens;
	struct proto_generations remote;
	uint8_t *rbitmap, *rknown; /* the partner's bitmap, and its extents known to differ */
	size_t rbitmap_got, rknown_got;

	/* resync (driven by the primary) */
	bool resyncing, sync_source, finishing;
	unsigned resync_inflight;
	unsigned resync_pass_started; /* copies started in this pass of the loop */
	uint8_t *spare[HA_SPARE_BUFS]; /* extent-sized buffers (HA_SPARE_BUFS) */
	unsigned n_spare;
	struct reactor_timer resync_timer; /* the next pass's share of copies */
	uint64_t sync_total, sync_done, sync_start_ms;
	uint64_t rate_mark_ms, rate_mark_bytes, rate_bps;
	uint64_t sent_bytes, received_bytes, compared_bytes;

	/* verify (driven by the primary) */
	bool verify_running, verify_done;
	uint64_t verify_cursor, verify_done_bytes, verify_diff;
	unsigned verify_inflight;

	/* failover */
	bool claim_pending, granted;
	bool grace_over;      /* the secondary's pause before a heartbeat decision ended */
	struct reactor_timer start_timer, claim_timer, flow_timer, pages_timer, alive_timer, lease_timer;
	uint64_t partner_lease_end_ms; /* a lost partner may serve reads until then */
	uint64_t alive_ms;    /* the loop last ran our watchdog */
	uint64_t stalled_ms;  /* when the watchdog found the loop had stalled */

	/* the channel (ha_device_set_channel()) */
	const struct ha_channel_ops *chan;
	void *chan_ctx;
	bool chan_up;         /* `up` was called for the current session */

	struct xfer *xfers;           /* every xfer alive */
	struct xfer *waitq_head, *waitq_tail; /* initiator mutations not started yet */
	uint64_t next_id;
};

enum orphan_fate {
	ORPHAN_ALONE, /* this node goes on alone: what it has locally is the data */
	ORPHAN_FAIL,  /* it stops, or meets the partner again at once: they fail, retryable */
};

static const struct store_ops ha_store_ops;

/* ---- names ------------------------------------------------------------------------ */

const char *ha_failover_name(enum ha_failover f)
{
	return f == HA_FAILOVER_HEARTBEAT ? "heartbeat" : f == HA_FAILOVER_MAJORITY ? "majority" : "?";
}

int ha_failover_parse(const char *s, enum ha_failover *out)
{
	if (strcmp(s, "heartbeat") == 0)
		*out = HA_FAILOVER_HEARTBEAT;
	else if (strcmp(s, "majority") == 0 || strcmp(s, "node-majority") == 0)
		*out = HA_FAILOVER_MAJORITY;
	else
		return -1;
	return 0;
}

const char *ha_event_name(enum ha_event e)
{
	static const char *const names[] = {
		[HA_EVENT_STATE] = "state", [HA_EVENT_LINK_UP] = "link-up", [HA_EVENT_LINK_DOWN] = "link-down",
		[HA_EVENT_PARTNER_CONNECTED] = "partner-connected", [HA_EVENT_PARTNER_LOST] = "partner-lost",
		[HA_EVENT_SYNC_STARTED] = "sync-started", [HA_EVENT_SYNC_FINISHED] = "sync-finished",
		[HA_EVENT_SPLIT_BRAIN] = "split-brain", [HA_EVENT_VERIFY_FINISHED] = "verify-finished",
	};
	return (unsigned)e < ARRAY_SIZE(names) && names[e] ? names[e] : "?";
}

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t rng_u64(void *ctx)
{
	uint64_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		abort(); /* no randomness: identifiers would collide; nothing safe to do */
	return v;
}

static bool is_primary(const struct ha_device *d)
{
	return d->p.role == HA_ROLE_PRIMARY;
}

static void emit(struct ha_device *d, enum ha_event ev, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit(struct ha_device *d, enum ha_event ev, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (d->p.event)
		d->p.event(d->p.arg, d, ev, detail);
}

/* Superblock changes are rare and must be durable before we act on them. */
static int save_sb(struct ha_device *d)
{
	char err[256];

	if (ha_meta_update(d->meta, &d->sb, err, sizeof(err)) != 0) {
		log_err("ha %s: cannot persist metadata: %s", d->name, err);
		return -1;
	}
	return 0;
}

/* Writes every stale bitmap page (synchronous: a page costs one small write). */
static int save_pages(struct ha_device *d)
{
	uint32_t page = 0;
	char err[256];

	while (activemap_stale_page(d->am, page, &page)) {
		uint64_t version;
		const uint8_t *img = activemap_page(d->am, page, &version);

		if (ha_meta_write_page(d->meta, page, img, err, sizeof(err)) != 0) {
			log_err("ha %s: cannot persist the activemap: %s", d->name, err);
			return -1;
		}
		activemap_page_written(d->am, page, version);
		page++;
	}
	return 0;
}

static void on_pages_timer(struct reactor_timer *t)
{
	struct ha_device *d = container_of(t, struct ha_device, pages_timer);

	mapsync_kick(d->ms);
}

/* A clear left a page stale: write it when convenient. */
static void lazy_pages(struct ha_device *d, bool stale)
{
	if (stale && !reactor_timer_armed(&d->pages_timer))
		reactor_timer_start(d->r, &d->pages_timer, HA_LAZY_PAGES_MS, on_pages_timer);
}

static enum store_access access_now(const struct ha_device *d)
{
	if (d->serving)
		return STORE_ACCESS_OK;
	if (d->mode == MODE_STOPPED || d->mode == MODE_PARKED)
		return STORE_ACCESS_UNAVAILABLE;
	return STORE_ACCESS_TRANSITIONING;
}

/* Sets the replica's state, persisted first, logged and announced when it changes. */
static void set_state(struct ha_device *d, enum ha_sync_state st, enum ha_sync_reason why)
{
	struct ha_meta_super old = d->sb;

	d->sb.state = st;
	d->sb.reason = st == HA_SYNC_NOT_SYNCHRONIZED ? why : HA_REASON_NONE;
	if (ha_meta_super_same(&old, &d->sb))
		return;
	save_sb(d);
	log_info("ha %s: %s%s%s (%s)", d->name, ha_sync_state_name(st), d->sb.reason ? ", " : "",
	         d->sb.reason ? ha_sync_reason_name(d->sb.reason) : "", d->serving ? "serving" : "not serving");
	emit(d, HA_EVENT_STATE, "%s %s", ha_sync_state_name(st), ha_sync_reason_name(d->sb.reason));
}

static void set_serving(struct ha_device *d, bool serving)
{
	if (d->serving == serving)
		return;
	d->serving = serving;
	log_info("ha %s: %s serving (%s)", d->name, serving ? "now" : "no longer", mode_names[d->mode]);
	emit(d, HA_EVENT_STATE, "%s", serving ? "serving" : "not serving");
}

static void set_mode(struct ha_device *d, enum mode m)
{
	if (d->mode != m)
		log_debug("ha %s: mode %s -> %s", d->name, mode_names[d->mode], mode_names[m]);
	d->mode = m;
}

static void drop_link(struct dlink *s, const char *why);

static struct link *sess_link(const struct ha_device *d)
{
	return d->sess != NULL ? d->sess->l : NULL;
}

static int send_msg(struct ha_device *d, const struct proto_msg *m)
{
	struct link *l = sess_link(d);

	return l != NULL ? link_send(l, m) : -1;
}

/* The partner tells known from suspect extents and compares by digest. */
static bool partner_digests(const struct ha_device *d)
{
	struct link *l = sess_link(d);

	return l != NULL && link_version(l) >= PROTO_VERSION_DIGESTS;
}

/* Answers and requests of an xfer go only to the session it was made in. */
static int send_for(const struct xfer *x, const struct proto_msg *m)
{
	return x->epoch == x->d->epoch ? send_msg(x->d, m) : -1;
}

static void channel_up(struct ha_device *d, bool source)
{
	d->chan_up = true;
	if (d->chan != NULL)
		d->chan->up(d->chan_ctx, source);
}

static void channel_down(struct ha_device *d)
{
	if (!d->chan_up)
		return;
	d->chan_up = false;
	if (d->chan != NULL)
		d->chan->down(d->chan_ctx);
}

static int status_errno(uint32_t status)
{
	switch (status) {
	case PROTO_STATUS_OK: return 0;
	case PROTO_STATUS_NO_SPACE: return -ENOSPC;
	case PROTO_STATUS_NOT_SERVING: return -ENOTCONN;
	case PROTO_STATUS_MISCOMPARE: return -EILSEQ;
	default: return -EIO;
	}
}

static uint32_t errno_status(int err)
{
	if (err == 0)
		return PROTO_STATUS_OK;
	if (err == -ENOSPC)
		return PROTO_STATUS_NO_SPACE;
	if (err == -ENOTCONN)
		return PROTO_STATUS_NOT_SERVING;
	if (err == -EILSEQ)
		return PROTO_STATUS_MISCOMPARE;
	return PROTO_STATUS_IO_ERROR;
}

/* ---- xfers -------------------------------------------------------------------------- */

static struct xfer *xfer_new(struct ha_device *d, enum xkind kind, uint64_t offset, uint32_t length)
{
	struct xfer *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	x->d = d;
	x->kind = kind;
	x->offset = offset;
	x->length = length;
	x->id = ++d->next_id;
	x->epoch = d->epoch;
	x->next = d->xfers;
	if (d->xfers)
		d->xfers->prev = x;
	d->xfers = x;
	return x;
}

static void xfer_free(struct xfer *x)
{
	struct ha_device *d = x->d;

	if (x->locked)
		order_release(d->order, &x->ord);
	if (x->prev)
		x->prev->next = x->next;
	else if (d->xfers == x)
		d->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	if (x->buf != NULL && x->length == d->sb.extent_size && d->n_spare < HA_SPARE_BUFS &&
	    (x->kind == X_RESYNC || x->kind == X_PEER_READ || x->kind == X_PEER_WRITE))
		d->spare[d->n_spare++] = x->buf;
	else if (!x->borrowed)
		free(x->buf);
	free(x->compare);
	free(x->digests);
	free(x->mine);
	free(x);
}

/* A buffer for `len` bytes of data: a spare one when it is an extent's size. */
static uint8_t *data_buf(struct ha_device *d, uint32_t len)
{
	if (len == d->sb.extent_size && d->n_spare > 0)
		return d->spare[--d->n_spare];
	return iobuf_alloc(len);
}

static struct xfer *find_waiting(struct ha_device *d, uint64_t id)
{
	for (struct xfer *x = d->xfers; x != NULL; x = x->next) {
		if (x->id == id && x->wait_remote)
			return x;
	}
	return NULL;
}

static void op_fire(struct reactor_op *rop, int res)
{
	struct op *o = container_of(rop, struct op, done_op);
	struct store_io *io = o->io;
	int err = o->err;

	free(o);
	io->done(io, err);
}

/* A part of an initiator request ended; the request completes from the loop. */
static void op_part_done(struct op *o, int err)
{
	if (err != 0 && o->err == 0)
		o->err = err;
	if (--o->remaining == 0)
		reactor_defer(o->d->r, &o->done_op, op_fire);
}

static void fail_fire(struct reactor_op *rop, int res)
{
	struct store_io *io = container_of(rop, struct store_io, op);

	io->done(io, io->sync_result);
}

/* Never completes inside the call: the io's own op carries the deferral. */
static void fail_io(struct ha_device *d, struct store_io *io, int err)
{
	io->sync_result = err;
	reactor_defer(d->r, &io->op, fail_fire);
}

/* Ends an initiator xfer with err (first error wins) and frees it. */
static void finish_initiator(struct xfer *x, int err)
{
	struct op *o = x->parent;

	xfer_free(x);
	if (o)
		op_part_done(o, err);
}

static void device_free(struct ha_device *d);

static void on_local_done(struct store_io *io, int err)
{
	struct xfer *x = container_of(io, struct xfer, io);
	struct ha_device *d = x->d;

	x->local_busy = false;
	d->local_busy--;
	x->local_done = true;
	x->local_err = err;
	if (d->closing) {
		/* The store was closed under it: the request ends, then maybe the device. */
		if (x->parent)
			finish_initiator(x, -ENOTCONN);
		else
			xfer_free(x);
		if (d->local_busy == 0)
			device_free(d);
		return;
	}
	x->after_local(x);
}

static void local_io(struct xfer *x, void (*after)(struct xfer *x))
{
	struct ha_device *d = x->d;

	x->after_local = after;
	x->local_done = false;
	x->local_busy = true;
	d->local_busy++;
	x->io.done = on_local_done;
	if (x->comparing) {
		store_read(d->backing, d->r, &x->io, x->buf, x->length, x->offset);
		return;
	}
	switch (x->kind) {
	case X_FLUSH:
	case X_PEER_FLUSH:
		store_flush(d->backing, d->r, &x->io);
		break;
	case X_PEER_READ:
	case X_VERIFY:
		store_read(d->backing, d->r, &x->io, x->buf, x->length, x->offset);
		break;
	case X_ZERO:
		store_discard(d->backing, d->r, &x->io, 0, d->sb.size);
		break;
	case X_RESYNC:
		if (x->resync_write)
			store_write(d->backing, d->r, &x->io, x->buf, x->length, x->offset, false);
		else
			store_read(d->backing, d->r, &x->io, x->buf, x->length, x->offset);
		break;
	default:
		if (x->discard)
			store_discard(d->backing, d->r, &x->io, x->offset, x->length);
		else
			store_write(d->backing, d->r, &x->io, x->buf, x->length, x->offset, x->fua);
	}
}

static void lock(struct xfer *x, void (*granted)(struct order_req *req))
{
	x->ord.offset = x->offset;
	x->ord.length = x->length;
	x->ord.granted = granted;
	x->locked = true;
	order_lock(x->d->order, &x->ord);
}

static void unlock(struct xfer *x)
{
	if (x->locked) {
		x->locked = false;
		order_release(x->d->order, &x->ord);
	}
}

static void on_marked(struct mapsync_wait *w, int err)
{
	struct xfer *x = container_of(w, struct xfer, mw);

	x->after_mark(x, err);
}

/* Marks the xfer's extents in the activemap; `then` runs once they are on disk
 * (metadata before data), at once if they already are. */
static void mark(struct xfer *x, void (*then)(struct xfer *x, int err))
{
	struct ha_device *d = x->d;

	x->marked = true;
	if (!activemap_write_start(d->am, x->offset, x->length)) {
		then(x, 0);
		return;
	}
	x->after_mark = then;
	x->mw = (struct mapsync_wait){.offset = x->offset, .length = x->length, .ready = on_marked};
	mapsync_wait(d->ms, &x->mw);
}

static void unmark(struct xfer *x)
{
	if (x->marked) {
		x->marked = false;
		lazy_pages(x->d, activemap_write_complete(x->d->am, x->offset, x->length));
	}
}

/* The first write accepted alone starts a new generation, persisted before it. */
static int ensure_alone_gen(struct ha_device *d)
{
	if (d->alone_gen_done)
		return 0;
	if (generation_partner_lost_write(&d->sb.gen, rng_u64, NULL) != 0) {
		log_err("ha %s: an incomplete replica may not accept writes alone", d->name);
		return -ENOTCONN;
	}
	if (save_sb(d) != 0)
		return -EIO;
	d->alone_gen_done = true;
	log_info("ha %s: writing without the partner, new generation %016llx", d->name,
	         (unsigned long long)d->sb.gen.current);
	return 0;
}

/* ---- initiator mutations ------------------------------------------------------------ */

static void pump(struct ha_device *d);
static void resync_pump(struct ha_device *d);
static void on_resync_timer(struct reactor_timer *t);
static void verify_pump(struct ha_device *d);

static void mutate_try_finish(struct xfer *x)
{
	if (!x->local_done || !x->remote_done)
		return;
	/* Marked before unmark() lets the extent join the kept ones: one replica has it. */
	if (x->marked && (x->local_err != 0) != (x->remote_err != 0)) {
		log_warn("ha %s: write at %llu+%u failed on %s replica only: marked for resync", x->d->name,
		         (unsigned long long)x->offset, x->length, x->local_err ? "this node's" : "the partner's");
		activemap_mark_differs(x->d->am, x->offset, x->length);
		if (!reactor_timer_armed(&x->d->resync_timer))
			reactor_timer_start(x->d->r, &x->d->resync_timer, 0, on_resync_timer);
	}
	unmark(x);
	unlock(x);
	finish_initiator(x, x->local_err ? x->local_err : x->remote_err);
}

static void mutate_local_done(struct xfer *x)
{
	mutate_try_finish(x);
}

/* A WRITE to the partner; a COMPARE AND WRITE that a secondary forwards goes whole, for
 * the primary to compare and write under its order. */
static void send_write(struct xfer *x)
{
	struct proto_msg m = {.type = PROTO_WRITE};

	if (x->kind == X_CAW && x->forwarded) {
		m.type = PROTO_COMPARE_AND_WRITE;
		m.u.caw = (struct proto_compare_and_write){x->id, x->offset, x->length, x->fua ? PROTO_WRITE_FUA : 0,
		                                           x->compare};
	} else {
		m.u.write.request_id = x->id;
		m.u.write.offset = x->offset;
		m.u.write.length = x->length;
		m.u.write.flags = (x->fua ? PROTO_WRITE_FUA : 0) | (x->discard ? PROTO_WRITE_DISCARD : 0);
		m.u.write.data = x->buf;
	}
	x->wait_remote = true;
	if (send_msg(x->d, &m) != 0)
		x->orphan = true; /* the session is ending: the failover decision resolves it */
}

static void mutate_marked(struct xfer *x, int err)
{
	struct ha_device *d = x->d;

	if (err != 0) {
		unmark(x);
		unlock(x);
		finish_initiator(x, err);
		return;
	}
	x->remote_done = true;
	if (d->mode == MODE_REPLICATING) {
		x->remote_done = false;
		send_write(x);
	}
	local_io(x, mutate_local_done);
}

/* Primary (or a node alone): the range is ours; mark, write locally, replicate. */
static void mutate_granted(struct order_req *req)
{
	mark(container_of(req, struct xfer, ord), mutate_marked);
}

/* Secondary: the primary ordered it; apply locally in acknowledgement order. */
static void forward_granted(struct order_req *req)
{
	struct xfer *x = container_of(req, struct xfer, ord);

	local_io(x, mutate_local_done);
}

/* ---- COMPARE AND WRITE: compared on the node that orders (the primary, or a node alone)
 * under its order lock, then written as any mutation before the lock is released.
 * x->compare holds the expected bytes then the new ones; x->buf holds the new ones, but
 * receives the replica's bytes while comparing. */

static void peer_caw_read_done(struct xfer *x);

/* After the comparing read: true if the replica matched (x->buf holds the new bytes
 * again); otherwise *at is where it differs, or -1 if the read failed (x->local_err). */
static bool caw_matches(struct xfer *x, int64_t *at)
{
	x->comparing = false;
	*at = -1;
	if (x->local_err != 0)
		return false;
	for (uint32_t i = 0; i < x->length; i++) {
		if (x->buf[i] != x->compare[i]) {
			*at = i;
			return false;
		}
	}
	memcpy(x->buf, x->compare + x->length, x->length);
	return true;
}

static void caw_read_done(struct xfer *x)
{
	int64_t at;

	if (caw_matches(x, &at)) {
		/* A CAW forwarded before its session ended is marked already. */
		if (x->marked)
			mutate_marked(x, 0);
		else
			mark(x, mutate_marked);
		return;
	}
	unmark(x);
	unlock(x);
	if (at >= 0)
		x->parent->io->miscompare = (uint64_t)at;
	finish_initiator(x, at >= 0 ? -EILSEQ : x->local_err);
}

static void caw_granted(struct order_req *req)
{
	struct xfer *x = container_of(req, struct xfer, ord);

	x->comparing = true;
	if (x->kind == X_PEER_CAW && !x->d->serving) {
		/* A resync target: the secondary, the source, serves the bytes to compare.  It
		 * reads them in arrival order, after every write ordered before this one. */
		struct proto_msg m = {.type = PROTO_RESYNC_READ};

		m.u.range = (struct proto_range){x->id, x->offset, x->length, 0};
		x->wait_remote = true;
		if (send_for(x, &m) != 0) {
			unlock(x);
			xfer_free(x);
		}
		return;
	}
	local_io(x, x->kind == X_CAW ? caw_read_done : peer_caw_read_done);
}

static void resolve_orphans(struct ha_device *d, enum orphan_fate fate);

static void forward_marked(struct xfer *x, int err)
{
	struct ha_device *d = x->d;

	if (err != 0) {
		unmark(x);
		finish_initiator(x, err);
		return;
	}
	x->forwarded = true;
	x->remote_done = true;
	if (d->mode == MODE_REPLICATING) {
		send_write(x);
		return;
	}
	/* The session ended while the mark was being written: the failover decides. */
	x->orphan = true;
	if (d->mode == MODE_ALONE)
		resolve_orphans(d, ORPHAN_ALONE);
	else if (d->mode != MODE_WAITING)
		resolve_orphans(d, ORPHAN_FAIL);
}

static void start_mutation(struct xfer *x)
{
	struct ha_device *d = x->d;
	int err;

	if (d->mode == MODE_REPLICATING && !is_primary(d)) {
		/* Marked before it leaves: if both nodes crash after the primary wrote it, our
		 * bitmap still names the extent. */
		mark(x, forward_marked);
		return;
	}
	if (d->mode != MODE_REPLICATING && (err = ensure_alone_gen(d)) != 0) {
		finish_initiator(x, err);
		return;
	}
	lock(x, x->kind == X_CAW ? caw_granted : mutate_granted);
}

static bool flow_ok(struct ha_device *d)
{
	struct link *l = sess_link(d);

	return l == NULL || link_queued_bytes(l) < HA_FLOW_MAX_QUEUED;
}

static void on_flow_timer(struct reactor_timer *t)
{
	pump(container_of(t, struct ha_device, flow_timer));
}

static struct xfer *waitq_pop(struct ha_device *d)
{
	struct xfer *x = d->waitq_head;

	if (x != NULL) {
		d->waitq_head = x->next;
		if (d->waitq_head == NULL)
			d->waitq_tail = NULL;
		x->next = NULL;
	}
	return x;
}

/* Queued xfers are kept off the xfers list (next links the queue) until they start. */
static void xfer_link(struct xfer *x)
{
	struct ha_device *d = x->d;

	x->prev = NULL;
	x->next = d->xfers;
	if (d->xfers)
		d->xfers->prev = x;
	d->xfers = x;
}

/* Starts queued initiator requests while the mode allows; fails them if it never will. */
static void pump(struct ha_device *d)
{
	while (d->waitq_head != NULL) {
		bool go = d->serving && (d->mode == MODE_ALONE || d->mode == MODE_PARKED ||
		                         (d->mode == MODE_REPLICATING && flow_ok(d)));

		if (!go) {
			if (!d->serving && d->mode != MODE_WAITING && d->mode != MODE_MEETING) {
				struct xfer *x = waitq_pop(d);

				xfer_link(x);
				finish_initiator(x, -ENOTCONN);
				continue;
			}
			if (d->mode == MODE_REPLICATING && !reactor_timer_armed(&d->flow_timer))
				reactor_timer_start(d->r, &d->flow_timer, HA_FLOW_RETRY_MS, on_flow_timer);
			return;
		}
		struct xfer *x = waitq_pop(d);

		xfer_link(x);
		start_mutation(x);
	}
}

static void enqueue(struct ha_device *d, struct xfer *x)
{
	/* xfer_new linked it on the xfers list; the queue holds it until it starts. */
	if (x->prev)
		x->prev->next = x->next;
	else
		d->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	if (d->waitq_tail)
		d->waitq_tail->next = x;
	else
		d->waitq_head = x;
	d->waitq_tail = x;
}

/* ---- the store interface -------------------------------------------------------------- */

static bool can_serve(const struct ha_device *d)
{
	return d->serving && !d->closing;
}

/* Bytes [skip, skip + len) of the vector if one element holds them all, else NULL. */
static uint8_t *iov_span(const struct iovec *iov, int iovcnt, uint64_t skip, size_t len)
{
	for (int i = 0; i < iovcnt; i++) {
		if (skip < iov[i].iov_len)
			return len <= iov[i].iov_len - skip ? (uint8_t *)iov[i].iov_base + skip : NULL;
		skip -= iov[i].iov_len;
	}
	return NULL;
}

/* A node in session serves reads from its replica only while its partner cannot be
 * writing alone: for a lease after the partner last answered it on the session's link.
 * A node that lost that link waits as long after its own last answer before it writes
 * alone (go_alone()).  Shorter than the link timeout, so a link lost to silence costs no
 * wait; a reset one (the partner died, or not) costs the primary up to the lease (a
 * secondary waits longer anyway).  A node that stood still (SIGSTOP) finds its lease run
 * out when it resumes, before it could serve a read its partner has overtaken. */
static uint64_t read_lease_ms(const struct ha_device *d)
{
	return d->p.timeout_ms / 2;
}

static bool read_lease_holds(const struct ha_device *d)
{
	return d->sess == NULL || d->sess->l == NULL || now_ms() < link_peer_seen_ms(d->sess->l) + read_lease_ms(d);
}

static void copy_from_iov(const struct iovec *iov, int iovcnt, uint64_t skip, uint8_t *dst, size_t len)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t n = MIN(iov[i].iov_len - skip, len);

		memcpy(dst, (const uint8_t *)iov[i].iov_base + skip, n);
		dst += n;
		len -= n;
		skip = 0;
	}
}

/* An initiator request, held (remaining 1) until every piece is queued; NULL if it
 * failed at once. */
static struct op *op_start(struct ha_device *d, struct store_io *io)
{
	struct op *o;

	if (!can_serve(d)) {
		fail_io(d, io, -ENOTCONN);
		return NULL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		fail_io(d, io, -ENOMEM);
		return NULL;
	}
	o->d = d;
	o->io = io;
	o->remaining = 1;
	return o;
}

/* Splits a write or discard into xfers of at most one message each and queues them. */
static void submit_mutation(struct ha_device *d, struct store_io *io, const struct iovec *iov, int iovcnt,
                            uint64_t offset, uint64_t length, bool fua, bool discard)
{
	uint64_t piece = discard ? PROTO_MAX_DISCARD : PROTO_MAX_DATA;
	struct op *o = op_start(d, io);

	if (o == NULL)
		return;
	for (uint64_t done = 0; done < length;) {
		uint32_t n = (uint32_t)MIN(piece, length - done);
		struct xfer *x = xfer_new(d, X_MUTATE, offset + done, n);

		/* The usual single buffer is written from where it is: the request completes
		 * only after its every xfer ended, and the link copies what it sends. */
		if (x != NULL && !discard)
			x->borrowed = (x->buf = iov_span(iov, iovcnt, done, n)) != NULL;
		if (x == NULL || (!discard && !x->borrowed && (x->buf = iobuf_alloc(n)) == NULL)) {
			if (x)
				xfer_free(x);
			o->err = -ENOMEM;
			break;
		}
		x->parent = o;
		x->fua = fua;
		x->discard = discard;
		if (!discard && !x->borrowed)
			copy_from_iov(iov, iovcnt, done, x->buf, n);
		o->remaining++;
		enqueue(d, x);
		done += n;
	}
	pump(d);
	op_part_done(o, 0);
}

static void ha_readv(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
                     uint64_t offset)
{
	struct ha_device *d = impl;

	if (!can_serve(d) || !read_lease_holds(d)) {
		fail_io(d, io, -ENOTCONN);
		return;
	}
	store_readv(d->backing, r, io, iov, iovcnt, offset);
}

static void ha_writev(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
                      uint64_t offset, bool fua)
{
	uint64_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	submit_mutation(impl, io, iov, iovcnt, offset, len, fua, false);
}

static void ha_discard(void *impl, struct reactor *r, struct store_io *io, uint64_t offset, uint64_t length)
{
	submit_mutation(impl, io, NULL, 0, offset, length, false, true);
}

/* One xfer, queued like a write: the primary (or a node alone) compares and writes it,
 * a secondary forwards it whole. */
static void ha_compare_and_write(void *impl, struct reactor *r, struct store_io *io, const void *compare,
                                 const void *data, size_t len, uint64_t offset, bool fua)
{
	struct ha_device *d = impl;
	struct op *o = op_start(d, io);
	struct xfer *x;

	_Static_assert(STORE_MAX_COMPARE_AND_WRITE <= PROTO_MAX_COMPARE, "a CAW must fit one message");
	if (o == NULL)
		return;
	x = xfer_new(d, X_CAW, offset, (uint32_t)len);
	if (x == NULL || (x->buf = iobuf_alloc(len)) == NULL || (x->compare = iobuf_alloc(2 * len)) == NULL) {
		if (x)
			xfer_free(x);
		op_part_done(o, -ENOMEM);
		return;
	}
	memcpy(x->buf, data, len);
	memcpy(x->compare, compare, len);
	memcpy(x->compare + len, data, len);
	x->parent = o;
	x->fua = fua;
	o->remaining++;
	enqueue(d, x);
	pump(d);
	op_part_done(o, 0);
}

static void flush_local_done(struct xfer *x)
{
	mutate_try_finish(x);
}

static void ha_flush(void *impl, struct reactor *r, struct store_io *io)
{
	struct ha_device *d = impl;
	struct op *o;
	struct xfer *x;

	if (!can_serve(d)) {
		fail_io(d, io, -ENOTCONN);
		return;
	}
	o = calloc(1, sizeof(*o));
	x = o ? xfer_new(d, X_FLUSH, 0, 0) : NULL;
	if (x == NULL) {
		free(o);
		fail_io(d, io, -ENOMEM);
		return;
	}
	o->d = d;
	o->io = io;
	o->remaining = 1;
	x->parent = o;
	x->remote_done = true;
	if (d->mode == MODE_REPLICATING) {
		struct proto_msg m = {.type = PROTO_FLUSH, .u.flush.request_id = x->id};

		x->remote_done = false;
		x->wait_remote = true;
		if (send_msg(d, &m) != 0)
			x->orphan = true;
	}
	local_io(x, flush_local_done);
}

static int ha_map_status(void *impl, uint64_t offset, bool *mapped, uint64_t *length)
{
	struct ha_device *d = impl;

	return store_map_status(d->backing, offset, mapped, length);
}

static enum store_access ha_access(const void *impl)
{
	return access_now(impl);
}

/* ---- the partner's requests ------------------------------------------------------------ */

static void send_ack(struct ha_device *d, enum proto_type type, uint64_t id, int err)
{
	struct proto_msg m = {.type = type};

	m.u.ack.request_id = id;
	m.u.ack.status = errno_status(err);
	send_msg(d, &m);
}

static void send_xfer_ack(struct xfer *x, enum proto_type type)
{
	if (x->epoch == x->d->epoch)
		send_ack(x->d, type, x->kind == X_PEER_CAW ? x->peer_id : x->id, x->local_err);
}

static void peer_write_done(struct xfer *x)
{
	struct ha_device *d = x->d;

	if (x->local_err)
		log_err("ha %s: replicated write at %llu+%u failed: %s", d->name, (unsigned long long)x->offset,
		        x->length, strerror(-x->local_err));
	send_xfer_ack(x, x->kind == X_PEER_CAW ? PROTO_COMPARE_AND_WRITE_ACK : PROTO_WRITE_ACK);
	unmark(x);
	unlock(x);
	xfer_free(x);
}

/* Not marked here: the node that originated the write marked the extent before sending
 * it and keeps it marked until this node has applied it (the primary clears after our
 * acknowledgement, a secondary after applying what it forwarded), so the union of the two
 * bitmaps after any crash still covers it.  RESYNC_DATA lands in an extent resync needs. */
static void peer_write_granted(struct order_req *req)
{
	local_io(container_of(req, struct xfer, ord), peer_write_done);
}

/* Answers the partner's mutation at once if it is outside the device or this node does
 * not replicate now. */
static bool peer_mutation_refused(struct ha_device *d, enum proto_type ack, uint64_t id, uint64_t offset,
                                  uint64_t length)
{
	if (offset >= d->sb.size || length > d->sb.size - offset) {
		send_ack(d, ack, id, -ERANGE);
		return true;
	}
	if (d->mode != MODE_REPLICATING) {
		send_ack(d, ack, id, -ENOTCONN);
		return true;
	}
	return false;
}

/* WRITE (either way) or RESYNC_DATA (to a secondary resync target): applied in arrival order. */
static void on_peer_write(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_write *w = &m->u.write;
	bool discard = m->type == PROTO_WRITE && (w->flags & PROTO_WRITE_DISCARD);
	struct xfer *x;

	if (peer_mutation_refused(d, PROTO_WRITE_ACK, w->request_id, w->offset, w->length))
		return;
	x = xfer_new(d, X_PEER_WRITE, w->offset, w->length);
	if (x == NULL || (!discard && (x->buf = data_buf(d, w->length)) == NULL)) {
		if (x)
			xfer_free(x);
		send_ack(d, PROTO_WRITE_ACK, w->request_id, -ENOMEM);
		return;
	}
	x->id = w->request_id;
	x->reply = m->type;
	x->fua = w->flags & PROTO_WRITE_FUA;
	x->discard = discard;
	if (!discard)
		memcpy(x->buf, w->data, w->length);
	if (m->type == PROTO_RESYNC_DATA) {
		d->received_bytes += w->length;
		d->sync_done += w->length; /* progress as the primary drives it */
	}
	lock(x, peer_write_granted);
}

static void peer_caw_read_done(struct xfer *x)
{
	int64_t at;

	if (caw_matches(x, &at)) {
		local_io(x, peer_write_done);
		return;
	}
	if (at >= 0) {
		struct proto_msg m = {.type = PROTO_COMPARE_AND_WRITE_ACK};

		m.u.ack = (struct proto_ack){x->peer_id, PROTO_STATUS_MISCOMPARE, (uint32_t)at};
		send_for(x, &m);
	} else {
		send_xfer_ack(x, PROTO_COMPARE_AND_WRITE_ACK);
	}
	unlock(x);
	xfer_free(x);
}

/* COMPARE_AND_WRITE from the secondary: compared and written under our order as if it
 * had arrived here (compared against the secondary's bytes while our replica is a resync
 * target: it may not hold them yet). */
static void on_peer_caw(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_compare_and_write *c = &m->u.caw;
	struct xfer *x;

	if (!is_primary(d)) {
		drop_link(d->sess, "COMPARE_AND_WRITE sent to the secondary");
		return;
	}
	if (peer_mutation_refused(d, PROTO_COMPARE_AND_WRITE_ACK, c->request_id, c->offset, c->length))
		return;
	x = xfer_new(d, X_PEER_CAW, c->offset, c->length);
	if (x == NULL || (x->buf = iobuf_alloc(c->length)) == NULL ||
	    (x->compare = iobuf_alloc(2 * (size_t)c->length)) == NULL) {
		if (x)
			xfer_free(x);
		send_ack(d, PROTO_COMPARE_AND_WRITE_ACK, c->request_id, -ENOMEM);
		return;
	}
	x->peer_id = c->request_id;
	x->fua = c->flags & PROTO_WRITE_FUA;
	memcpy(x->compare, c->data, 2 * (size_t)c->length);
	lock(x, caw_granted);
}

/* SHA-256 of each `chunk` bytes of buf, one after the other into out. */
static void strong_digests(const uint8_t *buf, uint32_t len, uint32_t chunk, uint8_t *out)
{
	for (uint32_t off = 0; off < len; off += chunk, out += SHA256_DIGEST_LENGTH)
		SHA256(buf + off, chunk, out);
}

static void peer_read_done(struct xfer *x)
{
	struct ha_device *d = x->d;
	struct proto_msg m = {.type = x->reply};

	if (x->local_err) {
		log_err("ha %s: reading %llu+%u for the partner failed: %s", d->name, (unsigned long long)x->offset,
		        x->length, strerror(-x->local_err));
		/* The partner waits for this answer; without it the link must go. */
		if (x->epoch == d->epoch)
			drop_link(d->sess, "local read failed");
		xfer_free(x);
		return;
	}
	if (x->reply == PROTO_RESYNC_DATA) {
		m.u.write = (struct proto_write){x->id, x->offset, x->length, 0, x->buf};
		if (send_for(x, &m) == 0) {
			d->sent_bytes += x->length;
			d->sync_done += x->length;
		}
	} else {
		bool strong = x->reply == PROTO_DIGEST_DATA;
		uint32_t count = x->length / x->block_size;
		uint8_t *dig = malloc((size_t)count * (strong ? SHA256_DIGEST_LENGTH : 4));

		if (dig != NULL) {
			if (strong) {
				strong_digests(x->buf, x->length, x->block_size, dig);
				d->compared_bytes += x->length;
				d->sync_done += x->length;
			} else {
				for (uint32_t i = 0; i < count; i++)
					put_be32(dig + 4 * i, crc32c(x->buf + (size_t)i * x->block_size, x->block_size));
			}
			m.u.digest = (struct proto_verify_digest){x->id, x->offset, x->block_size, count, dig};
			send_for(x, &m);
			free(dig);
		}
	}
	unlock(x);
	xfer_free(x);
}

static void peer_read_granted(struct order_req *req)
{
	local_io(container_of(req, struct xfer, ord), peer_read_done);
}

/* RESYNC_READ (to a secondary resync source), VERIFY or DIGEST_READ: read in arrival order. */
static void on_peer_read(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_range *rg = &m->u.range;
	struct xfer *x;

	if (rg->offset >= d->sb.size || rg->length > d->sb.size - rg->offset || d->mode != MODE_REPLICATING ||
	    (x = xfer_new(d, X_PEER_READ, rg->offset, rg->length)) == NULL) {
		drop_link(d->sess, "cannot serve the partner's read");
		return;
	}
	if ((x->buf = data_buf(d, rg->length)) == NULL) {
		xfer_free(x);
		drop_link(d->sess, "out of memory");
		return;
	}
	x->id = rg->request_id;
	x->reply = m->type == PROTO_RESYNC_READ ? PROTO_RESYNC_DATA
	           : m->type == PROTO_VERIFY  ? PROTO_VERIFY_DIGEST
	                                      : PROTO_DIGEST_DATA;
	x->block_size = rg->block_size;
	lock(x, peer_read_granted);
}

static void peer_flush_done(struct xfer *x)
{
	send_xfer_ack(x, PROTO_FLUSH_ACK);
	xfer_free(x);
}

static void on_peer_flush(struct ha_device *d, const struct proto_msg *m)
{
	struct xfer *x = xfer_new(d, X_PEER_FLUSH, 0, 0);

	if (x == NULL) {
		send_ack(d, PROTO_FLUSH_ACK, m->u.flush.request_id, -ENOMEM);
		return;
	}
	x->id = m->u.flush.request_id;
	local_io(x, peer_flush_done);
}

static void resync_finish(struct xfer *x, int err, const char *what);

static void on_ack(struct ha_device *d, const struct proto_msg *m)
{
	struct xfer *x = find_waiting(d, m->u.ack.request_id);
	int err = status_errno(m->u.ack.status);

	if (x == NULL) {
		log_warn("ha %s: %s for unknown request %llu", d->name, proto_type_name(m->type),
		         (unsigned long long)m->u.ack.request_id);
		return;
	}
	if (x->kind == X_RESYNC) {
		/* the target wrote one piece of our RESYNC_DATA */
		if (err != 0 && x->remote_err == 0)
			x->remote_err = err;
		if (--x->parts == 0) {
			x->wait_remote = false;
			resync_finish(x, x->remote_err, "the partner's resync write");
		}
		return;
	}
	x->wait_remote = false;
	if (x->forwarded) {
		/* The primary ordered and wrote it: apply here in the order acks arrive. */
		if (err != 0) {
			unmark(x);
			if (err == -EILSEQ && x->kind == X_CAW)
				x->parent->io->miscompare = m->u.ack.miscompare;
			finish_initiator(x, err);
			return;
		}
		lock(x, forward_granted);
		return;
	}
	x->remote_done = true;
	x->remote_err = err;
	mutate_try_finish(x);
}

/* ---- resync (driven by the primary) ---------------------------------------------------- */

static void in_sync_reached(struct ha_device *d);

/* A resync or verify xfer whose session ended: its counters were reset with it. */
static bool stale_xfer(struct xfer *x)
{
	if (x->epoch == x->d->epoch)
		return false;
	xfer_free(x);
	return true;
}

/* The extent is done: copied, or compared and found equal (err 0), or failed. */
static void resync_finish(struct xfer *x, int err, const char *what)
{
	struct ha_device *d = x->d;

	if (err == 0) {
		d->sync_done += x->length;
		lazy_pages(d, activemap_sync_complete(d->am, x->offset, x->length));
	} else {
		log_err("ha %s: resync of %llu+%u failed: %s: %s", d->name, (unsigned long long)x->offset, x->length, what,
		        strerror(-err));
	}
	xfer_free(x);
	d->resync_inflight--;
	resync_pump(d);
}

static void resync_written(struct xfer *x)
{
	if (!stale_xfer(x))
		resync_finish(x, x->local_err, "local write");
}

/* Copies [offset, offset + length) of the xfer's extent: the source sends it from the
 * buffer read under the lock, the target asks for it.  The lock stays held until every
 * piece is answered: a write to the extent meanwhile would make the activemap copy it
 * again (it cannot tell that the stream orders it after the copy), and under steady
 * writes a resync would never end. */
/* This node's replica is the one copied from: the resync source, or, in sync, the
 * primary repairing an extent a write reached on one side only. */
static bool copies_from_here(const struct ha_device *d)
{
	return d->resyncing ? d->sync_source : is_primary(d);
}

static void resync_part(struct xfer *x, uint64_t offset, uint32_t length)
{
	struct ha_device *d = x->d;
	struct proto_msg m = {.type = copies_from_here(d) ? PROTO_RESYNC_DATA : PROTO_RESYNC_READ};

	if (copies_from_here(d)) {
		m.u.write = (struct proto_write){x->id, offset, length, 0, x->buf + (offset - x->offset)};
		d->sent_bytes += length;
	} else {
		m.u.range = (struct proto_range){x->id, offset, length, 0};
	}
	x->parts++;
	x->wait_remote = true;
	send_msg(d, &m);
}

static void resync_read_done(struct xfer *x)
{
	if (stale_xfer(x))
		return;
	if (x->local_err != 0)
		resync_finish(x, x->local_err, "local read");
	else
		resync_part(x, x->offset, x->length);
}

/* A suspect extent, once both this node's data and the partner's digests are in: the
 * chunks whose SHA-256 differ are copied (runs of them as one piece), the rest is left. */
static void resync_compare(struct xfer *x)
{
	struct ha_device *d = x->d;
	uint32_t run = 0, count = x->length / x->block_size;

	if (stale_xfer(x) || !x->local_done)
		return;
	/* Ours at once, while the partner computes its own: its answer then costs a compare. */
	if (x->local_err == 0 && x->mine == NULL) {
		if ((x->mine = malloc((size_t)count * SHA256_DIGEST_LENGTH)) == NULL)
			x->local_err = -ENOMEM;
		else
			strong_digests(x->buf, x->length, x->block_size, x->mine);
	}
	if (x->digests == NULL)
		return;
	if (x->local_err != 0) {
		resync_finish(x, x->local_err, "local read");
		return;
	}
	d->compared_bytes += x->length;
	for (uint32_t i = 0; i <= count; i++) {
		bool differs = false;

		if (i < count)
			differs = memcmp(x->mine + (size_t)i * SHA256_DIGEST_LENGTH,
			                 x->digests + (size_t)i * SHA256_DIGEST_LENGTH, SHA256_DIGEST_LENGTH) != 0;
		if (differs) {
			run++;
		} else if (run > 0) {
			resync_part(x, x->offset + (uint64_t)(i - run) * x->block_size, run * x->block_size);
			run = 0;
		}
	}
	if (x->parts == 0)
		resync_finish(x, 0, "");
}

static void on_digest_data(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_verify_digest *g = &m->u.digest;
	struct xfer *x = find_waiting(d, g->request_id);
	size_t len = (size_t)g->count * SHA256_DIGEST_LENGTH;

	if (x == NULL || x->kind != X_RESYNC || !x->suspect || g->offset != x->offset ||
	    g->block_size != x->block_size || (uint64_t)g->count * g->block_size != x->length ||
	    (x->digests = malloc(len)) == NULL) {
		drop_link(d->sess, "DIGEST_DATA answers no request");
		return;
	}
	x->wait_remote = false;
	memcpy(x->digests, g->digests, len);
	resync_compare(x);
}

/* The largest power of two up to HA_DIGEST_CHUNK that divides the extent's length; 0 if
 * that is below a sector (a device tail that can only be copied). */
static uint32_t digest_chunk(uint32_t length)
{
	uint32_t chunk = MIN(length & -length, HA_DIGEST_CHUNK);

	return chunk >= 512 ? chunk : 0;
}

static void resync_granted(struct order_req *req)
{
	struct xfer *x = container_of(req, struct xfer, ord);
	struct ha_device *d = x->d;

	if (stale_xfer(x))
		return;
	if (x->suspect) {
		/* Both sides read at this point of the order: the partner's read queues behind
		 * every write ordered before ours, and none after it can start while we hold it. */
		struct proto_msg m = {.type = PROTO_DIGEST_READ};

		m.u.range = (struct proto_range){x->id, x->offset, x->length, x->block_size};
		x->wait_remote = true;
		send_msg(d, &m);
		local_io(x, resync_compare);
	} else if (copies_from_here(d)) {
		local_io(x, resync_read_done);
	} else {
		resync_part(x, x->offset, x->length);
	}
}

static void on_resync_data_reply(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_write *w = &m->u.write;
	struct xfer *x = find_waiting(d, w->request_id);

	if (x != NULL && x->kind == X_PEER_CAW && w->offset == x->offset && w->length == x->length) {
		/* the bytes a COMPARE AND WRITE compares (caw_granted) */
		x->wait_remote = false;
		memcpy(x->buf, w->data, w->length);
		x->local_err = 0;
		peer_caw_read_done(x);
		return;
	}
	if (x == NULL || x->kind != X_RESYNC || x->parts == 0 || w->offset < x->offset ||
	    w->offset - x->offset >= x->length || w->length > x->length - (w->offset - x->offset)) {
		drop_link(d->sess, "RESYNC_DATA answers no request");
		return;
	}
	memcpy(x->buf + (w->offset - x->offset), w->data, w->length);
	d->received_bytes += w->length;
	if (--x->parts > 0)
		return;
	/* Chunks that were equal hold our own data, read under the lock: the whole extent can
	 * be written back at once. */
	x->wait_remote = false;
	x->resync_write = true;
	local_io(x, resync_written);
}

static void send_node_state(struct ha_device *d, bool serving, enum proto_state_reason why)
{
	struct proto_msg m = {.type = PROTO_STATE};

	m.u.state = (struct proto_state){PROTO_STATE_NODE, serving, (uint8_t)why, 0, NULL};
	send_msg(d, &m);
}

static void on_resync_timer(struct reactor_timer *t)
{
	struct ha_device *d = container_of(t, struct ha_device, resync_timer);

	d->resync_pass_started = 0;
	resync_pump(d);
}

static void resync_pump(struct ha_device *d)
{
	uint64_t off, len;
	bool suspect;

	/* In sync too: extents a write reached on one replica only are repaired at once. */
	if (!is_primary(d) || d->finishing || d->mode != MODE_REPLICATING ||
	    (!d->resyncing && d->sb.state != HA_SYNC_SYNCHRONIZED))
		return;
	while (d->resync_inflight < HA_RESYNC_DEPTH && d->resync_pass_started < HA_RESYNC_BURST &&
	       (d->resync_inflight == 0 || link_queued_bytes(sess_link(d)) < HA_RESYNC_MAX_QUEUED) &&
	       activemap_sync_next(d->am, &off, &len, &suspect)) {
		struct xfer *x = xfer_new(d, X_RESYNC, off, (uint32_t)len);

		if (x == NULL || (x->buf = data_buf(d, (uint32_t)len)) == NULL) {
			if (x)
				xfer_free(x);
			break; /* retried when a copy in flight completes */
		}
		x->block_size = digest_chunk((uint32_t)len);
		x->suspect = suspect && x->block_size != 0 && partner_digests(d);
		d->resync_inflight++;
		d->resync_pass_started++;
		lock(x, resync_granted);
	}
	if (d->resync_pass_started > 0 && !reactor_timer_armed(&d->resync_timer))
		reactor_timer_start(d->r, &d->resync_timer, 0, on_resync_timer);
	if (!d->resyncing || d->resync_inflight > 0 || activemap_dirty_count(d->am) > 0)
		return;
	d->finishing = true;
	if (!d->sync_source) {
		/* We were the target: adopt the source's finished identifiers, then tell it. */
		struct generation g = d->remote.gen;

		generation_sync_source_done(&g);
		generation_sync_target_done(&d->sb.gen, &g);
		save_sb(d);
		send_node_state(d, true, PROTO_REASON_NONE);
		in_sync_reached(d);
	} else {
		/* The target persists first; its answer lets us finish. */
		send_node_state(d, true, PROTO_REASON_NONE);
	}
}

static void in_sync_reached(struct ha_device *d)
{
	uint64_t secs = (now_ms() - d->sync_start_ms) / 1000;

	if (d->resyncing) {
		log_info("ha %s: resync finished as %s: %llu bytes in %llu s (tally: %llu sent, %llu received, %llu "
		         "compared by digest)", d->name, d->sync_source ? "source" : "target",
		         (unsigned long long)d->sync_done, (unsigned long long)secs, (unsigned long long)d->sent_bytes,
		         (unsigned long long)d->received_bytes, (unsigned long long)d->compared_bytes);
		emit(d, HA_EVENT_SYNC_FINISHED, "%llu bytes in %llu s", (unsigned long long)d->sync_done,
		     (unsigned long long)secs);
	}
	d->resyncing = false;
	d->finishing = false;
	d->sync_source = false;
	activemap_clear_all(d->am);
	mapsync_kick(d->ms);
	set_state(d, HA_SYNC_SYNCHRONIZED, HA_REASON_NONE);
	set_serving(d, true);
	if (d->granted && d->p.arbiter) {
		d->p.arbiter->release(d->p.arbiter->ctx, d->p.uuid);
		d->granted = false;
	}
	pump(d);
}

/* STATE {serving, NONE}: the partner finished its side of the resync. */
static void on_sync_done(struct ha_device *d)
{
	if (!d->resyncing) {
		log_warn("ha %s: the partner reports a resync finished, but none runs", d->name);
		return;
	}
	if (is_primary(d)) {
		if (d->sync_source && d->finishing) {
			generation_sync_source_done(&d->sb.gen);
			save_sb(d);
			in_sync_reached(d);
		}
		return;
	}
	if (d->sync_source) {
		generation_sync_source_done(&d->sb.gen);
		save_sb(d);
	} else {
		struct generation g = d->remote.gen;

		generation_sync_source_done(&g);
		generation_sync_target_done(&d->sb.gen, &g);
		save_sb(d);
		send_node_state(d, true, PROTO_REASON_NONE);
	}
	in_sync_reached(d);
}

static void start_resync(struct ha_device *d, bool source)
{
	d->resyncing = true;
	d->finishing = false;
	d->sync_source = source;
	d->sync_total = activemap_dirty_bytes(d->am);
	d->sync_done = 0;
	d->sync_start_ms = d->rate_mark_ms = now_ms();
	d->rate_mark_bytes = 0;
	d->rate_bps = 0;
	/* A target is inconsistent from the first copy on, durably. */
	if (!source)
		generation_sync_target_start(&d->sb.gen);
	set_state(d, HA_SYNC_SYNCHRONIZING, HA_REASON_NONE);
	save_sb(d);
	set_serving(d, source);
	log_info("ha %s: resync started as %s, %llu bytes (%llu of them only suspect: compared by digest first)",
	         d->name, source ? "source" : "target", (unsigned long long)d->sync_total,
	         (unsigned long long)activemap_suspect_bytes(d->am));
	emit(d, HA_EVENT_SYNC_STARTED, "%s, %llu bytes", source ? "source" : "target",
	     (unsigned long long)d->sync_total);
	resync_pump(d);
	pump(d);
}

/* ---- verify (driven by the primary) ---------------------------------------------------- */

static void verify_end(struct ha_device *d, const char *how)
{
	uint64_t blocks = d->verify_done_bytes / HA_VERIFY_BLOCK;

	d->verify_running = false;
	d->verify_done = true;
	log_info("ha %s: verify %s: %llu bytes compared, %llu blocks differ", d->name, how,
	         (unsigned long long)d->verify_done_bytes, (unsigned long long)d->verify_diff);
	emit(d, HA_EVENT_VERIFY_FINISHED, "%s: %llu blocks compared, %llu differ", how, (unsigned long long)blocks,
	     (unsigned long long)d->verify_diff);
}

static void send_verify(struct xfer *x)
{
	struct proto_msg m = {.type = PROTO_VERIFY};

	m.u.range = (struct proto_range){x->id, x->offset, x->length, x->block_size};
	x->wait_remote = true;
	send_msg(x->d, &m);
}

/* Compares the local blocks in x->buf with the partner's digests (x->digests) and ends
 * the chunk. */
static void verify_compare(struct xfer *x)
{
	struct ha_device *d = x->d;
	struct proto_verify_digest g = {.block_size = x->block_size, .count = x->length / x->block_size,
	                                .digests = x->digests};

	if (stale_xfer(x))
		return;
	if (x->local_err != 0) {
		xfer_free(x);
		d->verify_inflight--;
		if (d->verify_running)
			verify_end(d, "failed (local read error)");
		return;
	}
	for (uint32_t i = 0; i < g.count; i++) {
		if (crc32c(x->buf + (size_t)i * g.block_size, g.block_size) != proto_digest_at(&g, i)) {
			d->verify_diff++;
			log_warn("ha %s: verify: block at byte %llu (%u bytes) differs from the partner's", d->name,
			         (unsigned long long)(x->offset + (uint64_t)i * g.block_size), g.block_size);
		}
	}
	d->verify_done_bytes += x->length;
	xfer_free(x);
	d->verify_inflight--;
	verify_pump(d);
}

/* The primary reads under its lock first and keeps the lock until the digests are back. */
static void verify_read_done(struct xfer *x)
{
	if (x->local_err != 0 || x->digests != NULL)
		verify_compare(x);
	else if (!stale_xfer(x))
		send_verify(x);
}

static void verify_granted(struct order_req *req)
{
	struct xfer *x = container_of(req, struct xfer, ord);

	if (!stale_xfer(x))
		local_io(x, verify_read_done);
}

/* A secondary reads when the digests arrive, under its lock taken at that point of the
 * stream: every write the primary ordered before its read is applied here before ours,
 * none ordered after it is. */
static void on_verify_digest(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_verify_digest *g = &m->u.digest;
	struct xfer *x = find_waiting(d, g->request_id);

	if (x == NULL || x->kind != X_VERIFY || g->offset != x->offset || g->block_size != x->block_size ||
	    (uint64_t)g->count * g->block_size != x->length || (x->digests = malloc((size_t)g->count * 4)) == NULL) {
		drop_link(d->sess, "VERIFY_DIGEST answers no request");
		return;
	}
	x->wait_remote = false;
	memcpy(x->digests, g->digests, (size_t)g->count * 4);
	if (is_primary(d))
		verify_compare(x);
	else
		lock(x, verify_granted);
}

static void verify_pump(struct ha_device *d)
{
	while (d->verify_running && d->verify_inflight < 2 && d->verify_cursor < d->sb.size) {
		uint32_t len = (uint32_t)MIN((uint64_t)HA_VERIFY_CHUNK, d->sb.size - d->verify_cursor);
		uint32_t bs = len % HA_VERIFY_BLOCK == 0 ? HA_VERIFY_BLOCK : 512;
		struct xfer *x;

		if (len % bs != 0) {
			d->verify_cursor = d->sb.size; /* a tail smaller than a sector: nothing to compare */
			break;
		}
		if ((x = xfer_new(d, X_VERIFY, d->verify_cursor, len)) == NULL || (x->buf = iobuf_alloc(len)) == NULL) {
			if (x)
				xfer_free(x);
			verify_end(d, "failed (out of memory)");
			return;
		}
		x->block_size = bs;
		d->verify_cursor += len;
		d->verify_inflight++;
		if (is_primary(d))
			lock(x, verify_granted);
		else
			send_verify(x);
	}
	if (d->verify_running && d->verify_inflight == 0 && d->verify_cursor >= d->sb.size)
		verify_end(d, "finished");
}

/* ---- meeting the partner ------------------------------------------------------------------ */

static void decide_failover(struct ha_device *d);
static void session_end(struct ha_device *d, const char *why, bool orderly);

static void send_meeting(struct ha_device *d)
{
	struct proto_msg m = {.type = PROTO_GENERATIONS};
	struct proto_generations *g = &m.u.generations;

	g->gen = d->sb.gen;
	g->sync_state = d->serving && d->mode != MODE_REPLICATING ? PROTO_SYNC_ALONE : PROTO_SYNC_IN_SYNC;
	g->initial_sync = (uint8_t)d->sb.initial_sync;
	g->failover = (uint8_t)d->p.failover;
	g->flags = d->serving ? PROTO_GEN_SERVING : 0;
	g->device_size = d->sb.size;
	g->extent_size = d->sb.extent_size;
	send_msg(d, &m);
	for (uint32_t p = 0; p < activemap_page_count(d->am); p++) {
		uint64_t version;
		struct proto_msg b = {.type = PROTO_BITMAP};

		b.u.bitmap = (struct proto_bitmap){(uint64_t)p * ACTIVEMAP_PAGE_SIZE, ACTIVEMAP_PAGE_SIZE,
		                                   activemap_page(d->am, p, &version)};
		send_msg(d, &b);
	}
	for (uint32_t p = 0; partner_digests(d) && p < activemap_page_count(d->am); p++) {
		uint8_t page[ACTIVEMAP_PAGE_SIZE];
		struct proto_msg b = {.type = PROTO_BITMAP_KNOWN};

		activemap_known_image(d->am, p, page);
		b.u.bitmap = (struct proto_bitmap){(uint64_t)p * ACTIVEMAP_PAGE_SIZE, ACTIVEMAP_PAGE_SIZE, page};
		send_msg(d, &b); /* copied by the link */
	}
}

static void start_session(struct ha_device *d, struct dlink *s)
{
	resolve_orphans(d, ORPHAN_FAIL);
	d->sess = s;
	d->got_gens = false;
	d->rbitmap_got = d->rknown_got = 0;
	reactor_timer_cancel(d->r, &d->claim_timer);
	reactor_timer_cancel(d->r, &d->lease_timer);
	set_mode(d, MODE_MEETING);
	log_info("ha %s: meeting the partner on sync link %u", d->name, s->index);
	emit(d, HA_EVENT_PARTNER_CONNECTED, "sync %u", s->index);
	send_meeting(d);
}

/* A new round of the meeting on the same link (after an operator resolved a split brain). */
static void restart_meeting(struct ha_device *d)
{
	d->got_gens = false;
	d->rbitmap_got = d->rknown_got = 0;
	set_mode(d, MODE_MEETING);
	send_meeting(d);
}

static bool fresh(const struct generation *g)
{
	return g->current != 0 && g->bitmap == 0 && g->history[0] == 0 && g->history[1] == 0 &&
	       !(g->flags & GENERATION_INCONSISTENT);
}

static bool usable_alone(const struct ha_device *d)
{
	const struct ha_meta_super *sb = &d->sb;

	if (sb->gen.current == 0 || (sb->gen.flags & GENERATION_INCONSISTENT))
		return false;
	if (sb->state != HA_SYNC_NOT_SYNCHRONIZED)
		return true;
	return sb->reason == HA_REASON_PARTNER_LOST || (sb->reason == HA_REASON_NEW_REPLICA && is_primary(d));
}

/* The extents this node changed that the partner may lack: for the split-brain report. */
static void report_divergence(struct ha_device *d, const char *who)
{
	uint64_t from = 0, off, len, total = 0;
	unsigned runs = 0;

	while (from < d->sb.size && activemap_next_dirty(d->am, from, &off, &len)) {
		if (runs < 32)
			log_warn("ha %s: %s: bytes %llu..%llu may differ from the partner's", d->name, who,
			         (unsigned long long)off, (unsigned long long)(off + len - 1));
		runs++;
		total += len;
		from = off + len;
	}
	log_warn("ha %s: %s: %llu bytes in %u runs may differ", d->name, who, (unsigned long long)total, runs);
}

static void park(struct ha_device *d, enum ha_sync_reason why, bool keep_serving)
{
	set_mode(d, MODE_PARKED);
	set_state(d, HA_SYNC_NOT_SYNCHRONIZED, why);
	set_serving(d, keep_serving);
	pump(d);
}

static void enter_replicating(struct ha_device *d)
{
	set_mode(d, MODE_REPLICATING);
	d->alone_gen_done = false;
	activemap_partner_back(d->am);
	mapsync_kick(d->ms); /* the partner's extents too: a crash now still resyncs them */
}

static void zero_done(struct xfer *x)
{
	struct ha_device *d = x->d;
	int err = x->local_err;

	xfer_free(x);
	if (err != 0) {
		log_err("ha %s: cannot zero the replica for initial sync: %s", d->name, strerror(-err));
		return;
	}
	log_info("ha %s: replica zeroed for the initial sync", d->name);
	if (is_primary(d))
		return;
	generation_new_partner(&d->remote.gen, GENERATION_SYNC_CLEAR, &d->sb.gen);
	save_sb(d);
	in_sync_reached(d);
}

static void zero_granted(struct order_req *req)
{
	local_io(container_of(req, struct xfer, ord), zero_done);
}

/* Zeroes the whole replica under the order lock: later mutations wait for it. */
static int start_zeroing(struct ha_device *d)
{
	struct xfer *x = xfer_new(d, X_ZERO, 0, 0);

	if (x == NULL)
		return -1;
	/* The device may exceed an xfer's 32-bit length: the lock and the discard cover it all. */
	x->ord.offset = 0;
	x->ord.length = d->sb.size;
	x->ord.granted = zero_granted;
	x->locked = true;
	order_lock(d->order, &x->ord);
	return 0;
}

/* A blank secondary meets a fresh primary: take its generation as the initial sync says. */
static void adopt_creator(struct ha_device *d)
{
	enter_replicating(d);
	channel_up(d, false);
	activemap_clear_all(d->am);
	if (d->remote.initial_sync == HA_INITIAL_NONE) {
		log_info("ha %s: new replica declared identical to the partner's (initial sync none)", d->name);
		generation_new_partner(&d->remote.gen, GENERATION_SYNC_NONE, &d->sb.gen);
		save_sb(d);
		in_sync_reached(d);
		return;
	}
	log_info("ha %s: new replica: zeroing it (initial sync clear)", d->name);
	set_state(d, HA_SYNC_SYNCHRONIZING, HA_REASON_NONE);
	set_serving(d, false);
	if (start_zeroing(d) != 0)
		park(d, HA_REASON_NEW_REPLICA, false);
}

static void decide(struct ha_device *d)
{
	const struct proto_generations *rg = &d->remote;
	bool was_serving = d->serving, source;
	enum generation_verdict v;

	if (rg->device_size != d->sb.size || rg->extent_size != d->sb.extent_size) {
		log_err("ha %s: the partner's device is %llu bytes in %u-byte extents, ours %llu in %u: refusing",
		        d->name, (unsigned long long)rg->device_size, rg->extent_size, (unsigned long long)d->sb.size,
		        d->sb.extent_size);
		park(d, HA_REASON_UNRELATED, was_serving);
		return;
	}
	if (rg->failover != d->p.failover)
		log_warn("ha %s: the partner's failover strategy is %s, ours %s: each node follows its own", d->name,
		         ha_failover_name(rg->failover), ha_failover_name(d->p.failover));
	if (!is_primary(d) && d->sb.gen.current == 0 && fresh(&rg->gen) && rg->initial_sync != HA_INITIAL_COPY) {
		adopt_creator(d);
		return;
	}
	if (is_primary(d) && rg->gen.current == 0 && fresh(&d->sb.gen) && d->sb.initial_sync != HA_INITIAL_COPY) {
		log_info("ha %s: the partner's new replica adopts ours (initial sync %s)", d->name,
		         d->sb.initial_sync == HA_INITIAL_CLEAR ? "clear" : "none");
		/* Only once: a partner that comes back blank later (it crashed while zeroing, or
		 * it was replaced) must get a full copy of what was written since. */
		d->sb.initial_sync = HA_INITIAL_COPY;
		save_sb(d);
		enter_replicating(d);
		channel_up(d, true);
		in_sync_reached(d);
		return;
	}
	v = generation_compare(&d->sb.gen, &rg->gen);
	log_info("ha %s: met the partner: %s", d->name, generation_verdict_name(v));
	switch (v) {
	case GENERATION_SPLIT_BRAIN:
		report_divergence(d, "split brain, changed here");
		emit(d, HA_EVENT_SPLIT_BRAIN, "both nodes wrote while apart: %llu bytes changed here; resolve on either node",
		     (unsigned long long)activemap_dirty_bytes(d->am));
		/* One node serving a degraded device at most, so multipath never sees two histories. */
		park(d, HA_REASON_SPLIT_BRAIN, was_serving && (is_primary(d) || !(rg->flags & PROTO_GEN_SERVING)));
		return;
	case GENERATION_UNRELATED:
		log_err("ha %s: the partner's replica shares no history with ours: refusing to sync", d->name);
		park(d, HA_REASON_UNRELATED, was_serving);
		return;
	case GENERATION_NO_SOURCE:
		log_err("ha %s: neither replica is complete: refusing to sync", d->name);
		park(d, HA_REASON_NO_SOURCE, was_serving);
		return;
	default:
		break;
	}
	activemap_merge(d->am, 0, d->rbitmap, activemap_ondisk_size(d->am));
	activemap_merge_known(d->am, 0, d->rknown, activemap_ondisk_size(d->am));
	if (v == GENERATION_FULL_FROM_LOCAL || v == GENERATION_FULL_FROM_REMOTE)
		activemap_mark_all(d->am);
	enter_replicating(d);
	source = v == GENERATION_LOCAL_NEWER || v == GENERATION_FULL_FROM_LOCAL ||
	         (v == GENERATION_IN_SYNC && is_primary(d));
	channel_up(d, source);
	if (v == GENERATION_IN_SYNC && activemap_dirty_count(d->am) == 0) {
		generation_sync_source_done(&d->sb.gen);
		save_sb(d);
		in_sync_reached(d);
		return;
	}
	start_resync(d, source);
}

static void on_generations(struct ha_device *d, struct dlink *s, const struct proto_msg *m)
{
	if (d->sess == NULL && (d->mode == MODE_WAITING || d->mode == MODE_ALONE || d->mode == MODE_STOPPED)) {
		start_session(d, s);
	} else if (s != d->sess) {
		/* The partner saw the session link die first: follow it to this one. */
		log_info("ha %s: the partner moved the session to sync link %u", d->name, s->index);
		d->next_sess = s;
		session_end(d, "the partner moved the session to another sync link", false);
		d->next_sess = NULL;
		if (d->sess != s)
			return;
	} else if (d->mode == MODE_PARKED) {
		restart_meeting(d);
	} else if (d->mode != MODE_MEETING || d->got_gens) {
		drop_link(s, "GENERATIONS in the middle of a session");
		return;
	}
	d->remote = m->u.generations;
	d->got_gens = true;
	d->rbitmap_got = d->rknown_got = 0;
}

static void on_bitmap(struct ha_device *d, const struct proto_msg *m)
{
	const struct proto_bitmap *b = &m->u.bitmap;
	size_t size = activemap_ondisk_size(d->am);

	bool known = m->type == PROTO_BITMAP_KNOWN;

	if (d->mode != MODE_MEETING || !d->got_gens || b->offset > size || b->length > size - b->offset ||
	    (known && d->rbitmap_got < size)) {
		drop_link(d->sess, "BITMAP out of place");
		return;
	}
	memcpy((known ? d->rknown : d->rbitmap) + b->offset, b->bytes, b->length);
	*(known ? &d->rknown_got : &d->rbitmap_got) += b->length;
	if (!partner_digests(d) && d->rbitmap_got >= size) {
		/* an older partner: every extent it marked is copied */
		memcpy(d->rknown, d->rbitmap, size);
		d->rknown_got = size;
	}
	if (d->rknown_got >= size)
		decide(d);
}

/* ---- losing the partner and failing over ----------------------------------------------- */

/* Requests that waited for the partner when it went.  Alone, this node's replica is the
 * data: a write the primary ordered is in it already, one the secondary forwarded is
 * written here now (under the new generation).  Otherwise they fail, retryable: whether
 * the partner has them is unknown, and a write acknowledged before the resync copied it
 * could be missing on a partner that then goes on alone. */
static void resolve_orphans(struct ha_device *d, enum orphan_fate fate)
{
	struct xfer *x;

again:
	for (x = d->xfers; x != NULL; x = x->next) {
		if (!x->orphan)
			continue;
		x->orphan = false;
		if (x->forwarded) {
			if (fate == ORPHAN_ALONE && ensure_alone_gen(d) == 0) {
				/* Ours is the data now: a COMPARE AND WRITE compares against it. */
				x->forwarded = false;
				lock(x, x->kind == X_CAW ? caw_granted : forward_granted);
			} else {
				unmark(x);
				finish_initiator(x, -ENOTCONN);
			}
		} else {
			x->remote_done = true;
			x->remote_err = fate == ORPHAN_ALONE ? ensure_alone_gen(d) : -ENOTCONN;
			mutate_try_finish(x);
		}
		goto again;
	}
}

static void go_alone(struct ha_device *d);

static void on_lease_timer(struct reactor_timer *t)
{
	struct ha_device *d = container_of(t, struct ha_device, lease_timer);

	/* Unless the partner came back or the decision changed meanwhile. */
	if (d->mode == MODE_WAITING && d->sess == NULL)
		go_alone(d);
}

static void go_alone(struct ha_device *d)
{
	uint64_t now = now_ms();

	if (now < d->partner_lease_end_ms) {
		/* The partner may still serve reads that would miss writes taken alone. */
		set_serving(d, false);
		reactor_timer_start(d->r, &d->lease_timer, (unsigned)(d->partner_lease_end_ms - now), on_lease_timer);
		return;
	}
	set_mode(d, MODE_ALONE);
	set_state(d, HA_SYNC_NOT_SYNCHRONIZED, HA_REASON_PARTNER_LOST);
	set_serving(d, true);
	log_info("ha %s: serving alone (failover strategy %s)", d->name, ha_failover_name(d->p.failover));
	reactor_timer_cancel(d->r, &d->claim_timer);
	resolve_orphans(d, ORPHAN_ALONE);
	pump(d);
}

static void stop_node(struct ha_device *d, enum ha_sync_reason why)
{
	set_mode(d, MODE_STOPPED);
	set_state(d, HA_SYNC_NOT_SYNCHRONIZED, why);
	set_serving(d, false);
	log_warn("ha %s: stopped serving: %s", d->name, ha_sync_reason_name(why));
	resolve_orphans(d, ORPHAN_FAIL);
	pump(d);
}

static void on_verdict(void *arg, bool granted)
{
	struct ha_device *d = arg;

	d->claim_pending = false;
	d->granted = granted;
	log_info("ha %s: the witness %s this node's claim", d->name, granted ? "granted" : "refused or withdrew");
	if (d->mode == MODE_WAITING || d->mode == MODE_ALONE) {
		if (granted)
			go_alone(d);
		else
			stop_node(d, HA_REASON_FAILOVER_STOPPED);
	} else if (granted && d->p.arbiter) {
		/* The partner came back before the answer: the vote is not needed. */
		d->p.arbiter->release(d->p.arbiter->ctx, d->p.uuid);
		d->granted = false;
	}
}

static void claim(struct ha_device *d)
{
	const struct ha_arbiter *a = d->p.arbiter;

	if (a == NULL) {
		log_err("ha %s: majority strategy without a witness: stopping", d->name);
		stop_node(d, HA_REASON_FAILOVER_STOPPED);
		return;
	}
	d->claim_pending = true;
	a->claim(a->ctx, d->p.uuid, d->p.node_id, &d->sb.gen, on_verdict, d);
}

/* The secondary's pause before its failover decision (see decide_failover()). */
static void on_claim_timer(struct reactor_timer *t)
{
	struct ha_device *d = container_of(t, struct ha_device, claim_timer);

	if (d->mode != MODE_WAITING || d->sess != NULL)
		return;
	if (d->p.failover == HA_FAILOVER_HEARTBEAT) {
		d->grace_over = true;
		decide_failover(d);
		d->grace_over = false;
	} else if (!d->claim_pending) {
		claim(d);
	}
}

static bool any_up(const struct dlink *links, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (links[i].up)
			return true;
	}
	return false;
}

/* True if this node's own loop stood still for a timeout lately (SIGSTOP, a VM pause):
 * the silence it saw was its own, and the partner has probably gone on alone. */
static bool stalled_lately(struct ha_device *d)
{
	uint64_t now = now_ms();

	return now - d->alive_ms > d->p.timeout_ms || (d->stalled_ms != 0 && now - d->stalled_ms < 2ull * d->p.timeout_ms);
}

static void on_alive_timer(struct reactor_timer *t)
{
	struct ha_device *d = container_of(t, struct ha_device, alive_timer);
	uint64_t now = now_ms();

	if (now - d->alive_ms > d->p.timeout_ms) {
		d->stalled_ms = now;
		log_warn("ha %s: this node stood still for %llu ms", d->name, (unsigned long long)(now - d->alive_ms));
	}
	d->alive_ms = now;
	if (d->resyncing && now - d->rate_mark_ms >= HA_RATE_WINDOW_MS) {
		d->rate_bps = (d->sync_done - d->rate_mark_bytes) * 1000 / (now - d->rate_mark_ms);
		d->rate_mark_ms = now;
		d->rate_mark_bytes = d->sync_done;
	}
	reactor_timer_start(d->r, t, d->p.ping_interval_ms, on_alive_timer);
}

static void decide_failover(struct ha_device *d)
{
	if (d->closing || d->sess != NULL)
		return;
	if (d->next_sess != NULL && d->next_sess->up) {
		start_session(d, d->next_sess);
		return;
	}
	/* The partner is reachable on a standby sync link: meet it there. */
	for (unsigned i = 0; i < d->p.n_sync_links; i++) {
		if (d->sync[i].up) {
			start_session(d, &d->sync[i]);
			return;
		}
	}
	if (d->mode == MODE_STOPPED || d->mode == MODE_ALONE)
		return;
	set_mode(d, MODE_WAITING);
	if (!usable_alone(d)) {
		stop_node(d, d->sb.state == HA_SYNC_NOT_SYNCHRONIZED ? d->sb.reason : HA_REASON_PARTNER_LOST);
		return;
	}
	if (d->p.failover == HA_FAILOVER_HEARTBEAT) {
		if (stalled_lately(d)) {
			log_warn("ha %s: the partner fell silent while this node stood still: it may serve alone now", d->name);
			stop_node(d, HA_REASON_FAILOVER_STOPPED);
		} else if (is_primary(d)) {
			go_alone(d);
		} else if (!d->grace_over) {
			/* A primary that died takes its heartbeat links with it a moment later, and
			 * links that were only reset come back as soon as the primary dials again:
			 * a timeout of patience before concluding either way. */
			if (!reactor_timer_armed(&d->claim_timer)) {
				set_serving(d, false);
				reactor_timer_start(d->r, &d->claim_timer, d->p.timeout_ms, on_claim_timer);
			}
		} else if (any_up(d->hb, d->p.n_heartbeat_links)) {
			stop_node(d, HA_REASON_FAILOVER_STOPPED);
		} else {
			go_alone(d);
		}
		return;
	}
	if (d->granted) {
		go_alone(d);
		return;
	}
	set_serving(d, false);
	if (d->claim_pending || reactor_timer_armed(&d->claim_timer))
		return;
	/* A live primary claims first and wins the race. */
	if (is_primary(d))
		claim(d);
	else
		reactor_timer_start(d->r, &d->claim_timer, d->p.timeout_ms / 2, on_claim_timer);
}

/* orderly: the partner shut down with GOODBYE, so every reply it owed us has arrived. */
static void session_end(struct ha_device *d, const char *why, bool orderly)
{
	struct xfer *x;

	if (d->sess == NULL)
		return;
	log_warn("ha %s: partner lost: %s", d->name, why);
	emit(d, HA_EVENT_PARTNER_LOST, "%s", why);
	d->sess = NULL;
	d->epoch++;
	channel_down(d);
	/* In sync, what completed reached both; only writes still in flight (and writes that
	 * failed on one side) stay marked.  After a crash nobody knows what the partner
	 * applied: every set bit stays. */
	if (orderly && d->mode == MODE_REPLICATING && d->sb.state == HA_SYNC_SYNCHRONIZED)
		activemap_clear_suspect(d->am);
	activemap_partner_lost(d->am);
	if (d->verify_running)
		verify_end(d, "aborted (partner lost)");
	if (d->resyncing) {
		log_warn("ha %s: resync interrupted at %llu of %llu bytes", d->name, (unsigned long long)d->sync_done,
		         (unsigned long long)d->sync_total);
		d->resyncing = false;
		d->finishing = false;
	}
	/* One at a time from the head: freeing releases locks, whose grants may free others. */
	for (;;) {
		for (x = d->xfers; x != NULL && !x->wait_remote; x = x->next)
			;
		if (x == NULL)
			break;
		x->wait_remote = false;
		/* One with its local I/O in flight is freed when that ends (a stale xfer); a
		 * COMPARE AND WRITE's asker is gone with the session. */
		if (((x->kind == X_RESYNC || x->kind == X_VERIFY) && !x->local_busy) || x->kind == X_PEER_CAW)
			xfer_free(x);
		else if (x->kind != X_RESYNC && x->kind != X_VERIFY)
			x->orphan = true;
	}
	d->resync_inflight = 0;
	d->verify_inflight = 0;
	/* A node that went on alone before a refused meeting still does. */
	set_mode(d, d->mode == MODE_PARKED && d->serving ? MODE_ALONE : MODE_WAITING);
	decide_failover(d);
	pump(d);
}

static void on_start_timer(struct reactor_timer *t)
{
	struct ha_device *d = container_of(t, struct ha_device, start_timer);

	if (d->mode == MODE_WAITING && d->sess == NULL) {
		log_info("ha %s: no partner since the start", d->name);
		decide_failover(d);
	}
}

/* ---- links ------------------------------------------------------------------------------ */

static struct dlink *slot_of(struct ha_device *d, enum proto_link_kind kind, unsigned index)
{
	if (kind == PROTO_LINK_SYNC && index < d->p.n_sync_links)
		return &d->sync[index];
	if (kind == PROTO_LINK_HEARTBEAT && index < d->p.n_heartbeat_links)
		return &d->hb[index];
	return NULL;
}

static const char *kind_name(enum proto_link_kind k)
{
	return k == PROTO_LINK_SYNC ? "sync" : "heartbeat";
}

static void on_link_up(void *arg, struct link *l)
{
	struct dlink *s = arg;
	struct ha_device *d = s->d;

	if (s->candidate == l) {
		/* The newer connection proved the secret: the partner restarted or redialed. */
		s->candidate = NULL;
		drop_link(s, "replaced by a new connection");
		s->l = l;
	}
	if (s->l != l)
		return;
	s->up = true;
	emit(d, HA_EVENT_LINK_UP, "%s %u", kind_name(s->kind), s->index);
	if (s->kind == PROTO_LINK_SYNC && d->sess == NULL &&
	    (d->mode == MODE_WAITING || d->mode == MODE_ALONE || d->mode == MODE_STOPPED))
		start_session(d, s);
}

/* The slot's link is gone (lost, or closed by us): forget it and end what it carried. */
static void link_gone(struct dlink *s, const char *why, bool peer_shut_down)
{
	struct ha_device *d = s->d;

	/* A partner that said GOODBYE serves nothing more; otherwise it may, until its read
	 * lease from our last answer on the session's link runs out. */
	if (s == d->sess && !peer_shut_down && s->l != NULL)
		d->partner_lease_end_ms = link_answer_given_ms(s->l) + read_lease_ms(d);
	s->l = NULL;
	s->up = false;
	emit(d, HA_EVENT_LINK_DOWN, "%s %u: %s", kind_name(s->kind), s->index, why);
	if (s == d->sess)
		session_end(d, why, peer_shut_down);
	else if (d->mode == MODE_WAITING && !reactor_timer_armed(&d->start_timer))
		decide_failover(d);
}

/* Closes the slot's link on a protocol fault of ours to report (link_close() calls no
 * `lost`, so the slot is cleaned here). */
static void drop_link(struct dlink *s, const char *why)
{
	struct link *l = s != NULL ? s->l : NULL;

	if (l == NULL)
		return;
	link_close(l, why);
	link_gone(s, why, false);
}

static void on_link_lost(void *arg, struct link *l, const char *why)
{
	struct dlink *s = arg;

	if (s->candidate == l) {
		s->candidate = NULL;
		return;
	}
	if (s->l != l)
		return;
	link_gone(s, why, link_peer_shut_down(l));
}

static void on_resync_data(struct ha_device *d, const struct proto_msg *m)
{
	if (is_primary(d))
		on_resync_data_reply(d, m); /* the primary is a target: the answer to its RESYNC_READ */
	else
		on_peer_write(d, m);
}

static void on_state(struct ha_device *d, const struct proto_msg *m)
{
	if (m->u.state.kind == PROTO_STATE_SCSI) {
		if (d->chan_up && d->chan != NULL)
			d->chan->message(d->chan_ctx, m->u.state.body, m->u.state.length);
		return;
	}
	if (m->u.state.reason == PROTO_REASON_NONE && m->u.state.serving)
		on_sync_done(d);
	else if (m->u.state.reason == PROTO_REASON_OPERATOR && m->u.state.serving)
		ha_device_resolve_split_brain(d, false, NULL, 0);
}

/* What the session link carries once the partner is met (GENERATIONS opens it). */
static void (*const session_handlers[PROTO_TYPE_END])(struct ha_device *d, const struct proto_msg *m) = {
	[PROTO_BITMAP] = on_bitmap,
	[PROTO_BITMAP_KNOWN] = on_bitmap,
	[PROTO_WRITE] = on_peer_write,
	[PROTO_RESYNC_DATA] = on_resync_data,
	[PROTO_WRITE_ACK] = on_ack,
	[PROTO_FLUSH_ACK] = on_ack,
	[PROTO_COMPARE_AND_WRITE] = on_peer_caw,
	[PROTO_COMPARE_AND_WRITE_ACK] = on_ack,
	[PROTO_FLUSH] = on_peer_flush,
	[PROTO_RESYNC_READ] = on_peer_read,
	[PROTO_VERIFY] = on_peer_read,
	[PROTO_VERIFY_DIGEST] = on_verify_digest,
	[PROTO_DIGEST_READ] = on_peer_read,
	[PROTO_DIGEST_DATA] = on_digest_data,
	[PROTO_STATE] = on_state,
};

static void on_link_message(void *arg, struct link *l, const struct proto_msg *m)
{
	struct dlink *s = arg;
	struct ha_device *d = s->d;

	if (s->l != l || s->kind != PROTO_LINK_SYNC)
		return; /* heartbeat links carry only what the link itself answers */
	if (m->type == PROTO_GENERATIONS) {
		on_generations(d, s, m);
		return;
	}
	if (s != d->sess) {
		log_warn("ha %s: %s on standby sync link %u ignored", d->name, proto_type_name(m->type), s->index);
		return;
	}
	if (m->type < PROTO_TYPE_END && session_handlers[m->type] != NULL)
		session_handlers[m->type](d, m);
	else
		log_warn("ha %s: unexpected %s from the partner", d->name, proto_type_name(m->type));
}

static const struct link_ops dlink_ops = {
	.up = on_link_up,
	.message = on_link_message,
	.lost = on_link_lost,
};

void ha_device_add_link(struct ha_device *d, int fd, enum proto_link_kind kind, unsigned index)
{
	struct dlink *s = slot_of(d, kind, index);
	struct link_config cfg = {
		.hs = {
			.secret = d->secret, .secret_len = d->p.secret_len, .node_id = d->p.node_id,
			.role = is_primary(d) ? PROTO_ROLE_PRIMARY : PROTO_ROLE_SECONDARY, .link_kind = (uint8_t)kind,
			.rng = handshake_rng_openssl,
		},
		.max_payload = kind == PROTO_LINK_SYNC ? PROTO_MAX_PAYLOAD : HA_HEARTBEAT_MAX_PAYLOAD,
		.ping_interval_ms = d->p.ping_interval_ms,
		.timeout_ms = d->p.timeout_ms,
	};
	const char *why;

	if (s == NULL || d->closing) {
		log_err("ha %s: no %s link %u configured: connection closed", d->name, kind_name(kind), index);
		close(fd);
		return;
	}
	memcpy(cfg.hs.device_uuid, d->p.uuid, sizeof(cfg.hs.device_uuid));
	if (s->candidate != NULL) {
		link_close(s->candidate, "replaced by a newer connection");
		s->candidate = NULL;
	}
	struct link *l = link_start(d->r, fd, &cfg, &dlink_ops, s, &why);

	if (l == NULL)
		log_err("ha %s: cannot start %s link %u: %s", d->name, kind_name(kind), index, why);
	else if (s->l == NULL)
		s->l = l;
	else
		s->candidate = l;
}

bool ha_device_link_connected(const struct ha_device *d, enum proto_link_kind kind, unsigned index)
{
	const struct dlink *s = slot_of((struct ha_device *)d, kind, index);

	return s != NULL && s->l != NULL;
}

/* ---- open, close, status ------------------------------------------------------------------ */

static void ha_close(void *impl)
{
	struct ha_device *d = impl;
	struct xfer *x;

	d->closing = true;
	reactor_timer_cancel(d->r, &d->start_timer);
	reactor_timer_cancel(d->r, &d->claim_timer);
	reactor_timer_cancel(d->r, &d->flow_timer);
	reactor_timer_cancel(d->r, &d->pages_timer);
	reactor_timer_cancel(d->r, &d->resync_timer);
	reactor_timer_cancel(d->r, &d->alive_timer);
	reactor_timer_cancel(d->r, &d->lease_timer);
	for (unsigned i = 0; i < 2 * HA_MAX_LINKS; i++) {
		struct dlink *s = i < HA_MAX_LINKS ? &d->sync[i] : &d->hb[i - HA_MAX_LINKS];

		if (s->l)
			link_close(s->l, "device closed");
		if (s->candidate)
			link_close(s->candidate, "device closed");
		s->l = s->candidate = NULL;
	}
	/* In sync, the partner marks whatever it writes from now on: extents idle here need
	 * no resync after a restart (extents with writes in flight, or known to differ, stay
	 * set). */
	if (d->mode == MODE_REPLICATING && d->sb.state == HA_SYNC_SYNCHRONIZED)
		activemap_clear_suspect(d->am);
	mapsync_free(d->ms);
	save_pages(d);
	save_sb(d);
	while ((x = waitq_pop(d)) != NULL) {
		xfer_link(x);
		finish_initiator(x, -ENOTCONN);
	}
	/* Nothing may be granted any more: the locks go with the device. */
	for (x = d->xfers; x != NULL; x = x->next)
		x->locked = false;
	x = d->xfers;
	while (x != NULL) {
		struct xfer *next = x->next;

		if (!x->local_busy) {
			if (x->parent)
				finish_initiator(x, -ENOTCONN);
			else
				xfer_free(x);
		}
		x = next;
	}
	/* A grant is never released at close: this node may have written alone, and the
	 * witness must keep refusing the partner's outdated replica until a resync ends. */
	log_info("ha %s: closed (%s)", d->name, ha_sync_state_name(d->sb.state));
	if (d->local_busy == 0)
		device_free(d);
	else
		log_info("ha %s: the replica closes once %u I/Os in flight end", d->name, d->local_busy);
}

static void device_free(struct ha_device *d)
{
	while (d->n_spare > 0)
		free(d->spare[--d->n_spare]);
	activemap_free(d->am);
	order_free(d->order);
	ha_meta_close(d->meta);
	store_close(d->backing);
	if (d->secret) {
		OPENSSL_cleanse(d->secret, d->p.secret_len);
		free(d->secret);
	}
	free(d->rbitmap);
	free(d->rknown);
	free(d);
}

/* ---- resize ------------------------------------------------------------------------------ */

int ha_device_resize_check(const struct ha_device *d, uint64_t size, char *err, size_t errlen)
{
	const char *why = NULL;

	if (size < d->sb.size)
		why = "it is bigger now; shrinking would cut off data, so it is refused";
	else if (size % 512 || size % store_alignment(d->backing))
		why = "the size is not a multiple of the block size";
	else if (size == d->sb.size)
		return 0;
	else if (d->closing)
		why = "it is closing";
	else if (d->mode != MODE_REPLICATING || d->sb.state != HA_SYNC_SYNCHRONIZED)
		why = "it grows only while synchronized with its partner (both replicas grow together); wait for it";
	else if (d->verify_running)
		why = "a verify is running; wait for its end";
	if (why)
		snprintf(err, errlen, "%s: %s", d->name, why);
	return why ? -1 : 0;
}

int ha_device_resize(struct ha_device *d, uint64_t size, char *err, size_t errlen)
{
	uint64_t old = d->sb.size;
	int rc;

	if (ha_device_resize_check(d, size, err, errlen) != 0)
		return -1;
	if (size == old)
		return 0;
	/* The replica first: the metadata never describes more than the replica holds. */
	rc = store_grow(d->backing, size);
	if (rc < 0) {
		snprintf(err, errlen, "%s: growing the replica: %s", d->name,
		         rc == -ENOTSUP ? "a block device keeps its own size; grow the device itself" : strerror(-rc));
		return -1;
	}
	if (activemap_grow(d->am, size) != 0 || mapsync_grow(d->ms) != 0) {
		snprintf(err, errlen, "%s: out of memory", d->name);
		return -1;
	}
	if (ha_meta_grow(d->meta, size, &d->sb, err, errlen) != 0)
		return -1;
	d->sb.size = size;
	log_info("ha %s: grown from %llu to %llu bytes", d->name, (unsigned long long)old, (unsigned long long)size);
	return 0;
}

/* The store front's grow (store_grow() sets its size after). */
static int ha_grow(void *impl, uint64_t size)
{
	char err[256];

	if (ha_device_resize(impl, size, err, sizeof(err)) != 0) {
		log_err("%s", err);
		return -EBUSY;
	}
	return 0;
}

static const struct store_ops ha_store_ops = {
	.readv = ha_readv,
	.writev = ha_writev,
	.flush = ha_flush,
	.discard = ha_discard,
	.map_status = ha_map_status,
	.access = ha_access,
	.close = ha_close,
	.compare_and_write = ha_compare_and_write,
	.grow = ha_grow,
};

static const char *check_params(const struct ha_device_params *p)
{
	static const uint8_t zero[16];

	if (p->name == NULL || p->name[0] == '\0')
		return "the device needs a name";
	if (p->meta_path == NULL || p->meta_path[0] == '\0')
		return "no metadata file";
	if (memcmp(p->uuid, zero, sizeof(zero)) == 0)
		return "the device uuid is all zero";
	if (p->role != HA_ROLE_PRIMARY && p->role != HA_ROLE_SECONDARY)
		return "role must be primary or secondary";
	if (p->node_id == 0)
		return "node id must not be 0";
	if (p->initial_sync < HA_INITIAL_CLEAR || p->initial_sync > HA_INITIAL_COPY)
		return "unknown initial sync mode";
	if (p->failover != HA_FAILOVER_HEARTBEAT && p->failover != HA_FAILOVER_MAJORITY)
		return "unknown failover strategy";
	if (p->failover == HA_FAILOVER_MAJORITY && p->arbiter == NULL)
		return "the majority strategy needs a witness";
	if (p->secret == NULL || p->secret_len == 0 || p->secret_len > HANDSHAKE_SECRET_MAX)
		return "the link secret must be 1..1024 bytes";
	if (p->n_sync_links < 1 || p->n_sync_links > HA_MAX_LINKS || p->n_heartbeat_links > HA_MAX_LINKS)
		return "1..4 sync links and 0..4 heartbeat links";
	if (p->extent_size != 0 && (p->extent_size < ACTIVEMAP_MIN_EXTENT || p->extent_size > PROTO_MAX_DATA ||
	                            (p->extent_size & (p->extent_size - 1)) != 0))
		return "extent size must be a power of two from 4 KiB to 1 MiB";
	return NULL;
}

/* Opens the metadata file, or creates it for a new replica. */
static int open_meta(struct ha_device *d, bool *created, char *err, size_t errlen)
{
	struct ha_meta_super want = {
		.size = store_size(d->backing), .extent_size = d->p.extent_size, .role = d->p.role,
		.state = HA_SYNC_NOT_SYNCHRONIZED, .reason = HA_REASON_NEW_REPLICA, .initial_sync = d->p.initial_sync,
	};

	memcpy(want.uuid, d->p.uuid, sizeof(want.uuid));
	*created = false;
	if (access(d->p.meta_path, F_OK) != 0 && errno == ENOENT) {
		if (d->p.role == HA_ROLE_PRIMARY)
			generation_new_device(&want.gen, rng_u64, NULL);
		if (ha_meta_create(d->p.meta_path, &want, &d->meta, err, errlen) != 0)
			return -1;
		d->sb = want;
		*created = true;
		log_info("ha %s: new replica, metadata %s created", d->name, d->p.meta_path);
		return 0;
	}
	if (ha_meta_open(d->p.meta_path, &d->sb, &d->meta, err, errlen) != 0)
		return -1;
	if (memcmp(d->sb.uuid, want.uuid, sizeof(want.uuid)) != 0) {
		snprintf(err, errlen, "%s: metadata of another device (uuid differs)", d->p.meta_path);
		return -1;
	}
	if (d->sb.size != want.size || d->sb.extent_size != want.extent_size) {
		snprintf(err, errlen, "%s: metadata for %llu bytes in %u-byte extents, but the device is %llu bytes in %u",
		         d->p.meta_path, (unsigned long long)d->sb.size, d->sb.extent_size,
		         (unsigned long long)want.size, want.extent_size);
		return -1;
	}
	if (d->sb.role != d->p.role) {
		log_warn("ha %s: role changed from %s to %s", d->name, d->sb.role == HA_ROLE_PRIMARY ? "primary" : "secondary",
		         d->p.role == HA_ROLE_PRIMARY ? "primary" : "secondary");
		d->sb.role = d->p.role;
		if (save_sb(d) != 0) {
			snprintf(err, errlen, "%s: cannot update the role", d->p.meta_path);
			return -1;
		}
	}
	return 0;
}

static int load_bitmap(struct ha_device *d, char *err, size_t errlen)
{
	size_t len;
	uint8_t *buf;
	int rc;

	if (activemap_new(d->sb.size, d->sb.extent_size, ACTIVEMAP_DEFAULT_KEEPDIRTY, &d->am) != 0) {
		snprintf(err, errlen, "%s: unusable geometry", d->p.meta_path);
		return -1;
	}
	len = activemap_ondisk_size(d->am);
	if ((buf = malloc(len)) == NULL || (d->rbitmap = calloc(1, len)) == NULL ||
	    (d->rknown = calloc(1, len)) == NULL) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = ha_meta_read_bitmap(d->meta, buf, len, err, errlen);
	if (rc == 0 && activemap_load(d->am, buf, len) != 0) {
		snprintf(err, errlen, "%s: bitmap of the wrong size", d->p.meta_path);
		rc = -1;
	}
	free(buf);
	return rc;
}

int ha_device_open(struct reactor *r, const struct ha_device_params *p, struct ha_device **out, char *err,
                   size_t errlen)
{
	const char *bad = check_params(p);
	struct ha_device *d = NULL;
	bool created = false;

	*out = NULL;
	if (bad == NULL && (d = calloc(1, sizeof(*d))) == NULL)
		bad = "out of memory";
	if (bad != NULL) {
		snprintf(err, errlen, "ha device %s: %s", p->name ? p->name : "?", bad);
		store_close(p->backing);
		free(d);
		return -1;
	}
	d->r = r;
	d->p = *p;
	str_copy(d->name, sizeof(d->name), p->name);
	d->p.name = d->name;
	d->p.extent_size = p->extent_size ? p->extent_size : ACTIVEMAP_DEFAULT_EXTENT;
	d->p.ping_interval_ms = p->ping_interval_ms ? p->ping_interval_ms : HA_DEFAULT_PING_MS;
	d->p.timeout_ms = p->timeout_ms ? p->timeout_ms : HA_DEFAULT_TIMEOUT_MS;
	d->backing = p->backing;
	d->mode = MODE_WAITING;
	for (unsigned i = 0; i < HA_MAX_LINKS; i++) {
		d->sync[i] = (struct dlink){.d = d, .kind = PROTO_LINK_SYNC, .index = i};
		d->hb[i] = (struct dlink){.d = d, .kind = PROTO_LINK_HEARTBEAT, .index = i};
	}
	if ((d->secret = malloc(p->secret_len)) == NULL || (d->order = order_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memcpy(d->secret, p->secret, p->secret_len);
	d->p.secret = d->secret;
	if (open_meta(d, &created, err, errlen) != 0 || load_bitmap(d, err, errlen) != 0)
		goto fail;
	if ((d->ms = mapsync_new(r, d->am, ha_meta_fd(d->meta), d->name)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Until the partner is met, every extent written here needs resync. */
	activemap_partner_lost(d->am);
	d->front = store_new(&ha_store_ops, d, &(struct store_caps){
		.size = d->sb.size, .alignment = store_alignment(d->backing), .can_discard = true,
		/* the partner's cache may be volatile even where ours is not */
		.volatile_cache = true,
	});
	if (d->front == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (created && is_primary(d) && d->sb.initial_sync == HA_INITIAL_CLEAR && start_zeroing(d) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	log_info("ha %s: opened as %s, %s%s%s, generation %016llx, %llu bytes to resync", d->name,
	         is_primary(d) ? "primary" : "secondary", ha_sync_state_name(d->sb.state), d->sb.reason ? ", " : "",
	         d->sb.reason ? ha_sync_reason_name(d->sb.reason) : "", (unsigned long long)d->sb.gen.current,
	         (unsigned long long)activemap_dirty_bytes(d->am));
	/* A restarted secondary gives a live primary time to dial it again (its connection
	 * manager backs off between attempts) before it concludes the primary is gone. */
	reactor_timer_start(r, &d->start_timer, is_primary(d) ? d->p.timeout_ms : 3 * d->p.timeout_ms, on_start_timer);
	d->alive_ms = now_ms();
	reactor_timer_start(r, &d->alive_timer, d->p.ping_interval_ms, on_alive_timer);
	*out = d;
	return 0;
fail:
	if (d->front) {
		store_close(d->front); /* closes d too */
		return -1;
	}
	mapsync_free(d->ms);
	if (d->am)
		activemap_free(d->am);
	if (d->meta)
		ha_meta_close(d->meta);
	order_free(d->order);
	free(d->secret);
	free(d->rbitmap);
	free(d->rknown);
	store_close(d->backing);
	free(d);
	return -1;
}

void ha_device_set_channel(struct ha_device *d, const struct ha_channel_ops *ops, void *ctx)
{
	d->chan = ops;
	d->chan_ctx = ctx;
}

int ha_device_channel_send(struct ha_device *d, const uint8_t *body, size_t len)
{
	struct proto_msg m = {.type = PROTO_STATE};

	if (!d->chan_up || len > PROTO_MAX_DATA)
		return -1;
	m.u.state = (struct proto_state){PROTO_STATE_SCSI, 0, PROTO_REASON_NONE, (uint32_t)len, body};
	return send_msg(d, &m);
}

bool ha_device_is_primary(const struct ha_device *d)
{
	return is_primary(d);
}

struct store *ha_device_store(struct ha_device *d)
{
	return d->front;
}

void ha_device_status(const struct ha_device *d, struct ha_device_status *st)
{
	uint64_t now = now_ms();

	memset(st, 0, sizeof(*st));
	str_copy(st->name, sizeof(st->name), d->name);
	st->role = d->p.role;
	st->failover = d->p.failover;
	st->state = d->sb.state;
	st->reason = d->sb.reason;
	st->access = access_now(d);
	st->partner_connected = d->sess != NULL;
	st->partner_alive = any_up(d->sync, d->p.n_sync_links) || any_up(d->hb, d->p.n_heartbeat_links);
	st->sync_source = d->resyncing && d->sync_source;
	st->size = d->sb.size;
	st->sync_total_bytes = d->sync_total;
	/* a target counts compared and copied bytes of one extent both */
	st->sync_done_bytes = MIN(d->sync_done, d->sync_total);
	/* over the last window; in the first one, since the start */
	if (d->resyncing && d->rate_bps != 0)
		st->sync_rate_bps = d->rate_bps;
	else if (d->resyncing && now > d->sync_start_ms)
		st->sync_rate_bps = d->sync_done * 1000 / (now - d->sync_start_ms);
	st->dirty_bytes = activemap_dirty_bytes(d->am);
	st->resync_sent_bytes = d->sent_bytes;
	st->resync_received_bytes = d->received_bytes;
	st->resync_compared_bytes = d->compared_bytes;
	st->gen = d->sb.gen;
	for (unsigned k = 0; k < 2; k++) {
		const struct dlink *links = k == 0 ? d->sync : d->hb;
		unsigned n = k == 0 ? d->p.n_sync_links : d->p.n_heartbeat_links;

		for (unsigned i = 0; i < n; i++) {
			struct ha_link_status *ls = &st->links[st->n_links++];

			ls->kind = links[i].kind;
			ls->index = i;
			ls->up = links[i].up;
			ls->rtt_ms = links[i].l && links[i].up ? link_rtt_ms(links[i].l) : 0;
		}
	}
	st->verify_running = d->verify_running;
	st->verify_done_bytes = d->verify_done_bytes;
	st->verify_total_bytes = d->sb.size;
	st->verify_differing_blocks = d->verify_diff;
	st->verify_done = d->verify_done;
}

/* ---- operator commands --------------------------------------------------------------------- */

int ha_device_resolve_split_brain(struct ha_device *d, bool keep_local, char *err, size_t errlen)
{
	if (d->sess == NULL || d->mode != MODE_PARKED || d->sb.reason != HA_REASON_SPLIT_BRAIN) {
		if (err)
			snprintf(err, errlen, "%s: no split brain to resolve%s", d->name,
			         d->sess == NULL ? " (the partner must be connected)" : "");
		return -1;
	}
	if (keep_local) {
		log_warn("ha %s: operator keeps this node's data; the partner's changes will be overwritten", d->name);
		send_node_state(d, true, PROTO_REASON_OPERATOR);
		return 0;
	}
	log_warn("ha %s: operator discards this node's data since the split; these extents will be overwritten:", d->name);
	report_divergence(d, "discarded");
	generation_discard_local(&d->sb.gen, &d->remote.gen);
	set_serving(d, false);
	if (save_sb(d) != 0) {
		if (err)
			snprintf(err, errlen, "%s: cannot persist the metadata", d->name);
		return -1;
	}
	restart_meeting(d);
	return 0;
}

int ha_device_set_failover(struct ha_device *d, enum ha_failover f, const struct ha_arbiter *arbiter, char *err,
                           size_t errlen)
{
	if (f != HA_FAILOVER_HEARTBEAT && f != HA_FAILOVER_MAJORITY) {
		snprintf(err, errlen, "unknown failover strategy");
		return -1;
	}
	if (f == HA_FAILOVER_MAJORITY && arbiter == NULL && d->p.arbiter == NULL) {
		snprintf(err, errlen, "%s: the majority strategy needs a witness configured", d->name);
		return -1;
	}
	if (arbiter != NULL)
		d->p.arbiter = arbiter;
	log_info("ha %s: failover strategy %s -> %s", d->name, ha_failover_name(d->p.failover), ha_failover_name(f));
	d->p.failover = f;
	return 0;
}

int ha_device_verify(struct ha_device *d, char *err, size_t errlen)
{
	if (d->mode != MODE_REPLICATING || d->sb.state != HA_SYNC_SYNCHRONIZED) {
		snprintf(err, errlen, "%s: verify needs the partner connected and the device synchronized", d->name);
		return -1;
	}
	if (d->verify_running) {
		snprintf(err, errlen, "%s: a verify is already running", d->name);
		return -1;
	}
	d->verify_running = true;
	d->verify_cursor = d->verify_done_bytes = d->verify_diff = 0;
	log_info("ha %s: verify started", d->name);
	verify_pump(d);
	return 0;
}
