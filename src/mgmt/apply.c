/* The managed configuration of a running daemon: changes as configuration text,
 * validated by the configuration parser, applied through the daemon's builders, persisted
 * crash-safely. */
#include "mgmt/apply.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/util.h"
#include "iscsi/portal.h"

/* What a value may be to survive the trip through a configuration line unchanged:
 * printable, no comment characters, not too long for the line limit. */
#define VALUE_MAX 160

struct mgmt_apply {
	char config_path[CONFIG_PATH_MAX];
	struct config *cfg;
	const struct mgmt_apply_ops *ops;
	void *arg;
};

int mgmt_apply_new(const char *config_path, struct config *cfg, const struct mgmt_apply_ops *ops, void *arg,
                   struct mgmt_apply **out)
{
	struct mgmt_apply *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -1;
	str_copy(a->config_path, sizeof(a->config_path), config_path);
	a->cfg = cfg;
	a->ops = ops;
	a->arg = arg;
	*out = a;
	return 0;
}

void mgmt_apply_free(struct mgmt_apply *a)
{
	if (a == NULL)
		return;
	config_free(a->cfg);
	free(a);
}

/* ---- building the text ---- */

static const char *param_str(const json_t *params, const char *name)
{
	return json_string_value(json_object_get(params, name));
}

static int check_value(const char *param, const char *s, struct mgmt_error *err)
{
	size_t n = strlen(s);

	if (n == 0 || n > VALUE_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return mgmt_fail(err, MGMT_E_PARAMS, "%s must be 1 to %d characters without blanks around it",
		                 param, VALUE_MAX);
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == ';' || *c == '#')
			return mgmt_fail(err, MGMT_E_PARAMS, "%s may not hold control characters, ';' or '#'",
			                 param);
	return 0;
}

/* "key = value" for a string parameter, if given. */
static int put(FILE *f, const json_t *params, const char *param, const char *key, struct mgmt_error *err)
{
	const char *v = param_str(params, param);

	if (v == NULL)
		return 0;
	if (check_value(param, v, err) < 0)
		return -1;
	fprintf(f, "%s = %s\n", key, v);
	return 0;
}

/* A list parameter, its items separated by any of seps, as one key line per item. */
static int put_list(FILE *f, const json_t *params, const char *param, const char *key, const char *seps,
                    struct mgmt_error *err)
{
	const char *v = param_str(params, param);
	char list[VALUE_MAX + 1], *save = NULL;

	if (v == NULL)
		return 0;
	if (check_value(param, v, err) < 0)
		return -1;
	str_copy(list, sizeof(list), v);
	for (char *item = strtok_r(list, seps, &save); item; item = strtok_r(NULL, seps, &save))
		fprintf(f, "%s = %s\n", key, item);
	return 0;
}

/* Text in a memory stream; NULL when out of memory. */
static char *finish_text(FILE *f, char **text)
{
	bool ok = !ferror(f);

	if (fclose(f) != 0 || !ok) {
		free(*text);
		return NULL;
	}
	return *text;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- validating, applying, persisting ---- */

/* The parser's message; for a line of the request itself the file:line prefix would only
 * confuse, since the administrator never saw that text. */
static void refuse(const struct mgmt_apply *a, const char *msg, unsigned request_from, struct mgmt_error *err)
{
	size_t n = strlen(a->cfg->managed_config);
	unsigned line;
	int used = 0;

	if (strncmp(msg, a->cfg->managed_config, n) == 0 && sscanf(msg + n, ":%u: %n", &line, &used) == 1 &&
	    used > 0 && line >= request_from)
		msg += n + (size_t)used;
	mgmt_fail(err, MGMT_E_FAILED, "%s", msg);
}

static int fsync_dir_of(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	int fd, rc;

	str_copy(dir, sizeof(dir), path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Writes text next to path, durably, ready to be renamed over it. */
static int write_temp(const char *path, const char *text, char *tmp, size_t tmplen, struct mgmt_error *err)
{
	int fd, rc;

	snprintf(tmp, tmplen, "%s.tmp", path);
	/* Mode 600: the file holds the CHAP and link secrets given through the API. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return mgmt_fail(err, MGMT_E_FAILED, "cannot write %s: %s; nothing was changed", tmp, strerror(errno));
	rc = file_pwrite_all(fd, text, strlen(text), 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	if (rc < 0)
		mgmt_fail(err, MGMT_E_FAILED, "cannot write %s: %s; nothing was changed", tmp, strerror(errno));
	close(fd);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* What a change does to the running daemon before the file is replaced: 0, or -1 with
 * err and nothing done. */
typedef int apply_fn(struct mgmt_apply *a, const struct config *next, const void *arg, struct mgmt_error *err);

/* Serves what next has beyond the current configuration: new sections come last. */
static int apply_new(struct mgmt_apply *a, const struct config *next, const void *arg, struct mgmt_error *err)
{
	char msg[256] = "";

	for (size_t i = a->cfg->n_targets; i < next->n_targets; i++)
		if (a->ops->add_target(a->arg, next, i, msg, sizeof(msg)) < 0)
			return mgmt_fail(err, MGMT_E_FAILED, "%s; nothing was changed", msg);
	for (size_t i = a->cfg->n_luns; i < next->n_luns; i++)
		if (a->ops->add_lun(a->arg, next, i, msg, sizeof(msg)) < 0)
			return mgmt_fail(err, MGMT_E_FAILED, "%s; nothing was changed", msg);
	return 0;
}

/* Makes text the managed configuration: validated, applied to the daemon by apply (with
 * arg; NULL: only kept, so what is left out stays served until a restart), persisted.
 * check: validated only, the first step of a change on two nodes.  request_from is the
 * first line of text the request added. */
static int change(struct mgmt_apply *a, const char *text, unsigned request_from, bool check, apply_fn *apply,
                  const void *arg, struct mgmt_error *err)
{
	const char *path = a->cfg->managed_config;
	char msg[512], tmp[CONFIG_PATH_MAX + 8];
	struct config *next;

	if (config_load_with(a->config_path, text, strlen(text), &next, msg, sizeof(msg)) < 0) {
		refuse(a, msg, request_from, err);
		return -1;
	}
	if (check) {
		config_free(next);
		return 0;
	}
	if (write_temp(path, text, tmp, sizeof(tmp), err) < 0) {
		config_free(next);
		return -1;
	}
	if (apply && apply(a, next, arg, err) < 0) {
		unlink(tmp);
		config_free(next);
		return -1;
	}
	if (rename(tmp, path) < 0 || fsync_dir_of(path) < 0) {
		mgmt_fail(err, MGMT_E_FAILED, "cannot replace %s: %s; the change is served but not kept over a restart",
		          path, strerror(errno));
		log_err("%s", err->message);
		unlink(tmp);
		config_free(next);
		return -1;
	}
	config_free(a->cfg);
	a->cfg = next;
	return 0;
}

/* The current managed text followed by the sections of f's text. */
static int change_adding(struct mgmt_apply *a, FILE *f, char **added, bool check, struct mgmt_error *err)
{
	char *current = config_format(a->cfg), *text = NULL;
	int rc = -1;

	if (finish_text(f, added) == NULL || current == NULL ||
	    asprintf(&text, "%s%s", current, *added) < 0) {
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
		text = NULL;
	} else {
		rc = change(a, text, count_lines(current) + 1, check, apply_new, NULL, err);
	}
	free(current);
	free(text);
	return rc;
}

/* Sections write() puts into text, added to the managed configuration. */
typedef int write_fn(struct mgmt_apply *a, FILE *f, const json_t *params, char *name, size_t namelen,
                     struct mgmt_error *err);

static int create(struct mgmt_apply *a, const json_t *params, write_fn *write, char *name, size_t namelen,
                  struct mgmt_error *err)
{
	char *added = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&added, &len);
	int rc;

	if (f == NULL)
		return mgmt_fail(err, MGMT_E_FAILED, "out of memory");
	if (write(a, f, params, name, namelen, err) < 0) {
		finish_text(f, &added);
		rc = -1;
	} else {
		rc = change_adding(a, f, &added, json_is_true(json_object_get(params, "check")), err);
	}
	free(added);
	return rc;
}

/* ---- targets ---- */

static struct config_target *target_find(struct config *cfg, const char *name, size_t *index)
{
	for (size_t i = 0; i < cfg->n_targets; i++) {
		struct config_target *t = &cfg->targets[i];

		if (!strcmp(t->name, name) || !strcmp(t->iqn, name) || !strcmp(t->alias, name)) {
			if (index)
				*index = i;
			return t;
		}
	}
	return NULL;
}

/* The [target] section of a request; the alias is the name, the iSCSI name is generated
 * from it unless given. */
static int target_section(FILE *f, const json_t *params, struct mgmt_error *err)
{
	const char *name = param_str(params, "name"), *iqn = param_str(params, "iqn");

	if (check_value("name", name, err) < 0 || (iqn && check_value("iqn", iqn, err) < 0))
		return -1;
	fprintf(f, "\n[target %s]\nalias = %s\n", iqn ? iqn : name, name);
	if (put(f, params, "portals", "portals", err) < 0 || put_list(f, params, "allow", "allow", ", ", err) < 0 ||
	    put(f, params, "chap_user", "chap-user", err) < 0 || put(f, params, "chap_secret", "chap-secret", err) < 0 ||
	    put(f, params, "mutual_chap_user", "mutual-chap-user", err) < 0 ||
	    put(f, params, "mutual_chap_secret", "mutual-chap-secret", err) < 0)
		return -1;
	return 0;
}

static int target_sections(struct mgmt_apply *a, FILE *f, const json_t *params, char *name, size_t namelen,
                           struct mgmt_error *err)
{
	str_copy(name, namelen, param_str(params, "name"));
	return target_section(f, params, err);
}

json_t *mgmt_apply_target_create(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err)
{
	char name[CONFIG_NAME_MAX];
	const struct config_target *t;

	if (create(a, params, target_sections, name, sizeof(name), err) < 0)
		return NULL;
	if (json_is_true(json_object_get(params, "check")))
		return json_pack("{s:s, s:b}", "name", name, "checked", 1);
	t = &a->cfg->targets[a->cfg->n_targets - 1];
	log_info("api: target %s created", t->iqn);
	return json_pack("{s:s, s:s}", "name", t->alias, "iqn", t->iqn);
}

/* What a delete takes away from the current configuration. */
struct dropping {
	const bool *target, *lun;
	bool force;
};

/* Whether target i has sessions in the way of the delete: targets that go, and those of
 * LUNs that go (an initiator logged in sees them). */
static bool touched(const struct config *cfg, const struct dropping *d, size_t i)
{
	if (d->target[i])
		return true;
	for (size_t k = 0; k < cfg->n_luns; k++)
		if (d->lun[k] && cfg->luns[k].target == i)
			return true;
	return false;
}

/* Stops serving what goes: refused while initiators are logged in to it, unless forced,
 * which logs them out first. */
static int apply_dropping(struct mgmt_apply *a, const struct config *next, const void *arg, struct mgmt_error *err)
{
	const struct dropping *d = arg;
	const struct config *cfg = a->cfg;

	for (size_t i = 0; !d->force && i < cfg->n_targets; i++) {
		unsigned n = touched(cfg, d, i) ? a->ops->sessions(a->arg, cfg, i) : 0;

		if (n)
			return mgmt_fail(err, MGMT_E_BUSY, "%u session(s) are logged in to %s ('twinctl session list' shows "
			                 "them); log them out on the initiators first, or add --force to end them; "
			                 "nothing was changed", n, cfg->targets[i].iqn);
	}
	for (size_t i = 0; d->force && i < cfg->n_targets; i++)
		if (touched(cfg, d, i))
			a->ops->end_sessions(a->arg, cfg, i);
	for (size_t k = 0; k < cfg->n_luns; k++)
		if (d->lun[k])
			a->ops->remove_lun(a->arg, cfg, k);
	for (size_t i = 0; i < cfg->n_targets; i++)
		if (d->target[i])
			a->ops->remove_target(a->arg, cfg, i);
	return 0;
}

/* Rewrites the managed configuration without what drop marks (an HA device goes with its
 * LUN), and stops serving it. */
static json_t *change_dropping(struct mgmt_apply *a, const bool *drop_target, const bool *drop_lun,
                               const char *what, bool force, struct mgmt_error *err)
{
	struct dropping d = { .target = drop_target, .lun = drop_lun, .force = force };
	struct config *cfg = a->cfg;
	bool *was = calloc(cfg->n_targets + cfg->n_luns + cfg->n_has + 1, sizeof(*was));
	bool *was_lun = was + cfg->n_targets, *was_ha = was_lun + cfg->n_luns;
	char *text = NULL;
	int rc = -1;

	if (was == NULL) {
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
		return NULL;
	}
	/* The writer leaves out what is not managed; the flags are restored if the change fails. */
	for (size_t i = 0; i < cfg->n_targets; i++) {
		was[i] = cfg->targets[i].managed;
		cfg->targets[i].managed &= !drop_target[i];
	}
	for (size_t h = 0; h < cfg->n_has; h++)
		was_ha[h] = cfg->has[h].managed;
	for (size_t i = 0; i < cfg->n_luns; i++) {
		was_lun[i] = cfg->luns[i].managed;
		cfg->luns[i].managed &= !drop_lun[i];
		if (drop_lun[i] && cfg->luns[i].uses_ha)
			cfg->has[cfg->luns[i].ha].managed = false;
	}
	text = config_format(cfg);
	if (text == NULL)
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
	else
		rc = change(a, text, count_lines(text) + 1, false, apply_dropping, &d, err);
	free(text);
	if (rc < 0) {
		for (size_t i = 0; i < cfg->n_targets; i++)
			cfg->targets[i].managed = was[i];
		for (size_t i = 0; i < cfg->n_luns; i++)
			cfg->luns[i].managed = was_lun[i];
		for (size_t h = 0; h < cfg->n_has; h++)
			cfg->has[h].managed = was_ha[h];
	}
	free(was);
	if (rc < 0)
		return NULL;
	log_info("api: %s deleted", what);
	return json_pack("{s:s}", "name", what);
}

json_t *mgmt_apply_target_delete(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err)
{
	const char *name = param_str(params, "name");
	struct config *cfg = a->cfg;
	bool *drop = calloc(cfg->n_targets + cfg->n_luns + 1, sizeof(*drop));
	size_t index;
	const struct config_target *t = target_find(cfg, name, &index);
	json_t *res = NULL;

	if (drop == NULL)
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
	else if (t == NULL)
		mgmt_fail(err, MGMT_E_NOT_FOUND, "no target named \"%s\"; 'twinctl target list' shows the targets", name);
	else if (!t->managed)
		mgmt_fail(err, MGMT_E_FAILED, "target %s is defined in %s, not made through the API; remove it there",
		          t->iqn, a->config_path);
	else {
		drop[index] = true;
		for (size_t i = 0; i < cfg->n_luns; i++)
			drop[cfg->n_targets + i] = cfg->luns[i].target == index;
		res = change_dropping(a, drop, drop + cfg->n_targets, name, json_is_true(json_object_get(params, "force")),
		                      err);
	}
	free(drop);
	return res;
}

/* ---- devices ---- */

/* The lowest LUN number target does not use yet. */
static uint64_t free_lun(const struct config *cfg, size_t target)
{
	uint64_t n = 0;

	for (bool used = true; used; n += used) {
		used = false;
		for (size_t i = 0; i < cfg->n_luns; i++)
			used |= cfg->luns[i].target == target && cfg->luns[i].lun == n;
	}
	return n;
}

/* An HA device: [ha NAME] as the request says (the parser names what is missing); the
 * caller gives both nodes the same uuid and link secret. */
static int ha_section(FILE *f, const json_t *params, struct mgmt_error *err)
{
	static const char *const keys[][2] = {
		{ "uuid", "uuid" }, { "path", "path" }, { "size", "size" }, { "priority", "priority" },
		{ "initial_sync", "initial-sync" }, { "failover", "failover" }, { "secret", "secret" },
		{ "witness_secret", "witness-secret" },
	};

	fprintf(f, "\n[ha %s]\n", param_str(params, "name"));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (put(f, params, keys[i][0], keys[i][1], err) < 0)
			return -1;
	if (json_is_true(json_object_get(params, "direct")))
		fputs("direct = yes\n", f);
	/* A link is "LOCAL PARTNER"; links are separated by commas. */
	return put_list(f, params, "sync", "sync", ",", err) < 0 ||
	       put_list(f, params, "heartbeat", "heartbeat", ",", err) < 0 ||
	       put_list(f, params, "witness", "witness", ", ", err) < 0 ? -1 : 0;
}

/* A device is a LUN: [lun TARGET:N] with its file, or serving an HA device made with it;
 * the target is made too if it is new (named like the device). */
static int device_sections(struct mgmt_apply *a, FILE *f, const json_t *params, char *name, size_t namelen,
                           struct mgmt_error *err)
{
	const char *target = param_str(params, "target"), *lun = param_str(params, "lun");
	bool own_target = target == NULL, ha = json_is_true(json_object_get(params, "ha"));
	size_t index;
	const struct config_target *t;
	uint64_t n;

	if (own_target)
		target = param_str(params, "name");
	if (check_value("target", target, err) < 0 || (lun && check_value("lun", lun, err) < 0))
		return -1;
	if (!param_str(params, "path"))
		return mgmt_fail(err, MGMT_E_PARAMS, "a device needs path: the file or block device to serve");
	t = target_find(a->cfg, target, &index);
	if (t == NULL && !own_target)
		return mgmt_fail(err, MGMT_E_NOT_FOUND, "no target named \"%s\"; create it first ('twinctl target "
		                 "create %s') or leave out --target", target, target);
	if (t == NULL) {
		json_t *tp = json_pack("{s:s}", "name", target);
		int rc = tp ? target_section(f, tp, err) : mgmt_fail(err, MGMT_E_FAILED, "out of memory");

		json_decref(tp);
		if (rc < 0)
			return -1;
		n = 0;
	} else {
		target = t->name;
		n = free_lun(a->cfg, index);
	}
	if (lun && sscanf(lun, "%" SCNu64, &n) != 1)
		return mgmt_fail(err, MGMT_E_PARAMS, "lun '%s' is not a number", lun);
	if (ha && ha_section(f, params, err) < 0)
		return -1;
	snprintf(name, namelen, "%s:%" PRIu64, target, n);
	fprintf(f, "\n[lun %s]\n", name);
	if (ha)
		fprintf(f, "ha = %s\n", param_str(params, "name"));
	else if (put(f, params, "path", "path", err) < 0 || put(f, params, "size", "size", err) < 0)
		return -1;
	if (put(f, params, "block_size", "block-size", err) < 0)
		return -1;
	if (!ha && json_is_true(json_object_get(params, "direct")))
		fputs("direct = yes\n", f);
	/* An HA device goes by its own name; a plain one by its place. */
	if (ha)
		str_copy(name, namelen, param_str(params, "name"));
	return 0;
}

json_t *mgmt_apply_device_create(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err)
{
	char name[CONFIG_NAME_MAX + 24];

	if (create(a, params, device_sections, name, sizeof(name), err) < 0)
		return NULL;
	if (json_is_true(json_object_get(params, "check")))
		return json_pack("{s:s, s:b}", "name", name, "checked", 1);
	log_info("api: device %s created", name);
	return json_pack("{s:s}", "name", name);
}

/* The managed LUN a device name means (an HA device's name, or TARGET:N as target.list
 * shows it): its index, or cfg->n_luns with err filled. */
static size_t lun_find(const struct mgmt_apply *a, const char *name, const char *what, struct mgmt_error *err)
{
	const struct config *cfg = a->cfg;
	const char *colon = strrchr(name, ':');
	char target[CONFIG_NAME_MAX] = "";
	uint64_t n = UINT64_MAX;
	size_t index = 0, found = cfg->n_luns;

	if (colon && (size_t)(colon - name) < sizeof(target)) {
		memcpy(target, name, (size_t)(colon - name));
		target[colon - name] = '\0';
		if (sscanf(colon + 1, "%" SCNu64, &n) != 1 || target_find(a->cfg, target, &index) == NULL)
			n = UINT64_MAX;
	}
	for (size_t i = 0; i < cfg->n_luns; i++)
		if ((n != UINT64_MAX && cfg->luns[i].target == index && cfg->luns[i].lun == n) ||
		    (cfg->luns[i].uses_ha && !strcmp(cfg->has[cfg->luns[i].ha].name, name)))
			found = i;
	if (found == cfg->n_luns)
		mgmt_fail(err, MGMT_E_NOT_FOUND, "no device \"%s\"; name an HA device, or a LUN as TARGET:LUN as "
		          "'twinctl target list' shows", name);
	else if (!cfg->luns[found].managed) {
		mgmt_fail(err, MGMT_E_FAILED, "%s is defined in %s, not made through the API; %s it there", name,
		          a->config_path, what);
		found = cfg->n_luns;
	}
	return found;
}

json_t *mgmt_apply_device_delete(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err)
{
	const char *name = param_str(params, "name");
	struct config *cfg = a->cfg;
	size_t found = lun_find(a, name, "remove", err);
	bool *drop;
	json_t *res = NULL;

	if (found == cfg->n_luns)
		return NULL;
	drop = calloc(cfg->n_targets + cfg->n_luns + 1, sizeof(*drop));
	if (drop == NULL) {
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
		return NULL;
	}
	drop[cfg->n_targets + found] = true;
	res = change_dropping(a, drop, drop + cfg->n_targets, name, json_is_true(json_object_get(params, "force")), err);
	free(drop);
	return res;
}

static int grow_lun(struct mgmt_apply *a, const struct config *next, const void *arg, struct mgmt_error *err)
{
	char msg[256] = "";

	if (a->ops->grow_lun(a->arg, next, *(const size_t *)arg, msg, sizeof(msg)) < 0)
		return mgmt_fail(err, MGMT_E_FAILED, "%s; nothing was changed", msg);
	return 0;
}

/* A plain LUN grows: the file first, then the size the managed configuration keeps (the
 * size of a file that exists is the file's; the key only matters for a new one). */
json_t *mgmt_apply_device_resize(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err)
{
	const char *name = param_str(params, "name"), *size = param_str(params, "size");
	struct config_lun *l;
	size_t found = lun_find(a, name, "resize", err);
	uint64_t bytes, old, *kept;
	char *text;
	int rc;

	if (found == a->cfg->n_luns)
		return NULL;
	l = &a->cfg->luns[found];
	if (config_size(size, &bytes) < 0 || bytes % l->block_size) {
		mgmt_fail(err, MGMT_E_PARAMS, "size '%s' is not a size in bytes (K, M, G, T) that is a multiple of the "
		          "block size %u", size, l->block_size);
		return NULL;
	}
	/* An HA device's size is its [ha] section's: both replicas must have it at a restart. */
	kept = l->uses_ha ? &a->cfg->has[l->ha].size : &l->size;
	old = *kept;
	*kept = bytes;
	text = config_format(a->cfg);
	*kept = old;
	if (text == NULL) {
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
		return NULL;
	}
	rc = change(a, text, count_lines(text) + 1, false, grow_lun, &found, err);
	free(text);
	if (rc < 0)
		return NULL;
	log_info("api: device %s grown to %llu bytes", name, (unsigned long long)bytes);
	return json_pack("{s:s, s:I}", "name", name, "size", (json_int_t)bytes);
}

/* ---- failover strategy and witness ---- */

bool mgmt_apply_has_ha(const struct mgmt_apply *a, const char *name)
{
	for (size_t h = 0; h < a->cfg->n_has; h++)
		if (a->cfg->has[h].managed && !strcmp(a->cfg->has[h].name, name))
			return true;
	return false;
}

/* The witness addresses of a request ("ADDR:PORT" separated by commas or blanks) into ha. */
static int witness_of(struct config_ha *ha, const char *list, struct mgmt_error *err)
{
	char copy[VALUE_MAX + 1], *save = NULL;

	if (check_value("witness", list, err) < 0)
		return -1;
	str_copy(copy, sizeof(copy), list);
	ha->n_witness = 0;
	for (char *w = strtok_r(copy, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
		struct config_endpoint *e = &ha->witness[ha->n_witness];

		if (ha->n_witness == CONFIG_WITNESS_MAX)
			return mgmt_fail(err, MGMT_E_PARAMS, "at most %d witness addresses", CONFIG_WITNESS_MAX);
		if (portal_parse(w, e->address, sizeof(e->address), &e->port) < 0)
			return mgmt_fail(err, MGMT_E_PARAMS, "witness '%s': want ADDRESS:PORT ([IPv6]:PORT)", w);
		ha->n_witness++;
	}
	return 0;
}

static int set_failover(struct mgmt_apply *a, const struct config *next, const void *arg, struct mgmt_error *err)
{
	char msg[256] = "";

	if (a->ops->set_failover(a->arg, next, *(const size_t *)arg, msg, sizeof(msg)) < 0)
		return mgmt_fail(err, MGMT_E_FAILED, "%s; nothing was changed", msg);
	return 0;
}

json_t *mgmt_apply_device_set_failover(struct mgmt_apply *a, const json_t *params, struct mgmt_error *err)
{
	const char *name = param_str(params, "name"), *failover = param_str(params, "failover");
	const char *witness = param_str(params, "witness"), *secret = param_str(params, "witness_secret");
	size_t h = 0;
	struct config_ha *ha, *saved = NULL;
	char *text = NULL;
	int rc = -1;

	while (h < a->cfg->n_has && strcmp(a->cfg->has[h].name, name))
		h++;
	if (h == a->cfg->n_has || !a->cfg->has[h].managed) {
		mgmt_fail(err, MGMT_E_NOT_FOUND, "no HA device \"%s\" made through the API", name);
		return NULL;
	}
	if (!witness != !secret) {
		mgmt_fail(err, MGMT_E_PARAMS, "witness and witness_secret go together");
		return NULL;
	}
	if (secret && check_value("witness_secret", secret, err) < 0)
		return NULL;
	ha = &a->cfg->has[h];
	saved = malloc(sizeof(*saved));
	if (saved == NULL) {
		mgmt_fail(err, MGMT_E_FAILED, "out of memory");
		return NULL;
	}
	/* The new text from the current objects with the change; they are restored after. */
	*saved = *ha;
	ha->failover = strcmp(failover, "majority") ? HA_FAILOVER_HEARTBEAT : HA_FAILOVER_MAJORITY;
	if (!witness || witness_of(ha, witness, err) == 0) {
		if (secret) {
			ha->witness_secret_file[0] = '\0';
			ha->witness_secret_len = strlen(secret);
			memcpy(ha->witness_secret, secret, ha->witness_secret_len);
		}
		text = config_format(a->cfg);
		if (text == NULL)
			mgmt_fail(err, MGMT_E_FAILED, "out of memory");
	}
	*ha = *saved;
	explicit_bzero(saved, sizeof(*saved));
	free(saved);
	if (text) {
		rc = change(a, text, count_lines(text) + 1, false, set_failover, &h, err);
		explicit_bzero(text, strlen(text));
		free(text);
	}
	if (rc < 0)
		return NULL;
	log_info("api: %s: failover strategy %s kept in the managed configuration", name, failover);
	return json_pack("{s:s, s:s}", "name", name, "failover", failover);
}
