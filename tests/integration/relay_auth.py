#!/usr/bin/python3
"""AUTH under a password-guessing attack must not stall the relay.

Four attacker connections from 127.0.0.2 loop wrong `AUTH PLAIN` over
STARTTLS for ATTACK seconds, or longer until the relay has locked them out
(ATTACK_MAX at most; reconnecting when the relay hangs up), while
a fifth session from 127.0.0.1 sends a NOOP every 20 ms and times each
reply. The password check (scrypt, some 50-100 ms of CPU) runs on worker
threads, so:

- auth.noop-latency: the NOOP round trips stay short (p99 < 100 ms, max <
  300 ms, loose enough for a loaded 2-core machine; with the check on the
  event loop they were 0.6 s on average, each check stalling them all);
- auth.attack-was-made: the attackers really sent AUTH and got replies
  (a precondition: without it the latency proves nothing);
- auth.attacker-locked-out: the relay logs the lockout of 127.0.0.2 after
  auth_max_failures failures, once, and the number of checks made for
  that address is bounded (failures logged <= auth_max_failures +
  attackers: only checks already running when the count was reached);
- auth.other-address-logs-in: during the attack a client from 127.0.0.3
  logs in with the right password (235);
- auth.locked-address-not-checked: after the attack the right password
  from 127.0.0.2 gets 454 4.7.0 and the log says it was not checked;
- auth.failure-delayed: a wrong password is answered about 1 s later than
  a right one (the first failure of an address; the checks cost the same).

Every network wait has a timeout; the run takes about 15 s.

Usage: relay_auth.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import base64
import collections
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldlib import Relay, make_cert  # noqa: E402
from worldlib import report as _report  # noqa: E402

ATTACKER = "127.0.0.2"          # outside relay_networks, guessing
FRIEND = "127.0.0.3"            # another client with the right password
LATE = "127.0.0.4"              # a fresh address, for the delay case
USER, PASSWORD = "alice", "correct horse battery staple"
ATTACKERS = 4
ATTACK = 6.0                    # seconds, at least
ATTACK_MAX = 30.0               # seconds: until the lockout, at most
MAX_FAILURES = 5
P99_MAX, MAX_MAX = 0.100, 0.300  # seconds

FAILED = []


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, ok, why)


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class Client:
    """A small SMTP client with a deadline on every read."""

    def __init__(self, port, source=None, timeout=10):
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""

    def settimeout(self, t):
        self.sock.settimeout(t)

    def reply(self):
        """(code, last line) of one reply; (0, why) on EOF or timeout."""
        while True:
            while b"\r\n" not in self.buf:
                try:
                    data = self.sock.recv(4096)
                except (OSError, ssl.SSLError) as e:
                    return 0, str(e) or type(e).__name__
                if not data:
                    return 0, "connection closed"
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode(errors="replace")
            if len(text) < 4 or not text[:3].isdigit():
                return 0, "garbage: " + text
            if text[3] == " ":
                return int(text[:3]), text

    def cmd(self, line):
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except OSError as e:
            return 0, str(e)
        return self.reply()

    def starttls(self):
        """Greeting, EHLO, STARTTLS, handshake, EHLO: ready for AUTH."""
        if self.reply()[0] != 220 or self.cmd("EHLO client.test")[0] != 250:
            return False
        if self.cmd("STARTTLS")[0] != 220:
            return False
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="relay.test")
        return self.cmd("EHLO client.test")[0] == 250

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def credentials(binary, directory):
    p = subprocess.run([binary, "passwd", USER], capture_output=True,
                       input=(PASSWORD + "\n").encode(), timeout=30)
    line = p.stdout.decode().strip()
    if p.returncode != 0 or not line.startswith(USER + ":$scrypt$"):
        raise RuntimeError("danerelay passwd failed: " + p.stderr.decode())
    path = os.path.join(directory, "auth")
    with open(path, "w") as f:
        f.write(line + "\n")
    os.chmod(path, 0o600)
    return path


class Attack:
    """What the attacker threads share: counts, a stop flag, and their
    sockets (shut down at the stop, so no thread waits out a delayed
    reply: the session goes with its check in flight)."""

    def __init__(self):
        self.stats = collections.Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.socks = set()

    def count(self, key):
        with self.lock:
            self.stats[key] += 1

    def hold(self, c, on):
        with self.lock:
            if on:
                self.socks.add(c.sock)
            else:
                self.socks.discard(c.sock)
        if on and self.stop.is_set():
            c.sock.close()

    def end(self):
        self.stop.set()
        with self.lock:
            for sock in self.socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def attacker(port, attack):
    """Loop wrong AUTH PLAIN until stopped, reconnecting when dropped."""
    wrong = "AUTH PLAIN " + plain(USER, "wrong")
    while not attack.stop.is_set():
        c = None
        try:
            c = Client(port, source=ATTACKER, timeout=15)
            if not c.starttls():
                attack.count("setup-failed")
                time.sleep(0.05)
                continue
            attack.hold(c, True)
            while not attack.stop.is_set():
                attack.count("sent")
                code, _ = c.cmd(wrong)
                attack.count(code if not attack.stop.is_set() else "cut")
                if code in (0, 421):
                    break
        except OSError:
            attack.count("connect-failed")
            time.sleep(0.05)
        finally:
            if c is not None:
                attack.hold(c, False)
                c.close()


def probe(port, stop, out):
    """NOOP every 20 ms until stop is set; out gets the round trips (the
    greeting's and EHLO's too), None when a reply is wrong."""
    t0 = time.perf_counter()
    c = Client(port, timeout=15)
    try:
        for line in (None, "EHLO probe.test"):
            code, _ = c.cmd(line) if line else c.reply()
            out.append(time.perf_counter() - t0 if code in (220, 250)
                       else None)
            t0 = time.perf_counter()
        while not stop.is_set() and None not in out:
            t0 = time.perf_counter()
            code, _ = c.cmd("NOOP")
            out.append(time.perf_counter() - t0 if code == 250 else None)
            time.sleep(0.02)
        c.cmd("QUIT")
    finally:
        c.close()


def friend_login(port, result):
    """The right password from another address: (code, seconds)."""
    c = Client(port, source=FRIEND, timeout=15)
    try:
        if not c.starttls():
            result.append((0, 0.0))
            return
        t0 = time.monotonic()
        code, _ = c.cmd("AUTH PLAIN " + plain(USER, PASSWORD))
        result.append((code, time.monotonic() - t0))
        c.cmd("QUIT")
    finally:
        c.close()


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def log_lines(relay, *words):
    try:
        text = open(relay.log, errors="replace").read()
    except OSError:
        return []
    return [ln for ln in text.splitlines() if all(w in ln for w in words)]


def test_attack(relay):
    """The attack lasts ATTACK seconds, longer if the lockout has not come
    yet (a slow machine, a sanitizer build), ATTACK_MAX at most."""
    attack = Attack()
    start = time.monotonic()
    threads = [threading.Thread(target=attacker, args=(relay.port, attack))
               for _ in range(ATTACKERS)]
    for t in threads:
        t.start()
    # The probe starts once the attack is under way.
    time.sleep(0.3)
    lat, friend = [], []
    pt = threading.Thread(target=probe, args=(relay.port, attack.stop, lat))
    pt.start()
    time.sleep(1.2)
    ft = threading.Thread(target=friend_login, args=(relay.port, friend))
    ft.start()
    while time.monotonic() - start < ATTACK_MAX:
        if time.monotonic() - start >= ATTACK and \
                log_lines(relay, "AUTH lockout"):
            break
        time.sleep(0.2)
    attack.end()
    for t in threads + [pt, ft]:
        t.join(20)
    hung = [t for t in threads + [pt, ft] if t.is_alive()]
    stats = attack.stats
    print(f"# attack: {time.monotonic() - start:.1f} s", flush=True)

    report("auth.attack-was-made",
           not hung and stats["sent"] >= ATTACKERS and stats[535] >= 1,
           f"attackers: {dict(stats)}; {len(hung)} threads hung")

    good = [x for x in lat if x is not None]
    if not good or None in lat:
        report("auth.noop-latency", False,
               f"the probe failed after {len(good)} replies")
    else:
        p50, p99, mx = pct(good, 50), pct(good, 99), max(good)
        print(f"# NOOP under attack: n={len(good)} "
              f"p50={p50 * 1000:.1f} ms p99={p99 * 1000:.1f} ms "
              f"max={mx * 1000:.1f} ms; attackers: {dict(stats)}",
              flush=True)
        # Fewer than 50 round trips in ATTACK seconds: the loop stalled.
        report("auth.noop-latency",
               len(good) >= 50 and p99 < P99_MAX and mx < MAX_MAX,
               f"{len(good)} round trips (want >= 50), p50 "
               f"{p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (want < "
               f"{P99_MAX * 1000:.0f}), max {mx * 1000:.1f} ms (want < "
               f"{MAX_MAX * 1000:.0f})")

    checked = log_lines(relay, "AUTH failed", f"client=[{ATTACKER}]")
    lockout = log_lines(relay, "AUTH lockout", f"client={ATTACKER} ")
    print(f"# checks failed for {ATTACKER}: {len(checked)}; "
          f"lockout lines: {len(lockout)}", flush=True)
    report("auth.attacker-locked-out",
           len(lockout) == 1 and
           MAX_FAILURES <= len(checked) <= MAX_FAILURES + ATTACKERS,
           f"lockout lines {lockout}; {len(checked)} failed checks (want "
           f"{MAX_FAILURES}..{MAX_FAILURES + ATTACKERS}); {relay.tail(5)}")

    code, secs = friend[0] if friend else (0, 0.0)
    report("auth.other-address-logs-in", code == 235,
           f"reply {code} after {secs:.2f} s")


def test_locked(relay):
    c = Client(relay.port, source=ATTACKER, timeout=15)
    try:
        ok = c.starttls()
        code, text = c.cmd("AUTH PLAIN " + plain(USER, PASSWORD)) if ok \
            else (0, "no TLS session")
    finally:
        c.close()
    refused = log_lines(relay, "AUTH locked out", f"user={USER}",
                        f"client=[{ATTACKER}]")
    report("auth.locked-address-not-checked",
           code == 454 and "4.7.0" in text and refused,
           f"{code} {text!r}; log: {refused}")


def timed_auth(relay, password):
    """(code, seconds) of one AUTH PLAIN from LATE in a new session."""
    c = Client(relay.port, source=LATE, timeout=15)
    try:
        if not c.starttls():
            return 0, 0.0
        t0 = time.monotonic()
        code, _ = c.cmd("AUTH PLAIN " + plain(USER, password))
        return code, time.monotonic() - t0
    finally:
        c.close()


def test_delay(relay):
    """A wrong password is answered some 1 s later than a right one (the
    check costs the same), from an address with no failure yet."""
    ok, t_ok = timed_auth(relay, PASSWORD)
    bad, t_bad = timed_auth(relay, "wrong")
    report("auth.failure-delayed",
           ok == 235 and bad == 535 and 0.6 <= t_bad - t_ok < 4,
           f"right password: {ok} after {t_ok:.2f} s, wrong: {bad} after "
           f"{t_bad:.2f} s (want 535 about 1 s later)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    tmp = tempfile.mkdtemp(prefix="relay-auth.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    relay = None
    try:
        cert, key = make_cert(tmp, "relay.test")
        auth = credentials(binary, tmp)
        extra = (f"[server]\nrelay_networks = 127.0.0.1/32\n"
                 f"tls_cert = {cert}\ntls_key = {key}\nauth_file = {auth}\n"
                 f"auth_max_failures = {MAX_FAILURES}\n"
                 f"auth_lockout = 10m\n")
        relay = Relay(binary, args.world, extra, name="auth")
        relay.start()
        test_attack(relay)
        test_locked(relay)
        test_delay(relay)
        rc = relay.stop()
        report("auth.relay-exits-cleanly", rc == 0, f"exit {rc}; "
               f"{relay.tail(5)}")
    except Exception as e:  # a broken setup is a failure, never a skip
        report("auth.setup", False, f"{type(e).__name__}: {e}")
        if relay is not None:
            relay.stop()
    if FAILED:
        where = tmp + (" " + relay.dir if relay else "")
        print(f"relay_auth: kept for inspection: {where}", flush=True)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(relay.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
