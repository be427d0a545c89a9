#!/bin/bash
# After a node is killed, the resync moves exactly the extents written while it was away,
# not the extents each node kept marked from before (their writes had reached both
# replicas: they are compared by digest, and being equal, not moved).  Checked once with
# the secondary killed and once with the primary killed, both nodes holding kept extents
# each time; the replicas end bit-identical.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
requires qemu-io

N_MIB=6
MiB=$((1024 * 1024))
ha_setup 64M extent-size=1M
ha_pair_up

# tally NODE FIELD: the last resync tally the node's current log reports (sent, received
# or compared bytes); 0 if none.
tally()
{
	grep -o 'resync tally sent [0-9]* received [0-9]* bytes, compared by digest [0-9]*' "$(ha_log "$1")" |
		tail -n 1 | awk -v f="$2" '{ print f == "sent" ? $4 : f == "received" ? $6 : $11 }' | grep . || echo 0
}

# Each node marks what is written through it: both keep extents marked.
keep_extents_on_both()
{
	ha_io A "write -P 0x11 0 12M" || fail "write through A: $(cat "$SCRATCH/io.out")"
	ha_io B "write -P 0x22 20M 12M" || fail "write through B: $(cat "$SCRATCH/io.out")"
}

# --- the secondary killed: A writes alone, B comes back ---
keep_extents_on_both
before=$(tally A sent)
ha_kill B
ha_io_retry A "write -P 0x6b 40M ${N_MIB}M"
ha_start B
ha_wait_state B synchronized
ha_wait_state A synchronized
moved=$(( $(tally A sent) - before ))
compared=$(tally A compared)
echo "secondary killed: $moved bytes moved, $compared compared, for $N_MIB MiB written alone"
[ "$moved" -eq $((N_MIB * MiB)) ] || fail "resync moved $moved bytes for $N_MIB MiB written alone"
[ "$compared" -ge $((12 * MiB)) ] || fail "the kept extents were not compared ($compared bytes)"
ha_io B "read -P 0x6b 40M ${N_MIB}M" "read -P 0x22 20M 12M" ||
	fail "B lacks data after the resync: $(cat "$SCRATCH/io.out")"

# --- the primary killed: B writes alone, A comes back and is the target ---
keep_extents_on_both
ha_kill A
ha_io_retry B "write -P 0x7c 50M ${N_MIB}M"
ha_start A
ha_wait_state A synchronized
ha_wait_state B synchronized
received=$(tally A received)
echo "primary killed: $received bytes moved, $(tally A compared) compared, for $N_MIB MiB written alone"
[ "$received" -eq $((N_MIB * MiB)) ] || fail "resync moved $received bytes for $N_MIB MiB written alone"
ha_io A "read -P 0x7c 50M ${N_MIB}M" "read -P 0x11 0 12M" ||
	fail "A lacks data after the resync: $(cat "$SCRATCH/io.out")"

ha_stop B
ha_stop A
ha_replicas_equal || fail "the replicas differ after the resync: $(cmp "$(ha_replica A)" "$(ha_replica B)")"
