#!/usr/bin/python3
"""DNS down at start.

The world's name server is killed before `danerelay serve` starts. The
relay must start anyway, accept and queue mail (250), defer it with
4.4.3 and say in its log what state the resolver is in; once NSD answers
again, everything must be delivered soon (well before the first retry of
a default schedule), exactly once.

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
    name = "dns-down-at-start"
    ledger = cl.Ledger(name)
    recv = cl.Receivers(args.world)
    # The default retry schedule (5m first): delivery after DNS returns
    # must not wait for a retry, the relay must notice DNS is back.
    relay = cl.ChaosRelay(args.binary, args.world,
                          "[delivery]\nretry_schedule = 2s\n",
                          name="dnsstart")
    problems = []
    fig, bad = {}, []
    try:
        with ledger.fault("dns-down") as f:
            if not cl.nsd_stop(args.world):
                raise RuntimeError("NSD still answers after it was killed")
            try:
                relay.start(timeout=30)
            except RuntimeError as e:
                raise RuntimeError("the relay did not start with DNS down: "
                                   + " ".join(str(e).split()[-30:]))
            load = cl.Load(ledger, [relay.port],
                           ["user@" + d for d in cl.DESTS[:4]], threads=2,
                           limit=20).start()
            load.wait(60)
            time.sleep(args.outage)
            queued = relay.queue()
            statuses = sorted({e.get("last_status") or "-" for e in queued})
            if not cl.nsd_start(args.world):
                raise RuntimeError("NSD did not come back")
        back = f["t1"]
        if not cl.wait_delivered(ledger, recv, args.recovery):
            why = cl.stuck(relay)
            if why:
                problems.append(why)
        time.sleep(2.0)
        rc = relay.stop()
        if rc != 0:
            problems.append("relay stop exit %s" % rc)
        fig, bad = cl.judge(ledger, recv, [relay.queue_dir()])
        copies = recv.copies(ledger.tag)
        early = [m for m, c in copies.items() if c[0]["t_dot"] < back]
        firsts = [c[0]["t_dot"] - back for c in copies.values()]
        fig["deferred_statuses"] = ",".join(statuses)
        fig["delivered_before_dns"] = len(early)
        fig["recovery_s"] = "%.1f" % max(firsts or [0])
        if early:
            problems.append("%d messages delivered while DNS was down"
                            % len(early))
        if "4.4.3" not in statuses:
            problems.append("queued mail not deferred with 4.4.3 while DNS "
                            "was down (statuses %s)" % statuses)
        if not cl.log_mentions(relay, ("resolver",)):
            problems.append("the log says nothing about the resolver")
    except RuntimeError as e:
        problems.append(str(e).splitlines()[0] if str(e) else "relay")
        fig, bad = cl.judge(ledger, recv)
    finally:
        relay.stop()
        cl.ensure_dns(args.world)
    san = cl.sanitizer_report(relay)
    if san:
        problems.append("sanitizer: " + san)
    return cl.verdict(name, fig, problems, bad)


if __name__ == "__main__":
    sys.exit(cl.guard("dns-down-at-start", main))
