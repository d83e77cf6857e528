"""A small reference reading of MTA-STS (RFC 8461), independent of
danerelay, for selftest.py: is a TXT record set a usable `_mta-sts` record
(§3.1), is a policy body valid and what does it say (§3.2), does an MX host
match a policy's patterns (§4.1), and is a fetch response acceptable (§3.3).
It checks the world's scenario data, not danerelay.
"""

import re

MAX_BODY = 64 * 1024               # §3.3: suggested limit, what danerelay uses
MAX_AGE = 31557600                 # §3.2
_WSP = "[ \\t]*"
_FIELD = ("(?:id=[A-Za-z0-9]{1,32}"
          "|[A-Za-z0-9][A-Za-z0-9_.-]{0,31}=[\\x21-\\x3a\\x3c\\x3e-\\x7e]+)")
_TXT = re.compile("^v=STSv1(?:%s;%s%s)+(?:%s;%s)?$" % (
    _WSP, _WSP, _FIELD, _WSP, _WSP))
_TXT_ID = re.compile("(?:^|;)%sid=([A-Za-z0-9]{1,32})%s(?:;|$)" % (_WSP, _WSP))
_NAME = re.compile("^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_VCHAR = "[^\\x00-\\x20\\x7f]"        # visible, UTF-8 allowed
_VALUE = re.compile("^%s(?:[^\\x00-\\x1f\\x7f]*%s)?$" % (_VCHAR, _VCHAR))
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile("^(?:\\*\\.)?%s(?:\\.%s)+$" % (_LABEL, _LABEL))


def txt_strings(rdata):
    """The strings of a TXT RDATA in presentation format, concatenated
    (§3.1: multiple strings are joined without spaces)."""
    return "".join(m.group(1) for m in re.finditer(r'"((?:[^"\\]|\\.)*)"',
                                                   rdata))


def parse_txt(records):
    """The id of the one usable _mta-sts record among records (already
    concatenated strings), or None when there is no usable record."""
    cands = [r for r in records if r.startswith("v=STSv1;")]
    if len(cands) != 1 or not _TXT.match(cands[0]):
        return None
    m = _TXT_ID.search(cands[0])
    return m.group(1) if m else None


def parse_policy(body):
    """{"mode", "mx", "max_age"} of a policy body (bytes or str); raises
    ValueError naming the defect."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8")
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()                         # the last terminator is optional
    fields = {}
    mx = []
    for line in lines:
        line = line[:-1] if line.endswith("\r") else line
        name, sep, value = line.partition(":")
        value = value.strip(" \t")
        if not sep or not _NAME.match(name) or not _VALUE.match(value):
            raise ValueError("malformed line %r" % line[:60])
        if name == "mx":
            mx.append(value)
        else:
            fields.setdefault(name, value)  # §3.2: the first one counts
    if fields.get("version") != "STSv1":
        raise ValueError("version %r" % fields.get("version"))
    mode = fields.get("mode")
    if mode not in ("enforce", "testing", "none"):
        raise ValueError("mode %r" % mode)
    age = fields.get("max_age", "")
    if not re.match("^[0-9]{1,10}$", age) or int(age) > MAX_AGE:
        raise ValueError("max_age %r" % age)
    if not mx and mode != "none":
        raise ValueError("no mx")
    bad = [p for p in mx if not _DOMAIN.match(p)]
    if bad:
        raise ValueError("mx pattern %r" % bad[0])
    return {"mode": mode, "mx": mx, "max_age": int(age)}


def mx_match(patterns, host):
    """§4.1: "*.example.com" matches exactly one more leading label."""
    host = host.lower().rstrip(".")
    for p in patterns:
        p = p.lower().rstrip(".")
        if p.startswith("*."):
            first, _, rest = host.partition(".")
            if first and rest == p[2:]:
                return True
        elif p == host:
            return True
    return False


def fetch_problem(status, headers, body, complete):
    """Why a policy response is not acceptable (§3.2, §3.3), or None."""
    if status != 200:
        return "HTTP status %d" % status
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "text/plain":
        return "media type %r" % ctype
    if len(body) > MAX_BODY:
        return "body over %d octets" % MAX_BODY
    if not complete:
        return "body incomplete"
    return None
