#!/bin/bash
# 150 random PDUs after login (random opcodes among the initiator's, random flags
# and fields, short random data segments), on fresh connections whenever the daemon hangs
# up: the sanitizer build neither crashes nor reports an error nor leaks, and it serves a
# real client afterwards.  A bounded, reproducible (SEED=n; PDUS=n) fuzz of the full
# feature phase.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/pdu.sh"
requires iscsi-inq od timeout

serve_disk random 16M
RANDOM=${SEED:-$$}
echo "SEED=$RANDOM" >&2
trap '' PIPE

# N random bytes in hex; printf -v, not a subshell per byte, keeps this fast.
hexbytes()
{
	local i b out=""
	for ((i = 0; i < $1; i++)); do printf -v b ' %02x' $((RANDOM % 256)); out+=$b; done
	echo $out
}
OPCODES=(00 01 02 04 05 06 10 1c 0b 3f)
connect() { pdu_connect 127.0.0.1 $PORT; pdu_login iqn.2026-11.org.twinsan.test:random $IQN; }

connect
sent=0 reconnects=0
while [ $sent -lt ${PDUS:-150} ]; do
	op=${OPCODES[$((RANDOM % ${#OPCODES[@]}))]}
	[ $((RANDOM % 2)) = 1 ] && op=$(printf '%02x' $((0x$op | 0x40)))    # immediate
	len=$((RANDOM % 3 == 0 ? RANDOM % 65 : 0))
	pad=$(( (4 - len % 4) % 4 ))
	rest=($(hexbytes 40))
	bhs="$op $(hexbytes 3) 00 $(pdu_be24 $len) ${rest[*]}"
	# Keep CmdSN near the window half the time so commands reach the SCSI layer.
	if [ $((RANDOM % 2)) = 1 ]; then
		bhs="${bhs:0:72}$(pdu_be32 $PDU_CMDSN) $(pdu_be32 $((PDU_STATSN + 1)))${bhs:95}"
		PDU_CMDSN=$((PDU_CMDSN + 1))
	fi
	data="$(hexbytes $len) $(printf '00 %.0s' $(seq $pad))"
	[ $len = 0 ] && data=""
	if ! (pdu_send "$bhs" "$data") 2>/dev/null; then
		pdu_close
		reconnects=$((reconnects + 1))
		connect
	fi
	sent=$((sent + 1))
	[ $((sent % 50)) = 0 ] && daemon_check
done
pdu_close
echo "sent $sent PDUs, reconnected $reconnects times" >&2
sleep 1
daemon_check
client iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN/$LUN" >/dev/null || fail "daemon stopped serving"
daemon_stop
