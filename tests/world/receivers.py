"""SMTP receivers of the world: one asyncio process, one listener per host.

Usage: receivers.py DIR   (reads DIR/hosts.json, writes DIR/run/receivers.ready)

Normal hosts speak enough ESMTP for a real client and store every message
with its envelope and TLS facts under DIR/mail/<host>/.  Hostile hosts
misbehave in the ways a relay must survive without hanging.
"""

import asyncio
import datetime
import itertools
import json
import logging
import os
import re
import signal
import socket
import ssl
import struct
import sys
import time

IDLE_TIMEOUT = 120      # a forgotten client must not pin a task forever
HOSTILE_LIMIT = 300     # hostile peers give up eventually, for tidiness
MAX_MESSAGE = 10 * 1024 * 1024
# Mailboxes that make a normal host misbehave after the final dot, on the
# first transaction of each Message-ID only (so the retry gets through):
# the connection is reset (RST, no reply), after storing the message (the
# receiver committed, the reply was lost: RFC 5321 §6.1's duplicate case)
# or before (the receiver died first: nothing of it is kept).
RESET_MAILBOXES = {"reset-after-dot": True, "reset-at-dot": False}
# Mailboxes a normal host answers slowly at RCPT, in seconds (below the
# relays' command timeout): an attempt to them stays in flight that long
# before any data goes, so a node killed meanwhile has claims in flight
# that were not delivered (tests/integration/relay_fleet_queue.py).
SLOW_MAILBOXES = {"slow": 3.0}
MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>)")
CONN_IDS = itertools.count(1)
RESET_DONE = set()          # (host, Message-ID) already reset once
FILE_NUMBERS = {}           # host directory -> last NNN used


class Session:
    """One SMTP conversation with a normal host."""

    def __init__(self, host, reader, writer, maildir):
        self.host, self.reader, self.writer = host, reader, writer
        self.maildir = maildir
        self.tls = None
        self.helo = None
        self.conn = next(CONN_IDS)      # names the connection in the logs
        self.end = "eof"                # how it ended, for sessions.jsonl
        self.reset()

    def reset(self):
        self.mail_from, self.rcpt_to = None, []

    async def reply(self, text):
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()

    async def run(self):
        await self.reply("220 %s ESMTP danerelay test world" % self.host["name"])
        while True:
            line = await asyncio.wait_for(self.reader.readline(), IDLE_TIMEOUT)
            if not line:
                return
            verb, _, arg = line.decode("utf-8", "replace").rstrip("\r\n") \
                .partition(" ")
            handler = getattr(self, "do_" + verb.upper(), None)
            if handler is None:
                await self.reply("500 5.5.2 command not recognized")
            elif await handler(arg) == "quit":
                return

    def ehlo_lines(self):
        lines = [self.host["name"], "PIPELINING", "SIZE %d" % MAX_MESSAGE,
                 "8BITMIME"]
        if self.host["starttls"] and not self.tls:
            lines.append("STARTTLS")
        return lines

    async def do_EHLO(self, arg):
        self.helo = arg
        self.reset()
        lines = self.ehlo_lines()
        text = "\r\n".join("250-" + ln for ln in lines[:-1])
        await self.reply((text + "\r\n" if text else "") + "250 " + lines[-1])

    async def do_HELO(self, arg):
        self.helo = arg
        self.reset()
        await self.reply("250 " + self.host["name"])

    async def do_STARTTLS(self, arg):
        if self.tls or not self.host["starttls"]:
            return await self.reply("502 5.5.1 STARTTLS not available")
        if self.host["starttls"] == "454":
            return await self.reply("454 4.7.0 TLS not available now")
        await self.reply("220 2.0.0 ready to start TLS")
        await self.writer.start_tls(self.host["ssl"])
        obj = self.writer.get_extra_info("ssl_object")
        self.tls = {"version": obj.version(), "cipher": obj.cipher()[0],
                    "sni": getattr(obj, "sni_name", None)}
        self.helo = None                    # RFC 3207 §4.2: forget state
        self.reset()

    async def do_MAIL(self, arg):
        if not arg.upper().startswith("FROM:"):
            return await self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
        self.mail_from = arg[5:].strip().split(" ")[0].strip("<>")
        self.rcpt_to = []
        await self.reply("250 2.1.0 ok")

    async def do_RCPT(self, arg):
        if self.mail_from is None:
            return await self.reply("503 5.5.1 need MAIL first")
        if not arg.upper().startswith("TO:"):
            return await self.reply("501 5.5.4 syntax: RCPT TO:<address>")
        self.rcpt_to.append(arg[3:].strip().split(" ")[0].strip("<>"))
        local = self.rcpt_to[-1].rpartition("@")[0].lower()
        if local in SLOW_MAILBOXES:
            await asyncio.sleep(SLOW_MAILBOXES[local])
        await self.reply("250 2.1.5 ok")

    async def do_DATA(self, arg):
        if not self.rcpt_to:
            return await self.reply("503 5.5.1 need RCPT first")
        await self.reply("354 end data with <CRLF>.<CRLF>")
        body = await self.read_data()
        if body is None:
            return "quit"       # cut before the final dot: nothing was sent
        t_dot = time.time()
        msgid = MESSAGE_ID.search(body.split(b"\r\n\r\n", 1)[0])
        msgid = msgid.group(1).decode("ascii", "replace") if msgid else None
        fault = self.fault(msgid)
        if fault is False:
            return self.reset_connection(msgid, t_dot, stored=False)
        name = self.store(body, msgid, t_dot, reset=fault is True)
        self.reset()
        if fault is True:
            return self.reset_connection(msgid, t_dot, stored=True)
        await self.reply("250 2.0.0 queued as %s" % name)

    async def read_data(self):
        """The message, or None when the peer left before the final dot."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), IDLE_TIMEOUT)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)

    def fault(self, msgid):
        """True: store, then reset; False: reset without storing; None:
        behave. Only the first transaction of a Message-ID misbehaves."""
        for rcpt in self.rcpt_to:
            local = rcpt.rpartition("@")[0].lower()
            if local in RESET_MAILBOXES and msgid is not None and \
                    (self.host["name"], msgid) not in RESET_DONE:
                RESET_DONE.add((self.host["name"], msgid))
                return RESET_MAILBOXES[local]
        return None

    def reset_connection(self, msgid, t_dot, stored):
        """RST after the final dot, no reply (SO_LINGER 0, then abort)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.end = "reset"
        log_session(self.maildir, {"event": "reset", "host": self.host["name"],
                                   "conn": self.conn, "message_id": msgid,
                                   "t_dot": t_dot, "stored": stored})
        return "quit"

    def store(self, body, msgid=None, t_dot=None, reset=False):
        """DIR/mail/<host>/NNN.eml and NNN.json; NNN counts up per host.
        The JSON also says when the final dot was read (t_dot, Unix time),
        over which connection (conn) and whether the receiver then reset
        the connection instead of replying: what tests/chaos/ judges
        duplicates with."""
        d = os.path.join(self.maildir, self.host["name"])
        os.makedirs(d, exist_ok=True)
        if d not in FILE_NUMBERS:
            FILE_NUMBERS[d] = sum(1 for f in os.listdir(d)
                                  if f.endswith(".eml"))
        FILE_NUMBERS[d] += 1
        name = "%03d" % FILE_NUMBERS[d]
        with open(os.path.join(d, name + ".eml"), "wb") as f:
            f.write(body)
        meta = {"host": self.host["name"], "helo": self.helo,
                "mail_from": self.mail_from, "rcpt_to": self.rcpt_to,
                "tls": self.tls, "size": len(body),
                "peer": self.writer.get_extra_info("peername")[0],
                "received": datetime.datetime.now(
                    datetime.timezone.utc).isoformat(),
                "message_id": msgid, "t_dot": t_dot or time.time(),
                "conn": self.conn, "reset": reset}
        # Written whole under a temporary name, then renamed: a reader
        # never sees half a JSON file.
        tmp = os.path.join(d, name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)
        os.rename(tmp, os.path.join(d, name + ".json"))
        return name

    async def do_RSET(self, arg):
        self.reset()
        await self.reply("250 2.0.0 ok")

    async def do_NOOP(self, arg):
        await self.reply("250 2.0.0 ok")

    async def do_QUIT(self, arg):
        self.end = "quit"
        log_session(self.maildir, {"event": "quit", "host": self.host["name"],
                                   "conn": self.conn, "t": time.time()})
        await self.reply("221 2.0.0 bye")
        return "quit"


def log_session(maildir, record):
    """One JSON line per QUIT, reset and end of a connection, in
    DIR/run/receivers.sessions.jsonl, with Unix times: with the t_dot of
    stored messages, how tests/chaos/ tells when a duplicate was possible."""
    path = os.path.join(os.path.dirname(maildir), "run",
                        "receivers.sessions.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def remember_sni(obj, name, ctx):
    """Keep the SNI the client sent, for the stored message's facts."""
    obj.sni_name = name
    return None


async def endless_banner(reader, writer):
    """220- continuation lines forever: the client must bound the greeting."""
    n = 0
    while True:
        # one write per batch: drain() raises once the client has gone
        writer.write(b"".join(b"220-endless banner line %d\r\n" % (n + i)
                              for i in range(50)))
        n += 50
        await writer.drain()
        await asyncio.sleep(0.01)


async def banner_no_crlf(reader, writer):
    """A greeting line that never ends: the client must bound line length
    or time."""
    writer.write(b"220 banner without end ")
    while True:
        writer.write(b"x" * 512)
        await writer.drain()
        await asyncio.sleep(0.02)


async def stall(reader, writer):
    """Accept and say nothing until the client leaves."""
    while await reader.read(4096):
        pass


HOSTILE = {"endless-banner": endless_banner, "no-crlf": banner_no_crlf,
           "stall": stall}


def handler_for(host, maildir):
    async def handle(reader, writer):
        session = None
        try:
            if host["mode"] in HOSTILE:
                await asyncio.wait_for(HOSTILE[host["mode"]](reader, writer),
                                       HOSTILE_LIMIT)
            else:
                session = Session(host, reader, writer, maildir)
                await session.run()
        except (OSError, asyncio.TimeoutError, ssl.SSLError,
                asyncio.IncompleteReadError, ValueError):
            pass                            # peers hang up; that's their right
        finally:
            writer.close()
            if session is not None:
                log_session(maildir, {"event": "end", "host": host["name"],
                                      "conn": session.conn, "t": time.time(),
                                      "how": session.end})
    return handle


def ssl_context(host):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(host["chain"], host["key"])
    ctx.sni_callback = remember_sni
    return ctx


async def main(world_dir):
    # asyncio warns about every peer that hangs up mid-write or mid-TLS;
    # hostile hosts provoke that by design, so keep the log for real errors
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    with open(os.path.join(world_dir, "hosts.json")) as f:
        config = json.load(f)
    maildir = os.path.join(world_dir, "mail")
    servers = []
    for host in config["hosts"]:
        if host["mode"] == "refuse":
            continue                        # no listener: connection refused
        if host.get("chain"):
            host["ssl"] = ssl_context(host)
        servers.append(await asyncio.start_server(
            handler_for(host, maildir), host["ip"], config["smtp_port"]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(os.path.join(world_dir, "run", "receivers.ready"), "w") as f:
        f.write("%d\n" % len(servers))
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
