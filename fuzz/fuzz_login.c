/* Arbitrary bytes as a sequence of Login Requests to one login object.  The first byte
 * picks the target's authentication (none, CHAP, mutual CHAP) and limits; then each
 * request is [flags][header tweaks][length:2][text].  Nothing may crash or leak, every
 * response must be a well-formed Login Response whose text parses without duplicates,
 * and a login that reaches full feature phase must carry consistent parameters. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "iscsi/login.h"
#include "iscsi/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TWEAK_OPCODE 0x01   /* not a Login Request */
#define TWEAK_VERSION 0x02  /* VersionMin 1 */
#define TWEAK_TSIH 0x04     /* TSIH 1: a connection joining a session */
#define TWEAK_ISID 0x08     /* another ISID */

static int admit(void *ctx, const struct iscsi_session_params *sp, const struct iscsi_conn_params *cp,
                uint16_t *tsih_out)
{
	*tsih_out = 1;
	return 0;
}

static void check_full_feature(const struct iscsi_login *login)
{
	const struct iscsi_session_params *sp = iscsi_login_session_params(login);
	const struct iscsi_conn_params *cp = iscsi_login_conn_params(login);

	if (sp->initiator_name[0] == '\0' || sp->first_burst_length > sp->max_burst_length ||
	    sp->max_burst_length < 512 || cp->max_send_data_segment_length < 512 ||
	    sp->error_recovery_level > 2 || sp->max_outstanding_r2t == 0 ||
	    (sp->type == ISCSI_SESSION_NORMAL && iscsi_login_target(login) == NULL))
		__builtin_trap();
}

/* Checks one response; its text, gathered over continued responses, must parse. */
static void check_response(const struct iscsi_login_response *rsp, enum iscsi_login_outcome out,
                           struct iscsi_text_buf *answer)
{
	struct iscsi_text_list list;
	bool more = rsp->bhs[1] & ISCSI_FLAG_LOGIN_CONTINUE;

	if (rsp->bhs[0] != ISCSI_OP_LOGIN_RSP || pdu_data_seg_len(rsp->bhs) != rsp->data_len ||
	    rsp->data_len > 8192 || (out == ISCSI_LOGIN_FAILED && (rsp->data_len != 0 || rsp->bhs[36] == 0)) ||
	    (out != ISCSI_LOGIN_FAILED && rsp->bhs[36] != 0) ||
	    (more && (rsp->bhs[1] & ISCSI_FLAG_LOGIN_TRANSIT)))
		__builtin_trap();
	iscsi_text_append(answer, rsp->data, rsp->data_len);
	if (more)
		return;
	if (out == ISCSI_LOGIN_FAILED) { /* cuts short any continued text */
		iscsi_text_buf_reset(answer);
		return;
	}
	if (iscsi_text_parse(answer->data, answer->len, &list) != ISCSI_TEXT_OK)
		__builtin_trap();
	iscsi_text_list_free(&list);
	iscsi_text_buf_reset(answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct iscsi_target_auth auths[] = {
		{0},
		{.chap_required = true, .initiator = {"alice", "alice-secret-12", 15}},
		{.initiator = {"alice", "alice-secret-12", 15}, .mutual = true,
		 .target = {"target1", "target-secret-1", 15}},
	};
	struct iscsi_registry *reg;
	struct iscsi_target *t;
	struct iscsi_login_env env = {0};
	struct iscsi_login *login;
	struct iscsi_login_response rsp;
	enum iscsi_login_outcome out = ISCSI_LOGIN_CONTINUE;
	struct iscsi_text_buf answer;

	if (size < 1)
		return 0;
	log_set_level(LOG_LEVEL_ERR);
	if (iscsi_registry_new(&reg) != 0)
		return 0;
	t = iscsi_target_add(reg, "iqn.2026-11.org.twinsan:disk1", "alias");
	if (t == NULL)
		__builtin_trap();
	iscsi_target_set_auth(t, &auths[data[0] % 3]);
	if (data[0] & 0x10)
		iscsi_target_allow_initiator(t, "iqn.2026-11.org.example:host1");
	env.registry = reg;
	env.limits = (struct iscsi_login_limits){
		.max_recv_data_segment_length = 65536,
		.max_burst_length = data[0] & 0x20 ? 4096 : 1048576,
		.first_burst_length = data[0] & 0x40 ? 512 : 65536,
		.max_outstanding_r2t = 4,
		.max_connections = 2,
	};
	env.tpgt = 1;
	env.binder = (struct iscsi_session_binder){admit, NULL};
	login = iscsi_login_new(&env);
	if (login == NULL)
		__builtin_trap();
	data++;
	size--;
	iscsi_text_buf_init(&answer);

	while (size >= 4 && out == ISCSI_LOGIN_CONTINUE) {
		struct iscsi_pdu req = {0};
		uint8_t tweaks = data[1];
		size_t len = (size_t)(data[2] << 8 | data[3]);

		req.bhs[0] = tweaks & TWEAK_OPCODE ? ISCSI_OP_TEXT_REQ : ISCSI_OP_LOGIN_REQ;
		req.bhs[1] = data[0];
		req.bhs[3] = tweaks & TWEAK_VERSION ? 1 : 0;
		req.bhs[BHS_LUN] = tweaks & TWEAK_ISID ? 0x40 : 0x80;
		req.bhs[BHS_LUN + 7] = tweaks & TWEAK_TSIH ? 1 : 0;
		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		req.data = data;
		req.data_len = (uint32_t)len;
		pdu_set_data_seg_len(req.bhs, req.data_len);
		out = iscsi_login_step(login, &req, 1, 1, 1, &rsp);
		check_response(&rsp, out, &answer);
		data += len;
		size -= len;
	}
	if (out == ISCSI_LOGIN_FULL_FEATURE)
		check_full_feature(login);
	iscsi_text_buf_free(&answer);
	iscsi_login_free(login);
	iscsi_registry_free(reg);
	return 0;
}
