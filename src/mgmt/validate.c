/* The runner of `twinctl validate` (validate.h): the table of checks, the paths' probe
 * sessions, and the report in text or JSON. */
#include "mgmt/validate.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "mgmt/validate_check.h"

#define DEFAULT_INITIATOR_1 "iqn.2026-11.org.twinsan:validate-node1"
#define DEFAULT_INITIATOR_2 "iqn.2026-11.org.twinsan:validate-node2"

struct vcheck {
	const char *name;
	const char *proves;
	vcheck_fn *fn;
	vpr_fn *pr; /* instead of fn: persistent reservation steps */
};

/* In this order: later checks rely on what the paths check read. */
static const struct vcheck checks[] = {
	{ "paths", "every path reaches a disk, and the same one", vcheck_paths, NULL },
	{ "identity", "every path shows the same VPD 0x80 serial, 0x83 designators, capacity, block size, vendor and product",
	  vcheck_identity, NULL },
	{ "alua", "INQUIRY reports ALUA (TPGS) and REPORT TARGET PORT GROUPS shows each path's group active/optimized",
	  vcheck_alua, NULL },
	{ "pr-register", "both initiators register over their own paths and each path sees both keys; a wrong key is "
	                 "refused; unregistering removes only that key", NULL, vpr_register },
	{ "pr-reserve", "a registrant reserves (exclusive access, registrants only) and both paths report it as the holder",
	  NULL, vpr_reserve },
	{ "pr-conflict", "while one initiator holds the reservation, the other gets RESERVATION CONFLICT until it "
	                 "registers, and can neither reserve nor release it", NULL, vpr_conflict },
	{ "pr-preempt", "the other registrant preempts the holder: it holds the reservation, the holder's key is gone and "
	                "it is told so (REGISTRATIONS PREEMPTED) and held off", NULL, vpr_preempt },
	{ "pr-preempt-abort", "PREEMPT AND ABORT preempts like PREEMPT and ends the holder's commands in flight",
	  NULL, vpr_preempt_abort },
	{ "pr-release", "the holder releases: no reservation on either path, registrations stay, the other registrant "
	                "is told (RESERVATIONS RELEASED)", NULL, vpr_release },
	{ "pr-clear", "CLEAR removes every registration and the reservation, seen on both paths", NULL, vpr_clear },
	{ "arbitration", "the failover cluster's pattern: node 1 holds the disk (write exclusive, registrants only), node "
	                 "2 preempts it and takes over, node 1 is fenced off; then back again", NULL, vpr_arbitration },
	{ "latency-read", "every path serves 4 KiB reads; median and 99th percentile", vcheck_latency_read, NULL },
	{ "latency-write", "every path serves 4 KiB writes (with --write, to a region restored afterwards); median and "
	                   "99th percentile", vcheck_latency_write, NULL },
};

#define N_CHECKS (sizeof(checks) / sizeof(checks[0]))

static const char *const verdict_words[] = { [V_PASS] = "PASS", [V_FAIL] = "FAIL", [V_SKIP] = "SKIP" };
static const char *const verdict_json[] = { [V_PASS] = "pass", [V_FAIL] = "fail", [V_SKIP] = "skip" };

void vnote_add(struct vnote *n, const char *fmt, ...)
{
	size_t used = strlen(n->reason);
	va_list ap;

	if (used && used + 2 < sizeof(n->reason)) {
		memcpy(n->reason + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(n->reason + used, sizeof(n->reason) - used, fmt, ap);
	va_end(ap);
}

enum vverdict verdict(struct vnote *n, enum vverdict v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n->reason, sizeof(n->reason), fmt, ap);
	va_end(ap);
	return v;
}

const char *vpath_label(const struct vpath *p)
{
	return p->name.portal;
}

/* Whether arg names a portal only, iscsi://HOST[:PORT][/]; its HOST[:PORT] in portal. */
static bool portal_only(const char *arg, char *portal, size_t len)
{
	const char *rest = arg + 8;
	size_t n = strcspn(rest, "/");

	if (strncmp(arg, "iscsi://", 8) || !n || n >= len || (rest[n] == '/' && rest[n + 1]))
		return false;
	snprintf(portal, len, "%.*s", (int)n, rest);
	return true;
}

/* Adds a path; a message and -1 if the URL is bad, or given twice (a discovered path
 * already known is left out: 0). */
static int add_path(struct vctx *c, const char *url, bool given)
{
	struct vpath *p = &c->paths[c->n];
	char err[512];

	for (size_t j = 0; j < c->n; j++)
		if (!strcmp(c->urls[j], url)) {
			if (given)
				fprintf(stderr, "twinctl validate: path %s is given twice\n", vpath_label(&c->paths[j]));
			return given ? -1 : 0;
		}
	if (c->n == VALIDATE_MAX_PATHS || strlen(url) >= sizeof(c->urls[0])) {
		fprintf(stderr, "twinctl validate: %s: at most %d paths, of URLs up to %zu characters\n", url,
		        VALIDATE_MAX_PATHS, sizeof(c->urls[0]) - 1);
		return -1;
	}
	if (vsession_parse_url(url, &p->name, err, sizeof(err)) < 0) {
		fprintf(stderr, "twinctl validate: %s\n", err);
		return -1;
	}
	snprintf(c->urls[c->n], sizeof(c->urls[0]), "%s", url);
	p->url = c->urls[c->n++];
	return 0;
}

/* Checks what can be checked before connecting; a message and false otherwise. */
static bool options_valid(struct vctx *c)
{
	const struct validate_options *o = c->o;
	char portal[256];

	if (!o->n_urls) {
		fprintf(stderr, "twinctl validate: give the iscsi:// URL of every path to the disk, or portals to discover "
		                "them from\n");
		return false;
	}
	for (size_t i = 0; i < o->n_urls; i++)
		if (!portal_only(o->urls[i], portal, sizeof(portal)) && add_path(c, o->urls[i], true) < 0)
			return false;
	for (int i = 0; i < 2; i++) {
		const char *name = c->initiators[i];

		if (strncmp(name, "iqn.", 4) && strncmp(name, "eui.", 4) && strncmp(name, "naa.", 4)) {
			fprintf(stderr, "twinctl validate: --initiator '%s': an iSCSI name (iqn.…, eui.… or naa.…)\n", name);
			return false;
		}
	}
	if (!strcmp(c->initiators[0], c->initiators[1])) {
		fprintf(stderr, "twinctl validate: the two initiators need two names, not '%s' twice\n", c->initiators[0]);
		return false;
	}
	if (o->samples > 100000) {
		fprintf(stderr, "twinctl validate: --samples %u: at most 100000\n", o->samples);
		return false;
	}
	return true;
}

struct discovery {
	struct vctx *c;
	char first[256];   /* the first target offered, when the choice is the user's */
	char others[1024]; /* ", NAME" of every other one */
	int rc;
};

static void found(void *ctx, const char *target, const char *address)
{
	struct discovery *d = ctx;
	const char *want = d->c->o->target ? d->c->o->target : d->first;
	char url[1024];

	if (!want[0])
		snprintf(d->first, sizeof(d->first), "%s", target);
	if (strcmp(target, want[0] ? want : d->first)) {
		if (!d->c->o->target && !strstr(d->others, target))
			snprintf(d->others + strlen(d->others), sizeof(d->others) - strlen(d->others), ", %s", target);
		return;
	}
	snprintf(url, sizeof(url), "iscsi://%s/%s/%d", address, target, d->c->o->lun);
	if (d->rc == 0 && add_path(d->c, url, false) < 0)
		d->rc = VALIDATE_USAGE;
}

/* Adds the paths the portals given offer; an exit code, with the message printed. */
static int discover_paths(struct vctx *c)
{
	struct discovery d = { .c = c };
	char portal[256], err[1024];
	size_t given = c->n;

	for (size_t i = 0; i < c->o->n_urls && d.rc == 0; i++) {
		if (!portal_only(c->o->urls[i], portal, sizeof(portal)))
			continue;
		if (vsession_discover(portal, c->initiators[0], &c->auth, found, &d, err, sizeof(err)) < 0) {
			fprintf(stderr, "twinctl validate: %s\n", err);
			return VALIDATE_UNREACHABLE;
		}
		if (c->n == given) {
			fprintf(stderr, "twinctl validate: %s offers no target%s%s\n", portal, c->o->target ? " named " : "",
			        c->o->target ? c->o->target : "");
			return VALIDATE_UNREACHABLE;
		}
		given = c->n;
	}
	if (d.rc == 0 && d.others[0]) {
		fprintf(stderr, "twinctl validate: the portals offer several targets (%s%s): choose one with --target\n",
		        d.first, d.others);
		return VALIDATE_USAGE;
	}
	return d.rc;
}

static json_t *paths_json(const struct vctx *c)
{
	json_t *a = json_array();

	for (size_t i = 0; i < c->n; i++) {
		const struct vpath *p = &c->paths[i];
		json_t *o = json_pack("{s:s, s:s, s:i}", "portal", p->name.portal, "target", p->name.target, "lun",
		                      p->name.lun);

		if (p->identified)
			json_object_update_new(o, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "disk", p->id.disk, "vendor",
			                                    p->id.vendor, "product", p->id.product, "revision", p->id.revision, "serial",
			                                    p->id.serial, "capacity_bytes", (json_int_t)(p->id.blocks * p->id.block_size),
			                                    "block_size", (json_int_t)p->id.block_size));
		json_array_append_new(a, o);
	}
	return a;
}

static void print_document(json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	if (text)
		printf("%s\n", text);
	free(text);
	fflush(stdout);
}

static void close_paths(struct vctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		vsession_close(c->paths[i].probe);
}

int validate_run(const struct validate_options *o)
{
	struct vctx c = { .o = o,
		          .auth = { o->chap_user, o->chap_secret, o->mutual_user, o->mutual_secret },
		          .initiators = { o->initiators[0] ? o->initiators[0] : DEFAULT_INITIATOR_1,
		                          o->initiators[1] ? o->initiators[1] : DEFAULT_INITIATOR_2 } };
	unsigned count[3] = { 0 };
	json_t *tests = json_array();
	char err[1024];
	int rc;

	rc = options_valid(&c) ? discover_paths(&c) : VALIDATE_USAGE;
	if (rc != VALIDATE_PASSED) {
		json_decref(tests);
		return rc;
	}
	for (size_t i = 0; i < c.n; i++) {
		if (vsession_open(c.paths[i].url, c.initiators[0], &c.auth, &c.paths[i].probe, err, sizeof(err)) < 0) {
			fprintf(stderr, "twinctl validate: path %zu: %s\n", i + 1, err);
			if (o->json) {
				json_t *doc = json_pack("{s:i, s:s, s:i}", "version", 1, "error", err, "exit_code",
				                        VALIDATE_UNREACHABLE);

				print_document(doc);
				json_decref(doc);
			}
			close_paths(&c);
			json_decref(tests);
			return VALIDATE_UNREACHABLE;
		}
	}
	if (!o->json)
		printf("Validating %zu path%s to %s, LUN %d, as %s and %s\n\n", c.n, c.n == 1 ? "" : "s",
		       c.paths[0].name.target, c.paths[0].name.lun, c.initiators[0], c.initiators[1]);
	for (size_t i = 0; i < N_CHECKS; i++) {
		struct vnote n = { .details = json_object() };
		enum vverdict v = checks[i].fn ? checks[i].fn(&c, &n) : validate_pr_run(&c, &n, checks[i].pr);

		count[v]++;
		if (o->json) {
			json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "name", checks[i].name, "proves", checks[i].proves,
			                      "result", verdict_json[v], "reason", n.reason);

			if (json_object_size(n.details))
				json_object_set(t, "details", n.details);
			json_array_append_new(tests, t);
		} else {
			printf("%s  %-17s %s\n", verdict_words[v], checks[i].name, n.reason);
			fflush(stdout);
		}
		json_decref(n.details);
	}
	rc = count[V_FAIL] ? VALIDATE_FAILED : VALIDATE_PASSED;
	if (o->json) {
		json_t *doc = json_pack("{s:i, s:o, s:o, s:{s:i, s:i, s:i}, s:i}", "version", 1, "paths", paths_json(&c),
		                        "tests", tests, "summary", "passed", count[V_PASS], "failed", count[V_FAIL],
		                        "skipped", count[V_SKIP], "exit_code", rc);

		print_document(doc);
		json_decref(doc);
	} else {
		json_decref(tests);
		printf("\n%u passed, %u failed, %u skipped: %s\n", count[V_PASS], count[V_FAIL], count[V_SKIP],
		       rc               ? "NOT a valid shared disk for a failover cluster"
		       : count[V_SKIP] ? "no check failed; the skipped ones say why they did not run"
		                       : "a valid shared disk for a failover cluster");
	}
	close_paths(&c);
	return rc;
}
