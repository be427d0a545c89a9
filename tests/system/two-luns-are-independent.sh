#!/bin/bash
# A target with two LUNs of different sizes keeps them apart: REPORT LUNS lists both,
# each has its own capacity, and writes to one never show in the other.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-ls iscsi-readcapacity16 qemu-io
needs_twinsand

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:twoluns
truncate -s 32M "$SCRATCH/one.img"
daemon_start --portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/zero.img" --size 64M \
	--lun "$SCRATCH/one.img"
URL=iscsi://127.0.0.1:$PORT/$IQN

client iscsi-ls -s "iscsi://127.0.0.1:$PORT" >"$SCRATCH/ls" || fail "iscsi-ls failed"
grep -q '^Lun:0 *Type:DIRECT_ACCESS' "$SCRATCH/ls" || fail "LUN 0 not listed: $(cat "$SCRATCH/ls")"
grep -q '^Lun:1 *Type:DIRECT_ACCESS' "$SCRATCH/ls" || fail "LUN 1 not listed: $(cat "$SCRATCH/ls")"
client iscsi-readcapacity16 "$URL/1" | grep -q '^RETURNED LOGICAL BLOCK ADDRESS:65535$' ||
	fail "LUN 1 does not have the size of its existing file"

client qemu-io -f raw -c "write -P 0x10 0 2M" "$URL/0" >/dev/null || fail "write to LUN 0 failed"
client qemu-io -f raw -c "write -P 0x11 0 1M" "$URL/1" >/dev/null || fail "write to LUN 1 failed"
client qemu-io -f raw -c "read -P 0x10 0 2M" "$URL/0" >"$SCRATCH/r0" 2>&1 || fail "read LUN 0"
client qemu-io -f raw -c "read -P 0x11 0 1M" -c "read -P 0 1M 1M" "$URL/1" >"$SCRATCH/r1" 2>&1 ||
	fail "read LUN 1"
grep -q 'verification failed' "$SCRATCH/r0" "$SCRATCH/r1" && fail "the LUNs share data"
daemon_stop
