#!/bin/bash
# Reservations survive the loss and return of either node: registrations and a Write
# Exclusive reservation made through both nodes stay on the survivor when the primary is
# killed, a change made there while alone is what the primary finds when it returns; the
# same with the roles swapped; and APTPL state, persisted on both nodes, is back after
# both restart.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/scsi_steps.sh"

steps_pair_up
steps "a1 clearua good" "b2 clearua good" \
	"a1 register 0 17 good" "a1 reserve 17 1 good" "b2 register 0 34 good"

ha_kill A
ha_wait_log B "serving alone"
steps "b2 clearua eventually=good" "b2 readkeys keys=17,34" "b2 readresv resv=17/1" \
	"b2 write conflict" "b2 register 34 35 good"
ha_start A
ha_wait_state A synchronized
ha_wait_state B synchronized
steps "a1 clearua eventually=good" "a1 readkeys keys=17,35" "a1 readresv resv=17/1" \
	"a1 write good" "b2 clearua good" "b2 write conflict"

ha_kill B
ha_wait_log A "serving alone"
steps "a1 clearua eventually=good" "a1 register 17 18 aptpl good"
ha_start B
ha_wait_state B synchronized
ha_wait_state A synchronized
steps "b2 clearua eventually=good" "b2 readkeys keys=18,35" "b2 readresv resv=18/1" "b2 write conflict"

# Both restart: what was persisted with APTPL on each node is the state again.
ha_stop B
ha_stop A
ha_start A
ha_start B
ha_wait_state A synchronized
ha_wait_state B synchronized
steps "a1 clearua eventually=good" "b2 clearua eventually=good" \
	"a1 readkeys keys=18,35" "b2 readresv resv=18/1" "a1 write good" "b2 write conflict"
steps_pair_down
