"""A second validator for selftest: libunbound (what danerelay links), via
ctypes, set up the way the world needs any in-process resolver to be:

- forward "." to NSD: a non-53 port can't be learned from NS records, so
  the one server must be asked for every zone;
- `local-zone: "test." nodefault`: libunbound's built-in special-use zone
  for test. would otherwise answer NXDOMAIN for the whole tree;
- do-not-query-localhost: no, since NSD lives on 127.53.0.1.

Unavailable (None) when libunbound.so.8 is not installed.
"""

import ctypes
import ctypes.util
import os
import tempfile
import threading

RRTYPES = {"A": 1, "MX": 15, "TLSA": 52, "AAAA": 28, "CNAME": 5, "DS": 43,
           "TXT": 16}


class UbResult(ctypes.Structure):
    """struct ub_result of unbound.h (1.x)."""
    _fields_ = [("qname", ctypes.c_char_p), ("qtype", ctypes.c_int),
                ("qclass", ctypes.c_int),
                ("data", ctypes.POINTER(ctypes.c_char_p)),
                ("len", ctypes.POINTER(ctypes.c_int)),
                ("canonname", ctypes.c_char_p), ("rcode", ctypes.c_int),
                ("answer_packet", ctypes.c_void_p),
                ("answer_len", ctypes.c_int), ("havedata", ctypes.c_int),
                ("nxdomain", ctypes.c_int), ("secure", ctypes.c_int),
                ("bogus", ctypes.c_int), ("why_bogus", ctypes.c_char_p),
                ("was_ratelimited", ctypes.c_int), ("ttl", ctypes.c_int)]


def _lib():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("unbound") or
                          "libunbound.so.8")
    except OSError:
        return None
    lib.ub_ctx_create.restype = ctypes.c_void_p
    for fn in ("ub_ctx_config", "ub_ctx_set_fwd", "ub_ctx_add_ta_file"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ub_resolve.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                               ctypes.c_int,
                               ctypes.POINTER(ctypes.POINTER(UbResult))]
    lib.ub_resolve_free.argtypes = [ctypes.POINTER(UbResult)]
    return lib


class Validator:
    """One libunbound context for the world; resolve() is serialised."""

    def __init__(self, lib, world):
        self.lib = lib
        self.lock = threading.Lock()
        self.ctx = lib.ub_ctx_create()
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
            conf.write('server:\n  local-zone: "test." nodefault\n'
                       "  do-not-query-localhost: no\n")
            conf.flush()
            self._ok(lib.ub_ctx_config(self.ctx, conf.name.encode()), "config")
        fwd = "127.53.0.1@%d" % world["dns_port"]
        self._ok(lib.ub_ctx_set_fwd(self.ctx, fwd.encode()), "set_fwd")
        anchor = os.path.join(world["dir"], "root.ds")
        self._ok(lib.ub_ctx_add_ta_file(self.ctx, anchor.encode()), "ta")

    @staticmethod
    def _ok(rc, what):
        if rc != 0:
            raise RuntimeError("libunbound %s failed: %d" % (what, rc))

    def state(self, name, rtype):
        """Same vocabulary as selftest.classify()."""
        res = ctypes.POINTER(UbResult)()
        with self.lock:
            self._ok(self.lib.ub_resolve(self.ctx, name.encode(),
                                         RRTYPES[rtype], 1, ctypes.byref(res)),
                     "resolve")
        r = res.contents
        try:
            if r.bogus:
                return "bogus"
            if r.rcode not in (0, 3):
                return "servfail"
            if not r.secure:
                return "insecure" if r.havedata else "insecure-denial"
            if r.havedata:
                return "secure"
            return "secure-nxdomain" if r.nxdomain else "secure-nodata"
        finally:
            self.lib.ub_resolve_free(res)


def validator(world):
    lib = _lib()
    return Validator(lib, world) if lib else None
