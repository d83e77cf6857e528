#!/usr/bin/python3
"""The TLS floor (TLS 1.2) is in danerelay's code, not in the system policy.

Debian's OpenSSL policy already refuses TLS 1.0 and 1.1 (SECLEVEL=2), so a
plain test would pass for the wrong reason. Here the relay and the openssl
client both run with OPENSSL_CONF pointing at a permissive configuration
(MinProtocol = TLSv1, CipherString = DEFAULT@SECLEVEL=0); then only our
code can refuse TLS 1.1:

- tls-floor.permissive-conf-allows-tls1.1: control: under that
  configuration `openssl s_server` and `s_client -tls1_1` do handshake
  TLS 1.1 (else the other cases would prove nothing);
- tls-floor.starttls-tls1.1-refused: `openssl s_client -starttls smtp
  -tls1_1` against the relay's STARTTLS gets no TLS session;
- tls-floor.starttls-tls1.2-works: the same client with -tls1_2 does.

Usage: relay_tls_floor.py --binary PATH --world DIR   (prints PASS/FAIL)
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldlib import Relay, free_port, make_cert  # noqa: E402
from worldlib import report as _report  # noqa: E402

PERMISSIVE = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
"""

FAILED = []


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, ok, why)


def s_client(env, port, *args):
    """(exit status, output) of one openssl s_client handshake."""
    try:
        p = subprocess.run(["openssl", "s_client", "-connect",
                            f"127.0.0.1:{port}", "-servername", "relay.test",
                            "-brief"] + list(args),
                           input=b"", capture_output=True, env=env,
                           timeout=20)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return -1, "(timed out)"


def handshake_ok(rc, out, version):
    return rc == 0 and f"Protocol version: {version}" in out


def control(env, cert, key):
    """s_server and s_client agree on TLS 1.1 under the permissive conf."""
    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept",
                            f"127.0.0.1:{port}", "-cert", cert, "-key", key,
                            "-tls1_1", "-quiet"],
                           env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        return s_client(env, port, "-tls1_1")
    finally:
        srv.kill()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="relay-tlsfloor.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    relay = None
    try:
        cert, key = make_cert(tmp, "relay.test")
        conf = os.path.join(tmp, "permissive.cnf")
        with open(conf, "w") as f:
            f.write(PERMISSIVE)
        env = dict(os.environ, OPENSSL_CONF=conf)

        rc, out = control(env, cert, key)
        report("tls-floor.permissive-conf-allows-tls1.1",
               handshake_ok(rc, out, "TLSv1.1"), f"exit {rc}: {out[-300:]}")

        relay = Relay(os.path.abspath(args.binary), args.world,
                      f"[server]\ntls_cert = {cert}\ntls_key = {key}\n",
                      name="tlsfloor")
        saved = os.environ.get("OPENSSL_CONF")
        os.environ["OPENSSL_CONF"] = conf   # the relay inherits it
        try:
            relay.start()
        finally:
            if saved is None:
                del os.environ["OPENSSL_CONF"]
            else:
                os.environ["OPENSSL_CONF"] = saved
        rc, out = s_client(env, relay.port, "-starttls", "smtp", "-tls1_1")
        report("tls-floor.starttls-tls1.1-refused",
               rc != 0 and "Protocol version:" not in out,
               f"exit {rc}: {out[-300:]}")
        rc, out = s_client(env, relay.port, "-starttls", "smtp", "-tls1_2")
        report("tls-floor.starttls-tls1.2-works",
               handshake_ok(rc, out, "TLSv1.2"), f"exit {rc}: {out[-300:]}")
        relay.stop()
    except Exception as e:  # a broken setup is a failure, never a skip
        report("tls-floor.setup", False, f"{type(e).__name__}: {e}")
        if relay is not None:
            relay.stop()
    if FAILED:
        print(f"relay_tls_floor: kept for inspection: {tmp}"
              + (f" {relay.dir}" if relay else ""), flush=True)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(relay.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
