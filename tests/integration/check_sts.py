#!/usr/bin/python3
"""Run `danerelay check --json` against the MTA-STS scenarios of the test world.

  /usr/bin/python3 tests/integration/check_sts.py --binary PATH --world DIR [--only NAME] [--jobs 8]

The world must be up (tests/world/world.py up DIR); its danerelay.conf
trusts the world's test root CA and uses the world's HTTPS port
([mta_sts]).  Every scenario with an `expect_sts` block is checked on its
own: `verdict`, `status`, `result_type`, `deliver_to`, `warnings_include`
and the exit code as in check_scenarios.py, plus the top-level `policy`
("dane", "mta-sts", "none") and `mta_sts.state` / `mta_sts.mode`.  --only
NAME runs one scenario, any scenario (one without `expect_sts` is compared
on the common fields only, which is how the runner itself is tried on an
old scenario).

After a full run, the policy hosts' request log (DIR/run/httpsd.requests.jsonl,
requests of selftest.py left out) is checked too:
  sts-fetch-sni              each fetch sent SNI and Host for mta-sts.DOMAIN (RFC 8461 §7.1, §3.3)
  sts-redirect-not-followed  no request for a redirect's target (§3.3); the
                             redirecting host must have been asked
  sts-no-fetch-without-txt   no fetch for a domain without a usable TXT (§3.1);
                             fetches for domains with one must be in the log
  sts-fetch-path             every fetch asked for /.well-known/mta-sts.txt (§3.2)
and, with a stand-in libcurl.so.4 first on LD_LIBRARY_PATH:
  sts-libcurl-missing        the fetch fails naming the library, not the URL

A case whose precondition did not hold (nothing fetched, so nothing to
judge) FAILS. One `PASS <name>` / `FAIL <name>: <what differed>` line per
case; always
exits 0: the lines are the result.  Each check is bounded (30 s).
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldlib import stand_in_libcurl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = os.path.join(ROOT, "tests", "world", "scenarios.json")
FIELDS = ("verdict", "status", "result_type", "deliver_to", "policy")
TIMEOUT = 30
PASSING = ("verified", "trusted", "encrypted", "opportunistic")
SELFTEST_AGENT = "danerelay-world-selftest"
WELL_KNOWN = "/.well-known/mta-sts.txt"


def run_check(binary, world, domain, env=None):
    """(exit code, parsed JSON) of one `check --json DOMAIN`; raises
    RuntimeError with a short reason when there is no usable output."""
    cmd = [binary, "-c", os.path.join(world, "danerelay.conf"), "check",
           "--json", domain]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError("timed out after %ds" % TIMEOUT)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise RuntimeError("exit %d, no JSON on stdout; stderr: %s" % (
            p.returncode, p.stderr.strip()[-300:] or "(empty)"))


def differences(doc, scenario):
    """What in doc differs from the scenario's expect and expect_sts."""
    if not isinstance(doc, dict):
        return ["not a JSON object: %.80r" % doc]
    expect = scenario["expect"]
    out = ["%s %r, want %r" % (f, doc.get(f), expect[f])
           for f in FIELDS if f in expect and doc.get(f) != expect[f]]
    codes = {w.get("code") for w in doc.get("warnings") or []
             if isinstance(w, dict)}
    missing = [c for c in expect.get("warnings_include", []) if c not in codes]
    if missing:
        out.append("warnings %s lack %s" % (sorted(c for c in codes if c),
                                            missing))
    want = scenario.get("expect_sts")
    if want is not None:
        sts = doc.get("mta_sts")
        if not isinstance(sts, dict):
            out.append("mta_sts %.60r, want %s" % (sts, want))
        else:
            out += ["mta_sts.%s %r, want %r" % (k, sts.get(k), v)
                    for k, v in want.items() if sts.get(k) != v]
            if sts.get("state") in ("fetch-error", "invalid") and \
                    not sts.get("error"):
                out.append("mta_sts.error is empty for state %s"
                           % sts.get("state"))
    return out


def check_one(binary, world, scenario):
    try:
        code, doc = run_check(binary, world, scenario["domain"])
    except RuntimeError as e:
        return [str(e)]
    problems = differences(doc, scenario)
    want_code = 0 if scenario["expect"]["verdict"] in PASSING else 1
    if code != want_code:
        problems.append("exit %d, want %d" % (code, want_code))
    return problems


# ---------------------------------------------------------------- request log

def fetches(world, since):
    """Requests the policy hosts logged since `since`, selftest's left out."""
    path = os.path.join(world, "run", "httpsd.requests.jsonl")
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r.get("user_agent") != SELFTEST_AGENT and \
                        r.get("epoch", 0) >= since:
                    out.append(r)
    except FileNotFoundError:
        pass
    return out


def log_cases(world, scenarios, since):
    """(name, problems) of the checks on what the binary asked for. A
    check whose precondition did not hold is a problem too: "nothing was
    asked for" must not pass as "nothing wrong was asked for"."""
    with open(os.path.join(world, "world.json")) as f:
        port = json.load(f).get("https_port")
    reqs = fetches(world, since)
    none = ["the binary fetched no policy during this run"] if not reqs \
        else []
    sni = ["%s: SNI %r, Host %r" % (r["host"], r.get("sni"),
                                    r.get("http_host"))
           for r in reqs if r.get("sni") != r["host"] or
           r.get("http_host") not in (r["host"], "%s:%s" % (r["host"], port))]
    redirects = {"mta-sts." + s["domain"]: h["redirect"]
                 for s in scenarios
                 for n, h in s.get("https", {}).items() if h.get("redirect")}
    paths = ["%s%s" % (r["host"], r["path"]) for r in reqs
             if r["path"] != WELL_KNOWN and
             redirects.get(r["host"]) != r["path"]]
    return [("sts-fetch-sni", none + sni[:5]),
            ("sts-redirect-not-followed",
             redirect_problems(reqs, redirects)),
            ("sts-no-fetch-without-txt", no_txt_problems(reqs, scenarios)),
            ("sts-fetch-path", none + paths[:5])]


def redirect_problems(reqs, redirects):
    """§3.3: no request for a redirect's target. Only meaningful when the
    redirecting host was asked for the policy and so sent the redirect."""
    if not redirects:
        return ["no scenario has a redirecting policy host"]
    asked = {r["host"] for r in reqs if r["path"] == WELL_KNOWN}
    out = ["%s was never asked for %s: no redirect to refuse" % (h, WELL_KNOWN)
           for h in sorted(redirects) if h not in asked]
    followed = ["%s%s" % (r["host"], r["path"]) for r in reqs
                if redirects.get(r["host"]) == r["path"]]
    if followed:
        out.append("followed " + ", ".join(followed))
    return out


def no_txt_problems(reqs, scenarios):
    """§3.1: no fetch for a domain without a usable TXT record. Only
    meaningful when such domains were checked and the log shows the
    binary's fetches for the domains that do publish one."""
    no_txt = {"mta-sts." + s["domain"] for s in scenarios
              if s.get("expect_sts", {}).get("state") == "none"}
    with_txt = {"mta-sts." + s["domain"] for s in scenarios
                if s.get("expect_sts", {}).get("state") in
                ("policy", "invalid") and s.get("https")}
    out = []
    if not no_txt:
        out.append("no scenario lacks a usable TXT record")
    if not with_txt & {r["host"] for r in reqs}:
        out.append("no fetch logged for a domain with a usable TXT record "
                   "(the log shows nothing of this run)")
    fetched = sorted({r["host"] for r in reqs if r["host"] in no_txt})
    if fetched:
        out.append("fetched " + ", ".join(fetched))
    return out


def report(name, problems):
    print("FAIL %s: %s" % (name, "; ".join(problems)) if problems
          else "PASS %s" % name, flush=True)


def libcurl_missing(binary, world):
    """libcurl is loaded at the first HTTPS request (src/http/http_lib.h).
    When the library found is not libcurl (here a stand-in named
    libcurl.so.4 first on LD_LIBRARY_PATH), the policy fetch fails with a
    message that says so, like any fetch error (RFC 8461 §3.3: no policy),
    instead of the relay failing to start or blaming the URL."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _, doc = run_check(binary, world, "sts-enforce.test",
                               stand_in_libcurl(tmp))
        except RuntimeError as e:
            return [str(e)]
    sts = doc.get("mta_sts") or {}
    problems = []
    if sts.get("state") != "fetch-error":
        problems.append("mta_sts.state %r, want fetch-error" % sts.get("state"))
    if "libcurl.so.4 has no curl_" not in (sts.get("error") or ""):
        problems.append("error %r does not name the library"
                        % sts.get("error"))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--only", help="run just this scenario (any scenario)")
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args(argv)
    binary, world = os.path.abspath(args.binary), os.path.abspath(args.world)
    with open(SCENARIOS) as f:
        everything = json.load(f)
    scenarios = [s for s in everything
                 if s["name"] == args.only or
                 (not args.only and "expect_sts" in s)]
    if not scenarios:
        report(args.only or "sts-scenarios", ["no such scenario"])
        return 0
    since = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(check_one, binary, world, s) for s in scenarios]
        for s, fut in zip(scenarios, futures):
            report(s["name"], fut.result())
    if not args.only:
        for name, problems in log_cases(world, everything, since):
            report(name, problems)
        report("sts-libcurl-missing", libcurl_missing(binary, world))
    return 0


if __name__ == "__main__":
    sys.exit(main())
