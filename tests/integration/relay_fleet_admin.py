#!/usr/bin/env python3
"""The operator's queue commands on a fleet with the queue in PostgreSQL
(issue 12, [queue] store = postgres): three nodes, a private PostgreSQL,
every message accepted by node1 and every command run on node2 or node3.

  list.*     `queue list` and `queue show` on another node see the message
  hold.*     hold from node2: neither a flush nor a retry sends it, no node
             delivers it; release from node3 delivers it within seconds;
             the events name the node that acted
  retry.*    retry from node2 sends a deferred message at once
  flush.*    flush DOMAIN from node3 sends that domain only, flush the rest
  delete.*   delete from node3: never delivered, body dropped, gone from list
  bounce.*   bounce from node2: the sender gets the DSN
  lease.*    while a node is attempting a recipient (a next hop that
             answers slowly), list on another node and node3's console
             say "attempting on nodeN" and count it active; a hold from
             another node lets the attempt finish, the recipient stays held
  deadlease.* the claim of a node that died mid-attempt (written into
             dr_recipients as node9's, the one thing not done by a real
             node): while it lasts, flush skips the recipient and retry
             does not make it due; once it has expired, retry clears it
             and the recipient is delivered at once
  console.*  the /queue page of node3 lists node1's message and holds it
             (HTTP with the page's CSRF token), and releases it from
             headless Chromium
  outage.*   with PostgreSQL stopped, `queue list` fails at once with one
             clear line (exit 78) and node3's /queue page answers with the
             error instead of hanging; once it is back, both work again

The next hops are one small SMTP server run here (relay_queue_hold's),
which answers 451 to RCPT for the domains it is told to refuse, and
slowly for those it is told to stall.

Usage: relay_fleet_admin.py --binary build/danerelay --world DIR
"""
import argparse
import http.cookiejar
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "world"))
from fleetlib import Fleet  # noqa: E402
from relay_queue_hold import Receiver, ReceiverSession  # noqa: E402
import worldlib  # noqa: E402
from worldlib import free_port, wait_until  # noqa: E402

DOMAINS = ("hold.test", "retry.test", "flushone.test", "flushtwo.test",
           "delete.test", "bounce.test", "slow.test", "deadlease.test",
           "console.test")
SENDER = "alice@sender.test"   # routed to the receiver: bounces arrive
STALL_S = 6                    # how long a stalled RCPT is answered late


FAILED = []


def report(name, ok, why=""):
    worldlib.report(name, ok, why)
    if not ok:
        FAILED.append(name)


class StallSession(ReceiverSession):
    """relay_queue_hold's session, with RCPT answered 451 after STALL_S
    for the domains in server.stall: an attempt that takes a while."""

    def rcpt(self, cmd, rcpts):
        addr = cmd[8:].split(">", 1)[0].lstrip("<").lower()
        if addr.rsplit("@", 1)[-1] in self.server.stall:
            time.sleep(STALL_S)
            self.reply("451 4.3.0 thinking about it")
            return
        super().rcpt(cmd, rcpts)


def receiver():
    rx = Receiver(free_port())
    rx.RequestHandlerClass = StallSession
    rx.stall = set()
    rx.refuse.clear()
    rx.refuse.update(DOMAINS)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    return rx


def qlist(node, *args):
    rc, out, err = node.cli("queue", "list", "--json", *args)
    try:
        return json.loads(out) if rc == 0 else []
    except ValueError:
        return []


def entry(node, qid):
    return [r for r in qlist(node) if r["msgid"] == qid]


def deferred(node, qid):
    rows = entry(node, qid)
    return rows and all(r["status"] == "queued" and r["attempts"] >= 1 and
                        r["attempting_on"] is None for r in rows)


def events(fl, qid, types=None):
    """(type, node, by) of qid's events in dr_events, in order."""
    rows = fl.pg.psql(f"SELECT type, node, coalesce(fields->>'by', '') "
                      f"FROM dr_events WHERE msgid = '{qid}' ORDER BY id")
    return [tuple(r) for r in rows if types is None or r[0] in types]


def submit_deferred(fl, rcpt, name):
    """A message to rcpt accepted by node1, deferred once by the fleet."""
    n1, n3 = fl.nodes[0], fl.nodes[2]
    code, qid, _ = n1.submit(SENDER, [rcpt], subject=name)
    ok = code == 250 and wait_until(lambda: deferred(n3, qid), 40)
    report(f"{name}.deferred-first", ok,
           f"code {code} {qid}: {entry(n3, qid) if qid else ''} "
           f"{n1.tail(5)}")
    return qid if ok else None


def check_list(fl, qid):
    n2, n3 = fl.nodes[1], fl.nodes[2]
    rc, out, err = n3.cli("queue", "list")
    report("list.other-node-text", rc == 0 and qid in out and
           "bob@hold.test" in out, f"exit {rc} {out}{err}")
    rows = qlist(n2, "--domain", "HOLD.test", "--state", "deferred")
    report("list.other-node-filter", [r["msgid"] for r in rows] == [qid],
           f"{rows}")
    rc, out, err = n2.cli("queue", "show", "--json", qid)
    try:
        m = json.loads(out)
    except ValueError:
        m = {}
    report("list.show-other-node",
           rc == 0 and m.get("sender") == SENDER and m.get("body_present")
           and "Subject: hold" in (m.get("headers") or "") and
           [r["recipient"] for r in m.get("recipients", [])] ==
           ["bob@hold.test"], f"exit {rc} {out[:300]}{err}")
    rowid = str(m["recipients"][0]["id"]) if m.get("recipients") else "0"
    rc, out, err = n3.cli("queue", "show", rowid)
    report("list.show-by-row-id", rc == 0 and f"message {qid}" in out and
           "bob@hold.test" in out, f"exit {rc} {out[:300]}{err}")


def check_hold(fl, rx):
    n1, n2, n3 = fl.nodes
    qid = submit_deferred(fl, "bob@hold.test", "hold")
    if qid is None:
        return
    check_list(fl, qid)
    rc, out, err = n2.cli("queue", "hold", qid)
    report("hold.held", rc == 0 and "1 recipient held" in out,
           f"exit {rc}: {out}{err}")
    rx.refuse.discard("hold.test")
    rc_f, out_f, _ = n3.cli("queue", "flush")
    rc_r, _, err_r = n3.cli("queue", "retry", qid)
    report("hold.flush-and-retry-skip-it",
           rc_f == 0 and rc_r == 1 and "nothing queued matches" in err_r,
           f"flush {rc_f} {out_f} retry {rc_r} {err_r}")
    time.sleep(4)       # four scans of each of the three nodes
    rows = entry(n1, qid)
    report("hold.no-node-delivers",
           not rx.took("bob@hold.test") and len(rows) == 1 and
           rows[0]["status"] == "held",
           f"receiver {len(rx.took('bob@hold.test'))}, queue {rows}")
    t0 = time.monotonic()
    rc, out, err = n3.cli("queue", "release", qid)
    got = wait_until(lambda: rx.took("bob@hold.test"), 15)
    report("hold.release-delivers",
           rc == 0 and bool(got) and b"Subject: hold" in got[0] and
           time.monotonic() - t0 < 10,
           f"exit {rc} {out}{err}; receiver {len(got or [])} after "
           f"{time.monotonic() - t0:.1f}s")
    wait_until(lambda: events(fl, qid, ("delivered",)), 10)
    ev = events(fl, qid, ("deferred", "held", "released", "delivered"))
    want = [("held", "node2", "operator"), ("released", "node3",
                                             "operator")]
    report("hold.events-name-the-node",
           [e for e in ev if e[0] in ("held", "released")] == want and
           ev[0][0] == "deferred" and ev[-1][0] == "delivered",
           f"{ev}")
    rc, out, err = n2.cli("trace", "--message-id", qid, "--json")
    report("hold.trace-other-node", rc == 0 and '"held"' in out and
           '"released"' in out, f"exit {rc} {out[:300]}{err}")


def check_retry(fl, rx):
    qid = submit_deferred(fl, "carol@retry.test", "retry")
    if qid is None:
        return
    rx.refuse.discard("retry.test")
    time.sleep(2)
    report("retry.waits-before", not rx.took("carol@retry.test"),
           "delivered before the retry")
    t0 = time.monotonic()
    rc, out, err = fl.nodes[1].cli("queue", "retry", qid)
    got = wait_until(lambda: rx.took("carol@retry.test"), 15)
    report("retry.goes-at-once",
           rc == 0 and "1 recipient due now" in out and bool(got) and
           time.monotonic() - t0 < 10,
           f"exit {rc} {out}{err}; receiver {len(got or [])} after "
           f"{time.monotonic() - t0:.1f}s")
    report("retry.event", ("retry", "node2", "operator") in events(fl, qid),
           f"{events(fl, qid)}")


def check_flush(fl, rx):
    n3 = fl.nodes[2]
    one = submit_deferred(fl, "dave@flushone.test", "flushone")
    two = submit_deferred(fl, "erin@flushtwo.test", "flushtwo")
    if one is None or two is None:
        return
    rx.refuse.discard("flushone.test")
    rx.refuse.discard("flushtwo.test")
    rc, out, err = n3.cli("queue", "flush", "FlushOne.test")
    got = wait_until(lambda: rx.took("dave@flushone.test"), 15)
    report("flush.domain-goes-at-once",
           rc == 0 and "1 recipient due now" in out and bool(got),
           f"exit {rc} {out}{err}; receiver {len(got or [])}")
    time.sleep(2)
    rows = entry(n3, two)
    report("flush.other-domain-stays",
           not rx.took("erin@flushtwo.test") and len(rows) == 1,
           f"receiver {len(rx.took('erin@flushtwo.test'))} queue {rows}")
    rc, out, err = n3.cli("queue", "flush")
    got = wait_until(lambda: rx.took("erin@flushtwo.test"), 15)
    report("flush.all", rc == 0 and "1 recipient due now" in out and
           bool(got), f"exit {rc} {out}{err}; receiver {len(got or [])}")
    report("flush.event", ("flushed", "node3", "operator") in events(fl, one),
           f"{events(fl, one)}")


def check_delete(fl, rx):
    qid = submit_deferred(fl, "frank@delete.test", "delete")
    if qid is None:
        return
    rc, out, err = fl.nodes[2].cli("queue", "delete", qid)
    rx.refuse.discard("delete.test")
    fl.nodes[1].cli("queue", "flush")
    time.sleep(3)
    body = fl.pg.scalar(f"SELECT body IS NULL FROM dr_messages "
                        f"WHERE id = '{qid}'")
    report("delete.deleted",
           rc == 0 and "1 recipient deleted" in out and
           not rx.took("frank@delete.test") and not entry(fl.nodes[0], qid)
           and body == "t",
           f"exit {rc} {out}{err}; receiver "
           f"{len(rx.took('frank@delete.test'))} body dropped {body}")
    report("delete.event", ("deleted", "node3", "operator") in
           events(fl, qid), f"{events(fl, qid)}")


def check_bounce(fl, rx):
    qid = submit_deferred(fl, "grace@bounce.test", "bounce")
    if qid is None:
        return
    rc, out, err = fl.nodes[1].cli("queue", "bounce", qid)
    got = wait_until(lambda: rx.took(SENDER), 20)
    report("bounce.dsn-to-sender",
           rc == 0 and "marked to bounce" in out and bool(got) and
           b"grace@bounce.test" in got[0] and
           not rx.took("grace@bounce.test"),
           f"exit {rc} {out}{err}; receiver {len(got or [])}; events "
           f"{fl.pg.psql(f'SELECT id, at, type, node, fields FROM dr_events WHERE msgid = {chr(39)}{qid}{chr(39)} ORDER BY id')}")
    wait_until(lambda: not entry(fl.nodes[0], qid), 10)
    report("bounce.left-the-queue", not entry(fl.nodes[0], qid),
           f"{entry(fl.nodes[0], qid)}")
    report("bounce.event", ("bounce-requested", "node2", "operator") in
           events(fl, qid), f"{events(fl, qid)}")


def leased(node, qid):
    rows = entry(node, qid)
    return rows[0] if rows and rows[0]["attempting_on"] else None


def check_lease(fl, rx):
    n1, n2, n3 = fl.nodes
    rx.stall.add("slow.test")
    code, qid, _ = n1.submit(SENDER, ["heidi@slow.test"], subject="slow")
    row = wait_until(lambda: leased(n3, qid), 20, step=0.1)
    report("lease.list-json-names-node",
           code == 250 and row and row["attempting_on"] in
           ("node1", "node2", "node3"), f"code {code} {row}")
    if not row:
        return
    rc, out, _ = n2.cli("queue", "list")
    active = qlist(n3, "--state", "active")
    report("lease.list-text-and-active",
           f"attempting on {row['attempting_on']}" in out and
           qid in [r["msgid"] for r in active],
           f"{out} active {active}")
    try:
        page = console_get(None, f"http://127.0.0.1:{fl.admin_port}"
                           "/queue?domain=slow.test")
    except OSError as e:
        page = f"{e}"
    report("lease.console-says-attempting",
           f"attempting on {row['attempting_on']}" in page and
           re.search(r'id="count-active".*?value">1<', page, re.S),
           page[-600:])
    # Hold from a node that is not attempting it, during the attempt.
    other = [n for i, n in enumerate(fl.nodes)
             if f"node{i + 1}" != row["attempting_on"]][0]
    rc, out, err = other.cli("queue", "hold", qid)
    report("lease.hold-during-attempt", rc == 0 and "1 recipient held" in out,
           f"exit {rc} {out}{err}")
    done = wait_until(lambda: (lambda r: r and r[0]["attempts"] >= 1 and
                               not r[0]["attempting_on"] and r)(
                                   entry(n1, qid)), STALL_S + 15)
    report("lease.attempt-finishes-stays-held",
           done and done[0]["status"] == "held" and
           done[0]["attempts"] == 1 and "thinking" in
           (done[0]["last_text"] or ""), f"{done}")
    rx.stall.discard("slow.test")
    # A held recipient is deleted too (and leaves the console's count).
    rc, out, err = n2.cli("queue", "delete", qid)
    report("lease.delete-held", rc == 0 and "1 recipient deleted" in out
           and not entry(n1, qid), f"exit {rc} {out}{err}")


def check_dead_lease(fl, rx):
    n2, n3 = fl.nodes[1], fl.nodes[2]
    qid = submit_deferred(fl, "judy@deadlease.test", "deadlease")
    if qid is None:
        return
    before = entry(n3, qid)[0]["next_attempt"]
    fl.pg.psql(f"UPDATE dr_recipients SET lease_node = 'node9', "
               f"lease_until = extract(epoch FROM now())::bigint + 3600 "
               f"WHERE msgid = '{qid}'")
    rows = entry(n2, qid)
    report("deadlease.listed", rows and rows[0]["attempting_on"] == "node9",
           f"{rows}")
    rx.refuse.discard("deadlease.test")
    rc_f, out_f, _ = n2.cli("queue", "flush", "deadlease.test")
    rc_r, out_r, err_r = n3.cli("queue", "retry", qid)
    time.sleep(3)
    rows = entry(n2, qid)
    report("deadlease.live-lease-kept",
           rc_f == 0 and "0 recipients due now" in out_f and rc_r == 0 and
           not rx.took("judy@deadlease.test") and rows and
           rows[0]["next_attempt"] == before and
           rows[0]["attempting_on"] == "node9",
           f"flush {rc_f} {out_f} retry {rc_r} {out_r}{err_r} receiver "
           f"{len(rx.took('judy@deadlease.test'))} queue {rows}")
    fl.pg.psql(f"UPDATE dr_recipients SET lease_until = "
               f"extract(epoch FROM now())::bigint - 1 WHERE msgid = '{qid}'")
    rows = entry(n2, qid)
    rc, out, err = n3.cli("queue", "retry", qid)
    got = wait_until(lambda: rx.took("judy@deadlease.test"), 15)
    report("deadlease.expired-retry-delivers",
           rows and rows[0]["attempting_on"] is None and rc == 0 and
           bool(got), f"before {rows}; retry {rc} {out}{err}; receiver "
           f"{len(got or [])}")


def console_get(opener, url):
    opener = opener or urllib.request.build_opener()
    with opener.open(url, timeout=15) as r:
        return r.read().decode("utf-8", "replace")


def check_console(fl, rx, admin_port):
    qid = submit_deferred(fl, "ivan@console.test", "console")
    if qid is None:
        return
    url = f"http://127.0.0.1:{admin_port}"
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    try:
        page = console_get(opener, url + "/queue?domain=console.test")
    except OSError as e:
        report("console.page", False, f"{e}")
        return
    report("console.lists-other-nodes-message",
           f'data-msgid="{qid}"' in page and "ivan@console.test" in page,
           page[-400:])
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    form = {"action": "hold", "msg": qid, "csrf": m.group(1) if m else "",
            "domain": "console.test"}
    try:
        page = console_get(opener, urllib.request.Request(
            url + "/queue", data=urllib.parse.urlencode(form).encode()))
    except OSError as e:
        page = f"{e}"
    rows = entry(fl.nodes[0], qid)
    report("console.hold",
           "1 recipient held" in page and rows and
           rows[0]["status"] == "held" and
           re.search(r'id="count-held".*?value">1<', page, re.S),
           f"{page[-400:]} queue {rows}")
    report("console.event-names-node",
           ("held", "node3", "console") in events(fl, qid),
           f"{events(fl, qid)}")
    check_console_browser(fl, url, qid)


def check_console_browser(fl, url, qid):
    """Release the held message from headless Chromium (node3's page)."""
    try:
        from browser import Browser
        from relay_console_queue import act_on_row, rows
        with Browser() as b:
            b.get(url + "/queue?state=held")
            got = rows(b).get("ivan@console.test")
            report("console.browser-lists-held",
                   got is not None and got[1] == "held" and got[2] == qid,
                   f"{got}")
            res = act_on_row(b, url, "ivan@console.test", "release")
            errs = b.console_errors()
    except Exception as e:   # a missing browser, a page that broke
        report("console.browser", False, f"{type(e).__name__}: {e}")
        return
    e = entry(fl.nodes[0], qid)
    report("console.browser-release",
           res is not None and "1 recipient released" in res and e and
           e[0]["status"] == "queued" and not errs,
           f"result {res!r} queue {e} errors {errs[:3]}")
    report("console.browser-event",
           ("released", "node3", "console") in events(fl, qid),
           f"{events(fl, qid)}")


def check_outage(fl, admin_port):
    n2 = fl.nodes[1]
    url = f"http://127.0.0.1:{admin_port}/queue"
    fl.pg.stop()
    try:
        t0 = time.monotonic()
        rc, out, err = n2.cli("queue", "list", timeout=30)
        took = time.monotonic() - t0
        report("outage.command-fails-clearly",
               rc == 78 and err.count("\n") == 1 and "postgres" in err
               and took < 10, f"exit {rc} after {took:.1f}s: {out}{err}")
        t0 = time.monotonic()
        try:
            page = console_get(None, url)
        except OSError as e:
            page = f"{e}"
        took = time.monotonic() - t0
        report("outage.console-says-so",
               'class="error"' in page and took < 15,
               f"after {took:.1f}s: {page[-300:]}")
    finally:
        fl.pg.start()
    ok = wait_until(lambda: n2.cli("queue", "list")[0] == 0, 15)
    page = wait_until(lambda: (lambda p: 'class="error"' not in p and p)(
        console_get(None, url)), 15)
    report("outage.back-after-restart", ok and page and
           'id="count-active"' in page, f"list {ok}; page "
           f"{(page or '')[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    rx = receiver()
    extra = ("[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
             f"command_timeout = {STALL_S + 20}\n")
    for d in DOMAINS + ("sender.test",):
        extra += (f"[domain {d}]\nroute = [127.0.0.1]:"
                  f"{rx.server_address[1]}\nsecurity = may\n")
    admin_port = free_port()
    try:
        fl = Fleet(args.binary, args.world, n=3, store="postgres",
                   extra=extra, start=False)
    except RuntimeError as e:
        report("fleet.start", False, f"{e}")
        return 1
    try:
        with open(fl.nodes[2].conf, "a") as f:
            f.write(f"\n[admin]\nlisten = 127.0.0.1:{admin_port}\n")
        fl.admin_port = admin_port
        for n in fl.nodes:
            n.start()
        check_hold(fl, rx)
        check_retry(fl, rx)
        check_flush(fl, rx)
        check_delete(fl, rx)
        check_bounce(fl, rx)
        check_lease(fl, rx)
        check_dead_lease(fl, rx)
        check_console(fl, rx, admin_port)
        check_outage(fl, admin_port)
    except RuntimeError as e:
        report("fleet.run", False, f"{e}")
    finally:
        fl.close()
        rx.shutdown()
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
