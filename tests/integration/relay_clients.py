#!/usr/bin/python3
"""danerelay with real SMTP software on both sides, in the test world:

- swaks as a submission client from 127.0.0.2, outside relay_networks:
  no AUTH before STARTTLS, AUTH PLAIN after it relays (credentials made by
  `danerelay passwd`), a wrong password gets 535, no AUTH gets a 5.7.x
  refusal at RCPT; the relay's Received header, and the message arriving
  byte for byte (long lines, leading dots; 8-bit bytes with BODY=8BITMIME,
  sent with Python's smtplib since swaks cannot add MAIL parameters);
- Postfix 3.7 (private instances, tests/integration/postfixlib.py) on
  both sides: Postfix relaying through danerelay (relayhost), and Postfix
  receiving from danerelay through a [domain] route;
- the inbound DANE guard ([server] tlsa_guard) with the relay named
  mx.relay-guard.test (scenario relay-guard: TLSA 3 1 1 of that host's
  certificate, A 127.0.0.1): start, a refused reload that names the TLSA
  record to publish and keeps the old certificate in service, a reload
  accepted with the guard off, a refused fresh start; and `danerelay check`
  as a DANE client of the relay itself.

Postfix needs root to start; without root the Postfix cases print one
FAIL line saying so. Every wait has a timeout; the whole run takes about
10 s. See docs/TESTING.md.

Usage: relay_clients.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import base64
import email.utils
import hashlib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postfixlib  # noqa: E402
from worldlib import Relay, parse_ini, wait_until, world_mail  # noqa: E402
from worldlib import report as _report  # noqa: E402

DEST = "user@ee-311.test"            # verified DANE destination of the world
DEST_HOST = "mx.ee-311.test"
OUTSIDER = "127.0.0.2"               # a client outside relay_networks
USER, PASSWORD = "alice", "correct horse battery staple"
SWAKS_TIMEOUT = 30
LOG_RUNAWAY = 8 << 20                # a relay log growing this fast is a bug


FAILED = []        # names of failed cases
SCRATCH = []       # directories to remove when nothing failed


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, ok, why)


def scratch(path):
    SCRATCH.append(path)
    return path


def run(cmd, input=None, timeout=30):
    """(exit status, stdout + stderr) of a command; never raises on a
    timeout (returns -1 with what it has)."""
    try:
        p = subprocess.run(cmd, input=input, capture_output=True,
                           timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        return -1, out.decode(errors="replace") + "\n(timed out)"


def make_cert(directory, name):
    """Self-signed P-256 certificate and key for name; (cert, key) paths."""
    cert = os.path.join(directory, name + ".cert.pem")
    key = os.path.join(directory, name + ".key.pem")
    rc, out = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                   "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                   "-addext", "subjectAltName=DNS:" + name])
    if rc != 0:
        raise RuntimeError("openssl req: " + out)
    return cert, key


def leaf_der(chain_path):
    pem = open(chain_path).read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + 25]
    return ssl.PEM_cert_to_DER_cert(first)


def spki_sha256(chain_path):
    """The 3 1 1 association data of a chain file's leaf."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    cert = x509.load_der_x509_certificate(leaf_der(chain_path))
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def served_cert(port, timeout=10):
    """SHA-256 of the leaf the relay presents after STARTTLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.ehlo("probe.test")
        s.starttls(context=ctx)
        der = s.sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


def write_conf(path, changes):
    """Rewrite an INI config with {section: {key: value or None}} applied
    (None deletes the key)."""
    sections = parse_ini(open(path).read())
    for sec, kv in changes.items():
        for k, v in kv.items():
            if v is None:
                sections.get(sec, {}).pop(k, None)
            else:
                sections.setdefault(sec, {})[k] = v
    with open(path, "w") as f:
        for sec, kv in sections.items():
            f.write(f"[{sec}]\n")
            for k, v in kv.items():
                f.write(f"{k} = {v}\n")
            f.write("\n")


def log_after(relay, offset, limit=1 << 20):
    """At most limit octets of the relay's log from offset on."""
    try:
        with open(relay.log, "rb") as f:
            f.seek(offset)
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""


def log_tail(relay, limit=4096):
    """The end of the relay's log, however large it grew."""
    size = log_size(relay)
    return log_after(relay, max(0, size - limit), limit)


def log_size(relay):
    try:
        return os.path.getsize(relay.log)
    except OSError:
        return 0


def trace_by_msgid(relay, msgid):
    """The trace document of a message, found by its Message-ID header."""
    rc, out, err = relay.cli("trace", "--message-id", msgid, "--json")
    try:
        docs = json.loads(out)
    except ValueError:
        return None
    return docs[0] if docs else None


def events_of(doc, kind):
    return [e for e in (doc or {}).get("events", []) if e.get("type") == kind]


# ---------------------------------------------------------------- swaks

def credentials(binary, directory):
    """An auth_file made by `danerelay passwd USER` (password on stdin).
    Reports whether the command works; if it does not, the file is made
    with Python's scrypt in the same format so the AUTH cases still run."""
    rc, out = run([binary, "passwd", USER], input=(PASSWORD + "\n").encode())
    lines = [ln for ln in out.splitlines() if ln.startswith(USER + ":")]
    ok = rc == 0 and len(lines) == 1 and re.fullmatch(
        re.escape(USER) + r":\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/=]+"
        r"\$[A-Za-z0-9+/=]+", lines[0]) is not None
    report("passwd.makes-credentials", ok, f"exit {rc}: {out[-300:]!r}")
    if ok:
        line = lines[0]
    else:
        salt = os.urandom(16)
        key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2 ** 15, r=8,
                             p=1, maxmem=64 * 1024 * 1024, dklen=32)
        line = "%s:$scrypt$ln=15,r=8,p=1$%s$%s" % (
            USER, base64.b64encode(salt).decode(),
            base64.b64encode(key).decode())
    path = os.path.join(directory, "auth")
    with open(path, "w") as f:
        f.write(line + "\n")
    os.chmod(path, 0o600)
    return path


def swaks(port, *args, timeout=SWAKS_TIMEOUT):
    return run(["swaks", "--server", f"127.0.0.1:{port}",
                "--local-interface", OUTSIDER, "--ehlo", "client.test",
                "--timeout", "20"] + list(args), timeout=timeout)


def ehlo_block(out, marker):
    """The server's EHLO reply lines in swaks' output (marker '<-' before
    TLS, '<~' after)."""
    lines = out.splitlines()
    for i, ln in enumerate(lines):
        if re.match(r"^ [-~]> EHLO ", ln):
            block = []
            for nxt in lines[i + 1:]:
                if not nxt.startswith(marker + "  250"):
                    break
                block.append(nxt[len(marker) + 2:])
            if block and ln.startswith(" " + marker[1] + ">"):
                return block
    return []


def message_7bit(msgid):
    """Headers and a body with what SMTP transparency must keep: 998-octet
    lines, leading dots (a lone '.', '..', '.text'), trailing spaces,
    empty lines. CRLF line ends, no CRLF after the last line: swaks sends
    DATA as the file plus CRLF "." CRLF, so the message is this plus CRLF."""
    body = [
        "first line",
        ".",
        "..",
        ".leading dot",
        "..two leading dots",
        "trailing spaces   ",
        "",
        "",
        "A" * 998,
        "." + "B" * 997,
        "tab\there",
        "last line",
    ]
    head = ["From: <sender@client.test>", f"To: <{DEST}>",
            "Subject: swaks byte-exact", f"Message-ID: {msgid}",
            f"Date: {email.utils.formatdate()}"]
    return "\r\n".join(head + [""] + body).encode()


def message_8bit(msgid):
    """Like message_7bit, with 8-bit octets (UTF-8, Latin-1, every octet
    0x80-0xff) in the body."""
    high = bytes(range(0x80, 0x100))
    body = [
        "Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, "
        "\u0444\u044b\u0432\u0430".encode(),
        b"latin-1: caf\xe9 na\xefve",
        high[:64],
        high[64:],
        b".\xe9 leading dot then 8-bit",
        b".",
        b"C" * 998,
        b"end",
    ]
    head = [b"From: <sender@client.test>", f"To: <{DEST}>".encode(),
            b"Subject: 8bitmime byte-exact", f"Message-ID: {msgid}".encode(),
            f"Date: {email.utils.formatdate()}".encode(),
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Transfer-Encoding: 8bit"]
    return b"\r\n".join(head + [b""] + body) + b"\r\n"


def split_received(raw):
    """(our Received field, the rest) of a message as the world stored it;
    the field is folded over continuation lines."""
    if not raw.startswith(b"Received:"):
        return None, raw
    i = raw.index(b"\r\n") + 2
    while raw[i:i + 1] in (b" ", b"\t"):
        i = raw.index(b"\r\n", i) + 2
    return raw[:i], raw[i:]


def arrived_once(world, msgid, timeout=30):
    got = wait_until(lambda: world_mail(world, msgid), timeout)
    return got or []


def test_swaks(args, tmp):
    if shutil.which("swaks") is None:
        report("swaks", False, "swaks is not installed (scripts/deps)")
        return
    cert, key = make_cert(tmp, "relay.test")
    auth = credentials(args.binary, tmp)
    extra = (f"[server]\nrelay_networks = 127.0.0.1/32\n"
             f"tls_cert = {cert}\ntls_key = {key}\nauth_file = {auth}\n")
    relay = Relay(args.binary, args.world, extra, name="swaks")
    scratch(relay.dir)
    relay.start()
    try:
        # EHLO in the clear: STARTTLS offered, AUTH not.
        rc, out = swaks(relay.port, "--quit-after", "EHLO")
        clear = ehlo_block(out, "<-")
        report("swaks.no-auth-before-starttls",
               rc == 0 and any(x.endswith("STARTTLS") for x in clear) and
               not any("AUTH" in x for x in clear), f"exit {rc}: {clear}")
        # ... and an AUTH command in the clear is refused, not evaluated.
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=10,
                          source_address=(OUTSIDER, 0)) as s:
            s.ehlo("client.test")
            cred = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
            code, resp = s.docmd("AUTH", "PLAIN " + cred)
        report("swaks.auth-in-clear-refused-530", code == 530,
               f"{code} {resp!r}")

        # After STARTTLS: AUTH offered; the right password relays.
        msgid = email.utils.make_msgid(domain="swaks.client.test")
        data = os.path.join(tmp, "message.eml")
        with open(data, "wb") as f:
            f.write(message_7bit(msgid))
        sent = message_7bit(msgid) + b"\r\n"
        rc, out = swaks(relay.port, "-tls", "--auth", "PLAIN",
                        "--auth-user", USER, "--auth-password", PASSWORD,
                        "--from", "sender@client.test", "--to", DEST,
                        "--data", "@" + data)
        tls_ehlo = ehlo_block(out, "<~")
        report("swaks.auth-offered-after-starttls",
               any(x[4:].startswith("AUTH") and "PLAIN" in x
                   for x in tls_ehlo),
               str(tls_ehlo))
        queued = re.search(r"<~  250 \S+ Ok: queued as (\S+)", out) or \
            re.search(r"<~  250 .*?(\S+)$", out, re.M)
        report("swaks.auth-plain-relays",
               rc == 0 and "<~  235 " in out and queued is not None,
               f"exit {rc}: {out[-600:]}")
        arrived = arrived_once(args.world, msgid)
        report("swaks.delivered-to-world",
               len(arrived) == 1 and arrived[0][0] == DEST_HOST and
               arrived[0][1]["rcpt_to"] == [DEST],
               f"arrived {[(h, m['rcpt_to']) for h, m, r in arrived]}; "
               f"{relay.tail(5)}")
        if arrived:
            raw = arrived[0][2]
            received, rest = split_received(raw)
            want = re.compile(
                rb"Received: from client\.test \(\[127\.0\.0\.2\]\)\r\n"
                rb"(\t\(using [^\r\n]+\)\r\n)?"
                rb"\tby relay\.test \(danerelay\) with ESMTPSA id \S+\r\n"
                rb"\tfor <" + re.escape(DEST.encode()) + rb">; [^\r\n]+\r\n$")
            report("swaks.received-header",
                   received is not None and want.match(received) is not None,
                   repr(received if received else raw[:300]))
            report("swaks.body-byte-exact", rest == sent,
                   first_difference(sent, rest))

        # A wrong password: 535, nothing relayed.
        rc, out = swaks(relay.port, "-tls", "--auth", "PLAIN",
                        "--auth-user", USER, "--auth-password", "wrong",
                        "--from", "sender@client.test", "--to", DEST)
        report("swaks.wrong-password-535",
               rc != 0 and re.search(r"<~\* +535 5\.7\.8", out) is not None,
               f"exit {rc}: {out[-400:]}")
        # No AUTH from outside relay_networks (with TLS, so only the
        # missing login is wrong): RCPT refused with 5.7.x.
        before = len(relay.queue())
        rc, out = swaks(relay.port, "-tls", "--from", "sender@client.test",
                        "--to", DEST)
        refused = re.search(r"~> RCPT TO:<[^>]+>\n<~\* +5\d\d 5\.7\.\d+ ",
                            out)
        report("swaks.no-auth-rcpt-refused-5.7",
               rc != 0 and refused is not None and
               len(relay.queue()) == before, f"exit {rc}: {out[-400:]}")

        # 8-bit body with BODY=8BITMIME, over STARTTLS + AUTH PLAIN.
        msgid = email.utils.make_msgid(domain="smtplib.client.test")
        sent = message_8bit(msgid)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=20,
                              source_address=(OUTSIDER, 0)) as s:
                s.ehlo("client.test")
                s.starttls(context=ctx)
                s.ehlo("client.test")
                s.login(USER, PASSWORD, initial_response_ok=True)
                s.sendmail("sender@client.test", [DEST], sent,
                           mail_options=["BODY=8BITMIME"])
            why = ""
        except (smtplib.SMTPException, OSError) as e:
            why = f"{type(e).__name__}: {e}"
        arrived = arrived_once(args.world, msgid) if not why else []
        rest = split_received(arrived[0][2])[1] if arrived else b""
        report("smtplib.8bitmime-body-byte-exact",
               not why and len(arrived) == 1 and rest == sent,
               why or first_difference(sent, rest))
    finally:
        rc = relay.stop()
        report("swaks.clean-stop", rc == 0, f"exit {rc}: {relay.tail()}")


def first_difference(want, got):
    for i, (a, b) in enumerate(zip(want, got)):
        if a != b:
            lo, hi = max(0, i - 20), i + 20
            return (f"differs at octet {i}: sent {want[lo:hi]!r}, "
                    f"got {got[lo:hi]!r}")
    return f"lengths differ: sent {len(want)}, got {len(got)}"


# ---------------------------------------------------------------- Postfix

def world_host(world, name):
    hosts = json.load(open(os.path.join(world, "hosts.json")))["hosts"]
    return next(h for h in hosts if h["name"] == name)


def free_port_on(addr, avoid):
    for _ in range(20):
        with socket.socket() as s:
            s.bind((addr, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise RuntimeError("no free port on " + addr)


def listeners_private(pf):
    lst = pf.listeners()
    ok = lst == [(pf.addr, pf.port)]
    report(f"postfix-{pf.name}.listens-only-on-its-address", ok,
           f"listening on {lst}, want [{pf.addr}:{pf.port}]")


def test_postfix_submits(args, tmp):
    """Postfix (relayhost = danerelay) -> danerelay -> world receiver."""
    cert, key = make_cert(tmp, "relay.test")
    relay = Relay(args.binary, args.world,
                  f"[server]\ntls_cert = {cert}\ntls_key = {key}\n",
                  name="pf-submit")
    scratch(relay.dir)
    relay.start()
    pf = None
    try:
        pf = postfixlib.Postfix(
            "submit", "127.0.0.20", free_port_on("127.0.0.20", ()),
            {"relayhost": f"[127.0.0.1]:{relay.port}"})
        scratch(pf.dir)
        pf.start()
        listeners_private(pf)
        msgid = email.utils.make_msgid(domain="postfix.client.test")
        msg = (f"From: <sender@client.test>\r\nTo: <{DEST}>\r\n"
               f"Subject: via Postfix\r\nMessage-ID: {msgid}\r\n"
               f"Date: {email.utils.formatdate()}\r\n\r\n"
               "through Postfix and danerelay\r\n").encode()
        with smtplib.SMTP(pf.addr, pf.port, timeout=20) as s:
            s.sendmail("sender@client.test", [DEST], msg)
        arrived = arrived_once(args.world, msgid, timeout=40)
        report("postfix-to-danerelay.delivered-to-world",
               len(arrived) == 1 and arrived[0][0] == DEST_HOST,
               f"arrived at {[h for h, m, r in arrived]}; postfix: "
               f"{pf.tail(6)} relay: {relay.tail(4)}")
        doc = trace_by_msgid(relay, msgid)
        got = events_of(doc, "received")
        report("postfix-to-danerelay.trace-received-from-postfix",
               len(got) == 1 and
               got[0].get("client", "").startswith("[127.0.0.20]") and
               got[0].get("helo") == "submit.postfix.test",
               f"received events {got}")
        att = events_of(doc, "attempt")
        report("postfix-to-danerelay.trace-delivered-verified",
               bool(att) and att[-1].get("tls") == "verified" and
               att[-1].get("mx") == DEST_HOST and
               len(events_of(doc, "delivered")) == 1,
               f"attempts {att[-1:]}, events "
               f"{[e.get('type') for e in (doc or {}).get('events', [])]}")
        # Postfix's own log: handed to danerelay over TLS, with the id
        # danerelay gave it.
        log = wait_until(lambda: "status=sent" in pf.logtext() and
                         pf.logtext(), 10) or pf.logtext()
        qid = (doc or {}).get("id", "?")
        report("postfix-to-danerelay.postfix-log-sent-over-tls",
               re.search(r"TLS connection established to 127\.0\.0\.1\[127"
                         rf"\.0\.0\.1\]:{relay.port}", log) is not None and
               re.search(rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{relay.port},"
                         rf".*status=sent \(250 .*{re.escape(qid)}\)",
                         log) is not None, pf.tail(8))
    except (RuntimeError, OSError, smtplib.SMTPException) as e:
        report("postfix-to-danerelay", False,
               f"{type(e).__name__}: {e} {pf.tail() if pf else ''}")
    finally:
        if pf is not None:
            pf.stop()
            report("postfix-submit.stopped", not pf.pids(),
                   f"left: {pf.pids()}")
        relay.stop()


def test_postfix_receives(args, tmp):
    """danerelay -> [domain no-tlsa.test] route -> Postfix smtpd at the
    address of mx.no-tlsa.test, another port; opportunistic STARTTLS (no
    TLSA at that port: the trace says "encrypted", TLS without
    authentication)."""
    host = world_host(args.world, "mx.no-tlsa.test")
    world = json.load(open(os.path.join(args.world, "world.json")))
    cert, key = make_cert(tmp, "mx.no-tlsa.test")
    port = free_port_on(host["ip"], (world["smtp_port"], 25))
    pf = relay = None
    try:
        pf = postfixlib.Postfix(
            "receive", host["ip"], port,
            {"virtual_mailbox_domains": "no-tlsa.test",
             "smtpd_tls_security_level": "may",
             "smtpd_tls_cert_file": cert, "smtpd_tls_key_file": key})
        scratch(pf.dir)
        pf.start()
        listeners_private(pf)
        relay = Relay(args.binary, args.world,
                      f"[domain no-tlsa.test]\n"
                      f"route = [mx.no-tlsa.test]:{port}\n",
                      name="pf-receive")
        scratch(relay.dir)
        relay.start()
        code, qid, msgid = relay.submit("sender@ee-311.test",
                                        ["user@no-tlsa.test"],
                                        subject="to Postfix")
        got = wait_until(lambda: [raw for p, raw in pf.mailbox()
                                  if msgid.encode() in raw], 40) or []
        report("danerelay-to-postfix.delivered-to-maildir",
               code == 250 and len(got) == 1,
               f"submit {code}, {len(got)} in Maildir; postfix: "
               f"{pf.tail(6)} relay: {relay.tail(4)}")
        log = pf.logtext()
        report("danerelay-to-postfix.postfix-log",
               re.search(r"TLS connection established from", log) is not None
               and re.search(r"to=<user@no-tlsa\.test>, relay=virtual.*"
                             r"status=sent \(delivered to maildir\)",
                             log) is not None, pf.tail(8))
        att = events_of(trace_by_msgid(relay, msgid), "attempt")
        last = att[-1] if att else {}
        report("danerelay-to-postfix.trace-route-opportunistic-tls",
               last.get("status") == "2.0.0" and
               last.get("ip") == host["ip"] and last.get("port") == port and
               last.get("tls") == "encrypted" and
               bool(last.get("tls_version")), f"attempts {att}")
    except (RuntimeError, OSError, smtplib.SMTPException) as e:
        report("danerelay-to-postfix", False,
               f"{type(e).__name__}: {e} {pf.tail() if pf else ''}")
    finally:
        if relay is not None:
            relay.stop()
        if pf is not None:
            pf.stop()
            report("postfix-receive.stopped", not pf.pids(),
                   f"left: {pf.pids()}")


def test_postfix(args, tmp):
    why = postfixlib.available()
    if why:
        report("postfix-interop", False, why)
        return
    test_postfix_submits(args, tmp)
    test_postfix_receives(args, tmp)


# ---------------------------------------------------------------- guard

def check_verdict(args, domain):
    rc, out = run([args.binary, "-c", os.path.join(args.world,
                                                   "danerelay.conf"),
                   "check", "--json", domain], timeout=60)
    try:
        doc = json.loads(out[out.index("{"):] if "{" in out else out)
        if isinstance(doc, list):
            doc = doc[0]
        return doc.get("verdict"), doc.get("status"), doc.get("result_type")
    except ValueError:
        return None, None, out[-200:]


class GuardRelay:
    """The relay as mx.relay-guard.test at 127.0.0.1:<world SMTP port>,
    watched: a relay that stops answering signals while it floods its log
    (a busy loop) is killed at once instead of filling the disk."""

    def __init__(self, args, port, cert):
        self.port = port
        extra = (f"[server]\nhostname = mx.relay-guard.test\n"
                 f"listen = 127.0.0.1:{port}\n"
                 f"tls_cert = {cert[0]}\ntls_key = {cert[1]}\n")
        self.relay = Relay(args.binary, args.world, extra, name="guard")
        scratch(self.relay.dir)
        self.relay.port = port          # Relay.start() probes this port
        self.conf = self.relay.conf

    def start(self):
        """None when it serves, else why not."""
        try:
            self.relay.start()
            return None
        except RuntimeError as e:
            return str(e)

    def running(self):
        p = self.relay.proc
        return p is not None and p.poll() is None

    def size(self):
        return log_size(self.relay)

    def after(self, offset):
        return log_after(self.relay, offset, LOG_RUNAWAY)

    def tail(self):
        return log_tail(self.relay)

    def hup_and_wait(self, patterns, timeout=15):
        """SIGHUP, then wait for one of patterns in the new log text.
        Returns (text, problem): problem says how the relay misbehaved."""
        off = self.size()
        self.relay.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            grown = self.size() - off
            text = self.after(off)
            if any(p in text for p in patterns):
                return text, None
            if grown > LOG_RUNAWAY:
                self.relay.kill9()
                os.truncate(self.relay.log, off + 65536)  # keep a sample
                lines = text.splitlines()
                top = max(set(lines), key=lines.count) if lines else ""
                return text, (f"runaway after SIGHUP: log grew by "
                              f"{grown >> 20} MiB within seconds, mostly "
                              f"{top!r}; killed")
            if not self.running():
                return text, f"exited with {self.relay.proc.returncode}"
            time.sleep(0.1)
        return self.after(off), f"no {patterns} in the log after {timeout}s"

    def stop(self):
        if self.running():
            return self.relay.stop(timeout=15)
        return self.relay.proc.returncode if self.relay.proc else None


def test_guard(args, tmp):
    world = json.load(open(os.path.join(args.world, "world.json")))
    port = world["smtp_port"]
    certs = os.path.join(args.world, "certs")
    good = (os.path.join(certs, "mx.relay-guard.test.chain.pem"),
            os.path.join(certs, "mx.relay-guard.test.key.pem"))
    other = (os.path.join(certs, "mx.ee-301.test.chain.pem"),
             os.path.join(certs, "mx.ee-301.test.key.pem"))
    if not all(os.path.exists(p) for p in good + other):
        report("guard", False, f"world lacks {good} or {other}: is the "
               "relay-guard scenario in tests/world/scenarios.json?")
        return
    good_fp = hashlib.sha256(leaf_der(good[0])).hexdigest()
    other_fp = hashlib.sha256(leaf_der(other[0])).hexdigest()
    owner = f"_{port}._tcp.mx.relay-guard.test"
    publish = f"{owner}. IN TLSA 3 1 1 {spki_sha256(other[0])}"
    g = GuardRelay(args, port, good)
    try:
        why = g.start()
        report("guard.start-with-matching-cert",
               why is None and "started: mx.relay-guard.test" in g.tail()
               and "matches the published TLSA records" in g.tail(),
               why or g.tail())
        if why is not None:
            return
        report("guard.serves-the-cert", served_cert(port) == good_fp,
               "another certificate")
        # A DANE client (danerelay check, through the world's DNS, whose
        # A record for mx.relay-guard.test is 127.0.0.1) verifies us.
        v = check_verdict(args, "relay-guard.test")
        report("guard.dane-client-verifies-relay", v[0] == "verified",
               f"check says {v}")

        # Another host's certificate: the reload is refused, says which
        # record to publish, and the old certificate stays.
        write_conf(g.conf, {"server": {"tls_cert": other[0],
                                       "tls_key": other[1]}})
        text, problem = g.hup_and_wait(["reload refused",
                                        "configuration reloaded"])
        report("guard.reload-refused",
               problem is None and "reload refused" in text and
               "DANE guard" in text and
               "old certificate stays in service" in text,
               problem or text[-500:])
        report("guard.reload-names-tlsa-to-publish",
               problem is None and publish in text,
               problem or f"want {publish!r} in {text[-500:]!r}")
        if problem is None:
            report("guard.old-cert-still-served",
                   g.running() and served_cert(port) == good_fp,
                   f"running={g.running()}")
            v = check_verdict(args, "relay-guard.test")
            report("guard.still-verified-after-refusal", v[0] == "verified",
                   f"check says {v}")
        else:
            report("guard.old-cert-still-served", False,
                   "the relay did not survive the reload")
            g.stop()
            write_conf(g.conf, {"server": {"tls_cert": good[0],
                                           "tls_key": good[1]}})
            why = g.start()
            if why is not None:
                report("guard.restart", False, why)
                return

        # Guard off: the mismatching certificate is taken on reload (and
        # a DANE client now fails: what the guard is there to prevent).
        write_conf(g.conf, {"server": {"tls_cert": other[0],
                                       "tls_key": other[1],
                                       "tlsa_guard": "no"}})
        text, problem = g.hup_and_wait(["reload refused",
                                        "configuration reloaded"])
        report("guard.off-reload-accepted",
               problem is None and "configuration reloaded" in text and
               "reload refused" not in text, problem or text[-400:])
        report("guard.off-new-cert-served",
               g.running() and served_cert(port) == other_fp,
               f"running={g.running()}; old certificate still served")
        v = check_verdict(args, "relay-guard.test")
        report("guard.off-dane-client-fails",
               v[0] == "defer" and v[1] == "4.7.323", f"check says {v}")
    finally:
        rc = g.stop()
        report("guard.clean-stop", rc == 0, f"exit {rc}: {g.tail()}")

    # A fresh start with the mismatching certificate and the guard on
    # (subprocess.run kills it at the timeout if it wrongly serves).
    write_conf(g.conf, {"server": {"tlsa_guard": None}})
    try:
        p = subprocess.run([args.binary, "-c", g.conf, "serve"],
                           capture_output=True, text=True, timeout=30)
        rc, text = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        rc, text = None, "still running after 30 s: it started"
    report("guard.start-refused",
           rc not in (0, None) and "cannot start" in text and
           "DANE guard" in text and publish in text,
           f"exit {rc}: {text[-500:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.world = os.path.abspath(args.world)
    # `timeout` (scripts/test) sends SIGTERM: unwind through the finally
    # blocks, which stop the relays and the Postfix instances.
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(143))
    tmp = scratch(tempfile.mkdtemp(prefix="relay-clients."))
    os.chmod(tmp, 0o755)     # Postfix (user postfix) reads its cert here
    for t in (test_swaks, test_postfix, test_guard):
        try:
            t(args, tmp)
        except Exception as e:      # one broken part must not hide others
            report(t.__name__, False, f"{type(e).__name__}: {e}")
    if FAILED:
        print("relay_clients: kept for inspection: " + " ".join(SCRATCH))
    else:
        for d in SCRATCH:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
