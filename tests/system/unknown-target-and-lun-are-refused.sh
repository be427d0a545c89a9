#!/bin/bash
# A login to a target name the daemon does not serve fails with "target not found", and a
# command to a LUN that does not exist gets LOGICAL UNIT NOT SUPPORTED; the daemon goes on.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq

serve_disk refusals 64M

client iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN-other/0" >"$SCRATCH/out" 2>&1 &&
	fail "login to an unknown target accepted"
grep -qi 'not found' "$SCRATCH/out" || fail "unexpected login failure: $(cat "$SCRATCH/out")"
daemon_check

client iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN/9" >"$SCRATCH/out" 2>&1 &&
	grep -q '^Peripheral Device Type:DIRECT_ACCESS' "$SCRATCH/out" && fail "LUN 9 answered as a disk"
daemon_check
client iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN/$LUN" >/dev/null || fail "the real LUN stopped answering"
daemon_stop
