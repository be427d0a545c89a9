/* Reservations under arbitrary input.  An input whose first byte is odd is an APTPL state
 * file: it must be refused with a message, or be accepted and then survive a save and
 * reload unchanged.  Otherwise the input is a script of commands from four I_T nexuses:
 * arbitrary PERSISTENT RESERVE IN/OUT CDBs and parameter lists, RESERVE/RELEASE(6), nexus
 * loss and reset.  Nothing may crash or leak, every command ends with a valid status,
 * READ FULL STATUS always agrees with READ KEYS, and whatever APTPL saved reloads to the
 * same READ FULL STATUS. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "scsi/pr.h"
#include "scsi/pr_file.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { OP_PRIN, OP_PROUT, OP_RESERVE6, OP_RELEASE6, OP_NEXUS_LOST, OP_RESET, OP_GATE, OP_COUNT };

#define NEXUSES 4
#define CDB_BYTES 10

struct harness {
	char dir[64], disk[96], state[96];
	struct store *store;
	struct scsi_lu *lu; /* gives tasks a sense format and an abort hook to call */
	struct scsi_itn itn[NEXUSES];
};

static char scratch_dir[64];

/* The scratch directory goes when the fuzzer exits (a time limit ends it with exit()). */
static void remove_scratch(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/pr.json", scratch_dir);
	unlink(path);
	rmdir(scratch_dir);
}

static struct harness *harness(void)
{
	static struct harness *h;
	char err[256];

	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	snprintf(h->dir, sizeof(h->dir), "/dev/shm/fuzz_pr.XXXXXX");
	if (!mkdtemp(h->dir))
		abort();
	snprintf(h->disk, sizeof(h->disk), "%s/disk", h->dir);
	snprintf(h->state, sizeof(h->state), "%s/pr.json", h->dir);
	struct store_params sp = { .path = h->disk, .create_size = 1 << 20 };
	struct scsi_lu_params lp = { .block_size = 512 };
	if (store_open(&sp, &h->store, err, sizeof(err)) != 0 || scsi_lu_new(&lp, h->store, &h->lu, err, sizeof(err)) != 0)
		abort();
	unlink(h->disk); /* the store keeps it open */
	memcpy(scratch_dir, h->dir, sizeof(scratch_dir));
	atexit(remove_scratch);
	for (int i = 0; i < NEXUSES; i++) {
		/* two initiators, two ports each: ISIDs and target ports both matter */
		snprintf(h->itn[i].initiator_name, sizeof(h->itn[i].initiator_name), "iqn.2026-11.fuzz:%d", i / 2);
		h->itn[i].isid[5] = (uint8_t)(i % 2);
		h->itn[i].relative_port = (uint16_t)(1 + i % 2);
		h->itn[i].tpgt = h->itn[i].relative_port;
		h->itn[i].id = (uint64_t)i + 1;
	}
	return h;
}

static void state_file(struct harness *h, const uint8_t *data, size_t size)
{
	struct pr_image img, again;
	char err[256];

	if (pr_file_parse((const char *)data, size, &img, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			__builtin_trap();
		return;
	}
	if (pr_file_save(h->state, &img, err, sizeof(err)) != 0 ||
	    pr_file_load(h->state, &again, err, sizeof(err)) != 0)
		__builtin_trap();
	if (again.generation != img.generation || again.type != img.type || again.nregs != img.nregs)
		__builtin_trap();
	for (size_t i = 0; i < img.nregs; i++) {
		const struct pr_reg *a = &img.regs[i], *b = &again.regs[i];
		if (a->key != b->key || a->holder != b->holder || a->all_tg_pt != b->all_tg_pt ||
		    (!a->all_tg_pt && a->relative_port != b->relative_port) || strcmp(a->port.name, b->port.name) != 0 ||
		    a->port.any_isid != b->port.any_isid || memcmp(a->port.isid, b->port.isid, 6) != 0)
			__builtin_trap();
	}
	pr_image_clear(&img);
	pr_image_clear(&again);
}

static void task_start(struct scsi_task *t, struct harness *h, const struct scsi_itn *itn)
{
	scsi_task_release(t);
	memset(t, 0, sizeof(*t));
	t->itn = itn;
	t->lu = h->lu;
	t->status = 0xff; /* a handler that forgets to set the status shows */
}

static void check_status(const struct scsi_task *t)
{
	switch (t->status) {
	case SCSI_STATUS_GOOD:
	case SCSI_STATUS_RESERVATION_CONFLICT:
		if (t->sense_len != 0 && t->status == SCSI_STATUS_RESERVATION_CONFLICT)
			__builtin_trap();
		break;
	case SCSI_STATUS_CHECK_CONDITION:
		if (t->sense_len == 0)
			__builtin_trap();
		break;
	default:
		__builtin_trap();
	}
}

/* READ KEYS and READ FULL STATUS list the same registrations. */
static void check_consistent(struct harness *h, struct pr_state *pr, struct scsi_task *t)
{
	task_start(t, h, &h->itn[0]);
	t->cdb[0] = 0x5e;
	put_be16(t->cdb + 7, 0xffff);
	pr_persistent_reserve_in(pr, t);
	if (t->status != SCSI_STATUS_GOOD)
		return; /* RESERVE(6) held by another nexus */
	uint32_t keys = get_be32(t->data_in + 4) / 8;
	uint32_t gen = get_be32(t->data_in);
	task_start(t, h, &h->itn[0]);
	t->cdb[0] = 0x5e;
	t->cdb[1] = 3;
	put_be16(t->cdb + 7, 0xffff);
	pr_persistent_reserve_in(pr, t);
	if (t->status != SCSI_STATUS_GOOD || get_be32(t->data_in) != gen)
		__builtin_trap();
	uint32_t len = 8 + get_be32(t->data_in + 4), off = 8, n = 0;
	if (len != t->data_in_len)
		__builtin_trap();
	while (off < len) {
		if (len - off < 24)
			__builtin_trap();
		off += 24 + get_be32(t->data_in + off + 20);
		n++;
	}
	if (off != len || n != keys)
		__builtin_trap();
}

/* READ FULL STATUS as nexus 0 sees it once RESERVE(6), which is volatile, is gone. */
static uint8_t *full_status(struct harness *h, struct pr_state *pr, struct scsi_task *t, uint32_t *len)
{
	pr_reset(pr);
	task_start(t, h, &h->itn[0]);
	t->cdb[0] = 0x5e;
	t->cdb[1] = 3;
	put_be16(t->cdb + 7, 0xffff);
	pr_persistent_reserve_in(pr, t);
	if (t->status != SCSI_STATUS_GOOD)
		__builtin_trap();
	uint8_t *copy = malloc(t->data_in_len);
	if (!copy)
		abort();
	memcpy(copy, t->data_in, t->data_in_len);
	*len = t->data_in_len;
	return copy;
}

/* What APTPL left in the state file must load and describe the same state. */
static void check_reload(struct harness *h, struct pr_state *pr, struct ua_set *ua, struct scsi_task *t)
{
	struct pr_state *again;
	char err[256];
	uint32_t len, len_again;

	if (access(h->state, F_OK) != 0)
		return;
	uint8_t *before = full_status(h, pr, t, &len);
	if (pr_state_new(h->state, ua, &again, err, sizeof(err)) != 0)
		__builtin_trap();
	uint8_t *after = full_status(h, again, t, &len_again);
	if (len != len_again || memcmp(before, after, len) != 0)
		__builtin_trap();
	free(before);
	free(after);
	pr_state_free(again);
	unlink(h->state);
}

static void script(struct harness *h, const uint8_t *data, size_t size)
{
	struct pr_state *pr;
	struct ua_set *ua;
	struct scsi_task t = { 0 };
	char err[256];

	unlink(h->state);
	if (ua_set_new(&ua) != 0 || pr_state_new(h->state, ua, &pr, err, sizeof(err)) != 0)
		abort();
	for (int i = 0; i < NEXUSES; i++) {
		enum sense_asc asc;
		ua_take(ua, &h->itn[i], &asc);
	}
	while (size >= 2 + CDB_BYTES + 2) {
		const struct scsi_itn *itn = &h->itn[data[0] % NEXUSES];
		unsigned op = data[1] % OP_COUNT;
		const uint8_t *cdb = data + 2;
		size_t len = MIN((size_t)get_be16(data + 2 + CDB_BYTES), size - (2 + CDB_BYTES + 2));
		const uint8_t *param = data + 2 + CDB_BYTES + 2;
		data = param + len;
		size -= 2 + CDB_BYTES + 2 + len;

		task_start(&t, h, itn);
		memcpy(t.cdb, cdb, CDB_BYTES);
		t.cdb_len = CDB_BYTES;
		/* a private copy, so reading past what the transport delivered is caught */
		uint8_t *copy = len ? malloc(len) : NULL;
		if (copy)
			memcpy(copy, param, len);
		t.data_out = copy;
		t.data_out_len = (uint32_t)len;
		switch (op) {
		case OP_PRIN:
			pr_persistent_reserve_in(pr, &t);
			break;
		case OP_PROUT:
			pr_persistent_reserve_out(pr, &t);
			break;
		case OP_RESERVE6:
			pr_reserve6(pr, &t);
			break;
		case OP_RELEASE6:
			pr_release6(pr, &t);
			break;
		case OP_NEXUS_LOST:
			pr_nexus_lost(pr, itn);
			t.status = SCSI_STATUS_GOOD;
			break;
		case OP_RESET:
			pr_reset(pr);
			t.status = SCSI_STATUS_GOOD;
			break;
		case OP_GATE:
			pr_allows(pr, itn, cdb[0]);
			t.status = SCSI_STATUS_GOOD;
			break;
		}
		free(copy);
		check_status(&t);
		if (t.data_in_len > get_be16(t.cdb + 7) && op == OP_PRIN)
			__builtin_trap(); /* more than the allocation length */
		check_consistent(h, pr, &t);
	}
	check_reload(h, pr, ua, &t);
	scsi_task_release(&t);
	pr_state_free(pr);
	ua_set_free(ua);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness *h = harness();

	if (size == 0)
		return 0;
	if (data[0] & 1)
		state_file(h, data + 1, size - 1);
	else
		script(h, data + 1, size - 1);
	return 0;
}
