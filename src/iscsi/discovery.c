#include "iscsi/discovery.h"

#include <string.h>

#include "common/log.h"

static void list_target(const struct iscsi_registry *reg, const struct iscsi_target *t,
                        struct iscsi_text_buf *out)
{
	char address[ISCSI_PORTAL_MAX + 16];

	iscsi_text_add(out, "TargetName", iscsi_target_name(t));
	for (size_t i = 0; i < iscsi_registry_portal_count(reg); i++) {
		if (!iscsi_target_serves_portal_group(t, iscsi_registry_portal_tpgt(reg, i)))
			continue;
		iscsi_registry_portal_format(reg, i, address, sizeof(address));
		iscsi_text_add(out, "TargetAddress", address);
	}
}

/* The name types of RFC 7143 §4.2.7: only these can name a target. */
static bool looks_like_iscsi_name(const char *value)
{
	return strncmp(value, "iqn.", 4) == 0 || strncmp(value, "eui.", 4) == 0 ||
	       strncmp(value, "naa.", 4) == 0;
}

void discovery_send_targets(const struct iscsi_registry *reg, const struct iscsi_session_params *sp,
                            const char *value, struct iscsi_text_buf *out)
{
	const struct iscsi_target *t;

	if (strcmp(value, "All") == 0) {
		for (size_t i = 0; i < iscsi_registry_count(reg); i++) {
			t = iscsi_registry_at(reg, i);
			if (iscsi_target_permits(t, sp->initiator_name))
				list_target(reg, t, out);
		}
		return;
	}
	if (value[0] == '\0' && sp->type == ISCSI_SESSION_NORMAL) {
		t = iscsi_registry_find(reg, sp->target_name);
		if (t != NULL)
			list_target(reg, t, out);
		return;
	}
	if (looks_like_iscsi_name(value)) {
		t = iscsi_registry_find(reg, value);
		if (t != NULL && iscsi_target_permits(t, sp->initiator_name))
			list_target(reg, t, out);
		return;
	}
	log_warn("SendTargets: %s: invalid value \"%.64s\"", sp->initiator_name, value);
	iscsi_text_add(out, "SendTargets", "Reject");
}
