#include "common/crc32c.h"

#include <isa-l/crc.h>
#include <limits.h>

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* ISA-L takes an int length. */
	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		crc = crc32_iscsi((unsigned char *)p, chunk, crc);
		p += chunk;
		len -= (size_t)chunk;
	}
	return crc;
}
