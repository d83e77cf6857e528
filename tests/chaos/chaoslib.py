"""The chaos harness: load, faults, and counts taken at the receivers.

Not a test itself (scripts/test runs tests/chaos/chaos_*.py; this module
is imported by them). docs/RELIABILITY.md says what each scenario proves.

The parts:
- Ledger: what the harness did. Every message it tried to submit, with a
  unique Message-ID (<N.TAG@chaos.test>, TAG names the scenario and run),
  the reply it got (250 = accepted), and every fault it caused, with the
  Unix times just before and just after (a kill -9 is "done" once wait()
  returned: the process is gone).
- Load: smtplib clients in threads submitting through `danerelay serve`.
  A client that gets no final reply (connection refused or cut) records
  that and does not retry: a message is "accepted" only on 250.
- Receivers: what arrived. tests/world/receivers.py stores each message
  with its Message-ID, the time it read the final dot (t_dot), the
  connection (conn) and whether it then reset the connection instead of
  replying; run/receivers.sessions.jsonl says when each connection got a
  QUIT and when and how it ended.
- judge(): the figures and the duplicates that no fault explains.

How a duplicate is judged (RFC 5321 §6.1: a message may be delivered
twice only when the connection was lost after the final dot was sent and
before the reply was recorded). Copies of one Message-ID are ordered by
t_dot; copy k+1 is "inside the window" when copy k's transaction had
such a loss that the harness caused and can name:
- reset: the receiver reset the connection after reading copy k's final
  dot and sent no reply (it knows: "reset": true in copy k's record);
- kill: the harness killed the relay (kill -9), the kill was over before
  copy k+1's final dot, and copy k's connection ended within
  COMMIT_BOUND seconds of the kill: at most that long before it began
  (the time a relay may take, after its last reply on a connection, to
  record the outcomes: danerelay commits them when the job ends, right
  after QUIT when the connection is not kept for reuse), or at most that
  long after it ended (a loaded receiver reads the end of a killed
  connection late; for the same reason the final dot may be read after
  the kill although the relay sent it before). A copy whose connection
  ended long before the kill had its outcome recorded, and is not
  excused;
- unwritable: (disk full) copy k's final dot came while the harness kept
  the queue's disk full, and copy k+1's after it freed space: one more
  copy per message at most, made once the outcome could be written.
Every other duplicate counts in dup_outside_window, and the scenario fails.
"""
import contextlib
import glob
import itertools
import json
import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from worldlib import Relay, wait_until  # noqa: E402,F401
import world as worldmod  # noqa: E402

# Domains of the world that deliver under DANE to one well-behaved host.
DESTS = ["ee-311.test", "ee-301.test", "ee-312.test", "ee-310.test",
         "single-tlsa.test", "dane-ta-211.test", "nsec3-tlsa.test",
         "wildcard-tlsa.test"]
SENDER = "chaos@ee-311.test"
COMMIT_BOUND = 5.0
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
             "runtime error:")


def now():
    return time.time()


# ---------------------------------------------------------------- ledger

class Ledger:
    """What the harness sent and which faults it caused, with times."""

    def __init__(self, name):
        self.name = name
        self.tag = "%s.%s" % (name, os.urandom(4).hex())
        self.lock = threading.Lock()
        self.seq = itertools.count(1)
        self.sent = {}          # Message-ID -> record
        self.faults = []        # {"kind", "t0", "t1", ...}

    def new_msgid(self):
        return "<%d.%s@chaos.test>" % (next(self.seq), self.tag)

    @contextlib.contextmanager
    def fault(self, kind, **info):
        rec = dict(info, kind=kind, t0=now(), t1=None)
        try:
            yield rec
        finally:
            rec["t1"] = now()
            with self.lock:
                self.faults.append(rec)

    def count(self, kind):
        return sum(1 for f in self.faults if f["kind"] == kind)

    def accepted(self):
        with self.lock:
            return {m for m, r in self.sent.items() if r["code"] == 250}


def message(ledger, msgid, rcpt, size):
    head = ["From: <%s>" % SENDER, "To: <%s>" % rcpt,
            "Subject: chaos %s" % ledger.name, "Message-ID: %s" % msgid,
            "X-Chaos: %s" % ledger.tag]
    line = "chaos " * 12 + "\r\n"
    body = line * max(1, size // len(line))
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def send_one(ledger, port, rcpt, size=0, timeout=30):
    """One message through the relay at port; returns its record."""
    msgid = ledger.new_msgid()
    rec = {"rcpt": rcpt, "port": port, "t0": now(), "t1": None,
           "code": None, "stage": None, "text": ""}
    with ledger.lock:
        ledger.sent[msgid] = rec
    s = None
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
        s.ehlo("chaos.test")
        rec["stage"] = "mail"
        code, text = s.mail(SENDER)
        if code == 250:
            rec["stage"] = "rcpt"
            code, text = s.rcpt(rcpt)
        if rec["stage"] == "rcpt" and code in (250, 251):
            rec["stage"] = "data"
            code, text = s.data(message(ledger, msgid, rcpt, size))
        # "code" is the final reply to DATA, or the refusal before it.
        if rec["stage"] == "data" or code >= 400:
            rec["code"] = code
        rec["text"] = text.decode("utf-8", "replace")
    except smtplib.SMTPDataError as e:
        rec["code"], rec["text"] = e.smtp_code, str(e.smtp_error)
    except (OSError, smtplib.SMTPException) as e:
        rec["error"] = type(e).__name__
    finally:
        rec["t1"] = now()
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass
    return rec


class Load:
    """threads smtplib clients, each submitting one message per connection
    until stopped (or until limit messages in all), to ports() in turn."""

    def __init__(self, ledger, ports, rcpts, threads=4, size=0, pause=0.0,
                 limit=None):
        self.ledger, self.rcpts, self.size = ledger, list(rcpts), size
        self.ports = ports if callable(ports) else (lambda: ports)
        self.pause, self.limit = pause, limit
        self.stop_ev = threading.Event()
        self.n = itertools.count()
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(threads)]

    def run(self):
        while not self.stop_ev.is_set():
            ports = self.ports()
            if not ports:
                time.sleep(0.05)
                continue
            i = next(self.n)
            if self.limit is not None and i >= self.limit:
                return
            rec = send_one(self.ledger, ports[i % len(ports)],
                           self.rcpts[i % len(self.rcpts)], self.size)
            if rec["code"] is None:
                time.sleep(0.05)        # the relay is down: try again soon
            elif self.pause:
                time.sleep(self.pause)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=60):
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))


# ---------------------------------------------------------------- receivers

class Receivers:
    """The world's receivers, read from their files (cached by path)."""

    def __init__(self, world):
        self.world = world
        self.meta = {}

    def copies(self, tag):
        """{Message-ID: [copy records, oldest final dot first]} of tag."""
        for path in glob.glob(os.path.join(self.world, "mail", "*",
                                           "*.json")):
            if path not in self.meta:
                try:
                    with open(path) as f:
                        self.meta[path] = json.load(f)
                except (OSError, ValueError):
                    continue
        out = {}
        for path, m in self.meta.items():
            mid = m.get("message_id") or ""
            if tag in mid:
                out.setdefault(mid, []).append(m)
        for lst in out.values():
            lst.sort(key=lambda m: m.get("t_dot") or 0)
        return out

    def sessions(self):
        """(quit times by conn, (end time, how) by conn, reset records)."""
        quits, ends, resets = {}, {}, []
        path = os.path.join(self.world, "run", "receivers.sessions.jsonl")
        try:
            lines = open(path).read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("event") == "quit":
                quits[r["conn"]] = r["t"]
            elif r.get("event") == "end":
                ends[r["conn"]] = (r["t"], r.get("how"))
            elif r.get("event") == "reset":
                resets.append(r)
        return quits, ends, resets

    def resets(self, tag):
        return [r for r in self.sessions()[2]
                if tag in (r.get("message_id") or "")]


def explain(prev, nxt, faults, ends, per_msg):
    """Why copy nxt of a message was allowed, or None (docstring above)."""
    if prev.get("reset"):
        return "reset"
    end = ends.get(prev.get("conn"))
    for f in faults:
        if f["kind"] == "kill9" and f["t1"] <= nxt["t_dot"] and \
                end is not None and \
                f["t0"] - COMMIT_BOUND <= end[0] <= f["t1"] + COMMIT_BOUND:
            return "kill"
        if f["kind"] == "unwritable" and f["t0"] <= prev["t_dot"] <= \
                f["t1"] <= nxt["t_dot"] and per_msg["unwritable"] == 0:
            per_msg["unwritable"] += 1
            return "unwritable"
    return None


def judge(ledger, receivers, relay_dirs=()):
    """The figures (dict) and the unexplained duplicates (list)."""
    copies = receivers.copies(ledger.tag)
    _, ends, _ = receivers.sessions()
    accepted = ledger.accepted()
    with ledger.lock:
        sent = dict(ledger.sent)
    fig = {"accepted": len(accepted),
           "delivered": sum(1 for m in accepted if copies.get(m)),
           "duplicated": 0,
           "lost": sum(1 for m in accepted if not copies.get(m)),
           "dup_outside_window": 0}
    fig["submitted"] = len(sent)
    fig["refused"] = sum(1 for r in sent.values() if r["code"] is not None
                         and r["code"] != 250)
    # cut: the connection went during DATA, no final reply (the client's
    # own §6.1 window); down: no session at all (the relay was down).
    fig["cut"] = sum(1 for r in sent.values() if r["code"] is None
                     and r["stage"] == "data")
    fig["down"] = sum(1 for r in sent.values() if r["code"] is None
                      and r["stage"] != "data")
    fig["unacked_delivered"] = sum(1 for m, r in sent.items()
                                   if r["code"] != 250 and copies.get(m))
    why = {"reset": 0, "kill": 0, "unwritable": 0}
    bad = []
    for mid, lst in copies.items():
        per_msg = {"unwritable": 0}
        for prev, nxt in zip(lst, lst[1:]):
            fig["duplicated"] += 1
            reason = explain(prev, nxt, ledger.faults, ends, per_msg)
            if reason is None:
                fig["dup_outside_window"] += 1
                bad.append("%s copy at %.3f (previous at %.3f, conn %s)" % (
                    mid, nxt["t_dot"], prev["t_dot"], prev.get("conn")))
            else:
                why[reason] += 1
    for k, v in why.items():
        if v:
            fig["dup_" + k] = v
    fig["faults"] = len(ledger.faults)
    for d in relay_dirs:
        fig.update(relay_records(d, ledger.tag))
    return fig, bad


def relay_records(queue_dir, tag):
    """From the relay's own queue (read-only): messages of tag recorded as
    delivered more than once: the relay knew and sent again."""
    db = os.path.join(queue_dir, "queue.db")
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        rows = con.execute(
            "SELECT m.id, (SELECT count(*) FROM events e WHERE e.msgid = m.id"
            " AND e.type = 'delivered') FROM messages m"
            " WHERE m.message_id LIKE ?", ("%" + tag + "%",)).fetchall()
        con.close()
    except sqlite3.Error as e:
        return {"db_error": str(e).replace(" ", "_")}
    return {"recorded_twice": sum(1 for _, n in rows if n > 1)}


def wait_delivered(ledger, receivers, timeout):
    """Until every accepted message arrived at least once (or timeout)."""
    def done():
        c = receivers.copies(ledger.tag)
        return all(c.get(m) for m in ledger.accepted())
    return wait_until(done, timeout, step=0.5)


def figures_line(name, fig):
    keys = ["accepted", "delivered", "duplicated", "lost",
            "dup_outside_window"]
    rest = sorted(k for k in fig if k not in keys)
    return "chaos.%s %s" % (name, " ".join(
        "%s=%s" % (k, fig[k]) for k in keys + rest))


def verdict(name, fig, problems, bad=()):
    """Print the figures, then PASS or FAIL with every problem found."""
    problems = list(problems)
    if fig.get("accepted", 0) == 0:
        problems.append("no message was accepted: the load never ran")
    if fig.get("lost"):
        problems.append("%d accepted messages never arrived" % fig["lost"])
    if fig.get("dup_outside_window"):
        problems.append("%d duplicates outside the RFC 5321 §6.1 window "
                        "(first: %s)" % (fig["dup_outside_window"],
                                          bad[0] if bad else "?"))
    if fig.get("recorded_twice"):
        problems.append("%d messages recorded as delivered twice by the "
                        "relay" % fig["recorded_twice"])
    print(figures_line(name, fig), flush=True)
    for b in list(bad)[:5]:
        print("  unexplained duplicate: " + b, flush=True)
    if problems:
        print("FAIL chaos.%s: %s" % (name, "; ".join(problems)), flush=True)
        return 1
    print("PASS chaos.%s" % name, flush=True)
    return 0


def sanitizer_report(relay):
    """The first sanitizer complaint in the relay's log, or None."""
    try:
        text = open(relay.log, errors="replace").read()
    except OSError:
        return None
    for word in SANITIZER:
        i = text.find(word)
        if i >= 0:
            return text[i:i + 200].replace("\n", " ")
    return None


# ---------------------------------------------------------------- the relay

class ChaosRelay(Relay):
    """worldlib.Relay that can be started again and again (kill -9 cycles)
    and killed with the time of the kill in the ledger."""

    def start(self, timeout=30):
        if getattr(self, "logf", None) is not None:
            self.logf.close()
        return super().start(timeout)

    def kill9(self, ledger=None):
        if self.proc is None or self.proc.poll() is not None:
            return
        if ledger is None:
            return super().kill9()
        with ledger.fault("kill9", pid=self.proc.pid):
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def queue_dir(self):
        from worldlib import parse_ini
        return parse_ini(open(self.conf).read())["queue"]["directory"]


def common_args(ap):
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    return ap


# ---------------------------------------------------------------- DNS

def world_info(world):
    with open(os.path.join(world, "world.json")) as f:
        return json.load(f)


def dns_answers(world):
    port = world_info(world)["dns_port"]
    return worldmod.dns_rcode("ee-311.test", 6, port) == (0, True)


def nsd_stop(world, timeout=15):
    """Kill the world's NSD (its whole process group) and wait until no
    answer comes; returns True when DNS is down."""
    pidfile = os.path.join(world, "run", "nsd.pid")
    with open(pidfile) as f:
        pid = int(f.read().strip())
    worldmod.stop_group(pid, os.path.abspath(world))
    os.unlink(pidfile)
    return bool(wait_until(lambda: not dns_answers(world), timeout))


def nsd_start(world, timeout=20):
    """Start the world's NSD again with its config (pid in run/nsd.pid, so
    `world.py down` stops it); returns True once it answers."""
    world = os.path.abspath(world)
    conf = os.path.join(world, "nsd", "nsd.conf")
    worldmod.spawn("nsd", ["nsd", "-d", "-c", conf], world)
    return bool(wait_until(lambda: dns_answers(world), timeout))


def ensure_dns(world):
    """Leave the world as found: NSD up."""
    if not dns_answers(world):
        nsd_start(world)


# ---------------------------------------------------------------- misc

def cli_ok(relay, *args):
    """Run a danerelay command beside the relay: (ok, what)."""
    try:
        rc, out, err = relay.cli(*args, timeout=60)
    except subprocess.TimeoutExpired:
        return False, "%s timed out" % " ".join(args)
    return rc in (0, 1), "%s exit %d %s" % (" ".join(args), rc,
                                            err.strip()[:120])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_mentions(relay, words):
    """A line of the relay's log (case-insensitive) with one of words."""
    try:
        text = open(relay.log, errors="replace").read().lower()
    except OSError:
        return False
    return any(w.lower() in text for w in words)


def guard(name, main):
    """Run a scenario's main; a crash of the harness itself is a FAIL with
    the reason, never a silent exit."""
    # timeout(1) sends SIGTERM: unwind, so that the finally blocks bring
    # NSD back, stop the relays and unmount what was mounted.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        return main()
    except Exception as e:          # noqa: BLE001 - reported, then fail
        import traceback
        traceback.print_exc()
        print("FAIL chaos.%s: the harness crashed: %s: %s" % (
            name, type(e).__name__, e), flush=True)
        return 1


def stuck(relay):
    """What the relay's queue says about mail still in it: a problem text
    (the commonest last result), or None when nothing is queued."""
    try:
        q = relay.queue()
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return "the queue cannot be read"
    if not q:
        return None
    seen = {}
    for e in q:
        k = "%s %s" % (e.get("last_status") or "never tried",
                       (e.get("last_text") or "").strip()[:90])
        seen[k] = seen.get(k, 0) + 1
    top = max(seen, key=seen.get)
    return "%d still queued, e.g. %d with: %s" % (len(q), seen[top], top)


class Scenario:
    """One scenario's run: its ledger, the receivers, its relays, the
    problems found and the figures. run() prints the verdict whatever
    happens, stops the relays and gives back the exit status."""

    def __init__(self, name, args):
        self.name, self.args = name, args
        self.ledger = Ledger(name)
        self.recv = Receivers(args.world)
        self.relays, self.problems, self.fig, self.bad = [], [], {}, []

    def relay(self, extra, name):
        r = ChaosRelay(self.args.binary, self.args.world, extra, name=name)
        self.relays.append(r)
        return r

    def problem(self, text):
        self.problems.append(text)

    def drain(self, relay, timeout, settle=2.0, queue_dir=None):
        """Wait for every accepted message (saying what is stuck if one
        never comes), give late duplicates settle seconds, stop the relay
        and count."""
        if not wait_delivered(self.ledger, self.recv, timeout):
            why = stuck(relay)
            if why:
                self.problem(why)
        time.sleep(settle)
        rc = relay.stop()
        if rc != 0:
            self.problem("relay stop exit %s" % rc)
        fig, self.bad = judge(self.ledger, self.recv,
                              [queue_dir or relay.queue_dir()])
        self.fig.update(fig)

    def save(self):
        """The ledger as JSON beside the first relay's files, to read a
        failure again later (ledger.json: sent, faults)."""
        if not self.relays:
            return
        with self.ledger.lock:
            doc = {"tag": self.ledger.tag, "faults": self.ledger.faults,
                   "sent": self.ledger.sent}
        with open(os.path.join(self.relays[0].dir, "ledger.json"), "w") as f:
            json.dump(doc, f, indent=1)

    def run(self, body, cleanup=None):
        try:
            body()
        except RuntimeError as e:
            self.problem(str(e).splitlines()[0] if str(e) else "relay")
            if "accepted" not in self.fig:
                fig, self.bad = judge(self.ledger, self.recv)
                self.fig.update(fig)
        finally:
            for r in self.relays:
                r.stop()
            if cleanup is not None:
                cleanup()
            self.save()
        for r in self.relays:
            san = sanitizer_report(r)
            if san:
                self.problem("sanitizer: " + san)
        return verdict(self.name, self.fig, self.problems, self.bad)
