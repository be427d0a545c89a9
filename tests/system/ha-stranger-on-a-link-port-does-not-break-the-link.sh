#!/bin/bash
# A connection to the secondary's sync and heartbeat ports from someone who does not know
# the secret (garbage, or silence) never replaces the working links: the pair stays
# synchronized and serving, and a write through the secondary still reaches both
# replicas.  Only a newer connection that proves the secret may take a link's place.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

ha_setup 16M
ha_pair_up
states_before=$(grep -c 'HA1: state' "$(ha_log B)")

# A stranger that speaks garbage, and one that holds its connections open in silence.
for port in $HA_SYNC_PORT $HA_HB_PORT; do
	exec 7<>"/dev/tcp/127.0.0.2/$port"
	printf 'GET / HTTP/1.0\r\n\r\n' >&7
	exec 7>&-
done
exec 8<>"/dev/tcp/127.0.0.2/$HA_SYNC_PORT" 9<>"/dev/tcp/127.0.0.2/$HA_HB_PORT"

ha_io B "write -P 0x5c 0 1M" || fail "write through B failed: $(cat "$SCRATCH/io.out")"
ha_io A "read -P 0x5c 0 1M" || fail "A does not read B's write: $(cat "$SCRATCH/io.out")"
exec 8>&- 9>&-
ha_check A B
[ "$(grep -c 'HA1: state' "$(ha_log B)")" = "$states_before" ] ||
	fail "B changed state because of a stranger: $(grep 'HA1: state' "$(ha_log B)" | tail -n 2)"
grep -q 'replaced by a new connection' "$(ha_log A)" "$(ha_log B)" &&
	fail "a stranger's connection replaced a working link"
[ "$(ha_state A)" = synchronized ] && [ "$(ha_state B)" = synchronized ] || fail "the pair left sync"
ha_stop B
ha_stop A
ha_replicas_equal || fail "replicas differ"
