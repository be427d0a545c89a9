# A tiny hand-driven iSCSI initiator in bash, for scenarios no real client produces:
# malformed PDUs, header digests checked byte by byte.  PDUs are written as hex byte
# strings ("43 87 00 ..."); one connection at a time, on file descriptor $PDU_FD.
#
# After pdu_recv: PDU_BHS is an array of the 48 header bytes (two hex digits each),
# PDU_DATA of the data segment's bytes with padding, PDU_TEXT the data segment with NULs
# turned into newlines.

PDU_DIGEST=0        # 1 once CRC32C header digests are in use on the connection
PDU_DATA_DIGEST=0   # 1 once CRC32C data digests are
PDU_CMDSN=1
PDU_STATSN=0

pdu_connect()
{
	exec {PDU_FD}<>"/dev/tcp/$1/$2" || fail "cannot connect to $1:$2"
	PDU_DIGEST=0 PDU_DATA_DIGEST=0 PDU_CMDSN=1 PDU_STATSN=0
}

pdu_close() { exec {PDU_FD}>&-; }

# CRC32C (Castagnoli, reflected) of hex bytes, printed as the four bytes iSCSI sends.
pdu_crc32c()
{
	local crc=0xFFFFFFFF b i
	for b in "$@"; do
		crc=$(( crc ^ 0x$b ))
		for i in 0 1 2 3 4 5 6 7; do
			crc=$(( (crc >> 1) ^ (0x82F63B78 & -(crc & 1)) ))
		done
	done
	crc=$(( crc ^ 0xFFFFFFFF ))
	printf '%02x %02x %02x %02x' $(( crc & 255 )) $(( crc >> 8 & 255 )) \
		$(( crc >> 16 & 255 )) $(( crc >> 24 & 255 ))
}

# Hex of NUL-terminated "key=value" strings, padded to a multiple of four bytes.
pdu_text_hex()
{
	local hex n
	hex=$(printf '%s\0' "$@" | od -An -v -tx1 | tr -s ' \n' ' ')
	n=$(printf '%s\0' "$@" | wc -c)
	while [ $(( n % 4 )) != 0 ]; do hex="$hex 00"; n=$((n + 1)); done
	echo "$hex"
}

# 24-bit big-endian hex of a number.
pdu_be24() { printf '%02x %02x %02x' $(( $1 >> 16 & 255 )) $(( $1 >> 8 & 255 )) $(( $1 & 255 )); }
pdu_be32() { printf '%02x %02x %02x %02x' $(( $1 >> 24 & 255 )) $(( $1 >> 16 & 255 )) \
	$(( $1 >> 8 & 255 )) $(( $1 & 255 )); }

# pdu_send BHS_HEX [DATA_HEX [DATA_DIGEST_HEX]]: sends a PDU with the digests negotiated;
# DATA_HEX must be padded already; DATA_DIGEST_HEX replaces the right data digest.
pdu_send()
{
	local bhs=($1) data=(${2:-}) out
	[ ${#bhs[@]} = 48 ] || fail "pdu_send: BHS of ${#bhs[@]} bytes"
	out="$1"
	[ $PDU_DIGEST = 1 ] && out="$out $(pdu_crc32c "${bhs[@]}")"
	out="$out ${data[*]}"
	[ $PDU_DATA_DIGEST = 1 ] && [ ${#data[@]} -gt 0 ] && out="$out ${3:-$(pdu_crc32c "${data[@]}")}"
	_pdu_bytes $out >&$PDU_FD
}

# Writes hex bytes as binary.
_pdu_bytes() { printf "$(printf '\\x%s' "$@")"; }

_pdu_read() { timeout 10 head -c "$1" <&$PDU_FD | od -An -v -tx1 | tr -s ' \n' ' '; }

# Receives one PDU; returns 1 if the connection closed or nothing came within 10 s.
# With digests on, fails the test on a wrong digest.
pdu_recv()
{
	local len hex digest
	PDU_BHS=($(_pdu_read 48))
	[ ${#PDU_BHS[@]} = 48 ] || return 1
	if [ $PDU_DIGEST = 1 ]; then
		digest=$(_pdu_read 4)
		[ "$(echo $digest)" = "$(pdu_crc32c "${PDU_BHS[@]}")" ] ||
			fail "bad header digest from the target: $digest"
	fi
	len=$(( 0x${PDU_BHS[5]}${PDU_BHS[6]}${PDU_BHS[7]} ))
	PDU_TEXT="" PDU_DATA=()
	if [ $len -gt 0 ]; then
		hex=$(_pdu_read $(( (len + 3) / 4 * 4 )))
		PDU_DATA=($hex)
		PDU_TEXT=$(_pdu_bytes $hex | head -c $len | tr '\0' '\n')
		if [ $PDU_DATA_DIGEST = 1 ]; then
			digest=$(_pdu_read 4)
			[ "$(echo $digest)" = "$(pdu_crc32c "${PDU_DATA[@]}")" ] ||
				fail "bad data digest from the target: $digest"
		fi
	fi
	# The StatSN of a response, for ExpStatSN in the next request.
	PDU_STATSN=$(( 0x${PDU_BHS[24]}${PDU_BHS[25]}${PDU_BHS[26]}${PDU_BHS[27]} ))
	return 0
}

pdu_opcode() { echo $(( 0x${PDU_BHS[0]} & 0x3f )); }

# pdu_login INITIATOR TARGET [KEY=VALUE...]: one-step login from the operational stage
# straight to full feature phase; fails the test unless the target agrees.
pdu_login()
{
	local data n
	data=$(pdu_text_hex "InitiatorName=$1" "TargetName=$2" SessionType=Normal "${@:3}")
	n=$(printf '%s\0' "InitiatorName=$1" "TargetName=$2" SessionType=Normal "${@:3}" | wc -c)
	pdu_send "43 87 00 00 00 $(pdu_be24 $n) 00 02 3d 00 00 01 00 00 00 00 00 01 00 00 00 00
		$(pdu_be32 $PDU_CMDSN) 00 00 00 00 $(printf '00 %.0s' {1..16})" "$data"
	pdu_recv || fail "no Login Response"
	[ "$(pdu_opcode)" = $((0x23)) ] || fail "answer to Login is opcode 0x${PDU_BHS[0]}"
	[ "${PDU_BHS[36]}${PDU_BHS[37]}" = 0000 ] ||
		fail "login refused with status 0x${PDU_BHS[36]}${PDU_BHS[37]}"
	[ $(( 0x${PDU_BHS[1]} & 0x83 )) = $((0x83)) ] ||
		fail "target did not go to full feature phase (flags 0x${PDU_BHS[1]}): $PDU_TEXT"
	PDU_CMDSN=$(( 0x${PDU_BHS[28]}${PDU_BHS[29]}${PDU_BHS[30]}${PDU_BHS[31]} ))
}

# A NOP-Out ping (immediate, ITT given) that must be answered with a NOP-In.
pdu_ping()
{
	pdu_send "40 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 $(pdu_be32 $1) ff ff ff ff
		$(pdu_be32 $PDU_CMDSN) $(pdu_be32 $((PDU_STATSN + 1))) $(printf '00 %.0s' {1..16})"
	pdu_recv || fail "no answer to a NOP-Out ping"
	[ "$(pdu_opcode)" = $((0x20)) ] || fail "answer to NOP-Out is opcode 0x${PDU_BHS[0]}"
	[ "${PDU_BHS[16]}${PDU_BHS[17]}${PDU_BHS[18]}${PDU_BHS[19]}" = "$(pdu_be32 $1 | tr -d ' ')" ] ||
		fail "NOP-In for another ITT"
}

# pdu_scsi FLAGS ITT EDTL CDB_HEX [DATA_HEX [DATA_DIGEST_HEX]]: a SCSI Command to LUN 0
# (FLAGS: c1 read, a1 write with immediate data, 81 neither; simple task attribute).
pdu_scsi()
{
	local data=(${5:-})
	pdu_send "01 $1 00 00 00 $(pdu_be24 ${#data[@]}) 00 00 00 00 00 00 00 00 $(pdu_be32 $2)
		$(pdu_be32 $3) $(pdu_be32 $PDU_CMDSN) $(pdu_be32 $((PDU_STATSN + 1))) $4" "${5:-}" "${6:-}"
	PDU_CMDSN=$((PDU_CMDSN + 1))
}

# TEST UNIT READY, answered by a SCSI Response whatever its status: it takes the unit
# attention a new I_T nexus has pending.
pdu_clear_unit_attention()
{
	pdu_scsi 81 "$1" 0 "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
	pdu_recv && [ "$(pdu_opcode)" = $((0x21)) ] || fail "no SCSI Response to TEST UNIT READY"
}
