#!/bin/bash
# The delivery status notifications of the golden cases, read by a parser
# that is not ours: Python's email package (policy.default) must find a
# multipart/report with no defects, the RFC 3464 fields in part 2, and the
# Subject decoded. The reports are written by the unit test program
# (test_report --emit DIR), which sits in the build tree next to $1.
# Prints PASS/FAIL lines.
set -u
bin=${1:?usage: test_dsn_parse.sh path/to/danerelay}
prog="$(dirname "$bin")/tests/unit/test_report"
if [ ! -x "$prog" ]; then
	echo "FAIL dsn_parse: $prog not built"
	exit 1
fi
dir=$(mktemp -d /tmp/dsn-parse.XXXXXX)
trap 'rm -rf "$dir"' EXIT
if ! "$prog" --emit "$dir"; then
	echo "FAIL dsn_parse: $prog --emit failed"
	exit 1
fi
/usr/bin/python3 - "$dir" <<'EOF'
import email, email.policy, glob, os, re, sys

STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
failed = 0


def fields(text):
    """RFC 3464 groups of a delivery-status body, unfolded."""
    groups = []
    for block in re.split(r"\r?\n\r?\n", text.strip()):
        block = re.sub(r"\r?\n[ \t]+", " ", block)
        groups.append(dict(line.split(": ", 1) for line in block.splitlines()))
    return groups


def check(path):
    raw = open(path, "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert not m.defects, m.defects
    parts = list(m.iter_parts())
    assert len(parts) in (2, 3), len(parts)
    for p in parts:
        assert not p.defects, p.defects
    assert parts[0].get_content_type() == "text/plain"
    human = parts[0].get_content()
    assert "Your message" in human
    rtype = m.get_param("report-type")
    assert parts[1].get_content_type() == "message/" + rtype, rtype
    # The raw part 2, whatever Python makes of message/global-*.
    body = raw.split(b"Content-Type: message/" + rtype.encode())[1]
    body = body.split(b"\r\n\r\n", 1)[1].split(b"\r\n--=_danerelay_")[0]
    groups = fields(body.decode("utf-8"))
    assert groups[0]["Reporting-MTA"].startswith("dns; "), groups[0]
    for g in groups[1:]:
        assert STATUS.match(g["Status"]), g
        assert g["Action"] in ("failed", "delayed", "delivered", "relayed")
        assert re.match(r"^(rfc822|utf-8); ", g["Final-Recipient"]), g
        if "Diagnostic-Code" in g:
            assert re.match(r"^(smtp|X-Danerelay); ", g["Diagnostic-Code"])
    assert str(m["subject"]).split(":")[0] in (
        "Undelivered Mail Returned to Sender",
        "Delayed Mail (still being retried)",
        "Successful Mail Delivery Report")
    if "qp" in path or "utf8" in path:
        assert str(m["subject"]).endswith("Grüße aus Köln"), m["subject"]
        assert "Grüße aus Köln" in human


for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.eml"))):
    name = "dsn_parse." + os.path.basename(path)[:-4]
    try:
        check(path)
        print("PASS " + name)
    except Exception as e:  # report and go on
        failed += 1
        print("FAIL %s: %r" % (name, e))
sys.exit(1 if failed else 0)
EOF
