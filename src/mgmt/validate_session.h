/* One I_T nexus of `twinctl validate`: an initiator name logged in to one path (an iSCSI
 * URL) through libiscsi, carrying raw SCSI commands.  The checks build their CDBs and read
 * the answers themselves; libiscsi is only the transport.  Every command has a deadline,
 * so a target that never answers makes a failed check, not a hung tool. */
#ifndef TWINSAN_MGMT_VALIDATE_SESSION_H
#define TWINSAN_MGMT_VALIDATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vsession;

/* CHAP for every login; NULL user: none. */
struct vauth {
	const char *user, *secret;
	const char *mutual_user, *mutual_secret;
};

/* What a URL names. */
struct vpath_name {
	char portal[256];
	char target[256];
	int lun;
};

/* Parses iscsi://HOST[:PORT]/TARGET/LUN; -1 with err when it is not one. */
int vsession_parse_url(const char *url, struct vpath_name *out, char *err, size_t errlen);

/* Asks the portal HOST[:PORT] which targets it offers and where (a discovery session's
 * SendTargets=All), calling fn for every target and portal address ("HOST:PORT"); -1
 * with err if the portal cannot be reached or refuses. */
typedef void vsession_found_fn(void *ctx, const char *target, const char *address);
int vsession_discover(const char *portal, const char *initiator, const struct vauth *auth, vsession_found_fn *fn,
                      void *ctx, char *err, size_t errlen);

/* Logs initiator in to the path url names (and checks the LUN is there); -1 with err. */
int vsession_open(const char *url, const char *initiator, const struct vauth *auth, struct vsession **out, char *err,
                  size_t errlen);
void vsession_close(struct vsession *s);

enum vdir { VDIR_NONE, VDIR_IN, VDIR_OUT };

#define VREPLY_NO_ANSWER (-1) /* no status within the deadline, or the connection broke */
#define VSESSION_DATA_MAX 16384

struct vreply {
	int status;    /* SCSI status (0 GOOD, 2 CHECK CONDITION, 0x18 RESERVATION CONFLICT...) */
	int sense_key; /* with CHECK CONDITION */
	int asc;       /* ASC << 8 | ASCQ */
	uint8_t data[VSESSION_DATA_MAX];
	size_t len;
};

/* Sends one command and waits for its end.  dir VDIR_OUT sends len bytes of out;
 * VDIR_IN accepts up to len bytes (at most VSESSION_DATA_MAX) into r->data. */
void vsession_cmd(struct vsession *s, const uint8_t *cdb, size_t cdb_len, enum vdir dir, const void *out, size_t len,
                  struct vreply *r);
/* The same, sent again after unit attentions, as an initiator does once it noted them. */
void vsession_cmd_past_ua(struct vsession *s, const uint8_t *cdb, size_t cdb_len, enum vdir dir, const void *out,
                          size_t len, struct vreply *r);

/* Queued commands, for checks that need commands in flight: vsession_queue() sends a
 * Data-In command without waiting (its end later in *end: status VREPLY_NO_ANSWER until
 * then; no data is kept); vsession_wait() waits up to ms for all of them and returns how
 * many are left. */
struct vend {
	int status, sense_key, asc;
};
int vsession_queue(struct vsession *s, const uint8_t *cdb, size_t cdb_len, size_t len, struct vend *end);
int vsession_wait(struct vsession *s, unsigned ms);

/* "GOOD", "RESERVATION CONFLICT", "CHECK CONDITION: ILLEGAL REQUEST, asc/ascq 0x2400"... */
const char *vreply_text(const struct vreply *r, char *buf, size_t len);
bool vreply_sense_is(const struct vreply *r, int key, int asc);

#endif
