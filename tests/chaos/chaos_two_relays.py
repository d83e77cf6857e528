#!/usr/bin/python3
"""Two relays on one queue directory.

Two `danerelay serve` with the same `[queue] directory` (and their own
listen ports) are started together while clients wait to submit: exactly
one may run; the other must exit at once, non-zero, naming the PID that
holds the queue. A third started later beside the survivor must do the
same. Meanwhile `queue list`, `trace` and `tlsrpt list` must keep
working beside the running relay. The load goes to every port that
listens; every acknowledged message must arrive exactly once (no fault
here allows a duplicate).

Usage: chaos_two_relays.py --binary PATH --world DIR [--messages N]
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def spawn(relay):
    relay.logf = open(relay.log, "ab")
    relay.proc = subprocess.Popen([relay.binary, "-c", relay.conf, "serve"],
                                  stdout=relay.logf, stderr=relay.logf)
    return relay


def refused(sc, loser, holder, what):
    """loser must have exited non-zero, naming holder's PID."""
    text = open(loser.log, errors="replace").read()
    if loser.alive():
        sc.problem("%s keeps running beside PID %d" % (what, holder.proc.pid))
    elif loser.proc.returncode == 0 or str(holder.proc.pid) not in text:
        sc.problem("%s exited %s without naming PID %d: %s" % (
            what, loser.proc.returncode, holder.proc.pid,
            " ".join(text.split()[-25:])))


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--messages", type=int, default=80)
    ap.add_argument("--drain", type=float, default=60)
    args = ap.parse_args()
    sc = cl.Scenario("two-relays", args)
    extra = "[delivery]\nretry_schedule = 1s\n"
    a = sc.relay(extra, "two-a")
    shared = a.queue_dir()
    b = sc.relay(extra + "[queue]\ndirectory = %s\n" % shared, "two-b")
    c = sc.relay(extra + "[queue]\ndirectory = %s\n" % shared, "two-c")
    pair = [a, b]

    def body():
        load = cl.Load(sc.ledger, lambda: [r.port for r in pair if r.alive()
                                           and listening(r.port)],
                       ["user@" + d for d in cl.DESTS[:4]], threads=4,
                       limit=args.messages).start()
        spawn(a)
        spawn(b)
        cl.wait_until(lambda: any(not r.alive() for r in pair) or
                      all(listening(r.port) for r in pair), 30)
        time.sleep(2.0)             # a loser must be gone by now
        alive = [r for r in pair if r.alive()]
        sc.fig["running_together"] = len(alive)
        if len(alive) != 1:
            sc.problem("%d relays run on one queue" % len(alive))
        survivor = alive[0] if alive else a
        if len(alive) == 1:
            refused(sc, [r for r in pair if r is not survivor][0], survivor,
                    "the second relay")
        if survivor.alive():
            for cmd in (("queue", "list"), ("trace", "--since", "1h"),
                        ("tlsrpt", "list")):
                ok, what = cl.cli_ok(survivor, *cmd)
                if not ok:
                    sc.problem("beside the relay: " + what)
            spawn(c)
            t = time.monotonic()
            try:
                c.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            sc.fig["third_exit_s"] = "%.1f" % (time.monotonic() - t)
            refused(sc, c, survivor, "a relay started beside a running one")
        load.wait(120)
        load.stop()
        if not survivor.alive():
            sc.problem("no relay left running")
            survivor.start()
        sc.drain(survivor, args.drain, settle=3.0, queue_dir=shared)

    return sc.run(body)


if __name__ == "__main__":
    sys.exit(cl.guard("two-relays", main))
