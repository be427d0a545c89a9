/* The Prometheus text exposition format (version 0.0.4) of the daemon's metrics, rendered
 * from snapshots: each LUN's I/O statistics (scsi/lu_stats.h) and each HA device's status
 * (ha/device.h).  Pure formatting, so tests feed it made-up snapshots; the HTTP endpoint
 * that takes the snapshots is mgmt/metrics_http.h.  docs/metrics.md lists the metrics. */
#ifndef TWINSAN_MGMT_METRICS_H
#define TWINSAN_MGMT_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ha/device.h"
#include "scsi/lu_stats.h"

struct metrics_lun {
	const char *target;
	uint64_t lun;
	const char *device;  /* the HA device serving it; NULL: none (label empty) */
	struct scsi_lu_stats stats;
};

struct metrics_snapshot {
	const char *version;
	uint64_t uptime_ms;
	const struct metrics_lun *luns;
	size_t n_luns;
	const struct ha_device_status *devices;
	size_t n_devices;
};

/* Writes the whole exposition to f. */
void metrics_render(FILE *f, const struct metrics_snapshot *s);
/* Writes a label value escaped as the format wants (backslash, quote, newline). */
void metrics_write_label_value(FILE *f, const char *v);

#endif
