#!/bin/bash
# twinctl target delete and device delete stop serving at once: a deleted LUN is gone from
# REPORT LUNS and cannot be read while the target's other LUN still serves; a deleted
# target refuses logins and leaves discovery while the main file's target serves on; both
# are gone from the managed configuration, and a restart agrees.  The identity of what
# remains does not change.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires iscsi-ls iscsi-inq iscsi-readcapacity16 qemu-io
needs_api
TEST_PORTS="3560 3569"

api_serve_config
expect_exit 0 target create web
expect_exit 0 device create one --target web --path "$SCRATCH/web0.img" --size 8M
expect_exit 0 device create two --target web --path "$SCRATCH/web1.img" --size 8M
WEB=iscsi://127.0.0.1:$PORT/iqn.2026-11.org.twinsan:web
BASE=iscsi://127.0.0.1:$PORT/iqn.2026-11.org.twinsan:base
client iscsi-inq -e 1 -c 0x83 "$WEB/1" >"$SCRATCH/id1.before" || fail "INQUIRY of web:1 failed"
client iscsi-inq -e 1 -c 0x83 "$BASE/0" >"$SCRATCH/base.before" || fail "INQUIRY of base:0 failed"
client qemu-io -f raw -c 'write -P 0x3c 0 64k' "$WEB/1" >"$SCRATCH/io" 2>&1 || fail "writing web:1: $(cat "$SCRATCH/io")"

# The LUN goes at once; its neighbour serves on with the same identity.
expect_exit 0 device delete web:0
grep -q '^web:0: deleted$' "$SCRATCH/out" || fail "device delete said: $(cat "$SCRATCH/out")"
client iscsi-readcapacity16 "$WEB/0" >"$SCRATCH/cap" 2>&1 && fail "the deleted LUN still answers: $(cat "$SCRATCH/cap")"
client iscsi-ls -s "iscsi://127.0.0.1:$PORT" >"$SCRATCH/ls" 2>&1 || fail "iscsi-ls failed: $(cat "$SCRATCH/ls")"
client qemu-io -f raw -c 'read -P 0x3c 0 64k' "$WEB/1" >"$SCRATCH/io" 2>&1 || fail "web:1 after its neighbour's delete: $(cat "$SCRATCH/io")"
client iscsi-inq -e 1 -c 0x83 "$WEB/1" >"$SCRATCH/id1.after" || fail "INQUIRY of web:1 failed"
cmp -s "$SCRATCH/id1.before" "$SCRATCH/id1.after" || fail "web:1 changed identity"
expect_exit 0 target list
grep -q "web0.img" "$SCRATCH/out" && fail "target list still shows the deleted LUN: $(cat "$SCRATCH/out")"
grep -q '^\[lun web:0\]$' "$MANAGED" && fail "the deleted LUN is still in $MANAGED"

# The target goes at once; the main file's target serves on.
expect_exit 0 target delete web
client iscsi-inq "$WEB/1" >"$SCRATCH/inq" 2>&1 && fail "a login to the deleted target worked: $(cat "$SCRATCH/inq")"
client iscsi-ls "iscsi://127.0.0.1:$PORT" >"$SCRATCH/ls" 2>&1 || fail "discovery failed: $(cat "$SCRATCH/ls")"
grep -q 'org.twinsan:web' "$SCRATCH/ls" && fail "discovery still lists the deleted target: $(cat "$SCRATCH/ls")"
grep -q 'org.twinsan:base' "$SCRATCH/ls" || fail "discovery lost the other target: $(cat "$SCRATCH/ls")"
client iscsi-inq -e 1 -c 0x83 "$BASE/0" >"$SCRATCH/base.after" || fail "INQUIRY of base:0 failed after the delete"
cmp -s "$SCRATCH/base.before" "$SCRATCH/base.after" || fail "base:0 changed identity"
expect_exit 0 --json target list
grep -q 'org.twinsan:web' "$SCRATCH/out" && fail "target list still shows the deleted target: $(cat "$SCRATCH/out")"
grep -q '^\[target web\]$' "$MANAGED" && fail "the deleted target is still in $MANAGED"

# A target of the same name can be made again, and a restart agrees with what is served.
expect_exit 0 target create web
daemon_check
daemon_stop
daemon_start --config "$SCRATCH/twinsand.conf" --api-socket "$API_SOCKET"
expect_exit 0 target list
grep -q '^iqn.2026-11.org.twinsan:web  (web)' "$SCRATCH/out" || fail "the target made again is gone after a restart: $(cat "$SCRATCH/out")"
grep -q 'web[01].img' "$SCRATCH/out" && fail "a deleted LUN is back after a restart: $(cat "$SCRATCH/out")"
client iscsi-inq -e 1 -c 0x83 "$BASE/0" >"$SCRATCH/base.after" || fail "INQUIRY of base:0 failed after the restart"
cmp -s "$SCRATCH/base.before" "$SCRATCH/base.after" || fail "base:0 changed identity over the restart"
daemon_check
daemon_stop
exit 0
