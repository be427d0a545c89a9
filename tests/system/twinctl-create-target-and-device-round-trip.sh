#!/bin/bash
# twinctl target create and device create change a running daemon at once: the new target
# is listed and serves its new LUN over iSCSI with the asked size (and, grown, the new one;
# shrinking is refused), and both are kept in the
# managed configuration (mode 600), not in the administrator's file; deleting them removes
# them from the managed configuration, and what the main file defines cannot be deleted
# (twinctl-delete-* test that a delete also stops serving at once).
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires iscsi-readcapacity16 qemu-io
needs_api
TEST_PORTS="3550 3559"

api_serve_config
cp "$SCRATCH/twinsand.conf" "$SCRATCH/twinsand.conf.orig"

expect_exit 0 target create web
grep -q '^web: created as iqn.2026-11.org.twinsan:web$' "$SCRATCH/out" || fail "target create said: $(cat "$SCRATCH/out")"
expect_exit 0 device create d1 --target web --path "$SCRATCH/web0.img" --size 16M
grep -q '^web:0: created$' "$SCRATCH/out" || fail "device create said: $(cat "$SCRATCH/out")"
expect_exit 0 target list
grep -q '^iqn.2026-11.org.twinsan:web  (web)' "$SCRATCH/out" || fail "target list lacks web: $(cat "$SCRATCH/out")"
grep -qE "^  lun 0 +16\.0 MiB +ok +$SCRATCH/web0.img$" "$SCRATCH/out" || fail "target list lacks web's LUN: $(cat "$SCRATCH/out")"

URL=iscsi://127.0.0.1:$PORT/iqn.2026-11.org.twinsan:web/0
client iscsi-readcapacity16 "$URL" >"$SCRATCH/cap" || fail "the new LUN does not answer READ CAPACITY"
grep -q 'Total size:16777216' "$SCRATCH/cap" || fail "the new LUN's capacity: $(cat "$SCRATCH/cap")"
client qemu-io -f raw -c 'write -P 0x5a 0 64k' -c 'read -P 0x5a 0 64k' "$URL" >"$SCRATCH/io" 2>&1 ||
	fail "I/O to the new LUN failed: $(cat "$SCRATCH/io")"

[ "$(stat -c %a "$MANAGED")" = 600 ] || fail "$MANAGED is mode $(stat -c %a "$MANAGED"), not 600"
grep -q '^\[target web\]$' "$MANAGED" && grep -q '^\[lun web:0\]$' "$MANAGED" ||
	fail "the managed configuration lacks what was made: $(cat "$MANAGED")"
cmp -s "$SCRATCH/twinsand.conf" "$SCRATCH/twinsand.conf.orig" || fail "the administrator's file was changed"

# Growing the LUN: the initiator sees the new capacity; shrinking is refused.
expect_exit 0 device resize web:0 --size 32M
client iscsi-readcapacity16 "$URL" >"$SCRATCH/cap" || fail "READ CAPACITY after the resize failed"
grep -q 'Total size:33554432' "$SCRATCH/cap" || fail "the grown LUN's capacity: $(cat "$SCRATCH/cap")"
grep -q '^size = 33554432$' "$MANAGED" || fail "the managed configuration keeps the old size: $(cat "$MANAGED")"
cp "$MANAGED" "$SCRATCH/managed.before"
expect_exit 1 device resize web:0 --size 8M
grep -q 'shrinking would cut off data' "$SCRATCH/err" || fail "shrinking said: $(cat "$SCRATCH/err")"
cmp -s "$MANAGED" "$SCRATCH/managed.before" || fail "a refused shrink changed $MANAGED"
[ "$(stat -c %s "$SCRATCH/web0.img")" = 33554432 ] || fail "a refused shrink changed the file"
client qemu-io -f raw -c 'read -P 0x5a 0 64k' "$URL" >"$SCRATCH/io" 2>&1 || fail "the data is gone after the resize"

expect_exit 1 target delete base
grep -q "defined in $SCRATCH/twinsand.conf" "$SCRATCH/err" || fail "deleting a main-file target: $(cat "$SCRATCH/err")"
expect_exit 1 target delete nosuch
grep -q 'no target named "nosuch"' "$SCRATCH/err" || fail "deleting an unknown target: $(cat "$SCRATCH/err")"

expect_exit 0 device delete web:0
grep -q '^web:0: deleted' "$SCRATCH/out" || fail "device delete said: $(cat "$SCRATCH/out")"
grep -q '^\[lun web:0\]$' "$MANAGED" && fail "the deleted LUN is still in $MANAGED"
expect_exit 0 --json target delete web
grep -q '"name": *"web"' "$SCRATCH/out" || fail "target delete --json: $(cat "$SCRATCH/out")"
grep -q '^\[target web\]$' "$MANAGED" && fail "the deleted target is still in $MANAGED"

daemon_check
daemon_stop
exit 0
