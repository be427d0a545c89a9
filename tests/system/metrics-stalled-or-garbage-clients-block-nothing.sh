#!/bin/bash
# The metrics endpoint runs on the daemon's event loop, so a client that connects and
# says nothing, or sends garbage, must hold up neither iSCSI I/O nor other scrapes, nor
# crash the daemon, nor keep it from stopping; an IPv6 listener works too.
. "$(dirname "$0")/../lib/twinsand.sh"
needs_twinsand
requires qemu-io
export TEST_PORTS=${TEST_PORTS:-3600 3609}
. "$TOP/tests/lib/metrics.sh"

PORT=$(free_port)
MPORT=$(metrics_port ::1 127.0.0.1)
IQN=iqn.2026-11.org.twinsan.test:metricsstall
daemon_start --portal 127.0.0.1:$PORT --target $IQN --lun "$SCRATCH/disk.img" --size 16M \
	--metrics-listen "[::1]:$MPORT"

exec 4<>"/dev/tcp/::1/$MPORT"          # connects and stays silent
exec 5<>"/dev/tcp/::1/$MPORT"
printf 'GARBAGE \001\002\377 /\r\n\r\n' >&5 # not HTTP
head -c 100000 /dev/urandom >&5 2>/dev/null || true

client qemu-io -f raw -c "write -P 0x11 0 64k" -c "read -P 0x11 0 64k" "iscsi://127.0.0.1:$PORT/$IQN/0" \
	>"$SCRATCH/io" 2>&1 || fail "I/O while a metrics client stalls: $(cat "$SCRATCH/io")"
grep -q "Pattern verification failed" "$SCRATCH/io" && fail "data did not read back"
scrape "[::1]:$MPORT"
[ "$(metric twinsan_lun_written_bytes_total)" = 65536 ] ||
	fail "written bytes $(metric twinsan_lun_written_bytes_total), not 65536"
daemon_check
daemon_stop # with the silent client still connected
exec 4>&- 5>&-
