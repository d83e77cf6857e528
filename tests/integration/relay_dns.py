#!/usr/bin/python3
"""The relay when its DNS is down, in the test world (issue 10, §2):
- started while the world's DNS server (NSD) is stopped, `serve` starts,
  accepts mail with 250, logs that the resolver is unreachable (a
  timeout, not a SERVFAIL), defers with 4.4.3 and delivers nothing; once
  NSD runs again on the same port the self-test passes and every message
  is delivered exactly once, long before the retry schedule would have
  tried again;
- a resolver that answers but cannot validate (a wrong trust anchor for
  the world's root) keeps the mail deferred: nothing is ever delivered
  without DNSSEC validation;
- NSD killed while the relay runs, then started again: every message is
  delivered exactly once.

NSD is stopped and started again with the world's own configuration
(DIR/nsd/nsd.conf, same port); the world is left with NSD running.

Usage: relay_dns.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "world"))
import world as worldmod  # noqa: E402
from worldlib import Relay, log_has, report, wait_until, world_mail  # noqa

DEST = "user@ee-311.test"
DEST2 = "user@ee-301.test"
SENDER = "sender@ee-311.test"
# Long: a delivery that comes soon after DNS returns was not the backoff.
SLOW_RETRY = "[delivery]\nretry_schedule = 10m\n"


def dns_port(world):
    return json.load(open(os.path.join(world, "world.json")))["dns_port"]


def nsd_answers(world):
    return worldmod.dns_rcode(".", 6, dns_port(world)) is not None


def nsd_stop(world, sig=signal.SIGTERM):
    """Stop the world's NSD (its process group); True when DNS is silent."""
    pidfile = os.path.join(world, "run", "nsd.pid")
    with open(pidfile) as f:
        pgid = int(f.read().strip())
    if any(worldmod.ours(p, world) for p in worldmod.group_members(pgid)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
    wait_until(lambda: not worldmod.group_members(pgid), 10)
    return not nsd_answers(world)


def nsd_start(world):
    """NSD again, same config and port; True when it answers."""
    conf = os.path.join(world, "nsd", "nsd.conf")
    worldmod.spawn("nsd", ["nsd", "-d", "-c", conf], world)
    return bool(wait_until(lambda: nsd_answers(world), 20))


def delivered_once(world, msgids):
    return all(len(world_mail(world, m)) == 1 for m in msgids)


def deferred_443(relay):
    q = relay.queue()
    return q and all(r.get("last_status") == "4.4.3" for r in q)


def submit_n(relay, n, dest, tag):
    out = []
    for i in range(n):
        code, qid, msgid = relay.submit(SENDER, [dest], subject=f"{tag} {i}")
        out.append((code, qid, msgid))
    return out


def start_and_submit(relay, name, n, tag):
    """Start serve (it must start whatever DNS does) and submit n
    messages; the sends, or None when serve did not start."""
    try:
        relay.start()
        report(f"{name}.serve-starts", True)
    except RuntimeError as e:
        report(f"{name}.serve-starts", False, str(e)[-300:])
        return None
    sent = submit_n(relay, n, DEST, tag)
    report(f"{name}.accepted-250", all(c == 250 for c, _, _ in sent),
           str([c for c, _, _ in sent]))
    return sent


def test_down_at_start(args):
    name = "dns-down-at-start"
    if not nsd_stop(args.world):
        report(f"{name}.nsd-stopped", False, "NSD still answers")
        return
    relay = Relay(args.binary, args.world, SLOW_RETRY, name="dnsdown")
    try:
        sent = start_and_submit(relay, name, 3, "dns down")
        if sent is None:
            return
        line = wait_until(lambda: log_has(relay, "dns: resolver unreachable",
                                          "deliveries deferred"), 60)
        report(f"{name}.logs-resolver-state", bool(line), relay.tail())
        report(f"{name}.says-timeout",
               bool(line) and "timeout" in line and "SERVFAIL" not in line,
               str(line))
        ok = wait_until(lambda: deferred_443(relay), 30)
        report(f"{name}.deferred-4.4.3", bool(ok), json.dumps(relay.queue()))
        events = relay.trace(sent[0][1])
        report(f"{name}.trace-4.4.3",
               any(e.get("type") == "deferred" and
                   "4.4.3" in json.dumps(e) for e in events),
               json.dumps(events)[:500])
        msgids = [m for _, _, m in sent]
        report(f"{name}.nothing-delivered-while-down",
               all(not world_mail(args.world, m) for m in msgids), "")
        if not nsd_start(args.world):
            report(f"{name}.nsd-restarted", False, "NSD does not answer")
            return
        back = time.monotonic()
        resumed = wait_until(lambda: log_has(
            relay, "dns: DNSSEC validation self-test passed",
            "deliveries resume"), 60)
        report(f"{name}.logs-recovery", bool(resumed), relay.tail())
        ok = wait_until(lambda: delivered_once(args.world, msgids), 60)
        report(f"{name}.delivered-once-after-return", ok,
               str([len(world_mail(args.world, m)) for m in msgids]))
        if ok:
            took = time.monotonic() - back
            print(f"INFO {name}: {len(msgids)} messages delivered "
                  f"{took:.1f}s after NSD answered again", flush=True)
            report(f"{name}.delivered-soon", took < 60,
                   f"{took:.1f}s after DNS returned")
        time.sleep(2)
        report(f"{name}.no-duplicate",
               delivered_once(args.world, msgids),
               str([len(world_mail(args.world, m)) for m in msgids]))
        report(f"{name}.queue-empty", relay.queue() == [],
               json.dumps(relay.queue())[:300])
    finally:
        rc = relay.stop()
        report(f"{name}.clean-stop", rc == 0, f"exit {rc}: {relay.tail(5)}")
        if not nsd_answers(args.world):
            nsd_start(args.world)


def bad_anchor(world, path):
    """The world's root DS with its digest changed: a trust anchor that
    does not match the root's keys."""
    out = []
    for line in open(os.path.join(world, "root.ds")):
        p = line.split()
        if len(p) >= 8:
            d = p[7]
            p[7] = ("0" if d[0] != "0" else "1") + d[1:]
            line = "\t".join(p[:5]) + "\t" + " ".join(p[5:]) + "\n"
        out.append(line)
    with open(path, "w") as f:
        f.write("".join(out))


def test_cannot_validate(args):
    name = "dns-cannot-validate"
    if not nsd_answers(args.world):
        report(f"{name}.nsd-running", False, "NSD does not answer")
        return
    relay = Relay(args.binary, args.world, SLOW_RETRY, name="dnsbogus")
    anchor = os.path.join(relay.dir, "wrong-root.ds")
    bad_anchor(args.world, anchor)
    text = open(relay.conf).read().replace(
        os.path.join(args.world, "root.ds"), anchor)
    with open(relay.conf, "w") as f:
        f.write(text)
    try:
        sent = start_and_submit(relay, name, 2, "no validation")
        if sent is None:
            return
        line = wait_until(lambda: log_has(
            relay, "dns: DNSSEC validation fails", "deliveries deferred"), 60)
        report(f"{name}.logs-validation-fails", bool(line), relay.tail())
        ok = wait_until(lambda: deferred_443(relay), 30)
        report(f"{name}.deferred-4.4.3", bool(ok), json.dumps(relay.queue()))
        # Several self-test rounds: still nothing goes out.
        time.sleep(12)
        msgids = [m for _, _, m in sent]
        report(f"{name}.never-delivered",
               all(not world_mail(args.world, m) for m in msgids), "")
        report(f"{name}.still-queued", len(relay.queue()) == len(msgids),
               json.dumps(relay.queue())[:300])
        report(f"{name}.no-resume",
               log_has(relay, "self-test passed") is None, relay.tail())
    finally:
        rc = relay.stop()
        report(f"{name}.clean-stop", rc == 0, f"exit {rc}: {relay.tail(5)}")


def test_dies_mid_run(args):
    name = "dns-dies-mid-run"
    if not nsd_answers(args.world):
        report(f"{name}.nsd-running", False, "NSD does not answer")
        return
    relay = Relay(args.binary, args.world,
                  "[delivery]\nretry_schedule = 5s\n", name="dnsmid").start()
    try:
        first = submit_n(relay, 3, DEST, "before")
        msgids = [m for _, _, m in first]
        ok = wait_until(lambda: delivered_once(args.world, msgids), 60)
        report(f"{name}.delivered-before", ok, relay.tail())
        if not nsd_stop(args.world, signal.SIGKILL):
            report(f"{name}.nsd-killed", False, "NSD still answers")
            return
        # A domain not looked up before: its MX lookup needs DNS.
        later = submit_n(relay, 3, DEST2, "while down")
        later += submit_n(relay, 2, DEST, "while down")
        report(f"{name}.accepted-250", all(c == 250 for c, _, _ in later),
               str([c for c, _, _ in later]))
        time.sleep(8)
        if not nsd_start(args.world):
            report(f"{name}.nsd-restarted", False, "NSD does not answer")
            return
        msgids += [m for _, _, m in later]
        ok = wait_until(lambda: delivered_once(args.world, msgids), 90)
        report(f"{name}.all-delivered-after-return", ok,
               str([len(world_mail(args.world, m)) for m in msgids]) +
               relay.tail())
        time.sleep(2)
        report(f"{name}.no-duplicate", delivered_once(args.world, msgids),
               str([len(world_mail(args.world, m)) for m in msgids]))
    finally:
        rc = relay.stop()
        report(f"{name}.clean-stop", rc == 0, f"exit {rc}: {relay.tail(5)}")
        if not nsd_answers(args.world):
            nsd_start(args.world)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.world = os.path.abspath(args.world)
    test_down_at_start(args)
    test_cannot_validate(args)
    test_dies_mid_run(args)


if __name__ == "__main__":
    main()
