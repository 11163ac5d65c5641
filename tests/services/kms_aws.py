"""AWS KMS stand-in: moto's KMS served over TLS, plus the knobs moto lacks.

Run by svc_aws.py as its own process:

    KS_AWS_CREDENTIALS=AKID:SECRET,... python kms_aws.py --port P --cert server.pem --key server.key

moto (its KMS models and its KmsResponse handler, in this process) does the KMS work:
CreateKey, aliases, Encrypt, Decrypt, DescribeKey, DisableKey ... The HTTP/TLS server
is this file's own (KmsServer), not moto's Flask/werkzeug one: werkzeug started a
thread, routed through Flask and logged a line for every request, wrote each reply in
two pieces without TCP_NODELAY and waited 10 ms for more input before closing; it cost
~1.7 ms of CPU per request against ~0.9 here and added ~18 ms to each request's latency
(docs/performance.md, "Rewrap"). What this wrapper adds, so keyshift meets the
failures a real account produces:

- SigV4 verification. moto accepts any signature; here a request signed with an
  unknown access key gets 400 UnrecognizedClientException and one signed with the
  wrong secret gets 400 InvalidSignatureException, as AWS answers.
- Key state on use. moto lets a disabled key encrypt and decrypt; here Encrypt and
  Decrypt on a disabled key fail with 400 DisabledException "<arn> is disabled."
  and on a key pending deletion with 400 KMSInvalidStateException.
- Denied actions. moto only evaluates key policies for DescribeKey; a test can deny
  any action on any key, and the call then fails with 400 AccessDeniedException
  "User: <arn> is not authorized to perform: kms:<Action> on resource: <key arn>
  because no resource-based policy allows the kms:<Action> action".
- Counters of KMS calls by action, for tests.

Control endpoint (same TLS port, JSON in and out, no AWS signature):

    POST /__ks/deny     {"keyId": id|arn|alias, "action": "Encrypt"|"Decrypt"|"ReEncryptFrom"|"ReEncryptTo"|"*"}
    POST /__ks/allow    {"keyId": ..., "action": ...}     undo one deny
    POST /__ks/disable  {"keyId": ...}                    same as moto's DisableKey
    POST /__ks/enable   {"keyId": ...}

deny and disable take an optional {"after": N, "counting": "Encrypt"|"Decrypt"|"*"}:
the fault is armed instead of applied, lets the next N requests of the counted action
on that key through, and takes effect on the one after (which then fails). That is how
tests take a key away in the middle of a run without racing it: the point is a count
of requests, not a moment in time. "counting" defaults to the denied action ("*" for
disable). An armed fault shows in /state under "armed"; reset drops it.
    POST /__ks/throttle {"rate": N}                       at most N cryptographic requests
                                                          (Encrypt, Decrypt, ReEncrypt,
                                                          GenerateDataKey) accepted in
                                                          any second; beyond, 400
                                                          ThrottlingException, as AWS
                                                          answers over quota (0: none)
    POST /__ks/create   {"alias": "alias/name"?}         -> {"keyId", "arn", "aliasArn"?}
    POST /__ks/reset                                      drop denies, zero counters
    GET  /__ks/state                                      -> {"denies", "counters", "cpuSeconds",
                                                              "rate"}

"rate" reports the cryptographic requests of the busiest second so far, offered (every
such request, throttled or not) and accepted, and the throttle in force; reset zeroes
it. Seconds are sliding windows at the server: a client pacing at R/s shows at most
R + 1, plus whatever its requests bunch on the way.

With --metadata-port it also serves, on plain HTTP, the two places the AWS credential
chain finds temporary credentials on AWS compute (see AwsMetadata): EC2 IMDSv2 and the
ECS container credentials endpoint.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import hmac
import io
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from urllib.parse import parse_qsl, quote, unquote

import moto.core.responses as moto_responses
from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError
from moto.core.request import Request as MotoRequest
from moto.kms import models as kms_models
from moto.kms import utils as kms_utils
from moto.kms.responses import KmsResponse

ACCOUNT_ID = "123456789012"
USER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/keyshift-test"

_lock = threading.Lock()
_denies: set[tuple[str, str]] = set()  # (key id, action) ; action "*" = every action
_counters: Counter = Counter()  # under _lock: several threads count at once
# Armed faults (under _lock): {"key": id, "counting": action|"*", "left": N,
# "fault": "deny"|"disable", "action": denied action}; see the module doc.
_armed: list[dict] = []
_credentials: dict[str, str] = {}
# Request-rate bookkeeping (under _lock): arrival times of the last second's
# cryptographic requests, offered and accepted, the busiest second of each, the throttle.
_CRYPTO_ACTIONS = ("TrentService.Encrypt", "TrentService.Decrypt", "TrentService.ReEncrypt",
                   "TrentService.GenerateDataKey")
_rate = {"limit": 0, "offered": [], "accepted": [], "maxOffered": 0, "maxAccepted": 0}
_session_tokens: dict[str, str] = {}  # temporary credentials (from the metadata endpoints)


class KmsError(JsonRESTError):
    """A KMS error response: HTTP 400, {"__type": ..., "message": ...}."""

    code = 400

    def __init__(self, error_type: str, message: str):
        super().__init__(error_type, message)


def _key_state_check(backend, key_id: str) -> None:
    key = backend.keys[key_id]
    if key.key_state == "Disabled":
        raise KmsError("DisabledException", f"{key.arn} is disabled.")
    if key.key_state == "PendingDeletion":
        raise KmsError("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def _deny_check(backend, key_id: str, action: str, resource_phrase: str | None = None) -> None:
    with _lock:
        denied = (key_id, action) in _denies or (key_id, "*") in _denies
    if denied:
        resource = resource_phrase or f"resource: {backend.keys[key_id].arn}"
        raise KmsError(
            "AccessDeniedException",
            f"User: {USER_ARN} is not authorized to perform: kms:{action} on {resource} "
            f"because no resource-based policy allows the kms:{action} action",
        )


_orig_encrypt = kms_models.KmsBackend.encrypt
_orig_decrypt = kms_models.KmsBackend.decrypt


def _count(name: str) -> None:
    with _lock:
        _counters[name] += 1


def _fire_armed(backend, key_id: str, action: str) -> None:
    """Counts one request of `action` on `key_id` against the armed faults; a fault
    whose count is used up takes effect now, before this request is checked."""
    fire = []
    with _lock:
        for armed in list(_armed):
            if armed["key"] != key_id or armed["counting"] not in (action, "*"):
                continue
            if armed["left"] > 0:
                armed["left"] -= 1
                continue
            _armed.remove(armed)
            if armed["fault"] == "deny":
                _denies.add((key_id, armed["action"]))
            else:
                fire.append(armed)
    for _ in fire:
        backend.disable_key(key_id)


def _encrypt(self, key_id, plaintext, encryption_context):
    _count("Encrypt")
    resolved = self.any_id_to_key_id(key_id)
    if resolved in self.keys:
        _fire_armed(self, resolved, "Encrypt")
        _deny_check(self, resolved, "Encrypt")
        _key_state_check(self, resolved)
    return _orig_encrypt(self, key_id, plaintext, encryption_context)


def _owner(ciphertext_blob) -> str | None:
    """The id of the key a ciphertext blob was made under (None: not a blob of ours)."""
    try:
        return kms_utils._deserialize_ciphertext_blob(ciphertext_blob).key_id
    except Exception:
        return None


def _decrypt(self, ciphertext_blob, encryption_context, key_id=None):
    _count("Decrypt")
    owner = _owner(ciphertext_blob)
    if owner in self.keys:
        _fire_armed(self, owner, "Decrypt")
        _deny_check(self, owner, "Decrypt", "the resource associated with this ciphertext")
        _key_state_check(self, owner)
    return _orig_decrypt(self, ciphertext_blob, encryption_context, key_id)


def _re_encrypt(self, ciphertext_blob, source_encryption_context, destination_key_id,
                destination_encryption_context):
    """ReEncrypt counted as itself (not as a Decrypt and an Encrypt), authorized as AWS
    does: kms:ReEncryptFrom on the source key, kms:ReEncryptTo on the destination."""
    _count("ReEncrypt")
    owner = _owner(ciphertext_blob)
    if owner in self.keys:
        _fire_armed(self, owner, "ReEncrypt")
        _deny_check(self, owner, "ReEncryptFrom", "the resource associated with this ciphertext")
        _key_state_check(self, owner)
    dest = self.any_id_to_key_id(destination_key_id)
    if dest in self.keys:
        _deny_check(self, dest, "ReEncryptTo")
        _key_state_check(self, dest)
    plaintext, decrypting_arn = _orig_decrypt(self, ciphertext_blob, source_encryption_context)
    blob, encrypting_arn = _orig_encrypt(self, dest, plaintext, destination_encryption_context)
    return blob, decrypting_arn, encrypting_arn


# moto finds an action's method by listing the response class's members
# (inspect.getmembers) on every request; the class does not change.
moto_responses.method_names_from_class = functools.lru_cache(maxsize=None)(
    moto_responses.method_names_from_class)

kms_models.KmsBackend.encrypt = _encrypt
kms_models.KmsBackend.decrypt = _decrypt
kms_models.KmsBackend.re_encrypt = _re_encrypt


def _backend(region: str = "us-east-1"):
    return kms_models.kms_backends[ACCOUNT_ID][region]


# --- SigV4 -------------------------------------------------------------------------


def _sigv4_error(environ, body: bytes) -> tuple[str, str] | None:
    """None if the request is signed by a known key with the right secret, else (type, message)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return ("MissingAuthenticationTokenException", "Missing Authentication Token")
    try:
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, date, region, service, _term = parts["Credential"].split("/")
        signed_headers = parts["SignedHeaders"].split(";")
        signature = parts["Signature"]
    except (ValueError, KeyError):
        return ("IncompleteSignatureException", "Authorization header requires 'Credential', "
                "'Signature' and 'SignedHeaders' parameters.")
    secret = _credentials.get(akid)
    if secret is None:
        return ("UnrecognizedClientException", "The security token included in the request is invalid.")
    if akid in _session_tokens and environ.get("HTTP_X_AMZ_SECURITY_TOKEN") != _session_tokens[akid]:
        return ("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = environ.get("HTTP_X_AMZ_DATE", "")
    headers = []
    for name in signed_headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name == "content-type":
            value = environ.get("CONTENT_TYPE", "")
        elif name == "content-length":
            value = environ.get("CONTENT_LENGTH", "")
        else:
            value = environ.get(key, "")
        headers.append(f"{name}:{' '.join(value.strip().split())}\n")
    query = sorted(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)
    path = quote(environ.get("RAW_URI", environ.get("PATH_INFO", "/")).split("?")[0] or "/", safe="/-_.~%")
    canonical = "\n".join([
        environ["REQUEST_METHOD"], path, canonical_query, "".join(headers),
        ";".join(signed_headers), hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return ("InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.")
    return None


# --- requests -------------------------------------------------------------------------


def _admit(target: str) -> bool:
    """Records a request; False when it is over the throttle (answer ThrottlingException)."""
    if target not in _CRYPTO_ACTIONS:
        return True
    now = time.monotonic()
    with _lock:
        for name in ("offered", "accepted"):
            times = _rate[name]
            while times and times[0] <= now - 1.0:
                times.pop(0)
        _rate["offered"].append(now)
        _rate["maxOffered"] = max(_rate["maxOffered"], len(_rate["offered"]))
        if _rate["limit"] and len(_rate["accepted"]) >= _rate["limit"]:
            _counters["Throttled"] += 1
            return False
        _rate["accepted"].append(now)
        _rate["maxAccepted"] = max(_rate["maxAccepted"], len(_rate["accepted"]))
        return True


def _rate_state() -> dict:
    return {"limit": _rate["limit"], "maxOfferedPerSecond": _rate["maxOffered"],
            "maxAcceptedPerSecond": _rate["maxAccepted"]}


def _control(path: str, raw: bytes) -> tuple[int, dict]:
    """/__ks/<path>: (HTTP status, JSON reply)."""
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return 400, {"error": "body is not JSON"}
    backend = _backend(doc.get("region", "us-east-1"))
    try:
        if path == "state":
            with _lock:
                return 200, {"denies": sorted([k, a] for k, a in _denies), "counters": dict(_counters),
                             "armed": [dict(a) for a in _armed],
                             "cpuSeconds": round(time.process_time(), 3), "rate": _rate_state()}
        if path == "reset":
            with _lock:
                _denies.clear()
                _counters.clear()
                _armed.clear()
                _rate.update({"limit": 0, "offered": [], "accepted": [], "maxOffered": 0, "maxAccepted": 0})
            return 200, {"ok": True}
        if path == "throttle":
            limit = doc.get("rate", 0)
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                return 400, {"error": "rate must be a count per second (an integer >= 0)"}
            with _lock:  # a fresh measurement: earlier requests count against nothing
                _rate.update({"limit": limit, "offered": [], "accepted": [], "maxOffered": 0, "maxAccepted": 0})
            return 200, {"ok": True, "rate": _rate_state()}
        if path == "create":
            key = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "keyshift test key", None, False, "AWS_KMS")
            out = {"keyId": key.id, "arn": key.arn}
            if doc.get("alias"):
                backend.create_alias(key.id, doc["alias"])
                out["aliasArn"] = f"arn:aws:kms:{key.region}:{ACCOUNT_ID}:{doc['alias']}"
            return 200, out
        key_id = backend.any_id_to_key_id(doc["keyId"])
        if key_id not in backend.keys:
            return 404, {"error": f"no key {doc['keyId']}"}
        if path in ("deny", "disable") and "after" in doc:
            after = doc["after"]
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                return 400, {"error": "after must be a count (an integer >= 0)"}
            action = doc.get("action", "*")
            counting = doc.get("counting", action if path == "deny" else "*")
            if counting not in ("Encrypt", "Decrypt", "*"):
                return 400, {"error": "counting must be Encrypt, Decrypt or *"}
            with _lock:
                _armed.append({"key": key_id, "counting": counting, "left": after,
                               "fault": path, "action": action})
            return 200, {"ok": True, "keyId": key_id, "armed": path, "after": after, "counting": counting}
        if path in ("deny", "allow"):
            action = doc.get("action", "*")
            with _lock:
                (_denies.add if path == "deny" else _denies.discard)((key_id, action))
            return 200, {"ok": True, "keyId": key_id, "action": action}
        if path == "disable":
            backend.disable_key(key_id)
            return 200, {"ok": True, "keyId": key_id}
        if path == "enable":
            backend.enable_key(key_id)
            return 200, {"ok": True, "keyId": key_id}
    except KeyError as e:
        return 400, {"error": f"missing {e}"}
    return 404, {"error": f"unknown control path {path}"}


class _ServerRequest(MotoRequest):
    """moto's request type, as its own server makes them (this server adds the Date)."""

    from_wsgi_server = True


AMZ_JSON = "application/x-amz-json-1.1"


class KmsApp:
    """One request in, one reply out: the control endpoint, the SigV4 check, then moto.

    A KMS call (POST / with X-Amz-Target) goes straight to moto's KmsResponse, the
    handler moto's own server (Flask) would route it to: the same request object, the
    same models, the same errors, without the per-request routing around it.
    """

    def __init__(self, verify_signatures: bool):
        self.verify_signatures = verify_signatures

    def __call__(self, environ: dict, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        path = environ["PATH_INFO"]
        if path.startswith("/__ks/"):
            status, doc = _control(path[len("/__ks/"):], body)
            return status, [("Content-Type", "application/json")], json.dumps(doc).encode()
        if "HTTP_X_AMZ_TARGET" not in environ or path != "/":
            return 404, [("Content-Type", "text/plain")], b"Not Found"
        if self.verify_signatures:
            err = _sigv4_error(environ, body)
            if err:
                _count("SignatureRejected")
                return 400, [("Content-Type", AMZ_JSON)], json.dumps({"__type": err[0], "message": err[1]}).encode()
        if not _admit(environ["HTTP_X_AMZ_TARGET"]):
            return 400, [("Content-Type", AMZ_JSON)], json.dumps(
                {"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        environ["wsgi.input"] = io.BytesIO(body)
        request = _ServerRequest(environ)
        try:
            status, headers, content = KmsResponse.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:  # as moto's own server answers these
            status, headers, content = 400, {}, exc.response["Error"]["Message"]
        # moto labels its JSON text/html; KMS answers application/x-amz-json-1.1
        out = [(k, str(v)) for k, v in headers.items() if k.lower() not in ("status", "content-type", "content-length")]
        out.append(("Content-Type", AMZ_JSON))
        return int(status), out, content.encode() if isinstance(content, str) else content


class AwsMetadata:
    """EC2 instance metadata (IMDSv2) and ECS container credentials, on plain HTTP.

    Both hand out the same temporary credentials (an ASIA... key, a secret and a
    session token), which the KMS endpoint accepts only with that session token:
    what the AWS credential chain finds on an EC2 instance or an ECS task.
      PUT /latest/api/token  (X-aws-ec2-metadata-token-ttl-seconds)       -> token
      GET /latest/meta-data/iam/security-credentials/        (X-aws-ec2-metadata-token) -> role
      GET /latest/meta-data/iam/security-credentials/ROLE    -> {"Code": "Success", ...}
      GET /ecs/credentials  (Authorization: the container token, if configured) -> {...}
    IMDSv1 (no token) is refused with 401, as on instances that require IMDSv2.
    """

    ROLE = "keyshift-test-role"

    def __init__(self, akid: str, secret: str, session_token: str, container_token: str):
        self.creds = {"AccessKeyId": akid, "SecretAccessKey": secret, "Token": session_token}
        self.container_token = container_token
        self.imds_tokens: set[str] = set()
        _credentials[akid] = secret
        _session_tokens[akid] = session_token

    def _doc(self) -> dict:
        import datetime

        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        exp = now + datetime.timedelta(hours=6)
        return {**self.creds, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def imds_token(self, req):
        ttl = req.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return 400, b"", {"Content-Type": "text/plain"}
        token = os.urandom(24).hex()
        self.imds_tokens.add(token)
        return 200, token.encode(), {"Content-Type": "text/plain", "X-aws-ec2-metadata-token-ttl-seconds": ttl}

    def _imds_check(self, req):
        from kms_http import HttpError

        if req.headers.get("X-aws-ec2-metadata-token") not in self.imds_tokens:
            raise HttpError(401, b"", {"Content-Type": "text/plain"})

    def imds_roles(self, req):
        self._imds_check(req)
        return 200, self.ROLE.encode(), {"Content-Type": "text/plain"}

    def imds_role(self, req, role):
        self._imds_check(req)
        if role != self.ROLE:
            return 404, b"", {"Content-Type": "text/plain"}
        return 200, {"Code": "Success", "Type": "AWS-HMAC", **self._doc()}

    def ecs(self, req):
        if self.container_token and req.headers.get("Authorization") != self.container_token:
            return 403, {"code": "AccessDenied", "message": "Unable to authenticate the request"}
        return 200, {**self._doc(), "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{self.ROLE}"}

    def bad_json_body(self):
        return {"error": "bad json"}

    def not_found(self, req, method, path):
        return 404, b"", {"Content-Type": "text/plain"}


def serve_metadata(port: int, akid: str, secret: str, session_token: str, container_token: str) -> None:
    import kms_http
    from kms_http import route

    app = AwsMetadata(akid, secret, session_token, container_token)
    kms_http.serve(app, [
        route("PUT", r"/latest/api/token", "imds_token"),
        route("GET", r"/latest/meta-data/iam/security-credentials/?", "imds_roles"),
        route("GET", r"/latest/meta-data/iam/security-credentials/([^/]+)", "imds_role"),
        route("GET", r"/ecs/credentials", "ecs"),
    ], port)


# --- HTTP/1.1 over TLS --------------------------------------------------------------


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required",
            413: "Payload Too Large", 500: "Internal Server Error"}
MAX_BODY = 1 << 20  # KMS requests are small


class KmsServer:
    """HTTP/1.1 over TLS on 127.0.0.1, a thread per connection, no per-request log line.

    Threads come from a pool and go back to it when their connection closes: starting
    a thread per connection (as werkzeug does) cost more than the request itself.

    A connection stays open between requests (as AWS KMS's does; boto3 reuses them)
    unless the request says `Connection: close` — libmongocrypt's always do — and is then
    closed right after the reply, so a client that reads to EOF is not kept waiting.
    Each reply goes out in one write, with TCP_NODELAY.
    The TLS handshake runs in the connection's thread (OpenSSL releases the GIL for it),
    never in the accept loop.
    """

    IDLE_SECONDS = 60
    MAX_CONNECTIONS = 512  # beyond that, new connections wait (accepted) for a free thread

    def __init__(self, app: KmsApp, port: int, ctx: ssl.SSLContext):
        self.app, self.port, self.ctx = app, port, ctx
        threading.stack_size(1 << 20)  # threads are pooled anyway; 8 MiB stacks are not needed
        self.pool = ThreadPoolExecutor(self.MAX_CONNECTIONS, "conn")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1024)

    def serve_forever(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # e.g. out of file descriptors: let connections finish
                time.sleep(0.05)
                continue
            self.pool.submit(self._connection, conn)

    def _connection(self, conn: socket.socket) -> None:
        tls = rfile = None
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.IDLE_SECONDS)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            rfile = tls.makefile("rb")
            while self._request(tls, rfile):
                pass
        except (OSError, ValueError):  # ssl.SSLError, timeouts and resets are OSErrors
            pass
        finally:
            for f in (rfile, tls, conn):
                if f is not None:
                    f.close()

    def _request(self, tls: ssl.SSLSocket, rfile) -> bool:
        """Serves one request; True to keep the connection for the next."""
        line = rfile.readline(8193)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return self._reply(tls, 400, [("Content-Type", "text/plain")], b"Bad Request", False)
        method, target, version = parts
        path, _, query = target.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": unquote(path, "latin-1"), "QUERY_STRING": query,
                   "RAW_URI": target, "REQUEST_URI": target, "SCRIPT_NAME": "", "SERVER_PROTOCOL": version,
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(self.port), "wsgi.url_scheme": "https",
                   "wsgi.version": (1, 0), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                   "wsgi.multiprocess": False, "wsgi.run_once": False}
        for _ in range(100):
            header = rfile.readline(8193)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            name, value = name.strip(), value.strip()
            if "_" in name:  # as werkzeug: X_Foo must not pass for X-Foo
                continue
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        else:
            return self._reply(tls, 400, [("Content-Type", "text/plain")], b"Too many headers", False)
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if "HTTP_TRANSFER_ENCODING" in environ:
            return self._reply(tls, 411, [("Content-Type", "text/plain")], b"Length Required", False)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return self._reply(tls, 413 if length > 0 else 400, [("Content-Type", "text/plain")], b"", False)
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = rfile.read(length) if length else b""
        if len(body) < length:
            return False
        try:
            status, headers, out = self.app(environ, body)
        except Exception as e:  # a bug here or in moto: answer, log, keep serving
            print(f"kms_aws: {method} {target}: {e!r}", file=sys.stderr, flush=True)
            status, headers = 500, [("Content-Type", AMZ_JSON)]
            out = json.dumps({"__type": "KMSInternalException", "message": repr(e)}).encode()
        return self._reply(tls, status, headers, out, keep)

    @staticmethod
    def _reply(tls: ssl.SSLSocket, status: int, headers: list[tuple[str, str]], body: bytes, keep: bool) -> bool:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Date: {formatdate(usegmt=True)}"]
        head += [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        if not keep:
            head.append("Connection: close")
        tls.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return keep


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--credentials", default=os.environ.get("KS_AWS_CREDENTIALS", ""),
                   help="AKID:SECRET,... accepted for SigV4 (default: $KS_AWS_CREDENTIALS)")
    p.add_argument("--no-verify-signatures", action="store_true")
    p.add_argument("--metadata-port", type=int, help="serve EC2 IMDSv2 / ECS credentials here (plain HTTP)")
    args = p.parse_args()
    for pair in filter(None, args.credentials.split(",")):
        akid, secret = pair.split(":", 1)
        _credentials[akid] = secret
    if args.metadata_port:
        # KS_AWS_TEMP_CREDENTIALS=AKID:SECRET:SESSION_TOKEN, KS_AWS_CONTAINER_TOKEN=...
        akid, secret, token = os.environ["KS_AWS_TEMP_CREDENTIALS"].split(":", 2)
        serve_metadata(args.metadata_port, akid, secret, token, os.environ.get("KS_AWS_CONTAINER_TOKEN", ""))
    # os._exit: pooled threads may sit in idle keep-alive connections, which sys.exit would wait for
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    KmsServer(KmsApp(not args.no_verify_signatures), args.port, ctx).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
