#!/usr/bin/python3
"""[queue] store = postgres: three nodes, one queue in a real PostgreSQL.

Counted at the world's receivers (tests/chaos/chaoslib: a ledger of what
was submitted and answered, the copies each Message-ID got):
- fleet.queue.once: mail submitted to all three nodes is delivered exactly
  once each, and the database holds every recipient as delivered with no
  lease left;
- fleet.queue.kill9: kill -9 of a node under load, while it holds claims
  on attempts in flight (a slow mailbox answers RCPT after 3 s): every
  message any node answered 250 arrives, the killed node's claims are
  delivered by the others once its lease lapsed, and duplicates only in
  the RFC 5321 section 6.1 window (chaoslib's judge) and no more than the
  attempts it had in flight;
- fleet.queue.pg-outage: PostgreSQL stopped under load: no 250 while it is
  down (4xx instead, never 5xx), the nodes live on, deliveries pause and
  the outage is logged once; after pg.start() every accepted message is
  in the database and delivered, and new mail is accepted again.

--lease sets [queue] lease (default 10s): with 1d the killed node's claims
never lapse within the test and fleet.queue.kill9 fails (its claimed
mail is never delivered): what the lease is for.
"""
import argparse
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import chaoslib as cl  # noqa: E402
from fleetlib import Fleet  # noqa: E402
from worldlib import report as wl_report  # noqa: E402

DESTS = cl.DESTS[:4]
SLOW_DESTS = cl.DESTS[4:8]


def report(name, ok, why):
    """PASS/FAIL line; what was seen goes on a line before it."""
    if ok:
        print("  %s: %s" % (name, why), flush=True)
    wl_report(name, ok, why)
    return ok


def pg_int(fl, sql):
    v = fl.pg.scalar(sql)
    return int(v) if v not in (None, "") else 0


def alive_ports(fl, dead):
    return [n.port for i, n in enumerate(fl.nodes) if i not in dead]


def test_once(fl, recv):
    """30 messages, 10 to each node: each arrives exactly once."""
    ledger = cl.Ledger("fleetonce")
    for i in range(30):
        rec = cl.send_one(ledger, fl.nodes[i % 3].port,
                          "user@" + DESTS[i % len(DESTS)])
        if rec["code"] != 250:
            return report("fleet.queue.once", False,
                          "node%d answered %s %s" % (i % 3 + 1, rec["code"],
                                                     rec.get("text")))
    cl.wait_delivered(ledger, recv, 30)
    time.sleep(1.5)                     # a late second copy would show
    fig, bad = cl.judge(ledger, recv)
    left = pg_int(fl, "SELECT count(*) FROM dr_recipients WHERE status <> 1 "
                      "OR lease_node IS NOT NULL")
    nodes = fl.pg.psql("SELECT DISTINCT node FROM dr_events WHERE type = "
                       "'delivered' ORDER BY node")
    ok = fig["accepted"] == 30 and fig["delivered"] == 30 and \
        fig["duplicated"] == 0 and left == 0
    return report("fleet.queue.once", ok,
                  "%s; rows not delivered or still leased: %d; delivered "
                  "by %s" % (cl.figures_line("once", fig), left,
                             [n[0] for n in nodes]))


def wait_claims(fl, node, timeout):
    """Recipient ids node holds live claims on (queued), once there are
    some attempts in flight to the slow mailbox too."""
    deadline = time.monotonic() + timeout
    ids = []
    while time.monotonic() < deadline:
        rows = fl.pg.psql(
            "SELECT r.id, r.addr FROM dr_recipients r WHERE r.status = 0 "
            "AND r.lease_node = '%s' AND r.lease_until > "
            "extract(epoch from now())::bigint" % node)
        ids = [int(r[0]) for r in rows]
        if any(r[1].startswith("slow@") for r in rows) and len(ids) >= 2:
            return ids
        time.sleep(0.1)
    return ids


def test_kill9(fl, recv, lease_s):
    """Load on all nodes; node1 killed while it holds claims in flight."""
    ledger = cl.Ledger("fleetkill")
    dead = set()
    ports = lambda: alive_ports(fl, dead)  # noqa: E731
    load = cl.Load(ledger, ports, ["user@" + d for d in DESTS],
                   threads=3, pause=0.05).start()
    # A trickle to slow mailboxes of other destinations (a slow attempt
    # holds its connection 3 s: each destination's mail waits behind it).
    slow = cl.Load(ledger, ports, ["slow@" + d for d in SLOW_DESTS],
                   threads=1, pause=0.5).start()
    time.sleep(2.0)
    claimed = wait_claims(fl, "node1", 10)
    node1 = fl.nodes[0]
    with ledger.fault("kill9", pid=node1.proc.pid):
        dead.add(0)
        node1.proc.send_signal(9)
        node1.proc.wait()
    t_kill = time.time()
    time.sleep(3.0)
    load.stop()
    slow.stop()
    problems = []
    if len(claimed) < 2:
        problems.append("precondition: node1 held %d live claims at the "
                        "kill (want >= 2)" % len(claimed))
    # The killed node's claims lapse after the lease; then others deliver.
    cl.wait_delivered(ledger, recv, min(lease_s, 15) + 25)
    time.sleep(2.0)
    fig, bad = cl.judge(ledger, recv)
    idlist = ",".join(str(i) for i in claimed) or "0"
    taken = fl.pg.psql(
        "SELECT DISTINCT e.node FROM dr_events e JOIN dr_recipients r ON "
        "r.msgid = e.msgid AND r.addr = e.addr WHERE e.type = 'delivered' "
        "AND r.id IN (%s)" % idlist)
    undelivered = pg_int(fl, "SELECT count(*) FROM dr_recipients WHERE id "
                             "IN (%s) AND status <> 1" % idlist)
    if fig["lost"]:
        problems.append("%d accepted messages never arrived (the killed "
                        "node's claims: %d, %d of them not delivered)"
                        % (fig["lost"], len(claimed), undelivered))
    if fig["dup_outside_window"]:
        problems.append("%d duplicates outside the RFC 5321 section 6.1 "
                        "window: %s" % (fig["dup_outside_window"], bad[:2]))
    if fig["duplicated"] > len(claimed):
        problems.append("%d duplicates, more than the %d attempts node1 "
                        "had in flight" % (fig["duplicated"], len(claimed)))
    if claimed and undelivered == 0 and \
            any(n[0] == "node1" for n in taken):
        problems.append("a claim of the dead node1 was delivered by node1")
    for i in (1, 2):
        if fl.nodes[i].proc.poll() is not None:
            problems.append("node%d died: %s" % (i + 1,
                                                 fl.nodes[i].tail(3)))
    took = time.time() - t_kill
    return report("fleet.queue.kill9", not problems,
                  "; ".join(problems + [cl.figures_line("kill9", fig)])
                  if problems else
                  "%s; node1's %d claims at the kill delivered by %s; "
                  "drained %.0fs after the kill" % (
                      cl.figures_line("kill9", fig), len(claimed),
                      sorted(n[0] for n in taken), took))


def test_outage(fl, recv):
    """PostgreSQL stopped and started under load on nodes 2 and 3."""
    ledger = cl.Ledger("fleetpg")
    live = [1, 2]
    load = cl.Load(ledger, [fl.nodes[i].port for i in live],
                   ["user@" + d for d in DESTS], threads=3,
                   pause=0.05).start()
    time.sleep(2.0)
    t_stop0 = time.time()
    fl.pg.stop()
    t_stop1 = time.time()
    time.sleep(4.0)
    t_start0 = time.time()
    fl.pg.start()
    t_start1 = time.time()
    time.sleep(4.0)
    load.stop()
    problems = []
    with ledger.lock:
        sent = dict(ledger.sent)
    during = [r for r in sent.values()
              if r["t0"] >= t_stop1 and r["t1"] <= t_start0]
    if any(r["code"] == 250 for r in during):
        problems.append("250 while PostgreSQL was down")
    refused = [r for r in during if r["code"] is not None]
    if not refused or any(r["code"] // 100 != 4 for r in refused):
        problems.append("while down, want 4xx answers, got %s" % sorted(
            {r["code"] for r in during}))
    after = [r for r in sent.values()
             if r["t0"] >= t_start1 + 2.5 and r["code"] == 250]
    if not after:
        problems.append("no mail accepted again after pg.start()")
    for i in live:
        if fl.nodes[i].proc.poll() is not None:
            problems.append("node%d died: %s" % (i + 1, fl.nodes[i].tail(3)))
    cl.wait_delivered(ledger, recv, 45)
    time.sleep(1.0)
    fig, bad = cl.judge(ledger, recv)
    # Every 250 is a commit: the message is in the database.
    accepted = ledger.accepted()
    stored = {r[0] for r in fl.pg.psql(
        "SELECT message_id FROM dr_messages WHERE message_id LIKE '%%%s%%'"
        % ledger.tag)}
    missing = [m for m in accepted if m not in stored]
    if missing:
        problems.append("%d messages answered 250 are not in the database"
                        % len(missing))
    if fig["lost"]:
        problems.append("%d accepted messages never arrived" % fig["lost"])
    if fig["duplicated"]:
        problems.append("%d duplicates" % fig["duplicated"])
    said = 0
    for i in live:
        text = open(fl.nodes[i].log, errors="replace").read()
        said = max(said, text.count("queue unavailable:"))
    if said == 0 or said > 3:
        problems.append("the outage was logged %d times by a node "
                        "(want once or twice)" % said)
    return report("fleet.queue.pg-outage", not problems,
                  "; ".join(problems + [cl.figures_line("pg-outage", fig)])
                  if problems else
                  "%s; %d refused with 4xx while down (%.1fs), %d accepted "
                  "after the restart" % (
                      cl.figures_line("pg-outage", fig), len(refused),
                      t_start0 - t_stop1, len(after)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--lease", default="10s")
    args = ap.parse_args()
    # timeout(1) sends SIGTERM: unwind, so the nodes and PostgreSQL stop.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    lease_s = int(args.lease[:-1]) if args.lease.endswith("s") else 86400
    extra = ("[queue]\nlease = %s\n[delivery]\nretry_schedule = 1s\n"
             % args.lease)
    recv = cl.Receivers(args.world)
    ok = True
    try:
        with Fleet(args.binary, args.world, n=3, store="postgres",
                   extra=extra) as fl:
            ok = test_once(fl, recv) and ok
            ok = test_kill9(fl, recv, lease_s) and ok
            ok = test_outage(fl, recv) and ok
            for i, n in enumerate(fl.nodes):
                san = cl.sanitizer_report(n)
                if san:
                    ok = report("fleet.queue.sanitizer", False,
                                "node%d: %s" % (i + 1, san))
    except RuntimeError as e:
        report("fleet.queue", False, str(e).splitlines()[0])
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
