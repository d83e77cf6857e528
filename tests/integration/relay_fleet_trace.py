#!/usr/bin/python3
"""One trace for the fleet (issue 12): three relay nodes with their own
queues (store = sqlite) and a private PostgreSQL (fleetlib.Fleet). Mail
accepted by node1 (delivered, and blocked by DANE) and by node2 is found
by `danerelay trace` on node2 and node3 with the node that accepted each
message and the node of each attempt; `report` on node3 counts both
nodes' mail; node3's console (headless Chromium, tests/world/browser.py)
shows node1's message with "Accepted by node1" and node1 on each attempt,
its /report?format=json is the fleet's report, and the overview counts
the fleet. With the database stopped, node3's `trace` says "fleet
database unreachable: this node only" and its console shows the banner.

    relay_fleet_trace.py --binary build/danerelay --world DIR
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "world"))
from fleetlib import Fleet  # noqa: E402
from worldlib import (free_port, log_has, report, rewrite_config,  # noqa
                      wait_until)

EXTRA = """[delivery]
retry_schedule = 1h
delay_warning = 0
"""
SENDER = "postmaster@ee-311.test"
LOCAL_ONLY = "fleet database unreachable: this node only"


def check(name, cond, why=""):
    report(name, bool(cond), why)
    return bool(cond)


def trace(node, *args):
    rc, out, err = node.cli("trace", "--json", *args)
    try:
        return rc, json.loads(out) if out.strip() else [], err
    except ValueError:
        return rc, [], err + out


def settled(node, qid):
    """node's trace of qid, once it has its verdict event."""
    rc, tr, err = trace(node, "--message-id", qid)
    if tr and any(e["type"] in ("delivered", "deferred")
                  for e in tr[0]["events"]):
        return tr[0]
    return None


def nodes_of(m):
    return m.get("node"), {e.get("node") for e in m["events"]}


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def test_cli(fl, sent):
    ok = True
    for name, viewer in (("node2", fl.nodes[1]), ("node3", fl.nodes[2])):
        for qid, (origin, dom) in sent.items():
            m = wait_until(lambda: settled(viewer, qid), 30, 0.5)
            acc, evn = nodes_of(m) if m else (None, None)
            ok &= check(f"{name} traces {dom} from {origin}",
                        m and acc == origin and evn == {origin},
                        f"{m}")
    rc, out, err = fl.nodes[2].cli("trace", "--domain", "ee-311.test")
    ok &= check("trace text shows the nodes", rc == 0 and
                " node=node1\n" in out and " node=node2\n" in out and
                "attempt" in out and "node=node1" in out.split(
                    "attempt", 1)[1], out + err)
    rc, out, err = fl.nodes[2].cli("report", "--period", "1h")
    ok &= check("report text says whose report it is", rc == 0 and
                "Transit security report of every node" in out and
                "the fleet's database holds events since" in out, out + err)
    rc, out, err = fl.nodes[2].cli("report", "--json", "--period", "1h")
    rep = json.loads(out) if rc == 0 else {}
    blocked = {b["domain"]: (b["messages"], b["nodes"])
               for b in rep.get("blocked", [])}
    ok &= check("node3's report counts node1's and node2's mail",
                blocked == {"dane-ta-wrong-name.test": (1, ["node1"])} and
                rep["sent"]["total"] == 2 and
                rep["sent"]["totals"]["dane"] == 2, f"{err} {rep}")
    return ok


def test_console(fl, url, sent):
    from browser import Browser
    ok = True
    node1_qid = [q for q, v in sent.items()
                 if v == ("node1", "ee-311.test")][0]
    with Browser() as b:
        b.get(f"{url}/trace/{node1_qid}")
        ok &= check("console: accepted by node1",
                    b.text("#accepted-by") == "node1",
                    b.text("main"))
        rows = b.table("#timeline")
        att = [r for r in rows if len(r) >= 5 and
               r[1] == "delivery attempt"]
        ok &= check("console: the node of each attempt",
                    att and all(r[3] == "node1" for r in att), f"{rows}")
        ok &= check("console: queued on another node, said",
                    "Queued on node1" in (b.text("#elsewhere") or ""),
                    b.text("main"))
        b.get(f"{url}/trace?domain=ee-311.test")
        res = b.table("#trace-results")
        ok &= check("console: search lists both nodes' mail",
                    sorted(r[-1] for r in res) == ["node1", "node2"],
                    f"{res}")
        b.get(f"{url}/report?period=1h")
        rows = b.table("#blocked")
        ok &= check("console: the blocked domain with its node",
                    [(r[0], r[-1]) for r in rows] ==
                    [("dane-ta-wrong-name.test", "node1")], f"{rows}")
        errs = b.console_errors()
        ok &= check("console: no script or CSP error", not errs, f"{errs}")
    page = json.loads(get(f"{url}/report?period=1h&format=json"))
    rc, out, err = fl.nodes[0].cli("report", "--json", "--period", "1h")
    cli = json.loads(out)
    ok &= check("console /report is the fleet's report",
                page["blocked"] == cli["blocked"] and
                page["sent"]["totals"] == cli["sent"]["totals"],
                f"{page['blocked']} / {cli['blocked']}")
    html = get(f"{url}/")
    counts = {k: re.search(rf'id="hour-{k}">.*?class="value">(\d+)', html)
              for k in ("delivered", "blocked")}
    counts = {k: int(m.group(1)) if m else None for k, m in counts.items()}
    ok &= check("console overview counts the fleet's last hour",
                "Last hour, every node" in html and
                counts == {"delivered": 2, "blocked": 1}, f"{counts}")
    return ok


def fleet_answers(url):
    """node3's console gives the fleet's report (node3 itself accepted
    nothing, so its own report has nothing blocked)."""
    page = json.loads(get(f"{url}/report?period=1h&format=json"))
    return bool(page["blocked"])


def test_outage(fl, url, sent):
    fl.pg.stop()
    try:
        qid = next(iter(sent))
        rc, out, err = fl.nodes[2].cli("trace", "--message-id", qid)
        ok = check("database away: node3's trace says this node only",
                   rc == 1 and LOCAL_ONLY in err, f"exit {rc}: {err}")
        html = get(f"{url}/report?period=1h")
        ok &= check("database away: the console's banner",
                    'id="fleet-unreachable"' in html and
                    "Fleet database unreachable: this node only" in html,
                    html[:600])
    finally:
        fl.pg.start()
    ok &= check("database back: the console reads the fleet again",
                wait_until(lambda: fleet_answers(url), 15, 0.5))
    # A restart between two pages: the console's connection is broken
    # and the next page opens a new one, without a banner (pg_ready
    # reconnects at most every 2 s: wait that out first).
    time.sleep(2.5)
    fl.pg.stop()
    fl.pg.start()
    html = get(f"{url}/report?period=1h")
    ok &= check("database restarted: the next page is the fleet's",
                'id="fleet-unreachable"' not in html and
                fleet_answers(url), html[:300])
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    try:
        fl = Fleet(binary, args.world, n=3, store="sqlite", extra=EXTRA,
                   sync_interval="1s", start=False)
    except Exception as e:
        check("fleet trace: the fleet starts", False, str(e))
        return 1
    ok = True
    try:
        port = free_port()
        rewrite_config(fl.nodes[2], lambda s: s.setdefault(
            "admin", {}).update({"listen": f"127.0.0.1:{port}"}))
        url = f"http://127.0.0.1:{port}"
        for r in fl.nodes:
            r.start()
        for r in fl.nodes[:2]:
            if not wait_until(lambda: log_has(r, "self-test passed"), 30):
                raise RuntimeError("DNSSEC self-test: " + r.tail())
        sent = {}
        for origin, node, dom in [("node1", fl.nodes[0], "ee-311.test"),
                                  ("node1", fl.nodes[0],
                                   "dane-ta-wrong-name.test"),
                                  ("node2", fl.nodes[1], "ee-311.test")]:
            code, qid, msgid = node.submit(SENDER, [f"fleet@{dom}"],
                                           subject=f"fleet {origin}")
            if code != 250:
                raise RuntimeError(f"{origin} {dom}: {code}")
            sent[qid] = (origin, dom)
        ok &= test_cli(fl, sent)
        ok &= test_console(fl, url, sent)
        ok &= test_outage(fl, url, sent)
    except Exception as e:
        check("fleet trace", False, f"{type(e).__name__}: {e}")
        ok = False
    finally:
        fl.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
