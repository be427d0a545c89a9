/* APTPL state file: JSON, replaced atomically, validated in full before use. */
#include "scsi/pr_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/fileio.h"
#include "common/util.h"

#define FILE_FORMAT "twinsan-pr"
#define FILE_VERSION 1
#define FILE_MAX_SIZE (1u << 20) /* far above PR_MAX_REGISTRATIONS worth of JSON */

bool pr_type_valid(uint8_t type)
{
	switch (type) {
	case PR_TYPE_WE: case PR_TYPE_EA: case PR_TYPE_WE_RO: case PR_TYPE_EA_RO:
	case PR_TYPE_WE_AR: case PR_TYPE_EA_AR:
		return true;
	default:
		return false;
	}
}

bool pr_type_all_registrants(uint8_t type)
{
	return type == PR_TYPE_WE_AR || type == PR_TYPE_EA_AR;
}

void pr_image_clear(struct pr_image *img)
{
	free(img->regs);
	memset(img, 0, sizeof(*img));
}

static json_t *reg_to_json(const struct pr_reg *r)
{
	char key[19], isid[PR_ISID_HEX_LEN + 1];

	snprintf(key, sizeof(key), "0x%016" PRIx64, r->key);
	json_t *o = json_pack("{s:s, s:s, s:b}", "key", key, "initiator", r->port.name, "holder", r->holder);
	if (!o)
		return NULL;
	if (!r->port.any_isid) {
		pr_isid_format(r->port.isid, isid);
		json_object_set_new(o, "isid", json_string(isid));
	}
	if (!r->all_tg_pt)
		json_object_set_new(o, "relative_port", json_integer(r->relative_port));
	return o;
}

char *pr_file_format(const struct pr_image *img)
{
	json_t *regs = json_array();
	json_t *root = json_pack("{s:s, s:i, s:I, s:i, s:o}", "format", FILE_FORMAT, "version", FILE_VERSION,
	                         "generation", (json_int_t)img->generation, "type", img->type,
	                         "registrations", regs);
	char *text = NULL;

	if (!root)
		return NULL;
	for (size_t i = 0; i < img->nregs; i++) {
		json_t *o = reg_to_json(&img->regs[i]);
		if (!o || json_array_append_new(regs, o) != 0)
			goto out;
	}
	text = json_dumps(root, JSON_INDENT(1));
out:
	json_decref(root);
	return text;
}

static int reg_from_json(json_t *o, struct pr_reg *r, char *err, size_t errlen)
{
	const char *key, *name, *isid = NULL;
	json_t *port = NULL;
	int holder = 0;
	json_error_t je;

	if (json_unpack_ex(o, &je, JSON_STRICT, "{s:s, s:s, s:b, s?s, s?o}", "key", &key, "initiator", &name,
	                   "holder", &holder, "isid", &isid, "relative_port", &port) != 0) {
		snprintf(err, errlen, "%s", je.text);
		return -1;
	}
	memset(r, 0, sizeof(*r));
	char *end;
	errno = 0;
	r->key = strtoull(key, &end, 16);
	if (errno || *end || r->key == 0 || strncmp(key, "0x", 2) != 0) {
		snprintf(err, errlen, "bad reservation key \"%s\"", key);
		return -1;
	}
	if (name[0] == '\0' || strchr(name, ',') || str_copy(r->port.name, sizeof(r->port.name), name) != 0) {
		snprintf(err, errlen, "bad initiator name");
		return -1;
	}
	r->port.any_isid = isid == NULL;
	if (isid && !pr_isid_parse(isid, strlen(isid), r->port.isid)) {
		snprintf(err, errlen, "bad isid \"%s\"", isid);
		return -1;
	}
	r->all_tg_pt = port == NULL;
	if (port) {
		json_int_t v = json_is_integer(port) ? json_integer_value(port) : 0;
		if (v < 1 || v > UINT16_MAX) {
			snprintf(err, errlen, "bad relative_port");
			return -1;
		}
		r->relative_port = (uint16_t)v;
	}
	r->holder = holder;
	return 0;
}

bool pr_reg_overlaps(const struct pr_reg *a, const struct pr_reg *b)
{
	return pr_port_overlaps(&a->port, &b->port) &&
	       (a->all_tg_pt || b->all_tg_pt || a->relative_port == b->relative_port);
}

/* The invariants pr.c keeps: distinct nexuses, one holder exactly when the type needs one. */
static int image_check(const struct pr_image *img, char *err, size_t errlen)
{
	size_t holders = 0;

	if (img->type != 0 && !pr_type_valid(img->type)) {
		snprintf(err, errlen, "bad reservation type %u", img->type);
		return -1;
	}
	for (size_t i = 0; i < img->nregs; i++) {
		holders += img->regs[i].holder;
		for (size_t j = 0; j < i; j++) {
			if (pr_reg_overlaps(&img->regs[i], &img->regs[j])) {
				snprintf(err, errlen, "registrations %zu and %zu name the same nexus", j, i);
				return -1;
			}
		}
	}
	bool single_holder = img->type != 0 && !pr_type_all_registrants(img->type);
	if (holders != (single_holder ? 1u : 0u) ||
	    (pr_type_all_registrants(img->type) && img->nregs == 0)) {
		snprintf(err, errlen, "reservation holder does not match reservation type %u", img->type);
		return -1;
	}
	return 0;
}

int pr_file_parse(const char *text, size_t len, struct pr_image *img, char *err, size_t errlen)
{
	json_error_t je;
	const char *format;
	int version, type;
	json_int_t generation;
	json_t *regs;
	char why[160];

	memset(img, 0, sizeof(*img));
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
		return -1;
	}
	if (json_unpack_ex(root, &je, JSON_STRICT, "{s:s, s:i, s:I, s:i, s:o}", "format", &format,
	                   "version", &version, "generation", &generation, "type", &type,
	                   "registrations", &regs) != 0) {
		snprintf(err, errlen, "%s", je.text);
		goto fail;
	}
	if (strcmp(format, FILE_FORMAT) != 0 || version != FILE_VERSION) {
		snprintf(err, errlen, "not a version %d %s file", FILE_VERSION, FILE_FORMAT);
		goto fail;
	}
	if (generation < 0 || generation > UINT32_MAX || type < 0 || type > UINT8_MAX || !json_is_array(regs) ||
	    json_array_size(regs) > PR_MAX_REGISTRATIONS) {
		snprintf(err, errlen, "generation, type or registration count out of range");
		goto fail;
	}
	img->generation = (uint32_t)generation;
	img->type = (uint8_t)type;
	img->nregs = json_array_size(regs);
	img->regs = calloc(img->nregs ? img->nregs : 1, sizeof(*img->regs));
	if (!img->regs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < img->nregs; i++) {
		if (reg_from_json(json_array_get(regs, i), &img->regs[i], why, sizeof(why)) != 0) {
			snprintf(err, errlen, "registration %zu: %s", i, why);
			goto fail;
		}
	}
	if (image_check(img, err, errlen) != 0)
		goto fail;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	pr_image_clear(img);
	return -1;
}

int pr_file_load(const char *path, struct pr_image *img, char *err, size_t errlen)
{
	memset(img, 0, sizeof(*img));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *text = malloc(FILE_MAX_SIZE);
	size_t len = 0;
	ssize_t n = 0;
	while (text && len < FILE_MAX_SIZE && (n = read(fd, text + len, FILE_MAX_SIZE - len)) > 0)
		len += (size_t)n;
	int saved = errno;
	close(fd);
	int rc = -1;
	if (!text)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (n < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
	else if (len == FILE_MAX_SIZE)
		snprintf(err, errlen, "%s: larger than %u bytes", path, FILE_MAX_SIZE);
	else {
		char why[200];
		rc = pr_file_parse(text, len, img, why, sizeof(why));
		if (rc != 0)
			snprintf(err, errlen, "%s: corrupt reservation state: %s", path, why);
	}
	free(text);
	return rc;
}

/* Makes a rename or unlink in path's directory durable. */
static int sync_dir_of(const char *path, char *err, size_t errlen)
{
	char *copy = strdup(path);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
	if (rc != 0)
		snprintf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int pr_file_save(const char *path, const struct pr_image *img, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	char *text = pr_file_format(img);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	size_t len = strlen(text);
	if (file_pwrite_all(fd, text, len, 0) != 0 || file_pwrite_all(fd, "\n", 1, len) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = sync_dir_of(path, err, errlen);
out:
	free(text);
	return rc;
}

int pr_file_remove(const char *path, char *err, size_t errlen)
{
	if (unlink(path) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return sync_dir_of(path, err, errlen);
}
