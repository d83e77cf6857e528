"""The benchmark's world: M DANE-EE domains d0.bench ... d<M-1>.bench, each
its own signed zone with an MX, an A record on 127.60.x.y and a TLSA 3 1 1
record of the certificate the sink serves there; signed under a private
root exactly as the test world does it (tests/world/dnszones.py: ldns-keygen,
ldns-signzone, one NSD), plus one validating unbound that both senders ask.

Addresses (all 127.0.0.0/8):
  NSD      127.53.0.1@DNS_PORT (every zone; the unbound forwards "." to it)
  unbound  127.54.0.1@53       (resolv.conf of the bench Postfix, and the
                                forwarder of danerelay's libunbound)
  sink     127.60.x.y@SMTP_PORT, one address per MX host
"""

import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "world"))

import dnszones  # noqa: E402
from dnszones import NS_ADDR, NS_NAME, Zone  # noqa: E402
import pki  # noqa: E402
import world  # noqa: E402

RESOLVER_ADDR = "127.54.0.1"
SINK_NET = "127.60"


def mx_addr(n):
    """Address of the MX host of domain n (skipping .0 and .255)."""
    return "%s.%d.%d" % (SINK_NET, n // 250, n % 250 + 1)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class BenchWorld:
    """Files under DIR; up() builds and starts, down() stops (idempotent)."""

    def __init__(self, wdir, domains, dns_port, smtp_port):
        self.dir, self.domains = wdir, domains
        self.dns_port, self.smtp_port = dns_port, smtp_port
        self.procs = {}
        for sub in ("zones", "keys", "certs", "nsd", "unbound"):
            os.makedirs(os.path.join(wdir, sub), exist_ok=True)

    # ------------------------------------------------------------ build

    def build(self):
        """Certificates, zones, signatures, sink hosts file, anchors."""
        hosts = [self._host(n) for n in range(self.domains)]
        zones = [
            Zone(".", {"split_keys": True}, [(NS_NAME, "A", NS_ADDR)]),
            Zone("test", {}, [(NS_NAME, "A", NS_ADDR)]),
            Zone("bench", {}, []),
        ] + [self._zone(n, tlsa) for n, tlsa in enumerate(hosts)]
        dnszones.link_parents(zones)
        dnszones.build_tree(zones, os.path.join(self.dir, "zones"),
                            os.path.join(self.dir, "keys"))
        self.zones = zones
        world.write_anchors(self.dir, zones[0])
        self.root_ds = os.path.join(self.dir, "root.ds")

    def _host(self, n):
        """Key and self-signed certificate of mx.d<n>.bench; returns the
        TLSA 3 1 1 association data and appends the sink's hosts line."""
        name = "mx.d%d.bench" % n
        key = pki.new_key("ec")
        cert = pki.make_leaf([name], key, days=30)
        base = os.path.join(self.dir, "certs", name)
        with open(base + ".pem", "wb") as f:
            f.write(pki.cert_pem(cert))
        with open(base + ".key", "wb") as f:
            f.write(pki.key_pem(key))
        with open(os.path.join(self.dir, "sink.hosts"), "a" if n else "w") as f:
            f.write("%s %s.pem %s.key\n" % (mx_addr(n), base, base))
        return pki.association(cert, 1, 1)

    def _zone(self, n, tlsa):
        origin = "d%d.bench." % n
        mx = "mx." + origin
        return Zone(origin, {}, [
            (origin, "MX", "10 " + mx),
            (mx, "A", mx_addr(n)),
            ("_%d._tcp.%s" % (self.smtp_port, mx), "TLSA", "3 1 1 " + tlsa),
        ])

    # ------------------------------------------------------------ NSD

    def start_nsd(self):
        if world.dns_rcode(".", 6, self.dns_port) is not None:
            raise RuntimeError("something already answers DNS at %s@%d"
                               % (NS_ADDR, self.dns_port))
        conf = os.path.join(self.dir, "nsd", "nsd.conf")
        write(conf, dnszones.nsd_conf(self.dir, self.zones, self.dns_port))
        self._spawn("nsd", ["nsd", "-d", "-c", conf])
        self._wait("nsd", lambda: world.zones_answer(self.zones, self.dns_port),
                   60)

    # ------------------------------------------------------------ unbound

    def unbound_conf(self):
        d = os.path.join(self.dir, "unbound")
        return "\n".join([
            "server:",
            "  interface: %s@53" % RESOLVER_ADDR,
            "  do-ip6: no",
            "  access-control: 127.0.0.0/8 allow",
            '  chroot: ""',
            '  username: ""',
            '  directory: "%s"' % d,
            '  pidfile: "%s/unbound.pid"' % d,
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 1",
            "  num-threads: 1",
            "  do-not-query-localhost: no",
            '  trust-anchor-file: "%s"' % self.root_ds,
            '  local-zone: "test." nodefault',
            "  statistics-cumulative: no",
            "remote-control:",
            "  control-enable: yes",
            '  control-interface: "%s/unbound.ctl"' % d,
            "  control-use-cert: no",
            "forward-zone:",
            '  name: "."',
            "  forward-addr: %s@%d" % (NS_ADDR, self.dns_port),
            ""])

    def start_unbound(self):
        """A fresh unbound (cold cache, zero counters) for one measured run."""
        self.stop("unbound")
        conf = os.path.join(self.dir, "unbound", "unbound.conf")
        write(conf, self.unbound_conf())
        subprocess.run(["unbound-checkconf", conf], check=True,
                       capture_output=True)
        self._spawn("unbound", ["unbound", "-d", "-p", "-c", conf])
        self._wait("unbound", lambda: self.unbound_stats() is not None, 20)

    def unbound_stats(self):
        """{name: value} of `unbound-control stats_noreset`, or None."""
        conf = os.path.join(self.dir, "unbound", "unbound.conf")
        p = subprocess.run(["unbound-control", "-c", conf, "stats_noreset"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return None
        out = {}
        for line in p.stdout.splitlines():
            k, _, v = line.partition("=")
            try:
                out[k] = float(v)
            except ValueError:
                pass
        return out

    def resolv_conf(self):
        path = os.path.join(self.dir, "resolv.conf")
        write(path, "nameserver %s\noptions trust-ad\n" % RESOLVER_ADDR)
        return path

    # ------------------------------------------------------------ sink

    def start_sink(self, binary, delay_ms=0):
        self.stop("sink")
        self.sink_stats = os.path.join(self.dir, "sink.stats")
        if os.path.exists(self.sink_stats):
            os.unlink(self.sink_stats)
        self._spawn("sink", [binary, "-H", os.path.join(self.dir, "sink.hosts"),
                             "-p", str(self.smtp_port), "-s", self.sink_stats,
                             "-d", str(delay_ms)])
        self._wait("sink", lambda: os.path.exists(self.sink_stats), 30)

    def sink_reset(self):
        """Zero the sink's counters and wait until the file shows it."""
        self.procs["sink"].send_signal(signal.SIGUSR2)
        time.sleep(0.05)
        self.sink_read()

    def sink_read(self):
        import json
        for _ in range(50):
            try:
                with open(self.sink_stats) as f:
                    return json.loads(f.read())
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError("sink stats unreadable")

    def sink_pid(self):
        return self.procs["sink"].pid

    # ------------------------------------------------------------ processes

    def _spawn(self, name, cmd):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.procs[name] = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()

    def _wait(self, name, ready, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError("%s exited: %s" % (name, self.log_tail(name)))
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError("%s not ready: %s" % (name, self.log_tail(name)))

    def log_tail(self, name, n=20):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def down(self):
        for name in list(self.procs):
            self.stop(name)

    def remove(self):
        self.down()
        shutil.rmtree(self.dir, ignore_errors=True)
