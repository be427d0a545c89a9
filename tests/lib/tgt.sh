# tgt, the reference target, driven with twinsand's quick-mode options.  Sourced by
# tests/lib/twinsand.sh (to develop a scenario against a known-good target:
# TEST_TARGET=tgt) and by bench/run.
#
# tgtd keeps LUN 0 for its controller, so the disk is LUN 1: callers use $TGT_LUN.
# SIGTERM does not stop tgtd while targets exist; tgt_stop deletes them first.

TGT_LUN=1

# tgt_start LOG OPTIONS...: starts tgtd with the quick-mode options
#   --portal ADDR:PORT... --target IQN --lun FILE [--size N] [--chap U:S] [--mutual-chap U:S]
# Sets TGT_PID and TGT_CTL (its control port); tgtd's output goes to LOG.
tgt_start()
{
	_log=$1
	shift
	_portal="" _more_portals="" _iqn="" _lun="" _size="" _chap="" _mutual=""
	while [ $# -gt 0 ]; do
		case $1 in
		--portal) [ -z "$_portal" ] && _portal=$2 || _more_portals="$_more_portals $2" ;;
		--target) _iqn=$2 ;;
		--lun) _lun=$2 ;;
		--size) _size=$2 ;;
		--chap) _chap=$2 ;;
		--mutual-chap) _mutual=$2 ;;
		*) echo "tgt_start: unsupported option $1" >&2; return 1 ;;
		esac
		shift 2
	done
	[ -n "$_size" ] && [ ! -e "$_lun" ] && truncate -s "$_size" "$_lun"
	# The control port is derived from the iSCSI port so two instances never share it.
	TGT_CTL=$(( ${_portal##*:} % 1000 + 1000 ))
	tgtd -f -C "$TGT_CTL" --iscsi portal="$_portal" >"$_log" 2>&1 &
	TGT_PID=$!
	_tries=0
	until tgtadm -C "$TGT_CTL" --op show --mode system >/dev/null 2>&1; do
		_tries=$((_tries + 1))
		[ $_tries -lt 100 ] || { echo "tgtd did not start" >&2; return 1; }
		sleep 0.1
	done
	for _p in $_more_portals; do
		tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode portal --param portal="$_p"
	done
	tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode target --tid 1 -T "$_iqn"
	tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode logicalunit --tid 1 --lun "$TGT_LUN" \
		-b "$_lun"
	tgtadm -C "$TGT_CTL" --lld iscsi --op bind --mode target --tid 1 -I ALL
	if [ -n "$_chap" ]; then
		tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode account \
			--user "${_chap%%:*}" --password "${_chap#*:}"
		tgtadm -C "$TGT_CTL" --lld iscsi --op bind --mode account --tid 1 --user "${_chap%%:*}"
	fi
	if [ -n "$_mutual" ]; then
		tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode account \
			--user "${_mutual%%:*}" --password "${_mutual#*:}"
		tgtadm -C "$TGT_CTL" --lld iscsi --op bind --mode account --tid 1 \
			--user "${_mutual%%:*}" --outgoing
	fi
}

tgt_stop()
{
	[ -n "${TGT_PID:-}" ] || return 0
	tgtadm -C "$TGT_CTL" --lld iscsi --op delete --mode logicalunit --tid 1 --lun "$TGT_LUN" \
		>/dev/null 2>&1 || true
	tgtadm -C "$TGT_CTL" --lld iscsi --op delete --mode target --tid 1 --force \
		>/dev/null 2>&1 || true
	tgtadm -C "$TGT_CTL" --op delete --mode system >/dev/null 2>&1 || true
	_tries=0
	while kill -0 "$TGT_PID" 2>/dev/null; do
		_tries=$((_tries + 1))
		[ $_tries -lt 50 ] || kill -KILL "$TGT_PID" 2>/dev/null || true
		sleep 0.1
	done
	wait "$TGT_PID" 2>/dev/null || true
	TGT_PID=""
}
