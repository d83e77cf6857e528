"""The fleet tests' fixture (issue 12): a private PostgreSQL from Debian
(tests/world/pgsrv.py) and N `danerelay serve` nodes in the test world,
each with [fleet] postgres pointing at it and its own node name.

    with Fleet(args.binary, args.world, n=3, store="sqlite") as fl:
        fl.nodes[0].submit(...)             # worldlib.Relay objects
        fl.pg.psql("SELECT ...")
        fl.nodes[1].cli("trace", ...)

store = "sqlite": each node keeps its queue on its own disk, trace,
reports, TLS-RPT counters and MTA-STS cache shared; "postgres": the queue
is in the database too. extra is added to every node's config (after the
fleet's own lines, so a test may override them).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "world"))
from pgsrv import PgServer  # noqa: E402
from worldlib import Relay  # noqa: E402


class Fleet:
    def __init__(self, binary, world, n=3, store="sqlite", extra="",
                 sync_interval="1s", start=True, pg=None):
        self.binary, self.world = binary, world
        parent = os.path.dirname(os.path.abspath(world))
        self.own_pg = pg is None
        self.pg = pg or PgServer(parent)
        self.nodes = []
        for i in range(n):
            conf = (f"[fleet]\npostgres = {self.pg.conninfo}\n"
                    f"node = node{i + 1}\n"
                    f"sync_interval = {sync_interval}\n"
                    f"[queue]\nstore = {store}\n" + extra)
            self.nodes.append(Relay(binary, world, conf,
                                    name=f"fleet-node{i + 1}"))
        if start:
            for r in self.nodes:
                r.start()

    def stop(self):
        for r in self.nodes:
            r.stop()

    def close(self):
        self.stop()
        if self.own_pg:
            self.pg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
