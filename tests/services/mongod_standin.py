#!/usr/bin/env python3
"""The test world's MongoDB: a mongod 7.0 stand-in speaking the wire protocol over TLS.

There is no MongoDB server on the test machines; keyshift (Rust `mongodb` driver) and the
oracle (PyMongo + pymongocrypt) talk to this instead. It keeps every BSON type exactly —
binary subtypes 4 and 6 above all, since encrypted data is subtype 6 — and refuses what it
does not implement with a MongoDB-shaped error. With --replset it is the one member of a
replica set (what real deployments are: discovery, retryable writes, failover knobs);
without, a standalone. With --auth every command needs an authenticated
connection (SCRAM-SHA-1/256, MONGODB-AWS).

    mongod_standin.py --port 27017 --cert mongod.pem --key mongod.key
                      [--replset ks0 [--advertise HOST:PORT]] [--auth users.json]
                      [--drop-rate 0.05] [--drop-commands find,getMore]
                      [--drop-after-execute] [--verbose]

--drop-rate starts with the failCommand fail point on: each listed command (default:
the CRUD and cursor commands) has its connection dropped with that probability, before
it runs or, with --drop-after-execute, after it ran. Tests drive the same fail point at
run time with configureFailPoint, as against a real mongod.

This file is the wire layer, built on mockupdb: its accept loop, its OP_MSG / OP_QUERY
parsers and its reply encoders. It replaces mockupdb's per-connection loop, which
serialises every connection behind one lock and reads large messages quadratically,
and it wraps each accepted socket in TLS. What the commands do is in mongo_standin/.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mockupdb  # noqa: E402

from mongo_standin.auth import Authenticator  # noqa: E402
from mongo_standin.commands import CLOSE, Conn, Engine  # noqa: E402
from mongo_standin.replset import Member  # noqa: E402
from mongo_standin.values import CODEC_OPTIONS  # noqa: E402

# mockupdb decodes requests with this module global: keep every type (see values.py).
mockupdb.CODEC_OPTIONS = CODEC_OPTIONS

_HEADER = struct.Struct("<iiii")
_MAX_MESSAGE = 64 * 1024 * 1024
_MORE_TO_COME = mockupdb.OP_MSG_FLAGS["moreToCome"]
DEFAULT_DROP_COMMANDS = ["find", "getMore", "insert", "update", "delete", "findAndModify", "aggregate", "count", "distinct"]


def tune_gc() -> None:
    """Collect cycles less often. A loaded stand-in holds hundreds of thousands of live
    documents and every request decodes thousands of new containers, so with Python's
    default thresholds (700 allocations) the cyclic collector ran several times per
    request and cost more than the decoding itself. Reference counting still frees
    replaced documents at once; only cycles (rare here) wait longer."""
    gc.set_threshold(50_000, 20, 100)


def _recv_exact(sock, n: int) -> bytes | None:
    """n bytes from sock; None on a clean end of stream before the first byte."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            if got == 0:
                return None
            raise ConnectionError("connection closed mid-message")
        got += k
    return bytes(buf)


class StandinServer(mockupdb.MockupDB):
    """mockupdb's server with TLS per connection and the stand-in engine answering."""

    def __init__(self, engine: Engine, port: int, certfile: str, keyfile: str, verbose: bool = False):
        super().__init__(port=port, request_timeout=int(1e6), verbose=False)
        self._address = ("127.0.0.1", port)
        self.engine = engine
        self.log_connections = verbose
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(certfile, keyfile)

    def run(self) -> int:
        self._listening_sock, self._address = mockupdb.bind_tcp_socket(self._address)
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()
        return self.port

    def _receive(self, sock):
        header = _recv_exact(sock, 16)
        if header is None:
            return None
        length, request_id, _, opcode = _HEADER.unpack(header)
        if not 16 < length <= _MAX_MESSAGE:
            raise ConnectionError("bad message length %d" % length)
        body = _recv_exact(sock, length - 16)
        if body is None:
            raise ConnectionError("connection closed mid-message")
        if opcode not in mockupdb.OPCODES:
            raise ConnectionError("unsupported opcode %d (compression is not negotiated)" % opcode)
        # No server object: mockupdb would render every reply as JSON for its log.
        return mockupdb.OPCODES[opcode].unpack(body, sock, None, request_id)

    def _server_loop(self, client, client_addr):  # replaces mockupdb's locked loop
        peer = "%s:%d" % client_addr
        try:
            # A reply larger than one TLS record goes out as several writes; with Nagle on,
            # the last one waits for the client's delayed ACK (~40 ms per reply).
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.settimeout(10)
            sock = self.tls.wrap_socket(client, server_side=True)
            sock.settimeout(None)
        except (OSError, ssl.SSLError) as e:
            if self.log_connections:
                print("TLS handshake with %s failed: %s" % (peer, e), flush=True)
            client.close()
            return
        conn = Conn(peer)
        if self.log_connections:
            print("conn%d from %s" % (conn.id, peer), flush=True)
        try:
            while not self._stopped:
                request = self._receive(sock)
                if request is None:
                    break
                if isinstance(request, mockupdb.OpMsg) or isinstance(request, mockupdb.Command):
                    reply = self.engine.execute(conn, request.namespace, request.doc)
                elif isinstance(request, mockupdb.OpQuery):
                    request.fail("legacy OP_QUERY find is not supported; use the find command")
                    continue
                else:
                    print("conn%d: legacy write opcode %s is not supported; closing" % (conn.id, type(request).__name__), flush=True)
                    break
                if reply is CLOSE:
                    request.hangup()
                    break
                if isinstance(request, mockupdb.OpMsg) and request.flags & _MORE_TO_COME:
                    continue  # unacknowledged write: no reply
                request.replies(reply)
        except (OSError, ConnectionError):
            pass
        except Exception:
            traceback.print_exc()
        finally:
            try:
                sock.close()
            except OSError:
                pass
            if self.log_connections:
                print("conn%d closed" % conn.id, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--drop-rate", type=float, default=0.0,
                        help="probability of dropping the connection on each --drop-commands command")
    parser.add_argument("--drop-commands", default=",".join(DEFAULT_DROP_COMMANDS))
    parser.add_argument("--drop-after-execute", action="store_true",
                        help="drop after the command ran (its reply is lost) instead of before")
    parser.add_argument("--replset", help="be the one member of this replica set (else a standalone)")
    parser.add_argument("--advertise", help="HOST:PORT this member calls itself in hello (default 127.0.0.1:PORT)")
    parser.add_argument("--auth", metavar="FILE", help="require authentication; users and AWS credentials "
                        "from this JSON file (see mongo_standin/auth.py)")
    parser.add_argument("--verbose", action="store_true", help="log connections and every command")
    args = parser.parse_args()

    tune_gc()
    member = Member(args.replset, args.advertise or "127.0.0.1:%d" % args.port) if args.replset else None
    auth = Authenticator.from_file(args.auth) if args.auth else None
    engine = Engine(verbose=args.verbose, member=member, auth=auth)
    if args.drop_rate > 0:
        engine.failpoint.configure({"activationProbability": args.drop_rate},
                                   {"failCommands": args.drop_commands.split(","), "closeConnection": True,
                                    "closeConnectionAfterCommand": args.drop_after_execute})
    server = StandinServer(engine, args.port, args.cert, args.key, verbose=args.verbose)
    port = server.run()
    print("mongod stand-in (pid %d) listening on 127.0.0.1:%d over TLS%s%s" % (
        os.getpid(), port, (", replica set %s as %s" % (member.set_name, member.me) if member else ", standalone")
        + (", authentication required" if auth else ""), ", dropping connections at rate %g" % args.drop_rate if args.drop_rate else ""), flush=True)

    def stop(signum, frame):
        print("mongod stand-in: signal %d, exiting" % signum, flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
