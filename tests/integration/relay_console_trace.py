#!/usr/bin/python3
"""The console's /trace and /check in headless Chromium, against a relay in
the test world that has delivered, blocked, log-only-recorded and bounced
mail (consolelib.populated() plus a few messages of this test's own).

/trace: searches by recipient, domain, Message-ID, sender and time find
the right messages and no others; a message's page shows its attempts
with MX, TLS, the DANE/MTA-STS result, the reply, the explanation the
sender's non-delivery report gives (4.7.32x), and the DSN sent.
/check: a DANE-valid domain is verified, a DANE-failing one fails, both
with the very report `danerelay check DOMAIN` prints on the same config;
bad input is refused with the command's words; at most 4 checks at once.

Usage: relay_console_trace.py --binary PATH --world DIR [--screenshots DIR]
(prints PASS/FAIL lines)
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "world"))
import consolelib  # noqa: E402
from worldlib import report, wait_until  # noqa: E402
from browser import Browser  # noqa: E402

ARGS = None

# The words of src/dsn/dsn_text.c for 7.325 and 7.323, as the sender's
# report gives them, with the domain and the MX filled in.
NDR_7325 = ("The certificate that the mail server mx.dane-ta-wrong-name.test "
            "of the receiving domain dane-ta-wrong-name.test presents is not "
            "issued for the server's name")
NDR_7323 = ("The receiving domain ee-wrong-digest.test publishes DANE (TLSA) "
            "records in DNS that do not match the certificate its mail "
            "server mx.ee-wrong-digest.test presents")
NDR_1_10 = "declares that it does not accept email at all"


def check(name, cond, why=""):
    report(name, bool(cond), why)
    return bool(cond)


def trace_json(relay, *args):
    rc, out, err = relay.cli("trace", "--json", *args)
    try:
        return json.loads(out) if out.strip() else []
    except ValueError:
        return []


def send_own(relay):
    """This test's own messages: senders of their own, a bounce (null
    MX) whose DSN is sent, and a Message-ID to search. Returns {name:
    (qid, msgid)}."""
    own = {}
    plan = [("alice", "alice@ee-311.test", "trace-a@ee-311.test"),
            ("carol", "carol@ee-311.test", "trace-c@no-tlsa.test"),
            ("bounce", "bob@ee-311.test", "nobody@null-mx.test")]
    for name, sender, rcpt in plan:
        code, qid, msgid = relay.submit(sender, [rcpt],
                                        subject=f"trace {name}")
        if code != 250:
            raise RuntimeError(f"{rcpt}: submission got {code}")
        own[name] = (qid, msgid)

    def done():
        tr = {m["id"]: m for m in trace_json(relay, "--since", "1h")}
        ends = {"delivered", "bounced", "deferred"}
        for qid, _ in own.values():
            types = [e["type"] for e in tr.get(qid, {}).get("events", [])]
            if not ends & set(types):
                return False
        bounce = tr.get(own["bounce"][0], {}).get("events", [])
        return any(e["type"] == "dsn-sent" for e in bounce)
    if not wait_until(done, 60):
        raise RuntimeError("own messages have no outcome or no DSN: " +
                           relay.tail())
    return own


def result_ids(b):
    """Queue ids of the result table, as shown."""
    return [t for t in b.texts("#trace-results td.qid")]


def search(b, **q):
    b.get(f"{ARGS.url}/trace?" + urllib.parse.urlencode(q))
    return result_ids(b)


def test_search(b, relay, own, exp):
    sent = relay.sent
    by_dom = {}
    for qid, v in sent.items():
        by_dom.setdefault(v[0], set()).add(qid)
    alice, alice_mid = own["alice"]

    ids = search(b, recipient="trace-a@ee-311.test")
    check("trace-recipient", ids == [alice], f"got {ids}, want [{alice}]")
    ids = search(b, recipient="TRACE-A@ee-311.test")
    check("trace-recipient-case", ids == [alice], f"got {ids}")
    ids = set(search(b, domain="dane-ta-wrong-name.test"))
    check("trace-domain", ids == by_dom["dane-ta-wrong-name.test"],
          f"got {ids}, want {by_dom['dane-ta-wrong-name.test']}")
    states = b.texts("#trace-results .state")
    check("trace-domain-state", states and
          all(s == "deferred" for s in states), f"states {states}")
    ids = search(b, message_id=alice_mid)
    check("trace-message-id", ids == [alice], f"got {ids}")
    ids = search(b, message_id=alice_mid.strip("<>"))
    check("trace-message-id-bare", ids == [alice], f"got {ids}")
    ids = search(b, sender="alice@ee-311.test")
    check("trace-sender", ids == [alice], f"got {ids}")
    ids = set(search(b, sender=consolelib.SENDER))
    check("trace-sender-many", ids == set(sent), f"{len(ids)} of "
          f"{len(sent)}; extra {ids - set(sent)}")
    ids = search(b, sender="<>")
    dsn = [m["id"] for m in trace_json(relay, "--sender", "<>")]
    check("trace-sender-null", ids and sorted(ids) == sorted(dsn),
          f"got {ids}, DSNs {dsn}")
    ids = search(b, sender="alice@ee-311.test", domain="no-tlsa.test")
    check("trace-and", ids == [] and "0 matching" in
          (b.text("#trace-count") or ""), f"got {ids}")
    ids = search(b, until="2020-01-01")
    check("trace-until-past", ids == [] and "0 matching" in
          (b.text("#trace-count") or ""), f"got {ids}")
    ids = search(b, since="1h", until="2099-01-01T00:00")
    check("trace-window", set(sent) | {alice} <= set(ids), f"{len(ids)}")
    search(b, since="5y")
    err = b.text("#trace-error") or ""
    check("trace-bad-time", "Since" in err and "expected a duration" in err,
          err)
    # The form itself: fill and submit.
    b.get(f"{ARGS.url}/trace")
    b.submit_form("#trace-search", {"recipient": "trace-c@no-tlsa.test"})
    ids = result_ids(b)
    check("trace-form", ids == [own["carol"][0]] and
          "recipient=trace-c%40no-tlsa.test" in b.url, f"{ids} {b.url}")
    # Sender, recipients with state, Message-ID in the row.
    row = b.table("#trace-results")
    check("trace-row", row and row[0][2] == "carol@ee-311.test" and
          "trace-c@no-tlsa.test delivered" in row[0][3] and
          row[0][4] == own["carol"][1], f"{row}")
    if ARGS.screenshots:
        search(b, sender=consolelib.SENDER)
        b.screenshot(os.path.join(ARGS.screenshots, "trace.png"))


def timeline(b, qid):
    b.get(f"{ARGS.url}/trace/{qid}")
    return b.table("#timeline")


def row_of(rows, typ):
    return [r for r in rows if len(r) >= 4 and r[1] == typ]


def test_message(b, relay, own):
    sent = relay.sent
    blocked = [q for q, v in sent.items()
               if v[0] == "dane-ta-wrong-name.test"][0]
    rows = timeline(b, blocked)
    att = row_of(rows, "delivery attempt")
    rec = row_of(rows, "received")
    check("msg-received", rec and "from" in rec[0][3] and
          "HELO client.test" in rec[0][3], f"{rec}")
    d = att[0][3] if att else ""
    check("msg-attempt-mx", "MX mx.dane-ta-wrong-name.test [127." in d, d)
    check("msg-attempt-tls", re.search(r"TLS \w+, TLSv1\.[23] ", d), d)
    check("msg-attempt-security", "security DANE required" in d, d)
    check("msg-attempt-status",
          "status 4.7.325 certificate-host-mismatch" in d, d)
    check("msg-attempt-ndr", NDR_7325 in d, d)
    # No server reply (the TLS check failed): our reason, as the NDR says.
    check("msg-attempt-reason", "reason the certificate of "
          "mx.dane-ta-wrong-name.test" in d, d)
    check("msg-deferred", row_of(rows, "deferred"), f"{rows}")
    st = b.texts("#recipients .state")
    check("msg-rcpt-state", st == ["deferred"], f"{st}")
    if ARGS.screenshots:
        b.js("document.getElementById('recipients').scrollIntoView();")
        b.screenshot(os.path.join(ARGS.screenshots, "trace-message.png"))

    good = [q for q, v in sent.items() if v[0] == "ee-311.test"][0]
    att = row_of(timeline(b, good), "delivery attempt")
    d = att[0][3] if att else ""
    check("msg-dane-verified", "security DANE-verified" in d and
          re.search(r"TLSA 3 1 1 \(DANE-EE\) matched", d) and
          "reply 250" in d, d)

    logonly = [q for q, v in sent.items()
               if v[0] == "ee-wrong-digest.test"][0]
    att = row_of(timeline(b, logonly), "delivery attempt")
    d = att[0][3] if att else ""
    check("msg-log-only", "Log-only" in d and "(4.7.323)" in d and
          NDR_7323 in d, d)

    rows = timeline(b, own["bounce"][0])
    att = row_of(rows, "delivery attempt")
    d = att[0][3] if att else ""
    check("msg-bounce-ndr", "5.1.10" in d and NDR_1_10 in d, d)
    dsn = row_of(rows, "DSN sent")
    d = dsn[0][3] if dsn else ""
    check("msg-dsn-sent", "action failed" in d and
          "sent to bob@ee-311.test" in d, f"{rows}")
    links = b.find("#timeline tr.ev-dsn-sent a")
    if check("msg-dsn-link", links, "no link to the report"):
        report_id = links[0].text
        # Follow the link (its address: a click's page load is not
        # waited for reliably).
        b.get(links[0].get_attribute("href"))
        check("msg-dsn-page", b.text("#message .qid") == report_id and
              "<>" in (b.text("#message") or ""), b.text("#message"))
    errs = b.console_errors()
    check("msg-pages-no-errors", not errs, f"{errs}")
    b.get(f"{ARGS.url}/trace/0000000000000000")
    b.console_errors()  # the 404 itself is logged
    check("msg-unknown", "No message with" in (b.text(".error") or ""),
          b.text("main"))


def cli_check(relay, domain):
    p = subprocess.run([ARGS.binary, "-c", relay.conf, "check", domain],
                       capture_output=True, text=True, timeout=90)
    return p.stdout, p.stderr


def norm(text):
    """A report with the TTLs (the console's resolver caches) and blank
    ends taken out."""
    return re.sub(r"ttl \d+", "ttl N", text).strip()


def check_page(b, domain, timeout=40):
    b.driver.set_page_load_timeout(timeout)
    b.get(f"{ARGS.url}/check?" + urllib.parse.urlencode({"domain": domain}))
    return b.find("#check-verdict")


def test_check(b, relay):
    t0 = time.monotonic()
    check_page(b, "ee-311.test")
    took = time.monotonic() - t0
    verdict = b.find("#check-verdict")
    v = verdict[0].get_attribute("data-verdict") if verdict else None
    check("check-verified", v == "verified", f"verdict {v}: "
          f"{b.text('main')}")
    rows = b.table("#check-mx")
    check("check-mx-line", rows and rows[0][1] == "mx.ee-311.test" and
          rows[0][4] == "PASS", f"{rows}")
    out, _ = cli_check(relay, "ee-311.test")
    page = b.text("#check-report") or ""
    check("check-same-words-verified", out and norm(page) == norm(out),
          f"page:\n{page}\ncli:\n{out}")
    print(f"# /check ee-311.test took {took:.1f}s", flush=True)
    if ARGS.screenshots:
        b.screenshot(os.path.join(ARGS.screenshots, "check.png"))

    check_page(b, "ee-wrong-digest.test")
    verdict = b.find("#check-verdict")
    v = verdict[0].get_attribute("data-verdict") if verdict else None
    check("check-fails", v == "defer", f"verdict {v}")
    rows = b.table("#check-mx")
    check("check-fail-line", rows and rows[0][4] == "FAIL" and
          "4.7.323 tlsa-invalid" in rows[0][5], f"{rows}")
    out, _ = cli_check(relay, "ee-wrong-digest.test")
    page = b.text("#check-report") or ""
    check("check-same-words-failure", out and norm(page) == norm(out),
          f"page:\n{page}\ncli:\n{out}")
    head = (b.text("#check-verdict .headline") or "")
    check("check-headline", out.splitlines()[0] == head if out else False,
          f"{head!r}")

    # MTA-STS (on in the world's config): the policy fetched by the
    # console's own engine, reported in the command's words.
    check_page(b, "sts-enforce.test")
    out, _ = cli_check(relay, "sts-enforce.test")
    page = b.text("#check-report") or ""
    check("check-sts-same-words", "MTA-STS: mode enforce" in page and
          norm(page) == norm(out), f"page:\n{page}\ncli:\n{out}")

    b.get(f"{ARGS.url}/check")
    b.submit_form("#check-form", {"domain": "bad..name"})
    err = b.text("#check-error") or ""
    _, cli_err = cli_check(relay, "bad..name")
    check("check-bad-domain", "'bad..name' is not a domain name:" in err and
          err in cli_err, f"page {err!r}, cli {cli_err!r}")
    check_page(b, "x" * 64 + ".test")
    err = b.text("#check-error") or ""
    check("check-bad-label", "is not a domain name" in err, err)


def fetch(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def test_check_limit(relay):
    """Four checks of a server that never speaks hold every slot: a fifth
    is refused at once; the relay then stops with checks in flight."""
    url = f"{ARGS.url}/check?domain=stall.test"
    threads = [threading.Thread(target=lambda: _quiet(fetch, url))
               for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    t0 = time.monotonic()
    try:
        page = fetch(url, timeout=10)
    except Exception as e:
        page = str(e)
    check("check-limit", "Too many checks" in page and
          time.monotonic() - t0 < 3, page[-300:])
    return threads


def _quiet(fn, *a):
    try:
        fn(*a)
    except Exception:
        pass


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--screenshots")
    ARGS = ap.parse_args()
    ARGS.binary = os.path.abspath(ARGS.binary)
    try:
        relay, exp = consolelib.populated(ARGS.binary, ARGS.world)
    except Exception as e:
        report("console-world", False, str(e))
        return
    threads = []
    try:
        ARGS.url = relay.admin_url
        own = send_own(relay)
        with Browser() as b:
            test_search(b, relay, own, exp)
            test_message(b, relay, own)
            test_check(b, relay)
            errs = b.console_errors()
            check("browser-no-errors", not errs, f"{errs}")
        threads = test_check_limit(relay)
    except Exception as e:
        report("console-trace", False, f"{type(e).__name__}: {e}")
    finally:
        rc = relay.stop()
        for t in threads:
            t.join(30)
        log = open(relay.log, errors="replace").read()
        check("relay-stops-with-checks-running",
              rc == 0 and "Sanitizer" not in log and "runtime error" not in log,
              f"exit {rc}: {relay.tail()}")


if __name__ == "__main__":
    main()
