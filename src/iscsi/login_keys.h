/* Negotiation of iSCSI login and text keys (RFC 7143 §6.2, §12, §13): one declarative
 * table describes every key this target knows, and a generic engine answers the
 * initiator's offers from it.
 *
 * A negotiation lives for one login (or one full-feature Text exchange).  The caller
 * feeds it the initiator's keys one at a time; the engine writes the answer for each into
 * the response text, records the outcome in the session and connection parameters, and
 * reports keys that belong to the authentication exchange or that fail the login. */
#ifndef TWINSAN_ISCSI_LOGIN_KEYS_H
#define TWINSAN_ISCSI_LOGIN_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi/login.h"
#include "iscsi/params.h"
#include "iscsi/text.h"

enum iscsi_neg_phase {
	ISCSI_NEG_SECURITY,      /* login, security stage */
	ISCSI_NEG_OPERATIONAL,   /* login, operational stage */
	ISCSI_NEG_FULL_FEATURE,  /* Text requests after login */
};

/* What iscsi_neg_key() made of one key, besides the answer it may have written. */
enum iscsi_neg_result {
	ISCSI_NEG_DONE,          /* answered (or a declaration noted) */
	ISCSI_NEG_AUTH,          /* an authentication key: the login's security exchange owns it */
	ISCSI_NEG_FAIL,          /* the login must fail; *status says how */
};

struct iscsi_negotiation {
	bool leading;                    /* TSIH 0: this connection creates the session */
	uint64_t seen;                   /* keys the initiator sent, by table index */
	uint64_t offered;                /* keys we offered and await an answer for */
	bool declared;                   /* our declarations are sent */
	struct iscsi_session_params ours; /* what we prefer or declare */
	struct iscsi_session_params sp;  /* the outcome so far */
	struct iscsi_conn_params our_conn;
	struct iscsi_conn_params cp;
};

/* Starts from the RFC defaults; our own preferences come from limits. */
void iscsi_neg_init(struct iscsi_negotiation *neg, const struct iscsi_login_limits *limits);

/* Handles one key=value from the initiator; answers (if any) go to reply. */
enum iscsi_neg_result iscsi_neg_key(struct iscsi_negotiation *neg, enum iscsi_neg_phase phase,
                                    const char *key, const char *value, struct iscsi_text_buf *reply,
                                    uint16_t *status);

/* Adds our declarations (once) to reply. */
void iscsi_neg_declare(struct iscsi_negotiation *neg, struct iscsi_text_buf *reply);

/* Before leaving the operational stage: offers the keys the initiator left at a default
 * that exceeds what we accept.  Returns true when something was offered, so the
 * initiator must answer before the login may complete. */
bool iscsi_neg_offer_pending(struct iscsi_negotiation *neg, struct iscsi_text_buf *reply);

/* Fixes cross-key constraints once negotiation is over (FirstBurstLength <= MaxBurstLength). */
void iscsi_neg_finish(struct iscsi_negotiation *neg);

/* One key of a full-feature Text request other than SendTargets (see discovery.h),
 * answered against the session's negotiated state: login-only keys are rejected, unknown
 * ones not understood, and a new MaxRecvDataSegmentLength declaration lands in *cp. */
void iscsi_neg_text_key(const struct iscsi_session_params *sp, struct iscsi_conn_params *cp,
                        const char *key, const char *value, struct iscsi_text_buf *reply);

/* True for the keys the initiator must name in its first Login Request. */
bool iscsi_neg_is_identity_key(const char *key);
/* True when an identity key repeats what the first request said (libiscsi repeats them
 * in the request after the security stage); anything else is a renegotiation. */
bool iscsi_neg_identity_repeated(const struct iscsi_negotiation *neg, const char *key, const char *value);

#endif
