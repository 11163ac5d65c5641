"""AWS KMS stand-in: moto's KMS served over TLS, plus the knobs moto lacks.

Run by svc_aws.py as its own process:

    KS_AWS_CREDENTIALS=AKID:SECRET,... python kms_aws.py --port P --cert server.pem --key server.key

moto (server mode, in this process) does the KMS work: CreateKey, aliases, Encrypt,
Decrypt, DescribeKey, DisableKey ... What this wrapper adds, so keyshift meets the
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

    POST /__ks/deny     {"keyId": id|arn|alias, "action": "Encrypt"|"Decrypt"|"*"}
    POST /__ks/allow    {"keyId": ..., "action": ...}     undo one deny
    POST /__ks/disable  {"keyId": ...}                    same as moto's DisableKey
    POST /__ks/enable   {"keyId": ...}
    POST /__ks/create   {"alias": "alias/name"?}         -> {"keyId", "arn", "aliasArn"?}
    POST /__ks/reset                                      drop denies, zero counters
    GET  /__ks/state                                      -> {"denies", "counters"}

With --metadata-port it also serves, on plain HTTP, the two places the AWS credential
chain finds temporary credentials on AWS compute (see AwsMetadata): EC2 IMDSv2 and the
ECS container credentials endpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import signal
import ssl
import sys
import threading
from collections import Counter
from urllib.parse import parse_qsl, quote

import moto.backends
from moto.core.exceptions import JsonRESTError
from moto.kms import models as kms_models
from moto.kms import utils as kms_utils
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

ACCOUNT_ID = "123456789012"
USER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/keyshift-test"

_lock = threading.Lock()
_denies: set[tuple[str, str]] = set()  # (key id, action) ; action "*" = every action
_counters: Counter = Counter()
_credentials: dict[str, str] = {}
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


def _encrypt(self, key_id, plaintext, encryption_context):
    _counters["Encrypt"] += 1
    resolved = self.any_id_to_key_id(key_id)
    if resolved in self.keys:
        _deny_check(self, resolved, "Encrypt")
        _key_state_check(self, resolved)
    return _orig_encrypt(self, key_id, plaintext, encryption_context)


def _decrypt(self, ciphertext_blob, encryption_context, key_id=None):
    _counters["Decrypt"] += 1
    try:
        owner = kms_utils._deserialize_ciphertext_blob(ciphertext_blob).key_id
    except Exception:
        owner = None
    if owner in self.keys:
        _deny_check(self, owner, "Decrypt", "the resource associated with this ciphertext")
        _key_state_check(self, owner)
    return _orig_decrypt(self, ciphertext_blob, encryption_context, key_id)


# moto's dispatcher lists its own package directory (a stat per service) on every
# request to find the backend: about 4 ms a request. The list does not change.
_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES

kms_models.KmsBackend.encrypt = _encrypt
kms_models.KmsBackend.decrypt = _decrypt


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


# --- WSGI ---------------------------------------------------------------------------


def _json(start_response, status: str, doc, content_type="application/json"):
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _control(environ, start_response):
    path = environ["PATH_INFO"][len("/__ks/"):]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return _json(start_response, "400 Bad Request", {"error": "body is not JSON"})
    backend = _backend(doc.get("region", "us-east-1"))
    try:
        if path == "state":
            with _lock:
                denies = sorted([k, a] for k, a in _denies)
            return _json(start_response, "200 OK", {"denies": denies, "counters": dict(_counters)})
        if path == "reset":
            with _lock:
                _denies.clear()
            _counters.clear()
            return _json(start_response, "200 OK", {"ok": True})
        if path == "create":
            key = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "keyshift test key", None, False, "AWS_KMS")
            out = {"keyId": key.id, "arn": key.arn}
            if doc.get("alias"):
                backend.create_alias(key.id, doc["alias"])
                out["aliasArn"] = f"arn:aws:kms:{key.region}:{ACCOUNT_ID}:{doc['alias']}"
            return _json(start_response, "200 OK", out)
        key_id = backend.any_id_to_key_id(doc["keyId"])
        if key_id not in backend.keys:
            return _json(start_response, "404 Not Found", {"error": f"no key {doc['keyId']}"})
        if path in ("deny", "allow"):
            action = doc.get("action", "*")
            with _lock:
                (_denies.add if path == "deny" else _denies.discard)((key_id, action))
            return _json(start_response, "200 OK", {"ok": True, "keyId": key_id, "action": action})
        if path == "disable":
            backend.disable_key(key_id)
            return _json(start_response, "200 OK", {"ok": True, "keyId": key_id})
        if path == "enable":
            backend.enable_key(key_id)
            return _json(start_response, "200 OK", {"ok": True, "keyId": key_id})
    except KeyError as e:
        return _json(start_response, "400 Bad Request", {"error": f"missing {e}"})
    return _json(start_response, "404 Not Found", {"error": f"unknown control path {path}"})


class Middleware:
    """Control endpoint and SigV4 check in front of moto's dispatcher."""

    def __init__(self, app, verify_signatures: bool):
        self.app = app
        self.verify_signatures = verify_signatures

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/__ks/"):
            return _control(environ, start_response)
        if self.verify_signatures and "HTTP_X_AMZ_TARGET" in environ:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            err = _sigv4_error(environ, body)
            if err:
                _counters["SignatureRejected"] += 1
                return _json(start_response, "400 Bad Request", {"__type": err[0], "message": err[1]},
                             "application/x-amz-json-1.1")
            environ["wsgi.input"] = io.BytesIO(body)
        if "HTTP_X_AMZ_TARGET" in environ:
            # moto labels its JSON text/html; KMS answers application/x-amz-json-1.1
            def json_start_response(status, headers, exc_info=None):
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
                headers.append(("Content-Type", "application/x-amz-json-1.1"))
                return start_response(status, headers, exc_info)

            return self.app(environ, json_start_response)
        return self.app(environ, start_response)


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


class _LazyHandshakeContext(ssl.SSLContext):
    """Werkzeug wraps the listening socket; by default every TLS handshake then runs in
    the accept loop, one at a time. Deferred, it runs in the connection's own thread."""

    def wrap_socket(self, sock, *args, **kwargs):
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = Middleware(DomainDispatcherApplication(create_backend_app), not args.no_verify_signatures)
    ctx = _LazyHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    run_simple("127.0.0.1", args.port, app, threaded=True, ssl_context=ctx, request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
