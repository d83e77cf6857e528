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


def names_pid(relay, pid):
    text = open(relay.log, errors="replace").read()
    return str(pid) in text, " ".join(text.split()[-25:])


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--messages", type=int, default=80)
    ap.add_argument("--drain", type=float, default=60)
    args = ap.parse_args()
    name = "two-relays"
    ledger = cl.Ledger(name)
    recv = cl.Receivers(args.world)
    extra = "[delivery]\nretry_schedule = 1s\n"
    a = cl.ChaosRelay(args.binary, args.world, extra, name="two-a")
    shared = a.queue_dir()
    b = cl.ChaosRelay(args.binary, args.world, extra +
                      "[queue]\ndirectory = %s\n" % shared, name="two-b")
    c = cl.ChaosRelay(args.binary, args.world, extra +
                      "[queue]\ndirectory = %s\n" % shared, name="two-c")
    relays = [a, b]
    problems = []
    fig, bad = {}, []
    try:
        ports = lambda: [r.port for r in relays  # noqa: E731
                         if r.alive() and listening(r.port)]
        load = cl.Load(ledger, ports, ["user@" + d for d in cl.DESTS[:4]],
                       threads=4, limit=args.messages).start()
        spawn(a)
        spawn(b)
        cl.wait_until(lambda: sum(1 for r in relays if r.alive() and
                                  listening(r.port)) == 2 or
                      any(not r.alive() for r in relays), 30)
        time.sleep(2.0)             # a loser must be gone by now
        alive = [r for r in relays if r.alive()]
        fig["running_together"] = len(alive)
        if len(alive) != 1:
            problems.append("%d relays run on one queue" % len(alive))
        for r in relays:
            if not r.alive():
                other = [x for x in relays if x is not r][0]
                ok, tail = names_pid(r, other.proc.pid)
                if r.proc.returncode == 0:
                    problems.append("the second relay exited 0")
                if not ok:
                    problems.append("the second relay's error does not name "
                                    "PID %d: %s" % (other.proc.pid, tail))
        survivor = alive[0] if alive else a
        if survivor.alive():
            for cmd in (("queue", "list"), ("trace", "--since", "1h"),
                        ("tlsrpt", "list")):
                ok, what = cl.cli_ok(survivor, *cmd)
                if not ok:
                    problems.append("beside the relay: " + what)
            spawn(c)
            t = time.monotonic()
            try:
                c.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            fig["third_exit_s"] = "%.1f" % (time.monotonic() - t)
            if c.alive():
                problems.append("a relay started beside a running one keeps "
                                "running")
            else:
                ok, tail = names_pid(c, survivor.proc.pid)
                if not ok or c.proc.returncode == 0:
                    problems.append("the third relay (exit %s) does not name "
                                    "PID %d: %s" % (c.proc.returncode,
                                                    survivor.proc.pid, tail))
        load.wait(120)
        load.stop()
        if not any(r.alive() for r in relays):
            problems.append("no relay left running")
            a.start()
        if not cl.wait_delivered(ledger, recv, args.drain):
            why = cl.stuck(survivor)
            if why:
                problems.append(why)
        time.sleep(3.0)
        fig2, bad = cl.judge(ledger, recv, [shared])
        fig.update(fig2)
    except RuntimeError as e:
        problems.append(str(e).splitlines()[0] if str(e) else "relay")
        fig, bad = cl.judge(ledger, recv)
    finally:
        for r in (a, b, c):
            if r.proc is not None:
                r.stop()
    for r in (a, b, c):
        san = cl.sanitizer_report(r)
        if san:
            problems.append("sanitizer: " + san)
    return cl.verdict(name, fig, problems, bad)


if __name__ == "__main__":
    sys.exit(cl.guard("two-relays", main))
