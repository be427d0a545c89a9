/* Small helpers used by every layer: byte order, containers, array sizes. */
#ifndef TWINSAN_COMMON_UTIL_H
#define TWINSAN_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Big-endian field access: SCSI and iSCSI are big-endian on the wire. */
static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }

static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

/* Serial number arithmetic (RFC 1982, 32 bits) for CmdSN, StatSN, DataSN. */
static inline int sn_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline int sn_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

/* Copies a NUL-terminated string into a fixed buffer, always terminating; returns 0 or -1 if cut. */
int str_copy(char *dst, size_t dstlen, const char *src);

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);

/* "512 B", "1.5 GiB": v bytes for people; returns buf. */
const char *human_bytes(unsigned long long v, char *buf, size_t len);

#endif
