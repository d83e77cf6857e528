#!/usr/bin/python3
"""/tlsrpt in headless Chromium: the TLS reports a relay sent, and those it
received.

Sent: the console's relay (consolelib: mail delivered to and blocked at
domains of the test world) sends today's reports with `danerelay tlsrpt
send`, as tests/integration/relay_tlsrpt.py does: ee-311.test's collector
accepts the POST (HTTP 200), sts-enforce.test's refuses it (HTTP 404: kept
pending for a retry), ee-wrong-digest.test's report is mailed (queued).
The page must show each domain with its per-policy counts (the same as
`tlsrpt list --json`) and each destination with that status and note.

Received: [tlsrpt] received is a maildir holding a Microsoft-shaped report
that lists the same sessions under an sts and a tlsa policy of example.com
(212 successful, 3 failed each) and a Mail.Ru-shaped email whose sts
policy says 12 failed sessions while its failure details add up to 5
(fixtures of tests/unit/golden), plus ordinary mail. The page must show
212/3 per policy, never 424/6 for the domain, flag the Mail.Ru report as
inconsistent, list the ordinary mail as not counted, show a subfolder
given as ?dir=, and refuse ?dir= paths outside the configured directory
("..", an absolute path, a symbolic link out) without reading them.

Usage: relay_console_tlsrpt.py --binary PATH --world DIR
       [--screenshots DIR]   (docs/console/tlsrpt.png)
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from worldlib import report  # noqa: E402
import consolelib  # noqa: E402
from browser import Browser  # noqa: E402

GOLDEN = os.path.join(HERE, "..", "unit", "golden")
MS = "tlsrpt_microsoft_sts_tlsa.json"
MR = "tlsrpt_mailru_inconsistent.eml"
MR_FILE = "cur/1796500001.M2.relay.test:2,S"
OTHER_FILE = "cur/1796500002.M3.relay.test:2,S"
ORDINARY_MAIL = ("From: someone@example.org\r\nTo: tlsrpt@example.com\r\n"
                 "Subject: not a report\r\n\r\nhello\r\n")


def make_received(base):
    """The maildir [tlsrpt] received points at, a subfolder, and things
    outside it that the page must not read."""
    md = os.path.join(base, "Maildir")
    for sub in ("cur", "new", "tmp", ".Archive/cur", ".Archive/new"):
        os.makedirs(os.path.join(md, sub))
    shutil.copy(os.path.join(GOLDEN, MS),
                os.path.join(md, "new", "1796500000.M1.relay.test"))
    shutil.copy(os.path.join(GOLDEN, MR), os.path.join(md, MR_FILE))
    with open(os.path.join(md, OTHER_FILE), "w") as f:
        f.write(ORDINARY_MAIL)
    shutil.copy(os.path.join(GOLDEN, MR),
                os.path.join(md, ".Archive", "cur", "1.M1.relay.test:2,S"))
    outside = os.path.join(base, "outside")
    os.makedirs(outside)
    doc = json.load(open(os.path.join(GOLDEN, MS)))
    doc["organization-name"] = "Outside Org"
    doc["report-id"] = "outside-1"
    with open(os.path.join(outside, "outside.json"), "w") as f:
        json.dump(doc, f)
    os.symlink(outside, os.path.join(md, "escape"))
    return md


def send_reports(relay, day):
    """`tlsrpt send` for today; (rc, output)."""
    rc, out, err = relay.cli("tlsrpt", "send", "--day", day, timeout=120)
    return rc, out + err


def listed(relay, day):
    rc, out, err = relay.cli("tlsrpt", "list", "--json", "--day", day)
    try:
        return {e["domain"]: e for e in json.loads(out)}
    except ValueError:
        return {}


def sent_rows(b, domain):
    """Cell texts of the rows of domain in the sent table (today first)."""
    out = []
    for tr in b.find(f'#tp-sent tr.tp-sent-row[data-domain="{domain}"]'):
        out.append(tr.text)
    return out


def check_sent(b, relay, day, send_out):
    lst = listed(relay, day)
    want = {"ee-311.test": ("sent", "accepted (HTTP 200)"),
            "sts-enforce.test": ("pending", "HTTP 404"),
            "ee-wrong-digest.test": ("sent", "queued as")}
    for dom, (state, note) in want.items():
        rows = sent_rows(b, dom)
        ok = any(state in t and note in t for t in rows)
        report(f"tlsrpt.sent.{dom}", ok,
               f"rows={rows!r} send output: {send_out[-400:]}")
    # The counts are the store's, per policy (as `tlsrpt list` adds them).
    e = lst.get("ee-311.test", {})
    cell = b.text('#tp-sent tr.tp-sent-row[data-domain="ee-311.test"]'
                  f'[data-day="{day}"] .tp-pol')
    report("tlsrpt.sent.counts-per-policy",
           bool(e) and cell == f"tlsa: {e['successful']} successful, "
           f"{e['failed']} failed", f"cell={cell!r} list={e}")
    # A domain without a usable _smtp._tls record: handled, nothing sent.
    none = b.text('#tp-sent tr.tp-sent-row[data-domain="no-tlsa.test"]'
                  f'[data-day="{day}"] .tp-none')
    report("tlsrpt.sent.no-record-said", none is not None and
           "no usable _smtp._tls record" in none, f"{none!r}")
    states = b.texts("#tp-sent .tp-state.tp-pending")
    report("tlsrpt.sent.pending-marked", "pending" in states, states)


def recv_rows(b):
    return b.table("#tp-recv")


def check_received(b, md):
    rows = recv_rows(b)
    # Sender cell is shown on a sender's first row only.
    sender, by = "", {}
    for r in rows:
        if len(r) < 9:
            continue
        sender = r[0] or sender
        by[(sender, r[2], r[3])] = r
    ms_sts = by.get(("Microsoft Corporation", "sts", "example.com"))
    ms_tlsa = by.get(("Microsoft Corporation", "tlsa", "example.com"))
    report("tlsrpt.received.microsoft-per-policy",
           ms_sts is not None and ms_tlsa is not None and
           ms_sts[4:7] == ["1", "212", "3"] and
           ms_tlsa[4:7] == ["1", "212", "3"] and
           ms_sts[8] == "" and ms_tlsa[8] == "", f"rows={rows}")
    cells = [c for r in rows for c in r]
    report("tlsrpt.received.not-doubled",
           "424" not in cells and "6" not in [r[6] for r in rows
                                              if len(r) > 6],
           f"rows={rows}")
    mr = by.get(("Mail.Ru", "sts", "example.com"))
    report("tlsrpt.received.mailru-flagged",
           mr is not None and mr[4:7] == ["1", "1034", "12"] and
           "inconsistent" in mr[8] and "validation-failure: 2" in mr[7],
           f"rows={rows}")
    flagged = b.table("#tp-flagged")
    report("tlsrpt.received.flagged-table",
           len(flagged) == 1 and flagged[0][0] == MR_FILE and
           flagged[0][1] == "Mail.Ru" and flagged[0][5:7] == ["12", "5"],
           f"{flagged}")
    skipped = b.js("var d = document.getElementById('tp-skipped');"
                   "return d ? d.textContent : '';")
    report("tlsrpt.received.skipped-listed",
           OTHER_FILE in skipped and "no application/tlsrpt" in skipped and
           "escape" not in skipped, skipped)
    scan = b.text("#tp-scan") or ""
    report("tlsrpt.received.scan-line",
           md in scan and "(maildir)" in scan and "2 reports" in scan, scan)


def check_dirs(b, url):
    b.get(url + "/tlsrpt?" + urllib.parse.urlencode({"dir": ".Archive"}))
    rows = recv_rows(b)
    report("tlsrpt.dir.subfolder",
           len(rows) == 1 and rows[0][0] == "Mail.Ru" and
           "Microsoft" not in b.source(), f"rows={rows}")
    for name, arg in (("dotdot", "../outside"), ("absolute", "/etc"),
                      ("symlink", "escape"), ("missing", "../nonexistent")):
        b.get(url + "/tlsrpt?" + urllib.parse.urlencode({"dir": arg}))
        src = b.source()
        err = b.text("#received ~ .error") or ""
        report(f"tlsrpt.dir.refused-{name}",
               "not a directory under [tlsrpt] received" in err and
               not b.find("#tp-recv") and "Outside Org" not in src and
               "root:" not in src, f"error={err!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--screenshots")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="console-tlsrpt.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    md = make_received(tmp)
    extra = ("[tlsrpt]\norganization = relay.test\n"
             "contact = tlsrpt@reporter.test\n"
             f"received = {md}\n")
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    relay = None
    try:
        relay, _ = consolelib.populated(args.binary, args.world, extra)
        rc, send_out = send_reports(relay, day)
        report("tlsrpt.send-ran", rc in (0, 75), f"rc={rc} {send_out[-400:]}")
        with Browser() as b:
            b.get(relay.admin_url + "/tlsrpt")
            report("tlsrpt.page", b.text("h1") == "TLS reports" and
                   bool(b.find("#tp-sent")), b.text("h1"))
            check_sent(b, relay, day, send_out)
            check_received(b, md)
            if args.screenshots:
                b.screenshot(os.path.join(args.screenshots, "tlsrpt.png"))
                b.js("document.getElementById('received')"
                     ".scrollIntoView();")
                b.screenshot(os.path.join(args.screenshots,
                                          "tlsrpt-received.png"))
            errs = b.console_errors()
            check_dirs(b, relay.admin_url)
            errs += b.console_errors()
            report("tlsrpt.no-browser-errors", not errs, errs)
    except Exception as e:
        report("tlsrpt.setup", False, f"{type(e).__name__}: {e}")
    finally:
        if relay is not None:
            relay.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
