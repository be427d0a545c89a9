#include "iscsi/login.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "iscsi/chap.h"
#include "iscsi/login_keys.h"
#include "iscsi/text.h"

/* Login text is small; anything beyond this is abuse, not negotiation. */
#define LOGIN_TEXT_MAX 65536
/* The data segment an initiator accepts before it declares MaxRecvDataSegmentLength. */
#define LOGIN_RESPONSE_MAX 8192
/* An honest login takes a handful of requests; empty continuations must not go on forever. */
#define LOGIN_REQUESTS_MAX 64

enum auth_state {
	AUTH_START,          /* waiting for AuthMethod */
	AUTH_CHAP_ALGORITHM, /* CHAP chosen, waiting for CHAP_A */
	AUTH_CHAP_RESPONSE,  /* challenge sent, waiting for CHAP_N/CHAP_R */
	AUTH_DONE,
};

struct iscsi_login {
	struct iscsi_login_env env;
	struct iscsi_negotiation neg;
	struct iscsi_text_buf request;   /* text continued across PDUs with the C bit */
	struct iscsi_text_buf reply;
	struct iscsi_chap *chap;
	struct iscsi_target *target;
	const struct iscsi_target_auth *auth;
	enum auth_state auth_state;
	bool started;                    /* the first request arrived */
	bool identified;                 /* initiator, session type and target are known */
	bool over;                       /* full feature phase reached, or failed */
	unsigned requests;
	size_t reply_sent;               /* of a reply continued across responses (C bit) */
	bool deferred_transit;           /* the transition decided for its last piece */
	unsigned deferred_nsg;
	enum iscsi_login_stage stage;
	uint8_t isid[6];
	uint16_t tsih;
	uint16_t cid;
};

struct iscsi_login *iscsi_login_new(const struct iscsi_login_env *env)
{
	struct iscsi_login *login = calloc(1, sizeof(*login));

	if (login == NULL)
		return NULL;
	login->chap = iscsi_chap_new();
	if (login->chap == NULL) {
		free(login);
		return NULL;
	}
	login->env = *env;
	iscsi_neg_init(&login->neg, &env->limits);
	iscsi_text_buf_init(&login->request);
	iscsi_text_buf_init(&login->reply);
	return login;
}

void iscsi_login_free(struct iscsi_login *login)
{
	if (login == NULL)
		return;
	iscsi_chap_free(login->chap);
	iscsi_text_buf_free(&login->request);
	iscsi_text_buf_free(&login->reply);
	free(login);
}

const struct iscsi_session_params *iscsi_login_session_params(const struct iscsi_login *login)
{
	return &login->neg.sp;
}

const struct iscsi_conn_params *iscsi_login_conn_params(const struct iscsi_login *login)
{
	return &login->neg.cp;
}

struct iscsi_target *iscsi_login_target(const struct iscsi_login *login) { return login->target; }

/* The header of a response to req, before flags, status and data are known. */
static void response_header(uint8_t *bhs, const struct iscsi_pdu *req, uint32_t stat_sn,
                            uint32_t exp_cmd_sn, uint32_t max_cmd_sn)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[BHS_OPCODE] = ISCSI_OP_LOGIN_RSP;
	memcpy(bhs + BHS_LUN, req->bhs + BHS_LUN, 8); /* ISID and TSIH */
	memcpy(bhs + BHS_ITT, req->bhs + BHS_ITT, 4);
	put_be32(bhs + BHS_CMDSN, stat_sn);
	put_be32(bhs + BHS_EXPSTATSN, exp_cmd_sn);
	put_be32(bhs + BHS_MAXCMDSN, max_cmd_sn);
}

static enum iscsi_login_outcome failed(struct iscsi_login *login, struct iscsi_login_response *rsp,
                                       uint16_t status)
{
	login->over = true;
	rsp->bhs[BHS_FLAGS] = (uint8_t)(login->stage << ISCSI_FLAG_LOGIN_CSG_SHIFT);
	rsp->bhs[36] = (uint8_t)(status >> 8);
	rsp->bhs[37] = (uint8_t)status;
	pdu_set_data_seg_len(rsp->bhs, 0);
	rsp->data = NULL;
	rsp->data_len = 0;
	log_info("login: failed with status 0x%04x (initiator %s)", status,
	         login->neg.sp.initiator_name[0] ? login->neg.sp.initiator_name : "unknown");
	return ISCSI_LOGIN_FAILED;
}

/* Checks the header of one Login Request against the previous ones (RFC 7143 §11.12). */
static uint16_t check_request(struct iscsi_login *login, const struct iscsi_pdu *req)
{
	const uint8_t *bhs = req->bhs;
	uint8_t flags = bhs[BHS_FLAGS];
	unsigned csg = (flags & ISCSI_FLAG_LOGIN_CSG_MASK) >> ISCSI_FLAG_LOGIN_CSG_SHIFT;
	unsigned nsg = flags & ISCSI_FLAG_LOGIN_NSG_MASK;
	bool transit = flags & ISCSI_FLAG_LOGIN_TRANSIT;

	if (pdu_opcode(bhs) != ISCSI_OP_LOGIN_REQ) {
		log_warn("login: opcode 0x%02x during login", pdu_opcode(bhs));
		return ISCSI_LOGIN_INVALID_DURING_LOGIN;
	}
	if (bhs[3] > 0) { /* VersionMin: this target speaks version 0 only */
		log_warn("login: unsupported version range %u..%u", bhs[3], bhs[2]);
		return ISCSI_LOGIN_UNSUPPORTED_VERSION;
	}
	if (transit && (flags & ISCSI_FLAG_LOGIN_CONTINUE)) {
		log_warn("login: T and C bits both set");
		return ISCSI_LOGIN_INITIATOR_ERROR;
	}
	if ((csg != ISCSI_STAGE_SECURITY && csg != ISCSI_STAGE_OPERATIONAL) ||
	    (transit && (nsg <= csg || nsg == 2))) {
		log_warn("login: invalid stage transition %u -> %u", csg, nsg);
		return ISCSI_LOGIN_INITIATOR_ERROR;
	}
	if (!login->started) {
		login->started = true;
		login->stage = (enum iscsi_login_stage)csg;
		memcpy(login->isid, bhs + BHS_LUN, 6);
		login->tsih = get_be16(bhs + BHS_LUN + 6);
		login->cid = get_be16(bhs + BHS_TTT);
		login->neg.leading = login->tsih == 0;
		return ISCSI_LOGIN_SUCCESS;
	}
	if (csg != login->stage || memcmp(login->isid, bhs + BHS_LUN, 6) != 0 ||
	    login->tsih != get_be16(bhs + BHS_LUN + 6) || login->cid != get_be16(bhs + BHS_TTT)) {
		log_warn("login: request does not continue the login (stage %u, expected %u)", csg,
		         login->stage);
		return ISCSI_LOGIN_INITIATOR_ERROR;
	}
	return ISCSI_LOGIN_SUCCESS;
}

/* The first complete request names the initiator, the session type and the target. */
static uint16_t identify(struct iscsi_login *login, const struct iscsi_text_list *list)
{
	struct iscsi_session_params *sp = &login->neg.sp;
	uint16_t status = ISCSI_LOGIN_SUCCESS;

	for (size_t i = 0; i < list->count; i++) {
		const struct iscsi_text_pair *p = &list->pairs[i];

		if (iscsi_neg_is_identity_key(p->key) &&
		    iscsi_neg_key(&login->neg, ISCSI_NEG_SECURITY, p->key, p->value, &login->reply, &status) ==
		            ISCSI_NEG_FAIL)
			return status;
	}
	login->identified = true;
	if (sp->initiator_name[0] == '\0') {
		log_warn("login: no InitiatorName");
		return ISCSI_LOGIN_MISSING_PARAMETER;
	}
	if (sp->type == ISCSI_SESSION_DISCOVERY) {
		sp->target_name[0] = '\0';
		login->auth = iscsi_registry_discovery_auth(login->env.registry);
		return ISCSI_LOGIN_SUCCESS;
	}
	if (sp->target_name[0] == '\0') {
		log_warn("login: %s: no TargetName", sp->initiator_name);
		return ISCSI_LOGIN_MISSING_PARAMETER;
	}
	login->target = iscsi_registry_find(login->env.registry, sp->target_name);
	if (login->target == NULL) {
		log_warn("login: %s: no target %s", sp->initiator_name, sp->target_name);
		return ISCSI_LOGIN_NOT_FOUND;
	}
	/* Not served on this portal group: to this initiator it does not exist here. */
	if (!iscsi_target_serves_portal_group(login->target, login->env.tpgt)) {
		log_warn("login: %s: target %s is not served on portal group %u", sp->initiator_name,
		         sp->target_name, login->env.tpgt);
		login->target = NULL;
		return ISCSI_LOGIN_NOT_FOUND;
	}
	if (!iscsi_target_permits(login->target, sp->initiator_name)) {
		log_warn("login: %s may not log in to %s", sp->initiator_name, sp->target_name);
		return ISCSI_LOGIN_AUTHZ_FAILED;
	}
	login->auth = iscsi_target_auth(login->target);
	iscsi_text_addf(&login->reply, "TargetPortalGroupTag", "%u", login->env.tpgt);
	if (iscsi_target_alias(login->target)[0] != '\0')
		iscsi_text_add(&login->reply, "TargetAlias", iscsi_target_alias(login->target));
	return ISCSI_LOGIN_SUCCESS;
}

/* AuthMethod: the first method of the initiator's list this target accepts. */
static uint16_t choose_auth_method(struct iscsi_login *login, const char *offer)
{
	/* CHAP with an empty secret would prove nothing. */
	bool chap_ok = login->auth->initiator.user[0] != '\0' && login->auth->initiator.secret_len > 0;
	const char *cursor = offer, *item;
	size_t n;

	while (iscsi_text_next_item(&cursor, &item, &n)) {
		if (n == 4 && strncmp(item, "CHAP", 4) == 0 && chap_ok) {
			iscsi_text_add(&login->reply, "AuthMethod", "CHAP");
			login->auth_state = AUTH_CHAP_ALGORITHM;
			return ISCSI_LOGIN_SUCCESS;
		}
		if (n == 4 && strncmp(item, "None", 4) == 0 && !login->auth->chap_required) {
			iscsi_text_add(&login->reply, "AuthMethod", "None");
			login->auth_state = AUTH_DONE;
			return ISCSI_LOGIN_SUCCESS;
		}
	}
	log_warn("login: %s: no acceptable AuthMethod in \"%.64s\"", login->neg.sp.initiator_name, offer);
	return ISCSI_LOGIN_AUTH_FAILED;
}

/* The security stage's keys of one request, in the order the exchange needs them. */
static uint16_t authenticate(struct iscsi_login *login, const struct iscsi_text_list *list, size_t auth_keys)
{
	const char *method = iscsi_text_find(list, "AuthMethod");
	const char *alg = iscsi_text_find(list, "CHAP_A");
	const char *name = iscsi_text_find(list, "CHAP_N");
	const char *response = iscsi_text_find(list, "CHAP_R");
	const char *id = iscsi_text_find(list, "CHAP_I");
	const char *challenge = iscsi_text_find(list, "CHAP_C");
	size_t used = 0;
	uint16_t status;

	if (method != NULL && login->auth_state == AUTH_START) {
		used++;
		status = choose_auth_method(login, method);
		if (status != ISCSI_LOGIN_SUCCESS)
			return status;
	}
	if (alg != NULL && login->auth_state == AUTH_CHAP_ALGORITHM) {
		used++;
		if (iscsi_chap_select(login->chap, alg) != 0) {
			log_warn("login: %s: no acceptable CHAP_A in \"%.64s\"", login->neg.sp.initiator_name, alg);
			return ISCSI_LOGIN_AUTH_FAILED;
		}
		if (iscsi_chap_challenge(login->chap, &login->reply) != 0)
			return ISCSI_LOGIN_TARGET_ERROR;
		login->auth_state = AUTH_CHAP_RESPONSE;
	} else if (login->auth_state == AUTH_CHAP_RESPONSE && auth_keys > 0) {
		if (name == NULL || response == NULL || (id == NULL) != (challenge == NULL)) {
			log_warn("login: %s: incomplete CHAP response", login->neg.sp.initiator_name);
			return ISCSI_LOGIN_AUTH_FAILED;
		}
		used += 2;
		if (iscsi_chap_verify(login->chap, &login->auth->initiator, name, response) != 0)
			return ISCSI_LOGIN_AUTH_FAILED;
		if (id != NULL) {
			used += 2;
			if (iscsi_chap_answer(login->chap, login->auth, id, challenge, &login->reply) != 0)
				return ISCSI_LOGIN_AUTH_FAILED;
		}
		login->auth_state = AUTH_DONE;
		log_info("login: %s authenticated by CHAP", login->neg.sp.initiator_name);
	}
	if (used != auth_keys) {
		log_warn("login: %s: authentication key out of sequence", login->neg.sp.initiator_name);
		return ISCSI_LOGIN_INITIATOR_ERROR;
	}
	return ISCSI_LOGIN_SUCCESS;
}

/* May the security stage end now?  Without any AuthMethod the default is None. */
static uint16_t security_complete(struct iscsi_login *login, bool *complete)
{
	*complete = login->auth_state == AUTH_DONE;
	if (login->auth_state == AUTH_START) {
		if (login->auth->chap_required) {
			log_warn("login: %s: CHAP required but not offered", login->neg.sp.initiator_name);
			return ISCSI_LOGIN_AUTH_FAILED;
		}
		login->auth_state = AUTH_DONE;
		*complete = true;
	}
	return ISCSI_LOGIN_SUCCESS;
}

/* Negotiates every key of one complete request; authentication keys go to the CHAP exchange. */
static uint16_t negotiate(struct iscsi_login *login, const struct iscsi_text_list *list)
{
	enum iscsi_neg_phase phase =
	        login->stage == ISCSI_STAGE_SECURITY ? ISCSI_NEG_SECURITY : ISCSI_NEG_OPERATIONAL;
	uint16_t status = ISCSI_LOGIN_SUCCESS;
	bool first = !login->identified;
	size_t auth_keys = 0;

	if (first) {
		status = identify(login, list);
		if (status != ISCSI_LOGIN_SUCCESS)
			return status;
		if (login->stage == ISCSI_STAGE_OPERATIONAL && login->auth->chap_required) {
			log_warn("login: %s skipped the security stage of a target requiring CHAP",
			         login->neg.sp.initiator_name);
			return ISCSI_LOGIN_AUTH_FAILED;
		}
	}
	for (size_t i = 0; i < list->count; i++) {
		const struct iscsi_text_pair *p = &list->pairs[i];

		/* Identity keys were taken by identify(); later they may only be repeated. */
		if (iscsi_neg_is_identity_key(p->key) &&
		    (first || iscsi_neg_identity_repeated(&login->neg, p->key, p->value)))
			continue;
		switch (iscsi_neg_key(&login->neg, phase, p->key, p->value, &login->reply, &status)) {
		case ISCSI_NEG_DONE:
			break;
		case ISCSI_NEG_AUTH:
			auth_keys++;
			break;
		case ISCSI_NEG_FAIL:
			return status;
		}
	}
	if (login->stage == ISCSI_STAGE_SECURITY)
		return authenticate(login, list, auth_keys);
	iscsi_neg_declare(&login->neg, &login->reply);
	return ISCSI_LOGIN_SUCCESS;
}

/* Whether the target agrees to the transition the initiator asked for. */
static uint16_t may_transit(struct iscsi_login *login, unsigned nsg, bool *transit)
{
	uint16_t status = ISCSI_LOGIN_SUCCESS;

	*transit = true;
	if (login->stage == ISCSI_STAGE_SECURITY) {
		status = security_complete(login, transit);
		if (status != ISCSI_LOGIN_SUCCESS || !*transit)
			return status;
	}
	if (nsg == ISCSI_STAGE_FULL_FEATURE) {
		iscsi_neg_declare(&login->neg, &login->reply);
		if (iscsi_neg_offer_pending(&login->neg, &login->reply))
			*transit = false;
	}
	return status;
}

static uint16_t enter_full_feature(struct iscsi_login *login, uint8_t *bhs)
{
	struct iscsi_session_params *sp = &login->neg.sp;
	struct iscsi_conn_params *cp = &login->neg.cp;
	uint16_t tsih = 0;
	int status;

	iscsi_neg_finish(&login->neg);
	memcpy(sp->isid, login->isid, sizeof(sp->isid));
	sp->tsih = login->tsih;
	sp->tpgt = login->env.tpgt;
	cp->cid = login->cid;
	status = login->env.binder.bind(login->env.binder.ctx, sp, cp, &tsih);
	if (status != ISCSI_LOGIN_SUCCESS)
		return (uint16_t)status;
	sp->tsih = tsih;
	put_be16(bhs + BHS_LUN + 6, tsih);
	log_info("login: %s: %s session%s%s (TSIH %u, CID %u)", sp->initiator_name,
	         sp->type == ISCSI_SESSION_DISCOVERY ? "discovery" : "normal",
	         sp->target_name[0] ? " to " : "", sp->target_name, tsih, cp->cid);
	return ISCSI_LOGIN_SUCCESS;
}

/* Sends the reply, or its next piece when it exceeds one PDU (RFC 7143 §11.13.2: a piece
 * with C set never has T set; the initiator fetches the next with an empty request). */
static enum iscsi_login_outcome respond(struct iscsi_login *login, struct iscsi_login_response *rsp,
                                        bool transit, unsigned nsg)
{
	size_t left = login->reply.len - login->reply_sent;
	size_t n = MIN(left, LOGIN_RESPONSE_MAX);
	uint16_t status;

	rsp->bhs[BHS_FLAGS] = (uint8_t)(login->stage << ISCSI_FLAG_LOGIN_CSG_SHIFT);
	rsp->data = n > 0 ? login->reply.data + login->reply_sent : NULL;
	rsp->data_len = (uint32_t)n;
	pdu_set_data_seg_len(rsp->bhs, rsp->data_len);
	if (n < left) {
		rsp->bhs[BHS_FLAGS] |= ISCSI_FLAG_LOGIN_CONTINUE;
		login->reply_sent += n;
		login->deferred_transit = transit;
		login->deferred_nsg = nsg;
		return ISCSI_LOGIN_CONTINUE;
	}
	login->reply_sent = 0;
	if (!transit)
		return ISCSI_LOGIN_CONTINUE;
	rsp->bhs[BHS_FLAGS] |= (uint8_t)(ISCSI_FLAG_LOGIN_TRANSIT | nsg);
	if (nsg == ISCSI_STAGE_FULL_FEATURE) {
		status = enter_full_feature(login, rsp->bhs);
		if (status != ISCSI_LOGIN_SUCCESS)
			return failed(login, rsp, status);
		login->over = true;
		return ISCSI_LOGIN_FULL_FEATURE;
	}
	login->stage = (enum iscsi_login_stage)nsg;
	return ISCSI_LOGIN_CONTINUE;
}

enum iscsi_login_outcome iscsi_login_step(struct iscsi_login *login, const struct iscsi_pdu *req,
                                          uint32_t stat_sn, uint32_t exp_cmd_sn, uint32_t max_cmd_sn,
                                          struct iscsi_login_response *rsp)
{
	uint8_t flags = req->bhs[BHS_FLAGS];
	unsigned nsg = flags & ISCSI_FLAG_LOGIN_NSG_MASK;
	bool transit = false;
	struct iscsi_text_list list;
	enum iscsi_text_error err;
	uint16_t status;

	response_header(rsp->bhs, req, stat_sn, exp_cmd_sn, max_cmd_sn);
	if (login->over)
		return failed(login, rsp, ISCSI_LOGIN_INITIATOR_ERROR);
	status = check_request(login, req);
	if (status != ISCSI_LOGIN_SUCCESS)
		return failed(login, rsp, status);
	if (++login->requests > LOGIN_REQUESTS_MAX) {
		log_warn("login: more than %u requests", LOGIN_REQUESTS_MAX);
		return failed(login, rsp, ISCSI_LOGIN_INITIATOR_ERROR);
	}
	if (login->reply_sent > 0) {
		if (req->data_len != 0 || (flags & ISCSI_FLAG_LOGIN_CONTINUE)) {
			log_warn("login: text while our response is continued");
			return failed(login, rsp, ISCSI_LOGIN_INITIATOR_ERROR);
		}
		return respond(login, rsp,
		               login->deferred_transit && (flags & ISCSI_FLAG_LOGIN_TRANSIT) &&
		                       nsg == login->deferred_nsg,
		               nsg);
	}
	iscsi_text_buf_reset(&login->reply);
	if (login->request.len + req->data_len > LOGIN_TEXT_MAX) {
		log_warn("login: more than %u bytes of login text", LOGIN_TEXT_MAX);
		return failed(login, rsp, ISCSI_LOGIN_INITIATOR_ERROR);
	}
	iscsi_text_append(&login->request, req->data, req->data_len);
	if (login->request.failed)
		return failed(login, rsp, ISCSI_LOGIN_OUT_OF_RESOURCES);

	if (!(flags & ISCSI_FLAG_LOGIN_CONTINUE)) {
		err = iscsi_text_parse(login->request.data, login->request.len, &list);
		iscsi_text_buf_reset(&login->request);
		if (err != ISCSI_TEXT_OK) {
			log_warn("login: %s", iscsi_text_strerror(err));
			return failed(login, rsp, err == ISCSI_TEXT_ENOMEM ? ISCSI_LOGIN_OUT_OF_RESOURCES
			                                                   : ISCSI_LOGIN_INITIATOR_ERROR);
		}
		status = negotiate(login, &list);
		iscsi_text_list_free(&list);
		if (status == ISCSI_LOGIN_SUCCESS && (flags & ISCSI_FLAG_LOGIN_TRANSIT))
			status = may_transit(login, nsg, &transit);
		if (status != ISCSI_LOGIN_SUCCESS)
			return failed(login, rsp, status);
	}
	if (login->reply.failed)
		return failed(login, rsp, ISCSI_LOGIN_OUT_OF_RESOURCES);
	return respond(login, rsp, transit, nsg);
}
