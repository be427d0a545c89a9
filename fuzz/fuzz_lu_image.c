/* Fuzzes the decoder of the shared SCSI state an HA partner sends (scsi/lu_image.h): it
 * must never crash, and whatever it accepts must encode again into bytes it accepts with
 * the same registrations, mode parameters and effects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/lu_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lu_image im, again;
	struct pr_snapshot snap;
	uint8_t *buf;
	size_t len;
	char err[256];

	if (lu_image_decode(data, size, &im, err, sizeof(err)) != 0)
		return 0;
	snap = im.rest;
	snap.img = &im.pr;
	if (lu_image_encode(&snap, &im.mode, &im.journal, &buf, &len) != 0)
		abort();
	if (lu_image_decode(buf, len, &again, err, sizeof(err)) != 0)
		abort();
	if (again.pr.nregs != im.pr.nregs || again.pr.type != im.pr.type || again.journal.n != im.journal.n ||
	    memcmp(&again.mode, &im.mode, sizeof(im.mode)) != 0)
		abort();
	lu_image_free(&again);
	lu_image_free(&im);
	free(buf);
	return 0;
}
