#!/usr/bin/python3
"""[queue] store = postgres, few round trips per message (docs/FLEET.md,
"Round trips"): one node on a real PostgreSQL with pg_stat_statements.

- fleet.pgfast.rows: messages of two and three recipients (ORCPT,
  NOTIFY) go in with queue_add's one statement: the message, its
  recipients in order, the events "received" then one "queued" per
  recipient in order, with the fields SQLite writes; once delivered,
  each recipient's "attempt" then "delivered" event, in the order of
  the calls, each recipient delivered and the body dropped (the events
  and body drops a batch holds back and writes at once);
- fleet.pgfast.roundtrips: statements the node sent per message, by
  pg_stat_statements, 40 single-recipient messages sent one at a time
  (so batches of one or two: the worst case), at most 10 (seen: 6.3;
  before h/pgfast 11.8: 1 to accept instead of 5, the two events and the
  body drop of a batch in two statements instead of three per message),
  and each outcome's events and body drop committed with it.
"""
import argparse
import json
import os
import signal
import smtplib
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "world"))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import chaoslib as cl  # noqa: E402
from fleetlib import Fleet  # noqa: E402
from pgsrv import PgServer  # noqa: E402
from worldlib import report as wl_report, wait_until  # noqa: E402

SENDER = "pgfast@ee-311.test"
MAX_PER_MSG = 10.0


def report(name, ok, why):
    """PASS/FAIL line; what was seen goes on a line before it."""
    if ok:
        print("  %s: %s" % (name, why), flush=True)
    wl_report(name, ok, why)
    return ok


def send(port, rcpts, tag, i, opts):
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: pgfast\r\n"
           "Message-ID: <%d.%s@pgfast.test>\r\n\r\nbody %d\r\n"
           % (SENDER, rcpts[0], i, tag, i)).encode()
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.ehlo("pgfast.test")
        refused = s.sendmail(SENDER, rcpts, msg, rcpt_options=opts)
        return not refused
    finally:
        s.quit()


def rows(pg, sql):
    out = pg.psql(sql)
    return [r for r in out if r and r != [""]]


def test_rows(fl, tag):
    """Multi-recipient messages: the rows and their order."""
    dests = cl.DESTS[:3]
    sent = {}
    for i in range(4):
        rc = ["u%d-%d@%s" % (i, k, dests[k]) for k in range(2 + i % 2)]
        opts = ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig%d@x.test" % i]
        if not send(fl.nodes[0].port, rc, tag, i, opts):
            return report("fleet.pgfast.rows", False, "refused %s" % rc)
        sent["<%d.%s@pgfast.test>" % (i, tag)] = rc
    like = "%%%s%%" % tag
    done = wait_until(lambda: int(fl.pg.scalar(
        "SELECT count(*) FROM dr_recipients r JOIN dr_messages m ON "
        "m.id = r.msgid WHERE m.message_id LIKE '%s' AND r.status = 1"
        % like) or 0) == sum(len(v) for v in sent.values()), 60)
    problems = [] if done else ["not all delivered within 60 s"]
    time.sleep(0.5)
    for mid, rc in sent.items():
        msg = rows(fl.pg, "SELECT id, body IS NULL FROM dr_messages "
                   "WHERE message_id = '%s'" % mid)
        if len(msg) != 1:
            problems.append("%s: %d message rows" % (mid, len(msg)))
            continue
        qid, dropped = msg[0][0], msg[0][1]
        if dropped != "t":
            problems.append("%s: body kept" % qid)
        rr = rows(fl.pg, "SELECT id, addr, orcpt, notify FROM dr_recipients "
                  "WHERE msgid = '%s' ORDER BY id" % qid)
        if [r[1] for r in rr] != rc:
            problems.append("%s: recipients %s" % (qid, [r[1] for r in rr]))
            continue
        ev = rows(fl.pg, "SELECT type, coalesce(addr, ''), "
                  "coalesce(fields::text, '{}') FROM dr_events WHERE "
                  "msgid = '%s' ORDER BY id" % qid)
        want = ["received"] + ["queued"] * len(rc)
        got = [e[0] for e in ev]
        if got[:len(want)] != want or ev[0][1] != "":
            problems.append("%s: events %s" % (qid, got))
            continue
        f0 = json.loads(ev[0][2])
        if f0.get("recipients") != len(rc) or f0.get("sender") != SENDER:
            problems.append("%s: received fields %s" % (qid, ev[0][2]))
        for k, r in enumerate(rr):
            f = json.loads(ev[1 + k][2])
            if ev[1 + k][1] != r[1] or f.get("rcpt") != int(r[0]) or \
                    f.get("orcpt") != r[2] or f.get("notify") != int(r[3]):
                problems.append("%s: queued event %d: %s %s" % (
                    qid, k, ev[1 + k][1], ev[1 + k][2]))
        # After those: per recipient (in the order delivered), its
        # attempt right before its verdict.
        # (NOTIFY=SUCCESS: "dsn-sent" events come too, from the
        # DSNs queued inside the outcomes' batch.)
        rest = [(e[0], e[1]) for e in ev[len(want):]
                if e[0] != "dsn-sent"]
        pairs = [rest[j:j + 2] for j in range(0, len(rest), 2)]
        if len(rest) != 2 * len(rc) or any(
                p[0][0] != "attempt" or p[1][0] != "delivered" or
                p[0][1] != p[1][1] for p in pairs) or \
                sorted(p[0][1] for p in pairs) != sorted(rc):
            problems.append("%s: outcome events %s" % (qid, rest))
    return report("fleet.pgfast.rows", not problems,
                  "; ".join(problems[:4]) or
                  "4 messages, %d recipients: rows, fields, order" %
                  sum(len(v) for v in sent.values()))


def test_roundtrips(fl, tag):
    """Statements per message, single recipient, by pg_stat_statements."""
    # The DSNs of test_rows first: nothing else in the count.
    wait_until(lambda: int(fl.pg.scalar(
        "SELECT count(*) FROM dr_recipients WHERE status = 0") or 0) == 0,
        30)
    # The extension lives in the database "postgres" (superuser's);
    # its view counts every database's statements.
    fl.pg.psql("SELECT pg_stat_statements_reset()", db="postgres")
    n = 40
    for i in range(n):
        if not send(fl.nodes[0].port, ["r%d@%s" % (i, cl.DESTS[i % 4])],
                    tag + "rt", 100 + i, None):
            return report("fleet.pgfast.roundtrips", False, "refused")
    like = "%%%srt%%" % tag
    done = wait_until(lambda: int(fl.pg.scalar(
        "SELECT count(*) FROM dr_recipients r JOIN dr_messages m ON "
        "m.id = r.msgid WHERE m.message_id LIKE '%s' AND r.status = 1"
        % like) or 0) == n, 60)
    # The outcome's events and body drop commit with it: no later.
    evs = int(fl.pg.scalar(
        "SELECT count(*) FROM dr_events e JOIN dr_messages m ON m.id = "
        "e.msgid WHERE m.message_id LIKE '%s' AND e.type = 'delivered'"
        % like) or 0)
    kept = int(fl.pg.scalar(
        "SELECT count(*) FROM dr_messages WHERE message_id LIKE '%s' AND "
        "body IS NOT NULL" % like) or 0)
    if evs != n or kept != 0:
        return report("fleet.pgfast.roundtrips", False,
                      "delivered: %d events of %d, %d bodies kept" %
                      (evs, n, kept))
    time.sleep(1)
    mine = ("FROM pg_stat_statements s JOIN pg_database d ON d.oid = "
            "s.dbid WHERE d.datname = '%s' AND s.userid = (SELECT oid FROM "
            "pg_roles WHERE rolname = '%s')" % (fl.pg.dbname, fl.pg.user))
    calls = int(fl.pg.psql("SELECT coalesce(sum(calls), 0) " + mine,
                           db="postgres")[0][0])
    per = calls / n
    top = fl.pg.psql("SELECT calls, left(regexp_replace(query, '\\s+', "
                     "' ', 'g'), 40) " + mine + " ORDER BY calls DESC "
                     "LIMIT 5", db="postgres")
    return report("fleet.pgfast.roundtrips", done and per <= MAX_PER_MSG,
                  "%s%.1f statements per message (at most %.0f); most "
                  "called: %s" % ("" if done else "not delivered; ", per,
                                  MAX_PER_MSG, top))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    parent = os.path.dirname(os.path.abspath(args.world))
    pg = None
    ok = True
    try:
        pg = PgServer(parent)
        pg.psql("ALTER SYSTEM SET shared_preload_libraries = "
                "'pg_stat_statements'", db="postgres")
        pg.stop()
        pg.start()
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                db="postgres")
        tag = os.urandom(4).hex()
        with Fleet(args.binary, args.world, n=1, store="postgres",
                   pg=pg) as fl:
            ok = test_rows(fl, tag) and ok
            ok = test_roundtrips(fl, tag) and ok
            san = cl.sanitizer_report(fl.nodes[0])
            if san:
                ok = report("fleet.pgfast.sanitizer", False, san)
    except (RuntimeError, OSError, smtplib.SMTPException) as e:
        report("fleet.pgfast", False, str(e).splitlines()[0])
        ok = False
    finally:
        if pg is not None:
            pg.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
