/* What the checks of `twinctl validate` share: the paths with the identity each showed,
 * the verdict and reason a check leaves, and the check functions the table in
 * validate.c names (validate_disk.c, validate_pr.c, validate_latency.c). */
#ifndef TWINSAN_MGMT_VALIDATE_CHECK_H
#define TWINSAN_MGMT_VALIDATE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "mgmt/validate.h"
#include "mgmt/validate_parse.h"
#include "mgmt/validate_session.h"

/* One path and what its logical unit says about itself. */
struct vpath {
	const char *url; /* in vctx's urls */
	struct vpath_name name;
	struct vsession *probe; /* the first initiator's session, for the read-only checks */
	bool identified;        /* id was read */
	struct videntity id;
};

struct vctx {
	const struct validate_options *o;
	struct vauth auth;
	const char *initiators[2];
	struct vpath paths[VALIDATE_MAX_PATHS];
	char urls[VALIDATE_MAX_PATHS][600]; /* the paths' URLs: given, or made from discovery */
	size_t n;
	bool one_disk; /* every path reaches the same disk (the paths check found) */
};

enum vverdict { V_PASS, V_FAIL, V_SKIP };

/* What a check found: its reason (problems are appended with vnote_add) and, for JSON,
 * details such as measurements. */
struct vnote {
	char reason[2048];
	json_t *details; /* an object, owned by the runner */
};

void vnote_add(struct vnote *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the reason and returns v: `return verdict(n, V_SKIP, "one path only");` */
enum vverdict verdict(struct vnote *n, enum vverdict v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A path as the report names it: "127.0.0.1:3260". */
const char *vpath_label(const struct vpath *p);

typedef enum vverdict vcheck_fn(struct vctx *c, struct vnote *n);

vcheck_fn vcheck_paths, vcheck_identity, vcheck_alua;
vcheck_fn vcheck_latency_read, vcheck_latency_write;

/* The persistent reservation checks are steps between two initiators ("node 1" on the
 * first path, "node 2" on the second) that validate_pr_run() brackets: it opens their
 * sessions on a disk without registrations (else SKIP) and clears what the steps left,
 * also when they failed.  Steps return the reason of a pass. */
struct pr;
typedef const char *vpr_fn(struct pr *p);
enum vverdict validate_pr_run(struct vctx *c, struct vnote *n, vpr_fn *steps);
vpr_fn vpr_register, vpr_reserve, vpr_conflict, vpr_preempt, vpr_preempt_abort, vpr_release, vpr_clear,
	vpr_arbitration;

#endif
