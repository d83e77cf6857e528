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

expect check-config-defaults 0 'port = 25' -- "$bin" check-config
printf '[dns]\nroot_servers = 127.0.0.1@5353\n[delivery]\nport = 2525\n' >"$tmp/good.conf"
expect check-config-good 0 'port = 2525$' -- "$bin" -c "$tmp/good.conf" check-config
printf '[dns]\n\n  bogus_key = 1\n' >"$tmp/bad.conf"
expect check-config-unknown-key 78 "bad.conf:3: unknown key 'bogus_key' in \[dns\]" -- "$bin" -c "$tmp/bad.conf" check-config
printf '[delivery]\nport = 99999\n' >"$tmp/range.conf"
expect check-config-range 78 'range.conf:2: delivery.port = 99999' -- "$bin" -c "$tmp/range.conf" check-config
head -c 3000 /dev/urandom >"$tmp/garbage.conf"
expect check-config-garbage 78 'garbage.conf:[0-9]+: ' -- "$bin" -c "$tmp/garbage.conf" check-config
expect check-config-missing 78 'No such file' -- "$bin" -c "$tmp/none.conf" check-config

expect check-no-domain 2 'no domain given' -- "$bin" check
expect check-bad-port 2 'expected 1..65535' -- "$bin" check --port 0 example.com
expect check-bad-mx 2 'usage: danerelay check' -- "$bin" check --mx 'bad..name' example.com
expect check-bad-config 2 "bad.conf:3: unknown key" -- "$bin" -c "$tmp/bad.conf" check example.com
exit 0
