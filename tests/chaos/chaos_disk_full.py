#!/usr/bin/python3
"""Disk full: the queue on a small tmpfs (mounted here; needs root).

1. The relay starts with `[delivery] hold = yes` and takes 20 messages of
   100 KB: they wait in the queue.
2. A filler file leaves less free space than the reserve
   (`[queue] min_free_space`, 4 MiB):
   new mail must be refused with 452 4.3.1 while the disk still has room.
3. The filler takes the rest: the disk is full. New mail must get
   452 4.3.1 (a 250 can be honest: SQLite may commit into WAL pages the
   file already has; every accepted message is counted like the others).
4. hold = no and SIGHUP: the relay delivers while it cannot write the
   outcomes. It must not send again while the disk is full (at most one
   copy per message in that time), must stay up and must say why in its
   log ("space" or "full", not "no transaction is active").
5. The filler goes: every accepted message arrives, once, or twice when
   its first copy went while the outcome could not be written (chaoslib's
   "unwritable" window); the queue files shrink to under half their peak.

Usage: chaos_disk_full.py --binary PATH --world DIR
"""
import argparse
import errno
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402

SIZE_MB = 32
RESERVE = 4 << 20
BIG = 100 * 1000


def mount_tmpfs(path):
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%dm,mode=0700" % SIZE_MB, "tmpfs", path],
                       capture_output=True, text=True)
    return None if p.returncode == 0 else "mount: " + p.stderr.strip()


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def used_bytes(d):
    total = 0
    for f in os.listdir(d):
        try:
            total += os.stat(os.path.join(d, f)).st_blocks * 512
        except OSError:
            pass
    return total


def fill(path, leave):
    """Grow the filler until at most leave bytes are free (0: until
    ENOSPC). Returns the free space left."""
    d = os.path.dirname(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096):
            chunk = b"\0" * size
            while leave == 0 or free_bytes(d) - size > leave:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return free_bytes(d)


def set_conf(relay, key, value):
    text = open(relay.conf).read()
    text = re.sub(r"(?m)^%s = .*$" % key, "%s = %s" % (key, value), text)
    with open(relay.conf, "w") as f:
        f.write(text)


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--full-for", type=float, default=8.0,
                    help="seconds of delivery with the disk full")
    ap.add_argument("--drain", type=float, default=60)
    args = ap.parse_args()
    sc = cl.Scenario("disk-full", args)
    top = tempfile.mkdtemp(prefix="chaos-disk.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    mnt = os.path.join(top, "mnt")
    queue = os.path.join(mnt, "queue")
    os.mkdir(mnt)
    relay = sc.relay("[delivery]\nretry_schedule = 1s\nhold = yes\n"
                     "[server]\nmax_message_size = 1000000\n"
                     "[queue]\ndirectory = %s\nmin_free_space = %d\n"
                     % (queue, RESERVE // (1024 * 1024)), "disk")
    mounted = []

    def body():
        why = mount_tmpfs(mnt)
        if why:
            raise RuntimeError("cannot mount the small filesystem: " + why)
        mounted.append(mnt)
        sc.fig["min_free_space"] = "%dM" % (RESERVE // (1024 * 1024))
        relay.start()
        rcpts = ["user@" + d for d in cl.DESTS[:4]]
        cl.Load(sc.ledger, [relay.port], rcpts, threads=2, size=BIG,
                limit=args.messages).start().wait(120)
        peak = used_bytes(queue)
        filler = os.path.join(mnt, "filler")
        below_reserve(sc, relay, rcpts, fill(filler, RESERVE // 2))
        peak = max(peak, used_bytes(queue))
        with sc.ledger.fault("unwritable") as full:
            fill(filler, 0)
            when_full(sc, relay, rcpts)
            # deliver while the outcomes cannot be written
            set_conf(relay, "hold", "no")
            relay.proc.send_signal(signal.SIGHUP)
            time.sleep(args.full_for)
            if not relay.alive():
                sc.problem("the relay exited while the disk was full: " +
                           " ".join(relay.tail(3).split()[-20:]))
            sc.fig["copies_while_full"] = sum(
                1 for lst in sc.recv.copies(sc.ledger.tag).values()
                for c in lst if c["t_dot"] >= full["t0"])
            os.unlink(filler)
        if not relay.alive():
            relay.start()
        else:
            # Once more with room on the disk, in case the first reload
            # was refused because the disk was full.
            relay.proc.send_signal(signal.SIGHUP)
        log = open(relay.log, errors="replace").read()
        sc.drain(relay, args.drain, settle=3.0, queue_dir=queue)
        shrunk = cl.wait_until(lambda: used_bytes(queue) < peak / 2, 15)
        sc.fig["queue_kib_peak"] = peak >> 10
        sc.fig["queue_kib_after"] = used_bytes(queue) >> 10
        if not shrunk:
            sizes = ", ".join(
                "%s %d KiB" % (f, os.stat(os.path.join(queue, f)).st_size
                               >> 10) for f in sorted(os.listdir(queue)))
            sc.problem("queue files did not shrink after the mail left "
                       "(%d KiB, peak %d KiB: %s)"
                       % (sc.fig["queue_kib_after"], peak >> 10, sizes))
        if "no transaction is active" in log:
            sc.problem("the log hides the cause: 'no transaction is active'")
        if not re.search(r"(?i)no space|disk is full|disk full|free space",
                         log):
            sc.problem("the log never says the disk is full")

    def unmount():
        for m in mounted:
            if subprocess.run(["umount", m]).returncode != 0:
                subprocess.run(["umount", "-l", m])

    return sc.run(body, cleanup=unmount)


def below_reserve(sc, relay, rcpts, left):
    """Less free space than the reserve, the disk not full: 452 4.3.1."""
    recs = [cl.send_one(sc.ledger, relay.port, rcpts[i % 4], BIG)
            for i in range(4)]
    sc.fig["below_reserve_replies"] = ",".join(str(r["code"]) for r in recs)
    if not all(r["code"] == 452 and "4.3.1" in r["text"] for r in recs):
        sc.problem("with %d KiB free (reserve 4 MiB) new mail got %s, not "
                   "452 4.3.1" % (left >> 10, [r["code"] for r in recs]))


def when_full(sc, relay, rcpts):
    """The disk full: 452 4.3.1 (a 250 may be honest, SQLite can commit
    into WAL pages it already has, but the reserve was not applied)."""
    recs = [cl.send_one(sc.ledger, relay.port, rcpts[i % 4], BIG)
            for i in range(3)]
    sc.fig["full_replies"] = ",".join(str(r["code"]) for r in recs)
    if not all(r["code"] == 452 and "4.3.1" in r["text"] for r in recs):
        sc.problem("disk full: new mail got %s, not 452 4.3.1" % [
            (r["code"], r["text"][:40]) for r in recs])


if __name__ == "__main__":
    sys.exit(cl.guard("disk-full", main))
