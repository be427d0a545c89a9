#!/bin/bash
# In full feature phase a PDU with an unknown opcode gets a Reject (Command not supported)
# and a SNACK at error recovery level 0 a Reject (Protocol error); the connection goes on
# (a NOP-Out ping is answered).  Garbage instead of a Login Request ends only that
# connection: the daemon keeps serving.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/pdu.sh"
requires iscsi-inq od timeout

serve_disk malformed 64M
ZEROS16=$(printf '00 %.0s' {1..16})

expect_reject()
{
	pdu_recv || fail "no answer to $1"
	[ "$(pdu_opcode)" = $((0x3f)) ] || fail "answer to $1 is opcode 0x${PDU_BHS[0]}, not Reject"
	[ "${PDU_BHS[2]}" = "$2" ] || fail "Reject of $1 has reason 0x${PDU_BHS[2]}, not 0x$2"
}

pdu_connect 127.0.0.1 $PORT
pdu_login iqn.2026-11.org.twinsan.test:raw $IQN HeaderDigest=None DataDigest=None
pdu_ping 16

# Opcode 0x0b is reserved for initiators.
pdu_send "0b 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 11 ff ff ff ff
	$(pdu_be32 $PDU_CMDSN) $(pdu_be32 $((PDU_STATSN + 1))) $ZEROS16"
expect_reject "opcode 0x0b" 05
pdu_ping 17

# SNACK (Status) for StatSN 0: only error recovery levels above 0 have SNACK.
pdu_send "10 81 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff ff ff ff ff ff ff ff
	00 00 00 00 $(pdu_be32 $((PDU_STATSN + 1))) 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
expect_reject "SNACK" 04
pdu_ping 18
pdu_close
daemon_check

# 48 bytes that are no Login Request, then a huge data segment length.
pdu_connect 127.0.0.1 $PORT
pdu_send "ff ff ff ff 00 ff ff ff $(printf 'ff %.0s' {1..40})"
pdu_recv && [ "$(pdu_opcode)" != $((0x23)) ] && [ "$(pdu_opcode)" != $((0x3f)) ] &&
	fail "garbage before login answered with opcode 0x${PDU_BHS[0]}"
pdu_close
daemon_check

client iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN/$LUN" >/dev/null || fail "daemon stopped serving"
daemon_stop
