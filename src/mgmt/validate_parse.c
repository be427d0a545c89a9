/* Reading a target's answers for `twinctl validate` (see validate_parse.h). */
#include "mgmt/validate_parse.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

enum { DESIG_T10 = 1, DESIG_EUI64 = 2, DESIG_NAA = 3, DESIG_REL_PORT = 4, DESIG_PORT_GROUP = 5, DESIG_NAME = 8 };
enum { ASSOC_LU = 0, ASSOC_PORT = 1 };

/* Block sizes beyond this are no disk's; they would only make the checks' buffers lie. */
#define MAX_BLOCK_SIZE 65536

/* Copies a fixed-width ASCII field without its padding (blanks, NULs), unprintable
 * bytes as '.'. */
static void ascii_field(char *dst, size_t dstlen, const uint8_t *src, size_t len)
{
	size_t n;

	while (len && *src == ' ') {
		src++;
		len--;
	}
	while (len && (src[len - 1] == ' ' || !src[len - 1]))
		len--;
	n = len < dstlen - 1 ? len : dstlen - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '.';
	dst[n] = '\0';
}

static void hex_field(char *dst, size_t dstlen, const char *prefix, const uint8_t *src, size_t len)
{
	size_t used = (size_t)snprintf(dst, dstlen, "%s", prefix);

	for (size_t i = 0; i < len && used + 3 <= dstlen; i++)
		used += (size_t)snprintf(dst + used, dstlen - used, "%02x", src[i]);
}

int vparse_inquiry(const uint8_t *d, size_t len, struct videntity *id)
{
	if (len < 36)
		return -1;
	ascii_field(id->vendor, sizeof(id->vendor), d + 8, 8);
	ascii_field(id->product, sizeof(id->product), d + 16, 16);
	ascii_field(id->revision, sizeof(id->revision), d + 32, 4);
	id->tpgs = (d[5] >> 4) & 3;
	return 0;
}

void vparse_serial(const uint8_t *d, size_t len, struct videntity *id)
{
	size_t n = len < 4 ? 0 : get_be16(d + 2);

	if (len >= 4)
		ascii_field(id->serial, sizeof(id->serial), d + 4, n < len - 4 ? n : len - 4);
}

void vparse_designators(const uint8_t *d, size_t len, struct videntity *id)
{
	size_t end = len < 4 ? 0 : 4 + (size_t)get_be16(d + 2);
	int best = 0;

	id->port_group = id->rel_port = -1;
	id->lu_designators_len = 0;
	if (end > len)
		end = len;
	for (size_t i = 4; i + 4 <= end && i + 4 + d[i + 3] <= end; i += 4 + d[i + 3]) {
		const uint8_t *x = d + i;
		unsigned assoc = (x[1] >> 4) & 3, type = x[1] & 0xf, n = x[3];
		/* NAA is what multipath keys on, then EUI-64, a SCSI name, a T10 vendor id. */
		int rank = type == DESIG_NAA ? 4 : type == DESIG_EUI64 ? 3 : type == DESIG_NAME ? 2 : type == DESIG_T10 ? 1 : 0;

		if (assoc == ASSOC_PORT && type == DESIG_PORT_GROUP && n >= 4)
			id->port_group = get_be16(x + 6);
		if (assoc == ASSOC_PORT && type == DESIG_REL_PORT && n >= 4)
			id->rel_port = get_be16(x + 6);
		if (assoc != ASSOC_LU)
			continue;
		if (id->lu_designators_len + 4 + n <= sizeof(id->lu_designators)) {
			memcpy(id->lu_designators + id->lu_designators_len, x, 4 + n);
			id->lu_designators_len += 4 + n;
		}
		if (rank <= best || !n)
			continue;
		best = rank;
		if (type == DESIG_NAA)
			hex_field(id->disk, sizeof(id->disk), "naa.", x + 4, n);
		else if (type == DESIG_EUI64)
			hex_field(id->disk, sizeof(id->disk), "eui.", x + 4, n);
		else
			ascii_field(id->disk, sizeof(id->disk), x + 4, n);
	}
}

int vparse_capacity(const uint8_t *d, size_t len, int sixteen, struct videntity *id)
{
	uint64_t last;

	if (len < (sixteen ? 12u : 8u))
		return -1;
	last = sixteen ? get_be64(d) : get_be32(d);
	id->block_size = get_be32(d + (sixteen ? 8 : 4));
	if (last == UINT64_MAX || !id->block_size || id->block_size > MAX_BLOCK_SIZE)
		return -1;
	id->blocks = last + 1;
	return 0;
}

int vparse_port_group_state(const uint8_t *d, size_t len, int port_group, int rel_port, int *group)
{
	size_t end = len < 4 ? 0 : 4 + (size_t)get_be32(d);

	if (end > len)
		end = len;
	for (size_t i = 4; i + 8 <= end;) {
		const uint8_t *g = d + i;
		size_t ports = g[7];

		if (port_group >= 0 && get_be16(g + 2) == port_group) {
			*group = port_group;
			return g[0] & 0xf;
		}
		for (size_t k = 0; port_group < 0 && k < ports && i + 12 + 4 * k <= end; k++)
			if (get_be16(g + 8 + 4 * k + 2) == rel_port) {
				*group = get_be16(g + 2);
				return g[0] & 0xf;
			}
		i += 8 + 4 * ports;
	}
	return -1;
}

const char *vparse_alua_state_name(int state)
{
	static const char *const names[16] = {
		[0] = "active/optimized", [1] = "active/non-optimized", [2] = "standby", [3] = "unavailable",
		[4] = "logical block dependent", [0xe] = "offline", [0xf] = "transitioning",
	};

	return state >= 0 && state < 16 && names[state] ? names[state] : "reserved";
}

int vparse_keys(const uint8_t *d, size_t len, uint64_t *keys, int max)
{
	size_t end;
	int count = 0;

	if (len < 8)
		return -1;
	end = 8 + (size_t)get_be32(d + 4);
	for (size_t i = 8; i + 8 <= len && i + 8 <= end && count < max; i += 8)
		keys[count++] = get_be64(d + i);
	return count;
}

int vparse_reservation(const uint8_t *d, size_t len, uint64_t *key, int *type)
{
	if (len < 8)
		return -1;
	if (get_be32(d + 4) < 16)
		return 0;
	if (len < 24)
		return -1;
	*key = get_be64(d + 8);
	*type = d[21] & 0xf;
	return 1;
}
