/* Implicit asymmetric logical unit access: the target port groups of a logical unit as
 * last read, the gate their states put on commands (SPC-4 §5.15.2.4), and REPORT TARGET
 * PORT GROUPS (SPC-4 §6.36). */
#include "scsi/alua.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "scsi/cdb_table.h"
#include "scsi/lu_state.h"

#define PLAIN_GROUP_ID 1
#define DEFAULT_TRANSITION_S 60 /* what Linux assumes when a target reports none */

/* Supported states (byte 1 of a descriptor): T_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP; never
 * offline or logical block dependent. */
#define SUPPORTED_STATES 0x8f
#define STATUS_IMPLICIT 0x02 /* state last altered by implicit asymmetric access behaviour */

struct alua {
	scsi_port_groups_fn provider; /* NULL: the plain single group */
	void *ctx;
	struct scsi_port_groups groups;            /* as last read */
	bool implicit[SCSI_PORT_GROUPS_MAX];       /* per group: a reading changed its state */
	bool read;                                 /* groups hold a reading */
	enum store_access access;                  /* store access at the last reading */
	uint16_t plain_id;                         /* plain group: its id */
	uint16_t seen[SCSI_GROUP_PORTS_MAX];       /* plain group: ports nexuses came through */
	unsigned n_seen;
};

int alua_new(struct alua **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return -1;
	(*out)->plain_id = PLAIN_GROUP_ID;
	return 0;
}

void alua_free(struct alua *a) { free(a); }

static bool valid_state(enum scsi_alua_state s)
{
	switch (s) {
	case SCSI_ALUA_ACTIVE_OPTIMIZED:
	case SCSI_ALUA_ACTIVE_NON_OPTIMIZED:
	case SCSI_ALUA_STANDBY:
	case SCSI_ALUA_UNAVAILABLE:
	case SCSI_ALUA_TRANSITIONING:
		return true;
	}
	return false;
}

/* A provider's list cut to what the report can carry; a group with a bad id or state is
 * dropped rather than reported wrong. */
static void sanitize(struct scsi_port_groups *g)
{
	unsigned kept = 0;

	if (g->n_groups > SCSI_PORT_GROUPS_MAX) {
		log_warn("scsi: port groups provider gave %u groups; %d kept", g->n_groups, SCSI_PORT_GROUPS_MAX);
		g->n_groups = SCSI_PORT_GROUPS_MAX;
	}
	for (unsigned i = 0; i < g->n_groups; i++) {
		struct scsi_port_group *grp = &g->groups[i];

		if (grp->id == 0 || !valid_state(grp->state)) {
			log_warn("scsi: port group %u with state %d dropped", grp->id, (int)grp->state);
			continue;
		}
		if (grp->n_ports > SCSI_GROUP_PORTS_MAX)
			grp->n_ports = SCSI_GROUP_PORTS_MAX;
		g->groups[kept++] = *grp;
	}
	g->n_groups = kept;
}

static enum scsi_alua_state state_of_access(enum store_access access)
{
	switch (access) {
	case STORE_ACCESS_OK:
		break;
	case STORE_ACCESS_TRANSITIONING:
		return SCSI_ALUA_TRANSITIONING;
	case STORE_ACCESS_UNAVAILABLE:
		return SCSI_ALUA_UNAVAILABLE;
	}
	return SCSI_ALUA_ACTIVE_OPTIMIZED;
}

/* Index of group id in g, or -1. */
static int find_group(const struct scsi_port_groups *g, uint16_t id)
{
	for (unsigned i = 0; i < g->n_groups; i++)
		if (g->groups[i].id == id)
			return (int)i;
	return -1;
}

/* The groups as they are now.  Whatever a provider says, a store that may not serve makes
 * this node's group not active: stale data must never be served. */
static void read_groups(const struct alua *a, enum store_access access, struct scsi_port_groups *out)
{
	int local;

	memset(out, 0, sizeof(*out));
	if (a->provider) {
		a->provider(a->ctx, out);
		sanitize(out);
	} else {
		out->n_groups = 1;
		out->local = a->plain_id;
		out->groups[0].id = a->plain_id;
	}
	local = find_group(out, out->local);
	if (local >= 0 && access != STORE_ACCESS_OK)
		out->groups[local].state = state_of_access(access);
}

bool alua_refresh(struct alua *a, enum store_access access)
{
	struct scsi_port_groups now;
	bool implicit[SCSI_PORT_GROUPS_MAX] = { false };
	bool changed;

	read_groups(a, access, &now);
	changed = a->read && now.n_groups != a->groups.n_groups;
	for (unsigned i = 0; i < now.n_groups; i++) {
		int old = find_group(&a->groups, now.groups[i].id);

		if (!a->read)
			continue;
		if (old < 0) {
			changed = true;
		} else if (a->groups.groups[old].state != now.groups[i].state) {
			changed = true;
			implicit[i] = true;
		} else {
			implicit[i] = a->implicit[old];
		}
	}
	if (changed)
		log_info("scsi: asymmetric access state changed");
	a->groups = now;
	memcpy(a->implicit, implicit, sizeof(implicit));
	a->access = access;
	a->read = true;
	return changed;
}

bool alua_set_provider(struct alua *a, scsi_port_groups_fn fn, void *ctx, enum store_access access)
{
	a->provider = fn;
	a->ctx = ctx;
	return alua_refresh(a, access);
}

bool alua_follow_store(struct alua *a, enum store_access access)
{
	return access != a->access && alua_refresh(a, access);
}

void alua_note_port(struct alua *a, const struct scsi_itn *itn)
{
	unsigned i;

	if (a->provider)
		return;
	/* The nexuses of a logical unit all come through its one target, whose port group
	 * (1 unless the daemon gave it another) the plain group takes. */
	if (itn->port_group && itn->port_group != a->plain_id)
		a->plain_id = a->groups.local = a->groups.groups[0].id = itn->port_group;
	for (i = 0; i < a->n_seen && a->seen[i] < itn->relative_port; i++)
		;
	if ((i < a->n_seen && a->seen[i] == itn->relative_port) || a->n_seen == SCSI_GROUP_PORTS_MAX)
		return;
	memmove(a->seen + i + 1, a->seen + i, (a->n_seen - i) * sizeof(a->seen[0]));
	a->seen[i] = itn->relative_port;
	a->n_seen++;
}

enum scsi_alua_state alua_state(const struct alua *a, const struct scsi_itn *itn)
{
	int i = find_group(&a->groups, itn->port_group);

	/* Every port of this node serves its store: one that may not serve is served
	 * through none, whatever group the port is in. */
	if (a->access != STORE_ACCESS_OK)
		return state_of_access(a->access);
	if (i < 0)
		i = find_group(&a->groups, a->groups.local);
	return i >= 0 ? a->groups.groups[i].state : SCSI_ALUA_ACTIVE_OPTIMIZED;
}

bool alua_not_ready(enum scsi_alua_state s, enum sense_asc *asc)
{
	switch (s) {
	case SCSI_ALUA_ACTIVE_OPTIMIZED:
	case SCSI_ALUA_ACTIVE_NON_OPTIMIZED:
		return false;
	case SCSI_ALUA_STANDBY:
		*asc = ASC_LUN_NOT_READY_STANDBY;
		return true;
	case SCSI_ALUA_UNAVAILABLE:
		*asc = ASC_LUN_NOT_READY_TARGET_PORT_UNAVAILABLE;
		return true;
	case SCSI_ALUA_TRANSITIONING:
		*asc = ASC_LUN_NOT_READY_ASYMMETRIC_TRANSITION;
		return true;
	}
	*asc = ASC_LUN_NOT_READY_TARGET_PORT_UNAVAILABLE;
	return true;
}

bool alua_allows(enum scsi_alua_state s, unsigned cdb_flags, enum sense_asc *asc)
{
	if (cdb_flags & CDB_ANY_ACCESS)
		return true;
	if (s == SCSI_ALUA_STANDBY && (cdb_flags & CDB_STANDBY))
		return true;
	return !alua_not_ready(s, asc);
}

#define HEADER_LEN 4
#define EXT_HEADER_LEN 8
#define GROUP_DESC_LEN 8
#define PORT_DESC_LEN 4

void alua_report_target_port_groups(struct scsi_task *task)
{
	const struct alua *a = task->lu->alua;
	uint8_t format = task->cdb[1] >> 5;
	uint8_t buf[EXT_HEADER_LEN + SCSI_PORT_GROUPS_MAX * (GROUP_DESC_LEN + SCSI_GROUP_PORTS_MAX * PORT_DESC_LEN)];
	uint8_t *p = buf;

	/* PARAMETER DATA FORMAT: 000b length only, 001b extended header. */
	if (format > 1) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 1, 7);
		lu_complete(task);
		return;
	}
	memset(buf, 0, sizeof(buf));
	if (format == 1) {
		buf[4] = 0x10; /* FORMAT TYPE 001b */
		buf[5] = a->groups.transition_s ? a->groups.transition_s : DEFAULT_TRANSITION_S;
		p += EXT_HEADER_LEN;
	} else {
		p += HEADER_LEN;
	}
	for (unsigned i = 0; i < a->groups.n_groups; i++) {
		const struct scsi_port_group *g = &a->groups.groups[i];
		const uint16_t *ports = a->provider ? g->ports : a->seen;
		unsigned n_ports = a->provider ? g->n_ports : a->n_seen;

		p[0] = (uint8_t)g->state; /* PREF off: no group is preferred over another */
		p[1] = SUPPORTED_STATES;
		put_be16(p + 2, g->id);
		p[5] = a->implicit[i] ? STATUS_IMPLICIT : 0;
		p[7] = (uint8_t)n_ports;
		p += GROUP_DESC_LEN;
		for (unsigned j = 0; j < n_ports; j++, p += PORT_DESC_LEN)
			put_be16(p + 2, ports[j]);
	}
	put_be32(buf, (uint32_t)(p - buf - HEADER_LEN));
	lu_reply(task, buf, (uint32_t)(p - buf), get_be32(task->cdb + 6));
	lu_complete(task);
}
