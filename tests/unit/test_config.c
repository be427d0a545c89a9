/* The configuration file parser: a complete file, defaults, secret files, and every kind
 * of bad line reported with its file:line. */
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
#include "mgmt/config.h"

static const char good[] =
	"; twinsand configuration\n"
	"[daemon]\n"
	"log-level = debug\n"
	"state-dir = /var/lib/twinsan-test\n"
	"queue-depth = 512\n"
	"\n"
	"[portal lo4]\n"
	"address = 127.0.0.1\n"
	"port = 3261\n"
	"tpgt = 2\n"
	"[portal lo6]\n"
	"address = ::1\n"
	"\n"
	"[target disk1]\n"
	"alias = first disk\n"
	"portals = lo4, lo6\n"
	"allow = iqn.2026-11.org.example:host1\n"
	"allow = iqn.2026-11.org.example:host2\n"
	"chap-user = alice\n"
	"chap-secret = alice-secret-12 ; a comment\n"
	"mutual-chap-user = target1\n"
	"mutual-chap-secret = target-secret-1\n"
	"\n"
	"[target iqn.2000-01.com.example:explicit]\n"
	"[lun disk1:0]\n"
	"path = /dev/shm/disk1.img\n"
	"size = 1G\n"
	"direct = yes\n"
	"block-size = 4096\n"
	"serial = SN-0001\n"
	"uuid = 01234567-89ab-cdef-0123-456789ABCDEF\n"
	"[lun disk1:7]\n"
	"path = /dev/shm/disk1-7.img\n"
	"[lun iqn.2000-01.com.example:explicit:3]\n"
	"path = /dev/shm/explicit.img\n"
	"size = 512\n";

static struct config *parse_ok(const char *text)
{
	struct config *cfg = NULL;
	char err[512] = "";

	if (config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	return cfg;
}

static void good_file_parses_every_key(void **state)
{
	struct config *cfg = parse_ok(good);
	static const uint8_t uuid[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	                                  0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
	const struct config_target *t;
	const struct config_lun *l;

	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(cfg->state_dir, "/var/lib/twinsan-test");
	assert_int_equal(cfg->queue_depth, 512);

	assert_int_equal(cfg->n_portals, 2);
	assert_string_equal(cfg->portals[0].name, "lo4");
	assert_string_equal(cfg->portals[0].address, "127.0.0.1");
	assert_int_equal(cfg->portals[0].port, 3261);
	assert_int_equal(cfg->portals[0].tpgt, 2);
	assert_int_equal(cfg->portals[0].line, 7);
	assert_string_equal(cfg->portals[1].address, "::1");
	assert_int_equal(cfg->portals[1].port, CONFIG_DEFAULT_PORT);
	assert_int_equal(cfg->portals[1].tpgt, 1);

	assert_int_equal(cfg->n_targets, 2);
	t = &cfg->targets[0];
	assert_string_equal(t->iqn, CONFIG_IQN_PREFIX "disk1");
	assert_string_equal(t->alias, "first disk");
	assert_int_equal(t->n_portals, 2);
	assert_int_equal(t->portals[0], 0);
	assert_int_equal(t->portals[1], 1);
	assert_int_equal(t->n_initiators, 2);
	assert_string_equal(t->initiators[1], "iqn.2026-11.org.example:host2");
	assert_true(t->auth.chap_required);
	assert_string_equal(t->auth.initiator.user, "alice");
	assert_string_equal(t->auth.initiator.secret, "alice-secret-12");
	assert_int_equal(t->auth.initiator.secret_len, 15);
	assert_true(t->auth.mutual);
	assert_string_equal(t->auth.target.user, "target1");
	assert_string_equal(t->auth.target.secret, "target-secret-1");

	t = &cfg->targets[1];
	assert_string_equal(t->iqn, "iqn.2000-01.com.example:explicit");
	assert_string_equal(t->alias, "");
	assert_int_equal(t->n_portals, 0);
	assert_int_equal(t->n_initiators, 0);
	assert_false(t->auth.chap_required);
	assert_false(t->auth.mutual);

	assert_int_equal(cfg->n_luns, 3);
	l = &cfg->luns[0];
	assert_int_equal(l->target, 0);
	assert_int_equal(l->lun, 0);
	assert_string_equal(l->path, "/dev/shm/disk1.img");
	assert_int_equal(l->size, 1ull << 30);
	assert_true(l->direct);
	assert_int_equal(l->block_size, 4096);
	assert_string_equal(l->serial, "SN-0001");
	assert_true(l->has_uuid);
	assert_memory_equal(l->uuid, uuid, 16);
	l = &cfg->luns[1];
	assert_int_equal(l->lun, 7);
	assert_int_equal(l->size, 0);
	assert_false(l->direct);
	assert_int_equal(l->block_size, 512);
	assert_false(l->has_uuid);
	l = &cfg->luns[2];
	assert_int_equal(l->target, 1);
	assert_int_equal(l->lun, 3);
	config_free(cfg);
}

static void daemon_section_is_optional(void **state)
{
	struct config *cfg = parse_ok("\xEF\xBB\xBF[portal p]\r\naddress = 0.0.0.0\r\n"
	                              "[target t]\n[lun t:0]\npath = /x\n");

	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_string_equal(cfg->state_dir, CONFIG_DEFAULT_STATE_DIR);
	assert_int_equal(cfg->queue_depth, CONFIG_DEFAULT_QUEUE_DEPTH);
	assert_int_equal(cfg->n_portals, 1);
	config_free(cfg);
}

/* Each case: a file, and the start of the message it must produce. */
static const struct bad_case {
	const char *text;
	const char *message;
} bad_cases[] = {
#define OK_TAIL "[portal p]\naddress = 127.0.0.1\n[target t]\n[lun t:0]\npath = /x\n"
	{ "address = 1.2.3.4\n" OK_TAIL, "t.conf:1: 'address' is outside any section" },
	{ "[daemon]\nloglevel = info\n" OK_TAIL, "t.conf:2: unknown key 'loglevel' in [daemon]" },
	{ "[daemon]\nlog-level = loud\n" OK_TAIL, "t.conf:2: log-level 'loud' is unknown" },
	{ "[daemon]\nstate-dir = var\n" OK_TAIL, "t.conf:2: state-dir 'var' is not an absolute" },
	{ "[daemon]\nqueue-depth = 4\n" OK_TAIL, "t.conf:2: queue-depth '4' is not a number" },
	{ "[daemon]\nqueue-depth = 12x\n" OK_TAIL, "t.conf:2: queue-depth '12x'" },
	{ "[daemon]\n[daemon]\n" OK_TAIL, "t.conf:2: [daemon] appears twice" },
	{ "[daemon x]\n" OK_TAIL, "t.conf:1: [daemon] takes no name" },
	{ "[deamon]\n" OK_TAIL, "t.conf:1: unknown section [deamon]" },
	{ "[daemon] x\n" OK_TAIL, "t.conf:1: text after ']'" },
	{ "[daemon\n" OK_TAIL, "t.conf:1: section header without ']'" },
	{ "[daemon]\njust words\n" OK_TAIL, "t.conf:2: expected '[section]'" },
	{ "[daemon]\n  log-level = info\n" OK_TAIL, "t.conf:2: indented line" },
	{ "[daemon]\nlog-level = info\nlog-level = debug\n" OK_TAIL, "t.conf:3: 'log-level' is set twice" },
	{ "[portal]\n" OK_TAIL, "t.conf:1: [portal] needs a name" },
	{ "[portal a/b]\n" OK_TAIL, "t.conf:1: portal name 'a/b'" },
	{ OK_TAIL "[portal p]\naddress = ::1\n", "t.conf:6: [portal p] is defined twice (first at line 1)" },
	{ "[portal q]\naddress = [::1]\n" OK_TAIL, "t.conf:2: address '[::1]': write IPv6" },
	{ "[portal q]\naddress = localhost\n" OK_TAIL, "t.conf:2: address 'localhost' is not" },
	{ "[portal q]\naddress = 1.2.3.4\nport = 0\n" OK_TAIL, "t.conf:3: port '0'" },
	{ "[portal q]\naddress = 1.2.3.4\nport = 65536\n" OK_TAIL, "t.conf:3: port '65536'" },
	{ "[portal q]\naddress = 1.2.3.4\ntpgt = -1\n" OK_TAIL, "t.conf:3: tpgt '-1'" },
	{ "[portal q]\nport = 3260\n" OK_TAIL, "t.conf:1: [portal q] has no address" },
	{ "[portal q]\naddress = 127.0.0.1\nport = 3260\n" OK_TAIL,
	  "t.conf:4: [portal p] listens on the same address and port as [portal q] (line 1)" },
	{ "[portal q]\naddress =\n" OK_TAIL, "t.conf:2: address '' is not" },
	{ "[target Disk]\n" OK_TAIL, "t.conf:1: target name 'Disk'" },
	{ OK_TAIL "[target t]\n", "t.conf:6: target iqn.2026-11.org.twinsan:t is defined twice" },
	{ OK_TAIL "[target u]\nportals = p, nope\n", "t.conf:7: portal 'nope' is not defined" },
	{ OK_TAIL "[target u]\nportals = p p\n", "t.conf:7: portal 'p' is listed twice" },
	{ OK_TAIL "[target u]\nallow = host1\n", "t.conf:7: allow 'host1' is not an iSCSI" },
	{ OK_TAIL "[target u]\nchap-user = a\n[lun u:0]\npath = /y\n",
	  "t.conf:6: [target u] has chap-user without a secret" },
	{ OK_TAIL "[target u]\nchap-secret = a\n[lun u:0]\npath = /y\n",
	  "t.conf:6: [target u] has chap-user without a secret" },
	{ OK_TAIL "[target u]\nchap-user = a\nchap-secret = s\nchap-secret-file = /s\n"
	  "[lun u:0]\npath = /y\n", "t.conf:6: [target u] has both chap-secret and chap-secret-file" },
	{ OK_TAIL "[target u]\nmutual-chap-user = a\nmutual-chap-secret = s\n[lun u:0]\npath = /y\n",
	  "t.conf:6: [target u] has mutual CHAP without CHAP" },
	{ OK_TAIL "[target u]\nchap-user = a\nchap-secret = same-secret-1\nmutual-chap-user = b\n"
	  "mutual-chap-secret = same-secret-1\n[lun u:0]\npath = /y\n",
	  "t.conf:6: [target u] uses the same secret" },
	{ OK_TAIL "[target u]\nchap-user = a\nchap-secret-file = secret\n",
	  "t.conf:8: chap-secret-file 'secret' is not an absolute" },
	{ OK_TAIL "[target u]\n", "t.conf:6: [target u] has no LUN" },
	{ OK_TAIL "[lun t]\n", "t.conf:6: [lun t] must be named TARGET:N" },
	{ OK_TAIL "[lun t:16384]\n", "t.conf:6: [lun t:16384] must be named" },
	{ OK_TAIL "[lun u:1]\n", "t.conf:6: [lun u:1] names no target" },
	{ OK_TAIL "[lun t:0]\npath = /z\n", "t.conf:6: [lun t:0] is defined twice (first at line 4)" },
	{ OK_TAIL "[lun t:1]\n", "t.conf:6: [lun t:1] has no path" },
	{ OK_TAIL "[lun t:1]\npath = /x\n", "t.conf:6: path /x is already the LUN of line 4" },
	{ OK_TAIL "[lun t:1]\npath = rel\n", "t.conf:7: path 'rel' is not an absolute" },
	{ OK_TAIL "[lun t:1]\npath = /y\nsize = 1Q\n", "t.conf:8: size '1Q'" },
	{ OK_TAIL "[lun t:1]\npath = /y\nsize = 0\n", "t.conf:8: size '0'" },
	{ OK_TAIL "[lun t:1]\npath = /y\nsize = 99999999999T\n", "t.conf:8: size '99999999999T'" },
	{ OK_TAIL "[lun t:1]\npath = /y\nsize = 1000\n", "t.conf:6: [lun t:1] size 1000 is not a multiple" },
	{ OK_TAIL "[lun t:1]\npath = /y\ndirect = maybe\n", "t.conf:8: direct 'maybe'" },
	{ OK_TAIL "[lun t:1]\npath = /y\nblock-size = 1024\n", "t.conf:8: block-size '1024'" },
	{ OK_TAIL "[lun t:1]\npath = /y\nserial = a\x01z\n", "t.conf:8: serial" },
	{ OK_TAIL "[lun t:1]\npath = /y\nuuid = 0123\n", "t.conf:8: uuid '0123'" },
	{ OK_TAIL "[lun t:1]\npath = /y\nuuid = 01234567-89ab-cdef-0123-456789abcdeg\n", "t.conf:8: uuid" },
	{ OK_TAIL "[lun t:1]\npath = /y\nvolume = 3\n", "t.conf:8: unknown key 'volume' in [lun]; valid keys: path," },
	{ "", "t.conf:1: no [portal NAME] section" },
#undef OK_TAIL
};

static const char good_ha[] =
	"[daemon]\n"
	"state-dir = /var/lib/tw\n"
	"node-id = 7\n"
	"[portal p]\n"
	"address = 127.0.0.1\n"
	"[ha HA1]\n"
	"uuid = 6f1c0000-0000-4000-8000-0000000000a1\n"
	"path = /srv/ha1.img\n"
	"size = 1G\n"
	"priority = primary\n"
	"initial-sync = clear\n"
	"secret = ha1-link-secret\n"
	"sync = 127.0.0.1:3401 127.0.0.2:3401\n"
	"sync = [::1]:3403 [::1]:3404\n"
	"heartbeat = 127.0.0.1:3402 127.0.0.2:3402\n"
	"[ha quorum]\n"
	"uuid = 6f1c000000004000-8000-0000000000a2\n"
	"path = /dev/vg/quorum\n"
	"meta = /var/lib/tw/q.meta\n"
	"priority = secondary\n"
	"initial-sync = none\n"
	"failover = majority\n"
	"witness = 127.0.0.3:3500\n"
	"witness = [::1]:3501\n"
	"witness-secret-file = /etc/tw/witness\n"
	"secret-file = /etc/tw/quorum\n"
	"sync = 127.0.0.1:3411 127.0.0.2:3411\n"
	"direct = yes\n"
	"extent-size = 4M\n"
	"ping-interval = 100ms\n"
	"timeout = 3s\n"
	"[target vmstore]\n"
	"[lun vmstore:0]\n"
	"ha = HA1\n"
	"[lun vmstore:1]\n"
	"ha = quorum\n"
	"block-size = 4096\n";

static void ha_sections_parse(void **state)
{
	struct config *cfg = parse_ok(good_ha);
	const struct config_ha *a, *b;

	assert_int_equal(cfg->node_id, 7);
	assert_int_equal(cfg->n_has, 2);
	a = &cfg->has[0];
	b = &cfg->has[1];
	assert_string_equal(a->name, "HA1");
	assert_int_equal(a->uuid[0], 0x6f);
	assert_int_equal(a->uuid[15], 0xa1);
	assert_string_equal(a->path, "/srv/ha1.img");
	assert_int_equal(a->size, 1ull << 30);
	assert_string_equal(a->meta_path, "/var/lib/tw/ha-HA1.meta");
	assert_int_equal(a->role, HA_ROLE_PRIMARY);
	assert_int_equal(a->initial_sync, HA_INITIAL_CLEAR);
	assert_int_equal(a->failover, HA_FAILOVER_HEARTBEAT);
	assert_int_equal(a->n_witness, 0);
	assert_int_equal(a->secret_len, 15);
	assert_memory_equal(a->secret, "ha1-link-secret", 15);
	assert_int_equal(a->n_sync, 2);
	assert_string_equal(a->sync[0].local.address, "127.0.0.1");
	assert_int_equal(a->sync[0].local.port, 3401);
	assert_string_equal(a->sync[0].partner.address, "127.0.0.2");
	assert_string_equal(a->sync[1].local.address, "::1");
	assert_int_equal(a->sync[1].partner.port, 3404);
	assert_int_equal(a->n_heartbeat, 1);
	assert_int_equal(a->heartbeat[0].line, 15);
	assert_int_equal(a->extent_size, 0);
	assert_int_equal(a->ping_interval_ms, 0);

	assert_string_equal(b->meta_path, "/var/lib/tw/q.meta");
	assert_int_equal(b->size, 0);
	assert_true(b->direct);
	assert_int_equal(b->role, HA_ROLE_SECONDARY);
	assert_int_equal(b->initial_sync, HA_INITIAL_NONE);
	assert_int_equal(b->failover, HA_FAILOVER_MAJORITY);
	assert_int_equal(b->n_witness, 2);
	assert_string_equal(b->witness[0].address, "127.0.0.3");
	assert_int_equal(b->witness[0].port, 3500);
	assert_string_equal(b->witness[1].address, "::1");
	assert_int_equal(b->witness[1].port, 3501);
	assert_string_equal(b->witness_secret_file, "/etc/tw/witness");
	assert_string_equal(b->secret_file, "/etc/tw/quorum");
	assert_int_equal(b->secret_len, 0);
	assert_int_equal(b->extent_size, 4u << 20);
	assert_int_equal(b->ping_interval_ms, 100);
	assert_int_equal(b->timeout_ms, 3000);

	assert_int_equal(cfg->n_luns, 2);
	assert_true(cfg->luns[0].uses_ha);
	assert_int_equal(cfg->luns[0].ha, 0);
	assert_string_equal(cfg->luns[0].path, "");
	assert_int_equal(cfg->luns[1].ha, 1);
	assert_int_equal(cfg->luns[1].block_size, 4096);
	config_free(cfg);
}

/* An HA file with one line replaced: HA_HEAD then the [ha H] keys, then HA_TAIL. */
#define HA_HEAD "[portal p]\naddress = 127.0.0.1\n[ha H]\n"
#define HA_KEYS_NO_SYNC "uuid = 01234567-89ab-cdef-0123-456789abcdef\npath = /h\npriority = primary\n" \
	"initial-sync = clear\nsecret = s3cret\n"
#define HA_KEYS HA_KEYS_NO_SYNC "sync = 127.0.0.1:3401 127.0.0.2:3401\n"
#define HA_TAIL "[target t]\n[lun t:0]\nha = H\n"

static const struct bad_case ha_bad_cases[] = {
	{ HA_HEAD HA_KEYS HA_TAIL "[ha H]\n", "t.conf:13: [ha H] is defined twice (first at line 3)" },
	{ "[portal p]\naddress = 127.0.0.1\n[ha H/1]\n", "t.conf:3: HA device name 'H/1'" },
	{ HA_HEAD "path = /h\npriority = primary\ninitial-sync = clear\nsecret = s\n"
	  "sync = 127.0.0.1:1 127.0.0.2:1\n" HA_TAIL, "t.conf:3: [ha H] has no uuid; add" },
	{ HA_HEAD "uuid = 01234567-89ab-cdef-0123-456789abcdef\npriority = primary\n"
	  "initial-sync = clear\nsecret = s\nsync = 127.0.0.1:1 127.0.0.2:1\n" HA_TAIL,
	  "t.conf:3: [ha H] has no path" },
	{ HA_HEAD "uuid = 01234567-89ab-cdef-0123-456789abcdef\npath = /h\n"
	  "initial-sync = clear\nsecret = s\nsync = 127.0.0.1:1 127.0.0.2:1\n" HA_TAIL,
	  "t.conf:3: [ha H] has no priority" },
	{ HA_HEAD "uuid = 01234567-89ab-cdef-0123-456789abcdef\npath = /h\npriority = primary\n"
	  "secret = s\nsync = 127.0.0.1:1 127.0.0.2:1\n" HA_TAIL, "t.conf:3: [ha H] has no initial-sync" },
	{ HA_HEAD HA_KEYS_NO_SYNC HA_TAIL, "t.conf:3: [ha H] has no sync; add 'sync = LOCAL-ADDRESS:PORT" },
	{ HA_HEAD "uuid = 01234567-89ab-cdef-0123-456789abcdef\npath = /h\npriority = primary\n"
	  "initial-sync = clear\nsync = 127.0.0.1:1 127.0.0.2:1\n" HA_TAIL, "t.conf:3: [ha H] has no secret" },
	{ HA_HEAD HA_KEYS "secret-file = /s\n" HA_TAIL, "t.conf:3: [ha H] has both secret and secret-file" },
	{ HA_HEAD HA_KEYS "uuid = 1\n" HA_TAIL, "t.conf:10: 'uuid' is set twice" },
	{ HA_HEAD "uuid = 00000000-0000-0000-0000-000000000000\n", "t.conf:4: uuid '00000000-0000-0000-" },
	{ HA_HEAD "uuid = 0123\n", "t.conf:4: uuid '0123' is not" },
	{ HA_HEAD "uuid = 01234567-89ab-cdef-0123 456789abcdef\n", "t.conf:4: uuid '01234567-89ab-cdef-0123 4" },
	{ HA_HEAD "path = h\n", "t.conf:4: path 'h' is not an absolute path" },
	{ HA_HEAD "priority = first\n", "t.conf:4: priority 'first' is unknown; use primary on one node" },
	{ HA_HEAD "initial-sync = zero\n", "t.conf:4: initial-sync 'zero' is unknown; use clear, copy or none" },
	{ HA_HEAD "failover = vote\n", "t.conf:4: failover 'vote' is unknown; use heartbeat or majority" },
	{ HA_HEAD "size = 1x\n", "t.conf:4: size '1x'" },
	{ HA_HEAD HA_KEYS "size = 1000\n" HA_TAIL, "t.conf:3: [ha H] size 1000 is not a multiple of 4096" },
	{ HA_HEAD "direct = perhaps\n", "t.conf:4: direct 'perhaps' is not yes or no" },
	{ HA_HEAD "sync = 127.0.0.1:3401\n", "t.conf:4: sync '127.0.0.1:3401' must be 'LOCAL-ADDRESS:PORT" },
	{ HA_HEAD "sync = 127.0.0.1:1 127.0.0.2:1 127.0.0.3:1\n", "t.conf:4: sync '127.0.0.1:1 127.0.0.2:1 127" },
	{ HA_HEAD "sync = 127.0.0.1 127.0.0.2:3401\n", "t.conf:4: sync '127.0.0.1' is not a numeric ADDRESS:PORT" },
	{ HA_HEAD "sync = host:1 127.0.0.2:3401\n", "t.conf:4: sync 'host:1' is not a numeric" },
	{ HA_HEAD "sync = 127.0.0.1:0 127.0.0.2:3401\n", "t.conf:4: sync '127.0.0.1:0'" },
	{ HA_HEAD "sync = 127.0.0.1:1 127.0.0.2:65536\n", "t.conf:4: sync '127.0.0.2:65536'" },
	{ HA_HEAD "heartbeat = ::1:5 [::1]:5\n", "t.conf:4: heartbeat '::1:5' is not a numeric" },
	{ HA_HEAD "heartbeat = 127.0.0.1:5 [::1]:5\n", "t.conf:4: heartbeat '127.0.0.1:5 [::1]:5' mixes IPv4" },
	{ HA_HEAD "sync = 127.0.0.1:1 127.0.0.2:1\nsync = 127.0.0.1:2 127.0.0.2:2\n"
	  "sync = 127.0.0.1:3 127.0.0.2:3\nsync = 127.0.0.1:4 127.0.0.2:4\nsync = 127.0.0.1:5 127.0.0.2:5\n",
	  "t.conf:8: more than 4 sync links" },
	{ HA_HEAD HA_KEYS "heartbeat = 127.0.0.1:3401 127.0.0.2:3402\n" HA_TAIL,
	  "t.conf:10: [ha H] link local end uses the same address as the link of line 9" },
	{ HA_HEAD HA_KEYS "heartbeat = 127.0.0.1:3402 127.0.0.2:3401\n" HA_TAIL,
	  "t.conf:10: [ha H] link partner end uses the same address as the link of line 9" },
	{ "[portal p]\naddress = 127.0.0.1\nport = 3401\n[ha H]\n" HA_KEYS HA_TAIL,
	  "t.conf:10: [ha H] link address 127.0.0.1:3401 is also [portal p] (line 1)" },
	{ HA_HEAD HA_KEYS "failover = majority\n" HA_TAIL, "t.conf:3: [ha H] has failover = majority without a witness" },
	{ HA_HEAD HA_KEYS "failover = majority\nwitness = 127.0.0.3:3500\n" HA_TAIL,
	  "t.conf:3: [ha H] has failover = majority without a witness" },
	{ HA_HEAD HA_KEYS "witness = 127.0.0.3:3500\n" HA_TAIL,
	  "t.conf:3: [ha H] needs witness and witness-secret-file together" },
	{ HA_HEAD "witness = 127.0.0.3\n", "t.conf:4: witness '127.0.0.3' is not a numeric" },
	{ HA_HEAD "witness = 127.0.0.3:1\nwitness = 127.0.0.3:2\nwitness = 127.0.0.3:3\nwitness = 127.0.0.3:4\n"
	  "witness = 127.0.0.3:5\n", "t.conf:8: more than 4 witness addresses" },
	{ HA_HEAD "extent-size = 3K\n", "t.conf:4: extent-size '3K' is not a power of two" },
	{ HA_HEAD "extent-size = 2K\n", "t.conf:4: extent-size '2K' is not a power of two" },
	{ HA_HEAD "ping-interval = 200\n", "t.conf:4: ping-interval '200' is not a duration" },
	{ HA_HEAD "timeout = 5ms\n", "t.conf:4: timeout '5ms' is not a duration from 10ms" },
	{ HA_HEAD HA_KEYS "ping-interval = 2s\n" HA_TAIL,
	  "t.conf:3: [ha H] timeout 2000 ms is not longer than ping-interval 2000 ms" },
	{ HA_HEAD HA_KEYS "[target t]\n[lun t:0]\npath = /x\n", "t.conf:3: [ha H] is served by no LUN" },
	{ HA_HEAD HA_KEYS "[target t]\n[lun t:0]\nha = G\n", "t.conf:12: ha 'G' names no [ha G] section above" },
	{ "[portal p]\naddress = 127.0.0.1\n[target t]\n[lun t:0]\nha = H\n[ha H]\n" HA_KEYS,
	  "t.conf:5: ha 'H' names no [ha H] section above" },
	{ HA_HEAD HA_KEYS HA_TAIL "path = /x\n", "t.conf:11: [lun t:0] has both ha and path" },
	{ HA_HEAD HA_KEYS HA_TAIL "size = 1M\n", "t.conf:11: [lun t:0] has both ha and size" },
	{ HA_HEAD HA_KEYS HA_TAIL "uuid = 01234567-89ab-cdef-0123-456789abcdef\n",
	  "t.conf:11: [lun t:0] has both ha and uuid" },
	{ HA_HEAD HA_KEYS "size = 4K\n" HA_TAIL "block-size = 4096\n[lun t:1]\nha = H\n",
	  "t.conf:15: [ha H] is already served by the LUN of line 12" },
	{ HA_HEAD HA_KEYS HA_TAIL "[lun t:1]\npath = /h\n", "t.conf:13: path /h is already the replica of [ha H]" },
	{ HA_HEAD HA_KEYS "[ha G]\nuuid = 01234567-89ab-cdef-0123-456789abcdef\n",
	  "t.conf:10: [ha G] has no path" },
	{ HA_HEAD HA_KEYS "[ha G]\nuuid = 01234567-89ab-cdef-0123-456789abcdef\npath = /g\npriority = primary\n"
	  "initial-sync = clear\nsecret = s\nsync = 127.0.0.1:9 127.0.0.2:9\n" HA_TAIL,
	  "t.conf:10: [ha G] has the uuid of [ha H] (line 3)" },
	{ HA_HEAD HA_KEYS "[ha G]\nuuid = 11234567-89ab-cdef-0123-456789abcdef\npath = /g\npriority = primary\n"
	  "initial-sync = clear\nsecret = s\nsync = 127.0.0.1:3401 127.0.0.2:9\n" HA_TAIL "[lun t:1]\nha = G\n",
	  "t.conf:16: [ha G] link local end uses the same address as the link of line 9" },
	{ HA_HEAD HA_KEYS "meta = /h\n" HA_TAIL, "t.conf:3: [ha H] meta is its replica path" },
	{ "[daemon]\nnode-id = 0\n" HA_HEAD, "t.conf:2: node-id '0' is not a number" },
	{ "[ha]\n", "t.conf:1: [ha] needs a name" },
};

static void check_bad_cases(const struct bad_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct config *cfg = NULL;
		char err[512] = "";
		int rc = config_parse(cases[i].text, strlen(cases[i].text), "t.conf", &cfg, err, sizeof(err));

		if (rc != -1 || cfg != NULL)
			fail_msg("case %zu accepted: %s", i, cases[i].text);
		if (strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, cases[i].message);
	}
}

static void bad_lines_name_file_and_line(void **state)
{
	check_bad_cases(bad_cases, ARRAY_SIZE(bad_cases));
}

static void bad_ha_lines_name_file_and_line(void **state)
{
	check_bad_cases(ha_bad_cases, ARRAY_SIZE(ha_bad_cases));
}

static void long_and_binary_lines_are_refused(void **state)
{
	char text[512];
	struct config *cfg = NULL;
	char err[512];

	snprintf(text, sizeof(text), "[daemon]\nstate-dir = /%0300d\n", 0);
	assert_int_equal(config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.conf:2: line is longer than"));

	memcpy(text, "[daemon]\nlog-level = in\0fo\n", 28);
	assert_int_equal(config_parse(text, 28, "t.conf", &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.conf:2: NUL byte"));
}

static char tmpdir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int make_tmpdir(void **state)
{
	str_copy(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd);
}

/* Writes text to tmpdir/name and loads it: config_load()'s result. */
static int load(const char *name, const char *text, struct config **cfg, char *err, size_t errlen)
{
	char path[128];

	write_file(name, text, 0600);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return config_load(path, cfg, err, errlen);
}

static void load_reads_secret_files(void **state)
{
	char text[1024], path[128], err[512];
	struct config *cfg = NULL;

	write_file("secret", "file-secret-1\nignored\n", 0600);
	write_file("mutual", "file-secret-2", 0644);
	snprintf(text, sizeof(text),
	         "[portal p]\naddress = 127.0.0.1\n[target t]\nchap-user = u\n"
	         "chap-secret-file = %s/secret\nmutual-chap-user = m\n"
	         "mutual-chap-secret-file = %s/mutual\n[lun t:0]\npath = /x\n", tmpdir, tmpdir);
	write_file("twinsand.conf", text, 0600);
	snprintf(path, sizeof(path), "%s/twinsand.conf", tmpdir);
	if (config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg->targets[0].auth.initiator.secret, "file-secret-1");
	assert_int_equal(cfg->targets[0].auth.initiator.secret_len, 13);
	assert_string_equal(cfg->targets[0].auth.target.secret, "file-secret-2");
	config_free(cfg);
}

static void load_reads_ha_secrets(void **state)
{
	char text[1024], err[512];
	struct config *cfg = NULL;

	write_file("ha.secret", "ha-secret-0123\n", 0600);
	write_file("w.secret", "witness-secret", 0600);
	snprintf(text, sizeof(text),
	         "[portal p]\naddress = 127.0.0.1\n[ha H]\nuuid = 01234567-89ab-cdef-0123-456789abcdef\n"
	         "path = /h\npriority = secondary\ninitial-sync = copy\nsecret-file = %s/ha.secret\n"
	         "failover = node-majority\nwitness = 127.0.0.9:3500\nwitness-secret-file = %s/w.secret\n"
	         "sync = 127.0.0.1:3401 127.0.0.2:3401\n[target t]\n[lun t:0]\nha = H\n", tmpdir, tmpdir);
	if (load("ha.conf", text, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->has[0].secret_len, 14);
	assert_memory_equal(cfg->has[0].secret, "ha-secret-0123", 14);
	assert_int_equal(cfg->has[0].witness_secret_len, 14);
	assert_memory_equal(cfg->has[0].witness_secret, "witness-secret", 14);
	assert_string_equal(cfg->has[0].meta_path, CONFIG_DEFAULT_STATE_DIR "/ha-H.meta");
	config_free(cfg);

	snprintf(text, sizeof(text),
	         "[portal p]\naddress = 127.0.0.1\n[ha H]\nuuid = 01234567-89ab-cdef-0123-456789abcdef\n"
	         "path = /h\npriority = secondary\ninitial-sync = copy\nsecret-file = %s/none\n"
	         "sync = 127.0.0.1:3401 127.0.0.2:3401\n[target t]\n[lun t:0]\nha = H\n", tmpdir);
	assert_int_equal(load("ha2.conf", text, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ha2.conf:3: [ha H] secret file"));
	assert_non_null(strstr(err, "No such file"));
}

static void load_names_missing_files(void **state)
{
	char text[512], path[128], err[512];
	struct config *cfg = NULL;

	snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "absent.conf: No such file"));

	snprintf(text, sizeof(text), "[portal p]\naddress = 127.0.0.1\n[target t]\nchap-user = u\n"
	         "chap-secret-file = %s/none\n[lun t:0]\npath = /x\n", tmpdir);
	write_file("nosecret.conf", text, 0600);
	snprintf(path, sizeof(path), "%s/nosecret.conf", tmpdir);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nosecret.conf:3: [target t] secret file"));
	assert_non_null(strstr(err, "No such file"));

	write_file("empty", "\n", 0600);
	snprintf(text, sizeof(text), "[portal p]\naddress = 127.0.0.1\n[target t]\nchap-user = u\n"
	         "chap-secret-file = %s/empty\n[lun t:0]\npath = /x\n", tmpdir);
	write_file("emptysecret.conf", text, 0600);
	snprintf(path, sizeof(path), "%s/emptysecret.conf", tmpdir);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "must hold 1 to"));
}

/* The managed configuration: parsed after the main file, errors named in its own file,
 * and written back by config_format() into the same objects. */
static const char managed[] =
	"[target made]\n"
	"alias = made by twinctl\n"
	"portals = lo4\n"
	"allow = iqn.2026-11.org.example:host9\n"
	"chap-user = bob\n"
	"chap-secret = bob-secret-1234\n"
	"[lun made:0]\n"
	"path = /dev/shm/made.img\n"
	"size = 1M\n"
	"[lun disk1:2]\n"
	"path = /dev/shm/disk1-2.img\n"
	"block-size = 4096\n"
	"uuid = 01234567-89ab-cdef-0123-456789abcdef\n";

static void managed_sections_follow_the_main_file(void **state)
{
	struct config *cfg = NULL, *again = NULL;
	char err[512] = "", *text, *text2;

	assert_int_equal(config_parse_managed(good, strlen(good), "main.conf", managed, strlen(managed),
	                                      "managed.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->managed_config, "/var/lib/twinsan-test/managed.conf");
	assert_int_equal(cfg->n_targets, 3);
	assert_false(cfg->targets[0].managed);
	assert_true(cfg->targets[2].managed);
	assert_int_equal(cfg->n_luns, 5);
	assert_true(cfg->luns[4].managed);
	assert_int_equal(cfg->luns[4].target, 0);
	text = config_format(cfg);
	assert_non_null(text);
	assert_null(strstr(text, "[target disk1]"));
	assert_non_null(strstr(text, "[lun disk1:2]"));
	assert_int_equal(config_parse_managed(good, strlen(good), "main.conf", text, strlen(text),
	                                      "managed.conf", &again, err, sizeof(err)), 0);
	assert_string_equal(again->targets[2].alias, "made by twinctl");
	assert_string_equal(again->targets[2].auth.initiator.secret, "bob-secret-1234");
	assert_int_equal(again->targets[2].n_portals, 1);
	assert_int_equal(again->luns[3].size, 1 << 20);
	assert_int_equal(again->luns[4].block_size, 4096);
	assert_true(again->luns[4].has_uuid);
	assert_memory_equal(again->luns[4].uuid, cfg->luns[4].uuid, 16);
	text2 = config_format(again);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	config_free(cfg);
	config_free(again);
}

/* An HA device made through the API keeps its witness secret inline (twinctl read it). */
static void managed_ha_with_witness_round_trips(void **state)
{
	static const char main_text[] = "[portal p]\naddress = 127.0.0.1\n[target t]\n[lun t:0]\npath = /x\n";
	static const char ha_text[] = "[ha H]\n" HA_KEYS "failover = majority\nwitness = 127.0.0.3:3450\n"
	                              "witness-secret = w1tness-secret\n[lun t:1]\nha = H\n";
	struct config *cfg = NULL, *again = NULL;
	char err[512] = "", *text;

	assert_int_equal(config_parse_managed(main_text, strlen(main_text), "main.conf", ha_text, strlen(ha_text),
	                                      "managed.conf", &cfg, err, sizeof(err)), 0);
	assert_true(cfg->has[0].managed);
	assert_int_equal(cfg->has[0].witness_secret_len, strlen("w1tness-secret"));
	text = config_format(cfg);
	assert_non_null(strstr(text, "witness-secret = w1tness-secret\n"));
	assert_non_null(strstr(text, "secret = s3cret\n"));
	assert_int_equal(config_parse_managed(main_text, strlen(main_text), "main.conf", text, strlen(text),
	                                      "managed.conf", &again, err, sizeof(err)), 0);
	assert_memory_equal(again->has[0].uuid, cfg->has[0].uuid, 16);
	assert_int_equal(again->has[0].failover, HA_FAILOVER_MAJORITY);
	assert_int_equal(again->has[0].n_witness, 1);
	assert_int_equal(again->has[0].n_sync, 1);
	assert_string_equal(again->has[0].sync[0].partner.address, "127.0.0.2");
	free(text);
	config_free(cfg);
	config_free(again);
}

static void managed_errors_name_the_managed_file(void **state)
{
	static const char *const bad[][2] = {
		{ "[portal x]\naddress = 127.0.0.9\n", "managed.conf:1: [portal] belongs in the main" },
		{ "[daemon]\n", "managed.conf:1: [daemon] belongs in the main" },
		{ "[target made]\n\n[lun made:0]\npath = relative\n", "managed.conf:4:" },
		{ "[target disk1]\n", "managed.conf:1: target iqn.2026-11.org.twinsan:disk1 is defined twice (first at main.conf line 14)" },
		{ "[lun nosuch:0]\npath = /x\n", "managed.conf:1: [lun nosuch:0] names no target" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct config *cfg = NULL;
		char err[512] = "";

		assert_int_equal(config_parse_managed(good, strlen(good), "main.conf", bad[i][0], strlen(bad[i][0]),
		                                      "managed.conf", &cfg, err, sizeof(err)), -1);
		if (strncmp(err, bad[i][1], strlen(bad[i][1])) != 0)
			fail_msg("case %zu: got '%s', want '%s...'", i, err, bad[i][1]);
	}
}

static void load_reads_the_managed_file(void **state)
{
	char main_path[256], managed_path[256], text[512], err[512] = "";
	struct config *cfg = NULL;
	FILE *f;

	snprintf(main_path, sizeof(main_path), "%s/main.conf", tmpdir);
	snprintf(managed_path, sizeof(managed_path), "%s/m.conf", tmpdir);
	snprintf(text, sizeof(text), "[daemon]\nmanaged-config = %s\n[portal p]\naddress = 127.0.0.1\n"
	         "[target t]\n[lun t:0]\npath = /dev/shm/t.img\n", managed_path);
	f = fopen(main_path, "w");
	fputs(text, f);
	fclose(f);
	/* No managed file yet: just the main file. */
	assert_int_equal(config_load(main_path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_targets, 1);
	config_free(cfg);
	f = fopen(managed_path, "w");
	fputs("[target u]\n[lun u:0]\npath = /dev/shm/u.img\n[lun t:0]\npath = /dev/shm/t2.img\n", f);
	fclose(f);
	assert_int_equal(config_load(main_path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "m.conf:4: [lun t:0] is defined twice"));
	assert_int_equal(config_load_with(main_path, "[target u]\n", 11, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_targets, 2);
	config_free(cfg);
	unlink(managed_path);
	unlink(main_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_file_parses_every_key),
		cmocka_unit_test(daemon_section_is_optional),
		cmocka_unit_test(bad_lines_name_file_and_line),
		cmocka_unit_test(ha_sections_parse),
		cmocka_unit_test(bad_ha_lines_name_file_and_line),
		cmocka_unit_test(load_reads_ha_secrets),
		cmocka_unit_test(long_and_binary_lines_are_refused),
		cmocka_unit_test(load_reads_secret_files),
		cmocka_unit_test(load_names_missing_files),
		cmocka_unit_test(managed_sections_follow_the_main_file),
		cmocka_unit_test(managed_errors_name_the_managed_file),
		cmocka_unit_test(managed_ha_with_witness_round_trips),
		cmocka_unit_test(load_reads_the_managed_file),
	};

	log_set_level(LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
