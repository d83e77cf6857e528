"""A relay for the console's tests: `populated()` starts `danerelay serve`
in the test world with [admin] listen on a free loopback port, sends a few
messages of every kind the console reports on, waits until each has its
outcome in the queue, and returns the relay with the numbers the pages
must show.

What it sends (one recipient per message; scenarios of docs/TEST-WORLD.md):

| domain | n | outcome | security | status |
|---|---|---|---|---|
| ee-311.test | 3 | delivered | dane | 2.0.0 |
| insecure-mx-good.test | 1 | delivered | dane_trusted | 2.0.0 |
| sts-enforce.test | 2 | delivered | sts | 2.0.0 |
| no-tlsa.test | 2 | delivered | tls | 2.0.0 |
| no-starttls.test (security = may) | 1 | delivered | plaintext | 2.0.0 |
| dane-ta-wrong-name.test | 2 | deferred (blocked) | dane | 4.7.325 certificate-host-mismatch |
| sts-enforce-wrong-name.test | 1 | deferred (blocked) | sts | 4.7.5 certificate-host-mismatch |
| ee-wrong-digest.test (mode = log-only) | 2 | delivered, would fail | tls | would 4.7.323 tlsa-invalid |

Deferred mail waits an hour ([delivery] retry_schedule = 1h), so the
blocked recipients stay in the queue as "deferred" while the test runs.

Not a test itself (imported by tests/integration/relay_console*.py).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, free_port, log_has, wait_until  # noqa: E402

SENDER = "postmaster@ee-311.test"   # DSNs, if any, land in the world

# domain, messages, verdict event, security, status, result type,
# would-fail status (log-only)
PLAN = [
    ("ee-311.test", 3, "delivered", "dane", "2.0.0", None, None),
    ("insecure-mx-good.test", 1, "delivered", "dane_trusted", "2.0.0",
     None, None),
    ("sts-enforce.test", 2, "delivered", "sts", "2.0.0", None, None),
    ("no-tlsa.test", 2, "delivered", "tls", "2.0.0", None, None),
    ("no-starttls.test", 1, "delivered", "plaintext", "2.0.0", None, None),
    ("dane-ta-wrong-name.test", 2, "deferred", "dane", "4.7.325",
     "certificate-host-mismatch", None),
    ("sts-enforce-wrong-name.test", 1, "deferred", "sts", "4.7.5",
     "certificate-host-mismatch", None),
    ("ee-wrong-digest.test", 2, "delivered", "tls", "2.0.0", None,
     "4.7.323"),
]

CONFIG = """
[admin]
listen = 127.0.0.1:{port}

[delivery]
retry_schedule = 1h
delay_warning = 0

[domain ee-wrong-digest.test]
mode = log-only

[domain no-starttls.test]
security = may
"""


def expected_counts():
    """The numbers of PLAN, as the pages count them."""
    exp = {"domains": {}, "delivered": {}, "blocked": {}, "would_block": {},
           "queue": {"active": 0, "deferred": 0, "held": 0},
           "messages": 0, "recipients": 0}
    for dom, n, verdict, sec, status, rt, would in PLAN:
        exp["domains"][dom] = {"messages": n, "verdict": verdict,
                               "security": sec, "status": status,
                               "result_type": rt, "would_fail": would}
        exp["messages"] += n
        exp["recipients"] += n
        if verdict == "delivered":
            exp["delivered"][sec] = exp["delivered"].get(sec, 0) + n
        else:
            key = (sec, status)
            exp["blocked"][key] = exp["blocked"].get(key, 0) + n
            exp["queue"]["deferred"] += n
        if would:
            key = ("dane", would)
            exp["would_block"][key] = exp["would_block"].get(key, 0) + n
    exp["blocked_total"] = sum(exp["blocked"].values())
    exp["delivered_total"] = sum(exp["delivered"].values())
    exp["would_block_total"] = sum(exp["would_block"].values())
    exp["would_block_domains"] = sorted(
        d for d, v in exp["domains"].items() if v["would_fail"])
    exp["blocked_domains"] = sorted(
        d for d, v in exp["domains"].items() if v["verdict"] != "delivered")
    return exp


def _trace_all(relay):
    rc, out, err = relay.cli("trace", "--since", "1h", "--json")
    try:
        return json.loads(out) if out.strip() else []
    except ValueError:
        return []


def _verdicts(relay, sent):
    """{qid: (verdict event, its attempt event)} of the messages in sent
    that have one (the attempt carries security, tls, would_fail)."""
    got = {}
    for m in _trace_all(relay):
        if m.get("id") not in sent:
            continue
        attempt = {}
        for ev in m.get("events", []):
            if ev.get("type") == "attempt":
                attempt = ev
            if ev.get("type") in ("delivered", "deferred", "bounced"):
                got[m["id"]] = (ev, attempt)
    return got


def _check(sent, verdicts):
    """Every message's outcome is the planned one; else a reason."""
    for qid, (dom, rcpt, verdict, sec, status, rt, would) in sent.items():
        if qid not in verdicts:
            return f"{rcpt} ({qid}): no outcome"
        ev, att = verdicts[qid]
        if ev["type"] != verdict or att.get("security") != sec or \
                ev.get("status") != status:
            return (f"{rcpt}: {ev['type']} security={att.get('security')} "
                    f"status={ev.get('status')}, planned {verdict} "
                    f"security={sec} status={status}: {att.get('text')}")
        if rt is not None and ev.get("result_type") != rt:
            return f"{rcpt}: result_type {ev.get('result_type')} not {rt}"
        if would is not None and would not in att.get("would_fail", ""):
            return f"{rcpt}: would_fail {att.get('would_fail')!r}"
    return None


def populated(binary, world, extra="", timeout=90):
    """(relay, expected): a started Relay (relay.admin_port,
    relay.admin_url) whose queue holds PLAN's outcomes, and
    expected_counts(). Raises RuntimeError when the world does not give
    the planned outcomes (the caller's tests then FAIL)."""
    port = free_port()
    relay = Relay(binary, world, CONFIG.format(port=port) + "\n" + extra,
                  name="console")
    relay.admin_port = port
    relay.admin_url = f"http://127.0.0.1:{port}"
    relay.start()
    try:
        # Mail sent before the resolver validates would wait for a retry.
        if not wait_until(lambda: log_has(relay, "self-test passed"), 30):
            raise RuntimeError("DNSSEC self-test did not pass: " +
                               relay.tail())
        sent = {}
        for dom, n, verdict, sec, status, rt, would in PLAN:
            for i in range(n):
                rcpt = f"user{i + 1}@{dom}"
                code, qid, msgid = relay.submit(
                    SENDER, [rcpt], subject=f"console {dom} {i + 1}")
                if code != 250:
                    raise RuntimeError(f"{rcpt}: submission got {code}")
                sent[qid] = (dom, rcpt, verdict, sec, status, rt, would)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = _verdicts(relay, sent)
            if len(v) == len(sent):
                break
            time.sleep(0.5)
        why = _check(sent, _verdicts(relay, sent))
        if why is not None:
            raise RuntimeError("console world: " + why)
        relay.sent = sent
        return relay, expected_counts()
    except Exception:
        relay.stop()
        raise
