#!/bin/bash
# Runs a client against the HA pair of tests/lib/ha.sh: both nodes started and
# synchronized, then COMMAND ARGS... with two URLs appended, the device through node A
# (the primary) and through node B.  Exits with the command's status, or 1 (a "FAIL:" line
# on stderr) if the pair does not come up, a node dies, or a node does not stop cleanly
# afterwards.  The nodes' logs are copied to LOGDIR as twinsand-A.log and twinsand-B.log.
#
#   tests/lib/ha-pair-run.sh SIZE LOGDIR COMMAND [ARGS...]
#
# TWINSAND picks the build (default the sanitizer one), HA_PORTS the ports (ha.sh).
# The conformance stage of tests/run uses it for libiscsi's two-path run.
. "$(dirname "$0")/twinsand.sh"
. "$TOP/tests/lib/ha.sh"

[ $# -ge 3 ] || fail "usage: $0 SIZE LOGDIR COMMAND [ARGS...]"
size=$1 logdir=$2
shift 2
mkdir -p "$logdir"
keep_logs()
{
	for _n in A B; do
		[ -n "$(ha_log $_n)" ] && cp "$(ha_log $_n)" "$logdir/twinsand-$_n.log"
	done
	return 0
}

ha_setup "$size"
ha_pair_up

# The client runs in the background so that a TERM (tests/run's timeout) ends it and the
# nodes at once instead of after it.
"$@" "$(ha_url A)" "$(ha_url B)" &
client_pid=$!
trap 'kill -TERM $client_pid 2>/dev/null; keep_logs; exit 1' INT TERM HUP
wait $client_pid && status=0 || status=$?
trap 'exit 1' INT TERM HUP

keep_logs
ha_check A B
ha_stop B
ha_stop A
keep_logs
exit $status
