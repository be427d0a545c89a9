/* Arbitrary target answers to twinctl validate's readers (mgmt/validate_parse.h): the
 * first byte picks what the rest is taken for.  Nothing may read past the input, and what
 * is read stays within its bounds: printable, terminated strings, designators no longer
 * than the page, a capacity with a usable block size, no more keys than room. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mgmt/validate_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void printable(const char *s, size_t room)
{
	size_t n = strnlen(s, room);

	if (n == room)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct videntity id = { 0 };
	uint64_t keys[8], key;
	int group, type, n;

	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		if (vparse_inquiry(data + 1, size - 1, &id) == 0) {
			printable(id.vendor, sizeof(id.vendor));
			printable(id.product, sizeof(id.product));
			printable(id.revision, sizeof(id.revision));
		}
		vparse_serial(data + 1, size - 1, &id);
		printable(id.serial, sizeof(id.serial));
		break;
	case 1:
		vparse_designators(data + 1, size - 1, &id);
		if (id.lu_designators_len > size || id.rel_port > 0xffff || id.port_group > 0xffff)
			__builtin_trap();
		if (strncmp(id.disk, "naa.", 4) && strncmp(id.disk, "eui.", 4))
			printable(id.disk, sizeof(id.disk));
		break;
	case 2:
		if (vparse_capacity(data + 1, size - 1, data[0] & 8, &id) == 0 &&
		    (!id.blocks || !id.block_size || id.block_size > 65536))
			__builtin_trap();
		break;
	case 3:
		n = vparse_port_group_state(data + 1, size - 1, size > 2 ? data[1] - 1 : -1, size > 3 ? data[2] : 0, &group);
		if (n > 15 || (n >= 0 && (group < 0 || group > 0xffff)))
			__builtin_trap();
		break;
	case 4:
		n = vparse_keys(data + 1, size - 1, keys, 8);
		if (n > 8 || (n > 0 && (size_t)n * 8 + 8 > size - 1))
			__builtin_trap();
		break;
	default:
		if (vparse_reservation(data + 1, size - 1, &key, &type) == 1 && (type > 15 || size - 1 < 24))
			__builtin_trap();
		break;
	}
	return 0;
}
