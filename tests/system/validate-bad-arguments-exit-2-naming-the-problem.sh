#!/bin/bash
# twinctl validate refuses bad arguments with exit status 2 and a message naming the
# problem, before connecting anywhere: no URL, a URL that is no iscsi:// URL, a path given
# twice, one --initiator, the same initiator twice, a name that is no iSCSI name, CHAP
# without its secret file, an unreadable secret file, a bad --samples or --lun, an unknown
# option.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/twinctl.sh"
[ -x "$TWINCTL" ] || fail "$TWINCTL is not built (make BUILD=san)"

U=iscsi://127.0.0.1:3260/iqn.2026-11.org.twinsan.test:none/0
# bad WANT_IN_STDERR ARGS...: validate ARGS must exit 2 saying WANT_IN_STDERR.
bad()
{
	local want=$1 rc
	shift
	client "$TWINCTL" validate "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" && rc=0 || rc=$?
	[ $rc = 2 ] || fail "validate $* exited $rc, not 2: $(cat "$SCRATCH/err")"
	grep -qF -- "$want" "$SCRATCH/err" || fail "validate $*: stderr does not say '$want': $(cat "$SCRATCH/err")"
	[ ! -s "$SCRATCH/out" ] || fail "validate $* printed a report: $(cat "$SCRATCH/out")"
}

bad "missing URL" 
bad "'http://127.0.0.1/x' is no iscsi://" http://127.0.0.1/x
bad "is no iscsi://HOST[:PORT]/TARGET-IQN/LUN URL" iscsi://127.0.0.1:3260/iqn.2026-11.org.twinsan.test:none
bad "path 127.0.0.1:3260 is given twice" "$U" "$U"
bad "--initiator: give it twice" "$U" --initiator iqn.2026-11.org.test:a
bad "the two initiators need two names" "$U" --initiator iqn.2026-11.org.test:a --initiator iqn.2026-11.org.test:a
bad "--initiator 'node1': an iSCSI name" "$U" --initiator node1 --initiator iqn.2026-11.org.test:b
bad "--chap-user and --chap-secret-file go together" "$U" --chap-user admin
bad "--chap-secret-file $SCRATCH/none: No such file or directory" "$U" --chap-user u --chap-secret-file "$SCRATCH/none"
bad "mutual CHAP needs CHAP" "$U" --mutual-chap-user t --mutual-chap-secret-file /dev/null
bad "--samples 'many': a number from 10 to 100000" "$U" --samples many
bad "--samples '5': a number from 10 to 100000" "$U" --samples 5
bad "--lun '-1': a LUN number, 0 to 16383" "$U" --lun -1
bad "unknown option '--force'" "$U" --force
exit 0
