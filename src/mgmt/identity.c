/* Identities kept on disk: LU uuids with their backing files, the node id in the state
 * directory. */
#include "mgmt/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"

#define UUID_XATTR "user.twinsan.uuid"
#define SIDECAR_SUFFIX ".twinsan"
#define NODE_ID_FILE "node-id"

static int parse_uuid_hex(const char *s, uint8_t uuid[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		uuid[i] = (uint8_t)v;
	}
	return 0;
}

/* Makes a fresh extended attribute durable. */
static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;

	if (fd >= 0)
		close(fd);
	return rc;
}

/* Writes the sidecar crash-safely: a torn file would give the disk a new identity. */
static int write_sidecar(const char *sidecar, const uint8_t uuid[16])
{
	char tmp[4200], hex[40];
	int fd, rc;

	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	hex[32] = '\n';
	snprintf(tmp, sizeof(tmp), "%s.tmp", sidecar);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	rc = file_pwrite_all(fd, hex, 33, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	close(fd);
	if (rc == 0)
		rc = rename(tmp, sidecar);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* The LU's uuid lives with its backing file: in a user xattr, or where the file system has
 * none (tmpfs without user xattrs, block devices), in a sidecar file next to it. */
int identity_lun_uuid(const char *path, uint8_t uuid[16])
{
	char sidecar[4096], hex[40];
	struct stat st;
	FILE *f;

	if (getxattr(path, UUID_XATTR, uuid, 16) == 16)
		return 0;
	snprintf(sidecar, sizeof(sidecar), "%s%s", path, SIDECAR_SUFFIX);
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode))
		log_warn("%s: the device identity is kept in %s, which may not survive a reboot; "
		         "give the LUN a uuid in the configuration file", path, sidecar);
	f = fopen(sidecar, "r");
	if (f) {
		bool ok = fgets(hex, sizeof(hex), f) && strlen(hex) >= 32 && parse_uuid_hex(hex, uuid) == 0;

		fclose(f);
		if (ok)
			return 0;
		log_warn("%s: unreadable device identity, making a new one", sidecar);
	}
	if (getrandom(uuid, 16, 0) != 16)
		return -1;
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	if (setxattr(path, UUID_XATTR, uuid, 16, 0) == 0)
		return fsync_path(path);
	return write_sidecar(sidecar, uuid);
}
/* This node's id towards HA partners: configured, or made once and kept in the state dir
 * (crash-safely: a torn file would make the node a stranger to its partner). */
int identity_node_id(const struct config *cfg, uint64_t *out)
{
	char path[CONFIG_PATH_MAX + 16], tmp[CONFIG_PATH_MAX + 32], text[32];
	unsigned long long v;
	ssize_t n;
	int fd, rc;

	if (cfg->node_id) {
		*out = cfg->node_id;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" NODE_ID_FILE, cfg->state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		text[n > 0 ? n : 0] = '\0';
		if (sscanf(text, "%llu", &v) == 1 && v != 0) {
			*out = v;
			return 0;
		}
		log_err("%s: not a node id; delete it to make a new one, or set node-id in [daemon]", path);
		return -1;
	}
	do {
		if (getrandom(out, sizeof(*out), 0) != sizeof(*out)) {
			log_err("cannot make a node id: %s", strerror(errno));
			return -1;
		}
	} while (*out == 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)*out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	rc = fd >= 0 && file_pwrite_all(fd, text, (size_t)n, 0) == 0 && fsync(fd) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = rename(tmp, path);
	if (rc != 0) {
		log_err("%s: cannot keep the node id: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	log_info("this node's id is %llu (kept in %s)", (unsigned long long)*out, path);
	return 0;
}

