#!/usr/bin/env python3
"""The console's core (issue 11), against a real `danerelay serve`:

  pages.*       every page answers 200 HTML; /static/ assets (Chart.js is
                the [admin] chart_js file); HEAD; 404 and 405 (with Allow)
  headers.*     CSP default-src 'self' and no inline script in any page,
                nosniff, X-Frame-Options DENY, Referrer-Policy same-origin,
                Cache-Control no-store
  loopback.*    no login on loopback; a session cookie (HttpOnly,
                SameSite=Strict, not Secure) for CSRF; a Host that is not
                a loopback name is refused (DNS rebinding)
  metrics.*     /metrics in the text format 0.0.4
  csrf.*        POST without a session, without the token, with a wrong
                token, with a foreign Origin: 403; with all right: done;
                an oversized body: 413
  login.*       [admin] auth_file (forces a login on loopback too): pages
                redirect to /login, /metrics refused; right password opens
                a new session (not the old id), wrong one refused after a
                delay, the form without its token refused; logout
  throttle.*    [server] auth_max_failures failed logins lock the client
                out (429), even with the right password
  tls.*         [admin] tls_cert/tls_key: HTTPS with HSTS and Secure
                cookies, plaintext HTTP to it fails, metrics_open = yes
  config.*      check-config: a non-loopback listen without TLS and login
                is an error with FILE:LINE; a missing chart_js names the
                Debian package
  browser.*     headless Chromium shows the overview's numbers of a relay
                that delivered, blocked and log-only-recorded mail
                (consolelib); --screenshots DIR keeps overview.png

Usage: relay_console.py --binary build/danerelay --world DIR
                        [--screenshots DIR]
"""
import argparse
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "world"))
from worldlib import Relay, free_port, make_cert  # noqa: E402
from worldlib import report as _report  # noqa: E402
import consolelib  # noqa: E402

FAILED = []
PAGES = ["/", "/report", "/impact", "/trace", "/queue", "/check", "/tlsrpt"]
CHART_JS = "/usr/share/javascript/chart.js/chart.min.js"
USER, PASSWORD = "admin", "correct horse battery staple"


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, bool(ok), why)


class Resp:
    def __init__(self, r, body):
        self.status = r.status
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.cookies = r.msg.get_all("Set-Cookie") or []
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")


def request(port, method, path, headers=None, body=None, tls=None,
            timeout=15):
    """One HTTP(S) request to 127.0.0.1:port; a Resp."""
    if tls is not None:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                        context=tls)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Host": f"127.0.0.1:{port}"}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Resp(r, r.read())
    finally:
        c.close()


def cookie_of(resp):
    """The session cookie's value a response sets, or None."""
    for c in resp.cookies:
        m = re.match(r"danerelay_session=([0-9a-f]*)", c)
        if m:
            return m.group(1)
    return None


def csrf_of(resp):
    m = re.search(r'name="csrf" (?:value|content)="([0-9a-f]+)"',
                  resp.text())
    return m.group(1) if m else None


def form(fields):
    return urllib.parse.urlencode(fields)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def start(args, extra, name):
    port = free_port()
    relay = Relay(args.binary, args.world,
                  f"[admin]\nlisten = 127.0.0.1:{port}\n" + extra, name=name)
    relay.admin_port = port
    relay.start()
    # The console listens before serve's SMTP port does.
    return relay


def inline_scripts(html):
    """<script> elements that are neither src= nor JSON data."""
    return [s for s in re.findall(r"<script\b[^>]*>", html)
            if "src=" not in s and 'type="application/json"' not in s]


# --- a loopback console without login ---------------------------------

def test_pages(args, relay):
    port = relay.admin_port
    for path in PAGES:
        r = request(port, "GET", path)
        report(f"pages.get{path.replace('/', '.') if path != '/' else '.overview'}",
               r.status == 200 and
               r.headers.get("content-type", "").startswith("text/html") and
               "</html>" in r.text(),
               f"{r.status} {r.headers.get('content-type')}")
        report(f"headers.no-inline-script{path.replace('/', '.') if path != '/' else '.overview'}",
               r.status == 200 and not inline_scripts(r.text()),
               str(inline_scripts(r.text()))[:200])
    r = request(port, "GET", "/static/console.css")
    report("pages.static-css", r.status == 200 and
           r.headers.get("content-type", "").startswith("text/css") and
           b"nav" in r.body, f"{r.status}")
    r = request(port, "GET", "/static/console.js")
    report("pages.static-js", r.status == 200 and
           "javascript" in r.headers.get("content-type", "") and
           b"new Chart(" in r.body, f"{r.status}")
    r = request(port, "GET", "/static/chart.js")
    report("pages.static-chart-js-is-the-chart_js-file",
           r.status == 200 and r.body == open(CHART_JS, "rb").read(),
           f"{r.status} {len(r.body)} octets")
    r = request(port, "HEAD", "/")
    report("pages.head", r.status == 200 and r.body == b"", f"{r.status}")
    r = request(port, "GET", "/no/such/page")
    report("pages.404", r.status == 404, f"{r.status}")
    r = request(port, "PUT", "/", body=b"x")
    report("pages.405-put", r.status == 405 and
           r.headers.get("allow") == "GET, HEAD",
           f"{r.status} allow={r.headers.get('allow')}")
    r = request(port, "DELETE", "/report")
    report("pages.405-delete", r.status == 405, f"{r.status}")


def test_headers(args, relay):
    r = request(relay.admin_port, "GET", "/")
    h = r.headers
    csp = h.get("content-security-policy", "")
    report("headers.csp-default-self", "default-src 'self'" in csp and
           "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp,
           csp)
    report("headers.nosniff", h.get("x-content-type-options") == "nosniff",
           str(h.get("x-content-type-options")))
    report("headers.frame-deny", h.get("x-frame-options") == "DENY",
           str(h.get("x-frame-options")))
    report("headers.referrer-policy",
           h.get("referrer-policy") == "same-origin",
           str(h.get("referrer-policy")))
    report("headers.no-store", h.get("cache-control") == "no-store",
           str(h.get("cache-control")))
    report("headers.no-hsts-without-tls",
           "strict-transport-security" not in h, "")
    r = request(relay.admin_port, "GET", "/no/such/page")
    report("headers.on-errors-too",
           "default-src 'self'" in r.headers.get(
               "content-security-policy", "") and
           r.headers.get("x-frame-options") == "DENY", str(r.headers))


def test_loopback(args, relay):
    port = relay.admin_port
    r = request(port, "GET", "/")
    c = " ".join(r.cookies)
    report("loopback.no-login", r.status == 200 and "Overview" in r.text(),
           f"{r.status}")
    report("loopback.session-cookie",
           cookie_of(r) is not None and len(cookie_of(r)) == 64 and
           "HttpOnly" in c and "SameSite=Strict" in c and
           "Path=/" in c and "Secure" not in c, c)
    r = request(port, "GET", "/", headers={"Host": f"evil.example:{port}"})
    report("loopback.foreign-host-refused", r.status == 421, f"{r.status}")
    r = request(port, "GET", "/",
                headers={"Host": f"127.evil.example:{port}"})
    report("loopback.host-must-be-an-address", r.status == 421,
           f"{r.status}")
    r = request(port, "GET", "/", headers={"Host": f"localhost:{port}"})
    report("loopback.localhost-ok", r.status == 200, f"{r.status}")


def test_metrics(args, relay):
    r = request(relay.admin_port, "GET", "/metrics")
    report("metrics.text-format",
           r.status == 200 and r.headers.get("content-type", "")
           .startswith("text/plain; version=0.0.4") and
           re.search(rb'^danerelay_queue_messages\{state="deferred"\} \d+$',
                     r.body, re.M) is not None,
           f"{r.status} {r.headers.get('content-type')} {r.body[:200]!r}")


def test_csrf(args, relay):
    port = relay.admin_port
    page = request(port, "GET", "/")
    sid, tok = cookie_of(page), csrf_of(page)
    # Without a session (no cookie): refused even with some token.
    r = request(port, "POST", "/logout", headers=FORM,
                body=form({"csrf": tok or "0" * 64}))
    report("csrf.post-without-session-403", r.status == 403, f"{r.status}")
    ck = {"Cookie": f"danerelay_session={sid}"}
    r = request(port, "POST", "/logout", headers={**FORM, **ck},
                body=form({"x": "1"}))
    report("csrf.post-without-token-403", r.status == 403, f"{r.status}")
    r = request(port, "POST", "/logout", headers={**FORM, **ck},
                body=form({"csrf": "0" * 64}))
    report("csrf.post-wrong-token-403", r.status == 403, f"{r.status}")
    tok = session_token(port, sid)
    if tok is None:
        report("csrf.token-found", False, "no csrf field in any page")
        return
    r = request(port, "POST", "/logout?csrf=" + tok,
                headers={**FORM, **ck}, body=form({"x": "1"}))
    report("csrf.token-in-url-403", r.status == 403, f"{r.status}")
    r = request(port, "POST", "/logout",
                headers={**FORM, **ck, "Origin": "http://evil.example"},
                body=form({"csrf": tok}))
    report("csrf.foreign-origin-403", r.status == 403, f"{r.status}")
    status = oversized_post(port, sid)
    report("csrf.oversized-body-413", status == 413, f"{status}")
    r = request(port, "POST", "/logout",
                headers={**FORM, **ck, "Origin": f"http://127.0.0.1:{port}"},
                body=form({"csrf": tok}))
    report("csrf.right-token-accepted",
           r.status == 303 and "Max-Age=0" in " ".join(r.cookies),
           f"{r.status} {r.cookies}")


def oversized_post(port, sid):
    """The status of a POST announcing a 2 MiB body (the cap is 1 MiB):
    refused before the body is read."""
    head = (f"POST /logout HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: danerelay_session={sid}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {2 << 20}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.settimeout(10)
        s.sendall(head.encode() + b"csrf=0")
        reply = b""
        try:
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass
    m = re.match(rb"HTTP/1\.[01] (\d+)", reply)
    return int(m.group(1)) if m else reply[:60]


def session_token(port, sid):
    """The CSRF token of session sid, from the first page with a form."""
    for path in PAGES:
        r = request(port, "GET", path,
                    headers={"Cookie": f"danerelay_session={sid}"})
        tok = csrf_of(r)
        if tok is not None:
            return tok
    return None


def test_loopback_console(args):
    relay = start(args, "", "console-loopback")
    try:
        test_pages(args, relay)
        test_headers(args, relay)
        test_loopback(args, relay)
        test_metrics(args, relay)
        test_csrf(args, relay)
    finally:
        relay.stop()


# --- logins ------------------------------------------------------------

def auth_file(args, tmp):
    p = subprocess.run([args.binary, "passwd", USER],
                       input=(PASSWORD + "\n").encode(),
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("danerelay passwd: " + p.stderr.decode())
    path = os.path.join(tmp, "console.users")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(p.stdout)
    return path


def login(port, user, password, tls=None, token=True):
    """(response of POST /login, pre-login session id)."""
    g = request(port, "GET", "/login", tls=tls)
    sid, tok = cookie_of(g), csrf_of(g)
    fields = {"user": user, "password": password, "next": "/report"}
    if token:
        fields["csrf"] = tok or ""
    r = request(port, "POST", "/login", tls=tls,
                headers={**FORM, "Cookie": f"danerelay_session={sid}"},
                body=form(fields))
    return r, sid


def test_login(args, tmp):
    users = auth_file(args, tmp)
    relay = start(args, f"auth_file = {users}\n[server]\n"
                  "auth_max_failures = 3\nauth_lockout = 120s\n",
                  "console-login")
    port = relay.admin_port
    try:
        r = request(port, "GET", "/report")
        report("login.page-redirects-to-login",
               r.status == 303 and
               r.headers.get("location", "").startswith("/login?next="),
               f"{r.status} {r.headers.get('location')}")
        r = request(port, "GET", "/metrics")
        report("login.metrics-refused", r.status == 403, f"{r.status}")
        r = request(port, "GET", "/static/console.css")
        report("login.static-open", r.status == 200, f"{r.status}")
        r, pre = login(port, USER, PASSWORD, token=False)
        report("login.form-without-token-403", r.status == 403,
               f"{r.status}")
        r, pre = login(port, USER, PASSWORD)
        sid = cookie_of(r)
        report("login.right-password",
               r.status == 303 and r.headers.get("location") == "/report" and
               sid is not None, f"{r.status} {r.headers} {r.cookies}")
        report("login.new-session-id", sid is not None and sid != pre,
               f"{pre} -> {sid}")
        ck = {"Cookie": f"danerelay_session={sid}"}
        r = request(port, "GET", "/", headers=ck)
        report("login.session-serves-pages",
               r.status == 200 and f">{USER}</span>" in r.text(),
               f"{r.status}")
        r = request(port, "GET", "/",
                    headers={"Cookie": f"danerelay_session={pre}"})
        report("login.pre-login-id-is-not-logged-in", r.status == 303,
               f"{r.status}")
        r = request(port, "GET", "/metrics", headers=ck)
        report("login.metrics-with-session", r.status == 200, f"{r.status}")
        tok = csrf_of(request(port, "GET", "/", headers=ck))
        r = request(port, "POST", "/logout", headers={**FORM, **ck},
                    body=form({"csrf": tok or ""}))
        report("login.logout", r.status == 303 and
               r.headers.get("location") == "/login", f"{r.status}")
        r = request(port, "GET", "/", headers=ck)
        report("login.after-logout-redirected", r.status == 303,
               f"{r.status}")
        browser_login(port)
        t = time.monotonic()
        r, _ = login(port, USER, "wrong password")
        took = time.monotonic() - t
        report("login.wrong-password-refused",
               r.status == 403 and cookie_of(r) is None and
               "Wrong user or password" in r.text(), f"{r.status}")
        report("login.wrong-password-delayed", took >= 0.9, f"{took:.2f}s")
        r, _ = login(port, "nobody", PASSWORD)
        report("login.unknown-user-refused", r.status == 403, f"{r.status}")
        # Third failure: the limit (3) locks the network out.
        r, _ = login(port, USER, "wrong again")
        report("throttle.lockout-at-limit", r.status == 429, f"{r.status}")
        r, _ = login(port, USER, PASSWORD)
        report("throttle.locked-out-even-with-right-password",
               r.status == 429 and cookie_of(r) is None, f"{r.status}")
        report("throttle.logged", "login locked out" in relay.tail(40) or
               "login failed" in relay.tail(40), relay.tail(3))
    finally:
        relay.stop()


def browser_login(port):
    """A real browser's form POSTs (login, logout) pass the Origin and
    CSRF checks: it sends an Origin header, unlike urllib."""
    try:
        from browser import Browser
    except Exception as e:
        report("login.browser", False, str(e))
        return
    try:
        with Browser() as b:
            b.get(f"http://127.0.0.1:{port}/report")
            report("login.browser-redirected",
                   "/login" in b.url and b.find("input[name=password]"),
                   b.url)
            b.submit_form("form[action='/login']",
                          {"user": USER, "password": PASSWORD})
            report("login.browser-logged-in",
                   b.url.endswith("/report") and
                   b.text("nav .user") == USER, f"{b.url} {b.title}")
            b.submit_form("form.logout")
            report("login.browser-logout", b.url.endswith("/login"),
                   b.url)
            b.get(f"http://127.0.0.1:{port}/")
            report("login.browser-logged-out", "/login" in b.url, b.url)
    except Exception as e:
        report("login.browser", False, f"{type(e).__name__}: {e}")


# --- TLS -----------------------------------------------------------------

def test_tls(args, tmp):
    cert, key = make_cert(tmp, "console.test")
    users = auth_file(args, tmp)
    relay = start(args, f"tls_cert = {cert}\ntls_key = {key}\n"
                  f"auth_file = {users}\nmetrics_open = yes\n",
                  "console-tls")
    port = relay.admin_port
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    try:
        r = request(port, "GET", "/login", tls=ctx)
        report("tls.https-serves", r.status == 200 and
               "<form" in r.text(), f"{r.status}")
        report("tls.hsts", "max-age=" in r.headers.get(
            "strict-transport-security", ""), str(r.headers))
        report("tls.cookie-secure", any("Secure" in c for c in r.cookies),
               str(r.cookies))
        r, _ = login(port, USER, PASSWORD, tls=ctx)
        report("tls.login", r.status == 303 and cookie_of(r) is not None,
               f"{r.status}")
        r = request(port, "GET", "/metrics", tls=ctx)
        report("tls.metrics-open", r.status == 200 and
               b"danerelay_queue_messages" in r.body, f"{r.status}")
        try:
            r = request(port, "GET", "/", timeout=5)
            ok, why = False, f"plaintext got HTTP {r.status}"
        except (http.client.HTTPException, OSError) as e:
            ok, why = True, str(e)
        report("tls.plaintext-fails", ok, why)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                old.maximum_version = ssl.TLSVersion.TLSv1_1
                old.minimum_version = ssl.TLSVersion.TLSv1
            request(port, "GET", "/login", tls=old, timeout=5)
            ok, why = False, "TLS 1.1 accepted"
        except (ssl.SSLError, OSError, ValueError) as e:
            ok, why = True, str(e)
        report("tls.no-tls-1.1", ok, why)
    finally:
        relay.stop()


# --- check-config ----------------------------------------------------------

def check_config(args, tmp, admin):
    conf = os.path.join(tmp, "cc.conf")
    with open(conf, "w") as f:
        f.write(f"[queue]\ndirectory = {tmp}/cc-queue\n"
                "[server]\nallow_root = yes\n\n[admin]\n" + admin)
    p = subprocess.run([args.binary, "-c", conf, "check-config"],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr, conf


def test_config(args, tmp):
    rc, err, conf = check_config(args, tmp, "listen = 192.0.2.1:8443\n")
    report("config.non-loopback-needs-tls-and-login",
           rc == 78 and re.search(re.escape(conf) +
                                  r":\d+: \[admin\] listen: .*loopback",
                                  err) is not None, f"rc={rc} {err}")
    cert, key = make_cert(tmp, "cc.test")
    users = auth_file(args, tmp)
    rc, err, conf = check_config(
        args, tmp, f"listen = 192.0.2.1:8443\ntls_cert = {cert}\n"
        f"tls_key = {key}\nauth_file = {users}\n")
    report("config.non-loopback-with-tls-and-login-ok", rc == 0,
           f"rc={rc} {err}")
    rc, err, conf = check_config(
        args, tmp, f"listen = 192.0.2.1:8443\ntls_cert = {cert}\n"
        f"auth_file = {users}\n")
    report("config.tls-key-missing", rc == 78 and "tls_key" in err and
           re.search(re.escape(conf) + r":\d+:", err) is not None, err)
    rc, err, conf = check_config(
        args, tmp, "listen = 127.0.0.1:8080\nchart_js = /nonexistent.js\n")
    report("config.chart-js-missing-names-package",
           rc == 78 and "chart_js" in err and "libjs-chart.js" in err, err)
    rc, err, conf = check_config(args, tmp, "listen = localhost:8080\n")
    report("config.listen-needs-an-address", rc == 78 and
           "[admin] listen" in err, err)


# --- the browser -----------------------------------------------------------

def test_browser(args):
    try:
        from browser import Browser
    except Exception as e:
        report("browser.available", False, str(e))
        return
    try:
        relay, exp = consolelib.populated(args.binary, args.world)
    except Exception as e:
        report("browser.console-world", False, str(e))
        return
    try:
        with Browser() as b:
            b.get(relay.admin_url + "/")
            val = lambda card: b.text(f"#{card} .value")  # noqa: E731
            q = exp["queue"]
            report("browser.overview-queue",
                   val("queue-deferred") == str(q["deferred"]) and
                   val("queue-active") == str(q["active"]) and
                   val("queue-held") == str(q["held"]),
                   f"{val('queue-active')}/{val('queue-deferred')}/"
                   f"{val('queue-held')} want {q}")
            report("browser.overview-last-hour",
                   val("hour-delivered") == str(exp["delivered_total"]) and
                   val("hour-blocked") == str(exp["blocked_total"]),
                   f"{val('hour-delivered')} {val('hour-blocked')} want "
                   f"{exp['delivered_total']} {exp['blocked_total']}")
            report("browser.overview-dnssec",
                   val("dnssec") == "validating", str(val("dnssec")))
            report("browser.overview-nav",
                   b.texts("nav ul a") == ["Overview", "Transit security",
                                           "Enforcement impact",
                                           "Message trace", "Queue",
                                           "Analyzer", "TLS reports"],
                   str(b.texts("nav ul a")))
            errs = [e for e in b.console_errors()
                    if "favicon" not in e]
            report("browser.no-csp-or-script-errors", not errs, str(errs))
            if args.screenshots:
                b.screenshot(os.path.join(args.screenshots, "overview.png"))
    except Exception as e:
        report("browser.session", False, f"{type(e).__name__}: {e}")
    finally:
        relay.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--screenshots")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="console.",
                           dir=os.path.dirname(os.path.abspath(args.world)))
    groups = [("loopback", lambda: test_loopback_console(args)),
              ("login", lambda: test_login(args, tmp)),
              ("tls", lambda: test_tls(args, tmp)),
              ("config", lambda: test_config(args, tmp)),
              ("browser", lambda: test_browser(args))]
    try:
        for name, fn in groups:
            try:
                fn()
            except Exception as e:  # a relay that did not start, ...
                report(f"{name}.ran", False, f"{type(e).__name__}: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILED)} failed" if FAILED else "all passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
