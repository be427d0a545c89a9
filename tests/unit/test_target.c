/* The target registry (names, portals, ACLs, credentials) and SendTargets answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "iscsi/discovery.h"
#include "iscsi/target.h"

#define DISK1 "iqn.2026-11.org.twinsan:disk1"
#define DISK2 "iqn.2026-11.org.twinsan:disk2"
#define HOST1 "iqn.2026-11.org.example:host1"
#define HOST2 "iqn.2026-11.org.example:host2"

static void registry(void **state)
{
	struct iscsi_registry *reg;
	struct iscsi_target *t;
	char buf[ISCSI_PORTAL_MAX + 16];
	struct iscsi_target_auth auth = {.chap_required = true, .initiator = {"u", "s", 1}};

	assert_int_equal(iscsi_registry_new(&reg), 0);
	t = iscsi_target_add(reg, DISK1, "");
	assert_non_null(t);
	assert_non_null(iscsi_target_scsi(t));
	assert_null(iscsi_target_add(reg, DISK1, "again"));
	assert_null(iscsi_target_add(reg, "", ""));
	assert_non_null(iscsi_target_add(reg, DISK2, "second"));
	assert_int_equal(iscsi_registry_count(reg), 2);
	assert_ptr_equal(iscsi_registry_at(reg, 0), t);
	assert_null(iscsi_registry_at(reg, 2));
	assert_ptr_equal(iscsi_registry_find(reg, "IQN.2026-11.ORG.TWINSAN:DISK1"), t);
	assert_null(iscsi_registry_find(reg, "iqn.2026-11.org.twinsan:disk3"));
	assert_string_equal(iscsi_target_name(t), DISK1);
	assert_string_equal(iscsi_target_alias(t), "");
	assert_string_equal(iscsi_target_alias(iscsi_registry_at(reg, 1)), "second");

	assert_true(iscsi_target_permits(t, HOST2));
	assert_int_equal(iscsi_target_allow_initiator(t, HOST1), 0);
	assert_int_equal(iscsi_target_allow_initiator(t, ""), -1);
	assert_true(iscsi_target_permits(t, HOST1));
	assert_false(iscsi_target_permits(t, HOST2));

	assert_false(iscsi_target_auth(t)->chap_required);
	iscsi_target_set_auth(t, &auth);
	assert_true(iscsi_target_auth(t)->chap_required);
	assert_string_equal(iscsi_target_auth(t)->initiator.user, "u");
	iscsi_registry_set_discovery_auth(reg, &auth);
	assert_true(iscsi_registry_discovery_auth(reg)->chap_required);

	assert_int_equal(iscsi_registry_add_portal(reg, "127.0.0.1", 3260, 1), 0);
	assert_int_equal(iscsi_registry_add_portal(reg, "::1", 3261, 2), 0);
	assert_int_equal(iscsi_registry_portal_count(reg), 2);
	iscsi_registry_portal_format(reg, 0, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:3260,1");
	iscsi_registry_portal_format(reg, 1, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:3261,2");
	iscsi_registry_free(reg);
}

/* Runs one SendTargets and returns the answer with '\n' between pairs. */
static const char *send_targets(struct iscsi_registry *reg, const struct iscsi_session_params *sp,
                                const char *value)
{
	static char answer[1024];
	struct iscsi_text_buf out;

	iscsi_text_buf_init(&out);
	discovery_send_targets(reg, sp, value, &out);
	assert_false(out.failed);
	assert_true(out.len < sizeof(answer));
	memcpy(answer, out.data ? (const char *)out.data : "", out.len);
	answer[out.len] = '\0';
	for (size_t i = 0; i + 1 < out.len; i++)
		if (answer[i] == '\0')
			answer[i] = '\n';
	if (out.len > 0)
		answer[out.len - 1] = '\0';
	iscsi_text_buf_free(&out);
	return answer;
}

static void discovery(void **state)
{
	struct iscsi_registry *reg;
	struct iscsi_session_params sp = {.type = ISCSI_SESSION_DISCOVERY, .initiator_name = HOST2};

	assert_int_equal(iscsi_registry_new(&reg), 0);
	assert_int_equal(iscsi_target_allow_initiator(iscsi_target_add(reg, DISK1, ""), HOST1), 0);
	assert_non_null(iscsi_target_add(reg, DISK2, ""));
	assert_string_equal(send_targets(reg, &sp, "All"), "TargetName=" DISK2);
	assert_int_equal(iscsi_registry_add_portal(reg, "127.0.0.1", 3260, 1), 0);
	assert_int_equal(iscsi_registry_add_portal(reg, "::1", 3260, 1), 0);
	assert_string_equal(send_targets(reg, &sp, "All"),
	                    "TargetName=" DISK2 "\nTargetAddress=127.0.0.1:3260,1\nTargetAddress=[::1]:3260,1");

	strcpy(sp.initiator_name, HOST1);
	assert_string_equal(send_targets(reg, &sp, "All"),
	                    "TargetName=" DISK1 "\nTargetAddress=127.0.0.1:3260,1\nTargetAddress=[::1]:3260,1\n"
	                    "TargetName=" DISK2 "\nTargetAddress=127.0.0.1:3260,1\nTargetAddress=[::1]:3260,1");
	assert_string_equal(send_targets(reg, &sp, DISK1),
	                    "TargetName=" DISK1 "\nTargetAddress=127.0.0.1:3260,1\nTargetAddress=[::1]:3260,1");
	assert_string_equal(send_targets(reg, &sp, "iqn.2026-11.org.twinsan:none"), "");
	assert_string_equal(send_targets(reg, &sp, "Alle"), "SendTargets=Reject");
	assert_string_equal(send_targets(reg, &sp, "A"), "SendTargets=Reject");
	assert_string_equal(send_targets(reg, &sp, "aLL"), "SendTargets=Reject");
	assert_string_equal(send_targets(reg, &sp, ""), "SendTargets=Reject");

	/* A normal session: the empty value names the session's own target; ACLs still apply. */
	sp.type = ISCSI_SESSION_NORMAL;
	strcpy(sp.target_name, DISK2);
	assert_string_equal(send_targets(reg, &sp, ""),
	                    "TargetName=" DISK2 "\nTargetAddress=127.0.0.1:3260,1\nTargetAddress=[::1]:3260,1");
	strcpy(sp.initiator_name, HOST2);
	assert_string_equal(send_targets(reg, &sp, DISK1), "");
	iscsi_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(registry),
		cmocka_unit_test(discovery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
