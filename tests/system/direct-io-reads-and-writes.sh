#!/bin/bash
# With --direct (O_DIRECT) every data path meets the alignment O_DIRECT demands: plain
# reads and writes (also at an odd 512-byte offset), WRITE ZEROES with unmap, and the
# internal buffers of COMPARE AND WRITE, WRITE SAME, VERIFY and EXTENDED COPY (driven by
# libiscsi's conformance suites for those commands).
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-io iscsi-test-cu
needs_twinsand

# tmpfs ignores O_DIRECT alignment, so the backing file goes on the build tree's disk.
DISKDIR=$(mktemp -d "$TOP/build/direct-io.XXXXXX")
die() { rm -rf "$DISKDIR"; fail "$@"; }
PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:direct
daemon_start --portal 127.0.0.1:$PORT --target $IQN --lun "$DISKDIR/disk.img" --size 64M --direct
URL=iscsi://127.0.0.1:$PORT/$IQN/0

client qemu-io -f raw -c "write -P 0x5a 0 1M" -c "read -P 0x5a 0 1M" \
	-c "write -P 0x17 512 4k" -c "read -P 0x17 512 4k" -c "write -z -u 8M 1M" \
	-c "read -P 0 8M 1M" "$URL" >"$SCRATCH/io" 2>&1 || die "qemu-io failed: $(cat "$SCRATCH/io")"
grep -qi "verification failed\|error" "$SCRATCH/io" && die "O_DIRECT data path: $(cat "$SCRATCH/io")"

for suite in CompareAndWrite WriteSame16 Verify16 ExtendedCopy; do
	client iscsi-test-cu --dataloss -t ALL.$suite "$URL" >"$SCRATCH/$suite" 2>&1 ||
		die "$suite suite did not run: $(tail -5 "$SCRATCH/$suite")"
	grep -q "FAILED" "$SCRATCH/$suite" && die "$suite fails with O_DIRECT: $(grep FAILED "$SCRATCH/$suite" | head -5)"
done
daemon_stop
rm -rf "$DISKDIR"
