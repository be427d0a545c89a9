#!/bin/bash
# An initiator killed (SIGKILL) with writes in flight, five times over, leaves the daemon
# serving: the next session reads and writes normally and nothing leaks.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-img qemu-io

serve_disk killed 128M

for i in 1 2 3 4 5; do
	qemu-img bench -f raw -w -c 1000000 -d 32 -s 256k --pattern=0x4$i "$URL" >/dev/null 2>&1 &
	pid=$!
	sleep 0.$((RANDOM % 9 + 1))
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null || true
	daemon_check
done
client qemu-io -f raw -c "write -P 0x66 0 4M" -c "read -P 0x66 0 4M" "$URL" >"$SCRATCH/io" 2>&1 ||
	fail "daemon does not serve after the kills: $(cat "$SCRATCH/io")"
grep -q 'verification failed' "$SCRATCH/io" && fail "wrong data after the kills"
daemon_stop
