/* Mode pages.  Each page is a row: how to fill it from a mode_state, which bits MODE
 * SELECT may change, and how to take changed values back. */
#include "scsi/mode.h"

#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "scsi/lu_state.h"

void mode_defaults(struct mode_state *m, bool write_cache)
{
	*m = (struct mode_state){ .wce = write_cache, .dexcpt = true };
}

#define PAGE_MAX 20

struct mode_page {
	uint8_t code;
	uint8_t len;                      /* whole page, header included */
	uint8_t changeable[PAGE_MAX];
	void (*fill)(const struct mode_state *m, uint8_t *p);
	void (*take)(struct mode_state *m, const uint8_t *p);
};

static void caching_fill(const struct mode_state *m, uint8_t *p)
{
	p[2] = m->wce ? 0x04 : 0;
}

static void caching_take(struct mode_state *m, const uint8_t *p)
{
	m->wce = p[2] & 0x04;
}

static void control_fill(const struct mode_state *m, uint8_t *p)
{
	p[2] = m->d_sense ? 0x04 : 0;
	p[3] = 0x10; /* unrestricted reordering */
	p[4] = m->swp ? 0x08 : 0;
	put_be16(p + 8, 0xffff); /* busy timeout: unlimited */
}

static void control_take(struct mode_state *m, const uint8_t *p)
{
	m->d_sense = p[2] & 0x04;
	m->swp = p[4] & 0x08;
}

static void exceptions_fill(const struct mode_state *m, uint8_t *p)
{
	p[2] = m->dexcpt ? 0x08 : 0;
	p[3] = m->mrie;
}

static void exceptions_take(struct mode_state *m, const uint8_t *p)
{
	m->dexcpt = p[2] & 0x08;
	m->mrie = p[3] & 0x0f;
}

/* In page code order, as "all pages" lists them. */
static const struct mode_page pages[] = {
	{ 0x08, 20, { 0, 0, 0x04 }, caching_fill, caching_take },
	{ 0x0a, 12, { 0, 0, 0x04, 0x00, 0x08 }, control_fill, control_take },
	{ 0x1c, 12, { 0, 0, 0x08, 0x0f }, exceptions_fill, exceptions_take },
};

enum page_control { PC_CURRENT, PC_CHANGEABLE, PC_DEFAULT, PC_SAVED };

static uint32_t page_put(const struct scsi_lu *lu, const struct mode_page *pg, enum page_control pc,
                         uint8_t *p)
{
	memset(p, 0, pg->len);
	if (pc == PC_CHANGEABLE)
		memcpy(p, pg->changeable, pg->len);
	else
		pg->fill(pc == PC_CURRENT ? &lu->mode : &lu->mode_default, p);
	p[0] = pg->code;
	p[1] = (uint8_t)(pg->len - 2);
	return pg->len;
}

static const struct mode_page *page_find(uint8_t code)
{
	for (size_t i = 0; i < ARRAY_SIZE(pages); i++)
		if (pages[i].code == code)
			return &pages[i];
	return NULL;
}

#define SENSE_BUF_MAX (8 + 16 + 64)

void mode_sense(struct scsi_task *task)
{
	const struct scsi_lu *lu = task->lu;
	const uint8_t *cdb = task->cdb;
	bool ten = cdb[0] == 0x5a;
	bool dbd = cdb[1] & 0x08, llbaa = ten && (cdb[1] & 0x10);
	enum page_control pc = cdb[2] >> 6;
	uint8_t code = cdb[2] & 0x3f, subpage = cdb[3];
	uint32_t hdr = ten ? 8 : 4, len, bd_len = dbd ? 0 : llbaa ? 16 : 8;
	uint8_t buf[SENSE_BUF_MAX];
	uint8_t *bd = buf + hdr;

	if (pc == PC_SAVED) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
		lu_complete(task);
		return;
	}
	if ((code == 0x3f && subpage != 0x00 && subpage != 0xff) ||
	    (code != 0x3f && (subpage != 0 || !page_find(code)))) {
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true,
		               subpage ? 3 : 2, subpage ? -1 : 5);
		lu_complete(task);
		return;
	}
	memset(buf, 0, sizeof(buf));
	if (bd_len == 16) {
		put_be64(bd, lu->nblocks);
		put_be32(bd + 12, lu->block_size);
		buf[4] = 0x01; /* LONGLBA */
	} else if (bd_len == 8) {
		put_be32(bd, lu->nblocks > UINT32_MAX ? UINT32_MAX : (uint32_t)lu->nblocks);
		put_be24(bd + 5, lu->block_size);
	}
	len = hdr + bd_len;
	for (size_t i = 0; i < ARRAY_SIZE(pages); i++)
		if (code == 0x3f || pages[i].code == code)
			len += page_put(lu, &pages[i], pc, buf + len);
	/* Device-specific parameter: WP, and DPOFUA since DPO and FUA are honoured. */
	if (ten) {
		put_be16(buf, (uint16_t)(len - 2));
		buf[3] = (uint8_t)((lu->mode.swp || store_read_only(lu->store) ? 0x80 : 0) | 0x10);
		put_be16(buf + 6, (uint16_t)bd_len);
	} else {
		buf[0] = (uint8_t)(len - 1);
		buf[2] = (uint8_t)((lu->mode.swp || store_read_only(lu->store) ? 0x80 : 0) | 0x10);
		buf[3] = (uint8_t)bd_len;
	}
	lu_reply(task, buf, len, ten ? get_be16(cdb + 7) : cdb[4]);
	lu_complete(task);
}

static void bad_parameter(struct scsi_task *task, uint16_t byte, int bit)
{
	log_debug("scsi: MODE SELECT parameter list refused at byte %u", byte);
	lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, byte, bit);
}

/* Checks and applies one page of a MODE SELECT parameter list at offset off; returns the
 * page length, or 0 after setting the error. */
static uint32_t select_page(struct scsi_task *task, struct mode_state *next, const uint8_t *list,
                            uint32_t off, uint32_t list_len)
{
	const uint8_t *p = list + off;
	const struct mode_page *pg;
	uint8_t current[PAGE_MAX];

	if (list_len - off < 2 || (p[0] & 0x40) || !(pg = page_find(p[0] & 0x3f))) {
		bad_parameter(task, (uint16_t)off, -1);
		return 0;
	}
	if (p[1] != pg->len - 2 || list_len - off < pg->len) {
		bad_parameter(task, (uint16_t)(off + 1), -1);
		return 0;
	}
	page_put(task->lu, pg, PC_CURRENT, current);
	for (uint32_t i = 2; i < pg->len; i++) {
		uint8_t fixed = (uint8_t)((p[i] ^ current[i]) & ~pg->changeable[i]);

		if (fixed) {
			bad_parameter(task, (uint16_t)(off + i), sense_bit_of(fixed));
			return 0;
		}
	}
	pg->take(next, p);
	return pg->len;
}

void mode_select(struct scsi_task *task)
{
	struct scsi_lu *lu = task->lu;
	const uint8_t *cdb = task->cdb;
	bool ten = cdb[0] == 0x55;
	uint32_t list_len = ten ? get_be16(cdb + 7) : cdb[4];
	uint32_t hdr = ten ? 8 : 4, bd_len, off;
	const uint8_t *list = task->data_out;
	struct mode_state next = lu->mode;

	if (cdb[1] & 0x01) { /* SP: nothing can be saved */
		lu_sense_field(task, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, true, 1, 0);
		goto out;
	}
	if (list_len == 0)
		goto out;
	if (list_len < hdr || task->data_out_len < list_len) {
		lu_sense(task, SENSE_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
		goto out;
	}
	bd_len = ten ? get_be16(list + 6) : list[3];
	if (bd_len && (bd_len != 8 || list_len < hdr + bd_len ||
	               get_be24(list + hdr + 5) != lu->block_size)) {
		bad_parameter(task, (uint16_t)(bd_len == 8 ? hdr + 5 : hdr - 1), -1);
		goto out;
	}
	for (off = hdr + bd_len; off < list_len;) {
		uint32_t n = select_page(task, &next, list, off, list_len);

		if (!n)
			goto out;
		off += n;
	}
	if (memcmp(&next, &lu->mode, sizeof(next)) != 0) {
		log_info("scsi: mode parameters changed");
		lu->mode = next;
		struct nexus_set others = { .all = true, .except = task->itn };

		ua_raise_set(lu->ua, &others, ASC_MODE_PARAMETERS_CHANGED);
	}
out:
	lu_complete(task);
}
