/* The opcode table and what it drives: lookup, CDB validation, and REPORT SUPPORTED
 * OPERATION CODES (SPC-4 §6.35), whose CDB usage data is the same masks. */
#include "scsi/cdb_table.h"

#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "scsi/alua.h"
#include "scsi/lu_state.h"
#include "scsi/pr.h"
#include "scsi/sbc.h"
#include "scsi/spc.h"

#define IN CDB_DATA_IN
#define OUT CDB_DATA_OUT
#define R PR_GATE_READ
#define W (PR_GATE_READ | PR_GATE_WRITE)
#define NEVER PR_GATE_NEVER
#define ANY CDB_ANY_ACCESS
#define STANDBY CDB_STANDBY
#define SHARED CDB_SHARED_STATE

/* Byte masks by CDB size: LBA and length fields fully usable. */
#define LBA32 0xff, 0xff, 0xff, 0xff
#define LBA64 LBA32, LBA32
#define GROUP 0x1f /* group number: accepted and ignored */

/* PERSISTENT RESERVE IN/OUT: one row per service action, pr.c checks the rest. */
#define PR_IN(sa) { 0x5e, sa, 10, CDB_SA | STANDBY | IN, NEVER, 30, "PERSISTENT RESERVE IN", \
	spc_persistent_reserve_in, { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } }
#define PR_OUT(sa) { 0x5f, sa, 10, CDB_SA | STANDBY | OUT | SHARED, NEVER, 30, "PERSISTENT RESERVE OUT", \
	spc_persistent_reserve_out, { 0x00, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00 } }

static const struct cdb_desc table[] = {
	{ 0x00, 0, 6, CDB_WHILE_STOPPED, NEVER, 30, "TEST UNIT READY", spc_test_unit_ready,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 0x03, 0, 6, CDB_NO_UA | CDB_WHILE_STOPPED | ANY | IN, NEVER, 30, "REQUEST SENSE", spc_request_sense,
	  { 0x00, 0x01, 0x00, 0x00, 0xff, 0x00 } },
	{ 0x08, 0, 6, IN, R, 60, "READ(6)", sbc_read,
	  { 0x00, 0x1f, 0xff, 0xff, 0xff, 0x00 } },
	{ 0x0a, 0, 6, OUT, W, 60, "WRITE(6)", sbc_write,
	  { 0x00, 0x1f, 0xff, 0xff, 0xff, 0x00 } },
	{ 0x12, 0, 6, CDB_NO_UA | CDB_WHILE_STOPPED | ANY | IN, NEVER, 30, "INQUIRY", spc_inquiry,
	  { 0x00, 0x01, 0xff, 0xff, 0xff, 0x00 } },
	{ 0x15, 0, 6, STANDBY | OUT | SHARED, W, 30, "MODE SELECT(6)", mode_select,
	  { 0x00, 0x11, 0x00, 0x00, 0xff, 0x00 } },
	{ 0x16, 0, 6, SHARED, NEVER, 30, "RESERVE(6)", spc_reserve6,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 0x17, 0, 6, SHARED, NEVER, 30, "RELEASE(6)", spc_release6,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 0x1a, 0, 6, CDB_WHILE_STOPPED | STANDBY | IN, R, 30, "MODE SENSE(6)", mode_sense,
	  { 0x00, 0x08, 0xff, 0xff, 0xff, 0x00 } },
	{ 0x1b, 0, 6, CDB_WHILE_STOPPED, W, 60, "START STOP UNIT", spc_start_stop_unit,
	  { 0x00, 0x01, 0x00, 0x0f, 0xf7, 0x00 } },
	{ 0x1e, 0, 6, CDB_WHILE_STOPPED, R, 30, "PREVENT ALLOW MEDIUM REMOVAL", spc_prevent_allow,
	  { 0x00, 0x00, 0x00, 0x00, 0x03, 0x00 } },
	{ 0x25, 0, 10, STANDBY | IN, NEVER, 30, "READ CAPACITY(10)", sbc_read_capacity10,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 0x28, 0, 10, IN, R, 60, "READ(10)", sbc_read,
	  { 0x00, 0x1a, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x2a, 0, 10, OUT, W, 60, "WRITE(10)", sbc_write,
	  { 0x00, 0x1a, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x2e, 0, 10, OUT, W, 60, "WRITE AND VERIFY(10)", sbc_write_verify,
	  { 0x00, 0x12, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x2f, 0, 10, OUT, R, 60, "VERIFY(10)", sbc_verify,
	  { 0x00, 0x16, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x34, 0, 10, 0, R, 60, "PRE-FETCH(10)", sbc_prefetch,
	  { 0x00, 0x02, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x35, 0, 10, 0, W, 120, "SYNCHRONIZE CACHE(10)", sbc_synchronize_cache,
	  { 0x00, 0x02, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x41, 0, 10, OUT, W, 120, "WRITE SAME(10)", sbc_write_same,
	  { 0x00, 0x08, LBA32, GROUP, 0xff, 0xff, 0x00 } },
	{ 0x42, 0, 10, OUT, W, 120, "UNMAP", sbc_unmap,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } },
	{ 0x55, 0, 10, STANDBY | OUT | SHARED, W, 30, "MODE SELECT(10)", mode_select,
	  { 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } },
	{ 0x5a, 0, 10, CDB_WHILE_STOPPED | STANDBY | IN, R, 30, "MODE SENSE(10)", mode_sense,
	  { 0x00, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } },
	PR_IN(0x00), PR_IN(0x01), PR_IN(0x02), PR_IN(0x03),
	PR_OUT(0x00), PR_OUT(0x01), PR_OUT(0x02), PR_OUT(0x03),
	PR_OUT(0x04), PR_OUT(0x05), PR_OUT(0x06), PR_OUT(0x07),
	{ 0x83, 0x00, 16, CDB_SA | OUT, W, 300, "EXTENDED COPY(LID1)", xcopy_extended_copy,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, LBA32, 0x00, 0x00 } },
	{ 0x84, 0x00, 16, CDB_SA | IN, NEVER, 30, "RECEIVE COPY STATUS(LID1)", xcopy_receive_copy_results,
	  { 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, LBA32, 0x00, 0x00 } },
	{ 0x84, 0x03, 16, CDB_SA | IN, NEVER, 30, "RECEIVE COPY OPERATING PARAMETERS", xcopy_receive_copy_results,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, LBA32, 0x00, 0x00 } },
	{ 0x88, 0, 16, IN, R, 60, "READ(16)", sbc_read,
	  { 0x00, 0x1a, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x89, 0, 16, OUT, W, 60, "COMPARE AND WRITE", sbc_compare_and_write,
	  { 0x00, 0x18, LBA64, 0x00, 0x00, 0x00, 0xff, GROUP, 0x00 } },
	{ 0x8a, 0, 16, OUT, W, 60, "WRITE(16)", sbc_write,
	  { 0x00, 0x1a, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x8b, 0, 16, OUT, W, 60, "ORWRITE(16)", sbc_orwrite,
	  { 0x00, 0x18, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x8e, 0, 16, OUT, W, 60, "WRITE AND VERIFY(16)", sbc_write_verify,
	  { 0x00, 0x12, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x8f, 0, 16, OUT, R, 60, "VERIFY(16)", sbc_verify,
	  { 0x00, 0x16, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x90, 0, 16, 0, R, 60, "PRE-FETCH(16)", sbc_prefetch,
	  { 0x00, 0x02, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x91, 0, 16, 0, W, 120, "SYNCHRONIZE CACHE(16)", sbc_synchronize_cache,
	  { 0x00, 0x02, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x93, 0, 16, OUT, W, 120, "WRITE SAME(16)", sbc_write_same,
	  { 0x00, 0x09, LBA64, LBA32, GROUP, 0x00 } },
	{ 0x9e, 0x10, 16, CDB_SA | CDB_WHILE_STOPPED | STANDBY | IN, NEVER, 30, "READ CAPACITY(16)", sbc_read_capacity16,
	  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, LBA32, 0x00, 0x00 } },
	{ 0x9e, 0x12, 16, CDB_SA | IN, R, 30, "GET LBA STATUS", sbc_get_lba_status,
	  { 0x00, 0x00, LBA64, LBA32, 0x00, 0x00 } },
	{ 0xa0, 0, 12, CDB_NO_UA | CDB_WHILE_STOPPED | ANY | IN, NEVER, 30, "REPORT LUNS", spc_report_luns,
	  { 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, LBA32, 0x00, 0x00 } },
	{ 0xa3, 0x0a, 12, CDB_SA | CDB_WHILE_STOPPED | ANY | IN, NEVER, 30, "REPORT TARGET PORT GROUPS",
	  alua_report_target_port_groups,
	  { 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00, LBA32, 0x00, 0x00 } },
	{ 0xa3, 0x0c, 12, CDB_SA | CDB_WHILE_STOPPED | STANDBY | IN, NEVER, 30, "REPORT SUPPORTED OPERATION CODES",
	  cdb_report_supported_opcodes,
	  { 0x00, 0x00, 0x87, 0xff, 0xff, 0xff, LBA32, 0x00, 0x00 } },
	{ 0xa8, 0, 12, IN, R, 60, "READ(12)", sbc_read,
	  { 0x00, 0x1a, LBA32, LBA32, GROUP, 0x00 } },
	{ 0xaa, 0, 12, OUT, W, 60, "WRITE(12)", sbc_write,
	  { 0x00, 0x1a, LBA32, LBA32, GROUP, 0x00 } },
	{ 0xae, 0, 12, OUT, W, 60, "WRITE AND VERIFY(12)", sbc_write_verify,
	  { 0x00, 0x12, LBA32, LBA32, GROUP, 0x00 } },
	{ 0xaf, 0, 12, OUT, R, 60, "VERIFY(12)", sbc_verify,
	  { 0x00, 0x16, LBA32, LBA32, GROUP, 0x00 } },
};

enum cdb_lookup_result cdb_lookup(const uint8_t *cdb, const struct cdb_desc **out)
{
	bool opcode_known = false;

	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		const struct cdb_desc *d = &table[i];

		if (d->opcode != cdb[0])
			continue;
		opcode_known = true;
		if (!(d->flags & CDB_SA) || d->service_action == (cdb[1] & 0x1f)) {
			*out = d;
			return CDB_FOUND;
		}
	}
	return opcode_known ? CDB_BAD_SERVICE_ACTION : CDB_BAD_OPCODE;
}

/* Usage data as RSOC reports it: the opcode byte in full, service action bits set. */
static void usage_data(const struct cdb_desc *d, uint8_t *out)
{
	memcpy(out, d->usage, d->len);
	out[0] = d->opcode;
	if (d->flags & CDB_SA)
		out[1] |= 0x1f;
}

bool cdb_validate(const struct cdb_desc *d, struct scsi_task *task)
{
	uint8_t usage[CDB_MAX_LEN];

	usage_data(d, usage);
	for (uint16_t i = 1; i < d->len; i++) {
		uint8_t bad = task->cdb[i] & (uint8_t)~usage[i];

		if (bad) {
			int bit = sense_bit_of(bad);

			log_debug("scsi: %s: reserved CDB bit %d of byte %u set", d->name, bit, i);
			lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, i, bit);
			return false;
		}
	}
	return true;
}

#define TIMEOUTS_LEN 12

static void put_timeouts(uint8_t *p, const struct cdb_desc *d)
{
	put_be16(p, TIMEOUTS_LEN - 2);
	put_be32(p + 4, d->nominal_timeout_s);
	put_be32(p + 8, d->nominal_timeout_s * 2);
}

static void report_all(struct scsi_task *task, bool rctd, uint32_t alloc_len)
{
	const uint32_t desc_len = 8 + (rctd ? TIMEOUTS_LEN : 0);
	uint8_t buf[4 + ARRAY_SIZE(table) * (8 + TIMEOUTS_LEN)];
	uint8_t *p = buf + 4;

	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < ARRAY_SIZE(table); i++, p += desc_len) {
		const struct cdb_desc *d = &table[i];

		p[0] = d->opcode;
		if (d->flags & CDB_SA) {
			put_be16(p + 2, d->service_action);
			p[5] |= 0x01; /* SERVACTV */
		}
		if (rctd) {
			p[5] |= 0x02; /* CTDP */
			put_timeouts(p + 8, d);
		}
		put_be16(p + 6, d->len);
	}
	put_be32(buf, (uint32_t)(p - buf - 4));
	lu_reply(task, buf, (uint32_t)(p - buf), alloc_len);
}

static void report_one(struct scsi_task *task, const struct cdb_desc *d, bool rctd, uint32_t alloc_len)
{
	uint8_t buf[4 + CDB_MAX_LEN + TIMEOUTS_LEN];
	uint32_t len = 4;

	memset(buf, 0, sizeof(buf));
	if (d) {
		buf[1] = 0x03; /* supported as the standard says */
		put_be16(buf + 2, d->len);
		usage_data(d, buf + 4);
		len += d->len;
		if (rctd) {
			buf[1] |= 0x80; /* CTDP */
			put_timeouts(buf + len, d);
			len += TIMEOUTS_LEN;
		}
	} else {
		buf[1] = 0x01; /* not supported */
	}
	lu_reply(task, buf, len, alloc_len);
}

/* Whether an opcode has service actions: -1 unsupported opcode, else 0 or 1. */
static int opcode_service_actions(uint8_t opcode)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].opcode == opcode)
			return (table[i].flags & CDB_SA) ? 1 : 0;
	return -1;
}

void cdb_report_supported_opcodes(struct scsi_task *task)
{
	const uint8_t *cdb = task->cdb;
	bool rctd = cdb[2] & 0x80;
	uint8_t options = cdb[2] & 0x07;
	uint32_t alloc_len = get_be32(cdb + 6);
	uint16_t sa = get_be16(cdb + 4);
	int has_sa = opcode_service_actions(cdb[3]);
	const struct cdb_desc *d = NULL;

	/* Option 1 names an opcode without service actions, 2 one with, 3 either. */
	if (options > 3 || (options == 1 && has_sa == 1) || (options == 2 && has_sa == 0)) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 2, 2);
	} else if (options == 0) {
		report_all(task, rctd, alloc_len);
	} else {
		uint8_t probe[2] = { cdb[3], (uint8_t)sa };

		if (has_sa != 1 || sa <= 0x1f) {
			if (cdb_lookup(probe, &d) != CDB_FOUND)
				d = NULL;
		}
		report_one(task, d, rctd, alloc_len);
	}
	lu_complete(task);
}
