#!/bin/bash
# After a restart on the same backing file the disk has the same identity (VPD 0x80 and
# 0x83, which multipath relies on) and the same data.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq qemu-io

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:restart
ARGS=(--portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size 64M)
identity()
{
	client iscsi-inq -e 1 -c 128 "$URL" || fail "VPD 0x80 failed"
	client iscsi-inq -e 1 -c 131 "$URL" || fail "VPD 0x83 failed"
}

daemon_start "${ARGS[@]}"
URL=iscsi://127.0.0.1:$PORT/$IQN/$LUN
identity >"$SCRATCH/before"
client qemu-io -f raw -c "write -P 0x42 4M 1M" -c flush "$URL" >/dev/null || fail "write failed"
daemon_stop

daemon_start "${ARGS[@]}"
identity >"$SCRATCH/after"
cmp -s "$SCRATCH/before" "$SCRATCH/after" ||
	fail "identity changed across a restart: $(diff "$SCRATCH/before" "$SCRATCH/after")"
client qemu-io -f raw -c "read -P 0x42 4M 1M" "$URL" >"$SCRATCH/io" 2>&1 || fail "read failed"
grep -q 'verification failed' "$SCRATCH/io" && fail "data lost across a restart"
daemon_stop
