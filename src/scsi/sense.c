/* Sense data builders: fixed format (SPC-4 §4.5.3) or descriptor format (§4.5.2). */
#include "scsi/sense.h"

#include <string.h>

#include "common/util.h"

#define FIXED_LEN 18
#define DESC_HDR_LEN 8

/* Sense-key-specific field pointer bytes (SKSV, C/D, BPV, bit pointer, field pointer). */
static void field_pointer(uint8_t sks[3], bool in_cdb, uint16_t byte, int bit)
{
	sks[0] = 0x80 | (in_cdb ? 0x40 : 0);
	if (bit >= 0)
		sks[0] |= 0x08 | (uint8_t)(bit & 7);
	put_be16(sks + 1, byte);
}

static void build(struct scsi_task *task, bool descriptor_format, enum sense_key key, enum sense_asc asc,
                  const uint8_t *sks, const uint64_t *information)
{
	uint8_t *s = task->sense;

	memset(s, 0, FIXED_LEN + 24);
	task->status = SCSI_STATUS_CHECK_CONDITION;
	if (descriptor_format) {
		uint8_t len = DESC_HDR_LEN;

		s[0] = 0x72;
		s[1] = key;
		s[2] = (uint8_t)(asc >> 8);
		s[3] = (uint8_t)asc;
		if (information) {
			s[len] = 0x00;     /* information descriptor */
			s[len + 1] = 0x0a;
			s[len + 2] = 0x80; /* VALID */
			put_be64(s + len + 4, *information);
			len += 12;
		}
		if (sks) {
			s[len] = 0x02;     /* sense key specific descriptor */
			s[len + 1] = 0x06;
			memcpy(s + len + 4, sks, 3);
			len += 8;
		}
		s[7] = (uint8_t)(len - DESC_HDR_LEN);
		task->sense_len = len;
		return;
	}
	s[0] = 0x70;
	s[2] = key;
	s[7] = FIXED_LEN - 8;
	s[12] = (uint8_t)(asc >> 8);
	s[13] = (uint8_t)asc;
	if (information && *information <= UINT32_MAX) {
		s[0] |= 0x80; /* VALID only when the value fits the 4-byte field */
		put_be32(s + 3, (uint32_t)*information);
	}
	if (sks)
		memcpy(s + 15, sks, 3);
	task->sense_len = FIXED_LEN;
}

int sense_bit_of(uint8_t bad)
{
	int bit = 7;

	while (bit > 0 && !(bad & (1u << bit)))
		bit--;
	return bit;
}

void sense_set(struct scsi_task *task, bool descriptor_format, enum sense_key key, enum sense_asc asc)
{
	build(task, descriptor_format, key, asc, NULL, NULL);
}

void sense_set_field(struct scsi_task *task, bool descriptor_format, enum sense_key key,
                     enum sense_asc asc, bool in_cdb, uint16_t byte, int bit)
{
	uint8_t sks[3];

	field_pointer(sks, in_cdb, byte, bit);
	build(task, descriptor_format, key, asc, sks, NULL);
}

void sense_set_info(struct scsi_task *task, bool descriptor_format, enum sense_key key,
                    enum sense_asc asc, uint64_t information)
{
	build(task, descriptor_format, key, asc, NULL, &information);
}
