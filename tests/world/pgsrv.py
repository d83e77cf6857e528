"""A private PostgreSQL server for the fleet tests (issue 12).

Debian's postgresql package, run by hand: its own data directory (initdb),
listening on 127.0.0.1 at a high port, its socket in the data directory;
no system service, no cluster of postgresql-common. Run as root (the tests
are), the server runs as the 'postgres' user the package made.

    with PgServer(tmpdir) as pg:          # initdb + start
        pg.conninfo                       # for [fleet] postgres
        pg.psql("SELECT count(*) FROM dr_events")  -> [['3']]
        pg.stop(); pg.start()             # an outage under load
    # stopped and removed at exit

Raises RuntimeError with the server's log when it cannot start: a test
that needs the database fails, it never passes without one.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def pg_bindir():
    """/usr/lib/postgresql/<newest>/bin, or raise."""
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]))
    if not cands:
        raise RuntimeError("PostgreSQL is not installed (scripts/deps "
                           "installs postgresql)")
    return os.path.dirname(cands[-1])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, parent=None, port=None, dbname="danerelay"):
        self.bindir = pg_bindir()
        # Run as root, the server runs as 'postgres', which must reach its
        # data directory: a test's own directory is often 0700 (mktemp
        # -d), so the server's lives in /tmp itself then.
        self._as_postgres = os.getuid() == 0
        if self._as_postgres:
            parent = None
        self.top = tempfile.mkdtemp(prefix="danerelay-pg.", dir=parent)
        os.chmod(self.top, 0o755)
        self.data = os.path.join(self.top, "data")
        self.log = os.path.join(self.top, "server.log")
        self.port = port or _free_port()
        self.dbname = dbname
        self.user = "danerelay"
        self.conninfo = (f"host=127.0.0.1 port={self.port} "
                         f"dbname={dbname} user={self.user}")
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.top, pw.pw_uid, pw.pw_gid)
        self._initdb()
        self.start()
        self.psql(f"CREATE ROLE {self.user} LOGIN", db="postgres")
        self.psql(f"CREATE DATABASE {dbname} OWNER {self.user}",
                  db="postgres")

    # -- running commands as the server's user --
    def _run(self, argv, timeout=120, check=True, input=None):
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, input=input, cwd="/")
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: "
                               f"{p.stderr.strip()} {self.tail()}")
        return p

    def _initdb(self):
        # trust on 127.0.0.1 only: a test database on loopback, no
        # password to manage; listen_addresses keeps it off every other
        # address (the brief: no traffic beyond 127.0.0.0/8).
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data,
                   "-A", "trust", "-U", "postgres", "-E", "UTF8",
                   "--locale=C.UTF-8"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.data}'\n"
                    "fsync = on\nsynchronous_commit = on\n"
                    "max_connections = 100\nshared_buffers = 64MB\n"
                    "logging_collector = off\n")

    def start(self, timeout=60):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                   "-l", self.log, "-w", "-t", str(timeout), "start"],
                  timeout=timeout + 10)
        return self

    def stop(self, mode="fast"):
        """mode: smart, fast (default), immediate (a crash, as kill -9)."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                   "-m", mode, "-w", "stop"], check=False)

    def kill9(self):
        pid = int(open(os.path.join(self.data, "postmaster.pid"))
                  .readline())
        os.kill(pid, 9)
        time.sleep(0.5)

    def running(self):
        p = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "status"], check=False)
        return p.returncode == 0

    def psql(self, sql, db=None):
        """Rows of sql as lists of strings (psql -At, unaligned)."""
        p = subprocess.run(
            ["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres" if db == "postgres" else self.user,
             "-d", db or self.dbname, "-c", sql],
            capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"psql: {p.stderr.strip()}")
        return [line.split("\t") for line in p.stdout.splitlines()]

    def scalar(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    def size(self):
        """The database's size in octets (pg_database_size)."""
        return int(self.scalar(f"SELECT pg_database_size('{self.dbname}')"))

    def server_pids(self):
        """PIDs of the postmaster and its children (for CPU accounting)."""
        pid = int(open(os.path.join(self.data, "postmaster.pid"))
                  .readline())
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                             capture_output=True, text=True).stdout
        return [pid] + [int(x) for x in out.split()]

    def tail(self, n=15):
        try:
            return "".join(open(self.log, errors="replace")
                           .readlines()[-n:])
        except OSError:
            return ""

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.top, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
