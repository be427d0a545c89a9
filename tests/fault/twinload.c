/* twinload: a verifying workload for the fault suite.
 *
 * write mode: writes 4 KiB blocks at random block numbers through one or more iSCSI URLs
 * (round robin over the paths, as multipath does), several commands in flight.  Every
 * block carries a header {magic, block number, write generation, writer id, CRC32C} so a
 * later read can tell which write it holds.  The log (text, appended) records each write
 * before it is sent ("I block gen"), when its GOOD status arrived ("A block gen") and when
 * it failed for good ("X block gen"); a later run continues the generations it finds.
 *
 * A write that fails is retried as a multipath initiator would (retry_policy()): only
 * what SCSI and iSCSI call retryable, on another path where there is one.  It fails for
 * good when every path gave an answer that is not retryable, or when its retry budget
 * runs out.  The summary counts writes issued, acknowledged, retried and failed, and the
 * longest stall: the longest time commands were waiting without any completing.
 *
 * --read-back reads each acknowledged block again, through another path first: an HA
 * pair must serve the write just acknowledged through either node, so a read of any
 * other generation is stale data ("stale" in the summary).
 *
 * verify mode: reads every logged block through one URL and checks that it is intact and
 * holds a generation between the last acknowledged and the last issued one.
 *
 * Two writes to one block are never in flight together: their order on the target would
 * be undefined and the verifier could not say which generation must win. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common/crc32c.h"
#include "common/util.h"

#define BLOCK 4096u
#define MAX_PATHS 8
#define MAX_DEPTH 256
#define MAGIC "TWNLOAD1"
/* Header layout (big-endian): magic[8], block[8], gen[8], writer[4], crc[4]. */
#define OFF_BLOCK 8
#define OFF_GEN 16
#define OFF_WRITER 24
#define OFF_CRC 28
#define HEADER 32

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("twinload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- block contents ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t block_crc(const uint8_t *b)
{
	static const uint8_t zero[4];
	uint32_t c = crc32c_update(CRC32C_INIT, b, OFF_CRC);
	c = crc32c_update(c, zero, sizeof(zero));
	return crc32c_final(crc32c_update(c, b + OFF_CRC + 4, BLOCK - OFF_CRC - 4));
}

static void block_fill(uint8_t *b, uint64_t blk, uint64_t gen, uint32_t writer)
{
	uint64_t s = blk * 0x100000001b3ull ^ gen << 20 ^ writer;
	memcpy(b, MAGIC, 8);
	put_be64(b + OFF_BLOCK, blk);
	put_be64(b + OFF_GEN, gen);
	put_be32(b + OFF_WRITER, writer);
	for (unsigned i = HEADER; i < BLOCK; i += 8)
		put_be64(b + i, splitmix64(&s));
	put_be32(b + OFF_CRC, block_crc(b));
}

/* ---- the log ---- */

struct blocks {
	uint64_t n;
	uint64_t *issued; /* last generation sent */
	uint64_t *acked;  /* last generation acknowledged */
	bool *logged;
};

static void blocks_init(struct blocks *bl, uint64_t n)
{
	bl->n = n;
	bl->issued = calloc(n, sizeof(*bl->issued));
	bl->acked = calloc(n, sizeof(*bl->acked));
	bl->logged = calloc(n, sizeof(*bl->logged));
	if (!bl->issued || !bl->acked || !bl->logged)
		die("out of memory for %" PRIu64 " blocks", n);
}

/* Reads an existing log into bl (sized from its header); returns false if there is none. */
static bool log_load(const char *path, struct blocks *bl, uint32_t *writer)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return false;
		die("%s: %s", path, strerror(errno));
	}
	uint64_t n;
	if (fscanf(f, "# twinload blocks=%" SCNu64 " writer=%" SCNu32 "\n", &n, writer) != 2 || n == 0)
		die("%s: not a twinload log (no header line)", path);
	blocks_init(bl, n);
	char kind;
	uint64_t blk, gen;
	unsigned long line = 1;
	int got;
	while ((got = fscanf(f, " %c %" SCNu64 " %" SCNu64, &kind, &blk, &gen)) == 3) {
		line++;
		if (blk >= n)
			die("%s:%lu: block %" PRIu64 " beyond %" PRIu64, path, line, blk, n);
		bl->logged[blk] = true;
		if (kind == 'I' || kind == 'X')
			bl->issued[blk] = MAX(bl->issued[blk], gen);
		else if (kind == 'A')
			bl->acked[blk] = MAX(bl->acked[blk], gen);
		else if (kind == 'R') /* a loss already reported: the block's new baseline */
			bl->acked[blk] = gen;
		else
			die("%s:%lu: unknown record '%c'", path, line, kind);
	}
	/* A torn last line (the writer was killed) is harmless: it only ever loses the
	 * record of a write the verifier then checks less strictly. */
	fclose(f);
	return true;
}

/* What is wrong with b, read from block blk: NULL if it holds a generation between the
 * last acknowledged and the last issued one (or is still zeros, never acknowledged).
 * *gen is the generation it holds (0 for zeros); *lost says it is an older one. */
static const char *block_problem(const struct blocks *bl, uint32_t writer, uint64_t blk, const uint8_t *b,
                                 uint64_t *gen, bool *lost)
{
	static const uint8_t zero[BLOCK];
	uint64_t acked = bl->acked[blk], issued = MAX(bl->issued[blk], acked);
	*gen = 0;
	*lost = false;
	if (memcmp(b, zero, BLOCK) == 0) {
		*lost = acked > 0;
		return *lost ? "reads as zeros" : NULL;
	}
	*gen = get_be64(b + OFF_GEN);
	if (memcmp(b, MAGIC, 8) != 0)
		return "no header";
	if (get_be32(b + OFF_CRC) != block_crc(b))
		return "checksum mismatch";
	if (get_be64(b + OFF_BLOCK) != blk)
		return "header names another block";
	if (get_be32(b + OFF_WRITER) != writer)
		return "another writer's block";
	if (*gen > issued)
		return "generation never issued";
	*lost = *gen < acked;
	return *lost ? "holds an older generation" : NULL;
}

/* ---- paths ---- */

enum path_state { PATH_DOWN, PATH_CONNECTING, PATH_UP };

struct path {
	const char *url_text;
	struct iscsi_url *url;
	struct iscsi_context *ctx;
	enum path_state state;
	bool broken;           /* destroy the context after iscsi_service() returns */
	uint64_t retry_at_ms;  /* next connection attempt while down */
	unsigned index;
	struct load *load;
};

enum cmd_state { CMD_FREE, CMD_QUEUED, CMD_SENT };

struct cmd {
	enum cmd_state state;
	uint64_t blk, gen;
	uint64_t not_before_ms, deadline_ms;
	bool unknown_outcome;  /* a write attempt timed out, lost its connection or was refused */
	bool reading;          /* the write was acknowledged; now its read-back */
	unsigned acked_via;    /* the path that acknowledged the write */
	unsigned refused;      /* paths that answered with a status that is not retryable */
	struct path *path, *last_path;
	uint8_t *buf;
	struct load *load;
};

struct load {
	struct path paths[MAX_PATHS];
	unsigned n_paths, rr;
	struct cmd cmds[MAX_DEPTH];
	unsigned depth;
	struct blocks bl;
	bool *busy;
	bool *quarantined;
	uint64_t rng;
	uint32_t writer;
	uint32_t lba_per_block, block_size;
	int timeout_s;
	unsigned retry_s;
	unsigned rate;         /* writes started per second; 0: as fast as the paths go */
	bool read_back;
	uint64_t started;      /* writes started, for the rate */
	uint64_t start_ms;
	FILE *log;
	char initiator[96];
	/* tallies */
	uint64_t issued, acked, failed, retried, path_errors, reads, stale;
	uint64_t stall_from_ms, longest_stall_ms; /* since the last acknowledgement (or idle) */
};

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static void path_logged_in(struct iscsi_context *ctx, int status, void *data, void *arg)
{
	struct path *p = arg;
	(void)ctx;
	(void)data;
	if (status == SCSI_STATUS_GOOD && p->state == PATH_CONNECTING) {
		p->state = PATH_UP;
		fprintf(stderr, "twinload: path %u up (%s)\n", p->index, p->url_text);
	} else {
		p->broken = true;
	}
}

static void path_connected(struct iscsi_context *ctx, int status, void *data, void *arg)
{
	struct path *p = arg;
	(void)data;
	/* A failed connection, or (second call) the established one was torn down. */
	if (status != SCSI_STATUS_GOOD || p->state != PATH_CONNECTING || iscsi_login_async(ctx, path_logged_in, p) != 0)
		p->broken = true;
}

/* A fresh session context for the path's URL. */
static void path_new_context(struct path *p)
{
	p->ctx = iscsi_create_context(p->load->initiator);
	if (!p->ctx)
		die("cannot create an iSCSI context");
	iscsi_set_targetname(p->ctx, p->url->target);
	iscsi_set_session_type(p->ctx, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(p->ctx, ISCSI_HEADER_DIGEST_NONE);
	/* libiscsi's own reconnect would resend the commands of a dead session behind our
	 * back; this tool decides itself where a command goes next. */
	iscsi_set_noautoreconnect(p->ctx, 1);
	iscsi_set_timeout(p->ctx, p->load->timeout_s);
	if (p->url->user[0] != '\0')
		iscsi_set_initiator_username_pwd(p->ctx, p->url->user, p->url->passwd);
}

/* Connects and logs in, no more: libiscsi's full connect would also insist on a GOOD
 * TEST UNIT READY, and so keep away from a node that answers NOT READY (taking over, or
 * the target of a resync).  A multipath initiator keeps such a path and learns its state
 * from the answers to its commands; so does this tool, and those answers are what the
 * tests judge (a node that is not in sync must refuse, never serve old data). */
static void path_connect(struct path *p)
{
	path_new_context(p);
	p->state = PATH_CONNECTING;
	if (iscsi_connect_async(p->ctx, p->url->portal, path_connected, p) != 0)
		p->broken = true;
}

static void path_reset(struct path *p, uint64_t now)
{
	if (p->state == PATH_UP)
		fprintf(stderr, "twinload: path %u down (%s)\n", p->index, p->url_text);
	p->state = PATH_DOWN;
	p->retry_at_ms = now + 500;
	struct iscsi_context *ctx = p->ctx;
	p->ctx = NULL;
	if (ctx)
		iscsi_destroy_context(ctx); /* in-flight commands come back CANCELLED */
	p->broken = false;
}

/* ---- write mode ---- */

static void log_record(struct load *l, char kind, uint64_t blk, uint64_t gen)
{
	if (fprintf(l->log, "%c %" PRIu64 " %" PRIu64 "\n", kind, blk, gen) < 0)
		die("writing the log: %s", strerror(errno));
}

/* A command completed: the end of any stall. */
static void progress(struct load *l)
{
	uint64_t now = now_ms();
	l->longest_stall_ms = MAX(l->longest_stall_ms, now - l->stall_from_ms);
	l->stall_from_ms = now;
}

static void cmd_release(struct cmd *c)
{
	struct load *l = c->load;
	/* A write whose fate is unknown may still land later, from a session we gave up
	 * on; writing the block again could then be overtaken by it. */
	if (c->unknown_outcome)
		l->quarantined[c->blk] = true;
	l->busy[c->blk] = false;
	c->state = CMD_FREE;
}

/* A write or its read-back failed for good. */
static void cmd_failed(struct cmd *c)
{
	struct load *l = c->load;
	if (!c->reading) {
		log_record(l, 'X', c->blk, c->gen);
		c->unknown_outcome = true;
	}
	l->failed++;
	cmd_release(c);
}

static void write_acked(struct cmd *c)
{
	struct load *l = c->load;
	log_record(l, 'A', c->blk, c->gen);
	l->bl.acked[c->blk] = c->gen;
	l->acked++;
	progress(l);
	if (!l->read_back) {
		cmd_release(c);
		return;
	}
	/* The block stays busy: nothing may change it before it is read. */
	c->reading = true;
	c->acked_via = c->path->index;
	c->state = CMD_QUEUED;
	c->refused = 0;
	c->last_path = c->path;
	c->path = NULL;
	c->not_before_ms = now_ms();
	c->deadline_ms = c->not_before_ms + (uint64_t)l->retry_s * 1000;
}

static void cmd_retry(struct cmd *c, uint64_t delay_ms)
{
	c->state = CMD_QUEUED;
	c->last_path = c->path;
	c->path = NULL;
	c->not_before_ms = now_ms() + delay_ms;
	c->load->retried++;
}

/* What a multipath initiator does with an answer that is not GOOD (SAM-5 status codes,
 * SPC-4 sense keys). */
enum retry {
	RETRY_AGAIN,     /* not executed; send it again at once (UNIT ATTENTION) */
	RETRY_LATER,     /* not now: another path, or this one after a pause */
	RETRY_LOST,      /* no answer (timeout, connection lost): the outcome is unknown */
	RETRY_REFUSED,   /* an answer that retrying the same path cannot change */
};

static enum retry retry_policy(int status, const struct scsi_task *t)
{
	switch (status) {
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
	case SCSI_STATUS_TASK_ABORTED: /* aborted by another nexus's action */
		return RETRY_LATER;
	case SCSI_STATUS_CHECK_CONDITION:
		break;
	case SCSI_STATUS_CANCELLED:
	case SCSI_STATUS_ERROR:
	case SCSI_STATUS_TIMEOUT:
		return RETRY_LOST;
	default: /* RESERVATION CONFLICT and what SAM does not define */
		return RETRY_REFUSED;
	}
	switch (t->sense.key) {
	case SCSI_SENSE_UNIT_ATTENTION:
		return RETRY_AGAIN;
	case SCSI_SENSE_COMMAND_ABORTED: /* e.g. a digest error: "may be retried" */
		return RETRY_LATER;
	case SCSI_SENSE_NOT_READY:
		/* LOGICAL UNIT NOT READY (ASC 04h): becoming ready, ALUA transitioning, standby
		 * or unavailable port: a state that passes, or a path to avoid.  Not "manual
		 * intervention required" (04h/03h), nor a medium that is not present. */
		if ((t->sense.ascq >> 8) == 0x04 && t->sense.ascq != 0x0403)
			return RETRY_LATER;
		return RETRY_REFUSED;
	default:
		return RETRY_REFUSED;
	}
}

/* An answer that is not GOOD: retried or failed, per retry_policy(). */
static void cmd_not_good(struct cmd *c, int status, const struct scsi_task *task)
{
	enum retry r = retry_policy(status, task);
	/* Every answer but a unit attention is worth a line: the path loss test shows them. */
	if (status == SCSI_STATUS_CHECK_CONDITION && r != RETRY_AGAIN)
		fprintf(stderr, "twinload: %s block %" PRIu64 " via path %u: sense key 0x%x, asc/ascq 0x%04x%s\n",
		        c->reading ? "reading" : "writing", c->blk, c->path->index, (unsigned)task->sense.key,
		        (unsigned)task->sense.ascq, r == RETRY_REFUSED ? " (not retryable)" : "");
	else if (status != SCSI_STATUS_CHECK_CONDITION && r != RETRY_LOST)
		fprintf(stderr, "twinload: %s block %" PRIu64 " via path %u: status 0x%x%s\n",
		        c->reading ? "reading" : "writing", c->blk, c->path->index, (unsigned)status,
		        r == RETRY_REFUSED ? " (not retryable)" : "");
	switch (r) {
	case RETRY_AGAIN:
		cmd_retry(c, 0);
		break;
	case RETRY_LATER:
		cmd_retry(c, 100);
		break;
	case RETRY_LOST:
		c->unknown_outcome |= !c->reading;
		c->path->broken = true;
		c->load->path_errors++;
		cmd_retry(c, 100);
		break;
	case RETRY_REFUSED:
		/* Over on that path; another may still take it.  A write may have been partly
		 * done: the block is quarantined when the command ends. */
		c->unknown_outcome |= !c->reading;
		c->refused |= 1u << c->path->index;
		if (c->refused == (1u << c->load->n_paths) - 1)
			cmd_failed(c);
		else
			cmd_retry(c, 0);
		break;
	}
}

static void write_done(struct iscsi_context *ctx, int status, void *data, void *arg)
{
	struct cmd *c = arg;
	struct scsi_task *task = data;
	(void)ctx;
	if (status == SCSI_STATUS_GOOD)
		write_acked(c);
	else
		cmd_not_good(c, status, task);
	if (task)
		scsi_free_scsi_task(task);
}

static void read_done(struct iscsi_context *ctx, int status, void *data, void *arg)
{
	struct cmd *c = arg;
	struct scsi_task *task = data;
	struct load *l = c->load;
	(void)ctx;
	if (status != SCSI_STATUS_GOOD) {
		cmd_not_good(c, status, task);
	} else {
		uint64_t gen = 0;
		bool lost;
		const char *bad = task->datain.size < (int)BLOCK
		                      ? "short read"
		                      : block_problem(&l->bl, l->writer, c->blk, task->datain.data, &gen, &lost);
		l->reads++;
		progress(l);
		if (bad) {
			l->stale++;
			printf("stale: block %" PRIu64 " read via path %u %s (generation %" PRIu64
			       "), %" PRIu64 " was acknowledged via path %u\n",
			       c->blk, c->path->index, bad, gen, c->gen, c->acked_via);
		}
		cmd_release(c);
	}
	if (task)
		scsi_free_scsi_task(task);
}

/* The next usable path in round-robin order, preferring one other than the command's
 * last (a retry goes elsewhere first, as multipath does), never one that refused it. */
static struct path *pick_path(struct load *l, const struct cmd *c)
{
	struct path *fallback = NULL;
	unsigned fallback_at = 0;
	for (unsigned i = 0; i < l->n_paths; i++) {
		unsigned at = (l->rr + i) % l->n_paths;
		struct path *p = &l->paths[at];
		if (p->state != PATH_UP || p->broken || (c->refused & 1u << at))
			continue;
		if (p == c->last_path && l->n_paths > 1) {
			if (!fallback) {
				fallback = p;
				fallback_at = at;
			}
			continue;
		}
		l->rr = (at + 1) % l->n_paths;
		return p;
	}
	if (fallback)
		l->rr = (fallback_at + 1) % l->n_paths;
	return fallback;
}

/* A random block that no write is pending on and that is not quarantined. */
static bool pick_block(struct load *l, uint64_t *blk)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t b = splitmix64(&l->rng) % l->bl.n;
		if (!l->busy[b] && !l->quarantined[b]) {
			*blk = b;
			return true;
		}
	}
	return false;
}

static unsigned busy_cmds(const struct load *l)
{
	unsigned n = 0;
	for (unsigned i = 0; i < l->depth; i++)
		n += l->cmds[i].state != CMD_FREE;
	return n;
}

static void start_writes(struct load *l, uint64_t now)
{
	bool idle = busy_cmds(l) == 0;
	for (unsigned i = 0; i < l->depth; i++) {
		struct cmd *c = &l->cmds[i];
		if (l->rate && l->started >= (now - l->start_ms) * l->rate / 1000)
			break;
		if (c->state != CMD_FREE || !pick_block(l, &c->blk))
			continue;
		if (idle)
			l->stall_from_ms = now; /* nothing was waiting until now: not a stall */
		idle = false;
		l->started++;
		l->issued++;
		c->gen = ++l->bl.issued[c->blk];
		l->busy[c->blk] = true;
		c->unknown_outcome = false;
		c->reading = false;
		c->refused = 0;
		c->last_path = NULL;
		c->state = CMD_QUEUED;
		c->not_before_ms = now;
		c->deadline_ms = now + (uint64_t)l->retry_s * 1000;
		block_fill(c->buf, c->blk, c->gen, l->writer);
		log_record(l, 'I', c->blk, c->gen);
	}
	/* The issue records reach the kernel before the writes leave, so a verifier never
	 * sees a generation the log does not know, even if this process is killed. */
	if (fflush(l->log) != 0)
		die("writing the log: %s", strerror(errno));
}

static void send_writes(struct load *l, uint64_t now)
{
	for (unsigned i = 0; i < l->depth; i++) {
		struct cmd *c = &l->cmds[i];
		if (c->state != CMD_QUEUED || c->not_before_ms > now)
			continue;
		if (now >= c->deadline_ms) {
			cmd_failed(c);
			continue;
		}
		struct path *p = pick_path(l, c);
		if (!p)
			continue;
		uint64_t lba = c->blk * l->lba_per_block;
		struct scsi_task *t =
			c->reading ? iscsi_read16_task(p->ctx, p->url->lun, lba, BLOCK, (int)l->block_size, 0, 0, 0, 0, 0,
			                               read_done, c)
			           : iscsi_write16_task(p->ctx, p->url->lun, lba, c->buf, BLOCK, (int)l->block_size, 0, 0, 0,
			                                0, 0, write_done, c);
		if (!t) {
			p->broken = true;
			continue;
		}
		c->state = CMD_SENT;
		c->path = p;
	}
}

/* One turn: connect paths that are down, wait for events, serve them. */
static void service_paths(struct load *l, uint64_t now)
{
	struct pollfd pfd[MAX_PATHS];
	struct path *pp[MAX_PATHS];
	unsigned n = 0;
	for (unsigned i = 0; i < l->n_paths; i++) {
		struct path *p = &l->paths[i];
		if (p->state == PATH_DOWN && now >= p->retry_at_ms)
			path_connect(p);
		if (p->ctx && !p->broken) {
			pfd[n] = (struct pollfd){ .fd = iscsi_get_fd(p->ctx), .events = (short)iscsi_which_events(p->ctx) };
			pp[n++] = p;
		}
	}
	if (poll(pfd, n, 50) < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
	for (unsigned i = 0; i < n; i++) {
		/* Called also without events, so that libiscsi notices timeouts. */
		if (iscsi_service(pp[i]->ctx, pfd[i].revents) < 0)
			pp[i]->broken = true;
	}
	for (unsigned i = 0; i < l->n_paths; i++)
		if (l->paths[i].broken)
			path_reset(&l->paths[i], now);
}

static void log_sync(FILE *log)
{
	if (fflush(log) != 0 || fsync(fileno(log)) != 0)
		die("writing the log: %s", strerror(errno));
}

static int run_write(struct load *l, unsigned seconds)
{
	uint64_t start = now_ms(), last_sync = start;
	l->start_ms = start;
	for (;;) {
		uint64_t now = now_ms();
		bool running = !stop_requested && (seconds == 0 || now - start < (uint64_t)seconds * 1000);
		if (running)
			start_writes(l, now);
		else if (busy_cmds(l) == 0)
			break;
		send_writes(l, now);
		service_paths(l, now);
		if (now - last_sync >= 1000) {
			log_sync(l->log);
			last_sync = now;
		}
	}
	log_sync(l->log);
	printf("write: acked=%" PRIu64 " issued=%" PRIu64 " retried=%" PRIu64 " failed=%" PRIu64
	       " path_errors=%" PRIu64 " longest_stall_ms=%" PRIu64 " reads=%" PRIu64 " stale=%" PRIu64 "\n",
	       l->acked, l->issued, l->retried, l->failed, l->path_errors, l->longest_stall_ms, l->reads, l->stale);
	return l->failed || l->stale ? 1 : 0;
}

/* ---- verify mode ---- */

struct verdict {
	uint64_t blocks, lost, corrupt;
	FILE *accept; /* with --accept: the log, to record each loss as the new baseline */
};

static void lost_block(struct verdict *v, uint64_t blk, uint64_t gen)
{
	v->lost++;
	if (v->accept && fprintf(v->accept, "R %" PRIu64 " %" PRIu64 "\n", blk, gen) < 0)
		die("writing the log: %s", strerror(errno));
}

static void verify_block(const struct blocks *bl, uint32_t writer, uint64_t blk, const uint8_t *b, struct verdict *v)
{
	uint64_t gen;
	bool lost;
	const char *bad = block_problem(bl, writer, blk, b, &gen, &lost);
	v->blocks++;
	if (!bad)
		return;
	if (lost) {
		lost_block(v, blk, gen);
		printf("lost: block %" PRIu64 " %s (generation %" PRIu64 "), %" PRIu64 " was acknowledged\n", blk, bad,
		       gen, bl->acked[blk]);
	} else {
		v->corrupt++;
		printf("corrupt: block %" PRIu64 ": %s (generation %" PRIu64 ", last issued %" PRIu64 ")\n", blk, bad,
		       gen, MAX(bl->issued[blk], bl->acked[blk]));
	}
}

/* Reads the logged blocks in runs of up to 256 blocks. */
static int run_verify(struct load *l, const char *accept_log)
{
	struct path *p = &l->paths[0];
	uint64_t deadline = now_ms() + (uint64_t)l->retry_s * 1000;
	struct verdict v = { 0 };
	if (accept_log && !(v.accept = fopen(accept_log, "a")))
		die("%s: %s", accept_log, strerror(errno));
	const uint64_t run = 256;
	for (uint64_t first = 0; first < l->bl.n; first += run) {
		uint64_t n = MIN(run, l->bl.n - first), any = 0;
		for (uint64_t i = 0; i < n; i++)
			any |= l->bl.logged[first + i];
		if (!any)
			continue;
		struct scsi_task *t;
		for (;;) {
			t = iscsi_read16_sync(p->ctx, p->url->lun, first * l->lba_per_block, (uint32_t)(n * BLOCK),
			                      (int)l->block_size, 0, 0, 0, 0, 0);
			if (t && t->status == SCSI_STATUS_GOOD)
				break;
			/* NOT READY while a node settles: wait, up to the retry time. */
			if (now_ms() >= deadline)
				die("verify: reading block %" PRIu64 " failed: %s", first,
				    t ? scsi_sense_key_str(t->sense.key) : iscsi_get_error(p->ctx));
			if (t)
				scsi_free_scsi_task(t);
			else
				die("verify: reading block %" PRIu64 ": %s", first, iscsi_get_error(p->ctx));
			usleep(200 * 1000);
		}
		if (t->datain.size < (int)(n * BLOCK))
			die("verify: short read at block %" PRIu64, first);
		for (uint64_t i = 0; i < n; i++)
			if (l->bl.logged[first + i])
				verify_block(&l->bl, l->writer, first + i, t->datain.data + i * BLOCK, &v);
		scsi_free_scsi_task(t);
	}
	if (v.accept && (fflush(v.accept) != 0 || fsync(fileno(v.accept)) != 0 || fclose(v.accept) != 0))
		die("%s: %s", accept_log, strerror(errno));
	printf("verify: blocks=%" PRIu64 " lost_writes=%" PRIu64 " corrupt=%" PRIu64 "\n", v.blocks, v.lost, v.corrupt);
	return v.lost || v.corrupt ? 1 : 0;
}

/* ---- setup ---- */

/* One READ CAPACITY through a connected path: the LU's size in 4 KiB blocks, or 0 if it
 * does not answer now (NOT READY while its node is not in sync). */
static uint64_t read_geometry(struct load *l, struct path *p)
{
	struct scsi_task *t = iscsi_readcapacity16_sync(p->ctx, p->url->lun);
	struct scsi_readcapacity16 *rc = t && t->status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(t) : NULL;
	uint64_t blocks = 0;
	if (rc) {
		if (rc->block_length == 0 || BLOCK % rc->block_length != 0)
			die("%s: block size %" PRIu32 " does not divide 4096", p->url_text, rc->block_length);
		l->block_size = rc->block_length;
		l->lba_per_block = BLOCK / rc->block_length;
		blocks = (rc->returned_lba + 1) * rc->block_length / BLOCK;
	}
	if (t)
		scsi_free_scsi_task(t);
	return blocks;
}

/* A synchronous session on the first path that answers READ CAPACITY, trying them in turn
 * for up to the retry time; returns the LU's size in 4 KiB blocks. */
static uint64_t connect_geometry(struct load *l, struct path **out)
{
	uint64_t deadline = now_ms() + (uint64_t)l->retry_s * 1000;
	for (;;) {
		for (unsigned i = 0; i < l->n_paths; i++) {
			struct path *p = &l->paths[i];
			uint64_t blocks;
			path_new_context(p);
			if (iscsi_full_connect_sync(p->ctx, p->url->portal, p->url->lun) == 0 &&
			    (blocks = read_geometry(l, p)) > 0) {
				*out = p;
				return blocks;
			}
			fprintf(stderr, "twinload: %s: not answering yet: %s\n", p->url_text, iscsi_get_error(p->ctx));
			iscsi_destroy_context(p->ctx);
			p->ctx = NULL;
		}
		if (now_ms() >= deadline || stop_requested)
			die("no path answered READ CAPACITY within %u s", l->retry_s);
		usleep(500 * 1000);
	}
}

/* Frees everything (the sanitizer build checks for leaks); returns rc. */
static int load_free(struct load *l, int rc)
{
	for (unsigned i = 0; i < l->n_paths; i++) {
		if (l->paths[i].ctx)
			iscsi_destroy_context(l->paths[i].ctx);
		iscsi_destroy_url(l->paths[i].url);
	}
	for (unsigned i = 0; i < l->depth; i++)
		free(l->cmds[i].buf);
	free(l->bl.issued);
	free(l->bl.acked);
	free(l->bl.logged);
	free(l->busy);
	free(l->quarantined);
	free(l);
	return rc;
}

static void usage(void)
{
	fputs("usage: twinload write --url URL [--url URL ...] --log FILE [--seconds T] [--seed S]\n"
	      "                      [--blocks N] [--depth Q] [--writer ID] [--retry-seconds R]\n"
	      "                      [--timeout S] [--rate IOPS] [--read-back]\n"
	      "       twinload verify --url URL --log FILE [--retry-seconds R] [--accept]\n"
	      "  write   writes for T seconds (0: until SIGINT/SIGTERM), logging every write;\n"
	      "          exits 1 if some write failed: every path refused it, or it found no\n"
	      "          path that took it within R seconds of retries, or a read-back was stale\n"
	      "  --read-back  reads each acknowledged block again (through another path first)\n"
	      "               and checks that it holds that write\n"
	      "  verify  reads every logged block and checks it; exits 1 on a lost or corrupt one;\n"
	      "          --accept records each lost block's content as its new baseline, so that\n"
	      "          a later verify reports only new losses\n"
	      "  --blocks  4 KiB blocks to use from the start of the LU (default: all; a log\n"
	      "            fixes it for later runs)\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	/* From the start: a driver may stop a run before it has connected. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	const char *mode = argv[1];
	bool write_mode = strcmp(mode, "write") == 0;
	if (!write_mode && strcmp(mode, "verify") != 0)
		usage();
	struct load *l = calloc(1, sizeof(*l));
	if (!l)
		die("out of memory");
	const char *log_path = NULL;
	unsigned seconds = 0;
	bool accept = false;
	uint64_t seed = 1, want_blocks = 0;
	l->depth = 16;
	l->writer = 1;
	l->retry_s = 30;
	l->timeout_s = 15;
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },     { "log", required_argument, NULL, 'l' },
		{ "seconds", required_argument, NULL, 't' }, { "seed", required_argument, NULL, 's' },
		{ "blocks", required_argument, NULL, 'b' },  { "depth", required_argument, NULL, 'q' },
		{ "writer", required_argument, NULL, 'w' },  { "retry-seconds", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 'T' }, { "rate", required_argument, NULL, 'R' },
		{ "accept", no_argument, NULL, 'A' },        { "read-back", no_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 2;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			if (l->n_paths == MAX_PATHS)
				die("at most %d URLs", MAX_PATHS);
			l->paths[l->n_paths++].url_text = optarg;
			break;
		case 'l': log_path = optarg; break;
		case 't': seconds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'b': want_blocks = strtoull(optarg, NULL, 10); break;
		case 'q': l->depth = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': l->writer = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'r': l->retry_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': l->timeout_s = atoi(optarg); break;
		case 'R': l->rate = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'A': accept = true; break;
		case 'B': l->read_back = true; break;
		default: usage();
		}
	}
	if (optind != argc || l->n_paths == 0 || !log_path || l->depth == 0 || l->depth > MAX_DEPTH)
		usage();
	if (!write_mode && l->n_paths != 1)
		die("verify reads through one URL");

	snprintf(l->initiator, sizeof(l->initiator), "iqn.2026-11.org.twinsan.test:twinload-%" PRIu32, l->writer);
	l->rng = seed;
	for (unsigned i = 0; i < l->n_paths; i++) {
		struct path *p = &l->paths[i];
		p->index = i;
		p->load = l;
		struct iscsi_context *tmp = iscsi_create_context(l->initiator);
		p->url = tmp ? iscsi_parse_full_url(tmp, p->url_text) : NULL;
		if (!p->url)
			die("%s: not an iSCSI URL (iscsi://HOST:PORT/IQN/LUN)", p->url_text);
		iscsi_destroy_context(tmp);
	}

	/* Geometry from the first path that answers; the log fixes the block count. */
	struct path *first;
	uint64_t lu_blocks = connect_geometry(l, &first);
	uint32_t log_writer = l->writer;
	bool had_log = log_load(log_path, &l->bl, &log_writer);
	if (had_log) {
		if (want_blocks && want_blocks != l->bl.n)
			die("%s was written with --blocks %" PRIu64, log_path, l->bl.n);
		if (write_mode && log_writer != l->writer)
			die("%s belongs to writer %" PRIu32, log_path, log_writer);
		l->writer = log_writer;
	} else {
		if (!write_mode)
			die("%s: %s", log_path, strerror(ENOENT));
		blocks_init(&l->bl, want_blocks ? want_blocks : lu_blocks);
	}
	if (l->bl.n > lu_blocks)
		die("%" PRIu64 " blocks do not fit the LU's %" PRIu64, l->bl.n, lu_blocks);

	if (!write_mode)
		return load_free(l, run_verify(l, accept ? log_path : NULL));

	/* Write mode runs every path asynchronously, the first one too. */
	iscsi_destroy_context(first->ctx);
	first->ctx = NULL;
	l->log = fopen(log_path, "a");
	if (!l->log)
		die("%s: %s", log_path, strerror(errno));
	if (!had_log)
		fprintf(l->log, "# twinload blocks=%" PRIu64 " writer=%" PRIu32 "\n", l->bl.n, l->writer);
	l->busy = calloc(l->bl.n, sizeof(*l->busy));
	l->quarantined = calloc(l->bl.n, sizeof(*l->quarantined));
	if (!l->busy || !l->quarantined)
		die("out of memory");
	for (unsigned i = 0; i < l->depth; i++) {
		l->cmds[i].load = l;
		l->cmds[i].buf = malloc(BLOCK);
		if (!l->cmds[i].buf)
			die("out of memory");
	}
	int rc = run_write(l, seconds);
	fclose(l->log);
	return load_free(l, rc);
}
