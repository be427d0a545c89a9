# Reading a twinsand metrics endpoint in the system tests (tests/system/metrics-*.sh
# source it after twinsand.sh).
#
#   metrics_port ADDR...     a port of TEST_PORTS nobody listens on at any of ADDR, other
#                            than $PORT (the iSCSI portal's, if set)
#   http_get ADDR:PORT PATH  an HTTP GET: body then the status code (curl if installed,
#                            else bash's /dev/tcp)
#   scrape ADDR:PORT         GET /metrics into $SCRATCH/m (fails the test if it cannot)
#   metric NAME [LABELS]     the value of the first sample of NAME in $SCRATCH/m whose
#                            labels contain LABELS (e.g. 'device="HA1"')

metrics_port()
{
	set -- ${TEST_PORTS:-3600 3609} "$@"
	for _p in $(seq "$1" "$2"); do
		[ "$_p" != "${PORT:-}" ] || continue
		_busy=no
		for _a in "${@:3}"; do
			ss -Htln "src $_a:$_p" | grep -q . && _busy=yes
		done
		[ $_busy = yes ] || { echo "$_p"; return 0; }
	done
	fail "no free metrics port in ${TEST_PORTS:-3600 3609}"
}

http_get()
{
	if command -v curl >/dev/null 2>&1; then
		client curl -s -w '\n%{http_code}\n' "http://$1$2"
		return
	fi
	exec 3<>"/dev/tcp/${1%:*}/${1##*:}"
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
	client cat <&3 | tr -d '\r'
	exec 3<&-
}

scrape() { http_get "$1" /metrics >"$SCRATCH/m" || fail "GET http://$1/metrics failed"; }

metric()
{
	awk -v n="$1" -v l="${2:-}" '(index($0, n "{") == 1 && (l == "" || index($0, l))) || (l == "" && index($0, n " ") == 1) {
		print $NF; exit }' "$SCRATCH/m"
}
