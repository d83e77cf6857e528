#!/usr/bin/python3
"""/metrics scraped by a real Prometheus (issue 11, docs/CONSOLE.md, "Metrics").

Two relays in the test world with [admin] listen, scraped every second by
one Debian Prometheus (/usr/bin/prometheus, its own TSDB in a temporary
directory, 127.0.0.1 only):

A, the console's relay (consolelib.populated, the same mail and numbers as
the page tests): delivered under DANE, DANE over an insecure MX
(dane_trusted), MTA-STS, opportunistic TLS and cleartext; blocked by a
DANE-TA name mismatch (dane, 4.7.325) and an MTA-STS certificate mismatch
(sts, 4.7.5); delivered in log-only mode though its TLSA record does not
match (would_block dane, 4.7.323). Prometheus' HTTP API (/api/v1/query)
must give exactly consolelib's expected counts per security and per
{security,status}, the queue gauge (the blocked recipients deferred), the
DNSSEC self-test gauge, the latency histogram's count, and up = 1.

B, a relay with yesterday's TLS-RPT counters for ee-311.test in its store
and max_delay = 0: it sends that report by itself, by mail (queued, then
delivered under the relaxed policy of RFC 8460 §3, TLS without DANE
authentication: one `tls` delivery) and by HTTPS POST:
tlsrpt_reports_total{result="sent"} = 2. Its one message, to
conn-refused.test, is deferred 4.4.1: not a security failure, so no
blocked_total series at all.

`promtool check metrics` must accept a scraped body, and an SMTP session
held open shows in danerelay_inbound_sessions.

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
import consolelib  # noqa: E402
from worldlib import (Relay, free_port, log_has, report,  # noqa: E402
                      wait_until)

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
SENDER = "postmaster@ee-311.test"
REPORT_RCPT = "tlsrpt@ee-311.test"
REFUSED_RCPT = "user@conn-refused.test"
# Relay B's counters once its report has gone out.
WANT_B = {"deliveries": {"dane": 0, "dane_trusted": 0, "sts": 0, "tls": 1,
                         "plaintext": 0},
          "blocked": {}, "would": {},
          "queue": {"active": 0, "deferred": 1, "held": 0},
          "tlsrpt": {"sent": 2, "failed": 0}}


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def scrape(port):
    try:
        return http_get(f"http://127.0.0.1:{port}/metrics")
    except OSError as e:
        return None, "", str(e)


def settled_b(relay):
    """The report mail is delivered and the message to conn-refused.test
    deferred."""
    return log_has(relay, f"to=<{REPORT_RCPT}>", "status=sent") and \
        log_has(relay, f"to=<{REFUSED_RCPT}>", "status=deferred")


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
    """A real Prometheus server scraping the given ports, in a temp dir."""

    def __init__(self, targets, tmp):
        self.port = free_port()
        self.conf = os.path.join(tmp, "prometheus.yml")
        listed = ", ".join(f"'127.0.0.1:{t}'" for t in targets)
        with open(self.conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: danerelay\n"
                    f"    static_configs:\n      - targets: [{listed}]\n")
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
        """{frozenset of labels but instance and job: value} of an
        instant query, or None."""
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


def floats(d):
    return {(k if isinstance(k, tuple) else (k,)): float(v)
            for k, v in d.items()}


def check_instance(prom, name, port, want):
    """One relay's series in Prometheus against want (exact)."""
    sel = f'{{job="danerelay",instance="127.0.0.1:{port}"}}'
    got = wait_until(lambda: prom.query("up" + sel), 20)
    report(f"{name}.prometheus-target-up",
           got and list(got.values()) == [1.0], f"{got} {prom.tail()}")
    for metric, labels, key in (
            ("danerelay_deliveries_total", ("security",), "deliveries"),
            ("danerelay_blocked_total", ("security", "status"), "blocked"),
            ("danerelay_would_block_total", ("security", "status"),
             "would"),
            ("danerelay_queue_messages", ("state",), "queue"),
            ("danerelay_tlsrpt_reports_total", ("result",), "tlsrpt")):
        if key not in want:
            continue
        got = by_label(prom.query(metric + sel), *labels)
        report(f"{name}.prometheus-{key}", got == floats(want[key]),
               f"got {got}, want {floats(want[key])}")
    st = prom.query("danerelay_dnssec_selftest_ok" + sel)
    report(f"{name}.prometheus-dnssec-selftest-ok",
           st and list(st.values()) == [1.0], f"got {st}")
    n = float(sum(want["deliveries"].values()))
    cnt = prom.query("danerelay_delivery_latency_seconds_count" + sel)
    inf = prom.query('danerelay_delivery_latency_seconds_bucket'
                     f'{{le="+Inf",instance="127.0.0.1:{port}"}}')
    # Delivered within seconds of acceptance: the median is in the first
    # buckets (PromQL's own histogram_quantile over our buckets).
    med = prom.query("histogram_quantile(0.5, "
                     f"danerelay_delivery_latency_seconds_bucket{sel})")
    report(f"{name}.prometheus-latency-histogram",
           cnt and list(cnt.values()) == [n] and inf and
           list(inf.values()) == [n] and med and
           0 < list(med.values())[0] <= 5,
           f"count {cnt} +Inf {inf} median {med}, want {n}")


def check_body(relay, admin, tmp):
    status, ctype, body = scrape(admin)
    report("metrics.served-as-text-0.0.4",
           status == 200 and ctype.startswith("text/plain") and
           "version=0.0.4" in ctype, f"{status} {ctype!r}")
    path = os.path.join(tmp, "scraped.txt")
    with open(path, "w") as f:
        f.write(body)
    with open(path) as f:
        p = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f,
                           capture_output=True, text=True, timeout=30)
    report("metrics.promtool-check", p.returncode == 0 and
           "danerelay_deliveries_total" in body, (p.stdout + p.stderr)[:500])
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


def want_a(exp):
    """Relay A's counters from consolelib's expected numbers."""
    deliv = {s: 0 for s in ("dane", "dane_trusted", "sts", "tls",
                            "plaintext")}
    deliv.update(exp["delivered"])
    return {"deliveries": deliv, "blocked": exp["blocked"],
            "would": exp["would_block"], "queue": exp["queue"],
            "tlsrpt": {"sent": 0, "failed": 0}}


def start_b(args):
    """Relay B: yesterday's TLS-RPT counters seeded, one message to a
    refused port; returns (relay, admin port) once both are settled."""
    admin = free_port()
    extra = (f"[admin]\nlisten = 127.0.0.1:{admin}\n"
             "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
             "[tlsrpt]\nmax_delay = 0\ncontact = tlsrpt@reporter.test\n")
    relay = Relay(args.binary, args.world, extra, name="metrics-b")
    relay.start()
    relay.stop()  # its stores exist now: seed yesterday's TLS-RPT
    seed_tlsrpt(relay)
    relay.start()
    # All five classes from the start, 0 included (the report mail may
    # already have gone out: tls is not asked).
    status, ctype, body = scrape(admin)
    report("metrics.every-class-before-mail",
           status == 200 and all(
               f'danerelay_deliveries_total{{security="{s}"}} 0\n' in body
               for s in ("dane", "dane_trusted", "sts", "plaintext")) and
           'danerelay_deliveries_total{security="tls"} ' in body,
           body[:400])
    # Mail sent before the resolver validates would wait for a retry.
    wait_until(lambda: log_has(relay, "self-test passed"), 30)
    code, qid, msgid = relay.submit(SENDER, [REFUSED_RCPT], subject="b")
    ok = wait_until(lambda: settled_b(relay), 60, 0.5)
    report("metrics-b.settled", ok and code == 250, relay.tail(12))
    return relay, admin


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
    tmp = tempfile.mkdtemp(prefix="metrics.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    a = b = prom = None
    try:
        try:
            a, exp = consolelib.populated(args.binary, args.world)
        except RuntimeError as e:
            report("metrics-a.populated", False, str(e))
            return 1
        b, b_admin = start_b(args)
        check_body(b, b_admin, tmp)
        prom = Prometheus([a.admin_port, b_admin], tmp)
        if not prom.ready():
            report("prometheus.started", False, prom.tail())
            return 1
        check_instance(prom, "metrics-a", a.admin_port, want_a(exp))
        check_instance(prom, "metrics-b", b_admin, WANT_B)
    finally:
        if prom is not None:
            prom.stop()
        for r in (a, b):
            if r is not None:
                r.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
