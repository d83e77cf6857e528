#!/usr/bin/python3
"""The relay's per-destination policy, DSNs and scheduling, in the test world:
- `security = dane-only | encrypt | may` and `exception = ...` in
  `[domain NAME]` sections (RFC 7672 §6 mandatory DANE: a secure MX RRset
  and usable secure TLSA; encrypt: TLS without authentication; an
  exception delivers to a broken domain and says why in the trace);
- log-only mode, globally with and without `log_only_cleartext`, and per
  domain under a global enforce policy;
- the delay warning (exactly one, RFC 3464 `Action: delayed`);
- RFC 3461 NOTIFY / RET / ENVID, and no report to a null sender;
- the dead-destination cache (`dead_after`, `dead_time`);
- `route = [ADDR]:PORT` (an address literal: no DANE, RFC 7672 §2.2);
- several recipients of one domain in one transaction, split by domain;
- connection reuse: queued messages of one destination over one session;
- the TLS handshake gate (`[delivery] tls_handshakes`);
- how long a connection waits for more mail (`connection_idle_time`).

Every relay runs in sequence with a short retry schedule; every wait is
bounded. One `PASS name` / `FAIL name: why` line per case, exit 0.

Usage: relay_policy.py --binary PATH --world DIR
"""
import argparse
import email
import email.policy
import email.utils
import json
import os
import shutil
import signal
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, log_has, parse_ini, wait_until, world_mail  # noqa: E402
from worldlib import report as _report  # noqa: E402

SENDER = "postmaster@ee-311.test"   # a mailbox the world accepts: DSNs land there
VERDICT = ("delivered", "deferred", "bounced")
FAILED = []
RELAY_DIRS = []
RELAYS = []


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, bool(ok), why)


def start(args, extra, name, flags=()):
    relay = Relay(args.binary, args.world, extra, name=name, flags=flags)
    RELAY_DIRS.append(relay.dir)
    RELAYS.append(relay)
    return relay.start()


def mapped(relay, lib):
    """Is a library whose file name starts with lib mapped in the relay?"""
    with open(f"/proc/{relay.proc.pid}/maps") as f:
        return any(os.path.basename(line.split()[-1]).startswith(lib)
                   for line in f if len(line.split()) >= 6)


def submit(relay, sender, rcpts, subject="test", body="hello\r\n",
           mail_opts=(), rcpt_opts=()):
    """Like Relay.submit, with MAIL and RCPT parameters (RFC 3461)."""
    msgid = email.utils.make_msgid(domain="client.test")
    head = [f"From: <{sender or 'MAILER-DAEMON@client.test'}>",
            f"To: {', '.join(rcpts)}", f"Subject: {subject}",
            f"Message-ID: {msgid}", f"Date: {email.utils.formatdate()}"]
    data = "\r\n".join(head) + "\r\n\r\n" + body
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=30)
    try:
        s.ehlo("client.test")
        code, resp = s.mail(sender, list(mail_opts))
        if code != 250:
            return code, None, msgid
        for r in rcpts:
            code, resp = s.rcpt(r, list(rcpt_opts))
            if code >= 400:
                return code, None, msgid
        code, resp = s.data(data.encode())
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass
    qid = resp.decode().rsplit(" ", 1)[-1] if code == 250 else None
    return code, qid, msgid


def events_of(relay, qid, rcpt=None, types=None):
    return [e for e in relay.trace(qid)
            if (rcpt is None or e.get("recipient") == rcpt) and
            (types is None or e.get("type") in types)]


def wait_verdicts(relay, qid, n=1, rcpt=None, timeout=20):
    """The trace once it holds n verdict events (delivered / deferred /
    bounced) for qid (and rcpt), or whatever it holds at the deadline."""
    wait_until(lambda: len(events_of(relay, qid, rcpt, VERDICT)) >= n,
               timeout)
    return relay.trace(qid)


def last(events, etype, rcpt=None):
    for e in reversed(events):
        if e.get("type") == etype and (rcpt is None or
                                       e.get("recipient") == rcpt):
            return e
    return {}


def queued(relay, qid):
    return [e for e in relay.queue() if e["msgid"] == qid]


def short(x, n=400):
    s = str(x)
    return s if len(s) <= n else s[:n] + "..."


def check_deferred(relay, name, qid, status, rtype, rcpt, world, msgid):
    """Deferred with status and result type, still queued, nothing
    arrived, and the log line says so."""
    events = wait_verdicts(relay, qid)
    att = last(events, "attempt")
    q = queued(relay, qid)
    line = log_has(relay, qid, f"to=<{rcpt}>", f"dsn={status}",
                   "status=deferred",
                   f"result={rtype}" if rtype else "result=-")
    ok = last(events, "deferred").get("status") == status and \
        att.get("result_type") == rtype and len(q) == 1 and \
        q[0]["last_status"] == status and \
        q[0]["last_result_type"] == rtype and \
        not world_mail(world, msgid) and line is not None
    report(name, ok, f"attempt={short(att)} queue={short(q)} "
           f"log={line!r} arrived={len(world_mail(world, msgid))}")
    return att


def check_delivered(relay, name, qid, tls, host, world, msgid, extra_ok=True,
                    extra_why=""):
    events = wait_verdicts(relay, qid)
    att = last(events, "attempt")
    got = world_mail(world, msgid)
    hosts = [h for h, meta, raw in got]
    line = log_has(relay, qid, "status=sent", f"tls={tls}")
    ok = last(events, "delivered").get("status", "").startswith("2.") and \
        att.get("tls") == tls and hosts == [host] and \
        not queued(relay, qid) and line is not None and extra_ok
    report(name, ok, f"attempt={short(att)} arrived at {hosts} "
           f"log={line!r} {extra_why}")
    return att, got


# --- 1-3: security levels and exceptions --------------------------------

def test_security(args, port):
    extra = f"""
[delivery]
retry_schedule = 1h
delay_warning = 0
[domain no-tlsa.test]
security = dane-only
[domain ee-311.test]
security = dane-only
[domain insecure-mx-good.test]
security = dane-only
[domain unsigned.test]
security = encrypt
[domain pkix-only-no-starttls.test]
security = encrypt
[domain encrypt-literal.test]
security = encrypt
route = [{HOSTS['mx.no-starttls.test']}]:{port}
[domain cleartext-literal.test]
route = [{HOSTS['mx.no-starttls.test']}]:{port}
[domain ee-wrong-digest.test]
security = may
exception = ticket 42: their TLSA is broken
"""
    relay = start(args, extra, "policy-security")
    w = args.world
    try:
        sent = {}
        for dom in ("no-tlsa.test", "ee-311.test", "insecure-mx-good.test",
                    "unsigned.test", "pkix-only-no-starttls.test",
                    "encrypt-literal.test", "cleartext-literal.test",
                    "ee-wrong-digest.test", "dane-ta-wrong-name.test"):
            code, qid, msgid = submit(relay, SENDER, [f"user@{dom}"],
                                      subject=f"security {dom}")
            sent[dom] = (qid, msgid)
            if code != 250:
                report(f"security.submit-{dom}", False, f"answered {code}")
        for dom, (qid, msgid) in sent.items():
            if qid:
                wait_verdicts(relay, qid)

        def d(dom):
            return sent[dom][0], sent[dom][1]

        # 1. dane-only (RFC 7672 §6)
        qid, msgid = d("no-tlsa.test")
        att = check_deferred(relay, "dane-only.no-tlsa-deferred-dane-required",
                             qid, "4.7.323", "dane-required",
                             "user@no-tlsa.test", w, msgid)
        qid, msgid = d("ee-311.test")
        check_delivered(relay, "dane-only.ee-311-delivered-verified", qid,
                        "verified", "mx.ee-311.test", w, msgid)
        qid, msgid = d("insecure-mx-good.test")
        att = check_deferred(
            relay, "dane-only.insecure-mx-deferred-dane-required", qid,
            "4.7.323", "dane-required", "user@insecure-mx-good.test", w,
            msgid)
        report("dane-only.insecure-mx-says-why",
               "not DNSSEC-signed" in att.get("text", ""), short(att))

        # 2. encrypt: TLS required, TLSA not consulted
        qid, msgid = d("unsigned.test")
        check_delivered(relay, "encrypt.starttls-delivered-encrypted", qid,
                        "encrypted", "mx.unsigned.test", w, msgid)
        qid, msgid = d("pkix-only-no-starttls.test")
        check_deferred(relay, "encrypt.no-starttls-deferred-4.7.321", qid,
                       "4.7.321", "starttls-not-supported",
                       "user@pkix-only-no-starttls.test", w, msgid)
        # An address literal has no DANE (opportunistic); only encrypt
        # makes the missing STARTTLS fatal. The control goes in cleartext.
        qid, msgid = d("encrypt-literal.test")
        check_deferred(relay, "encrypt.literal-no-starttls-deferred-4.7.321",
                       qid, "4.7.321", "starttls-not-supported",
                       "user@encrypt-literal.test", w, msgid)
        qid, msgid = d("cleartext-literal.test")
        check_delivered(relay, "encrypt.control-literal-cleartext-delivered",
                        qid, "none", "mx.no-starttls.test", w, msgid)

        # 3. may + exception
        qid, msgid = d("ee-wrong-digest.test")
        att, got = check_delivered(
            relay, "exception.ee-wrong-digest-delivered", qid, "encrypted",
            "mx.ee-wrong-digest.test", w, msgid)
        report("exception.attempt-carries-text",
               att.get("exception") == "ticket 42: their TLSA is broken",
               short(att))
        qid, msgid = d("dane-ta-wrong-name.test")
        check_deferred(relay, "exception.neighbour-still-deferred-4.7.325",
                       qid, "4.7.325", "certificate-host-mismatch",
                       "user@dane-ta-wrong-name.test", w, msgid)
    finally:
        relay.stop()


# --- 4: log-only -------------------------------------------------------

def test_log_only(args):
    w = args.world
    base = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"

    relay = start(args, base + "[policy]\nmode = log-only\n"
                  "log_only_cleartext = yes\n", "policy-logonly-clear")
    try:
        code, qid, msgid = submit(relay, SENDER, ["user@no-starttls.test"],
                                  subject="log-only cleartext")
        att, got = check_delivered(
            relay, "log-only-cleartext.no-starttls-delivered-in-clear", qid,
            "none", "mx.no-starttls.test", w, msgid)
        meta = got[0][1] if got else {}
        report("log-only-cleartext.receiver-saw-no-tls",
               bool(got) and meta.get("tls") is None, short(meta))
        report("log-only-cleartext.would-fail-starttls",
               "starttls-not-supported" in att.get("would_fail", "") and
               log_has(relay, qid, "would_fail=starttls-not-supported"),
               f"{short(att)} log={relay.tail(3)}")
    finally:
        relay.stop()

    relay = start(args, base + "[policy]\nmode = log-only\n",
                  "policy-logonly")
    try:
        code, qid, msgid = submit(relay, SENDER, ["user@no-starttls.test"],
                                  subject="log-only no cleartext")
        check_deferred(relay, "log-only.no-cleartext-by-default-4.7.321",
                       qid, "4.7.321", "starttls-not-supported",
                       "user@no-starttls.test", w, msgid)
    finally:
        relay.stop()

    relay = start(args, base + "[domain ee-wrong-digest.test]\n"
                  "mode = log-only\n", "policy-logonly-domain")
    try:
        code, qa, ma = submit(relay, SENDER, ["user@ee-wrong-digest.test"],
                              subject="per-domain log-only")
        code, qb, mb = submit(relay, SENDER, ["user@dane-ta-wrong-name.test"],
                              subject="enforced neighbour")
        wait_verdicts(relay, qb)
        att, got = check_delivered(
            relay, "log-only-domain.ee-wrong-digest-delivered", qa,
            "encrypted", "mx.ee-wrong-digest.test", w, ma)
        report("log-only-domain.would-fail-tlsa-invalid",
               "tlsa-invalid" in att.get("would_fail", "") and
               "4.7.323" in att.get("would_fail", "") and
               log_has(relay, qa, "would_fail=tlsa-invalid"),
               f"{short(att)}")
        check_deferred(relay, "log-only-domain.other-domain-enforced-4.7.325",
                       qb, "4.7.325", "certificate-host-mismatch",
                       "user@dane-ta-wrong-name.test", w, mb)
    finally:
        relay.stop()


# --- 5: delay warning --------------------------------------------------

def parse_report(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {}
    for p in msg.walk():
        parts.setdefault(p.get_content_type(), p)
    ds = parts.get("message/delivery-status")
    return msg, parts, ds.as_string() if ds is not None else ""


def reports_with(world, msgid, action):
    return [(h, meta, raw) for h, meta, raw in
            world_mail(world, msgid, reports=True)
            if f"Action: {action}".encode() in raw]


def test_delay_warning(args):
    extra = "[delivery]\nretry_schedule = 1s\ndelay_warning = 2s\n" \
            "max_queue_lifetime = 1h\n"
    relay = start(args, extra, "policy-delay")
    w = args.world
    try:
        code, qid, msgid = submit(relay, SENDER, ["user@ee-wrong-digest.test"],
                                  subject="delay please")
        got = wait_until(lambda: reports_with(w, msgid, "delayed"), 15)
        report("delay.warning-arrives", bool(got),
               f"trace={short(relay.trace(qid)[-3:])}")
        if not got:
            return
        host, meta, raw = got[0]
        msg, parts, ds = parse_report(raw)
        report("delay.multipart-report-at-sender",
               host == "mx.ee-311.test" and
               meta.get("rcpt_to") == [SENDER] and
               msg.get_content_type() == "multipart/report" and
               msg.get_param("report-type") == "delivery-status",
               f"{host} {meta.get('rcpt_to')} {msg['Content-Type']}")
        report("delay.fields",
               "Action: delayed" in ds and "Status: 4.7.323" in ds and
               "Will-Retry-Until:" in ds and
               "user@ee-wrong-digest.test" in ds, short(ds, 800))
        # Let several more retries run: still one warning, not one each.
        n0 = len(events_of(relay, qid, types=("attempt",)))
        wait_until(lambda: len(events_of(relay, qid, types=("attempt",)))
                   >= n0 + 3, 10)
        time.sleep(1.5)         # a second warning would be delivered by now
        events = relay.trace(qid)
        dsn = [e for e in events if e.get("type") == "dsn-sent"]
        attempts = [e for e in events if e.get("type") == "attempt"]
        report("delay.exactly-one-warning",
               len(reports_with(w, msgid, "delayed")) == 1 and
               len(dsn) == 1 and dsn[0].get("action") == "delayed" and
               len(attempts) >= n0 + 3,
               f"{len(reports_with(w, msgid, 'delayed'))} reports, "
               f"dsn-sent={dsn}, {len(attempts)} attempts")
        q = queued(relay, qid)
        report("delay.message-still-queued",
               len(q) == 1 and q[0]["delay_warned"] in (True, 1) and
               q[0]["last_status"] == "4.7.323", short(q))
    finally:
        relay.stop()


# --- 6: DSN NOTIFY / RET / ENVID, null sender --------------------------

def test_dsn(args):
    extra = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
    relay = start(args, extra, "policy-dsn")
    w = args.world
    marker = "BODY-MARKER-7f3a9c do not return me"
    try:
        code, q_never, m_never = submit(
            relay, SENDER, ["user@null-mx.test"], subject="notify never",
            rcpt_opts=["NOTIFY=NEVER"])
        code, q_succ, m_succ = submit(
            relay, SENDER, ["user@ee-311.test"], subject="notify success",
            rcpt_opts=["NOTIFY=SUCCESS,FAILURE"])
        code, q_hdrs, m_hdrs = submit(
            relay, SENDER, ["user@null-mx.test"], subject="ret hdrs",
            body=marker + "\r\n", mail_opts=["RET=HDRS", "ENVID=xyz"])
        code, q_null, m_null = submit(
            relay, "", ["user@null-mx.test"], subject="null sender")
        for q in (q_never, q_succ, q_hdrs, q_null):
            if q:
                wait_verdicts(relay, q)

        # NOTIFY=SUCCESS: a success report (relayed: the world's receivers
        # do not offer DSN, RFC 3461 §5.2.2).
        ok_got = wait_until(lambda: world_mail(w, m_succ, reports=True), 15)
        events = relay.trace(q_succ)
        delivered = last(events, "delivered")
        ds = parse_report(ok_got[0][2])[2] if ok_got else ""
        report("dsn.notify-success-report",
               bool(delivered) and len(ok_got or []) == 1 and
               ok_got[0][0] == "mx.ee-311.test" and
               ("Action: relayed" in ds or "Action: delivered" in ds) and
               "Status: 2." in ds and "user@ee-311.test" in ds and
               any(e.get("type") == "dsn-sent" and
                   e.get("action") in ("relayed", "delivered")
                   for e in events),
               f"delivered={short(delivered)} ds={short(ds)}")

        # RET=HDRS + ENVID
        got = wait_until(lambda: reports_with(w, m_hdrs, "failed"), 15)
        if got:
            msg, parts, ds = parse_report(got[0][2])
            raw = got[0][2]
            report("dsn.ret-hdrs-envid",
                   "Original-Envelope-Id: xyz" in ds and
                   "Status: 5.1.10" in ds and
                   "text/rfc822-headers" in parts and
                   "message/rfc822" not in parts and
                   marker.encode() not in raw and m_hdrs.encode() in raw,
                   f"parts={list(parts)} ds={short(ds)}")
        else:
            report("dsn.ret-hdrs-envid", False,
                   f"no failure report; trace={short(relay.trace(q_hdrs))}")

        # NOTIFY=NEVER: bounced, no report (the RET=HDRS one, submitted
        # later, has arrived by now).
        ev = relay.trace(q_never)
        report("dsn.notify-never-no-report",
               bool(last(ev, "bounced")) and
               not any(e.get("type") == "dsn-sent" for e in ev) and
               not world_mail(w, m_never, reports=True) and
               not world_mail(w, m_never),
               f"events={short(ev)}")
        # Null reverse-path (RFC 3461 §6.2): bounced, no report.
        ev = relay.trace(q_null)
        report("dsn.null-sender-no-report",
               code == 250 and bool(last(ev, "bounced")) and
               last(ev, "bounced").get("status") == "5.1.10" and
               not any(e.get("type") == "dsn-sent" for e in ev) and
               not world_mail(w, m_null, reports=True),
               f"events={short(ev)}")
    finally:
        relay.stop()


# --- 7: dead destination cache -----------------------------------------

def test_dead(args):
    extra = "[delivery]\nretry_schedule = 1s\ndelay_warning = 0\n" \
            "dead_after = 1\ndead_time = 60s\n"
    relay = start(args, extra, "policy-dead")
    rcpt = "user@conn-refused.test"
    try:
        code, q1, m1 = submit(relay, SENDER, [rcpt], subject="dead 1")
        wait_verdicts(relay, q1)
        time.sleep(2.5)
        code, q2, m2 = submit(relay, SENDER, [rcpt], subject="dead 2")
        wait_verdicts(relay, q2, n=2, timeout=15)
        wait_verdicts(relay, q1, n=4, timeout=10)
        a1 = events_of(relay, q1, types=("attempt",))
        a2 = events_of(relay, q2, types=("attempt",))
        first = a1[0] if a1 else {}
        report("dead.first-attempt-is-real-4.4.1",
               first.get("status") == "4.4.1" and
               first.get("ip") == HOSTS["mx.conn-refused.test"] and
               "not tried again" not in first.get("text", ""),
               short(first))
        later = a1[1:] + a2
        real = [a for a in later if "not tried again" not in
                a.get("text", "") or a.get("ip")]
        report("dead.later-attempts-not-tried-again",
               len(later) >= 3 and not real and
               all(a.get("status") == "4.4.1" for a in later),
               f"{len(later)} later attempts, {len(real)} made a "
               f"connection: {short(real, 600)}")
        q = {e["msgid"]: e for e in relay.queue()}
        report("dead.last-text-says-not-tried",
               q1 in q and q2 in q and
               "not tried again" in q[q2]["last_text"] and
               "not tried again" in q[q1]["last_text"],
               short([q.get(q1), q.get(q2)], 600))
    finally:
        relay.stop()


# --- 8: route to an address literal ------------------------------------

def test_route_literal(args, port):
    ip = HOSTS["mx.ee-311.test"]
    extra = f"[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n" \
            f"[domain unsigned.test]\nroute = [{ip}]:{port}\n"
    relay = start(args, extra, "policy-route")
    try:
        code, qid, msgid = submit(relay, SENDER, ["user@unsigned.test"],
                                  subject="route literal")
        att, got = check_delivered(
            relay, "route-literal.delivered-to-that-address", qid,
            "encrypted", "mx.ee-311.test", args.world, msgid)
        meta = got[0][1] if got else {}
        report("route-literal.no-dane",
               att.get("ip") == ip and att.get("port") == port and
               att.get("mx") == ip and "tlsa" not in att and
               "tlsa_base" not in att and att.get("tls") == "encrypted" and
               meta.get("rcpt_to") == ["user@unsigned.test"] and
               (meta.get("tls") or {}).get("version"),
               f"{short(att)} meta={short(meta)}")
    finally:
        relay.stop()


# --- 9: recipients grouped per domain ----------------------------------

def test_grouping(args):
    extra = "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
    relay = start(args, extra, "policy-group")
    rcpts = ["alice@ee-311.test", "bob@ee-311.test", "carol@ee-301.test"]
    try:
        code, qid, msgid = submit(relay, SENDER, rcpts, subject="grouping")
        wait_until(lambda: len(events_of(relay, qid, types=VERDICT)) >= 3, 20)
        got = world_mail(args.world, msgid)
        by = {}
        for host, meta, raw in got:
            by.setdefault(host, []).append(meta.get("rcpt_to"))
        report("group.one-transaction-per-domain",
               sorted(by.get("mx.ee-311.test", [[]])[0]) ==
               ["alice@ee-311.test", "bob@ee-311.test"] and
               len(by.get("mx.ee-311.test", [])) == 1, short(by))
        report("group.split-by-domain",
               by.get("mx.ee-301.test") == [["carol@ee-301.test"]] and
               set(by) == {"mx.ee-311.test", "mx.ee-301.test"} and
               not queued(relay, qid), short(by))
    finally:
        relay.stop()


# --- 10: connection reuse ----------------------------------------------

class CountingSMTP:
    """A minimal SMTP receiver on 127.0.0.1 that remembers, per connection,
    the messages received: what proves that one session carried several
    messages. With fail=True it answers 421 at once (nothing is taken)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.fail = True
        self.conns = []     # per connection: list of (mail_from, rcpts)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,),
                             daemon=True).start()

    def session(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        msgs = []

        def send(s):
            c.sendall(s.encode() + b"\r\n")
        try:
            if self.fail:
                send("421 4.3.2 not now")
                return
            self.conns.append(msgs)
            send("220 counting.test ESMTP")
            frm, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode(errors="replace").strip()
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    send("250-counting.test\r\n250 8BITMIME")
                elif verb == "MAIL":
                    frm, rcpts = cmd[10:].strip(), []
                    send("250 2.1.0 ok")
                elif verb == "RCPT":
                    rcpts.append(cmd[8:].strip())
                    send("250 2.1.5 ok")
                elif verb == "DATA":
                    send("354 go")
                    while f.readline() not in (b".\r\n", b".\n", b""):
                        pass
                    msgs.append((frm, rcpts))
                    send("250 2.0.0 ok")
                elif verb == "RSET" or verb == "NOOP":
                    send("250 2.0.0 ok")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    return
                else:
                    send("500 5.5.2 what")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop_ev.set()
        self.sock.close()
        self.thread.join(2)


def rewrite_conf(relay, drop_section_key):
    """Remove key from [section] of the relay's config file."""
    sec, key = drop_section_key
    sections = parse_ini(open(relay.conf).read())
    sections.get(sec, {}).pop(key, None)
    with open(relay.conf, "w") as f:
        for s, kv in sections.items():
            f.write(f"[{s}]\n")
            for k, v in kv.items():
                f.write(f"{k} = {v}\n")
            f.write("\n")


def test_reuse(args, port):
    """Five messages per destination are queued while nothing can be
    delivered (ee-311.test routed to the address where nothing listens,
    reuse.test to a counting receiver that answers 421), then the relay
    is stopped, the route to nowhere removed, the messages made due with
    `queue retry`, and the relay started again: with concurrency 1 each
    destination's five messages must go over one connection.

    The world's receivers store only the peer's IP address, so for
    ee-311.test reuse cannot be proven from the world's data (it would
    take the client's port, or a connection counter, in the stored .json):
    there the test checks that all five arrived, verified, and the log has
    five `status=sent` lines. The proof of reuse is the counting receiver
    on 127.0.0.1, reached through `route = [127.0.0.1]:PORT`."""
    counter = CountingSMTP()
    nowhere = HOSTS["mx.conn-refused.test"]
    extra = f"""
[delivery]
retry_schedule = 1h
delay_warning = 0
initial_concurrency = 1
concurrency = 1
[domain ee-311.test]
route = [{nowhere}]:{port}
[domain reuse.test]
route = [127.0.0.1]:{counter.port}
"""
    relay = start(args, extra, "policy-reuse")
    w = args.world
    try:
        world_msgs, count_msgs = [], []
        for i in range(5):
            world_msgs.append(submit(relay, SENDER, [f"user{i}@ee-311.test"],
                                     subject=f"reuse {i}"))
            count_msgs.append(submit(relay, SENDER, [f"user{i}@reuse.test"],
                                     subject=f"reuse counted {i}"))
        for code, qid, msgid in world_msgs + count_msgs:
            if qid:
                wait_verdicts(relay, qid)
        q = relay.queue()
        report("reuse.all-queued-first", len(q) == 10 and
               all(e["attempts"] >= 1 for e in q), short(q))
        relay.stop()
        rewrite_conf(relay, ("domain ee-311.test", "route"))
        counter.fail = False
        for code, qid, msgid in world_msgs + count_msgs:
            relay.cli("queue", "retry", qid)
        relay.start()
        wait_until(lambda: not relay.queue(), 20)
        arrived = [world_mail(w, msgid) for code, qid, msgid in world_msgs]
        sent_lines = [log_has(relay, qid, "status=sent", "tls=verified")
                      for code, qid, msgid in world_msgs]
        report("reuse.world-all-five-delivered-verified",
               all(len(a) == 1 and a[0][0] == "mx.ee-311.test"
                   for a in arrived) and all(sent_lines),
               f"arrived={[len(a) for a in arrived]} "
               f"log={relay.tail(6)}")
        n = sum(len(m) for m in counter.conns)
        report("reuse.one-connection-for-five-messages",
               n == 5 and len(counter.conns) == 1,
               f"{n} messages over {len(counter.conns)} connections: "
               f"{[len(m) for m in counter.conns]}")
    finally:
        relay.stop()
        counter.close()


def test_hold(args):
    """[delivery] hold = yes: mail is accepted and queued but no attempt
    starts; after hold = no and SIGHUP it goes out at once."""
    relay = start(args, "[delivery]\nhold = yes\n", "policy-hold")
    try:
        code, qid, msgid = submit(relay, SENDER, ["held@ee-311.test"],
                                  subject="held")
        time.sleep(2.5)             # more than two scan periods
        q = relay.queue()
        report("hold.accepted-not-attempted",
               code == 250 and len(q) == 1 and q[0]["attempts"] == 0
               and not world_mail(args.world, msgid), short(q))
        rewrite_conf(relay, ("delivery", "hold"))
        relay.proc.send_signal(signal.SIGHUP)
        ok = wait_until(lambda: not relay.queue(), 20)
        report("hold.released-by-reload",
               ok and len(world_mail(args.world, msgid)) == 1,
               relay.tail(6))
    finally:
        relay.stop()


def test_sts_recheck(args):
    """RFC 8461 §5: before an MTA-STS enforce failure becomes a bounce,
    the policy id is looked up again once (here it did not change, so the
    message bounces after the re-check, with the 5.7.5 of its failure)."""
    extra = "[delivery]\nretry_schedule = 1s\nmax_queue_lifetime = 2s\n" \
            "delay_warning = 0\n"
    relay = start(args, extra, "policy-sts-recheck")
    try:
        # libcurl is loaded by the first HTTPS request, not at start
        # (src/http/http_lib.h): here, the policy fetch.
        curl_at_start = mapped(relay, "libcurl")
        code, qid, msgid = submit(relay, SENDER,
                                  ["user@sts-enforce-mx-mismatch.test"],
                                  subject="sts recheck")
        ok = wait_until(lambda: log_has(relay, qid, "status=bounced"), 30)
        lines = open(relay.log, errors="replace").read()
        rechecks = lines.count("MTA-STS sts-enforce-mx-mismatch.test: "
                               "policy id re-checked before the bounce: "
                               "202411290001")
        report("sts-recheck.before-bounce",
               ok and rechecks == 1 and log_has(relay, qid, "dsn=5.7.5"),
               relay.tail(8))
        report("sts-recheck.libcurl-loaded-on-first-fetch",
               not curl_at_start and mapped(relay, "libcurl"),
               f"mapped at start: {curl_at_start}")
    finally:
        relay.stop()


def test_idle_time(args):
    """[delivery] connection_idle_time: a connection whose mail is done
    waits that long for more to its destination. Two messages 3 s apart
    share one connection under the default (5 s; with Postfix's 2 s they
    would not), and take two when it is 0."""
    for name, idle, want in (("default", None, 1), ("zero", "0", 2)):
        counter = CountingSMTP()
        counter.fail = False
        extra = f"""
[delivery]
retry_schedule = 1h
{f"connection_idle_time = {idle}" if idle is not None else ""}
[domain reuse.test]
route = [127.0.0.1]:{counter.port}
"""
        relay = start(args, extra, f"policy-idle-{name}")
        try:
            for i in range(2):
                code, qid, msgid = submit(relay, SENDER,
                                          [f"idle{i}@reuse.test"],
                                          subject=f"idle {name} {i}")
                wait_verdicts(relay, qid)
                if i == 0:
                    time.sleep(3)
            n = sum(len(m) for m in counter.conns)
            report(f"idle-time.{name}-{want}-connection(s)",
                   n == 2 and len(counter.conns) == want,
                   f"{n} messages over {len(counter.conns)} connections")
        finally:
            relay.stop()
            counter.close()


def test_tls_gate(args):
    """[delivery] tls_handshakes = 1: six sessions released together to
    one destination (one message each) reach STARTTLS at once; all but
    one wait for the handshake slot (the smtp trace says so), and every
    message still arrives DANE-verified: the gate queues, it does not
    drop or deadlock."""
    extra = """
[delivery]
hold = yes
tls_handshakes = 1
initial_concurrency = 6
concurrency = 6
max_messages_per_connection = 1
"""
    relay = start(args, extra, "policy-tls-gate", flags=("-T", "smtp"))
    try:
        msgs = [submit(relay, SENDER, [f"gate{i}@ee-311.test"],
                       subject=f"gate {i}") for i in range(6)]
        rewrite_conf(relay, ("delivery", "hold"))
        relay.proc.send_signal(signal.SIGHUP)
        ok = wait_until(lambda: not relay.queue(), 30)
        arrived = [world_mail(args.world, msgid) for _, _, msgid in msgs]
        verified = [log_has(relay, qid, "status=sent", "tls=verified")
                    for _, qid, _ in msgs]
        text = open(relay.log, errors="replace").read()
        waits = text.count("waiting for a TLS handshake slot")
        report("tls-gate.all-delivered-verified",
               ok and all(len(a) == 1 for a in arrived) and all(verified),
               f"arrived={[len(a) for a in arrived]} {relay.tail(6)}")
        report("tls-gate.sessions-waited-their-turn", waits >= 1,
               f"{waits} waits in the trace")
    finally:
        relay.stop()


HOSTS = {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    hj = json.load(open(os.path.join(args.world, "hosts.json")))
    HOSTS.update({h["name"]: h["ip"] for h in hj["hosts"]})
    port = hj["smtp_port"]
    t0 = time.monotonic()
    for name, fn in (("security", lambda: test_security(args, port)),
                     ("log-only", lambda: test_log_only(args)),
                     ("delay", lambda: test_delay_warning(args)),
                     ("dsn", lambda: test_dsn(args)),
                     ("dead", lambda: test_dead(args)),
                     ("route-literal", lambda: test_route_literal(args, port)),
                     ("group", lambda: test_grouping(args)),
                     ("reuse", lambda: test_reuse(args, port)),
                     ("hold", lambda: test_hold(args)),
                     ("sts-recheck", lambda: test_sts_recheck(args)),
                     ("tls-gate", lambda: test_tls_gate(args)),
                     ("idle-time", lambda: test_idle_time(args))):
        try:
            fn()
        except Exception as e:          # one broken case must not hide the rest
            report(f"{name}.ran", False, f"{type(e).__name__}: {e}")
    for r in RELAYS:        # none is left running, whatever happened
        r.stop()
    if FAILED:
        print(f"relay_policy: kept for inspection: {' '.join(RELAY_DIRS)}",
              flush=True)
    else:
        for d in RELAY_DIRS:
            shutil.rmtree(d, ignore_errors=True)
    print(f"relay_policy: {time.monotonic() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
