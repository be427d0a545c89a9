#!/bin/bash
# A partner that comes back with another link secret is refused and the refusal logged;
# it never gets in sync, and the node with the right secret keeps serving.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

ha_setup 16M
ha_pair_up
ha_stop B

ha_new_secret "$SCRATCH/other.secret"
ha_write_config B secondary "$SCRATCH/other.secret"
ha_start B
deadline=$(( $(date +%s) + 20 ))
until grep -q 'different shared secret' "$(ha_log A)" "$(ha_log B)"; do
	[ "$(date +%s)" -lt $deadline ] || fail "no node logged the refused secret"
	ha_check A B
	sleep 0.2
done

ha_io_retry A "write -P 0x42 0 1M" "read -P 0x42 0 1M"
[ "$(ha_state B)" = synchronized ] && fail "B is synchronized with a wrong secret"
grep -q 'authenticated' "$(ha_log B)" && fail "B authenticated a link with a wrong secret"
ha_check A B
ha_stop B
ha_stop A
