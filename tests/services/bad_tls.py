#!/usr/bin/env python3
"""TLS endpoints whose certificates a client must refuse, for keyshift's certificate
failure tests (a KMS with a broken certificate must fail at once, never be retried).

    bad_tls.py --listen KIND=PORT:CERT:KEY ... --counts DIR

Each listener accepts TCP connections on 127.0.0.1:PORT and offers a TLS handshake with
its certificate; a client that verifies refuses it. Every accepted connection is counted
in DIR/KIND.count (the number as text), so a test can assert how many attempts a client
made — deterministically, without timing anything. Nothing is served after a handshake.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path


def serve(kind: str, srv: socket.socket, cert: str, key: str, counts: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    counter = counts / f"{kind}.count"
    counter.write_text("0")
    lock = threading.Lock()
    n = 0
    with srv:
        while True:
            conn, _ = srv.accept()
            with lock:
                n += 1
                tmp = counter.with_suffix(".tmp")
                tmp.write_text(str(n))
                os.replace(tmp, counter)
            try:
                conn.settimeout(5)
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate: what the test wants
            finally:
                conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", action="append", required=True, help="KIND=PORT:CERT:KEY")
    p.add_argument("--counts", required=True, type=Path)
    args = p.parse_args()
    args.counts.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threads = []
    # Every port is bound here, before any thread starts: a port someone else holds
    # fails the service at start instead of leaving that listener silently missing.
    listeners = []
    for spec in args.listen:
        kind, rest = spec.split("=", 1)
        port, cert, key = rest.split(":", 2)
        listeners.append((kind, socket.create_server(("127.0.0.1", int(port))), cert, key))
    for kind, srv, cert, key in listeners:
        t = threading.Thread(target=serve, args=(kind, srv, cert, key, args.counts), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
