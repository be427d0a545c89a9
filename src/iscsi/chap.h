/* CHAP authentication for iSCSI login (RFC 7143 §12.1.3, algorithms of RFC 9100): the
 * target's half of one exchange.  The target picks an algorithm from the initiator's
 * CHAP_A list, sends a fresh identifier and challenge, checks the initiator's CHAP_N and
 * CHAP_R, and answers the initiator's own challenge when it asks for mutual CHAP.
 * Secrets are never logged. */
#ifndef TWINSAN_ISCSI_CHAP_H
#define TWINSAN_ISCSI_CHAP_H

#include "iscsi/target.h"
#include "iscsi/text.h"

/* CHAP_A values (RFC 9100 §4, IANA "PPP Authentication Algorithms"). */
enum iscsi_chap_alg {
	ISCSI_CHAP_MD5 = 5,
	ISCSI_CHAP_SHA1 = 6,
	ISCSI_CHAP_SHA256 = 7,
	ISCSI_CHAP_SHA3_256 = 8,
};

struct iscsi_chap;

struct iscsi_chap *iscsi_chap_new(void);
void iscsi_chap_free(struct iscsi_chap *chap);

/* Chooses the first algorithm of the initiator's CHAP_A list that we implement; -1 if none. */
int iscsi_chap_select(struct iscsi_chap *chap, const char *offer);
enum iscsi_chap_alg iscsi_chap_alg(const struct iscsi_chap *chap);

/* Draws a new identifier and challenge and appends CHAP_A, CHAP_I and CHAP_C to reply.
 * Returns -1 if no random bytes could be had. */
int iscsi_chap_challenge(struct iscsi_chap *chap, struct iscsi_text_buf *reply);

/* Checks the initiator's CHAP_N and CHAP_R (hex or base64) against creds.  0 if they prove
 * the secret, -1 otherwise (with a log line naming the reason, never the secret). */
int iscsi_chap_verify(const struct iscsi_chap *chap, const struct iscsi_chap_creds *creds,
                      const char *name, const char *response);

/* Mutual CHAP: answers the initiator's CHAP_I and CHAP_C with the target's credentials,
 * appending CHAP_N and CHAP_R to reply.  Refuses (-1) a challenge equal to ours, a
 * malformed one, or target credentials that reuse the initiator's secret. */
int iscsi_chap_answer(const struct iscsi_chap *chap, const struct iscsi_target_auth *auth,
                      const char *id, const char *challenge, struct iscsi_text_buf *reply);

#endif
