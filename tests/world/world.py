#!/usr/bin/python3
"""The local test world of danerelay: a private DNSSEC tree served by NSD, a
set of SMTP receivers and the HTTPS hosts of MTA-STS policies, all on
127.0.0.0/8 high ports, built from scenarios.json.

  /usr/bin/python3 tests/world/world.py up DIR [--dns-port 15353] [--smtp-port 12525] [--https-port PORT]
  /usr/bin/python3 tests/world/world.py down DIR

The HTTPS port defaults to the SMTP port + 1918 (12525 -> 14443), so
worlds started with distinct SMTP ports get distinct HTTPS ports too.

See docs/TEST-WORLD.md.
"""

import argparse
import contextlib
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dnszones  # noqa: E402
from dnszones import NS_ADDR, NS_NAME, WorldError, Zone, absolute  # noqa: E402
from pki import Pki, association  # noqa: E402

SCENARIOS = os.path.join(HERE, "scenarios.json")
READY_TIMEOUT = 10.0
# The fixed top of the tree.  The root and test. have split KSK/ZSK; the
# second TLD example. uses algorithm 8 (RSASHA256).
STATIC_ZONES = {
    ".": {"split_keys": True, "records": ["%s A %s" % (NS_NAME, NS_ADDR)]},
    "test": {"split_keys": True, "records": ["ns A %s" % NS_ADDR]},
    "example": {"alg": 8, "split_keys": True, "records": []},
}
PLACEHOLDER = re.compile(r"\{(\w+)(?::([^}]*))?\}")
HTTPS_PORT_OFFSET = 1918
# What an "https" entry of a scenario may say (see httpsd.py, TEST-WORLD.md).
HTTPS_KEYS = {"policy", "status", "content_type", "redirect", "body_size",
              "framing", "stall", "cert", "refuse", "collector"}
HTTPS_FRAMING = {"length", "chunked", "close"}
HTTPS_STALL = {"accept", "request", "body"}


def load_scenarios(path=SCENARIOS):
    with open(path) as f:
        scenarios = json.load(f)
    names = [s["name"] for s in scenarios]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise WorldError("duplicate scenario names: %s" % sorted(dup))
    return scenarios


# ---------------------------------------------------------------- planning

class Plan:
    """Hosts with their addresses, and zones with placeholders expanded."""

    def __init__(self, scenarios, smtp_port, pki, https_port=None):
        self.smtp_port = smtp_port
        self.https_port = https_port
        self.pki = pki
        self.hosts = {}
        self.https = {}
        for s in scenarios:
            for name, spec in s.get("hosts", {}).items():
                self._add_host(s["name"], name, spec)
            for name, spec in s.get("https", {}).items():
                self._add_https(s["name"], name, spec)
        self.zones = [self._zone(n, spec) for n, spec in self._zone_specs(scenarios)]
        dnszones.link_parents(self.zones)

    def _add_host(self, scenario, name, spec):
        if name in self.hosts:
            raise WorldError("host %s declared twice" % name)
        n = len(self.hosts)
        # 127.10.0.0/16, skipping .0 and .255 octets for the reader's sanity
        ip = "127.10.%d.%d" % (n // 250, n % 250 + 1)
        host = {"name": name, "ip": ip, "scenario": scenario,
                "mode": spec.get("mode", "smtp"),
                "starttls": spec.get("starttls", True)}
        if host["mode"] == "smtp" and host["starttls"] is not False:
            cert = dict(spec.get("cert", {}))
            host["chain"], host["key"], host["chain_len"] = \
                self.pki.issue(name, cert)
            host["leaf_sha256"] = association(self.pki.leaves[name], 0, 1)
            host["cert"] = cert
        self.hosts[name] = host

    def _add_https(self, scenario, name, spec):
        """An HTTPS policy host (mta-sts.DOMAIN) at 127.20.x.y."""
        if name in self.https or name in self.hosts:
            raise WorldError("host %s declared twice" % name)
        bad = set(spec) - HTTPS_KEYS
        if bad or spec.get("framing", "length") not in HTTPS_FRAMING or \
                spec.get("stall", "accept") not in HTTPS_STALL:
            raise WorldError("https %s: bad spec %s" % (name, spec))
        n = len(self.https)
        host = dict(spec, name=name, scenario=scenario,
                    ip="127.20.%d.%d" % (n // 250, n % 250 + 1))
        cert = dict(spec.get("cert", {}))
        host["chain"], host["key"], host["chain_len"] = \
            self.pki.issue(name, cert)
        host["leaf_sha256"] = association(self.pki.leaves[name], 0, 1)
        host["cert"] = cert
        self.https[name] = host

    def address(self, name):
        return (self.hosts.get(name) or self.https[name])["ip"]

    def _zone_specs(self, scenarios):
        specs = list(STATIC_ZONES.items())
        for s in scenarios:
            specs += list(s.get("zones", {}).items())
        names = [n.rstrip(".") for n, _ in specs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise WorldError("zones declared twice: %s" % sorted(dup))
        return specs

    def _zone(self, name, spec):
        origin = "." if name == "." else name.rstrip(".") + "."
        records = [self._record(line, origin) for line in spec.get("records", [])]
        decoys = {}
        for key, decoy in spec.get("tamper", {}).items():
            owner, rtype = key.split()
            owner = absolute(self.expand(owner, origin), origin)
            decoys[(owner, rtype.upper())] = self.expand(decoy, origin)
        return Zone(name, spec, records, decoys)

    def _record(self, line, origin):
        owner, rtype, rdata = self.expand(line, origin).split(None, 2)
        return absolute(owner, origin), rtype.upper(), rdata

    def expand(self, text, origin):
        """Replace {port}, {https_port}, {ip:HOST}, {assoc:S M:REF},
        {rand:N}, {dkim:SELECTOR} in text."""
        def sub(m):
            what, arg = m.group(1), m.group(2)
            if what == "port":
                return str(self.smtp_port)
            if what == "https_port":
                return str(self.https_port)
            if what == "dkim":
                return self.pki.dkim_record(arg)
            if what == "ip":
                return self.address(self.host_ref(arg, origin))
            if what == "assoc":
                sm, ref = arg.split(":")
                sel, mtype = (int(x) for x in sm.split())
                ref = ref if ref.startswith("@") else self.host_ref(ref, origin)
                return association(self.pki.cert(ref), sel, mtype)
            if what == "rand":
                return os.urandom(int(arg)).hex()
            raise WorldError("unknown placeholder %s" % m.group(0))
        return PLACEHOLDER.sub(sub, text)

    def host_ref(self, ref, origin):
        """A host named absolutely, or relative to the zone's origin."""
        for cand in (ref.rstrip("."), ref + "." + origin.rstrip(".")):
            if cand in self.hosts or cand in self.https:
                return cand
        raise WorldError("unknown host %r in zone %s" % (ref, origin))


# ---------------------------------------------------------------- processes

def group_members(pgid):
    """Live processes of a process group (zombies don't count)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
    return out


def ours(pid, world_dir):
    """Only signal a process whose command line names this world's DIR, so
    a recycled pid is never hit."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except FileNotFoundError:
        return False
    return any(a == world_dir or a.startswith(world_dir + "/") for a in args)


def stop_group(pgid, world_dir):
    """TERM, then KILL, the process group a daemon was started in."""
    if not any(ours(pid, world_dir) for pid in group_members(pgid)):
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_members(pgid):
                return
            time.sleep(0.05)


def down(world_dir):
    rundir = os.path.join(world_dir, "run")
    if not os.path.isdir(rundir):
        return
    for name in sorted(os.listdir(rundir)):
        if name.endswith(".pid"):
            with open(os.path.join(rundir, name)) as f:
                stop_group(int(f.read().strip()), world_dir)
            os.unlink(os.path.join(rundir, name))


def spawn(name, cmd, world_dir):
    """Start a daemon in its own session (so `down` can stop its whole
    process group), output to DIR/run/NAME.log, pid to DIR/run/NAME.pid."""
    rundir = os.path.join(world_dir, "run")
    with open(os.path.join(rundir, name + ".log"), "wb") as log:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    with open(os.path.join(rundir, name + ".pid"), "w") as f:
        f.write("%d\n" % p.pid)
    return p


def wait_until(proc, name, world_dir, ready):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WorldError("%s exited with %d:\n%s" % (
                name, proc.returncode, read_log(world_dir, name)))
        if ready():
            return
        time.sleep(0.05)
    raise WorldError("%s not ready after %ss:\n%s" % (
        name, READY_TIMEOUT, read_log(world_dir, name)))


def read_log(world_dir, name):
    """The daemon's own output, plus NSD's log file for nsd."""
    paths = [os.path.join(world_dir, "run", name + ".log")]
    if name == "nsd":
        paths.append(os.path.join(world_dir, "nsd", "nsd.log"))
    text = ""
    for path in paths:
        if os.path.exists(path):
            with open(path) as f:
                text += f.read()
    return text


# ---------------------------------------------------------------- DNS probe

def dns_rcode(name, qtype, port, timeout=0.3):
    """Minimal UDP query to NSD: (rcode, authoritative) or None."""
    qid = random.randrange(65536)
    labels = [lab for lab in name.rstrip(".").split(".") if lab]
    qname = b"".join(bytes([len(lab)]) + lab.encode() for lab in labels)
    pkt = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname + b"\0" + \
        struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(pkt, (NS_ADDR, port))
            data = s.recv(4096)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F, bool(data[2] & 0x04)


def zones_answer(zones, port):
    """True when every zone gives what it should: SOA with AA, or SERVFAIL
    for the zones deliberately left unloadable."""
    for z in zones:
        want = (2, False) if z.servfail else (0, True)
        if dns_rcode(z.name, 6, port) != want:
            return False
    return True


# ---------------------------------------------------------------- files

def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_anchors(world_dir, root):
    """root.ds (zone-file DS, for danerelay) and root.anchors (named.conf
    trust-anchors syntax, which is what delv -a reads)."""
    ds = [line.split() for line in root.ds]
    write(os.path.join(world_dir, "root.ds"),
          "".join(".\t3600\tIN\tDS\t%s\n" % " ".join(p[3:]) for p in ds))
    body = "".join('\t. static-ds %s %s %s "%s";\n' % tuple(p[3:7]) for p in ds)
    write(os.path.join(world_dir, "root.anchors"),
          "trust-anchors {\n%s};\n" % body)


def write_conf(world_dir, dns_port, smtp_port, https_port):
    """The binary's config.  [mta_sts] trusts only the world's test root CA
    (for policy fetches and MX certificates) and uses the world's HTTPS
    port; a 5 s fetch deadline keeps the stalling hosts' cases short.
    [tlsrpt] POSTs reports to the world's collectors (same CA), and
    [dkim] signs as reporter.test with the key whose record the world
    publishes at tlsrpt._domainkey.reporter.test."""
    write(os.path.join(world_dir, "danerelay.conf"), (
        "[dns]\n"
        "root_servers = %s@%d\n"
        "trust_anchor_file = %s/root.ds\n"
        "\n"
        "[delivery]\n"
        "port = %d\n"
        "connect_timeout = 3\n"
        "greeting_timeout = 5\n"
        "command_timeout = 5\n"
        "\n"
        "[mta_sts]\n"
        "ca_file = %s/certs/ca-root.pem\n"
        "https_port = %d\n"
        "fetch_timeout = 5s\n"
        "\n"
        "[tlsrpt]\n"
        "ca_file = %s/certs/ca-root.pem\n"
        "post_timeout = 5s\n"
        "\n"
        "[dkim]\n"
        "domain = reporter.test\n"
        "selector = tlsrpt\n"
        "key_file = %s/certs/dkim-tlsrpt.key.pem\n") % (
            NS_ADDR, dns_port, world_dir, smtp_port, world_dir, https_port,
            world_dir, world_dir))


def write_hosts(world_dir, plan):
    write(os.path.join(world_dir, "hosts.json"), json.dumps(
        {"smtp_port": plan.smtp_port, "hosts": list(plan.hosts.values())},
        indent=1))


def write_https(world_dir, plan):
    write(os.path.join(world_dir, "https.json"), json.dumps(
        {"https_port": plan.https_port, "hosts": list(plan.https.values())},
        indent=1))


# ---------------------------------------------------------------- up

def fresh_dir(world_dir):
    down(world_dir)
    if os.path.isdir(world_dir):
        for entry in os.listdir(world_dir):
            path = os.path.join(world_dir, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    for sub in ("run", "nsd", "zones", "keys", "certs", "mail"):
        os.makedirs(os.path.join(world_dir, sub), exist_ok=True)


def start_nsd(world_dir, plan, dns_port):
    # NSD sets SO_REUSEADDR, so a second world on the same UDP port would
    # start "fine" and split the queries with the first one: refuse instead.
    if dns_rcode(".", 6, dns_port) is not None:
        raise WorldError("something already answers DNS at %s@%d (another "
                         "world? use --dns-port)" % (NS_ADDR, dns_port))
    conf = os.path.join(world_dir, "nsd", "nsd.conf")
    write(conf, dnszones.nsd_conf(world_dir, plan.zones, dns_port))
    dnszones.run(["nsd-checkconf", conf])
    proc = spawn("nsd", ["nsd", "-d", "-c", conf], world_dir)
    wait_until(proc, "nsd", world_dir,
               lambda: zones_answer(plan.zones, dns_port))


def start_receivers(world_dir):
    ready = os.path.join(world_dir, "run", "receivers.ready")
    proc = spawn("receivers", [sys.executable, os.path.join(HERE, "receivers.py"),
                               world_dir], world_dir)
    wait_until(proc, "receivers", world_dir, lambda: os.path.exists(ready))


def start_httpsd(world_dir):
    ready = os.path.join(world_dir, "run", "httpsd.ready")
    proc = spawn("httpsd", [sys.executable, os.path.join(HERE, "httpsd.py"),
                            world_dir], world_dir)
    wait_until(proc, "httpsd", world_dir, lambda: os.path.exists(ready))


def up(world_dir, dns_port, smtp_port, https_port=None):
    started = time.monotonic()
    if https_port is None:
        https_port = smtp_port + HTTPS_PORT_OFFSET
    if not 0 < https_port < 65536:
        raise WorldError("HTTPS port %d out of range (use --https-port)"
                         % https_port)
    fresh_dir(world_dir)
    pki = Pki(os.path.join(world_dir, "certs"))
    plan = Plan(load_scenarios(), smtp_port, pki, https_port)
    dnszones.build_tree(plan.zones, os.path.join(world_dir, "zones"),
                        os.path.join(world_dir, "keys"))
    write_anchors(world_dir, plan.zones[0])
    write_conf(world_dir, dns_port, smtp_port, https_port)
    write_hosts(world_dir, plan)
    write_https(world_dir, plan)
    write(os.path.join(world_dir, "world.json"), json.dumps(
        {"dir": world_dir, "dns": "%s@%d" % (NS_ADDR, dns_port),
         "dns_port": dns_port, "smtp_port": smtp_port,
         "https_port": https_port}, indent=1))
    try:
        start_nsd(world_dir, plan, dns_port)
        start_receivers(world_dir)
        start_httpsd(world_dir)
    except WorldError:
        down(world_dir)
        raise
    print("world up in %s: dns %s@%d, %d zones, %d hosts, smtp port %d, "
          "%d https hosts at port %d (%.1fs)"
          % (world_dir, NS_ADDR, dns_port, len(plan.zones), len(plan.hosts),
             smtp_port, len(plan.https), https_port,
             time.monotonic() - started))


@contextlib.contextmanager
def locked(world_dir):
    """Serialise up/down on one DIR: two overlapping runs would delete each
    other's pid files and orphan daemons."""
    fd = os.open(world_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["up", "down"])
    ap.add_argument("dir")
    ap.add_argument("--dns-port", type=int, default=15353)
    ap.add_argument("--smtp-port", type=int, default=12525)
    ap.add_argument("--https-port", type=int, default=None,
                    help="MTA-STS policy hosts (default: SMTP port + %d)"
                    % HTTPS_PORT_OFFSET)
    args = ap.parse_args(argv)
    world_dir = os.path.abspath(args.dir)
    try:
        os.makedirs(world_dir, exist_ok=True)
        with locked(world_dir):
            if args.action == "up":
                up(world_dir, args.dns_port, args.smtp_port, args.https_port)
            else:
                down(world_dir)
    except WorldError as e:
        print("world.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
