#!/usr/bin/python3
"""TLS-RPT recording in the relay (RFC 8460 §4): every TLS negotiation of a
delivery attempt is counted under its policy (tlsa, sts, no-policy-found),
and `danerelay tlsrpt list` / `show` print what would be reported. The
report shown must follow the RFC 8460 schema (checked with
python3-jsonschema) and count the right sessions.

Usage: relay_tlsrpt.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, report, wait_until  # noqa: E402

try:
    import jsonschema
except ImportError:  # scripts/deps installs python3-jsonschema
    jsonschema = None

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    extra = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n" \
            "[tlsrpt]\norganization = relay.test\ncontact = postmaster@relay.test\n"
    relay = Relay(args.binary, args.world, extra, name="tlsrpt").start()
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    try:
        sent = {d: relay.submit(SENDER, [f"user@{d}"])[1] for d in EXPECT}

        def tried():
            q = {e["msgid"]: e for e in relay.queue()}
            return all(qid not in q or q[qid]["attempts"] >= 1
                       for qid in sent.values())
        wait_until(tried, 60)
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
            if jsonschema is not None:
                try:
                    jsonschema.validate(doc, SCHEMA)
                    valid, why = True, ""
                except jsonschema.ValidationError as ex:
                    valid, why = False, ex.message
            else:
                valid, why = False, "python3-jsonschema missing"
            pol = doc["policies"][0] if doc.get("policies") else {}
            types = [f.get("result-type") for f in pol.get("failure-details", [])]
            report(f"show.{dom}", valid and
                   pol.get("policy", {}).get("policy-type") == ptype and
                   pol.get("policy", {}).get("policy-domain") == dom and
                   (rt is None or rt in types), why or json.dumps(pol)[:300])
        rc, out, err = relay.cli("tlsrpt", "show", "nothing.test", day)
        report("show.no-data", rc == 1 and "no data" in err, f"rc={rc}")
    finally:
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
