#!/usr/bin/env python3
"""What the relay tells its users and its administrator must be true
(issue 10 §4):

  literal.*   RCPT TO:<user@[127.0.0.1]> is refused at RCPT with 550 5.7.1
              and the reason (RFC 7672 §2.2.2), never accepted and bounced
  orcpt.*     ORCPT=rfc822;bob+2Bx@... reaches the next hop unchanged (RFC
              3461 §4.2), not encoded twice; a DSN shows it decoded in
              Original-Recipient (RFC 3464 §2.3.1)
  tlsrpt-day  `tlsrpt send --day 2026-13-45` exits 64 (EX_USAGE)

The next hop of orcpt.test is a small DSN-capable SMTP server run here
on a free loopback port ([domain orcpt.test] route = [127.0.0.1]:PORT),
which keeps the RCPT lines it was sent and refuses recipients that start
with "refuse".

Usage: relay_admin.py --binary build/danerelay --world DIR
"""
import argparse
import os
import smtplib
import socketserver
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldlib import Relay, free_port, report, wait_until  # noqa: E402


class Receiver(socketserver.ThreadingTCPServer):
    """Minimal ESMTP with DSN: records RCPT lines and message data."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        self.rcpt_lines, self.messages = [], []
        super().__init__(("127.0.0.1", port), ReceiverSession)


class ReceiverSession(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.reply("220 next.orcpt.test ESMTP")
        rcpts = []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-next.orcpt.test\r\n250-PIPELINING\r\n"
                           "250-8BITMIME\r\n250 DSN")
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                self.server.rcpt_lines.append(cmd)
                if cmd[8:].lower().startswith("<refuse"):
                    self.reply("550 5.1.1 no such user here")
                else:
                    rcpts.append(cmd)
                    self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = []
                while True:
                    ln = self.rfile.readline(65536)
                    if not ln or ln == b".\r\n":
                        break
                    data.append(ln[1:] if ln.startswith(b".") else ln)
                self.server.messages.append(b"".join(data))
                self.reply("250 2.0.0 stored")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("250 2.0.0 ok")


def check_literal(relay):
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=30)
    try:
        s.ehlo("client.test")
        s.mail("alice@client.test")
        code, text = s.rcpt("user@[127.0.0.1]")
        text = text.decode()
        report("literal.refused-at-rcpt",
               code == 550 and text.startswith("5.7.1") and
               "address literals are not relayed" in text and
               "7672" in text, f"{code} {text}")
        code6, text6 = s.rcpt("user@[IPv6:::1]")
        report("literal.ipv6-refused", code6 == 550, f"{code6} {text6}")
        code2, text2 = s.rcpt("bob@orcpt.test")
        report("literal.others-still-accepted", code2 == 250,
               f"{code2} {text2}")
    finally:
        s.quit()


def check_orcpt(relay, rx):
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=30)
    try:
        s.ehlo("client.test")
        s.mail("alice@orcpt.test")
        c1 = s.rcpt("bob+x@orcpt.test",
                    ["NOTIFY=FAILURE", "ORCPT=rfc822;bob+2Bx@orcpt.test"])
        c2 = s.rcpt("refuse+y@orcpt.test",
                    ["NOTIFY=FAILURE", "ORCPT=rfc822;refuse+2By@orcpt.test"])
        code, _ = s.data(b"From: <alice@orcpt.test>\r\nTo: <bob+x@orcpt.test>"
                         b"\r\nSubject: orcpt\r\nMessage-ID: <orcpt.1@client"
                         b".test>\r\n\r\nhello\r\n")
    finally:
        s.quit()
    report("orcpt.accepted", c1[0] == 250 and c2[0] == 250 and code == 250,
           f"{c1} {c2} {code}")
    got = wait_until(lambda: [ln for ln in rx.rcpt_lines
                              if ln.lower().startswith("rcpt to:<bob+x@")], 30)
    line = got[0] if got else ""
    report("orcpt.relayed-unchanged",
           "ORCPT=rfc822;bob+2Bx@orcpt.test" in line.split(),
           f"next hop got {line!r}")

    def dsn():
        return [m for m in rx.messages if b"Original-Recipient:" in m]
    got = wait_until(dsn, 60)
    msg = got[0] if got else b""
    report("orcpt.dsn-original-recipient-decoded",
           b"Original-Recipient: rfc822;refuse+y@orcpt.test\r\n" in msg,
           [ln for ln in msg.split(b"\r\n") if b"Recipient" in ln]
           or relay.tail(5))


def check_tlsrpt_day(relay):
    rc, out, err = relay.cli("tlsrpt", "send", "--day", "2026-13-45")
    report("tlsrpt-day.send-bad-day-exits-64",
           rc == 64 and "2026-13-45" in err, f"exit {rc}: {err[:200]}")
    rc, out, err = relay.cli("tlsrpt", "show", "x.test", "2026-02-30")
    report("tlsrpt-day.show-bad-day-exits-64", rc == 64,
           f"exit {rc}: {err[:200]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    port = free_port()
    rx = Receiver(port)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    extra = ("[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
             f"[domain orcpt.test]\nroute = [127.0.0.1]:{port}\n"
             "security = may\n")
    relay = Relay(args.binary, args.world, extra, name="admin").start()
    try:
        check_literal(relay)
        check_orcpt(relay, rx)
        check_tlsrpt_day(relay)
    finally:
        relay.stop()
        rx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
