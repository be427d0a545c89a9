#!/bin/bash
# Persistent reservations are one state for both nodes: initiator 1 registers and takes a
# Write Exclusive reservation through node A; initiator 2, through node B, reads the key
# and the reservation there, may read but gets RESERVATION CONFLICT for a write, and after
# the holder releases it the write goes through.  Initiator 1 through node B is another
# I_T nexus (another target port), not registered: it conflicts too.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/scsi_steps.sh"

steps_pair_up

steps "a1 clearua good" "b2 clearua good" "b1 clearua good" \
	"a1 register 0 17 good" "a1 reserve 17 1 good" \
	"b2 readkeys keys=17" "b2 readresv resv=17/1" \
	"b2 read good" "b2 write conflict" \
	"b2 register 0 34 good" "b2 write conflict" \
	"a1 readkeys keys=17,34" \
	"b1 write conflict" "a1 release 17 1 good" \
	"b2 write good" "a2 clearua good" "a2 readresv resv=none"
steps_pair_down
