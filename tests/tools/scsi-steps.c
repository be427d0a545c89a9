/* scsi-steps: drives several iSCSI initiators (libiscsi) through a script of SCSI
 * commands and checks each answer, for system tests with two initiators on two nodes.
 *
 *   scsi-steps NAME=INITIATOR_IQN,URL... STEP...
 *
 * A STEP is one argument, "NAME COMMAND [ARG...] EXPECT": it runs COMMAND through the
 * session of NAME (logged in at its first step) and fails unless the answer is EXPECT.
 * Commands (keys are numbers, types the PR type codes):
 *   tur  read  write                     TEST UNIT READY, READ(10)/WRITE(10) of block 0
 *   register OLDKEY NEWKEY [aptpl]       PERSISTENT RESERVE OUT REGISTER
 *   reserve KEY TYPE  release KEY TYPE  clear KEY
 *   preempt KEY VICTIM TYPE  preempt-abort KEY VICTIM TYPE
 *   readkeys  readresv                   PERSISTENT RESERVE IN
 *   reserve6  release6
 *   dsense 0|1  getdsense                MODE SELECT(10)/MODE SENSE(10) of the control page
 *   lunreset                             the LUN RESET task management function
 *   clearua                              TEST UNIT READY until it is GOOD (at most 10)
 *   logout                               ends the session (the next step logs in again)
 * Sessions have one fixed ISID, so initiator ports are the same from run to run.
 * Expectations: good, conflict, check, ua=ASCQ (UNIT ATTENTION with ASC/ASCQ, hex, e.g.
 * 2a03), notready; for readkeys keys=K1,K2 (or keys=), readresv resv=KEY/TYPE (or
 * resv=none), getdsense dsense=0|1.  "eventually=EXPECT" repeats the command (every 0.1 s,
 * for at most 10 s) until it answers EXPECT: for what follows a step without an answer of
 * its own (a logout reaches the other node a little later).  Exit 0 if every step answered as expected, 1 at the
 * first that did not (named on stderr), 2 on bad usage. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define MAX_CONNS 8
#define MAX_WORDS 8
#define BLOCK 512

struct conn {
	char name[32];
	char iqn[256];
	char url[512];
	struct iscsi_context *iscsi;
	int lun;
};

static struct conn conns[MAX_CONNS];
static int n_conns;

static struct conn *find_conn(const char *name)
{
	for (int i = 0; i < n_conns; i++)
		if (strcmp(conns[i].name, name) == 0)
			return &conns[i];
	return NULL;
}

static bool login(struct conn *c)
{
	struct iscsi_url *u;

	if (c->iscsi)
		return true;
	c->iscsi = iscsi_create_context(c->iqn);
	if (!c->iscsi)
		return false;
	u = iscsi_parse_full_url(c->iscsi, c->url);
	if (!u) {
		fprintf(stderr, "%s: bad URL %s: %s\n", c->name, c->url, iscsi_get_error(c->iscsi));
		return false;
	}
	/* One ISID for every session: a step run by a later scsi-steps is the same I_T nexus. */
	iscsi_set_isid_random(c->iscsi, 0x5a5a5a, 0);
	iscsi_set_targetname(c->iscsi, u->target);
	iscsi_set_session_type(c->iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(c->iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	c->lun = u->lun;
	if (iscsi_full_connect_sync(c->iscsi, u->portal, u->lun) != 0) {
		fprintf(stderr, "%s: cannot log in to %s: %s\n", c->name, c->url, iscsi_get_error(c->iscsi));
		iscsi_destroy_url(u);
		return false;
	}
	iscsi_destroy_url(u);
	return true;
}

static void logout(struct conn *c)
{
	if (!c->iscsi)
		return;
	iscsi_logout_sync(c->iscsi);
	iscsi_destroy_context(c->iscsi);
	c->iscsi = NULL;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Runs a CDB; NULL if the transport failed. */
static struct scsi_task *run(struct conn *c, uint8_t *cdb, int cdb_len, int dir, uint8_t *data, int len)
{
	struct scsi_task *t = scsi_create_task(cdb_len, cdb, dir, len);
	struct iscsi_data d = { .size = (size_t)len, .data = data };

	if (!t)
		return NULL;
	if (iscsi_scsi_command_sync(c->iscsi, c->lun, t, dir == SCSI_XFER_WRITE ? &d : NULL) == NULL) {
		fprintf(stderr, "%s: transport error: %s\n", c->name, iscsi_get_error(c->iscsi));
		scsi_free_scsi_task(t);
		return NULL;
	}
	return t;
}

static struct scsi_task *prout(struct conn *c, int sa, int type, uint64_t key, uint64_t sa_key, bool aptpl)
{
	uint8_t cdb[10] = { 0x5f, (uint8_t)sa, (uint8_t)type, 0, 0, 0, 0, 0, 24, 0 };
	uint8_t p[24] = { 0 };

	put_be64(p, key);
	put_be64(p + 8, sa_key);
	p[20] = aptpl ? 1 : 0;
	return run(c, cdb, 10, SCSI_XFER_WRITE, p, 24);
}

static struct scsi_task *prin(struct conn *c, int sa)
{
	uint8_t cdb[10] = { 0x5e, (uint8_t)sa, 0, 0, 0, 0, 0, 0x10, 0, 0 };

	return run(c, cdb, 10, SCSI_XFER_READ, NULL, 0x1000);
}

static struct scsi_task *mode_select_dsense(struct conn *c, bool on)
{
	uint8_t cdb[10] = { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0 };
	/* header (8), control page (12) as MODE SENSE reports it, D_SENSE changed */
	uint8_t p[20] = { 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 10, on ? 0x04 : 0, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0 };

	return run(c, cdb, 10, SCSI_XFER_WRITE, p, 20);
}

static struct scsi_task *mode_sense_control(struct conn *c)
{
	uint8_t cdb[10] = { 0x5a, 0x08, 0x0a, 0, 0, 0, 0, 0, 64, 0 };

	return run(c, cdb, 10, SCSI_XFER_READ, NULL, 64);
}

/* What a task's answer was, in the words of the expectations. */
static void describe(const struct scsi_task *t, char *out, size_t len)
{
	if (t->status == SCSI_STATUS_GOOD)
		snprintf(out, len, "good");
	else if (t->status == SCSI_STATUS_RESERVATION_CONFLICT)
		snprintf(out, len, "conflict");
	else if (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION)
		snprintf(out, len, "ua=%04x", t->sense.ascq);
	else if (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_NOT_READY)
		snprintf(out, len, "notready");
	else if (t->status == SCSI_STATUS_CHECK_CONDITION)
		snprintf(out, len, "check(%x/%04x)", t->sense.key, t->sense.ascq);
	else
		snprintf(out, len, "status 0x%02x", t->status);
}

static void describe_keys(const struct scsi_task *t, char *out, size_t len)
{
	const uint8_t *d = t->datain.data;
	size_t n = t->datain.size >= 8 ? get_be(d + 4, 4) / 8 : 0, off = 0;

	off += (size_t)snprintf(out, len, "keys=");
	for (size_t i = 0; i < n && 8 + 8 * i + 8 <= (size_t)t->datain.size && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%" PRIu64, i ? "," : "", get_be(d + 8 + 8 * i, 8));
}

static void describe_resv(const struct scsi_task *t, char *out, size_t len)
{
	const uint8_t *d = t->datain.data;

	if (t->datain.size < 24 || get_be(d + 4, 4) < 16)
		snprintf(out, len, "resv=none");
	else
		snprintf(out, len, "resv=%" PRIu64 "/%u", get_be(d + 8, 8), d[21] & 0x0f);
}

static void describe_dsense(const struct scsi_task *t, char *out, size_t len)
{
	const uint8_t *d = t->datain.data;
	size_t bd = t->datain.size >= 8 ? get_be(d + 6, 2) : 0;

	if ((size_t)t->datain.size < 8 + bd + 3)
		snprintf(out, len, "short mode data");
	else
		snprintf(out, len, "dsense=%d", (d[8 + bd + 2] & 0x04) ? 1 : 0);
}

static uint64_t num(const char *s) { return strtoull(s, NULL, 0); }

/* Runs one step's command; fills `got` with its answer.  False on bad usage. */
static bool step(struct conn *c, char **w, int nw, char *got, size_t len)
{
	const char *cmd = w[0];
	struct scsi_task *t = NULL;
	void (*say)(const struct scsi_task *, char *, size_t) = describe;
	uint8_t cdb[10] = { 0 }, block[BLOCK] = { 0 };

	snprintf(got, len, "transport error");
	if (strcmp(cmd, "logout") == 0) {
		logout(c);
		snprintf(got, len, "good");
		return true;
	}
	if (!login(c))
		return true;
	if (strcmp(cmd, "tur") == 0) {
		t = run(c, cdb, 6, SCSI_XFER_NONE, NULL, 0);
	} else if (strcmp(cmd, "clearua") == 0) {
		for (int i = 0; i < 10; i++) {
			if (t)
				scsi_free_scsi_task(t);
			t = run(c, cdb, 6, SCSI_XFER_NONE, NULL, 0);
			if (!t || t->status == SCSI_STATUS_GOOD)
				break;
		}
	} else if (strcmp(cmd, "read") == 0) {
		uint8_t r[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
		t = run(c, r, 10, SCSI_XFER_READ, NULL, BLOCK);
	} else if (strcmp(cmd, "write") == 0) {
		uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
		t = run(c, wr, 10, SCSI_XFER_WRITE, block, BLOCK);
	} else if (strcmp(cmd, "register") == 0 && (nw == 3 || nw == 4)) {
		t = prout(c, 0, 0, num(w[1]), num(w[2]), nw == 4 && strcmp(w[3], "aptpl") == 0);
	} else if (strcmp(cmd, "reserve") == 0 && nw == 3) {
		t = prout(c, 1, (int)num(w[2]), num(w[1]), 0, false);
	} else if (strcmp(cmd, "release") == 0 && nw == 3) {
		t = prout(c, 2, (int)num(w[2]), num(w[1]), 0, false);
	} else if (strcmp(cmd, "clear") == 0 && nw == 2) {
		t = prout(c, 3, 0, num(w[1]), 0, false);
	} else if ((strcmp(cmd, "preempt") == 0 || strcmp(cmd, "preempt-abort") == 0) && nw == 4) {
		t = prout(c, cmd[7] ? 5 : 4, (int)num(w[3]), num(w[1]), num(w[2]), false);
	} else if (strcmp(cmd, "readkeys") == 0) {
		t = prin(c, 0);
		say = describe_keys;
	} else if (strcmp(cmd, "readresv") == 0) {
		t = prin(c, 1);
		say = describe_resv;
	} else if (strcmp(cmd, "reserve6") == 0 || strcmp(cmd, "release6") == 0) {
		cdb[0] = cmd[1] == 'e' && cmd[2] == 's' ? 0x16 : 0x17;
		t = run(c, cdb, 6, SCSI_XFER_NONE, NULL, 0);
	} else if (strcmp(cmd, "dsense") == 0 && nw == 2) {
		t = mode_select_dsense(c, num(w[1]) != 0);
	} else if (strcmp(cmd, "getdsense") == 0) {
		t = mode_sense_control(c);
		say = describe_dsense;
	} else if (strcmp(cmd, "lunreset") == 0) {
		snprintf(got, len, iscsi_task_mgmt_lun_reset_sync(c->iscsi, (uint32_t)c->lun) == 0 ? "good" : "tmf failed");
		return true;
	} else {
		return false;
	}
	if (!t)
		return true;
	if (say != describe && t->status != SCSI_STATUS_GOOD)
		say = describe;
	say(t, got, len);
	scsi_free_scsi_task(t);
	return true;
}

int main(int argc, char **argv)
{
	int i, rc = 0;

	for (i = 1; i < argc && strchr(argv[i], '=') && strchr(argv[i], ',') && n_conns < MAX_CONNS; i++) {
		struct conn *c = &conns[n_conns++];
		char *eq = strchr(argv[i], '='), *comma = strchr(eq, ',');

		snprintf(c->name, sizeof(c->name), "%.*s", (int)(eq - argv[i]), argv[i]);
		snprintf(c->iqn, sizeof(c->iqn), "%.*s", (int)(comma - eq - 1), eq + 1);
		snprintf(c->url, sizeof(c->url), "%s", comma + 1);
	}
	if (n_conns == 0) {
		fprintf(stderr, "usage: scsi-steps NAME=INITIATOR_IQN,URL... \"NAME COMMAND [ARG...] EXPECT\"...\n");
		return 2;
	}
	for (; i < argc && rc == 0; i++) {
		char buf[512], got[256], *w[MAX_WORDS], *save = NULL;
		int nw = 0;
		struct conn *c;

		snprintf(buf, sizeof(buf), "%s", argv[i]);
		for (char *tok = strtok_r(buf, " ", &save); tok && nw < MAX_WORDS; tok = strtok_r(NULL, " ", &save))
			w[nw++] = tok;
		if (nw < 3 || !(c = find_conn(w[0])) || !step(c, w + 1, nw - 2, got, sizeof(got))) {
			fprintf(stderr, "bad step \"%s\"\n", argv[i]);
			rc = 2;
			break;
		}
		const char *want = w[nw - 1];
		bool eventually = strncmp(want, "eventually=", 11) == 0;

		if (eventually)
			want += 11;
		for (int tries = 1; eventually && strcmp(got, want) != 0 && tries < 100; tries++) {
			usleep(100000);
			step(c, w + 1, nw - 2, got, sizeof(got));
		}
		if (strcmp(got, want) != 0) {
			fprintf(stderr, "step \"%s\": got %s\n", argv[i], got);
			rc = 1;
		}
	}
	for (int j = 0; j < n_conns; j++)
		logout(&conns[j]);
	return rc;
}
