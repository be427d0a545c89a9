/* The daemon's served objects: targets, LUNs and HA devices built from a configuration,
 * served, changed through the API, drained and closed. */
#include "mgmt/build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ha/device.h"
#include "ha/peer.h"
#include "ha/scsi_peer.h"
#include "ha/witness.h"
#include "mgmt/api_ha.h"
#include "mgmt/identity.h"
#include "scsi/scsi.h"
#include "store/store.h"

#define MAX_LUNS 64
#define SHUTDOWN_TICK_MS 10
#define FLUSH_WAIT_MS 10000
#define DRAIN_WAIT_MS 3000
#define REAP_MS 20
/* The two nodes of an HA pair present different SCSI target ports: the primary's in
 * target port group 1 numbered from 1, the secondary's in group 2 numbered from 0x8001. */
#define SECONDARY_PORT_BASE 0x8000

/* An HA device the daemon serves: its store is one of the LUNs' stores. */
struct ha_entry {
	char name[CONFIG_NAME_MAX];
	struct ha_device *device;
	struct store *store;       /* the device as a store: a LUN's */
	struct ha_peer *peer;
	struct scsi_lu *lu;        /* serving the device */
	struct ha_scsi_peer *scsi_peer; /* keeps its SCSI state one with the partner's */
	/* Its ALUA target port groups: this node's ports, the partner's, and their groups. */
	uint16_t group, partner_group;
	uint16_t ports[SCSI_GROUP_PORTS_MAX], partner_ports[SCSI_GROUP_PORTS_MAX];
	unsigned n_ports;
	struct witness_client *witness; /* with a configured witness */
	struct config_endpoint witness_at[CONFIG_WITNESS_MAX]; /* its addresses */
	unsigned n_witness_at;
	struct ha_arbiter arbiter;      /* the witness's vote, for failover = majority */
	bool witness_stopped;
	bool closing;              /* its status is no longer asked for */
	bool retiring;             /* deleted while serving: closes once nothing uses it */
	struct mgmt_api *const *api; /* the daemon's; NULL once closed */
};

struct flush_req {
	struct store_io io;
	struct mgmt_build *b;
};

/* What is built, to be torn down in reverse. */
struct mgmt_build {
	struct reactor *reactor;
	struct iscsi_registry *registry;
	struct iscsi_server *server;
	struct mgmt_api *api;           /* NULL once freed */
	struct metrics_server *metrics; /* NULL once freed */
	uint64_t node;
	struct store *stores[MAX_LUNS];
	struct scsi_lu *lus[MAX_LUNS];
	size_t nluns;
	/* Where each LU is served: its target and LUN, for changes through the API. */
	struct scsi_target *lu_targets[MAX_LUNS];
	struct iscsi_target *lu_iscsi[MAX_LUNS];
	uint64_t lu_numbers[MAX_LUNS];
	bool lu_retiring[MAX_LUNS];     /* deleted: freed once no connection uses its target */
	struct ha_entry has[MAX_LUNS];  /* a free entry has no name */
	size_t nhas;
	/* Targets deleted while serving, freed once no connection uses them and their LUNs
	 * are gone; the reaper polls for that. */
	struct iscsi_target **retired;
	size_t nretired;
	struct reactor_timer reaper;
	/* Shutdown: the loop turns until a condition holds (or a deadline passes); flushes
	 * that outlive their wait complete into flush_reqs, never into a dead stack frame. */
	struct flush_req flush_reqs[MAX_LUNS];
	unsigned flushing;
	bool (*shutdown_done)(const struct mgmt_build *b);
	uint64_t shutdown_deadline_ms;
};


/* One LUN as either mode describes it. */
struct lun_spec {
	struct store *store;       /* already open (an HA device), else opened from path */
	const char *path;
	uint64_t lun;
	uint64_t create_size;
	bool direct;
	uint32_t block_size;
	const char *serial;        /* NULL: derived from the uuid */
	const uint8_t *uuid;       /* NULL: the one kept with the backing file */
	const char *state_path;    /* persistent reservations */
	const char *target;        /* its target's name, for the management API */
	const char *ha;            /* the HA device serving it, or NULL */
};

/* A free LU slot (one deleted while serving is reused), or MAX_LUNS. */
static size_t free_lu_slot(const struct mgmt_build *b)
{
	size_t i = 0;

	while (i < MAX_LUNS && (b->lus[i] || b->stores[i] || b->lu_retiring[i]))
		i++;
	return i;
}

/* Serves a LUN in target: its slot, or -1 logged. */
static int add_lun(struct mgmt_build *b, struct iscsi_target *target, const struct lun_spec *ls)
{
	char err[256];
	struct scsi_target *scsi = iscsi_target_scsi(target);
	size_t i = free_lu_slot(b);
	struct store_params sp = {
		.path = ls->path, .create_size = ls->create_size, .direct = ls->direct,
	};
	struct scsi_lu_params lp = {
		.serial = ls->serial,
		.vendor = "TWINSAN",
		.product = "twinsan disk",
		.revision = "0001",
		.block_size = ls->block_size,
		.write_cache = true,
		.state_path = ls->state_path,
	};

	if (i == MAX_LUNS) {
		log_err("LUN %llu: at most %d LUNs", (unsigned long long)ls->lun, MAX_LUNS);
		store_close(ls->store);
		return -1;
	}
	if (ls->store)
		b->stores[i] = ls->store;
	else if (store_open(&sp, &b->stores[i], err, sizeof(err)) < 0) {
		log_err("LUN %llu: %s", (unsigned long long)ls->lun, err);
		return -1;
	}
	if (ls->uuid)
		memcpy(lp.uuid, ls->uuid, sizeof(lp.uuid));
	else if (identity_lun_uuid(ls->path, lp.uuid) < 0) {
		log_err("LUN %llu: cannot store a device identity for %s: %s",
		        (unsigned long long)ls->lun, ls->path, strerror(errno));
		goto fail;
	}
	if (scsi_lu_new(&lp, b->stores[i], &b->lus[i], err, sizeof(err)) < 0) {
		log_err("LUN %llu: %s", (unsigned long long)ls->lun, err);
		goto fail;
	}
	if (scsi_target_add_lu(scsi, ls->lun, b->lus[i]) < 0) {
		log_err("LUN %llu: cannot add it to the target", (unsigned long long)ls->lun);
		goto fail;
	}
	b->lu_targets[i] = scsi;
	b->lu_iscsi[i] = target;
	b->lu_numbers[i] = ls->lun;
	if (i >= b->nluns)
		b->nluns = i + 1;
	if (mgmt_api_add_lun(b->api, ls->target, ls->lun, ls->path, b->stores[i], ls->ha) < 0 ||
	    metrics_server_add_lun(b->metrics, ls->target, ls->lun, ls->ha, b->lus[i]) < 0) {
		log_err("out of memory");
		return -1;
	}
	return (int)i;
fail:
	/* A LUN added while serving must leave its slot free; an HA device's store is closed
	 * with its device at teardown. */
	scsi_lu_free(b->lus[i]);
	b->lus[i] = NULL;
	if (!ls->store) {
		store_close(b->stores[i]);
		b->stores[i] = NULL;
	}
	return -1;
}

/* ---- HA devices ---- */

/* The HA device behind a store, or NULL. */
static struct ha_entry *ha_entry_of(struct mgmt_build *b, const struct store *s)
{
	for (size_t j = 0; j < b->nhas; j++)
		if (b->has[j].name[0] && b->has[j].store == s)
			return &b->has[j];
	return NULL;
}

/* An entry made free for the next HA device. */
static void ha_entry_release(struct mgmt_build *b, struct ha_entry *e)
{
	memset(e, 0, sizeof(*e));
	while (b->nhas > 0 && !b->has[b->nhas - 1].name[0])
		b->nhas--;
}

/* Logs an event of an HA device; a state change with the state the tests and operators
 * look for ("HA1: state synchronized", "...; not serving (unavailable)" while this node
 * may not serve), a finished resync with the tally. */
static void ha_event_log(const struct ha_entry *e, struct ha_device *dev, enum ha_event ev, const char *detail)
{
	struct ha_device_status st;

	if (!e->closing && (ev == HA_EVENT_STATE || ev == HA_EVENT_SYNC_FINISHED)) {
		ha_device_status(dev, &st);
		if (ev == HA_EVENT_STATE)
			log_info("%s: state %s%s%s%s", e->name, ha_sync_state_name(st.state),
			         st.reason != HA_REASON_NONE ? ": " : "",
			         st.reason != HA_REASON_NONE ? ha_sync_reason_name(st.reason) : "",
			         st.access == STORE_ACCESS_OK ? ""
			         : st.access == STORE_ACCESS_TRANSITIONING ? "; not serving (transitioning)"
			                                                   : "; not serving (unavailable)");
		else
			log_info("%s: %s: %s; resync tally sent %llu received %llu bytes, compared by digest %llu bytes",
			         e->name, ha_event_name(ev), detail ? detail : "", (unsigned long long)st.resync_sent_bytes,
			         (unsigned long long)st.resync_received_bytes, (unsigned long long)st.resync_compared_bytes);
		return;
	}
	log_info("%s: %s%s%s", e->name, ha_event_name(ev), detail && *detail ? ": " : "", detail ? detail : "");
}

/* Every event of an HA device: logged, and the ALUA states re-read (initiators are told
 * when one changed). */
static void ha_event(void *arg, struct ha_device *dev, enum ha_event ev, const char *detail)
{
	const struct ha_entry *e = arg;

	ha_event_log(e, dev, ev, detail);
	if (*e->api && !e->closing)
		mgmt_api_publish_ha_event(*e->api, dev, ev, detail);
	if (e->lu != NULL && !e->closing)
		scsi_lu_port_groups_changed(e->lu);
}

static enum scsi_alua_state alua_state_of(enum store_access a)
{
	return a == STORE_ACCESS_OK             ? SCSI_ALUA_ACTIVE_OPTIMIZED
	       : a == STORE_ACCESS_TRANSITIONING ? SCSI_ALUA_TRANSITIONING
	                                         : SCSI_ALUA_UNAVAILABLE;
}

/* The two port groups of an HA LUN (both active/optimized while in sync: active-active):
 * this node's as its replica allows, the partner's as far as this node knows it. */
static void ha_port_groups(void *ctx, struct scsi_port_groups *out)
{
	const struct ha_entry *e = ctx;
	struct scsi_port_group *mine = &out->groups[0], *theirs = &out->groups[1];
	struct ha_device_status st;

	ha_device_status(e->device, &st);
	out->n_groups = 2;
	out->local = e->group;
	mine->id = e->group;
	mine->state = alua_state_of(st.access);
	theirs->id = e->partner_group;
	if (!st.partner_connected || st.state == HA_SYNC_NOT_SYNCHRONIZED)
		theirs->state = SCSI_ALUA_UNAVAILABLE;
	else if (st.state == HA_SYNC_SYNCHRONIZING && st.sync_source)
		theirs->state = SCSI_ALUA_TRANSITIONING;
	else
		theirs->state = SCSI_ALUA_ACTIVE_OPTIMIZED;
	mine->n_ports = theirs->n_ports = e->n_ports;
	memcpy(mine->ports, e->ports, sizeof(e->ports));
	memcpy(theirs->ports, e->partner_ports, sizeof(e->partner_ports));
}

/* The connection manager's view of the configured links. */
static int start_peer(struct mgmt_build *b, const struct config_ha *ha, struct ha_entry *e, char *err,
                      size_t errlen)
{
	struct ha_peer_link links[2 * HA_MAX_LINKS];
	struct ha_peer_params pp = {
		.name = ha->name, .device = e->device, .role = ha->role, .links = links,
	};

	for (unsigned i = 0; i < ha->n_sync + ha->n_heartbeat; i++) {
		bool sync = i < ha->n_sync;
		const struct config_ha_link *l = sync ? &ha->sync[i] : &ha->heartbeat[i - ha->n_sync];

		links[pp.n_links++] = (struct ha_peer_link){
			.kind = sync ? PROTO_LINK_SYNC : PROTO_LINK_HEARTBEAT,
			.index = sync ? i : i - ha->n_sync,
			.local_address = l->local.address, .local_port = l->local.port,
			.partner_address = l->partner.address, .partner_port = l->partner.port,
		};
	}
	return ha_peer_start(b->reactor, &pp, &e->peer, err, errlen);
}

/* The client of the device's witness: its vote decides failover = majority. */
static int start_witness(struct mgmt_build *b, const struct config_ha *ha, struct ha_entry *e, uint64_t node,
                         char *err, size_t errlen)
{
	char addresses[CONFIG_WITNESS_MAX][CONFIG_ADDRESS_MAX + 16];
	struct witness_client_params wp = {
		.secret = ha->witness_secret, .secret_len = ha->witness_secret_len, .node_id = node,
	};

	for (unsigned i = 0; i < ha->n_witness && i < WITNESS_MAX_ADDRESSES; i++) {
		const struct config_endpoint *w = &ha->witness[i];

		snprintf(addresses[i], sizeof(addresses[i]), strchr(w->address, ':') ? "[%s]:%u" : "%s:%u",
		         w->address, w->port);
		wp.addresses[wp.n_addresses++] = addresses[i];
	}
	if (witness_client_new(b->reactor, &wp, &e->witness, err, errlen) < 0)
		return -1;
	e->arbiter = witness_arbiter(e->witness);
	memcpy(e->witness_at, ha->witness, sizeof(e->witness_at));
	e->n_witness_at = ha->n_witness;
	return 0;
}

/* Opens the replica, the HA device on it and its links; the device's store, or NULL
 * (logged).  Serving waits for the partner or the failover strategy, not for sync. */
static struct ha_entry *open_ha(struct mgmt_build *b, const struct config_ha *ha, uint64_t node,
                                const char *path)
{
	struct store_params sp = { .path = ha->path, .create_size = ha->size, .direct = ha->direct };
	size_t slot = 0;
	struct ha_entry *e;
	struct ha_device_params hp = {
		.name = ha->name, .meta_path = ha->meta_path, .role = ha->role, .node_id = node,
		.initial_sync = ha->initial_sync, .failover = ha->failover, .extent_size = ha->extent_size,
		.secret = ha->secret, .secret_len = ha->secret_len, .n_sync_links = ha->n_sync,
		.n_heartbeat_links = ha->n_heartbeat, .ping_interval_ms = ha->ping_interval_ms,
		.timeout_ms = ha->timeout_ms, .event = ha_event,
	};
	bool had_replica = access(ha->path, F_OK) == 0, had_meta = access(ha->meta_path, F_OK) == 0;
	char err[512];

	while (slot < MAX_LUNS && b->has[slot].name[0])
		slot++;
	if (slot == MAX_LUNS) {
		log_err("%s:%u: [ha %s] at most %d HA devices", path, ha->line, ha->name, MAX_LUNS);
		return NULL;
	}
	e = &b->has[slot];
	hp.arg = e;
	memcpy(hp.uuid, ha->uuid, sizeof(hp.uuid));
	str_copy(e->name, sizeof(e->name), ha->name);
	e->api = &b->api;
	if (slot == b->nhas)
		b->nhas++;
	if (ha->n_witness > 0 && start_witness(b, ha, e, node, err, sizeof(err)) < 0) {
		log_err("%s:%u: [ha %s] witness: %s", path, ha->line, ha->name, err);
		goto fail;
	}
	hp.arbiter = e->witness ? &e->arbiter : NULL;
	if (store_open(&sp, &hp.backing, err, sizeof(err)) < 0) {
		log_err("%s:%u: [ha %s] %s", path, ha->line, ha->name, err);
		goto fail;
	}
	/* Both replicas must have the configured size; an old file must not quietly win. */
	if (ha->size && store_size(hp.backing) != ha->size) {
		log_err("%s:%u: [ha %s] %s holds %llu bytes, not the configured size %llu; resize it or "
		        "correct size", path, ha->line, ha->name, ha->path,
		        (unsigned long long)store_size(hp.backing), (unsigned long long)ha->size);
		store_close(hp.backing);
		goto fail;
	}
	if (ha_device_open(b->reactor, &hp, &e->device, err, sizeof(err)) < 0) {
		log_err("%s:%u: [ha %s] %s", path, ha->line, ha->name, err);
		goto fail;
	}
	/* The links before the API learns of the device: a device closed again must not
	 * stay listed. */
	if (start_peer(b, ha, e, err, sizeof(err)) < 0) {
		log_err("%s:%u: %s", path, ha->line, err);
		store_close(ha_device_store(e->device));
		e->device = NULL;
		goto fail;
	}
	e->store = ha_device_store(e->device);
	if (mgmt_api_add_ha_device(b->api, e->device, e->witness ? &e->arbiter : NULL) < 0 ||
	    metrics_server_add_ha_device(b->metrics, e->device) < 0) {
		log_err("out of memory");
		return NULL;
	}
	return e;
fail:
	/* What this attempt made goes again: a device made through the API that failed must
	 * leave nothing behind, and a retry gives it a new identity the old metadata would
	 * contradict.  An entry with a witness client is left to the teardown, which stops it. */
	if (!had_replica)
		unlink(ha->path);
	if (!had_meta)
		unlink(ha->meta_path);
	if (!e->witness)
		ha_entry_release(b, e);
	return NULL;
}

void mgmt_build_stop_peers(struct mgmt_build *b)
{
	for (size_t i = 0; i < b->nhas; i++)
		ha_peer_stop(b->has[i].peer);
}

/* ---- configuration file mode ---- */

static bool portal_listed(const struct config_target *t, size_t portal)
{
	for (size_t j = 0; j < t->n_portals; j++)
		if (t->portals[j] == portal)
			return true;
	return false;
}

/* iSCSI serves a target on portal groups, not single portals: the portals a target lists
 * must be whole groups, or it would be reachable on a portal it does not list. */
static int bind_portal_groups(struct iscsi_target *target, const struct config *cfg,
                              const struct config_target *t, const char *path)
{
	for (size_t j = 0; j < t->n_portals; j++) {
		const struct config_portal *p = &cfg->portals[t->portals[j]];

		if (iscsi_target_add_portal_group(target, p->tpgt) < 0) {
			log_err("out of memory");
			return -1;
		}
	}
	for (size_t k = 0; t->n_portals && k < cfg->n_portals; k++) {
		const struct config_portal *p = &cfg->portals[k];

		if (!portal_listed(t, k) && iscsi_target_serves_portal_group(target, p->tpgt)) {
			log_err("%s:%u: [target %s] portals: portal %s is in portal group %u with a listed "
			        "portal; list it too, or give it its own tpgt", path, t->line, t->name,
			        p->name, p->tpgt);
			return -1;
		}
	}
	return 0;
}

/* A target serving HA devices takes its ports' identity from the role of its first one,
 * so the two nodes present different ports of the same devices. */
static bool target_ha_role(const struct config *cfg, size_t target, enum ha_role *role)
{
	for (size_t i = 0; i < cfg->n_luns; i++) {
		if (cfg->luns[i].target == target && cfg->luns[i].uses_ha) {
			*role = cfg->has[cfg->luns[i].ha].role;
			return true;
		}
	}
	return false;
}

static void set_port_identity(struct iscsi_target *target, enum ha_role role)
{
	if (role == HA_ROLE_SECONDARY)
		iscsi_target_set_port_identity(target, SECONDARY_PORT_BASE, 2);
	else
		iscsi_target_set_port_identity(target, 0, 1);
}

/* The ports of one node's target for the HA LUN's port groups: one per portal group the
 * target is served on, numbered as iscsi_target_set_port_identity() says. */
static void ha_lun_ports(struct ha_entry *e, const struct config *cfg, const struct config_target *t,
                         enum ha_role role)
{
	uint16_t base = role == HA_ROLE_SECONDARY ? SECONDARY_PORT_BASE : 0;
	uint16_t partner_base = role == HA_ROLE_SECONDARY ? 0 : SECONDARY_PORT_BASE;

	e->group = role == HA_ROLE_SECONDARY ? 2 : 1;
	e->partner_group = role == HA_ROLE_SECONDARY ? 1 : 2;
	e->n_ports = 0;
	for (size_t k = 0; k < cfg->n_portals && e->n_ports < SCSI_GROUP_PORTS_MAX; k++) {
		uint16_t tpgt = cfg->portals[k].tpgt;
		bool seen = false;

		if (t->n_portals && !portal_listed(t, k))
			continue;
		for (unsigned j = 0; j < e->n_ports; j++)
			seen |= e->ports[j] == (uint16_t)(base + tpgt);
		if (seen)
			continue;
		e->ports[e->n_ports] = (uint16_t)(base + tpgt);
		e->partner_ports[e->n_ports++] = (uint16_t)(partner_base + tpgt);
	}
}

/* A LUN serving an HA device: its identity is the HA uuid (one disk to multipath on both
 * nodes) and its ALUA port groups are the two nodes'. */
static int add_ha_lun(struct mgmt_build *b, const struct config *cfg, const struct config_lun *l,
                      struct lun_spec *ls, uint64_t node, const char *path)
{
	struct iscsi_target *target = iscsi_registry_find(b->registry, cfg->targets[l->target].iqn);
	struct ha_entry *e;
	enum ha_role role = HA_ROLE_PRIMARY;
	int slot;

	ls->uuid = cfg->has[l->ha].uuid;
	ls->path = cfg->has[l->ha].name;
	ls->ha = cfg->has[l->ha].name;
	e = open_ha(b, &cfg->has[l->ha], node, path);
	ls->store = e ? e->store : NULL;
	if (ls->store == NULL || (slot = add_lun(b, target, ls)) < 0)
		return -1;
	target_ha_role(cfg, l->target, &role);
	ha_lun_ports(e, cfg, &cfg->targets[l->target], role);
	e->lu = b->lus[slot];
	scsi_lu_set_port_groups(e->lu, ha_port_groups, e);
	if (ha_scsi_peer_new(b->reactor, e->device, e->lu, &e->scsi_peer) < 0) {
		log_err("out of memory");
		return -1;
	}
	return 0;
}

/* Builds target i of cfg; path names the file it came from in messages. */
static int build_target(struct mgmt_build *b, const struct config *cfg, size_t i, const char *path)
{
	const struct config_target *t = &cfg->targets[i];
	struct iscsi_target *target;
	enum ha_role role;

	target = iscsi_target_add(b->registry, t->iqn, t->alias);
	if (!target) {
		log_err("%s:%u: cannot add target %s", path, t->line, t->iqn);
		return -1;
	}
	if (bind_portal_groups(target, cfg, t, path) < 0)
		return -1;
	for (size_t j = 0; j < t->n_initiators; j++) {
		if (iscsi_target_allow_initiator(target, t->initiators[j]) < 0) {
			log_err("out of memory");
			return -1;
		}
	}
	if (t->auth.chap_required)
		iscsi_target_set_auth(target, &t->auth);
	if (target_ha_role(cfg, i, &role))
		set_port_identity(target, role);
	return 0;
}

/* Builds LUN i of cfg into its target, already built. */
static int build_lun(struct mgmt_build *b, const struct config *cfg, size_t i, const char *path)
{
	char state_path[CONFIG_PATH_MAX + ISCSI_NAME_MAX + 32];
	const struct config_lun *l = &cfg->luns[i];
	const char *iqn = cfg->targets[l->target].iqn;
	struct lun_spec ls = {
		.path = l->path, .lun = l->lun, .create_size = l->size, .direct = l->direct,
		.block_size = l->block_size, .serial = l->serial[0] ? l->serial : NULL,
		.uuid = l->has_uuid ? l->uuid : NULL, .state_path = state_path, .target = iqn,
	};

	snprintf(state_path, sizeof(state_path), "%s/%s:%llu.pr", cfg->state_dir, iqn,
	         (unsigned long long)l->lun);
	return l->uses_ha ? add_ha_lun(b, cfg, l, &ls, b->node, path)
	                  : add_lun(b, iscsi_registry_find(b->registry, iqn), &ls) < 0 ? -1 : 0;
}

int mgmt_build_config(struct mgmt_build *b, const struct config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_targets; i++)
		if (build_target(b, cfg, i, cfg->targets[i].managed ? cfg->managed_config : path) < 0)
			return -1;
	for (size_t i = 0; i < cfg->n_luns; i++)
		if (build_lun(b, cfg, i, cfg->luns[i].managed ? cfg->managed_config : path) < 0)
			return -1;
	return 0;
}

/* ---- changes through the management API ---- */

/* A target made while serving: built as at startup, then served. */
static int live_add_target(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct mgmt_build *b = arg;

	if (build_target(b, cfg, i, cfg->managed_config) < 0) {
		snprintf(err, errlen, "cannot build target %s (the daemon's log says why)", cfg->targets[i].iqn);
		return -1;
	}
	iscsi_server_serve(b->server, iscsi_target_scsi(iscsi_registry_find(b->registry, cfg->targets[i].iqn)));
	return 0;
}

static int live_add_lun(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct mgmt_build *b = arg;
	const struct config_lun *l = &cfg->luns[i];

	if ((l->uses_ha && b->node == 0 && identity_node_id(cfg, &b->node) < 0) ||
	    build_lun(b, cfg, i, cfg->managed_config) < 0) {
		snprintf(err, errlen, "cannot serve LUN %llu of %s (the daemon's log says why)",
		         (unsigned long long)l->lun, cfg->targets[l->target].iqn);
		return -1;
	}
	return 0;
}

/* A plain LUN grown: its file, then the LU's capacity, which tells every initiator
 * (CAPACITY DATA HAS CHANGED). */
static int live_grow_lun(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct mgmt_build *b = arg;
	const struct config_lun *l = &cfg->luns[i];
	struct scsi_target *scsi = iscsi_target_scsi(iscsi_registry_find(b->registry, cfg->targets[l->target].iqn));
	int rc;

	for (size_t k = 0; k < b->nluns; k++) {
		struct ha_entry *e;

		if (b->lu_targets[k] != scsi || b->lu_numbers[k] != l->lun || !b->stores[k] || b->lu_retiring[k])
			continue;
		/* An HA device says why it cannot grow now (not in sync, say). */
		e = l->uses_ha ? ha_entry_of(b, b->stores[k]) : NULL;
		if (e && ha_device_resize_check(e->device, cfg->has[l->ha].size, err, errlen) != 0)
			return -1;
		rc = store_grow(b->stores[k], e ? cfg->has[l->ha].size : l->size);
		if (rc < 0) {
			snprintf(err, errlen, "%s: %s", e ? e->name : l->path,
			         rc == -EINVAL ? "it is bigger now; shrinking would cut off data, so it is refused"
			         : rc == -ENOTSUP ? "a block device keeps its own size; grow the device itself"
			                          : strerror(-rc));
			return -1;
		}
		scsi_lu_capacity_changed(b->lus[k]);
		return 0;
	}
	snprintf(err, errlen, "LUN %llu of %s is not served (deleted, waiting for a restart)",
	         (unsigned long long)l->lun, cfg->targets[l->target].iqn);
	return -1;
}

/* A failover strategy set through the API: a witness given for the first time is
 * connected now; another witness than the one in use takes a restart. */
static int live_set_failover(void *arg, const struct config *cfg, size_t h, char *err, size_t errlen)
{
	struct mgmt_build *b = arg;
	const struct config_ha *ha = &cfg->has[h];
	struct ha_entry *e = NULL;

	for (size_t j = 0; j < b->nhas && !e; j++)
		if (!strcmp(b->has[j].name, ha->name) && b->has[j].device && !b->has[j].retiring)
			e = &b->has[j];
	if (e == NULL) {
		snprintf(err, errlen, "%s is not served (its start failed: the daemon's log says why)", ha->name);
		return -1;
	}
	if (e->witness && ha->n_witness &&
	    (e->n_witness_at != ha->n_witness || memcmp(e->witness_at, ha->witness, sizeof(ha->witness[0]) * ha->n_witness))) {
		snprintf(err, errlen, "%s already has a witness; another one takes effect only at a restart, so it is "
		         "refused (delete and create the device again, or restart after editing)", ha->name);
		return -1;
	}
	if (ha->n_witness && !e->witness) {
		if (start_witness(b, ha, e, b->node, err, errlen) < 0)
			return -1;
		/* The API shows the witness and lets the majority strategy use it. */
		mgmt_api_remove_device(b->api, e->name);
		if (mgmt_api_add_ha_device(b->api, e->device, &e->arbiter) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return ha_device_set_failover(e->device, ha->failover, e->witness ? &e->arbiter : NULL, err, errlen);
}

/* ---- deleting while serving ---- */

static void witness_stopped(void *arg) { ((struct ha_entry *)arg)->witness_stopped = true; }

static bool target_in_use(const struct mgmt_build *b, struct iscsi_target *t)
{
	return b->server && iscsi_server_target_in_use(b->server, t);
}

/* Frees a deleted LU once no connection uses its target (so no task of it is left) and,
 * for an HA device, once its links' manager has nothing in flight; the device then closes
 * (saying goodbye on its links) and its witness client stops.  True when done. */
static bool reap_lun(struct mgmt_build *b, size_t k)
{
	struct ha_entry *e = ha_entry_of(b, b->stores[k]);

	if (target_in_use(b, b->lu_iscsi[k]) || (e && e->peer && !ha_peer_idle(e->peer)))
		return false;
	if (e) {
		ha_peer_free(e->peer);
		e->peer = NULL;
		ha_scsi_peer_free(e->scsi_peer);
		e->scsi_peer = NULL;
	}
	scsi_lu_free(b->lus[k]);
	store_close(b->stores[k]);
	b->lus[k] = NULL;
	b->stores[k] = NULL;
	b->lu_retiring[k] = false;
	if (e) {
		e->device = NULL;
		e->store = NULL;
		e->lu = NULL;
		if (e->witness)
			witness_client_stop(e->witness, witness_stopped, e);
	}
	return true;
}

static bool reap_target(struct mgmt_build *b, struct iscsi_target *t)
{
	if (target_in_use(b, t))
		return false;
	for (size_t k = 0; k < b->nluns; k++)
		if (b->lu_retiring[k] && b->lu_iscsi[k] == t)
			return false;
	iscsi_target_free(t);
	return true;
}

static void reap(struct reactor_timer *timer)
{
	struct mgmt_build *b = container_of(timer, struct mgmt_build, reaper);
	bool pending = false;

	for (size_t k = 0; k < b->nluns; k++)
		if (b->lu_retiring[k])
			pending |= !reap_lun(b, k);
	for (size_t j = 0; j < b->nhas; j++) {
		struct ha_entry *e = &b->has[j];

		if (!e->retiring || e->store)
			continue;
		if (e->witness && !e->witness_stopped) {
			pending = true;
			continue;
		}
		log_info("%s: closed", e->name);
		witness_client_free(e->witness);
		ha_entry_release(b, e);
	}
	for (size_t i = 0; i < b->nretired;) {
		if (reap_target(b, b->retired[i]))
			b->retired[i] = b->retired[--b->nretired];
		else
			pending = (i++, true);
	}
	if (pending)
		reactor_timer_start(b->reactor, &b->reaper, REAP_MS, reap);
}

static void reap_soon(struct mgmt_build *b)
{
	if (!reactor_timer_armed(&b->reaper))
		reactor_timer_start(b->reactor, &b->reaper, 0, reap);
}

static struct iscsi_target *served_target(const struct mgmt_build *b, const struct config *cfg, size_t target)
{
	return iscsi_registry_find(b->registry, cfg->targets[target].iqn);
}

static unsigned live_sessions(void *arg, const struct config *cfg, size_t target)
{
	struct mgmt_build *b = arg;
	struct iscsi_target *t = served_target(b, cfg, target);

	return t && b->server ? iscsi_server_target_sessions(b->server, t) : 0;
}

static void live_end_sessions(void *arg, const struct config *cfg, size_t target)
{
	struct mgmt_build *b = arg;
	struct iscsi_target *t = served_target(b, cfg, target);
	unsigned n = t && b->server ? iscsi_server_end_target_sessions(b->server, t, "logged out by the administrator") : 0;

	if (n)
		log_info("api: %u session(s) of %s ended", n, cfg->targets[target].iqn);
}

/* The LU leaves its target at once (REPORTED LUNS DATA CHANGED for the others); an HA
 * device's links stop; the objects are freed by the reaper. */
static void live_remove_lun(void *arg, const struct config *cfg, size_t lun)
{
	struct mgmt_build *b = arg;
	const struct config_lun *l = &cfg->luns[lun];
	struct iscsi_target *t = served_target(b, cfg, l->target);
	struct ha_entry *e;

	for (size_t k = 0; t && k < b->nluns; k++) {
		if (!b->lus[k] || b->lu_retiring[k] || b->lu_iscsi[k] != t || b->lu_numbers[k] != l->lun)
			continue;
		scsi_target_remove_lu(iscsi_target_scsi(t), l->lun);
		mgmt_api_remove_lun(b->api, b->stores[k]);
		metrics_server_remove_lun(b->metrics, b->lus[k]);
		e = ha_entry_of(b, b->stores[k]);
		if (e) {
			e->retiring = e->closing = true;
			mgmt_api_remove_device(b->api, e->name);
			metrics_server_remove_ha_device(b->metrics, e->device);
			ha_peer_stop(e->peer);
		}
		b->lu_retiring[k] = true;
		log_info("LUN %llu of %s is no longer served", (unsigned long long)l->lun, cfg->targets[l->target].iqn);
		reap_soon(b);
		return;
	}
}

/* The target leaves the registry at once (no login or discovery finds it) and logins in
 * progress to it end; it is freed by the reaper. */
static void live_remove_target(void *arg, const struct config *cfg, size_t target)
{
	struct mgmt_build *b = arg;
	struct iscsi_target *t = served_target(b, cfg, target);
	struct iscsi_target **grown;

	if (t == NULL)
		return;
	iscsi_registry_remove(b->registry, t);
	if (b->server)
		iscsi_server_end_target_sessions(b->server, t, "its target was deleted");
	grown = realloc(b->retired, (b->nretired + 1) * sizeof(*grown));
	if (grown == NULL) {
		log_err("out of memory: target %s is not freed", cfg->targets[target].iqn);
		return;
	}
	b->retired = grown;
	b->retired[b->nretired++] = t;
	log_info("target %s is no longer served", cfg->targets[target].iqn);
	reap_soon(b);
}

static const struct mgmt_apply_ops live_ops = {
	.add_target = live_add_target, .add_lun = live_add_lun, .grow_lun = live_grow_lun,
	.sessions = live_sessions, .end_sessions = live_end_sessions, .remove_lun = live_remove_lun,
	.remove_target = live_remove_target, .set_failover = live_set_failover,
};

const struct mgmt_apply_ops *mgmt_build_apply_ops(void)
{
	return &live_ops;
}

/* ---- the object's life ---- */

int mgmt_build_new(const struct mgmt_build_params *p, struct mgmt_build **out)
{
	struct mgmt_build *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -1;
	b->reactor = p->reactor;
	b->registry = p->registry;
	b->api = p->api;
	b->metrics = p->metrics;
	b->node = p->node;
	*out = b;
	return 0;
}

void mgmt_build_set_server(struct mgmt_build *b, struct iscsi_server *server)
{
	b->server = server;
}

void mgmt_build_forget_api(struct mgmt_build *b)
{
	b->api = NULL;
	b->metrics = NULL;
}

int mgmt_build_add_file_lun(struct mgmt_build *b, const struct mgmt_build_file *f)
{
	struct lun_spec ls = {
		.path = f->path, .lun = f->lun, .create_size = f->create_size, .direct = f->direct,
		.block_size = f->block_size, .state_path = f->state_path, .target = f->target,
	};

	return add_lun(b, iscsi_registry_find(b->registry, f->target), &ls) < 0 ? -1 : 0;
}

size_t mgmt_build_lun_count(const struct mgmt_build *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->nluns; i++)
		n += b->lus[i] != NULL && !b->lu_retiring[i];
	return n;
}

static void flushed(struct store_io *io, int err)
{
	struct mgmt_build *b = container_of(io, struct flush_req, io)->b;

	if (err)
		log_err("flushing a store at shutdown: %s", strerror(-err));
	if (--b->flushing == 0)
		reactor_stop(b->reactor);
}

static bool nothing_flushing(const struct mgmt_build *b) { return b->flushing == 0; }

static bool ha_closed(const struct mgmt_build *b)
{
	for (size_t i = 0; i < b->nhas; i++)
		if (b->has[i].witness && !b->has[i].witness_stopped)
			return false;
	return reactor_idle(b->reactor);
}

static void shutdown_tick(void *arg)
{
	struct mgmt_build *b = arg;

	if (b->shutdown_done(b) || now_ms() > b->shutdown_deadline_ms)
		reactor_stop(b->reactor);
}

/* Turns the loop until done(b) or ms have passed; false on the deadline.  Other tickers
 * (the stopped server's) may stop the loop early, so it is run again. */
static bool run_until(struct mgmt_build *b, bool (*done)(const struct mgmt_build *b), unsigned ms)
{
	b->shutdown_done = done;
	b->shutdown_deadline_ms = now_ms() + ms;
	if (reactor_add_ticker(b->reactor, SHUTDOWN_TICK_MS, shutdown_tick, b) < 0)
		return done(b);
	while (!done(b) && now_ms() <= b->shutdown_deadline_ms)
		reactor_run(b->reactor);
	reactor_remove_ticker(b->reactor, shutdown_tick, b);
	return done(b);
}

/* Makes every completed write durable before exit. */
void mgmt_build_flush(struct mgmt_build *b)
{
	for (size_t i = 0; i < b->nluns; i++) {
		/* An HA replica this node may not serve took no writes through it. */
		if (b->stores[i] == NULL || store_access(b->stores[i]) == STORE_ACCESS_UNAVAILABLE)
			continue;
		b->flush_reqs[i] = (struct flush_req){ .io.done = flushed, .b = b };
		b->flushing++;
		store_flush(b->stores[i], b->reactor, &b->flush_reqs[i].io);
	}
	if (!run_until(b, nothing_flushing, FLUSH_WAIT_MS))
		log_warn("stores still flushing after %u s; closing them", FLUSH_WAIT_MS / 1000);
}

/* HA devices close while the loop still turns: they say goodbye on their links, which
 * free themselves once their I/O has completed; then their witness clients stop. */
void mgmt_build_close_ha(struct mgmt_build *b)
{
	if (b->nhas == 0)
		return;
	for (size_t i = 0; i < MAX_LUNS; i++) {
		for (size_t j = 0; j < b->nhas; j++) {
			if (b->stores[i] != NULL && b->stores[i] == b->has[j].store) {
				b->has[j].closing = true;
				ha_scsi_peer_free(b->has[j].scsi_peer);
				b->has[j].scsi_peer = NULL;
				scsi_lu_free(b->lus[i]);
				store_close(b->stores[i]);
				b->lus[i] = NULL;
				b->stores[i] = NULL;
			}
		}
	}
	for (size_t j = 0; j < b->nhas; j++)
		if (b->has[j].witness)
			witness_client_stop(b->has[j].witness, witness_stopped, &b->has[j]);
	if (!run_until(b, ha_closed, DRAIN_WAIT_MS))
		log_warn("HA links still closing after %u s", DRAIN_WAIT_MS / 1000);
}

void mgmt_build_free(struct mgmt_build *b)
{
	if (b == NULL)
		return;
	reactor_timer_cancel(b->reactor, &b->reaper);
	for (size_t i = 0; i < b->nretired; i++)
		iscsi_target_free(b->retired[i]);
	free(b->retired);
	/* The links' managers before the devices they feed; store_close() closes a device. */
	for (size_t i = 0; i < b->nhas; i++) {
		ha_peer_free(b->has[i].peer);
		ha_scsi_peer_free(b->has[i].scsi_peer);
	}
	/* Also what a failed start left half built. */
	for (size_t i = 0; i < MAX_LUNS; i++) {
		scsi_lu_free(b->lus[i]);
		store_close(b->stores[i]);
	}
	/* A closing device releases its claim through its witness client. */
	for (size_t i = 0; i < b->nhas; i++)
		witness_client_free(b->has[i].witness);
	free(b);
}
