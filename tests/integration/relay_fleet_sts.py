#!/usr/bin/python3
"""The fleet's one MTA-STS cache (issue 12, RFC 8461 §5: a policy any node
has seen protects every node): two `danerelay serve` nodes with local
queues and a real PostgreSQL (tests/world/pgsrv.py). node2's [mta_sts]
https_port is a closed port: it cannot fetch any policy itself.

  sts.node1-fetched      node1 delivers to sts-enforce.test and is blocked
                         at sts-enforce-mx-mismatch.test (enforce policies
                         of the world, fetched over its HTTPS): both
                         policies are in node1's local cache
  sts.shared             both are in dr_sts_policies, node = node1, with
                         node1's id, body and fetch time
  sts.marks              node1's sts_mark has moved, not past its newest
                         fetch + 1; node2's sts_pulled has moved
  sts.node2-cache        within a few sync intervals node2's local cache
                         holds the same rows (id, body, fetched_at),
                         though node2 never reached a policy host
  sts.node2-enforces     node2 defers the mail to the MX that the policy
                         does not list (4.7.5, security sts), and never
                         delivers it
  sts.node2-delivers     node2 delivers to sts-enforce.test under the
                         policy (security sts)
  sts.pg-down-*          PostgreSQL stopped: node2 keeps its cache and
                         enforces the same way, mail flows; PostgreSQL
                         back: the sync goes on (a policy fetched by node2
                         itself, with its port opened, reaches node1)
  sts.cli-sync-refills   node2 stopped, its cache emptied: `danerelay
                         fleet sync` takes every policy of the fleet again

Without the shared cache node2's fetch fails (connection refused) and,
having no policy, it delivers to the unlisted MX as though the domain had
no MTA-STS (§3.3): sts.node2-cache and sts.node2-enforces fail.

Usage: relay_fleet_sts.py --binary PATH --world DIR  (PASS/FAIL lines)
"""
import argparse
import hashlib
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fleetlib import Fleet  # noqa: E402
import worldlib  # noqa: E402
from worldlib import (free_port, log_has, rewrite_config,  # noqa: E402
                      wait_until, world_mail)

FAILED = []

GOOD = "sts-enforce.test"                # the policy lists its MX
BLOCKED = "sts-enforce-mx-mismatch.test"  # the policy lists another host
LATER = "sts-enforce-lenient.test"        # fetched by node2 itself, late
SENDER = "postmaster@client.test"
EXTRA = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    worldlib.report(name, ok, why)


def ro(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def cache_rows(node):
    """{domain: (id, sha256 of the body, fetched_at, expires_at)} of the
    node's local MTA-STS cache."""
    path = os.path.join(node.dir, "queue", "mta-sts.db")
    if not os.path.exists(path):
        return {}
    db = ro(path)
    try:
        return {r[0]: (r[1], hashlib.sha256(r[2].encode()).hexdigest(),
                       r[3], r[4])
                for r in db.execute("SELECT domain, id, policy, "
                                    "fetched_at, expires_at FROM policies")}
    finally:
        db.close()


def db_rows(fl):
    """The same of dr_sts_policies, with the node that fetched each."""
    rows = fl.pg.psql("SELECT domain, id, encode(sha256(convert_to(policy, "
                      "'UTF8')), 'hex'), fetched_at, expires_at, node "
                      "FROM dr_sts_policies")
    return {r[0]: (r[1], r[2], int(r[3]), int(r[4]), r[5]) for r in rows}


def attempts(node, qid):
    """The attempt events of a message in the node's own queue."""
    db = ro(os.path.join(node.dir, "queue", "queue.db"))
    try:
        return [json.loads(r[0] or "{}") for r in db.execute(
            "SELECT fields FROM events WHERE msgid = ? AND type = "
            "'attempt' ORDER BY id", (qid,))]
    finally:
        db.close()


def send(node, domain):
    code, qid, msgid = node.submit(SENDER, [f"user@{domain}"],
                                   subject=f"fleet sts {domain}")
    if code != 250:
        raise RuntimeError(f"{domain}: submission answered {code}")
    return qid, msgid


def delivered(node, world, sent):
    """'' when the message arrived once, its last attempt under the
    policy (security sts); else what is seen."""
    qid, msgid = sent
    ok = wait_until(lambda: len(world_mail(world, msgid)) == 1 and
                    attempts(node, qid), 40)
    att = attempts(node, qid)
    sec = att[-1].get("security") if att else None
    if ok and sec == "sts":
        return ""
    return (f"arrived {len(world_mail(world, msgid))}, attempts "
            f"{att[-1:]}, log: {node.tail(4)}")


def blocked(node, world, sent):
    """'' when the message is deferred 4.7.5 by the policy and did not
    arrive; else what is seen."""
    qid, msgid = sent
    wait_until(lambda: attempts(node, qid) or world_mail(world, msgid), 40)
    att = attempts(node, qid)
    last = att[-1] if att else {}
    arrived = len(world_mail(world, msgid))
    if arrived == 0 and last.get("security") == "sts" and \
            last.get("status") == "4.7.5":
        return ""
    return f"arrived {arrived}, attempts {att[-1:]}, log: {node.tail(4)}"


def same_rows(a, b, domains):
    return all(d in a and d in b and a[d][:4] == b[d][:4] for d in domains)


def close_https(node, port):
    """node2 cannot reach any policy host: its https_port is closed."""
    def change(sec):
        sec.setdefault("mta_sts", {})["https_port"] = str(port)
    rewrite_config(node, change)


def first_half(fl, world):
    n1, n2 = fl.nodes
    s_good, s_bad = send(n1, GOOD), send(n1, BLOCKED)
    why = delivered(n1, world, s_good) or blocked(n1, world, s_bad)
    local1 = cache_rows(n1)
    report("sts.node1-fetched", not why and GOOD in local1 and
           BLOCKED in local1, f"{why} cache {sorted(local1)}")
    ok = wait_until(lambda: same_rows(db_rows(fl), local1, (GOOD, BLOCKED)),
                    15)
    rows = db_rows(fl)
    report("sts.shared", ok and rows[GOOD][4] == "node1" and
           rows[BLOCKED][4] == "node1", f"db {rows}, node1 {local1}")
    ok = wait_until(lambda: same_rows(cache_rows(n2), local1,
                                      (GOOD, BLOCKED)), 15)
    report("sts.node2-cache", ok, f"node2 {cache_rows(n2)}, node1 {local1}")
    marks = fl.pg.psql("SELECT node, sts_mark, sts_pulled FROM dr_nodes "
                       "ORDER BY node")
    fetched = max(r[2] for r in local1.values())
    report("sts.marks", len(marks) == 2 and
           0 < int(marks[0][1]) <= fetched + 1 and
           int(marks[1][2]) > 0, f"dr_nodes {marks}, fetched {fetched}")


def node2_enforces(fl, world, tag):
    n2 = fl.nodes[1]
    s_good, s_bad = send(n2, GOOD), send(n2, BLOCKED)
    why = blocked(n2, world, s_bad)
    report(f"{tag}enforces", not why, why)
    why = delivered(n2, world, s_good)
    report(f"{tag}delivers", not why, why)


def outage(fl, world, world_https):
    """PostgreSQL stopped: node2 keeps its cache and enforces."""
    n1, n2 = fl.nodes
    before = cache_rows(n2)
    fl.pg.stop()
    try:
        # The copying thread has met the outage before the mail comes.
        report("sts.pg-down-noticed", wait_until(
            lambda: log_has(n2, "fleet:", "unreachable"), 15), n2.tail(3))
        node2_enforces(fl, world, "sts.pg-down-")
        report("sts.pg-down-cache-kept", same_rows(cache_rows(n2), before,
                                                   (GOOD, BLOCKED)),
               f"{cache_rows(n2)} vs {before}")
    finally:
        fl.pg.start()
    # Back: a policy node2 fetches itself (its port opened) reaches node1.
    close_https(n2, world_https)
    n2.stop()
    n2.start()
    why = delivered(n2, world, send(n2, LATER))
    ok = not why and wait_until(lambda: same_rows(
        cache_rows(n1), cache_rows(n2), (LATER,)), 20)
    report("sts.pg-back-node2-to-node1", ok,
           f"{why} node1 {sorted(cache_rows(n1))} db {sorted(db_rows(fl))}")


def cli_sync(fl):
    """`danerelay fleet sync` on node2, stopped, with its cache emptied
    by hand: an empty cache takes every row of the fleet again, also
    rows stored long before its mark."""
    n2 = fl.nodes[1]
    n2.stop()
    path = os.path.join(n2.dir, "queue", "mta-sts.db")
    db = sqlite3.connect(path, timeout=30)
    with db:
        db.execute("DELETE FROM policies")
    db.close()
    # As if the rows had been stored a day ago, long before node2's mark.
    fl.pg.psql("UPDATE dr_sts_policies SET stored_at = stored_at - 86400")
    rc, out, err = n2.cli("fleet", "sync")
    rows = cache_rows(n2)
    report("sts.cli-sync-refills", rc == 0 and
           same_rows(rows, cache_rows(fl.nodes[0]), (GOOD, BLOCKED, LATER)),
           f"exit {rc} {err.strip()} node2 {sorted(rows)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    world_https = json.load(open(os.path.join(args.world, "world.json")))[
        "https_port"]
    try:
        fl = Fleet(args.binary, args.world, n=2, extra=EXTRA, start=False)
    except RuntimeError as e:
        report("sts.postgres", False, str(e))
        return 1
    try:
        close_https(fl.nodes[1], free_port())
        for nd in fl.nodes:
            nd.start()
        first_half(fl, args.world)
        node2_enforces(fl, args.world, "sts.node2-")
        outage(fl, args.world, world_https)
        cli_sync(fl)
    except RuntimeError as e:
        report("sts.run", False, str(e))
    finally:
        fl.close()
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
