#!/usr/bin/python3
"""[delivery] relayhost: one next hop (a smarthost) for all mail to domains
without a route of their own, with the DANE semantics of a [domain] route
(RFC 7672 §2.2.2: the relay host's own DNSSEC-signed TLSA records
authenticate it):
- mail to several domains (one with DANE of its own, one without TLSA,
  one unsigned, one whose own TLSA is broken) all goes to the relayhost,
  verified by the relayhost's TLSA; a [domain] section without a route
  (only `security`) still goes through it;
- a [domain] route wins over the relayhost; `route = direct` is the
  domain's own MX;
- `relayhost = host:port` (no brackets) is the MX of host;
- a relayhost whose TLSA matches nothing defers 4.7.323 (tlsa-invalid),
  also for a domain whose own MX would have verified; SIGHUP with a good
  relayhost then delivers the waiting mail;
- no TLS-RPT record is made for the recipient domains (the relayhost is
  not their MX), only for the one delivered directly;
- check-config prints the key.

Usage: relay_relayhost.py --binary PATH --world DIR
"""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, log_has, rewrite_config, wait_until  # noqa: E402
from worldlib import world_mail  # noqa: E402
from worldlib import report as _report  # noqa: E402

SENDER = "postmaster@ee-311.test"
VERDICT = ("delivered", "deferred", "bounced")
FAILED, DIRS, RELAYS = [], [], []
HOSTS = {}


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, bool(ok), why)


def start(args, extra, name):
    relay = Relay(args.binary, args.world, extra, name=name)
    DIRS.append(relay.dir)
    RELAYS.append(relay)
    return relay.start()


def attempt(relay, qid, rcpt):
    """The last attempt event of rcpt once its verdict is in, or {}."""
    def verdict():
        ev = [e for e in relay.trace(qid) if e.get("recipient") == rcpt]
        return ev if any(e.get("type") in VERDICT for e in ev) else None
    ev = wait_until(verdict, 30) or []
    att = [e for e in ev if e.get("type") == "attempt"]
    return att[-1] if att else {}


def arrived_at(world, msgid, rcpt):
    """Hosts where msgid arrived for rcpt."""
    got = wait_until(lambda: world_mail(world, msgid), 20) or []
    return sorted(h for h, meta, raw in got if rcpt in meta.get("rcpt_to"))


def send(args, relay, rcpt, subject):
    """Submit one message to rcpt: (code, qid, msgid, last attempt,
    hosts where it arrived)."""
    code, qid, msgid = relay.submit(SENDER, [rcpt], subject=subject)
    att = attempt(relay, qid, rcpt)
    return code, qid, msgid, att, arrived_at(args.world, msgid, rcpt)


def short(x, n=300):
    s = str(x)
    return s if len(s) <= n else s[:n] + "..."


def test_all_domains(args, port):
    extra = f"""
[delivery]
relayhost = [mx.ee-311.test]:{port}
retry_schedule = 1h
delay_warning = 0
[domain unsigned.test]
security = may
[domain insecure-mx-good.test]
route = [mx.no-tlsa.test]:{port}
[domain ee-312.test]
route = direct
"""
    relay = start(args, extra, "relayhost")
    try:
        # unsigned.test's own section says security = may: the hop to
        # the relayhost then has that level (TLS, TLSA not checked).
        for dom, tls in (("no-tlsa.test", "verified"),
                         ("unsigned.test", "encrypted"),
                         ("ee-wrong-digest.test", "verified"),
                         ("ee-301.test", "verified")):
            rcpt = f"user@{dom}"
            code, qid, msgid, att, hosts = send(args, relay, rcpt,
                                                f"relayhost {dom}")
            line = log_has(relay, qid, f"to=<{rcpt}>", "status=sent",
                           f"tls={tls}", "relay=mx.ee-311.test[")
            report(f"relayhost.{dom}-via-relayhost-{tls}",
                   code == 250 and hosts == ["mx.ee-311.test"] and
                   att.get("mx") == "mx.ee-311.test" and
                   att.get("tls") == tls and att.get("port") == port and
                   (tls != "verified" or
                    att.get("tlsa_base") == "mx.ee-311.test") and
                   line is not None,
                   f"code={code} arrived={hosts} attempt={short(att)} "
                   f"log={line!r}")
        rcpt = "user@insecure-mx-good.test"
        code, qid, msgid, att, hosts = send(args, relay, rcpt, "own route")
        report("relayhost.domain-route-wins",
               hosts == ["mx.no-tlsa.test"] and
               att.get("mx") == "mx.no-tlsa.test",
               f"arrived={hosts} attempt={short(att)}")
        rcpt = "user@ee-312.test"
        code, qid, msgid, att, hosts = send(args, relay, rcpt, "direct")
        report("relayhost.route-direct-uses-own-mx",
               hosts == ["mx.ee-312.test"] and
               att.get("tls") == "verified" and
               att.get("tlsa_base") == "mx.ee-312.test",
               f"arrived={hosts} attempt={short(att)}")
        try:
            db = sqlite3.connect(os.path.join(relay.dir, "queue",
                                              "tlsrpt.db"))
            doms = {r[0] for r in db.execute("SELECT domain FROM policies")}
            db.close()
        except sqlite3.Error as e:
            doms = {f"({e})"}
        # Only the domain delivered to its own MX is counted.
        report("relayhost.tlsrpt-only-for-own-mx", doms == {"ee-312.test"},
               f"recorded for {doms}")
        rc, out, err = relay.cli("check-config")
        report("relayhost.check-config-prints-it",
               rc == 0 and f"relayhost = [mx.ee-311.test]:{port}" in out,
               f"rc={rc} {err[-200:]}")
    finally:
        relay.stop()


def test_mx_form(args, port):
    extra = f"[delivery]\nrelayhost = ee-311.test:{port}\n"
    relay = start(args, extra, "relayhost-mx")
    try:
        rcpt = "user@no-tlsa.test"
        code, qid, msgid, att, hosts = send(args, relay, rcpt, "mx form")
        report("relayhost.host-port-is-mx-of-host",
               hosts == ["mx.ee-311.test"] and att.get("tls") == "verified",
               f"arrived={hosts} attempt={short(att)}")
    finally:
        relay.stop()


def test_bad_tlsa(args, port):
    extra = f"""
[delivery]
relayhost = [mx.ee-wrong-digest.test]:{port}
retry_schedule = 1h
delay_warning = 0
"""
    relay = start(args, extra, "relayhost-bad")
    try:
        rcpt = "user@ee-311.test"
        code, qid, msgid = relay.submit(SENDER, [rcpt], subject="bad tlsa")
        att = attempt(relay, qid, rcpt)
        q = [e for e in relay.queue() if e["msgid"] == qid]
        line = log_has(relay, qid, "dsn=4.7.323", "status=deferred",
                       "result=tlsa-invalid")
        report("relayhost.bad-tlsa-defers-4.7.323",
               att.get("status") == "4.7.323" and
               att.get("result_type") == "tlsa-invalid" and
               att.get("mx") == "mx.ee-wrong-digest.test" and
               len(q) == 1 and not world_mail(args.world, msgid) and
               line is not None,
               f"attempt={short(att)} queue={short(q)} log={line!r}")
        # The smarthost is mended: SIGHUP, retry, and the mail goes out.
        rewrite_config(relay, lambda s: s["delivery"].update(
            relayhost=f"[mx.ee-311.test]:{port}"))
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: log_has(relay, "configuration reloaded"), 20)
        relay.cli("queue", "retry", qid)
        hosts = arrived_at(args.world, msgid, rcpt)
        report("relayhost.sighup-applies-new-relayhost",
               hosts == ["mx.ee-311.test"],
               f"arrived={hosts} {relay.tail(4)}")
    finally:
        relay.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    hj = json.load(open(os.path.join(args.world, "hosts.json")))
    HOSTS.update({h["name"]: h["ip"] for h in hj["hosts"]})
    port = hj["smtp_port"]
    t0 = time.monotonic()
    for name, fn in (("all-domains", test_all_domains),
                     ("mx-form", test_mx_form),
                     ("bad-tlsa", test_bad_tlsa)):
        try:
            fn(args, port)
        except Exception as e:          # one broken case must not hide the rest
            report(f"{name}.ran", False, f"{type(e).__name__}: {e}")
    for r in RELAYS:
        r.stop()
    if FAILED:
        print(f"relay_relayhost: kept for inspection: {' '.join(DIRS)}",
              flush=True)
    else:
        for d in DIRS:
            shutil.rmtree(d, ignore_errors=True)
    print(f"relay_relayhost: {time.monotonic() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
