#!/usr/bin/python3
"""The copying thread of a fleet with local queues (issue 12, fleet_sync):
three `danerelay serve` nodes with [queue] store = sqlite and a real
PostgreSQL (tests/world/pgsrv.py), mail submitted to every node and
delivered in the test world.

  copy.*     every local trace event of every node is in dr_events exactly
             once, under its node's name, with its message's envelope in
             dr_messages (node = the node that accepted it)
  outage.*   PostgreSQL stopped while mail flows: delivery goes on, a node
             stops promptly and starts again meanwhile and serves,
             /metrics says the database is down; PostgreSQL back:
             dr_events is the union of the local events again, nothing
             lost, nothing twice, `fleet status` backlog 0, the log says
             it once each way
  kill.*     a node killed (-9) in the middle of copying a backlog of
             150,000 events, then restarted: still exactly once; damaged
             fields texts and invalid UTF-8 are copied, not stuck on
  cli.*      `danerelay fleet sync` and `fleet status`

Usage: relay_fleet_sync.py --binary PATH --world DIR  (PASS/FAIL lines)
"""
import argparse
import json
import os
import sqlite3
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from fleetlib import Fleet  # noqa: E402
import worldlib  # noqa: E402
from worldlib import (free_port, log_has, rewrite_config,  # noqa: E402
                      wait_until, world_mail)

FAILED = []


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    worldlib.report(name, ok, why)

SENDER = "postmaster@ee-311.test"
DOMAINS = ("ee-301.test", "ee-311.test")
LOAD = 150000          # synthetic events for the kill test


def name_of(i):
    return f"node{i + 1}"


def queue_db(node):
    return os.path.join(node.dir, "queue", "queue.db")


def local_events(node):
    """{local id: (msgid, type)} of the node's own queue (read-only)."""
    db = sqlite3.connect(f"file:{queue_db(node)}?mode=ro", uri=True,
                         timeout=30)
    try:
        return {r[0]: (r[1], r[2]) for r in
                db.execute("SELECT id, msgid, type FROM events")}
    finally:
        db.close()


def local_messages(node):
    db = sqlite3.connect(f"file:{queue_db(node)}?mode=ro", uri=True,
                         timeout=30)
    try:
        return {r[0] for r in db.execute("SELECT id FROM messages")}
    finally:
        db.close()


def pg_events(fl, node):
    rows = fl.pg.psql(f"SELECT local_id, msgid, type FROM dr_events "
                      f"WHERE node = '{node}'")
    return [(int(r[0]), r[1], r[2]) for r in rows]


def exact(fl):
    """'' when dr_events holds every local event of every node exactly
    once (same ids, msgids, types), else what differs."""
    for i, nd in enumerate(fl.nodes):
        local = local_events(nd)
        remote = pg_events(fl, name_of(i))
        ids = [r[0] for r in remote]
        if len(ids) != len(set(ids)):
            return f"{name_of(i)}: a local id twice"
        if len(remote) != len(local):
            return (f"{name_of(i)}: {len(remote)} in dr_events, "
                    f"{len(local)} local")
        if {r[0]: (r[1], r[2]) for r in remote} != local:
            return f"{name_of(i)}: the rows differ"
    dup = fl.pg.psql("SELECT node, local_id FROM dr_events GROUP BY "
                     "node, local_id HAVING count(*) > 1 LIMIT 1")
    if dup:
        return f"duplicate {dup}"
    other = fl.pg.psql("SELECT DISTINCT node FROM dr_events")
    names = {r[0] for r in other}
    if not names <= {name_of(i) for i in range(len(fl.nodes))}:
        return f"unknown nodes {names}"
    return ""


def wait_exact(fl, timeout):
    why = [""]

    def ok():
        try:
            why[0] = exact(fl)
        except RuntimeError as e:      # the database is still starting
            why[0] = str(e)
        return why[0] == ""
    wait_until(ok, timeout, step=0.5)
    return why[0]


def submit_some(fl, n, tag):
    """n messages to each node; [(node index, queue id, Message-ID)]."""
    sent = []
    for k in range(n):
        for i, nd in enumerate(fl.nodes):
            code, qid, msgid = nd.submit(
                SENDER, [f"user@{DOMAINS[k % 2]}"], subject=f"{tag} {k}")
            if code != 250:
                raise RuntimeError(f"{name_of(i)} answered {code}")
            sent.append((i, qid, msgid))
    return sent


def all_delivered(world, sent, timeout):
    missing = []

    def ok():
        missing[:] = [m for _, _, m in sent if not world_mail(world, m)]
        return not missing
    wait_until(ok, timeout, step=0.5)
    return missing


def status(node):
    rc, out, err = node.cli("fleet", "status", "--json")
    if rc != 0:
        return None, f"exit {rc}: {err.strip()}"
    return json.loads(out), ""


def metric(node, name):
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{node.admin_port}/metrics",
                timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return None


def test_copy(args, fl):
    sent = submit_some(fl, 4, "copy")
    missing = all_delivered(args.world, sent, 60)
    report("copy.delivered", not missing, f"{len(missing)} not delivered")
    why = wait_exact(fl, 20)
    report("copy.events-exactly-once", why == "", why)
    bad = []
    for i, qid, msgid in sent:
        rows = fl.pg.psql(f"SELECT node, sender, message_id, body IS NULL "
                          f"FROM dr_messages WHERE id = '{qid}'")
        if rows != [[name_of(i), SENDER, msgid, "t"]]:
            bad.append((qid, rows))
    for i, nd in enumerate(fl.nodes):
        n = fl.pg.scalar(f"SELECT count(*) FROM dr_messages "
                         f"WHERE node = '{name_of(i)}'")
        if int(n) != len(local_messages(nd)):
            bad.append((name_of(i), n))
    report("copy.messages", not bad, f"{bad[:3]}")
    deliveries = fl.pg.scalar(
        "SELECT count(*) FROM dr_events WHERE type = 'delivered'")
    report("copy.delivered-events", int(deliveries) == len(sent),
           f"{deliveries} delivered events for {len(sent)} messages")


class Submitter(threading.Thread):
    """Mail to every node in turn until stopped: the load under which
    the database goes away and comes back."""

    def __init__(self, fl):
        super().__init__(daemon=True)
        self.fl, self.sent, self.errors = fl, [], []
        self.halt = threading.Event()

    def run(self):
        k = 0
        while not self.halt.is_set():
            i = k % len(self.fl.nodes)
            try:
                code, qid, msgid = self.fl.nodes[i].submit(
                    SENDER, [f"user@{DOMAINS[k % 2]}"],
                    subject=f"outage {k}")
                if code == 250:
                    self.sent.append((i, qid, msgid))
                else:
                    self.errors.append(code)
            except OSError as e:     # the node being restarted
                self.errors.append(str(e))
            k += 1
            time.sleep(0.05)


def test_outage(args, fl):
    sub = Submitter(fl)
    sub.start()
    time.sleep(1.5)
    fl.pg.stop()
    down_at = len(sub.sent)
    time.sleep(3)
    unreachable = all(log_has(nd, "fleet: database unreachable")
                      for nd in fl.nodes)
    report("outage.logged", unreachable,
           "a node did not log 'fleet: database unreachable'")
    up = metric(fl.nodes[0], "danerelay_fleet_db_up")
    backlog = metric(fl.nodes[0], "danerelay_fleet_backlog_events")
    report("outage.metrics", up == 0 and backlog is not None and backlog > 0,
           f"db_up {up}, backlog {backlog}")
    # A node restarted while the database is away serves all the same.
    n3 = fl.nodes[2]
    t0 = time.monotonic()
    rc = n3.stop()
    took = time.monotonic() - t0
    report("outage.stop-prompt", rc == 0 and took < 10,
           f"exit {rc} after {took:.1f}s with the database away")
    try:
        n3.start()
        started = wait_until(lambda: log_has(
            n3, "fleet: database unreachable"), 15)
        report("outage.start-without-db", bool(started),
               "no 'database unreachable' in the restarted node's log")
    except RuntimeError as e:
        report("outage.start-without-db", False, str(e)[:300])
    time.sleep(2)
    during = len(sub.sent) - down_at
    fl.pg.start()
    time.sleep(2)                       # still under load when it returns
    sub.halt.set()
    sub.join(60)
    report("outage.mail-flowed", during >= 20,
           f"only {during} messages accepted while the database was down")
    missing = all_delivered(args.world, sub.sent, 60)
    report("outage.delivered", not missing,
           f"{len(missing)} of {len(sub.sent)} not delivered")
    t0 = time.monotonic()
    why = wait_exact(fl, 20)
    report("outage.exactly-once", why == "", why)
    print(f"INFO outage: {len(sub.sent)} messages, {during} while the "
          f"database was down; copied {time.monotonic() - t0:.1f}s after "
          f"the checks began", flush=True)
    back = all(log_has(nd, "fleet: database back,") for nd in fl.nodes)
    once = all(open(nd.log, errors="replace").read().count(
        "fleet: database unreachable") == (2 if nd is n3 else 1)
        for nd in fl.nodes)
    report("outage.logged-once", back and once,
           "expected one 'unreachable' per outage and process and a "
           "'database back'")
    st, err = status(fl.nodes[0])
    report("outage.status-backlog-0",
           st is not None and st["backlog"] == 0 and
           st["local_max_event"] > 0, err or json.dumps(st)[:300])
    up = wait_until(lambda: metric(fl.nodes[0],
                                   "danerelay_fleet_db_up") == 1, 10)
    report("outage.metrics-back", bool(up) and metric(
        fl.nodes[0], "danerelay_fleet_backlog_events") == 0,
        "danerelay_fleet_db_up not 1 or backlog not 0")


def add_load(node, n):
    """n synthetic events in the node's stopped queue (the first message's
    id), a few of them damaged; returns (first id, last id, damaged)."""
    db = sqlite3.connect(queue_db(node), timeout=30)
    msgid = db.execute("SELECT id FROM messages LIMIT 1").fetchone()[0]
    first = db.execute("SELECT max(id) FROM events").fetchone()[0] + 1
    rows = ((msgid, f"load{k}@ee-301.test", 1700000000 + k, "load",
             json.dumps({"k": k})) for k in range(n))
    with db:
        db.executemany("INSERT INTO events (msgid, addr, at, type, fields) "
                       "VALUES (?, ?, ?, ?, ?)", rows)
        damaged = {}
        for raw in ("not json {", "[1, 2]", b"\xff\xfe bad \xc3("):
            cur = db.execute(
                "INSERT INTO events (msgid, addr, at, type, fields) VALUES "
                "(?, CAST(? AS TEXT), 1700000000, 'damaged', "
                "CAST(? AS TEXT))", (msgid, b"bad\xff@ee-301.test", raw))
            damaged[cur.lastrowid] = raw
    last = db.execute("SELECT max(id) FROM events").fetchone()[0]
    db.close()
    return first, last, damaged


def mark_of(fl, node):
    try:
        v = fl.pg.scalar(f"SELECT events_mark FROM dr_nodes "
                         f"WHERE node = '{node}'")
        return int(v or 0)
    except RuntimeError:
        return -1


def test_kill(args, fl):
    nd = fl.nodes[0]
    nd.stop()
    before = mark_of(fl, "node1")
    first, last, damaged = add_load(nd, LOAD)
    nd.start()
    t0 = time.monotonic()
    moved = wait_until(lambda: mark_of(fl, "node1") > before, 30, step=0.02)
    mark = mark_of(fl, "node1")
    t1 = time.monotonic()
    nd.kill9()
    killed_at = mark_of(fl, "node1")
    mid = bool(moved) and killed_at < last
    report("kill.mid-copy", mid,
           f"mark {killed_at} (before {before}, last {last}): the copy was "
           f"not under way when killed")
    if moved and mark > before:
        print(f"INFO kill: {mark - before} events copied in "
              f"{t1 - t0:.2f}s after the start (with the start-up)",
              flush=True)
    nd.start()
    t2 = time.monotonic()
    done = wait_until(lambda: mark_of(fl, "node1") >= last, 60, step=0.2)
    print(f"INFO kill: the rest ({last - max(killed_at, 0)} events) copied "
          f"in {time.monotonic() - t2:.1f}s after the restart", flush=True)
    report("kill.finished", bool(done), f"mark {mark_of(fl, 'node1')} of "
           f"{last} after 60s")
    why = wait_exact(fl, 20)
    report("kill.exactly-once", why == "", why)
    ok, why = True, ""
    for lid, raw in damaged.items():
        rows = fl.pg.psql(f"SELECT fields::text, addr FROM dr_events "
                          f"WHERE node = 'node1' AND local_id = {lid}")
        got = json.loads(rows[0][0]) if rows else None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) \
            else raw
        if got != {"fields_raw": text} or "\ufffd" not in rows[0][1]:
            ok, why = False, f"{lid}: {rows} for {raw!r}"
    report("kill.damaged-fields-raw", ok, why)


def test_cli(args, fl):
    nd = fl.nodes[1]
    rc, out, err = nd.cli("fleet", "sync")
    report("cli.sync", rc == 0, f"exit {rc}: {err.strip()}")
    rc, out, err = nd.cli("fleet", "status")
    report("cli.status-text",
           rc == 0 and "node1" in out and "node3" in out and
           "backlog 0" in out, f"exit {rc}: {out[:300]} {err[:200]}")
    fl.pg.stop()
    rc, out, err = nd.cli("fleet", "sync")
    report("cli.sync-no-database", rc == 1 and "fleet" in err,
           f"exit {rc}: {err.strip()[:200]}")
    fl.pg.start()


def test_purge(args, fl):
    """The fleet's copy of a node's trace is kept as long as the local
    queue keeps it (30 days): `fleet sync` removes the node's own copied
    messages without an event since then, and nothing else."""
    old = int(time.time()) - 31 * 86400
    rows = [("p-old-own", "node2", old, None), ("p-new-own", "node2",
            int(time.time()), None), ("p-old-other", "node1", old, None),
            ("p-old-queued", "node2", old, "r")]
    for mid, node, at, rcpt in rows:
        fl.pg.psql(
            "INSERT INTO dr_messages (id, node, kind, sender, ret, "
            "body_8bit, smtputf8, client, received_at, size) VALUES "
            f"('{mid}', '{node}', 0, 'a@b.test', 0, 0, 0, 'c', {at}, 1); "
            "INSERT INTO dr_events (node, msgid, at, type) VALUES "
            f"('{node}', '{mid}', {at}, 'received')")
        if rcpt:
            fl.pg.psql(
                "INSERT INTO dr_recipients (msgid, addr, domain, notify, "
                f"queued_at, next_attempt) VALUES ('{mid}', 'x@y.test', "
                f"'y.test', 0, {at}, {at})")
    rc, out, err = fl.nodes[1].cli("fleet", "sync")
    left = {r[0] for r in fl.pg.psql(
        "SELECT id FROM dr_messages WHERE id LIKE 'p-%'")}
    ev = {r[0] for r in fl.pg.psql(
        "SELECT msgid FROM dr_events WHERE msgid LIKE 'p-%'")}
    want = {"p-new-own", "p-old-other", "p-old-queued"}
    report("purge.own-old-copies-only", rc == 0 and left == want and
           ev == want, f"exit {rc} {err.strip()[:200]}: messages left "
           f"{sorted(left)}, events left {sorted(ev)}, want {sorted(want)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    try:
        fl = Fleet(args.binary, args.world, n=3, store="sqlite",
                   start=False)
    except RuntimeError as e:
        report("fleet.start", False, str(e)[:500])
        return
    try:
        for nd in fl.nodes:
            nd.admin_port = free_port()
            rewrite_config(nd, lambda s, p=nd.admin_port: s.setdefault(
                "admin", {}).update(listen=f"127.0.0.1:{p}",
                                    metrics_open="yes"))
            nd.start()
        test_copy(args, fl)
        test_outage(args, fl)
        test_kill(args, fl)
        test_cli(args, fl)
        test_purge(args, fl)
    except Exception as e:  # noqa: BLE001 - any failure is a FAIL line
        report("fleet.run", False, f"{type(e).__name__}: {e}"[:500])
    finally:
        fl.close()


if __name__ == "__main__":
    main()
    sys.exit(1 if FAILED else 0)
