/* SendTargets (RFC 7143 §11.10, Appendix C): which targets an initiator may see, and
 * where.  The full-feature Text handler calls this for each SendTargets key it receives,
 * in discovery and normal sessions alike. */
#ifndef TWINSAN_ISCSI_DISCOVERY_H
#define TWINSAN_ISCSI_DISCOVERY_H

#include "iscsi/params.h"
#include "iscsi/target.h"
#include "iscsi/text.h"

/* Appends the answer to SendTargets=<value> to out:
 *   "All"        every target the initiator's ACLs admit it to;
 *   an iSCSI name that target, if it exists and admits the initiator (else nothing);
 *   ""           the session's own target (normal sessions only);
 * each as TargetName=<name> followed by one TargetAddress=<addr:port,tpgt> per portal.
 * Any other value is answered SendTargets=Reject. */
void discovery_send_targets(const struct iscsi_registry *reg, const struct iscsi_session_params *sp,
                            const char *value, struct iscsi_text_buf *out);

#endif
