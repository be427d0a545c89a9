#!/bin/bash
# Bad arguments to the create and delete commands change nothing: what twinctl itself can
# tell is wrong exits 2 before anything is sent, what the daemon's configuration parser
# refuses (bad names, unknown portals, names taken by the main file, sizes that do not
# fit) exits 1 with the parser's message, and so does a LUN the daemon cannot open; the managed configuration stays byte for byte
# the same and the daemon serves what it served.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
TEST_PORTS="3570 3579"

api_serve_config
expect_exit 0 target create first
expect_exit 0 device create first --path "$SCRATCH/first.img" --size 4M
cp "$MANAGED" "$SCRATCH/managed.before"
expect_exit 0 --json target list
cp "$SCRATCH/out" "$SCRATCH/list.before"

# expect_refused N PATTERN ARGS...: exits N, says PATTERN on stderr, changes nothing.
expect_refused()
{
	_n=$1
	_pattern=$2
	shift 2
	expect_exit "$_n" "$@"
	grep -q -- "$_pattern" "$SCRATCH/err" || fail "twinctl $* said: $(cat "$SCRATCH/err"), not /$_pattern/"
	cmp -s "$MANAGED" "$SCRATCH/managed.before" || fail "twinctl $* changed $MANAGED: $(cat "$MANAGED")"
}

printf '' >"$SCRATCH/empty.secret"
expect_refused 2 'missing NAME' target create
expect_refused 2 "unknown option '--colour'" target create second --colour blue
expect_refused 2 'go together' target create second --chap-user u
expect_refused 2 'chap-secret-file' target create second --chap-user u --chap-secret-file "$SCRATCH/none.secret"
expect_refused 2 'the first line is empty' target create second --chap-user u --chap-secret-file "$SCRATCH/empty.secret"
expect_refused 2 '--iqn is given twice' target create second --iqn iqn.2026-11.org.x:a --iqn iqn.2026-11.org.x:b
expect_refused 2 '--path is required' device create second --size 4M
expect_refused 2 'absolute path' device create second --path rel.img
expect_refused 2 "--size '12Q'" device create second --path "$SCRATCH/s.img" --size 12Q
expect_refused 2 "--lun 'one'" device create second --path "$SCRATCH/s.img" --lun one
expect_refused 2 "--block-size '1024'" device create second --path "$SCRATCH/s.img" --block-size 1024

expect_refused 1 "target name 'Second' may hold only" target create Second
expect_refused 1 "portal 'wan' is not defined" target create second --portal wan
expect_refused 1 'is defined twice' target create base
expect_refused 1 'is defined twice' target create first
expect_refused 1 "allow 'nobody' is not an iSCSI initiator name" target create second --allow nobody
expect_refused 1 'may not hold control characters' target create second --iqn 'iqn.2026-11.org.x:a;b'
expect_refused 1 'no target named "nosuch"' device create second --target nosuch --path "$SCRATCH/s.img"
expect_refused 1 'not a multiple of the block size' device create second --target first --path "$SCRATCH/s.img" --size 1000
expect_refused 1 'is already the LUN' device create second --target first --path "$SCRATCH/first.img"
expect_refused 1 'is defined twice' device create second --target first --lun 0 --path "$SCRATCH/s.img"
# Valid text, but the daemon cannot open the file: not served, not kept.
expect_refused 1 'cannot serve LUN 1 of iqn.2026-11.org.twinsan:first' device create second --target first \
	--path "$SCRATCH/no-such-dir/s.img" --size 4M
expect_refused 1 'no device "first:7"' device delete first:7
expect_refused 1 "defined in $SCRATCH/twinsand.conf" device delete base:0
[ -e "$SCRATCH/s.img" ] && fail "a refused device create made its file"

expect_exit 0 --json target list
cmp -s "$SCRATCH/out" "$SCRATCH/list.before" || fail "the daemon serves something else: $(cat "$SCRATCH/out")"
daemon_check
daemon_stop
exit 0
