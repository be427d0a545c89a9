/* The shared SCSI state as bytes: an image with registrations, a reservation, RESERVE(6),
 * mode parameters and effects decodes to what was encoded; every truncation and a bad
 * byte in each fixed field are refused; effects replay on the right nexuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scsi/lu_image.h"

static struct pr_reg reg(const char *name, uint8_t isid_last, uint16_t port, bool all, uint64_t key)
{
	struct pr_reg r;

	memset(&r, 0, sizeof(r));
	strcpy(r.port.name, name);
	r.port.isid[5] = isid_last;
	r.relative_port = all ? 0 : port;
	r.all_tg_pt = all;
	r.key = key;
	return r;
}

static struct scsi_itn nexus(const char *name, uint8_t isid_last, uint16_t port)
{
	struct scsi_itn itn;

	memset(&itn, 0, sizeof(itn));
	strcpy(itn.initiator_name, name);
	strcpy(itn.target_name, "iqn.2026-11.org.twinsan:t");
	itn.isid[5] = isid_last;
	itn.tpgt = 1;
	itn.relative_port = port;
	return itn;
}

/* An image of two registrations (one holding a Write Exclusive reservation), RESERVE(6)
 * off, D_SENSE on, and two effects, encoded. */
struct sample {
	struct lu_journal j;
	uint8_t *buf;
	size_t len;
	struct lu_image im; /* what a test decoded */
	char err[256];
};

static int encode_sample(void **state)
{
	struct sample *s = calloc(1, sizeof(*s));
	struct pr_reg regs[2] = { reg("iqn.a", 1, 1, false, 17), reg("iqn.b", 2, 0, true, 34) };
	struct pr_image img = { .generation = 5, .type = 1, .regs = regs, .nregs = 2 };
	struct pr_snapshot snap = { .img = &img, .aptpl = true };
	struct mode_state mode = { .wce = true, .d_sense = true, .mrie = 6, .dexcpt = true };
	struct scsi_itn issuer = nexus("iqn.a", 1, 1);
	struct nexus_set preempted = { false, &regs[1], 1, &issuer }, everybody = { .all = true, .except = &issuer };

	regs[0].holder = true;
	lu_journal_add(&s->j, LU_EFFECT_UA, ASC_REGISTRATIONS_PREEMPTED, &preempted);
	lu_journal_add(&s->j, LU_EFFECT_ABORT, ASC_NO_ADDITIONAL_SENSE, &everybody);
	assert_int_equal(lu_image_encode(&snap, &mode, &s->j, &s->buf, &s->len), 0);
	*state = s;
	return 0;
}

static int free_sample(void **state)
{
	struct sample *s = *state;

	lu_journal_clear(&s->j);
	free(s->buf);
	free(s);
	return 0;
}

static int decode(struct sample *s, const uint8_t *buf, size_t len)
{
	return lu_image_decode(buf, len, &s->im, s->err, sizeof(s->err));
}

static void image_round_trips(void **state)
{
	struct sample *s = *state;
	struct lu_image *im = &s->im;

	assert_int_equal(decode(s, s->buf, s->len), 0);
	assert_int_equal(im->pr.generation, 5);
	assert_int_equal(im->pr.type, 1);
	assert_int_equal(im->pr.nregs, 2);
	assert_true(im->pr.regs[0].holder);
	assert_int_equal(im->pr.regs[1].key, 34);
	assert_true(im->pr.regs[1].all_tg_pt);
	assert_true(im->rest.aptpl);
	assert_false(im->rest.resv6_held);
	assert_true(im->mode.d_sense);
	assert_int_equal(im->mode.mrie, 6);
	assert_int_equal(im->journal.n, 2);
	assert_int_equal(im->journal.effects[0].kind, LU_EFFECT_UA);
	assert_int_equal(im->journal.effects[0].asc, ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(im->journal.effects[0].nregs, 1);
	assert_string_equal(im->journal.effects[0].regs[0].port.name, "iqn.b");
	assert_true(im->journal.effects[0].has_except);
	assert_int_equal(im->journal.effects[0].except.relative_port, 1);
	assert_true(im->journal.effects[1].all);
	lu_image_free(im);
}

static void every_truncation_is_refused(void **state)
{
	struct sample *s = *state;

	for (size_t n = 0; n < s->len; n++)
		assert_int_equal(decode(s, s->buf, n), -1);
}

static void bad_fields_are_refused(void **state)
{
	/* magic, version, flags, WCE, MRIE: each set to a value no encoder writes */
	static const struct { size_t off; uint8_t v; } bad[] = { { 0, 'X' }, { 4, 9 }, { 5, 0x80 }, { 6, 2 }, { 9, 0x10 } };
	struct sample *s = *state;
	uint8_t *copy = malloc(s->len + 1);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(copy, s->buf, s->len);
		copy[bad[i].off] = bad[i].v;
		assert_int_equal(decode(s, copy, s->len), -1);
	}
	memcpy(copy, s->buf, s->len);
	copy[s->len] = 0;
	assert_int_equal(decode(s, copy, s->len + 1), -1); /* a trailing byte */
	free(copy);
}

/* The effect of a preemption names the nexuses of the preempted registration, wherever
 * they are, and never the issuer's; an effect for all leaves only the issuer out. */
static void effects_match_the_right_nexuses(void **state)
{
	struct sample *s = *state;
	struct nexus_set set;
	struct scsi_itn b_on_a = nexus("iqn.b", 2, 1), b_on_b = nexus("iqn.b", 2, 258);
	struct scsi_itn a_on_a = nexus("iqn.a", 1, 1), a_on_b = nexus("iqn.a", 1, 258);

	assert_int_equal(decode(s, s->buf, s->len), 0);
	lu_effect_set(&s->im.journal.effects[0], &set);
	assert_true(nexus_set_has(&b_on_a, &set));
	assert_true(nexus_set_has(&b_on_b, &set));
	assert_false(nexus_set_has(&a_on_a, &set));
	lu_effect_set(&s->im.journal.effects[1], &set);
	assert_false(nexus_set_has(&a_on_a, &set));
	assert_true(nexus_set_has(&a_on_b, &set)); /* the same initiator through the other node */
	assert_true(nexus_set_has(&b_on_b, &set));
	lu_image_free(&s->im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(image_round_trips, encode_sample, free_sample),
		cmocka_unit_test_setup_teardown(every_truncation_is_refused, encode_sample, free_sample),
		cmocka_unit_test_setup_teardown(bad_fields_are_refused, encode_sample, free_sample),
		cmocka_unit_test_setup_teardown(effects_match_the_right_nexuses, encode_sample, free_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
