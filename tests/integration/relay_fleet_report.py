#!/usr/bin/python3
"""The fleet's trace and transit security report equal the node's (issue
12): one relay in the test world delivers, blocks and log-only-records
mail (consolelib.populated(), plus an MTA-STS testing domain, the null
sender, a message to two domains); a few rows are added to its queue that
a real run only leaves in old or damaged queues (events written before
"security" existed, a damaged fields column, a STARTTLS refusal under
a requirement, odd case). Then `danerelay fleet sync` copies every event
and envelope to a private PostgreSQL (tests/world/pgsrv.py) as the
fleet's copy of this node, and

- `report --json` for each period and `report --impact --json` for each
  period, read from the node's queue and from the fleet's database, are
  the same document (the fleet's rows of domains also name their nodes);
- `trace --json` with every filter (queue id, Message-ID with and
  without <>, recipient in another case, domain, sender, the null sender,
  since, until, both, limit, and combinations) gives the same messages
  and events, the fleet's with "node" on each message and event; its text
  form is the node's plus node=NAME;
- with the database stopped, `trace` and `report` fall back to the
  node's queue with the warning "fleet database unreachable: this node
  only"; with [queue] store = postgres they fail (exit 69) instead.

    relay_fleet_report.py --binary build/danerelay --world DIR
"""
import argparse
import copy
import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "world"))
from consolelib import populated  # noqa: E402
from pgsrv import PgServer  # noqa: E402
from worldlib import report, wait_until  # noqa: E402

NODE = "node7"
PERIODS = ["1h", "1d", "7d", "30d"]


def case(name, fn, *args):
    try:
        why = fn(*args)
    except Exception as e:  # a case that raises FAILs, the rest go on
        why = f"{type(e).__name__}: {e}"
    report(name, why is None, why or "")
    return why is None


def run(conf, binary, *args):
    p = subprocess.run([binary, "-c", conf] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


# --- the mail of a real run, beyond consolelib's plan ---

def send_more(relay):
    """Mail the console's plan lacks; {qid: recipients}."""
    sent = {}
    for sender, rcpts in [
            ("postmaster@ee-311.test", ["user1@sts-testing-self-signed.test"]),
            ("", ["User2@EE-311.test"]),
            ("Someone@Client.TEST", ["user3@ee-311.test",
                                     "user1@no-tlsa.test"])]:
        code, qid, msgid = relay.submit(sender, rcpts, subject="fleet")
        if code != 250:
            raise RuntimeError(f"{rcpts}: submission got {code}")
        sent[qid] = rcpts
    return sent


def settled(relay, sent):
    rc, out, err = relay.cli("trace", "--since", "1h", "--json")
    done = {m["id"] for m in json.loads(out or "[]")
            if any(e["type"] in ("delivered", "deferred", "bounced")
                   for e in m["events"])}
    return set(sent) <= done


# --- rows a real run of today's relay does not write ---

def add_odd_rows(db, a_msg):
    """Old and damaged rows, as older relays and broken disks leave
    them, on message a_msg of the queue db."""
    now = int(time.time())
    rows = [
        # Before "security": the class comes from tls/policy/result_type.
        ("Legacy1@Old-Style.TEST", "attempt", json.dumps(
            {"status": "2.0.0", "tls": "verified", "policy": "dane",
             "mx": "mx.old-style.test"})),
        ("legacy2@old-style.test", "attempt", json.dumps(
            {"status": "2.0.0", "tls": "trusted", "mx": "mx.old-style.test"})),
        ("legacy3@old-style.test", "attempt", json.dumps(
            {"status": "2.0.0", "tls": "verified", "policy": "mta-sts",
             "mx": "mx.old-style.test"})),
        ("legacy4@old-style.test", "attempt", json.dumps(
            {"status": "4.7.5", "result_type": "STS-Policy-Invalid",
             "text": "old sts failure", "mx": "mx.old-style.test"})),
        ("legacy5@old-style.test", "attempt", json.dumps(
            {"status": "4.7.325", "result_type": "certificate-expired",
             "text": "old dane failure", "mx": "mx.old-style.test"})),
        ("legacy6@old-style.test", "attempt", json.dumps(
            {"status": "4.4.1", "text": "no connection"})),
        # Required TLS not offered: no_tls's failed column.
        ("x@Plain-Refused.test", "attempt", json.dumps(
            {"status": "4.7.10", "result_type": "starttls-not-supported",
             "security": "dane", "tls": "none", "mx": "mx.plain.test",
             "text": "no STARTTLS"})),
        ("x@plain-refused.test", "attempt", json.dumps(
            {"status": "4.7.10", "result_type": "starttls-not-supported",
             "security": "dane", "tls": "none", "mx": "mx.plain.test",
             "text": "no STARTTLS"})),
        # A damaged row: the report skips its fields, trace shows them raw.
        ("damaged@old-style.test", "attempt", '{"status": "2.0.0", broken'),
        ("damaged@old-style.test", "note", None),
        # No '@': the domain is the whole address.
        ("nodomain", "attempt", json.dumps(
            {"status": "2.0.0", "security": "tls", "tls": "unverified",
             "mx": "mx.x.test"})),
    ]
    con = sqlite3.connect(db)
    for i, (addr, typ, fields) in enumerate(rows):
        con.execute("INSERT INTO events (msgid, addr, at, type, fields) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (a_msg, addr, now - 60 * (i + 1), typ, fields))
    con.commit()
    con.close()


# --- the fleet's copy of the node ---

def sync(binary, fleet):
    """`danerelay fleet sync`: the node's events and envelopes copied to
    the fleet's database (fleet_sync, as the daemon's thread does)."""
    rc, out, err = run(fleet, binary, "fleet", "sync")
    if rc != 0:
        raise RuntimeError(f"fleet sync: exit {rc}: {out}{err}")


# --- comparisons ---

def strip_nodes(trace, node):
    """The trace without the fleet's node fields; raises if one is
    missing or names another node."""
    t = copy.deepcopy(trace)
    for m in t:
        if m.pop("node", None) != node:
            raise AssertionError(f"message {m['id']} without node {node}")
        for e in m["events"]:
            if e.pop("node", None) != node:
                raise AssertionError(f"event of {m['id']} without node")
    return t


def first_diff(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'local' if k in a else 'fleet'}"
            d = first_diff(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: local {a!r} != fleet {b!r}"


def same_report(binary, local, fleet, args):
    """report args from both sides in the same second (the period ends
    now): retried when a second boundary fell between them."""
    for _ in range(5):
        rc1, out1, err1 = run(local, binary, "report", *args, "--json")
        rc2, out2, err2 = run(fleet, binary, "report", *args, "--json")
        if rc1 != 0 or rc2 != 0:
            return f"exit {rc1}/{rc2}: {err1}{err2}"
        if err2.strip():
            return f"fleet said: {err2.strip()}"
        a, b = json.loads(out1), json.loads(out2)
        for row in b.get("blocked", []) + b.get("domains", []):
            if row.pop("nodes", None) != [NODE]:
                return f"{row['domain']}: not nodes [{NODE}]"
        if a["period"]["since"] == b["period"]["since"]:
            return first_diff(a, b)
    return "never within one second"


def busy(rep):
    """Whether a report has something in each part (not all empty)."""
    return rep["blocked"] and rep["sent"]["total"] and rep["no_tls"]["table"]


def same_trace(binary, local, fleet, args, want_some=True):
    rc1, out1, err1 = run(local, binary, "trace", *args, "--json")
    rc2, out2, err2 = run(fleet, binary, "trace", *args, "--json")
    if rc1 != rc2:
        return f"exit local {rc1} fleet {rc2}: {err1}{err2}"
    if err2.strip():
        return f"fleet said: {err2.strip()}"
    a, b = json.loads(out1), json.loads(out2)
    if want_some and not a:
        return "nothing matched locally: a filter test that tests nothing"
    d = first_diff(a, strip_nodes(b, NODE))
    if d:
        return d
    rc1, text1, _ = run(local, binary, "trace", *args)
    rc2, text2, _ = run(fleet, binary, "trace", *args)
    if text2.replace(f" node={NODE}", "") != text1:
        return f"text differs beyond node=: {text1[:300]!r} / {text2[:300]!r}"
    if a and f" node={NODE}\n" not in text2:
        return "the fleet's text shows no node"
    return None


def trace_filters(sample):
    """(name, args) of the trace filters, from a sample message."""
    mid = sample["message_id"]
    old = sample["received_at"]
    return [
        ("all", []),
        ("queue id", ["--message-id", sample["id"].upper()]),
        ("message-id bare", ["--message-id", mid.strip("<>")]),
        ("message-id <>", ["--message-id", mid]),
        ("recipient case", ["--recipient", "USER2@ee-311.TEST"]),
        ("recipient odd", ["--recipient", "legacy1@old-style.test"]),
        ("domain", ["--domain", "EE-311.test"]),
        ("domain of two", ["--domain", "no-tlsa.TEST"]),
        ("sender", ["--sender", "someone@client.test"]),
        ("null sender", ["--sender", "<>"]),
        ("since", ["--since", "10m"]),
        ("until", ["--until", old]),
        ("since+until", ["--since", "2h", "--until", old]),
        ("limit", ["--limit", "3"]),
        ("domain+limit", ["--domain", "ee-311.test", "--limit", "2"]),
        ("recipient+since", ["--recipient", "user1@ee-311.test",
                             "--since", "1h"]),
    ]


def fallback(binary, local, fleet, pgonly, pg):
    pg.stop()
    try:
        rc1, out1, _ = run(local, binary, "trace", "--json")
        rc2, out2, err2 = run(fleet, binary, "trace", "--json")
        if rc2 != 0 or "fleet database unreachable: this node only" \
                not in err2 or json.loads(out2) != json.loads(out1):
            return f"trace: exit {rc2}: {err2}"
        rc2, out2, err2 = run(fleet, binary, "report", "--json")
        if rc2 != 0 or "fleet database unreachable: this node only" \
                not in err2 or not json.loads(out2)["blocked"]:
            return f"report: exit {rc2}: {err2}"
        rc3, out3, err3 = run(pgonly, binary, "report", "--impact")
        if rc3 != 69 or "fleet database unreachable" not in err3 or out3:
            return f"store = postgres: exit {rc3}: {err3}{out3}"
        return None
    finally:
        pg.start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    try:
        relay, exp = populated(binary, args.world)
    except Exception as e:
        report("fleet report: populated relay", False, str(e))
        return 1
    ok = True
    pg = None
    try:
        more = send_more(relay)
        if not wait_until(lambda: settled(relay, more), 60, 0.5):
            raise RuntimeError("the extra mail did not settle")
        relay.stop()
        db = os.path.join(relay.dir, "queue", "queue.db")
        add_odd_rows(db, next(iter(more)))
        pg = PgServer(os.path.dirname(os.path.abspath(args.world)))
        base = open(relay.conf).read()
        fleet = os.path.join(relay.dir, "fleet.conf")
        with open(fleet, "w") as f:
            f.write(base + f"\n[fleet]\npostgres = {pg.conninfo}\n"
                           f"node = {NODE}\n")
        pgonly = os.path.join(relay.dir, "pgonly.conf")
        with open(pgonly, "w") as f:
            f.write(base + f"\n[fleet]\npostgres = {pg.conninfo}\n"
                           f"node = {NODE}\n[queue]\nstore = postgres\n")
        local = relay.conf
        # An empty fleet first (the first connection makes the schema).
        rc, out, err = run(fleet, binary, "trace", "--json")
        if rc != 1 or out.strip() != "[]":
            raise RuntimeError(f"empty fleet: exit {rc}: {out}{err}")
        sync(binary, fleet)
        rc, out, err = run(local, binary, "report", "--json")
        if not busy(json.loads(out)):
            raise RuntimeError("the node's report is empty: " + out[:500])
        for per in PERIODS:
            ok &= case(f"fleet report {per} equals the node's", same_report,
                       binary, local, fleet, ["--period", per])
            ok &= case(f"fleet impact {per} equals the node's", same_report,
                       binary, local, fleet, ["--impact", "--period", per])
        rc, out, err = run(local, binary, "trace", "--json")
        sample = [m for m in json.loads(out) if m["message_id"]][0]
        for name, fargs in trace_filters(sample):
            ok &= case(f"fleet trace ({name}) equals the node's",
                       same_trace, binary, local, fleet, fargs)
        ok &= case("fleet trace of an unknown id matches nothing",
                   same_trace, binary, local, fleet,
                   ["--message-id", "no-such-message"], False)
        ok &= case("database away: the node's own view, said; store = "
                   "postgres: exit 69", fallback, binary, local, fleet,
                   pgonly, pg)
    except Exception as e:
        report("fleet report: setup", False, f"{type(e).__name__}: {e}")
        ok = False
    finally:
        relay.stop()
        if pg is not None:
            pg.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
