#!/usr/bin/python3
"""A SIGHUP storm under load: 200 reloads in about 4 s while four clients
submit. The relay must stay up, keep accepting, and deliver every
acknowledged message exactly once (no fault here allows a duplicate).

Usage: chaos_sighup.py --binary PATH --world DIR [--signals N] [--over S]
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--signals", type=int, default=200)
    ap.add_argument("--over", type=float, default=4.0,
                    help="seconds the signals are spread over")
    ap.add_argument("--drain", type=float, default=60)
    args = ap.parse_args()
    sc = cl.Scenario("sighup-storm", args)
    relay = sc.relay("[delivery]\nretry_schedule = 1s\n", "sighup")

    def body():
        relay.start()
        load = cl.Load(sc.ledger, [relay.port],
                       ["user@" + d for d in cl.DESTS[:6]], threads=4).start()
        time.sleep(1.0)
        sent = 0
        with sc.ledger.fault("sighup-storm") as storm:
            for _ in range(args.signals):
                if not relay.alive():
                    break
                relay.proc.send_signal(signal.SIGHUP)
                sent += 1
                time.sleep(args.over / args.signals)
        time.sleep(2.0)
        alive = relay.alive()
        load.stop()
        if not alive:
            sc.problem("the relay died during the storm: " +
                       " ".join(relay.tail(3).split()[-20:]))
            relay.start()               # to let the queue drain and count
        during = sum(1 for r in list(sc.ledger.sent.values())
                     if r["code"] == 250 and
                     storm["t0"] <= r["t0"] <= storm["t1"])
        sc.drain(relay, args.drain)
        sc.fig["sighups"] = sent
        sc.fig["reloads"] = open(relay.log, errors="replace").read().count(
            "configuration reloaded")
        sc.fig["accepted_during_storm"] = during
        if during == 0:
            sc.problem("nothing was accepted during the storm")

    return sc.run(body)


if __name__ == "__main__":
    sys.exit(cl.guard("sighup-storm", main))
