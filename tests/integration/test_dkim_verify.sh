#!/bin/bash
# DKIM signatures made by src/dkim/dkim.c, checked by a verifier that is
# not ours: python-dkim (Debian python3-dkim), with the public key taken
# from the DNS record our helper prints (dkim_signer_dns_record), handed to
# dkim.verify through its dnsfunc. The messages (TLS report emails signed
# with RSA and Ed25519 keys, bare-LF and odd-spacing messages, an empty
# body) are written by the unit test program (test_dkim --emit DIR), which
# sits in the build tree next to $1. Each must verify, and fail once a
# byte of its body or of a signed field is changed. Then the signed report
# email goes through `danerelay tlsrpt parse`, and the normalized --json
# output is checked against a JSON schema of RFC 8460 §4.4 (jsonschema).
# Usage: test_dkim_verify.sh path/to/danerelay   (prints PASS/FAIL lines)
set -u
bin=${1:?usage: test_dkim_verify.sh path/to/danerelay}
prog="$(dirname "$bin")/tests/unit/test_dkim"
if [ ! -x "$prog" ]; then
	echo "FAIL dkim_verify: $prog not built"
	exit 1
fi
dir=$(mktemp -d /tmp/dkim-verify.XXXXXX)
trap 'rm -rf "$dir"' EXIT
if ! "$prog" --emit "$dir" >"$dir/emit.log" 2>&1; then
	echo "FAIL dkim_verify: $prog --emit failed: $(head -3 "$dir/emit.log")"
	exit 1
fi
/usr/bin/python3 - "$dir" "$bin" <<'EOF'
import glob, json, os, re, subprocess, sys

import dkim
import jsonschema

d, binary = sys.argv[1], sys.argv[2]
failed = 0


def result(ok, name, why=""):
    global failed
    if ok:
        print("PASS " + name)
    else:
        failed += 1
        print("FAIL %s: %s" % (name, why))


def record(path):
    """Owner name and the joined character-strings of our TXT line."""
    line = open(path).read().strip()
    owner = line.split()[0]
    assert " IN TXT " in line, line
    parts = re.findall(r'"([^"]*)"', line)
    assert all(len(p) <= 255 for p in parts), "string over 255 octets"
    return owner, "".join(parts).encode()


def verify(msg, owner, txt, tlsrpt):
    def dnsfunc(name, timeout=5):
        return txt if name.decode() == owner else None
    return dkim.verify(msg, dnsfunc=dnsfunc, tlsrpt=tlsrpt)


def sig_tags(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    field = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", head,
                      re.S | re.M).group(1)
    field = re.sub(rb"\s+", b"", field)
    return dict(t.split(b"=", 1) for t in field.split(b";") if t)


def tamper_body(msg):
    head, body = msg.split(b"\r\n\r\n", 1)
    i = next((i for i, c in enumerate(body) if chr(c).isalnum()), None)
    if i is None:  # an empty body gets some
        return head + b"\r\n\r\nX\r\n"
    body = body[:i] + (b"X" if body[i:i + 1] != b"X" else b"Y") + body[i + 1:]
    return head + b"\r\n\r\n" + body


def tamper_from(msg):
    return re.sub(rb"^From:(.*?)@", rb"From:\1x@", msg, count=1, flags=re.M)


emls = sorted(glob.glob(os.path.join(d, "*.eml")))
result(len(emls) >= 8, "emitted", "only %d messages" % len(emls))
for path in emls:
    name = os.path.basename(path)[:-4]
    msg = open(path, "rb").read()
    owner, txt = record(path[:-4] + ".dns")
    # The reports are TLS reports: strict, the key must say s=tlsrpt.
    mode = "strict" if name.startswith("report_") else False
    try:
        tags = sig_tags(msg)
        result(b"l" not in tags and tags[b"c"] == b"relaxed/relaxed",
               name + ".tags", tags)
        result(verify(msg, owner, txt, mode), name + ".verify",
               "python-dkim says the signature is bad")
        result(not verify(tamper_body(msg), owner, txt, mode),
               name + ".tampered_body", "verified after a body change")
        result(not verify(tamper_from(msg), owner, txt, mode),
               name + ".tampered_from", "verified after a From change")
    except Exception as e:
        result(False, name, "%s: %s" % (type(e).__name__, e))

# The signed report email, read back by `danerelay tlsrpt parse`.
SCHEMA = {
    "type": "object",
    "required": ["organization-name", "date-range", "contact-info",
                 "report-id", "policies"],
    "properties": {
        "organization-name": {"type": "string"},
        "contact-info": {"type": "string"},
        "report-id": {"type": "string"},
        "date-range": {
            "type": "object",
            "required": ["start-datetime", "end-datetime"],
            "properties": {
                "start-datetime": {"type": "string", "format": "date-time"},
                "end-datetime": {"type": "string", "format": "date-time"},
            },
        },
        "policies": {"type": "array", "items": {
            "type": "object",
            "required": ["policy", "summary", "failure-details"],
            "properties": {
                "policy": {
                    "type": "object",
                    "required": ["policy-type", "policy-domain"],
                    "properties": {
                        "policy-type": {"enum": ["tlsa", "sts",
                                                 "no-policy-found"]},
                        "policy-string": {"type": "array",
                                          "items": {"type": "string"}},
                        "policy-domain": {"type": "string"},
                        "mx-host": {"type": "array",
                                    "items": {"type": "string"}},
                    },
                },
                "summary": {
                    "type": "object",
                    "required": ["total-successful-session-count",
                                 "total-failure-session-count"],
                    "additionalProperties": {"type": "integer",
                                             "minimum": 0},
                },
                "failure-details": {"type": "array", "items": {
                    "type": "object",
                    "required": ["result-type", "failed-session-count"],
                    "properties": {
                        "result-type": {"type": "string"},
                        "failed-session-count": {"type": "integer",
                                                 "minimum": 0},
                    },
                    "additionalProperties": {"type": ["string",
                                                      "integer"]},
                }},
            },
        }},
    },
}

eml = os.path.join(d, "report_rsa.eml")


def run(*args):
    try:
        return subprocess.run([binary, "tlsrpt", "parse"] + list(args),
                              capture_output=True, text=True, timeout=60)
    except OSError as e:
        return subprocess.CompletedProcess(args, 127, "", str(e))


p = run(eml)
result(p.returncode == 0
       and re.search(r"\n  policy \S+ example\.net\b.*: 41 successful, "
                     r"2 failed sessions\n", p.stdout)
       and "tlsa-invalid: 2 sessions" in p.stdout
       and "mx.example.net [198.51.100.7] from 192.0.2.25" in p.stdout
       and "DKIM-Signature present" in p.stdout,
       "tlsrpt_parse.text", "rc %d: %s %s" % (p.returncode, p.stdout[:300],
                                             p.stderr[:200]))
p = run("--json", eml)
try:
    doc = json.loads(p.stdout)
    jsonschema.validate(doc["report"], SCHEMA,
                        format_checker=jsonschema.FormatChecker())
    ok = (p.returncode == 0 and doc["format"] == "email/gzip"
          and doc["email"]["tls-report-submitter"] == "mail.example.org"
          and doc["email"]["dkim-signature"] is True
          and doc["warnings"] == []
          and doc["summary"][0]["policy-domain"] == "example.net")
    result(ok, "tlsrpt_parse.json", p.stdout[:300])
except Exception as e:
    result(False, "tlsrpt_parse.json", "%s: %s" % (type(e).__name__, e))

# Exit codes: 65 not a report, 66 unreadable (wins), the rest still read.
garbage = os.path.join(d, "garbage.json")
open(garbage, "w").write("{\"policies\": 7}")
p = run(garbage)
result(p.returncode == 65 and "no \"policies\" array" in p.stderr,
       "tlsrpt_parse.not_a_report", "rc %d: %s" % (p.returncode, p.stderr))
p = run("--json", garbage, os.path.join(d, "missing.json"), eml)
try:
    docs = json.loads(p.stdout)
    ok = (p.returncode == 66 and len(docs) == 3 and "error" in docs[0]
          and "error" in docs[1] and docs[2]["format"] == "email/gzip")
except Exception as e:
    ok = False
result(ok, "tlsrpt_parse.exit_codes", "rc %d: %s" % (p.returncode,
                                                      p.stdout[:200]))
sys.exit(1 if failed else 0)
EOF
