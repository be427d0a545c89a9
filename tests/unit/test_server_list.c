/* twinctl's saved server list: names, addresses and certificate pins are checked, the
 * file round-trips, is written mode 0600 in a private directory, and a bad line is named
 * by file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt/server_list.h"

static void test_names_and_addresses_are_checked(void **state)
{
	char err[256];

	(void)state;
	assert_true(server_name_valid("lab-1.a_b"));
	assert_false(server_name_valid(""));
	assert_false(server_name_valid("-x"));
	assert_false(server_name_valid("a b"));
	assert_false(server_name_valid("a/b"));
	assert_int_equal(server_address_check("unix:/run/twinsan/twinsand.sock", err, sizeof(err)), 0);
	assert_int_equal(server_address_check("node1.example:3261", err, sizeof(err)), 0);
	assert_int_equal(server_address_check("[::1]:3261", err, sizeof(err)), 0);
	assert_int_equal(server_address_check("unix:relative", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unix:/ABSOLUTE/PATH"));
	assert_int_equal(server_address_check("host", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HOST:PORT"));
	assert_int_equal(server_address_check("host:0", err, sizeof(err)), -1);
	assert_int_equal(server_address_check("host:70000", err, sizeof(err)), -1);
	assert_int_equal(server_address_check("::1:80", err, sizeof(err)), -1);
	assert_int_equal(server_address_check("a b:80", err, sizeof(err)), -1);
}

static void test_list_round_trips_privately(void **state)
{
	char dir[] = "/tmp/test_server_list.XXXXXX", path[128], err[256];
	struct server_list l = { 0 }, back;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cfg/twinsan/servers", dir);
	assert_int_equal(server_list_load(path, &back, err, sizeof(err)), 0); /* missing: empty */
	assert_int_equal(back.n, 0);
	assert_int_equal(server_list_set(&l, "a", "unix:/run/a.sock", NULL), 0);
	assert_int_equal(server_list_set(&l, "b", "host:1", "/root/b.secret"), 0);
	assert_int_equal(server_list_set(&l, "a", "unix:/run/a2.sock", NULL), 0); /* replaces */
	assert_int_equal(server_list_remove(&l, "zz"), -1);
	assert_int_equal(server_list_pin(&l, "b", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"), 0);
	assert_int_equal(server_list_pin(&l, "b", "xyz"), -1);
	assert_int_equal(server_list_pin(&l, "nope", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
	                 -1);
	assert_int_equal(server_list_save(path, &l, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(err, sizeof(err), "%s/cfg/twinsan", dir);
	assert_int_equal(stat(err, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	assert_int_equal(server_list_load(path, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(server_list_find(&back, "a")->address, "unix:/run/a2.sock");
	assert_string_equal(server_list_find(&back, "b")->address, "host:1");
	assert_string_equal(server_list_find(&back, "b")->pin,
	                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	assert_string_equal(server_list_find(&back, "a")->pin, "");
	assert_string_equal(server_list_find(&back, "b")->secret_file, "/root/b.secret");
	assert_string_equal(server_list_find(&back, "a")->secret_file, "");
	/* Saving a server again forgets its pin: the administrator said it changed. */
	assert_int_equal(server_list_set(&back, "b", "host:2", NULL), 0);
	assert_string_equal(server_list_find(&back, "b")->pin, "");
	assert_int_equal(server_list_remove(&back, "a"), 0);
	assert_null(server_list_find(&back, "a"));
	assert_int_equal(back.n, 1);
	server_list_free(&back);
	server_list_free(&l);

	unlink(path);
	snprintf(err, sizeof(err), "%s/cfg/twinsan", dir);
	rmdir(err);
	snprintf(err, sizeof(err), "%s/cfg", dir);
	rmdir(err);
	rmdir(dir);
}

static void test_bad_line_is_named(void **state)
{
	char path[] = "/tmp/test_server_list.XXXXXX", err[256];
	struct server_list l;
	int fd = mkstemp(path);
	static const char text[] = "# saved\n\nok unix:/a\nbad-one host\n";
	static const char pin_text[] = "ok h:1 sha256:0011\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(server_list_load(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":4: "));
	assert_non_null(strstr(err, "HOST:PORT"));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, pin_text, sizeof(pin_text) - 1), (ssize_t)sizeof(pin_text) - 1);
	close(fd);
	assert_int_equal(server_list_load(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: 'sha256:0011' is neither"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_addresses_are_checked),
		cmocka_unit_test(test_list_round_trips_privately),
		cmocka_unit_test(test_bad_line_is_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
