#!/bin/bash
# Deleting an HA device stops it at once on that node: its links close (the partner sees
# it gone, its sync port is free again), it is no longer listed or served, and its metadata
# is saved; the other node's device goes the same way.  When this node fails to make its
# side after the partner made its own, twinctl's rollback takes the partner's side down
# at once too (not only from its managed configuration).  device delete --partner deletes
# on both nodes at once.  Restarts agree.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires qemu-io python3
needs_api
TEST_PORTS="3580 3599"

api_pair_start

# listening HOST PORT: true if something accepts connections there.
listening() { python3 -c "import socket, sys; socket.create_connection(('$1', $2), 1)" 2>/dev/null; }

on A 0 device create ha1 --ha --partner "unix:$SCRATCH/B/api.sock" \
	--path "$SCRATCH/A/ha1.img" --partner-path "$SCRATCH/B/ha1.img" --size 16M --priority primary \
	--initial-sync clear --sync 127.0.0.1:$((PORT + 1)) 127.0.0.2:$((PORT + 1))
tries=0
until CTL_SOCKET=$SCRATCH/A/api.sock ctl --json device status ha1 && grep -q '"state": *"synchronized"' "$SCRATCH/out" &&
	grep -q '"partner_connected": *true' "$SCRATCH/out"; do
	tries=$((tries + 1))
	[ $tries -lt 300 ] || fail "ha1 did not synchronize: $(cat "$SCRATCH/out" "$SCRATCH/err")"
	sleep 0.1
done
listening 127.0.0.2 $((PORT + 1)) || fail "B does not listen on its sync port"

# B's side goes: B lists and serves it no more and stops listening; A loses its partner.
on B 0 device delete ha1
grep -q '^ha1: deleted$' "$SCRATCH/out" || fail "device delete said: $(cat "$SCRATCH/out")"
on B 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "B still lists the device: $(cat "$SCRATCH/out")"
client iscsi-readcapacity16 "iscsi://127.0.0.2:$PORT/iqn.2026-11.org.twinsan:ha1/0" >/dev/null 2>&1 &&
	fail "B still serves the deleted device"
tries=0
while listening 127.0.0.2 $((PORT + 1)); do
	tries=$((tries + 1))
	[ $tries -lt 100 ] || fail "B still listens on the deleted device's sync port"
	sleep 0.1
done
tries=0
until CTL_SOCKET=$SCRATCH/A/api.sock ctl --json device status ha1 && grep -q '"partner_connected": *false' "$SCRATCH/out"; do
	tries=$((tries + 1))
	[ $tries -lt 300 ] || fail "A still sees its partner: $(cat "$SCRATCH/out")"
	sleep 0.1
done
grep -q "ha1: closed" "$DAEMON_LOG" || fail "B did not log the device closed"
on A 0 device delete ha1
on A 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "A still lists the device: $(cat "$SCRATCH/out")"

# This node (A) fails after B made its side (A's replica cannot be created): B's side is
# deleted again and B stops serving it at once.
on A 1 device create ha2 --ha --partner "unix:$SCRATCH/B/api.sock" \
	--path "$SCRATCH/A/no/such/dir/ha2.img" --partner-path "$SCRATCH/B/ha2.img" --size 16M --priority primary \
	--initial-sync clear --sync 127.0.0.1:$((PORT + 3)) 127.0.0.2:$((PORT + 3))
grep -q "this node failed to create its side; deleting the partner's again" "$SCRATCH/err" ||
	fail "device create --ha said: $(cat "$SCRATCH/err")"
on B 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "B still lists the rolled back device: $(cat "$SCRATCH/out")"
listening 127.0.0.2 $((PORT + 3)) && fail "B still listens for the rolled back device"
grep -q '^\[ha ' "$SCRATCH/B/state/managed.conf" && fail "B kept the rolled back device: $(cat "$SCRATCH/B/state/managed.conf")"

# One command deletes a device on both nodes.
on A 0 device create ha3 --ha --partner "unix:$SCRATCH/B/api.sock" \
	--path "$SCRATCH/A/ha3.img" --partner-path "$SCRATCH/B/ha3.img" --size 16M --priority primary \
	--initial-sync clear --sync 127.0.0.1:$((PORT + 5)) 127.0.0.2:$((PORT + 5))
on A 0 device delete ha3 --partner "unix:$SCRATCH/B/api.sock"
grep -q "^ha3: deleted on this node and on unix:$SCRATCH/B/api.sock$" "$SCRATCH/out" ||
	fail "device delete --partner said: $(cat "$SCRATCH/out")"
for n in A B; do
	on $n 0 device list
	grep -q '^no devices$' "$SCRATCH/out" || fail "$n still lists ha3: $(cat "$SCRATCH/out")"
done

DAEMON_PID=$PID_B daemon_stop
api_node_start "$SCRATCH/B" 127.0.0.2
PID_B=$DAEMON_PID
on B 0 device list
grep -q '^no devices$' "$SCRATCH/out" || fail "B lists a device after its restart: $(cat "$SCRATCH/out")"
DAEMON_PID=$PID_B daemon_stop
DAEMON_PID=$PID_A daemon_stop
exit 0
