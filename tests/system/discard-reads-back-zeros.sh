#!/bin/bash
# UNMAP (QEMU's discard) deallocates: the range reads back as zeros and the sparse backing
# file gives the space back.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-io

serve_disk discard 64M

client qemu-io -f raw -c "write -P 0x77 0 32M" -c flush "$URL" >/dev/null || fail "write failed"
before=$(du -k "$SCRATCH/disk.img" | cut -f1)
client qemu-io -f raw -d unmap -c "discard 0 16M" -c "read -P 0 0 16M" -c "read -P 0x77 16M 16M" \
	"$URL" >"$SCRATCH/io" 2>&1 || fail "discard failed: $(cat "$SCRATCH/io")"
grep -q 'verification failed' "$SCRATCH/io" && fail "wrong data after discard: $(cat "$SCRATCH/io")"
after=$(du -k "$SCRATCH/disk.img" | cut -f1)
[ "$after" -le $((before - 8192)) ] || fail "discard freed no space ($before KiB -> $after KiB)"
daemon_stop
