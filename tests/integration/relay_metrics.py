#!/usr/bin/python3
"""/metrics scraped by a real Prometheus (issue 11, docs/CONSOLE.md).

A relay in the test world with [admin] listen delivers one message to
  - ee-311.test (two recipients): DANE-verified          -> dane
  - insecure-mx-good.test: TLSA over an insecure MX        -> dane_trusted
  - sts-enforce.test: MTA-STS enforced, PKIX-valid          -> sts
  - no-tlsa.test: opportunistic TLS                          -> tls
  - no-starttls.test ([domain] security = may): cleartext    -> plaintext
  - dane-ta-missing-ta.test ([domain] mode = log-only): delivered over
    TLS, but enforcement would have deferred it 4.7.323     -> tls + would
and is blocked by
  - ee-wrong-digest.test: no TLSA record matches   -> blocked{dane,4.7.323}
  - sts-enforce-self-signed.test: untrusted cert   -> blocked{sts,4.7.5}
while conn-refused.test (4.4.1, not a security failure) is deferred and
counted in no security counter. Yesterday's TLS-RPT counters for
ee-311.test are in its store with max_delay = 0, so the relay sends that
report by itself: mailto (queued, then delivered under DANE: one more
`dane` delivery) and https (POSTed): tlsrpt_reports_total{sent} = 2.

Then Debian's Prometheus (/usr/bin/prometheus, its own TSDB in a temporary
directory, scrape_interval 1s) scrapes the relay's /metrics; its HTTP API
(/api/v1/query) must give the exact counts per security and per
{security,status}, the queue gauge (three deferred recipients), the
DNSSEC self-test gauge, the latency histogram's count, and `up` = 1 for the
target. `promtool check metrics` must accept a scraped body, and an SMTP
session held open shows in danerelay_inbound_sessions.

Usage: relay_metrics.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import datetime
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import (Relay, free_port, log_has, report,  # noqa: E402
                      wait_until)

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
SENDER = "alice@client.test"
DELIVERED = {"user1@ee-311.test": "dane", "user2@ee-311.test": "dane",
             "user@insecure-mx-good.test": "dane_trusted",
             "user@sts-enforce.test": "sts", "user@no-tlsa.test": "tls",
             "user@no-starttls.test": "plaintext",
             "user@dane-ta-missing-ta.test": "tls"}
DEFERRED = ["user@ee-wrong-digest.test", "user@sts-enforce-self-signed.test",
            "user@conn-refused.test"]
REPORT_RCPT = "tlsrpt@ee-311.test"
# What the counters must say once everything above has happened.
WANT_DELIVERIES = {"dane": 3, "dane_trusted": 1, "sts": 1, "tls": 2,
                   "plaintext": 1}
WANT_BLOCKED = {("dane", "4.7.323"): 1, ("sts", "4.7.5"): 1}
WANT_WOULD = {("dane", "4.7.323"): 1}
WANT_QUEUE = {"active": 0, "deferred": 3, "held": 0}
WANT_TLSRPT = {"sent": 2, "failed": 0}


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def scrape(port):
    try:
        return http_get(f"http://127.0.0.1:{port}/metrics")
    except OSError as e:
        return None, "", str(e)


def settled(relay):
    """Every recipient has its verdict and the report mail is delivered."""
    for r in list(DELIVERED) + [REPORT_RCPT]:
        if not log_has(relay, f"to=<{r}>", "status=sent"):
            return False
    return all(log_has(relay, f"to=<{r}>", "status=deferred")
               for r in DEFERRED)


def seed_tlsrpt(relay):
    """Yesterday's counters for ee-311.test in the relay's TLS-RPT store
    (the relay must have run once to create it)."""
    yday = (datetime.datetime.now(datetime.timezone.utc) -
            datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    db = sqlite3.connect(os.path.join(relay.dir, "queue", "tlsrpt.db"))
    db.execute("INSERT INTO policies (day, domain, type, strings, mx, "
               "successes, failures) VALUES (?, 'ee-311.test', 0, '[]', "
               "'[]', 5, 0)", (yday,))
    db.commit()
    db.close()


class Prometheus:
    """A real Prometheus server scraping one target, in a temp dir."""

    def __init__(self, target, tmp):
        self.port = free_port()
        self.dir = tmp
        self.conf = os.path.join(tmp, "prometheus.yml")
        with open(self.conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: danerelay\n"
                    "    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{target}']\n")
        self.log = open(os.path.join(tmp, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.conf}",
             f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h"],
            stdout=self.log, stderr=self.log)

    def ready(self, timeout=30):
        def up():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return http_get(f"http://127.0.0.1:{self.port}/-/ready",
                                2)[0] == 200
            except OSError:
                return False
        return wait_until(up, timeout) is True

    def query(self, q):
        """{labels frozenset: value} of an instant query, or None."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + \
            urllib.parse.urlencode({"query": q})
        try:
            doc = json.loads(http_get(url)[2])
        except (OSError, ValueError):
            return None
        if doc.get("status") != "success":
            return None
        return {frozenset((k, v) for k, v in r["metric"].items()
                          if k not in ("instance", "job")):
                float(r["value"][1]) for r in doc["data"]["result"]}

    def tail(self, n=10):
        try:
            with open(self.log.name, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def by_label(result, *names):
    """{label values tuple: value} from a query result."""
    out = {}
    for labels, v in (result or {}).items():
        d = dict(labels)
        out[tuple(d.get(n, "") for n in names)] = v
    return out


def check_prometheus(prom, admin):
    got = wait_until(lambda: prom.query('up{job="danerelay"}'), 20)
    report("prometheus.target-up",
           got and list(got.values()) == [1.0], f"{got} {prom.tail()}")
    deliv = by_label(prom.query("danerelay_deliveries_total"), "security")
    report("prometheus.deliveries-per-security",
           deliv == {(k,): float(v) for k, v in WANT_DELIVERIES.items()},
           f"got {deliv}")
    blocked = by_label(prom.query("danerelay_blocked_total"),
                       "security", "status")
    report("prometheus.blocked-per-security-status",
           blocked == {k: float(v) for k, v in WANT_BLOCKED.items()},
           f"got {blocked}")
    would = by_label(prom.query("danerelay_would_block_total"),
                     "security", "status")
    report("prometheus.would-block-log-only",
           would == {k: float(v) for k, v in WANT_WOULD.items()},
           f"got {would}")
    queue = by_label(prom.query("danerelay_queue_messages"), "state")
    report("prometheus.queue-gauge",
           queue == {(k,): float(v) for k, v in WANT_QUEUE.items()},
           f"got {queue}")
    st = prom.query("danerelay_dnssec_selftest_ok")
    report("prometheus.dnssec-selftest-ok",
           st and list(st.values()) == [1.0], f"got {st}")
    tr = by_label(prom.query("danerelay_tlsrpt_reports_total"), "result")
    report("prometheus.tlsrpt-reports",
           tr == {(k,): float(v) for k, v in WANT_TLSRPT.items()},
           f"got {tr}")
    n = sum(WANT_DELIVERIES.values())
    cnt = prom.query("danerelay_delivery_latency_seconds_count")
    inf = prom.query('danerelay_delivery_latency_seconds_bucket{le="+Inf"}')
    # Delivered within seconds of acceptance: all in the first buckets.
    q = prom.query("histogram_quantile(0.5, "
                   "danerelay_delivery_latency_seconds_bucket)")
    report("prometheus.latency-histogram",
           cnt and list(cnt.values()) == [float(n)] and inf and
           list(inf.values()) == [float(n)] and q and
           0 < list(q.values())[0] <= 5, f"count {cnt} +Inf {inf} p50 {q}")


def check_body(relay, admin, tmp):
    status, ctype, body = scrape(admin)
    report("metrics.served-as-text-0.0.4",
           status == 200 and ctype.startswith("text/plain") and
           "version=0.0.4" in ctype, f"{status} {ctype!r}")
    path = os.path.join(tmp, "scraped.txt")
    with open(path, "w") as f:
        f.write(body)
    if not os.access(PROMTOOL, os.X_OK):
        report("metrics.promtool-check", False, PROMTOOL + " missing")
    else:
        with open(path) as f:
            p = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f,
                               capture_output=True, text=True, timeout=30)
        report("metrics.promtool-check", p.returncode == 0 and body,
               (p.stdout + p.stderr)[:500])
    for name in ("danerelay_build_info{", "danerelay_start_time_seconds "):
        report(f"metrics.has-{name.strip('{ ')}", ("\n" + name) in body,
               body[:300])
    # An SMTP session held open shows; closing it takes it back.
    with socket.create_connection(("127.0.0.1", relay.port), 5) as s:
        s.settimeout(5)
        s.recv(512)  # the greeting: the session is open
        during = scrape(admin)[2]
    after = wait_until(
        lambda: "\ndanerelay_inbound_sessions 0\n" in scrape(admin)[2], 10)
    report("metrics.inbound-sessions",
           "\ndanerelay_inbound_sessions 1\n" in during and after,
           [ln for ln in during.splitlines() if "inbound_sessions " in ln])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    for tool in (PROMETHEUS, PROMTOOL):
        if not os.access(tool, os.X_OK):
            report("metrics.precondition", False,
                   f"{tool} missing (scripts/deps installs prometheus)")
            return 1
    admin = free_port()
    extra = (f"[admin]\nlisten = 127.0.0.1:{admin}\n"
             "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
             "[tlsrpt]\nmax_delay = 0\ncontact = tlsrpt@reporter.test\n"
             "[domain no-starttls.test]\nsecurity = may\n"
             "[domain dane-ta-missing-ta.test]\nmode = log-only\n")
    tmp = tempfile.mkdtemp(prefix="metrics.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    relay = Relay(args.binary, args.world, extra, name="metrics")
    prom = None
    try:
        relay.start()
        relay.stop()  # its stores exist now: seed yesterday's TLS-RPT
        seed_tlsrpt(relay)
        relay.start()
        # All five classes from the start, 0 included (the report mail
        # may already have gone out under DANE: dane is not asked).
        status, ctype, body = scrape(admin)
        report("metrics.every-class-before-mail",
               status == 200 and all(
                   f'danerelay_deliveries_total{{security="{s}"}} 0\n' in body
                   for s in WANT_DELIVERIES if s != "dane") and
               'danerelay_deliveries_total{security="dane"} ' in body,
               body[:400])
        code, qid, msgid = relay.submit(SENDER, list(DELIVERED) + DEFERRED,
                                        subject="metrics")
        ok = wait_until(lambda: settled(relay), 60, 0.5)
        report("relay.mail-settled", ok and code == 250, relay.tail(12))
        check_body(relay, admin, tmp)
        prom = Prometheus(admin, tmp)
        if not prom.ready():
            report("prometheus.started", False, prom.tail())
            return 1
        check_prometheus(prom, admin)
    finally:
        if prom is not None:
            prom.stop()
        relay.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
