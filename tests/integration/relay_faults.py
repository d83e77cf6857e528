#!/usr/bin/python3
"""The relay's queue under local faults and local attackers, in the test
world (issue 10 §2 and §3):
- disk full: the queue on a small tmpfs; below [queue] min_free_space new
  mail gets 452 4.3.1; deliveries whose outcome cannot be written pause
  the scheduler (no delivery again, RFC 5321 §6.1), and once space is
  freed each message is recorded delivered and has reached its receiver
  exactly once; the queue files shrink after large messages leave, and an
  older queue is converted to incremental vacuum;
- two relays on one queue: the second exits at once naming the PID of the
  first; the commands keep working beside it;
- a link planted in the queue directory does not hand its target to
  [server] user;
- files holding mail are 0600 from creation; a loose queue directory or
  key is refused with the fix in the message;
- root without [server] user (and without allow_root) is refused.
The test runs as root (it mounts a tmpfs); otherwise its cases FAIL.

Usage: relay_faults.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import errno
import os
import pwd
import shutil
import signal
import smtplib
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import (Relay, log_has, parse_ini, report, wait_until,  # noqa
                      world_mail)

DEST = "user@ee-311.test"
SENDER = "sender@ee-311.test"
EX_CONFIG = 78


def write_conf(relay, section, key, value):
    sections = parse_ini(open(relay.conf).read())
    sections.setdefault(section, {})[key] = value
    with open(relay.conf, "w") as f:
        for sec, kv in sections.items():
            f.write(f"[{sec}]\n")
            f.writelines(f"{k} = {v}\n" for k, v in kv.items())
            f.write("\n")


def run_serve(relay, timeout=20):
    """Run serve to its end; (exit code or None if still running, text,
    seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([relay.binary, "-c", relay.conf, "serve"],
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stderr or b"").decode(errors="replace")
        return None, "still running: it started\n" + out, timeout


def queue_dir(relay):
    return parse_ini(open(relay.conf).read())["queue"]["directory"]


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# ------------------------------------------------------------- disk full

def fill(directory):
    """Write filler files until the filesystem says ENOSPC."""
    n = 0
    for chunk in (1 << 20, 1 << 12):
        while True:
            path = os.path.join(directory, f"filler.{n}")
            n += 1
            try:
                with open(path, "wb") as f:
                    while True:
                        f.write(b"\0" * chunk)
                        f.flush()
                        os.fsync(f.fileno())
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            if os.statvfs(directory).f_bavail == 0:
                return


def mail_refusal(relay):
    """The reply to MAIL FROM (code, text)."""
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=15)
    try:
        s.ehlo("client.test")
        code, resp = s.mail(SENDER)
        return code, resp.decode(errors="replace")
    finally:
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            pass


def counts(world, msgids):
    return {m: len(world_mail(world, m)) for m in msgids}


def disk_deliver_while_full(relay, args, mnt, msgids):
    """Release the hold with the disk full: each message arrives once and
    the scheduler pauses instead of sending it again."""
    write_conf(relay, "delivery", "hold", "no")
    relay.proc.send_signal(signal.SIGHUP)
    arrived = wait_until(
        lambda: all(c >= 1 for c in counts(args.world, msgids).values()), 40)
    report("disk.delivered-while-full", arrived,
           f"{counts(args.world, msgids)}: {relay.tail(6)}")
    paused = wait_until(lambda: log_has(relay, "delivery paused"), 20)
    report("disk.pause-names-cause",
           paused is not None and "disk is full" in paused,
           f"{paused!r}: {relay.tail(6)}")
    time.sleep(8)  # the old code sent the same message again every ~2 s
    c = counts(args.world, msgids)
    report("disk.no-redelivery-while-full",
           all(v == 1 for v in c.values()), str(c))


def disk_recover(relay, args, mnt, msgids):
    for name in os.listdir(mnt):
        if name.startswith("filler."):
            os.unlink(os.path.join(mnt, name))
    resumed = wait_until(lambda: log_has(relay, "delivery resumed"), 60)
    report("disk.resumes-when-writable", resumed is not None, relay.tail(6))
    ids = [q for q, m in msgids.items()]
    queued = {e["msgid"] for e in relay.queue()}
    delivered = [q for q in ids if any(
        e.get("type") == "delivered" for e in relay.trace(q))]
    report("disk.recorded-delivered",
           not (set(ids) & queued) and len(delivered) == len(ids),
           f"queued {queued & set(ids)}, delivered {delivered}")
    time.sleep(4)
    c = counts(args.world, list(msgids.values()))
    report("disk.each-message-exactly-once",
           all(v == 1 for v in c.values()), str(c))
    code, qid, msgid = relay.submit(SENDER, [DEST], subject="after")
    report("disk.accepts-again", code == 250, f"{code}")


def test_disk_full(args, base):
    mnt = os.path.join(base, "tmpfs")
    os.makedirs(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m,mode=0700",
                        "tmpfs", mnt], capture_output=True, text=True)
    if p.returncode != 0:
        report("disk.mount-tmpfs", False, p.stderr.strip())
        return
    relay = None
    try:
        extra = (f"[queue]\ndirectory = {mnt}/queue\nmin_free_space = 2\n"
                 "[delivery]\nhold = yes\nretry_schedule = 2s\n")
        relay = Relay(args.binary, args.world, extra, name="disk").start()
        msgids = {}
        for i in range(4):
            code, qid, msgid = relay.submit(SENDER, [DEST], subject=f"full {i}")
            if code == 250:
                msgids[qid] = msgid
        report("disk.accepted-before-full", len(msgids) == 4, str(msgids))
        fill(mnt)
        time.sleep(1.2)  # past the one-second cache of the free space
        code, text = mail_refusal(relay)
        report("disk.452-4.3.1-below-reserve",
               code == 452 and "4.3.1" in text, f"{code} {text}")
        disk_deliver_while_full(relay, args, mnt, list(msgids.values()))
        disk_recover(relay, args, mnt, msgids)
    finally:
        if relay is not None:
            relay.stop()
        subprocess.run(["umount", "-l", mnt])


def files_size(qdir):
    return sum(os.path.getsize(os.path.join(qdir, n))
               for n in ("queue.db", "queue.db-wal")
               if os.path.exists(os.path.join(qdir, n)))


def test_shrink(args):
    relay = Relay(args.binary, args.world, "[delivery]\nhold = yes\n",
                  name="shrink").start()
    qdir = queue_dir(relay)
    try:
        big = ("x" * 998 + "\r\n") * 1500  # 1.5 MB each
        for i in range(4):
            relay.submit(SENDER, [DEST], subject=f"big {i}", body=big)
        full = files_size(qdir)
        write_conf(relay, "delivery", "hold", "no")
        relay.proc.send_signal(signal.SIGHUP)
        drained = wait_until(lambda: relay.queue() == [], 60)
        small = wait_until(lambda: files_size(qdir) < 1 << 20, 40)
        report("shrink.queue-files-shrink", drained and small,
               f"{full} octets with 4 large messages queued, "
               f"{files_size(qdir)} after they left")
    finally:
        relay.stop()
    # A queue of an older danerelay (no auto_vacuum) is converted once.
    db = sqlite3.connect(os.path.join(qdir, "queue.db"))
    db.execute("PRAGMA auto_vacuum = NONE")
    db.execute("VACUUM")
    before = db.execute("PRAGMA auto_vacuum").fetchone()[0]
    db.close()
    relay.start()
    relay.stop()
    db = sqlite3.connect(os.path.join(qdir, "queue.db"))
    after = db.execute("PRAGMA auto_vacuum").fetchone()[0]
    db.close()
    report("shrink.old-queue-converted", before == 0 and after == 2,
           f"auto_vacuum {before} -> {after}")


# ------------------------------------------------------- two relays, lock

def test_lock(args):
    first = Relay(args.binary, args.world, name="lock1").start()
    second = Relay(args.binary, args.world,
                   f"[queue]\ndirectory = {queue_dir(first)}\n", name="lock2")
    try:
        rc, text, took = run_serve(second)
        pid = str(first.proc.pid)
        report("lock.second-relay-exits-at-once",
               rc not in (0, None) and took < 10,
               f"exit {rc} after {took:.1f}s: {text[-300:]}")
        report("lock.names-holder-pid", pid in text and "in use" in text,
               f"pid {pid}: {text[-300:]}")
        code, qid, msgid = first.submit(SENDER, [DEST], subject="lock")
        rc_q, out, err = first.cli("queue", "list")
        rc_t, tout, terr = first.cli("trace", "--message-id", msgid)
        rc_r, rout, rerr = first.cli("tlsrpt", "list")
        report("lock.commands-beside-relay",
               code == 250 and rc_q in (0, 1) and rc_t in (0, 1) and
               rc_r == 0 and first.proc.poll() is None,
               f"submit {code}, queue {rc_q} {err}, trace {rc_t} {terr}, "
               f"tlsrpt {rc_r} {rerr}")
        got = wait_until(lambda: len(world_mail(args.world, msgid)) >= 1, 30)
        report("lock.first-relay-still-delivers", got, first.tail())
    finally:
        first.stop()


# ------------------------------------------------ local security (root)

def test_chown_link(args, base):
    target = os.path.join(base, "root-owned")
    with open(target, "w") as f:
        f.write("root's\n")
    os.chown(target, 0, 0)
    # No MTA-STS: its cache's SQLite would replace a link named like its
    # files before the hand-over; the hand-over alone is under test here.
    relay = Relay(args.binary, args.world,
                  "[server]\nuser = nobody\n[mta_sts]\nenabled = no\n",
                  name="chown")
    qdir = queue_dir(relay)
    os.mkdir(qdir, 0o700)
    os.symlink(target, os.path.join(qdir, "mta-sts.db-wal"))
    rc, text, took = run_serve(relay, timeout=15)
    st = os.stat(target)
    report("chown.link-target-untouched", st.st_uid == 0 and st.st_gid == 0,
           f"target now owned by {st.st_uid}:{st.st_gid}; serve: "
           f"{text[-300:]}")
    report("chown.planted-link-refused",
           rc not in (0, None) and "mta-sts.db-wal" in text,
           f"exit {rc}: {text[-300:]}")


def test_modes(args):
    relay = Relay(args.binary, args.world, name="loose")
    qdir = queue_dir(relay)
    os.mkdir(qdir)
    os.chmod(qdir, 0o755)
    rc, text, took = run_serve(relay)
    report("modes.loose-queue-dir-refused",
           rc == EX_CONFIG and f"chmod 700 {qdir}" in text,
           f"exit {rc}: {text[-300:]}")

    # Execute-only for others is not loose; the files must still be 0600
    # whatever the umask of whoever starts the relay.
    os.chmod(qdir, 0o711)
    old = os.umask(0o022)
    try:
        relay.start()
        relay.submit(SENDER, [DEST], subject="modes")
    finally:
        os.umask(old)
        relay.stop()
    names = [n for n in sorted(os.listdir(qdir))]
    loose = {n: oct(mode_of(os.path.join(qdir, n))) for n in names
             if mode_of(os.path.join(qdir, n)) & 0o077}
    report("modes.queue-files-0600",
           "queue.db" in names and not loose, f"{names}; loose: {loose}")

    key = os.path.join(relay.dir, "key.pem")
    shutil.copy(os.path.join(args.world, "certs", "mx.ee-311.test.key.pem"),
                key)
    os.chmod(key, 0o644)
    chain = os.path.join(args.world, "certs", "mx.ee-311.test.chain.pem")
    write_conf(relay, "server", "tls_key", key)
    write_conf(relay, "server", "tls_cert", chain)
    write_conf(relay, "server", "tlsa_guard", "no")
    rc, text, took = run_serve(relay)
    report("modes.loose-key-refused",
           rc == EX_CONFIG and f"chmod 600 {key}" in text,
           f"exit {rc}: {text[-300:]}")


def test_root(args):
    relay = Relay(args.binary, args.world, "[server]\nallow_root = no\n",
                  name="root")
    rc, text, took = run_serve(relay)
    report("root.refused-without-user",
           rc == EX_CONFIG and "without [server] user" in text and
           "allow_root" in text, f"exit {rc}: {text[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if os.geteuid() != 0:
        report("faults.runs-as-root", False,
               "needs root: it mounts a tmpfs and starts relays as root")
        return
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        report("faults.user-nobody", False, "no user nobody")
        return
    base = tempfile.mkdtemp(prefix="faults.",
                            dir=os.path.dirname(os.path.abspath(args.world)))
    tests = {"disk": lambda: test_disk_full(args, base),
             "shrink": lambda: test_shrink(args),
             "lock": lambda: test_lock(args),
             "chown": lambda: test_chown_link(args, base),
             "modes": lambda: test_modes(args),
             "root": lambda: test_root(args)}
    for name, fn in tests.items():
        if args.only and name not in args.only.split(","):
            continue
        try:
            fn()
        except Exception as e:  # a crashed case is a failed case
            report(f"{name}.ran", False, f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
