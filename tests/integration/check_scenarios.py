#!/usr/bin/python3
"""Run `danerelay check --json` against every scenario of the test world.

  /usr/bin/python3 tests/integration/check_scenarios.py --binary PATH --world DIR [--only NAME]

The world must be up (tests/world/world.py up DIR).  Each scenario's domain
is checked on its own (several at a time); then, unless --only is given, all
domains are checked in one invocation, which must agree too.  Prints one
`PASS <name>` / `FAIL <name>: <what differed>` line per case and exits 0:
the lines are the result.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = os.path.join(ROOT, "tests", "world", "scenarios.json")
FIELDS = ("verdict", "status", "result_type", "deliver_to")
TIMEOUT = 60
PASSING = ("verified", "trusted", "encrypted", "opportunistic")
BATCH = "all-domains-one-run"


def run_check(binary, world, domains, timeout):
    """(exit code, parsed JSON) of one `check --json` run; raises
    RuntimeError with a short reason when there is no usable output."""
    cmd = [binary, "-c", os.path.join(world, "danerelay.conf"), "check",
           "--json"] + domains
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError("timed out after %ds" % timeout)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise RuntimeError("exit %d, no JSON on stdout; stderr: %s" % (
            p.returncode, p.stderr.strip()[-300:] or "(empty)"))


def differences(doc, expect):
    """What in doc differs from the scenario's expectation."""
    if not isinstance(doc, dict):
        return ["not a JSON object: %.80r" % doc]
    out = ["%s %r, want %r" % (f, doc.get(f), expect[f])
           for f in FIELDS if doc.get(f) != expect[f]]
    codes = {w.get("code") for w in doc.get("warnings") or []
             if isinstance(w, dict)}
    missing = [c for c in expect.get("warnings_include", []) if c not in codes]
    if missing:
        out.append("warnings %s lack %s" % (sorted(c for c in codes if c),
                                            missing))
    return out


def check_one(binary, world, scenario):
    expect = scenario["expect"]
    try:
        code, doc = run_check(binary, world, [scenario["domain"]], TIMEOUT)
    except RuntimeError as e:
        return [str(e)]
    problems = differences(doc, expect)
    want_code = 0 if expect["verdict"] in PASSING else 1   # docs/VERDICTS.md
    if code != want_code:
        problems.append("exit %d, want %d" % (code, want_code))
    return problems


def check_batch(binary, world, scenarios):
    """All domains in one invocation: an array in argument order."""
    domains = [s["domain"] for s in scenarios]
    try:
        _, docs = run_check(binary, world, domains,
                            max(TIMEOUT, 15 * len(domains)))
    except RuntimeError as e:
        return [str(e)]
    if not isinstance(docs, list) or len(docs) != len(domains):
        return ["expected a JSON array of %d documents" % len(domains)]
    return ["%s: %s" % (s["name"], ", ".join(d))
            for s, doc in zip(scenarios, docs)
            for d in [differences(doc, s["expect"])] if d]


def report(name, problems):
    print("FAIL %s: %s" % (name, "; ".join(problems)) if problems
          else "PASS %s" % name, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--only", help="run just this scenario")
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args(argv)
    binary, world = os.path.abspath(args.binary), os.path.abspath(args.world)
    with open(SCENARIOS) as f:
        scenarios = [s for s in json.load(f)
                     if not args.only or s["name"] == args.only]
    if not scenarios:
        report(args.only, ["no such scenario"])
        return 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(check_one, binary, world, s) for s in scenarios]
        for s, fut in zip(scenarios, futures):
            report(s["name"], fut.result())
    if not args.only:
        report(BATCH, check_batch(binary, world, scenarios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
