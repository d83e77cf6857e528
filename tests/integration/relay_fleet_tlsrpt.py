#!/usr/bin/python3
"""TLS-RPT for a fleet (issue 12; RFC 8460 §4: one report per reporting
organisation, policy domain and day, with the sessions of the whole
organisation). A real PostgreSQL (tests/world/pgsrv.py) and three nodes
(fleetlib.Fleet, store = sqlite).

  - mail to ee-311.test (DANE valid; rua mailto: and https:) and
    ee-wrong-digest.test (DANE failing; rua mailto:) through all three
    nodes; each node's copying thread pushes its counters: the database
    holds each node's absolute counts, their sum is the sum of the nodes'
    local stores, and pushing again changes nothing;
  - `danerelay tlsrpt send --day D` on the three nodes at once: exactly
    one report per domain reaches each destination (the world's mail
    receivers, the https collector), with the counts of all three nodes,
    schema-valid (python3-jsonschema), DKIM-signed (python3-dkim), one
    report-id for the mail and the POST; `tlsrpt list` on any node shows
    the sums as sent; a second run sends nothing;
  - PostgreSQL stopped while the nodes deliver: the counts stay in the
    nodes' stores and arrive, once each, when it is back;
  - killed halfway: the collector stalls (its process stopped), node1's
    `tlsrpt send` has mailed the report and is in the middle of the POST
    when it is killed with SIGKILL; node2's run within the lease leaves
    the destination alone, after the lease it POSTs the report node1
    built: one POST, one mail, same report-id, the fleet's counts;
The nodes' own daily run is off ([tlsrpt] send = no): the test triggers
the runs. Report mail queued by `tlsrpt send` goes out through the node's
running relay.

  - a claim on a report left by a dead node: the report waits for its
    lease, then another node builds and sends it;
  - the relays' own daily run on the three nodes: one report;
  - the console's /tlsrpt on one node shows the fleet's sums and outbox;
  - the old code (the same nodes without [fleet] postgres) sends three
    reports per destination, one per node, each with its own counts.

Usage: relay_fleet_tlsrpt.py --binary PATH --world DIR
"""
import argparse
import datetime
import email
import email.policy
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from fleetlib import Fleet  # noqa: E402
import worldlib  # noqa: E402
from worldlib import (free_port, parse_ini, rewrite_config,  # noqa: E402
                      wait_until)
import relay_tlsrpt as rt  # noqa: E402

FAILED = []


def report(name, ok, why=""):
    worldlib.report(name, ok, why)
    if not ok:
        FAILED.append(name)

SENDER = "postmaster@ee-311.test"
LEASE = 6  # [tlsrpt] lease: a POST gets half of it (3 s)
EXTRA = ("[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
         "[tlsrpt]\norganization = relay.test\n"
         "contact = tlsrpt@reporter.test\nsend = no\n"
         f"lease = {LEASE}s\npost_timeout = 30s\n")
# messages per node and domain (a node sends those of one domain over
# one connection: one session, RFC 8460 counts sessions)
MAIL = {"ee-311.test": (2, 1, 1), "ee-wrong-digest.test": (1, 1, 1)}


def local_conf(node):
    """node's config without [fleet]: how the same node ran before."""
    sections = parse_ini(open(node.conf).read())
    sections.pop("fleet", None)
    path = os.path.join(node.dir, "local.conf")
    with open(path, "w") as f:
        for sec, kv in sections.items():
            f.write(f"[{sec}]\n" + "".join(f"{k} = {v}\n"
                                           for k, v in kv.items()) + "\n")
    return path


def cli(node, conf, *args, timeout=60):
    p = subprocess.run([node.binary, "-c", conf] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def listed(node, conf, day):
    rc, out, err = cli(node, conf, "tlsrpt", "list", "--json", "--day", day)
    try:
        return {e["domain"]: e for e in json.loads(out)}
    except ValueError:
        return {}


def totals(doc):
    ok = sum(p["summary"]["total-successful-session-count"]
             for p in doc.get("policies", []))
    bad = sum(p["summary"]["total-failure-session-count"]
              for p in doc.get("policies", []))
    return ok, bad


def mail_report(raw):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in m.walk():
        if part.get_content_type() == "application/tlsrpt+gzip":
            return json.loads(gzip.decompress(part.get_payload(decode=True)))
    return {}


def check_one_report(world, dom, ymd, want, dnsfunc, name, post):
    """One mail (and one POST when post) for dom and day, the counts want,
    schema-valid, DKIM-signed, one report-id. Returns the report-id."""
    mails = wait_until(lambda: rt.report_mails(world, dom, ymd), 30) or []
    time.sleep(0.5)  # a second one would be here by now too
    mails = rt.report_mails(world, dom, ymd)
    posts = rt.collected(world, dom, ymd) if post else []
    why = []
    if len(mails) != 1:
        why.append(f"{len(mails)} report mails")
    if post and len(posts) != 1:
        why.append(f"{len(posts)} POSTs")
    docs = [mail_report(raw) for _, raw in mails] + [d for _, d in posts]
    for doc in docs:
        errs = rt.tlsrpt_schema.errors(doc) if rt.tlsrpt_schema else \
            ["python3-jsonschema missing"]
        why += errs[:2]
        if totals(doc) != want:
            why.append(f"counts {totals(doc)}, want {want}")
    if len({d.get("report-id") for d in docs}) != 1:
        why.append("report-ids %s" % [d.get("report-id") for d in docs])
    for _, raw in mails:
        if rt.dkim is None or not rt.dkim.verify(raw, dnsfunc=dnsfunc,
                                                 tlsrpt="strict"):
            why.append("DKIM signature does not verify")
    report(name, not why, "; ".join(why))
    return docs[0].get("report-id") if docs else None


def sums_in_db(pg, day):
    rows = pg.psql("SELECT domain, sum(successes), sum(failures) FROM "
                   f"dr_tlsrpt_policies WHERE day = '{day}' GROUP BY domain")
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def send_all(nodes, day):
    procs = [subprocess.Popen([n.binary, "-c", n.conf, "tlsrpt", "send",
                               "--day", day], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for n in nodes]
    return [(p.wait(90), *p.communicate()) for p in procs]


def local_sums(fl, day, local):
    """Once every message was tried: what each node counted alone (its
    local store, as before the fleet) and the sums per domain."""
    def tried():
        return all(not [e for e in n.queue() if e["attempts"] < 1]
                   for n in fl.nodes)
    wait_until(tried, 60)
    per_node = [listed(n, c, day) for n, c in zip(fl.nodes, local)]
    want = {d: (sum(p.get(d, {}).get("successful", 0) for p in per_node),
                sum(p.get(d, {}).get("failed", 0) for p in per_node))
            for d in MAIL}
    return per_node, want


def phase_today(args, fl, day, local):
    ymd = day.replace("-", "")
    for dom, per in MAIL.items():
        for node, k in zip(fl.nodes, per):
            for _ in range(k):
                node.submit(SENDER, [f"user@{dom}"])
    per_node, want = local_sums(fl, day, local)
    report("counts.every-node-counted",
           all(p.get(d) for p in per_node for d in MAIL) and
           want["ee-311.test"][0] >= 3 and want["ee-wrong-digest.test"][1]
           >= 3, f"{per_node}")
    ok = wait_until(lambda: sums_in_db(fl.pg, day) == want, 20)
    report("push.database-holds-the-sum-of-the-nodes", ok,
           f"{sums_in_db(fl.pg, day)} want {want}")
    nodes_rows = fl.pg.psql("SELECT node, count(*) FROM dr_tlsrpt_policies "
                            f"WHERE day = '{day}' GROUP BY node")
    time.sleep(2.5)  # two more pushes of every node
    report("push.idempotent",
           sums_in_db(fl.pg, day) == want and len(nodes_rows) == 3,
           f"{sums_in_db(fl.pg, day)} {nodes_rows}")
    res = send_all(fl.nodes, day)
    prepared = sum(int(out.split(" domains prepared")[0].split()[-1])
                   for _, out, _ in res if " domains prepared" in out)
    report("send.three-nodes-at-once-prepare-each-domain-once",
           prepared == len(MAIL), f"{prepared} {res}")
    dnsfunc = rt.world_dns(args.world)
    check_one_report(args.world, "ee-311.test", ymd, want["ee-311.test"],
                     dnsfunc, "send.one-report.ee-311.test", True)
    check_one_report(args.world, "ee-wrong-digest.test", ymd,
                     want["ee-wrong-digest.test"], dnsfunc,
                     "send.one-report.ee-wrong-digest.test", False)
    states = fl.pg.psql("SELECT domain, state, report_id IS NOT NULL FROM "
                        f"dr_tlsrpt_reports WHERE day = '{day}'")
    report("send.reports-done-in-database",
           sorted(states) == sorted([[d, "3", "t"] for d in MAIL]),
           f"{states}")
    shown = listed(fl.nodes[1], fl.nodes[1].conf, day)
    report("list.fleet-sums-and-sent-on-any-node",
           all(shown.get(d, {}).get("successful") == want[d][0] and
               shown.get(d, {}).get("failed") == want[d][1] and
               shown.get(d, {}).get("sent") for d in MAIL), f"{shown}")
    rc, out, err = fl.nodes[2].cli("tlsrpt", "send", "--day", day)
    time.sleep(1)
    report("send.second-run-sends-nothing",
           " 0 domains prepared" in out and "0 mails queued, 0 posted" in out
           and len(rt.report_mails(args.world, "ee-311.test", ymd)) == 1 and
           len(rt.collected(args.world, "ee-311.test", ymd)) == 1, out + err)
    return want


def phase_away(args, fl, day, local):
    """PostgreSQL stopped while the nodes deliver: the counts stay in the
    nodes' stores and reach the database, once each, when it is back."""
    fl.pg.stop()
    try:
        for node in fl.nodes:
            node.submit(SENDER, ["user@ee-311.test"])
        want = local_sums(fl, day, local)[1]
    finally:
        fl.pg.start()
    ok = wait_until(lambda: sums_in_db(fl.pg, day) == want, 30)
    time.sleep(2)
    report("away.counts-pushed-once-when-the-database-returns",
           ok and sums_in_db(fl.pg, day) == want and
           want["ee-311.test"][0] >= 6, f"{sums_in_db(fl.pg, day)} {want}")
    return want


def httpsd_pid(world):
    return int(open(os.path.join(world, "run", "httpsd.pid")).read())


def outbox_row(pg, day, like):
    rows = pg.psql("SELECT state, coalesce(lease_node, ''), attempts FROM "
                   f"dr_tlsrpt_outbox WHERE day = '{day}' AND domain = "
                   f"'ee-311.test' AND uri LIKE '{like}'")
    return rows[0] if rows else None


def pushed(pg, day, counts):
    """Counters of ee-311.test on day from node1..3, (successes,
    failures) each, as their pushes would have left them."""
    for i, (ok, bad) in enumerate(counts):
        pg.psql("INSERT INTO dr_tlsrpt_policies (node, day, domain, type, "
                "strings, mx, successes, failures) VALUES "
                f"('node{i + 1}', '{day}', 'ee-311.test', 0, '[]', '[]', "
                f"{ok}, {bad})")


def phase_killed(args, fl, yday):
    """Counters of yesterday from each node (as their pushes left them);
    node1 dies in the middle of its POST."""
    ymd = yday.replace("-", "")
    pushed(fl.pg, yday, [(5, 0), (6, 1), (7, 2)])
    want = (18, 3)
    pid = httpsd_pid(args.world)
    os.kill(pid, signal.SIGSTOP)
    try:
        n1 = fl.nodes[0]
        proc = subprocess.Popen([n1.binary, "-c", n1.conf, "tlsrpt", "send",
                                 "--day", yday], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

        def in_flight():
            post = outbox_row(fl.pg, yday, "https:%")
            mail = outbox_row(fl.pg, yday, "mailto:%")
            return post == ["0", "node1", "0"] and mail and mail[0] == "1"
        flying = wait_until(in_flight, 20, step=0.05)
        proc.kill()  # SIGKILL
        proc.wait()
        report("killed.node1-died-with-the-post-in-flight",
               flying and proc.returncode == -signal.SIGKILL,
               f"{outbox_row(fl.pg, yday, 'https:%')} rc={proc.returncode}")
    finally:
        os.kill(pid, signal.SIGCONT)
    rc, out, err = fl.nodes[1].cli("tlsrpt", "send", "--day", yday)
    time.sleep(0.5)
    report("killed.lease-keeps-node2-off-until-it-lapses",
           " 0 domains prepared" in out and " 0 posted" in out and
           not rt.collected(args.world, "ee-311.test", ymd), out + err)
    time.sleep(LEASE + 1)
    rc, out, err = fl.nodes[1].cli("tlsrpt", "send", "--day", yday)
    report("killed.node2-finishes-after-the-lease",
           rc == 0 and " 0 domains prepared" in out and " 1 posted" in out,
           f"rc={rc} {out} {err}")
    dnsfunc = rt.world_dns(args.world)
    check_one_report(args.world, "ee-311.test", ymd, want, dnsfunc,
                     "killed.one-report-once-with-the-fleet-counts", True)


def phase_lapsed_claim(args, fl, day):
    """A node that claimed a report and died before preparing it (node9,
    its claim in the database): while its lease runs no other node
    builds the report (exit 75: the day is looked at again); after it,
    node2 builds and sends it."""
    ymd = day.replace("-", "")
    pushed(fl.pg, day, [(2, 0), (3, 0), (1, 1)])
    fl.pg.psql("INSERT INTO dr_tlsrpt_reports (day, domain, state, node, "
               f"lease_until) VALUES ('{day}', 'ee-311.test', 0, 'node9', "
               "extract(epoch from now())::bigint + 3)")
    rc, out, err = fl.nodes[1].cli("tlsrpt", "send", "--day", day)
    report("lapsed.claim-held-by-a-dead-node-waits",
           rc == 75 and " 0 domains prepared" in out and
           not rt.collected(args.world, "ee-311.test", ymd), f"rc={rc} {out}")
    time.sleep(4)
    rc, out, err = fl.nodes[1].cli("tlsrpt", "send", "--day", day)
    report("lapsed.another-node-builds-it-after-the-lease",
           rc == 0 and " 1 domains prepared" in out and " 1 posted" in out,
           f"rc={rc} {out} {err}")
    check_one_report(args.world, "ee-311.test", ymd, (6, 1),
                     rt.world_dns(args.world), "lapsed.one-report", True)


def phase_daily(args, fl, dday):
    """The relays' own daily run ([tlsrpt] send = yes, max_delay = 0), on
    every node at once: one report of the day before yesterday."""
    ymd = dday.replace("-", "")
    pushed(fl.pg, dday, [(1, 0), (2, 0), (4, 0)])

    def daily(sections):
        sections["tlsrpt"]["send"] = "yes"
        sections["tlsrpt"]["max_delay"] = "0"
    port = free_port()
    for node in fl.nodes:
        node.stop()
        rewrite_config(node, daily)
    rewrite_config(fl.nodes[2], lambda s: s.setdefault("admin", {}).update(
        {"listen": f"127.0.0.1:{port}"}))
    for node in fl.nodes:
        node.start()
    wait_until(lambda: rt.collected(args.world, "ee-311.test", ymd), 30)
    check_one_report(args.world, "ee-311.test", ymd, (7, 0),
                     rt.world_dns(args.world),
                     "daily.three-relays-send-one-report", True)
    time.sleep(2)  # the other nodes' runs have looked by now
    report("daily.still-one-post",
           len(rt.collected(args.world, "ee-311.test", ymd)) == 1 and
           fl.pg.scalar("SELECT state FROM dr_tlsrpt_reports WHERE day = "
                        f"'{dday}'") == "3", "")
    return f"http://127.0.0.1:{port}"


def phase_console(url, day, yday, want):
    """The console's /tlsrpt on node3: the fleet's sums and outbox."""
    with urllib.request.urlopen(f"{url}/tlsrpt?days=3", timeout=30) as r:
        html = r.read().decode()
    rows = {}
    for m in re.finditer(r'<tr class="tp-sent-row" data-domain="([^"]+)" '
                         r'data-day="([^"]+)">(.*?)</tr>', html, re.S):
        rows.setdefault((m.group(1), m.group(2)), []).append(m.group(3))
    today = " ".join(rows.get(("ee-311.test", day), []))
    killed = " ".join(rows.get(("ee-311.test", yday), []))

    def counts(text):  # over the policies (a policy per TLSA RRset order)
        pols = re.findall(r"tlsa: (\d+) successful, (\d+) failed", text)
        return (sum(int(a) for a, _ in pols), sum(int(b) for _, b in pols))
    report("console.tlsrpt-shows-the-fleet",
           counts(today) == want and counts(killed) == (18, 3) and
           killed.count("tp-sent ") == 2 and today.count("tp-sent ") == 2,
           f"{today[:300]} | {killed[:300]}")


def phase_old_code(args, fl, day, local, want):
    """The same nodes without [fleet]: each its own report."""
    ymd = day.replace("-", "")
    before = {d["report-id"]
              for _, d in rt.collected(args.world, "ee-311.test", ymd)}
    for node, conf in zip(fl.nodes, local):
        cli(node, conf, "tlsrpt", "send", "--day", day)
    new = [d for _, d in rt.collected(args.world, "ee-311.test", ymd)
           if d["report-id"] not in before]
    counts = sorted(totals(d)[0] for d in new)
    report("old-code.three-reports-one-per-node",
           len(new) == 3 and sum(counts) == want[0] and
           counts != [want[0]] * 3, f"{len(new)} {counts}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    # A timeout's SIGTERM runs the finally clauses: the world's HTTPS
    # server is never left stopped, the nodes and PostgreSQL are stopped.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    now = datetime.datetime.now(datetime.timezone.utc)
    day = now.strftime("%Y-%m-%d")
    yday = (now - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    dday = (now - datetime.timedelta(days=2)).strftime("%Y-%m-%d")
    tday = (now - datetime.timedelta(days=3)).strftime("%Y-%m-%d")
    try:
        fl = Fleet(args.binary, args.world, n=3, store="sqlite", extra=EXTRA)
    except RuntimeError as ex:
        report("fleet.start", False, str(ex)[-400:])
        return 1
    try:
        local = [local_conf(n) for n in fl.nodes]
        phase_today(args, fl, day, local)
        want = phase_away(args, fl, day, local)
        phase_killed(args, fl, yday)
        phase_lapsed_claim(args, fl, tday)
        url = phase_daily(args, fl, dday)
        phase_console(url, day, yday, want["ee-311.test"])
        phase_old_code(args, fl, day, local, want["ee-311.test"])
    finally:
        fl.close()
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
