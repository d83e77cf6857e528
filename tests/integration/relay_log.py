#!/usr/bin/python3
"""Where `danerelay serve` writes its log, and in what form ([log]):
- stderr redirected to a file: every line "ISO-8601-UTC-ms danerelay[PID]:
  LEVEL: TEXT", the PID that of the relay, the level a word;
- format = json: every line one JSON object with ts, level, pid, msg, and
  the reception and delivery lines carry their values as fields (queue_id,
  to, relay, tls, security, dsn, status, ...);
- under systemd (JOURNAL_STREAM naming stderr's device and inode): the
  sd-daemon "<N>" priority prefix, no timestamp; a JOURNAL_STREAM that
  names another file is ignored;
- target = syslog: datagrams "<PRI>Mmm dd hh:mm:ss danerelay[PID]: TEXT"
  with the facility and severity, to [log] syslog_socket (a socket this
  test binds); stderr stays empty; a syslog that does not answer costs
  nothing: the lines go to stderr;
- target = auto with stderr on /dev/null, or closed: syslog (and a closed
  stderr is held by /dev/null, so no database gets descriptor 2);
- level = warning drops info lines; SIGHUP switches text to json.

Usage: relay_log.py --binary PATH --world DIR
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from worldlib import Relay, rewrite_config, wait_until, world_mail  # noqa: E402
from worldlib import report as _report  # noqa: E402

SENDER = "postmaster@ee-311.test"
RCPT = "u1@ee-311.test"                 # a DANE-EE host of the world
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
                   r"danerelay\[(\d+)\]: (info|warning|debug|trace|fatal): ")
FAILED, DIRS, RELAYS = [], [], []


def report(name, ok, why=""):
    if not ok:
        FAILED.append(name)
    _report(name, bool(ok), why)


def start(args, extra, name):
    relay = Relay(args.binary, args.world, extra, name=name)
    DIRS.append(relay.dir)
    RELAYS.append(relay)
    return relay.start()


def listening(relay):
    if relay.proc.poll() is not None:
        raise RuntimeError("relay exited: " + relay.tail())
    try:
        with socket.create_connection(("127.0.0.1", relay.port), 0.5):
            return True
    except OSError:
        return False


def lines(relay):
    try:
        return open(relay.log, errors="replace").read().splitlines()
    except OSError:
        return []


def wait_running(relay):
    """Until the event loop runs (signals are handled from then on)."""
    return wait_until(lambda: any("self-test passed" in ln
                                  for ln in lines(relay)), 20)


def deliver_one(args, relay, subject):
    """Submit one message to the DANE-EE host; (qid, arrived)."""
    code, qid, msgid = relay.submit(SENDER, [RCPT], subject=subject)
    got = wait_until(lambda: world_mail(args.world, msgid), 30)
    return qid if code == 250 else None, bool(got)


# --- stderr to a file: timestamp, PID, level ----------------------------

def test_stderr(args):
    relay = start(args, "", "log-stderr")
    try:
        qid, arrived = deliver_one(args, relay, "log stderr")
        wait_until(lambda: any("status=sent" in ln for ln in lines(relay)),
                   20)
        ls = lines(relay)
        bad = [ln for ln in ls if not STAMP.match(ln)]
        pids = {STAMP.match(ln).group(2) for ln in ls if STAMP.match(ln)}
        report("stderr.every-line-stamped", ls and not bad,
               f"{len(bad)} of {len(ls)} lines without the stamp: {bad[:3]}")
        report("stderr.pid-is-the-relay", pids == {str(relay.proc.pid)},
               f"pids {pids}, relay {relay.proc.pid}")
        when = [STAMP.match(ln).group(1) for ln in ls if STAMP.match(ln)]
        now = time.time()
        ok = bool(when) and all(
            abs(time.mktime(time.strptime(w[:19], "%Y-%m-%dT%H:%M:%S")) -
                time.timezone - now) < 120 for w in when)
        report("stderr.timestamp-is-utc-now", ok, f"{when[:2]} now={now}")
        started = [ln for ln in ls if "started:" in ln]
        report("stderr.start-line-names-target",
               started and ": info: started:" in started[0] and
               "log stderr (text)" in started[0], f"{started}")
        sent = [ln for ln in ls if qid and qid in ln and "status=sent" in ln]
        report("stderr.delivery-line-kept", arrived and len(sent) == 1 and
               f"to=<{RCPT}>" in sent[0] and "tls=verified" in sent[0],
               f"{sent} arrived={arrived}")
    finally:
        relay.stop()


# --- format = json ---------------------------------------------------

def test_json(args):
    relay = start(args, "[log]\nformat = json\n", "log-json")
    try:
        qid, arrived = deliver_one(args, relay, "log json")
        wait_until(lambda: any('"status":"sent"' in ln
                               for ln in lines(relay)), 20)
        docs, bad = [], []
        for ln in lines(relay):
            try:
                docs.append(json.loads(ln))
            except ValueError:
                bad.append(ln)
        report("json.every-line-parses", docs and not bad,
               f"{len(bad)} lines are not JSON: {bad[:2]}")
        keys_ok = all({"ts", "level", "pid", "msg"} <= d.keys() and
                      d["pid"] == relay.proc.pid and
                      re.match(r"^\d{4}-\d\d-\d\dT[\d:]{8}\.\d{3}Z$", d["ts"])
                      for d in docs)
        report("json.ts-level-pid-msg", keys_ok, f"{docs[:2]}")
        got = [d for d in docs if d.get("queue_id") == qid and
               d.get("status") == "sent"]
        d = got[0] if got else {}
        report("json.delivery-fields",
               arrived and len(got) == 1 and d.get("to") == RCPT and
               d.get("tls") == "verified" and d.get("security") == "dane" and
               d.get("dsn") == "2.0.0" and d.get("level") == "info" and
               d.get("attempts") == 1 and isinstance(d.get("delay"), int) and
               "mx.ee-311.test[" in d.get("relay", "") and
               d.get("tlsa", "").startswith("3-1-1") and
               d.get("result") == "-" and
               d.get("msg", "").startswith(f"{qid}: to=<{RCPT}>"),
               f"{got} arrived={arrived}")
        q = [d for d in docs if d.get("queue_id") == qid and
             d.get("status") == "queued"]
        report("json.reception-fields",
               len(q) == 1 and q[0].get("from") == SENDER and
               q[0].get("nrcpt") == 1 and q[0].get("size", 0) > 0 and
               "127.0.0.1" in q[0].get("client", ""),
               f"{q}")
    finally:
        relay.stop()


# --- systemd's journal stream ----------------------------------------

def test_journal(args):
    relay = Relay(args.binary, args.world, "", name="log-journal")
    DIRS.append(relay.dir)
    open(relay.log, "w").close()
    st = os.stat(relay.log)
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    RELAYS.append(relay)
    relay = start_prepared(relay, env)
    try:
        wait_running(relay)
        # A restart-only key changed: the reload names it as a warning.
        rewrite_config(relay, lambda s: s.setdefault("log", {}).update(
            target="stderr"))
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: any("configuration reloaded" in ln
                               for ln in lines(relay)), 20)
        ls = lines(relay)
        info = [ln for ln in ls if "started:" in ln]
        warn = [ln for ln in ls if "[log] target changed" in ln]
        report("journal.info-prefix",
               info and info[0].startswith("<6>started:") and
               "log journal" in info[0], f"{info}")
        report("journal.warning-prefix",
               warn and warn[0].startswith("<4>warning: [log] target"),
               f"{warn}")
        report("journal.every-line-prefixed",
               ls and all(re.match(r"^<[0-7]>", ln) for ln in ls),
               f"{[ln for ln in ls if not re.match(r'^<[0-7]>', ln)][:3]}")
    finally:
        relay.stop()
    # The variable inherited from a service whose stderr was redirected.
    relay = Relay(args.binary, args.world, "", name="log-journal-other")
    DIRS.append(relay.dir)
    RELAYS.append(relay)
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino + 1}")
    relay = start_prepared(relay, env)
    try:
        wait_running(relay)
        ls = lines(relay)
        report("journal.other-stream-ignored",
               ls and STAMP.match(ls[0]) and not ls[0].startswith("<"),
               f"{ls[:2]}")
    finally:
        relay.stop()


def start_prepared(relay, env, stderr=None):
    relay.logf = open(relay.log, "ab")
    relay.proc = subprocess.Popen(
        [relay.binary, "-c", relay.conf, "serve"], stdout=relay.logf,
        stderr=stderr if stderr is not None else relay.logf, env=env)
    if not wait_until(lambda: listening(relay), 20, 0.05):
        raise RuntimeError("relay did not listen: " + relay.tail())
    return relay


# --- syslog ------------------------------------------------------------

class Syslog:
    """A unix datagram socket standing in for the syslog daemon."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got = []

    def drain(self):
        while True:
            try:
                self.got.append(self.sock.recv(65536).decode(
                    errors="replace"))
            except (socket.timeout, BlockingIOError):
                return self.got

    def has(self, word):
        return any(word in g for g in self.drain())

    def close(self):
        self.sock.close()


SYSLOG_RE = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d "
                       r"danerelay\[(\d+)\]: (.*)$", re.S)


def test_syslog(args):
    tmp = tempfile.mkdtemp(prefix="log-syslog.", dir="/tmp")
    DIRS.append(tmp)
    sl = Syslog(tmp)
    extra = (f"[log]\ntarget = syslog\nsyslog_socket = {sl.path}\n"
             f"facility = local3\n")
    relay = start(args, extra, "log-syslog")
    try:
        qid, arrived = deliver_one(args, relay, "log syslog")
        wait_until(lambda: sl.has("status=sent"), 20)
        rewrite_config(relay, lambda s: s["log"].update(facility="mail"))
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: sl.has("configuration reloaded"), 20)
        got = sl.drain()
        parsed = [SYSLOG_RE.match(g) for g in got]
        report("syslog.rfc3164-form", got and all(parsed),
               f"{[g for g, p in zip(got, parsed) if not p][:3]}")
        ok = [p for p in parsed if p]
        pri = {p.group(3).split(":")[0]: int(p.group(1)) for p in ok}
        sent = [p for p in ok if qid and qid in p.group(3) and
                "status=sent" in p.group(3)]
        # local3 = 19: info 19*8+6, warning 19*8+4 (RFC 5424 §6.2.1)
        report("syslog.info-priority",
               arrived and len(sent) == 1 and int(sent[0].group(1)) == 158 and
               int(sent[0].group(2)) == relay.proc.pid,
               f"{[s.group(0) for s in sent]} arrived={arrived}")
        warn = [p for p in ok if "[log] facility changed" in p.group(3)]
        report("syslog.warning-priority",
               warn and int(warn[0].group(1)) == 156 and
               warn[0].group(3).startswith("warning: "),
               f"{[w.group(0) for w in warn]} {pri}")
        report("syslog.stderr-empty", lines(relay) == [],
               f"{lines(relay)[:3]}")
    finally:
        relay.stop()
        sl.close()
    # Nobody listens: the lines are not lost, they go to stderr.
    extra = f"[log]\ntarget = syslog\nsyslog_socket = {tmp}/nobody.sock\n"
    relay = start(args, extra, "log-syslog-absent")
    try:
        wait_running(relay)
        ls = lines(relay)
        report("syslog.absent-falls-back-to-stderr",
               any(STAMP.match(ln) and "log syslog" in ln for ln in ls),
               f"{ls[:3]}")
    finally:
        relay.stop()


def syslog_relay(args, name, preexec=None):
    """A relay whose stderr is /dev/null (or, with preexec, whatever it
    leaves), with target auto and a syslog socket of the test's."""
    tmp = tempfile.mkdtemp(prefix=f"{name}.", dir="/tmp")
    DIRS.append(tmp)
    sl = Syslog(tmp)
    relay = Relay(args.binary, args.world,
                  f"[log]\nsyslog_socket = {sl.path}\n", name=name)
    DIRS.append(relay.dir)
    RELAYS.append(relay)
    relay.logf = open(relay.log, "ab")
    relay.proc = subprocess.Popen(
        [relay.binary, "-c", relay.conf, "serve"], stdout=relay.logf,
        stderr=subprocess.DEVNULL, preexec_fn=preexec)
    if not wait_until(lambda: listening(relay), 20, 0.05):
        raise RuntimeError("relay did not listen: " + relay.tail())
    return relay, sl


def test_auto_devnull(args):
    """stderr on /dev/null: auto picks syslog."""
    relay, sl = syslog_relay(args, "log-auto")
    try:
        wait_until(lambda: sl.has("started:"), 10)
        started = [g for g in sl.drain() if "started:" in g]
        # mail = 2: info 2*8+6
        report("auto.devnull-goes-to-syslog",
               started and started[0].startswith("<22>") and
               "log syslog" in started[0], f"{sl.got[:2]}")
    finally:
        relay.stop()
        sl.close()


def test_closed_stderr(args):
    """Started with stderr closed: syslog, and fd 2 is held by /dev/null
    (never the queue database: mail still flows)."""
    relay, sl = syslog_relay(args, "log-closed",
                             preexec=lambda: os.close(2))
    try:
        qid, arrived = deliver_one(args, relay, "log closed stderr")
        wait_until(lambda: sl.has("status=sent"), 20)
        started = [g for g in sl.got if "started:" in g]
        fd2 = os.readlink(f"/proc/{relay.proc.pid}/fd/2")
        report("auto.closed-stderr-goes-to-syslog",
               started and "log syslog" in started[0] and arrived and
               any(qid in g and "status=sent" in g for g in sl.got) and
               fd2 == "/dev/null" and lines(relay) == [],
               f"fd2={fd2} arrived={arrived} {sl.got[:2]} "
               f"{lines(relay)[:2]}")
    finally:
        relay.stop()
        sl.close()


# --- level and reload ----------------------------------------------------

def test_level_reload(args):
    relay = start(args, "[log]\nlevel = warning\n", "log-level")
    try:
        qid, arrived = deliver_one(args, relay, "log level")
        time.sleep(0.5)
        ls = lines(relay)
        report("level.warning-drops-info",
               arrived and not any("status=sent" in ln or "started:" in ln
                                   for ln in ls), f"{ls[:3]}")
        rewrite_config(relay, lambda s: s["log"].update(level="info",
                                                 format="json"))
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: any("configuration reloaded" in ln
                               for ln in lines(relay)), 20)
        tail = [ln for ln in lines(relay) if "configuration reloaded" in ln]
        doc = {}
        try:
            doc = json.loads(tail[0]) if tail else {}
        except ValueError:
            pass
        report("level.sighup-applies-level-and-format",
               doc.get("msg") == "configuration reloaded" and
               doc.get("level") == "info", f"{tail}")
    finally:
        relay.stop()


def test_check_config(args):
    relay = Relay(args.binary, args.world,
                  "[log]\nformat = json\n", name="log-cc")
    DIRS.append(relay.dir)
    rc, out, err = relay.cli("check-config")
    report("check-config.prints-log-section",
           rc == 0 and "[log]" in out and "format = json" in out and
           "# target = auto" in out and "# syslog_socket = /dev/log" in out,
           f"rc={rc} {err[-300:]}")
    bad = Relay(args.binary, args.world, "[log]\ntarget = file\n",
                name="log-cc-bad")
    DIRS.append(bad.dir)
    rc, out, err = bad.cli("check-config")
    report("check-config.refuses-unknown-target",
           rc == 78 and "target" in err and "auto, stderr, syslog" in err,
           f"rc={rc} {err[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    t0 = time.monotonic()
    for name, fn in (("stderr", test_stderr), ("json", test_json),
                     ("journal", test_journal), ("syslog", test_syslog),
                     ("auto", test_auto_devnull),
                     ("closed", test_closed_stderr),
                     ("level", test_level_reload),
                     ("check-config", test_check_config)):
        try:
            fn(args)
        except Exception as e:          # one broken case must not hide the rest
            report(f"{name}.ran", False, f"{type(e).__name__}: {e}")
    for r in RELAYS:
        r.stop()
    if FAILED:
        print(f"relay_log: kept for inspection: {' '.join(DIRS)}", flush=True)
    else:
        for d in DIRS:
            shutil.rmtree(d, ignore_errors=True)
    print(f"relay_log: {time.monotonic() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
