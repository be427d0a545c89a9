/* The persistent reservation state of a logical unit, and the file that keeps it across
 * restarts when an initiator asks for APTPL (SPC-4 §5.13.5).  The file is replaced
 * atomically (temporary file, fsync, rename, fsync of the directory), so a crash leaves
 * either the old state or the new one. */
#ifndef TWINSAN_SCSI_PR_FILE_H
#define TWINSAN_SCSI_PR_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi/pr_port.h"

/* Ceiling on registrations per logical unit; beyond it REGISTER reports INSUFFICIENT
 * REGISTRATION RESOURCES. */
#define PR_MAX_REGISTRATIONS 256

/* One registration: a reservation key for the I_T nexuses of `port` on `relative_port`,
 * or on every target port (ALL_TG_PT). */
struct pr_reg {
	struct pr_port port;
	uint16_t relative_port;
	bool all_tg_pt;
	bool holder;  /* holds the reservation (types other than all-registrants) */
	uint64_t key; /* never zero */
};

/* True if some I_T nexus is covered by both registrations. */
bool pr_reg_overlaps(const struct pr_reg *a, const struct pr_reg *b);

struct pr_image {
	uint32_t generation;
	uint8_t type; /* reservation type (SPC-4 table 198), 0: no reservation */
	struct pr_reg *regs;
	size_t nregs;
};

/* Reservation types (SPC-4 table 198). */
enum pr_type {
	PR_TYPE_WE = 1,    /* write exclusive */
	PR_TYPE_EA = 3,    /* exclusive access */
	PR_TYPE_WE_RO = 5, /* write exclusive, registrants only */
	PR_TYPE_EA_RO = 6, /* exclusive access, registrants only */
	PR_TYPE_WE_AR = 7, /* write exclusive, all registrants */
	PR_TYPE_EA_AR = 8, /* exclusive access, all registrants */
};

/* True for the all-registrants types, whose holders are every registrant. */
bool pr_type_all_registrants(uint8_t type);
/* True for the six types SPC-4 defines. */
bool pr_type_valid(uint8_t type);

void pr_image_clear(struct pr_image *img);

/* Returns 0 with *img loaded, 1 if there is no file (img empty), -1 with err set if the
 * file cannot be read or is not a consistent state. */
int pr_file_load(const char *path, struct pr_image *img, char *err, size_t errlen);
/* The file's content for img (malloc'd, NUL-terminated), or NULL when out of memory. */
char *pr_file_format(const struct pr_image *img);
/* Decodes file content (as pr_file_load does after reading); 0 or -1 with err set. */
int pr_file_parse(const char *text, size_t len, struct pr_image *img, char *err, size_t errlen);
int pr_file_save(const char *path, const struct pr_image *img, char *err, size_t errlen);
/* Removes the file (APTPL turned off); 0 also if there was none. */
int pr_file_remove(const char *path, char *err, size_t errlen);

#endif
