#!/usr/bin/python3
"""DNS down at start.

The world's name server is killed before `danerelay serve` starts. The
relay must start anyway, accept and queue mail (250), defer it with
4.4.3 (DNS stays down until it has, 45 s at most) and say in its log
what state the resolver is in; once NSD answers again, everything must be
delivered soon, exactly once.

Usage: chaos_dns_start.py --binary PATH --world DIR [--outage S]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--outage", type=float, default=6.0,
                    help="seconds DNS stays down after the relay started")
    ap.add_argument("--recovery", type=float, default=60)
    args = ap.parse_args()
    sc = cl.Scenario("dns-down-at-start", args)
    relay = sc.relay("[delivery]\nretry_schedule = 2s\n", "dnsstart")

    def body():
        with sc.ledger.fault("dns-down") as f:
            if not cl.nsd_stop(args.world):
                raise RuntimeError("NSD still answers after it was killed")
            try:
                relay.start(timeout=30)
            except RuntimeError as e:
                raise RuntimeError("the relay did not start with DNS down: "
                                   + " ".join(str(e).split()[-30:]))
            cl.Load(sc.ledger, [relay.port],
                    ["user@" + d for d in cl.DESTS[:4]], threads=2,
                    limit=20).start().wait(60)
            # DNS stays down at least --outage seconds, and until the
            # relay has deferred something (its resolver may take a while
            # to time out), at most 45 s.
            t = time.monotonic()
            cl.wait_until(lambda: any(e.get("last_status") == "4.4.3"
                                      for e in relay.queue()), 45, step=1.0)
            time.sleep(max(0, args.outage - (time.monotonic() - t)))
            statuses = sorted({e.get("last_status") or "-"
                               for e in relay.queue()})
            if not cl.nsd_start(args.world):
                raise RuntimeError("NSD did not come back")
        back = f["t1"]
        sc.drain(relay, args.recovery)
        copies = sc.recv.copies(sc.ledger.tag)
        early = [m for m, c in copies.items() if c[0]["t_dot"] < back]
        sc.fig["deferred_statuses"] = ",".join(statuses)
        sc.fig["delivered_before_dns"] = len(early)
        sc.fig["recovery_s"] = "%.1f" % max(
            [c[0]["t_dot"] - back for c in copies.values()] or [0])
        if early:
            sc.problem("%d messages delivered while DNS was down"
                       % len(early))
        if "4.4.3" not in statuses:
            sc.problem("queued mail not deferred with 4.4.3 while DNS was "
                       "down (statuses %s)" % statuses)
        if not cl.log_mentions(relay, ("resolver",)):
            sc.problem("the log says nothing about the resolver")

    return sc.run(body, cleanup=lambda: cl.ensure_dns(args.world))


if __name__ == "__main__":
    sys.exit(cl.guard("dns-down-at-start", main))
