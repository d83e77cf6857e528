#!/usr/bin/env bash
#
# test_tlsa_cmd.sh: `danerelay tlsa` against certificates and keys made here
# with the openssl CLI, which also computes every expected digest, so the
# command is checked against an independent implementation.
#
# usage: tests/integration/test_tlsa_cmd.sh path/to/danerelay
# Prints one "PASS name" or "FAIL name: why" line per case; exits 1 when any
# case failed.

set -u

BIN=${1:?usage: $0 path/to/danerelay}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/test_tlsa_cmd.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
failed=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

# --- the PKI ------------------------------------------------------------

cat >"$T/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:mx.example.com,DNS:mail.example.com
[v3_wild]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:*.example.com,DNS:mx.example.com
[v3_nosan]
basicConstraints = critical,CA:FALSE
EOF

mk() { "$@" >>"$T/openssl.log" 2>&1 || { echo "FAIL setup: $*"; exit 1; }; }

ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
mk openssl req -x509 $ec -keyout "$T/ca.key" -out "$T/ca.pem" \
    -subj "/CN=Test CA" -days 30 -config "$T/openssl.cnf" -extensions v3_ca
mk openssl req -new $ec -keyout "$T/leaf.key" -out "$T/leaf.csr" \
    -subj "/CN=mx.example.com" -config "$T/openssl.cnf"
for ext in leaf wild nosan; do
	mk openssl x509 -req -in "$T/leaf.csr" -CA "$T/ca.pem" \
	    -CAkey "$T/ca.key" -set_serial 2 -days 10 \
	    -extfile "$T/openssl.cnf" -extensions "v3_$ext" -out "$T/$ext.pem"
done
cat "$T/leaf.pem" "$T/ca.pem" >"$T/chain.pem"
cat "$T/leaf.pem" "$T/wild.pem" >"$T/twoleaves.pem"
mk openssl x509 -in "$T/leaf.pem" -outform DER -out "$T/leaf.der"
mk openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$T/next.key"
mk openssl pkey -in "$T/next.key" -pubout -out "$T/next.pub"
mk openssl pkey -in "$T/next.key" -outform DER -out "$T/next.der"
mk openssl pkey -in "$T/next.key" -out "$T/next.enc" -aes128 \
    -passout pass:secret
: >"$T/empty.pem"
echo "this is not a certificate" >"$T/garbage.pem"
head -c 300 /dev/urandom >"$T/random.bin"

# --- independent digests --------------------------------------------------

hexdump_() { od -An -v -tx1 | tr -d ' \n'; }
sum_() { "${1}sum" | cut -d' ' -f1; }
spki_der() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER; }
cert_der() { openssl x509 -in "$1" -outform DER; }
key_spki_der() { openssl pkey -in "$1" -pubout -outform DER; }

LEAF_311=$(spki_der "$T/leaf.pem" | sum_ sha256)
LEAF_312=$(spki_der "$T/leaf.pem" | sum_ sha512)
LEAF_310=$(spki_der "$T/leaf.pem" | hexdump_)
LEAF_301=$(cert_der "$T/leaf.pem" | sum_ sha256)
LEAF_302=$(cert_der "$T/leaf.pem" | sum_ sha512)
LEAF_300=$(cert_der "$T/leaf.pem" | hexdump_)
CA_201=$(cert_der "$T/ca.pem" | sum_ sha256)
CA_211=$(spki_der "$T/ca.pem" | sum_ sha256)
NEXT_311=$(key_spki_der "$T/next.key" | sum_ sha256)
NEXT_312=$(key_spki_der "$T/next.key" | sum_ sha512)

# --- the cases ------------------------------------------------------------

# run NAME WANT_RC ARGS...: runs the command; OUT and ERR hold its output.
run() {
	local name=$1 want=$2 rc
	shift 2
	OUT=$("$BIN" tlsa "$@" 2>"$T/stderr")
	rc=$?
	ERR=$(cat "$T/stderr")
	if [ "$rc" -ne "$want" ]; then
		fail "$name" "exit $rc, want $want (stderr: $ERR)"
		return 1
	fi
	return 0
}

# expect_out NAME WANT_RC WANT_STDOUT ARGS...
expect_out() {
	local name=$1 want=$2 out=$3
	shift 3
	run "$name" "$want" "$@" || return
	if [ "$OUT" != "$out" ]; then
		fail "$name" "stdout '$OUT', want '$out'"
		return
	fi
	pass "$name"
}

# expect_err NAME WANT_RC STDERR_SUBSTRING ARGS...: fails with a message.
expect_err() {
	local name=$1 want=$2 msg=$3
	shift 3
	run "$name" "$want" "$@" || return
	if [ -n "$OUT" ]; then
		fail "$name" "stdout not empty: '$OUT'"
	elif [[ "$ERR" != *"$msg"* ]]; then
		fail "$name" "stderr '$ERR' lacks '$msg'"
	else
		pass "$name"
	fi
}

O=_25._tcp.mx.example.com.

expect_out default_311 0 "$O IN TLSA 3 1 1 $LEAF_311" \
    --cert "$T/leaf.pem" --host mx.example.com
expect_out owner_from_first_san 0 "$O IN TLSA 3 1 1 $LEAF_311" \
    --cert "$T/leaf.pem"
expect_out host_normalised 0 "_25._tcp.mx.example.com. IN TLSA 3 1 1 $LEAF_311" \
    --cert "$T/leaf.pem" --host MX.Example.COM.
expect_out port_465 0 "_465._tcp.mx.example.com. IN TLSA 3 1 1 $LEAF_311" \
    --cert "$T/leaf.pem" --port 465
expect_out ee_312 0 "$O IN TLSA 3 1 2 $LEAF_312" \
    --cert "$T/leaf.pem" --mtype 2
expect_out ee_310 0 "$O IN TLSA 3 1 0 $LEAF_310" \
    --cert "$T/leaf.pem" --mtype 0
expect_out ee_301 0 "$O IN TLSA 3 0 1 $LEAF_301" \
    --cert "$T/leaf.pem" --selector 0
expect_out ee_302 0 "$O IN TLSA 3 0 2 $LEAF_302" \
    --cert "$T/leaf.pem" --selector 0 --mtype 2
expect_out ee_300 0 "$O IN TLSA 3 0 0 $LEAF_300" \
    --cert "$T/leaf.pem" --selector 0 --mtype 0
expect_out der_input 0 "$O IN TLSA 3 1 1 $LEAF_311" --cert "$T/leaf.der"
expect_out chain_ee_uses_leaf 0 "$O IN TLSA 3 1 1 $LEAF_311" \
    --cert "$T/chain.pem"
expect_out ta_201 0 "$O IN TLSA 2 0 1 $CA_201" \
    --cert "$T/chain.pem" --usage 2 --selector 0
expect_out ta_211 0 "$O IN TLSA 2 1 1 $CA_211" \
    --cert "$T/chain.pem" --usage 2
expect_out wildcard_with_host 0 "_25._tcp.mx1.example.com. IN TLSA 3 1 1 $LEAF_311" \
    --cert "$T/wild.pem" --host mx1.example.com

ROLL="; Rollover (RFC 7671 §8.1): publish both records now; wait at least two TTLs
; of the TLSA RRset; deploy the next key; then remove the first record."
expect_out next_key_private 0 "$ROLL
$O IN TLSA 3 1 1 $LEAF_311
$O IN TLSA 3 1 1 $NEXT_311" --cert "$T/leaf.pem" --next-key "$T/next.key"
expect_out next_key_public 0 "$ROLL
$O IN TLSA 3 1 1 $LEAF_311
$O IN TLSA 3 1 1 $NEXT_311" --cert "$T/leaf.pem" --next-key "$T/next.pub"
expect_out next_key_der_sha512 0 "$ROLL
$O IN TLSA 3 1 2 $LEAF_312
$O IN TLSA 3 1 2 $NEXT_312" --cert "$T/leaf.pem" --next-key "$T/next.der" \
    --mtype 2

# Arguments (EX_USAGE 64).
expect_err no_cert 64 "--cert FILE is required"
expect_err bad_usage 64 "--usage 1: must be 3" --cert "$T/leaf.pem" --usage 1
expect_err bad_selector 64 "--selector 2" --cert "$T/leaf.pem" --selector 2
expect_err bad_mtype 64 "--mtype 3" --cert "$T/leaf.pem" --mtype 3
expect_err bad_port 64 "--port 65536" --cert "$T/leaf.pem" --port 65536
expect_err bad_port_text 64 "--port 25x" --cert "$T/leaf.pem" --port 25x
expect_err unknown_option 64 "--bogus" --cert "$T/leaf.pem" --bogus
expect_err extra_argument 64 "unexpected argument" --cert "$T/leaf.pem" extra
expect_err bad_host 64 "not a host name" --cert "$T/leaf.pem" --host 'mx_1!.example.com'
expect_err host_wildcard 64 "not a host name" --cert "$T/leaf.pem" --host '*.example.com'
expect_err no_san_needs_host 64 "--host" --cert "$T/nosan.pem"
expect_err wildcard_san_needs_host 64 "--host" --cert "$T/wild.pem"
expect_err next_key_needs_usage3 64 "--next-key needs --usage 3" \
    --cert "$T/chain.pem" --usage 2 --next-key "$T/next.key"
expect_err next_key_needs_selector1 64 "--selector 1" \
    --cert "$T/leaf.pem" --selector 0 --next-key "$T/next.key"

# Unreadable input (EX_NOINPUT 66).
expect_err missing_file 66 "No such file or directory" --cert "$T/nonexistent.pem"
expect_err directory 66 "Is a directory" --cert "$T"
expect_err next_key_missing 66 "No such file or directory" \
    --cert "$T/leaf.pem" --next-key "$T/nonexistent.key"

# Bad content (EX_DATAERR 65).
expect_err empty_file 65 "file is empty" --cert "$T/empty.pem"
expect_err garbage_file 65 "not a certificate" --cert "$T/garbage.pem"
expect_err random_file 65 "not a certificate" --cert "$T/random.bin"
expect_err key_not_cert 65 "file holds a key, not a certificate" \
    --cert "$T/leaf.key"
expect_err ta_needs_chain 65 "only one certificate" \
    --cert "$T/leaf.pem" --usage 2
expect_err ta_not_ca 65 "not a CA certificate" \
    --cert "$T/twoleaves.pem" --usage 2
expect_err next_key_garbage 65 "not a key" \
    --cert "$T/leaf.pem" --next-key "$T/garbage.pem"
expect_err next_key_encrypted 65 "encrypted private key" \
    --cert "$T/leaf.pem" --next-key "$T/next.enc"
expect_err next_key_is_current 65 "nothing to roll over" \
    --cert "$T/leaf.pem" --next-key "$T/leaf.key"

exit $failed
