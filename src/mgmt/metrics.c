/* Prometheus text exposition (0.0.4): families are written one at a time, every sample of
 * a family together under its HELP and TYPE lines, as the format requires. */
#include "mgmt/metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>

#include "ha/meta.h"

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_write_label_value(FILE *f, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void label(FILE *f, bool first, const char *key, const char *v)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", key);
	metrics_write_label_value(f, v);
	fputc('"', f);
}

static void lun_labels(FILE *f, const struct metrics_lun *l)
{
	label(f, true, "target", l->target);
	fprintf(f, ",lun=\"%" PRIu64 "\"", l->lun);
	label(f, false, "device", l->device);
}

/* Microseconds as seconds, exactly (no float rounding in the counters). */
static void seconds_us(FILE *f, uint64_t us)
{
	fprintf(f, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

struct lun_counter {
	const char *name, *help;
	size_t offset; /* of a uint64_t in struct scsi_lu_stats */
};

static const struct lun_counter lun_counters[] = {
	{ "twinsan_lun_commands_total", "SCSI commands completed.", offsetof(struct scsi_lu_stats, commands) },
	{ "twinsan_lun_read_commands_total", "READ commands completed.",
	  offsetof(struct scsi_lu_stats, read_commands) },
	{ "twinsan_lun_write_commands_total", "WRITE commands completed.",
	  offsetof(struct scsi_lu_stats, write_commands) },
	{ "twinsan_lun_read_bytes_total", "Bytes returned by successful READ commands.",
	  offsetof(struct scsi_lu_stats, read_bytes) },
	{ "twinsan_lun_written_bytes_total", "Bytes written by successful WRITE commands.",
	  offsetof(struct scsi_lu_stats, written_bytes) },
	{ "twinsan_lun_errors_total", "Commands that ended with CHECK CONDITION.",
	  offsetof(struct scsi_lu_stats, errors) },
};

static uint64_t field_u64(const void *base, size_t offset)
{
	return *(const uint64_t *)((const char *)base + offset);
}

static void histogram(FILE *f, const char *name, const struct metrics_lun *l, const struct lu_latency *h)
{
	uint64_t cumulative = 0;

	for (unsigned i = 0; i < LU_STATS_BUCKETS; i++) {
		cumulative += h->buckets[i];
		fprintf(f, "%s_bucket{", name);
		lun_labels(f, l);
		fputs(",le=\"", f);
		seconds_us(f, lu_stats_bucket_us(i));
		fprintf(f, "\"} %" PRIu64 "\n", cumulative);
	}
	fprintf(f, "%s_bucket{", name);
	lun_labels(f, l);
	fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n%s_sum{", h->count, name);
	lun_labels(f, l);
	fputs("} ", f);
	seconds_us(f, h->sum_us);
	fprintf(f, "\n%s_count{", name);
	lun_labels(f, l);
	fprintf(f, "} %" PRIu64 "\n", h->count);
}

static void render_luns(FILE *f, const struct metrics_snapshot *s)
{
	for (size_t c = 0; c < sizeof(lun_counters) / sizeof(lun_counters[0]); c++) {
		family(f, lun_counters[c].name, "counter", lun_counters[c].help);
		for (size_t i = 0; i < s->n_luns; i++) {
			fprintf(f, "%s{", lun_counters[c].name);
			lun_labels(f, &s->luns[i]);
			fprintf(f, "} %" PRIu64 "\n", field_u64(&s->luns[i].stats, lun_counters[c].offset));
		}
	}
	family(f, "twinsan_lun_read_latency_seconds", "histogram",
	       "READ command latency, from arrival at the logical unit to completion.");
	for (size_t i = 0; i < s->n_luns; i++)
		histogram(f, "twinsan_lun_read_latency_seconds", &s->luns[i], &s->luns[i].stats.read_latency);
	family(f, "twinsan_lun_write_latency_seconds", "histogram",
	       "WRITE command latency, from arrival at the logical unit to completion.");
	for (size_t i = 0; i < s->n_luns; i++)
		histogram(f, "twinsan_lun_write_latency_seconds", &s->luns[i], &s->luns[i].stats.write_latency);
}

static uint64_t ha_serving(const struct ha_device_status *d) { return d->access == STORE_ACCESS_OK; }
static uint64_t ha_partner(const struct ha_device_status *d) { return d->partner_connected; }
static uint64_t ha_done(const struct ha_device_status *d) { return d->sync_done_bytes; }
static uint64_t ha_total(const struct ha_device_status *d) { return d->sync_total_bytes; }
static uint64_t ha_rate(const struct ha_device_status *d) { return d->sync_rate_bps; }
static uint64_t ha_dirty(const struct ha_device_status *d) { return d->dirty_bytes; }
static uint64_t ha_sent(const struct ha_device_status *d) { return d->resync_sent_bytes; }
static uint64_t ha_received(const struct ha_device_status *d) { return d->resync_received_bytes; }
static uint64_t ha_compared(const struct ha_device_status *d) { return d->resync_compared_bytes; }

struct ha_metric {
	const char *name, *type, *help;
	uint64_t (*value)(const struct ha_device_status *d);
};

static const struct ha_metric ha_metrics[] = {
	{ "twinsan_ha_serving", "gauge", "1 while this node serves I/O for the device.", ha_serving },
	{ "twinsan_ha_partner_connected", "gauge", "1 while some sync link to the partner is up.", ha_partner },
	{ "twinsan_ha_sync_done_bytes", "gauge", "Bytes moved by the running (or last) resync.", ha_done },
	{ "twinsan_ha_sync_total_bytes", "gauge", "Bytes the running (or last) resync has to move.", ha_total },
	{ "twinsan_ha_sync_rate_bytes_per_second", "gauge", "Resync rate over the last seconds.", ha_rate },
	{ "twinsan_ha_dirty_bytes", "gauge", "Bytes that may differ from the partner's replica.", ha_dirty },
	{ "twinsan_ha_resync_sent_bytes_total", "counter", "Resync bytes sent since the daemon started.", ha_sent },
	{ "twinsan_ha_resync_received_bytes_total", "counter", "Resync bytes received since the daemon started.",
	  ha_received },
	{ "twinsan_ha_resync_compared_bytes_total", "counter",
	  "Resync bytes compared by digest (not moved) since the daemon started.", ha_compared },
};

static void link_labels(FILE *f, const struct ha_device_status *d, const struct ha_link_status *l)
{
	label(f, true, "device", d->name);
	label(f, false, "kind", l->kind == PROTO_LINK_SYNC ? "sync" : "heartbeat");
	fprintf(f, ",index=\"%u\"", l->index);
}

static void render_devices(FILE *f, const struct metrics_snapshot *s)
{
	family(f, "twinsan_ha_state", "gauge", "The device's sync state and reason (value 1).");
	for (size_t i = 0; i < s->n_devices; i++) {
		fputs("twinsan_ha_state{", f);
		label(f, true, "device", s->devices[i].name);
		label(f, false, "state", ha_sync_state_name(s->devices[i].state));
		label(f, false, "reason", ha_sync_reason_name(s->devices[i].reason));
		fputs("} 1\n", f);
	}
	for (size_t m = 0; m < sizeof(ha_metrics) / sizeof(ha_metrics[0]); m++) {
		family(f, ha_metrics[m].name, ha_metrics[m].type, ha_metrics[m].help);
		for (size_t i = 0; i < s->n_devices; i++) {
			fprintf(f, "%s{", ha_metrics[m].name);
			label(f, true, "device", s->devices[i].name);
			fprintf(f, "} %" PRIu64 "\n", ha_metrics[m].value(&s->devices[i]));
		}
	}
	family(f, "twinsan_ha_link_up", "gauge", "1 while the link is connected and authenticated.");
	for (size_t i = 0; i < s->n_devices; i++)
		for (unsigned k = 0; k < s->devices[i].n_links; k++) {
			fputs("twinsan_ha_link_up{", f);
			link_labels(f, &s->devices[i], &s->devices[i].links[k]);
			fprintf(f, "} %d\n", s->devices[i].links[k].up);
		}
	family(f, "twinsan_ha_link_rtt_seconds", "gauge", "The link's last measured round-trip time.");
	for (size_t i = 0; i < s->n_devices; i++)
		for (unsigned k = 0; k < s->devices[i].n_links; k++) {
			fputs("twinsan_ha_link_rtt_seconds{", f);
			link_labels(f, &s->devices[i], &s->devices[i].links[k]);
			fputs("} ", f);
			seconds_us(f, s->devices[i].links[k].rtt_ms * 1000);
			fputc('\n', f);
		}
}

void metrics_render(FILE *f, const struct metrics_snapshot *s)
{
	family(f, "twinsan_build_info", "gauge", "The daemon's version (value 1).");
	fputs("twinsan_build_info{", f);
	label(f, true, "version", s->version);
	fputs("} 1\n", f);
	family(f, "twinsan_uptime_seconds", "gauge", "Seconds since the daemon started.");
	fputs("twinsan_uptime_seconds ", f);
	seconds_us(f, s->uptime_ms * 1000);
	fputc('\n', f);
	render_luns(f, s);
	render_devices(f, s);
}
