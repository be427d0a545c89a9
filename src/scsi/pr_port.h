/* Initiator ports as persistent reservations name them (SAM-5: an iSCSI initiator port is
 * the initiator name plus an ISID) and their iSCSI TransportIDs (SPC-4 §7.6.4.6), the
 * form in which PERSISTENT RESERVE commands speak of nexuses other than their own. */
#ifndef TWINSAN_SCSI_PR_PORT_H
#define TWINSAN_SCSI_PR_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/scsi.h"

#define PR_ISID_HEX_LEN 12

struct pr_port {
	char name[SCSI_NAME_MAX];
	uint8_t isid[6];
	bool any_isid; /* TransportID format 00h: every initiator port with this name */
};

void pr_port_from_itn(struct pr_port *port, const struct scsi_itn *itn);
/* True if itn's initiator port is (one of) the port(s) named. */
bool pr_port_matches(const struct pr_port *port, const struct scsi_itn *itn);
/* True if some initiator port is named by both. */
bool pr_port_overlaps(const struct pr_port *a, const struct pr_port *b);

/* Parses the TransportID at the start of buf (len bytes available).  Returns its length
 * (at least 4, a multiple of 4), or 0 if it is not a well-formed iSCSI TransportID. */
size_t pr_tid_parse(const uint8_t *buf, size_t len, struct pr_port *out);
/* Length of the port's TransportID; pr_tid_encode writes exactly that many bytes. */
size_t pr_tid_len(const struct pr_port *port);
void pr_tid_encode(const struct pr_port *port, uint8_t *out);

/* The ISID as PR_ISID_HEX_LEN lowercase hex digits, and back (1 to PR_ISID_HEX_LEN digits,
 * right-aligned as a number). */
void pr_isid_format(const uint8_t isid[6], char out[PR_ISID_HEX_LEN + 1]);
bool pr_isid_parse(const char *hex, size_t len, uint8_t isid[6]);

#endif
