#!/bin/bash
# With mutual CHAP the target proves its own secret: an initiator that expects the right
# target secret logs in, one that expects another secret refuses the target.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq

serve_disk mutual 64M --chap alice:alice-secret-1234 --mutual-chap target1:target-secret-5678
URL="iscsi://alice%alice-secret-1234@127.0.0.1:$PORT/$IQN/$LUN"

client iscsi-inq "$URL?target_user=target1&target_password=target-secret-5678" >"$SCRATCH/ok" 2>&1 ||
	fail "mutual CHAP with the right secrets failed: $(cat "$SCRATCH/ok")"
grep -q '^Peripheral Device Type:DIRECT_ACCESS' "$SCRATCH/ok" || fail "no INQUIRY data"

client iscsi-inq "$URL?target_user=target1&target_password=not-the-secret" >"$SCRATCH/bad" 2>&1 &&
	fail "the initiator accepted a target that proved the wrong secret"
grep -q 'Invalid CHAP_R response from the target' "$SCRATCH/bad" ||
	fail "unexpected failure: $(cat "$SCRATCH/bad")"
daemon_check

# One-way CHAP still works on a target that can do mutual CHAP.
client iscsi-inq "$URL" >/dev/null || fail "one-way CHAP refused"
daemon_stop
