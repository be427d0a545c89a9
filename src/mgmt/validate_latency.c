/* The access latency checks of `twinctl validate`: a short series of 4 KiB commands, one
 * at a time, through every path; the median and the 99th percentile.  Writes go only
 * with --write, to the disk's last REGION_SLOTS 4 KiB pieces, which are read first and
 * written back (and checked) afterwards. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "mgmt/validate_check.h"

#define IO_BYTES 4096
#define DEFAULT_SAMPLES 200
#define REGION_SLOTS 32

struct series {
	uint64_t *us;
	unsigned n;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* xorshift64: the read offsets, the same for every run. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One 4 KiB READ(16) or WRITE(16) at unit (in 4 KiB units); its time is added to s when s
 * is given.  False (noted) unless it ends GOOD. */
static bool io(struct vpath *p, bool write, uint64_t unit, const uint8_t *data, struct vreply *r, struct series *s,
               struct vnote *n)
{
	uint32_t per_unit = IO_BYTES / p->id.block_size;
	uint8_t cdb[16] = { write ? 0x8a : 0x88 };
	uint64_t t0 = now_us();
	char why[200];

	put_be64(cdb + 2, unit * per_unit);
	put_be32(cdb + 10, per_unit);
	vsession_cmd_past_ua(p->probe, cdb, sizeof(cdb), write ? VDIR_OUT : VDIR_IN, data, IO_BYTES, r);
	if (s)
		s->us[s->n++] = now_us() - t0;
	if (r->status == 0 && (write || r->len == IO_BYTES))
		return true;
	vnote_add(n, "%s: %s of 4 KiB at LBA %llu: %s", vpath_label(p), write ? "WRITE" : "READ",
	          (unsigned long long)(unit * per_unit), r->status ? vreply_text(r, why, sizeof(why)) : "short data");
	return false;
}

/* Notes "ADDRESS median X us, p99 Y us" and adds the figures to the details. */
static void report(const struct vpath *p, struct series *s, char *text, size_t len, json_t *list)
{
	uint64_t median, p99;

	qsort(s->us, s->n, sizeof(*s->us), cmp_u64);
	median = s->us[s->n / 2];
	p99 = s->us[(s->n * 99 + 99) / 100 - 1];
	snprintf(text + strlen(text), len - strlen(text), "%s%s median %llu us, p99 %llu us", text[0] ? "; " : "",
	         vpath_label(p), (unsigned long long)median, (unsigned long long)p99);
	json_array_append_new(list, json_pack("{s:s, s:i, s:I, s:I}", "portal", p->name.portal, "samples", s->n,
	                                      "median_us", (json_int_t)median, "p99_us", (json_int_t)p99));
}

static bool usable(const struct vctx *c, struct vnote *n)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct vpath *p = &c->paths[i];

		if (!p->identified || !p->id.block_size || p->id.block_size > IO_BYTES || IO_BYTES % p->id.block_size ||
		    p->id.blocks * p->id.block_size < (uint64_t)REGION_SLOTS * IO_BYTES) {
			vnote_add(n, "%s: %s", vpath_label(p), !p->identified ? "not identified (see paths)"
			                                                        : "needs blocks of at most 4 KiB and a disk of at "
			                                                          "least 128 KiB");
			return false;
		}
	}
	return true;
}

enum vverdict vcheck_latency_read(struct vctx *c, struct vnote *n)
{
	unsigned samples = c->o->samples ? c->o->samples : DEFAULT_SAMPLES;
	struct series s = { calloc(samples, sizeof(uint64_t)), 0 };
	json_t *list = json_array();
	char text[1024] = "";
	bool ok = s.us && usable(c, n);
	struct vreply r;

	for (size_t i = 0; ok && i < c->n; i++) {
		struct vpath *p = &c->paths[i];
		uint64_t units = p->id.blocks * p->id.block_size / IO_BYTES, state = 0x9e3779b97f4a7c15ULL;

		s.n = 0;
		for (unsigned k = 0; ok && k < samples; k++)
			ok = io(p, false, next_random(&state) % units, NULL, &r, &s, n);
		if (ok)
			report(p, &s, text, sizeof(text), list);
	}
	free(s.us);
	json_object_set_new(n->details, "paths", list);
	if (!ok)
		return V_FAIL;
	return verdict(n, V_PASS, "%u random reads per path: %s", samples, text);
}

/* The data of write k: unlike any other write's. */
static void fill(uint8_t *data, unsigned k)
{
	memset(data, (int)(k & 0xff), IO_BYTES);
	put_be32(data, k);
}

/* Writes the series through p to the region, whose data is saved in keep; then checks the
 * last data written, writes keep back and checks that. */
static bool write_series(struct vpath *p, uint8_t *keep, unsigned samples, struct series *s, struct vnote *n)
{
	uint64_t first = p->id.blocks * p->id.block_size / IO_BYTES - REGION_SLOTS;
	uint8_t data[IO_BYTES];
	struct vreply r;
	bool ok = true, restored = true;

	for (unsigned k = 0; ok && k < samples; k++) {
		fill(data, k);
		ok = io(p, true, first + k % REGION_SLOTS, data, &r, s, n);
	}
	for (unsigned slot = 0; ok && slot < REGION_SLOTS && slot < samples; slot++) {
		fill(data, slot + (samples - 1 - slot) / REGION_SLOTS * REGION_SLOTS); /* the last write there */
		ok = io(p, false, first + slot, NULL, &r, NULL, n);
		if (ok && memcmp(r.data, data, IO_BYTES)) {
			vnote_add(n, "%s: a 4 KiB block written did not read back", vpath_label(p));
			ok = false;
		}
	}
	for (unsigned slot = 0; slot < REGION_SLOTS; slot++)
		restored &= io(p, true, first + slot, keep + (size_t)slot * IO_BYTES, &r, NULL, n) &&
		            io(p, false, first + slot, NULL, &r, NULL, n) &&
		            !memcmp(r.data, keep + (size_t)slot * IO_BYTES, IO_BYTES);
	if (!restored)
		vnote_add(n, "%s: the last %u KiB of the disk could NOT be restored: they held data this tool wrote",
		          vpath_label(p), REGION_SLOTS * IO_BYTES / 1024);
	return ok && restored;
}

enum vverdict vcheck_latency_write(struct vctx *c, struct vnote *n)
{
	unsigned samples = c->o->samples ? c->o->samples : DEFAULT_SAMPLES;
	struct series s = { NULL, 0 };
	uint8_t *keep;
	json_t *list;
	char text[1024] = "";
	bool ok;

	if (!c->o->write)
		return verdict(n, V_SKIP, "writes need --write: the last %u KiB of the disk are written and then restored",
		               REGION_SLOTS * IO_BYTES / 1024);
	if (!usable(c, n))
		return V_FAIL;
	s.us = calloc(samples, sizeof(uint64_t));
	keep = malloc((size_t)REGION_SLOTS * IO_BYTES);
	list = json_array();
	ok = s.us && keep;
	for (size_t i = 0; ok && i < c->n; i++) {
		struct vpath *p = &c->paths[i];
		uint64_t first = p->id.blocks * p->id.block_size / IO_BYTES - REGION_SLOTS;
		struct vreply r;

		for (unsigned slot = 0; ok && slot < REGION_SLOTS; slot++) {
			ok = io(p, false, first + slot, NULL, &r, NULL, n);
			if (ok)
				memcpy(keep + (size_t)slot * IO_BYTES, r.data, IO_BYTES);
		}
		s.n = 0;
		ok = ok && write_series(p, keep, samples, &s, n);
		if (ok)
			report(p, &s, text, sizeof(text), list);
	}
	free(s.us);
	free(keep);
	json_object_set_new(n->details, "paths", list);
	if (!ok)
		return V_FAIL;
	return verdict(n, V_PASS, "%u writes per path to the last %u KiB, read back and restored: %s", samples,
	               REGION_SLOTS * IO_BYTES / 1024, text);
}
