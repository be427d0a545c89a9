#include "iscsi/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"

struct iscsi_target {
	char name[ISCSI_NAME_MAX];
	char alias[ISCSI_NAME_MAX];
	struct scsi_target *scsi;
	char (*acl)[ISCSI_NAME_MAX];   /* initiator names allowed; none listed: everyone */
	size_t acl_count;
	uint16_t *groups;              /* portal groups it is served on; none listed: all */
	size_t group_count;
	struct iscsi_target_auth auth;
	uint16_t relative_port_base;   /* SCSI port identity: see iscsi_target_set_port_identity() */
	uint16_t port_group;
};

struct portal {
	char address[ISCSI_PORTAL_MAX];
	uint16_t port;
	uint16_t tpgt;
};

struct iscsi_registry {
	struct iscsi_target **targets;
	size_t count;
	struct portal *portals;
	size_t portal_count;
	struct iscsi_target_auth discovery_auth;
};

int iscsi_registry_new(struct iscsi_registry **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? -1 : 0;
}

void iscsi_target_free(struct iscsi_target *t)
{
	if (t == NULL)
		return;
	scsi_target_free(t->scsi);
	free(t->acl);
	free(t->groups);
	explicit_bzero(&t->auth, sizeof(t->auth)); /* secrets */
	free(t);
}

void iscsi_registry_free(struct iscsi_registry *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->count; i++)
		iscsi_target_free(reg->targets[i]);
	free(reg->targets);
	free(reg->portals);
	explicit_bzero(&reg->discovery_auth, sizeof(reg->discovery_auth));
	free(reg);
}

int iscsi_registry_add_portal(struct iscsi_registry *reg, const char *address, uint16_t port, uint16_t tpgt)
{
	struct portal *p = realloc(reg->portals, (reg->portal_count + 1) * sizeof(*p));

	if (p == NULL)
		return -1;
	reg->portals = p;
	p += reg->portal_count;
	if (str_copy(p->address, sizeof(p->address), address) != 0) {
		log_err("portal address too long: %s", address);
		return -1;
	}
	p->port = port;
	p->tpgt = tpgt;
	reg->portal_count++;
	return 0;
}

size_t iscsi_registry_portal_count(const struct iscsi_registry *reg) { return reg->portal_count; }

uint16_t iscsi_registry_portal_tpgt(const struct iscsi_registry *reg, size_t i)
{
	return reg->portals[i].tpgt;
}

void iscsi_registry_portal_format(const struct iscsi_registry *reg, size_t i, char *buf, size_t len)
{
	const struct portal *p = &reg->portals[i];
	bool v6 = strchr(p->address, ':') != NULL;

	snprintf(buf, len, "%s%s%s:%u,%u", v6 ? "[" : "", p->address, v6 ? "]" : "", p->port, p->tpgt);
}

struct iscsi_target *iscsi_target_add(struct iscsi_registry *reg, const char *name, const char *alias)
{
	struct iscsi_target *t, **targets;

	if (name[0] == '\0' || strlen(name) >= ISCSI_NAME_MAX || strlen(alias) >= ISCSI_NAME_MAX) {
		log_err("invalid target name or alias: %.64s", name);
		return NULL;
	}
	if (iscsi_registry_find(reg, name) != NULL) {
		log_err("target %s defined twice", name);
		return NULL;
	}
	targets = realloc(reg->targets, (reg->count + 1) * sizeof(*targets));
	if (targets == NULL)
		return NULL;
	reg->targets = targets;
	t = calloc(1, sizeof(*t));
	if (t == NULL || scsi_target_new(&t->scsi) != 0) {
		free(t);
		return NULL;
	}
	str_copy(t->name, sizeof(t->name), name);
	str_copy(t->alias, sizeof(t->alias), alias);
	reg->targets[reg->count++] = t;
	return t;
}

/* iSCSI names compare case-insensitively: RFC 3722 normalises them to lower case. */
struct iscsi_target *iscsi_registry_find(const struct iscsi_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->count; i++)
		if (strcasecmp(reg->targets[i]->name, name) == 0)
			return reg->targets[i];
	return NULL;
}

void iscsi_registry_remove(struct iscsi_registry *reg, struct iscsi_target *t)
{
	for (size_t i = 0; i < reg->count; i++) {
		if (reg->targets[i] == t) {
			memmove(reg->targets + i, reg->targets + i + 1, (reg->count - i - 1) * sizeof(*reg->targets));
			reg->count--;
			return;
		}
	}
}

size_t iscsi_registry_count(const struct iscsi_registry *reg) { return reg->count; }

struct iscsi_target *iscsi_registry_at(const struct iscsi_registry *reg, size_t i)
{
	return i < reg->count ? reg->targets[i] : NULL;
}

const char *iscsi_target_name(const struct iscsi_target *t) { return t->name; }
const char *iscsi_target_alias(const struct iscsi_target *t) { return t->alias; }
struct scsi_target *iscsi_target_scsi(struct iscsi_target *t) { return t->scsi; }

int iscsi_target_allow_initiator(struct iscsi_target *t, const char *initiator_name)
{
	char (*acl)[ISCSI_NAME_MAX];

	if (initiator_name[0] == '\0' || strlen(initiator_name) >= ISCSI_NAME_MAX)
		return -1;
	acl = realloc(t->acl, (t->acl_count + 1) * sizeof(*acl));
	if (acl == NULL)
		return -1;
	t->acl = acl;
	str_copy(t->acl[t->acl_count++], ISCSI_NAME_MAX, initiator_name);
	return 0;
}

bool iscsi_target_permits(const struct iscsi_target *t, const char *initiator_name)
{
	if (t->acl_count == 0)
		return true;
	for (size_t i = 0; i < t->acl_count; i++)
		if (strcasecmp(t->acl[i], initiator_name) == 0)
			return true;
	return false;
}

int iscsi_target_add_portal_group(struct iscsi_target *t, uint16_t tpgt)
{
	uint16_t *groups;

	for (size_t i = 0; i < t->group_count; i++)
		if (t->groups[i] == tpgt)
			return 0;
	groups = realloc(t->groups, (t->group_count + 1) * sizeof(*groups));
	if (groups == NULL)
		return -1;
	t->groups = groups;
	t->groups[t->group_count++] = tpgt;
	return 0;
}

bool iscsi_target_serves_portal_group(const struct iscsi_target *t, uint16_t tpgt)
{
	if (t->group_count == 0)
		return true;
	for (size_t i = 0; i < t->group_count; i++)
		if (t->groups[i] == tpgt)
			return true;
	return false;
}

void iscsi_target_set_port_identity(struct iscsi_target *t, uint16_t relative_port_base, uint16_t port_group)
{
	t->relative_port_base = relative_port_base;
	t->port_group = port_group;
}

void iscsi_target_port_identity(const struct iscsi_target *t, uint16_t tpgt, uint16_t *relative_port,
                                uint16_t *port_group)
{
	uint32_t port = (uint32_t)t->relative_port_base + (tpgt ? tpgt : 1);

	/* 0 is no relative target port: wrap into 1..0xffff. */
	*relative_port = (uint16_t)((port - 1) % 0xffff + 1);
	*port_group = t->port_group ? t->port_group : 1;
}

void iscsi_target_set_auth(struct iscsi_target *t, const struct iscsi_target_auth *auth) { t->auth = *auth; }
const struct iscsi_target_auth *iscsi_target_auth(const struct iscsi_target *t) { return &t->auth; }

void iscsi_registry_set_discovery_auth(struct iscsi_registry *reg, const struct iscsi_target_auth *auth)
{
	reg->discovery_auth = *auth;
}

const struct iscsi_target_auth *iscsi_registry_discovery_auth(const struct iscsi_registry *reg)
{
	return &reg->discovery_auth;
}
