#!/bin/bash
# The TLS reports danerelay builds (RFC 8460 §4.4), judged by a validator
# that is not ours: python3-jsonschema against the JSON Schema of
# tlsrpt_schema.py beside this script (written from §4.3 and §4.4:
# required fields, types, result types, no unknown field names), and Python's gzip module for the
# application/tlsrpt+gzip form (§5.2), which must inflate to the same
# octets. The reports are written by the unit test program in fixture
# mode (DANERELAY_TEST_TLSRPT_DIR=DIR test_tlsrpt_store), which sits in the
# build tree next to $1. Prints PASS/FAIL lines.
set -u
bin=${1:?usage: test_tlsrpt_schema.sh path/to/danerelay}
prog=${TEST_TLSRPT_BIN:-$(dirname "$bin")/tests/unit/test_tlsrpt_store}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if [ ! -x "$prog" ]; then
	echo "FAIL tlsrpt_schema: $prog not built"
	exit 1
fi
dir=$(mktemp -d /tmp/tlsrpt-schema.XXXXXX)
trap 'rm -rf "$dir"' EXIT
if ! DANERELAY_TEST_TLSRPT_DIR="$dir" "$prog" >"$dir/list" 2>"$dir/err"; then
	echo "FAIL fixture: $(head -3 "$dir/err" "$dir/list" | tr '\n' ' ')"
	exit 1
fi
echo "PASS fixture"

"$py" - "$dir" "$(cd "$(dirname "$0")" && pwd)" <<'EOF'
import copy, glob, gzip, json, os, re, sys

d = sys.argv[1]
failed = False


def result(name, ok, why=""):
    global failed
    if ok:
        print("PASS " + name)
    else:
        failed = True
        print("FAIL %s: %s" % (name, why))


sys.path.insert(0, sys.argv[2])
from tlsrpt_schema import errors  # noqa: E402

listed = [l.split(" ", 1)[1].strip() for l in open(os.path.join(d, "list"))
          if l.startswith("report ")]
names = sorted(os.path.basename(p) for p in listed)
want = ["2026-03-01_example.com.json", "2026-03-01_example.net.json",
        "2026-03-01_example.org.json", "2026-03-02_example.com.json"]
result("reports-listed", names == want, "got %r" % names)

docs = {}
for path in sorted(listed):
    name = os.path.basename(path)[:-len(".json")]
    raw = open(path, "rb").read()
    try:
        doc = json.loads(raw)
    except ValueError as e:
        result("json-" + name, False, str(e))
        continue
    docs[name] = doc
    errs = errors(doc)
    result("schema-" + name, not errs, "; ".join(errs[:3]))
    day, domain = name.split("_", 1)
    dr = doc.get("date-range", {})
    result("date-range-" + name,
           dr.get("start-datetime") == day + "T00:00:00Z" and
           dr.get("end-datetime") == day + "T23:59:59Z", repr(dr))
    result("policy-domain-" + name,
           all(p["policy"]["policy-domain"] == domain
               for p in doc.get("policies", [])), domain)
    sums = all(p["summary"]["total-failure-session-count"] ==
               sum(f["failed-session-count"]
                   for f in p.get("failure-details", []))
               for p in doc.get("policies", []))
    result("failure-sums-" + name, sums, "summary != sum of details")
    distinct = [json.dumps(p["policy"], sort_keys=True)
                for p in doc.get("policies", [])]
    result("policies-distinct-" + name,
           len(distinct) == len(set(distinct)), "a policy listed twice")
    try:
        gz = open(path + ".gz", "rb").read()
        same = gz[:3] == b"\x1f\x8b\x08" and gzip.decompress(gz) == raw
        result("gzip-" + name, same, "does not inflate to the JSON")
    except (OSError, EOFError) as e:
        result("gzip-" + name, False, str(e))

com = docs.get("2026-03-01_example.com", {})
pol = com.get("policies", [{}, {}])
try:
    p0 = pol[0]
    ok = (p0["policy"]["policy-type"] == "tlsa" and
          len(p0["policy"]["policy-string"]) == 2 and
          p0["summary"] == {"total-successful-session-count": 5,
                            "total-failure-session-count": 6} and
          [(f["result-type"], f["failed-session-count"])
           for f in p0["failure-details"]] ==
          [("validation-failure", 3), ("starttls-not-supported", 2),
           ("tlsa-invalid", 1)] and
          pol[1]["policy"] == {"policy-type": "no-policy-found",
                               "policy-domain": "example.com"})
    result("counts-example.com", ok, json.dumps(pol)[:300])
except (KeyError, IndexError, TypeError) as e:
    result("counts-example.com", False, repr(e))
net = docs.get("2026-03-01_example.net", {})
try:
    sts = net["policies"][0]["policy"]
    result("sts-policy", sts["policy-type"] == "sts" and
           sts["mx-host"] == ["*.mail.example.net"] and
           "mode: enforce" in sts["policy-string"], repr(sts))
except (KeyError, IndexError, TypeError) as e:
    result("sts-policy", False, repr(e))

# A policy that could not be fetched (RFC 8461 §6): an sts entry with no
# policy text, the failures by RFC 8460 §4.3.2.2 type, the sessions that
# followed under no-policy-found (docs/TLSRPT.md).
org = docs.get("2026-03-01_example.org", {})
try:
    p0, p1 = org["policies"]
    ok = (p0["policy"] == {"policy-type": "sts", "policy-string": [],
                           "policy-domain": "example.org"} and
          p0["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 3} and
          [(f["result-type"], f["failed-session-count"],
            f.get("failure-reason-code"))
           for f in p0["failure-details"]][0] ==
          ("sts-policy-fetch-error", 2, "HTTP 404") and
          p0["failure-details"][1]["result-type"] == "sts-webpki-invalid" and
          p1["policy"]["policy-type"] == "no-policy-found")
    result("sts-fetch-failure", ok, json.dumps(org.get("policies"))[:300])
except (KeyError, IndexError, TypeError, ValueError) as e:
    result("sts-fetch-failure", False, repr(e))

# The schema is not vacuous: broken copies of a real report fail it.
if com:
    cases = {
        "no-report-id": lambda x: x.pop("report-id"),
        "count-as-string": lambda x: x["policies"][0]["summary"].update(
            {"total-successful-session-count": "5"}),
        "bad-result-type": lambda x: x["policies"][0]["failure-details"][0]
        .update({"result-type": "tls-broken"}),
        "policy-string-not-array": lambda x: x["policies"][0]["policy"]
        .update({"policy-string": "3 1 1 00"}),
        "unknown-field": lambda x: x.update({"organisation-name": "x"}),
    }
    for name, mutate in cases.items():
        bad = copy.deepcopy(com)
        mutate(bad)
        result("schema-rejects-" + name, errors(bad) != [], "accepted")
sys.exit(1 if failed else 0)
EOF
exit $?
