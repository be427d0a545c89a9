#!/bin/bash
# An administrator sees who is logged in before deleting: twinctl session list shows the
# initiator's session on its target (name, ISID, connection).  Deleting that target, or a
# device of it, is refused with exit 1 and a message saying what to do while the session
# lasts, and changes nothing; --force logs the session out and deletes, and the initiator
# can no longer log in.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires qemu-io iscsi-inq
needs_api
TEST_PORTS="3570 3579"
ME=iqn.2026-11.org.twinsan.test:holder

api_serve_config
expect_exit 0 target create web
expect_exit 0 device create one --target web --path "$SCRATCH/web0.img" --size 8M
WEB=iscsi://127.0.0.1:$PORT/iqn.2026-11.org.twinsan:web

expect_exit 0 session list
grep -q '^no sessions$' "$SCRATCH/out" || fail "session list without sessions: $(cat "$SCRATCH/out")"

# An initiator that stays logged in (qemu-io sleeping between two reads).
qemu-io --image-opts \
	"driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=iqn.2026-11.org.twinsan:web,lun=0,initiator-name=$ME" \
	-c 'read 0 4k' -c 'sleep 20000' -c 'read 0 4k' >"$SCRATCH/holder" 2>&1 &
HOLDER=$!
for _ in $(seq 100); do
	ctl session list && grep -q "$ME" "$SCRATCH/out" && break
	sleep 0.1
done
grep -qE "^iqn.2026-11.org.twinsan:web  $ME  isid [0-9a-f]{12}  tsih [0-9]+  portal group 1  1 connection\(s\): 127.0.0.1:[0-9]+ \(cid 0\)$" \
	"$SCRATCH/out" || fail "session list: $(cat "$SCRATCH/out")"
expect_exit 0 --json session list
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["sessions"]
assert len(s) == 1 and s[0]["initiator"] == sys.argv[2] and s[0]["target"].endswith(":web"), s
assert len(s[0]["connections"]) == 1 and s[0]["connections"][0]["peer"].startswith("127.0.0.1:"), s
' "$SCRATCH/out" "$ME" || fail "session list --json: $(cat "$SCRATCH/out")"

cp "$MANAGED" "$SCRATCH/managed.before"
expect_exit 1 target delete web
grep -q '1 session(s) are logged in to iqn.2026-11.org.twinsan:web' "$SCRATCH/err" && grep -q -- '--force' "$SCRATCH/err" ||
	fail "deleting a busy target said: $(cat "$SCRATCH/err")"
expect_exit 1 device delete web:0
grep -q 'session list' "$SCRATCH/err" || fail "deleting a busy device said: $(cat "$SCRATCH/err")"
cmp -s "$MANAGED" "$SCRATCH/managed.before" || fail "a refused delete changed $MANAGED"
kill -0 $HOLDER 2>/dev/null || fail "a refused delete ended the session: $(cat "$SCRATCH/holder")"
client iscsi-inq "$WEB/0" >/dev/null 2>&1 || fail "a refused delete stopped serving the target"

expect_exit 0 target delete web --force
grep -q '^web: deleted with its LUNs$' "$SCRATCH/out" || fail "target delete --force said: $(cat "$SCRATCH/out")"
expect_exit 0 session list
grep -q "$ME" "$SCRATCH/out" && fail "the session is still listed: $(cat "$SCRATCH/out")"
grep -q "session TSIH [0-9]* of $ME ended: logged out by the administrator" "$DAEMON_LOG" ||
	fail "the daemon did not end the initiator's session"
# libiscsi would try to log in again for a long time: the holder has served its purpose.
kill -KILL $HOLDER 2>/dev/null
wait $HOLDER 2>/dev/null || true
client iscsi-inq "$WEB/0" >"$SCRATCH/inq" 2>&1 && fail "a login to the deleted target worked"
grep -q '^\[target web\]$' "$MANAGED" && fail "the deleted target is still in $MANAGED"
daemon_check
daemon_stop
exit 0
