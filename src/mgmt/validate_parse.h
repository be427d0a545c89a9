/* Reading what a target answers to `twinctl validate` (SPC-4 data formats): standard
 * INQUIRY, VPD pages 0x80 and 0x83, READ CAPACITY, REPORT TARGET PORT GROUPS and
 * PERSISTENT RESERVE IN.  The data comes from the network: every length is checked
 * against what arrived, and a short or malformed answer is an error, never a read past
 * it.  Pure functions, without I/O, for the unit tests and the fuzzer. */
#ifndef TWINSAN_MGMT_VALIDATE_PARSE_H
#define TWINSAN_MGMT_VALIDATE_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* What a logical unit says about itself through one path. */
struct videntity {
	char vendor[9], product[17], revision[5];
	char serial[256];
	uint8_t lu_designators[1024]; /* VPD 0x83 designators of the logical unit, as sent */
	size_t lu_designators_len;
	char disk[288]; /* the best of them, printable: naa.…, eui.…, a SCSI name, a T10 id */
	uint64_t blocks;
	uint32_t block_size;
	int tpgs;       /* INQUIRY's TPGS field: 0 no ALUA, 1 implicit, 2 explicit, 3 both */
	int port_group; /* VPD 0x83 target port group, -1 if none */
	int rel_port;   /* VPD 0x83 relative target port, -1 if none */
};

/* Standard INQUIRY data: vendor, product, revision, TPGS; -1 if shorter than 36 bytes. */
int vparse_inquiry(const uint8_t *d, size_t len, struct videntity *id);
/* VPD 0x80: the serial number (blanks trimmed). */
void vparse_serial(const uint8_t *d, size_t len, struct videntity *id);
/* VPD 0x83: the logical unit's designators, the best as id->disk, and the target port
 * group and relative port of the path.  Starts with port_group and rel_port at -1. */
void vparse_designators(const uint8_t *d, size_t len, struct videntity *id);
/* READ CAPACITY (16) (sixteen true) or (10) data: blocks and block size; -1 if short. */
int vparse_capacity(const uint8_t *d, size_t len, int sixteen, struct videntity *id);

/* REPORT TARGET PORT GROUPS (length-only format): the asymmetric access state of the group
 * holding the path (its group id if known, else its relative port), with that group's id
 * in *group; -1 if no group holds it. */
int vparse_port_group_state(const uint8_t *d, size_t len, int port_group, int rel_port, int *group);
/* The name of an asymmetric access state: "active/optimized", "standby"... */
const char *vparse_alua_state_name(int state);

/* PERSISTENT RESERVE IN, READ KEYS: up to max keys into keys; their count, -1 if short. */
int vparse_keys(const uint8_t *d, size_t len, uint64_t *keys, int max);
/* PERSISTENT RESERVE IN, READ RESERVATION: 1 with the holder's key and the type, 0 if
 * none, -1 if short. */
int vparse_reservation(const uint8_t *d, size_t len, uint64_t *key, int *type);

#endif
