#!/usr/bin/python3
"""The relay end to end in the test world: every scenario of the check
issue is sent through `danerelay serve`, in enforce mode and in log-only
mode, and the outcome is compared with the scenario's expected verdict:
delivered to the right MX host over the right TLS, deferred with the right
status and RFC 8460 result type, or bounced. The trace must tell the same
story. A short queue lifetime then turns the deferrals into bounces, and
the non-delivery report that reaches the sender is checked.

Usage: relay_e2e.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import email
import email.policy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, report, wait_until, world_mail  # noqa: E402

PASSING = ("verified", "trusted", "encrypted", "opportunistic")
# Failures that log-only mode delivers anyway: the DANE check ran and
# failed, but a TLS session was there to carry the mail.
LOG_ONLY_DELIVERS = ("tlsa-invalid", "certificate-host-mismatch",
                     "certificate-expired", "certificate-not-trusted",
                     "validation-failure")
SENDER = "postmaster@ee-311.test"   # a mailbox the world accepts: NDRs land there


def scenarios(world_dir):
    here = os.path.dirname(__file__)
    return json.load(open(os.path.join(here, "..", "world", "scenarios.json")))


def submit_all(relay, scen, tag):
    sent = {}
    for s in scen:
        code, qid, msgid = relay.submit(SENDER, [f"user@{s['domain']}"],
                                        subject=f"{tag} {s['name']}")
        sent[s["name"]] = (code, qid, msgid)
    return sent


def settled(relay, sent):
    """True once every message was tried at least once."""
    q = {e["msgid"]: e for e in relay.queue()}
    return all(qid not in q or q[qid]["attempts"] >= 1
               for code, qid, msgid in sent.values() if qid)


def check_outcome(relay, world, s, sent, log_only):
    name = s["name"]
    e = s["expect"]
    code, qid, msgid = sent[name]
    tag = ("log-only." if log_only else "enforce.") + name
    if code != 250 or not qid:
        return report(tag, False, f"submission answered {code}")
    q = {x["msgid"]: x for x in relay.queue()}
    events = relay.trace(qid)
    attempts = [ev for ev in events if ev.get("type") == "attempt"]
    arrived = world_mail(world, msgid)
    deliver = e["verdict"] in PASSING
    if log_only and e["verdict"] == "defer":
        deliver = e["result_type"] in LOG_ONLY_DELIVERS or \
            name in ("bogus-tlsa", "tlsa-servfail")
    if deliver:
        hosts = [h for h, meta, raw in arrived]
        last = attempts[-1] if attempts else {}
        # The MX host as named in DNS (a CNAME may point elsewhere); in
        # log-only mode a failing better MX takes the mail itself.
        want = None if log_only else e["deliver_to"]
        ok = len(arrived) == 1 and qid not in q and \
            (want is None or last.get("mx") == want)
        if ok and not log_only and e["verdict"] in ("verified", "trusted"):
            tls = arrived[0][1].get("tls") or {}
            last = attempts[-1] if attempts else {}
            ok = bool(tls.get("version")) and \
                last.get("tls") == e["verdict"]
            # RFC 7672 §8.1: the SNI is the TLSA base domain; under
            # MTA-STS (RFC 8461 §7.1) it is the MX host name.
            if ok and tls.get("sni") is not None:
                ok = tls["sni"] == (last.get("tlsa_base") or last.get("mx"))
        if ok and log_only and e["verdict"] == "defer":
            ok = any("would_fail" in a for a in attempts)
        # RFC 8461 §5: a testing policy's failure is only reported; the
        # attempt says so, and /impact does not count it as a block.
        if ok and "sts-testing-failure" in e.get("warnings_include", []):
            ok = any("would_fail" in a and a.get("sts_mode") == "testing"
                     for a in attempts)
        return report(tag, ok, f"arrived at {hosts}, queued={qid in q}, "
                      f"attempts={attempts[-1:] if attempts else None} "
                      f"log: {relay.tail(3)}")
    if e["verdict"] == "bounce":
        ok = qid not in q and not arrived and \
            any(ev.get("type") == "bounced" and
                ev.get("status") == e["status"] for ev in events)
        return report(tag, ok, f"queued={qid in q}, events={events[-2:]}")
    entry = q.get(qid)
    ok = entry is not None and not arrived and \
        entry["last_status"] == e["status"] and \
        entry["last_result_type"] == e["result_type"]
    # Blocked by a TLS or policy failure: the attempt names the requirement
    # that blocked it, as /report and danerelay_blocked_total count it.
    sec = attempts[-1].get("security") if attempts else None
    if ok and e["result_type"]:
        ok = sec == ("sts" if e["result_type"].startswith("sts-") or
                     e.get("policy") == "mta-sts" else "dane")
    report(tag, ok, f"queue={entry}, arrived={len(arrived)}, "
           f"security={sec}")


def run_mode(args, scen, log_only):
    extra = "[delivery]\nretry_schedule = 1h\nmax_queue_lifetime = 1d\n" \
            "delay_warning = 0\n"
    if log_only:
        extra += "[policy]\nmode = log-only\n"
    relay = Relay(args.binary, args.world, extra,
                  name="log-only" if log_only else "enforce").start()
    try:
        sent = submit_all(relay, scen, "log-only" if log_only else "enforce")
        wait_until(lambda: settled(relay, sent), 60)
        for s in scen:
            check_outcome(relay, args.world, s, sent, log_only)
    finally:
        rc = relay.stop()
        report(("log-only" if log_only else "enforce") + ".clean-stop",
               rc == 0, f"exit {rc}: {relay.tail()}")


def ndr_text(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {}
    for p in msg.walk():    # the report's own parts come first
        parts.setdefault(p.get_content_type(), p)
    return msg, parts


def run_ndr(args):
    """Lifetime over: 4.7.323 becomes 5.7.323 and the sender is told."""
    extra = "[delivery]\nretry_schedule = 1s\nmax_queue_lifetime = 3s\n" \
            "delay_warning = 0\n"
    relay = Relay(args.binary, args.world, extra, name="ndr").start()
    try:
        code, qid, msgid = relay.submit(SENDER, ["user@ee-wrong-digest.test"],
                                        subject="ndr please")

        def ndr():
            for host, meta, raw in world_mail(args.world, msgid, reports=True):
                if b"delivery-status" in raw:
                    return raw
            return None
        raw = wait_until(ndr, 40)
        report("ndr.arrives-at-sender", raw is not None, relay.tail())
        if raw is None:
            return
        msg, parts = ndr_text(raw)
        status = parts.get("message/delivery-status")
        text = parts.get("text/plain")
        ds = status.as_string() if status is not None else ""
        human = text.get_content() if text is not None else ""
        report("ndr.multipart-report",
               msg.get_content_type() == "multipart/report" and
               msg.get_param("report-type") == "delivery-status", msg["Content-Type"])
        report("ndr.status-5.7.323", "Status: 5.7.323" in ds and
               "Action: failed" in ds and "user@ee-wrong-digest.test" in ds, ds[:500])
        report("ndr.explains-and-names-check",
               "ee-wrong-digest.test" in human and
               "danerelay check ee-wrong-digest.test" in human, human[:500])
        events = relay.trace(qid)
        report("ndr.trace-bounced-and-dsn-sent",
               any(e.get("type") == "bounced" for e in events) and
               any(e.get("type") == "dsn-sent" for e in events), str(events[-3:]))
    finally:
        relay.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    scen = [s for s in scenarios(args.world)
            if args.only is None or s["name"] == args.only]
    run_mode(args, scen, log_only=False)
    run_mode(args, scen, log_only=True)
    run_ndr(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
