/* `twinctl validate`: checks, from an initiator host, that the iSCSI paths given make one
 * cluster-grade shared disk (any target, ours or another): one identity on every path,
 * ALUA, SCSI-3 persistent reservations between two initiators over two paths, the
 * failover cluster's arbitration, and access latency.  The checks are one table
 * (validate.c); each reports PASS, FAIL or SKIP with a reason (docs/twinctl.md). */
#ifndef TWINSAN_MGMT_VALIDATE_H
#define TWINSAN_MGMT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define VALIDATE_MAX_PATHS 8

struct validate_options {
	/* iscsi://HOST[:PORT]/TARGET/LUN, one per path, or iscsi://HOST[:PORT]: a portal
	 * whose discovery gives the paths (to target, or the one target it offers; LUN lun) */
	const char *urls[VALIDATE_MAX_PATHS];
	size_t n_urls;
	const char *target;
	int lun;
	const char *initiators[2]; /* the two cluster nodes' names; NULL: the tool's defaults */
	const char *chap_user, *chap_secret, *mutual_user, *mutual_secret;
	bool write;       /* checks may write, restoring what they overwrite */
	unsigned samples; /* latency: commands per path and kind; 0: the default */
	bool json;
};

/* The exit codes, as twinctl's. */
enum { VALIDATE_PASSED = 0, VALIDATE_FAILED = 1, VALIDATE_USAGE = 2, VALIDATE_UNREACHABLE = 3 };

/* Runs every check and prints the report (text or one JSON document) on stdout; usage
 * problems and unreachable paths go to stderr.  Returns the exit code. */
int validate_run(const struct validate_options *o);

#endif
