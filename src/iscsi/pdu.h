/* iSCSI PDU layout (RFC 7143 §11): the 48-byte Basic Header Segment, opcodes, flags and
 * status codes, and a parsed view of a received PDU.  Field access is by offset so the
 * same code reads and builds every PDU type. */
#ifndef TWINSAN_ISCSI_PDU_H
#define TWINSAN_ISCSI_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define ISCSI_BHS_LEN 48
#define ISCSI_DIGEST_LEN 4
#define ISCSI_MAX_AHS_LEN (255 * 4)
#define ISCSI_PAD(n) (((n) + 3u) & ~3u)

/* Initiator opcodes */
enum iscsi_opcode {
	ISCSI_OP_NOP_OUT = 0x00,
	ISCSI_OP_SCSI_CMD = 0x01,
	ISCSI_OP_TMF_REQ = 0x02,
	ISCSI_OP_LOGIN_REQ = 0x03,
	ISCSI_OP_TEXT_REQ = 0x04,
	ISCSI_OP_DATA_OUT = 0x05,
	ISCSI_OP_LOGOUT_REQ = 0x06,
	ISCSI_OP_SNACK_REQ = 0x10,
	/* Target opcodes */
	ISCSI_OP_NOP_IN = 0x20,
	ISCSI_OP_SCSI_RSP = 0x21,
	ISCSI_OP_TMF_RSP = 0x22,
	ISCSI_OP_LOGIN_RSP = 0x23,
	ISCSI_OP_TEXT_RSP = 0x24,
	ISCSI_OP_DATA_IN = 0x25,
	ISCSI_OP_LOGOUT_RSP = 0x26,
	ISCSI_OP_R2T = 0x31,
	ISCSI_OP_ASYNC_MSG = 0x32,
	ISCSI_OP_REJECT = 0x3f,
};

/* Byte 0 */
#define ISCSI_BHS_IMMEDIATE 0x40
#define ISCSI_BHS_OPCODE_MASK 0x3f
/* Byte 1 */
#define ISCSI_FLAG_FINAL 0x80
#define ISCSI_FLAG_CMD_READ 0x40
#define ISCSI_FLAG_CMD_WRITE 0x20
#define ISCSI_FLAG_CMD_ATTR_MASK 0x07
#define ISCSI_FLAG_LOGIN_TRANSIT 0x80
#define ISCSI_FLAG_LOGIN_CONTINUE 0x40
#define ISCSI_FLAG_LOGIN_CSG_SHIFT 2
#define ISCSI_FLAG_LOGIN_CSG_MASK 0x0c
#define ISCSI_FLAG_LOGIN_NSG_MASK 0x03
#define ISCSI_FLAG_TEXT_CONTINUE 0x40
#define ISCSI_FLAG_DATA_ACK 0x40
#define ISCSI_FLAG_DATA_OVERFLOW 0x04
#define ISCSI_FLAG_DATA_UNDERFLOW 0x02
#define ISCSI_FLAG_DATA_STATUS 0x01
#define ISCSI_FLAG_RSP_BIDI_OVERFLOW 0x10
#define ISCSI_FLAG_RSP_BIDI_UNDERFLOW 0x08
#define ISCSI_FLAG_RSP_OVERFLOW 0x04
#define ISCSI_FLAG_RSP_UNDERFLOW 0x02

/* Login stages (CSG/NSG) */
enum iscsi_login_stage {
	ISCSI_STAGE_SECURITY = 0,
	ISCSI_STAGE_OPERATIONAL = 1,
	ISCSI_STAGE_FULL_FEATURE = 3,
};

/* Login response Status-Class / Status-Detail (RFC 7143 §11.13.5), as class << 8 | detail */
enum iscsi_login_status {
	ISCSI_LOGIN_SUCCESS = 0x0000,
	ISCSI_LOGIN_TARGET_MOVED_TEMP = 0x0101,
	ISCSI_LOGIN_TARGET_MOVED_PERM = 0x0102,
	ISCSI_LOGIN_INITIATOR_ERROR = 0x0200,
	ISCSI_LOGIN_AUTH_FAILED = 0x0201,
	ISCSI_LOGIN_AUTHZ_FAILED = 0x0202,
	ISCSI_LOGIN_NOT_FOUND = 0x0203,
	ISCSI_LOGIN_TARGET_REMOVED = 0x0204,
	ISCSI_LOGIN_UNSUPPORTED_VERSION = 0x0205,
	ISCSI_LOGIN_TOO_MANY_CONNECTIONS = 0x0206,
	ISCSI_LOGIN_MISSING_PARAMETER = 0x0207,
	ISCSI_LOGIN_CANT_INCLUDE_IN_SESSION = 0x0208,
	ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED = 0x0209,
	ISCSI_LOGIN_SESSION_DOES_NOT_EXIST = 0x020a,
	ISCSI_LOGIN_INVALID_DURING_LOGIN = 0x020b,
	ISCSI_LOGIN_TARGET_ERROR = 0x0300,
	ISCSI_LOGIN_SERVICE_UNAVAILABLE = 0x0301,
	ISCSI_LOGIN_OUT_OF_RESOURCES = 0x0302,
};

/* Reject reasons (RFC 7143 §11.17.1) */
enum iscsi_reject_reason {
	ISCSI_REJECT_DATA_DIGEST = 0x02,
	ISCSI_REJECT_SNACK = 0x03,
	ISCSI_REJECT_PROTOCOL_ERROR = 0x04,
	ISCSI_REJECT_CMD_NOT_SUPPORTED = 0x05,
	ISCSI_REJECT_IMMEDIATE_CMD = 0x06,
	ISCSI_REJECT_TASK_IN_PROGRESS = 0x07,
	ISCSI_REJECT_INVALID_DATA_ACK = 0x08,
	ISCSI_REJECT_INVALID_PDU_FIELD = 0x09,
	ISCSI_REJECT_OUT_OF_RESOURCES = 0x0a,
	ISCSI_REJECT_NEGOTIATION_RESET = 0x0b,
	ISCSI_REJECT_WAITING_FOR_LOGOUT = 0x0c,
};

/* Task management function codes and responses (RFC 7143 §11.5, §11.6) */
enum iscsi_tmf_function {
	ISCSI_TMF_ABORT_TASK = 1,
	ISCSI_TMF_ABORT_TASK_SET = 2,
	ISCSI_TMF_CLEAR_ACA = 3,
	ISCSI_TMF_CLEAR_TASK_SET = 4,
	ISCSI_TMF_LUN_RESET = 5,
	ISCSI_TMF_TARGET_WARM_RESET = 6,
	ISCSI_TMF_TARGET_COLD_RESET = 7,
	ISCSI_TMF_TASK_REASSIGN = 8,
};
enum iscsi_tmf_response {
	ISCSI_TMF_RSP_COMPLETE = 0,
	ISCSI_TMF_RSP_NO_TASK = 1,
	ISCSI_TMF_RSP_NO_LUN = 2,
	ISCSI_TMF_RSP_TASK_ALLEGIANT = 3,
	ISCSI_TMF_RSP_NO_REASSIGN = 4,
	ISCSI_TMF_RSP_NOT_SUPPORTED = 5,
	ISCSI_TMF_RSP_AUTH_FAILED = 6,
	ISCSI_TMF_RSP_REJECTED = 255,
};

#define ISCSI_RSVD_TAG 0xffffffffu

/* Common BHS field offsets */
#define BHS_OPCODE 0
#define BHS_FLAGS 1
#define BHS_TOTAL_AHS_LEN 4
#define BHS_DATA_SEG_LEN 5   /* 3 bytes */
#define BHS_LUN 8            /* 8 bytes; also ISID+TSIH in login PDUs */
#define BHS_ITT 16
#define BHS_TTT 20           /* or Expected Data Transfer Length / CID, per opcode */
#define BHS_CMDSN 24         /* StatSN in target PDUs */
#define BHS_EXPSTATSN 28     /* ExpCmdSN in target PDUs */
#define BHS_MAXCMDSN 32

/* A received PDU, as the connection reader hands it to the protocol logic.  The data
 * segment excludes padding and digests; it stays valid until the handler returns. */
struct iscsi_pdu {
	uint8_t bhs[ISCSI_BHS_LEN];
	const uint8_t *ahs;
	uint32_t ahs_len;
	const uint8_t *data;
	uint32_t data_len;
};

static inline enum iscsi_opcode pdu_opcode(const uint8_t *bhs) { return (enum iscsi_opcode)(bhs[0] & ISCSI_BHS_OPCODE_MASK); }
static inline bool pdu_immediate(const uint8_t *bhs) { return bhs[0] & ISCSI_BHS_IMMEDIATE; }
static inline uint32_t pdu_data_seg_len(const uint8_t *bhs) { return get_be24(bhs + BHS_DATA_SEG_LEN); }
static inline uint32_t pdu_ahs_len(const uint8_t *bhs) { return (uint32_t)bhs[BHS_TOTAL_AHS_LEN] * 4; }
static inline void pdu_set_data_seg_len(uint8_t *bhs, uint32_t len)
{
	put_be24(bhs + BHS_DATA_SEG_LEN, len);
}

/* Validates a BHS just read from the wire against the largest data segment this side
 * accepts: returns 0, or a reject reason (ISCSI_REJECT_*) for a PDU whose header cannot
 * be trusted (after which the connection is closed). */
int pdu_check_header(const uint8_t *bhs, uint32_t max_data_seg_len);

/* Framing of one PDU on the wire: BHS, AHS, optional header digest, data segment padded
 * to 4 bytes, optional data digest (present only when the segment is not empty). */
struct pdu_framing {
	bool header_digest;
	bool data_digest;
};
/* Bytes the PDU whose BHS is at bhs occupies on the wire. */
uint32_t pdu_wire_len(const uint8_t *bhs, const struct pdu_framing *f);
/* Fills *pdu from a complete wire image of pdu_wire_len() bytes, checking digests:
 * returns 0, or ISCSI_REJECT_PROTOCOL_ERROR (bad header digest: the header cannot be
 * trusted) or ISCSI_REJECT_DATA_DIGEST (the header is good, the data is not). */
int pdu_parse(const uint8_t *wire, const struct pdu_framing *f, struct iscsi_pdu *pdu);

/* Digests travel least significant byte first (as the Linux and libiscsi initiators do). */
static inline void pdu_put_digest(uint8_t *p, uint32_t crc)
{
	p[0] = (uint8_t)crc; p[1] = (uint8_t)(crc >> 8); p[2] = (uint8_t)(crc >> 16); p[3] = (uint8_t)(crc >> 24);
}
static inline uint32_t pdu_get_digest(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
