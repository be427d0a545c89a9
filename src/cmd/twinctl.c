/* twinctl: the administrator's command line over the management API (docs/twinctl.md).
 *
 *   twinctl [--server unix:PATH | HOST:PORT | NAME] [--secret-file FILE] [--json] COMMAND ...
 *
 * Exit codes scripts rely on: 0 done, 1 the operation failed (the server said why),
 * 2 usage error (nothing was sent), 3 the server cannot be reached. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mgmt/api.h"
#include "mgmt/api_client.h"
#include "mgmt/config.h"
#include "common/util.h"
#include "mgmt/server_list.h"
#include "mgmt/validate.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

#define MAX_POS VALIDATE_MAX_PATHS
#define MAX_OPTS 20
#define LIST_MAX 1024 /* a repeated option's values, joined by commas */
#define WATCH_INTERVAL_MS 1000
#define BAR_WIDTH 30

struct ctx {
	const char *server;      /* as given, or NULL: $TWINCTL_SERVER, else the default socket */
	const char *secret_file; /* the admin secret for a TCP server, or NULL: $TWINCTL_SECRET_FILE */
	bool json;
	struct api_client *c;
};

struct args {
	const char *pos[MAX_POS];
	unsigned n_pos;
	const char *opt[MAX_OPTS]; /* per the command's opts: the value, "" for a flag, NULL if absent */
	char list[MAX_OPTS][LIST_MAX]; /* a repeatable option's values; opt[k] points here */
};

struct command {
	const char *words;           /* "device status" */
	const char *usage;           /* what follows the words */
	const char *help;
	unsigned n_pos;
	/* "watch" (a flag), "keep=" (takes a value), "allow=+" (repeatable) or "sync=2+" (two
	 * values, LOCAL PARTNER, kept as "LOCAL PARTNER"; repeatable) */
	const char *opts[MAX_OPTS];
	int (*fn)(struct ctx *x, const struct args *a);
};

/* In a command's n_pos: it takes more positional arguments, up to MAX_POS. */
#define POS_MORE 0x100

static int usage_error(const char *words, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- talking to the server ---- */

/* Where to connect: the Unix socket path (*tcp false) or HOST:PORT (*tcp true) the
 * --server argument names, and for a saved server its entry (name, certificate pin,
 * secret file), else a zeroed one; an exit code on failure. */
static int resolve_server(const char *server, char *path, size_t len, bool *tcp, struct server_entry *saved)
{
	struct server_list list;
	const struct server_entry *e;
	char file[4096], err[512];
	const char *address = server ? server : getenv("TWINCTL_SERVER");

	if (!address || !address[0])
		address = "unix:" MGMT_API_DEFAULT_SOCKET;
	if (address[0] != '/' && server_name_valid(address) && !strchr(address, ':')) {
		if (server_list_path(file, sizeof(file), err, sizeof(err)) < 0 ||
		    server_list_load(file, &list, err, sizeof(err)) < 0) {
			fprintf(stderr, "twinctl: %s\n", err);
			return EXIT_USAGE;
		}
		e = server_list_find(&list, address);
		if (!e) {
			fprintf(stderr, "twinctl: no saved server named '%s'; 'twinctl server list' shows them, or give "
			                "--server unix:PATH or HOST:PORT\n", address);
			server_list_free(&list);
			return EXIT_USAGE;
		}
		snprintf(path, len, "%s", e->address);
		*saved = *e;
		server_list_free(&list);
		address = path;
	}
	*tcp = false;
	if (address[0] == '/') {
		snprintf(path, len, "%s", address);
		return EXIT_OK;
	}
	if (server_address_check(address, err, sizeof(err)) < 0) {
		fprintf(stderr, "twinctl: --server %s\n", err);
		return EXIT_USAGE;
	}
	*tcp = strncmp(address, "unix:", 5) != 0;
	memmove(path, address + (*tcp ? 0 : 5), strlen(address + (*tcp ? 0 : 5)) + 1);
	return EXIT_OK;
}

/* Trust on first use: a saved TCP server keeps the certificate it showed first. */
static void pin_server(const char *name, const char *pin)
{
	struct server_list list;
	char file[4096], err[512];

	if (server_list_path(file, sizeof(file), err, sizeof(err)) < 0 ||
	    server_list_load(file, &list, err, sizeof(err)) < 0) {
		fprintf(stderr, "twinctl: %s\n", err);
		return;
	}
	if (server_list_pin(&list, name, pin) == 0 && server_list_save(file, &list, err, sizeof(err)) == 0)
		fprintf(stderr, "twinctl: %s: trusting its certificate sha256:%s from now on\n", name, pin);
	else
		fprintf(stderr, "twinctl: %s: cannot save its certificate: %s\n", name, err);
	server_list_free(&list);
}

/* Calls method; on failure prints why and returns the exit code. */
static int call(struct ctx *x, const char *method, json_t *params, json_t **result)
{
	char path[SERVER_ADDRESS_MAX], err[1024];
	struct server_entry saved = { 0 };
	const char *secret = x->secret_file;
	enum api_client_status st;
	bool tcp;
	int rc;

	if (!x->c) {
		rc = resolve_server(x->server, path, sizeof(path), &tcp, &saved);
		if (!secret)
			secret = saved.secret_file[0] ? saved.secret_file : getenv("TWINCTL_SECRET_FILE");
		if (rc == EXIT_OK && tcp && (!secret || !secret[0]))
			rc = usage_error(NULL, "%s is reached over TCP: give --secret-file FILE, a copy (mode 0600) of that "
			                       "daemon's admin secret file", path);
		if (rc != EXIT_OK) {
			json_decref(params);
			return rc;
		}
		if (tcp)
			st = api_client_connect_tcp(path, secret, saved.pin[0] ? saved.pin : NULL, &x->c, err, sizeof(err));
		else
			st = api_client_connect(path, &x->c, err, sizeof(err));
		if (st == API_CLIENT_OK && tcp && saved.name[0] && !saved.pin[0])
			pin_server(saved.name, api_client_pin(x->c));
		if (st != API_CLIENT_OK) {
			json_decref(params);
			fprintf(stderr, "twinctl: %s\n", err);
			return (int)st;
		}
	}
	st = api_client_call(x->c, method, params, result, err, sizeof(err));
	if (st != API_CLIENT_OK)
		fprintf(stderr, "twinctl: %s\n", err);
	return (int)st;
}

static json_t *name_param(const char *name) { return json_pack("{s:s}", "name", name); }

/* ---- output ---- */

static void print_json(const json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);

	if (text)
		printf("%s\n", text);
	free(text);
	fflush(stdout);
}

static const char *str_of(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

static unsigned long long u64_of(const json_t *obj, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(obj, key));

	return v > 0 ? (unsigned long long)v : 0;
}

static const char *human_duration(unsigned long long s, char *buf, size_t len)
{
	if (s >= 3600)
		snprintf(buf, len, "%lluh%02llum%02llus", s / 3600, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%llum%02llus", s / 60, s % 60);
	else
		snprintf(buf, len, "%llus", s);
	return buf;
}

/* "45.2%  120.0 MiB/s  ETA 1m05s" of a status's sync object. */
static const char *sync_summary(const json_t *status, char *buf, size_t len)
{
	const json_t *sync = json_object_get(status, "sync");
	const json_t *eta = json_object_get(sync, "eta_seconds");
	char rate[32], t[32];

	if (strcmp(str_of(status, "state"), "synchronizing")) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%.1f%%  %s/s  ETA %s", json_number_value(json_object_get(sync, "percent")),
	         human_bytes(u64_of(sync, "rate_bps"), rate, sizeof(rate)),
	         json_is_integer(eta) ? human_duration(u64_of(sync, "eta_seconds"), t, sizeof(t)) : "unknown");
	return buf;
}

static const char *partner_word(const json_t *status)
{
	return json_is_true(json_object_get(status, "partner_connected")) ? "connected"
	       : json_is_true(json_object_get(status, "partner_alive")) ? "heartbeat only"
	                                                                 : "disconnected";
}

static void print_device_row(const json_t *d)
{
	char sync[96];

	printf("%-16s %-9s %-17s %-13s %-14s %s\n", str_of(d, "name"), str_of(d, "role"), str_of(d, "state"),
	       str_of(d, "access"), partner_word(d), sync_summary(d, sync, sizeof(sync)));
}

static void print_device_header(void)
{
	printf("%-16s %-9s %-17s %-13s %-14s %s\n", "NAME", "ROLE", "STATE", "ACCESS", "PARTNER", "SYNC");
}

/* ---- commands ---- */

static int cmd_status(struct ctx *x, const struct args *a)
{
	json_t *info, *list, *devices;
	char up[32];
	size_t i;
	json_t *d;
	int rc = call(x, "server.info", NULL, &info);

	if (rc)
		return rc;
	rc = call(x, "device.list", NULL, &list);
	if (rc) {
		json_decref(info);
		return rc;
	}
	devices = json_object_get(list, "devices");
	if (x->json) {
		json_t *out = json_pack("{s:O, s:O}", "server", info, "devices", devices);

		print_json(out);
		json_decref(out);
	} else {
		printf("version:  %s (API %llu)\n", str_of(info, "version"), u64_of(info, "api_version"));
		printf("node id:  %s\n", str_of(info, "node_id"));
		printf("uptime:   %s\n", human_duration(u64_of(info, "uptime_seconds"), up, sizeof(up)));
		printf("targets:  %llu\n", u64_of(info, "targets"));
		printf("devices:  %llu\n", u64_of(info, "devices"));
		if (json_array_size(devices)) {
			printf("\n");
			print_device_header();
			json_array_foreach(devices, i, d)
				print_device_row(d);
		}
	}
	json_decref(info);
	json_decref(list);
	return EXIT_OK;
}

/* Calls a list method.  With --json the result is printed and *res is NULL; else *res is
 * the result to print, and `empty` was printed if the list under key is empty. */
static int fetch_list(struct ctx *x, const char *method, const char *key, const char *empty, json_t **res)
{
	int rc = call(x, method, NULL, res);

	if (rc)
		return rc;
	if (x->json) {
		print_json(*res);
		json_decref(*res);
		*res = NULL;
	} else if (!json_array_size(json_object_get(*res, key))) {
		printf("%s\n", empty);
	}
	return EXIT_OK;
}

static int cmd_target_list(struct ctx *x, const struct args *a)
{
	json_t *res, *t, *l, *p;
	size_t i, j;
	char size[32];
	int rc = fetch_list(x, "target.list", "targets", "no targets", &res);

	if (rc || !res)
		return rc;
	json_array_foreach(json_object_get(res, "targets"), i, t) {
		const char *alias = str_of(t, "alias");

		printf("%s%s%s%s  chap %s\n", str_of(t, "name"), *alias ? "  (" : "", alias, *alias ? ")" : "",
		       json_is_true(json_object_get(t, "chap")) ? "required" : "off");
		json_array_foreach(json_object_get(t, "luns"), j, l) {
			printf("  lun %-3llu %10s  %-13s %s", u64_of(l, "lun"), human_bytes(u64_of(l, "size"), size, sizeof(size)),
			       str_of(l, "access"), str_of(l, "backing"));
			if (json_is_string(json_object_get(l, "device")))
				printf("  (device %s)", str_of(l, "device"));
			printf("\n");
		}
	}
	json_array_foreach(json_object_get(res, "portals"), i, p)
		printf("%s%s", i ? ", " : "portals: ", json_string_value(p));
	if (json_array_size(json_object_get(res, "portals")))
		printf("\n");
	json_decref(res);
	return EXIT_OK;
}

/* Who is logged in, per target: what an administrator checks before deleting. */
static int cmd_session_list(struct ctx *x, const struct args *a)
{
	json_t *res, *s, *c;
	size_t i, j;
	int rc = fetch_list(x, "session.list", "sessions", "no sessions", &res);

	if (rc || !res)
		return rc;
	json_array_foreach(json_object_get(res, "sessions"), i, s) {
		const char *target = str_of(s, "target");

		printf("%s  %s  isid %s  tsih %llu  portal group %llu  %zu connection(s):", *target ? target : "(discovery)",
		       str_of(s, "initiator"), str_of(s, "isid"), u64_of(s, "tsih"), u64_of(s, "portal_group"),
		       json_array_size(json_object_get(s, "connections")));
		json_array_foreach(json_object_get(s, "connections"), j, c)
			printf(" %s (cid %llu)", str_of(c, "peer"), u64_of(c, "cid"));
		printf("\n");
	}
	json_decref(res);
	return EXIT_OK;
}

static int cmd_device_list(struct ctx *x, const struct args *a)
{
	json_t *res, *d;
	size_t i;
	int rc = call(x, "device.list", NULL, &res);

	if (rc)
		return rc;
	if (x->json) {
		print_json(res);
	} else if (!json_array_size(json_object_get(res, "devices"))) {
		printf("no devices\n");
	} else {
		print_device_header();
		json_array_foreach(json_object_get(res, "devices"), i, d)
			print_device_row(d);
	}
	json_decref(res);
	return EXIT_OK;
}

static void print_device_status(const json_t *st)
{
	const json_t *sync = json_object_get(st, "sync"), *tally = json_object_get(st, "resync_tally");
	const json_t *gen = json_object_get(st, "generation"), *verify = json_object_get(st, "verify"), *l;
	char b1[32], b2[32], b3[32], line[128];
	size_t i;

	printf("name:          %s\n", str_of(st, "name"));
	printf("role:          %s\n", str_of(st, "role"));
	printf("failover:      %s\n", str_of(st, "failover"));
	printf("state:         %s", str_of(st, "state"));
	if (strcmp(str_of(st, "reason"), "none") && strcmp(str_of(st, "reason"), "-"))
		printf(" (%s)", str_of(st, "reason"));
	printf("\naccess:        %s\n", str_of(st, "access"));
	printf("partner:       %s\n", partner_word(st));
	printf("size:          %s\n", human_bytes(u64_of(st, "size"), b1, sizeof(b1)));
	if (sync) {
		printf("sync:          %s", sync_summary(st, line, sizeof(line)));
		printf("  (%s of %s%s)\n", human_bytes(u64_of(sync, "done_bytes"), b1, sizeof(b1)),
		       human_bytes(u64_of(sync, "total_bytes"), b2, sizeof(b2)),
		       json_is_true(json_object_get(sync, "source")) ? ", this node is the source" : "");
	}
	printf("dirty:         %s\n", human_bytes(u64_of(st, "dirty_bytes"), b1, sizeof(b1)));
	if (tally)
		printf("resync tally:  sent %s, received %s, compared by digest %s\n",
		       human_bytes(u64_of(tally, "sent_bytes"), b1, sizeof(b1)),
		       human_bytes(u64_of(tally, "received_bytes"), b2, sizeof(b2)),
		       human_bytes(u64_of(tally, "compared_bytes"), b3, sizeof(b3)));
	if (gen)
		printf("generation:    current %s, bitmap %s%s\n", str_of(gen, "current"), str_of(gen, "bitmap"),
		       json_is_true(json_object_get(gen, "inconsistent")) ? ", inconsistent" : "");
	json_array_foreach(json_object_get(st, "links"), i, l)
		printf("link:          %s %llu %s, rtt %llu ms\n", str_of(l, "kind"), u64_of(l, "index"),
		       json_is_true(json_object_get(l, "up")) ? "up" : "down", u64_of(l, "rtt_ms"));
	if (json_is_true(json_object_get(verify, "running")))
		printf("verify:        running, %.1f%%, %llu blocks differ so far\n",
		       json_number_value(json_object_get(verify, "percent")), u64_of(verify, "differing_blocks"));
	else if (json_is_true(json_object_get(verify, "done")))
		printf("verify:        finished, %llu blocks differ\n", u64_of(verify, "differing_blocks"));
	else if (verify)
		printf("verify:        not run since the daemon started\n");
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One progress line of --watch. */
static void watch_line(const json_t *st, char *buf, size_t len)
{
	const char *state = str_of(st, "state");
	char bar[BAR_WIDTH + 1], sync[96];
	double pct = json_number_value(json_object_get(json_object_get(st, "sync"), "percent"));
	int fill = (int)(pct * BAR_WIDTH / 100.0);

	if (!strcmp(state, "synchronizing")) {
		for (int i = 0; i < BAR_WIDTH; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[BAR_WIDTH] = '\0';
		snprintf(buf, len, "%s [%s] %s", str_of(st, "name"), bar, sync_summary(st, sync, sizeof(sync)));
	} else if (!strcmp(state, "synchronized")) {
		snprintf(buf, len, "%s synchronized", str_of(st, "name"));
	} else {
		snprintf(buf, len, "%s %s (%s), partner %s; waiting", str_of(st, "name"), state, str_of(st, "reason"),
		         partner_word(st));
	}
}

/* Shows the device's state until it is synchronized: redrawn in place on a terminal. */
static int watch(struct ctx *x, const char *name)
{
	bool tty = isatty(STDOUT_FILENO);
	char line[256];

	for (;;) {
		json_t *st;
		bool done;
		int rc = call(x, "device.status", name_param(name), &st);

		if (rc) {
			if (tty && !x->json)
				printf("\n");
			return rc;
		}
		done = !strcmp(str_of(st, "state"), "synchronized");
		if (x->json) {
			print_json(st);
		} else {
			watch_line(st, line, sizeof(line));
			printf(tty ? "\r\033[K%s%s" : "%s%s", line, tty && !done ? "" : "\n");
			fflush(stdout);
		}
		json_decref(st);
		if (done)
			return EXIT_OK;
		sleep_ms(WATCH_INTERVAL_MS);
	}
}

static int cmd_device_status(struct ctx *x, const struct args *a)
{
	json_t *st;
	int rc;

	if (a->opt[0])
		return watch(x, a->pos[0]);
	rc = call(x, "device.status", name_param(a->pos[0]), &st);
	if (rc)
		return rc;
	if (x->json)
		print_json(st);
	else
		print_device_status(st);
	json_decref(st);
	return EXIT_OK;
}

static int cmd_resolve(struct ctx *x, const struct args *a)
{
	const char *keep = a->opt[0];
	json_t *res;
	int rc;

	if (!keep)
		return usage_error("device resolve-split-brain", "--keep local|partner is required: whose data survives");
	if (strcmp(keep, "local") && strcmp(keep, "partner"))
		return usage_error("device resolve-split-brain", "--keep '%s': say local or partner", keep);
	rc = call(x, "device.resolve_split_brain", json_pack("{s:s, s:s}", "name", a->pos[0], "keep", keep), &res);
	if (rc)
		return rc;
	if (x->json)
		print_json(res);
	else
		printf("%s: split brain resolved keeping the %s data; the other replica is resynchronized from it\n",
		       a->pos[0], strcmp(keep, "local") ? "partner's" : "local");
	json_decref(res);
	return EXIT_OK;
}

static int cmd_verify(struct ctx *x, const struct args *a)
{
	json_t *res, *verify;
	unsigned long long differing;
	int rc = call(x, "device.verify", name_param(a->pos[0]), &res);

	if (rc)
		return rc;
	if (!a->opt[0]) {
		if (x->json)
			print_json(res);
		else
			printf("%s: verify started; 'twinctl device status %s' shows its progress\n", a->pos[0], a->pos[0]);
		json_decref(res);
		return EXIT_OK;
	}
	json_decref(res);
	for (;;) {
		rc = call(x, "device.status", name_param(a->pos[0]), &res);
		if (rc)
			return rc;
		verify = json_object_get(res, "verify");
		if (!json_is_true(json_object_get(verify, "running")))
			break;
		json_decref(res);
		sleep_ms(WATCH_INTERVAL_MS);
	}
	differing = u64_of(verify, "differing_blocks");
	if (x->json)
		print_json(verify);
	else if (differing)
		printf("%s: verify finished: %llu blocks differ between the replicas; see the daemon's log\n", a->pos[0],
		       differing);
	else
		printf("%s: verify finished: the replicas are identical\n", a->pos[0]);
	json_decref(res);
	return differing ? EXIT_FAILED : EXIT_OK;
}

static int cmd_events(struct ctx *x, const struct args *a)
{
	char err[1024];
	json_t *res, *ev;
	enum api_client_status st;
	int rc = call(x, "events.subscribe", NULL, &res);

	if (rc)
		return rc;
	json_decref(res);
	while ((st = api_client_next_event(x->c, &ev, err, sizeof(err))) == API_CLIENT_OK) {
		print_json(ev);
		json_decref(ev);
	}
	fprintf(stderr, "twinctl: %s\n", err);
	return (int)st;
}

/* ---- the saved server list ---- */

static int load_servers(char *file, size_t len, struct server_list *l)
{
	char err[512];

	if (server_list_path(file, len, err, sizeof(err)) < 0 || server_list_load(file, l, err, sizeof(err)) < 0) {
		fprintf(stderr, "twinctl: %s\n", err);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int save_servers(const char *file, struct server_list *l)
{
	char err[512];
	int rc = server_list_save(file, l, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "twinctl: %s\n", err);
	server_list_free(l);
	return rc < 0 ? EXIT_FAILED : EXIT_OK;
}

/* The --json result of server add and remove. */
static void print_server(const char *name, const char *address)
{
	json_t *out = json_pack("{s:s, s:s*}", "name", name, "address", address);

	print_json(out);
	json_decref(out);
}

static int cmd_server_add(struct ctx *x, const struct args *a)
{
	struct server_list l;
	char file[4096], err[512], secret[PATH_MAX] = "";
	int rc;

	if (!server_name_valid(a->pos[0]) || strchr(a->pos[0], ':'))
		return usage_error("server add", "bad name '%s': letters, digits, '.', '_', '-'", a->pos[0]);
	if (server_address_check(a->pos[1], err, sizeof(err)) < 0)
		return usage_error("server add", "%s", err);
	/* Kept by its absolute name, so the saved server works from any directory. */
	if (x->secret_file && (!realpath(x->secret_file, secret) || strpbrk(secret, " \t") ||
	                       strlen(secret) >= SERVER_ADDRESS_MAX))
		return usage_error("server add", "--secret-file %s: %s", x->secret_file,
		                   secret[0] ? "a name with blanks, or too long" : strerror(errno));
	rc = load_servers(file, sizeof(file), &l);
	if (rc)
		return rc;
	if (server_list_set(&l, a->pos[0], a->pos[1], secret[0] ? secret : NULL) < 0) {
		server_list_free(&l);
		fprintf(stderr, "twinctl: out of memory\n");
		return EXIT_FAILED;
	}
	rc = save_servers(file, &l);
	if (rc)
		return rc;
	if (x->json)
		print_server(a->pos[0], a->pos[1]);
	else
		printf("saved %s as %s\n", a->pos[1], a->pos[0]);
	return EXIT_OK;
}

static int cmd_server_remove(struct ctx *x, const struct args *a)
{
	struct server_list l;
	char file[4096];
	int rc = load_servers(file, sizeof(file), &l);

	if (rc)
		return rc;
	if (server_list_remove(&l, a->pos[0]) < 0) {
		fprintf(stderr, "twinctl: no saved server named '%s'; 'twinctl server list' shows them\n", a->pos[0]);
		server_list_free(&l);
		return EXIT_FAILED;
	}
	rc = save_servers(file, &l);
	if (!rc && x->json)
		print_server(a->pos[0], NULL);
	return rc;
}

static int cmd_server_list(struct ctx *x, const struct args *a)
{
	struct server_list l;
	char file[4096];
	int rc = load_servers(file, sizeof(file), &l);
	json_t *out;

	if (rc)
		return rc;
	if (x->json) {
		out = json_pack("{s:[]}", "servers");
		for (size_t i = 0; out && i < l.n; i++)
			json_array_append_new(json_object_get(out, "servers"),
			                      json_pack("{s:s, s:s, s:s*}", "name", l.v[i].name, "address", l.v[i].address,
			                                "pin", l.v[i].pin[0] ? l.v[i].pin : NULL));
		print_json(out);
		json_decref(out);
	} else if (!l.n) {
		printf("no saved servers ('twinctl server add NAME ADDRESS' saves one)\n");
	}
	for (size_t i = 0; !x->json && i < l.n; i++)
		printf("%-20s %s%s%s\n", l.v[i].name, l.v[i].address, l.v[i].pin[0] ? "  certificate sha256:" : "",
		       l.v[i].pin);
	server_list_free(&l);
	return EXIT_OK;
}

/* ---- creating and deleting ---- */

/* The first line of a secret file into secret; a usage error's exit code otherwise. */
static int read_secret(const char *words, const char *opt, const char *file, char *secret, size_t len)
{
	FILE *f = fopen(file, "r");
	bool ok = f && fgets(secret, (int)len, f);

	if (f)
		fclose(f);
	if (ok)
		secret[strcspn(secret, "\r\n")] = '\0';
	if (!f)
		return usage_error(words, "--%s %s: %s", opt, file, strerror(errno));
	if (!ok || !secret[0])
		return usage_error(words, "--%s %s: the first line is empty; write the secret there", opt, file);
	return EXIT_OK;
}

/* Adds "key": value to params when the option was given. */
static void set_opt(json_t *params, const char *key, const char *value)
{
	if (value)
		json_object_set_new(params, key, json_string(value));
}

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* Prints a change's result: the JSON, or the sentence. */
static int print_change(struct ctx *x, const char *method, json_t *params, const char *done)
{
	json_t *res;
	int rc = call(x, method, params, &res);

	if (rc)
		return rc;
	if (x->json)
		print_json(res);
	else if (json_is_string(json_object_get(res, "iqn")))
		printf("%s: %s as %s\n", str_of(res, "name"), done, str_of(res, "iqn"));
	else
		printf("%s: %s\n", str_of(res, "name"), done);
	json_decref(res);
	return EXIT_OK;
}

/* Calls method with params (consumed; secrets in it are wiped from memory) on this node,
 * then, if partner->server is set, on the partner: *res is the last result.  A failure on
 * the partner says what this node did (`done`) and what to do. */
static int call_both(struct ctx *x, struct ctx *partner, const char *method, json_t *params, const char *done,
                     json_t **res)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	int rc = call(x, method, json_incref(params), res);

	if (rc == EXIT_OK && partner->server) {
		json_decref(*res);
		rc = call(partner, method, json_incref(params), res);
		if (rc != EXIT_OK)
			fprintf(stderr, "twinctl: %s: %s on this node but not on the partner %s; run the same command against "
			        "it\n", name, done, partner->server);
	}
	json_object_del(params, "witness_secret");
	json_decref(params);
	api_client_close(partner->c);
	return rc;
}

enum { S_WITNESS, S_WITNESS_SECRET, S_PARTNER, S_PARTNER_SECRET };

/* The failover strategy (with majority, the witness) on this node, and with --partner on
 * the partner too; each node keeps it in its managed configuration. */
static int cmd_device_set(struct ctx *x, const struct args *a)
{
	static const char words[] = "device set";
	struct ctx partner = { .server = a->opt[S_PARTNER], .secret_file = a->opt[S_PARTNER_SECRET], .json = x->json };
	const char *setting = a->pos[1], *eq = strchr(setting, '=');
	char secret[300];
	json_t *params, *res;
	int rc;

	if (!eq || (size_t)(eq - setting) != strlen("failover") || strncmp(setting, "failover", 8))
		return usage_error(words, "unknown setting '%s'; what can be set: failover=heartbeat|majority", setting);
	if (strcmp(eq + 1, "heartbeat") && strcmp(eq + 1, "majority"))
		return usage_error(words, "failover '%s': say heartbeat or majority", eq + 1);
	if (!a->opt[S_WITNESS] != !a->opt[S_WITNESS_SECRET])
		return usage_error(words, "--witness and --witness-secret-file go together");
	if (a->opt[S_PARTNER_SECRET] && !a->opt[S_PARTNER])
		return usage_error(words, "--partner-secret-file is for --partner");
	if (a->opt[S_WITNESS_SECRET] &&
	    (rc = read_secret(words, "witness-secret-file", a->opt[S_WITNESS_SECRET], secret, sizeof(secret))))
		return rc;
	params = json_pack("{s:s, s:s}", "name", a->pos[0], "failover", eq + 1);
	set_opt(params, "witness", a->opt[S_WITNESS]);
	set_opt(params, "witness_secret", a->opt[S_WITNESS_SECRET] ? secret : NULL);
	explicit_bzero(secret, sizeof(secret));
	rc = call_both(x, &partner, "device.set_failover", params, "changed", &res);
	if (rc)
		return rc;
	if (x->json)
		print_json(res);
	else if (a->opt[S_PARTNER])
		printf("%s: failover strategy is now %s on this node and on %s\n", a->pos[0], eq + 1, partner.server);
	else
		printf("%s: failover strategy is now %s (set it on the partner too)\n", a->pos[0], eq + 1);
	json_decref(res);
	return EXIT_OK;
}

enum { T_IQN, T_PORTAL, T_ALLOW, T_CHAP_USER, T_CHAP_FILE, T_MUTUAL_USER, T_MUTUAL_FILE };

static int cmd_target_create(struct ctx *x, const struct args *a)
{
	static const char words[] = "target create";
	char secret[300], mutual[300];
	json_t *params;
	int rc;

	if (!a->opt[T_CHAP_USER] != !a->opt[T_CHAP_FILE])
		return usage_error(words, "--chap-user and --chap-secret-file go together");
	if (!a->opt[T_MUTUAL_USER] != !a->opt[T_MUTUAL_FILE])
		return usage_error(words, "--mutual-chap-user and --mutual-chap-secret-file go together");
	if (a->opt[T_MUTUAL_USER] && !a->opt[T_CHAP_USER])
		return usage_error(words, "mutual CHAP needs CHAP: add --chap-user and --chap-secret-file");
	if (a->opt[T_CHAP_FILE] &&
	    (rc = read_secret(words, "chap-secret-file", a->opt[T_CHAP_FILE], secret, sizeof(secret))))
		return rc;
	if (a->opt[T_MUTUAL_FILE] &&
	    (rc = read_secret(words, "mutual-chap-secret-file", a->opt[T_MUTUAL_FILE], mutual, sizeof(mutual))))
		return rc;
	params = name_param(a->pos[0]);
	set_opt(params, "iqn", a->opt[T_IQN]);
	set_opt(params, "portals", a->opt[T_PORTAL]);
	set_opt(params, "allow", a->opt[T_ALLOW]);
	set_opt(params, "chap_user", a->opt[T_CHAP_USER]);
	set_opt(params, "chap_secret", a->opt[T_CHAP_FILE] ? secret : NULL);
	set_opt(params, "mutual_chap_user", a->opt[T_MUTUAL_USER]);
	set_opt(params, "mutual_chap_secret", a->opt[T_MUTUAL_FILE] ? mutual : NULL);
	rc = print_change(x, "target.create", params, "created");
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(mutual, sizeof(mutual));
	return rc;
}

/* A delete: with --force the sessions in the way are logged out. */
static json_t *delete_params(const struct args *a)
{
	return json_pack("{s:s, s:b}", "name", a->pos[0], "force", a->opt[0] != NULL);
}

static int cmd_target_delete(struct ctx *x, const struct args *a)
{
	return print_change(x, "target.delete", delete_params(a), "deleted with its LUNs");
}

enum {
	D_PATH, D_SIZE, D_TARGET, D_LUN, D_BLOCK_SIZE, D_DIRECT, D_HA, D_PARTNER, D_PARTNER_SECRET, D_PARTNER_PATH,
	D_PRIORITY, D_INITIAL, D_FAILOVER, D_SYNC, D_HEARTBEAT, D_WITNESS, D_WITNESS_SECRET,
};

/* "L1 P1,L2 P2" as the partner writes it: "P1 L1,P2 L2". */
static void swap_links(const char *links, char *out, size_t len)
{
	char copy[LIST_MAX], *save = NULL;

	str_copy(copy, sizeof(copy), links);
	out[0] = '\0';
	for (char *l = strtok_r(copy, ",", &save); l; l = strtok_r(NULL, ",", &save)) {
		char *sp = strchr(l, ' ');
		size_t used = strlen(out);

		*sp = '\0';
		snprintf(out + used, len - used, "%s%s %s", used ? "," : "", sp + 1, l);
	}
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* An HA device on this node and its partner, like the console's wizard: both sides are
 * checked first (nothing is made when the partner cannot be reached or refuses), then
 * made on the partner and here; if this node then fails, the partner's side is deleted
 * again.  twinctl does this, not the daemon: it already talks to both nodes, and a daemon
 * waiting on its partner's answer would stall its reactor. */
static int create_ha(struct ctx *x, const struct args *a, json_t *params)
{
	struct ctx partner = { .server = a->opt[D_PARTNER], .secret_file = a->opt[D_PARTNER_SECRET], .json = x->json };
	const char *name = a->pos[0];
	uint8_t uuid[16], secret[32];
	char uuid_text[40], secret_text[65], sync[LIST_MAX], heartbeat[LIST_MAX], witness_secret[300];
	json_t *mirror, *res;
	int rc;

	if (a->opt[D_WITNESS_SECRET] && (rc = read_secret("device create", "witness-secret-file", a->opt[D_WITNESS_SECRET],
	                                                  witness_secret, sizeof(witness_secret)))) {
		json_decref(params);
		return rc;
	}

	if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid) || getrandom(secret, sizeof(secret), 0) != sizeof(secret)) {
		json_decref(params);
		fprintf(stderr, "twinctl: no random numbers: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	hex(uuid, 16, secret_text);
	snprintf(uuid_text, sizeof(uuid_text), "%.8s-%.4s-%.4s-%.4s-%.12s", secret_text, secret_text + 8,
	         secret_text + 12, secret_text + 16, secret_text + 20);
	hex(secret, sizeof(secret), secret_text);
	json_object_set_new(params, "ha", json_true());
	json_object_set_new(params, "uuid", json_string(uuid_text));
	json_object_set_new(params, "secret", json_string(secret_text));
	set_opt(params, "priority", a->opt[D_PRIORITY]);
	set_opt(params, "initial_sync", a->opt[D_INITIAL]);
	set_opt(params, "failover", a->opt[D_FAILOVER]);
	set_opt(params, "sync", a->opt[D_SYNC]);
	set_opt(params, "heartbeat", a->opt[D_HEARTBEAT]);
	set_opt(params, "witness", a->opt[D_WITNESS]);
	set_opt(params, "witness_secret", a->opt[D_WITNESS_SECRET] ? witness_secret : NULL);
	/* The mirror: the same device seen from the partner. */
	mirror = json_deep_copy(params);
	swap_links(a->opt[D_SYNC], sync, sizeof(sync));
	json_object_set_new(mirror, "sync", json_string(sync));
	if (a->opt[D_HEARTBEAT]) {
		swap_links(a->opt[D_HEARTBEAT], heartbeat, sizeof(heartbeat));
		json_object_set_new(mirror, "heartbeat", json_string(heartbeat));
	}
	json_object_set_new(mirror, "priority", json_string(strcmp(a->opt[D_PRIORITY], "primary") ? "primary" : "secondary"));
	set_opt(mirror, "path", a->opt[D_PARTNER_PATH]);
	explicit_bzero(secret_text, sizeof(secret_text));
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(witness_secret, sizeof(witness_secret));

	json_object_set_new(params, "check", json_true());
	json_object_set_new(mirror, "check", json_true());
	if ((rc = call(x, "device.create", json_incref(params), &res)) != EXIT_OK) {
		fprintf(stderr, "twinctl: %s: refused by this node; nothing was created\n", name);
		goto out;
	}
	json_decref(res);
	if ((rc = call(&partner, "device.create", json_incref(mirror), &res)) != EXIT_OK) {
		fprintf(stderr, "twinctl: %s: the partner %s refused or cannot be reached; nothing was created\n", name,
		        partner.server);
		goto out;
	}
	json_decref(res);
	json_object_del(params, "check");
	json_object_del(mirror, "check");
	if ((rc = call(&partner, "device.create", json_incref(mirror), &res)) != EXIT_OK) {
		fprintf(stderr, "twinctl: %s: the partner %s failed to create its side; nothing was created\n", name,
		        partner.server);
		goto out;
	}
	json_decref(res);
	if ((rc = call(x, "device.create", json_incref(params), &res)) != EXIT_OK) {
		json_t *gone;

		fprintf(stderr, "twinctl: %s: this node failed to create its side; deleting the partner's again\n", name);
		if (call(&partner, "device.delete", name_param(name), &gone) == EXIT_OK)
			json_decref(gone);
		goto out;
	}
	json_object_set_new(res, "partner", json_string(partner.server));
	json_object_set_new(res, "uuid", json_string(uuid_text));
	if (x->json)
		print_json(res);
	else
		printf("%s: created on this node and on %s (uuid %s); 'twinctl device status %s --watch' follows the "
		       "initial synchronization\n", name, partner.server, uuid_text, name);
	json_decref(res);
out:
	/* The link secret lives only in the two daemons' managed configurations. */
	json_object_del(params, "secret");
	json_object_del(mirror, "secret");
	json_object_del(params, "witness_secret");
	json_object_del(mirror, "witness_secret");
	json_decref(params);
	json_decref(mirror);
	api_client_close(partner.c);
	return rc;
}

static int cmd_device_create(struct ctx *x, const struct args *a)
{
	static const char words[] = "device create";
	const char *size = a->opt[D_SIZE];
	size_t digits = size ? strspn(size, "0123456789") : 0;
	json_t *params;

	if (!a->opt[D_PATH])
		return usage_error(words, "--path is required: the file or block device to serve");
	if (a->opt[D_PATH][0] != '/')
		return usage_error(words, "--path %s: give an absolute path", a->opt[D_PATH]);
	/* The daemon checks the value; a size that is no number at all is a typing error. */
	if (size && (!digits || strlen(size + digits) > 1 || (size[digits] && !strchr("KMGTkmgt", size[digits]))))
		return usage_error(words, "--size '%s': a number of bytes, or with K, M, G or T (e.g. 1G)", size);
	if (!a->opt[D_HA] != !a->opt[D_PARTNER] || (a->opt[D_HA] && (!a->opt[D_SYNC] || !a->opt[D_PRIORITY])))
		return usage_error(words, "an HA device needs --ha, --partner SERVER, --priority and at least one --sync");
	if (!a->opt[D_HA] && (a->opt[D_PARTNER_SECRET] || a->opt[D_PARTNER_PATH] || a->opt[D_PRIORITY] ||
	                      a->opt[D_INITIAL] || a->opt[D_FAILOVER] || a->opt[D_HEARTBEAT] || a->opt[D_WITNESS]))
		return usage_error(words, "--partner-*, --priority, --initial-sync, --failover, --heartbeat and --witness "
		                          "are for --ha");
	if (!a->opt[D_WITNESS] != !a->opt[D_WITNESS_SECRET])
		return usage_error(words, "--witness and --witness-secret-file go together");
	if (a->opt[D_PRIORITY] && strcmp(a->opt[D_PRIORITY], "primary") && strcmp(a->opt[D_PRIORITY], "secondary"))
		return usage_error(words, "--priority '%s': primary or secondary", a->opt[D_PRIORITY]);
	if (a->opt[D_LUN] && !all_digits(a->opt[D_LUN]))
		return usage_error(words, "--lun '%s': a LUN number, 0 to 16383", a->opt[D_LUN]);
	if (a->opt[D_BLOCK_SIZE] && strcmp(a->opt[D_BLOCK_SIZE], "512") && strcmp(a->opt[D_BLOCK_SIZE], "4096"))
		return usage_error(words, "--block-size '%s': 512 or 4096", a->opt[D_BLOCK_SIZE]);
	params = name_param(a->pos[0]);
	set_opt(params, "path", a->opt[D_PATH]);
	set_opt(params, "size", size);
	set_opt(params, "target", a->opt[D_TARGET]);
	set_opt(params, "lun", a->opt[D_LUN]);
	set_opt(params, "block_size", a->opt[D_BLOCK_SIZE]);
	if (a->opt[D_DIRECT])
		json_object_set_new(params, "direct", json_true());
	if (a->opt[D_HA])
		return create_ha(x, a, params);
	return print_change(x, "device.create", params, "created");
}

/* A plain device (T:N) grows here; an HA device (NAME) here and on its partner, which
 * must follow at once (until then it refuses writes past its old end). */
static int cmd_device_resize(struct ctx *x, const struct args *a)
{
	static const char words[] = "device resize";
	struct ctx partner = { .server = a->opt[1], .secret_file = a->opt[2], .json = x->json };
	bool ha = strchr(a->pos[0], ':') == NULL;
	json_t *params, *res;
	int rc;

	if (!a->opt[0])
		return usage_error(words, "--size is required: the new, bigger size (e.g. 64G)");
	if (ha != (a->opt[1] != NULL))
		return usage_error(words, ha ? "%s is an HA device: give its partner with --partner SERVER, which grows too"
		                             : "--partner is for an HA device (named by its NAME, not %s)", a->pos[0]);
	if (!ha)
		return print_change(x, "device.resize", json_pack("{s:s, s:s}", "name", a->pos[0], "size", a->opt[0]),
		                    "resized; initiators are told the new capacity");
	params = json_pack("{s:s, s:s}", "name", a->pos[0], "size", a->opt[0]);
	rc = call_both(x, &partner, "device.resize", params, "grown (until the partner is too, it refuses writes past "
	               "its old end)", &res);
	if (rc)
		return rc;
	if (x->json)
		print_json(res);
	else
		printf("%s: resized to %llu bytes on this node and on %s; initiators are told the new capacity\n",
		       a->pos[0], u64_of(res, "size"), partner.server);
	json_decref(res);
	return EXIT_OK;
}

/* With --partner an HA device goes on both nodes, this one first. */
static int cmd_device_delete(struct ctx *x, const struct args *a)
{
	struct ctx partner = { .server = a->opt[1], .secret_file = a->opt[2], .json = x->json };
	json_t *res;
	int rc;

	if (!a->opt[1])
		return print_change(x, "device.delete", delete_params(a), "deleted");
	if (strchr(a->pos[0], ':'))
		return usage_error("device delete", "--partner is for an HA device (named by its NAME, not %s)", a->pos[0]);
	rc = call_both(x, &partner, "device.delete", delete_params(a), "deleted", &res);
	if (rc)
		return rc;
	if (x->json)
		print_json(res);
	else
		printf("%s: deleted on this node and on %s\n", a->pos[0], partner.server);
	json_decref(res);
	return EXIT_OK;
}

/* ---- validating a shared disk from an initiator ---- */

enum { V_INITIATOR, V_CHAP_USER, V_CHAP_FILE, V_MUTUAL_USER, V_MUTUAL_FILE, V_WRITE, V_DATALOSS, V_SAMPLES, V_TARGET,
       V_LUN };

static int cmd_validate(struct ctx *x, const struct args *a)
{
	static const char words[] = "validate";
	struct validate_options o = { .n_urls = a->n_pos, .json = x->json, .target = a->opt[V_TARGET] };
	char secret[256], mutual[256], names[LIST_MAX], *end;
	int rc = EXIT_OK;

	for (unsigned i = 0; i < a->n_pos; i++)
		o.urls[i] = a->pos[i];
	if (a->opt[V_INITIATOR]) {
		/* A repeatable option's values arrive joined by commas. */
		char *comma;

		snprintf(names, sizeof(names), "%s", a->opt[V_INITIATOR]);
		comma = strchr(names, ',');
		if (!comma || strchr(comma + 1, ','))
			return usage_error(words, "--initiator: give it twice, the names of the two cluster nodes");
		*comma = '\0';
		o.initiators[0] = names;
		o.initiators[1] = comma + 1;
	}
	if (!a->opt[V_CHAP_USER] != !a->opt[V_CHAP_FILE] || !a->opt[V_MUTUAL_USER] != !a->opt[V_MUTUAL_FILE])
		return usage_error(words, "--chap-user and --chap-secret-file go together, as do the --mutual-chap ones");
	if (a->opt[V_MUTUAL_USER] && !a->opt[V_CHAP_USER])
		return usage_error(words, "mutual CHAP needs CHAP: give --chap-user and --chap-secret-file too");
	if (a->opt[V_CHAP_FILE] && (rc = read_secret(words, "chap-secret-file", a->opt[V_CHAP_FILE], secret, sizeof(secret))))
		return rc;
	if (a->opt[V_MUTUAL_FILE] &&
	    (rc = read_secret(words, "mutual-chap-secret-file", a->opt[V_MUTUAL_FILE], mutual, sizeof(mutual))))
		return rc;
	o.chap_user = a->opt[V_CHAP_USER];
	o.chap_secret = a->opt[V_CHAP_FILE] ? secret : NULL;
	o.mutual_user = a->opt[V_MUTUAL_USER];
	o.mutual_secret = a->opt[V_MUTUAL_FILE] ? mutual : NULL;
	o.write = a->opt[V_WRITE] || a->opt[V_DATALOSS];
	if (a->opt[V_SAMPLES]) {
		unsigned long v = all_digits(a->opt[V_SAMPLES]) ? strtoul(a->opt[V_SAMPLES], &end, 10) : 0;

		if (v < 10 || v > 100000)
			return usage_error(words, "--samples '%s': a number from 10 to 100000", a->opt[V_SAMPLES]);
		o.samples = (unsigned)v;
	}
	if (a->opt[V_LUN]) {
		unsigned long v = all_digits(a->opt[V_LUN]) ? strtoul(a->opt[V_LUN], &end, 10) : ULONG_MAX;

		if (v > 16383)
			return usage_error(words, "--lun '%s': a LUN number, 0 to 16383", a->opt[V_LUN]);
		o.lun = (int)v;
	}
	rc = validate_run(&o);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(mutual, sizeof(mutual));
	return rc;
}

/* ---- the command table and argument parsing ---- */

static const struct command commands[] = {
	{ "status", "", "The server's version, uptime, targets and devices at a glance.", 0, { NULL }, cmd_status },
	{ "target list", "", "Targets with their LUNs, backing stores and portals.", 0, { NULL }, cmd_target_list },
	{ "target create", "NAME [--iqn IQN] [--portal P]... [--allow INITIATOR]... [--chap-user U --chap-secret-file F\n"
	  "                  [--mutual-chap-user U --mutual-chap-secret-file F]]",
	  "Creates a target and serves it at once.  NAME is its alias; its iSCSI name is made from it\n"
	  "(" CONFIG_IQN_PREFIX "NAME) unless --iqn gives one.  --portal names a portal of the daemon's\n"
	  "configuration file (default: every portal); --allow limits logins to these initiators (default:\n"
	  "everyone).  CHAP secrets are read from files, never from the command line.  The target is kept in\n"
	  "the daemon's managed configuration, so it survives a restart.",
	  1, { "iqn=", "portal=+", "allow=+", "chap-user=", "chap-secret-file=", "mutual-chap-user=",
	       "mutual-chap-secret-file=" }, cmd_target_create },
	{ "target delete", "NAME [--force]",
	  "Deletes a target made with 'target create', with its LUNs: it is no longer served and is gone from\n"
	  "the managed configuration.  Refused while initiators are logged in to it ('session list' shows\n"
	  "them) unless --force, which logs them out first.", 1, { "force" }, cmd_target_delete },
	{ "session list", "", "iSCSI sessions: target, initiator name, ISID, TSIH, portal group and connections.", 0,
	  { NULL }, cmd_session_list },
	{ "device list", "", "Devices with their role, state, access, partner and sync progress.", 0, { NULL },
	  cmd_device_list },
	{ "device status", "NAME [--watch]",
	  "Everything about one device: state and why, links, sync progress, rate and ETA, dirty bytes, the\n"
	  "resync tally, verify results.  --watch shows a progress bar until the device is synchronized.",
	  1, { "watch" }, cmd_device_status },
	{ "device resolve-split-brain", "NAME --keep local|partner",
	  "Ends a split brain: the replica named by --keep survives and the other is overwritten by a\n"
	  "resync.  The partner must be connected.  The data only the loser had is lost.",
	  1, { "keep=" }, cmd_resolve },
	{ "device set", "NAME failover=heartbeat|majority [--witness ADDRESS:PORT... --witness-secret-file F]\n"
	  "                  [--partner SERVER [--partner-secret-file F]]",
	  "Changes the failover strategy on the live device; majority needs a witness: --witness (with its\n"
	  "secret read from --witness-secret-file) gives the device one.  A device made with 'device create'\n"
	  "keeps both in the managed configuration.  --partner does the same on the partner node.", 2,
	  { "witness=+", "witness-secret-file=", "partner=", "partner-secret-file=" }, cmd_device_set },
	{ "device create", "NAME --path FILE [--size SIZE] [--target T] [--lun N] [--block-size 512|4096] [--direct]\n"
	  "                  [--ha --partner SERVER [--partner-secret-file F] [--partner-path FILE]\n"
	  "                   --priority primary|secondary --initial-sync clear|copy|none [--failover heartbeat|majority]\n"
	  "                   --sync LOCAL PARTNER [--sync ...] [--heartbeat LOCAL PARTNER]...\n"
	  "                   [--witness ADDRESS:PORT... --witness-secret-file F]]",
	  "Creates a device (a LUN backed by FILE, made sparse with SIZE if missing) and serves it at once:\n"
	  "as LUN N (default: the lowest free) of target T, or without --target as LUN 0 of a new target\n"
	  "NAME.  A plain device is named T:N afterwards; both are kept in the daemon's managed configuration.\n"
	  "With --ha it is an HA device made on this node and on its partner SERVER (unix:PATH, HOST:PORT with\n"
	  "--partner-secret-file, or a saved name) at once, with a new uuid and a random link secret (never\n"
	  "shown); the partner gets the links swapped, the other priority and --partner-path (default FILE).\n"
	  "Both nodes check the device first; if either refuses nothing is made, and if this node fails\n"
	  "after the partner made its side, the partner's side is deleted again.  --witness (with the witness\n"
	  "secret read from --witness-secret-file) is needed for --failover majority and goes to both nodes.",
	  1, { "path=", "size=", "target=", "lun=", "block-size=", "direct", "ha", "partner=", "partner-secret-file=",
	       "partner-path=", "priority=", "initial-sync=", "failover=", "sync=2+", "heartbeat=2+", "witness=+",
	       "witness-secret-file=" }, cmd_device_create },
	{ "device resize", "TARGET:LUN --size SIZE | NAME --size SIZE --partner SERVER [--partner-secret-file F]",
	  "Grows a device made with 'device create' (its file) to SIZE; initiators get CAPACITY DATA HAS\n"
	  "CHANGED and see the new size.  Shrinking is refused: it would cut off data.  An HA device grows on\n"
	  "this node and then on its partner SERVER, only while the two are synchronized; the new region\n"
	  "reads as zeros and is in sync.  If the partner fails, run the same command against it.",
	  1, { "size=", "partner=", "partner-secret-file=" }, cmd_device_resize },
	{ "device delete", "TARGET:LUN | NAME [--force] [--partner SERVER [--partner-secret-file F]]",
	  "Deletes a device made with 'device create': it is no longer served and is gone from the managed\n"
	  "configuration (the file stays).  An HA device goes by its NAME; its links and the device close on\n"
	  "this node, and with --partner then on the partner (else delete it there too).  Refused while\n"
	  "initiators are logged in to its target unless --force, which logs them out first.", 1,
	  { "force", "partner=", "partner-secret-file=" }, cmd_device_delete },
	{ "device verify", "NAME [--wait]",
	  "Compares both replicas block by block while I/O goes on.  --wait waits for the result and exits\n"
	  "with 1 if blocks differ.",
	  1, { "wait" }, cmd_verify },
	{ "events", "", "Streams events (state changes, sync started/finished, partner lost, split brain) as JSON\n"
	  "lines until interrupted.", 0, { NULL }, cmd_events },
	{ "validate", "URL|iscsi://PORTAL... [--target IQN] [--lun N] [--initiator IQN1 --initiator IQN2]\n"
	  "                  [--chap-user U --chap-secret-file F [--mutual-chap-user U --mutual-chap-secret-file F]]\n"
	  "                  [--write] [--samples N]",
	  "Checks from this initiator host that the paths given (iscsi://HOST[:PORT]/TARGET/LUN, one per path,\n"
	  "e.g. one through each node) make one disk a failover cluster can share, with any iSCSI target: one\n"
	  "identity on every path, ALUA, SCSI-3 persistent reservations between two initiators over two paths,\n"
	  "the cluster's arbitration and failover, and access latency.  A portal, iscsi://HOST[:PORT], stands\n"
	  "for the paths its discovery lists to --target (or to the one target it offers), LUN --lun (0).\n"
	  "Each check says PASS, FAIL or SKIP and why; exit 0 if none failed, 1 if some did, 3 if a path\n"
	  "cannot be reached.  It needs no twinsand API.  The reservation checks leave no registration behind\n"
	  "and skip a disk holding others'.  Nothing is written unless --write (or --dataloss) is given: then\n"
	  "the disk's last 128 KiB are written, having been read first, and restored; the fencing checks write\n"
	  "back what they read.",
	  1 | POS_MORE, { "initiator=+", "chap-user=", "chap-secret-file=", "mutual-chap-user=", "mutual-chap-secret-file=", "write",
	       "dataloss", "samples=", "target=", "lun=" }, cmd_validate },
	{ "server add", "NAME ADDRESS [--secret-file FILE]",
	  "Saves a server (ADDRESS is unix:PATH or HOST:PORT) for --server NAME, with the admin secret file\n"
	  "to log in with.  A TCP server's certificate is pinned when it is first used; saving the server\n"
	  "again forgets the pin.", 2,
	  { NULL }, cmd_server_add },
	{ "server list", "", "Lists the saved servers.", 0, { NULL }, cmd_server_list },
	{ "server remove", "NAME", "Forgets a saved server.", 1, { NULL }, cmd_server_remove },
};

static void help(FILE *f)
{
	fprintf(f, "usage: twinctl [--server unix:PATH | HOST:PORT | NAME] [--secret-file FILE] [--json] COMMAND ...\n\n"
	           "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s%s%s\n", commands[i].words, commands[i].usage[0] ? " " : "", commands[i].usage);
	fprintf(f, "\noptions:\n"
	           "  --server  the daemon to manage: unix:PATH, a name saved with 'server add'; default\n"
	           "            $TWINCTL_SERVER, else unix:" MGMT_API_DEFAULT_SOCKET "\n"
	           "  --secret-file  for a HOST:PORT server: a copy of its admin secret file (default\n"
	           "            $TWINCTL_SECRET_FILE)\n"
	           "  --json    print the result as JSON (one object per line)\n"
	           "  --help    this text; 'twinctl COMMAND --help' explains a command\n"
	           "\nexit status: 0 done, 1 the operation failed, 2 usage error, 3 the server cannot be reached\n");
}

static void command_help(const struct command *cmd)
{
	printf("usage: twinctl [--server S] [--json] %s%s%s\n\n%s\n", cmd->words, cmd->usage[0] ? " " : "", cmd->usage,
	       cmd->help);
}

static int usage_error(const char *words, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "twinctl%s%s: ", words ? " " : "", words ? words : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	for (size_t i = 0; words && i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].words, words))
			fprintf(stderr, "usage: twinctl %s %s\n", words, commands[i].usage);
	if (!words)
		fprintf(stderr, "'twinctl --help' lists the commands\n");
	return EXIT_USAGE;
}

/* How many of argv's words name cmd (0: not this command). */
static int command_match(const struct command *cmd, int argc, char **argv)
{
	const char *w = cmd->words;
	int n = 0;

	while (*w) {
		size_t len = strcspn(w, " ");

		if (n >= argc || strlen(argv[n]) != len || strncmp(argv[n], w, len))
			return 0;
		n++;
		w += len + (w[len] == ' ');
	}
	return n;
}

/* Appends value to option k's list. */
static int add_to_list(struct args *a, unsigned k, const char *value)
{
	size_t used = strlen(a->list[k]);

	if (strchr(value, ',') || used + strlen(value) + 2 > LIST_MAX)
		return -1;
	if (used)
		a->list[k][used++] = ',';
	memcpy(a->list[k] + used, value, strlen(value) + 1);
	a->opt[k] = a->list[k];
	return 0;
}

/* Fills a from the command's arguments; a usage error's exit code otherwise. */
static int parse_command_args(const struct command *cmd, int argc, char **argv, struct args *a)
{
	unsigned npos = 0;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		bool matched = false;

		if (strncmp(arg, "--", 2) || !arg[2]) {
			if (npos == (cmd->n_pos & POS_MORE ? MAX_POS : cmd->n_pos))
				return usage_error(cmd->words, "unexpected argument '%s'", arg);
			a->pos[npos++] = arg;
			a->n_pos = npos;
			continue;
		}
		for (unsigned k = 0; k < MAX_OPTS && cmd->opts[k]; k++) {
			size_t len = strcspn(cmd->opts[k], "=");
			bool takes = cmd->opts[k][len] == '=';
			bool pair = takes && cmd->opts[k][len + 1] == '2', repeat = takes && strchr(cmd->opts[k], '+');
			char two[LIST_MAX];

			if (strncmp(arg + 2, cmd->opts[k], len) || (arg[2 + len] && arg[2 + len] != '='))
				continue;
			matched = true;
			if (!takes && arg[2 + len])
				return usage_error(cmd->words, "--%.*s takes no value", (int)len, cmd->opts[k]);
			if (takes && !arg[2 + len] && i + 1 == argc)
				return usage_error(cmd->words, "--%.*s needs a value", (int)len, cmd->opts[k]);
			if (a->opt[k] && !repeat)
				return usage_error(cmd->words, "--%.*s is given twice", (int)len, cmd->opts[k]);
			if (pair && (arg[2 + len] || i + 2 >= argc))
				return usage_error(cmd->words, "--%.*s needs two values: LOCAL-ADDRESS:PORT PARTNER-ADDRESS:PORT",
				                   (int)len, cmd->opts[k]);
			if (pair) {
				snprintf(two, sizeof(two), "%s %s", argv[i + 1], argv[i + 2]);
				i += 2;
			}
			a->opt[k] = pair ? two : !takes ? "" : arg[2 + len] ? arg + 3 + len : argv[++i];
			if (repeat && add_to_list(a, k, a->opt[k]) < 0)
				return usage_error(cmd->words, "--%.*s: a value with ',' or too many values", (int)len,
				                   cmd->opts[k]);
		}
		if (!matched)
			return usage_error(cmd->words, "unknown option '%s'", arg);
	}
	if (npos < (cmd->n_pos & ~POS_MORE))
		return usage_error(cmd->words, "missing %s", cmd->usage);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct ctx x = { 0 };
	struct args a = { 0 };
	char *rest[64];
	int nrest = 0, rc;
	bool want_help = false;
	const struct command *cmd = NULL;
	int words = 0;

	/* Global options may stand anywhere: "twinctl device list --json" works too. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			x.json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			want_help = true;
		} else if (!strcmp(argv[i], "--secret-file") || !strncmp(argv[i], "--secret-file=", 14)) {
			x.secret_file = argv[i][13] == '=' ? argv[i] + 14 : i + 1 < argc ? argv[++i] : "";
			if (!x.secret_file[0])
				return usage_error(NULL, "--secret-file needs a file name");
		} else if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9)) {
			if (argv[i][8] == '=')
				x.server = argv[i] + 9;
			else if (i + 1 < argc)
				x.server = argv[++i];
			else
				return usage_error(NULL, "--server needs a value (unix:PATH, HOST:PORT or a saved name)");
			if (!x.server[0])
				return usage_error(NULL, "--server needs a value (unix:PATH, HOST:PORT or a saved name)");
		} else if (nrest == (int)(sizeof(rest) / sizeof(rest[0]))) {
			return usage_error(NULL, "too many arguments");
		} else {
			rest[nrest++] = argv[i];
		}
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !cmd; i++)
		if ((words = command_match(&commands[i], nrest, rest)))
			cmd = &commands[i];
	if (want_help) {
		if (cmd)
			command_help(cmd);
		else
			help(stdout);
		return EXIT_OK;
	}
	if (!nrest) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (!cmd)
		return usage_error(NULL, "unknown command '%s%s%s'", rest[0], nrest > 1 ? " " : "", nrest > 1 ? rest[1] : "");
	rc = parse_command_args(cmd, nrest - words, rest + words, &a);
	if (rc == EXIT_OK)
		rc = cmd->fn(&x, &a);
	api_client_close(x.c);
	return rc;
}
