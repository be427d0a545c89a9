/* The SCSI-3 persistent reservation checks of `twinctl validate` (SPC-4 §5.13): two
 * initiators ("node 1" on the first path, "node 2" on the second) register, reserve,
 * conflict, preempt, release and clear, and play the failover cluster's arbitration.
 * Each check starts from a disk without registrations and clears what it made, also when
 * it fails; a disk holding someone else's registrations is left alone (SKIP). */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "mgmt/validate_check.h"

/* "twinval1", "twinval2": recognisable in sg_persist's output if a run is interrupted. */
#define KEY_1 0x7477696e76616c31ULL
#define KEY_2 0x7477696e76616c32ULL

enum { SA_REGISTER = 0, SA_RESERVE = 1, SA_RELEASE = 2, SA_CLEAR = 3, SA_PREEMPT = 4, SA_PREEMPT_ABORT = 5,
       SA_REGISTER_IGNORE = 6 };
enum { IN_READ_KEYS = 0, IN_READ_RESERVATION = 1 };
enum { TYPE_WE_RO = 5, TYPE_EA_RO = 6 };
enum { GOOD = 0, CHECK_CONDITION = 2, CONFLICT = 0x18, TASK_ABORTED = 0x40 };
enum { ILLEGAL_REQUEST = 5, UA = 6 };
#define ASC_INVALID_RELEASE 0x2604
enum { ASC_RESERVATIONS_PREEMPTED = 0x2a03, ASC_RESERVATIONS_RELEASED = 0x2a04, ASC_REGISTRATIONS_PREEMPTED = 0x2a05 };

#define IN_FLIGHT 16
#define ABORT_WAIT_MS 3000

struct pr {
	struct vctx *c;
	struct vnote *n;
	struct vsession *node[2];
	bool bad;
	char done[512]; /* the reason of a pass, when steps build it */
};

static const char *status_name(int s)
{
	return s == GOOD ? "GOOD" : s == CONFLICT ? "RESERVATION CONFLICT" : s == CHECK_CONDITION ? "CHECK CONDITION" : "?";
}

static bool expect(struct pr *p, const struct vreply *r, int want, const char *what)
{
	char got[200];

	if (r->status == want)
		return true;
	vnote_add(p->n, "%s: %s, want %s", what, vreply_text(r, got, sizeof(got)), status_name(want));
	p->bad = true;
	return false;
}

/* PERSISTENT RESERVE OUT by node who. */
static void send_out(struct pr *p, int who, int sa, int type, uint64_t key, uint64_t sa_key, struct vreply *r)
{
	uint8_t cdb[10] = { 0x5f, (uint8_t)sa, (uint8_t)type, 0, 0, 0, 0, 0, 24, 0 };
	uint8_t param[24] = { 0 };

	put_be64(param, key);
	put_be64(param + 8, sa_key);
	vsession_cmd_past_ua(p->node[who], cdb, sizeof(cdb), VDIR_OUT, param, sizeof(param), r);
}

/* The same; false (noted) unless it ends with want. */
static bool out(struct pr *p, int who, int sa, int type, uint64_t key, uint64_t sa_key, int want, const char *what)
{
	struct vreply r;

	send_out(p, who, sa, type, key, sa_key, &r);
	return expect(p, &r, want, what);
}

/* PERSISTENT RESERVE IN by node who; false (noted) unless it ends GOOD. */
static bool pr_in(struct pr *p, int who, int sa, struct vreply *r)
{
	uint8_t cdb[10] = { 0x5e, (uint8_t)sa, 0, 0, 0, 0, 0, 0x10, 0, 0 };
	char why[200];

	vsession_cmd_past_ua(p->node[who], cdb, sizeof(cdb), VDIR_IN, NULL, 0x1000, r);
	if (r->status == GOOD)
		return true;
	vnote_add(p->n, "node %d PERSISTENT RESERVE IN (%s): %s", who + 1,
	          sa == IN_READ_KEYS ? "READ KEYS" : "READ RESERVATION", vreply_text(r, why, sizeof(why)));
	p->bad = true;
	return false;
}

/* Whether the data read (parsed: what vparse_keys() or vparse_reservation() said). */
static bool readable(struct pr *p, int who, int parsed, const char *what)
{
	if (parsed >= 0)
		return true;
	vnote_add(p->n, "node %d PERSISTENT RESERVE IN (%s): short data", who + 1, what);
	p->bad = true;
	return false;
}

/* The keys node who sees; -1 (noted) if it cannot read them. */
static int read_keys(struct pr *p, int who, uint64_t *keys, int max)
{
	struct vreply r;
	int count;

	if (!pr_in(p, who, IN_READ_KEYS, &r))
		return -1;
	count = vparse_keys(r.data, r.len, keys, max);
	return readable(p, who, count, "READ KEYS") ? count : -1;
}

/* Whether node who sees exactly the keys given (0: absent). */
static bool keys_are(struct pr *p, int who, uint64_t k1, uint64_t k2, const char *when)
{
	uint64_t keys[16];
	int n = read_keys(p, who, keys, 16);
	bool has1 = !k1, has2 = !k2;

	if (n < 0)
		return false;
	for (int i = 0; i < n; i++) {
		has1 |= keys[i] == k1;
		has2 |= keys[i] == k2;
	}
	if (has1 && has2 && n == (k1 != 0) + (k2 != 0))
		return true;
	vnote_add(p->n, "%s, node %d's path shows %d key%s, want %s%s%s", when, who + 1, n, n == 1 ? "" : "s",
	          k1 ? "node 1's" : "", k1 && k2 ? " and " : "", k2 ? "node 2's" : !k1 ? "none" : "");
	p->bad = true;
	return false;
}

/* Whether node who sees the reservation of key with type (key 0: none). */
static bool reservation_is(struct pr *p, int who, uint64_t key, int type, const char *when)
{
	struct vreply r;
	uint64_t holder = 0;
	int held = 0, held_type = 0;

	if (!pr_in(p, who, IN_READ_RESERVATION, &r) ||
	    !readable(p, who, held = vparse_reservation(r.data, r.len, &holder, &held_type), "READ RESERVATION"))
		return false;
	if (!key && !held)
		return true;
	if (key && held && holder == key && held_type == type)
		return true;
	if (held)
		vnote_add(p->n, "%s, node %d's path shows a reservation of type %d by %s, want %s", when, who + 1, held_type,
		          holder == KEY_1 ? "node 1" : holder == KEY_2 ? "node 2" : "another key",
		          key == KEY_1 ? "node 1's" : key == KEY_2 ? "node 2's" : "none");
	else
		vnote_add(p->n, "%s, node %d's path shows no reservation", when, who + 1);
	p->bad = true;
	return false;
}

/* Reads (or writes back) one block; the reply in r. */
static void io_block(struct pr *p, int who, bool write, uint64_t lba, const void *data, struct vreply *r)
{
	uint8_t cdb[16] = { write ? 0x8a : 0x88 };
	uint32_t bs = p->c->paths[0].id.block_size;

	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, 1);
	vsession_cmd_past_ua(p->node[who], cdb, sizeof(cdb), write ? VDIR_OUT : VDIR_IN, data, bs, r);
}

static bool read_expect(struct pr *p, int who, int want, const char *what)
{
	struct vreply r;

	io_block(p, who, false, 0, NULL, &r);
	return expect(p, &r, want, what);
}

/* Whether node who is told asc by a unit attention before its next command runs. */
static bool told(struct pr *p, int who, int asc, const char *what)
{
	static const uint8_t tur[6] = { 0 };
	struct vreply r;
	char got[200];

	for (int i = 0; i < 4; i++) {
		vsession_cmd(p->node[who], tur, sizeof(tur), VDIR_NONE, NULL, 0, &r);
		if (vreply_sense_is(&r, UA, asc))
			return true;
		if (r.status != CHECK_CONDITION || r.sense_key != UA)
			break;
	}
	vnote_add(p->n, "%s: node %d was not told (unit attention 0x%04x); its next command got %s", what, who + 1,
	          (unsigned)asc, vreply_text(&r, got, sizeof(got)));
	p->bad = true;
	return false;
}

/* Removes every registration and the reservation: each node registers, whatever it had,
 * and clears (through both, for a target whose nodes do not share the state); true if
 * neither path shows a key afterwards. */
static bool clean(struct pr *p)
{
	bool was_bad = p->bad, ok = true;
	uint64_t keys[16];
	struct vreply r;

	for (int who = 0; who < 2; who++) {
		send_out(p, who, SA_REGISTER_IGNORE, 0, 0, who ? KEY_2 : KEY_1, &r);
		ok &= r.status == GOOD;
		send_out(p, who, SA_CLEAR, 0, who ? KEY_2 : KEY_1, 0, &r);
		ok &= r.status == GOOD;
	}
	for (int who = 0; who < 2; who++)
		ok &= read_keys(p, who, keys, 16) == 0;
	if (ok) {
		p->bad = was_bad;
		return true;
	}
	vnote_add(p->n, "cleanup failed: registrations may remain on the disk (keys 0x%llx, 0x%llx); clear them with "
	                "sg_persist --clear", (unsigned long long)KEY_1, (unsigned long long)KEY_2);
	return false;
}

/* Opens both nodes' sessions on a disk without registrations, runs the steps, cleans up
 * whatever happened, closes. */
enum vverdict validate_pr_run(struct vctx *c, struct vnote *n, vpr_fn *steps)
{
	struct pr p = { .c = c, .n = n };
	enum vverdict v = V_FAIL;
	const char *done;
	char err[1024];
	uint64_t keys[16];
	int count = -1;

	if (!c->one_disk)
		return verdict(n, V_SKIP, "the paths do not reach one disk (see paths)");
	for (int who = 0; who < 2; who++) {
		const struct vpath *path = &c->paths[who < (int)c->n ? who : 0];

		if (vsession_open(path->url, c->initiators[who], &c->auth, &p.node[who], err, sizeof(err)) < 0) {
			v = verdict(n, V_FAIL, "node %d: %s", who + 1, err);
			goto out;
		}
	}
	for (int who = 0; who < 2; who++) {
		count = read_keys(&p, who, keys, 16);
		for (int i = 0; i < count; i++)
			if (keys[i] != KEY_1 && keys[i] != KEY_2) {
				v = verdict(n, V_SKIP, "the disk holds %d registration%s of other initiators: a cluster may be "
				                       "using it, and this check would break its reservation; when it is idle, "
				                       "clear them (sg_persist --clear) and run again", count, count == 1 ? "" : "s");
				goto out;
			}
		/* Ours, left by an interrupted run. */
		if (count < 0 || (count > 0 && !clean(&p)))
			goto out;
	}
	done = steps(&p);
	if (clean(&p) && !p.bad)
		v = verdict(n, V_PASS, "%s%s", done, c->n < 2 ? " (both initiators on the one path given)" : "");
out:
	vsession_close(p.node[0]);
	vsession_close(p.node[1]);
	return v;
}

/* Both nodes registered, node 1 holding a reservation of type. */
static bool held_by_node_1(struct pr *p, int type)
{
	return out(p, 0, SA_REGISTER, 0, 0, KEY_1, GOOD, "node 1 REGISTER") &&
	       out(p, 1, SA_REGISTER, 0, 0, KEY_2, GOOD, "node 2 REGISTER") &&
	       out(p, 0, SA_RESERVE, type, KEY_1, 0, GOOD, "node 1 RESERVE");
}

const char *vpr_register(struct pr *p)
{
	(void)(out(p, 0, SA_REGISTER, 0, 0, KEY_1, GOOD, "node 1 REGISTER") &&
	       out(p, 1, SA_REGISTER, 0, 0, KEY_2, GOOD, "node 2 REGISTER") &&
	       keys_are(p, 0, KEY_1, KEY_2, "both registered") && keys_are(p, 1, KEY_1, KEY_2, "both registered") &&
	       out(p, 0, SA_REGISTER, 0, KEY_2, KEY_1, CONFLICT, "node 1 REGISTER giving node 2's key as its own") &&
	       out(p, 0, SA_REGISTER, 0, KEY_1, 0, GOOD, "node 1 unregistering") &&
	       keys_are(p, 1, 0, KEY_2, "node 1 unregistered"));
	return "both keys seen on both paths; a wrong key got RESERVATION CONFLICT; unregistering removed "
	       "only node 1's key";
}

const char *vpr_reserve(struct pr *p)
{
	(void)(held_by_node_1(p, TYPE_EA_RO) && reservation_is(p, 0, KEY_1, TYPE_EA_RO, "node 1 reserved") &&
	       reservation_is(p, 1, KEY_1, TYPE_EA_RO, "node 1 reserved") &&
	       out(p, 0, SA_RESERVE, TYPE_EA_RO, KEY_1, 0, GOOD, "node 1 RESERVE again, as the holder") &&
	       read_expect(p, 0, GOOD, "node 1 READ as the holder") &&
	       read_expect(p, 1, GOOD, "node 2 READ as a registrant"));
	return "node 1 holds an exclusive access, registrants only reservation, seen on both paths; both "
	       "registrants may read";
}

const char *vpr_conflict(struct pr *p)
{
	static const uint8_t tur[6] = { 0 };
	struct vreply r;

	(void)(out(p, 0, SA_REGISTER, 0, 0, KEY_1, GOOD, "node 1 REGISTER") &&
	       out(p, 0, SA_RESERVE, TYPE_EA_RO, KEY_1, 0, GOOD, "node 1 RESERVE") &&
	       read_expect(p, 1, CONFLICT, "node 2 READ, not registered, while node 1 holds exclusive access") &&
	       (vsession_cmd_past_ua(p->node[1], tur, sizeof(tur), VDIR_NONE, NULL, 0, &r),
	        expect(p, &r, GOOD, "node 2 TEST UNIT READY (allowed under every reservation)")) &&
	       out(p, 1, SA_RESERVE, TYPE_EA_RO, KEY_2, 0, CONFLICT, "node 2 RESERVE, not registered") &&
	       out(p, 1, SA_REGISTER, 0, 0, KEY_2, GOOD, "node 2 REGISTER") &&
	       read_expect(p, 1, GOOD, "node 2 READ once registered") &&
	       out(p, 1, SA_RESERVE, TYPE_EA_RO, KEY_2, 0, CONFLICT, "node 2 RESERVE while node 1 holds it") &&
	       out(p, 1, SA_RESERVE, TYPE_WE_RO, KEY_2, 0, CONFLICT, "node 2 RESERVE of another type") &&
	       out(p, 1, SA_RELEASE, TYPE_EA_RO, KEY_2, 0, GOOD, "node 2 RELEASE of a reservation it does not hold") &&
	       reservation_is(p, 0, KEY_1, TYPE_EA_RO, "after node 2's RELEASE"));
	return "node 2 got RESERVATION CONFLICT for READ and RESERVE until it registered, then for RESERVE; "
	       "its RELEASE left node 1's reservation in place";
}

const char *vpr_preempt(struct pr *p)
{
	(void)(held_by_node_1(p, TYPE_EA_RO) &&
	       out(p, 1, SA_PREEMPT, TYPE_EA_RO, KEY_2, KEY_1, GOOD, "node 2 PREEMPT of node 1") &&
	       told(p, 0, ASC_REGISTRATIONS_PREEMPTED, "node 1 preempted") &&
	       reservation_is(p, 0, KEY_2, TYPE_EA_RO, "node 2 preempted node 1") &&
	       keys_are(p, 0, 0, KEY_2, "node 2 preempted node 1") &&
	       read_expect(p, 0, CONFLICT, "node 1 READ after losing its registration") &&
	       read_expect(p, 1, GOOD, "node 2 READ as the new holder"));
	return "node 2 holds the reservation, node 1's key is gone, node 1 was told REGISTRATIONS PREEMPTED "
	       "and got RESERVATION CONFLICT";
}

const char *vpr_preempt_abort(struct pr *p)
{
	struct vend end[IN_FLIGHT];
	int ended = 0, aborted, after = 0;
	bool was_told = false;
	uint64_t disk = p->c->paths[0].id.blocks;
	uint32_t blocks = 65536 / (p->c->paths[0].id.block_size ? p->c->paths[0].id.block_size : 512);

	if (!held_by_node_1(p, TYPE_EA_RO))
		return "";
	/* Node 1's reads in flight when node 2 strikes: each must have ended before, be aborted
	 * (no status, or TASK ABORTED), or come after it and be refused (the unit attention
	 * telling node 1, or RESERVATION CONFLICT). */
	for (int i = 0; i < IN_FLIGHT; i++) {
		uint8_t cdb[16] = { 0x88 };

		put_be64(cdb + 2, (uint64_t)i * blocks % (disk > blocks ? disk - blocks : 1));
		put_be32(cdb + 10, blocks);
		if (vsession_queue(p->node[0], cdb, sizeof(cdb), 65536, &end[i]) < 0)
			end[i].status = GOOD;
	}
	if (!out(p, 1, SA_PREEMPT_ABORT, TYPE_EA_RO, KEY_2, KEY_1, GOOD, "node 2 PREEMPT AND ABORT of node 1")) {
		vsession_wait(p->node[0], ABORT_WAIT_MS);
		return "";
	}
	aborted = vsession_wait(p->node[0], ABORT_WAIT_MS);
	for (int i = 0; i < IN_FLIGHT; i++) {
		const struct vend *e = &end[i];
		bool ua = e->status == CHECK_CONDITION && e->sense_key == UA;

		was_told |= ua && e->asc == ASC_REGISTRATIONS_PREEMPTED;
		if (e->status == GOOD)
			ended++;
		else if (e->status == TASK_ABORTED)
			aborted++;
		else if (e->status == CONFLICT || ua)
			after++;
		else if (e->status != VREPLY_NO_ANSWER) {
			vnote_add(p->n, "node 1's read %d in flight ended with status 0x%02x", i, (unsigned)e->status);
			p->bad = true;
		}
	}
	(void)((was_told || told(p, 0, ASC_REGISTRATIONS_PREEMPTED, "node 1 preempted and aborted")) &&
	       reservation_is(p, 1, KEY_2, TYPE_EA_RO, "node 2 preempted node 1") &&
	       keys_are(p, 1, 0, KEY_2, "node 2 preempted node 1") &&
	       read_expect(p, 0, CONFLICT, "node 1 READ after PREEMPT AND ABORT"));
	snprintf(p->done, sizeof(p->done), "node 2 took the reservation and node 1's key; of node 1's %d reads in flight "
	         "%d had ended, %d were aborted, %d came after and were refused; node 1 was told REGISTRATIONS PREEMPTED",
	         IN_FLIGHT, ended, aborted, after);
	return p->done;
}

/* The holder's RELEASE naming another type than it holds must be refused. */
static bool wrong_release_refused(struct pr *p)
{
	struct vreply r;
	char got[200];

	send_out(p, 0, SA_RELEASE, TYPE_WE_RO, KEY_1, 0, &r);
	if (vreply_sense_is(&r, ILLEGAL_REQUEST, ASC_INVALID_RELEASE))
		return true;
	vnote_add(p->n, "node 1 RELEASE of another type than it holds: %s, want CHECK CONDITION, INVALID RELEASE OF "
	                "PERSISTENT RESERVATION", vreply_text(&r, got, sizeof(got)));
	p->bad = true;
	return false;
}

const char *vpr_release(struct pr *p)
{
	(void)(held_by_node_1(p, TYPE_EA_RO) && wrong_release_refused(p) &&
	       out(p, 0, SA_RELEASE, TYPE_EA_RO, KEY_1, 0, GOOD, "node 1 RELEASE") &&
	       told(p, 1, ASC_RESERVATIONS_RELEASED, "node 1 released") &&
	       reservation_is(p, 1, 0, 0, "node 1 released") && reservation_is(p, 0, 0, 0, "node 1 released") &&
	       keys_are(p, 1, KEY_1, KEY_2, "node 1 released"));
	return "a RELEASE of the wrong type was refused; after node 1's RELEASE neither path shows a "
	       "reservation, both keys stay, node 2 was told RESERVATIONS RELEASED";
}

const char *vpr_clear(struct pr *p)
{
	(void)(held_by_node_1(p, TYPE_EA_RO) && out(p, 1, SA_CLEAR, 0, KEY_2, 0, GOOD, "node 2 CLEAR") &&
	       told(p, 0, ASC_RESERVATIONS_PREEMPTED, "node 2 cleared") &&
	       keys_are(p, 0, 0, 0, "node 2 cleared") && reservation_is(p, 0, 0, 0, "node 2 cleared") &&
	       reservation_is(p, 1, 0, 0, "node 2 cleared") && read_expect(p, 0, GOOD, "node 1 READ after CLEAR"));
	return "node 2's CLEAR removed both keys and node 1's reservation on both paths; node 1 was told "
	       "RESERVATIONS PREEMPTED";
}

/* With --write: who writes back the block it read, and the write must end with want. */
static bool write_expect(struct pr *p, int who, const struct vreply *block, int want, const char *what)
{
	struct vreply r;

	if (!p->c->o->write)
		return true;
	io_block(p, who, true, p->c->paths[0].id.blocks - 1, block->data, &r);
	return expect(p, &r, want, what);
}

const char *vpr_arbitration(struct pr *p)
{
	struct vreply block;

	/* The writes write back what was read: the data never changes.  (pr-preempt checks
	 * that a preempted node is told; here what counts is that it is fenced off.) */
	io_block(p, 0, false, p->c->paths[0].id.blocks - 1, NULL, &block);
	if (!expect(p, &block, GOOD, "node 1 READ of the last block"))
		return "";
	(void)(held_by_node_1(p, TYPE_WE_RO) && reservation_is(p, 1, KEY_1, TYPE_WE_RO, "node 1 holds the disk") &&
	       write_expect(p, 0, &block, GOOD, "node 1 WRITE as the holder") &&
	       write_expect(p, 1, &block, GOOD, "node 2 WRITE as a registrant") &&
	       out(p, 1, SA_PREEMPT, TYPE_WE_RO, KEY_2, KEY_1, GOOD, "node 2 PREEMPT of node 1 (failover)") &&
	       reservation_is(p, 0, KEY_2, TYPE_WE_RO, "node 2 took over") &&
	       out(p, 0, SA_REGISTER, 0, KEY_1, KEY_1, CONFLICT, "fenced node 1 REGISTER with its old key") &&
	       out(p, 0, SA_RESERVE, TYPE_WE_RO, KEY_1, 0, CONFLICT, "fenced node 1 RESERVE") &&
	       write_expect(p, 0, &block, CONFLICT, "fenced node 1 WRITE") &&
	       write_expect(p, 1, &block, GOOD, "node 2 WRITE as the new holder") &&
	       read_expect(p, 0, GOOD, "fenced node 1 READ (write exclusive allows reads)") &&
	       out(p, 0, SA_REGISTER, 0, 0, KEY_1, GOOD, "node 1 REGISTER again (it rejoins)") &&
	       out(p, 0, SA_PREEMPT, TYPE_WE_RO, KEY_1, KEY_2, GOOD, "node 1 PREEMPT of node 2 (failback)") &&
	       reservation_is(p, 1, KEY_1, TYPE_WE_RO, "node 1 took the disk back") &&
	       out(p, 1, SA_RESERVE, TYPE_WE_RO, KEY_2, 0, CONFLICT, "fenced node 2 RESERVE") &&
	       write_expect(p, 1, &block, CONFLICT, "fenced node 2 WRITE"));
	snprintf(p->done, sizeof(p->done), "node 2 took the disk from node 1 by PREEMPT, node 1 was fenced off "
	         "(RESERVATION CONFLICT for REGISTER, RESERVE%s), then node 1 rejoined and took it back the same way%s",
	         p->c->o->write ? ", WRITE" : "",
	         p->c->o->write ? "" : "; writes not tried (--write tries them, writing back the data read)");
	return p->done;
}
