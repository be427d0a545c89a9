#!/bin/bash
# RESERVE(6) is one reservation for both nodes: taken by initiator 1 through node A, it
# turns initiator 2's reads and its own RESERVE(6) through node B into RESERVATION
# CONFLICT (and initiator 1's through node B, another I_T nexus); released, initiator 2
# takes it through node B and node A refuses initiator 1; when initiator 2's session on
# node B ends, node A lets initiator 1 in again.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/scsi_steps.sh"

steps_pair_up

steps "a1 clearua good" "b2 clearua good" "b1 clearua good" \
	"a1 reserve6 good" "a1 write good" \
	"b2 read conflict" "b2 reserve6 conflict" "b1 read conflict" \
	"a1 release6 good" \
	"b2 reserve6 good" "b2 write good" "a1 read conflict" "a1 reserve6 conflict" \
	"b2 logout good" "a1 read eventually=good" "a1 reserve6 good" "a1 release6 good"
steps_pair_down
