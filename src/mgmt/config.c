/* Configuration file parser on top of libinih.
 *
 * inih splits "key = value" lines; this file feeds it lines itself so it knows every
 * line number (the library's handler gets none) and parses section headers itself
 * (inih truncates long section names).  Each section kind has a table of keys. */
#include "mgmt/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "ha/activemap.h"
#include "iscsi/portal.h"

#define CONFIG_FILE_MAX (1u << 20)
#define CONFIG_SECTIONS_MAX 4096 /* bounds memory for hostile input */
#define LUN_MAX 16383            /* flat LUN addressing */

struct parser;

/* Plain values need no handler of their own: the type says how to parse them, and
 * off/len where they go in the section's object. */
enum key_type { KEY_CUSTOM, KEY_PATH, KEY_SIZE, KEY_BOOL, KEY_DURATION };

struct key_desc {
	const char *name;
	int (*set)(struct parser *p, void *obj, const char *value); /* KEY_CUSTOM */
	bool repeatable;
	enum key_type type;
	size_t off, len;
};

#define FIELD(type, field) .off = offsetof(type, field), .len = sizeof(((type *)0)->field)

struct section_desc {
	const char *kind;
	bool named;
	const struct key_desc *keys;
	size_t n_keys;
	/* Checks a section once all its keys are read; reports at its header line. */
	int (*finish)(struct parser *p, void *obj);
};

struct parser {
	const char *file;
	/* Lines from managed_from on are the managed configuration's, in managed_file. */
	const char *managed_file;
	unsigned managed_from;
	const char *text;
	size_t len, pos;
	unsigned lineno;
	struct config *cfg;
	size_t n_sections;
	bool daemon_seen;
	/* The section whose keys inih is delivering; NULL after a bad header. */
	const struct section_desc *section;
	void *obj;
	unsigned section_line;
	uint32_t seen;              /* bit per key of the section already set */
	/* The first error found; later ones are often its consequences. */
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->managed_from && line >= p->managed_from)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->managed_file, line - p->managed_from + 1, msg);
	else
		snprintf(p->err, p->errlen, "%s:%u: %s", p->file, line, msg);
	p->failed = true;
}

/* ---- value syntax ---- */

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "<digits>[K|M|G|T]", binary multiples. */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	char digits[32];
	size_t n = strlen(s);
	char unit = n > 0 ? (char)(s[n - 1] & ~0x20) : '\0';
	unsigned shift = 0;
	const char *u;
	uint64_t v;

	if (unit != '\0' && (u = strchr(units, unit)) != NULL) {
		shift = 10 * (unsigned)(u - units + 1);
		n--;
	}
	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (parse_uint(digits, 1, UINT64_MAX >> shift, &v) < 0)
		return -1;
	*out = v << shift;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int parse_uuid(const char *s, uint8_t uuid[16])
{
	size_t n = 0;

	for (; *s && n < 32; s++) {
		int hi;

		if (*s == '-' && (n == 8 || n == 12 || n == 16 || n == 20))
			continue;
		if (*s >= '0' && *s <= '9')
			hi = *s - '0';
		else if ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			hi = (*s | 0x20) - 'a' + 10;
		else
			return -1;
		uuid[n / 2] = (uint8_t)(n % 2 ? uuid[n / 2] | hi : hi << 4);
		n++;
	}
	return n == 32 && *s == '\0' ? 0 : -1;
}

/* iSCSI names (RFC 7143 4.2.7): lower-case after stringprep, so only the ASCII subset
 * "a-z 0-9 - . :" is accepted here, with one of the three type prefixes. */
static bool iscsi_name_chars_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("-.:", *s)))
			return false;
	return true;
}

static bool is_iscsi_name(const char *s)
{
	return strncmp(s, "iqn.", 4) == 0 || strncmp(s, "eui.", 4) == 0 || strncmp(s, "naa.", 4) == 0;
}

static bool absolute_path(const char *s)
{
	return s[0] == '/';
}

static int copy_value(struct parser *p, char *dst, size_t len, const char *key, const char *value)
{
	if (*value == '\0') {
		fail(p, p->lineno, "%s is empty; give it a value or remove the line", key);
		return -1;
	}
	if (str_copy(dst, len, value) < 0) {
		fail(p, p->lineno, "%s is longer than %zu bytes", key, len - 1);
		return -1;
	}
	return 0;
}

/* Adds a zeroed element to a growing array. */
static void *append(struct parser *p, void *array, size_t *count, size_t size)
{
	void **slot = array;
	char *n = realloc(*slot, (*count + 1) * size);

	if (n == NULL) {
		fail(p, p->lineno, "out of memory");
		return NULL;
	}
	*slot = n;
	memset(n + *count * size, 0, size);
	return n + (*count)++ * size;
}

/* Sets an absolute path. */
static int set_path(struct parser *p, char *dst, size_t len, const char *key, const char *value)
{
	if (!absolute_path(value)) {
		fail(p, p->lineno, "%s '%s' is not an absolute path; start it with /", key, value);
		return -1;
	}
	return copy_value(p, dst, len, key, value);
}

static int set_size(struct parser *p, const char *key, const char *value, uint64_t *out)
{
	if (parse_size(value, out) < 0) {
		fail(p, p->lineno, "%s '%s' is not a positive number of bytes with an optional "
		     "K, M, G or T suffix", key, value);
		return -1;
	}
	return 0;
}

static int set_bool(struct parser *p, const char *key, const char *value, bool *out)
{
	if (parse_bool(value, out) < 0) {
		fail(p, p->lineno, "%s '%s' is not yes or no", key, value);
		return -1;
	}
	return 0;
}

/* True if the current section has set `key`. */
static bool key_seen(const struct parser *p, const char *key)
{
	for (size_t i = 0; i < p->section->n_keys; i++)
		if (strcmp(p->section->keys[i].name, key) == 0)
			return p->seen & (1u << i);
	return false;
}

/* ---- [daemon] ---- */

static int daemon_log_level(struct parser *p, void *obj, const char *value)
{
	if (log_parse_level(value, &p->cfg->log_level) < 0) {
		fail(p, p->lineno, "log-level '%s' is unknown; use error, warning, info or debug", value);
		return -1;
	}
	return 0;
}

static int daemon_queue_depth(struct parser *p, void *obj, const char *value)
{
	uint64_t v;

	if (parse_uint(value, 8, 32768, &v) < 0) {
		fail(p, p->lineno, "queue-depth '%s' is not a number from 8 to 32768", value);
		return -1;
	}
	p->cfg->queue_depth = (unsigned)v;
	return 0;
}

static int daemon_node_id(struct parser *p, void *obj, const char *value)
{
	if (parse_uint(value, 1, UINT64_MAX, &p->cfg->node_id) < 0) {
		fail(p, p->lineno, "node-id '%s' is not a number from 1 to %llu", value,
		     (unsigned long long)UINT64_MAX);
		return -1;
	}
	return 0;
}

static int daemon_metrics_listen(struct parser *p, void *obj, const char *value)
{
	char address[CONFIG_ADDRESS_MAX];
	unsigned char buf[sizeof(struct in6_addr)];
	uint16_t port;

	if (portal_parse(value, address, sizeof(address), &port) < 0 ||
	    (inet_pton(AF_INET, address, buf) != 1 && inet_pton(AF_INET6, address, buf) != 1)) {
		fail(p, p->lineno, "metrics-listen '%s': want a numeric ADDRESS:PORT ([IPv6]:PORT)", value);
		return -1;
	}
	return copy_value(p, p->cfg->metrics_listen, sizeof(p->cfg->metrics_listen), "metrics-listen", value);
}

static const struct key_desc daemon_keys[] = {
	{ .name = "log-level", .set = daemon_log_level },
	{ .name = "state-dir", .type = KEY_PATH, FIELD(struct config, state_dir) },
	{ .name = "managed-config", .type = KEY_PATH, FIELD(struct config, managed_config) },
	{ .name = "queue-depth", .set = daemon_queue_depth },
	{ .name = "node-id", .set = daemon_node_id },
	{ .name = "metrics-listen", .set = daemon_metrics_listen },
};

/* ---- [portal NAME] ---- */

static int portal_address(struct parser *p, void *obj, const char *value)
{
	struct config_portal *portal = obj;
	unsigned char buf[sizeof(struct in6_addr)];

	if (value[0] == '[') {
		fail(p, p->lineno, "address '%s': write IPv6 addresses without brackets", value);
		return -1;
	}
	if (inet_pton(AF_INET, value, buf) != 1 && inet_pton(AF_INET6, value, buf) != 1) {
		fail(p, p->lineno, "address '%s' is not a numeric IPv4 or IPv6 address", value);
		return -1;
	}
	return copy_value(p, portal->address, sizeof(portal->address), "address", value);
}

static int set_u16(struct parser *p, const char *key, const char *value, uint16_t *out)
{
	uint64_t v;

	if (parse_uint(value, 1, 65535, &v) < 0) {
		fail(p, p->lineno, "%s '%s' is not a number from 1 to 65535", key, value);
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

static int portal_port(struct parser *p, void *obj, const char *value)
{
	return set_u16(p, "port", value, &((struct config_portal *)obj)->port);
}

static int portal_tpgt(struct parser *p, void *obj, const char *value)
{
	return set_u16(p, "tpgt", value, &((struct config_portal *)obj)->tpgt);
}

static const struct key_desc portal_keys[] = {
	{ .name = "address", .set = portal_address },
	{ .name = "port", .set = portal_port },
	{ .name = "tpgt", .set = portal_tpgt },
};

static int portal_finish(struct parser *p, void *obj)
{
	struct config_portal *portal = obj;

	if (portal->address[0] == '\0') {
		fail(p, portal->line, "[portal %s] has no address; add 'address = 127.0.0.1' or similar",
		     portal->name);
		return -1;
	}
	for (size_t i = 0; i + 1 < p->cfg->n_portals; i++) {
		const struct config_portal *o = &p->cfg->portals[i];

		if (o->port == portal->port && strcmp(o->address, portal->address) == 0) {
			fail(p, portal->line, "[portal %s] listens on the same address and port as "
			     "[portal %s] (line %u); change one of them", portal->name, o->name, o->line);
			return -1;
		}
	}
	return 0;
}

/* ---- [target NAME] ---- */

static int target_alias(struct parser *p, void *obj, const char *value)
{
	struct config_target *t = obj;

	return copy_value(p, t->alias, sizeof(t->alias), "alias", value);
}

static int target_portals(struct parser *p, void *obj, const char *value)
{
	struct config_target *t = obj;
	char list[512];
	char *save = NULL;
	size_t *slot;

	if (copy_value(p, list, sizeof(list), "portals", value) < 0)
		return -1;
	for (char *name = strtok_r(list, ", \t", &save); name; name = strtok_r(NULL, ", \t", &save)) {
		size_t i;

		for (i = 0; i < p->cfg->n_portals; i++)
			if (strcmp(p->cfg->portals[i].name, name) == 0)
				break;
		if (i == p->cfg->n_portals) {
			fail(p, p->lineno, "portal '%s' is not defined; add a [portal %s] section "
			     "above this target", name, name);
			return -1;
		}
		for (size_t j = 0; j < t->n_portals; j++) {
			if (t->portals[j] == i) {
				fail(p, p->lineno, "portal '%s' is listed twice", name);
				return -1;
			}
		}
		slot = append(p, &t->portals, &t->n_portals, sizeof(*t->portals));
		if (slot == NULL)
			return -1;
		*slot = i;
	}
	return 0;
}

static int target_allow(struct parser *p, void *obj, const char *value)
{
	struct config_target *t = obj;
	char (*initiator)[ISCSI_NAME_MAX];

	if (!is_iscsi_name(value) || !iscsi_name_chars_ok(value) || strlen(value) >= ISCSI_NAME_MAX) {
		fail(p, p->lineno, "allow '%s' is not an iSCSI initiator name (iqn./eui./naa., "
		     "lower case, at most %d bytes)", value, ISCSI_NAME_MAX - 1);
		return -1;
	}
	initiator = append(p, &t->initiators, &t->n_initiators, sizeof(*t->initiators));
	if (initiator == NULL)
		return -1;
	str_copy(*initiator, sizeof(*initiator), value);
	return 0;
}

static int set_chap_user(struct parser *p, struct iscsi_chap_creds *c, const char *key,
                         const char *value)
{
	return copy_value(p, c->user, sizeof(c->user), key, value);
}

static int set_chap_secret(struct parser *p, struct iscsi_chap_creds *c, const char *key,
                           const char *value)
{
	if (copy_value(p, c->secret, sizeof(c->secret), key, value) < 0)
		return -1;
	c->secret_len = strlen(c->secret);
	return 0;
}

static int target_chap_user(struct parser *p, void *obj, const char *value)
{
	return set_chap_user(p, &((struct config_target *)obj)->auth.initiator, "chap-user", value);
}

static int target_chap_secret(struct parser *p, void *obj, const char *value)
{
	return set_chap_secret(p, &((struct config_target *)obj)->auth.initiator, "chap-secret", value);
}

static int target_mutual_user(struct parser *p, void *obj, const char *value)
{
	return set_chap_user(p, &((struct config_target *)obj)->auth.target, "mutual-chap-user", value);
}

static int target_mutual_secret(struct parser *p, void *obj, const char *value)
{
	return set_chap_secret(p, &((struct config_target *)obj)->auth.target, "mutual-chap-secret",
	                       value);
}

static const struct key_desc target_keys[] = {
	{ .name = "alias", .set = target_alias },
	{ .name = "portals", .set = target_portals },
	{ .name = "allow", .set = target_allow, .repeatable = true },
	{ .name = "chap-user", .set = target_chap_user },
	{ .name = "chap-secret", .set = target_chap_secret },
	{ .name = "chap-secret-file", .type = KEY_PATH,
	  FIELD(struct config_target, chap_secret_file) },
	{ .name = "mutual-chap-user", .set = target_mutual_user },
	{ .name = "mutual-chap-secret", .set = target_mutual_secret },
	{ .name = "mutual-chap-secret-file", .type = KEY_PATH,
	  FIELD(struct config_target, mutual_secret_file) },
};

/* A user needs exactly one of secret and secret file, and a secret needs a user. */
static int check_creds(struct parser *p, const struct config_target *t, const char *prefix,
                       const struct iscsi_chap_creds *c, const char *file)
{
	bool user = c->user[0] != '\0', secret = c->secret_len > 0, has_file = file[0] != '\0';

	if (secret && has_file) {
		fail(p, t->line, "[target %s] has both %ssecret and %ssecret-file; keep one",
		     t->name, prefix, prefix);
		return -1;
	}
	if (user != (secret || has_file)) {
		fail(p, t->line, "[target %s] has %suser without a secret or a secret without "
		     "%suser; set both", t->name, prefix, prefix);
		return -1;
	}
	return 0;
}

static int target_finish(struct parser *p, void *obj)
{
	struct config_target *t = obj;

	if (check_creds(p, t, "chap-", &t->auth.initiator, t->chap_secret_file) < 0 ||
	    check_creds(p, t, "mutual-chap-", &t->auth.target, t->mutual_secret_file) < 0)
		return -1;
	t->auth.chap_required = t->auth.initiator.user[0] != '\0';
	t->auth.mutual = t->auth.target.user[0] != '\0';
	if (t->auth.mutual && !t->auth.chap_required) {
		fail(p, t->line, "[target %s] has mutual CHAP without CHAP; add chap-user and "
		     "chap-secret", t->name);
		return -1;
	}
	/* RFC 7143 9.2.1: the two directions must not share a secret. */
	if (t->auth.mutual && t->auth.initiator.secret_len > 0 &&
	    t->auth.initiator.secret_len == t->auth.target.secret_len &&
	    memcmp(t->auth.initiator.secret, t->auth.target.secret, t->auth.target.secret_len) == 0) {
		fail(p, t->line, "[target %s] uses the same secret for CHAP and mutual CHAP; "
		     "choose two different secrets", t->name);
		return -1;
	}
	return 0;
}

/* ---- [ha NAME] ---- */

/* "ADDR:PORT", IPv6 as "[ADDR]:PORT". */
static int parse_endpoint(const char *s, struct config_endpoint *ep)
{
	const char *colon, *addr = s;
	size_t len;
	uint64_t port;
	unsigned char buf[sizeof(struct in6_addr)];
	int family = AF_INET;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':')
			return -1;
		addr = s + 1;
		len = (size_t)(end - addr);
		colon = end + 1;
		family = AF_INET6;
	} else {
		colon = strchr(s, ':');
		if (colon == NULL)
			return -1;
		len = (size_t)(colon - s);
	}
	if (len == 0 || len >= sizeof(ep->address) || parse_uint(colon + 1, 1, 65535, &port) < 0)
		return -1;
	memcpy(ep->address, addr, len);
	ep->address[len] = '\0';
	if (inet_pton(family, ep->address, buf) != 1)
		return -1;
	ep->port = (uint16_t)port;
	return 0;
}

static bool endpoint_equal(const struct config_endpoint *a, const struct config_endpoint *b)
{
	return a->port == b->port && strcmp(a->address, b->address) == 0;
}

static bool endpoint_v6(const struct config_endpoint *ep)
{
	return strchr(ep->address, ':') != NULL;
}

/* One of a fixed set of words, each standing for a number. */
struct word {
	const char *name;
	int value;
};

static int set_word(struct parser *p, const char *key, const char *value, const struct word *words,
                    size_t n, const char *choices, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(words[i].name, value) == 0) {
			*out = words[i].value;
			return 0;
		}
	}
	fail(p, p->lineno, "%s '%s' is unknown; use %s", key, value, choices);
	return -1;
}

/* "<digits>ms" or "<digits>s", 10 ms to 10 minutes. */
static int set_duration(struct parser *p, const char *key, const char *value, unsigned *out)
{
	char digits[16];
	size_t n = strlen(value);
	unsigned scale = 0;
	uint64_t v;

	if (n > 2 && strcmp(value + n - 2, "ms") == 0) {
		scale = 1;
		n -= 2;
	} else if (n > 1 && value[n - 1] == 's') {
		scale = 1000;
		n -= 1;
	}
	if (scale == 0 || n >= sizeof(digits)) {
		fail(p, p->lineno, "%s '%s' is not a duration such as 200ms or 2s", key, value);
		return -1;
	}
	memcpy(digits, value, n);
	digits[n] = '\0';
	if (parse_uint(digits, 1, 600000, &v) < 0 || v * scale < 10 || v * scale > 600000) {
		fail(p, p->lineno, "%s '%s' is not a duration from 10ms to 600s", key, value);
		return -1;
	}
	*out = (unsigned)(v * scale);
	return 0;
}

static int ha_uuid(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;
	static const uint8_t zero[16];

	if (parse_uuid(value, ha->uuid) < 0 || memcmp(ha->uuid, zero, sizeof(zero)) == 0) {
		memset(ha->uuid, 0, sizeof(ha->uuid));
		fail(p, p->lineno, "uuid '%s' is not of the form 01234567-89ab-cdef-0123-456789abcdef "
		     "(not all zeros); generate one with uuidgen and use it on both nodes", value);
		return -1;
	}
	return 0;
}

static int ha_priority(struct parser *p, void *obj, const char *value)
{
	static const struct word words[] = {
		{ "primary", HA_ROLE_PRIMARY }, { "secondary", HA_ROLE_SECONDARY },
	};
	int v;

	if (set_word(p, "priority", value, words, ARRAY_SIZE(words),
	             "primary on one node and secondary on the other", &v) < 0)
		return -1;
	((struct config_ha *)obj)->role = (enum ha_role)v;
	return 0;
}

static int ha_initial_sync(struct parser *p, void *obj, const char *value)
{
	static const struct word words[] = {
		{ "clear", HA_INITIAL_CLEAR }, { "copy", HA_INITIAL_COPY }, { "none", HA_INITIAL_NONE },
	};
	int v;

	if (set_word(p, "initial-sync", value, words, ARRAY_SIZE(words), "clear, copy or none", &v) < 0)
		return -1;
	((struct config_ha *)obj)->initial_sync = (enum ha_initial_sync)v;
	return 0;
}

static int ha_failover(struct parser *p, void *obj, const char *value)
{
	static const struct word words[] = {
		{ "heartbeat", HA_FAILOVER_HEARTBEAT },
		{ "majority", HA_FAILOVER_MAJORITY },
		{ "node-majority", HA_FAILOVER_MAJORITY },
	};
	int v;

	if (set_word(p, "failover", value, words, ARRAY_SIZE(words), "heartbeat or majority", &v) < 0)
		return -1;
	((struct config_ha *)obj)->failover = (enum ha_failover)v;
	return 0;
}

static int set_endpoint(struct parser *p, const char *key, const char *value, struct config_endpoint *ep)
{
	if (parse_endpoint(value, ep) < 0) {
		fail(p, p->lineno, "%s '%s' is not a numeric ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)",
		     key, value);
		return -1;
	}
	return 0;
}

static int ha_witness(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;

	if (ha->n_witness == CONFIG_WITNESS_MAX) {
		fail(p, p->lineno, "more than %d witness addresses; remove one", CONFIG_WITNESS_MAX);
		return -1;
	}
	if (set_endpoint(p, "witness", value, &ha->witness[ha->n_witness]) < 0)
		return -1;
	ha->n_witness++;
	return 0;
}

static int ha_secret(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;

	if (copy_value(p, (char *)ha->secret, sizeof(ha->secret), "secret", value) < 0)
		return -1;
	ha->secret_len = strlen(value);
	return 0;
}

static int ha_witness_secret(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;

	if (copy_value(p, (char *)ha->witness_secret, sizeof(ha->witness_secret), "witness-secret", value) < 0)
		return -1;
	ha->witness_secret_len = strlen(value);
	return 0;
}

/* "LOCAL-ADDR:PORT PARTNER-ADDR:PORT" */
static int add_link(struct parser *p, const char *key, const char *value, struct config_ha_link *links,
                    unsigned *n)
{
	char local[CONFIG_ADDRESS_MAX + 16];
	const char *partner = value + strcspn(value, " \t");
	size_t len = (size_t)(partner - value);
	struct config_ha_link *l = &links[*n];

	if (*n == HA_MAX_LINKS) {
		fail(p, p->lineno, "more than %d %s links; remove one", HA_MAX_LINKS, key);
		return -1;
	}
	partner += strspn(partner, " \t");
	if (len >= sizeof(local) || *partner == '\0' || partner[strcspn(partner, " \t")] != '\0') {
		fail(p, p->lineno, "%s '%s' must be 'LOCAL-ADDRESS:PORT PARTNER-ADDRESS:PORT'", key, value);
		return -1;
	}
	memcpy(local, value, len);
	local[len] = '\0';
	if (set_endpoint(p, key, local, &l->local) < 0 || set_endpoint(p, key, partner, &l->partner) < 0)
		return -1;
	if (endpoint_v6(&l->local) != endpoint_v6(&l->partner)) {
		fail(p, p->lineno, "%s '%s' mixes IPv4 and IPv6; use one family for both ends", key, value);
		return -1;
	}
	l->line = p->lineno;
	(*n)++;
	return 0;
}

static int ha_sync(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;

	return add_link(p, "sync", value, ha->sync, &ha->n_sync);
}

static int ha_heartbeat(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;

	return add_link(p, "heartbeat", value, ha->heartbeat, &ha->n_heartbeat);
}

static int ha_extent_size(struct parser *p, void *obj, const char *value)
{
	struct config_ha *ha = obj;
	uint64_t v;

	if (parse_size(value, &v) < 0 || v < ACTIVEMAP_MIN_EXTENT || v > (1u << 30) || (v & (v - 1))) {
		fail(p, p->lineno, "extent-size '%s' is not a power of two from 4K to 1G", value);
		return -1;
	}
	ha->extent_size = (uint32_t)v;
	return 0;
}

static const struct key_desc ha_keys[] = {
	{ .name = "uuid", .set = ha_uuid },
	{ .name = "path", .type = KEY_PATH, FIELD(struct config_ha, path) },
	{ .name = "size", .type = KEY_SIZE, FIELD(struct config_ha, size) },
	{ .name = "direct", .type = KEY_BOOL, FIELD(struct config_ha, direct) },
	{ .name = "meta", .type = KEY_PATH, FIELD(struct config_ha, meta_path) },
	{ .name = "priority", .set = ha_priority },
	{ .name = "initial-sync", .set = ha_initial_sync },
	{ .name = "failover", .set = ha_failover },
	{ .name = "witness", .set = ha_witness, .repeatable = true },
	{ .name = "witness-secret-file", .type = KEY_PATH,
	  FIELD(struct config_ha, witness_secret_file) },
	{ .name = "witness-secret", .set = ha_witness_secret },
	{ .name = "secret", .set = ha_secret },
	{ .name = "secret-file", .type = KEY_PATH, FIELD(struct config_ha, secret_file) },
	{ .name = "sync", .set = ha_sync, .repeatable = true },
	{ .name = "heartbeat", .set = ha_heartbeat, .repeatable = true },
	{ .name = "extent-size", .set = ha_extent_size },
	{ .name = "ping-interval", .type = KEY_DURATION, FIELD(struct config_ha, ping_interval_ms) },
	{ .name = "timeout", .type = KEY_DURATION, FIELD(struct config_ha, timeout_ms) },
};

/* The keys an HA section cannot do without, and what to write. */
static const struct {
	const char *key, *example;
} ha_required[] = {
	{ "uuid", "uuid = <the output of uuidgen>, the same on both nodes" },
	{ "path", "path = /srv/twinsan/<alias>.img" },
	{ "priority", "priority = primary (secondary on the partner)" },
	{ "initial-sync", "initial-sync = clear, copy or none" },
	{ "sync", "sync = LOCAL-ADDRESS:PORT PARTNER-ADDRESS:PORT" },
};

static int ha_finish(struct parser *p, void *obj)
{
	struct config_ha *ha = obj;
	unsigned ping = ha->ping_interval_ms ? ha->ping_interval_ms : 200;
	unsigned timeout = ha->timeout_ms ? ha->timeout_ms : 2000;

	for (size_t i = 0; i < ARRAY_SIZE(ha_required); i++) {
		if (!key_seen(p, ha_required[i].key)) {
			fail(p, ha->line, "[ha %s] has no %s; add '%s'", ha->name, ha_required[i].key,
			     ha_required[i].example);
			return -1;
		}
	}
	if (ha->secret_len > 0 && ha->secret_file[0] != '\0') {
		fail(p, ha->line, "[ha %s] has both secret and secret-file; keep one", ha->name);
		return -1;
	}
	if (ha->secret_len == 0 && ha->secret_file[0] == '\0') {
		fail(p, ha->line, "[ha %s] has no secret; add 'secret-file = /etc/twinsan/%s.secret' "
		     "(mode 600, the same secret on both nodes)", ha->name, ha->name);
		return -1;
	}
	bool witness_secret = ha->witness_secret_file[0] != '\0' || ha->witness_secret_len > 0;

	if (ha->witness_secret_file[0] != '\0' && ha->witness_secret_len > 0) {
		fail(p, ha->line, "[ha %s] has both witness-secret and witness-secret-file; keep one", ha->name);
		return -1;
	}
	if (ha->failover == HA_FAILOVER_MAJORITY && (ha->n_witness == 0 || !witness_secret)) {
		fail(p, ha->line, "[ha %s] has failover = majority without a witness; add 'witness = "
		     "ADDRESS:PORT' and 'witness-secret-file = /path'", ha->name);
		return -1;
	}
	if ((ha->n_witness > 0) != witness_secret) {
		fail(p, ha->line, "[ha %s] needs witness and witness-secret-file together", ha->name);
		return -1;
	}
	if (timeout <= ping) {
		fail(p, ha->line, "[ha %s] timeout %u ms is not longer than ping-interval %u ms; make "
		     "it several intervals", ha->name, timeout, ping);
		return -1;
	}
	if (ha->size % 4096 != 0) {
		fail(p, ha->line, "[ha %s] size %llu is not a multiple of 4096", ha->name,
		     (unsigned long long)ha->size);
		return -1;
	}
	for (size_t i = 0; i + 1 < p->cfg->n_has; i++) {
		if (memcmp(p->cfg->has[i].uuid, ha->uuid, sizeof(ha->uuid)) == 0) {
			fail(p, ha->line, "[ha %s] has the uuid of [ha %s] (line %u); each HA device needs "
			     "its own", ha->name, p->cfg->has[i].name, p->cfg->has[i].line);
			return -1;
		}
	}
	return 0;
}

/* ---- [lun TARGET:N] ---- */

static int lun_block_size(struct parser *p, void *obj, const char *value)
{
	struct config_lun *lun = obj;

	if (strcmp(value, "512") != 0 && strcmp(value, "4096") != 0) {
		fail(p, p->lineno, "block-size '%s' is not 512 or 4096", value);
		return -1;
	}
	lun->block_size = (uint32_t)atoi(value);
	return 0;
}

static int lun_serial(struct parser *p, void *obj, const char *value)
{
	struct config_lun *lun = obj;

	/* VPD page 0x80 carries printable ASCII. */
	for (const char *c = value; *c; c++) {
		if (*c <= ' ' || *c > '~') {
			fail(p, p->lineno, "serial '%s' has a character other than printable ASCII "
			     "without spaces", value);
			return -1;
		}
	}
	return copy_value(p, lun->serial, sizeof(lun->serial), "serial", value);
}

static int lun_uuid(struct parser *p, void *obj, const char *value)
{
	struct config_lun *lun = obj;

	if (parse_uuid(value, lun->uuid) < 0) {
		fail(p, p->lineno, "uuid '%s' is not of the form 01234567-89ab-cdef-0123-456789abcdef",
		     value);
		return -1;
	}
	lun->has_uuid = true;
	return 0;
}

static int lun_ha(struct parser *p, void *obj, const char *value)
{
	struct config_lun *lun = obj;

	for (size_t i = 0; i < p->cfg->n_has; i++) {
		if (strcmp(p->cfg->has[i].name, value) == 0) {
			lun->uses_ha = true;
			lun->ha = i;
			return 0;
		}
	}
	fail(p, p->lineno, "ha '%s' names no [ha %s] section above this LUN; define it before the LUN",
	     value, value);
	return -1;
}

static const struct key_desc lun_keys[] = {
	{ .name = "path", .type = KEY_PATH, FIELD(struct config_lun, path) },
	{ .name = "size", .type = KEY_SIZE, FIELD(struct config_lun, size) },
	{ .name = "direct", .type = KEY_BOOL, FIELD(struct config_lun, direct) },
	{ .name = "block-size", .set = lun_block_size },
	{ .name = "serial", .set = lun_serial },
	{ .name = "uuid", .set = lun_uuid },
	{ .name = "ha", .set = lun_ha },
};

/* A LUN serving an HA device takes its data and identity from the [ha] section. */
static int lun_ha_finish(struct parser *p, const struct config_lun *lun)
{
	static const char *const own[] = { "path", "size", "direct", "uuid", "serial" };
	const struct config_ha *ha = &p->cfg->has[lun->ha];

	for (size_t i = 0; i < ARRAY_SIZE(own); i++) {
		if (key_seen(p, own[i])) {
			fail(p, lun->line, "[lun %s:%llu] has both ha and %s; the HA device's %s comes from "
			     "[ha %s], remove it here", p->cfg->targets[lun->target].name,
			     (unsigned long long)lun->lun, own[i], own[i], ha->name);
			return -1;
		}
	}
	if (ha->size % lun->block_size != 0) {
		fail(p, lun->line, "[lun %s:%llu] block size %u does not divide the size of [ha %s]",
		     p->cfg->targets[lun->target].name, (unsigned long long)lun->lun, lun->block_size,
		     ha->name);
		return -1;
	}
	for (size_t i = 0; i + 1 < p->cfg->n_luns; i++) {
		if (p->cfg->luns[i].uses_ha && p->cfg->luns[i].ha == lun->ha) {
			fail(p, lun->line, "[ha %s] is already served by the LUN of line %u; an HA device "
			     "is one LUN", ha->name, p->cfg->luns[i].line);
			return -1;
		}
	}
	return 0;
}

static int lun_finish(struct parser *p, void *obj)
{
	struct config_lun *lun = obj;

	if (lun->uses_ha)
		return lun_ha_finish(p, lun);
	if (lun->path[0] == '\0') {
		fail(p, lun->line, "[lun %s:%llu] has no path; add 'path = /srv/twinsan/disk.img' or "
		     "'ha = ALIAS'", p->cfg->targets[lun->target].name, (unsigned long long)lun->lun);
		return -1;
	}
	if (lun->size % lun->block_size != 0) {
		fail(p, lun->line, "[lun %s:%llu] size %llu is not a multiple of the block size %u",
		     p->cfg->targets[lun->target].name, (unsigned long long)lun->lun,
		     (unsigned long long)lun->size, lun->block_size);
		return -1;
	}
	for (size_t i = 0; i + 1 < p->cfg->n_luns; i++) {
		if (strcmp(p->cfg->luns[i].path, lun->path) == 0) {
			fail(p, lun->line, "path %s is already the LUN of line %u; give each LUN its "
			     "own file", lun->path, p->cfg->luns[i].line);
			return -1;
		}
	}
	return 0;
}

static const struct section_desc sections[] = {
	{ "daemon", false, daemon_keys, ARRAY_SIZE(daemon_keys), NULL },
	{ "portal", true, portal_keys, ARRAY_SIZE(portal_keys), portal_finish },
	{ "target", true, target_keys, ARRAY_SIZE(target_keys), target_finish },
	{ "lun", true, lun_keys, ARRAY_SIZE(lun_keys), lun_finish },
	{ "ha", true, ha_keys, ARRAY_SIZE(ha_keys), ha_finish },
};

#define SECTION_LIST "[daemon], [portal NAME], [target NAME], [ha NAME] and [lun TARGET:N]"

/* ---- sections ---- */

static bool in_managed(const struct parser *p)
{
	return p->managed_from && p->lineno >= p->managed_from;
}

/* "line N", or with a managed configuration which file's line it is. */
static const char *where(const struct parser *p, unsigned line, char *buf, size_t len)
{
	if (p->managed_from && line >= p->managed_from)
		snprintf(buf, len, "%s line %u", p->managed_file, line - p->managed_from + 1);
	else if (p->managed_from)
		snprintf(buf, len, "%s line %u", p->file, line);
	else
		snprintf(buf, len, "line %u", line);
	return buf;
}

/* Portal and HA names: letters, digits, '-', '.', '_'. */
static bool plain_name(struct parser *p, const char *kind, const char *name)
{
	for (const char *c = name; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("-._", *c))) {
			fail(p, p->lineno, "%s name '%s' may hold only letters, digits, '-', '.', '_'",
			     kind, name);
			return false;
		}
	}
	return true;
}

static void *open_portal(struct parser *p, const char *name)
{
	char at[CONFIG_PATH_MAX + 32];
	struct config *cfg = p->cfg;
	struct config_portal *portal;

	if (!plain_name(p, "portal", name))
		return NULL;
	for (size_t i = 0; i < cfg->n_portals; i++) {
		if (strcmp(cfg->portals[i].name, name) == 0) {
			fail(p, p->lineno, "[portal %s] is defined twice (first at %s); rename one",
			     name, where(p, cfg->portals[i].line, at, sizeof(at)));
			return NULL;
		}
	}
	portal = append(p, &cfg->portals, &cfg->n_portals, sizeof(*cfg->portals));
	if (portal == NULL)
		return NULL;
	str_copy(portal->name, sizeof(portal->name), name);
	portal->port = CONFIG_DEFAULT_PORT;
	portal->tpgt = 1;
	portal->line = p->lineno;
	return portal;
}

static void *open_target(struct parser *p, const char *name)
{
	char at[CONFIG_PATH_MAX + 32];
	struct config *cfg = p->cfg;
	struct config_target *t;
	char iqn[ISCSI_NAME_MAX];

	if (!iscsi_name_chars_ok(name)) {
		fail(p, p->lineno, "target name '%s' may hold only a-z, 0-9, '-', '.', ':' "
		     "(iSCSI names are lower case)", name);
		return NULL;
	}
	if (snprintf(iqn, sizeof(iqn), "%s%s", is_iscsi_name(name) ? "" : CONFIG_IQN_PREFIX,
	             name) >= (int)sizeof(iqn)) {
		fail(p, p->lineno, "target name '%s' makes an iSCSI name longer than %d bytes",
		     name, ISCSI_NAME_MAX - 1);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_targets; i++) {
		if (strcmp(cfg->targets[i].iqn, iqn) == 0) {
			fail(p, p->lineno, "target %s is defined twice (first at %s); rename one",
			     iqn, where(p, cfg->targets[i].line, at, sizeof(at)));
			return NULL;
		}
	}
	t = append(p, &cfg->targets, &cfg->n_targets, sizeof(*cfg->targets));
	if (t == NULL)
		return NULL;
	str_copy(t->name, sizeof(t->name), name);
	str_copy(t->iqn, sizeof(t->iqn), iqn);
	t->line = p->lineno;
	t->managed = in_managed(p);
	return t;
}

static void *open_lun(struct parser *p, const char *name)
{
	char at[CONFIG_PATH_MAX + 32];
	struct config *cfg = p->cfg;
	const char *colon = strrchr(name, ':');
	struct config_lun *lun;
	uint64_t n;
	size_t t;

	if (colon == NULL || parse_uint(colon + 1, 0, LUN_MAX, &n) < 0) {
		fail(p, p->lineno, "[lun %s] must be named TARGET:N with N from 0 to %d", name, LUN_MAX);
		return NULL;
	}
	for (t = 0; t < cfg->n_targets; t++)
		if (strlen(cfg->targets[t].name) == (size_t)(colon - name) &&
		    strncmp(cfg->targets[t].name, name, (size_t)(colon - name)) == 0)
			break;
	if (t == cfg->n_targets) {
		fail(p, p->lineno, "[lun %s] names no target defined above it; add [target %.*s] "
		     "before it", name, (int)(colon - name), name);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_luns; i++) {
		if (cfg->luns[i].target == t && cfg->luns[i].lun == n) {
			fail(p, p->lineno, "[lun %s] is defined twice (first at %s)", name,
			     where(p, cfg->luns[i].line, at, sizeof(at)));
			return NULL;
		}
	}
	lun = append(p, &cfg->luns, &cfg->n_luns, sizeof(*cfg->luns));
	if (lun == NULL)
		return NULL;
	lun->target = t;
	lun->lun = n;
	lun->block_size = 512;
	lun->line = p->lineno;
	lun->managed = in_managed(p);
	return lun;
}

static void *open_ha(struct parser *p, const char *name)
{
	char at[CONFIG_PATH_MAX + 32];
	struct config *cfg = p->cfg;
	struct config_ha *ha;

	if (!plain_name(p, "HA device", name))
		return NULL;
	for (size_t i = 0; i < cfg->n_has; i++) {
		if (strcmp(cfg->has[i].name, name) == 0) {
			fail(p, p->lineno, "[ha %s] is defined twice (first at %s); rename one", name,
			     where(p, cfg->has[i].line, at, sizeof(at)));
			return NULL;
		}
	}
	ha = append(p, &cfg->has, &cfg->n_has, sizeof(*cfg->has));
	if (ha == NULL)
		return NULL;
	str_copy(ha->name, sizeof(ha->name), name);
	ha->failover = HA_FAILOVER_HEARTBEAT;
	ha->line = p->lineno;
	ha->managed = in_managed(p);
	return ha;
}

static void finish_section(struct parser *p)
{
	if (p->section != NULL && p->section->finish != NULL && !p->failed)
		p->section->finish(p, p->obj);
	p->section = NULL;
	p->obj = NULL;
}

/* "[kind name]" with nothing but a comment after it. */
static void open_section(struct parser *p, const char *line)
{
	char kind[16], name[CONFIG_NAME_MAX];
	const char *end = strchr(line, ']');
	const char *sp;
	size_t kind_len, name_len;
	const struct section_desc *desc = NULL;

	finish_section(p);
	if (end == NULL) {
		fail(p, p->lineno, "section header without ']'");
		return;
	}
	for (const char *c = end + 1; *c && *c != ';' && *c != '#'; c++) {
		if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n') {
			fail(p, p->lineno, "text after ']'; put keys on their own lines");
			return;
		}
	}
	if (++p->n_sections > CONFIG_SECTIONS_MAX) {
		fail(p, p->lineno, "more than %d sections", CONFIG_SECTIONS_MAX);
		return;
	}
	line++;
	sp = memchr(line, ' ', (size_t)(end - line));
	kind_len = (size_t)((sp ? sp : end) - line);
	if (kind_len < sizeof(kind)) {
		memcpy(kind, line, kind_len);
		kind[kind_len] = '\0';
		for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
			if (strcmp(sections[i].kind, kind) == 0)
				desc = &sections[i];
	}
	if (desc == NULL) {
		fail(p, p->lineno, "unknown section [%.*s]; sections are " SECTION_LIST,
		     (int)(end - line), line);
		return;
	}
	while (sp && sp < end && *sp == ' ')
		sp++;
	name_len = sp ? (size_t)(end - sp) : 0;
	if (desc->named != (name_len > 0)) {
		fail(p, p->lineno, desc->named ? "[%s] needs a name: [%s NAME]"
		                               : "[%s] takes no name", kind, kind);
		return;
	}
	if (name_len >= sizeof(name)) {
		fail(p, p->lineno, "section name is longer than %zu bytes", sizeof(name) - 1);
		return;
	}
	memcpy(name, sp ? sp : "", name_len);
	name[name_len] = '\0';

	p->seen = 0;
	p->section_line = p->lineno;
	/* The daemon's settings and its addresses are the administrator's. */
	if (in_managed(p) && (strcmp(kind, "daemon") == 0 || strcmp(kind, "portal") == 0)) {
		fail(p, p->lineno, "[%s] belongs in the main configuration file, not the managed one", kind);
		return;
	}
	if (strcmp(kind, "daemon") == 0) {
		if (p->daemon_seen) {
			fail(p, p->lineno, "[daemon] appears twice; merge the two sections");
			return;
		}
		p->daemon_seen = true;
		p->obj = p->cfg;
	} else if (strcmp(kind, "portal") == 0) {
		p->obj = open_portal(p, name);
	} else if (strcmp(kind, "target") == 0) {
		p->obj = open_target(p, name);
	} else if (strcmp(kind, "ha") == 0) {
		p->obj = open_ha(p, name);
	} else {
		p->obj = open_lun(p, name);
	}
	if (p->obj != NULL)
		p->section = desc;
}

/* ---- inih glue ---- */

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", s[i]))
			return false;
	return true;
}

/* What inih accepts as a key line (so its errors surface here, in line order): blank, a
 * comment, or text with '=' or ':' before any inline comment (';' after a blank). */
static bool is_key_line(const char *s)
{
	s += strspn(s, " \t\r\n");
	if (*s == '\0' || *s == ';' || *s == '#')
		return true;
	for (; *s; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (*s == ';' && (s[-1] == ' ' || s[-1] == '\t'))
			return false;
	}
	return false;
}

/* Hands inih one line at a time, counting lines and opening sections.  Lines this parser
 * rejects reach inih as blank lines so it does not report them again. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	size_t start = p->pos, end, n;
	const char *nl;
	bool bad = false;
	size_t bom;

	if (p->pos >= p->len)
		return NULL;
	nl = memchr(p->text + start, '\n', p->len - start);
	end = nl ? (size_t)(nl - p->text) + 1 : p->len;
	p->pos = end;
	p->lineno++;
	n = end - start;
	if (memchr(p->text + start, '\0', n) != NULL) {
		fail(p, p->lineno, "NUL byte in the line; the file must be text");
		bad = true;
	} else if (n > (size_t)num - 1) {
		fail(p, p->lineno, "line is longer than %d characters; shorten it", num - 2);
		bad = true;
	} else if (n > 0 && (p->text[start] == ' ' || p->text[start] == '\t') &&
	           !blank(p->text + start, n)) {
		fail(p, p->lineno, "indented line; start keys and sections in the first column");
		bad = true;
	}
	if (bad) {
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	memcpy(str, p->text + start, n);
	str[n] = '\0';
	/* inih skips a UTF-8 byte order mark; so must the section check. */
	bom = p->lineno == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
	if (str[bom] == '[')
		open_section(p, str + bom);
	else if (!is_key_line(str + bom))
		fail(p, p->lineno, "expected '[section]' or 'key = value'");
	return str;
}

static void set_key(struct parser *p, const struct key_desc *key, const char *value)
{
	void *field = (char *)p->obj + key->off;

	switch (key->type) {
	case KEY_PATH:
		set_path(p, field, key->len, key->name, value);
		break;
	case KEY_SIZE:
		set_size(p, key->name, value, field);
		break;
	case KEY_BOOL:
		set_bool(p, key->name, value, field);
		break;
	case KEY_DURATION:
		set_duration(p, key->name, value, field);
		break;
	case KEY_CUSTOM:
		key->set(p, p->obj, value);
		break;
	}
}

static int handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct section_desc *desc = p->section;

	if (desc == NULL) {
		/* After a bad header this is moot: the header's earlier error is the one kept. */
		fail(p, p->lineno, "'%s' is outside any section; put it under one of " SECTION_LIST,
		     name);
		return 1;
	}
	for (size_t i = 0; i < desc->n_keys; i++) {
		const struct key_desc *key = &desc->keys[i];

		if (strcmp(key->name, name) != 0)
			continue;
		if ((p->seen & (1u << i)) && !key->repeatable) {
			fail(p, p->lineno, "'%s' is set twice in this section; keep one", name);
			return 1;
		}
		p->seen |= 1u << i;
		set_key(p, key, value);
		return 1;
	}
	{
		char valid[256] = "";

		for (size_t i = 0; i < desc->n_keys; i++)
			snprintf(valid + strlen(valid), sizeof(valid) - strlen(valid), "%s%s",
			         i ? ", " : "", desc->keys[i].name);
		fail(p, p->lineno, "unknown key '%s' in [%s]; valid keys: %s", name, desc->kind, valid);
	}
	return 1;
}

/* Every listening or dialing end of the HA links must be distinct: two links on one local
 * address would fight over it, and an iSCSI portal there would take the partner's calls. */
static const struct config_ha_link *ha_link(const struct config_ha *ha, unsigned k)
{
	return k < ha->n_sync ? &ha->sync[k] : &ha->heartbeat[k - ha->n_sync];
}

static int check_ha_links(struct parser *p)
{
	const struct config *cfg = p->cfg;

	for (size_t i = 0; i < cfg->n_has; i++) {
		const struct config_ha *a = &cfg->has[i];

		for (unsigned k = 0; k < a->n_sync + a->n_heartbeat; k++) {
			const struct config_ha_link *la = ha_link(a, k);

			for (size_t j = 0; j < cfg->n_portals; j++) {
				if (cfg->portals[j].port == la->local.port &&
				    strcmp(cfg->portals[j].address, la->local.address) == 0) {
					fail(p, la->line, "[ha %s] link address %s:%u is also [portal %s] (line %u); "
					     "give the link another port", a->name, la->local.address, la->local.port,
					     cfg->portals[j].name, cfg->portals[j].line);
					return -1;
				}
			}
			for (size_t i2 = i; i2 < cfg->n_has; i2++) {
				const struct config_ha *b = &cfg->has[i2];

				for (unsigned m = i2 == i ? k + 1 : 0; m < b->n_sync + b->n_heartbeat; m++) {
					const struct config_ha_link *lb = ha_link(b, m);

					if (endpoint_equal(&la->local, &lb->local) ||
					    endpoint_equal(&la->partner, &lb->partner)) {
						fail(p, lb->line, "[ha %s] link %s uses the same address as the link "
						     "of line %u; give each sync and heartbeat link its own port",
						     b->name, endpoint_equal(&la->local, &lb->local) ? "local end"
						     : "partner end", la->line);
						return -1;
					}
				}
			}
		}
	}
	return 0;
}

/* Paths of the HA replicas and their metadata, once the state dir is known. */
static int check_ha_files(struct parser *p)
{
	struct config *cfg = p->cfg;

	for (size_t i = 0; i < cfg->n_has; i++) {
		struct config_ha *ha = &cfg->has[i];

		if (ha->meta_path[0] == '\0' &&
		    snprintf(ha->meta_path, sizeof(ha->meta_path), "%s/ha-%s.meta", cfg->state_dir,
		             ha->name) >= (int)sizeof(ha->meta_path)) {
			fail(p, ha->line, "[ha %s] metadata path in state-dir is too long; set meta", ha->name);
			return -1;
		}
		for (size_t j = 0; j < cfg->n_luns; j++) {
			if (strcmp(cfg->luns[j].path, ha->path) == 0) {
				fail(p, cfg->luns[j].line, "path %s is already the replica of [ha %s] (line %u); "
				     "serve the HA device with 'ha = %s' instead", ha->path, ha->name, ha->line,
				     ha->name);
				return -1;
			}
		}
		for (size_t j = 0; j < i; j++) {
			const struct config_ha *o = &cfg->has[j];

			if (strcmp(o->path, ha->path) == 0 || strcmp(o->meta_path, ha->meta_path) == 0 ||
			    strcmp(o->path, ha->meta_path) == 0 || strcmp(o->meta_path, ha->path) == 0) {
				fail(p, ha->line, "[ha %s] shares a replica or metadata file with [ha %s] (line %u); "
				     "give each its own", ha->name, o->name, o->line);
				return -1;
			}
		}
		if (strcmp(ha->path, ha->meta_path) == 0) {
			fail(p, ha->line, "[ha %s] meta is its replica path; give the metadata its own file",
			     ha->name);
			return -1;
		}
	}
	return 0;
}

static int check_whole(struct parser *p)
{
	struct config *cfg = p->cfg;
	unsigned last = MAX(p->lineno, 1u);

	if (cfg->n_portals == 0) {
		fail(p, last, "no [portal NAME] section; add one with an address to listen on");
		return -1;
	}
	for (size_t t = 0; t < cfg->n_targets; t++) {
		size_t i;

		for (i = 0; i < cfg->n_luns; i++)
			if (cfg->luns[i].target == t)
				break;
		/* A target made through the API gets its LUNs one command later. */
		if (i == cfg->n_luns && !cfg->targets[t].managed) {
			fail(p, cfg->targets[t].line, "[target %s] has no LUN; add a [lun %s:0] section",
			     cfg->targets[t].name, cfg->targets[t].name);
			return -1;
		}
	}
	for (size_t h = 0; h < cfg->n_has; h++) {
		size_t i;

		for (i = 0; i < cfg->n_luns; i++)
			if (cfg->luns[i].uses_ha && cfg->luns[i].ha == h)
				break;
		if (i == cfg->n_luns) {
			fail(p, cfg->has[h].line, "[ha %s] is served by no LUN; add 'ha = %s' to a [lun] "
			     "section below it", cfg->has[h].name, cfg->has[h].name);
			return -1;
		}
	}
	return check_ha_files(p) < 0 ? -1 : check_ha_links(p);
}

/* whole: the configuration is complete (checks across sections), not just its main part
 * read for its [daemon] settings. */
static int parse(const struct parser *setup, bool whole, struct config **out)
{
	struct parser p = *setup;
	int syntax_line;

	p.cfg = calloc(1, sizeof(*p.cfg));
	if (p.cfg == NULL) {
		snprintf(p.err, p.errlen, "%s: out of memory", p.file);
		return -1;
	}
	p.cfg->log_level = LOG_LEVEL_INFO;
	str_copy(p.cfg->state_dir, sizeof(p.cfg->state_dir), CONFIG_DEFAULT_STATE_DIR);
	p.cfg->queue_depth = CONFIG_DEFAULT_QUEUE_DEPTH;

	syntax_line = ini_parse_stream(read_line, &p, handle_key, &p);
	finish_section(&p);
	/* Normally is_key_line() has found inih's complaint first. */
	if (syntax_line > 0)
		fail(&p, (unsigned)syntax_line, "expected '[section]' or 'key = value'");
	else if (syntax_line < 0)
		fail(&p, 1, "out of memory");
	if (!p.failed && whole)
		check_whole(&p);
	if (p.failed) {
		config_free(p.cfg);
		return -1;
	}
	if (p.cfg->managed_config[0] == '\0' &&
	    snprintf(p.cfg->managed_config, sizeof(p.cfg->managed_config), "%s/managed.conf",
	             p.cfg->state_dir) >= (int)sizeof(p.cfg->managed_config)) {
		fail(&p, 1, "state-dir is too long to hold managed.conf; set managed-config");
		config_free(p.cfg);
		return -1;
	}
	*out = p.cfg;
	return 0;
}

int config_parse(const char *text, size_t len, const char *file, struct config **out,
                 char *err, size_t errlen)
{
	struct parser p = { .file = file, .text = text, .len = len, .err = err, .errlen = errlen };

	return parse(&p, true, out);
}

int config_parse_managed(const char *text, size_t len, const char *file, const char *managed_text,
                         size_t managed_len, const char *managed_file, struct config **out, char *err,
                         size_t errlen)
{
	bool newline = len > 0 && text[len - 1] != '\n';
	char *both = malloc(len + newline + managed_len + 1);
	struct parser p = {
		.file = file, .managed_file = managed_file, .managed_from = 1, .text = both,
		.len = len + newline + managed_len, .err = err, .errlen = errlen,
	};
	int rc;

	if (both == NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -1;
	}
	memcpy(both, text, len);
	if (newline)
		both[len] = '\n';
	memcpy(both + len + newline, managed_text, managed_len);
	both[p.len] = '\0';
	for (size_t i = 0; i < len + newline; i++)
		p.managed_from += both[i] == '\n';
	rc = parse(&p, true, out);
	free(both);
	return rc;
}

int config_size(const char *s, uint64_t *out)
{
	return parse_size(s, out);
}

/* ---- writing the managed sections ---- */

static void format_uuid(FILE *f, const char *key, const uint8_t u[16])
{
	fprintf(f, "%s = ", key);
	for (unsigned i = 0; i < 16; i++)
		fprintf(f, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
	fputc('\n', f);
}

static void format_endpoint(FILE *f, const struct config_endpoint *ep)
{
	fprintf(f, strchr(ep->address, ':') ? "[%s]:%u" : "%s:%u", ep->address, ep->port);
}

static void format_links(FILE *f, const char *key, const struct config_ha_link *links, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, "%s = ", key);
		format_endpoint(f, &links[i].local);
		fputc(' ', f);
		format_endpoint(f, &links[i].partner);
		fputc('\n', f);
	}
}

static void format_creds(FILE *f, const char *prefix, const struct iscsi_chap_creds *c, const char *file)
{
	if (c->user[0] == '\0')
		return;
	fprintf(f, "%suser = %s\n", prefix, c->user);
	if (file[0] != '\0')
		fprintf(f, "%ssecret-file = %s\n", prefix, file);
	else
		fprintf(f, "%ssecret = %.*s\n", prefix, (int)c->secret_len, c->secret);
}

static void format_target(FILE *f, const struct config *cfg, const struct config_target *t)
{
	fprintf(f, "[target %s]\n", t->name);
	if (t->alias[0] != '\0')
		fprintf(f, "alias = %s\n", t->alias);
	if (t->n_portals > 0) {
		fputs("portals =", f);
		for (size_t j = 0; j < t->n_portals; j++)
			fprintf(f, " %s", cfg->portals[t->portals[j]].name);
		fputc('\n', f);
	}
	for (size_t j = 0; j < t->n_initiators; j++)
		fprintf(f, "allow = %s\n", t->initiators[j]);
	format_creds(f, "chap-", &t->auth.initiator, t->chap_secret_file);
	format_creds(f, "mutual-chap-", &t->auth.target, t->mutual_secret_file);
	fputc('\n', f);
}

static void format_ha(FILE *f, const struct config_ha *ha)
{
	static const char *const initial[] = {
		[HA_INITIAL_CLEAR] = "clear", [HA_INITIAL_COPY] = "copy", [HA_INITIAL_NONE] = "none",
	};

	fprintf(f, "[ha %s]\n", ha->name);
	format_uuid(f, "uuid", ha->uuid);
	fprintf(f, "path = %s\n", ha->path);
	if (ha->size)
		fprintf(f, "size = %llu\n", (unsigned long long)ha->size);
	if (ha->direct)
		fputs("direct = yes\n", f);
	fprintf(f, "meta = %s\n", ha->meta_path);
	fprintf(f, "priority = %s\n", ha->role == HA_ROLE_SECONDARY ? "secondary" : "primary");
	fprintf(f, "initial-sync = %s\n", initial[ha->initial_sync]);
	fprintf(f, "failover = %s\n", ha->failover == HA_FAILOVER_MAJORITY ? "majority" : "heartbeat");
	for (unsigned i = 0; i < ha->n_witness; i++) {
		fputs("witness = ", f);
		format_endpoint(f, &ha->witness[i]);
		fputc('\n', f);
	}
	if (ha->witness_secret_file[0] != '\0')
		fprintf(f, "witness-secret-file = %s\n", ha->witness_secret_file);
	else if (ha->witness_secret_len > 0)
		fprintf(f, "witness-secret = %.*s\n", (int)ha->witness_secret_len, (const char *)ha->witness_secret);
	if (ha->secret_file[0] != '\0')
		fprintf(f, "secret-file = %s\n", ha->secret_file);
	else
		fprintf(f, "secret = %.*s\n", (int)ha->secret_len, (const char *)ha->secret);
	format_links(f, "sync", ha->sync, ha->n_sync);
	format_links(f, "heartbeat", ha->heartbeat, ha->n_heartbeat);
	if (ha->extent_size)
		fprintf(f, "extent-size = %u\n", ha->extent_size);
	if (ha->ping_interval_ms)
		fprintf(f, "ping-interval = %ums\n", ha->ping_interval_ms);
	if (ha->timeout_ms)
		fprintf(f, "timeout = %ums\n", ha->timeout_ms);
	fputc('\n', f);
}

static void format_lun(FILE *f, const struct config *cfg, const struct config_lun *l)
{
	fprintf(f, "[lun %s:%llu]\n", cfg->targets[l->target].name, (unsigned long long)l->lun);
	if (l->uses_ha) {
		fprintf(f, "ha = %s\n", cfg->has[l->ha].name);
	} else {
		fprintf(f, "path = %s\n", l->path);
		if (l->size)
			fprintf(f, "size = %llu\n", (unsigned long long)l->size);
		if (l->direct)
			fputs("direct = yes\n", f);
		if (l->serial[0] != '\0')
			fprintf(f, "serial = %s\n", l->serial);
		if (l->has_uuid)
			format_uuid(f, "uuid", l->uuid);
	}
	if (l->block_size != 512)
		fprintf(f, "block-size = %u\n", l->block_size);
	fputc('\n', f);
}

char *config_format(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	bool ok;

	if (f == NULL)
		return NULL;
	fputs("# Made by twinsand's management API (twinctl): edit with twinctl, not by hand.\n\n", f);
	/* Targets and HA devices before the LUNs that refer to them. */
	for (size_t i = 0; i < cfg->n_targets; i++)
		if (cfg->targets[i].managed)
			format_target(f, cfg, &cfg->targets[i]);
	for (size_t i = 0; i < cfg->n_has; i++)
		if (cfg->has[i].managed)
			format_ha(f, &cfg->has[i]);
	for (size_t i = 0; i < cfg->n_luns; i++)
		if (cfg->luns[i].managed)
			format_lun(f, cfg, &cfg->luns[i]);
	ok = !ferror(f);
	if (fclose(f) != 0 || !ok) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- files ---- */

static int read_file(const char *path, size_t max, char **text, size_t *len, struct stat *st,
                     char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	char *buf;

	if (fd < 0 || fstat(fd, st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st->st_size + 1);
	while (buf != NULL && got < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st->st_size - got);

		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "file shrank");
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

/* A secret file holds the secret on its first line; `section` ("[target t]") and `line`
 * say where the configuration names it, `what` what the secret is for. */
static int load_secret(const char *config_path, unsigned line, const char *section, const char *what,
                       const char *path, char *buf, size_t size, size_t *len, char *err, size_t errlen)
{
	char msg[256];
	struct stat st;
	char *text;
	size_t n;

	if (read_file(path, size + 1, &text, &n, &st, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s:%u: %s secret file %s; create it (mode 600) with the secret on "
		         "one line", config_path, line, section, msg);
		return -1;
	}
	n = strcspn(text, "\r\n");
	if (n == 0 || n >= size) {
		snprintf(err, errlen, "%s:%u: %s secret file %s must hold 1 to %zu characters on its "
		         "first line", config_path, line, section, path, size - 1);
		free(text);
		return -1;
	}
	memcpy(buf, text, n);
	buf[n] = '\0';
	*len = n;
	explicit_bzero(text, n);
	free(text);
	if (st.st_mode & S_IROTH)
		log_warn("%s: %s secret is readable by everyone; chmod 600 it", path, what);
	return 0;
}

static int load_target_secrets(const char *path, struct config_target *t, char *err, size_t errlen)
{
	char section[CONFIG_NAME_MAX + 16];

	snprintf(section, sizeof(section), "[target %s]", t->name);
	if (t->chap_secret_file[0] != '\0' &&
	    load_secret(path, t->line, section, "CHAP", t->chap_secret_file, t->auth.initiator.secret,
	                sizeof(t->auth.initiator.secret), &t->auth.initiator.secret_len, err, errlen) < 0)
		return -1;
	if (t->mutual_secret_file[0] != '\0' &&
	    load_secret(path, t->line, section, "CHAP", t->mutual_secret_file, t->auth.target.secret,
	                sizeof(t->auth.target.secret), &t->auth.target.secret_len, err, errlen) < 0)
		return -1;
	return 0;
}

static int load_ha_secrets(const char *path, struct config_ha *ha, char *err, size_t errlen)
{
	char section[CONFIG_NAME_MAX + 16];

	snprintf(section, sizeof(section), "[ha %s]", ha->name);
	if (ha->secret_file[0] != '\0' &&
	    load_secret(path, ha->line, section, "HA link", ha->secret_file, (char *)ha->secret,
	                sizeof(ha->secret), &ha->secret_len, err, errlen) < 0)
		return -1;
	if (ha->witness_secret_file[0] != '\0' &&
	    load_secret(path, ha->line, section, "witness", ha->witness_secret_file,
	                (char *)ha->witness_secret, sizeof(ha->witness_secret), &ha->witness_secret_len,
	                err, errlen) < 0)
		return -1;
	return 0;
}

/* The main file's text and, from its [daemon] section, where the managed file is. */
static int read_main(const char *path, char **text, size_t *len, struct stat *st, char *managed,
                     size_t managed_size, char *err, size_t errlen)
{
	struct parser p = { .file = path, .err = err, .errlen = errlen };
	struct config *cfg;

	if (read_file(path, CONFIG_FILE_MAX, text, len, st, err, errlen) < 0)
		return -1;
	p.text = *text;
	p.len = *len;
	if (parse(&p, false, &cfg) < 0) {
		free(*text);
		return -1;
	}
	str_copy(managed, managed_size, cfg->managed_config);
	config_free(cfg);
	return 0;
}

static int load_both(const char *path, const char *text, size_t len, const struct stat *st,
                     const char *managed_path, const char *managed_text, size_t managed_len,
                     struct config **out, char *err, size_t errlen)
{
	struct config *cfg;
	bool inline_secrets = false;

	if (config_parse_managed(text, len, path, managed_text, managed_len, managed_path, &cfg, err,
	                         errlen) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_targets; i++) {
		struct config_target *t = &cfg->targets[i];

		if (load_target_secrets(t->managed ? managed_path : path, t, err, errlen) < 0) {
			config_free(cfg);
			return -1;
		}
		inline_secrets |= !t->managed && ((t->auth.chap_required && t->chap_secret_file[0] == '\0') ||
		                                  (t->auth.mutual && t->mutual_secret_file[0] == '\0'));
	}
	for (size_t i = 0; i < cfg->n_has; i++) {
		if (load_ha_secrets(cfg->has[i].managed ? managed_path : path, &cfg->has[i], err, errlen) < 0) {
			config_free(cfg);
			return -1;
		}
		inline_secrets |= !cfg->has[i].managed && (cfg->has[i].secret_file[0] == '\0' ||
		                                           (cfg->has[i].witness_secret_len > 0 &&
		                                            cfg->has[i].witness_secret_file[0] == '\0'));
	}
	/* The managed file is written mode 600 by the daemon itself. */
	if (inline_secrets && (st->st_mode & S_IROTH))
		log_warn("%s: holds secrets but is readable by everyone; chmod 600 it or move the "
		         "secrets to secret files", path);
	*out = cfg;
	return 0;
}

int config_load_with(const char *path, const char *managed_text, size_t len, struct config **out,
                     char *err, size_t errlen)
{
	char managed[CONFIG_PATH_MAX];
	struct stat st;
	char *text;
	size_t text_len;
	int rc;

	if (read_main(path, &text, &text_len, &st, managed, sizeof(managed), err, errlen) < 0)
		return -1;
	rc = load_both(path, text, text_len, &st, managed, managed_text, len, out, err, errlen);
	free(text);
	return rc;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	char managed[CONFIG_PATH_MAX];
	struct stat st, mst;
	char *text, *mtext = NULL;
	size_t len, mlen = 0;
	int rc;

	if (read_main(path, &text, &len, &st, managed, sizeof(managed), err, errlen) < 0)
		return -1;
	/* No managed file yet: nothing was created through the API. */
	if (access(managed, F_OK) == 0 &&
	    read_file(managed, CONFIG_FILE_MAX, &mtext, &mlen, &mst, err, errlen) < 0) {
		free(text);
		return -1;
	}
	rc = load_both(path, text, len, &st, managed, mtext ? mtext : "", mlen, out, err, errlen);
	if (mtext != NULL)
		explicit_bzero(mtext, mlen);
	free(mtext);
	free(text);
	return rc;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_targets; i++) {
		free(cfg->targets[i].portals);
		free(cfg->targets[i].initiators);
	}
	free(cfg->portals);
	free(cfg->targets);
	free(cfg->luns);
	if (cfg->has != NULL)
		explicit_bzero(cfg->has, cfg->n_has * sizeof(*cfg->has));
	free(cfg->has);
	free(cfg);
}
