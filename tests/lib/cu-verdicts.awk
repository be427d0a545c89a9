# Reads iscsi-test-cu's verbose output and prints one line per test:
#   SUITE<TAB>TEST<TAB>VERDICT<TAB>REASON
# VERDICT is pass, fail or skip.  CUnit counts a skipped test as passed, so a test is
# "skip" when libiscsi printed [SKIPPED] for it and CUnit did not fail it; REASON is the
# first [SKIPPED] or [FAILED] message of the test, or else its first failed assertion.
# A passed test that printed a [FAILED] message (often in its cleanup) keeps "pass",
# with that message as REASON, so it can be reported without counting as a failure.  A test whose run never finished (the
# tool died) is "fail" with reason "no verdict".

function flush() {
	if (test == "")
		return
	if (verdict == "")
		verdict = "fail"
	if (verdict == "fail" && reason == "")
		reason = failmsg != "" ? failmsg : assertion != "" ? assertion : ended ? "assertion failed" : "no verdict"
	else if (verdict == "pass" && skipped)
		verdict = "skip"
	else if (verdict == "pass" && failmsg != "")
		reason = "CUnit passed it, but it printed [FAILED] " failmsg
	printf "%s\t%s\t%s\t%s\n", suite, test, verdict, reason
	test = ""
}

function note(line,    m) {
	if (match(line, /\[SKIPPED\][^\[]*/)) {
		skipped = 1
		m = substr(line, RSTART + 10, RLENGTH - 10)
		if (reason == "")
			reason = m
	}
	if (match(line, /\[FAILED\][^\[]*/)) {
		m = substr(line, RSTART + 9, RLENGTH - 9)
		if (failmsg == "")
			failmsg = m
	}
	if (assertion == "" && match(line, /^ +[0-9]+\. [^ ]+\.c:[0-9]+ +- .*/)) {
		assertion = line
		sub(/^ +[0-9]+\. /, "", assertion)
		gsub(/  +/, " ", assertion)
	}
	if (line ~ /\.\.\.FAILED/ || line ~ /^FAILED( |$)/) {
		verdict = "fail"
		ended = 1
	} else if (line ~ /\.\.\.passed/ || line ~ /^passed( |$)/) {
		if (verdict == "")
			verdict = "pass"
		ended = 1
	}
}

/^Suite: / { flush(); suite = substr($0, 8); next }
/^  Test: / {
	flush()
	test = substr($0, 9)
	sub(/ \.\.\..*/, "", test)
	verdict = ""; reason = ""; failmsg = ""; assertion = ""; skipped = 0; ended = 0
	note($0)
	next
}
/^Run Summary:/ { flush(); exit }
test != "" { note($0) }
END { flush() }
