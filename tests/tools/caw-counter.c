/* caw-counter: increments a counter on a disk with COMPARE AND WRITE, as a cluster lock
 * would, for the system tests of COMPARE AND WRITE atomicity through several paths.
 *
 *   caw-counter INITIATOR_IQN URL LBA COUNT
 *
 * The counter is the big-endian u64 at the start of block LBA (512-byte blocks).  Each
 * increment reads the block and sends COMPARE AND WRITE expecting what it read and
 * writing the value plus one; a miscompare (someone else got there first) reads again.
 * Run several at once through different paths: if COMPARE AND WRITE is atomic across
 * them, the counter ends up raised by exactly the sum of their COUNTs; an increment lost
 * in between shows as a smaller total.  Prints "INITIATOR: COUNT increments, N
 * miscompares"; exit 0, 1 on any other answer (named on stderr), 2 on bad usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define BLOCK 512

static struct iscsi_context *connect_to(const char *iqn, const char *url, int *lun)
{
	struct iscsi_context *iscsi = iscsi_create_context(iqn);
	struct iscsi_url *u = iscsi ? iscsi_parse_full_url(iscsi, url) : NULL;

	if (u == NULL) {
		fprintf(stderr, "caw-counter: bad URL %s\n", url);
		return NULL;
	}
	iscsi_set_targetname(iscsi, u->target);
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	*lun = u->lun;
	if (iscsi_full_connect_sync(iscsi, u->portal, u->lun) != 0) {
		fprintf(stderr, "caw-counter: cannot log in to %s: %s\n", url, iscsi_get_error(iscsi));
		iscsi_destroy_url(u);
		iscsi_destroy_context(iscsi);
		return NULL;
	}
	iscsi_destroy_url(u);
	return iscsi;
}

/* 0: written, 1: miscompare, -1: anything else. */
static int increment(struct iscsi_context *iscsi, int lun, uint64_t lba)
{
	unsigned char buf[2 * BLOCK];
	struct scsi_task *t = iscsi_read16_sync(iscsi, lun, lba, BLOCK, BLOCK, 0, 0, 0, 0, 0);
	uint64_t v = 0;
	int rc;

	if (t == NULL || t->status != SCSI_STATUS_GOOD || t->datain.size != BLOCK) {
		fprintf(stderr, "caw-counter: READ(16) failed: %s\n", iscsi_get_error(iscsi));
		if (t)
			scsi_free_scsi_task(t);
		return -1;
	}
	memcpy(buf, t->datain.data, BLOCK);
	scsi_free_scsi_task(t);
	memcpy(buf + BLOCK, buf, BLOCK);
	for (int i = 0; i < 8; i++)
		v = v << 8 | buf[i];
	v++;
	for (int i = 7; i >= 0; i--, v >>= 8)
		buf[BLOCK + i] = (unsigned char)v;
	t = iscsi_compareandwrite_sync(iscsi, lun, lba, buf, sizeof(buf), BLOCK, 0, 0, 0, 0, 0);
	if (t == NULL) {
		fprintf(stderr, "caw-counter: COMPARE AND WRITE failed: %s\n", iscsi_get_error(iscsi));
		return -1;
	}
	if (t->status == SCSI_STATUS_GOOD)
		rc = 0;
	else if (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_MISCOMPARE)
		rc = 1;
	else {
		fprintf(stderr, "caw-counter: COMPARE AND WRITE answered status %d, sense %s: %s\n", t->status,
		        scsi_sense_key_str(t->sense.key), iscsi_get_error(iscsi));
		rc = -1;
	}
	scsi_free_scsi_task(t);
	return rc;
}

int main(int argc, char **argv)
{
	struct iscsi_context *iscsi;
	uint64_t lba, count, done = 0, miscompares = 0;
	int lun, rc = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: caw-counter INITIATOR_IQN URL LBA COUNT\n");
		return 2;
	}
	lba = strtoull(argv[3], NULL, 0);
	count = strtoull(argv[4], NULL, 0);
	if ((iscsi = connect_to(argv[1], argv[2], &lun)) == NULL)
		return 1;
	while (done < count && rc >= 0) {
		rc = increment(iscsi, lun, lba);
		if (rc == 0)
			done++;
		else if (rc == 1)
			miscompares++;
	}
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	printf("%s: %" PRIu64 " increments, %" PRIu64 " miscompares\n", argv[1], done, miscompares);
	return rc < 0 ? 1 : 0;
}
