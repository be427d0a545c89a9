/* CRC32C (Castagnoli), as iSCSI digests use it; computed by ISA-L. */
#ifndef TWINSAN_COMMON_CRC32C_H
#define TWINSAN_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Running form: start with CRC32C_INIT, feed pieces, finish with crc32c_final(). */
#define CRC32C_INIT 0xffffffffu
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
static inline uint32_t crc32c_final(uint32_t crc) { return ~crc; }

/* The digest of one buffer. */
static inline uint32_t crc32c(const void *buf, size_t len)
{
	return crc32c_final(crc32c_update(CRC32C_INIT, buf, len));
}

#endif
