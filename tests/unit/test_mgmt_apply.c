/* The managed configuration's changes (mgmt/apply.h) against a real main file and a stub
 * daemon: what is refused or cannot be served changes nothing, a check writes nothing, and
 * what is made is served once and kept in the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "mgmt/apply.h"

struct fixture {
	char dir[64], main_path[128], managed_path[128];
	struct mgmt_apply *apply;
	unsigned targets_added, luns_added;
	bool refuse_luns;              /* the stub daemon cannot serve a LUN */
	uint64_t grown_to;             /* the last size a LUN was grown to */
	unsigned sessions;             /* logged in to every target */
	unsigned ended, luns_removed, targets_removed;
};

static int stub_add_target(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct fixture *f = arg;

	assert_true(cfg->targets[i].managed);
	f->targets_added++;
	return 0;
}

static int stub_add_lun(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct fixture *f = arg;

	if (f->refuse_luns) {
		snprintf(err, errlen, "cannot open %s", cfg->luns[i].path);
		return -1;
	}
	f->luns_added++;
	return 0;
}

/* Grows like the file store: never smaller. */
static int stub_grow_lun(void *arg, const struct config *cfg, size_t i, char *err, size_t errlen)
{
	struct fixture *f = arg;

	if (cfg->luns[i].size < 2 << 20) {
		snprintf(err, errlen, "shrinking is refused");
		return -1;
	}
	f->grown_to = cfg->luns[i].size;
	return 0;
}

static unsigned stub_sessions(void *arg, const struct config *cfg, size_t target)
{
	return ((struct fixture *)arg)->sessions;
}

static void stub_end_sessions(void *arg, const struct config *cfg, size_t target)
{
	struct fixture *f = arg;

	f->ended += f->sessions;
	f->sessions = 0;
}

static void stub_remove_lun(void *arg, const struct config *cfg, size_t lun)
{
	((struct fixture *)arg)->luns_removed++;
}

static void stub_remove_target(void *arg, const struct config *cfg, size_t target)
{
	((struct fixture *)arg)->targets_removed++;
}

static const struct mgmt_apply_ops stub_ops = {
	.add_target = stub_add_target, .add_lun = stub_add_lun, .grow_lun = stub_grow_lun,
	.sessions = stub_sessions, .end_sessions = stub_end_sessions, .remove_lun = stub_remove_lun,
	.remove_target = stub_remove_target,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct config *cfg;
	char err[512];
	FILE *fp;

	str_copy(f->dir, sizeof(f->dir), "/tmp/test_mgmt_apply.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->main_path, sizeof(f->main_path), "%s/main.conf", f->dir);
	snprintf(f->managed_path, sizeof(f->managed_path), "%s/managed.conf", f->dir);
	fp = fopen(f->main_path, "w");
	fprintf(fp, "[daemon]\nstate-dir = %s\n[portal lo]\naddress = 127.0.0.1\n[target base]\n"
	        "[lun base:0]\npath = /dev/shm/base.img\n", f->dir);
	fclose(fp);
	if (config_load(f->main_path, &cfg, err, sizeof(err)) < 0 ||
	    mgmt_apply_new(f->main_path, cfg, &stub_ops, f, &f->apply) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	mgmt_apply_free(f->apply);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	free(f);
	return system(cmd);
}

/* Calls fn with params given as JSON text. */
static json_t *run(json_t *(*fn)(struct mgmt_apply *, const json_t *, struct mgmt_error *), struct fixture *f,
                   const char *params, struct mgmt_error *err)
{
	json_t *p = json_loads(params, 0, NULL);
	json_t *res;

	assert_non_null(p);
	res = fn(f->apply, p, err);
	json_decref(p);
	return res;
}

static char *managed_text(const struct fixture *f)
{
	FILE *fp = fopen(f->managed_path, "r");
	char *text = calloc(1, 8192);

	if (fp) {
		size_t n = fread(text, 1, 8191, fp);

		text[n] = '\0';
		fclose(fp);
	}
	return text;
}

static void created_target_and_device_are_served_and_kept(void **state)
{
	struct fixture *f = *state;
	struct mgmt_error err = { "", "" };
	struct config *cfg;
	char msg[512], *text;
	struct stat st;
	json_t *res;

	res = run(mgmt_apply_target_create, f, "{\"name\":\"web\",\"allow\":\"iqn.2026-11.org.x:a, iqn.2026-11.org.x:b\"}",
	          &err);
	assert_non_null(res);
	assert_string_equal(json_string_value(json_object_get(res, "iqn")), "iqn.2026-11.org.twinsan:web");
	json_decref(res);
	res = run(mgmt_apply_device_create, f, "{\"name\":\"d\",\"target\":\"web\",\"path\":\"/dev/shm/web.img\",\"size\":\"1M\"}",
	          &err);
	assert_non_null(res);
	assert_string_equal(json_string_value(json_object_get(res, "name")), "web:0");
	json_decref(res);
	assert_int_equal(f->targets_added, 1);
	assert_int_equal(f->luns_added, 1);
	assert_int_equal(stat(f->managed_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* What a restart reads: the main file and the managed one together. */
	assert_int_equal(config_load(f->main_path, &cfg, msg, sizeof(msg)), 0);
	assert_int_equal(cfg->n_targets, 2);
	assert_int_equal(cfg->targets[1].n_initiators, 2);
	assert_int_equal(cfg->n_luns, 2);
	assert_int_equal(cfg->luns[1].size, 1 << 20);
	config_free(cfg);

	res = run(mgmt_apply_target_delete, f, "{\"name\":\"web\"}", &err);
	assert_non_null(res);
	json_decref(res);
	/* Served no more: the LUN, then the target. */
	assert_int_equal(f->luns_removed, 1);
	assert_int_equal(f->targets_removed, 1);
	text = managed_text(f);
	assert_null(strstr(text, "[target web]"));
	assert_null(strstr(text, "[lun web:0]"));
	free(text);
}

/* Initiators logged in keep a delete out unless it is forced, which logs them out. */
static void busy_delete_needs_force(void **state)
{
	struct fixture *f = *state;
	struct mgmt_error err = { "", "" };
	json_t *res;
	char *before, *after;

	json_decref(run(mgmt_apply_device_create, f, "{\"name\":\"d\",\"path\":\"/dev/shm/d.img\",\"size\":\"1M\"}",
	                &err));
	before = managed_text(f);
	f->sessions = 2;
	assert_null(run(mgmt_apply_device_delete, f, "{\"name\":\"d:0\"}", &err));
	assert_string_equal(err.code, MGMT_E_BUSY);
	assert_non_null(strstr(err.message, "2 session(s) are logged in"));
	assert_non_null(strstr(err.message, "--force"));
	assert_null(run(mgmt_apply_target_delete, f, "{\"name\":\"d\"}", &err));
	after = managed_text(f);
	assert_string_equal(before, after);
	free(after);
	assert_int_equal(f->luns_removed + f->targets_removed + f->ended, 0);

	res = run(mgmt_apply_device_delete, f, "{\"name\":\"d:0\",\"force\":true}", &err);
	assert_non_null(res);
	json_decref(res);
	assert_int_equal(f->ended, 2);
	assert_int_equal(f->luns_removed, 1);
	assert_int_equal(f->targets_removed, 0);
	after = managed_text(f);
	assert_null(strstr(after, "[lun d:0]"));
	assert_non_null(strstr(after, "[target d]"));
	free(after);
	free(before);
}

static void refused_changes_leave_the_file(void **state)
{
	static const char *const bad[][2] = {
		{ "{\"name\":\"Web\"}", "target name 'Web' may hold only" },
		{ "{\"name\":\"base\"}", "is defined twice" },
		{ "{\"name\":\"w\",\"portals\":\"wan\"}", "portal 'wan' is not defined" },
		{ "{\"name\":\"w\",\"iqn\":\"iqn.2026-11.org.x:a\\nchap-user = u\"}", "may not hold control characters" },
	};
	struct fixture *f = *state;
	struct mgmt_error ok = { "", "" };
	json_t *first = run(mgmt_apply_target_create, f, "{\"name\":\"first\"}", &ok);
	char *before, *after;

	assert_non_null(first);
	json_decref(first);
	before = managed_text(f);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct mgmt_error err = { "", "" };
		json_t *res;

		res = run(mgmt_apply_target_create, f, bad[i][0], &err);
		assert_null(res);
		if (!strstr(err.message, bad[i][1]))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.message, bad[i][1]);
		after = managed_text(f);
		assert_string_equal(before, after);
		free(after);
	}
	free(before);
}

static void unservable_lun_is_not_kept(void **state)
{
	struct fixture *f = *state;
	struct mgmt_error err = { "", "" };
	char *text;

	f->refuse_luns = true;
	assert_null(run(mgmt_apply_device_create, f, "{\"name\":\"x\",\"path\":\"/nonexistent/x.img\",\"size\":\"1M\"}", &err));
	assert_non_null(strstr(err.message, "cannot open /nonexistent/x.img; nothing was changed"));
	assert_int_equal(access(f->managed_path, F_OK), -1);
	text = managed_text(f);
	assert_string_equal(text, "");
	free(text);
}

static void check_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct mgmt_error err = { "", "" };
	json_t *res;

	res = run(mgmt_apply_device_create, f,
	          "{\"name\":\"ha1\",\"check\":true,\"ha\":true,\"path\":\"/dev/shm/ha1.img\",\"size\":\"1M\","
	          "\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\",\"secret\":\"0123456789abcdef\","
	          "\"priority\":\"primary\",\"initial_sync\":\"clear\",\"sync\":\"127.0.0.1:3401 127.0.0.2:3401\"}",
	          &err);
	assert_non_null(res);
	assert_true(json_is_true(json_object_get(res, "checked")));
	json_decref(res);
	assert_int_equal(f->targets_added + f->luns_added, 0);
	assert_int_equal(access(f->managed_path, F_OK), -1);
	/* The same without a sync link is refused by the parser. */
	assert_null(run(mgmt_apply_device_create, f,
	                "{\"name\":\"ha1\",\"check\":true,\"ha\":true,\"path\":\"/dev/shm/ha1.img\",\"size\":\"1M\","
	                "\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\",\"secret\":\"0123456789abcdef\","
	                "\"priority\":\"primary\",\"initial_sync\":\"clear\"}",
	                &err));
	assert_non_null(strstr(err.message, "[ha ha1] has no sync"));
}

static void resize_grows_and_keeps_the_size(void **state)
{
	struct fixture *f = *state;
	struct mgmt_error err = { "", "" };
	char *before, *after;
	json_t *res;

	res = run(mgmt_apply_device_create, f, "{\"name\":\"g\",\"path\":\"/dev/shm/g.img\",\"size\":\"2M\"}", &err);
	assert_non_null(res);
	json_decref(res);
	res = run(mgmt_apply_device_resize, f, "{\"name\":\"g:0\",\"size\":\"8M\"}", &err);
	assert_non_null(res);
	json_decref(res);
	assert_int_equal(f->grown_to, 8 << 20);
	after = managed_text(f);
	assert_non_null(strstr(after, "size = 8388608\n"));
	before = after;
	assert_null(run(mgmt_apply_device_resize, f, "{\"name\":\"g:0\",\"size\":\"1M\"}", &err));
	assert_non_null(strstr(err.message, "shrinking is refused; nothing was changed"));
	assert_null(run(mgmt_apply_device_resize, f, "{\"name\":\"g:0\",\"size\":\"1000\"}", &err));
	assert_non_null(strstr(err.message, "multiple of the block size"));
	assert_null(run(mgmt_apply_device_resize, f, "{\"name\":\"base:0\",\"size\":\"8M\"}", &err));
	assert_non_null(strstr(err.message, "not made through the API; resize it there"));
	after = managed_text(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(created_target_and_device_are_served_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_changes_leave_the_file, setup, teardown),
		cmocka_unit_test_setup_teardown(busy_delete_needs_force, setup, teardown),
		cmocka_unit_test_setup_teardown(unservable_lun_is_not_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(check_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(resize_grows_and_keeps_the_size, setup, teardown),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
