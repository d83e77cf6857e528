#!/usr/bin/python3
"""Crash loops: kill -9 of `danerelay serve` under load, again and again.

Four clients submit without pause to several DANE destinations of the test
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
    rnd = random.Random(args.seed)
    ledger = cl.Ledger(name)
    recv = cl.Receivers(args.world)
    relay = cl.ChaosRelay(args.binary, args.world,
                          "[delivery]\nretry_schedule = 1s\n", name=name)
    problems = []
    try:
        relay.start()
        load = cl.Load(ledger, [relay.port], ["user@" + d for d in cl.DESTS],
                       threads=4).start()
        restarts = []
        for _ in range(args.cycles):
            time.sleep(rnd.uniform(0.7, 2.0))
            if not relay.alive():
                problems.append("the relay died by itself: " + relay.tail(3))
            relay.kill9(ledger)
            t = time.monotonic()
            relay.start()
            restarts.append(time.monotonic() - t)
        time.sleep(1.0)
        load.stop()
        if not cl.wait_delivered(ledger, recv, args.drain):
            why = cl.stuck(relay)
            if why:
                problems.append(why)
        time.sleep(3.0)                 # late duplicates have time to come
        rc = relay.stop()
        if rc != 0:
            problems.append("relay stop exit %s" % rc)
        fig, bad = cl.judge(ledger, recv, [relay.queue_dir()])
        fig["kills"] = ledger.count("kill9")
        fig["restart_max_s"] = "%.1f" % max(restarts or [0])
        if fig["kills"] < args.cycles:
            problems.append("only %d kills" % fig["kills"])
        if fig.get("dup_kill", 0) + fig["cut"] == 0 and args.cycles >= 5:
            # not a failure of the relay, but the test proved less
            print("note: no kill fell inside a transaction", flush=True)
    except RuntimeError as e:
        problems.append(str(e).splitlines()[0] if str(e) else "relay")
        fig, bad = cl.judge(ledger, recv)
    finally:
        relay.stop()
    san = cl.sanitizer_report(relay)
    if san:
        problems.append("sanitizer: " + san)
    return cl.verdict(name, fig, problems, bad)


if __name__ == "__main__":
    sys.exit(cl.guard("kill9", main))
