#!/bin/bash
# LUN RESET through one node resets the logical unit on both: initiator 1's RESERVE(6),
# taken through node A, is gone after initiator 2 resets the LUN through node B, and both
# nexuses, on either node, are owed the reset unit attention.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/scsi_steps.sh"

steps_pair_up

steps "a1 clearua good" "b2 clearua good" \
	"a1 reserve6 good" "b2 read conflict" \
	"b2 lunreset good" \
	"a1 tur ua=2903" "b2 tur ua=2903" \
	"b2 reserve6 good" "a1 read conflict" "b2 release6 good"
steps_pair_down
