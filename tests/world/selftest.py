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
HTTPS (MTA-STS): every policy host is probed with Python's ssl against the
test root CA (the certificate verifies, or fails the way its spec says) and
a raw HTTP/1.1 client (status, Content-Type, Location, body octets,
framing; stalls really stall).  Per MTA-STS scenario, dig must see the
declared _mta-sts TXT and mta-sts A records, a strict reference client
(stsref.py) must reach the expected `expect_sts` state and mode, and the
expected verdict must follow from the policy, the MX names and the MX
certificates as verified with the test CA (RFC 8461 §4, §5).

Prints `PASS <scenario>` or `FAIL <scenario>: <why>` per scenario as soon
as its probes are done, and a summary; exits 1 if anything failed.  A probe
that cannot run (a tool missing, a timeout, an exception) FAILs its
scenario; a missing tool also gets one `FAIL tools: ...` line up front;
SIGTERM (scripts/test's timeout) prints a FAIL for every unfinished
scenario.
"""

import argparse
import concurrent.futures
import datetime
import glob
import hashlib
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import stsref
import ubprobe
from httpsd import WELL_KNOWN, pad_body

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = "selftest@world.invalid"
USER_AGENT = "danerelay-world-selftest"   # check_sts.py skips these requests
# OpenSSL verify codes, as RFC 8460 result types
VERIFY_CLASS = {2: "certificate-not-trusted", 18: "certificate-not-trusted",
                19: "certificate-not-trusted", 20: "certificate-not-trusted",
                21: "certificate-not-trusted", 10: "certificate-expired",
                62: "certificate-host-mismatch"}


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


# ---------------------------------------------------------------- HTTPS

def ca_context(world):
    """Trusts the test root CA only, checks host names (RFC 6125)."""
    return ssl.create_default_context(
        cafile=os.path.join(world["dir"], "certs", "ca-root.pem"))


def any_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def cert_expectation(spec, name):
    """How PKIX validation of a leaf made from spec, for name, fails (as an
    RFC 8460 result type), or None when it must pass."""
    if spec.get("issuer") == "self":
        return "certificate-not-trusted"
    if spec.get("expired"):
        return "certificate-expired"
    if not stsref.mx_match(spec.get("names", [name]), name):
        return "certificate-host-mismatch"
    return None


def verify_class(err):
    return VERIFY_CLASS.get(err.verify_code, "verify error %d (%s)" % (
        err.verify_code, err.verify_message))


def http_get(world, host, path, verify=False, seconds=3.0):
    """GET path from an HTTPS host, reading for at most `seconds` in all.
    Returns {"raw", "status", "headers", "body", "complete", "framing"}
    (status None when no complete head arrived).  Raises OSError/SSLError
    when connecting or the handshake fails (socket.timeout included)."""
    deadline = time.monotonic() + seconds
    ctx = ca_context(world) if verify else any_context()
    raw = socket.create_connection((host["ip"], world["https_port"]),
                                   min(2.0, seconds))
    data, eof = b"", False
    try:
        raw.settimeout(max(0.01, deadline - time.monotonic()))
        with ctx.wrap_socket(raw, server_hostname=host["name"]) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: %s\r\n"
                       "Accept: */*\r\nConnection: close\r\n\r\n" % (
                           path, host["name"], world["https_port"],
                           USER_AGENT)).encode())
            while len(data) < (1 << 20):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    eof = True
                    break
                data += chunk
    finally:
        raw.close()
    return parse_response(data, eof)


def parse_response(data, eof):
    out = {"raw": len(data), "status": None, "headers": {}, "body": b"",
           "complete": False, "framing": None}
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return out
    lines = head.decode("latin-1").split("\r\n")
    out["status"] = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        out["headers"][name.strip().lower()] = value.strip()
    h = out["headers"]
    if h.get("transfer-encoding", "").lower() == "chunked":
        out["framing"] = "chunked"
        out["body"], out["complete"] = dechunk(rest)
    elif "content-length" in h:
        out["framing"] = "length"
        n = int(h["content-length"])
        out["body"], out["complete"] = rest[:n], len(rest) >= n
    else:
        out["framing"] = "close"
        out["body"], out["complete"] = rest, eof
    return out


def dechunk(data):
    body = b""
    while True:
        line, sep, data = data.partition(b"\r\n")
        if not sep:
            return body, False
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return body, True
        if len(data) < size + 2:
            return body + data[:size], False
        body, data = body + data[:size], data[size + 2:]


def check_https(world, host):
    """The policy host behaves as its spec declares."""
    try:
        if host.get("refuse"):
            try:
                socket.create_connection(
                    (host["ip"], world["https_port"]), 2).close()
            except ConnectionRefusedError:
                return None
            return "%s: connection was not refused" % host["name"]
        if host.get("stall") == "accept":
            return check_tls_stall(world, host)
        return check_https_cert(world, host) or \
            check_https_answer(world, host)
    except (OSError, ssl.SSLError, ValueError) as e:
        return "%s: %s: %s" % (host["name"], type(e).__name__, e)


def check_tls_stall(world, host):
    with socket.create_connection((host["ip"], world["https_port"]), 2) as raw:
        raw.settimeout(1.5)
        try:
            any_context().wrap_socket(raw, server_hostname=host["name"])
        except socket.timeout:
            return None
    return "%s: TLS handshake completed, want a stall" % host["name"]


def check_https_cert(world, host):
    """Verified with the test root CA: passes, or fails as the spec says;
    and the leaf is the host's own."""
    want = cert_expectation(host["cert"], host["name"])
    with socket.create_connection((host["ip"], world["https_port"]), 3) as raw:
        try:
            with ca_context(world).wrap_socket(
                    raw, server_hostname=host["name"]) as s:
                der = s.getpeercert(binary_form=True)
                got = None
        except ssl.SSLCertVerificationError as e:
            got, der = verify_class(e), None
    if got != want:
        return "%s: PKIX validation gave %s, want %s" % (host["name"], got,
                                                          want)
    if der is None:
        with socket.create_connection((host["ip"], world["https_port"]),
                                      3) as raw:
            with any_context().wrap_socket(
                    raw, server_hostname=host["name"]) as s:
                der = s.getpeercert(binary_form=True)
    if hashlib.sha256(der).hexdigest() != host["leaf_sha256"]:
        return "%s: presented leaf is not the host's certificate" % host["name"]
    return None


def check_https_answer(world, host):
    name, stall = host["name"], host.get("stall")
    if host.get("collector"):
        # A report collector takes POSTs only; a test POST would be
        # stored among the reports the tests look at, so GET it.
        r = http_get(world, host, WELL_KNOWN)
        return None if r["status"] == 405 else \
            "%s: collector answered GET with %s, want 405" % (name,
                                                              r["status"])
    policy = pad_body(host.get("policy", ""), host.get("body_size"))
    redirect = host.get("redirect")
    status = host.get("status", 301 if redirect else 200)
    if stall == "request":
        r = http_get(world, host, WELL_KNOWN, seconds=1.5)
        return "%s: stalling host sent %d octets" % (name, r["raw"]) \
            if r["raw"] else None
    if stall == "body":
        r = http_get(world, host, WELL_KNOWN, seconds=2.5)
        if r["status"] != status or r["complete"] or len(r["body"]) > 4 or \
                not policy.startswith(r["body"]):
            return "%s: dripping host gave status %s, %d body octets, " \
                "complete=%s" % (name, r["status"], len(r["body"]),
                                 r["complete"])
        return None
    r = http_get(world, host, WELL_KNOWN)
    want = {"status": status, "framing": host.get("framing", "length"),
            "complete": True, "body": policy,
            "content-type": host.get("content_type", "text/plain"),
            "location": "https://%s:%d%s" % (name, world["https_port"],
                                             redirect) if redirect else None}
    got = dict(r, **{k: r["headers"].get(k)
                     for k in ("content-type", "location")})
    wrong = ["body differs (%d octets, want %d)" % (len(got[k]), len(v))
             if k == "body" else "%s %r, want %r" % (k, got[k], v)
             for k, v in want.items() if got[k] != v]
    if not wrong and redirect:
        r = http_get(world, host, redirect)
        if r["status"] != 200 or r["body"] != policy:
            wrong.append("redirect target gave %s" % r["status"])
    return "%s: %s" % (name, "; ".join(wrong)) if wrong else None


# ---------------------------------------------------------------- MTA-STS

def dig(world, rtype, name):
    out = subprocess.run(["dig", "@127.53.0.1", "-p", str(world["dns_port"]),
                          "+short", "+norec", rtype, name],
                         capture_output=True, text=True, timeout=20)
    return sorted(ln for ln in out.stdout.splitlines() if ln.strip())


def declared(scenario, owner, rtype):
    """RDATA of the scenario's zone records at owner (relative) / rtype."""
    zone = scenario["zones"][scenario["domain"]]
    out = []
    for line in zone["records"]:
        o, t, rdata = line.split(None, 2)
        if o == owner and t.upper() == rtype:
            out.append(rdata)
    return out


def mx_hosts(scenario):
    """MX host names of the domain, in preference order."""
    mxs = []
    for rdata in declared(scenario, "@", "MX"):
        pref, target = rdata.split()
        target = target.rstrip(".") if target.endswith(".") else \
            target + "." + scenario["domain"]
        mxs.append((int(pref), target))
    return [t for _, t in sorted(mxs)]


def reference_state(world, scenario, https):
    """(state, mode, detail) that a strict RFC 8461 client reaches."""
    txts = [stsref.txt_strings(r) for r in
            dig(world, "TXT", "_mta-sts." + scenario["domain"])]
    if stsref.parse_txt(txts) is None:
        return "none", None, "no usable TXT in %s" % txts
    host = https.get("mta-sts." + scenario["domain"])
    if host is None:
        return "fetch-error", None, "no policy host"
    try:
        r = http_get(world, host, WELL_KNOWN, verify=True, seconds=3.0)
    except (OSError, ssl.SSLError) as e:
        return "fetch-error", None, "%s: %s" % (type(e).__name__, e)
    problem = stsref.fetch_problem(r["status"] or 0, r["headers"], r["body"],
                                   r["complete"])
    if problem:
        return "fetch-error", None, problem
    try:
        policy = stsref.parse_policy(r["body"])
    except ValueError as e:
        return "invalid", None, str(e)
    return "policy", policy["mode"], policy


def mx_tls_class(world, host):
    """PKIX validation of an MX's STARTTLS certificate against the test
    root and the MX name, as an RFC 8460 result type, or None."""
    if host["starttls"] is not True:
        return "starttls-not-supported"
    with smtplib.SMTP(host["ip"], world["smtp_port"], timeout=5) as smtp:
        smtp.ehlo("selftest.invalid")
        smtp._host = host["name"]           # the name to verify and send
        try:
            smtp.starttls(context=ca_context(world))
        except ssl.SSLCertVerificationError as e:
            return verify_class(e)
        smtp.docmd("QUIT")
    return None


def predict(world, scenario, state, mode, policy, smtp):
    """The expectation RFC 8461 §4-§5 implies for a domain without DANE:
    (verdict, status, result_type, deliver_to, policy, sts warnings)."""
    mxs = mx_hosts(scenario)
    if state != "policy" or mode == "none":
        warn = {"fetch-error": ["sts-policy-fetch-error"],
                "invalid": ["sts-policy-invalid"]}.get(state, [])
        return "opportunistic", "2.0.0", None, mxs[0], "none", warn
    fails = []
    for mx in mxs:
        cls = mx_tls_class(world, smtp[mx])
        if cls != cert_expectation(smtp[mx].get("cert", {}), mx) and \
                cls != "starttls-not-supported":
            return "MX %s validates as %s, its spec says %s" % (
                mx, cls, cert_expectation(smtp[mx]["cert"], mx))
        if not stsref.mx_match(policy["mx"], mx):
            cls = "validation-failure"
        fails.append(cls)
    if mode == "testing":
        return "opportunistic", "2.0.0", None, mxs[0], "mta-sts", \
            ["sts-testing-failure"] if fails[0] else []
    for mx, cls in zip(mxs, fails):
        if cls is None:
            return "verified", "2.0.0", None, mx, "mta-sts", []
    return "defer", "4.7.5", fails[0], None, "mta-sts", []


def check_sts_scenario(world, scenario):
    """DNS records as declared, the reference client's state, and the
    expectation implied by policy, MX names and MX certificates."""
    d = scenario["domain"]
    https = {h["name"]: h for h in world["https_hosts"]}
    smtp = {h["name"]: h for h in world["smtp_hosts"]}
    problems = []
    want_txt = sorted(declared(scenario, "_mta-sts", "TXT"))
    got_txt = dig(world, "TXT", "_mta-sts." + d)
    if [stsref.txt_strings(t) for t in got_txt] != \
            sorted(stsref.txt_strings(t) for t in want_txt):
        problems.append("TXT _mta-sts.%s is %s, want %s" % (d, got_txt,
                                                            want_txt))
    host = https.get("mta-sts." + d)
    if host and dig(world, "A", host["name"]) != [host["ip"]]:
        problems.append("A %s is %s, want %s" % (
            host["name"], dig(world, "A", host["name"]), host["ip"]))
    state, mode, detail = reference_state(world, scenario, https)
    want = scenario["expect_sts"]
    if (state, mode) != (want["state"], want["mode"]):
        problems.append("reference client gets state %s mode %s (%s), "
                        "want %s %s" % (state, mode, detail, want["state"],
                                        want["mode"]))
        return problems
    e = scenario["expect"]
    if e.get("policy") == "dane":
        return problems                     # DANE applies; checked by DNS
    got = predict(world, scenario, state, mode, detail, smtp)
    if isinstance(got, str):
        return problems + [got]
    sts_warn = [w for w in e.get("warnings_include", [])
                if w.startswith("sts-")]
    exp = (e["verdict"], e["status"], e["result_type"], e["deliver_to"],
           e.get("policy"), sts_warn)
    if got != exp:
        problems.append("RFC 8461 implies %s, expect says %s" % (got, exp))
    return problems


def check_sts(world, scenario):
    try:
        return "; ".join(check_sts_scenario(world, scenario)) or None
    except (OSError, smtplib.SMTPException, ssl.SSLError,
            subprocess.SubprocessError) as e:
        return "MTA-STS: %s: %s" % (type(e).__name__, e)


# ---------------------------------------------------------------- driver

def jobs_for(world, scenario, hosts):
    jobs = [(check_dns, key, want) for key, want in scenario["dns"].items()]
    jobs += [(check_host, h) for h in hosts if h["scenario"] == scenario["name"]]
    jobs += [(check_https, h) for h in world["https_hosts"]
             if h["scenario"] == scenario["name"]]
    if "expect_sts" in scenario:
        jobs.append((check_sts, scenario))
    return jobs


def run_job(fn, world, args):
    """One probe; whatever it raises is its problem, never lost: a missing
    tool (FileNotFoundError), a timeout or a bug in the probe all FAIL the
    scenario it belongs to."""
    try:
        return fn(world, *args)
    except subprocess.TimeoutExpired as e:
        return "%s: %s timed out after %s s" % (fn.__name__, e.cmd[0],
                                                e.timeout)
    except Exception as e:              # noqa: BLE001, reported, not hidden
        return "%s: %s: %s" % (fn.__name__, type(e).__name__, e)


REPORTED = set()   # scenarios whose line is printed


def report(name, problems):
    print("FAIL %s: %s" % (name, "; ".join(problems)) if problems
          else "PASS %s" % name, flush=True)
    REPORTED.add(name)


def run_jobs(world, scenarios, hosts):
    """Run every probe in a pool and print each scenario's line as soon as
    its last probe is done (a step stopped half-way still shows what it
    finished).  Returns {scenario name: [problems]}."""
    results = {s["name"]: [] for s in scenarios}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        left, owner = {}, {}
        for s in scenarios:
            jobs = jobs_for(world, s, hosts)
            left[s["name"]] = len(jobs)
            if not jobs:
                # Nothing checked is not a pass.
                results[s["name"]].append("no probe for this scenario")
                report(s["name"], results[s["name"]])
            for fn, *args in jobs:
                owner[pool.submit(run_job, fn, world, args)] = s["name"]
        for f in concurrent.futures.as_completed(owner):
            name = owner.pop(f)
            problem = f.result()
            if problem:
                results[name].append(problem)
            left[name] -= 1
            if left[name] == 0:
                report(name, results[name])
    return results


# Tools the probes run; without one, every probe that needs it FAILs, and
# one line says why up front.
TOOLS = {"delv": "dnsutils", "dig": "dnsutils",
         "openssl": "openssl"}


def missing_tools():
    return ["%s (Debian package %s)" % (t, pkg) for t, pkg in TOOLS.items()
            if shutil.which(t) is None]


def on_term(signum, frame):
    """Stopped (by scripts/test's timeout): what never finished FAILs."""
    try:
        for name in STATE["names"]:
            if name not in REPORTED:
                print("FAIL %s: unfinished when stopped by signal %d" % (
                    name, signum))
        sys.stdout.flush()
    finally:
        os._exit(1)     # the pool's threads would hold a normal exit


STATE = {"names": []}


def main(argv=None):
    ap = argparse.ArgumentParser(description="check the test world itself")
    ap.add_argument("--world", required=True)
    ap.add_argument("--only")
    args = ap.parse_args(argv)
    world_dir = os.path.abspath(args.world)
    world = load(os.path.join(world_dir, "world.json"))
    tools_failed = 0
    for tool in missing_tools():
        print("FAIL tools: %s not found; every probe that needs it fails"
              % tool, flush=True)
        tools_failed = 1
    world["validator"] = ubprobe.validator(world)
    if not world["validator"]:
        # danerelay links libunbound: a machine without it cannot run
        # the relay either, so this is a failure, not a note.
        print("FAIL libunbound: libunbound.so.8 not found, DNS checked "
              "with delv only", flush=True)
        tools_failed = 1
    hosts = load(os.path.join(world_dir, "hosts.json"))["hosts"]
    world["smtp_hosts"] = hosts
    https_json = os.path.join(world_dir, "https.json")
    world["https_hosts"] = load(https_json)["hosts"] \
        if os.path.exists(https_json) else []
    scenarios = [s for s in load(os.path.join(HERE, "scenarios.json"))
                 if not args.only or s["name"] == args.only]
    if not scenarios:
        print("FAIL selftest: no scenario named %s" % args.only)
        return 1
    STATE["names"] = [s["name"] for s in scenarios]
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    results = run_jobs(world, scenarios, hosts)
    failed = sum(1 for p in results.values() if p)
    print("selftest: %d scenarios, %d passed, %d failed" % (
        len(results), len(results) - failed, failed))
    return 1 if failed or tools_failed else 0


if __name__ == "__main__":
    sys.exit(main())
