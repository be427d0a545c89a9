#!/bin/bash
# The metrics of an HA pair (metrics-listen in [daemon]): both nodes show HA1
# synchronized with the partner connected and both links up, the LUN's writes counted
# under device="HA1" on the node written through; when the partner dies the survivor's
# metrics say so (partner not connected, links down, no longer synchronized).
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
export TEST_PORTS=${TEST_PORTS:-3600 3609}
. "$TOP/tests/lib/metrics.sh"
requires qemu-io

ha_setup 16M
MPORT=$(metrics_port $HA_ADDR_A $HA_ADDR_B)
for n in A B; do
	sed -i "/^\[daemon\]$/a metrics-listen = $(_ha_addr $n):$MPORT" "$SCRATCH/$n/twinsand.conf"
done
ha_pair_up

ha_io A "write -P 0x77 0 1M" || fail "write through A: $(cat "$SCRATCH/io.out")"
for n in A B; do
	scrape "$(_ha_addr $n):$MPORT"
	grep -q '^twinsan_ha_state{device="HA1",state="synchronized",reason="none"} 1$' "$SCRATCH/m" ||
		fail "node $n: HA1 not synchronized in: $(grep twinsan_ha_state "$SCRATCH/m")"
	[ "$(metric twinsan_ha_partner_connected 'device="HA1"')" = 1 ] || fail "node $n: partner not connected"
	[ "$(metric twinsan_ha_link_up 'kind="sync",index="0"')" = 1 ] || fail "node $n: sync link not up"
	[ "$(metric twinsan_ha_link_up 'kind="heartbeat",index="0"')" = 1 ] || fail "node $n: heartbeat link not up"
	[ "$(metric twinsan_ha_dirty_bytes 'device="HA1"')" = 0 ] || fail "node $n: dirty bytes while in sync"
done
scrape "$HA_ADDR_A:$MPORT"
[ "$(metric twinsan_ha_serving 'device="HA1"')" = 1 ] || fail "A does not serve HA1"
[ "$(metric twinsan_lun_written_bytes_total 'device="HA1"')" = 1048576 ] ||
	fail "A counted $(metric twinsan_lun_written_bytes_total 'device="HA1"') bytes written, not 1 MiB"

ha_kill B
deadline=$(( $(date +%s) + 30 ))
until scrape "$HA_ADDR_A:$MPORT" && [ "$(metric twinsan_ha_partner_connected 'device="HA1"')" = 0 ] &&
	! grep -q '^twinsan_ha_state{device="HA1",state="synchronized"' "$SCRATCH/m"; do
	[ "$(date +%s)" -lt $deadline ] || fail "A's metrics still show the partner 30 s after it died"
	sleep 0.5
done
[ "$(metric twinsan_ha_link_up 'kind="sync",index="0"')" = 0 ] || fail "A's sync link still up after B died"
ha_check A
ha_stop A
