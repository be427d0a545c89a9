/* Arbitrary bytes to the text parser and the value decoders.  A list that parses must
 * have only valid, distinct keys, and rebuilding it must give back the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "iscsi/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_text_list list;
	struct iscsi_text_buf buf;
	uint8_t binary[1024];
	uint64_t number;

	if (iscsi_text_parse(data, size, &list) != ISCSI_TEXT_OK)
		return 0;
	iscsi_text_buf_init(&buf);
	for (size_t i = 0; i < list.count; i++) {
		const struct iscsi_text_pair *p = &list.pairs[i];

		if (p->key[0] == '\0' || iscsi_text_find(&list, p->key) != p->value)
			__builtin_trap();
		iscsi_text_add(&buf, p->key, p->value);
		if (iscsi_text_number(p->value, 16777215, &number) == 0 && number > 16777215)
			__builtin_trap();
		if (iscsi_text_binary(p->value, binary, sizeof(binary)) > (int)sizeof(binary))
			__builtin_trap();
	}
	/* The rebuilt list is the input without trailing padding. */
	if (buf.failed || buf.len > size || memcmp(buf.data ? buf.data : (const uint8_t *)"", data, buf.len) != 0)
		__builtin_trap();
	for (size_t i = buf.len; i < size; i++)
		if (data[i] != '\0')
			__builtin_trap();
	iscsi_text_buf_free(&buf);
	iscsi_text_list_free(&list);
	return 0;
}
