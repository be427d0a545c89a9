#!/bin/bash
# Data digests: with HeaderDigest and DataDigest CRC32C negotiated, INQUIRY data comes with
# a correct data digest, a write whose immediate data carries the right digest succeeds,
# and one whose digest is wrong is rejected (Data digest error) without touching the
# disk.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/pdu.sh"
requires qemu-io od timeout
needs_twinsand

serve_disk datadigest 64M

pdu_connect 127.0.0.1 $PORT
pdu_login iqn.2026-11.org.twinsan.test:raw $IQN HeaderDigest=CRC32C DataDigest=CRC32C
echo "$PDU_TEXT" | grep -qx 'DataDigest=CRC32C' || fail "target did not agree to data digests: $PDU_TEXT"
PDU_DIGEST=1 PDU_DATA_DIGEST=1

# INQUIRY, 96 bytes: Data-In with status, or Data-In then SCSI Response.
pdu_scsi c1 1 96 "12 00 00 00 60 00 00 00 00 00 00 00 00 00 00 00"
pdu_recv || fail "no answer to INQUIRY"
[ "$(pdu_opcode)" = $((0x25)) ] || fail "INQUIRY answered with opcode 0x${PDU_BHS[0]}"
[ "${PDU_DATA[0]}" = 00 ] || fail "INQUIRY data is not a direct-access device: ${PDU_DATA[*]:0:8}"
if [ $(( 0x${PDU_BHS[1]} & 1 )) = 0 ]; then
	pdu_recv || fail "no SCSI Response to INQUIRY"
fi

pdu_clear_unit_attention 5

BLOCK_AB=$(printf 'ab %.0s' {1..512})
BLOCK_CD=$(printf 'cd %.0s' {1..512})
WRITE10="2a 00 00 00 00 08 00 00 01 00 00 00 00 00 00 00"   # LBA 8, one block

pdu_scsi a1 2 512 "$WRITE10" "$BLOCK_AB"
pdu_recv || fail "no answer to WRITE(10)"
[ "$(pdu_opcode)" = $((0x21)) ] || fail "WRITE answered with opcode 0x${PDU_BHS[0]}"
[ "${PDU_BHS[2]}${PDU_BHS[3]}" = 0000 ] || fail "WRITE failed: response ${PDU_BHS[2]} status ${PDU_BHS[3]}"

pdu_scsi a1 3 512 "$WRITE10" "$BLOCK_CD" "de ad be ef"
pdu_recv || fail "no answer to a WRITE with a bad data digest"
[ "$(pdu_opcode)" = $((0x3f)) ] && [ "${PDU_BHS[2]}" = 02 ] ||
	fail "bad data digest answered with opcode 0x${PDU_BHS[0]} reason 0x${PDU_BHS[2]}"
# At error recovery level 0 the target may end the connection here (the data cannot be
# asked for again); either way it must not have written the block.
pdu_close
daemon_check

client qemu-io -f raw -c "read -P 0xab 4096 512" "iscsi://127.0.0.1:$PORT/$IQN/$LUN" >"$SCRATCH/io" 2>&1 ||
	fail "read back failed: $(cat "$SCRATCH/io")"
grep -q 'verification failed' "$SCRATCH/io" && fail "the block does not hold the good write"
daemon_stop
