"""Fault and latency proxy for the KMS stand-ins: one TCP listener per upstream.

Run by svc_proxy.py as its own process:

    python fault_proxy.py --config proxy.json

Each upstream (aws, azure, azure-identity, gcp, gcp-oauth, kmip, ...) gets its own port
on 127.0.0.1. By default a connection is passed through byte for byte: TLS runs end to
end between the client and the stand-in, the proxy terminates nothing and sees nothing.
Latency, as a network has it (every packet, not every connection):

    rtt_ms        a round trip: bytes each way are held rtt_ms/2 (order kept), and the
                  client's first bytes wait one more round trip (the TCP handshake a
                  local connect skips). A fresh TLS 1.3 connection then costs 3 round
                  trips before the reply (connect, handshake, request), a reused one 1.

Round trips are counted per upstream ("round_trips"): 1 per connection (its TCP
handshake) plus 1 per client flight, a flight being client bytes sent after the client
was handed server bytes. Counts are exact when rtt_ms > 0; at 0, a TLS 1.3 session
ticket can land between a client's Finished and its request and count one flight more.

Faults are decided per connection (libmongocrypt sends one request per connection,
`Connection: close`, unless its client reuses connections):

    delay_ms      added before the connection is forwarded (every connection), plus
    jitter_ms     a uniform random 0..jitter_ms on top
    reset         rate: the connection is reset (RST) as soon as it is accepted
    stall         rate: accepted, read, never answered; closed after stall_ms (0: when
                  the client gives up, at most 10 minutes)
    http500       rate: HTTP 500 in the provider's error shape        (HTTP upstreams)
    http503       rate: HTTP 503 in the provider's error shape        (HTTP upstreams)
    throttle      rate: AWS 400 ThrottlingException; Azure/GCP 429    (HTTP upstreams)
    reset_after   rate: the request IS forwarded and answered by the stand-in, then the
                  client is reset before it sees the answer (the KMS did the work, the
                  reply was lost)                                     (HTTP upstreams)
    next          list of the above names (or "pass"), applied to the next connections
                  in order before any rate is drawn: deterministic faults for tests
    max_consecutive  at most this many faulted connections in a row (0: no limit), so a
                  client with N retries can be guaranteed to get through
    seed          reseed this upstream's random generator

For the HTTP-level faults (http500, http503, throttle, reset_after) the proxy has to
speak HTTP, so on those connections it terminates TLS itself with its own certificate,
issued by the same test CA for 127.0.0.1/localhost: clients that trust the CA cannot
tell. reset_after then forwards the request over a new TLS connection to the stand-in.
Rates are probabilities 0..1 and are drawn in the order reset, stall, http500, http503,
throttle, reset_after (their sum must stay <= 1).

Initial faults: the config's "faults" ({upstream or "*": settings}); svc_proxy.py fills
it from $KS_PROXY_FAULTS at `up`, e.g. KS_PROXY_FAULTS='{"aws": {"delay_ms": 50}}'.

Control endpoint (plain HTTP on 127.0.0.1, JSON):

    GET  /upstreams                    {"aws": {"listen": "127.0.0.1:P", "target": ..., "kind": ...}, ...}
    GET  /faults                       current settings per upstream
    POST /faults   {"upstream": "aws"|"*", "delay_ms": 50, "reset": 0.05, ...}
                   merges into that upstream's settings ("*": every upstream);
                   add "replace": true to start from no faults
    POST /clear    {"upstream"?}       no faults (one upstream or all)
    GET  /counters                     per upstream: connections, round_trips, passed,
                                       delayed, reset, stall, http500, http503, throttle,
                                       reset_after, upstream_errors, bytes_up, bytes_down
    POST /counters/reset
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import ssl
import struct
import sys
import uuid

FAULTS = ("reset", "stall", "http500", "http503", "throttle", "reset_after")
HTTP_FAULTS = ("http500", "http503", "throttle", "reset_after")
HTTP_KINDS = ("aws", "azure", "gcp")
COUNTERS = ("connections", "round_trips", "passed", "delayed", *FAULTS, "upstream_errors", "bytes_up",
            "bytes_down")
MAX_STALL = 600.0


def _default_faults() -> dict:
    return {"rtt_ms": 0, "delay_ms": 0, "jitter_ms": 0, **{f: 0.0 for f in FAULTS}, "stall_ms": 0, "next": [],
            "max_consecutive": 0}


def fault_reply(kind: str, fault: str) -> tuple[int, str, dict, dict]:
    """(status, reason, headers, JSON body) for an injected HTTP fault, shaped like the provider's."""
    rid = str(uuid.uuid4())
    if kind == "aws":
        hdr = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid}
        if fault == "throttle":
            return 400, "Bad Request", hdr, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        if fault == "http500":
            return 500, "Internal Server Error", hdr, {
                "__type": "KMSInternalException",
                "message": "The request was rejected because an internal exception occurred. The request can be retried."}
        return 503, "Service Unavailable", hdr, {"__type": "ServiceUnavailableException",
                                                 "message": "Service is unavailable, please retry."}
    if kind == "azure":
        hdr = {"Content-Type": "application/json; charset=utf-8", "x-ms-request-id": rid}
        if fault == "throttle":
            hdr["Retry-After"] = "1"
            return 429, "Too Many Requests", hdr, {"error": {
                "code": "Throttled",
                "message": "Request was not processed because too many requests were received. Reason: A generic "
                           "throttling reason. Please retry after a short delay."}}
        if fault == "http500":
            return 500, "Internal Server Error", hdr, {"error": {"code": "InternalServerError",
                                                                 "message": "An unexpected error occurred."}}
        return 503, "Service Unavailable", hdr, {"error": {"code": "ServiceUnavailable",
                                                           "message": "The service is temporarily unavailable."}}
    # gcp (and anything else HTTP)
    hdr = {"Content-Type": "application/json; charset=UTF-8"}
    if fault == "throttle":
        return 429, "Too Many Requests", hdr, {"error": {
            "code": 429,
            "message": "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests "
                       "per minute' of service 'cloudkms.googleapis.com'.",
            "status": "RESOURCE_EXHAUSTED"}}
    if fault == "http500":
        return 500, "Internal Server Error", hdr, {"error": {"code": 500, "message": "Internal error encountered.",
                                                             "status": "INTERNAL"}}
    return 503, "Service Unavailable", hdr, {"error": {"code": 503, "message": "The service is currently unavailable.",
                                                       "status": "UNAVAILABLE"}}


class Upstream:
    def __init__(self, name: str, listen: int, target: str, kind: str):
        self.name, self.listen, self.target, self.kind = name, listen, target, kind
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.faults = _default_faults()
        self.counters = {c: 0 for c in COUNTERS}
        self.rng = random.Random()
        self.consecutive = 0

    def decide(self) -> str:
        f = self.faults
        if f["next"]:
            fault = f["next"].pop(0)
        elif f["max_consecutive"] and self.consecutive >= f["max_consecutive"]:
            fault = "pass"
        else:
            r, acc, fault = self.rng.random(), 0.0, "pass"
            for name in FAULTS:
                acc += float(f[name])
                if r < acc:
                    fault = name
                    break
        if fault in HTTP_FAULTS and self.kind not in HTTP_KINDS:
            fault = "pass"
        self.consecutive = self.consecutive + 1 if fault != "pass" else 0
        return fault


class TlsServerStream:
    """Server-side TLS over an asyncio stream through memory BIOs.

    StreamWriter.start_tls would lose a ClientHello that already sits in the
    StreamReader's buffer (it does whenever the proxy delays before answering);
    feeding the SSL object from the reader ourselves loses nothing.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext):
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.buf = b""

    async def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _fill(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionError("client closed the connection")
        self.incoming.write(data)

    async def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
        await self._flush()

    async def _read_more(self) -> None:
        while True:
            try:
                self.buf += self.obj.read(65536)
                return
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()

    async def read_http_request(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            await self._read_more()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip() or 0)
        while len(rest) < length:
            await self._read_more()
            rest = self.buf.partition(b"\r\n\r\n")[2]
        return head + b"\r\n\r\n" + rest[:length]

    async def write(self, data: bytes) -> None:
        self.obj.write(data)
        await self._flush()

    async def close(self) -> None:
        try:
            self.obj.unwrap()
        except ssl.SSLError:
            pass
        await self._flush()
        self.writer.close()


class Proxy:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.upstreams = {n: Upstream(n, u["listen"], u["target"], u.get("kind", "tcp"))
                          for n, u in cfg["upstreams"].items()}
        self.server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_tls.load_cert_chain(cfg["cert"], cfg["key"])
        self.client_tls = ssl.create_default_context(cafile=cfg["ca"])
        self.tasks: set[asyncio.Task] = set()
        for name, settings in cfg.get("faults", {}).items():  # faults from the start
            status, out = self.control("POST", "/faults", {"upstream": name, **settings})
            if status != 200:
                raise SystemExit(f"fault proxy: bad initial faults for {name}: {out}")

    # --- data path ------------------------------------------------------------------------

    async def handle(self, up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        up.counters["connections"] += 1
        fault = up.decide()
        try:
            f = up.faults
            delay = (f["delay_ms"] + (up.rng.uniform(0, f["jitter_ms"]) if f["jitter_ms"] else 0)) / 1000.0
            if delay > 0:
                up.counters["delayed"] += 1
                await asyncio.sleep(delay)
            if fault == "pass":
                await self.pipe(up, reader, writer)
                return
            up.counters[fault] += 1
            if fault == "reset":
                self.rst(writer)
            elif fault == "stall":
                await self.stall(reader, f["stall_ms"])
                writer.close()
            else:
                await self.http_fault(up, fault, reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError) as e:
            print(f"{up.name}: {fault}: {e!r}", file=sys.stderr)
            writer.close()

    @staticmethod
    def rst(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    @staticmethod
    async def stall(reader: asyncio.StreamReader, stall_ms: int) -> None:
        async def drain():
            while await reader.read(65536):
                pass
        try:
            await asyncio.wait_for(drain(), (stall_ms / 1000.0) if stall_ms else MAX_STALL)
        except asyncio.TimeoutError:
            pass

    async def pipe(self, up: Upstream, reader, writer) -> None:
        try:
            ur, uw = await asyncio.open_connection(up.host, up.port)
        except OSError as e:
            up.counters["upstream_errors"] += 1
            print(f"{up.name}: upstream {up.target}: {e!r}", file=sys.stderr)
            self.rst(writer)
            return
        up.counters["passed"] += 1
        up.counters["round_trips"] += 1  # the TCP handshake
        loop = asyncio.get_running_loop()
        half = float(up.faults.get("rtt_ms", 0)) / 2000.0
        opened = loop.time()
        # Whether the client was handed server bytes since its last flight began.
        answered = {"yes": True}

        async def copy(src, dst, counter, upward):
            queue: asyncio.Queue = asyncio.Queue()

            async def deliver():
                while (item := await queue.get()) is not None:
                    due, data = item
                    if (wait := due - loop.time()) > 0:
                        await asyncio.sleep(wait)
                    dst.write(data)
                    await dst.drain()
                    if not upward:
                        answered["yes"] = True

            sender = asyncio.create_task(deliver())
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    up.counters[counter] += len(data)
                    now = loop.time()
                    if upward:
                        if answered["yes"]:
                            up.counters["round_trips"] += 1
                            answered["yes"] = False
                        # Nothing reaches the server before the TCP handshake would have.
                        due = max(now, opened + 2 * half) + half
                    else:
                        due = now + half
                    queue.put_nowait((due, data))
            except (ConnectionError, OSError):
                pass
            finally:
                queue.put_nowait(None)
                try:
                    await sender
                except (ConnectionError, OSError):
                    pass
                try:
                    if dst.can_write_eof():
                        dst.write_eof()
                except (OSError, RuntimeError):
                    pass

        await asyncio.gather(copy(reader, uw, "bytes_up", True), copy(ur, writer, "bytes_down", False))
        uw.close()
        writer.close()

    async def http_fault(self, up: Upstream, fault: str, reader, writer) -> None:
        tls = TlsServerStream(reader, writer, self.server_tls)
        await asyncio.wait_for(tls.handshake(), 30)
        request = await asyncio.wait_for(tls.read_http_request(), 30)
        if fault == "reset_after":
            ur, uw = await asyncio.open_connection(up.host, up.port, ssl=self.client_tls, server_hostname=up.host)
            uw.write(request)
            await uw.drain()
            await ur.read()  # the whole answer (Connection: close), then drop it
            uw.close()
            self.rst(writer)
            return
        status, reason, headers, body = fault_reply(up.kind, fault)
        data = json.dumps(body).encode()
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()),
                 f"Content-Length: {len(data)}", "Connection: close", "", ""]
        await tls.write("\r\n".join(lines).encode() + data)
        await tls.close()


    # --- control --------------------------------------------------------------------------

    def control(self, method: str, path: str, doc: dict) -> tuple[int, dict]:
        if method == "GET" and path == "/upstreams":
            return 200, {n: {"listen": f"127.0.0.1:{u.listen}", "target": u.target, "kind": u.kind}
                         for n, u in self.upstreams.items()}
        if method == "GET" and path == "/faults":
            return 200, {n: u.faults for n, u in self.upstreams.items()}
        if method == "GET" and path == "/counters":
            return 200, {n: u.counters for n, u in self.upstreams.items()}
        if method == "POST" and path == "/counters/reset":
            for u in self.upstreams.values():
                u.counters = {c: 0 for c in COUNTERS}
            return 200, {"ok": True}
        if method == "POST" and path in ("/faults", "/clear"):
            name = doc.get("upstream", "*")
            targets = list(self.upstreams.values()) if name == "*" else [self.upstreams.get(name)]
            if None in targets:
                return 404, {"error": f"unknown upstream {name!r}; known: {sorted(self.upstreams)}"}
            settings = {k: v for k, v in doc.items() if k not in ("upstream", "replace")}
            unknown = set(settings) - set(_default_faults()) - {"seed"}
            if unknown:
                return 400, {"error": f"unknown settings {sorted(unknown)}"}
            if any(n not in FAULTS + ("pass",) for n in settings.get("next", [])):
                return 400, {"error": f"next: names must be among {FAULTS + ('pass',)}"}
            for u in targets:
                if path == "/clear" or doc.get("replace"):
                    u.faults = _default_faults()
                    u.consecutive = 0
                if path == "/faults":
                    if "seed" in settings:
                        u.rng.seed(settings["seed"])
                    u.faults.update({k: (list(v) if k == "next" else v) for k, v in settings.items() if k != "seed"})
                    if sum(float(u.faults[f]) for f in FAULTS) > 1.0 + 1e-9:
                        return 400, {"error": "fault rates add up to more than 1"}
            return 200, {n.name: n.faults for n in targets}
        return 404, {"error": f"no route {method} {path}"}

    async def handle_control(self, reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
                n = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(n) if n else b""
                try:
                    doc = json.loads(raw) if raw else {}
                    status, out = self.control(method, target.split("?")[0], doc)
                except (ValueError, TypeError, AttributeError) as e:
                    status, out = 400, {"error": f"bad request: {e}"}
                data = json.dumps(out).encode()
                close = headers.get("connection", "").lower() == "close"
                writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                             f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                             f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n".encode() + data)
                await writer.drain()
                if close:
                    break
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()

    async def main(self) -> None:
        servers = []
        for up in self.upstreams.values():
            servers.append(await asyncio.start_server(
                lambda r, w, up=up: self.spawn(self.handle(up, r, w)), "127.0.0.1", up.listen))
        servers.append(await asyncio.start_server(self.handle_control, "127.0.0.1", self.cfg["controlPort"]))
        print(f"fault proxy: control {self.cfg['controlPort']}, "
              + ", ".join(f"{u.name} {u.listen}->{u.target}" for u in self.upstreams.values()), file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for s in servers:
            s.close()

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    args = p.parse_args()
    cfg = json.loads(open(args.config).read())
    asyncio.run(Proxy(cfg).main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
