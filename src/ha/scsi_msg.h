/* The messages of an HA device's SCSI state channel (ha/scsi_peer.h), carried as the body
 * of STATE messages of kind SCSI on the session (proto.h).  They come from the partner:
 * decoding checks every field and length.
 *
 *   header: kind (u8), 0 (u8), 0 (u16), request id (u64)
 *   MEET        rank (u8), state (u32 length, bytes): the sender's state on meeting
 *   EXEC        nexus, task attribute (u8), CDB (u8 length 1..32, bytes), Data-Out (u32
 *               length, bytes): run this command on the owner as that nexus
 *   EXEC_REPLY  status (u8), sense (u8 length, bytes), state (u32 length, bytes; 0: none)
 *   STATE       state (u32 length, bytes): the owner's state after a change, with effects
 *   STATE_ACK   (nothing): the STATE of that id is installed
 *   RESET       (nothing): the sender's logical unit was reset
 *   NEXUS_LOST  nexus: the sender lost this nexus, which held RESERVE(6)
 *   a nexus: initiator name, ISID (6 bytes), target name, tpgt, relative port, port group
 *   (u16 each); a name: length (u8, 1..223), bytes without NUL. */
#ifndef TWINSAN_HA_SCSI_MSG_H
#define TWINSAN_HA_SCSI_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/scsi.h"

enum scsi_msg_kind {
	SCSI_MSG_MEET = 1,
	SCSI_MSG_EXEC,
	SCSI_MSG_EXEC_REPLY,
	SCSI_MSG_STATE,
	SCSI_MSG_STATE_ACK,
	SCSI_MSG_RESET,
	SCSI_MSG_NEXUS_LOST,
	SCSI_MSG_KIND_END
};

/* Ranks of a state on meeting: the higher one is kept (equal: the data source's). */
enum scsi_msg_rank {
	SCSI_RANK_LOADED = 0,  /* only what this node loaded at its start */
	SCSI_RANK_LIVE = 1,    /* met a partner or changed since its start */
	SCSI_RANK_CHANGED = 2, /* changed while the partner was away */
};

struct scsi_msg {
	enum scsi_msg_kind kind;
	uint64_t id;
	uint8_t rank;                    /* MEET */
	struct scsi_itn itn;             /* EXEC, NEXUS_LOST (id 0) */
	uint8_t attr;                    /* EXEC: enum scsi_task_attr */
	uint8_t cdb[SCSI_MAX_CDB];       /* EXEC */
	uint8_t cdb_len;
	const uint8_t *data_out;         /* EXEC, into the decoded buffer */
	uint32_t data_out_len;
	uint8_t status;                  /* EXEC_REPLY */
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_MAX];
	const uint8_t *state;            /* MEET, EXEC_REPLY, STATE, into the decoded buffer */
	uint32_t state_len;
};

/* Encodes m into a malloc'd buffer; -1 when out of memory. */
int scsi_msg_encode(const struct scsi_msg *m, uint8_t **out, size_t *len);
/* Decodes a message; -1 with err set if malformed.  Pointers in *m point into buf. */
int scsi_msg_decode(const uint8_t *buf, size_t len, struct scsi_msg *m, char *err, size_t errlen);

#endif
