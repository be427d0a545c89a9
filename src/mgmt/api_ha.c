#include "mgmt/api_ha.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

struct api_ha {
	struct ha_device *d;
	const struct ha_arbiter *arbiter;
};

static double percent(uint64_t done, uint64_t total)
{
	return total ? (double)done * 100.0 / (double)total : 0.0;
}

static json_t *links_json(const struct ha_device_status *st)
{
	json_t *links = json_array();

	for (unsigned i = 0; links && i < st->n_links && i < ARRAY_SIZE(st->links); i++) {
		const struct ha_link_status *l = &st->links[i];

		json_array_append_new(links, json_pack("{s:s, s:i, s:b, s:I}", "kind",
		                                       l->kind == PROTO_LINK_SYNC ? "sync" : "heartbeat", "index",
		                                       (int)l->index, "up", l->up, "rtt_ms", (json_int_t)l->rtt_ms));
	}
	return links;
}

static json_t *sync_json(const struct ha_device_status *st)
{
	uint64_t left = st->sync_total_bytes > st->sync_done_bytes ? st->sync_total_bytes - st->sync_done_bytes : 0;
	json_t *eta = st->state == HA_SYNC_SYNCHRONIZING && st->sync_rate_bps
	                      ? json_integer((json_int_t)((left + st->sync_rate_bps - 1) / st->sync_rate_bps))
	                      : json_null();

	return json_pack("{s:I, s:I, s:f, s:I, s:o, s:b}", "total_bytes", (json_int_t)st->sync_total_bytes,
	                 "done_bytes", (json_int_t)st->sync_done_bytes, "percent",
	                 percent(st->sync_done_bytes, st->sync_total_bytes), "rate_bps",
	                 (json_int_t)st->sync_rate_bps, "eta_seconds", eta, "source", st->sync_source);
}

static json_t *verify_json(const struct ha_device_status *st)
{
	return json_pack("{s:b, s:b, s:I, s:I, s:f, s:I}", "running", st->verify_running, "done", st->verify_done,
	                 "done_bytes", (json_int_t)st->verify_done_bytes, "total_bytes",
	                 (json_int_t)st->verify_total_bytes, "percent",
	                 percent(st->verify_done_bytes, st->verify_total_bytes), "differing_blocks",
	                 (json_int_t)st->verify_differing_blocks);
}

static json_t *generation_json(const struct generation *g)
{
	char cur[20], bm[20];

	snprintf(cur, sizeof(cur), "%016llx", (unsigned long long)g->current);
	snprintf(bm, sizeof(bm), "%016llx", (unsigned long long)g->bitmap);
	return json_pack("{s:s, s:s, s:b}", "current", cur, "bitmap", bm, "inconsistent",
	                 (g->flags & GENERATION_INCONSISTENT) != 0);
}

json_t *mgmt_ha_status_json(const struct ha_device_status *st)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:o, s:I, s:{s:I, s:I, s:I}, s:o, s:o, s:o}",
	                 "name", st->name, "role", st->role == HA_ROLE_PRIMARY ? "primary" : "secondary",
	                 "failover", ha_failover_name(st->failover), "state", ha_sync_state_name(st->state),
	                 "reason", ha_sync_reason_name(st->reason), "access", mgmt_access_name(st->access),
	                 "partner_connected", st->partner_connected, "partner_alive", st->partner_alive, "size",
	                 (json_int_t)st->size, "sync", sync_json(st), "dirty_bytes", (json_int_t)st->dirty_bytes,
	                 "resync_tally", "sent_bytes", (json_int_t)st->resync_sent_bytes, "received_bytes",
	                 (json_int_t)st->resync_received_bytes, "compared_bytes", (json_int_t)st->resync_compared_bytes,
	                 "generation", generation_json(&st->gen), "links",
	                 links_json(st), "verify", verify_json(st));
}

static json_t *ha_status(void *dev)
{
	struct ha_device_status st;

	ha_device_status(((struct api_ha *)dev)->d, &st);
	return mgmt_ha_status_json(&st);
}

static int ha_resolve(void *dev, bool keep_local, char *err, size_t errlen)
{
	return ha_device_resolve_split_brain(((struct api_ha *)dev)->d, keep_local, err, errlen);
}

static int ha_set_failover(void *dev, const char *strategy, char *err, size_t errlen)
{
	struct api_ha *h = dev;
	enum ha_failover f;

	if (ha_failover_parse(strategy, &f) < 0) {
		snprintf(err, errlen, "unknown failover strategy '%s'; use heartbeat or majority", strategy);
		return -1;
	}
	if (f == HA_FAILOVER_MAJORITY && !h->arbiter) {
		snprintf(err, errlen, "the majority strategy needs a witness, and this node has none configured");
		return -1;
	}
	return ha_device_set_failover(h->d, f, h->arbiter, err, errlen);
}

static int ha_verify(void *dev, char *err, size_t errlen)
{
	return ha_device_verify(((struct api_ha *)dev)->d, err, errlen);
}

static const struct mgmt_device_ops ha_ops = {
	.status = ha_status,
	.resolve_split_brain = ha_resolve,
	.set_failover = ha_set_failover,
	.verify = ha_verify,
	.release = free,
};

int mgmt_api_add_ha_device(struct mgmt_api *api, struct ha_device *d, const struct ha_arbiter *arbiter)
{
	struct api_ha *h = malloc(sizeof(*h));
	struct ha_device_status st;

	if (!h)
		return -1;
	*h = (struct api_ha){ .d = d, .arbiter = arbiter };
	ha_device_status(d, &st);
	if (mgmt_api_add_device(api, st.name, &ha_ops, h) < 0) {
		free(h);
		return -1;
	}
	return 0;
}

void mgmt_api_publish_ha_event(struct mgmt_api *api, struct ha_device *d, enum ha_event ev, const char *detail)
{
	struct ha_device_status st;
	char name[32];

	/* API names are snake_case like its fields: "partner_lost", not "partner-lost". */
	str_copy(name, sizeof(name), ha_event_name(ev));
	for (char *p = name; *p; p++)
		if (*p == '-')
			*p = '_';
	ha_device_status(d, &st);
	mgmt_api_publish_event(api, name, st.name, detail);
}
