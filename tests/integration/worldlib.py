"""Shared helpers for the relay's end-to-end tests: start `danerelay serve`
in the test world with a config of the test's choosing, submit mail with
Python's smtplib, read the queue and the trace through the danerelay
commands, and find what the world's receivers stored.

Not a test itself (the suite runs tests/integration/*.py that start with
'relay_' or 'check_'; this module is imported by them).
"""
import email
import glob
import json
import os
import signal
import smtplib
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(name, ok, why=""):
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)


def make_cert(directory, name):
    """Self-signed P-256 certificate and key for name, made by openssl;
    (cert, key) paths in directory. Raises when openssl fails."""
    cert = os.path.join(directory, name + ".cert.pem")
    key = os.path.join(directory, name + ".key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class Relay:
    """One `danerelay serve` process with its own queue and config."""

    def __init__(self, binary, world, extra="", name="relay", flags=()):
        self.binary, self.world = binary, world
        self.flags = list(flags)        # before the command, e.g. -T smtp
        # Beside the world, so one test run keeps its files in one place.
        self.dir = tempfile.mkdtemp(
            prefix=f"relay-{name}.",
            dir=os.path.dirname(os.path.abspath(world)))
        self.port = free_port()
        self.conf = os.path.join(self.dir, "danerelay.conf")
        base = open(os.path.join(world, "danerelay.conf")).read()
        sections = parse_ini(base + "\n" + extra)
        sections.setdefault("server", {}).setdefault(
            "listen", f"127.0.0.1:{self.port}")
        sections["server"].setdefault("hostname", "relay.test")
        # The tests run as root: say so, unless the test drops to a user.
        if "user" not in sections["server"]:
            sections["server"].setdefault("allow_root", "yes")
        sections.setdefault("queue", {}).setdefault(
            "directory", os.path.join(self.dir, "queue"))
        with open(self.conf, "w") as f:
            for sec, kv in sections.items():
                f.write(f"[{sec}]\n")
                for k, v in kv.items():
                    f.write(f"{k} = {v}\n")
                f.write("\n")
        self.log = os.path.join(self.dir, "relay.log")
        self.proc = None

    def start(self, timeout=20):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf]
                                     + self.flags + ["serve"],
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("relay exited: " + self.tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("relay did not listen: " + self.tail())

    def tail(self, n=20):
        try:
            return "".join(open(self.log, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def cli(self, *args, timeout=60, env=None):
        p = subprocess.run([self.binary, "-c", self.conf] + list(args),
                           capture_output=True, text=True, timeout=timeout,
                           env=env)
        return p.returncode, p.stdout, p.stderr

    def queue(self):
        rc, out, err = self.cli("queue", "list", "--json")
        if rc not in (0, 1) or not out.strip():
            return []
        return json.loads(out)

    def trace(self, msgid):
        rc, out, err = self.cli("trace", "--message-id", msgid, "--json")
        try:
            docs = json.loads(out)
        except ValueError:
            return []
        return docs[0]["events"] if docs else []

    def submit(self, sender, rcpts, subject="test", body="hello\r\n",
               msgid=None, source=None, headers=None):
        """Send one message; returns (code, queue id) of the final reply."""
        msgid = msgid or email.utils.make_msgid(domain="client.test")
        head = [f"From: <{sender}>", f"To: {', '.join(rcpts)}",
                f"Subject: {subject}", f"Message-ID: {msgid}",
                f"Date: {email.utils.formatdate()}"] + (headers or [])
        data = "\r\n".join(head) + "\r\n\r\n" + body
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=30,
                         source_address=(source, 0) if source else None)
        try:
            s.ehlo("client.test")
            s.mail(sender)
            for r in rcpts:
                code, resp = s.rcpt(r)
                if code >= 400:
                    raise smtplib.SMTPRecipientsRefused({r: (code, resp)})
            code, resp = s.data(data.encode())
        finally:
            try:
                s.quit()
            except smtplib.SMTPException:
                pass
        qid = resp.decode().rsplit(" ", 1)[-1] if code == 250 else None
        return code, qid, msgid


def parse_ini(text):
    out, sec = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            sec = line.strip("[]").strip()
            out.setdefault(sec, {})
        elif "=" in line and sec:
            k, v = line.split("=", 1)
            out[sec][k.strip()] = v.strip()
    return out


def world_mail(world, msgid, reports=False):
    """[(host, meta, raw bytes)] of messages in the world that carry
    Message-ID msgid. Reports about it (null sender, e.g. NDRs quoting it)
    are left out unless reports is true; then only they are returned."""
    found = []
    for meta_path in glob.glob(os.path.join(world, "mail", "*", "*.json")):
        raw = open(meta_path[:-5] + ".eml", "rb").read()
        if msgid.encode() not in raw:
            continue
        meta = json.load(open(meta_path))
        if (meta.get("mail_from") in ("", None)) == reports:
            found.append((meta["host"], meta, raw))
    return found


def log_has(relay, *words):
    """A line of the relay's log holding every word."""
    try:
        lines = open(relay.log, errors="replace").read().splitlines()
    except OSError:
        return None
    for line in lines:
        if all(w in line for w in words):
            return line
    return None


def wait_until(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def stand_in_libcurl(tmp):
    """An environment whose LD_LIBRARY_PATH finds, first, a shared object
    named libcurl.so.4 that is not libcurl (built in tmp): how the tests
    see the relay deal with a libcurl it cannot use (src/http/http_lib.h
    loads it at the first HTTPS request)."""
    src = os.path.join(tmp, "stand_in.c")
    with open(src, "w") as f:
        f.write("int danerelay_not_libcurl;\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o",
                    os.path.join(tmp, "libcurl.so.4"), src], check=True)
    return dict(os.environ, LD_LIBRARY_PATH=tmp)


def rewrite_config(relay, change):
    """Apply change(sections) to the relay's config file (for SIGHUP)."""
    sections = parse_ini(open(relay.conf).read())
    change(sections)
    with open(relay.conf, "w") as f:
        for sec, kv in sections.items():
            f.write(f"[{sec}]\n" + "".join(f"{k} = {v}\n"
                                           for k, v in kv.items()) + "\n")
