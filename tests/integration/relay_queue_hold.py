#!/usr/bin/env python3
"""Hold, release and flush on a running relay (issue 11, "a real service"):

  hold.*    a held message is not delivered, not by a flush nor a retry,
            while the next hop would take it; `queue release` delivers it
            within seconds
  flush.*   `queue flush DOMAIN` sends that domain's deferred mail at once
            (its retry was an hour away) and leaves another domain's
            deferred; `queue flush` then sends the rest
  bounce.*  `queue bounce` right after a deferral, while the relay keeps
            its connection to that next hop open for more mail: the
            message is returned to the sender, never tried again on it;
            and one recipient of two bounced, the other retried, both
            in the same attempt ([delivery] hold keeps them apart from
            the scheduler until both are due): the bounced one is never
            sent to, the other is delivered

The next hops are one small SMTP server run here on a free loopback port
(each test domain is routed to it), which answers 451 to RCPT for the
domains it is told to refuse for now, and keeps what it is sent.

Usage: relay_queue_hold.py --binary build/danerelay --world DIR
"""
import argparse
import os
import signal
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldlib import (Relay, free_port, report, rewrite_config,  # noqa: E402
                      wait_until)

DOMAINS = ("hold.test", "flushone.test", "flushtwo.test", "bounceidle.test",
           "mixed.test")


class Receiver(socketserver.ThreadingTCPServer):
    """Minimal ESMTP: 451 at RCPT for the domains in refuse; keeps the
    recipients of each message it took."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        self.refuse = set(DOMAINS)
        self.got = []            # [(rcpts, data)]
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), ReceiverSession)

    def took(self, rcpt):
        with self.lock:
            return [d for r, d in self.got if rcpt in r]


class ReceiverSession(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def rcpt(self, cmd, rcpts):
        addr = cmd[8:].split(">", 1)[0].lstrip("<").lower()
        if addr.rsplit("@", 1)[-1] in self.server.refuse:
            self.reply("451 4.3.0 not now")
        else:
            rcpts.append(addr)
            self.reply("250 2.1.5 ok")

    def data(self, rcpts):
        self.reply("354 go ahead")
        lines = []
        while True:
            ln = self.rfile.readline(65536)
            if not ln or ln == b".\r\n":
                break
            lines.append(ln)
        with self.server.lock:
            self.server.got.append((list(rcpts), b"".join(lines)))
        self.reply("250 2.0.0 stored")

    def handle(self):
        self.reply("220 next.test ESMTP")
        rcpts = []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-next.test\r\n250 PIPELINING")
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                self.rcpt(cmd, rcpts)
            elif verb == "DATA":
                self.data(rcpts)
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("250 2.0.0 ok")


def entry(relay, qid):
    """The queue entries (list --json) of message qid."""
    return [r for r in relay.queue() if r["msgid"] == qid]


def deferred(relay, qid):
    """qid's recipients are all queued, tried once, and not due now."""
    rows = entry(relay, qid)
    return rows and all(r["status"] == "queued" and r["attempts"] >= 1
                        for r in rows)


def submit_deferred(relay, rcpt, name):
    code, qid, _ = relay.submit("alice@client.test", [rcpt], subject=name)
    ok = code == 250 and wait_until(lambda: deferred(relay, qid), 30)
    report(f"{name}.deferred-first", ok,
           f"code {code} {qid}: {entry(relay, qid) if qid else ''} "
           f"{relay.tail(5)}")
    return qid if ok else None


def check_hold(relay, rx):
    qid = submit_deferred(relay, "bob@hold.test", "hold")
    if qid is None:
        return
    rc, out, err = relay.cli("queue", "hold", qid)
    report("hold.held", rc == 0 and "1 recipient held" in out,
           f"exit {rc}: {out}{err}")
    rx.refuse.discard("hold.test")
    # Neither a flush nor a retry sends a held message.
    rc_f, out_f, _ = relay.cli("queue", "flush")
    rc_r, _, err_r = relay.cli("queue", "retry", qid)
    report("hold.flush-and-retry-skip-it",
           rc_f == 0 and rc_r == 1 and "nothing queued matches" in err_r,
           f"flush {rc_f} {out_f} retry {rc_r} {err_r}")
    time.sleep(4)       # four queue scans
    rows = entry(relay, qid)
    report("hold.not-delivered",
           not rx.took("bob@hold.test") and len(rows) == 1 and
           rows[0]["status"] == "held" and rows[0]["attempts"] == 1,
           f"receiver {len(rx.took('bob@hold.test'))}, queue {rows}")
    t0 = time.monotonic()
    rc, out, err = relay.cli("queue", "release", qid)
    got = wait_until(lambda: rx.took("bob@hold.test"), 15)
    report("hold.release-delivers",
           rc == 0 and bool(got) and b"Subject: hold" in got[0],
           f"exit {rc} {out}{err}; receiver {len(got or [])} "
           f"{relay.tail(5)}")
    report("hold.release-within-seconds", got and time.monotonic() - t0 < 10,
           f"{time.monotonic() - t0:.1f}s")
    wait_until(lambda: "delivered" in
               [e["type"] for e in relay.trace(qid)], 10)
    types = [e["type"] for e in relay.trace(qid)]
    want = ["deferred", "held", "released", "delivered"]
    report("hold.trace", [t for t in types if t in want] == want, f"{types}")


def check_flush(relay, rx):
    one = submit_deferred(relay, "carol@flushone.test", "flushone")
    two = submit_deferred(relay, "dave@flushtwo.test", "flushtwo")
    if one is None or two is None:
        return
    rx.refuse.clear()
    time.sleep(2)       # the next hop would take it, but no retry is due
    report("flush.waits-before", not rx.took("carol@flushone.test"),
           "delivered before the flush")
    t0 = time.monotonic()
    rc, out, err = relay.cli("queue", "flush", "FlushOne.test")
    got = wait_until(lambda: rx.took("carol@flushone.test"), 15)
    report("flush.domain-goes-at-once",
           rc == 0 and "1 recipient due now" in out and bool(got) and
           time.monotonic() - t0 < 10,
           f"exit {rc} {out}{err}; after {time.monotonic() - t0:.1f}s "
           f"receiver {len(got or [])} {relay.tail(5)}")
    time.sleep(2)
    rows = entry(relay, two)
    report("flush.other-domain-stays",
           not rx.took("dave@flushtwo.test") and len(rows) == 1 and
           rows[0]["attempts"] == 1,
           f"receiver {len(rx.took('dave@flushtwo.test'))} queue {rows}")
    rc, out, err = relay.cli("queue", "flush")
    got = wait_until(lambda: rx.took("dave@flushtwo.test"), 15)
    report("flush.all", rc == 0 and "1 recipient due now" in out and
           bool(got), f"exit {rc} {out}{err}; receiver {len(got or [])}")
    types = [e["type"] for e in relay.trace(one)]
    report("flush.trace", "flushed" in types, f"{types}")


def check_bounce_idle(relay, rx):
    qid = submit_deferred(relay, "grace@bounceidle.test", "bounceidle")
    if qid is None:
        return
    # Within connection_idle_time (5 s) of the deferral: the connection
    # that got the 451 waits for more mail to the same next hop.
    rc, out, err = relay.cli("queue", "bounce", qid)
    got = wait_until(lambda: rx.took("alice@client.test"), 15)
    wait_until(lambda: "bounced" in
               [e["type"] for e in relay.trace(qid)], 10)
    types = [e["type"] for e in relay.trace(qid)]
    report("bounce.idle-connection-returns-it",
           rc == 0 and bool(got) and b"grace@bounceidle.test" in got[0]
           and "bounced" in types and types.count("deferred") == 1,
           f"exit {rc} {out}{err}; DSN {len(got or [])}; trace {types}")


def set_hold(relay, on):
    rewrite_config(relay, lambda s: s.setdefault("delivery", {}).update(
        hold="yes" if on else "no"))
    relay.proc.send_signal(signal.SIGHUP)
    return wait_until(lambda: relay.tail(3).count("reload") > 0, 5)


def check_bounce_mixed(relay, rx):
    """One recipient of a message bounced by the operator, the other due
    in the same attempt: the bounced one must not be in the transaction
    (before the fix it was, and the server's 250 overwrote the bounce)."""
    rx.refuse.add("mixed.test")   # the checks before may have let all in
    code, qid, _ = relay.submit("alice@client.test",
                                ["henry@mixed.test", "ivy@mixed.test"],
                                subject="mixed")
    if not (code == 250 and wait_until(lambda: deferred(relay, qid), 30)):
        report("bounce.mixed-deferred-first", False,
               f"{code} {qid} {entry(relay, qid)} {relay.tail(4)}")
        return
    set_hold(relay, True)
    time.sleep(1.0)
    rx.refuse.discard("mixed.test")
    ids = {r["recipient"]: r["id"] for r in entry(relay, qid)}
    rc1 = relay.cli("queue", "bounce", str(ids["ivy@mixed.test"]))[0]
    rc2 = relay.cli("queue", "retry", str(ids["henry@mixed.test"]))[0]
    set_hold(relay, False)
    wait_until(lambda: rx.took("henry@mixed.test"), 15)
    wait_until(lambda: not entry(relay, qid), 15)
    got = rx.took("henry@mixed.test")
    to_ivy = [d for r, d in rx.got if "ivy@mixed.test" in r]
    types = [(e["type"], e.get("recipient")) for e in relay.trace(qid)]
    report("bounce.mixed-message-bounced-one-not-sent",
           rc1 == 0 and rc2 == 0 and bool(got) and not to_ivy and
           ("bounced", "ivy@mixed.test") in types and
           ("delivered", "henry@mixed.test") in types and
           ("delivered", "ivy@mixed.test") not in types,
           f"exit {rc1}/{rc2}; henry got {len(got)}; sent to ivy "
           f"{len(to_ivy)}; trace {types}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    port = free_port()
    rx = Receiver(port)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    extra = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
    for d in DOMAINS + ("client.test",):    # client.test: the DSNs
        extra += f"[domain {d}]\nroute = [127.0.0.1]:{port}\nsecurity = may\n"
    relay = Relay(args.binary, args.world, extra, name="queue-hold").start()
    try:
        check_hold(relay, rx)
        check_bounce_idle(relay, rx)
        check_flush(relay, rx)
        check_bounce_mixed(relay, rx)
    finally:
        relay.stop()
        rx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
