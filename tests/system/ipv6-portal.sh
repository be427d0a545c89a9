#!/bin/bash
# A target listening only on an IPv6 portal serves reads and writes.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-io iscsi-inq
[ -e /proc/net/if_inet6 ] || skip "no IPv6"

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:ipv6
daemon_start --portal "[::1]:$PORT" --target $IQN --lun "$SCRATCH/disk.img" --size 64M
URL="iscsi://[::1]:$PORT/$IQN/$LUN"

client iscsi-inq "$URL" >/dev/null || fail "INQUIRY over IPv6 failed"
client qemu-io -f raw -c "write -P 0x66 0 1M" -c "read -P 0x66 0 1M" "$URL" >"$SCRATCH/io" 2>&1 ||
	fail "qemu-io over IPv6 failed: $(cat "$SCRATCH/io")"
grep -q 'verification failed' "$SCRATCH/io" && fail "wrong data over IPv6"
client iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN/$LUN" >/dev/null 2>&1 && fail "also listens on IPv4"
daemon_stop
