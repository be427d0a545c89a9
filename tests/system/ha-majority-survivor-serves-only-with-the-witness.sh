#!/bin/bash
# Node majority: when its partner dies, a node goes on alone only with the witness's
# vote.  With the witness up, A is granted the device and serves; with the witness gone
# too, A stops serving instead of risking a split brain.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

HA_WITNESS=yes ha_setup 16M
ha_witness_start
ha_pair_up

ha_kill B
ha_wait_log A "the witness granted this node's claim"
ha_io_retry A "write -P 0x31 0 1M" "read -P 0x31 0 1M"

ha_start B
ha_wait_state B synchronized
ha_wait_state A synchronized
grants=$(grep -c "the witness granted" "$(ha_log A)")
ha_witness_kill
ha_kill B
# A claims the device, and without an answer the claim fails.
ha_wait_log A "the witness refused or withdrew"
[ "$(grep -c "the witness granted" "$(ha_log A)")" = "$grants" ] || fail "A was granted the device without a witness"
case "$(ha_state A)" in
*"not serving"*) ;;
*) fail "A serves alone without partner and witness: $(ha_state A)" ;;
esac
ha_stop A
