/* The login state machine and the key negotiation behind it, driven PDU by PDU the way
 * initiators do: operational negotiation and its combining rules, stage and header
 * errors, target lookup and ACLs, text continuation, and target offers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "iscsi/login.h"
#include "iscsi/login_keys.h"
#include "iscsi/text.h"

#define TARGET "iqn.2026-11.org.twinsan:disk1"
#define INITIATOR "iqn.2026-11.org.example:host1"

#define T ISCSI_FLAG_LOGIN_TRANSIT
#define C ISCSI_FLAG_LOGIN_CONTINUE
#define SEC_TO_OP (T | ISCSI_STAGE_SECURITY << 2 | ISCSI_STAGE_OPERATIONAL)
#define SEC_TO_FFP (T | ISCSI_STAGE_SECURITY << 2 | ISCSI_STAGE_FULL_FEATURE)
#define OP_TO_FFP (T | ISCSI_STAGE_OPERATIONAL << 2 | ISCSI_STAGE_FULL_FEATURE)
#define SEC_STAY (ISCSI_STAGE_SECURITY << 2)
#define OP_STAY (ISCSI_STAGE_OPERATIONAL << 2)

struct fixture {
	struct iscsi_registry *reg;
	struct iscsi_target *target;
	struct iscsi_login_env env;
	struct iscsi_login *login;
	struct iscsi_login_response rsp;
	struct iscsi_text_list answer;
	int binds;
	int bind_status;
};

static int fake_bind(void *ctx, const struct iscsi_session_params *sp, const struct iscsi_conn_params *cp,
                uint16_t *tsih_out)
{
	struct fixture *f = ctx;

	f->binds++;
	*tsih_out = 7;
	return f->bind_status;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(iscsi_registry_new(&f->reg), 0);
	f->target = iscsi_target_add(f->reg, TARGET, "first disk");
	assert_non_null(f->target);
	f->env.registry = f->reg;
	f->env.limits = (struct iscsi_login_limits){
		.max_recv_data_segment_length = 65536,
		.max_burst_length = 1048576,
		.first_burst_length = 65536,
		.max_outstanding_r2t = 8,
		.max_connections = 1,
	};
	f->env.tpgt = 1;
	f->env.binder = (struct iscsi_session_binder){fake_bind, f};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	iscsi_text_list_free(&f->answer);
	iscsi_login_free(f->login);
	iscsi_registry_free(f->reg);
	free(f);
	return 0;
}

static void start(struct fixture *f)
{
	iscsi_login_free(f->login);
	f->login = iscsi_login_new(&f->env);
	assert_non_null(f->login);
}

/* Sends one Login Request whose text is given with '\n' between pairs. */
static enum iscsi_login_outcome send_flags(struct fixture *f, uint8_t flags, uint16_t tsih, const char *text)
{
	struct iscsi_pdu req;
	size_t len = strlen(text);
	uint8_t *data = malloc(len + 1);
	enum iscsi_login_outcome out;

	memset(&req, 0, sizeof(req));
	assert_non_null(data);
	for (size_t i = 0; i <= len; i++)
		data[i] = text[i] == '\n' ? '\0' : (uint8_t)text[i];
	req.bhs[0] = ISCSI_OP_LOGIN_REQ | ISCSI_BHS_IMMEDIATE;
	req.bhs[1] = flags;
	memcpy(req.bhs + BHS_LUN, "\x80\x01\x02\x03\x04\x05", 6);
	put_be16(req.bhs + BHS_LUN + 6, tsih);
	put_be32(req.bhs + BHS_ITT, 0x1234);
	req.data = data;
	req.data_len = len ? (uint32_t)len + 1 : 0;
	pdu_set_data_seg_len(req.bhs, req.data_len);
	out = iscsi_login_step(f->login, &req, 100, 5, 20, &f->rsp);
	free(data);
	assert_int_equal(f->rsp.bhs[0], ISCSI_OP_LOGIN_RSP);
	assert_int_equal(get_be32(f->rsp.bhs + BHS_ITT), 0x1234);
	assert_int_equal(get_be32(f->rsp.bhs + BHS_CMDSN), 100);
	assert_int_equal(pdu_data_seg_len(f->rsp.bhs), f->rsp.data_len);
	iscsi_text_list_free(&f->answer);
	assert_int_equal(iscsi_text_parse(f->rsp.data, f->rsp.data_len, &f->answer), ISCSI_TEXT_OK);
	return out;
}

static enum iscsi_login_outcome send_text(struct fixture *f, uint8_t flags, const char *text)
{
	return send_flags(f, flags, 0, text);
}

static uint16_t status(const struct fixture *f) { return (uint16_t)(f->rsp.bhs[36] << 8 | f->rsp.bhs[37]); }

static void assert_answer(const struct fixture *f, const char *key, const char *value)
{
	const char *got = iscsi_text_find(&f->answer, key);

	if (value == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, value);
}

#define NAMES "InitiatorName=" INITIATOR "\nTargetName=" TARGET "\nSessionType=Normal"

/* What libiscsi sends in its only operational request. */
static void login_like_libiscsi(void **state)
{
	struct fixture *f = *state;
	const struct iscsi_session_params *sp;
	const struct iscsi_conn_params *cp;

	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP,
	                      NAMES "\nInitiatorAlias=tester\nHeaderDigest=None,CRC32C\nDataDigest=None\n"
	                            "DefaultTime2Wait=2\nDefaultTime2Retain=0\nIFMarker=No\nOFMarker=No\n"
	                            "ErrorRecoveryLevel=0\nInitialR2T=No\nImmediateData=Yes\n"
	                            "MaxBurstLength=262144\nFirstBurstLength=262144\n"
	                            "MaxRecvDataSegmentLength=262144\nDataPDUInOrder=Yes\n"
	                            "DataSequenceInOrder=Yes\nMaxOutstandingR2T=1\nMaxConnections=1"),
	                 ISCSI_LOGIN_FULL_FEATURE);
	assert_int_equal(status(f), 0);
	assert_int_equal(f->rsp.bhs[1], OP_TO_FFP);
	assert_int_equal(get_be16(f->rsp.bhs + BHS_LUN + 6), 7);
	assert_int_equal(f->binds, 1);
	assert_answer(f, "TargetPortalGroupTag", "1");
	assert_answer(f, "TargetAlias", "first disk");
	assert_answer(f, "HeaderDigest", "None");
	assert_answer(f, "DataDigest", "None");
	assert_answer(f, "DefaultTime2Wait", "2");
	assert_answer(f, "DefaultTime2Retain", "0");
	assert_answer(f, "IFMarker", "Reject");
	assert_answer(f, "OFMarker", "Reject");
	assert_answer(f, "InitialR2T", "No");
	assert_answer(f, "ImmediateData", "Yes");
	assert_answer(f, "MaxBurstLength", "262144");
	assert_answer(f, "FirstBurstLength", "65536");
	assert_answer(f, "MaxOutstandingR2T", "1");
	assert_answer(f, "MaxRecvDataSegmentLength", "65536");
	assert_answer(f, "InitiatorName", NULL);
	assert_answer(f, "MaxConnections", "1");

	sp = iscsi_login_session_params(f->login);
	cp = iscsi_login_conn_params(f->login);
	assert_int_equal(sp->type, ISCSI_SESSION_NORMAL);
	assert_string_equal(sp->initiator_name, INITIATOR);
	assert_string_equal(sp->initiator_alias, "tester");
	assert_string_equal(sp->target_name, TARGET);
	assert_memory_equal(sp->isid, "\x80\x01\x02\x03\x04\x05", 6);
	assert_int_equal(sp->tsih, 7);
	assert_int_equal(sp->tpgt, 1);
	assert_false(sp->initial_r2t);
	assert_true(sp->immediate_data);
	assert_int_equal(sp->max_burst_length, 262144);
	assert_int_equal(sp->first_burst_length, 65536);
	assert_int_equal(sp->default_time2retain, 0);
	assert_int_equal(sp->max_outstanding_r2t, 1);
	assert_int_equal(sp->error_recovery_level, 0);
	assert_false(cp->header_digest);
	assert_int_equal(cp->max_recv_data_segment_length, 65536);
	assert_int_equal(cp->max_send_data_segment_length, 262144);
	assert_ptr_equal(iscsi_login_target(f->login), f->target);
}

/* Nothing but names: the RFC defaults, and our declaration. */
static void defaults(void **state)
{
	struct fixture *f = *state;
	const struct iscsi_session_params *sp;
	const struct iscsi_conn_params *cp;

	start(f);
	assert_int_equal(send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=None"), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.bhs[1], SEC_TO_OP);
	assert_answer(f, "AuthMethod", "None");
	assert_int_equal(send_text(f, OP_TO_FFP, ""), ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "MaxRecvDataSegmentLength", "65536");
	sp = iscsi_login_session_params(f->login);
	cp = iscsi_login_conn_params(f->login);
	assert_int_equal(sp->max_connections, 1);
	assert_true(sp->initial_r2t);
	assert_true(sp->immediate_data);
	assert_int_equal(sp->max_burst_length, 262144);
	assert_int_equal(sp->first_burst_length, 65536);
	assert_int_equal(sp->default_time2wait, 2);
	assert_int_equal(sp->default_time2retain, 20);
	assert_int_equal(sp->max_outstanding_r2t, 1);
	assert_true(sp->data_pdu_in_order);
	assert_true(sp->data_sequence_in_order);
	assert_int_equal(sp->error_recovery_level, 0);
	assert_int_equal(sp->protocol_level, 0);
	assert_false(cp->header_digest);
	assert_false(cp->data_digest);
	assert_int_equal(cp->max_send_data_segment_length, 8192);
}

/* AND, OR, min, max and list choice, each from both sides. */
static void combining_rules(void **state)
{
	struct fixture *f = *state;
	const struct iscsi_session_params *sp;
	const struct iscsi_conn_params *cp;

	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP,
	                      NAMES "\nInitialR2T=Yes\nImmediateData=No\nDataPDUInOrder=No\n"
	                            "DataSequenceInOrder=No\nMaxBurstLength=4194304\nFirstBurstLength=4096\n"
	                            "DefaultTime2Wait=7\nDefaultTime2Retain=3600\nMaxOutstandingR2T=64\n"
	                            "ErrorRecoveryLevel=2\nHeaderDigest=CRC32C,None\nDataDigest=Foo,CRC32C\n"
	                            "iSCSIProtocolLevel=2\nTaskReporting=FastAbort,RFC3720\nMaxConnections=4"),
	                 ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "InitialR2T", "Yes");       /* OR */
	assert_answer(f, "ImmediateData", "No");     /* AND */
	assert_answer(f, "DataPDUInOrder", "Yes");   /* OR with our Yes */
	assert_answer(f, "DataSequenceInOrder", "Yes");
	assert_answer(f, "MaxBurstLength", "1048576"); /* min with our limit */
	assert_answer(f, "FirstBurstLength", "4096");
	assert_answer(f, "DefaultTime2Wait", "7");   /* max */
	assert_answer(f, "DefaultTime2Retain", "20"); /* min */
	assert_answer(f, "MaxOutstandingR2T", "8");
	assert_answer(f, "ErrorRecoveryLevel", "0");
	assert_answer(f, "HeaderDigest", "CRC32C");  /* the initiator's first acceptable choice */
	assert_answer(f, "DataDigest", "CRC32C");
	assert_answer(f, "iSCSIProtocolLevel", "1");
	assert_answer(f, "TaskReporting", "RFC3720");
	assert_answer(f, "MaxConnections", "1");
	sp = iscsi_login_session_params(f->login);
	cp = iscsi_login_conn_params(f->login);
	assert_true(sp->initial_r2t);
	assert_false(sp->immediate_data);
	assert_int_equal(sp->max_burst_length, 1048576);
	assert_int_equal(sp->first_burst_length, 4096);
	assert_int_equal(sp->default_time2wait, 7);
	assert_int_equal(sp->max_outstanding_r2t, 8);
	assert_int_equal(sp->protocol_level, 1);
	assert_true(cp->header_digest);
	assert_true(cp->data_digest);
}

/* Out-of-range or malformed values are rejected; unknown keys not understood. */
static void reject_and_not_understood(void **state)
{
	struct fixture *f = *state;
	const struct iscsi_session_params *sp;

	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP,
	                      NAMES "\nMaxBurstLength=100\nFirstBurstLength=99999999\nErrorRecoveryLevel=3\n"
	                            "InitialR2T=Maybe\nMaxOutstandingR2T=0x10\nDefaultTime2Wait=12abc\n"
	                            "HeaderDigest=MD5\nX-com.example.Thing=1\nX#Foo=2\nNoSuchKey=3\n"
	                            "IFMarkInt=2048\nSendTargets=All"),
	                 ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "MaxBurstLength", "Reject");
	assert_answer(f, "FirstBurstLength", "Reject");
	assert_answer(f, "ErrorRecoveryLevel", "Reject");
	assert_answer(f, "InitialR2T", "Reject");
	assert_answer(f, "MaxOutstandingR2T", "8"); /* 0x10 is a valid hex number */
	assert_answer(f, "DefaultTime2Wait", "Reject");
	assert_answer(f, "HeaderDigest", "Reject");
	assert_answer(f, "X-com.example.Thing", "NotUnderstood");
	assert_answer(f, "X#Foo", "NotUnderstood");
	assert_answer(f, "NoSuchKey", "NotUnderstood");
	assert_answer(f, "IFMarkInt", "Reject");
	assert_answer(f, "SendTargets", "Reject");
	sp = iscsi_login_session_params(f->login);
	assert_int_equal(sp->max_burst_length, 262144);
	assert_true(sp->initial_r2t);
}

/* Discovery sessions: no target needed; session-only keys are irrelevant. */
static void discovery_irrelevant(void **state)
{
	struct fixture *f = *state;

	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP,
	                      "InitiatorName=" INITIATOR "\nSessionType=Discovery\nMaxBurstLength=4096\n"
	                      "InitialR2T=No\nHeaderDigest=None\nDefaultTime2Wait=0"),
	                 ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "MaxBurstLength", "Irrelevant");
	assert_answer(f, "InitialR2T", "Irrelevant");
	assert_answer(f, "HeaderDigest", "None");
	assert_answer(f, "DefaultTime2Wait", "2");
	assert_answer(f, "TargetPortalGroupTag", NULL);
	assert_int_equal(iscsi_login_session_params(f->login)->type, ISCSI_SESSION_DISCOVERY);
	assert_null(iscsi_login_target(f->login));
}

static void expect_failure(struct fixture *f, uint8_t flags, const char *text, uint16_t want)
{
	start(f);
	assert_int_equal(send_text(f, flags, text), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), want);
	assert_int_equal(f->rsp.data_len, 0);
	assert_int_equal(f->rsp.bhs[1] & T, 0);
}

static void identity_errors(void **state)
{
	struct fixture *f = *state;

	expect_failure(f, OP_TO_FFP, "TargetName=" TARGET, ISCSI_LOGIN_MISSING_PARAMETER);
	expect_failure(f, OP_TO_FFP, "InitiatorName=" INITIATOR, ISCSI_LOGIN_MISSING_PARAMETER);
	expect_failure(f, OP_TO_FFP, "InitiatorName=" INITIATOR "\nTargetName=iqn.nope",
	               ISCSI_LOGIN_NOT_FOUND);
	expect_failure(f, OP_TO_FFP, NAMES "x", ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED);
	expect_failure(f, OP_TO_FFP, "InitiatorName=\nTargetName=" TARGET, ISCSI_LOGIN_INITIATOR_ERROR);

	assert_int_equal(iscsi_target_allow_initiator(f->target, "iqn.2026-11.org.example:other"), 0);
	expect_failure(f, OP_TO_FFP, NAMES, ISCSI_LOGIN_AUTHZ_FAILED);
	assert_int_equal(iscsi_target_allow_initiator(f->target, INITIATOR), 0);
	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP, NAMES), ISCSI_LOGIN_FULL_FEATURE);
}

/* Header and stage errors. */
static void stage_errors(void **state)
{
	struct fixture *f = *state;
	struct iscsi_pdu req;

	memset(&req, 0, sizeof(req));
	expect_failure(f, T | C | ISCSI_STAGE_OPERATIONAL << 2 | 3, NAMES, ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, T | ISCSI_STAGE_OPERATIONAL << 2 | 1, NAMES, ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, T | ISCSI_STAGE_SECURITY << 2 | 2, NAMES, ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, T | 3 << 2 | 3, NAMES, ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nAuthMethod=None", ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nCHAP_A=5", ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nbad key=1", ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nNoEquals", ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nTargetAlias=mine", ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nMaxRecvDataSegmentLength=1", ISCSI_LOGIN_INITIATOR_ERROR);
	expect_failure(f, OP_TO_FFP, NAMES "\nInitialR2T=No\nInitialR2T=Yes", ISCSI_LOGIN_INITIATOR_ERROR);

	/* Renegotiation in a later request. */
	start(f);
	assert_int_equal(send_text(f, OP_STAY, NAMES "\nMaxBurstLength=65536"), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(send_text(f, OP_TO_FFP, "MaxBurstLength=8192"), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_INITIATOR_ERROR);

	/* Identity keys may be repeated unchanged (libiscsi does), not changed. */
	start(f);
	assert_int_equal(send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=None"), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(send_text(f, OP_TO_FFP, NAMES), ISCSI_LOGIN_FULL_FEATURE);
	start(f);
	assert_int_equal(send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=None"), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(send_text(f, OP_TO_FFP, "SessionType=Discovery"), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_INITIATOR_ERROR);

	/* A login that never ends. */
	start(f);
	for (int i = 0; i < 64; i++)
		assert_int_equal(send_text(f, OP_STAY, i ? "" : NAMES), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(send_text(f, OP_STAY, ""), ISCSI_LOGIN_FAILED);

	/* Going back to the security stage. */
	start(f);
	assert_int_equal(send_text(f, SEC_TO_OP, NAMES), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(send_text(f, SEC_STAY, ""), ISCSI_LOGIN_FAILED);

	/* ISID changing within a login. */
	start(f);
	assert_int_equal(send_text(f, OP_STAY, NAMES), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(send_flags(f, OP_TO_FFP, 5, ""), ISCSI_LOGIN_FAILED);

	/* Unsupported version, and a PDU that is no Login Request. */
	start(f);
	req.bhs[0] = ISCSI_OP_LOGIN_REQ;
	req.bhs[1] = OP_TO_FFP;
	req.bhs[2] = 2;
	req.bhs[3] = 1;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_UNSUPPORTED_VERSION);
	start(f);
	req.bhs[0] = ISCSI_OP_SCSI_CMD;
	req.bhs[3] = 0;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_INVALID_DURING_LOGIN);
	/* A failed login stays failed. */
	req.bhs[0] = ISCSI_OP_LOGIN_REQ;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FAILED);

	/* The session layer refuses. */
	start(f);
	f->bind_status = ISCSI_LOGIN_TOO_MANY_CONNECTIONS;
	assert_int_equal(send_text(f, OP_TO_FFP, NAMES), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_TOO_MANY_CONNECTIONS);
	f->bind_status = 0;
}

/* Text continued across requests with the C bit. */
static void continuation(void **state)
{
	struct fixture *f = *state;
	struct iscsi_pdu req;
	static const char part1[] = "InitiatorName=" INITIATOR "\0TargetName=iqn.2026-11.org";
	static const char part2[] = ".twinsan:disk1\0MaxBurstLength=65536";

	memset(&req, 0, sizeof(req));
	start(f);
	req.bhs[0] = ISCSI_OP_LOGIN_REQ;
	req.bhs[1] = C | OP_STAY;
	req.data = (const uint8_t *)part1;
	req.data_len = sizeof(part1) - 1;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.data_len, 0);
	assert_int_equal(f->rsp.bhs[1], OP_STAY);
	req.bhs[1] = OP_TO_FFP;
	req.data = (const uint8_t *)part2;
	req.data_len = sizeof(part2);
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FULL_FEATURE);
	assert_string_equal(iscsi_login_session_params(f->login)->target_name, TARGET);
	assert_int_equal(iscsi_login_session_params(f->login)->max_burst_length, 65536);
}

/* A reply longer than one PDU goes out in pieces, each fetched by an empty request. */
static void continued_response(void **state)
{
	struct fixture *f = *state;
	struct iscsi_text_buf text, whole;
	struct iscsi_pdu req;
	struct iscsi_text_list list;

	iscsi_text_buf_init(&whole);
	iscsi_text_buf_init(&text);
	iscsi_text_add(&text, "InitiatorName", INITIATOR);
	iscsi_text_add(&text, "TargetName", TARGET);
	for (int i = 0; i < 700; i++) {
		char key[16];

		snprintf(key, sizeof(key), "X-k%d", i);
		iscsi_text_add(&text, key, "v");
	}
	start(f);
	memset(&req, 0, sizeof(req));
	req.bhs[0] = ISCSI_OP_LOGIN_REQ;
	req.bhs[1] = OP_TO_FFP;
	req.data = text.data;
	req.data_len = (uint32_t)text.len;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.bhs[1], OP_STAY | C);
	assert_int_equal(f->rsp.data_len, 8192);
	iscsi_text_append(&whole, f->rsp.data, f->rsp.data_len);
	req.data = NULL;
	req.data_len = 0;
	/* An empty request without T gets the last piece without the transition... */
	req.bhs[1] = OP_STAY;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.bhs[1], OP_STAY);
	iscsi_text_append(&whole, f->rsp.data, f->rsp.data_len);
	/* ...which the next request then asks for again. */
	req.bhs[1] = OP_TO_FFP;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FULL_FEATURE);
	assert_int_equal(f->rsp.bhs[1], OP_TO_FFP);
	assert_int_equal(f->rsp.data_len, 0);
	iscsi_text_append(&whole, f->rsp.data, f->rsp.data_len);
	assert_int_equal(iscsi_text_parse(whole.data, whole.len, &list), ISCSI_TEXT_OK);
	assert_string_equal(iscsi_text_find(&list, "X-k699"), "NotUnderstood");
	assert_string_equal(iscsi_text_find(&list, "TargetPortalGroupTag"), "1");
	iscsi_text_list_free(&list);

	/* An empty request with T gets the last piece with the transition. */
	start(f);
	req.data = text.data;
	req.data_len = (uint32_t)text.len;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_CONTINUE);
	req.data = NULL;
	req.data_len = 0;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FULL_FEATURE);
	assert_int_equal(f->rsp.bhs[1], OP_TO_FFP);
	assert_true(f->rsp.data_len > 0);

	/* Text while a reply is being continued is an error. */
	start(f);
	req.data = text.data;
	req.data_len = (uint32_t)text.len;
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(iscsi_login_step(f->login, &req, 0, 0, 0, &f->rsp), ISCSI_LOGIN_FAILED);
	iscsi_text_buf_free(&text);
	iscsi_text_buf_free(&whole);
}

/* Limits below the RFC defaults are offered when the initiator stays silent. */
static void target_offers(void **state)
{
	struct fixture *f = *state;

	f->env.limits.max_burst_length = 65536;
	f->env.limits.first_burst_length = 16384;
	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP, NAMES "\nFirstBurstLength=8192"), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.bhs[1] & T, 0);
	assert_answer(f, "MaxBurstLength", "65536");
	assert_answer(f, "FirstBurstLength", "8192");
	assert_answer(f, "MaxRecvDataSegmentLength", "65536");
	assert_int_equal(send_text(f, OP_TO_FFP, "MaxBurstLength=32768"), ISCSI_LOGIN_FULL_FEATURE);
	assert_int_equal(f->rsp.data_len, 0);
	assert_int_equal(iscsi_login_session_params(f->login)->max_burst_length, 32768);
	assert_int_equal(iscsi_login_session_params(f->login)->first_burst_length, 8192);
}

static const struct iscsi_target_auth chap_auth = {
	.chap_required = true,
	.initiator = {"alice", "alice-secret-12", 15},
	.mutual = true,
	.target = {"target1", "target-secret-1", 15},
};

/* The initiator's CHAP_R (MD5) for the target's last CHAP_I/CHAP_C, with secret. */
static void chap_response(const struct fixture *f, const char *secret, char *out)
{
	uint8_t msg[1 + 64 + 64], md[EVP_MAX_MD_SIZE];
	uint64_t id;
	unsigned n = 0;
	int clen;

	assert_string_equal(iscsi_text_find(&f->answer, "CHAP_A"), "5");
	assert_int_equal(iscsi_text_number(iscsi_text_find(&f->answer, "CHAP_I"), 255, &id), 0);
	msg[0] = (uint8_t)id;
	memcpy(msg + 1, secret, strlen(secret));
	clen = iscsi_text_binary(iscsi_text_find(&f->answer, "CHAP_C"), msg + 1 + strlen(secret), 64);
	assert_int_equal(clen, 16);
	assert_int_equal(EVP_Digest(msg, 1 + strlen(secret) + (size_t)clen, md, &n, EVP_md5(), NULL), 1);
	out += sprintf(out, "CHAP_N=alice\nCHAP_R=0x");
	for (unsigned i = 0; i < n; i++)
		out += sprintf(out, "%02x", md[i]);
}

/* libiscsi's sequence: AuthMethod (T=1), CHAP_A (T=0), CHAP_N/R (T=1), then operational. */
static void chap_login(void **state)
{
	struct fixture *f = *state;
	char text[512];

	iscsi_target_set_auth(f->target, &chap_auth);
	start(f);
	assert_int_equal(send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=CHAP,None"), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.bhs[1], SEC_STAY);
	assert_answer(f, "AuthMethod", "CHAP");
	assert_int_equal(send_text(f, SEC_STAY, "CHAP_A=5"), ISCSI_LOGIN_CONTINUE);
	chap_response(f, "alice-secret-12", text);
	strcat(text, "\nCHAP_I=9\nCHAP_C=0x0123456789abcdef0123456789abcdef");
	assert_int_equal(send_text(f, SEC_TO_OP, text), ISCSI_LOGIN_CONTINUE);
	assert_int_equal(f->rsp.bhs[1], SEC_TO_OP);
	assert_answer(f, "CHAP_N", "target1");
	assert_non_null(iscsi_text_find(&f->answer, "CHAP_R"));
	assert_int_equal(send_text(f, OP_TO_FFP, "MaxBurstLength=65536"), ISCSI_LOGIN_FULL_FEATURE);

	/* The wrong secret. */
	start(f);
	send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=CHAP");
	send_text(f, SEC_STAY, "CHAP_A=5");
	chap_response(f, "alice-secret-13", text);
	assert_int_equal(send_text(f, SEC_TO_OP, text), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_AUTH_FAILED);

	/* No acceptable algorithm; response keys before the challenge. */
	start(f);
	send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=CHAP");
	assert_int_equal(send_text(f, SEC_STAY, "CHAP_A=56"), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_AUTH_FAILED);
	start(f);
	send_text(f, SEC_TO_OP, NAMES "\nAuthMethod=CHAP");
	assert_int_equal(send_text(f, SEC_STAY, "CHAP_N=alice\nCHAP_R=0x00"), ISCSI_LOGIN_FAILED);
	assert_int_equal(status(f), ISCSI_LOGIN_INITIATOR_ERROR);
}

/* A target requiring CHAP admits no one without it. */
static void chap_required(void **state)
{
	struct fixture *f = *state;

	iscsi_target_set_auth(f->target, &chap_auth);
	expect_failure(f, SEC_TO_OP, NAMES "\nAuthMethod=None", ISCSI_LOGIN_AUTH_FAILED);
	expect_failure(f, SEC_TO_OP, NAMES, ISCSI_LOGIN_AUTH_FAILED);
	expect_failure(f, OP_TO_FFP, NAMES, ISCSI_LOGIN_AUTH_FAILED);
	expect_failure(f, SEC_TO_FFP, NAMES "\nAuthMethod=KRB5,SRP", ISCSI_LOGIN_AUTH_FAILED);

	/* Without credentials, CHAP cannot be chosen; None can when CHAP is optional. */
	iscsi_target_set_auth(f->target, &(struct iscsi_target_auth){0});
	expect_failure(f, SEC_TO_OP, NAMES "\nAuthMethod=CHAP", ISCSI_LOGIN_AUTH_FAILED);
	start(f);
	assert_int_equal(send_text(f, SEC_TO_FFP, NAMES "\nAuthMethod=CHAP,None"), ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "AuthMethod", "None");
}

/* Limits outside the RFC ranges are brought inside them. */
static void limits_clamped(void **state)
{
	struct fixture *f = *state;

	f->env.limits.max_recv_data_segment_length = 100;
	f->env.limits.max_burst_length = 0;
	f->env.limits.max_outstanding_r2t = 100000;
	start(f);
	assert_int_equal(send_text(f, OP_TO_FFP, NAMES "\nMaxBurstLength=65536\nFirstBurstLength=512\n"
	                                         "MaxOutstandingR2T=65535"),
	                 ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "MaxBurstLength", "512");
	assert_answer(f, "MaxOutstandingR2T", "65535");
	assert_answer(f, "MaxRecvDataSegmentLength", "512");
	assert_int_equal(iscsi_login_conn_params(f->login)->max_recv_data_segment_length, 512);
}

/* A non-leading connection: session-wide keys are irrelevant there. */
static void second_connection(void **state)
{
	struct fixture *f = *state;

	start(f);
	assert_int_equal(send_flags(f, OP_TO_FFP, 7, NAMES "\nMaxBurstLength=4096\nHeaderDigest=CRC32C"),
	                 ISCSI_LOGIN_FULL_FEATURE);
	assert_answer(f, "MaxBurstLength", "Irrelevant");
	assert_answer(f, "HeaderDigest", "CRC32C");
}

/* Keys of full-feature Text requests. */
static void text_keys(void **state)
{
	struct iscsi_session_params sp = {.type = ISCSI_SESSION_NORMAL};
	struct iscsi_conn_params cp = {.max_send_data_segment_length = 8192};
	struct iscsi_text_buf reply;
	static const char want[] = "MaxBurstLength=Reject\0X-Foo=NotUnderstood\0CHAP_A=Reject\0"
	                           "MaxRecvDataSegmentLength=Reject\0";

	iscsi_text_buf_init(&reply);
	iscsi_neg_text_key(&sp, &cp, "MaxRecvDataSegmentLength", "65536", &reply);
	assert_int_equal(cp.max_send_data_segment_length, 65536);
	iscsi_neg_text_key(&sp, &cp, "InitiatorAlias", "renamed", &reply);
	assert_int_equal(reply.len, 0);
	iscsi_neg_text_key(&sp, &cp, "MaxBurstLength", "4096", &reply);
	iscsi_neg_text_key(&sp, &cp, "X-Foo", "1", &reply);
	iscsi_neg_text_key(&sp, &cp, "CHAP_A", "5", &reply);
	iscsi_neg_text_key(&sp, &cp, "MaxRecvDataSegmentLength", "1", &reply);
	assert_int_equal(cp.max_send_data_segment_length, 65536);
	assert_int_equal(reply.len, sizeof(want) - 1);
	assert_memory_equal(reply.data, want, reply.len);
	iscsi_text_buf_free(&reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(login_like_libiscsi, setup, teardown),
		cmocka_unit_test_setup_teardown(defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(combining_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(reject_and_not_understood, setup, teardown),
		cmocka_unit_test_setup_teardown(discovery_irrelevant, setup, teardown),
		cmocka_unit_test_setup_teardown(identity_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(stage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(continuation, setup, teardown),
		cmocka_unit_test_setup_teardown(continued_response, setup, teardown),
		cmocka_unit_test_setup_teardown(target_offers, setup, teardown),
		cmocka_unit_test_setup_teardown(second_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(limits_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(chap_login, setup, teardown),
		cmocka_unit_test_setup_teardown(chap_required, setup, teardown),
		cmocka_unit_test(text_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
