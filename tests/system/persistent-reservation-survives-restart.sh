#!/bin/bash
# A registration made with APTPL (activate persist through power loss) and the reservation
# taken with it are still there after the daemon restarts: PERSISTENT RESERVE IN reports
# the key and the reservation to a new session.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/pdu.sh"
requires od timeout

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:aptpl
ARGS=(--portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size 16M)
ME=iqn.2026-11.org.twinsan.test:raw
KEY="11 22 33 44 55 66 77 88"

# pr_out SA TYPE ITT PARAMETERS: PERSISTENT RESERVE OUT with a 24-byte parameter list.
pr_out()
{
	pdu_scsi a1 "$3" 24 "5f $1 $2 00 00 00 00 00 18 00 00 00 00 00 00 00" "$4"
	pdu_recv || fail "no answer to PERSISTENT RESERVE OUT $1"
	[ "$(pdu_opcode)" = $((0x21)) ] && [ "${PDU_BHS[3]}" = 00 ] ||
		fail "PERSISTENT RESERVE OUT $1 failed: opcode 0x${PDU_BHS[0]} status 0x${PDU_BHS[3]}"
}

# pr_in SA ITT: PERSISTENT RESERVE IN; leaves the parameter data in PDU_DATA.
pr_in()
{
	pdu_scsi c1 "$2" 256 "5e $1 00 00 00 00 00 01 00 00 00 00 00 00 00 00"
	pdu_recv || fail "no answer to PERSISTENT RESERVE IN $1"
	[ "$(pdu_opcode)" = $((0x25)) ] || fail "PERSISTENT RESERVE IN $1 answered with opcode 0x${PDU_BHS[0]}"
	local data=("${PDU_DATA[@]}")
	[ $(( 0x${PDU_BHS[1]} & 1 )) = 1 ] || pdu_recv || fail "no SCSI Response"
	PDU_DATA=("${data[@]}")
}

daemon_start "${ARGS[@]}"
pdu_connect 127.0.0.1 $PORT
pdu_login $ME $IQN
pdu_clear_unit_attention 1
# REGISTER with APTPL, then RESERVE (Write Exclusive, type 1) with the same key.
pr_out 00 00 2 "$(printf '00 %.0s' {1..8}) $KEY 00 00 00 00 01 00 00 00"
pr_out 01 01 3 "$KEY $(printf '00 %.0s' {1..16})"
pdu_close
daemon_stop

daemon_start "${ARGS[@]}"
pdu_connect 127.0.0.1 $PORT
pdu_login $ME $IQN
pdu_clear_unit_attention 1
pr_in 00 2     # READ KEYS
[ "${PDU_DATA[*]:4:4}" = "00 00 00 08" ] || fail "not one key after restart: ${PDU_DATA[*]:0:16}"
[ "${PDU_DATA[*]:8:8}" = "$KEY" ] || fail "wrong key after restart: ${PDU_DATA[*]:8:8}"
pr_in 01 3     # READ RESERVATION
[ "${PDU_DATA[*]:4:4}" = "00 00 00 10" ] || fail "no reservation after restart: ${PDU_DATA[*]:0:24}"
[ "${PDU_DATA[*]:8:8}" = "$KEY" ] || fail "reservation holds another key: ${PDU_DATA[*]:8:8}"
[ "${PDU_DATA[21]}" = 01 ] || fail "reservation type 0x${PDU_DATA[21]}, not Write Exclusive"
pdu_close
daemon_stop
