/* The shared state of a logical unit as bytes, and the journal of a change's effects.
 *
 * Layout (big-endian):
 *   "TWLS", version (1), flags (APTPL 0x1, RESERVE(6) held 0x2),
 *   mode: WCE, D_SENSE, SWP, MRIE, DEXCPT (one byte each),
 *   RESERVE(6) holder: port, relative port (u16),
 *   PR image: length (u32), the APTPL file's JSON (pr_file.h),
 *   effects: count (u16), each: kind (u8), ASC (u16), all (u8), has-except (u8),
 *     [except: initiator name, ISID, target name, tpgt (u16), relative port (u16)],
 *     registrations: count (u16), each: port, relative port (u16), ALL_TG_PT (u8).
 *   A port is: name, ISID (6 bytes), any-ISID (u8); a name: length (u8, 1..223), bytes. */
#include "scsi/lu_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytebuf.h"
#include "common/util.h"

#define IMAGE_MAGIC "TWLS"
#define IMAGE_VERSION 1
#define FLAG_APTPL 0x1u
#define FLAG_RESV6 0x2u
#define FLAGS_KNOWN (FLAG_APTPL | FLAG_RESV6)
#define PR_TEXT_MAX (1u << 20)

/* ---- the journal ---- */

void lu_journal_add(struct lu_journal *j, enum lu_effect_kind kind, enum sense_asc asc,
                    const struct nexus_set *set)
{
	struct lu_effect *e;

	if (j->n == LU_JOURNAL_MAX) {
		j->overflow = true;
		return;
	}
	e = &j->effects[j->n];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->asc = asc;
	e->all = set->all;
	if (!set->all && set->nregs > 0) {
		e->regs = malloc(set->nregs * sizeof(*e->regs));
		if (!e->regs) {
			j->overflow = true;
			return;
		}
		memcpy(e->regs, set->regs, set->nregs * sizeof(*e->regs));
		e->nregs = set->nregs;
	}
	if (set->except) {
		e->has_except = true;
		e->except = *set->except;
	}
	j->n++;
}

void lu_journal_clear(struct lu_journal *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->effects[i].regs);
	j->n = 0;
	j->overflow = false;
}

void lu_effect_set(const struct lu_effect *e, struct nexus_set *out)
{
	*out = (struct nexus_set){ e->all, e->regs, e->nregs, e->has_except ? &e->except : NULL };
}

/* ---- encoding ---- */

static void put_port(struct wbuf *w, const struct pr_port *port)
{
	wbuf_name(w, port->name, SCSI_NAME_MAX);
	wbuf_bytes(w, port->isid, sizeof(port->isid));
	wbuf_u8(w, port->any_isid);
}

static void put_effect(struct wbuf *w, const struct lu_effect *e)
{
	wbuf_u8(w, (uint8_t)e->kind);
	wbuf_u16(w, (uint16_t)e->asc);
	wbuf_u8(w, e->all);
	wbuf_u8(w, e->has_except);
	if (e->has_except) {
		wbuf_name(w, e->except.initiator_name, SCSI_NAME_MAX);
		wbuf_bytes(w, e->except.isid, sizeof(e->except.isid));
		wbuf_name(w, e->except.target_name, SCSI_NAME_MAX);
		wbuf_u16(w, e->except.tpgt);
		wbuf_u16(w, e->except.relative_port);
	}
	wbuf_u16(w, (uint16_t)e->nregs);
	for (size_t i = 0; i < e->nregs; i++) {
		put_port(w, &e->regs[i].port);
		wbuf_u16(w, e->regs[i].relative_port);
		wbuf_u8(w, e->regs[i].all_tg_pt);
	}
}

int lu_image_encode(const struct pr_snapshot *pr, const struct mode_state *mode, const struct lu_journal *j,
                    uint8_t **out, size_t *len)
{
	struct wbuf w = { 0 };
	char *text = pr_file_format(pr->img);

	if (!text)
		return -1;
	wbuf_bytes(&w, IMAGE_MAGIC, 4);
	wbuf_u8(&w, IMAGE_VERSION);
	wbuf_u8(&w, (uint8_t)((pr->aptpl ? FLAG_APTPL : 0) | (pr->resv6_held ? FLAG_RESV6 : 0)));
	wbuf_u8(&w, mode->wce);
	wbuf_u8(&w, mode->d_sense);
	wbuf_u8(&w, mode->swp);
	wbuf_u8(&w, mode->mrie);
	wbuf_u8(&w, mode->dexcpt);
	put_port(&w, &pr->resv6_port);
	wbuf_u16(&w, pr->resv6_relative_port);
	wbuf_u32(&w, (uint32_t)strlen(text));
	wbuf_bytes(&w, text, strlen(text));
	free(text);
	wbuf_u16(&w, (uint16_t)(j ? j->n : 0));
	for (size_t i = 0; j && i < j->n; i++)
		put_effect(&w, &j->effects[i]);
	if (w.failed) {
		wbuf_free(&w);
		return -1;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}

/* ---- decoding ---- */

static void get_port(struct rbuf *r, struct pr_port *port, bool may_be_empty)
{
	const uint8_t *isid;

	memset(port, 0, sizeof(*port));
	if (may_be_empty && !r->why && r->off < r->len && r->p[r->off] == 0)
		r->off++; /* no RESERVE(6) holder: an empty name */
	else
		rbuf_name(r, port->name, sizeof(port->name), "port name");
	isid = rbuf_take(r, sizeof(port->isid), "isid");
	if (isid)
		memcpy(port->isid, isid, sizeof(port->isid));
	port->any_isid = rbuf_bool(r, "any-isid flag");
}

static bool asc_replicated(uint16_t asc)
{
	switch (asc) {
	case ASC_RESERVATIONS_PREEMPTED:
	case ASC_RESERVATIONS_RELEASED:
	case ASC_REGISTRATIONS_PREEMPTED:
	case ASC_MODE_PARAMETERS_CHANGED:
	case ASC_BUS_DEVICE_RESET_OCCURRED:
		return true;
	default:
		return false;
	}
}

static void get_effect(struct rbuf *r, struct lu_effect *e)
{
	uint8_t kind = rbuf_u8(r, "effect kind");
	uint16_t asc = rbuf_u16(r, "effect asc"), n;

	memset(e, 0, sizeof(*e));
	if (!(kind == LU_EFFECT_UA && asc_replicated(asc)) && !(kind == LU_EFFECT_ABORT && asc == 0))
		rbuf_fail(r, "effect kind or asc");
	e->kind = kind;
	e->asc = asc;
	e->all = rbuf_bool(r, "effect all flag");
	e->has_except = rbuf_bool(r, "effect except flag");
	if (e->has_except) {
		const uint8_t *isid;

		rbuf_name(r, e->except.initiator_name, SCSI_NAME_MAX, "except initiator name");
		isid = rbuf_take(r, sizeof(e->except.isid), "except isid");
		if (isid)
			memcpy(e->except.isid, isid, sizeof(e->except.isid));
		rbuf_name(r, e->except.target_name, SCSI_NAME_MAX, "except target name");
		e->except.tpgt = rbuf_u16(r, "except tpgt");
		e->except.relative_port = rbuf_u16(r, "except relative port");
	}
	n = rbuf_u16(r, "effect registration count");
	if (r->why)
		return;
	if (n > PR_MAX_REGISTRATIONS || (e->all && n > 0)) {
		rbuf_fail(r, "effect registration count");
		return;
	}
	if (n == 0)
		return;
	e->regs = calloc(n, sizeof(*e->regs));
	if (!e->regs) {
		rbuf_fail(r, "out of memory");
		return;
	}
	e->nregs = n;
	for (size_t i = 0; i < n && !r->why; i++) {
		get_port(r, &e->regs[i].port, false);
		e->regs[i].relative_port = rbuf_u16(r, "registration relative port");
		e->regs[i].all_tg_pt = rbuf_bool(r, "registration all-target-ports flag");
	}
}

int lu_image_decode(const uint8_t *buf, size_t len, struct lu_image *out, char *err, size_t errlen)
{
	struct rbuf r = { buf, len, 0, NULL };
	const uint8_t *magic, *text;
	uint8_t flags;
	uint32_t text_len;
	uint16_t n;
	char why[200];

	memset(out, 0, sizeof(*out));
	magic = rbuf_take(&r, 4, "magic");
	if (magic && memcmp(magic, IMAGE_MAGIC, 4) != 0)
		rbuf_fail(&r, "magic");
	if (rbuf_u8(&r, "version") != IMAGE_VERSION)
		rbuf_fail(&r, "version");
	flags = rbuf_u8(&r, "flags");
	if (flags & ~FLAGS_KNOWN)
		rbuf_fail(&r, "flags");
	out->rest.aptpl = flags & FLAG_APTPL;
	out->rest.resv6_held = flags & FLAG_RESV6;
	out->mode.wce = rbuf_bool(&r, "mode WCE");
	out->mode.d_sense = rbuf_bool(&r, "mode D_SENSE");
	out->mode.swp = rbuf_bool(&r, "mode SWP");
	out->mode.mrie = rbuf_u8(&r, "mode MRIE");
	if (out->mode.mrie > 0x0f)
		rbuf_fail(&r, "mode MRIE");
	out->mode.dexcpt = rbuf_bool(&r, "mode DEXCPT");
	get_port(&r, &out->rest.resv6_port, !out->rest.resv6_held);
	out->rest.resv6_relative_port = rbuf_u16(&r, "RESERVE(6) relative port");
	text_len = rbuf_u32(&r, "PR image length");
	if (text_len > PR_TEXT_MAX)
		rbuf_fail(&r, "PR image length");
	text = rbuf_take(&r, text_len, "PR image");
	if (r.why)
		goto fail;
	if (pr_file_parse((const char *)text, text_len, &out->pr, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "PR image: %s", why);
		lu_image_free(out);
		return -1;
	}
	n = rbuf_u16(&r, "effect count");
	if (n > LU_JOURNAL_MAX)
		rbuf_fail(&r, "effect count");
	for (size_t i = 0; i < n && !r.why; i++) {
		get_effect(&r, &out->journal.effects[i]);
		out->journal.n = i + 1;
	}
	if (r.off != r.len)
		rbuf_fail(&r, "trailing bytes");
	if (r.why)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "state image: bad %s at byte %zu", r.why, r.off);
	lu_image_free(out);
	return -1;
}

void lu_image_free(struct lu_image *im)
{
	pr_image_clear(&im->pr);
	lu_journal_clear(&im->journal);
}
