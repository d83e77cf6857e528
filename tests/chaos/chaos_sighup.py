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
    name = "sighup-storm"
    ledger = cl.Ledger(name)
    recv = cl.Receivers(args.world)
    relay = cl.ChaosRelay(args.binary, args.world,
                          "[delivery]\nretry_schedule = 1s\n", name="sighup")
    problems = []
    fig, bad = {}, []
    try:
        relay.start()
        load = cl.Load(ledger, [relay.port], ["user@" + d for d in cl.DESTS],
                       threads=4).start()
        time.sleep(1.0)
        sent = 0
        with ledger.fault("sighup-storm"):
            for i in range(args.signals):
                if not relay.alive():
                    break
                relay.proc.send_signal(signal.SIGHUP)
                sent += 1
                time.sleep(args.over / args.signals)
        time.sleep(2.0)
        alive = relay.alive()
        load.stop()
        if not alive:
            problems.append("the relay died during the storm: " +
                            relay.tail(3).replace("\n", " "))
            relay.start()               # to let the queue drain and count
        during = [r for r in ledger.sent.values()
                  if ledger.faults[0]["t0"] <= r["t0"] <= ledger.faults[0]["t1"]]
        ok_during = sum(1 for r in during if r["code"] == 250)
        if not cl.wait_delivered(ledger, recv, args.drain):
            why = cl.stuck(relay)
            if why:
                problems.append(why)
        time.sleep(2.0)
        rc = relay.stop()
        if rc != 0:
            problems.append("relay stop exit %s" % rc)
        fig, bad = cl.judge(ledger, recv, [relay.queue_dir()])
        fig["sighups"] = sent
        fig["accepted_during_storm"] = ok_during
        if ok_during == 0:
            problems.append("nothing was accepted during the storm")
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
    sys.exit(cl.guard("sighup-storm", main))
