#!/bin/bash
# Only root and the daemon's own user may manage it: the socket is mode 0600, and a
# user who gets to connect anyway (the directory and socket opened up by mistake) is
# refused by the daemon after SO_PEERCRED, with a message and exit code 3.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
requires setpriv
[ "$(id -u)" = 0 ] || skip "needs root to run twinctl as another user"
id nobody >/dev/null 2>&1 || skip "no user 'nobody'"
TEST_PORTS="3500 3519"

as_nobody() { setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups "$@"; }

api_serve_disk refused 16M
[ "$(stat -c '%a %U' "$API_SOCKET")" = "600 root" ] || fail "socket is $(stat -c '%a %U' "$API_SOCKET")"

# The scratch directory must be reachable by nobody for the test to mean anything.
chmod 755 "$SCRATCH" "$SCRATCH/run"
cp "$TWINCTL" "$SCRATCH/twinctl" && chmod 755 "$SCRATCH/twinctl"
TWINCTL_SERVER=unix:$API_SOCKET as_nobody "$SCRATCH/twinctl" status >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 3 ] || fail "nobody through a 0600 socket: exit $rc, not 3: $(cat "$SCRATCH/err")"
grep -q "Permission denied; run twinctl as root" "$SCRATCH/err" || fail "message: $(cat "$SCRATCH/err")"

chmod 666 "$API_SOCKET"
TWINCTL_SERVER=unix:$API_SOCKET as_nobody "$SCRATCH/twinctl" status >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
[ $rc = 3 ] || fail "nobody through an opened-up socket: exit $rc, not 3: $(cat "$SCRATCH/err")"
grep -q "permission_denied: uid $(id -u nobody) may not manage this daemon; run twinctl as root" "$SCRATCH/err" ||
	fail "message: $(cat "$SCRATCH/err")"
[ -s "$SCRATCH/out" ] && fail "nobody got output: $(cat "$SCRATCH/out")"
grep -q "api: refusing pid [0-9]* uid $(id -u nobody)" "$DAEMON_LOG" || fail "the daemon did not log the refusal"

# Root still gets in.
expect_exit 0 status
daemon_check
daemon_stop
exit 0
