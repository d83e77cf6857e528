#!/usr/bin/python3
"""Fill a danerelay queue with synthetic trace events for timing `danerelay
report` (docs/QUEUE.md, "danerelay report": Speed).

    DANERELAY_TEST_QUEUE_DIR=/tmp/q build/tests/unit/test_queue  # a queue
    bench/report_events.py /tmp/q/queue.db 200000                # + events
    printf '[queue]\\ndirectory = /tmp/q\\n' > /tmp/q.conf
    time build/danerelay -c /tmp/q.conf report --period 30d --json >/dev/null

Messages of 1 to 3 recipients over the last 35 days, each recipient with a
queued, an attempt and a verdict event as deliver_decide writes them: 5%
blocked by DANE (two attempts each), the rest delivered under the five
security classes, 2% of them with a log-only would_fail. The queue must
have been opened by danerelay (create mode) first, so that its indexes
exist; the events go in through Python's sqlite3, in one transaction.
"""
import json
import random
import sqlite3
import sys
import time

CLASSES = ["dane"] * 5 + ["dane_trusted", "sts", "tls", "tls", "plaintext"]
TLS = {"dane": "verified", "dane_trusted": "trusted", "sts": "verified",
       "tls": "encrypted", "plaintext": "none"}


def recipient(rows, mid, addr, dom, t):
    base = {"relay": f"mx.{dom}[127.0.0.2]:25", "mx": "mx." + dom,
            "ip": "127.0.0.2", "port": 25}
    rows.append((mid, addr, t, "queued", None))
    if random.random() < 0.05:
        f = dict(base, status="4.7.323", result_type="tlsa-invalid",
                 security="dane", policy="dane", tls="encrypted",
                 text="no TLSA record matches")
        for k in range(2):
            rows.append((mid, addr, t + k * 600, "attempt", json.dumps(f)))
            rows.append((mid, addr, t + k * 600, "deferred",
                         json.dumps({"status": "4.7.323",
                                     "result_type": "tlsa-invalid"})))
        return
    sec = random.choice(CLASSES)
    f = dict(base, status="2.0.0", text="250 2.0.0 Ok", security=sec,
             tls=TLS[sec])
    if sec in ("dane", "dane_trusted"):
        f["policy"] = "dane"
    elif sec == "sts":
        f["policy"] = "mta-sts"
    if random.random() < 0.02:
        f["would_fail"] = "certificate-expired (4.7.322)"
        f["would_fail_text"] = "expired"
    rows.append((mid, addr, t + 1, "attempt", json.dumps(f)))
    rows.append((mid, addr, t + 1, "delivered",
                 json.dumps({"status": "2.0.0"})))


def main():
    path, want = sys.argv[1], int(sys.argv[2])
    random.seed(1)
    now, rows = int(time.time()), []
    doms = [f"d{i}.example" for i in range(2000)]
    while len(rows) < want:
        mid = "%016x" % random.getrandbits(64)
        t = now - random.randint(0, 35 * 86400)
        rows.append((mid, None, t, "received",
                     json.dumps({"kind": "mail", "sender": "a@b.example"})))
        for r in range(random.choice([1, 1, 1, 2, 3])):
            dom = random.choice(doms)
            recipient(rows, mid, f"u{r}@{dom}", dom, t)
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO events (msgid, addr, at, type, fields) "
                   "VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    print(len(rows), "events,", sum(r[3] == "attempt" for r in rows),
          "attempts")


if __name__ == "__main__":
    main()
