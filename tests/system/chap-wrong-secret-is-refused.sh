#!/bin/bash
# With CHAP required, the right user and secret log in; a wrong secret, an unknown user and
# no credentials at all are refused with an authentication failure, and the daemon goes on
# serving.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq

serve_disk chap 64M --chap alice:correct-horse-battery
at() { echo "iscsi://$1127.0.0.1:$PORT/$IQN/$LUN"; }

refused()
{
	client iscsi-inq "$(at "$1")" >"$SCRATCH/out" 2>&1 && fail "login with '$1' was accepted"
	grep -qi 'authentication fail' "$SCRATCH/out" ||
		fail "login with '$1' failed for another reason: $(cat "$SCRATCH/out")"
	daemon_check
}

client iscsi-inq "$(at alice%correct-horse-battery@)" >/dev/null || fail "right secret refused"
refused alice%correct-horse-batterx@
refused alice%correct-horse-battery-and-more@
refused mallory%correct-horse-battery@
refused ""
client iscsi-inq "$(at alice%correct-horse-battery@)" >/dev/null || fail "right secret refused afterwards"
daemon_stop
