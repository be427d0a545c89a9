# Two initiators on the two nodes of an HA pair (tests/lib/ha.sh), driven by
# tests/tools/scsi-steps: sessions a1 and b1 are initiator 1 through node A and node B,
# a2 and b2 initiator 2 likewise.
#
#   steps_pair_up   sets up and starts the pair (16 MiB), waits until it is synchronized
#   steps_pair_down fails if a node died or its sanitizers spoke, then stops both
#   steps STEP...   runs the steps (see scsi-steps.c for their words); fails the test at
#                   the first answer that is not the expected one
SCSI_STEPS=${SCSI_STEPS:-$(dirname "$TWINSAND")/tests/scsi-steps}
STEPS_IQN1=iqn.2026-11.org.twinsan.test:host1
STEPS_IQN2=iqn.2026-11.org.twinsan.test:host2
[ -x "$SCSI_STEPS" ] || fail "$SCSI_STEPS is not built (make BUILD=san units)"

steps()
{
	client "$SCSI_STEPS" "a1=$STEPS_IQN1,$(ha_url A)" "b1=$STEPS_IQN1,$(ha_url B)" \
		"a2=$STEPS_IQN2,$(ha_url A)" "b2=$STEPS_IQN2,$(ha_url B)" "$@" 2>"$SCRATCH/steps.err" ||
		fail "$(cat "$SCRATCH/steps.err")"
}

steps_pair_up()
{
	ha_setup 16M
	ha_pair_up
}

steps_pair_down()
{
	ha_check A B
	ha_stop B
	ha_stop A
}
