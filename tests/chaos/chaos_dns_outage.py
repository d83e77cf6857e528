#!/usr/bin/python3
"""DNS that dies and returns mid-run.

Two clients submit to two destinations; then the world's only name
server (NSD) is killed, and for the outage two more clients submit to
those two and to four destinations the relay has not resolved yet
(nothing in its cache: their mail must wait). NSD is started again and
the load goes on a little. Every acknowledged message must arrive exactly
once (no fault here allows a duplicate); mail submitted during the outage
to the new destinations must have waited for DNS (proof that the outage
bit), and all of it must be delivered soon after DNS answers again.

Usage: chaos_dns_outage.py --binary PATH --world DIR [--outage S]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402

WARM = cl.DESTS[:2]
COLD = cl.DESTS[2:6]


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--outage", type=float, default=8.0)
    ap.add_argument("--recovery", type=float, default=60,
                    help="seconds allowed after DNS returns")
    args = ap.parse_args()
    name = "dns-outage" if args.outage <= 30 else \
        "dns-outage-%ds" % args.outage
    sc = cl.Scenario(name, args)
    relay = sc.relay("[delivery]\nretry_schedule = 1s\n", "dnsout")

    def body():
        if not cl.dns_answers(args.world):
            raise RuntimeError("the world's DNS does not answer at start")
        relay.start()
        warm = cl.Load(sc.ledger, [relay.port], ["user@" + d for d in WARM],
                       threads=2, pause=0.05).start()
        time.sleep(2.0)
        with sc.ledger.fault("dns-down") as f:
            if not cl.nsd_stop(args.world):
                raise RuntimeError("NSD still answers after it was killed")
            cold = cl.Load(sc.ledger, [relay.port],
                           ["user@" + d for d in COLD + WARM], threads=2,
                           pause=0.05).start()
            time.sleep(args.outage)
            if not cl.nsd_start(args.world):
                raise RuntimeError("NSD did not come back")
        back = f["t1"]
        time.sleep(2.0)
        warm.stop()
        cold.stop()
        sc.drain(relay, args.recovery)
        copies = sc.recv.copies(sc.ledger.tag)
        sent = list(sc.ledger.sent.items())
        held = [m for m, r in sent if r["code"] == 250
                and f["t0"] <= r["t0"] <= f["t1"] - 1.0
                and r["rcpt"].split("@")[1] in COLD]
        # Mail to a destination never resolved cannot leave without DNS:
        # what went out before NSD returned means the outage did not bite.
        waited = [m for m in held if not copies.get(m)
                  or copies[m][0]["t_dot"] >= back - 0.5]
        late = [copies[m][0]["t_dot"] - back for m in held if copies.get(m)]
        sc.fig["outage_s"] = "%.1f" % (back - f["t0"])
        sc.fig["accepted_during_outage"] = sum(
            1 for m, r in sent
            if r["code"] == 250 and f["t0"] <= r["t0"] <= f["t1"])
        sc.fig["held"] = len(held)
        sc.fig["waited_for_dns"] = len(waited)
        sc.fig["recovery_s"] = "%.1f" % max(late or [0])
        if not waited:
            sc.problem("no mail waited for DNS: the outage did not bite "
                       "(%d held)" % len(held))
        if sc.fig["accepted_during_outage"] == 0:
            sc.problem("nothing was accepted during the outage")

    return sc.run(body, cleanup=lambda: cl.ensure_dns(args.world))


if __name__ == "__main__":
    sys.exit(cl.guard("dns-outage", main))
