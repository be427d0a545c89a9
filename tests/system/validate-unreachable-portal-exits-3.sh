#!/bin/bash
# twinctl validate exits 3, naming the path and why, when a path cannot be reached: a
# portal nobody listens on (given as a path, or as a portal to discover paths from), and
# (with a daemon on the other path) a target name the portal does not serve; with --json
# it still prints one document with the error.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires jq
needs_twinsand
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"
TEST_PORTS=${TEST_PORTS:-3560 3569}

DEAD=$(free_port)
client "$TWINCTL" validate iscsi://127.0.0.1:$DEAD/iqn.2026-11.org.twinsan.test:gone/0 \
	>"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 3 ] || fail "an unreachable portal exited $rc, not 3: $(cat "$SCRATCH/err")"
grep -q "path 1: cannot connect to 127.0.0.1:$DEAD: Connection refused" "$SCRATCH/err" ||
	fail "the message does not name the path and why: $(cat "$SCRATCH/err")"
# A portal to discover the paths from.
client "$TWINCTL" validate iscsi://127.0.0.1:$DEAD >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 3 ] || fail "an unreachable portal to discover from exited $rc, not 3: $(cat "$SCRATCH/err")"
grep -q "cannot connect to 127.0.0.1:$DEAD: Connection refused" "$SCRATCH/err" ||
	fail "the message does not name the portal and why: $(cat "$SCRATCH/err")"

serve_disk validate-unreachable 8M
client "$TWINCTL" --json validate "$URL" iscsi://127.0.0.1:$PORT/iqn.2026-11.org.twinsan.test:other/0 \
	>"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 3 ] || fail "a target the portal does not serve exited $rc, not 3: $(cat "$SCRATCH/err")"
grep -q "path 2: cannot log in to iqn.2026-11.org.twinsan.test:other" "$SCRATCH/err" ||
	fail "the message does not name path 2: $(cat "$SCRATCH/err")"
[ "$(jq -r .exit_code "$SCRATCH/out")" = 3 ] || fail "--json document: $(cat "$SCRATCH/out")"
jq -r .error "$SCRATCH/out" | grep -q "cannot log in" || fail "--json document has no error: $(cat "$SCRATCH/out")"
daemon_check
daemon_stop
