#!/bin/bash
# twinctl's server list: add, list, remove; the file is mode 0600 in a 0700 directory;
# --server NAME reaches the saved daemon; a re-add replaces the address.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
TEST_PORTS="3500 3519"
export HOME=$SCRATCH/home XDG_CONFIG_HOME=
mkdir -p "$HOME"
FILE=$HOME/.config/twinsan/servers

api_serve_disk saved 16M
expect_exit 0 server list
grep -q "no saved servers" "$SCRATCH/out" || fail "empty list: $(cat "$SCRATCH/out")"
expect_exit 0 server add lab unix:/nowhere.sock
expect_exit 0 server add local "unix:$API_SOCKET"
expect_exit 0 server add lab "unix:$API_SOCKET"
[ "$(stat -c %a "$FILE")" = 600 ] || fail "$FILE is mode $(stat -c %a "$FILE")"
[ "$(stat -c %a "$(dirname "$FILE")")" = 700 ] || fail "its directory is mode $(stat -c %a "$(dirname "$FILE")")"
expect_exit 0 server list
[ "$(grep -c . "$SCRATCH/out")" = 2 ] || fail "two servers expected: $(cat "$SCRATCH/out")"
grep -qE "^lab +unix:$API_SOCKET$" "$SCRATCH/out" || fail "lab was not replaced: $(cat "$SCRATCH/out")"

TWINCTL_SERVER= client "$TWINCTL" --server lab target list >"$SCRATCH/out" 2>"$SCRATCH/err" ||
	fail "--server lab: $(cat "$SCRATCH/err")"
grep -q "^$IQN " "$SCRATCH/out" || fail "--server lab did not list the target: $(cat "$SCRATCH/out")"

expect_exit 0 server remove lab
expect_exit 0 server list
grep -q '^lab ' "$SCRATCH/out" && fail "lab is still listed"
TWINCTL_SERVER= client "$TWINCTL" --server lab status >/dev/null 2>"$SCRATCH/err" && fail "a removed name still works"
grep -q "no saved server named 'lab'" "$SCRATCH/err" || fail "removed name: $(cat "$SCRATCH/err")"

# A corrupt line is named by file:line.
echo "broken" >>"$FILE"
expect_exit 1 server list
grep -q "$FILE:3: expected NAME ADDRESS" "$SCRATCH/err" || fail "corrupt file: $(cat "$SCRATCH/err")"
daemon_stop
exit 0
