#!/usr/bin/python3
"""The relay's promises under stress, in the test world:
- never an open relay: a client outside relay_networks without AUTH
  cannot relay, and nothing is queued;
- a message acknowledged with 250 survives kill -9 of the daemon, while it
  receives and while it delivers: after a restart every acknowledged
  message is delivered or still queued, none lost;
- hostile clients (slow, garbage, an endless line, an oversized message)
  get a clear error and the daemon keeps serving.

Usage: relay_safety.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, report, wait_until, world_mail  # noqa: E402

DEST = "user@ee-311.test"
SENDER = "sender@ee-311.test"


def test_open_relay(args):
    extra = "[server]\nrelay_networks = 127.0.0.1/32\n"
    relay = Relay(args.binary, args.world, extra, name="openrelay").start()
    try:
        s = smtplib.SMTP("127.0.0.1", relay.port, timeout=10,
                         source_address=("127.0.0.2", 0))
        s.ehlo("outsider.test")
        s.mail("spammer@outsider.test")
        code, resp = s.rcpt(DEST)
        s.quit()
        report("open-relay.refused-outside-networks",
               code in (550, 554) and b"5.7." in resp, f"{code} {resp!r}")
        report("open-relay.nothing-queued", relay.queue() == [],
               str(relay.queue()))
        code, qid, msgid = relay.submit(SENDER, [DEST])
        report("open-relay.inside-network-accepted", code == 250 and qid,
               f"{code}")
    finally:
        relay.stop()


def submitter(relay, stop, acked, errors):
    while not stop.is_set():
        try:
            code, qid, msgid = relay.submit(SENDER, [DEST], subject="crash")
            if code == 250:
                acked.append((qid, msgid))
        except (OSError, smtplib.SMTPException) as e:
            errors.append(str(e))
            time.sleep(0.05)


def all_accounted(relay, world, acked):
    queued = {e["msgid"] for e in relay.queue()}
    missing = [(q, m) for q, m in acked
               if q not in queued and not world_mail(world, m)]
    return missing


def test_kill9(args, phase):
    # A long retry keeps deferred mail in the queue where we can see it.
    extra = "[delivery]\nretry_schedule = 2s\n"
    relay = Relay(args.binary, args.world, extra, name=f"kill9-{phase}").start()
    acked, errors = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=submitter,
                                args=(relay, stop, acked, errors))
               for _ in range(4)]
    for t in threads:
        t.start()
    # receiving: kill while the submitters are mid-transaction; delivering:
    # stop submitting first, then kill while the queue drains.
    time.sleep(1.5)
    if phase == "delivering":
        stop.set()
        for t in threads:
            t.join()
        time.sleep(0.05)
    relay.kill9()
    stop.set()
    for t in threads:
        t.join()
    relay.start()
    try:
        missing = wait_until(lambda: not all_accounted(relay, args.world, acked),
                             60)
        missing = all_accounted(relay, args.world, acked)
        report(f"kill9-{phase}.no-acknowledged-message-lost",
               len(acked) > 0 and not missing,
               f"{len(acked)} acked, missing {missing[:3]}")
        delivered = wait_until(
            lambda: all(world_mail(args.world, m) for q, m in acked), 60)
        report(f"kill9-{phase}.all-delivered-after-restart", bool(delivered),
               f"{sum(1 for q, m in acked if world_mail(args.world, m))}"
               f"/{len(acked)}")
    finally:
        relay.stop()


def raw_session(port, lines, read_after=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout)
    out = s.recv(4096)
    for line in lines:
        s.sendall(line)
    if read_after:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def test_hostile(args):
    extra = "[server]\ncommand_timeout = 2s\nmax_message_size = 100000\n"
    relay = Relay(args.binary, args.world, extra, name="hostile").start()
    try:
        out = raw_session(relay.port, [b"EHLO x\r\n", b"A" * 100000 + b"\r\n",
                                       b"QUIT\r\n"])
        report("hostile.endless-line", b"500" in out, out[-200:])
        out = raw_session(relay.port, [b"\x00\xff garbage \x01\r\n" * 20,
                                       b"QUIT\r\n"])
        report("hostile.garbage-commands", b"500" in out or b"502" in out,
               out[-200:])
        t0 = time.monotonic()
        out = raw_session(relay.port, [b"EHLO slow\r\n"])
        report("hostile.idle-client-timed-out",
               b"421" in out and time.monotonic() - t0 < 10, out[-200:])
        try:
            code, qid, msgid = relay.submit(SENDER, [DEST],
                                            body="x" * 200000 + "\r\n")
            ok, why = code == 552 and qid is None, f"answered {code}"
        except smtplib.SMTPException as e:
            ok, why = "552" in str(e), str(e)
        report("hostile.oversized-message-refused", ok, why)
        code, qid, msgid = relay.submit(SENDER, [DEST])
        report("hostile.still-serving", code == 250, str(code))
    finally:
        rc = relay.stop()
        report("hostile.clean-stop", rc == 0, relay.tail())


def test_privdrop(args):
    """Started as root with [server] user: binds, then runs as that user
    and still writes its queue and delivers."""
    if os.geteuid() != 0:
        report("privdrop.runs-as-user", False, "needs root to test dropping "
               "privileges")
        return
    extra = "[server]\nuser = nobody\n"
    relay = Relay(args.binary, args.world, extra, name="privdrop")
    os.chmod(relay.dir, 0o755)
    relay.start()
    try:
        uid = None
        for line in open(f"/proc/{relay.proc.pid}/status"):
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:]]
        import pwd
        nobody = pwd.getpwnam("nobody").pw_uid
        report("privdrop.runs-as-user", uid == [nobody] * 4, f"uid {uid}")
        code, qid, msgid = relay.submit(SENDER, [DEST])
        ok = code == 250 and wait_until(lambda: world_mail(args.world, msgid),
                                        20)
        report("privdrop.queues-and-delivers", bool(ok), relay.tail())
        # The chown after the queue was opened must not drop the relay's
        # locks (closing any descriptor of a file drops them all): a
        # second serve on the same queue is still refused, and a command
        # run meanwhile leaves the relay's WAL in place, so what the relay
        # writes next is seen by other processes.
        second = subprocess.run([args.binary, "-c", relay.conf, "serve"],
                                capture_output=True, text=True, timeout=20)
        report("privdrop.lock-kept", second.returncode == 75,
               f"second serve exit {second.returncode}: "
               f"{second.stderr[-300:]}")
        subprocess.run([args.binary, "-c", relay.conf, "queue", "list"],
                       capture_output=True, timeout=20)
        code, qid, msgid = relay.submit(SENDER, [DEST])
        seen = wait_until(lambda: subprocess.run(
            [args.binary, "-c", relay.conf, "trace", "--message-id", qid],
            capture_output=True, text=True, timeout=20).stdout.count(
                "delivered") > 0, 20)
        report("privdrop.writes-visible", code == 250 and bool(seen),
               f"code {code}; " + relay.tail())
    finally:
        relay.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    test_open_relay(args)
    test_kill9(args, "receiving")
    test_kill9(args, "delivering")
    test_hostile(args)
    test_privdrop(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
