/* iSCSI targets as configured: name, alias, portal groups, who may log in (ACL), CHAP
 * credentials, and the SCSI target device behind them.  A registry holds all targets of a
 * daemon; login looks targets up here, discovery lists them. */
#ifndef TWINSAN_ISCSI_TARGET_H
#define TWINSAN_ISCSI_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/scsi.h"

#define ISCSI_NAME_MAX 224
#define ISCSI_CHAP_NAME_MAX 256
#define ISCSI_CHAP_SECRET_MAX 256
#define ISCSI_PORTAL_MAX 64 /* "[v6addr]:port,tpgt" */

/* CHAP credentials: a user name and secret the initiator must prove (one-way), and
 * optionally the target's own for mutual CHAP. */
struct iscsi_chap_creds {
	char user[ISCSI_CHAP_NAME_MAX];
	char secret[ISCSI_CHAP_SECRET_MAX];
	size_t secret_len;
};

struct iscsi_target_auth {
	bool chap_required;
	struct iscsi_chap_creds initiator;  /* what the initiator must prove */
	bool mutual;
	struct iscsi_chap_creds target;     /* what the target proves when asked */
};

struct iscsi_target;
struct iscsi_registry;

int iscsi_registry_new(struct iscsi_registry **out);
void iscsi_registry_free(struct iscsi_registry *reg); /* frees targets, not their logical units */

/* Portals ("address:port" with their target portal group tag) that discovery reports. */
int iscsi_registry_add_portal(struct iscsi_registry *reg, const char *address, uint16_t port,
                              uint16_t tpgt);
size_t iscsi_registry_portal_count(const struct iscsi_registry *reg);
uint16_t iscsi_registry_portal_tpgt(const struct iscsi_registry *reg, size_t i);
/* Formats portal i as a TargetAddress value: "addr:port,tpgt" ([addr] for IPv6). */
void iscsi_registry_portal_format(const struct iscsi_registry *reg, size_t i, char *buf, size_t len);

struct iscsi_target *iscsi_target_add(struct iscsi_registry *reg, const char *name, const char *alias);
struct iscsi_target *iscsi_registry_find(const struct iscsi_registry *reg, const char *name);
/* Takes a target out of the registry: logins and discovery no longer find it.  It stays
 * the caller's to free with iscsi_target_free() once no session or login uses it
 * (iscsi_server_target_in_use()). */
void iscsi_registry_remove(struct iscsi_registry *reg, struct iscsi_target *t);
void iscsi_target_free(struct iscsi_target *t); /* frees its SCSI target, not the logical units */
size_t iscsi_registry_count(const struct iscsi_registry *reg);
struct iscsi_target *iscsi_registry_at(const struct iscsi_registry *reg, size_t i);

const char *iscsi_target_name(const struct iscsi_target *t);
const char *iscsi_target_alias(const struct iscsi_target *t); /* "" when none */
struct scsi_target *iscsi_target_scsi(struct iscsi_target *t);

/* Access control: with no entries every initiator may log in; otherwise only those listed. */
int iscsi_target_allow_initiator(struct iscsi_target *t, const char *initiator_name);
bool iscsi_target_permits(const struct iscsi_target *t, const char *initiator_name);

/* Portal groups: with none added a target is served on every portal; otherwise only on
 * the portals of the groups added (login elsewhere is refused, discovery omits them). */
int iscsi_target_add_portal_group(struct iscsi_target *t, uint16_t tpgt);
bool iscsi_target_serves_portal_group(const struct iscsi_target *t, uint16_t tpgt);

/* The SCSI target ports the target presents here (SPC-4): portal group tpgt is relative
 * target port relative_port_base + tpgt (tpgt 0 counts as 1; wrapping past 0xffff), in
 * target port group port_group (0: 1).  The two nodes of an HA pair give different bases
 * and groups, so an initiator logged in to both sees two ports of one device.  Default:
 * base 0, group 1. */
void iscsi_target_set_port_identity(struct iscsi_target *t, uint16_t relative_port_base, uint16_t port_group);
void iscsi_target_port_identity(const struct iscsi_target *t, uint16_t tpgt, uint16_t *relative_port,
                                uint16_t *port_group);

void iscsi_target_set_auth(struct iscsi_target *t, const struct iscsi_target_auth *auth);
const struct iscsi_target_auth *iscsi_target_auth(const struct iscsi_target *t);

/* Discovery sessions can require CHAP too. */
void iscsi_registry_set_discovery_auth(struct iscsi_registry *reg, const struct iscsi_target_auth *auth);
const struct iscsi_target_auth *iscsi_registry_discovery_auth(const struct iscsi_registry *reg);

#endif
