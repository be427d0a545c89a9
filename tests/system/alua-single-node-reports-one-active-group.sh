#!/bin/bash
# A plain LUN on one node: INQUIRY says implicit ALUA (TPGS 1), and REPORT TARGET PORT
# GROUPS, sent raw over iSCSI, lists one active/optimized group, id 1, holding the port the
# initiator came through, in the length-only and the extended header formats; the
# allocation length cuts the data but not the length it reports; VPD 0x83 names the same
# port and group.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/pdu.sh"
requires iscsi-inq od timeout
needs_twinsand
TEST_PORTS=${TEST_PORTS:-3520 3529}

serve_disk alua 16M

client iscsi-inq "$URL" >"$SCRATCH/inq" || fail "standard INQUIRY failed"
grep -qx 'TPGS:1' "$SCRATCH/inq" || fail "INQUIRY does not report implicit ALUA: $(grep TPGS "$SCRATCH/inq")"

# scsi_in ITT ALLOC CDB_HEX: a command with Data-In; leaves its data in PDU_DATA (as long
# as the Data-In's DataSegmentLength) and fails unless it ends GOOD.
scsi_in()
{
	local len
	pdu_scsi c1 "$1" "$2" "$3"
	pdu_recv || fail "no answer to CDB $3"
	if [ "$(pdu_opcode)" = $((0x21)) ]; then
		fail "CDB $3 answered without data: status 0x${PDU_BHS[3]} sense ${PDU_DATA[*]:0:20}"
	fi
	[ "$(pdu_opcode)" = $((0x25)) ] || fail "CDB $3 answered with opcode 0x${PDU_BHS[0]}"
	len=$(( 0x${PDU_BHS[5]}${PDU_BHS[6]}${PDU_BHS[7]} ))
	DATA=("${PDU_DATA[@]:0:$len}")
	if [ $(( 0x${PDU_BHS[1]} & 1 )) = 1 ]; then
		[ "${PDU_BHS[3]}" = 00 ] || fail "CDB $3 ended with status 0x${PDU_BHS[3]}"
	else
		pdu_recv && [ "$(pdu_opcode)" = $((0x21)) ] || fail "no SCSI Response to CDB $3"
		[ "${PDU_BHS[3]}" = 00 ] || fail "CDB $3 ended with status 0x${PDU_BHS[3]}"
	fi
}

pdu_connect 127.0.0.1 "$PORT"
pdu_login iqn.2026-11.org.twinsan.test:alua "$IQN"
pdu_clear_unit_attention 1

# Length-only format: header of 4, one group descriptor of 8, one port of 4.
scsi_in 2 1024 "a3 0a 00 00 00 00 00 00 04 00 00 00 00 00 00 00"
[ ${#DATA[@]} = 16 ] || fail "REPORT TARGET PORT GROUPS returned ${#DATA[@]} bytes: ${DATA[*]}"
[ "${DATA[*]:0:4}" = "00 00 00 0c" ] || fail "return data length ${DATA[*]:0:4}, want 12"
[ "${DATA[4]}" = 00 ] || fail "group state 0x${DATA[4]}, want active/optimized"
[ "${DATA[6]}${DATA[7]}" = 0001 ] || fail "group id 0x${DATA[6]}${DATA[7]}, want 1"
[ "${DATA[11]}" = 01 ] || fail "the group holds ${DATA[11]} ports, want 1"
[ "${DATA[14]}${DATA[15]}" = 0001 ] || fail "relative port 0x${DATA[14]}${DATA[15]}, want 1"

# Extended header: format type 1 and an implicit transition time.
scsi_in 3 1024 "a3 2a 00 00 00 00 00 00 04 00 00 00 00 00 00 00"
[ ${#DATA[@]} = 20 ] || fail "extended report of ${#DATA[@]} bytes: ${DATA[*]}"
[ "${DATA[4]}" = 10 ] || fail "format type byte 0x${DATA[4]}, want 0x10"
[ "${DATA[5]}" != 00 ] || fail "no implicit transition time"
[ "${DATA[10]}${DATA[11]}" = 0001 ] || fail "extended: group id 0x${DATA[10]}${DATA[11]}"

# Four bytes: the return data length alone, still the whole length.
scsi_in 4 4 "a3 0a 00 00 00 00 00 00 00 04 00 00 00 00 00 00"
[ "${DATA[*]}" = "00 00 00 0c" ] || fail "4-byte report: ${DATA[*]}"

# VPD 0x83 names the same relative target port and group for this nexus.
scsi_in 5 1024 "12 01 83 04 00 00 00 00 00 00 00 00 00 00 00 00"
port="" group="" i=4
while [ $i -lt ${#DATA[@]} ]; do
	case $(( 0x${DATA[i + 1]} & 0x3f )) in
	$((0x14))) port=${DATA[i + 6]}${DATA[i + 7]} ;;
	$((0x15))) group=${DATA[i + 6]}${DATA[i + 7]} ;;
	esac
	i=$(( i + 4 + 0x${DATA[i + 3]} ))
done
[ "$port" = 0001 ] || fail "VPD 0x83 relative target port '$port', want 0001"
[ "$group" = 0001 ] || fail "VPD 0x83 target port group '$group', want 0001"
pdu_close
daemon_check
daemon_stop
