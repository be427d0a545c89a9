#!/bin/bash
# READ CAPACITY (16) reports the size given at creation in 512-byte blocks, and REPORT
# LUNS (through iscsi-ls) lists the disk.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-readcapacity16 iscsi-ls

serve_disk capacity 96M

client iscsi-readcapacity16 "$URL" >"$SCRATCH/cap" || fail "READ CAPACITY (16) failed"
grep -q '^RETURNED LOGICAL BLOCK ADDRESS:196607$' "$SCRATCH/cap" || fail "wrong last LBA: $(cat "$SCRATCH/cap")"
grep -q '^LOGICAL BLOCK LENGTH IN BYTES:512$' "$SCRATCH/cap" || fail "wrong block length"
[ "$(stat -c %s "$SCRATCH/disk.img")" = 100663296 ] || fail "backing file was not created with 96 MiB"

client iscsi-ls -s "iscsi://127.0.0.1:$PORT" >"$SCRATCH/ls" || fail "iscsi-ls failed"
grep -q "^Lun:$LUN *Type:DIRECT_ACCESS (Size:9[56]M)" "$SCRATCH/ls" || fail "LUN not listed: $(cat "$SCRATCH/ls")"
daemon_stop
