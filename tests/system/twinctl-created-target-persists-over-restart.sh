#!/bin/bash
# What twinctl creates survives a restart of the daemon: after SIGTERM and a new start with
# the same configuration file, the created target (with its allow list and CHAP) and its
# LUN are served again from the managed configuration, with the data written before.  The
# CHAP secret never reaches the log.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
requires qemu-io iscsi-ls
needs_api
TEST_PORTS="3560 3569"

ME=iqn.2026-11.org.twinsan.test:me
printf 'kept-secret-1234\n' >"$SCRATCH/chap.secret"
api_serve_config

# kept_io INITIATOR SECRET COMMAND: qemu-io on the created LUN as that initiator.
kept_io()
{
	client qemu-io --image-opts -c "$3" "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=iqn.2026-11.org.twinsan:kept,lun=0,initiator-name=$1,user=keeper,password=$2" >"$SCRATCH/io" 2>&1
}

expect_exit 0 target create kept --allow "$ME" --allow iqn.2026-11.org.twinsan.test:other \
	--chap-user keeper --chap-secret-file "$SCRATCH/chap.secret"
expect_exit 0 device create kept --path "$SCRATCH/kept.img" --size 32M
grep -q '^kept:0: created$' "$SCRATCH/out" || fail "device create said: $(cat "$SCRATCH/out")"
kept_io "$ME" kept-secret-1234 'write -P 0xa7 1M 256k' || fail "writing to the created LUN failed: $(cat "$SCRATCH/io")"
expect_exit 0 --json target list
cp "$SCRATCH/out" "$SCRATCH/list.before"
daemon_stop

daemon_start --config "$SCRATCH/twinsand.conf" --api-socket "$API_SOCKET"
expect_exit 0 --json target list
cmp -s "$SCRATCH/out" "$SCRATCH/list.before" ||
	fail "target list differs after the restart: before $(cat "$SCRATCH/list.before"); after $(cat "$SCRATCH/out")"
kept_io "$ME" kept-secret-1234 'read -P 0xa7 1M 256k' || fail "the data written before the restart does not read back: $(cat "$SCRATCH/io")"
# The allow list and CHAP came back too.
kept_io "iqn.2026-11.org.twinsan.test:stranger" kept-secret-1234 'read 0 4k' && fail "an initiator not allowed logged in after the restart"
kept_io "$ME" wrong-secret-9999 'read 0 4k' && fail "a wrong CHAP secret logged in after the restart"
grep -q kept-secret-1234 "$DAEMON_LOG" && fail "the CHAP secret given to twinctl reached the daemon's log"
daemon_check
daemon_stop
exit 0
