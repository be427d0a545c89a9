/* The witness's durable memory: per HA device, the node it granted the right to serve
 * alone (the holder), one small file per device in the state directory.
 *
 * A record is written crash-safely (a temporary file, fsync, rename, fsync of the
 * directory) before the GRANT that depends on it is sent, and removed the same way on
 * RELEASE, so a witness that crashes or restarts never forgets a holder it told about.
 * A record that cannot be read back stops the witness from starting: guessing could grant
 * the device to the node whose data is outdated.  The directory is locked (flock on
 * DIR/lock) by the one process using it, so the operator's --forget cannot race a
 * running witness, and two witnesses cannot share one directory.
 *
 * Record file DIR/<uuid>.holder, text:
 *   twinwitness holder 1
 *   device <uuid>
 *   holder <node id, 16 hex digits>
 *   generation <current, 16 hex> <bitmap, 16 hex>
 *   crc32c <8 hex digits of the CRC32C of the lines above> */
#ifndef TWINSAN_HA_WITNESS_STATE_H
#define TWINSAN_HA_WITNESS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WITNESS_UUID_STR 37 /* 36 characters and the NUL */

struct witness_record {
	uint8_t uuid[16];
	uint64_t holder;                  /* node id, nonzero */
	uint64_t gen_current, gen_bitmap; /* the holder's generation at its last CLAIM */
};

struct witness_state;

/* Creates DIR if missing (mode 0700), locks it and loads every record.  -1 with err
 * naming the file and the fault: DIR in use by another process, unreadable, or a damaged
 * record.  A read-only open (for listing) neither locks nor changes anything; put and
 * forget then fail with EROFS. */
int witness_state_open(const char *dir, bool read_only, struct witness_state **out, char *err, size_t errlen);
void witness_state_close(struct witness_state *s); /* NULL is fine */

const struct witness_record *witness_state_find(const struct witness_state *s, const uint8_t uuid[16]);
size_t witness_state_count(const struct witness_state *s);
const struct witness_record *witness_state_at(const struct witness_state *s, size_t i);

/* Makes `rec` durable, then the device's record; -1 with errno set and nothing changed. */
int witness_state_put(struct witness_state *s, const struct witness_record *rec);
/* Removes the device's record durably; -1 with errno (ENOENT: there was none). */
int witness_state_forget(struct witness_state *s, const uint8_t uuid[16]);

/* The operator's override (twinwitness --forget): removes the device's record file
 * whatever it holds (also a damaged one), durably; refused while another process holds
 * DIR.  -1 with err saying why. */
int witness_state_remove(const char *dir, const uint8_t uuid[16], char *err, size_t errlen);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case; parse also takes upper case. */
void witness_uuid_format(const uint8_t uuid[16], char out[WITNESS_UUID_STR]);
int witness_uuid_parse(const char *s, uint8_t uuid[16]);

#endif
