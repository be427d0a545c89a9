/* The disk checks of `twinctl validate`: which disk every path reaches (INQUIRY, VPD 0x80
 * and 0x83, READ CAPACITY), whether the paths agree on its identity, and ALUA (TPGS and
 * REPORT TARGET PORT GROUPS). */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "mgmt/validate_check.h"

enum { DESIG_T10 = 1, DESIG_EUI64 = 2, DESIG_NAA = 3, DESIG_REL_PORT = 4, DESIG_PORT_GROUP = 5, DESIG_NAME = 8 };
enum { ASSOC_LU = 0, ASSOC_PORT = 1 };

static const char *const alua_states[16] = {
	[0] = "active/optimized", [1] = "active/non-optimized", [2] = "standby", [3] = "unavailable",
	[4] = "logical block dependent", [0xe] = "offline", [0xf] = "transitioning",
};

static const char *alua_state_name(unsigned s)
{
	return alua_states[s & 0xf] ? alua_states[s & 0xf] : "reserved";
}

/* Copies a fixed-width ASCII field without its padding blanks. */
static void ascii_field(char *dst, size_t dstlen, const uint8_t *src, size_t len)
{
	size_t n;

	while (len && *src == ' ') {
		src++;
		len--;
	}
	n = len < dstlen - 1 ? len : dstlen - 1;

	for (size_t i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '.';
	while (n && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

static void hex_field(char *dst, size_t dstlen, const char *prefix, const uint8_t *src, size_t len)
{
	size_t used = (size_t)snprintf(dst, dstlen, "%s", prefix);

	for (size_t i = 0; i < len && used + 3 < dstlen; i++)
		used += (size_t)snprintf(dst + used, dstlen - used, "%02x", src[i]);
}

static void inquiry(struct vsession *s, int page, struct vreply *r)
{
	uint8_t cdb[6] = { 0x12, page >= 0 ? 1 : 0, page >= 0 ? (uint8_t)page : 0, 0x10, 0, 0 };

	vsession_cmd_past_ua(s, cdb, sizeof(cdb), VDIR_IN, NULL, 0x1000, r);
}

/* Reads the designators of VPD 0x83: the logical unit's kept as sent, the best as p->disk. */
static void read_designators(struct vpath *p, const struct vreply *r)
{
	size_t end = r->len < 4 ? 0 : 4 + get_be16(r->data + 2);
	int best = 0;

	if (end > r->len)
		end = r->len;
	for (size_t i = 4; i + 4 <= end && i + 4 + r->data[i + 3] <= end; i += 4 + r->data[i + 3]) {
		const uint8_t *d = r->data + i;
		unsigned assoc = (d[1] >> 4) & 3, type = d[1] & 0xf, len = d[3];
		/* NAA is what multipath keys on, then EUI-64, SCSI name, T10 vendor id. */
		int rank = type == DESIG_NAA ? 4 : type == DESIG_EUI64 ? 3 : type == DESIG_NAME ? 2 : type == DESIG_T10 ? 1 : 0;

		if (assoc == ASSOC_PORT && type == DESIG_PORT_GROUP && len >= 4)
			p->port_group = get_be16(d + 6);
		if (assoc == ASSOC_PORT && type == DESIG_REL_PORT && len >= 4)
			p->rel_port = get_be16(d + 6);
		if (assoc != ASSOC_LU)
			continue;
		if (p->lu_designators_len + 4 + len <= sizeof(p->lu_designators)) {
			memcpy(p->lu_designators + p->lu_designators_len, d, 4 + len);
			p->lu_designators_len += 4 + len;
		}
		if (rank <= best)
			continue;
		best = rank;
		if (type == DESIG_NAA)
			hex_field(p->disk, sizeof(p->disk), "naa.", d + 4, len);
		else if (type == DESIG_EUI64)
			hex_field(p->disk, sizeof(p->disk), "eui.", d + 4, len);
		else
			ascii_field(p->disk, sizeof(p->disk), d + 4, len);
	}
}

/* Reads what the path's logical unit says about itself; a problem into n otherwise. */
static bool identify(struct vpath *p, struct vnote *n)
{
	static const uint8_t rc16[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 };
	static const uint8_t rc10[10] = { 0x25 };
	struct vreply r;
	char why[160];

	p->port_group = p->rel_port = -1;
	inquiry(p->probe, -1, &r);
	if (r.status || r.len < 36) {
		vnote_add(n, "%s: INQUIRY: %s", vpath_label(p), r.status ? vreply_text(&r, why, sizeof(why)) : "short data");
		return false;
	}
	ascii_field(p->vendor, sizeof(p->vendor), r.data + 8, 8);
	ascii_field(p->product, sizeof(p->product), r.data + 16, 16);
	ascii_field(p->revision, sizeof(p->revision), r.data + 32, 4);
	p->tpgs = (r.data[5] >> 4) & 3;
	inquiry(p->probe, 0x80, &r);
	if (r.status == 0 && r.len >= 4)
		ascii_field(p->serial, sizeof(p->serial), r.data + 4, r.len - 4 < r.data[3] ? r.len - 4 : r.data[3]);
	inquiry(p->probe, 0x83, &r);
	if (r.status == 0)
		read_designators(p, &r);
	if (!p->disk[0] && p->serial[0])
		snprintf(p->disk, sizeof(p->disk), "serial:%s", p->serial);
	vsession_cmd_past_ua(p->probe, rc16, sizeof(rc16), VDIR_IN, NULL, 32, &r);
	if (r.status == 0 && r.len >= 12) {
		p->blocks = get_be64(r.data) + 1;
		p->block_size = get_be32(r.data + 8);
	} else {
		vsession_cmd_past_ua(p->probe, rc10, sizeof(rc10), VDIR_IN, NULL, 8, &r);
		if (r.status || r.len < 8) {
			vnote_add(n, "%s: READ CAPACITY: %s", vpath_label(p), vreply_text(&r, why, sizeof(why)));
			return false;
		}
		p->blocks = (uint64_t)get_be32(r.data) + 1;
		p->block_size = get_be32(r.data + 4);
	}
	if (!p->disk[0]) {
		vnote_add(n, "%s: neither a VPD 0x83 designator nor a serial number: multipath cannot tell which disk "
		             "it is", vpath_label(p));
		return false;
	}
	p->identified = true;
	return true;
}

enum vverdict vcheck_paths(struct vctx *c, struct vnote *n)
{
	const struct vpath *first = &c->paths[0];
	bool ok = true;
	char size[32], list[512] = "", disks[1024] = "";

	for (size_t i = 0; i < c->n; i++)
		ok &= identify(&c->paths[i], n);
	if (!ok)
		return V_FAIL;
	for (size_t i = 0; i < c->n; i++) {
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", vpath_label(&c->paths[i]));
		snprintf(disks + strlen(disks), sizeof(disks) - strlen(disks), "%s%s reaches %s", i ? ", " : "",
		         vpath_label(&c->paths[i]), c->paths[i].disk);
		if (strcmp(c->paths[i].disk, first->disk))
			ok = false;
	}
	if (!ok)
		return verdict(n, V_FAIL, "the paths reach different disks: %s", disks);
	c->one_disk = true;
	return verdict(n, V_PASS, "one disk, %s (%s %s, %s, %u-byte blocks), on %zu path%s: %s", first->disk,
	               first->vendor, first->product, human_bytes(first->blocks * first->block_size, size, sizeof(size)),
	               first->block_size, c->n, c->n == 1 ? "" : "s", list);
}

enum vverdict vcheck_identity(struct vctx *c, struct vnote *n)
{
	const struct vpath *a = &c->paths[0];

	if (c->n < 2)
		return verdict(n, V_SKIP, "one path only: give the URL of every path to the disk");
	for (size_t i = 0; i < c->n; i++)
		if (!c->paths[i].identified)
			return verdict(n, V_FAIL, "%s did not say which disk it is (see paths)", vpath_label(&c->paths[i]));
	for (size_t i = 1; i < c->n; i++) {
		const struct vpath *b = &c->paths[i];

		if (strcmp(a->serial, b->serial))
			vnote_add(n, "serial '%s' on %s but '%s' on %s", a->serial, vpath_label(a), b->serial, vpath_label(b));
		if (a->lu_designators_len != b->lu_designators_len ||
		    memcmp(a->lu_designators, b->lu_designators, a->lu_designators_len))
			vnote_add(n, "the logical unit's VPD 0x83 designators differ between %s and %s", vpath_label(a),
			          vpath_label(b));
		if (a->blocks != b->blocks || a->block_size != b->block_size)
			vnote_add(n, "capacity %llu blocks of %u bytes on %s but %llu of %u on %s", (unsigned long long)a->blocks,
			          a->block_size, vpath_label(a), (unsigned long long)b->blocks, b->block_size, vpath_label(b));
		if (strcmp(a->vendor, b->vendor) || strcmp(a->product, b->product))
			vnote_add(n, "INQUIRY says '%s %s' on %s but '%s %s' on %s", a->vendor, a->product, vpath_label(a),
			          b->vendor, b->product, vpath_label(b));
	}
	if (n->reason[0])
		return V_FAIL;
	return verdict(n, V_PASS, "serial '%s', %zu bytes of logical unit designators, %llu blocks of %u bytes and '%s %s' "
	                          "agree on all %zu paths", a->serial, a->lu_designators_len,
	               (unsigned long long)a->blocks, a->block_size, a->vendor, a->product, c->n);
}

/* The state of the group holding the path's port in a REPORT TARGET PORT GROUPS answer;
 * -1 if no group holds it.  *group is the group's id. */
static int group_state(const struct vpath *p, const struct vreply *r, int *group)
{
	size_t end = r->len < 4 ? 0 : 4 + get_be32(r->data);

	if (end > r->len)
		end = r->len;
	for (size_t i = 4; i + 8 <= end;) {
		const uint8_t *g = r->data + i;
		size_t ports = g[7];

		if (get_be16(g + 2) == p->port_group) {
			*group = p->port_group;
			return g[0] & 0xf;
		}
		for (size_t k = 0; k < ports && i + 8 + 4 * k + 4 <= end; k++)
			if (p->port_group < 0 && get_be16(g + 8 + 4 * k + 2) == p->rel_port) {
				*group = get_be16(g + 2);
				return g[0] & 0xf;
			}
		i += 8 + 4 * ports;
	}
	return -1;
}

enum vverdict vcheck_alua(struct vctx *c, struct vnote *n)
{
	static const uint8_t rtpg[12] = { 0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0 };
	char why[160], ok[1024] = "";
	bool fail = false;

	for (size_t i = 0; i < c->n; i++) {
		const struct vpath *p = &c->paths[i];
		struct vreply r;
		int group = -1, state;

		if (!p->identified) {
			vnote_add(n, "%s: not identified (see paths)", vpath_label(p));
			fail = true;
			continue;
		}
		if (!p->tpgs) {
			vnote_add(n, "%s: the target does not support ALUA (INQUIRY TPGS is 0)", vpath_label(p));
			fail = true;
			continue;
		}
		vsession_cmd_past_ua(p->probe, rtpg, sizeof(rtpg), VDIR_IN, NULL, 0x1000, &r);
		if (r.status) {
			vnote_add(n, "%s: REPORT TARGET PORT GROUPS: %s", vpath_label(p), vreply_text(&r, why, sizeof(why)));
			fail = true;
			continue;
		}
		state = group_state(p, &r, &group);
		if (state < 0) {
			vnote_add(n, "%s: no target port group holds this path's port (relative port %d)", vpath_label(p),
			          p->rel_port);
			fail = true;
		} else if (state != 0) {
			vnote_add(n, "%s: its target port group %d is %s, not active/optimized", vpath_label(p), group,
			          alua_state_name((unsigned)state));
			fail = true;
		} else {
			snprintf(ok + strlen(ok), sizeof(ok) - strlen(ok), "%s%s: group %d active/optimized", ok[0] ? ", " : "",
			         vpath_label(p), group);
		}
	}
	if (fail)
		return V_FAIL;
	return verdict(n, V_PASS, "TPGS %d; %s", c->paths[0].tpgs, ok);
}
