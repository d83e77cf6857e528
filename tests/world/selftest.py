#!/usr/bin/python3
"""Check a running world with tools independent of danerelay.

  /usr/bin/python3 tests/world/selftest.py --world DIR [--only NAME]

DNS: every "dns" entry of every scenario is resolved with delv (BIND's
validator) against NSD, with the world's root trust anchor, and the security
state it reports must be the one the scenario intends.
The same entries are resolved with libunbound too (see ubprobe.py), set up
the way danerelay must set it up for this world.
SMTP: every receiver is probed with Python's smtplib/ssl (banner, EHLO,
STARTTLS, the leaf it presents, a delivery that must be stored) and with
openssl s_client (how many certificates it sends); hostile receivers must
misbehave as designed.

Prints `PASS <scenario>` or `FAIL <scenario>: <why>` per scenario and a
summary; exits 1 if anything failed.
"""

import argparse
import concurrent.futures
import datetime
import glob
import hashlib
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import ubprobe

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = "selftest@world.invalid"


def load(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- DNS

def delv_state(world, name, rtype):
    """Security state of name/rtype as delv reports it."""
    cmd = ["delv", "@127.53.0.1", "-p", str(world["dns_port"]),
           "-a", os.path.join(world["dir"], "root.anchors"), "+root=.",
           name, rtype]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return classify(out.stdout + out.stderr)


def classify(text):
    """Map delv's output onto secure / secure-nodata / secure-nxdomain /
    insecure / insecure-denial / bogus / servfail.

    Once a CNAME chain enters unsigned data everything after it is insecure
    (RFC 7672 §2.1.3), which is why "unsigned answer" wins over "fully
    validated".
    """
    if "resolution failed" in text and "negative response" not in text:
        bogus_marks = ("RRSIG", "trust chain", "no valid signature",
                       "insecurity proof failed", "bogus")
        return "bogus" if any(m in text for m in bogus_marks) else "servfail"
    negative = "negative response" in text
    if "unsigned answer" in text:
        return "insecure-denial" if negative else "insecure"
    if "fully validated" in text:
        if negative:
            return "secure-nxdomain" if "NXDOMAIN" in text else "secure-nodata"
        return "secure"
    return "unknown"


def state_matches(want, got):
    if want == "secure-denial":
        return got in ("secure-nodata", "secure-nxdomain")
    return want == got


def check_dns(world, key, want):
    """delv, and libunbound when present, must both see the intended state."""
    rtype, name = key.replace("{port}", str(world["smtp_port"])).split()
    seen = [("delv", delv_state(world, name, rtype))]
    if world.get("validator"):
        seen.append(("libunbound", world["validator"].state(name, rtype)))
    wrong = ["%s says %s" % (tool, got) for tool, got in seen
             if not state_matches(want, got)]
    if wrong:
        return "%s %s: %s, want %s" % (rtype, name, ", ".join(wrong), want)
    return None


# ---------------------------------------------------------------- SMTP

def check_refuse(world, host):
    try:
        socket.create_connection((host["ip"], world["smtp_port"]), 2).close()
    except ConnectionRefusedError:
        return None
    return "connection was not refused"


def read_for(world, host, seconds):
    """Everything the peer sends within `seconds` after connecting."""
    data = b""
    with socket.create_connection((host["ip"], world["smtp_port"]), 2) as s:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data


def check_stall(world, host):
    data = read_for(world, host, 1.0)
    return "stalling peer sent %r" % data[:60] if data else None


def check_endless_banner(world, host):
    lines = read_for(world, host, 0.5).split(b"\r\n")[:-1]
    if len(lines) < 100 or not all(ln.startswith(b"220-") for ln in lines):
        return "endless banner gave %d lines, first %r" % (
            len(lines), lines[:1])
    return None


def check_no_crlf(world, host):
    data = read_for(world, host, 0.5)
    if not data.startswith(b"220 ") or b"\n" in data or len(data) < 1000:
        return "no-CRLF banner gave %d bytes: %r" % (len(data), data[:60])
    return None


def check_smtp(world, host):
    """Banner, EHLO, STARTTLS behaviour, certificate, and one delivery."""
    with smtplib.SMTP(host["ip"], world["smtp_port"], timeout=5) as smtp:
        smtp.ehlo("selftest.invalid")
        offered = smtp.has_extn("starttls")
        if offered != (host["starttls"] is not False):
            return "STARTTLS offered=%s, want %s" % (offered, host["starttls"])
        if host["starttls"] == "454":
            code = smtp.docmd("STARTTLS")[0]
            return None if code == 454 else "STARTTLS got %d, want 454" % code
        if host["starttls"]:
            problem = starttls(smtp, host)
            if problem:
                return problem
        return deliver(world, smtp, host)


def starttls(smtp, host):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE      # DANE is what danerelay checks
    smtp.starttls(context=ctx)
    der = smtp.sock.getpeercert(binary_form=True)
    if hashlib.sha256(der).hexdigest() != host["leaf_sha256"]:
        return "presented leaf is not the host's certificate"
    if smtp.sock.version() not in ("TLSv1.2", "TLSv1.3"):
        return "TLS version %s" % smtp.sock.version()
    smtp.ehlo("selftest.invalid")
    if smtp.has_extn("starttls"):
        return "STARTTLS still offered after TLS"
    return cert_problem(x509.load_der_x509_certificate(der), host)


def cert_problem(cert, host):
    """The leaf must be what the scenario asked for."""
    spec = host["cert"]
    names = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    if names != spec.get("names", [host["name"]]):
        return "leaf names %s" % names
    # cryptography 38 (Debian 12) has only the naive-UTC not_valid_after
    expired = cert.not_valid_after < datetime.datetime.utcnow()
    if expired != bool(spec.get("expired")):
        return "leaf expired=%s" % expired
    want_key = rsa.RSAPublicKey if spec.get("key") == "rsa" else \
        ec.EllipticCurvePublicKey
    if not isinstance(cert.public_key(), want_key):
        return "leaf key is %s" % type(cert.public_key()).__name__
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    self_signed = cert.issuer == cert.subject
    if self_signed != (spec.get("issuer") == "self"):
        return "leaf issuer %s" % issuer
    return None


def deliver(world, smtp, host):
    """Send one message; it must be stored with its envelope and TLS facts.
    The stored copy is removed again so relay tests start from a clean
    mailbox."""
    rcpt = "postmaster@" + host["name"]
    before = set(glob.glob(mail_glob(world, host)))
    smtp.sendmail(SENDER, [rcpt], b"Subject: selftest\r\n\r\n.dot\r\nbody\r\n")
    new = sorted(set(glob.glob(mail_glob(world, host))) - before)
    if len(new) != 1:
        return "delivery stored %d messages" % len(new)
    meta = load(new[0])
    eml = new[0][:-5] + ".eml"
    with open(eml, "rb") as f:
        body = f.read()
    os.unlink(new[0])
    os.unlink(eml)
    want_tls = host["starttls"] is True
    if meta["mail_from"] != SENDER or meta["rcpt_to"] != [rcpt] or \
            bool(meta["tls"]) != want_tls or b"\r\n.dot\r\n" not in body:
        return "stored message wrong: %s" % meta
    return None


def mail_glob(world, host):
    return os.path.join(world["dir"], "mail", host["name"], "*.json")


def chain_length(world, host):
    """Certificates the server sends, counted by openssl s_client."""
    cmd = ["openssl", "s_client", "-connect",
           "%s:%d" % (host["ip"], world["smtp_port"]), "-starttls", "smtp",
           "-showcerts"]
    out = subprocess.run(cmd, input="", capture_output=True, text=True,
                         timeout=20).stdout
    return out.count("-----BEGIN CERTIFICATE-----")


def check_chain(world, host):
    if host["mode"] != "smtp" or host["starttls"] is not True:
        return None
    n = chain_length(world, host)
    want = host["chain_len"]
    return None if n == want else "server sent %d certificates, want %d" % (
        n, want)


HOST_CHECKS = {"refuse": check_refuse, "stall": check_stall,
               "endless-banner": check_endless_banner,
               "no-crlf": check_no_crlf, "smtp": check_smtp}


def check_host(world, host):
    try:
        return HOST_CHECKS[host["mode"]](world, host) or \
            check_chain(world, host)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
        return "%s: %s: %s" % (host["name"], type(e).__name__, e)


# ---------------------------------------------------------------- driver

def jobs_for(world, scenario, hosts):
    jobs = [(check_dns, key, want) for key, want in scenario["dns"].items()]
    jobs += [(check_host, h) for h in hosts if h["scenario"] == scenario["name"]]
    return jobs


def run_jobs(world, scenarios, hosts):
    """{scenario name: [problems]} with every probe run in a pool."""
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = {s["name"]: [pool.submit(fn, world, *args)
                               for fn, *args in jobs_for(world, s, hosts)]
                   for s in scenarios}
        return {name: [p for p in (f.result() for f in fs) if p]
                for name, fs in futures.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description="check the test world itself")
    ap.add_argument("--world", required=True)
    ap.add_argument("--only")
    args = ap.parse_args(argv)
    world_dir = os.path.abspath(args.world)
    world = load(os.path.join(world_dir, "world.json"))
    world["validator"] = ubprobe.validator(world)
    if not world["validator"]:
        print("note: libunbound not found, DNS checked with delv only")
    hosts = load(os.path.join(world_dir, "hosts.json"))["hosts"]
    scenarios = [s for s in load(os.path.join(HERE, "scenarios.json"))
                 if not args.only or s["name"] == args.only]
    results = run_jobs(world, scenarios, hosts)
    for s in scenarios:
        problems = results[s["name"]]
        print("FAIL %s: %s" % (s["name"], "; ".join(problems)) if problems
              else "PASS %s" % s["name"])
    failed = sum(1 for p in results.values() if p)
    print("selftest: %d scenarios, %d passed, %d failed" % (
        len(results), len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
