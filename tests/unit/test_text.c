/* Text key=value lists: parser edge cases, the builder, and value decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "iscsi/text.h"

static enum iscsi_text_error parse(const char *bytes, size_t len, struct iscsi_text_list *list)
{
	return iscsi_text_parse((const uint8_t *)bytes, len, list);
}

static void well_formed(void **state)
{
	static const char data[] = "A=1\0Key.With-Chars+@_=x y\0Empty=\0iSCSIProtocolLevel=1\0X#Ext=2\0\0\0";
	struct iscsi_text_list list;

	assert_int_equal(parse(data, sizeof(data) - 1, &list), ISCSI_TEXT_OK);
	assert_int_equal(list.count, 5);
	assert_string_equal(list.pairs[0].key, "A");
	assert_string_equal(iscsi_text_find(&list, "A"), "1");
	assert_string_equal(iscsi_text_find(&list, "Key.With-Chars+@_"), "x y");
	assert_string_equal(iscsi_text_find(&list, "Empty"), "");
	assert_string_equal(iscsi_text_find(&list, "X#Ext"), "2");
	assert_null(iscsi_text_find(&list, "Missing"));
	iscsi_text_list_free(&list);

	assert_int_equal(parse("", 0, &list), ISCSI_TEXT_OK);
	assert_int_equal(list.count, 0);
	assert_int_equal(parse("\0\0\0", 3, &list), ISCSI_TEXT_OK);
	assert_int_equal(list.count, 0);
	/* '=' in a value is just a character. */
	assert_int_equal(parse("A=b=c", 6, &list), ISCSI_TEXT_OK);
	assert_string_equal(iscsi_text_find(&list, "A"), "b=c");
	iscsi_text_list_free(&list);
}

static void malformed(void **state)
{
	struct iscsi_text_list list;
	char long_value[300], long_binary[9000], long_key[80];

	assert_int_equal(parse("A=1", 3, &list), ISCSI_TEXT_ESYNTAX);  /* no NUL */
	assert_int_equal(parse("A", 2, &list), ISCSI_TEXT_ESYNTAX);    /* no '=' */
	assert_int_equal(parse("A=1\0\0B=2", 9, &list), ISCSI_TEXT_ESYNTAX); /* empty pair inside */
	assert_int_equal(parse("=1", 3, &list), ISCSI_TEXT_EKEY);
	assert_int_equal(parse("1A=1", 5, &list), ISCSI_TEXT_EKEY);
	assert_int_equal(parse("A B=1", 6, &list), ISCSI_TEXT_EKEY);
	assert_int_equal(parse("A#=1", 5, &list), ISCSI_TEXT_EKEY);
	assert_int_equal(parse("A=1\0A=2", 8, &list), ISCSI_TEXT_EDUP);
	assert_int_equal(list.count, 0);
	assert_null(list.pairs);

	memset(long_key, 'K', sizeof(long_key));
	strcpy(long_key + 64, "=1");
	assert_int_equal(parse(long_key, strlen(long_key) + 1, &list), ISCSI_TEXT_EKEY);
	long_key[63] = '=';
	assert_int_equal(parse(long_key, 67, &list), ISCSI_TEXT_OK);
	iscsi_text_list_free(&list);

	strcpy(long_value, "V=");
	memset(long_value + 2, 'v', 256);
	long_value[258] = '\0';
	assert_int_equal(parse(long_value, 259, &list), ISCSI_TEXT_ELONG);
	long_value[257] = '\0';
	assert_int_equal(parse(long_value, 258, &list), ISCSI_TEXT_OK);
	iscsi_text_list_free(&list);

	/* CHAP binary values may be long, up to a limit. */
	strcpy(long_binary, "CHAP_C=0x");
	memset(long_binary + 9, 'a', 2048);
	long_binary[9 + 2048] = '\0';
	assert_int_equal(parse(long_binary, strlen(long_binary) + 1, &list), ISCSI_TEXT_OK);
	iscsi_text_list_free(&list);
	memset(long_binary + 7, 'a', 8193);
	long_binary[7 + 8193] = '\0';
	assert_int_equal(parse(long_binary, strlen(long_binary) + 1, &list), ISCSI_TEXT_ELONG);
	assert_string_equal(iscsi_text_strerror(ISCSI_TEXT_EDUP), "duplicate key");
}

static void builder(void **state)
{
	struct iscsi_text_buf buf;
	static const uint8_t bytes[] = {0x00, 0xab, 0x7f};
	static const char want[] = "A=1\0B=two\0C=0x00ab7f\0D=";

	iscsi_text_buf_init(&buf);
	iscsi_text_add(&buf, "A", "1");
	iscsi_text_addf(&buf, "B", "%s", "two");
	iscsi_text_add_hex(&buf, "C", bytes, sizeof(bytes));
	iscsi_text_add(&buf, "D", "");
	assert_false(buf.failed);
	assert_int_equal(buf.len, sizeof(want));
	assert_memory_equal(buf.data, want, sizeof(want));
	iscsi_text_buf_reset(&buf);
	assert_int_equal(buf.len, 0);
	for (int i = 0; i < 1000; i++)
		iscsi_text_addf(&buf, "Key", "%d", i);
	assert_false(buf.failed);
	iscsi_text_buf_free(&buf);
}

static void numbers(void **state)
{
	uint64_t v;

	assert_int_equal(iscsi_text_number("0", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(iscsi_text_number("262144", 16777215, &v), 0);
	assert_int_equal(v, 262144);
	assert_int_equal(iscsi_text_number("0x10", 100, &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(iscsi_text_number("0XfF", 255, &v), 0);
	assert_int_equal(v, 255);
	assert_int_equal(iscsi_text_number("3", 2, &v), -1);
	assert_int_equal(iscsi_text_number("16777216", 16777215, &v), -1);
	assert_int_equal(iscsi_text_number("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(iscsi_text_number("", 10, &v), -1);
	assert_int_equal(iscsi_text_number("0x", 10, &v), -1);
	assert_int_equal(iscsi_text_number("-1", 10, &v), -1);
	assert_int_equal(iscsi_text_number(" 1", 10, &v), -1);
	assert_int_equal(iscsi_text_number("1a", 100, &v), -1);
}

static void binary(void **state)
{
	uint8_t out[8];

	assert_int_equal(iscsi_text_binary("0x0102ff", out, sizeof(out)), 3);
	assert_memory_equal(out, "\x01\x02\xff", 3);
	assert_int_equal(iscsi_text_binary("0X123", out, sizeof(out)), 2); /* implied leading zero */
	assert_memory_equal(out, "\x01\x23", 2);
	assert_int_equal(iscsi_text_binary("0bAQL/", out, sizeof(out)), 3);
	assert_memory_equal(out, "\x01\x02\xff", 3);
	assert_int_equal(iscsi_text_binary("0BAQI=", out, sizeof(out)), 2);
	assert_int_equal(iscsi_text_binary("0bAQ==", out, sizeof(out)), 1);
	assert_int_equal(iscsi_text_binary("0bAQ=", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("0bA*==", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("0x", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("0x0g", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("1234", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("0", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("0x112233445566778899", out, sizeof(out)), -1);
	assert_int_equal(iscsi_text_binary("0bAAAAAAAAAAAA", out, sizeof(out)), -1);
}

static void list_items(void **state)
{
	const char *cursor = "CRC32C,,None", *item;
	size_t n;

	assert_true(iscsi_text_next_item(&cursor, &item, &n));
	assert_int_equal(n, 6);
	assert_memory_equal(item, "CRC32C", 6);
	assert_true(iscsi_text_next_item(&cursor, &item, &n));
	assert_int_equal(n, 0);
	assert_true(iscsi_text_next_item(&cursor, &item, &n));
	assert_int_equal(n, 4);
	assert_memory_equal(item, "None", 4);
	assert_false(iscsi_text_next_item(&cursor, &item, &n));
	cursor = "";
	assert_false(iscsi_text_next_item(&cursor, &item, &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed),
		cmocka_unit_test(malformed),
		cmocka_unit_test(builder),
		cmocka_unit_test(numbers),
		cmocka_unit_test(binary),
		cmocka_unit_test(list_items),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
