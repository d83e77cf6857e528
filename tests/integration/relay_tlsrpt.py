#!/usr/bin/python3
"""TLS-RPT in the relay (RFC 8460).

Recording (§4): every TLS negotiation of a delivery attempt is counted
under its policy (tlsa, sts, no-policy-found), and `danerelay tlsrpt list`
/ `show` print what would be reported. The report shown must follow the
RFC 8460 schema (checked with python3-jsonschema) and count the right
sessions.

Policy discovery (RFC 8461 §6, RFC 8460 §4.3.2.2): mail to a domain whose
MTA-STS policy cannot be fetched (HTTP 404 and 500, a stalled host: a
timeout), authenticated (untrusted, expired, misnamed certificate) or
parsed goes out without a policy, and the day's report carries one failed
session of sts-policy-fetch-error, sts-webpki-invalid or sts-policy-invalid
under policy-type sts, beside the delivery under no-policy-found.

Sending (§3, §5): `danerelay tlsrpt send --day TODAY` looks up each
domain's _smtp._tls record in the world and
  - mails the report (multipart/report, §5.3) to mailto: destinations,
    DKIM-signed as reporter.test (verified by python3-dkim against the key
    the world publishes, in its tlsrpt mode: s=tlsrpt, no l=), also to
    domains whose DANE or MTA-STS policy fails (ee-wrong-digest.test,
    sts-enforce-self-signed.test) and over cleartext where STARTTLS is
    refused (starttls-454.test): report mail is not blocked by the
    failures it reports;
  - POSTs it as application/tlsrpt+gzip to https: destinations (the
    world's collector at reports.ee-311.test), and keeps a refused POST
    (HTTP 404) pending for a retry;
  - skips domains without exactly one v=TLSRPTv1 record;
  - does not count the report deliveries in the next report;
  - sends nothing twice when run again.
The daily schedule (§4.1): a relay with yesterday's counters in its store
and max_delay = 0 sends yesterday's report by itself within seconds.

Usage: relay_tlsrpt.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import datetime
import email
import email.policy
import glob
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import (Relay, free_port, log_has, report,  # noqa: E402
                      stand_in_libcurl, wait_until, world_mail)

try:
    import jsonschema
except ImportError:  # scripts/deps installs python3-jsonschema
    jsonschema = None
try:
    import dkim
except ImportError:  # scripts/deps installs python3-dkim
    dkim = None
try:
    import tlsrpt_schema  # beside this file; needs python3-jsonschema
except ImportError:
    tlsrpt_schema = None

SENDER = "postmaster@ee-311.test"
SCHEMA = {
    "type": "object",
    "required": ["organization-name", "date-range", "contact-info",
                 "report-id", "policies"],
    "properties": {
        "date-range": {"type": "object",
                       "required": ["start-datetime", "end-datetime"]},
        "policies": {"type": "array", "items": {
            "type": "object", "required": ["policy", "summary"],
            "properties": {
                "policy": {"type": "object",
                           "required": ["policy-type", "policy-domain"],
                           "properties": {"policy-type": {
                               "enum": ["tlsa", "sts", "no-policy-found"]}}},
                "summary": {"type": "object", "required": [
                    "total-successful-session-count",
                    "total-failure-session-count"]},
                "failure-details": {"type": "array", "items": {
                    "type": "object",
                    "required": ["result-type", "failed-session-count"]}}}}}},
}

# domain -> (policy type, successes, failures, failure result type)
EXPECT = {
    "ee-311.test": ("tlsa", 1, 0, None),
    "ee-wrong-digest.test": ("tlsa", 0, 1, "tlsa-invalid"),
    "no-tlsa.test": ("no-policy-found", 1, 0, None),
    "sts-enforce.test": ("sts", 1, 0, None),
    "sts-enforce-self-signed.test": ("sts", 0, 1, "certificate-not-trusted"),
}


# RFC 8461 §6, RFC 8460 §4.3.2.2: domains of the world whose MTA-STS policy
# cannot be had. The mail goes out without a policy (§3.3; opportunistic
# TLS), and the day's report carries the failure of the policy discovery
# under policy-type sts, beside the delivery under no-policy-found.
# domain -> (result type, text the failure-reason-code contains)
STS_FETCH_FAILS = {
    "sts-fetch-404.test": ("sts-policy-fetch-error", "HTTP 404"),
    "sts-fetch-500.test": ("sts-policy-fetch-error", "HTTP 500"),
    "sts-fetch-stall.test": ("sts-policy-fetch-error", "timeout"),
    "sts-fetch-tls-stall.test": ("sts-policy-fetch-error", "timeout"),
    "sts-fetch-untrusted.test": ("sts-webpki-invalid",
                                 "certificate not trusted"),
    "sts-fetch-expired.test": ("sts-webpki-invalid",
                               "certificate not trusted"),
    "sts-fetch-wrong-name.test": ("sts-webpki-invalid",
                                  "certificate not trusted"),
    "sts-policy-invalid.test": ("sts-policy-invalid", "policy invalid"),
}


def valid_report(doc):
    if jsonschema is None:
        return False, "python3-jsonschema missing"
    try:
        jsonschema.validate(doc, SCHEMA)
        return True, ""
    except jsonschema.ValidationError as ex:
        return False, ex.message


def check_recording(relay, day):
    rc, out, err = relay.cli("tlsrpt", "list", "--json", "--day", day)
    try:
        listed = {e["domain"]: e for e in json.loads(out)}
    except ValueError:
        listed = {}
    for dom, (ptype, ok, bad, rt) in EXPECT.items():
        e = listed.get(dom, {})
        report(f"list.{dom}", e.get("successful") == ok and
               e.get("failed") == bad, f"{e} rc={rc} {err[:200]}")
        rc, out, err = relay.cli("tlsrpt", "show", dom, day)
        try:
            doc = json.loads(out)
        except ValueError:
            report(f"show.{dom}", False, f"rc={rc} {err[:200]}")
            continue
        valid, why = valid_report(doc)
        pol = doc["policies"][0] if doc.get("policies") else {}
        types = [f.get("result-type") for f in pol.get("failure-details", [])]
        report(f"show.{dom}", valid and
               pol.get("policy", {}).get("policy-type") == ptype and
               pol.get("policy", {}).get("policy-domain") == dom and
               (rt is None or rt in types), why or json.dumps(pol)[:300])
    rc, out, err = relay.cli("tlsrpt", "show", "nothing.test", day)
    report("show.no-data", rc == 1 and "no data" in err, f"rc={rc}")
    return listed


def sts_fetch_failure(doc, dom, rt, reason):
    """What is wrong in doc, the report of dom after one message whose
    policy fetch failed with rt: [] when nothing."""
    errs = tlsrpt_schema.errors(doc) if tlsrpt_schema else \
        ["python3-jsonschema missing"]
    pols = {p["policy"]["policy-type"]: p for p in doc.get("policies", [])}
    sts, none = pols.get("sts", {}), pols.get("no-policy-found", {})
    want_sts = {"policy-type": "sts", "policy-string": [],
                "policy-domain": dom}
    details = sts.get("failure-details", [])
    if sts.get("policy") != want_sts:
        errs.append("sts policy %s" % sts.get("policy"))
    if sts.get("summary") != {"total-successful-session-count": 0,
                              "total-failure-session-count": 1}:
        errs.append("sts summary %s" % sts.get("summary"))
    if len(details) != 1 or details[0].get("result-type") != rt or \
            details[0].get("failed-session-count") != 1 or \
            reason not in details[0].get("failure-reason-code", ""):
        errs.append("failure-details %s" % details)
    if none.get("summary") != {"total-successful-session-count": 1,
                               "total-failure-session-count": 0}:
        errs.append("no-policy-found %s" % none.get("summary"))
    return errs


def check_sts_fetch_failures(args, day):
    """One message to each domain of STS_FETCH_FAILS through a relay of its
    own (so the counts are this run's): delivered without a policy, and
    `tlsrpt show` carries the failure with its type and count (and the
    report is valid by the schema of test_tlsrpt_schema.sh)."""
    extra = "[tlsrpt]\norganization = relay.test\n" \
            "contact = tlsrpt@reporter.test\n"
    relay = Relay(args.binary, args.world, extra, name="tlsrpt-sts").start()
    try:
        sent = {d: relay.submit(SENDER, [f"user@{d}"])
                for d in STS_FETCH_FAILS}
        wait_until(lambda: all(world_mail(args.world, m[2])
                               for m in sent.values()), 60)
        for dom, (rt, reason) in STS_FETCH_FAILS.items():
            name = f"sts-fetch-failure.{dom}"
            # Precondition: the mail went out (without a policy, §3.3).
            if not world_mail(args.world, sent[dom][2]):
                report(name, False, "the message was not delivered: "
                       + relay.tail(4))
                continue
            rc, out, err = relay.cli("tlsrpt", "show", dom, day)
            try:
                doc = json.loads(out)
            except ValueError:
                report(name, False, f"rc={rc} {err[:200]}")
                continue
            errs = sts_fetch_failure(doc, dom, rt, reason)
            report(name, not errs, "; ".join(errs)[:400] + " " +
                   json.dumps(doc.get("policies"))[:300])
    finally:
        relay.stop()


def world_dns(world):
    port = json.load(open(os.path.join(world, "world.json")))["dns_port"]

    def dnsfunc(name, timeout=5):
        out = subprocess.run(
            ["dig", "+short", "-p", str(port), "@127.53.0.1", "TXT",
             name.decode().rstrip(".")], capture_output=True, text=True,
            timeout=10).stdout
        return "".join(out.strip().split('"')[1::2]).encode()
    return dnsfunc


# Only what this run made counts: a world may be reused within a day.
T0 = time.time()


def report_mails(world, domain, ymd):
    """Report mails in the world about domain for day YYYYMMDD."""
    out = []
    for path in glob.glob(os.path.join(world, "mail", "*", "*.eml")):
        if os.path.getmtime(path) < T0:
            continue
        raw = open(path, "rb").read()
        if (b"TLS-Report-Domain: %s\r\n" % domain.encode()) in raw and \
                (b"<%s.%s." % (ymd.encode(), domain.encode())) in raw:
            meta = json.load(open(path[:-4] + ".json"))
            out.append((meta, raw))
    return out


def check_mail(world, dom, ymd, dnsfunc, want_tls):
    """One report mail for dom arrived, shaped as RFC 8460 §5.3 says,
    DKIM-signed, carrying a schema-valid report of that domain."""
    mails = report_mails(world, dom, ymd)
    name = f"send.mail.{dom}"
    if len(mails) != 1:
        report(name, False, f"{len(mails)} report mails")
        return
    meta, raw = mails[0]
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    subj = " ".join(m["Subject"].split())
    sm = re.fullmatch(r"Report Domain: (\S+) Submitter: (\S+) "
                      r"Report-ID: <(\S+@\S+)>", subj)
    parts = [p for p in m.walk()]
    gz = [p for p in parts if p.get_content_type() == "application/tlsrpt+gzip"]
    why = []
    if m.get_content_type() != "multipart/report" or \
            m.get_param("report-type") != "tlsrpt":
        why.append("content type " + str(m["Content-Type"]))
    if m["TLS-Report-Domain"] != dom or \
            m["TLS-Report-Submitter"] != "reporter.test":
        why.append("TLS-Report-* headers")
    if not sm or sm.group(1) != dom or sm.group(2) != "reporter.test":
        why.append("subject " + subj)
    if len(parts) != 3 or parts[1].get_content_type() != "text/plain" or \
            len(gz) != 1:
        why.append("parts %s" % [p.get_content_type() for p in parts])
    doc = {}
    if gz:
        fname = gz[0].get_filename() or ""
        if not re.fullmatch(r"reporter\.test!%s!\d+!\d+!\w+\.json\.gz"
                            % re.escape(dom), fname):
            why.append("filename " + fname)
        doc = json.loads(gzip.decompress(gz[0].get_payload(decode=True)))
        valid, vwhy = valid_report(doc)
        if not valid:
            why.append(vwhy)
        if sm and doc.get("report-id") != sm.group(3):
            why.append("report-id differs from the subject's")
        if doc["policies"][0]["policy"]["policy-domain"] != dom or \
                doc.get("contact-info") != "tlsrpt@reporter.test":
            why.append("report body")
    if dkim is None or not dkim.verify(raw, dnsfunc=dnsfunc,
                                       tlsrpt="strict"):
        why.append("DKIM signature does not verify")
    if b"; l=" in raw.split(b"\r\n\r\n")[0]:
        why.append("l= tag")
    if want_tls is not None and bool(meta.get("tls")) != want_tls:
        why.append(f"tls={meta.get('tls')}")
    report(name, not why, "; ".join(why))


def collected(world, domain, ymd):
    out = []
    for path in glob.glob(os.path.join(world, "reports", "*.json")):
        if os.path.getmtime(path) < T0:
            continue
        meta = json.load(open(path))
        body = open(path[:-5] + ".bin", "rb").read()
        try:
            doc = json.loads(gzip.decompress(body))
        except (OSError, ValueError):
            continue
        if doc.get("report-id", "").startswith(f"{ymd}.{domain}."):
            out.append((meta, doc))
    return out


def check_send(args, relay, day, before):
    """tlsrpt send for today, then what arrived where."""
    ymd = day.replace("-", "")
    rc, out, err = relay.cli("tlsrpt", "send", "--day", day)
    lines = {tuple(ln.split()[:2]): ln for ln in out.splitlines()[1:]}
    report("send.exit-75-while-a-post-waits-for-retry", rc == 75,
           f"rc={rc} {out} {err[-300:]}")
    want = {("ee-311.test", "done"): "accepted (HTTP 200)",
            ("ee-wrong-digest.test", "done"): "queued as",
            ("sts-enforce-self-signed.test", "done"): "queued as",
            ("starttls-454.test", "done"): "queued as",
            ("sts-enforce.test", "pending"): "HTTP 404"}
    for key, text in want.items():
        report(f"send.outbox.{key[0]}.{key[1]}",
               any(k == key and text in ln for k, ln in
                   [(tuple(x.split()[:2]), x) for x in out.splitlines()]),
               out)
    report("send.no-policy-domains-skipped",
           "2 without a TLSRPT policy" in out and
           not any(k[0] in ("no-tlsa.test", "unsigned.test") for k in lines),
           out)
    wait_until(lambda: not [e for e in relay.queue()
                            if e["recipient"].startswith("tlsrpt@")], 30)
    dnsfunc = world_dns(args.world)
    check_mail(args.world, "ee-311.test", ymd, dnsfunc, True)
    # §3: delivered despite the DANE / MTA-STS failure being reported
    check_mail(args.world, "ee-wrong-digest.test", ymd, dnsfunc, True)
    check_mail(args.world, "sts-enforce-self-signed.test", ymd, dnsfunc,
               True)
    # §3: "This may mean that the reports are delivered unencrypted."
    check_mail(args.world, "starttls-454.test", ymd, dnsfunc, False)
    posts = collected(args.world, "ee-311.test", ymd)
    meta = posts[0][0] if posts else {}
    report("send.https-post", len(posts) == 1 and
           meta.get("content_type") == "application/tlsrpt+gzip" and
           meta.get("path") == "/v1/tlsrpt" and
           valid_report(posts[0][1])[0], f"{len(posts)} posts {meta}")
    # §3: report sessions are not counted in the next report
    rc, out2, err = relay.cli("tlsrpt", "list", "--json", "--day", day)
    after = {e["domain"]: e for e in json.loads(out2)} if rc == 0 else {}
    same = all(after.get(d, {}).get(k) == before.get(d, {}).get(k)
               for d in before for k in ("successful", "failed"))
    report("send.report-mail-not-counted", same and bool(after),
           f"before={before} after={after}")
    rc, out3, err = relay.cli("tlsrpt", "send", "--day", day)
    report("send.second-run-sends-nothing",
           out3.startswith(f"{day}: 0 domains prepared") and
           " 0 mails queued, 0 posted" in out3 and
           len(report_mails(args.world, "ee-311.test", ymd)) == 1, out3)
    # §5.5: the refused POST is retried, and given up 24 hours after its
    # first attempt (the outbox is aged by a day instead of waiting one).
    db = sqlite3.connect(os.path.join(relay.dir, "queue", "tlsrpt.db"))
    db.execute("UPDATE outbox SET next_attempt = 0, first_attempt = "
               "first_attempt - 86400 WHERE domain = 'sts-enforce.test'")
    db.commit()
    db.close()
    rc, out4, err = relay.cli("tlsrpt", "send", "--day", day)
    row = [ln for ln in out4.splitlines() if ln.startswith("sts-enforce.")]
    report("send.post-given-up-after-24h",
           rc == 1 and row and " failed " in row[0] and
           "24 hours" not in row[0] and "HTTP 404" in row[0] and
           "1 given up" in out4, f"rc={rc} {out4}")
    check_libcurl_missing(relay, day)


def check_libcurl_missing(relay, day):
    """libcurl is loaded at the first POST (src/http/http_lib.h). When the
    library found is not libcurl (a stand-in libcurl.so.4 first on
    LD_LIBRARY_PATH), the POST is our problem, not the collector's: it
    waits for a retry (exit 75), saying why, and is not given up; the next
    run with the real library sends it."""
    db = sqlite3.connect(os.path.join(relay.dir, "queue", "tlsrpt.db"))
    db.execute("UPDATE outbox SET state = 0, next_attempt = 0, attempts = 0, "
               "first_attempt = 0 WHERE domain = 'ee-311.test' AND "
               "uri LIKE 'https:%'")
    db.commit()
    with tempfile.TemporaryDirectory() as tmp:
        rc, out, err = relay.cli("tlsrpt", "send", "--day", day,
                                 env=stand_in_libcurl(tmp))
    row = [ln for ln in out.splitlines()
           if ln.startswith("ee-311.test ") and "https:" in ln]
    report("send.libcurl-missing-post-waits",
           rc == 75 and row and " pending " in row[0] and
           "libcurl.so.4 has no curl_" in row[0], f"rc={rc} {out} {err}")
    db.execute("UPDATE outbox SET next_attempt = 0 WHERE domain = "
               "'ee-311.test'")
    db.commit()
    db.close()
    rc, out, err = relay.cli("tlsrpt", "send", "--day", day)
    row = [ln for ln in out.splitlines()
           if ln.startswith("ee-311.test ") and "https:" in ln]
    report("send.libcurl-back-post-sent",
           row and " done " in row[0] and "accepted (HTTP 200)" in row[0],
           f"rc={rc} {out}")


def check_schedule(args, first):
    """Yesterday's counters in the store: the relay reports them alone."""
    yday = (datetime.datetime.now(datetime.timezone.utc) -
            datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    qdir = os.path.join(first.dir, "queue")
    db = sqlite3.connect(os.path.join(qdir, "tlsrpt.db"))
    db.execute("INSERT INTO policies (day, domain, type, strings, mx, "
               "successes, failures) VALUES (?, 'ee-311.test', 0, '[]', "
               "'[]', 7, 0)", (yday,))
    db.commit()
    db.close()
    extra = f"[queue]\ndirectory = {qdir}\n[tlsrpt]\nmax_delay = 0\n" \
            "contact = tlsrpt@reporter.test\n"
    relay = Relay(args.binary, args.world, extra, name="tlsrpt-daily").start()
    ymd = yday.replace("-", "")
    try:
        ok = wait_until(lambda: report_mails(args.world, "ee-311.test", ymd)
                        and collected(args.world, "ee-311.test", ymd), 30)
        posts = collected(args.world, "ee-311.test", ymd)
        doc = posts[0][1] if posts else {}
        report("daily.yesterday-sent-by-the-relay",
               ok and doc.get("date-range", {}).get("start-datetime", "")
               .startswith(yday) and doc["policies"][0]["summary"]
               ["total-successful-session-count"] == 7, relay.tail(8))
        rc, out, err = relay.cli("tlsrpt", "list", "--json", "--day", yday)
        listed = json.loads(out) if rc == 0 else []
        report("daily.marked-sent", listed and listed[0].get("sent"), out)
    finally:
        relay.stop()


def check_report_lifetime(args):
    """RFC 8460 §5.5: report mail that cannot be delivered is given up
    after 24 hours (not the 5 days of other mail), without a bounce to
    anyone (NOTIFY=NEVER). The MX of ee-311.test is routed to a closed
    port; the queue is then aged by 25 hours instead of waiting."""
    closed = free_port()
    extra = (f"[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
             f"[tlsrpt]\nmax_delay = 0\ncontact = tlsrpt@reporter.test\n"
             f"[domain ee-311.test]\nroute = [127.0.0.1]:{closed}\n")
    relay = Relay(args.binary, args.world, extra, name="tlsrpt-life").start()
    qdir = os.path.join(relay.dir, "queue")
    try:
        relay.stop()
        yday = (datetime.datetime.now(datetime.timezone.utc) -
                datetime.timedelta(days=1)).strftime("%Y-%m-%d")
        db = sqlite3.connect(os.path.join(qdir, "tlsrpt.db"))
        db.execute("INSERT INTO policies (day, domain, type, strings, mx, "
                   "successes, failures) VALUES (?, 'ee-311.test', 0, "
                   "'[]', '[]', 3, 0)", (yday,))
        db.commit()
        db.close()
        relay.start()

        def report_queued():
            return [e for e in relay.queue()
                    if e["recipient"] == "tlsrpt@ee-311.test" and
                    e["attempts"] >= 1]
        first = wait_until(report_queued, 30)
        relay.stop()
        db = sqlite3.connect(os.path.join(qdir, "queue.db"))
        db.execute("UPDATE recipients SET queued_at = queued_at - 90000, "
                   "next_attempt = 0 WHERE addr = 'tlsrpt@ee-311.test'")
        db.commit()
        db.close()
        relay.start()
        gone = wait_until(lambda: log_has(relay, "tlsrpt@ee-311.test",
                                           "status=bounced"), 30)
        dsn = log_has(relay, "dsn-sent") or log_has(relay, "DSN")
        report("report-mail.given-up-after-24h-without-dsn",
               first and gone and "dsn=5." in gone and not dsn and
               not report_queued(), relay.tail(6))
    finally:
        relay.stop()


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def check_idle(args):
    """An idle relay sleeps: the daily TLS-RPT schedule with nothing due
    looks again in a minute, it does not spin (a bug once made an idle
    relay burn a whole core)."""
    relay = Relay(args.binary, args.world, "", name="tlsrpt-idle").start()
    try:
        time.sleep(2)
        before = cpu_seconds(relay.proc.pid)
        time.sleep(3)
        used = cpu_seconds(relay.proc.pid) - before
        report("daily.idle-relay-sleeps", used < 0.3,
               f"{used:.2f} s of CPU in 3 s idle")
    finally:
        relay.stop()


def check_outbound_dkim(args):
    """[dkim] sign_outbound: mail From: the [dkim] domain (or below it) is
    signed, other mail is not; python3-dkim verifies the signature."""
    extra = f"[dkim]\nselector = mail\nsign_outbound = yes\n" \
            f"key_file = {args.world}/certs/dkim-mail.key.pem\n"
    relay = Relay(args.binary, args.world, extra, name="dkim-out").start()
    dnsfunc = world_dns(args.world)
    try:
        ours = relay.submit("alice@news.reporter.test", ["u1@ee-311.test"],
                            subject="signed")
        theirs = relay.submit("bob@other.test", ["u2@ee-311.test"],
                              subject="unsigned")
        got = wait_until(lambda: world_mail(args.world, ours[2]) and
                         world_mail(args.world, theirs[2]), 30)
        a = world_mail(args.world, ours[2])[0][2] if got else b""
        b = world_mail(args.world, theirs[2])[0][2] if got else b""
        report("dkim.outbound-signed-and-verified",
               a.startswith(b"DKIM-Signature:") and b"d=reporter.test" in a
               and dkim is not None and dkim.verify(a, dnsfunc=dnsfunc),
               a[:300])
        report("dkim.outbound-other-domain-unsigned",
               got and b"DKIM-Signature" not in b, b[:200])
    finally:
        relay.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    extra = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n" \
            "[tlsrpt]\norganization = relay.test\n" \
            "contact = tlsrpt@reporter.test\n"
    relay = Relay(args.binary, args.world, extra, name="tlsrpt").start()
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    try:
        sent = {d: relay.submit(SENDER, [f"user@{d}"])[1]
                for d in list(EXPECT) + ["starttls-454.test", "unsigned.test"]}

        def tried():
            q = {e["msgid"]: e for e in relay.queue()}
            return all(qid not in q or q[qid]["attempts"] >= 1
                       for qid in sent.values())
        wait_until(tried, 60)
        before = check_recording(relay, day)
        check_send(args, relay, day, before)
    finally:
        relay.stop()
    check_sts_fetch_failures(args, day)
    check_schedule(args, relay)
    check_outbound_dkim(args)
    check_idle(args)
    check_report_lifetime(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
