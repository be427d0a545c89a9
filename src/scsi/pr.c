/* Reservations of one logical unit (SPC-4 §5.13, §6.15, §6.16; SPC-2 RESERVE/RELEASE).
 *
 * A registration belongs to an I_T nexus: an initiator port (name + ISID) on a relative
 * target port, or, with ALL_TG_PT, on every target port; the latter is kept as one record
 * so that ports added later (a replication partner's) are covered without being listed.
 * Such a record is removed as a whole when any of its nexuses unregisters.  The reservation
 * is a type plus either one holder registration or, for the all-registrants types, every
 * registration.  RESERVE(6) is a separate, volatile holder nexus; persistent reservations
 * take precedence as the CRH=1 rules of SPC-4 §5.13.3 say. */
#include "scsi/pr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "scsi/lu.h"
#include "scsi/nexus_set.h"
#include "scsi/pr_file.h"
#include "scsi/pr_port.h"

enum prin_action { PRIN_READ_KEYS, PRIN_READ_RESERVATION, PRIN_REPORT_CAPABILITIES, PRIN_READ_FULL_STATUS };

enum prout_action {
	PROUT_REGISTER, PROUT_RESERVE, PROUT_RELEASE, PROUT_CLEAR, PROUT_PREEMPT,
	PROUT_PREEMPT_AND_ABORT, PROUT_REGISTER_IGNORE, PROUT_REGISTER_AND_MOVE,
};

#define PROUT_BASIC_LEN 24       /* the parameter list without TransportIDs */
#define PROUT_SPEC_I_PT 0x08     /* byte 20 */
#define PROUT_ALL_TG_PT 0x04
#define PROUT_APTPL 0x01
#define PROUT_MOVE_UNREG 0x02    /* byte 17 of the REGISTER AND MOVE list */
#define PROUT_MOVE_APTPL 0x01

#define CAPS_LEN 8
#define CAPS_CRH 0x10            /* byte 2 */
#define CAPS_SIP_C 0x08
#define CAPS_ATP_C 0x04
#define CAPS_PTPL_C 0x01
#define CAPS_TMV 0x80            /* byte 3 */
#define CAPS_ALLOW_COMMANDS 0x10 /* ALLOW COMMANDS 001b: TUR allowed under exclusive access */
#define CAPS_PTPL_A 0x01
#define CAPS_TYPE_MASK 0xea01    /* WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX | EX_AC_AR */

#define FULL_STATUS_DESC_LEN 24  /* before the TransportID */
#define FULL_ALL_TG_PT 0x02
#define FULL_R_HOLDER 0x01

struct pr_state {
	char *state_path;
	struct ua_set *ua;
	struct pr_image img;
	struct pr_reg *spare; /* as many entries as img.regs has room for: removal scratch */
	size_t cap;
	bool aptpl;           /* the last valid APTPL bit: state lives in state_path */
	bool resv6_held;
	struct pr_port resv6_port;
	uint16_t resv6_relative_port;
};

/* A decoded PERSISTENT RESERVE OUT command. */
struct prout {
	uint8_t action, scope, type;
	uint64_t key, sa_key;
	bool spec_i_pt, all_tg_pt, aptpl, unreg;
	uint16_t relative_port;   /* REGISTER AND MOVE destination */
	const uint8_t *tids;      /* TransportIDs (SPEC_I_PT, REGISTER AND MOVE) */
	size_t tids_len;
	size_t tids_offset;       /* where they start in the parameter list, for field pointers */
};

/* ---- registrations ---- */

static struct pr_reg *reg_find(struct pr_state *pr, const struct scsi_itn *itn)
{
	for (size_t i = 0; i < pr->img.nregs; i++)
		if (nexus_reg_covers(&pr->img.regs[i], itn))
			return &pr->img.regs[i];
	return NULL;
}

static const struct pr_reg *reg_find_const(const struct pr_state *pr, const struct scsi_itn *itn)
{
	return reg_find((struct pr_state *)pr, itn);
}

static bool reg_holds(const struct pr_state *pr, const struct pr_reg *r)
{
	return pr->img.type != 0 && (pr_type_all_registrants(pr->img.type) || r->holder);
}

static const struct pr_reg *holder_reg(const struct pr_state *pr)
{
	for (size_t i = 0; i < pr->img.nregs; i++)
		if (pr->img.regs[i].holder)
			return &pr->img.regs[i];
	return NULL;
}

static bool reserve_room(struct pr_state *pr, size_t more)
{
	size_t need = pr->img.nregs + more;
	if (need > PR_MAX_REGISTRATIONS)
		return false;
	if (need <= pr->cap)
		return true;
	size_t cap = MAX(need, pr->cap * 2);
	cap = MIN(MAX(cap, (size_t)8), (size_t)PR_MAX_REGISTRATIONS);
	struct pr_reg *regs = realloc(pr->img.regs, cap * sizeof(*regs));
	if (!regs)
		return false;
	pr->img.regs = regs;
	struct pr_reg *spare = realloc(pr->spare, cap * sizeof(*spare));
	if (!spare)
		return false;
	pr->spare = spare;
	pr->cap = cap;
	return true;
}

/* Moves the registrations pick() selects into pr->spare (order kept on both sides) and
 * returns how many; they are gone from the state but readable until the next change. */
static size_t regs_take(struct pr_state *pr, bool (*pick)(const struct pr_reg *r, const void *arg),
                        const void *arg)
{
	size_t kept = 0, taken = 0;
	for (size_t i = 0; i < pr->img.nregs; i++) {
		if (pick(&pr->img.regs[i], arg))
			pr->spare[taken++] = pr->img.regs[i];
		else
			pr->img.regs[kept++] = pr->img.regs[i];
	}
	pr->img.nregs = kept;
	return taken;
}

/* The reservation ends when its holder goes; an all-registrants one when nobody is left. */
static void reservation_check_holder(struct pr_state *pr)
{
	if (pr->img.type == 0)
		return;
	if (pr_type_all_registrants(pr->img.type) ? pr->img.nregs == 0 : holder_reg(pr) == NULL)
		pr->img.type = 0;
}

/* ---- unit attentions and aborts for sets of nexuses ---- */

static void raise_for(struct pr_state *pr, const struct pr_reg *regs, size_t n,
                      const struct scsi_itn *except, enum sense_asc asc)
{
	struct nexus_set set = { false, regs, n, except };
	if (n > 0)
		ua_raise_set(pr->ua, &set, asc);
}

static void raise_for_registrants(struct pr_state *pr, const struct scsi_itn *except, enum sense_asc asc)
{
	raise_for(pr, pr->img.regs, pr->img.nregs, except, asc);
}

/* Releasing a registrants-only or all-registrants reservation tells the other
 * registrants (SPC-4 §5.13.11.2.2); the plain types have no registrant access to lose. */
static void release_notify(struct pr_state *pr, uint8_t old_type, const struct scsi_itn *itn)
{
	if (old_type != PR_TYPE_WE && old_type != PR_TYPE_EA)
		raise_for_registrants(pr, itn, ASC_RESERVATIONS_RELEASED);
}

/* ---- persistence ---- */

/* Called after every change; APTPL state must reach the disk before the command's GOOD. */
static bool persist(struct pr_state *pr, struct scsi_task *task, bool aptpl_before)
{
	char err[256];
	int rc = 0;

	if (pr->aptpl)
		rc = pr_file_save(pr->state_path, &pr->img, err, sizeof(err));
	else if (aptpl_before)
		rc = pr_file_remove(pr->state_path, err, sizeof(err));
	if (rc == 0)
		return true;
	log_err("persistent reservations: cannot update %s: %s", pr->state_path, err);
	lu_sense(task, SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
	return false;
}

/* ---- status helpers ---- */

static void conflict(struct scsi_task *task)
{
	task->status = SCSI_STATUS_RESERVATION_CONFLICT;
	task->sense_len = 0;
}

static void bad_cdb_field(struct scsi_task *task, uint16_t byte, int bit)
{
	lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, byte, bit);
}

static void bad_param_field(struct scsi_task *task, uint16_t byte, int bit)
{
	lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, byte, bit);
}

static void bad_param_length(struct scsi_task *task)
{
	lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
}

bool pr_resv6_held_by(const struct pr_state *pr, const struct scsi_itn *itn)
{
	return pr->resv6_held && pr_port_matches(&pr->resv6_port, itn) &&
	       pr->resv6_relative_port == itn->relative_port;
}

static bool resv6_conflicts(const struct pr_state *pr, const struct scsi_itn *itn)
{
	return pr->resv6_held && !pr_resv6_held_by(pr, itn);
}

/* ---- life cycle ---- */

int pr_state_new(const char *state_path, struct ua_set *ua, struct pr_state **out, char *err, size_t errlen)
{
	struct pr_state *pr = calloc(1, sizeof(*pr));
	if (!pr || (state_path && !(pr->state_path = strdup(state_path)))) {
		free(pr);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pr->ua = ua;
	if (state_path) {
		struct pr_image img;
		int rc = pr_file_load(state_path, &img, err, errlen);
		if (rc < 0) {
			pr_state_free(pr);
			return -1;
		}
		if (rc == 0) {
			pr->img = img;
			pr->cap = img.nregs;
			pr->spare = calloc(pr->cap ? pr->cap : 1, sizeof(*pr->spare));
			if (!pr->spare) {
				snprintf(err, errlen, "out of memory");
				pr_state_free(pr);
				return -1;
			}
			pr->aptpl = true;
			log_info("persistent reservations: loaded %zu registration(s) from %s", img.nregs, state_path);
		}
	}
	*out = pr;
	return 0;
}

void pr_state_free(struct pr_state *pr)
{
	if (!pr)
		return;
	pr_image_clear(&pr->img);
	free(pr->spare);
	free(pr->state_path);
	free(pr);
}

/* ---- the gate ---- */

bool pr_allows(const struct pr_state *pr, const struct scsi_itn *itn, unsigned gate)
{
	if (gate & PR_GATE_NEVER)
		return true;
	if (resv6_conflicts(pr, itn) && !(gate & PR_GATE_RESV6_OK))
		return false;
	if (pr->img.type == 0 || !(gate & (PR_GATE_READ | PR_GATE_WRITE)))
		return true;

	const struct pr_reg *r = reg_find_const(pr, itn);
	if (r && reg_holds(pr, r))
		return true;
	/* Under registrants-only and all-registrants types registrants have full access. */
	if (r && pr->img.type != PR_TYPE_WE && pr->img.type != PR_TYPE_EA)
		return true;
	bool write_exclusive = pr->img.type == PR_TYPE_WE || pr->img.type == PR_TYPE_WE_RO ||
	                       pr->img.type == PR_TYPE_WE_AR;
	return write_exclusive && !(gate & PR_GATE_WRITE);
}

/* ---- PERSISTENT RESERVE IN ---- */

static uint8_t scope_type(const struct pr_state *pr)
{
	return pr->img.type; /* scope LU_SCOPE (0) in the high nibble */
}

static bool prin_alloc(struct scsi_task *task, uint32_t len)
{
	uint32_t alloc = get_be16(task->cdb + 7);
	if (!lu_alloc_data_in(task, len))
		return false;
	task->data_in_len = MIN(len, alloc);
	return true;
}

static void prin_read_keys(struct pr_state *pr, struct scsi_task *task)
{
	uint32_t add = (uint32_t)(8 * pr->img.nregs);
	if (!prin_alloc(task, 8 + add))
		return;
	uint8_t *d = task->data_in;
	put_be32(d, pr->img.generation);
	put_be32(d + 4, add);
	for (size_t i = 0; i < pr->img.nregs; i++)
		put_be64(d + 8 + 8 * i, pr->img.regs[i].key);
}

static void prin_read_reservation(struct pr_state *pr, struct scsi_task *task)
{
	uint32_t add = pr->img.type ? 16 : 0;
	if (!prin_alloc(task, 8 + add))
		return;
	uint8_t *d = task->data_in;
	put_be32(d, pr->img.generation);
	put_be32(d + 4, add);
	if (pr->img.type) {
		const struct pr_reg *h = holder_reg(pr);
		/* all-registrants reservations report key zero (SPC-4 §6.15.3.3) */
		put_be64(d + 8, h ? h->key : 0);
		d[21] = scope_type(pr);
	}
}

static void prin_report_capabilities(struct pr_state *pr, struct scsi_task *task)
{
	if (!prin_alloc(task, CAPS_LEN))
		return;
	uint8_t *d = task->data_in;
	put_be16(d, CAPS_LEN);
	d[2] = CAPS_CRH | CAPS_SIP_C | CAPS_ATP_C | (pr->state_path ? CAPS_PTPL_C : 0);
	d[3] = CAPS_TMV | CAPS_ALLOW_COMMANDS | (pr->aptpl ? CAPS_PTPL_A : 0);
	put_be16(d + 4, CAPS_TYPE_MASK);
}

static void prin_read_full_status(struct pr_state *pr, struct scsi_task *task)
{
	uint32_t add = 0;
	for (size_t i = 0; i < pr->img.nregs; i++)
		add += FULL_STATUS_DESC_LEN + (uint32_t)pr_tid_len(&pr->img.regs[i].port);
	if (!prin_alloc(task, 8 + add))
		return;
	uint8_t *d = task->data_in;
	put_be32(d, pr->img.generation);
	put_be32(d + 4, add);
	d += 8;
	for (size_t i = 0; i < pr->img.nregs; i++) {
		const struct pr_reg *r = &pr->img.regs[i];
		size_t tid_len = pr_tid_len(&r->port);
		put_be64(d, r->key);
		d[12] = (r->all_tg_pt ? FULL_ALL_TG_PT : 0) | (reg_holds(pr, r) ? FULL_R_HOLDER : 0);
		if (reg_holds(pr, r))
			d[13] = scope_type(pr);
		put_be16(d + 18, r->all_tg_pt ? 0 : r->relative_port);
		put_be32(d + 20, (uint32_t)tid_len);
		pr_tid_encode(&r->port, d + FULL_STATUS_DESC_LEN);
		d += FULL_STATUS_DESC_LEN + tid_len;
	}
}

void pr_persistent_reserve_in(struct pr_state *pr, struct scsi_task *task)
{
	static void (*const actions[])(struct pr_state *, struct scsi_task *) = {
		[PRIN_READ_KEYS] = prin_read_keys,
		[PRIN_READ_RESERVATION] = prin_read_reservation,
		[PRIN_REPORT_CAPABILITIES] = prin_report_capabilities,
		[PRIN_READ_FULL_STATUS] = prin_read_full_status,
	};
	unsigned action = task->cdb[1] & 0x1f;

	task->status = SCSI_STATUS_GOOD;
	if (action >= ARRAY_SIZE(actions)) {
		bad_cdb_field(task, 1, 4);
		return;
	}
	/* SPC-2 §5.5.1: under RESERVE(6) persistent reservation commands conflict for every
	 * nexus, the holder's included */
	if (pr->resv6_held) {
		conflict(task);
		return;
	}
	actions[action](pr, task);
}

/* ---- PERSISTENT RESERVE OUT ---- */

/* Decodes CDB and parameter list; false with the task's error set if they are malformed. */
static bool prout_decode(const struct pr_state *pr, struct scsi_task *task, struct prout *p)
{
	const uint8_t *cdb = task->cdb;
	uint32_t plen = get_be32(cdb + 5);
	const uint8_t *d = task->data_out;

	memset(p, 0, sizeof(*p));
	p->action = cdb[1] & 0x1f;
	p->scope = cdb[2] >> 4;
	p->type = cdb[2] & 0xf;
	if (p->action > PROUT_REGISTER_AND_MOVE) {
		bad_cdb_field(task, 1, 4);
		return false;
	}
	if (plen < PROUT_BASIC_LEN || task->data_out_len < plen || !d) {
		bad_param_length(task);
		return false;
	}
	p->key = get_be64(d);
	p->sa_key = get_be64(d + 8);

	if (p->action == PROUT_REGISTER_AND_MOVE) {
		p->unreg = d[17] & PROUT_MOVE_UNREG;
		p->aptpl = d[17] & PROUT_MOVE_APTPL;
		p->relative_port = get_be16(d + 18);
		p->tids_len = get_be32(d + 20);
		p->tids_offset = PROUT_BASIC_LEN;
	} else {
		p->spec_i_pt = d[20] & PROUT_SPEC_I_PT;
		p->all_tg_pt = d[20] & PROUT_ALL_TG_PT;
		p->aptpl = d[20] & PROUT_APTPL;
		bool registers = p->action == PROUT_REGISTER || p->action == PROUT_REGISTER_IGNORE;
		if (p->spec_i_pt && !registers) {
			bad_param_field(task, 20, 3);
			return false;
		}
		if (!registers)
			p->aptpl = p->all_tg_pt = false; /* ignored by the other service actions */
		if (p->spec_i_pt) {
			if (plen < PROUT_BASIC_LEN + 4) {
				bad_param_length(task);
				return false;
			}
			p->tids_len = get_be32(d + PROUT_BASIC_LEN);
			p->tids_offset = PROUT_BASIC_LEN + 4;
		} else if (plen != PROUT_BASIC_LEN) {
			bad_param_length(task);
			return false;
		}
	}
	if (p->tids_offset && p->tids_len > plen - p->tids_offset) {
		bad_param_length(task);
		return false;
	}
	p->tids = d + p->tids_offset;
	if (p->aptpl && !pr->state_path) {
		bad_param_field(task, p->action == PROUT_REGISTER_AND_MOVE ? 17 : 20, 0);
		return false;
	}
	return true;
}

/* Adds `adds` registrations at once, or none (SPC-4: a failed SPEC_I_PT registers nobody). */
static bool regs_add(struct pr_state *pr, struct scsi_task *task, const struct pr_reg *adds, size_t n,
                     const struct prout *p)
{
	for (size_t i = 0; i < n; i++) {
		bool clash = false;
		for (size_t j = 0; j < pr->img.nregs && !clash; j++)
			clash = pr_reg_overlaps(&adds[i], &pr->img.regs[j]);
		for (size_t j = 0; j < i && !clash; j++)
			clash = pr_reg_overlaps(&adds[i], &adds[j]);
		if (clash) {
			/* the issuer's own registration can only clash through ALL_TG_PT */
			if (i == 0)
				bad_param_field(task, 20, 2);
			else
				bad_param_field(task, (uint16_t)p->tids_offset, -1);
			return false;
		}
	}
	if (!reserve_room(pr, n)) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
		return false;
	}
	memcpy(pr->img.regs + pr->img.nregs, adds, n * sizeof(*adds));
	pr->img.nregs += n;
	return true;
}

/* Counts the TransportIDs of a SPEC_I_PT list, or sets the error and returns -1. */
static long tids_count(struct scsi_task *task, const struct prout *p)
{
	struct pr_port port;
	long n = 0;
	for (size_t off = 0; off < p->tids_len; n++) {
		size_t len = pr_tid_parse(p->tids + off, p->tids_len - off, &port);
		if (len == 0) {
			bad_param_field(task, (uint16_t)MIN(p->tids_offset + off, (size_t)UINT16_MAX), -1);
			return -1;
		}
		off += len;
	}
	return n;
}

/* Registers the issuing nexus and, with SPEC_I_PT, the initiator ports listed, on the
 * issuer's target port or, with ALL_TG_PT, on all. */
static bool register_new(struct pr_state *pr, struct scsi_task *task, const struct prout *p)
{
	long ntids = tids_count(task, p);
	if (ntids < 0)
		return false;
	if (pr->img.nregs + 1 + (size_t)ntids > PR_MAX_REGISTRATIONS) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
		return false;
	}
	size_t n = 1 + (size_t)ntids;
	struct pr_reg *adds = calloc(n, sizeof(*adds));
	if (!adds) {
		lu_sense(task, SENSE_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return false;
	}
	pr_port_from_itn(&adds[0].port, task->itn);
	for (size_t i = 1, off = 0; i < n; i++)
		off += pr_tid_parse(p->tids + off, p->tids_len - off, &adds[i].port);
	for (size_t i = 0; i < n; i++) {
		adds[i].relative_port = task->itn->relative_port;
		adds[i].all_tg_pt = p->all_tg_pt;
		adds[i].key = p->sa_key;
	}
	bool ok = regs_add(pr, task, adds, n, p);
	free(adds);
	return ok;
}

static void unregister(struct pr_state *pr, struct pr_reg *r, const struct scsi_itn *itn)
{
	uint8_t old_type = pr->img.type;
	bool was_holder = reg_holds(pr, r);

	size_t i = (size_t)(r - pr->img.regs);
	memmove(r, r + 1, (pr->img.nregs - i - 1) * sizeof(*r)); /* keeps READ KEYS order */
	pr->img.nregs--;
	reservation_check_holder(pr);
	if (was_holder && pr->img.type == 0 && !pr_type_all_registrants(old_type))
		release_notify(pr, old_type, itn);
}

static void prout_register(struct pr_state *pr, struct scsi_task *task, const struct prout *p)
{
	struct pr_reg *r = reg_find(pr, task->itn);
	bool ignore_key = p->action == PROUT_REGISTER_IGNORE;

	if (!r) {
		if (!ignore_key && p->key != 0) {
			conflict(task);
			return;
		}
		if (p->sa_key == 0)
			return; /* unregistering an unregistered nexus does nothing */
		if (!register_new(pr, task, p))
			return;
	} else {
		if (!ignore_key && p->key != r->key) {
			conflict(task);
			return;
		}
		if (p->spec_i_pt) {
			bad_param_field(task, 20, 3);
			return;
		}
		if (p->sa_key == 0)
			unregister(pr, r, task->itn);
		else
			r->key = p->sa_key;
	}
	pr->img.generation++;
	bool aptpl_before = pr->aptpl;
	pr->aptpl = p->aptpl;
	persist(pr, task, aptpl_before);
}

/* The SCOPE and TYPE of a command that establishes a reservation. */
static bool scope_type_valid(struct scsi_task *task, const struct prout *p)
{
	if (p->scope != 0) {
		bad_cdb_field(task, 2, 7);
		return false;
	}
	if (!pr_type_valid(p->type)) {
		bad_cdb_field(task, 2, 3);
		return false;
	}
	return true;
}

static void prout_reserve(struct pr_state *pr, struct scsi_task *task, const struct prout *p, struct pr_reg *r)
{
	if (!scope_type_valid(task, p))
		return;
	if (pr->img.type != 0) {
		if (!reg_holds(pr, r) || pr->img.type != p->type)
			conflict(task);
		return;
	}
	pr->img.type = p->type;
	r->holder = !pr_type_all_registrants(p->type);
	persist(pr, task, pr->aptpl);
}

static void prout_release(struct pr_state *pr, struct scsi_task *task, const struct prout *p, struct pr_reg *r)
{
	if (pr->img.type == 0 || !reg_holds(pr, r))
		return;
	if (p->scope != 0 || p->type != pr->img.type) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
		return;
	}
	uint8_t old_type = pr->img.type;
	pr->img.type = 0;
	r->holder = false;
	release_notify(pr, old_type, task->itn);
	persist(pr, task, pr->aptpl);
}

static void prout_clear(struct pr_state *pr, struct scsi_task *task)
{
	raise_for_registrants(pr, task->itn, ASC_RESERVATIONS_PREEMPTED);
	pr->img.nregs = 0;
	pr->img.type = 0;
	pr->img.generation++;
	persist(pr, task, pr->aptpl);
}

struct preempt_pick {
	uint64_t key;
	const struct pr_reg *issuer; /* never picked (NULL: may be picked too) */
};

static bool pick_preempted(const struct pr_reg *r, const void *arg)
{
	const struct preempt_pick *pk = arg;
	return r->key == pk->key && r != pk->issuer;
}

static bool pick_others(const struct pr_reg *r, const void *arg)
{
	const struct preempt_pick *pk = arg;
	return r != pk->issuer;
}

static void prout_preempt(struct pr_state *pr, struct scsi_task *task, const struct prout *p, struct pr_reg *r)
{
	const struct scsi_itn *itn = task->itn;
	const struct pr_reg *holder = holder_reg(pr);
	bool all_registrants = pr_type_all_registrants(pr->img.type);
	/* Preempting the reservation itself: its holder's key, or key 0 under all-registrants. */
	bool takes_reservation = pr->img.type != 0 &&
	                         (all_registrants ? p->sa_key == 0 : holder && holder->key == p->sa_key);
	uint8_t old_type = pr->img.type;
	size_t taken;

	if (takes_reservation) {
		if (!scope_type_valid(task, p))
			return;
		struct preempt_pick pk = { p->sa_key, r };
		taken = regs_take(pr, all_registrants ? pick_others : pick_preempted, &pk);
		for (size_t i = 0; i < pr->img.nregs; i++)
			pr->img.regs[i].holder = false;
		r = reg_find(pr, itn); /* regs_take moved it; it was never picked */
		r->holder = !pr_type_all_registrants(p->type);
		pr->img.type = p->type;
		raise_for(pr, pr->spare, taken, itn, ASC_REGISTRATIONS_PREEMPTED);
		if (old_type != p->type)
			raise_for_registrants(pr, itn, ASC_RESERVATIONS_RELEASED);
	} else {
		if (p->sa_key == 0) {
			bad_param_field(task, 8, -1);
			return;
		}
		struct preempt_pick pk = { p->sa_key, NULL };
		taken = regs_take(pr, pick_preempted, &pk);
		if (taken == 0) {
			conflict(task);
			return;
		}
		reservation_check_holder(pr);
		raise_for(pr, pr->spare, taken, itn, ASC_REGISTRATIONS_PREEMPTED);
	}
	pr->img.generation++;
	if (p->action == PROUT_PREEMPT_AND_ABORT) {
		struct nexus_set set = { false, pr->spare, taken, itn };
		lu_abort_set(task->lu, &set, task);
	}
	persist(pr, task, pr->aptpl);
}

static void prout_register_and_move(struct pr_state *pr, struct scsi_task *task, const struct prout *p,
                                    struct pr_reg *r)
{
	if (pr->img.type == 0 || pr_type_all_registrants(pr->img.type) || !r->holder) {
		conflict(task);
		return;
	}
	if (p->sa_key == 0) {
		bad_param_field(task, 8, -1);
		return;
	}
	if (p->relative_port == 0) {
		bad_param_field(task, 18, -1);
		return;
	}
	struct pr_reg dest = { .relative_port = p->relative_port, .key = p->sa_key };
	size_t len = pr_tid_parse(p->tids, p->tids_len, &dest.port);
	if (len == 0 || len != p->tids_len) {
		bad_param_field(task, (uint16_t)p->tids_offset, -1);
		return;
	}
	struct pr_reg *existing = NULL;
	for (size_t i = 0; i < pr->img.nregs && !existing; i++)
		if (pr_reg_overlaps(&pr->img.regs[i], &dest))
			existing = &pr->img.regs[i];
	if (existing == r) {
		/* the destination is the issuer's own nexus (or shares its ALL_TG_PT record) */
		bad_param_field(task, (uint16_t)p->tids_offset, -1);
		return;
	}
	if (existing) {
		existing->key = p->sa_key;
	} else {
		size_t idx = (size_t)(r - pr->img.regs);
		if (!reserve_room(pr, 1)) {
			lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
			return;
		}
		r = &pr->img.regs[idx]; /* the array may have moved */
		existing = &pr->img.regs[pr->img.nregs++];
		*existing = dest;
	}
	r->holder = false;
	existing->holder = true;
	if (p->unreg)
		unregister(pr, r, task->itn);
	pr->img.generation++;
	bool aptpl_before = pr->aptpl;
	pr->aptpl = p->aptpl;
	persist(pr, task, aptpl_before);
}

void pr_persistent_reserve_out(struct pr_state *pr, struct scsi_task *task)
{
	struct prout p;

	task->status = SCSI_STATUS_GOOD;
	if (!prout_decode(pr, task, &p))
		return;
	if (pr->resv6_held) { /* as for PERSISTENT RESERVE IN */
		conflict(task);
		return;
	}
	if (p.action == PROUT_REGISTER || p.action == PROUT_REGISTER_IGNORE) {
		prout_register(pr, task, &p);
		return;
	}
	struct pr_reg *r = reg_find(pr, task->itn);
	if (!r || r->key != p.key) {
		conflict(task);
		return;
	}
	switch (p.action) {
	case PROUT_RESERVE:
		prout_reserve(pr, task, &p, r);
		break;
	case PROUT_RELEASE:
		prout_release(pr, task, &p, r);
		break;
	case PROUT_CLEAR:
		prout_clear(pr, task);
		break;
	case PROUT_PREEMPT:
	case PROUT_PREEMPT_AND_ABORT:
		prout_preempt(pr, task, &p, r);
		break;
	case PROUT_REGISTER_AND_MOVE:
		prout_register_and_move(pr, task, &p, r);
		break;
	}
}

/* ---- RESERVE(6) / RELEASE(6) ---- */

/* CRH=1 (SPC-4 §5.13.3): true if a persistent reservation decides the answer.  Its
 * holders (and, for the registrants-only and all-registrants types, any registrant) get
 * GOOD without effect, everybody else RESERVATION CONFLICT. */
static bool crh_answered(const struct pr_state *pr, struct scsi_task *task)
{
	if (pr->img.type == 0)
		return false;
	const struct pr_reg *r = reg_find_const(pr, task->itn);
	if (!r || (!reg_holds(pr, r) && (pr->img.type == PR_TYPE_WE || pr->img.type == PR_TYPE_EA)))
		conflict(task);
	return true;
}

void pr_reserve6(struct pr_state *pr, struct scsi_task *task)
{
	task->status = SCSI_STATUS_GOOD;
	if (crh_answered(pr, task))
		return;
	if (resv6_conflicts(pr, task->itn)) {
		conflict(task);
		return;
	}
	pr->resv6_held = true;
	pr_port_from_itn(&pr->resv6_port, task->itn);
	pr->resv6_relative_port = task->itn->relative_port;
}

void pr_release6(struct pr_state *pr, struct scsi_task *task)
{
	task->status = SCSI_STATUS_GOOD;
	if (crh_answered(pr, task))
		return;
	/* releasing somebody else's reservation, or none, is GOOD without effect (SPC-2) */
	if (pr_resv6_held_by(pr, task->itn))
		pr->resv6_held = false;
}

void pr_nexus_lost(struct pr_state *pr, const struct scsi_itn *itn)
{
	if (pr_resv6_held_by(pr, itn))
		pr->resv6_held = false;
}

void pr_reset(struct pr_state *pr)
{
	pr->resv6_held = false;
}

void pr_snapshot(const struct pr_state *pr, struct pr_snapshot *out)
{
	out->img = &pr->img;
	out->aptpl = pr->aptpl;
	out->resv6_held = pr->resv6_held;
	out->resv6_port = pr->resv6_port;
	out->resv6_relative_port = pr->resv6_relative_port;
}

int pr_install(struct pr_state *pr, struct pr_image *img, const struct pr_snapshot *rest, char *err,
               size_t errlen)
{
	bool aptpl_before = pr->aptpl;
	/* img->regs holds exactly nregs entries: that is the capacity from now on. */
	struct pr_reg *spare = realloc(pr->spare, MAX(img->nregs, (size_t)1) * sizeof(*spare));

	if (!spare) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pr->spare = spare;
	pr_image_clear(&pr->img);
	pr->img = *img;
	pr->cap = img->nregs;
	memset(img, 0, sizeof(*img));
	pr->aptpl = rest->aptpl && pr->state_path;
	pr->resv6_held = rest->resv6_held;
	pr->resv6_port = rest->resv6_port;
	pr->resv6_relative_port = rest->resv6_relative_port;
	if (rest->aptpl && !pr->state_path) {
		snprintf(err, errlen, "the partner persists reservations (APTPL), this node has no state file");
		return -1;
	}
	/* The partner's APTPL state reaches this node's disk too: either node may be the one
	 * that restarts alone. */
	if (pr->aptpl)
		return pr_file_save(pr->state_path, &pr->img, err, errlen);
	if (aptpl_before)
		return pr_file_remove(pr->state_path, err, errlen);
	return 0;
}
