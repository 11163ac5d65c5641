"""Shared plumbing for the HTTP KMS stand-ins (kms_azure.py, kms_gcp.py).

- `JsonHandler`: an HTTP/1.1 request handler that always answers with Content-Length
  (libmongocrypt's HTTP parser needs it), reads bodies by Content-Length, honours
  `Connection: close`, and routes by (method, path regex).
- `serve`: a threaded server on 127.0.0.1, TLS when given a certificate.
- `Tokens`: opaque bearer tokens (HS256 JWTs signed with a per-process secret), so a
  stand-in can verify what it, or its metadata endpoint, handed out, and revoke all.
- `Counters`: thread-safe counters the control endpoint reports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Counters:
    def __init__(self):
        self._c: Counter = Counter()
        self._lock = threading.Lock()

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)

    def clear(self) -> None:
        with self._lock:
            self._c.clear()


class Tokens:
    """Bearer tokens: HS256 JWTs under a per-process secret; `revoke_all` bumps an epoch."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self._secret = os.urandom(32)
        self._epoch = 0

    def issue(self, ttl: int, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now, "nbf": now, "exp": now + ttl, "ks_epoch": self._epoch,
                "jti": uuid.uuid4().hex, **claims}
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(body, separators=(",", ":")).encode())
        sig = hmac.new(self._secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        return f"{head}.{payload}.{b64url(sig)}"

    def check(self, token: str) -> tuple[dict | None, str]:
        """(claims, "") when valid, else (None, reason) with reason in malformed/signature/expired."""
        try:
            head, payload, sig = token.split(".")
            expected = hmac.new(self._secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
            claims = json.loads(b64url_decode(payload))
        except Exception:
            return None, "malformed"
        if not hmac.compare_digest(expected, b64url_decode(sig)):
            return None, "signature"
        if claims.get("ks_epoch") != self._epoch or claims.get("exp", 0) < time.time():
            return None, "expired"
        return claims, ""

    def revoke_all(self) -> None:
        self._epoch += 1


class HttpError(Exception):
    def __init__(self, status: int, body, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class JsonHandler(BaseHTTPRequestHandler):
    """Route table: list of (method, compiled regex, bound-method name)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "keyshift-standin"
    sys_version = ""
    routes: list[tuple[str, re.Pattern, str]] = []
    app = None  # the stand-in object, set by serve()

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # one line per request on stderr (the service log)
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    # --- request helpers -------------------------------------------------------------

    def body(self) -> bytes:
        if not hasattr(self, "_body"):
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def json_body(self) -> dict:
        try:
            doc = json.loads(self.body() or b"{}")
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise HttpError(400, self.app.bad_json_body())
        return doc

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body().decode("utf-8", "replace"), keep_blank_values=True).items()}

    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    # --- reply -------------------------------------------------------------------------

    def reply(self, status: int, body, headers: dict[str, str] | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = dict(headers or {})
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", content_type))
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        # head and body in one write: two small writes meet Nagle + delayed ACK (40 ms)
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(data)
        self.flush_headers()

    def _dispatch(self, method: str) -> None:
        # One handler serves every request of a kept-alive connection: forget the
        # previous request's body.
        self.__dict__.pop("_body", None)
        path = urlsplit(self.path).path
        for m, rx, name in self.routes:
            match = rx.fullmatch(path)
            if m == method and match:
                try:
                    self.body()
                    status, body, *rest = getattr(self.app, name)(self, *match.groups())
                    self.reply(status, body, rest[0] if rest else None)
                except HttpError as e:
                    self.reply(e.status, e.body, e.headers)
                except Exception as e:  # a stand-in bug: say so, as a 500
                    self.log_message("internal error: %r", e)
                    self.reply(500, {"error": f"stand-in internal error: {e!r}"})
                return
        self.body()
        status, body = self.app.not_found(self, method, path)
        self.reply(status, body)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")


def route(method: str, pattern: str, name: str) -> tuple[str, re.Pattern, str]:
    return (method, re.compile(pattern), name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Resets, aborted handshakes and stalls are expected here (the fault proxy makes
        # them on purpose): one line in the log, not a traceback.
        exc = sys.exc_info()[1]
        sys.stderr.write(f"connection from {client_address}: {exc!r}\n")


def serve(app, routes, port: int, cert: str | None = None, key: str | None = None) -> ThreadingHTTPServer:
    """Serve `app` with `routes` on 127.0.0.1:port in a daemon thread (TLS if cert given)."""
    handler = type(f"{type(app).__name__}Handler", (JsonHandler,), {"routes": routes, "app": app})
    server = _Server(("127.0.0.1", port), handler)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        # A client that never finishes its handshake must not block the accept loop:
        # the handshake happens lazily in the handler thread.
    threading.Thread(target=server.serve_forever, daemon=True, name=f"serve-{port}").start()
    return server


def run_forever() -> None:
    """Block until SIGTERM/SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass

