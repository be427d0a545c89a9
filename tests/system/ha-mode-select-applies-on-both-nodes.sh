#!/bin/bash
# Mode parameters are one for both nodes: D_SENSE set with MODE SELECT through node A is
# what MODE SENSE reports through node B, whose nexus is owed MODE PARAMETERS CHANGED (the
# issuer is not); cleared through node B, node A's nexus learns it the same way.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/scsi_steps.sh"

steps_pair_up

steps "a1 clearua good" "b2 clearua good" \
	"b2 getdsense dsense=0" \
	"a1 dsense 1 good" "a1 tur good" \
	"b2 tur ua=2a01" "b2 getdsense dsense=1" \
	"b2 dsense 0 good" "b2 tur good" \
	"a1 tur ua=2a01" "a1 getdsense dsense=0"
steps_pair_down
