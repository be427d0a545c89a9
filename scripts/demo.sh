#!/bin/bash
# `make demo`: serves a 1 GiB disk on loopback with CHAP and shows real iSCSI clients
# using it: discovery, INQUIRY, capacity, a write read back through QEMU, a short read
# benchmark.  Stops the daemon at the end.  DEMO_PORT picks the port (default 3300).
set -eu
cd "$(dirname "$0")/.."
PORT=${DEMO_PORT:-3300}
IQN=iqn.2026-11.org.twinsan:demo
# A fresh secret each run: there are no default credentials, not even in the demo.
USER=demo SECRET=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /dev/shm/twinsan-demo.XXXXXX)
URL="iscsi://$USER%$SECRET@127.0.0.1:$PORT/$IQN/0"
PID=""

cleanup()
{
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Shows each command (in bold on a terminal), then runs it.
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
step() { printf '\n%s$ %s%s\n' "$BOLD" "$*" "$PLAIN"; "$@"; }

echo "Starting twinsand on 127.0.0.1:$PORT (log: $DIR/twinsand.log)"
build/release/twinsand --portal 127.0.0.1:$PORT --target $IQN --lun "$DIR/disk0.img" --size 1G \
	--chap "$USER:$SECRET" >"$DIR/twinsand.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q ready "$DIR/twinsand.log" && break; sleep 0.1; done
grep -q ready "$DIR/twinsand.log" || { cat "$DIR/twinsand.log"; exit 1; }
head -n 3 "$DIR/twinsand.log"
echo
echo "Serving ${BOLD}$URL$PLAIN"

step iscsi-ls -s "iscsi://$USER%$SECRET@127.0.0.1:$PORT"
step iscsi-inq "$URL"
step iscsi-readcapacity16 "$URL"
step qemu-io -f raw -c "write -P 0x5a 0 16M" -c "read -P 0x5a 0 16M" "$URL"
step timeout 30 iscsi-perf -t 3 -m 32 -b 8 -r "$URL"
echo
echo "Wrong secret, for contrast:"
step iscsi-inq "iscsi://$USER%wrong-secret@127.0.0.1:$PORT/$IQN/0" || true
echo
echo "Demo done; stopping twinsand."
