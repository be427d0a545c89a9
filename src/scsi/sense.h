/* Sense data (SPC-4 §4.5): how a command says why it failed.  Fixed or descriptor format
 * follows the logical unit's D_SENSE setting, which the caller passes in. */
#ifndef TWINSAN_SCSI_SENSE_H
#define TWINSAN_SCSI_SENSE_H

#include <stdbool.h>
#include <stdint.h>

#include "scsi/scsi.h"

enum sense_key {
	SENSE_NO_SENSE = 0x0,
	SENSE_RECOVERED_ERROR = 0x1,
	SENSE_NOT_READY = 0x2,
	SENSE_MEDIUM_ERROR = 0x3,
	SENSE_HARDWARE_ERROR = 0x4,
	SENSE_ILLEGAL_REQUEST = 0x5,
	SENSE_UNIT_ATTENTION = 0x6,
	SENSE_DATA_PROTECT = 0x7,
	SENSE_BLANK_CHECK = 0x8,
	SENSE_COPY_ABORTED = 0xa,
	SENSE_ABORTED_COMMAND = 0xb,
	SENSE_MISCOMPARE = 0xe,
};

/* Additional sense code and qualifier, as asc << 8 | ascq. */
enum sense_asc {
	ASC_NO_ADDITIONAL_SENSE = 0x0000,
	ASC_LUN_NOT_READY_INIT_REQUIRED = 0x0402,
	ASC_LUN_NOT_READY_MANUAL_INTERVENTION = 0x0403,
	ASC_LUN_NOT_READY_ASYMMETRIC_TRANSITION = 0x040a,
	ASC_LUN_NOT_READY_TARGET_PORT_UNAVAILABLE = 0x040c,
	ASC_LUN_NOT_READY_STANDBY = 0x040b,
	ASC_INVALID_FIELD_IN_COMMAND_IU = 0x0e03,
	ASC_WRITE_ERROR = 0x0c00,
	ASC_UNEXPECTED_UNSOLICITED_DATA = 0x0c0c,   /* iSCSI (RFC 7143 §11.4.7.2) */
	ASC_DATA_PHASE_ERROR = 0x4b00,
	ASC_DATA_OFFSET_ERROR = 0x4b05,
	ASC_UNRECOVERED_READ_ERROR = 0x1100,
	ASC_MISCOMPARE_DURING_VERIFY = 0x1d00,
	ASC_PARAMETER_LIST_LENGTH_ERROR = 0x1a00,
	ASC_INVALID_COMMAND_OPERATION_CODE = 0x2000,
	ASC_LBA_OUT_OF_RANGE = 0x2100,
	ASC_INVALID_FIELD_IN_CDB = 0x2400,
	ASC_LUN_NOT_SUPPORTED = 0x2500,
	ASC_INVALID_FIELD_IN_PARAMETER_LIST = 0x2600,
	ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION = 0x2604,
	ASC_WRITE_PROTECTED = 0x2700,
	ASC_POWER_ON_RESET = 0x2900,
	ASC_POWER_ON_OCCURRED = 0x2901,
	ASC_BUS_RESET_OCCURRED = 0x2902,
	ASC_BUS_DEVICE_RESET_OCCURRED = 0x2903,
	ASC_I_T_NEXUS_LOSS_OCCURRED = 0x2907,
	ASC_PARAMETERS_CHANGED = 0x2a00,
	ASC_MODE_PARAMETERS_CHANGED = 0x2a01,
	ASC_RESERVATIONS_PREEMPTED = 0x2a03,
	ASC_RESERVATIONS_RELEASED = 0x2a04,
	ASC_REGISTRATIONS_PREEMPTED = 0x2a05,
	ASC_ASYMMETRIC_ACCESS_STATE_CHANGED = 0x2a06,
	ASC_CAPACITY_DATA_HAS_CHANGED = 0x2a09,
	ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR = 0x2f00,
	ASC_SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900,
	ASC_MEDIUM_NOT_PRESENT = 0x3a00,
	ASC_MEDIUM_REMOVAL_PREVENTED = 0x5302,
	ASC_INSUFFICIENT_REGISTRATION_RESOURCES = 0x5504,
	ASC_REPORTED_LUNS_DATA_CHANGED = 0x3f0e,
	ASC_INTERNAL_TARGET_FAILURE = 0x4400,
	ASC_COPY_TARGET_DEVICE_NOT_REACHABLE = 0x0d02,
	ASC_UNREACHABLE_COPY_TARGET = 0x0804,
	ASC_TOO_MANY_TARGET_DESCRIPTORS = 0x2606,
	ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE = 0x2607,
	ASC_TOO_MANY_SEGMENT_DESCRIPTORS = 0x2608,
	ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE = 0x2609,
};

/* Sets CHECK CONDITION with this sense on the task. */
void sense_set(struct scsi_task *task, bool descriptor_format, enum sense_key key, enum sense_asc asc);

/* As sense_set, plus a sense-key-specific field pointer (SPC-4 §4.5.2.4.2): the byte (and
 * bit, or -1 for the whole byte) in the CDB (in_cdb) or parameter list that is wrong. */
void sense_set_field(struct scsi_task *task, bool descriptor_format, enum sense_key key,
                     enum sense_asc asc, bool in_cdb, uint16_t byte, int bit);

/* The bit a field pointer names for a byte whose wrong bits are `bad` (not 0): the
 * highest of them. */
int sense_bit_of(uint8_t bad);

/* As sense_set, with the INFORMATION field (e.g. the offset of a miscompare). */
void sense_set_info(struct scsi_task *task, bool descriptor_format, enum sense_key key,
                    enum sense_asc asc, uint64_t information);

#endif
