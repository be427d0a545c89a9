#include "mgmt/server_list.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/util.h"

int server_list_path(char *buf, size_t len, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/twinsan/servers", xdg);
	else if (home && home[0] == '/')
		n = snprintf(buf, len, "%s/.config/twinsan/servers", home);
	else {
		snprintf(err, errlen, "neither HOME nor XDG_CONFIG_HOME is set to an absolute path");
		return -1;
	}
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "the configuration directory's path is too long");
		return -1;
	}
	return 0;
}

bool server_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (!len || len >= SERVER_NAME_MAX || name[0] == '-')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

int server_address_check(const char *address, char *err, size_t errlen)
{
	const char *colon, *host_end;
	char *end;
	unsigned long port;

	if (strlen(address) >= SERVER_ADDRESS_MAX || strpbrk(address, " \t\r\n")) {
		snprintf(err, errlen, "address '%s' is too long or has blanks", address);
		return -1;
	}
	if (!strncmp(address, "unix:", 5)) {
		if (address[5] != '/' || strlen(address + 5) >= 108) {
			snprintf(err, errlen, "'%s': a unix address is unix:/ABSOLUTE/PATH (at most 107 bytes)", address);
			return -1;
		}
		return 0;
	}
	host_end = address[0] == '[' ? strchr(address, ']') : strrchr(address, ':');
	colon = host_end && *host_end == ']' ? host_end + 1 : host_end;
	errno = 0;
	port = colon && *colon == ':' ? strtoul(colon + 1, &end, 10) : 0;
	if (!colon || *colon != ':' || colon == address || errno || end == colon + 1 || *end || !port ||
	    port > 65535 || (address[0] != '[' && memchr(address, ':', (size_t)(colon - address)))) {
		snprintf(err, errlen, "'%s' is neither unix:PATH nor HOST:PORT ([IPv6]:PORT)", address);
		return -1;
	}
	return 0;
}

void server_list_free(struct server_list *l)
{
	free(l->v);
	*l = (struct server_list){ 0 };
}

const struct server_entry *server_list_find(const struct server_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

int server_list_set(struct server_list *l, const char *name, const char *address, const char *secret_file)
{
	struct server_entry *e = (struct server_entry *)server_list_find(l, name);

	if (!e) {
		struct server_entry *v = realloc(l->v, (l->n + 1) * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		e = &v[l->n++];
		str_copy(e->name, sizeof(e->name), name);
	}
	str_copy(e->address, sizeof(e->address), address);
	str_copy(e->secret_file, sizeof(e->secret_file), secret_file ? secret_file : "");
	e->pin[0] = '\0';
	return 0;
}

static bool pin_valid(const char *pin)
{
	return strlen(pin) == SERVER_PIN_HEX && strspn(pin, "0123456789abcdef") == SERVER_PIN_HEX;
}

int server_list_pin(struct server_list *l, const char *name, const char *pin)
{
	struct server_entry *e = (struct server_entry *)server_list_find(l, name);

	if (!e || !pin_valid(pin))
		return -1;
	str_copy(e->pin, sizeof(e->pin), pin);
	return 0;
}

int server_list_remove(struct server_list *l, const char *name)
{
	const struct server_entry *e = server_list_find(l, name);
	size_t i;

	if (!e)
		return -1;
	i = (size_t)(e - l->v);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
	return 0;
}

/* One "NAME ADDRESS [sha256:PIN] [secret-file:PATH]" line (comments and blank lines were
 * skipped). */
static int parse_line(struct server_list *l, char *line, const char *path, unsigned lineno, char *err,
                      size_t errlen)
{
	char *name = strtok(line, " \t"), *address = strtok(NULL, " \t"), *field, *pin = NULL, *secret = NULL;
	char why[256];

	if (!address) {
		snprintf(err, errlen, "%s:%u: expected NAME ADDRESS [sha256:PIN] [secret-file:PATH]; fix or remove the line",
		         path, lineno);
		return -1;
	}
	while ((field = strtok(NULL, " \t"))) {
		if (!strncmp(field, "sha256:", 7) && pin_valid(field + 7) && !pin) {
			pin = field + 7;
		} else if (!strncmp(field, "secret-file:", 12) && field[12] == '/' &&
		           strlen(field + 12) < SERVER_ADDRESS_MAX && !secret) {
			secret = field + 12;
		} else {
			snprintf(err, errlen, "%s:%u: '%s' is neither sha256: and 64 hex digits nor secret-file:/PATH", path,
			         lineno, field);
			return -1;
		}
	}
	if (!server_name_valid(name)) {
		snprintf(err, errlen, "%s:%u: bad server name '%s' (letters, digits, '.', '_', '-')", path, lineno,
		         name);
		return -1;
	}
	if (server_address_check(address, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
		return -1;
	}
	if (server_list_set(l, name, address, secret) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pin)
		server_list_pin(l, name, pin);
	return 0;
}

int server_list_load(const char *path, struct server_list *l, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[SERVER_NAME_MAX + SERVER_ADDRESS_MAX + 8];
	unsigned lineno = 0;

	*l = (struct server_list){ 0 };
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);

		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			break;
		}
		if (!line[strspn(line, " \t")] || line[strspn(line, " \t")] == '#')
			continue;
		if (parse_line(l, line, path, lineno, err, errlen) < 0)
			break;
	}
	if (!ferror(f) && feof(f)) {
		fclose(f);
		return 0;
	}
	if (ferror(f))
		snprintf(err, errlen, "%s: read error", path);
	fclose(f);
	server_list_free(l);
	return -1;
}

/* Creates the directories of path's parent, private to the user. */
static int make_parents(const char *path)
{
	char dir[PATH_MAX];

	if (str_copy(dir, sizeof(dir), path) < 0)
		return -1;
	for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

int server_list_save(const char *path, const struct server_list *l, char *err, size_t errlen)
{
	char tmp[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int fd = -1, rc = -1;

	if (!mem) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fprintf(mem, "# twinctl's saved servers: NAME ADDRESS (unix:PATH or HOST:PORT) [sha256:PIN] "
	             "[secret-file:PATH]\n");
	for (size_t i = 0; i < l->n; i++)
		fprintf(mem, "%s %s%s%s%s%s\n", l->v[i].name, l->v[i].address, l->v[i].pin[0] ? " sha256:" : "",
		        l->v[i].pin, l->v[i].secret_file[0] ? " secret-file:" : "", l->v[i].secret_file);
	fclose(mem);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) || make_parents(path) < 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    fchmod(fd, 0600) < 0 || file_pwrite_all(fd, text, len, 0) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	else
		rc = 0;
	if (fd >= 0) {
		close(fd);
		if (rc < 0)
			unlink(tmp);
	}
	free(text);
	return rc;
}
