#!/bin/bash
# PREEMPT AND ABORT through one node acts on the other: initiator 2 registers and holds a
# Write Exclusive reservation through node B; initiator 1 preempts it with abort through
# node A.  Initiator 2 is owed REGISTRATIONS PREEMPTED on node B, its writes there conflict,
# and the reservation is initiator 1's on both nodes.  (That the preempted nexus's tasks in
# flight on the other node end aborted is checked by test_lu_state_peer, where a task can
# be held in flight without timing.)
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/scsi_steps.sh"

steps_pair_up

steps "a1 clearua good" "b2 clearua good" \
	"a1 register 0 17 good" "b2 register 0 34 good" "b2 reserve 34 1 good" \
	"a1 write conflict" \
	"a1 preempt-abort 17 34 1 good" \
	"b2 tur ua=2a05" "b2 write conflict" "b2 readkeys keys=17" "b2 readresv resv=17/1" \
	"a1 write good" "a1 tur good"
steps_pair_down
