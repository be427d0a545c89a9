/* libiscsi as the transport of `twinctl validate` (see validate_session.h).  Every command
 * goes through libiscsi's asynchronous interface with a slot the session owns: a command
 * that never ends keeps its slot until the context is destroyed, so a late callback never
 * writes into freed memory. */
#include "mgmt/validate_session.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common/util.h"

#define CMD_DEADLINE_MS 15000
#define LOGIN_TIMEOUT_S 15
#define UA_RETRIES 8

struct vslot {
	struct vslot *next;
	struct scsi_task *task;
	bool done;
	int status;
	struct vend *end; /* a queued command's end, for its caller */
};

struct vsession {
	struct iscsi_context *iscsi;
	struct iscsi_url *url;
	struct vslot *slots;
	bool broken; /* the connection failed: every later command gets no answer */
};

int vsession_parse_url(const char *url, struct vpath_name *out, char *err, size_t errlen)
{
	struct iscsi_context *iscsi = iscsi_create_context("iqn.2026-11.org.twinsan:validate-parse");
	struct iscsi_url *u;
	int rc = -1;

	if (!iscsi) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	u = strncmp(url, "iscsi://", 8) ? NULL : iscsi_parse_full_url(iscsi, url);
	if (!u) {
		snprintf(err, errlen, "'%s' is no iscsi://HOST[:PORT]/TARGET-IQN/LUN URL", url);
	} else {
		snprintf(out->portal, sizeof(out->portal), "%s", u->portal);
		snprintf(out->target, sizeof(out->target), "%s", u->target);
		out->lun = u->lun;
		rc = 0;
	}
	if (u)
		iscsi_destroy_url(u);
	iscsi_destroy_context(iscsi);
	return rc;
}

/* Whether anything listens on portal (HOST[:PORT], [IPv6][:PORT]): libiscsi's own word
 * for a refused or silent portal says little, this says what the system said. */
static int reachable(const char *portal, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char host[256], port[16] = "3260";
	const char *colon = strrchr(portal, ':'), *end = portal[0] == '[' ? strchr(portal, ']') : NULL;
	size_t hostlen = end ? (size_t)(end - portal - 1) : colon ? (size_t)(colon - portal) : strlen(portal);
	int fd = -1, rc, soerr = 0;

	if (end ? end[1] == ':' : colon != NULL)
		snprintf(port, sizeof(port), "%s", (end ? end + 1 : colon) + 1);
	snprintf(host, sizeof(host), "%.*s", (int)hostlen, portal + (end ? 1 : 0));
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", portal, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		soerr = errno;
	} else if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		socklen_t len = sizeof(soerr);

		soerr = errno;
		if (soerr == EINPROGRESS && poll(&p, 1, LOGIN_TIMEOUT_S * 1000) <= 0)
			soerr = ETIMEDOUT;
		else if (soerr == EINPROGRESS)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	}
	freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	if (!soerr)
		return 0;
	snprintf(err, errlen, "cannot connect to %s: %s", portal, strerror(soerr));
	return -1;
}

/* CHAP for a login about to happen; -1 with err. */
static int set_auth(struct iscsi_context *iscsi, const struct vauth *auth, char *err, size_t errlen)
{
	if (auth && auth->user && iscsi_set_initiator_username_pwd(iscsi, auth->user, auth->secret) < 0) {
		snprintf(err, errlen, "CHAP: %s", iscsi_get_error(iscsi));
		return -1;
	}
	if (auth && auth->mutual_user && iscsi_set_target_username_pwd(iscsi, auth->mutual_user, auth->mutual_secret) < 0) {
		snprintf(err, errlen, "mutual CHAP: %s", iscsi_get_error(iscsi));
		return -1;
	}
	return 0;
}

int vsession_discover(const char *portal, const char *initiator, const struct vauth *auth, vsession_found_fn *fn,
                      void *ctx, char *err, size_t errlen)
{
	struct iscsi_context *iscsi = iscsi_create_context(initiator);
	struct iscsi_discovery_address *found = NULL;
	int rc = -1;

	if (!iscsi) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	iscsi_set_noautoreconnect(iscsi, 1);
	iscsi_set_timeout(iscsi, LOGIN_TIMEOUT_S);
	iscsi_set_session_type(iscsi, ISCSI_SESSION_DISCOVERY);
	if (set_auth(iscsi, auth, err, errlen) < 0)
		goto out;
	if (reachable(portal, err, errlen) < 0)
		goto out;
	if (iscsi_connect_sync(iscsi, portal) < 0 || iscsi_login_sync(iscsi) < 0 || !(found = iscsi_discovery_sync(iscsi))) {
		snprintf(err, errlen, "cannot discover the targets of %s as %s: %s", portal, initiator, iscsi_get_error(iscsi));
		goto out;
	}
	for (const struct iscsi_discovery_address *t = found; t; t = t->next)
		for (const struct iscsi_target_portal *p = t->portals; p; p = p->next) {
			char address[256];

			/* "HOST:PORT,TPGT" */
			snprintf(address, sizeof(address), "%.*s", (int)strcspn(p->portal, ","), p->portal);
			fn(ctx, t->target_name, address);
		}
	iscsi_free_discovery_data(iscsi, found);
	iscsi_logout_sync(iscsi);
	rc = 0;
out:
	iscsi_destroy_context(iscsi);
	return rc;
}

int vsession_open(const char *url, const char *initiator, const struct vauth *auth, struct vsession **out, char *err,
                  size_t errlen)
{
	struct vsession *s = calloc(1, sizeof(*s));

	if (!s || !(s->iscsi = iscsi_create_context(initiator))) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return -1;
	}
	/* A path that fails must show as failed, not be dialed again behind our back. */
	iscsi_set_noautoreconnect(s->iscsi, 1);
	iscsi_set_timeout(s->iscsi, LOGIN_TIMEOUT_S);
	s->url = iscsi_parse_full_url(s->iscsi, url);
	if (!s->url) {
		snprintf(err, errlen, "'%s' is no iscsi:// URL: %s", url, iscsi_get_error(s->iscsi));
		goto fail;
	}
	iscsi_set_session_type(s->iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(s->iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_targetname(s->iscsi, s->url->target);
	if (set_auth(s->iscsi, auth, err, errlen) < 0)
		goto fail;
	if (reachable(s->url->portal, err, errlen) < 0)
		goto fail;
	if (iscsi_full_connect_sync(s->iscsi, s->url->portal, s->url->lun) < 0) {
		snprintf(err, errlen, "cannot log in to %s at %s as %s: %s", s->url->target, s->url->portal, initiator,
		         iscsi_get_error(s->iscsi));
		goto fail;
	}
	iscsi_set_timeout(s->iscsi, 0);
	*out = s;
	return 0;
fail:
	vsession_close(s);
	return -1;
}

void vsession_close(struct vsession *s)
{
	if (!s)
		return;
	if (iscsi_is_logged_in(s->iscsi) && !s->broken && !s->slots) {
		/* A target that does not answer the logout does not hold the tool up. */
		iscsi_set_timeout(s->iscsi, LOGIN_TIMEOUT_S);
		iscsi_logout_sync(s->iscsi);
	}
	if (s->url)
		iscsi_destroy_url(s->url);
	iscsi_destroy_context(s->iscsi);
	while (s->slots) {
		struct vslot *n = s->slots->next;

		scsi_free_scsi_task(s->slots->task);
		free(s->slots);
		s->slots = n;
	}
	free(s);
}

static void slot_done(struct iscsi_context *iscsi, int status, void *command_data, void *private_data)
{
	struct vslot *sl = private_data;

	sl->done = true;
	sl->status = status;
	if (sl->end && status >= 0 && status < 0x100)
		*sl->end = (struct vend){ status, (int)sl->task->sense.key, sl->task->sense.ascq };
}

/* Services the connection until sl ended (NULL: every queued command did) or ms passed. */
static void pump(struct vsession *s, const struct vslot *sl, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;

	for (;;) {
		struct pollfd p = { .fd = iscsi_get_fd(s->iscsi) };
		bool pending = false;
		uint64_t now = now_ms();

		for (const struct vslot *x = s->slots; x && !sl; x = x->next)
			pending |= x->end && !x->done;
		if ((sl ? sl->done : !pending) || s->broken || now >= deadline)
			return;
		p.events = (short)iscsi_which_events(s->iscsi);
		if (poll(&p, 1, (int)(deadline - now < 200 ? deadline - now : 200)) < 0)
			continue;
		if (iscsi_service(s->iscsi, p.revents) < 0)
			s->broken = true;
	}
}

/* Drops the slots of ended commands. */
static void reap(struct vsession *s)
{
	for (struct vslot **p = &s->slots; *p;) {
		struct vslot *sl = *p;

		if (sl->done) {
			*p = sl->next;
			scsi_free_scsi_task(sl->task);
			free(sl);
		} else {
			p = &sl->next;
		}
	}
}

static struct vslot *send_cmd(struct vsession *s, const uint8_t *cdb, size_t cdb_len, enum vdir dir, const void *out,
                              size_t len)
{
	static const int dirs[] = { [VDIR_NONE] = SCSI_XFER_NONE, [VDIR_IN] = SCSI_XFER_READ, [VDIR_OUT] = SCSI_XFER_WRITE };
	struct iscsi_data d = { .size = len, .data = (unsigned char *)out };
	struct vslot *sl;

	if (s->broken || !(sl = calloc(1, sizeof(*sl))))
		return NULL;
	sl->task = scsi_create_task((int)cdb_len, (unsigned char *)cdb, dirs[dir], dir == VDIR_NONE ? 0 : (int)len);
	if (!sl->task) {
		free(sl);
		return NULL;
	}
	if (iscsi_scsi_command_async(s->iscsi, s->url->lun, sl->task, slot_done, dir == VDIR_OUT ? &d : NULL, sl) < 0) {
		scsi_free_scsi_task(sl->task);
		free(sl);
		return NULL;
	}
	sl->next = s->slots;
	s->slots = sl;
	return sl;
}

void vsession_cmd(struct vsession *s, const uint8_t *cdb, size_t cdb_len, enum vdir dir, const void *out, size_t len,
                  struct vreply *r)
{
	struct vslot *sl = send_cmd(s, cdb, cdb_len, dir, out, dir == VDIR_IN && len > VSESSION_DATA_MAX ? VSESSION_DATA_MAX : len);

	r->status = VREPLY_NO_ANSWER;
	r->sense_key = 0;
	r->asc = 0;
	r->len = 0;
	if (!sl)
		return;
	pump(s, sl, CMD_DEADLINE_MS);
	if (sl->done && sl->status >= 0 && sl->status < 0x100) {
		r->status = sl->status;
		r->sense_key = (int)sl->task->sense.key;
		r->asc = sl->task->sense.ascq;
		if (dir == VDIR_IN && sl->task->datain.size > 0) {
			r->len = (size_t)sl->task->datain.size < sizeof(r->data) ? (size_t)sl->task->datain.size : sizeof(r->data);
			memcpy(r->data, sl->task->datain.data, r->len);
		}
	} else if (!sl->done) {
		/* The target may still answer; nothing more goes on this nexus. */
		s->broken = true;
	}
	reap(s);
}

void vsession_cmd_past_ua(struct vsession *s, const uint8_t *cdb, size_t cdb_len, enum vdir dir, const void *out,
                          size_t len, struct vreply *r)
{
	for (int i = 0; i < UA_RETRIES; i++) {
		vsession_cmd(s, cdb, cdb_len, dir, out, len, r);
		if (r->status != SCSI_STATUS_CHECK_CONDITION || r->sense_key != SCSI_SENSE_UNIT_ATTENTION)
			return;
	}
}

int vsession_queue(struct vsession *s, const uint8_t *cdb, size_t cdb_len, size_t len, struct vend *end)
{
	struct vslot *sl = send_cmd(s, cdb, cdb_len, VDIR_IN, NULL, len);

	uint64_t deadline = now_ms() + CMD_DEADLINE_MS;

	*end = (struct vend){ VREPLY_NO_ANSWER, 0, 0 };
	if (!sl)
		return -1;
	sl->end = end;
	/* On the wire now, or it would reach the target after what the caller does next. */
	while (!s->broken && (iscsi_which_events(s->iscsi) & POLLOUT) && now_ms() < deadline) {
		struct pollfd p = { .fd = iscsi_get_fd(s->iscsi), .events = POLLOUT };

		if (poll(&p, 1, 200) > 0 && iscsi_service(s->iscsi, p.revents) < 0)
			s->broken = true;
	}
	return 0;
}

int vsession_wait(struct vsession *s, unsigned ms)
{
	int left = 0;

	pump(s, NULL, ms);
	for (const struct vslot *x = s->slots; x; x = x->next)
		left += x->end && !x->done;
	/* The callers' variables may go away now. */
	for (struct vslot *x = s->slots; x; x = x->next)
		x->end = NULL;
	reap(s);
	return left;
}

const char *vreply_text(const struct vreply *r, char *buf, size_t len)
{
	static const struct {
		int status;
		const char *name;
	} names[] = {
		{ VREPLY_NO_ANSWER, "no answer" }, { SCSI_STATUS_GOOD, "GOOD" }, { SCSI_STATUS_BUSY, "BUSY" },
		{ SCSI_STATUS_RESERVATION_CONFLICT, "RESERVATION CONFLICT" }, { SCSI_STATUS_TASK_SET_FULL, "TASK SET FULL" },
		{ SCSI_STATUS_TASK_ABORTED, "TASK ABORTED" },
	};

	if (r->status == SCSI_STATUS_CHECK_CONDITION) {
		snprintf(buf, len, "CHECK CONDITION: %s, %s (0x%04x)", scsi_sense_key_str(r->sense_key),
		         scsi_sense_ascq_str(r->asc), (unsigned)r->asc);
		return buf;
	}
	snprintf(buf, len, "status 0x%02x", (unsigned)r->status);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].status == r->status)
			snprintf(buf, len, "%s", names[i].name);
	return buf;
}

bool vreply_sense_is(const struct vreply *r, int key, int asc)
{
	return r->status == SCSI_STATUS_CHECK_CONDITION && r->sense_key == key && r->asc == asc;
}
