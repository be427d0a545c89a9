/* PDU framing: header checks, wire lengths with padding and digests, digest byte order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/crc32c.h"
#include "iscsi/pdu.h"

static void make_bhs(uint8_t *bhs, uint8_t opcode, uint8_t ahs_words, uint32_t data_len)
{
	memset(bhs, 0, ISCSI_BHS_LEN);
	bhs[0] = opcode;
	bhs[1] = ISCSI_FLAG_FINAL;
	bhs[BHS_TOTAL_AHS_LEN] = ahs_words;
	pdu_set_data_seg_len(bhs, data_len);
}

static void data_segment_longer_than_declared_is_a_protocol_error(void **state)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	make_bhs(bhs, ISCSI_OP_NOP_OUT, 0, 8192);
	assert_int_equal(pdu_check_header(bhs, 8192), 0);
	make_bhs(bhs, ISCSI_OP_NOP_OUT, 0, 8193);
	assert_int_equal(pdu_check_header(bhs, 8192), ISCSI_REJECT_PROTOCOL_ERROR);
}

static void unknown_opcode_passes_framing_checks(void **state)
{
	uint8_t bhs[ISCSI_BHS_LEN];

	/* The dispatcher answers it with a Reject; the framing is still good. */
	make_bhs(bhs, 0x1c, 0, 0);
	assert_int_equal(pdu_check_header(bhs, 8192), 0);
}

static void wire_length_counts_ahs_padding_and_digests(void **state)
{
	uint8_t bhs[ISCSI_BHS_LEN];
	struct pdu_framing none = { false, false }, both = { true, true };

	make_bhs(bhs, ISCSI_OP_SCSI_CMD, 2, 5);
	assert_int_equal(pdu_wire_len(bhs, &none), 48 + 8 + 8);
	assert_int_equal(pdu_wire_len(bhs, &both), 48 + 8 + 4 + 8 + 4);
	/* No data digest without data. */
	make_bhs(bhs, ISCSI_OP_NOP_OUT, 0, 0);
	assert_int_equal(pdu_wire_len(bhs, &both), 48 + 4);
}

static void crc32c_matches_the_standard_check_value(void **state)
{
	assert_int_equal(crc32c("123456789", 9), 0xe3069283u);
}

static void digests_travel_least_significant_byte_first(void **state)
{
	uint8_t p[4];

	pdu_put_digest(p, 0xe3069283u);
	assert_int_equal(p[0], 0x83);
	assert_int_equal(p[3], 0xe3);
	assert_int_equal(pdu_get_digest(p), 0xe3069283u);
}

/* Builds BHS + header digest + "hello" + padding + data digest. */
static size_t build_wire(uint8_t *wire)
{
	uint32_t crc;

	make_bhs(wire, ISCSI_OP_NOP_OUT, 0, 5);
	pdu_put_digest(wire + 48, crc32c(wire, 48));
	memcpy(wire + 52, "hello\0\0\0", 8);
	crc = crc32c(wire + 52, 8);
	pdu_put_digest(wire + 60, crc);
	return 64;
}

static void parse_checks_both_digests(void **state)
{
	uint8_t wire[64] = { 0 };
	struct pdu_framing f = { true, true };
	struct iscsi_pdu pdu;

	size_t len = build_wire(wire);

	assert_int_equal(len, pdu_wire_len(wire, &f));
	assert_int_equal(pdu_parse(wire, &f, &pdu), 0);
	assert_int_equal(pdu.data_len, 5);
	assert_memory_equal(pdu.data, "hello", 5);
	assert_null(pdu.ahs);

	wire[55] ^= 1; /* data */
	assert_int_equal(pdu_parse(wire, &f, &pdu), ISCSI_REJECT_DATA_DIGEST);
	build_wire(wire);
	wire[20] ^= 1; /* header */
	assert_int_equal(pdu_parse(wire, &f, &pdu), ISCSI_REJECT_PROTOCOL_ERROR);
}

static void parse_without_digests_finds_ahs_and_data(void **state)
{
	uint8_t wire[48 + 8 + 4];
	struct pdu_framing f = { false, false };
	struct iscsi_pdu pdu;

	make_bhs(wire, ISCSI_OP_SCSI_CMD, 2, 3);
	memset(wire + 48, 0xaa, 8);
	memcpy(wire + 56, "abc", 4);
	assert_int_equal(pdu_parse(wire, &f, &pdu), 0);
	assert_int_equal(pdu.ahs_len, 8);
	assert_ptr_equal(pdu.ahs, wire + 48);
	assert_ptr_equal(pdu.data, wire + 56);
	assert_int_equal(pdu.data_len, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(data_segment_longer_than_declared_is_a_protocol_error),
		cmocka_unit_test(unknown_opcode_passes_framing_checks),
		cmocka_unit_test(wire_length_counts_ahs_padding_and_digests),
		cmocka_unit_test(crc32c_matches_the_standard_check_value),
		cmocka_unit_test(digests_travel_least_significant_byte_first),
		cmocka_unit_test(parse_checks_both_digests),
		cmocka_unit_test(parse_without_digests_finds_ahs_and_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
