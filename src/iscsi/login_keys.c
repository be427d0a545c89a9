#include "iscsi/login_keys.h"

#include <stddef.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* How a key's outcome is reached (RFC 7143 §6.2). */
enum key_rule {
	RULE_DECLARE,      /* the initiator declares; no answer */
	RULE_TARGET_ONLY,  /* only a target may send it */
	RULE_AND,          /* Boolean, result is offered AND ours */
	RULE_OR,
	RULE_MIN,          /* numerical, result is the smaller */
	RULE_MAX,
	RULE_CHOICE,       /* list: the first offered value we accept */
	RULE_AUTH,         /* the security exchange's business (AuthMethod, CHAP_*) */
	RULE_FFP,          /* full feature phase only (SendTargets) */
	RULE_OBSOLETE,     /* RFC 7143 §13.25: answered with Reject */
};

enum key_value {
	VAL_NONE,
	VAL_BOOL,
	VAL_NUMBER,
	VAL_LIST,          /* values[] lists what we accept; values[0] stores as false */
	VAL_NAME,          /* iSCSI name, at most 223 bytes */
	VAL_TEXT,          /* free text, cut to fit */
	VAL_SESSION_TYPE,
};

enum key_scope { SCOPE_NONE, SCOPE_SESSION, SCOPE_CONN };

#define F_LEADING_ONLY 0x1          /* LO: negotiated on the leading connection only */
#define F_LOGIN_ONLY 0x2            /* IO: never in a full-feature Text request */
#define F_IRRELEVANT_DISCOVERY 0x4  /* answered "Irrelevant" in discovery sessions */

struct key_desc {
	const char *name;
	enum key_rule rule;
	enum key_value value;
	enum key_scope scope;
	size_t offset;              /* of the field in the session or connection parameters */
	unsigned flags;
	uint32_t def, min, max;     /* numbers and Booleans (0/1) */
	const char *const *values;  /* VAL_LIST, NULL-terminated */
};

static const char *const digest_values[] = {"None", "CRC32C", NULL};
/* ResponseFence and FastAbort are not implemented by the full-feature phase. */
static const char *const task_reporting_values[] = {"RFC3720", NULL};

#define SESSION(field) SCOPE_SESSION, offsetof(struct iscsi_session_params, field)
#define CONN(field) SCOPE_CONN, offsetof(struct iscsi_conn_params, field)
#define NOWHERE SCOPE_NONE, 0
#define LEN24 ((1u << 24) - 1)

/* RFC 7143 §12 and §13, plus iSCSIProtocolLevel (RFC 7144).  At most 64 entries: the
 * negotiation tracks keys in 64-bit masks. */
static const struct key_desc keys[] = {
	{"HeaderDigest", RULE_CHOICE, VAL_LIST, CONN(header_digest), F_LOGIN_ONLY,
	 .values = digest_values},
	{"DataDigest", RULE_CHOICE, VAL_LIST, CONN(data_digest), F_LOGIN_ONLY,
	 .values = digest_values},
	{"MaxConnections", RULE_MIN, VAL_NUMBER, SESSION(max_connections),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 1, 1, 65535, NULL},
	{"SendTargets", RULE_FFP, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"TargetName", RULE_DECLARE, VAL_NAME, SESSION(target_name), F_LEADING_ONLY | F_LOGIN_ONLY,
	 0, 0, 0, NULL},
	{"InitiatorName", RULE_DECLARE, VAL_NAME, SESSION(initiator_name),
	 F_LEADING_ONLY | F_LOGIN_ONLY, 0, 0, 0, NULL},
	{"TargetAlias", RULE_TARGET_ONLY, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"InitiatorAlias", RULE_DECLARE, VAL_TEXT, SESSION(initiator_alias), 0, 0, 0, 0, NULL},
	{"TargetAddress", RULE_TARGET_ONLY, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"TargetPortalGroupTag", RULE_TARGET_ONLY, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"InitialR2T", RULE_OR, VAL_BOOL, SESSION(initial_r2t),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 1, 0, 1, NULL},
	{"ImmediateData", RULE_AND, VAL_BOOL, SESSION(immediate_data),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 1, 0, 1, NULL},
	{"MaxRecvDataSegmentLength", RULE_DECLARE, VAL_NUMBER, CONN(max_send_data_segment_length), 0,
	 8192, 512, LEN24, NULL},
	{"MaxBurstLength", RULE_MIN, VAL_NUMBER, SESSION(max_burst_length),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 262144, 512, LEN24, NULL},
	{"FirstBurstLength", RULE_MIN, VAL_NUMBER, SESSION(first_burst_length),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 65536, 512, LEN24, NULL},
	{"DefaultTime2Wait", RULE_MAX, VAL_NUMBER, SESSION(default_time2wait),
	 F_LEADING_ONLY | F_LOGIN_ONLY, 2, 0, 3600, NULL},
	{"DefaultTime2Retain", RULE_MIN, VAL_NUMBER, SESSION(default_time2retain),
	 F_LEADING_ONLY | F_LOGIN_ONLY, 20, 0, 3600, NULL},
	{"MaxOutstandingR2T", RULE_MIN, VAL_NUMBER, SESSION(max_outstanding_r2t),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 1, 1, 65535, NULL},
	{"DataPDUInOrder", RULE_OR, VAL_BOOL, SESSION(data_pdu_in_order),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 1, 0, 1, NULL},
	{"DataSequenceInOrder", RULE_OR, VAL_BOOL, SESSION(data_sequence_in_order),
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, 1, 0, 1, NULL},
	{"ErrorRecoveryLevel", RULE_MIN, VAL_NUMBER, SESSION(error_recovery_level),
	 F_LEADING_ONLY | F_LOGIN_ONLY, 0, 0, 2, NULL},
	{"SessionType", RULE_DECLARE, VAL_SESSION_TYPE, SESSION(type), F_LEADING_ONLY | F_LOGIN_ONLY,
	 0, 0, 0, NULL},
	{"TaskReporting", RULE_CHOICE, VAL_LIST, NOWHERE,
	 F_LEADING_ONLY | F_LOGIN_ONLY | F_IRRELEVANT_DISCOVERY, .values = task_reporting_values},
	{"iSCSIProtocolLevel", RULE_MIN, VAL_NUMBER, SESSION(protocol_level),
	 F_LEADING_ONLY | F_LOGIN_ONLY, 0, 0, 31, NULL},
	{"AuthMethod", RULE_AUTH, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"CHAP_A", RULE_AUTH, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"CHAP_I", RULE_AUTH, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"CHAP_C", RULE_AUTH, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"CHAP_N", RULE_AUTH, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"CHAP_R", RULE_AUTH, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"IFMarker", RULE_OBSOLETE, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"OFMarker", RULE_OBSOLETE, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"IFMarkInt", RULE_OBSOLETE, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
	{"OFMarkInt", RULE_OBSOLETE, VAL_NONE, NOWHERE, 0, 0, 0, 0, NULL},
};

_Static_assert(ARRAY_SIZE(keys) <= 64, "negotiation masks hold 64 keys");

static const struct key_desc *key_find(const char *name, uint64_t *bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (strcmp(keys[i].name, name) == 0) {
			*bit = UINT64_C(1) << i;
			return &keys[i];
		}
	}
	return NULL;
}

static void *field(const struct key_desc *k, struct iscsi_session_params *sp, struct iscsi_conn_params *cp)
{
	switch (k->scope) {
	case SCOPE_SESSION:
		return (char *)sp + k->offset;
	case SCOPE_CONN:
		return (char *)cp + k->offset;
	case SCOPE_NONE:
		break;
	}
	return NULL;
}

/* Booleans and numbers as one uint32_t, whatever their field's type. */
static uint32_t load(const struct key_desc *k, struct iscsi_session_params *sp, struct iscsi_conn_params *cp)
{
	void *f = field(k, sp, cp);

	if (f == NULL)
		return k->def;
	if (k->value == VAL_BOOL || k->value == VAL_LIST)
		return *(bool *)f;
	return *(uint32_t *)f;
}

static void store(const struct key_desc *k, struct iscsi_session_params *sp, struct iscsi_conn_params *cp,
                  uint32_t v)
{
	void *f = field(k, sp, cp);

	if (f == NULL)
		return;
	if (k->value == VAL_BOOL || k->value == VAL_LIST)
		*(bool *)f = v != 0;
	else
		*(uint32_t *)f = v;
}

static uint32_t combine(enum key_rule rule, uint32_t ours, uint32_t theirs)
{
	switch (rule) {
	case RULE_AND:
		return ours && theirs;
	case RULE_OR:
		return ours || theirs;
	case RULE_MIN:
		return MIN(ours, theirs);
	case RULE_MAX:
		return MAX(ours, theirs);
	default:
		return theirs;
	}
}

void iscsi_neg_init(struct iscsi_negotiation *neg, const struct iscsi_login_limits *limits)
{
	memset(neg, 0, sizeof(*neg));
	neg->leading = true;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].value == VAL_BOOL || keys[i].value == VAL_NUMBER || keys[i].value == VAL_LIST)
			store(&keys[i], &neg->sp, &neg->cp, keys[i].def);
	neg->ours = neg->sp;
	neg->our_conn = neg->cp;

	/* Our preferences: the fastest settings this target implements, within its limits. */
	neg->ours.max_connections = limits->max_connections;
	neg->ours.initial_r2t = false;
	neg->ours.immediate_data = true;
	neg->ours.max_burst_length = limits->max_burst_length;
	neg->ours.first_burst_length = limits->first_burst_length;
	neg->ours.max_outstanding_r2t = limits->max_outstanding_r2t;
	neg->ours.protocol_level = 1; /* RFC 7143 */
	/* A limit outside a key's range would make us answer what the RFC forbids. */
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key_desc *k = &keys[i];

		if (k->value == VAL_NUMBER && k->rule != RULE_DECLARE)
			store(k, &neg->ours, &neg->our_conn,
			      MIN(MAX(load(k, &neg->ours, &neg->our_conn), k->min), k->max));
	}
	neg->our_conn.max_recv_data_segment_length = MIN(MAX(limits->max_recv_data_segment_length, 512u), LEN24);
	neg->cp.max_recv_data_segment_length = neg->our_conn.max_recv_data_segment_length;
}

bool iscsi_neg_is_identity_key(const char *key)
{
	return strcmp(key, "InitiatorName") == 0 || strcmp(key, "TargetName") == 0 ||
	       strcmp(key, "SessionType") == 0;
}

bool iscsi_neg_identity_repeated(const struct iscsi_negotiation *neg, const char *key, const char *value)
{
	if (strcmp(key, "InitiatorName") == 0)
		return strcmp(value, neg->sp.initiator_name) == 0;
	if (strcmp(key, "TargetName") == 0)
		return strcmp(value, neg->sp.target_name) == 0;
	if (strcmp(key, "SessionType") == 0)
		return strcmp(value, neg->sp.type == ISCSI_SESSION_DISCOVERY ? "Discovery" : "Normal") == 0;
	return false;
}

/* The first value of a comma-separated offer that we accept, as an index into values[]. */
static int choose(const struct key_desc *k, const char *offer)
{
	const char *item;
	size_t n;

	while (iscsi_text_next_item(&offer, &item, &n)) {
		if (n == 0)
			return -1;
		for (int i = 0; k->values[i] != NULL; i++)
			if (strlen(k->values[i]) == n && strncmp(k->values[i], item, n) == 0)
				return i;
	}
	return -1;
}

/* Session-wide keys mean nothing to discovery sessions or to a session's later connections. */
static bool irrelevant(const struct iscsi_negotiation *neg, const struct key_desc *k)
{
	return ((k->flags & F_IRRELEVANT_DISCOVERY) && neg->sp.type == ISCSI_SESSION_DISCOVERY) ||
	       ((k->flags & F_LEADING_ONLY) && !neg->leading);
}

/* Parses a Boolean or numerical value; -1 if malformed or out of range. */
static int parse_scalar(const struct key_desc *k, const char *value, uint32_t *out)
{
	uint64_t v;

	if (k->value == VAL_BOOL) {
		if (strcmp(value, "Yes") == 0)
			*out = 1;
		else if (strcmp(value, "No") == 0)
			*out = 0;
		else
			return -1;
		return 0;
	}
	if (iscsi_text_number(value, k->max, &v) != 0 || v < k->min)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void answer_scalar(const struct key_desc *k, uint32_t v, struct iscsi_text_buf *reply)
{
	if (k->value == VAL_BOOL)
		iscsi_text_add(reply, k->name, v ? "Yes" : "No");
	else
		iscsi_text_addf(reply, k->name, "%u", v);
}

static enum iscsi_neg_result fail(uint16_t *status, uint16_t code, const char *why, const char *key,
                                  const char *value)
{
	log_warn("login: %s: %s=%.64s", why, key, value);
	*status = code;
	return ISCSI_NEG_FAIL;
}

static enum iscsi_neg_result declare(struct iscsi_negotiation *neg, const struct key_desc *k,
                                     const char *value, uint16_t *status)
{
	void *f = field(k, &neg->sp, &neg->cp);
	uint32_t v;

	switch (k->value) {
	case VAL_NAME:
		if (value[0] == '\0' || strlen(value) >= ISCSI_NAME_MAX)
			return fail(status, ISCSI_LOGIN_INITIATOR_ERROR, "invalid iSCSI name", k->name, value);
		str_copy(f, ISCSI_NAME_MAX, value);
		break;
	case VAL_TEXT:
		str_copy(f, ISCSI_NAME_MAX, value); /* an alias is informative; a cut one will do */
		break;
	case VAL_SESSION_TYPE:
		if (strcmp(value, "Normal") == 0)
			neg->sp.type = ISCSI_SESSION_NORMAL;
		else if (strcmp(value, "Discovery") == 0)
			neg->sp.type = ISCSI_SESSION_DISCOVERY;
		else
			return fail(status, ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED, "unknown session type",
			            k->name, value);
		break;
	default:
		if (parse_scalar(k, value, &v) != 0)
			return fail(status, ISCSI_LOGIN_INITIATOR_ERROR, "invalid declaration", k->name, value);
		store(k, &neg->sp, &neg->cp, v);
		break;
	}
	return ISCSI_NEG_DONE;
}

/* The initiator's answer to a key we offered: a value or one of the refusal constants. */
static void take_answer(struct iscsi_negotiation *neg, const struct key_desc *k, const char *value)
{
	uint32_t v;

	if (parse_scalar(k, value, &v) != 0) {
		log_debug("login: initiator answered %s=%.64s to our offer; keeping the default",
		          k->name, value);
		return;
	}
	store(k, &neg->sp, &neg->cp, combine(k->rule, load(k, &neg->ours, &neg->our_conn), v));
}

enum iscsi_neg_result iscsi_neg_key(struct iscsi_negotiation *neg, enum iscsi_neg_phase phase,
                                    const char *key, const char *value, struct iscsi_text_buf *reply,
                                    uint16_t *status)
{
	uint64_t bit = 0;
	const struct key_desc *k = key_find(key, &bit);
	uint32_t v;
	int choice;

	if (k == NULL) {
		iscsi_text_add(reply, key, "NotUnderstood");
		return ISCSI_NEG_DONE;
	}
	if (k->rule == RULE_AUTH) {
		if (phase == ISCSI_NEG_SECURITY)
			return ISCSI_NEG_AUTH;
		if (phase == ISCSI_NEG_OPERATIONAL)
			return fail(status, ISCSI_LOGIN_INITIATOR_ERROR, "security key after the security stage",
			            key, "");
		iscsi_text_add(reply, key, "Reject");
		return ISCSI_NEG_DONE;
	}
	if (neg->offered & bit) {
		neg->offered &= ~bit;
		take_answer(neg, k, value);
		return ISCSI_NEG_DONE;
	}
	if ((neg->seen & bit) && phase != ISCSI_NEG_FULL_FEATURE)
		return fail(status, ISCSI_LOGIN_INITIATOR_ERROR, "key renegotiated", key, value);
	neg->seen |= bit;

	if (k->rule == RULE_TARGET_ONLY && phase != ISCSI_NEG_FULL_FEATURE)
		return fail(status, ISCSI_LOGIN_INITIATOR_ERROR, "initiator sent a target key", key, value);
	/* SendTargets is the full-feature Text handler's own (see discovery.h). */
	if (k->rule == RULE_FFP || k->rule == RULE_OBSOLETE || k->rule == RULE_TARGET_ONLY ||
	    (phase == ISCSI_NEG_FULL_FEATURE && (k->flags & F_LOGIN_ONLY))) {
		iscsi_text_add(reply, key, "Reject");
		return ISCSI_NEG_DONE;
	}
	if (k->rule == RULE_DECLARE)
		return declare(neg, k, value, status);
	if (irrelevant(neg, k)) {
		iscsi_text_add(reply, key, "Irrelevant");
		return ISCSI_NEG_DONE;
	}

	if (k->rule == RULE_CHOICE) {
		choice = choose(k, value);
		if (choice < 0) {
			iscsi_text_add(reply, key, "Reject");
			return ISCSI_NEG_DONE;
		}
		store(k, &neg->sp, &neg->cp, (uint32_t)choice);
		iscsi_text_add(reply, key, k->values[choice]);
		return ISCSI_NEG_DONE;
	}
	if (parse_scalar(k, value, &v) != 0) {
		log_warn("login: rejecting %s=%.64s", key, value);
		iscsi_text_add(reply, key, "Reject");
		return ISCSI_NEG_DONE;
	}
	v = combine(k->rule, load(k, &neg->ours, &neg->our_conn), v);
	store(k, &neg->sp, &neg->cp, v);
	answer_scalar(k, v, reply);
	return ISCSI_NEG_DONE;
}

void iscsi_neg_text_key(const struct iscsi_session_params *sp, struct iscsi_conn_params *cp,
                        const char *key, const char *value, struct iscsi_text_buf *reply)
{
	struct iscsi_negotiation neg = {.sp = *sp, .cp = *cp};
	uint16_t status;

	if (iscsi_neg_key(&neg, ISCSI_NEG_FULL_FEATURE, key, value, reply, &status) == ISCSI_NEG_FAIL)
		iscsi_text_add(reply, key, "Reject");
	else
		cp->max_send_data_segment_length = neg.cp.max_send_data_segment_length;
}

void iscsi_neg_declare(struct iscsi_negotiation *neg, struct iscsi_text_buf *reply)
{
	if (neg->declared)
		return;
	neg->declared = true;
	iscsi_text_addf(reply, "MaxRecvDataSegmentLength", "%u", neg->our_conn.max_recv_data_segment_length);
}

bool iscsi_neg_offer_pending(struct iscsi_negotiation *neg, struct iscsi_text_buf *reply)
{
	bool any = false;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key_desc *k = &keys[i];
		uint64_t bit = UINT64_C(1) << i;
		uint32_t ours;

		if (k->value != VAL_BOOL && k->value != VAL_NUMBER)
			continue;
		if (k->rule == RULE_DECLARE || (neg->seen & bit))
			continue;
		if (irrelevant(neg, k))
			continue;
		ours = load(k, &neg->ours, &neg->our_conn);
		if (combine(k->rule, k->def, ours) == k->def)
			continue;
		neg->seen |= bit;
		neg->offered |= bit;
		answer_scalar(k, ours, reply);
		any = true;
	}
	return any;
}

void iscsi_neg_finish(struct iscsi_negotiation *neg)
{
	neg->offered = 0;
	if (neg->sp.first_burst_length > neg->sp.max_burst_length)
		neg->sp.first_burst_length = neg->sp.max_burst_length;
}
