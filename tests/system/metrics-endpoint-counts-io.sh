#!/bin/bash
# The Prometheus endpoint (--metrics-listen) counts what an initiator did: the write
# commands and bytes grow by what qemu-io wrote, the read bytes by what it read, each
# latency histogram holds exactly its commands, and any other path is 404.
. "$(dirname "$0")/../lib/twinsand.sh"
needs_twinsand
requires qemu-io
export TEST_PORTS=${TEST_PORTS:-3600 3609}
. "$TOP/tests/lib/metrics.sh"

PORT=$(free_port)
MPORT=$(metrics_port 127.0.0.1)
IQN=iqn.2026-11.org.twinsan.test:metrics
daemon_start --portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size 64M \
	--metrics-listen 127.0.0.1:$MPORT
URL=iscsi://127.0.0.1:$PORT/$IQN/0

scrape 127.0.0.1:$MPORT
grep -q '^# TYPE twinsan_lun_write_latency_seconds histogram$' "$SCRATCH/m" || fail "no write histogram: $(cat "$SCRATCH/m")"
w0=$(metric twinsan_lun_write_commands_total)
wb0=$(metric twinsan_lun_written_bytes_total)
rb0=$(metric twinsan_lun_read_bytes_total)
[ -n "$w0" ] && [ -n "$wb0" ] && [ -n "$rb0" ] || fail "LUN counters missing: $(cat "$SCRATCH/m")"

client qemu-io -f raw -c "write -P 0x5a 0 64k" -c "write -P 0x5b 1M 128k" -c "write -P 0x5c 8M 1M" \
	-c "read -P 0x5a 0 64k" "$URL" >"$SCRATCH/io" 2>&1 || fail "qemu-io failed: $(cat "$SCRATCH/io")"

scrape 127.0.0.1:$MPORT
w1=$(metric twinsan_lun_write_commands_total)
wb1=$(metric twinsan_lun_written_bytes_total)
rb1=$(metric twinsan_lun_read_bytes_total)
wrote=$(( 65536 + 131072 + 1048576 ))
[ $(( wb1 - wb0 )) = $wrote ] || fail "written bytes grew by $(( wb1 - wb0 )), not $wrote"
[ $(( rb1 - rb0 )) = 65536 ] || fail "read bytes grew by $(( rb1 - rb0 )), not 65536"
[ $(( w1 - w0 )) -ge 3 ] || fail "write commands grew by $(( w1 - w0 )), fewer than the 3 writes"
for kind in read write; do
	h=twinsan_lun_${kind}_latency_seconds
	n=$(metric twinsan_lun_${kind}_commands_total)
	[ "$(metric ${h}_count)" = "$n" ] || fail "$kind histogram counts $(metric ${h}_count), commands $n"
	inf=$(grep "^${h}_bucket{.*le=\"+Inf\"}" "$SCRATCH/m" | awk '{ print $NF }')
	[ "$inf" = "$n" ] || fail "$kind histogram +Inf bucket $inf, commands $n"
	# Cumulative: never decreasing along le.
	grep "^${h}_bucket{" "$SCRATCH/m" | awk '{ if ($NF < prev) exit 1; prev = $NF }' ||
		fail "$kind histogram buckets are not cumulative"
done

http_get 127.0.0.1:$MPORT /other >"$SCRATCH/o" || true
grep -qE '404' "$SCRATCH/o" || fail "GET /other did not answer 404: $(cat "$SCRATCH/o")"
daemon_check
daemon_stop
