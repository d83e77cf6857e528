"""A private Postfix instance for interop tests, started and stopped by the
test, never touching the system's Postfix.

Everything lives in one temporary directory: its own config_directory
(main.cf and a master.cf written from scratch), queue_directory,
data_directory, a log file (postlogd, `maillog_file`: no syslog needed)
and, for a receiving instance, a Maildir. Postfix is started with
`postfix -c DIR start`: a non-default config directory is accepted without
`alternate_config_directories` in /etc/postfix/main.cf when the caller is
root, so /etc/postfix is neither read for settings nor written (on Debian,
with "No configuration" chosen at install time, /etc/postfix/main.cf does
not exist and the system Postfix never starts). Starting Postfix needs
root: master binds its listener and then runs each daemon as the
`postfix` user.

Safety: master.cf names every listener as ADDR:PORT with the given
loopback address and high port; no `smtp inet` entry exists, so nothing
listens on port 25 or on 0.0.0.0. DNS is disabled in the client
(smtp_dns_support_level = disabled, smtp_host_lookup = native) and the
server does no reverse lookups (smtpd_peername_lookup = no), so no query
leaves the machine.

Not a test itself (imported by relay_clients.py).
"""
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"

# Every daemon chroot = n: a chroot would need copies of /etc files.
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def available():
    """None when Postfix can be run here, else why not."""
    if not os.path.exists(POSTFIX):
        return "postfix is not installed (scripts/deps installs it)"
    if os.geteuid() != 0:
        return "needs root to start Postfix"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "no postfix user or postdrop group"
    return None


class Postfix:
    """One instance: `main` is a dict of extra main.cf settings; the smtpd
    listens on addr:port (a loopback address, a high port)."""

    def __init__(self, name, addr, port, main=None):
        if not addr.startswith("127.") or port < 1024:
            raise ValueError("only loopback addresses and high ports")
        self.name, self.addr, self.port = name, addr, port
        self.dir = tempfile.mkdtemp(prefix=f"postfix-{name}.")
        os.chmod(self.dir, 0o755)   # the postfix user walks into it
        self.conf = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "maillog")
        self.maildir = os.path.join(self.dir, "mail")
        pw = pwd.getpwnam("postfix")
        for d in (self.conf, self.queue):
            os.makedirs(d, 0o755)
        for d in (self.data, self.maildir):
            os.makedirs(d, 0o700)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            # Postfix refuses an inet_interfaces address that is not an
            # interface address, and lo has only 127.0.0.1: the listener
            # names its own address in master.cf, and the client's source
            # address is smtp_bind_address.
            "inet_interfaces": "127.0.0.1",
            "smtp_bind_address": addr,
            "inet_protocols": "ipv4",
            "myhostname": f"{name}.postfix.test",
            "mydomain": "postfix.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "append_dot_mydomain": "no",
            "biff": "no",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.dir,
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "smtp_tls_security_level": "may",
            "smtp_tls_loglevel": "1",
            "smtpd_tls_loglevel": "1",
            # A test should see its mail move in seconds.
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "smtp_connect_timeout": "5s",
            # Receiving side: any address at virtual_mailbox_domains goes
            # to one Maildir under DIR/mail, owned by the postfix user.
            # Empty unless given: its default is $virtual_mailbox_maps,
            # and a static: map matches every domain.
            "virtual_mailbox_domains": "",
            "virtual_mailbox_base": self.maildir,
            "virtual_mailbox_maps": "static:Maildir/",
            "virtual_uid_maps": f"static:{pw.pw_uid}",
            "virtual_gid_maps": f"static:{pw.pw_gid}",
            "virtual_minimum_uid": "1",
        }
        settings.update(main or {})
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"{addr}:{port}"))
        self.env = dict(os.environ, MAIL_CONFIG=self.conf)
        self.started = False

    def postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.conf] + list(args),
                              capture_output=True, text=True,
                              timeout=timeout, env=self.env)

    def postconf(self, *args):
        p = subprocess.run(["postconf", "-c", self.conf] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.stdout

    def start(self, timeout=20):
        """Start master and wait until the smtpd port accepts. Raises
        RuntimeError with the log when it does not."""
        p = self.postfix("start")
        self.started = True
        if p.returncode != 0:
            raise RuntimeError(f"postfix start: exit {p.returncode}: "
                               f"{p.stdout} {p.stderr} {self.tail()}")
        import socket
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.addr, self.port), 0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix smtpd not listening on "
                           f"{self.addr}:{self.port}: {self.tail()}")

    def listeners(self):
        """[(addr, port)] of TCP sockets in LISTEN state held by this
        instance's processes."""
        inodes = set()
        for pid in self.pids():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
            except OSError:
                continue
        out = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = open(table).read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                f = row.split()
                if f[3] != "0A" or f[9] not in inodes:   # 0A = LISTEN
                    continue
                hexaddr, hexport = f[1].split(":")
                if len(hexaddr) == 8:
                    addr = ".".join(str(int(hexaddr[i:i + 2], 16))
                                    for i in (6, 4, 2, 0))
                else:
                    addr = hexaddr
                out.append((addr, int(hexport, 16)))
        return out

    def pids(self):
        """Processes of this instance: their environment names our
        config directory (master passes MAIL_CONFIG to every daemon)."""
        want = f"MAIL_CONFIG={self.conf}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if want in env:
                found.append(int(entry))
        return found

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout=15):
        """`postfix stop`, then KILL whatever of ours is left. Idempotent."""
        if not self.started:
            return
        try:
            self.postfix("stop", timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pids():
            time.sleep(0.1)
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.started = False

    def tail(self, n=15):
        try:
            return "".join(open(self.log, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def logtext(self):
        try:
            return open(self.log, errors="replace").read()
        except OSError:
            return ""

    def mailbox(self):
        """[(path, raw bytes)] of messages delivered to the Maildir."""
        out = []
        new = os.path.join(self.maildir, "Maildir", "new")
        if os.path.isdir(new):
            for name in sorted(os.listdir(new)):
                path = os.path.join(new, name)
                with open(path, "rb") as f:
                    out.append((path, f.read()))
        return out

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
