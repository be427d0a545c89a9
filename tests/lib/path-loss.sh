# The path loss scenario (tests/system/ha-path-loss-*.sh source it after ha.sh): an
# initiator doing verified writes round robin over both nodes of an HA pair, retrying as
# multipath does (tests/fault/twinload.c), while one node is killed with -9 and comes
# back.  Each acknowledged write is read back at once, through the other node first.  It
# passes when no command failed after retries, no read-back was stale, every acknowledged
# write reads back through each node at the end, and the replicas agree (the online
# verify while the pair serves, then byte for byte).  It prints
#   path-loss: issued=N acked=N retried=N failed=N lost=N longest_stall_ms=N
# The stall (the longest time writes waited without one being acknowledged) is printed,
# not checked: timing is not a test result on a shared machine.
#
#   path_loss_scenario A|B    the whole scenario, killing that node (HA_WITNESS=yes: under
#                             the majority strategy, with the witness)

TWINLOAD=${TWINLOAD:-$(dirname "$TWINSAND")/tests/twinload}
PL_LOAD_PID=""
PL_LOG=$SCRATCH/twinload.log
PL_OUT=$SCRATCH/twinload.out
# Acknowledged writes to see in each phase: enough for both paths to take many of them.
PL_ACKS=${PL_ACKS:-400}

_pl_cleanup()
{
	_plrc=$?
	[ -n "$PL_LOAD_PID" ] && kill -KILL "$PL_LOAD_PID" 2>/dev/null && wait "$PL_LOAD_PID" 2>/dev/null
	if [ $_plrc = 1 ] && [ -s "$PL_OUT" ]; then
		echo "--- last lines of the workload's output:" >&2
		tail -n 15 "$PL_OUT" >&2
	fi
	(exit $_plrc)
	_ha_cleanup
}
trap _pl_cleanup EXIT

_pl_acked()
{
	_n=$(grep -c '^A ' "$PL_LOG" 2>/dev/null)
	echo "${_n:-0}"
}

# _pl_wait_acks WHAT: waits until PL_ACKS more writes are acknowledged; a workload that
# stops making progress for HA_STATE_TIMEOUT seconds fails the test (a hang).
_pl_wait_acks()
{
	_want=$(( $(_pl_acked) + PL_ACKS ))
	_deadline=$(( $(date +%s) + HA_STATE_TIMEOUT ))
	until [ "$(_pl_acked)" -ge $_want ]; do
		kill -0 "$PL_LOAD_PID" 2>/dev/null || fail "the workload exited $1"
		[ "$(date +%s)" -lt $_deadline ] ||
			fail "fewer than $PL_ACKS writes acknowledged within $HA_STATE_TIMEOUT s $1"
		sleep 0.2
	done
	echo "$PL_ACKS more writes acknowledged $1"
}

# _pl_verify NODE: every logged block read through NODE; sets PL_LOST and PL_CORRUPT.
_pl_verify()
{
	_v=$(client "$TWINLOAD" verify --url "$(ha_url "$1")" --log "$PL_LOG" --retry-seconds 30 2>&1) ||
		echo "$_v" | grep -q '^verify:' || fail "verify through $1 failed: $_v"
	echo "$_v" | grep -v '^verify:' | head -n 5
	_v=$(echo "$_v" | grep '^verify:')
	echo "through $1: $_v"
	PL_LOST=$(echo "$_v" | sed -n 's/.*lost_writes=\([0-9]*\).*/\1/p')
	PL_CORRUPT=$(echo "$_v" | sed -n 's/.*corrupt=\([0-9]*\).*/\1/p')
}

path_loss_scenario()
{
	_victim=$1
	_survivor=$([ "$1" = A ] && echo B || echo A)
	[ -x "$TWINLOAD" ] || fail "$TWINLOAD is not built (make BUILD=san units)"
	ha_setup "${PL_SIZE:-32M}"
	[ "${HA_WITNESS:-}" = yes ] && ha_witness_start
	ha_pair_up
	# Path 0 is A, path 1 is B; 500 writes a second (PL_RATE), 16 in flight.
	"$TWINLOAD" write --url "$(ha_url A)" --url "$(ha_url B)" --log "$PL_LOG" --seed $$ --rate "${PL_RATE:-500}" \
		--depth 16 --retry-seconds 30 --read-back >"$PL_OUT" 2>&1 &
	PL_LOAD_PID=$!
	_pl_wait_acks "through both nodes"

	ha_kill "$_victim"
	echo "node $_victim killed"
	ha_wait_state "$_survivor" "not synchronized: partner lost"
	_pl_wait_acks "through $_survivor alone"

	ha_start "$_victim"
	ha_wait_state "$_victim" synchronized
	ha_wait_state "$_survivor" synchronized
	_pl_wait_acks "through both nodes after the resync"

	kill -TERM "$PL_LOAD_PID"
	wait "$PL_LOAD_PID" && _st=0 || _st=$?
	PL_LOAD_PID=""
	_w=$(grep '^write:' "$PL_OUT") || fail "the workload printed no summary (status $_st)"
	echo "$_w"
	grep -E 'not retryable|^stale:' "$PL_OUT" | head -n 5 || true
	# The returned node took writes again: its path came up a second time.
	_path=$([ "$_victim" = A ] && echo 0 || echo 1)
	[ "$(grep -c "path $_path up" "$PL_OUT")" -ge 2 ] ||
		fail "the workload never used node $_victim's path again after its return"

	_pl_verify A
	_lost=$PL_LOST _corrupt=$PL_CORRUPT
	_pl_verify B
	[ "$PL_LOST" -gt "$_lost" ] && _lost=$PL_LOST
	_corrupt=$(( _corrupt + PL_CORRUPT ))
	_field() { echo "$_w" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
	echo "path-loss: issued=$(_field issued) acked=$(echo "$_w" | sed -n 's/^write: acked=\([0-9]*\).*/\1/p')" \
		"retried=$(_field retried) failed=$(_field failed) lost=$_lost longest_stall_ms=$(_field longest_stall_ms)"

	client "$(dirname "$TWINSAND")/twinctl" --server "unix:$SCRATCH/$_survivor/api.sock" device verify HA1 --wait ||
		fail "the online verify found the replicas different"
	ha_check A B
	ha_stop A
	ha_stop B
	[ "$(_field stale)" = 0 ] || fail "$(_field stale) read-backs returned stale data"
	[ "$_st" = 0 ] && [ "$(_field failed)" = 0 ] || fail "commands failed after retries through every path"
	[ "$_lost" = 0 ] && [ "$_corrupt" = 0 ] || fail "$_lost acknowledged writes lost, $_corrupt blocks corrupt"
	ha_replicas_equal || fail "the replicas differ: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
}
