/* The answers twinctl validate reads from a target: INQUIRY fields without padding and
 * with TPGS, VPD 0x83's best designator and the path's port and group, lengths that claim
 * more than arrived, READ CAPACITY's limits, REPORT TARGET PORT GROUPS found by group or
 * by relative port, and PERSISTENT RESERVE IN keys and reservation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/util.h"
#include "mgmt/validate_parse.h"

static void inquiry_fields_and_tpgs(void **state)
{
	uint8_t d[36] = { 0, 0, 6, 2, 31, 0x10 };
	struct videntity id = { 0 };

	memcpy(d + 8, "TWINSAN twinsan disk    0.1 ", 28);
	assert_int_equal(vparse_inquiry(d, sizeof(d), &id), 0);
	assert_string_equal(id.vendor, "TWINSAN");
	assert_string_equal(id.product, "twinsan disk");
	assert_string_equal(id.revision, "0.1");
	assert_int_equal(id.tpgs, 1);
	assert_int_equal(vparse_inquiry(d, 35, &id), -1);
}

static void serial_trimmed_and_cut_to_what_arrived(void **state)
{
	uint8_t d[4 + 12] = { 0, 0x80, 0, 40 };
	struct videntity id = { 0 };

	memcpy(d + 4, "      beaf11", 12);
	vparse_serial(d, sizeof(d), &id);
	assert_string_equal(id.serial, "beaf11");
}

/* A VPD 0x83 page: a T10 id and an NAA of the logical unit, then the port's relative
 * port and target port group. */
static size_t page_83(uint8_t *d)
{
	static const uint8_t descs[] = {
		0x02, 0x01, 0, 8, 'T', 'W', 'I', 'N', 'S', 'A', 'N', ' ',           /* T10, LU */
		0x01, 0x03, 0, 8, 0x60, 0x01, 0x40, 0x50, 0xaa, 0xbb, 0xcc, 0xdd, /* NAA, LU */
		0x61, 0x94, 0, 4, 0, 0, 0x80, 0x01,                                  /* rel port, port */
		0x01, 0x15, 0, 4, 0, 0, 0, 2,                                        /* group, port */
	};

	d[0] = 0;
	d[1] = 0x83;
	put_be16(d + 2, sizeof(descs));
	memcpy(d + 4, descs, sizeof(descs));
	return 4 + sizeof(descs);
}

static void designators_best_and_port(void **state)
{
	uint8_t d[128];
	size_t len = page_83(d);
	struct videntity id = { 0 };

	vparse_designators(d, len, &id);
	assert_string_equal(id.disk, "naa.60014050aabbccdd");
	assert_int_equal(id.lu_designators_len, 24);
	assert_int_equal(id.rel_port, 0x8001);
	assert_int_equal(id.port_group, 2);
}

static void designators_cut_short_are_not_read_past(void **state)
{
	uint8_t d[128];
	size_t len = page_83(d);
	struct videntity id = { 0 };

	/* The page claims all its descriptors, but only the T10 one and half the NAA arrived. */
	vparse_designators(d, 4 + 12 + 6, &id);
	assert_string_equal(id.disk, "TWINSAN");
	assert_int_equal(id.lu_designators_len, 12);
	assert_int_equal(id.port_group, -1);
	/* A descriptor claiming more than the page holds ends the walk. */
	d[4 + 3] = 200;
	memset(&id, 0, sizeof(id));
	vparse_designators(d, len, &id);
	assert_string_equal(id.disk, "");
	vparse_designators(d, 3, &id);
	assert_int_equal(id.rel_port, -1);
}

static void capacity_limits(void **state)
{
	uint8_t d[32] = { 0 };
	struct videntity id = { 0 };

	put_be64(d, 32767);
	put_be32(d + 8, 512);
	assert_int_equal(vparse_capacity(d, 32, 1, &id), 0);
	assert_int_equal(id.blocks, 32768);
	assert_int_equal(id.block_size, 512);
	assert_int_equal(vparse_capacity(d, 11, 1, &id), -1);
	put_be32(d + 8, 0);
	assert_int_equal(vparse_capacity(d, 32, 1, &id), -1);
	put_be32(d + 8, 1 << 20);
	assert_int_equal(vparse_capacity(d, 32, 1, &id), -1);
	put_be64(d, UINT64_MAX);
	put_be32(d + 8, 4096);
	assert_int_equal(vparse_capacity(d, 32, 1, &id), -1);
	put_be32(d, 99);
	put_be32(d + 4, 4096);
	assert_int_equal(vparse_capacity(d, 8, 0, &id), 0);
	assert_int_equal(id.blocks, 100);
}

/* Two groups: 1 (active/optimized, port 1) and 2 (standby, port 0x8001). */
static size_t rtpg(uint8_t *d)
{
	static const uint8_t groups[] = {
		0x80, 0x0f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1,
		0x02, 0x0f, 0, 2, 0, 0, 0, 1, 0, 0, 0x80, 0x01,
	};

	put_be32(d, sizeof(groups));
	memcpy(d + 4, groups, sizeof(groups));
	return 4 + sizeof(groups);
}

static void port_group_by_group_or_port(void **state)
{
	uint8_t d[64];
	size_t len = rtpg(d);
	int group = -1;

	assert_int_equal(vparse_port_group_state(d, len, 2, -1, &group), 2);
	assert_int_equal(group, 2);
	assert_int_equal(vparse_port_group_state(d, len, -1, 1, &group), 0);
	assert_int_equal(group, 1);
	assert_int_equal(vparse_port_group_state(d, len, -1, 0x8001, &group), 2);
	assert_int_equal(vparse_port_group_state(d, len, 7, -1, &group), -1);
	assert_int_equal(vparse_port_group_state(d, len, -1, 9, &group), -1);
	/* Cut inside the second group's port list: that port is not found. */
	assert_int_equal(vparse_port_group_state(d, len - 2, -1, 0x8001, &group), -1);
	assert_int_equal(vparse_port_group_state(d, 3, 1, -1, &group), -1);
	assert_string_equal(vparse_alua_state_name(0), "active/optimized");
	assert_string_equal(vparse_alua_state_name(0xf), "transitioning");
	assert_string_equal(vparse_alua_state_name(9), "reserved");
}

static void keys_and_reservation(void **state)
{
	uint8_t d[40] = { 0, 0, 0, 7, 0, 0, 0, 16 };
	uint64_t keys[4], key = 0;
	int type = 0;

	put_be64(d + 8, 0x1111);
	put_be64(d + 16, 0x2222);
	assert_int_equal(vparse_keys(d, 24, keys, 4), 2);
	assert_int_equal(keys[1], 0x2222);
	/* The length claims two keys but one arrived; or room for one only. */
	assert_int_equal(vparse_keys(d, 20, keys, 4), 1);
	assert_int_equal(vparse_keys(d, 24, keys, 1), 1);
	assert_int_equal(vparse_keys(d, 7, keys, 4), -1);

	memset(d, 0, sizeof(d));
	assert_int_equal(vparse_reservation(d, 8, &key, &type), 0);
	put_be32(d + 4, 16);
	put_be64(d + 8, 0x3333);
	d[21] = 0x05;
	assert_int_equal(vparse_reservation(d, 24, &key, &type), 1);
	assert_int_equal(key, 0x3333);
	assert_int_equal(type, 5);
	assert_int_equal(vparse_reservation(d, 23, &key, &type), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inquiry_fields_and_tpgs),
		cmocka_unit_test(serial_trimmed_and_cut_to_what_arrived),
		cmocka_unit_test(designators_best_and_port),
		cmocka_unit_test(designators_cut_short_are_not_read_past),
		cmocka_unit_test(capacity_limits),
		cmocka_unit_test(port_group_by_group_or_port),
		cmocka_unit_test(keys_and_reservation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
