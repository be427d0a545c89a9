/* The SCSI state channel's messages: each kind decodes to what was encoded, every
 * truncation and trailing byte is refused, and so are an unknown kind, a CDB of no or too
 * many bytes, a nexus without relative port and a rank out of range. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ha/scsi_msg.h"

static const uint8_t state[] = { 1, 2, 3, 4, 5 };
static const uint8_t data[] = { 9, 8, 7 };

static struct scsi_msg exec_msg(void)
{
	struct scsi_msg m = { .kind = SCSI_MSG_EXEC, .id = 77, .attr = SCSI_ATTR_ORDERED, .cdb_len = 10,
	                      .data_out = data, .data_out_len = sizeof(data) };

	strcpy(m.itn.initiator_name, "iqn.2026-11.org.test:host1");
	strcpy(m.itn.target_name, "iqn.2026-11.org.twinsan:ha");
	m.itn.isid[0] = 0x80;
	m.itn.tpgt = 1;
	m.itn.relative_port = 256;
	m.itn.port_group = 2;
	m.cdb[0] = 0x5f;
	m.cdb[9] = 0x42;
	return m;
}

static void round_trip(const struct scsi_msg *in, struct scsi_msg *out, uint8_t **buf, size_t *len)
{
	char err[256];

	assert_int_equal(scsi_msg_encode(in, buf, len), 0);
	assert_int_equal(scsi_msg_decode(*buf, *len, out, err, sizeof(err)), 0);
	assert_int_equal(out->kind, in->kind);
	assert_int_equal(out->id, in->id);
}

static void exec_round_trips_and_truncations_fail(void **state_)
{
	struct scsi_msg in = exec_msg(), out;
	uint8_t *buf;
	size_t len;
	char err[256];

	round_trip(&in, &out, &buf, &len);
	assert_string_equal(out.itn.initiator_name, in.itn.initiator_name);
	assert_string_equal(out.itn.target_name, in.itn.target_name);
	assert_memory_equal(out.itn.isid, in.itn.isid, 6);
	assert_int_equal(out.itn.relative_port, 256);
	assert_int_equal(out.itn.port_group, 2);
	assert_int_equal(out.attr, SCSI_ATTR_ORDERED);
	assert_int_equal(out.cdb_len, 10);
	assert_memory_equal(out.cdb, in.cdb, 10);
	assert_int_equal(out.data_out_len, sizeof(data));
	assert_memory_equal(out.data_out, data, sizeof(data));
	for (size_t n = 0; n < len; n++)
		assert_int_equal(scsi_msg_decode(buf, n, &out, err, sizeof(err)), -1);
	free(buf);
}

static void replies_and_states_round_trip(void **state_)
{
	struct scsi_msg reply = { .kind = SCSI_MSG_EXEC_REPLY, .id = 5, .status = 0x02, .sense_len = 3,
	                          .sense = { 0x70, 0, 6 }, .state = state, .state_len = sizeof(state) };
	struct scsi_msg meet = { .kind = SCSI_MSG_MEET, .rank = SCSI_RANK_CHANGED, .state = state,
	                         .state_len = sizeof(state) };
	struct scsi_msg ack = { .kind = SCSI_MSG_STATE_ACK, .id = 9 }, out;
	uint8_t *buf;
	size_t len;

	round_trip(&reply, &out, &buf, &len);
	assert_int_equal(out.status, 0x02);
	assert_int_equal(out.sense_len, 3);
	assert_memory_equal(out.sense, reply.sense, 3);
	assert_memory_equal(out.state, state, sizeof(state));
	free(buf);
	round_trip(&meet, &out, &buf, &len);
	assert_int_equal(out.rank, SCSI_RANK_CHANGED);
	assert_int_equal(out.state_len, sizeof(state));
	free(buf);
	round_trip(&ack, &out, &buf, &len);
	free(buf);
}

/* Encodes m, changes byte `off` to v (or appends a byte when off is the length), and
 * expects the decoder to refuse it. */
static void refused(const struct scsi_msg *m, size_t off, uint8_t v)
{
	struct scsi_msg out;
	uint8_t *buf, *copy;
	size_t len;
	char err[256];

	assert_int_equal(scsi_msg_encode(m, &buf, &len), 0);
	copy = malloc(len + 1);
	memcpy(copy, buf, len);
	copy[off] = v;
	assert_int_equal(scsi_msg_decode(copy, off == len ? len + 1 : len, &out, err, sizeof(err)), -1);
	free(copy);
	free(buf);
}

static void bad_fields_are_refused(void **state_)
{
	struct scsi_msg m = exec_msg(), meet = { .kind = SCSI_MSG_MEET };
	struct scsi_msg reset = { .kind = SCSI_MSG_RESET };
	size_t nexus_end = 12 + 1 + strlen(m.itn.initiator_name) + 6 + 1 + strlen(m.itn.target_name) + 6;

	refused(&reset, 0, 0);               /* kind 0 */
	refused(&reset, 0, SCSI_MSG_KIND_END);
	refused(&reset, 1, 1);               /* reserved byte */
	refused(&reset, 12, 0);              /* trailing byte */
	refused(&meet, 12, 3);               /* rank */
	refused(&m, nexus_end - 4, 0);       /* relative port 256 -> 0 */
	refused(&m, nexus_end + 1, 0);       /* CDB length 0 */
	refused(&m, nexus_end + 1, 33);      /* CDB length beyond SCSI_MAX_CDB */
	refused(&m, nexus_end, 9);           /* task attribute */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exec_round_trips_and_truncations_fail),
		cmocka_unit_test(replies_and_states_round_trip),
		cmocka_unit_test(bad_fields_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
