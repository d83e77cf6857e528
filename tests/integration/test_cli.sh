#!/bin/bash
# Command-line behaviour of the danerelay binary that needs no test world:
# help, check-config, usage errors and their exit codes.
# Usage: test_cli.sh /path/to/danerelay   (prints PASS/FAIL lines)
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME WANT_RC WANT_REGEX_IN_OUTPUT -- CMD...
expect() {
	local name=$1 want_rc=$2 want_re=$3
	shift 4
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" != "$want_rc" ]; then
		echo "FAIL $name: exit $rc, wanted $want_rc: $(echo "$out" | head -3 | tr '\n' ' ')"
	elif ! echo "$out" | grep -Eq -- "$want_re"; then
		echo "FAIL $name: output lacks /$want_re/: $(echo "$out" | head -3 | tr '\n' ' ')"
	else
		echo "PASS $name"
	fi
}

expect help 0 'commands:' -- "$bin" help
expect help-lists-check 0 'check +analyse' -- "$bin" help
expect help-command 0 'usage: danerelay check' -- "$bin" help check
expect help-unknown 64 'no such command' -- "$bin" help frobnicate
expect no-command 64 'usage:' -- "$bin"
expect unknown-command 64 "unknown command 'frob'" -- "$bin" frob
expect bad-trace 64 'unknown trace category' -- "$bin" -T nope help

# serve refuses root without [server] user, and so does check-config
# (this suite runs as root in CI; elsewhere the defaults are fine).
if [ "$(id -u)" -eq 0 ]; then
	expect check-config-root-refused 78 '\[server\] user: running as root without \[server\] user: set \[server\] user .* or \[server\] allow_root = yes' -- "$bin" check-config
else
	expect check-config-root-refused 0 'port = 25' -- "$bin" check-config
fi
printf '[server]\nallow_root = yes\n' >"$tmp/defaults.conf"
expect check-config-defaults 0 'port = 25' -- "$bin" -c "$tmp/defaults.conf" check-config
printf '[server]\nallow_root = yes\n[dns]\nroot_servers = 127.0.0.1@5353\n[delivery]\nport = 2525\n' >"$tmp/good.conf"
expect check-config-good 0 'port = 2525$' -- "$bin" -c "$tmp/good.conf" check-config
printf '[dns]\n\n  bogus_key = 1\n' >"$tmp/bad.conf"
expect check-config-unknown-key 78 "bad.conf:3: unknown key 'bogus_key' in \[dns\]" -- "$bin" -c "$tmp/bad.conf" check-config
printf '[delivery]\nport = 99999\n' >"$tmp/range.conf"
expect check-config-range 78 'range.conf:2: delivery.port = 99999' -- "$bin" -c "$tmp/range.conf" check-config
head -c 3000 /dev/urandom >"$tmp/garbage.conf"
expect check-config-garbage 78 'garbage.conf:[0-9]+: ' -- "$bin" -c "$tmp/garbage.conf" check-config
expect check-config-missing 78 'No such file' -- "$bin" -c "$tmp/none.conf" check-config

# check-config refuses what serve refuses (relay_check_config), at the line
# of the key, naming it: one case per class of mistake.
# bad NAME REGEX -- CONFIG-TEXT
bad() {
	local name=$1 re=$2
	printf "$4" >"$tmp/$name.conf"
	expect "check-config-$name" 78 "$name.conf:$re" -- "$bin" -c "$tmp/$name.conf" check-config
}
bad listen-name '2: \[server\] listen: localhost:25: expected ADDR:PORT' -- '[server]\nlisten = localhost:25\n'
bad listen-twice '2: \[server\] listen: 127.0.0.1:2525: listed twice' -- '[server]\nlisten = 127.0.0.1:2525 127.0.0.1:2525\n'
bad networks-host-bits '3: \[server\] relay_networks: 127.0.0.1/8: host bits set' -- '[server]\n\nrelay_networks = 127.0.0.1/8\n'
bad networks-garbage '2: \[server\] relay_networks: 1.2.3.4.5: not an IPv4' -- '[server]\nrelay_networks = 1.2.3.4.5\n'
bad cert-missing '2: \[server\] tls_cert: /nonexistent/cert.pem: No such file' -- '[server]\ntls_cert = /nonexistent/cert.pem\ntls_key = /nonexistent/key.pem\n'
bad cert-alone '2: \[server\] tls_cert: tls_cert and tls_key go together: set \[server\] tls_key too' -- '[server]\ntls_cert = /etc/hostname\n'
bad cert-not-pem '2: \[server\] tls_cert: .*hostname' -- '[server]\ntls_cert = /etc/hostname\ntls_key = /etc/hostname\n'
bad auth-missing '2: \[server\] auth_file: /nonexistent/users: No such file' -- '[server]\nauth_file = /nonexistent/users\n'
bad user-unknown '2: \[server\] user: no-such-user-dr: no such user' -- '[server]\nuser = no-such-user-dr\n'
bad dkim-no-selector '2: \[dkim\] domain: domain, selector and key_file go together: set selector and key_file too' -- '[dkim]\ndomain = example.org\n'
bad dkim-key-missing '4: \[dkim\] key_file: /nonexistent/dkim.pem: No such file' -- '[dkim]\ndomain = example.org\nselector = s1\nkey_file = /nonexistent/dkim.pem\n'
bad dkim-key-bad '4: \[dkim\] key_file: ' -- '[dkim]\ndomain = example.org\nselector = s1\nkey_file = /etc/hostname\n'
bad dkim-sign-alone '2: \[dkim\] sign_outbound: signing needs \[dkim\] domain, selector and key_file' -- '[dkim]\nsign_outbound = yes\n'
bad anchor-missing '2: \[dns\] trust_anchor_file: /nonexistent/root.key: No such file' -- '[dns]\ntrust_anchor_file = /nonexistent/root.key\n'
bad anchor-garbage '2: \[dns\] trust_anchor_file: ' -- '[dns]\ntrust_anchor_file = /etc/passwd\n'
bad dns-both '3: \[dns\] forwarders: not together with \[dns\] root_servers' -- '[dns]\nroot_servers = 127.0.0.1\nforwarders = 127.0.0.2\n'
bad queue-parent '2: \[queue\] directory: /nonexistent/a/q: its parent /nonexistent/a is not a directory' -- '[queue]\ndirectory = /nonexistent/a/q\n'
bad queue-file '2: \[queue\] directory: /etc/hostname: not a directory' -- '[queue]\ndirectory = /etc/hostname\n'
bad sts-ca-missing '2: \[mta_sts\] ca_file: /nonexistent/ca.pem: No such file' -- '[mta_sts]\nca_file = /nonexistent/ca.pem\n'
bad tlsrpt-ca-missing '2: \[tlsrpt\] ca_file: /nonexistent/ca.pem: No such file' -- '[tlsrpt]\nca_file = /nonexistent/ca.pem\n'
bad trailing-comment '2: delivery.port = 25 # smtp: expected a number in range \(comments go on lines of their own\)' -- '[delivery]\nport = 25 # smtp\n'
bad domain-leading-dot "2: \\[domain .example.org\\]: a domain name does not start with '.'" -- '[policy]\n[domain .example.org]\n'
bad domain-empty-label '1: \[domain a..b\]: empty label' -- '[domain a..b]\n'
bad store-without-fleet '4: \[queue\] store: postgres needs \[fleet\] postgres' -- '[server]\nallow_root = yes\n[queue]\nstore = postgres\n'
bad store-unknown '2: \[queue\] store: expected sqlite or postgres|2: queue.store' -- '[queue]\nstore = mysql\n'
bad fleet-conninfo '4: \[fleet\] postgres: missing "=" after "bad"' -- '[server]\nallow_root = yes\n[fleet]\npostgres = host=127.0.0.1 bad\n'
bad fleet-node '2: .*node.*printable ASCII without spaces' -- '[fleet]\nnode = two words\n'

# A configuration that sets everything that loads files, all good.
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=relay.test -days 2 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >/dev/null 2>&1 && openssl genpkey -algorithm ed25519 -out "$tmp/dkim.pem" 2>/dev/null; then
	echo "alice:\$scrypt\$ln=15,r=8,p=1\$AAAAAAAAAAAAAAAAAAAAAA==\$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" >"$tmp/users"
	chmod 600 "$tmp/users" "$tmp/key.pem" "$tmp/dkim.pem"
	cat >"$tmp/full.conf" <<EOC
# a comment
[server]
allow_root = yes
listen = 127.0.0.1:2525, [::1]:2525
relay_networks = 10.0.0.0/8 ::1/128
tls_cert = $tmp/cert.pem
tls_key = $tmp/key.pem
auth_file = $tmp/users
[queue]
directory = $tmp/q
[delivery]
retry_schedule = 1m 5m
[dkim]
domain = example.org
selector = s1
key_file = $tmp/dkim.pem
sign_outbound = yes
[domain Example.ORG.]
security = dane-only
exception = ticket #4711: broken TLSA
EOC
	expect check-config-full 0 '^tls_cert = ' -- "$bin" -c "$tmp/full.conf" check-config
	# A private key others can read: refused with the fix, at its line.
	cp "$tmp/key.pem" "$tmp/loose.pem"
	chmod 644 "$tmp/loose.pem"
	sed "s|^tls_key = .*|tls_key = $tmp/loose.pem|" "$tmp/full.conf" >"$tmp/loose.conf"
	expect check-config-loose-key 78 "loose.conf:7: \[server\] tls_key: .*mode 0644.*run: chmod 600 $tmp/loose.pem" -- "$bin" -c "$tmp/loose.conf" check-config
else
	echo "FAIL check-config-full: openssl could not make the test certificate and keys"
fi

# The printed configuration is valid input, and reading it back prints the
# same configuration (the first line names the file read).
roundtrip() {
	local name=$1 conf=$2 out1 out2 rc1 rc2
	out1=$("$bin" -c "$conf" check-config 2>&1)
	rc1=$?
	printf '%s\n' "$out1" >"$tmp/$name.out1.conf"
	out2=$("$bin" -c "$tmp/$name.out1.conf" check-config 2>&1)
	rc2=$?
	if [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ]; then
		echo "FAIL check-config-roundtrip-$name: exit $rc1 then $rc2: $(echo "$out2" | head -2 | tr '\n' ' ')"
	elif [ "$(echo "$out1" | tail -n +2)" != "$(echo "$out2" | tail -n +2)" ]; then
		echo "FAIL check-config-roundtrip-$name: the output differs when read back"
	else
		echo "PASS check-config-roundtrip-$name"
	fi
}
printf '[server]\nallow_root = yes\n' >"$tmp/empty.conf"
roundtrip defaults "$tmp/empty.conf"
printf '[server]\nallow_root = yes\n[tlsrpt]\nreceived = %s/rx\n' "$tmp" >"$tmp/rx.conf"
roundtrip good "$tmp/good.conf"
[ -f "$tmp/full.conf" ] && roundtrip full "$tmp/full.conf"

expect check-no-domain 2 'no domain given' -- "$bin" check
expect check-bad-port 2 'expected 1..65535' -- "$bin" check --port 0 example.com
expect check-bad-mx 2 'usage: danerelay check' -- "$bin" check --mx 'bad..name' example.com
expect check-bad-config 2 "bad.conf:3: unknown key" -- "$bin" -c "$tmp/bad.conf" check example.com

# tlsrpt received: the report fixtures of the unit tests as a directory
# (docs/TLSRPT.md); the sts and tlsa policies of Microsoft's report are
# two rows of 212/3, never one of 424/6, and Mail.Ru's is flagged.
golden="$(cd "$(dirname "$0")/../unit/golden" && pwd)"
mkdir "$tmp/rx" && cp "$golden"/tlsrpt_microsoft_sts_tlsa.json "$golden"/tlsrpt_mailru_inconsistent.eml "$golden"/dsn_relayed.eml "$tmp/rx/"
expect tlsrpt-received-per-policy 0 '2026-12-05  tlsa example.com: 212 successful, 3 failed sessions' -- "$bin" tlsrpt received "$tmp/rx"
expect tlsrpt-received-flag 0 'WARNING: inconsistent report tlsrpt_mailru_inconsistent.eml from Mail.Ru' -- "$bin" tlsrpt received "$tmp/rx"
expect tlsrpt-received-skipped 0 'skipped: dsn_relayed.eml: email: no application/tlsrpt' -- "$bin" tlsrpt received "$tmp/rx"
expect tlsrpt-received-json 0 '"failure-details-sessions": 5' -- "$bin" tlsrpt received --json "$tmp/rx"
expect tlsrpt-received-config 0 '3 files, 2 reports, 1 skipped' -- "$bin" -c "$tmp/rx.conf" tlsrpt received
expect tlsrpt-received-missing 66 'No such file' -- "$bin" tlsrpt received "$tmp/nonexistent"
expect tlsrpt-received-no-dir 64 'no DIR and no \[tlsrpt\] received' -- "$bin" -c "$tmp/empty.conf" tlsrpt received
expect tlsrpt-parse-dir 66 'tlsrpt received DIR' -- "$bin" tlsrpt parse "$tmp/rx"

# fleet (docs/FLEET.md): not a fleet without [fleet] postgres; a database
# that refuses (port 1 on loopback) is exit 1 with libpq's reason.
expect fleet-not-configured 78 '\[fleet\] postgres is not set' -- "$bin" -c "$tmp/empty.conf" fleet status
expect fleet-unknown-verb 64 "unknown subcommand 'frob'" -- "$bin" -c "$tmp/empty.conf" fleet frob
printf '[server]\nallow_root = yes\n[fleet]\npostgres = host=127.0.0.1 port=1 dbname=x\n[queue]\ndirectory = %s/fq\n' "$tmp" >"$tmp/fleet.conf"
expect fleet-sync-no-database 1 'sync: cannot connect' -- "$bin" -c "$tmp/fleet.conf" fleet sync
expect fleet-status-no-database 1 'cannot connect' -- "$bin" -c "$tmp/fleet.conf" fleet status --json
exit 0
