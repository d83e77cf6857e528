#!/bin/bash
# `danerelay queue` and `danerelay trace` on a real queue database.
# Usage: test_queue_cmd.sh /path/to/danerelay   (prints PASS/FAIL lines)
#
# The queue is filled by the unit test program in fixture mode
# (DANERELAY_TEST_QUEUE_DIR=DIR build/tests/unit/test_queue), i.e. through
# the real queue API, never by hand-written SQL; it prints the ids it made.
# Python's sqlite3 module (python3 is in scripts/deps) is used only to hold
# a lock and to fake a newer schema.
set -u
bin=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'kill $lockpid 2>/dev/null; rm -rf "$tmp"' EXIT
lockpid=
py=/usr/bin/python3
[ -x "$py" ] || py=python3
fixture_bin=${TEST_QUEUE_BIN:-$(dirname "$bin")/tests/unit/test_queue}

# expect NAME WANT_RC WANT_REGEX -- CMD...: exit status and output.
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

# lacks NAME REGEX -- CMD...: the output must not match.
lacks() {
	local name=$1 re=$2
	shift 3
	if "$@" 2>&1 | grep -Eq -- "$re"; then
		echo "FAIL $name: output has /$re/"
	else
		echo "PASS $name"
	fi
}

# json NAME PYTHON_EXPR -- CMD...: the output is JSON and d satisfies EXPR.
json() {
	local name=$1 expr=$2
	shift 3
	local out
	out=$("$@" 2>/dev/null)
	if echo "$out" | "$py" -c "import json,sys,re; d=json.load(sys.stdin); sys.exit(0 if ($expr) else 1)" 2>"$tmp/py.err"; then
		echo "PASS $name"
	else
		echo "FAIL $name: $expr: $(tail -1 "$tmp/py.err") $(echo "$out" | head -c 200 | tr '\n' ' ')"
	fi
}

q="$tmp/q"
printf '[queue]\ndirectory = %s\n' "$q" >"$tmp/d.conf"
dr() { "$bin" -c "$tmp/d.conf" "$@"; }

# Before the relay ever ran: a clear error, and nothing created.
expect queue-missing 78 'relay creates the queue' -- dr queue list
expect trace-missing 78 'relay creates the queue' -- dr trace
if [ -e "$q" ]; then echo "FAIL queue-missing-creates-nothing: $q exists"; else echo "PASS queue-missing-creates-nothing"; fi

if [ ! -x "$fixture_bin" ]; then
	echo "FAIL fixture: $fixture_bin not built"
	exit 0
fi
if ! DANERELAY_TEST_QUEUE_DIR="$q" "$fixture_bin" >"$tmp/ids" 2>"$tmp/fixture.err"; then
	echo "FAIL fixture: $(head -3 "$tmp/fixture.err" "$tmp/ids" | tr '\n' ' ')"
	exit 0
fi
echo "PASS fixture"
idof() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/ids"; }
a=$(idof msg_a) b=$(idof msg_b) c=$(idof msg_c) bob=$(idof rcpt_bob) carol=$(idof rcpt_carol)

# list: one line per queued recipient, nothing final.
expect list 0 "^$bob +$a .* 1 in [0-9]+m +bob@example.com  4.7.323 dane-required: no usable TLSA records" -- dr queue list
expect list-fresh 0 "^$carol +$a .* 0 now +carol@Example.NET  never tried" -- dr queue list
lacks list-no-final 'dave@|erin@' -- dr queue list
json list-json "len(d) == 2 and d[0]['recipient'] == 'bob@example.com' and d[0]['msgid'] == '$a' and d[0]['domain'] == 'example.com' and d[0]['status'] == 'queued' and d[0]['attempts'] == 1 and d[0]['last_status'] == '4.7.323' and d[0]['last_result_type'] == 'dane-required' and d[0]['last_text'] == 'no usable TLSA records' and re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', d[0]['next_attempt']) and re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', d[0]['queued_at'])" -- dr queue list --json
json list-json-never-tried "d[1]['last_result_type'] is None and d[1]['last_status'] is None and d[1]['domain'] == 'example.net' and d[1]['id'] == $carol" -- dr queue --json list

# show: envelope, recipients, headers; by queue id or recipient row id.
expect show 0 'message-id: <fixture-a@example.org>' -- dr queue show "$a"
expect show-headers 0 '^  Subject: fixture \?\[31mred' -- dr queue show "$a"
expect show-by-rcpt 0 "^message $a" -- dr queue show "$carol"
expect show-rcpts 0 "^  $bob +bob@example.com queued attempts=1" -- dr queue show "$a"
lacks show-no-body-text 'secret body line' -- dr queue show "$a"
lacks show-no-escape $'\x1b' -- dr queue show "$a"
json show-json "d['id'] == '$a' and d['sender'] == 'alice@example.org' and d['headers'].startswith('Received:') and len(d['recipients']) == 2 and d['body_present']" -- dr queue show --json "$a"
expect show-gc 0 'body removed' -- dr queue show "$b"
expect show-delivered 0 'dave@example.com delivered attempts=1' -- dr queue show "$b"
expect show-unknown 1 'no message' -- dr queue show 0000000000000000
expect show-upper 0 "^message $a" -- dr queue show "$(echo "$a" | tr a-f A-F)"

# trace: one block per message, one line per event, fields as key=value.
expect trace 0 "^message $a from=<alice@example.org> message_id=<fixture-a@example.org>" -- dr trace
expect trace-attempt 0 '^  [0-9T:-]+Z attempt dave@example.com mx=mx1.example.com ip=192.0.2.1 port=25 tls=verified tls_version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 tlsa="3 1 1"' -- dr trace
expect trace-null-sender 0 "^message $c from=<>" -- dr trace
expect trace-bounced 0 'bounced erin@example.com mx=mx1.example.com ip=192.0.2.1 port=25 tls=encrypted status=5.1.1 text="550 5.1.1 no such user"' -- dr trace --message-id "$c"
expect trace-by-header 0 "^message $a" -- dr trace --message-id '<fixture-a@example.org>'
expect trace-by-header-bare 0 "^message $a" -- dr trace --message-id fixture-a@example.org
lacks trace-by-header-only "^message $b" -- dr trace --message-id fixture-a@example.org
expect trace-recipient 0 'queued carol@Example.NET' -- dr trace --recipient CAROL@example.net
lacks trace-recipient-only 'bob@example.com' -- dr trace --recipient carol@example.net
expect trace-domain 0 "^message $b" -- dr trace --domain example.com
lacks trace-domain-only 'carol@' -- dr trace --domain example.com
expect trace-since 0 "^message $c" -- dr trace --since 1h
expect trace-nomatch 1 'no matching message' -- dr trace --message-id nope@example.org
# --sender (case-insensitive; "<>" is the null sender) and --until.
json trace-sender "[m['id'] for m in d] == ['$a', '$b']" -- dr trace --json --sender ALICE@example.org
json trace-sender-null "[m['id'] for m in d] == ['$c']" -- dr trace --json --sender '<>'
expect trace-sender-nomatch 1 'no matching message' -- dr trace --sender bob@example.org
json trace-sender-domain "[m['id'] for m in d] == ['$a']" -- dr trace --json --sender alice@example.org --domain example.net
json trace-until-now "len(d) == 3" -- dr trace --json --until "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
expect trace-until-past 1 'no matching message' -- dr trace --until 1h
expect trace-until-date-past 1 'no matching message' -- dr trace --until 2020-01-01
json trace-until-today "len(d) == 3" -- dr trace --json --until "$(date -u +%Y-%m-%d)"
expect trace-window-past 1 'no matching message' -- dr trace --since 2020-01-01 --until 2020-01-02T00:00
json trace-window "len(d) == 3" -- dr trace --json --since 2020-01-01 --until "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M')"
expect trace-bad-until 64 'expected a UTC time' -- dr trace --until 2026-02-30
expect trace-bad-until-word 64 'expected a duration' -- dr trace --until yesterday
expect trace-bad-since 64 'expected a duration' -- dr trace --since 5y
expect trace-extra-arg 64 'usage: danerelay trace' -- dr trace extra
json trace-json "len(d) == 3 and d[0]['id'] == '$a' and d[0]['message_id'] == '<fixture-a@example.org>' and d[0]['sender'] == 'alice@example.org' and [e['type'] for e in d[0]['events']] == ['received', 'queued', 'queued', 'attempt', 'deferred'] and d[0]['events'][3]['mx'] == 'mx1.example.com' and d[0]['events'][3]['recipient'] == 'bob@example.com' and d[0]['events'][0]['recipient'] is None and re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', d[0]['events'][0]['at'])" -- dr trace --json
json trace-json-empty "d == []" -- dr trace --json --domain nowhere.example
# --limit: the most recently received, still oldest first.
json trace-limit "[m['id'] for m in d] == ['$b', '$c']" -- dr trace --json --limit 2
json trace-limit-more "len(d) == 3" -- dr trace --json --limit 10
expect trace-limit-zero 64 'expected a number of messages' -- dr trace --limit 0
expect trace-limit-word 64 'expected a number of messages' -- dr trace --limit -3

# Filters: by domain (any case), state, sender, recipient.
json list-domain "[r['recipient'] for r in d] == ['carol@Example.NET']" -- dr queue list --json --domain EXAMPLE.net
json list-state-deferred "[r['id'] for r in d] == [$bob]" -- dr queue list --json --state deferred
json list-state-active "[r['id'] for r in d] == [$carol]" -- dr queue list --state active --json
json list-recipient "[r['id'] for r in d] == [$bob]" -- dr queue list --json --recipient BOB@
json list-sender "len(d) == 2" -- dr queue list --json --sender alice@example
json list-sender-none "d == []" -- dr queue list --json --sender nobody
expect list-filter-empty 0 'nothing in the queue matches' -- dr queue list --domain nowhere.example
expect list-filter-text 0 "^$carol +$a .* now +carol@Example.NET" -- dr queue list --domain example.net

# flush: what waits for a later retry (of one domain) is due now.
expect flush-other-domain 0 "queue flush example.net: 0 recipients due now" -- dr queue flush example.net
json flush-other-untouched "[r['id'] for r in d] == [$bob]" -- dr queue list --json --state deferred
expect flush-domain 0 "queue flush Example.COM: 1 recipient due now" -- dr queue flush Example.COM
json flush-done "d == []" -- dr queue list --json --state deferred
expect flush-all 0 "queue flush: 0 recipients due now" -- dr queue flush
expect trace-flushed 0 "flushed bob@example.com rcpt=$bob by=operator" -- dr trace --message-id "$a"

# hold / release: held recipients stay listed, are not retried, come back due.
expect hold 0 "queue hold $a: 2 recipients held: the relay does not deliver them until they are released" -- dr queue hold "$a"
expect hold-listed 0 "^$bob +$a .* held +bob@example.com" -- dr queue list
json hold-json "[r['status'] for r in d] == ['held', 'held']" -- dr queue list --json
json hold-state "len(d) == 2" -- dr queue list --json --state held
json hold-not-active "d == []" -- dr queue list --json --state active
expect hold-again 1 'nothing queued matches' -- dr queue hold "$a"
expect hold-no-retry 1 'nothing queued matches' -- dr queue retry "$a"
expect hold-no-flush 0 "queue flush: 0 recipients due now" -- dr queue flush
expect hold-show 0 "^  $bob +bob@example.com held attempts=1 next=held" -- dr queue show "$a"
expect release-one 0 "queue release $bob: 1 recipient released and due now" -- dr queue release "$bob"
expect release-rest 0 "queue release $a: 1 recipient released" -- dr queue release "$a"
expect release-again 1 'nothing held matches' -- dr queue release "$a"
json release-due "[r['status'] for r in d] == ['queued', 'queued']" -- dr queue list --json --state active
expect trace-held 0 "held carol@Example.NET rcpt=$carol by=operator" -- dr trace --message-id "$a"
expect trace-released 0 "released bob@example.com rcpt=$bob by=operator" -- dr trace --message-id "$a"

# Operator actions, and their events.
expect retry 0 "queue retry $a: 2 recipients due now" -- dr queue retry "$a"
expect retry-listed 0 "^$bob +$a .* now +bob@example.com" -- dr queue list
expect bounce 0 "queue bounce $carol: 1 recipient marked to bounce" -- dr queue bounce "$carol"
json bounce-flag "[r['bounce_requested'] for r in d] == [False, True]" -- dr queue list --json
expect delete 0 "queue delete $bob: 1 recipient deleted" -- dr queue delete "$bob"
expect delete-again 1 'nothing queued matches' -- dr queue delete "$bob"
expect retry-final 1 'nothing queued matches' -- dr queue retry "$b"
expect retry-unknown 1 'nothing queued matches' -- dr queue retry nonsense
expect trace-operator 0 "deleted bob@example.com rcpt=$bob by=operator uid=[0-9]+" -- dr trace --message-id "$a"
expect trace-bounce-requested 0 "bounce-requested carol@Example.NET rcpt=$carol by=operator" -- dr trace --message-id "$a"

# Usage errors.
expect usage-no-verb 64 'usage: danerelay queue' -- dr queue
expect usage-bad-verb 64 'usage: danerelay queue' -- dr queue frob
expect usage-show-no-id 64 'usage: danerelay queue' -- dr queue show
expect usage-list-extra 64 'usage: danerelay queue' -- dr queue list extra
expect usage-bad-option 64 'usage: danerelay queue' -- dr queue list --frob
expect usage-bad-state 64 'usage: danerelay queue' -- dr queue list --state bogus
expect usage-filter-not-list 64 'usage: danerelay queue' -- dr queue retry --domain example.com "$a"
expect usage-hold-no-id 64 'usage: danerelay queue' -- dr queue hold
expect usage-release-extra 64 'usage: danerelay queue' -- dr queue release "$a" "$b"
expect usage-flush-two 64 'usage: danerelay queue' -- dr queue flush a.example b.example

# Side by side with a writer (the daemon): reads go on, writes wait.
"$py" - "$q/queue.db" >"$tmp/lock.out" 2>&1 <<'EOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(1.5)
c.execute("COMMIT")
EOF
lockpid=$!
for _ in $(seq 50); do grep -q locked "$tmp/lock.out" 2>/dev/null && break; sleep 0.1; done
expect locked-list 0 'carol@Example.NET' -- dr queue list
expect locked-retry 0 "queue retry $a: 1 recipient due now" -- dr queue retry "$a"
wait $lockpid
lockpid=

# Databases it must refuse, clearly.
mkdir -m 700 "$tmp/garbage"
head -c 8192 /dev/urandom >"$tmp/garbage/queue.db"
printf '[queue]\ndirectory = %s\n' "$tmp/garbage" >"$tmp/g.conf"
expect garbage-db 78 'not a danerelay queue' -- "$bin" -c "$tmp/g.conf" queue list
expect garbage-db-trace 78 'not a danerelay queue' -- "$bin" -c "$tmp/g.conf" trace
mkdir -m 700 "$tmp/newer"
cp "$q/queue.db" "$tmp/newer/queue.db"
"$py" -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = 99'); c.commit()" "$tmp/newer/queue.db"
printf '[queue]\ndirectory = %s\n' "$tmp/newer" >"$tmp/n.conf"
expect newer-schema 78 'schema version 99 is newer than this danerelay supports' -- "$bin" -c "$tmp/n.conf" queue list

# A queue of schema version 1 is upgraded by the first command that opens it.
mkdir -m 700 "$tmp/old"
cp "$q/queue.db" "$tmp/old/queue.db"
"$py" -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = 1'); c.commit()" "$tmp/old/queue.db"
printf '[queue]\ndirectory = %s\n' "$tmp/old" >"$tmp/o.conf"
expect old-schema-migrated 0 "queue hold $a: 1 recipient held" -- "$bin" -c "$tmp/o.conf" queue hold "$a"
v=$("$py" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA user_version').fetchone()[0])" "$tmp/old/queue.db")
if [ "$v" = 2 ]; then echo "PASS old-schema-version"; else echo "FAIL old-schema-version: user_version $v, wanted 2"; fi
exit 0
