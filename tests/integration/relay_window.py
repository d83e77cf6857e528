#!/usr/bin/python3
"""The duplicate window of RFC 5321 §6.1, in the test world: a message may
be delivered twice only when the relay dies between the final dot and the
record of its reply. Twenty messages go over one connection to a receiver
of this test that stores each message, then waits DELAY before its 250:
- kill -9 while the connection is mid-way: after a restart only the
  message in flight at the kill comes again, not every message of the
  connection (issue 10, crash loops: an outcome is committed as soon as
  its transaction ends, with the next group commit, not when the job ends);
- SIGTERM mid-way: the relay finishes the connection and stops; what it
  settled last is written before it exits: nothing comes again.

Usage: relay_window.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, report, wait_until  # noqa: E402

NMSG = 20
SENDER = "sender@ee-311.test"
RCPT = "user@window.test"


class SlowReceiver:
    """SMTP on 127.0.0.1 (free port): stores each message, then waits
    delay seconds before the reply to its final dot."""

    def __init__(self, delay):
        self.delay = delay
        self.got = []                   # (monotonic time stored, Message-ID)
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.session, args=(conn,),
                             daemon=True).start()

    def session(self, conn):
        conn.settimeout(60)
        f = conn.makefile("rb")
        try:
            conn.sendall(b"220 window.test ESMTP\r\n")
            while self.command(conn, f):
                pass
        except OSError:
            pass                        # the relay was killed: fine
        finally:
            conn.close()

    def command(self, conn, f):
        line = f.readline()
        if not line:
            return False
        verb = line[:4].upper()
        if verb == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return False
        if verb == b"EHLO":
            conn.sendall(b"250-window.test\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            conn.sendall(b"354 go on\r\n")
            self.data(f)
            time.sleep(self.delay)
            conn.sendall(b"250 2.0.0 ok\r\n")
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP", b"HELO"):
            conn.sendall(b"250 ok\r\n")
        else:
            conn.sendall(b"500 what\r\n")
        return True

    def data(self, f):
        body = b""
        while True:
            line = f.readline()
            if not line or line == b".\r\n":
                break
            body += line
        m = re.search(rb"(?im)^Message-ID:\s*(\S+)", body)
        with self.lock:
            self.got.append((time.monotonic(),
                             m.group(1).decode() if m else "?"))

    def received(self):
        with self.lock:
            return list(self.got)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def held_relay(args, rx, name):
    """A relay that queues NMSG messages to the receiver, holding them,
    then lets them go over its one connection (SIGHUP, hold = no)."""
    extra = ("[delivery]\nhold = yes\nconcurrency = 1\n"
             "initial_concurrency = 1\nretry_schedule = 1s\n"
             f"[domain window.test]\nsecurity = may\n"
             f"route = [127.0.0.1]:{rx.port}\n")
    relay = Relay(args.binary, args.world, extra, name=name).start()
    msgids = []
    for i in range(NMSG):
        code, qid, msgid = relay.submit(SENDER, [RCPT], subject=f"w{i}")
        if code == 250:
            msgids.append(msgid)
    conf = open(relay.conf).read().replace("hold = yes", "hold = no")
    with open(relay.conf, "w") as f:
        f.write(conf)
    relay.proc.send_signal(signal.SIGHUP)
    return relay, msgids


def wait_mid_connection(rx, n, timeout=60):
    """Until the receiver has n messages, then half a delay after the
    last: its reply is not out yet, the one before it long since."""
    if not wait_until(lambda: len(rx.received()) >= n, timeout, step=0.02):
        return False
    last = rx.received()[-1][0]
    time.sleep(max(0.0, last + rx.delay / 2 - time.monotonic()))
    return True


def copies(rx, msgids, timeout=60):
    """(all delivered, duplicates) once every message came or time ran
    out; duplicates counts the copies beyond the first of each."""
    want = set(msgids)
    done = wait_until(lambda: want <= {m for t, m in rx.received()}, timeout)
    got = [m for t, m in rx.received() if m in want]
    return bool(done), len(got) - len(set(got))


def interrupted(args, delay, at, name, interrupt):
    """Twenty messages over one connection, interrupt(relay) once the
    receiver has `at` of them, a restart; returns (interrupted mid-way,
    what interrupt returned, received before the restart, all delivered,
    duplicates, the relay's log tail)."""
    rx = SlowReceiver(delay)
    relay = None
    try:
        relay, msgids = held_relay(args, rx, name)
        mid = len(msgids) == NMSG and wait_mid_connection(rx, at)
        rc = interrupt(relay)
        before = len(rx.received())
        relay.start()
        done, dups = copies(rx, msgids)
        return mid, rc, before, done, dups, relay.tail()
    finally:
        if relay is not None:
            relay.stop()
        rx.close()


def test_kill9(args):
    mid, rc, before, done, dups, tail = interrupted(
        args, 0.5, NMSG // 2, "window-kill9", Relay.kill9)
    report("window.kill9-mid-connection", mid,
           f"{before} received before the kill")
    report("window.kill9-all-delivered", done, tail)
    # The message in flight at the kill may come again (§6.1); the ones
    # whose reply came earlier are in the queue as delivered.
    report("window.kill9-only-in-flight-again", mid and dups <= 1,
           f"{dups} duplicates of {before} received before the kill")


def test_graceful(args):
    mid, rc, before, done, dups, tail = interrupted(
        args, 0.2, NMSG // 4, "window-term", Relay.stop)
    report("window.term-mid-connection", mid and rc == 0, f"exit {rc}")
    report("window.term-all-delivered", done, tail)
    # The stop lets the connection finish; every outcome, the last ones
    # too, is written before the relay exits.
    report("window.term-nothing-again", done and dups == 0,
           f"{dups} duplicates; {before} received before the restart")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    test_kill9(args)
    test_graceful(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
