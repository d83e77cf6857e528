"""The two senders the benchmark compares, behind one interface:

  start(), stop(), hold(on), release(), top_pid(), verified(), name

DaneRelay is `danerelay serve` with its in-process libunbound forwarding to
the bench unbound (answers validated in-process); Postfix is a private
Postfix 3.7 instance (tests/integration/postfixlib.py) configured as an
admin would for DANE, whose /etc/resolv.conf is the bench one through a
bind mount in a private mount namespace (the host's file is never touched).
Both accept plain SMTP on their own 127.x address and deliver to the sink.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import postfixlib  # noqa: E402

from benchworld import RESOLVER_ADDR  # noqa: E402

RELAY_ADDR = "127.56.0.1"
POSTFIX_ADDR = "127.55.0.1"


def wait_listen(addr, port, alive, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((addr, port), 0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class DaneRelay:
    name = "danerelay"

    def __init__(self, binary, world, port, workdir, extra=None):
        self.binary, self.world, self.port = binary, world, port
        self.addr = RELAY_ADDR
        self.dir = tempfile.mkdtemp(prefix="danerelay.", dir=workdir)
        self.conf = os.path.join(self.dir, "danerelay.conf")
        self.log = os.path.join(self.dir, "relay.log")
        self.extra = extra or {}
        self.held = False
        self.proc = None

    def _write_conf(self):
        sections = {
            "dns": {"forwarders": RESOLVER_ADDR,
                    "trust_anchor_file": self.world.root_ds},
            "delivery": {"port": self.world.smtp_port,
                         "hold": "yes" if self.held else "no"},
            "server": {"listen": "%s:%d" % (self.addr, self.port),
                       "hostname": "relay.bench",
                       "allow_root": "yes",
                       "max_connections": 10000,
                       "max_connections_per_ip": 10000},
            "queue": {"directory": os.path.join(self.dir, "queue")},
        }
        for sec, kv in self.extra.items():
            sections.setdefault(sec, {}).update(kv)
        with open(self.conf, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                f.writelines("%s = %s\n" % (k, v) for k, v in kv.items())
                f.write("\n")

    def start(self):
        self._write_conf()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", self.conf, "serve"], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)
        if not wait_listen(self.addr, self.port,
                           lambda: self.proc.poll() is None):
            raise RuntimeError("danerelay did not start: " + self.tail())

    def hold(self, on):
        """[delivery] hold through a config reload (SIGHUP)."""
        self.held = on
        self._write_conf()
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def release(self):
        self.hold(False)

    def top_pid(self):
        return self.proc.pid

    def verified(self):
        """(messages logged as sent, of which DANE-verified 3-1-1)."""
        sent = verified = 0
        with open(self.log, errors="replace") as f:
            for line in f:
                if " status=sent " in line:
                    sent += 1
                    if " tls=verified tlsa=3-1-1 " in line:
                        verified += 1
        return sent, verified

    def tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# What an admin sets for DANE (Postfix TLS_README, "Mandatory/Opportunistic
# DANE"), on top of postfixlib's private-instance settings.
POSTFIX_DANE = {
    "smtp_dns_support_level": "dnssec",
    "smtp_host_lookup": "dns",
    "smtp_tls_security_level": "dane",
    "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache",
    "smtp_tls_loglevel": "1",
}
HOLD = "check_client_access static:HOLD"


class BenchPostfix(postfixlib.Postfix):
    """postfixlib's instance, started inside a private mount namespace in
    which /etc/resolv.conf is the bench one."""

    def __init__(self, addr, port, resolv, main):
        self.resolv = resolv
        super().__init__("bench", addr, port, main)

    def postfix(self, *args, timeout=60):
        if args[:1] != ("start",):
            return super().postfix(*args, timeout=timeout)
        script = 'mount --bind "$1" /etc/resolv.conf && exec "$2" -c "$3" start'
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             script, "sh", self.resolv, postfixlib.POSTFIX, self.conf],
            capture_output=True, text=True, timeout=timeout, env=self.env)


class Postfix:
    name = "postfix"

    def __init__(self, world, port, workdir, extra=None):
        main = dict(POSTFIX_DANE, smtp_tcp_port=str(world.smtp_port))
        main.update(extra or {})
        self.pf = BenchPostfix(POSTFIX_ADDR, port, world.resolv_conf(), main)
        self.addr, self.port = POSTFIX_ADDR, port

    def start(self):
        self.pf.start()

    def _postconf(self, setting):
        subprocess.run(["postconf", "-c", self.pf.conf, "-e", setting],
                       check=True, capture_output=True)
        self.pf.postfix("reload")
        time.sleep(1.0)

    def hold(self, on):
        """New mail goes to the hold queue (an smtpd HOLD action)."""
        self._postconf("smtpd_data_restrictions = %s" % (HOLD if on else ""))

    def release(self):
        """postsuper -H ALL (hold -> deferred), then postqueue -f."""
        env = self.pf.env
        subprocess.run(["postsuper", "-c", self.pf.conf, "-H", "ALL"],
                       check=True, capture_output=True, env=env)
        subprocess.run(["postqueue", "-c", self.pf.conf, "-f"],
                       check=True, capture_output=True, env=env)

    def held_count(self):
        n = 0
        for _, _, files in os.walk(os.path.join(self.pf.queue, "hold")):
            n += len(files)
        return n

    def top_pid(self):
        return self.pf.master_pid()

    def verified(self):
        """(messages logged as sent, of which over a DANE-verified session:
        every session of the run must be "Verified", none anything else)."""
        text = self.pf.logtext()
        sent = len(re.findall(r" status=sent ", text))
        other = re.search(r"(Untrusted|Anonymous|Trusted) TLS connection", text)
        ok = "Verified TLS connection established" in text and other is None
        return sent, sent if ok else 0

    def tail(self, n=20):
        return self.pf.tail(n)

    def stop(self):
        self.pf.cleanup()
