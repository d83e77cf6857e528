"""The DNSSEC tree of the world: zone model, rendering, keys and signing.

Zones are signed bottom-up because a parent needs its children's DS
records.  Signing is done by ldns-signzone (keys from ldns-keygen) so the
signatures come from an independent, widely used implementation.
"""

import concurrent.futures
import os
import subprocess
import time

NS_NAME = "ns.test."
NS_ADDR = "127.53.0.1"
TTL = 300
ALGS = {13: ["-a", "ECDSAP256SHA256"], 8: ["-a", "RSASHA256", "-b", "2048"]}
# Dates are for ldns-signzone -i/-e; the "expired" set lies wholly in the past.
EXPIRED_SIGS = ("20200101000000", "20200201000000")


class WorldError(Exception):
    """A tool failed; the message carries its stderr."""


def fqdn(name):
    return name if name.endswith(".") else name + "."


def absolute(owner, origin):
    """Owner name of a record line, relative to origin unless it ends in '.'."""
    if owner == "@":
        return origin
    return owner if owner.endswith(".") else owner + "." + origin


def run(cmd, cwd=None):
    """Run a tool; on failure raise with its stderr so `up` can print it."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise WorldError("%s failed (exit %d):\n%s%s" % (
            " ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


class Zone:
    """One zone: its own records plus what the world adds (SOA, NS, cuts).

    spec keys: sign nsec|nsec3|none, alg 13|8, ds ok|mismatch, sigs
    expired, servfail (configured in NSD but never loadable), tamper
    {"OWNER TYPE": DECOY} (sign DECOY as the rdata, then serve the real one,
    so the RRSIG cannot match), records ["OWNER TYPE RDATA", ...].
    records and decoys arrive with placeholders already expanded.
    """

    def __init__(self, name, spec, records, decoys=None):
        self.name = fqdn(name) if name != "." else "."
        self.spec = spec
        self.records = records          # [(owner_abs, type, rdata)]
        self.decoys = decoys or {}      # {(owner_abs, type): decoy rdata}
        self.cuts = []                  # delegation lines added by the world
        self.keys = []                  # key base names (ldns)
        self.ds = []                    # DS lines for the parent
        self.parent = None

    @property
    def signed(self):
        return self.spec.get("sign", "nsec") != "none" and not self.servfail

    @property
    def servfail(self):
        return bool(self.spec.get("servfail"))

    @property
    def depth(self):
        return 0 if self.name == "." else self.name.count(".")

    @property
    def filename(self):
        return ("root" if self.name == "." else self.name.rstrip(".")) + ".zone"

    def header(self):
        return ["$ORIGIN %s" % self.name, "$TTL %d" % TTL,
                "@ SOA %s hostmaster.test. 1 3600 600 86400 %d" % (NS_NAME, TTL),
                "@ NS %s" % NS_NAME]

    def lines(self, decoys=None):
        """Zone file text; decoys replace tampered RRsets (for signing)."""
        out = self.header()
        decoys = decoys or {}
        done = set()
        for owner, rtype, rdata in self.records:
            key = (owner, rtype)
            if key in decoys:
                if key not in done:
                    out.append("%s %s %s" % (owner, rtype, decoys[key]))
                    done.add(key)
                continue
            out.append("%s %s %s" % (owner, rtype, rdata))
        return "\n".join(out + self.cuts) + "\n"

    def delegate(self, child):
        self.cuts.append("%s NS %s" % (child.name, NS_NAME))
        self.cuts.extend(child.ds)


def keygen(zone, keydir):
    """One CSK per zone (KSK flag, signs everything); root and TLDs get a
    KSK + ZSK pair so the split-key case is exercised too."""
    os.makedirs(keydir, exist_ok=True)
    alg = ALGS[zone.spec.get("alg", 13)]
    ksk = run(["ldns-keygen"] + alg + ["-k", zone.name], cwd=keydir).strip()
    zone.keys = [os.path.join(keydir, ksk)]
    if zone.spec.get("split_keys"):
        zsk = run(["ldns-keygen"] + alg + [zone.name], cwd=keydir).strip()
        zone.keys.append(os.path.join(keydir, zsk))
    with open(zone.keys[0] + ".ds") as f:
        zone.ds = [_ds_line(line, zone.spec.get("ds")) for line in f
                   if line.strip()]


def _ds_line(line, mode):
    """DS record for the parent; 'mismatch' flips the digest's last nibble."""
    parts = line.split()
    if mode == "mismatch":
        last = parts[-1]
        parts[-1] = last[:-1] + ("0" if last[-1] != "0" else "1")
    return " ".join(parts)


def sign(zone, zonedir):
    """Write the served zone file of zone into zonedir."""
    decoys = zone.decoys
    path = os.path.join(zonedir, zone.filename)
    if zone.servfail:
        return                              # never written: NSD can't load it
    with open(path + ".unsigned", "w") as f:
        f.write(zone.lines(decoys))
    if not zone.signed:
        os.replace(path + ".unsigned", path)
        return
    cmd = ["ldns-signzone", "-o", zone.name, "-f", path] + _sig_dates(zone)
    if zone.spec.get("sign") == "nsec3":
        cmd += ["-n", "-t", "0"]            # RFC 9276: no extra iterations
    run(cmd + [path + ".unsigned"] + zone.keys)
    if decoys:
        _untamper(zone, path, decoys)


def _sig_dates(zone):
    if zone.spec.get("sigs") == "expired":
        inception, expiration = EXPIRED_SIGS
    else:
        t = int(time.time())
        inception, expiration = str(t - 86400), str(t + 30 * 86400)
    return ["-i", inception, "-e", expiration]


def _untamper(zone, path, decoys):
    """Swap the signed decoy rdata for the real records (RRSIGs stay)."""
    with open(path) as f:
        kept = [line for line in f if not _is_decoy(line, decoys)]
    real = ["%s %d IN %s %s\n" % (o, TTL, t, r) for o, t, r in zone.records
            if (o, t) in decoys]
    with open(path, "w") as f:
        f.writelines(kept + ["$ORIGIN %s\n" % zone.name] + real)


def _is_decoy(line, decoys):
    parts = line.split()
    return len(parts) >= 4 and (parts[0], parts[3]) in decoys


def build_tree(zones, zonedir, keydir):
    """Key, delegate and sign every zone, children before parents."""
    os.makedirs(zonedir, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        todo = [z for z in zones if z.signed]
        list(pool.map(lambda z: keygen(z, keydir), todo))
        for depth in sorted({z.depth for z in zones}, reverse=True):
            level = [z for z in zones if z.depth == depth]
            for z in level:
                if z.parent:
                    z.parent.delegate(z)
            list(pool.map(lambda z: sign(z, zonedir), level))


def link_parents(zones):
    """Each zone's parent is the longest other zone that is a suffix of it."""
    by_name = {z.name: z for z in zones}
    for z in zones:
        if z.name == ".":
            continue
        labels = z.name.split(".")
        for i in range(1, len(labels)):
            cand = ".".join(labels[i:]) or "."
            if cand in by_name:
                z.parent = by_name[cand]
                break


def nsd_conf(world_dir, zones, port):
    """NSD config for running unprivileged with all state inside DIR."""
    d = os.path.join(world_dir, "nsd")
    lines = [
        "server:",
        "  ip-address: %s@%d" % (NS_ADDR, port),
        "  do-ip6: no",
        '  username: ""',
        '  chroot: ""',
        '  database: ""',
        '  zonesdir: "%s"' % os.path.join(world_dir, "zones"),
        '  zonelistfile: "%s/zone.list"' % d,
        '  xfrdfile: "%s/xfrd.state"' % d,
        '  xfrdir: "%s"' % d,
        '  pidfile: "%s/nsd.pid"' % d,
        '  logfile: "%s/nsd.log"' % d,
        "  server-count: 1",
        "  minimal-responses: yes",
        "  hide-version: yes",
        "  verbosity: 1",
        "remote-control:",
        "  control-enable: no",
    ]
    for z in zones:
        lines += ["zone:", '  name: "%s"' % z.name,
                  '  zonefile: "%s"' % z.filename]
    return "\n".join(lines) + "\n"
