#!/bin/bash
# SIGTERM while an initiator has 32 writes in flight stops the daemon within the time
# limit, with exit status 0 and no sanitizer report (no leak of in-flight commands); what
# it acknowledged before is in the file, and a restarted daemon serves the disk again.
. "$(dirname "$0")/../lib/twinsand.sh"
requires qemu-img qemu-io

PORT=$(free_port)
IQN=iqn.2026-11.org.twinsan.test:sigterm
ARGS=(--portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size 256M)
daemon_start "${ARGS[@]}"
URL=iscsi://127.0.0.1:$PORT/$IQN/$LUN

client qemu-io -f raw -c "write -P 0x17 0 1M" -c flush "$URL" >/dev/null || fail "first write failed"
qemu-img bench -f raw -w -c 1000000 -d 32 -s 64k --pattern=0x99 "$URL" >"$SCRATCH/bench" 2>&1 &
BENCH=$!
sleep 2
kill -0 $BENCH 2>/dev/null || fail "the load ended too early: $(cat "$SCRATCH/bench")"
daemon_stop
kill $BENCH 2>/dev/null
wait $BENCH 2>/dev/null || true

daemon_start "${ARGS[@]}"
client qemu-io -f raw -c "read 0 1M" "$URL" >"$SCRATCH/io" 2>&1 || fail "restarted daemon does not serve"
daemon_stop
