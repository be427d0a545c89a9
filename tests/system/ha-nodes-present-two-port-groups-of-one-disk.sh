#!/bin/bash
# ALUA across an HA pair: each node presents its own target port (A: port 1 in group 1,
# B: port 0x8001 in group 2) of the same disk, and REPORT TARGET PORT GROUPS through
# either node lists both groups, active/optimized while in sync (active-active).  When B
# dies, A reports B's group unavailable and its own still active.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/pdu.sh"
requires od timeout

ha_setup 16M
ha_pair_up

# query ITT CDB: the data of a command answered by one Data-In carrying GOOD status.
# With SOFT set, a SCSI Response instead (the unit attention of a state change that
# happened since the TEST UNIT READY, while A takes over) returns false.
query()
{
	pdu_scsi c1 "$1" 1024 "$2"
	pdu_recv || fail "CDB $2: no answer"
	[ -n "${SOFT:-}" ] && [ "$(pdu_opcode)" = $((0x21)) ] && return 1
	[ "$(pdu_opcode)" = $((0x25)) ] && [ $(( 0x${PDU_BHS[1]} & 1 )) = 1 ] && [ "${PDU_BHS[3]}" = 00 ] ||
		fail "CDB $2: no data with GOOD status (opcode 0x${PDU_BHS[0]}, status 0x${PDU_BHS[3]})"
	DATA=("${PDU_DATA[@]:0:$(( 0x${PDU_BHS[5]}${PDU_BHS[6]}${PDU_BHS[7]} ))}")
}

# groups NODE: "GROUP:STATE:PORT ..." from REPORT TARGET PORT GROUPS through that node,
# and PORT/GROUP of the nexus from VPD 0x83.
groups()
{
	local i out=""
	pdu_connect "$(_ha_addr "$1")" "$HA_PORT"
	pdu_login iqn.2026-11.org.twinsan.test:alua "$HA_IQN"
	pdu_clear_unit_attention 1
	query 2 "a3 0a 00 00 00 00 00 00 04 00 00 00 00 00 00 00" || { pdu_close; return 1; }
	i=4
	while [ $i -lt ${#DATA[@]} ]; do
		[ "${DATA[i + 7]}" = 01 ] || fail "group with ${DATA[i + 7]} ports through $1: ${DATA[*]}"
		out+="${DATA[i + 2]}${DATA[i + 3]}:$(( 0x${DATA[i]} & 0x0f )):${DATA[i + 10]}${DATA[i + 11]} "
		i=$(( i + 12 ))
	done
	GROUPS_SEEN=${out% }
	query 3 "12 01 83 04 00 00 00 00 00 00 00 00 00 00 00 00"
	NEXUS=""
	i=4
	while [ $i -lt ${#DATA[@]} ]; do
		case $(( 0x${DATA[i + 1]} & 0x3f )) in
		$((0x14))) NEXUS="${DATA[i + 6]}${DATA[i + 7]}$NEXUS" ;;
		$((0x15))) NEXUS="$NEXUS/${DATA[i + 6]}${DATA[i + 7]}" ;;
		esac
		i=$(( i + 4 + 0x${DATA[i + 3]} ))
	done
	pdu_close
}

groups A
[ "$GROUPS_SEEN" = "0001:0:0001 0002:0:8001" ] || fail "groups through A: $GROUPS_SEEN"
[ "$NEXUS" = 0001/0001 ] || fail "A's port/group in VPD 0x83: $NEXUS"
groups B
[ "$GROUPS_SEEN" = "0002:0:8001 0001:0:0001" ] || fail "groups through B: $GROUPS_SEEN"
[ "$NEXUS" = 8001/0002 ] || fail "B's port/group in VPD 0x83: $NEXUS"

ha_kill B
deadline=$(( $(date +%s) + 30 ))
while ! SOFT=1 groups A || [ "$GROUPS_SEEN" != "0001:0:0001 0002:3:8001" ]; do
	[ "$(date +%s)" -lt $deadline ] || fail "A does not report B's group unavailable: $GROUPS_SEEN"
	sleep 0.3
done
ha_check A
ha_stop A
