"""HTTPS policy hosts of the world (MTA-STS, RFC 8461 §3.3): one asyncio
process, one listener per `mta-sts.<domain>` host.

Usage: httpsd.py DIR   (reads DIR/https.json, writes DIR/run/httpsd.ready)

Each host serves /.well-known/mta-sts.txt the way its scenario declares:
the policy text with a status code and content type, a redirect, an
oversized or chunked body, a stall at some stage, or a certificate the test
CA does not vouch for (that part is only the certificate world.py made).
Every request is appended to DIR/run/httpsd.requests.jsonl (host, SNI,
path, Host header, User-Agent) so tests can see what a client asked for.

A host with "collector": true is a TLS-RPT report collector (RFC 8460
§5.4) instead: it takes a POST to any path, stores the body as
DIR/reports/N.bin with N.json beside it (host, path, content type, length,
user agent) and answers "status" (default 200; e.g. 503 to test retries).
"""

import asyncio
import datetime
import json
import logging
import os
import signal
import ssl
import sys
import time

WELL_KNOWN = "/.well-known/mta-sts.txt"
HEAD_TIMEOUT = 30       # a client that never finishes its request
HOSTILE_LIMIT = 300     # stalling hosts give up eventually, for tidiness
DRIP_INTERVAL = 1.0     # "stall": "body" sends one octet per second
CHUNK = 4096
COLLECT_LIMIT = 10 * 1024 * 1024   # RFC 8460 §5.2: a common receiver limit
REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently",
           302: "Found", 307: "Temporary Redirect",
           308: "Permanent Redirect", 403: "Forbidden", 404: "Not Found",
           500: "Internal Server Error", 503: "Service Unavailable"}


def pad_body(text, size):
    """text as UTF-8, padded to exactly size octets with syntactically valid
    extension lines ("pad00001: xxx...", RFC 8461 §3.2 sts-policy-extension,
    at most 1000 octets each), so a client that ignored the size limit would
    find a valid policy."""
    body = text.encode()
    if not size or size <= len(body):
        return body
    if not body.endswith(b"\n"):
        body += b"\n"
    left, n, lines = size - len(body), 0, []
    while left >= 12:                   # room for "padNNNNN: x\n"
        n += 1
        prefix = b"pad%05d: " % n
        take = min(left, 1000)
        if 0 < left - take < 12:        # leave a full line for the tail
            take = left - 12
        lines.append(prefix + b"x" * (take - len(prefix) - 1) + b"\n")
        left -= take
    body += b"".join(lines)
    if left:                            # trailing blanks are allowed (*WSP)
        body = body[:-1] + b" " * left + b"\n"
    return body


def expected_response(host, path, port):
    """(status, headers, body) the host answers for path."""
    policy = pad_body(host.get("policy", ""), host.get("body_size"))
    ctype = host.get("content_type", "text/plain")
    redirect = host.get("redirect")
    if path == WELL_KNOWN:
        headers = [("Content-Type", ctype)]
        if redirect:
            status = host.get("status", 301)
            headers.append(("Location", "https://%s:%d%s" % (
                host["name"], port, redirect)))
        else:
            status = host.get("status", 200)
        return status, headers, policy
    if redirect and path == redirect:
        return 200, [("Content-Type", ctype)], policy
    return 404, [("Content-Type", "text/plain")], b"not found\n"


def head_bytes(status, headers):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    lines += ["%s: %s" % kv for kv in headers]
    lines += ["Server: danerelay-test-world", "Cache-Control: no-store",
              "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Server:
    def __init__(self, world_dir, config):
        self.port = config["https_port"]
        self.world_dir = world_dir
        self.logpath = os.path.join(world_dir, "run",
                                    "httpsd.requests.jsonl")

    def log(self, entry):
        now = time.time()
        entry["time"] = datetime.datetime.fromtimestamp(
            now, datetime.timezone.utc).isoformat()
        entry["epoch"] = now
        with open(self.logpath, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def handler(self, host):
        async def handle(reader, writer):
            try:
                await self.serve(host, reader, writer)
            except (OSError, asyncio.TimeoutError, ssl.SSLError,
                    asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError):
                pass                    # clients hang up; that's their right
            finally:
                writer.close()
        return handle

    async def serve(self, host, reader, writer):
        stall = host.get("stall")
        if stall == "accept":           # TCP only: the TLS handshake stalls
            await asyncio.wait_for(until_eof(reader), HOSTILE_LIMIT)
            return
        await writer.start_tls(host["ssl"])
        obj = writer.get_extra_info("ssl_object")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                      HEAD_TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        fields = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        self.log({"host": host["name"], "scenario": host["scenario"],
                  "peer": writer.get_extra_info("peername")[0],
                  "sni": getattr(obj, "sni_name", None),
                  "tls": obj.version(), "method": method, "path": path,
                  "http_host": fields.get("host"),
                  "user_agent": fields.get("user-agent")})
        if host.get("collector"):
            await self.collect(host, method, path, fields, reader, writer)
            return
        if stall == "request":          # request read, never an answer
            await asyncio.wait_for(until_eof(reader), HOSTILE_LIMIT)
            return
        status, headers, body = expected_response(host, path, self.port)
        if method == "HEAD":
            body = b""
        if stall == "body":             # headers, then one octet a second
            writer.write(head_bytes(status, headers + [
                ("Content-Length", str(len(body)))]))
            for i in range(min(len(body), HOSTILE_LIMIT)):
                await writer.drain()
                await asyncio.sleep(DRIP_INTERVAL)
                writer.write(body[i:i + 1])
            await writer.drain()
            return
        framing = host.get("framing", "length")
        if framing == "chunked":
            writer.write(head_bytes(status, headers + [
                ("Transfer-Encoding", "chunked")]))
            for i in range(0, len(body), CHUNK):
                part = body[i:i + CHUNK]
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            writer.write(b"0\r\n\r\n")
        elif framing == "close":        # no length: the body ends at close
            writer.write(head_bytes(status, headers) + body)
            await writer.drain()
            return
        else:
            writer.write(head_bytes(status, headers + [
                ("Content-Length", str(len(body)))]) + body)
        await writer.drain()
        # let the client read to the end before the close
        await asyncio.wait_for(until_eof(reader), 10)

    async def collect(self, host, method, path, fields, reader, writer):
        """A report POST: store it, answer the host's status."""
        if method != "POST":
            writer.write(head_bytes(405, [("Content-Length", "0")]))
            await writer.drain()
            return
        length = int(fields.get("content-length", "0"))
        if length > COLLECT_LIMIT:
            raise ValueError("report too large")
        body = await asyncio.wait_for(reader.readexactly(length),
                                      HEAD_TIMEOUT)
        status = host.get("status", 200)
        if 200 <= status < 300:
            outdir = os.path.join(self.world_dir, "reports")
            os.makedirs(outdir, exist_ok=True)
            n = len([f for f in os.listdir(outdir) if f.endswith(".bin")])
            base = os.path.join(outdir, "%d" % (n + 1))
            with open(base + ".bin", "wb") as f:
                f.write(body)
            with open(base + ".json", "w") as f:
                json.dump({"host": host["name"], "path": path,
                           "content_type": fields.get("content-type"),
                           "length": length,
                           "user_agent": fields.get("user-agent")}, f)
        writer.write(head_bytes(status, [("Content-Type", "text/plain"),
                                         ("Content-Length", "3")]) + b"ok\n")
        await writer.drain()


async def until_eof(reader):
    while await reader.read(4096):
        pass


def remember_sni(obj, name, ctx):
    obj.sni_name = name
    return None


def ssl_context(host):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(host["chain"], host["key"])
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.sni_callback = remember_sni
    return ctx


async def main(world_dir):
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    with open(os.path.join(world_dir, "https.json")) as f:
        config = json.load(f)
    server = Server(world_dir, config)
    listeners = []
    for host in config["hosts"]:
        if host.get("refuse"):
            continue                    # no listener: connection refused
        host["ssl"] = ssl_context(host)
        try:
            listeners.append(await asyncio.start_server(
                server.handler(host), host["ip"], config["https_port"]))
        except OSError as e:
            sys.exit("httpsd: cannot listen on %s:%d: %s" % (
                host["ip"], config["https_port"], e.strerror or e))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(os.path.join(world_dir, "run", "httpsd.ready"), "w") as f:
        f.write("%d\n" % len(listeners))
    await stop.wait()
    for s in listeners:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
