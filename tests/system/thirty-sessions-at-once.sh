#!/bin/bash
# Thirty initiators logging in and reading at the same moment are all served.
. "$(dirname "$0")/../lib/twinsand.sh"
requires iscsi-inq iscsi-readcapacity16

serve_disk thirty 64M

pids=()
for i in $(seq 30); do
	client iscsi-readcapacity16 -i iqn.2026-11.org.twinsan.test:host$i "$URL" >"$SCRATCH/out$i" 2>&1 &
	pids+=($!)
done
for i in $(seq 30); do
	wait "${pids[$((i - 1))]}" || fail "initiator $i failed: $(cat "$SCRATCH/out$i")"
	grep -q '^Total size:67108864$' "$SCRATCH/out$i" || fail "initiator $i got: $(cat "$SCRATCH/out$i")"
done
daemon_check
daemon_stop
