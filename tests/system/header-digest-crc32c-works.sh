#!/bin/bash
# Header digests: the target agrees to CRC32C when asked, puts a correct digest on what it
# sends and accepts ours, and libiscsi reads at queue depth 16 with header digests on.
# (QEMU 7.2's iSCSI driver crashes with header_digest=crc32c against any target, so the
# data path is driven by iscsi-perf.)
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/pdu.sh"
requires iscsi-perf od timeout

serve_disk digest 64M

pdu_connect 127.0.0.1 $PORT
pdu_login iqn.2026-11.org.twinsan.test:raw $IQN HeaderDigest=CRC32C DataDigest=None
echo "$PDU_TEXT" | grep -qx 'HeaderDigest=CRC32C' || fail "target did not agree to CRC32C: $PDU_TEXT"
PDU_DIGEST=1
pdu_ping 5      # pdu_recv checks the digest of the NOP-In
pdu_ping 6
pdu_close

URL="iscsi://127.0.0.1:$PORT/$IQN/$LUN?header_digest=crc32c"
client iscsi-perf -t 3 -m 16 -b 64 "$URL" >"$SCRATCH/perf" 2>&1 ||
	fail "iscsi-perf with header digests failed: $(cat "$SCRATCH/perf")"
grep -q 'iops average' "$SCRATCH/perf" || fail "no throughput reported: $(cat "$SCRATCH/perf")"
daemon_stop
