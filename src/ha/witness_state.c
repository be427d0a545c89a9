/* Holder records in the witness's state directory (see witness_state.h).  The writes are
 * synchronous: a record changes once per failover, rarely enough to block the reactor. */
#include "ha/witness_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/fileio.h"
#include "common/util.h"

#define RECORD_SUFFIX ".holder"
#define RECORD_MAGIC "twinwitness holder 1\n"
#define RECORD_MAX 256

struct witness_state {
	char *dir;
	int dir_fd, lock_fd;
	bool read_only;
	struct witness_record *recs;
	size_t n, cap;
};

void witness_uuid_format(const uint8_t uuid[16], char out[WITNESS_UUID_STR])
{
	char *p = out;

	for (unsigned i = 0; i < 16; i++) {
		p += sprintf(p, "%02x", uuid[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			*p++ = '-';
	}
	*p = '\0';
}

int witness_uuid_parse(const char *s, uint8_t uuid[16])
{
	unsigned i = 0;

	for (size_t pos = 0; pos < 36; pos++) {
		char ch = s[pos];
		int v;

		if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
			if (ch != '-')
				return -1;
			continue;
		}
		if (ch >= '0' && ch <= '9')
			v = ch - '0';
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
			v = (ch | 0x20) - 'a' + 10;
		else
			return -1;
		uuid[i / 2] = (uint8_t)(i % 2 ? uuid[i / 2] | v : v << 4);
		i++;
	}
	return s[36] == '\0' ? 0 : -1;
}

/* The file's text for `rec`; returns its length. */
static size_t record_text(const struct witness_record *rec, char buf[RECORD_MAX])
{
	char id[WITNESS_UUID_STR];
	int n;

	witness_uuid_format(rec->uuid, id);
	n = snprintf(buf, RECORD_MAX, RECORD_MAGIC "device %s\nholder %016" PRIx64 "\ngeneration %016" PRIx64
	             " %016" PRIx64 "\n", id, rec->holder, rec->gen_current, rec->gen_bitmap);
	n += snprintf(buf + n, RECORD_MAX - (size_t)n, "crc32c %08x\n", crc32c(buf, (size_t)n));
	return (size_t)n;
}

/* Parses a record file's text; a record is accepted only if it re-renders to the very
 * same bytes, so any damage (or hand edit) is noticed. */
static int record_parse(const char *text, size_t len, struct witness_record *rec)
{
	char id[40], again[RECORD_MAX];

	memset(rec, 0, sizeof(*rec));
	if (len >= RECORD_MAX || strncmp(text, RECORD_MAGIC, strlen(RECORD_MAGIC)) != 0 ||
	    sscanf(text + strlen(RECORD_MAGIC), "device %36s holder %" SCNx64 " generation %" SCNx64 " %" SCNx64, id,
	           &rec->holder, &rec->gen_current, &rec->gen_bitmap) != 4 ||
	    witness_uuid_parse(id, rec->uuid) != 0 || rec->holder == 0)
		return -1;
	return record_text(rec, again) == len && memcmp(again, text, len) == 0 ? 0 : -1;
}

static void record_name(const uint8_t uuid[16], char out[WITNESS_UUID_STR + 16])
{
	char id[WITNESS_UUID_STR];

	witness_uuid_format(uuid, id);
	snprintf(out, WITNESS_UUID_STR + 16, "%s" RECORD_SUFFIX, id);
}

/* Room for one more record. */
static int reserve(struct witness_state *s)
{
	size_t cap = s->cap ? 2 * s->cap : 16;
	struct witness_record *r;

	if (s->n < s->cap)
		return 0;
	r = realloc(s->recs, cap * sizeof(*r));
	if (r == NULL)
		return -1;
	s->recs = r;
	s->cap = cap;
	return 0;
}

static int load_one(struct witness_state *s, const char *name, char *err, size_t errlen)
{
	char text[RECORD_MAX + 1], expect[WITNESS_UUID_STR + 16];
	struct witness_record rec;
	ssize_t n = -1;
	int fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, text, sizeof(text));
		close(fd);
	}
	if (n < 0) {
		snprintf(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
		return -1;
	}
	if (record_parse(text, (size_t)n, &rec) != 0) {
		snprintf(err, errlen, "%s/%s: damaged holder record; restore it from a backup, or if the "
		         "holder is known to be gone, remove it with twinwitness --forget", s->dir, name);
		return -1;
	}
	record_name(rec.uuid, expect);
	if (strcmp(expect, name) != 0) {
		snprintf(err, errlen, "%s/%s: names device %s, not the one in its file name", s->dir, name, expect);
		return -1;
	}
	if (reserve(s) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->recs[s->n++] = rec;
	return 0;
}

static int load_all(struct witness_state *s, char *err, size_t errlen)
{
	DIR *d = fdopendir(dup(s->dir_fd));
	struct dirent *e;
	int rc = 0;

	if (d == NULL) {
		snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name), sl = strlen(RECORD_SUFFIX);

		if (len > sl && strcmp(e->d_name + len - sl, RECORD_SUFFIX) == 0)
			rc = load_one(s, e->d_name, err, errlen);
		else if (!s->read_only && len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
			unlinkat(s->dir_fd, e->d_name, 0); /* a write a crash cut short: never renamed */
	}
	closedir(d);
	return rc;
}

/* A state for `dir`, its directory open and, unless read-only, created and locked. */
static struct witness_state *open_dir(const char *dir, bool read_only, char *err, size_t errlen)
{
	struct witness_state *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->lock_fd = s->dir_fd = -1;
	s->read_only = read_only;
	if (!read_only && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "state directory %s: %s", dir, strerror(errno));
	} else if ((s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "state directory %s: %s", dir, strerror(errno));
	} else if (read_only) {
		return s;
	} else if ((s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		snprintf(err, errlen, "%s/lock: %s", dir, strerror(errno));
	} else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "state directory %s is in use by another process (a running twinwitness?)%s%s",
		         dir, errno == EWOULDBLOCK ? "" : ": ", errno == EWOULDBLOCK ? "" : strerror(errno));
	} else {
		return s;
	}
	witness_state_close(s);
	return NULL;
}

int witness_state_open(const char *dir, bool read_only, struct witness_state **out, char *err, size_t errlen)
{
	struct witness_state *s = open_dir(dir, read_only, err, errlen);

	*out = NULL;
	if (s == NULL)
		return -1;
	if (load_all(s, err, errlen) != 0) {
		witness_state_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

int witness_state_remove(const char *dir, const uint8_t uuid[16], char *err, size_t errlen)
{
	struct witness_state *s = open_dir(dir, false, err, errlen);
	char name[WITNESS_UUID_STR + 16];
	int rc = -1;

	if (s == NULL)
		return -1;
	record_name(uuid, name);
	if (unlinkat(s->dir_fd, name, 0) != 0)
		snprintf(err, errlen, "%s/%s: %s", dir, name,
		         errno == ENOENT ? "no such record: the device has no holder" : strerror(errno));
	else if (fsync(s->dir_fd) != 0)
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
	else
		rc = 0;
	witness_state_close(s);
	return rc;
}

void witness_state_close(struct witness_state *s)
{
	if (s == NULL)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the lock */
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	free(s->recs);
	free(s->dir);
	free(s);
}

static struct witness_record *lookup(const struct witness_state *s, const uint8_t uuid[16])
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->recs[i].uuid, uuid, 16) == 0)
			return &s->recs[i];
	return NULL;
}

const struct witness_record *witness_state_find(const struct witness_state *s, const uint8_t uuid[16])
{
	return lookup(s, uuid);
}

size_t witness_state_count(const struct witness_state *s)
{
	return s->n;
}

const struct witness_record *witness_state_at(const struct witness_state *s, size_t i)
{
	return i < s->n ? &s->recs[i] : NULL;
}

int witness_state_put(struct witness_state *s, const struct witness_record *rec)
{
	char text[RECORD_MAX], name[WITNESS_UUID_STR + 16], tmp[WITNESS_UUID_STR + 32];
	struct witness_record *slot = lookup(s, rec->uuid);
	size_t len = record_text(rec, text);
	int fd, saved, rc;

	if (s->read_only) {
		errno = EROFS;
		return -1;
	}
	if (slot == NULL && reserve(s) != 0)
		return -1;
	record_name(rec->uuid, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	rc = file_pwrite_all(fd, text, len, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	saved = errno;
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == 0 && (renameat(s->dir_fd, tmp, s->dir_fd, name) != 0 || fsync(s->dir_fd) != 0)) {
		rc = -1;
		saved = errno;
	}
	if (rc != 0) {
		unlinkat(s->dir_fd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (slot == NULL)
		slot = &s->recs[s->n++];
	*slot = *rec;
	return 0;
}

int witness_state_forget(struct witness_state *s, const uint8_t uuid[16])
{
	char name[WITNESS_UUID_STR + 16];
	struct witness_record *slot = lookup(s, uuid);

	if (slot == NULL || s->read_only) {
		errno = slot == NULL ? ENOENT : EROFS;
		return -1;
	}
	record_name(uuid, name);
	if ((unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) || fsync(s->dir_fd) != 0)
		return -1;
	*slot = s->recs[--s->n];
	return 0;
}
