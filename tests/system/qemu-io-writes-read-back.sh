#!/bin/bash
# Data written through QEMU's iSCSI driver reads back, lands at the right offset of the
# backing file, and an 8 MiB request (beyond the burst limits, so several R2Ts and Data-In
# sequences) survives intact.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-io

serve_disk qemuio 64M

client qemu-io -f raw -c "write -P 0xa5 1M 64k" -c "write -P 0x3c 16M 8M" \
	-c "read -P 0xa5 1M 64k" -c "read -P 0x3c 16M 8M" -c "read -P 0 0 1M" "$URL" \
	>"$SCRATCH/io" 2>&1 || fail "qemu-io failed: $(cat "$SCRATCH/io")"
grep -q "Pattern verification failed" "$SCRATCH/io" && fail "data did not read back: $(cat "$SCRATCH/io")"

# The bytes are in the file where the LBA says (sync: the daemon may cache them).
client qemu-io -f raw -c flush "$URL" >/dev/null || fail "SYNCHRONIZE CACHE failed"
head -c 65536 /dev/zero | tr '\0' '\245' >"$SCRATCH/expect"
cmp -s "$SCRATCH/expect" <(dd if="$SCRATCH/disk.img" bs=64k skip=16 count=1 status=none) ||
	fail "backing file does not hold the written data at 1 MiB"
daemon_stop
