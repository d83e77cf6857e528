#!/usr/bin/python3
"""Crash loops: kill -9 of `danerelay serve` under load, again and again.

Four clients submit without pause to six DANE destinations of the test
world; every 0.7-2 s the relay is killed with SIGKILL and started again at
once. Then the load stops and the queue drains. Every message acknowledged
with 250 must arrive, and a message may arrive twice only when a kill cut
its delivery after the final dot and before the relay recorded the reply
(chaoslib's judge). The short form (5 cycles) runs in scripts/test;
tests/chaos/run-long runs 100.

Usage: chaos_kill9.py --binary PATH --world DIR [--cycles N] [--seed N]
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drain", type=float, default=90,
                    help="seconds allowed for the queue to drain")
    args = ap.parse_args()
    name = "kill9" if args.cycles <= 10 else "kill9-%d" % args.cycles
    sc = cl.Scenario(name, args)
    relay = sc.relay("[delivery]\nretry_schedule = 1s\n", name)
    rnd = random.Random(args.seed)

    def body():
        relay.start()
        load = cl.Load(sc.ledger, [relay.port],
                       ["user@" + d for d in cl.DESTS[:6]], threads=4).start()
        restarts = []
        for _ in range(args.cycles):
            time.sleep(rnd.uniform(0.7, 2.0))
            if not relay.alive():
                sc.problem("the relay died by itself: " + relay.tail(3))
            relay.kill9(sc.ledger)
            t = time.monotonic()
            relay.start()
            restarts.append(time.monotonic() - t)
        time.sleep(1.0)
        load.stop()
        sc.drain(relay, args.drain, settle=3.0)
        sc.fig["kills"] = sc.ledger.count("kill9")
        sc.fig["restart_max_s"] = "%.1f" % max(restarts or [0])
        if sc.fig["kills"] < args.cycles:
            sc.problem("only %d kills" % sc.fig["kills"])

    return sc.run(body)


if __name__ == "__main__":
    sys.exit(cl.guard("kill9", main))
