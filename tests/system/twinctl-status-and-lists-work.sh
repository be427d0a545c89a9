#!/bin/bash
# twinctl status, target list and device list answer from a real daemon over its Unix
# socket, which is created mode 0600, and show what the daemon serves.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
needs_api
TEST_PORTS="3500 3519"

api_serve_disk status 64M
[ "$(stat -c %a "$API_SOCKET")" = 600 ] || fail "the API socket is mode $(stat -c %a "$API_SOCKET"), not 600"
[ -S "$API_SOCKET" ] || fail "$API_SOCKET is not a socket"

expect_exit 0 status
grep -q '^version: ' "$SCRATCH/out" || fail "status shows no version: $(cat "$SCRATCH/out")"
grep -q '^targets:  1$' "$SCRATCH/out" || fail "status does not count one target: $(cat "$SCRATCH/out")"

expect_exit 0 target list
grep -q "^$IQN " "$SCRATCH/out" || fail "target list lacks $IQN: $(cat "$SCRATCH/out")"
grep -qE '^  lun 0 +64\.0 MiB +ok +'"$SCRATCH/disk.img"'$' "$SCRATCH/out" ||
	fail "target list does not show LUN 0 (64 MiB, ok, its file): $(cat "$SCRATCH/out")"
grep -q "^portals: 127.0.0.1:$PORT,1$" "$SCRATCH/out" || fail "target list lacks the portal: $(cat "$SCRATCH/out")"

expect_exit 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "device list of a daemon without HA devices: $(cat "$SCRATCH/out")"

# Still serving iSCSI after all that.
requires iscsi-inq
client iscsi-inq "$URL" >/dev/null || fail "iSCSI stopped working"
daemon_check
daemon_stop
[ -e "$API_SOCKET" ] && fail "the daemon left its socket file behind"
exit 0
