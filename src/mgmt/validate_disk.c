/* The disk checks of `twinctl validate`: which disk every path reaches (INQUIRY, VPD 0x80
 * and 0x83, READ CAPACITY), whether the paths agree on its identity, and ALUA (TPGS and
 * REPORT TARGET PORT GROUPS). */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "mgmt/validate_check.h"

static void inquiry(struct vsession *s, int page, struct vreply *r)
{
	uint8_t cdb[6] = { 0x12, page >= 0 ? 1 : 0, page >= 0 ? (uint8_t)page : 0, 0x10, 0, 0 };

	vsession_cmd_past_ua(s, cdb, sizeof(cdb), VDIR_IN, NULL, 0x1000, r);
}

/* Reads what the path's logical unit says about itself; a problem into n otherwise. */
static bool identify(struct vpath *p, struct vnote *n)
{
	static const uint8_t rc16[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 };
	static const uint8_t rc10[10] = { 0x25 };
	struct videntity *id = &p->id;
	struct vreply r;
	char why[160];

	inquiry(p->probe, -1, &r);
	if (r.status || vparse_inquiry(r.data, r.len, id) < 0) {
		vnote_add(n, "%s: INQUIRY: %s", vpath_label(p), r.status ? vreply_text(&r, why, sizeof(why)) : "short data");
		return false;
	}
	inquiry(p->probe, 0x80, &r);
	if (r.status == 0)
		vparse_serial(r.data, r.len, id);
	inquiry(p->probe, 0x83, &r);
	vparse_designators(r.data, r.status ? 0 : r.len, id);
	if (!id->disk[0] && id->serial[0])
		snprintf(id->disk, sizeof(id->disk), "serial:%s", id->serial);
	vsession_cmd_past_ua(p->probe, rc16, sizeof(rc16), VDIR_IN, NULL, 32, &r);
	if (r.status || vparse_capacity(r.data, r.len, 1, id) < 0) {
		vsession_cmd_past_ua(p->probe, rc10, sizeof(rc10), VDIR_IN, NULL, 8, &r);
		if (r.status || vparse_capacity(r.data, r.len, 0, id) < 0) {
			vnote_add(n, "%s: READ CAPACITY: %s", vpath_label(p),
			          r.status ? vreply_text(&r, why, sizeof(why)) : "short data, no blocks, or a block size of 0 or "
			                                                        "over 64 KiB");
			return false;
		}
	}
	if (!id->disk[0]) {
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
		         vpath_label(&c->paths[i]), c->paths[i].id.disk);
		if (strcmp(c->paths[i].id.disk, first->id.disk))
			ok = false;
	}
	if (!ok)
		return verdict(n, V_FAIL, "the paths reach different disks: %s", disks);
	c->one_disk = true;
	return verdict(n, V_PASS, "one disk, %s (%s %s, %s, %u-byte blocks), on %zu path%s: %s", first->id.disk,
	               first->id.vendor, first->id.product, human_bytes(first->id.blocks * first->id.block_size, size, sizeof(size)),
	               first->id.block_size, c->n, c->n == 1 ? "" : "s", list);
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

		if (strcmp(a->id.serial, b->id.serial))
			vnote_add(n, "serial '%s' on %s but '%s' on %s", a->id.serial, vpath_label(a), b->id.serial, vpath_label(b));
		if (a->id.lu_designators_len != b->id.lu_designators_len ||
		    memcmp(a->id.lu_designators, b->id.lu_designators, a->id.lu_designators_len))
			vnote_add(n, "the logical unit's VPD 0x83 designators differ between %s and %s", vpath_label(a),
			          vpath_label(b));
		if (a->id.blocks != b->id.blocks || a->id.block_size != b->id.block_size)
			vnote_add(n, "capacity %llu blocks of %u bytes on %s but %llu of %u on %s", (unsigned long long)a->id.blocks,
			          a->id.block_size, vpath_label(a), (unsigned long long)b->id.blocks, b->id.block_size, vpath_label(b));
		if (strcmp(a->id.vendor, b->id.vendor) || strcmp(a->id.product, b->id.product))
			vnote_add(n, "INQUIRY says '%s %s' on %s but '%s %s' on %s", a->id.vendor, a->id.product, vpath_label(a),
			          b->id.vendor, b->id.product, vpath_label(b));
	}
	if (n->reason[0])
		return V_FAIL;
	return verdict(n, V_PASS, "serial '%s', %zu bytes of logical unit designators, %llu blocks of %u bytes and '%s %s' "
	                          "agree on all %zu paths", a->id.serial, a->id.lu_designators_len,
	               (unsigned long long)a->id.blocks, a->id.block_size, a->id.vendor, a->id.product, c->n);
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
		if (!p->id.tpgs) {
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
		state = vparse_port_group_state(r.data, r.len, p->id.port_group, p->id.rel_port, &group);
		if (state < 0) {
			vnote_add(n, "%s: no target port group holds this path's port (relative port %d)", vpath_label(p),
			          p->id.rel_port);
			fail = true;
		} else if (state != 0) {
			vnote_add(n, "%s: its target port group %d is %s, not active/optimized", vpath_label(p), group,
			          vparse_alua_state_name(state));
			fail = true;
		} else {
			snprintf(ok + strlen(ok), sizeof(ok) - strlen(ok), "%s%s: group %d active/optimized", ok[0] ? ", " : "",
			         vpath_label(p), group);
		}
	}
	if (fail)
		return V_FAIL;
	return verdict(n, V_PASS, "TPGS %d; %s", c->paths[0].id.tpgs, ok);
}
