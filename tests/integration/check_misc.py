#!/usr/bin/python3
"""danerelay check behaviours beyond the verdict table, against the world:
resolver self-test failures, exit codes, JSON shape, --no-connect, --mx,
--port, concurrency of many domains in one run, plain output when piped.

Usage: check_misc.py --binary PATH --world DIR   (prints PASS/FAIL lines)
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ARGS = None


def conf_with(extra_dns=None, drop=()):
    """The world's config with [dns] keys replaced; returns a file path."""
    lines = open(os.path.join(ARGS.world, "danerelay.conf")).read().splitlines()
    out, section = [], ""
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            section = s
        key = s.split("=")[0].strip() if "=" in s else None
        if section == "[dns]" and key and (key in (extra_dns or {}) or key in drop):
            continue
        out.append(line)
        if s == "[dns]":
            for k, v in (extra_dns or {}).items():
                out.append(f"{k} = {v}")
    fd, path = tempfile.mkstemp(suffix=".conf")
    os.write(fd, ("\n".join(out) + "\n").encode())
    os.close(fd)
    return path


def run(args, conf=None, timeout=90):
    conf = conf or os.path.join(ARGS.world, "danerelay.conf")
    t0 = time.monotonic()
    p = subprocess.run([ARGS.binary, "-c", conf] + args, capture_output=True,
                       timeout=timeout, text=True)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def report(name, ok, why=""):
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)


def stub_dns_server(stop):
    """An 'upstream' that answers without any RRSIG: every query gets
    NOERROR; DNSKEY queries get one unsigned DNSKEY record."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.53.0.98", 0))
    sock.settimeout(0.2)

    def loop():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) < 12:
                continue
            qid = data[:2]
            end = 12
            while end < len(data) and data[end] != 0:
                end += data[end] + 1
            question = data[12:end + 5]
            qtype = struct.unpack("!H", data[end + 1:end + 3])[0] if end + 3 <= len(data) else 0
            answers = b""
            ancount = 0
            if qtype == 48:
                rdata = struct.pack("!HBB", 257, 3, 13) + bytes(range(64))
                answers = b"\xc0\x0c" + struct.pack("!HHIH", 48, 1, 3600, len(rdata)) + rdata
                ancount = 1
            hdr = qid + struct.pack("!HHHHH", 0x8400, 1, ancount, 0, 0)
            sock.sendto(hdr + question + answers, peer)
        sock.close()

    threading.Thread(target=loop, daemon=True).start()
    return sock.getsockname()[1]


def test_selftest():
    bad_anchor = tempfile.NamedTemporaryFile("w", suffix=".ds", delete=False)
    bad_anchor.write(". IN DS 12345 13 2 " + "ab" * 32 + "\n")
    bad_anchor.close()
    conf = conf_with({"trust_anchor_file": bad_anchor.name, "timeout": "5s"})
    rc, out, err, _ = run(["check", "ee-311.test"], conf)
    report("selftest-wrong-anchor", rc == 2 and "SELF-TEST FAILED" in err,
           f"rc={rc} err={err[:200]}")

    conf = conf_with({"root_servers": "127.53.0.99@1", "timeout": "3s"})
    rc, out, err, el = run(["check", "ee-311.test"], conf)
    report("selftest-no-server", rc == 2 and "SELF-TEST FAILED" in err and el < 30,
           f"rc={rc} {el:.1f}s err={err[:200]}")

    stop = threading.Event()
    port = stub_dns_server(stop)
    conf = conf_with({"root_servers": f"127.53.0.98@{port}", "timeout": "5s"})
    rc, out, err, _ = run(["check", "ee-311.test"], conf)
    stop.set()
    report("selftest-stripped-rrsig", rc == 2 and "SELF-TEST FAILED" in err,
           f"rc={rc} err={err[:200]}")

    conf = conf_with({"trust_anchor_file": "/nonexistent/root.ds"})
    rc, out, err, _ = run(["check", "ee-311.test"], conf)
    report("resolver-missing-anchor-file", rc == 2 and "root.ds" in err,
           f"rc={rc} err={err[:200]}")


def test_exit_codes_and_output():
    for dom, want in (("ee-311.test", 0), ("no-tlsa.test", 0),
                      ("ee-wrong-digest.test", 1), ("null-mx.test", 1)):
        rc, out, err, _ = run(["check", dom])
        report(f"exit-{dom}", rc == want, f"rc={rc} want {want} err={err[:200]}")
    rc, out, err, _ = run(["check", "ee-311.test"])
    first = out.splitlines()[0] if out else ""
    report("text-first-line-is-verdict",
           first.startswith("ee-311.test: verified (2.0.0)"), first)
    report("text-no-colour-when-piped", "\033[" not in out, repr(out[:80]))
    rc, out, err, _ = run(["check", "dane-ta-wrong-name.test"])
    report("text-failure-says-who-fixes",
           "fix: the MX operator" in out and "4.7.325" in out, out[:300])


def test_json_shapes():
    rc, out, err, _ = run(["check", "--json", "ee-311.test", "null-mx.test",
                           "unsigned.test"])
    try:
        docs = json.loads(out)
    except ValueError as e:
        report("json-many-is-array", False, str(e))
        return
    report("json-many-is-array", isinstance(docs, list) and
           [d["domain"] for d in docs] == ["ee-311.test", "null-mx.test", "unsigned.test"],
           out[:200])
    keys = {"domain", "verdict", "status", "result_type", "deliver_to", "mx",
            "warnings", "resolver"}
    report("json-top-level-keys", all(keys <= set(d) for d in docs),
           str([sorted(d) for d in docs])[:300])
    d = docs[0]
    conn = d["mx"][0]["connections"][0] if d["mx"] and d["mx"][0]["connections"] else {}
    ok = (d["mx"][0]["tlsa_base"] == "mx.ee-311.test" and conn.get("tls") and
          conn.get("matched", {}).get("usage") == 3 and conn.get("chain") and
          len(conn["chain"][0]["spki_sha256"]) == 64 and
          conn.get("sni") == "mx.ee-311.test")
    report("json-connection-facts", bool(ok), json.dumps(conn)[:300])


def test_no_connect_mx_port():
    rc, out, err, _ = run(["check", "--json", "--no-connect", "ee-311.test",
                           "pkix-only.test", "no-starttls.test", "insecure-mx-good.test"])
    docs = json.loads(out)
    got = [(d["verdict"], all(not h["connections"] for h in d["mx"])) for d in docs]
    report("no-connect-predicts-from-dns",
           got == [("verified", True), ("encrypted", True), ("verified", True),
                   ("trusted", True)], str(got))
    rc, out, err, _ = run(["check", "--json", "--mx", "mx.ee-311.test", "ee-311.test"])
    d = json.loads(out)
    report("mx-option-tests-one-host",
           d["verdict"] == "verified" and d["deliver_to"] == "mx.ee-311.test" and
           d["next_hop"] is None and len(d["mx"]) == 1, out[:300])
    rc, out, err, _ = run(["check", "--json", "--port", "1", "ee-311.test"])
    d = json.loads(out)
    h = d["mx"][0]
    report("port-option-changes-tlsa-name",
           h["tlsa_candidates"][0]["answer"]["name"] == "_1._tcp.mx.ee-311.test" and
           h["policy"] == "opportunistic" and d["status"] == "4.4.1", out[:300])


def test_concurrency():
    scen = json.load(open(os.path.join(os.path.dirname(__file__), "..", "world",
                                       "scenarios.json")))
    slow = [s["domain"] for s in scen if s["name"] in
            ("stall", "endless-banner", "banner-no-crlf")]
    rc, out, err, el = run(["check", "--json"] + slow)
    docs = json.loads(out)
    # Each alone waits out a 5 s deadline; together on one loop they must
    # not add up.
    report("many-domains-run-concurrently",
           len(docs) == len(slow) and el < 4.5 * len(slow) and
           all(d["verdict"] == "defer" for d in docs), f"{el:.1f}s")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ARGS = ap.parse_args()
    test_selftest()
    test_exit_codes_and_output()
    test_json_shapes()
    test_no_connect_mx_port()
    test_concurrency()
    return 0


if __name__ == "__main__":
    sys.exit(main())
