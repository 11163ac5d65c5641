"""Google Cloud KMS stand-in: OAuth token endpoint, Cloud KMS encrypt/decrypt, GCE metadata.

Run by svc_gcp.py as its own process:

    python kms_gcp.py --config gcp.json

Three listeners, all on 127.0.0.1:
- OAuth 2.0 token endpoint (TLS), what kmsProviders.gcp.endpoint points at:
    POST /token  form grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion=JWT
  The JWT must be RS256, signed by the service account's private key (verified against
  its public key), iss = a known service account email, aud = https://HOST/token (HOST
  the endpoint as the client wrote it, or oauth2.googleapis.com), a cloudkms or
  cloud-platform scope, iat/exp within an hour of now.
  -> {"access_token":"ya29....","expires_in":3599,"token_type":"Bearer"}
  Errors as Google answers: 400 {"error":"invalid_grant","error_description":...}
  ("Invalid JWT Signature.", "Invalid grant: account not found", "Invalid JWT: Token must
  be a short-lived token ...", "Invalid JWT: Failed audience check ..."), 400
  unsupported_grant_type, 400 invalid_scope.
- Cloud KMS (TLS), what masterKey.endpoint points at:
    POST /v1/projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]:encrypt {"plaintext"}
      -> {"name": ".../cryptoKeyVersions/N", "ciphertext", "ciphertextCrc32c", ...}
    POST /v1/projects/P/locations/L/keyRings/R/cryptoKeys/K:decrypt {"ciphertext"} -> {"plaintext", ...}
  Real AES-256-GCM under keys held here; the ciphertext names its key version and is
  bound to the crypto key's resource name. Errors in google.rpc.Status form,
  {"error":{"code","message","status","details"?}}: 401 UNAUTHENTICATED (missing, bad
  or expired token), 403 PERMISSION_DENIED (a denied operation, insufficient scope),
  404 NOT_FOUND (unknown key or version), 400 INVALID_ARGUMENT (bad base64, a ciphertext
  this key did not make), 400 FAILED_PRECONDITION (disabled key version).
- GCE metadata server (plain HTTP, like the real metadata.google.internal):
    GET /computeMetadata/v1/instance/service-accounts/default/token  (Metadata-Flavor: Google)
    -> {"access_token","expires_in","token_type"}; without the header 403 (HTML body).
  Set GCE_METADATA_HOST=127.0.0.1:PORT for PyMongo's on-demand GCP credentials.

Control endpoint on the KMS listener (JSON, no token needed):
    POST /__ks/keys     {"name"}            create key K, or a new primary version -> {"name","version"}
    POST /__ks/deny     {"name", "op": "encrypt"|"decrypt"|"*"}
    POST /__ks/allow    {"name", "op"}
    POST /__ks/disable  {"name", "version"?}
    POST /__ks/enable   {"name", "version"?}
    POST /__ks/revoke   {}                   every token issued so far becomes expired
    POST /__ks/reset    {}                   drop denies, zero counters
    GET  /__ks/state                         -> {"keys", "denies", "counters"}
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import struct
import sys
import threading
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import kms_http
from kms_http import Counters, HttpError, Tokens, b64url_decode, route

KMS_SCOPES = ("https://www.googleapis.com/auth/cloudkms", "https://www.googleapis.com/auth/cloud-platform")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAGIC = b"KSG1"


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _status(code: int, status: str, message: str, details: list | None = None) -> HttpError:
    err = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return HttpError(code, {"error": err})


class Gcp:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.accounts = {}
        for email, pem in cfg["serviceAccounts"].items():
            self.accounts[email] = serialization.load_pem_public_key(pem.encode())
        self.default_account = cfg.get("metadataAccount", next(iter(self.accounts)))
        # libmongocrypt derives the JWT scope from the token endpoint's host ("https://www."
        # + everything after its first dot + "/auth/cloudkms": oauth2.googleapis.com gives
        # the real scope), so for 127.0.0.1 it asks for https://www.0.0.1/auth/cloudkms;
        # the stand-in grants that as its own cloudkms scope too.
        self.kms_scopes = KMS_SCOPES + tuple(cfg.get("extraScopes", ["https://www.0.0.1/auth/cloudkms"]))
        self.tokens = Tokens("https://accounts.google.com")
        self.counters = Counters()
        self.lock = threading.Lock()
        self.project, self.location, self.ring = cfg["projectId"], cfg["location"], cfg["keyRing"]
        self.keys: dict[str, dict] = {}  # name -> {"primary": n, "versions": {n: {"key", "enabled"}}}
        self.denies: set[tuple[str, str]] = set()
        for name in cfg.get("keys", []):
            self.create_version(name)

    def key_path(self, name: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/keyRings/{self.ring}/cryptoKeys/{name}"

    def create_version(self, name: str) -> int:
        with self.lock:
            entry = self.keys.setdefault(name, {"primary": 0, "versions": {}})
            n = max(entry["versions"], default=0) + 1
            entry["versions"][n] = {"key": AESGCM.generate_key(256), "enabled": True}
            entry["primary"] = n
        return n

    # --- OAuth ------------------------------------------------------------------------

    def _grant_error(self, description: str, error: str = "invalid_grant"):
        self.counters.inc("token_rejected")
        raise HttpError(400, {"error": error, "error_description": description})

    def token(self, req):
        self.counters.inc("token_requests")
        form = req.form()
        if form.get("grant_type") != JWT_GRANT:
            self._grant_error(f"Invalid grant_type: {form.get('grant_type', '')}", "unsupported_grant_type")
        assertion = form.get("assertion", "")
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            head = json.loads(b64url_decode(head_b64))
            claims = json.loads(b64url_decode(claims_b64))
            sig = b64url_decode(sig_b64)
        except Exception:
            self._grant_error("Invalid JWT: Unable to parse the assertion.")
        if head.get("alg") != "RS256":
            self._grant_error(f"Invalid JWT: Unsupported signing algorithm {head.get('alg')}.")
        pub = self.accounts.get(claims.get("iss"))
        if pub is None:
            self._grant_error("Invalid grant: account not found")
        try:
            pub.verify(sig, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            self._grant_error("Invalid JWT Signature.")
        now = time.time()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (isinstance(iat, (int, float)) and isinstance(exp, (int, float))) or \
                iat > now + 300 or exp < now or exp - iat > 3600:
            self._grant_error("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                              "timeframe. Check your iat and exp values in the JWT claim.")
        host = req.headers.get("Host", "")
        port = req.server.server_address[1]
        good_aud = {"https://oauth2.googleapis.com/token", f"https://{host}/token",
                    f"https://127.0.0.1:{port}/token", f"https://localhost:{port}/token"}
        if claims.get("aud") not in good_aud:
            self._grant_error("Invalid JWT: Failed audience check. The right audience is "
                              f"https://{host}/token")
        scopes = str(claims.get("scope", "")).split()
        if not scopes:
            self._grant_error("Invalid OAuth scope or ID token audience provided.", "invalid_scope")
        self.counters.inc("tokens_issued")
        return 200, self._access_token(claims["iss"], scopes)

    def _access_token(self, email: str, scopes: list[str]) -> dict:
        tok = "ya29." + self.tokens.issue(3599, sub=email, scope=" ".join(scopes))
        return {"access_token": tok, "expires_in": 3599, "token_type": "Bearer"}

    # --- metadata ---------------------------------------------------------------------

    def metadata_token(self, req):
        self.counters.inc("metadata_requests")
        if req.headers.get("Metadata-Flavor") != "Google":
            raise HttpError(403, b"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 403 "
                                 b"(Forbidden)!!1</title>\n  <p><b>403.</b> <ins>That\xe2\x80\x99s an error.</ins>\n  "
                                 b"<p>Your client does not have permission to get URL <code>/computeMetadata/v1/"
                                 b"instance/service-accounts/default/token</code> from this server. Missing "
                                 b"Metadata-Flavor:Google header. <ins>That\xe2\x80\x99s all we know.</ins>\n",
                            {"Content-Type": "text/html; charset=UTF-8"})
        self.counters.inc("metadata_tokens_issued")
        return 200, self._access_token(self.default_account, ["https://www.googleapis.com/auth/cloud-platform"]), \
            {"Metadata-Flavor": "Google"}

    # --- Cloud KMS --------------------------------------------------------------------

    def _authorize(self, req, method: str):
        tok = req.bearer()
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": "googleapis.com",
                "metadata": {"service": "cloudkms.googleapis.com",
                             "method": f"google.cloud.kms.v1.KeyManagementService.{method}"}}
        msg = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
               "other valid authentication credential. See "
               "https://developers.google.com/identity/sign-in/web/devconsole-project.")
        if not tok:
            self.counters.inc("unauthenticated")
            raise _status(401, "UNAUTHENTICATED", msg, [{**info, "reason": "CREDENTIALS_MISSING"}])
        claims, why = self.tokens.check(tok[5:] if tok.startswith("ya29.") else "")
        if claims is None:
            self.counters.inc("unauthenticated")
            reason = "ACCESS_TOKEN_EXPIRED" if why == "expired" else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
            raise _status(401, "UNAUTHENTICATED", msg, [{**info, "reason": reason}])
        if not any(s in self.kms_scopes for s in claims.get("scope", "").split()):
            self.counters.inc("permission_denied")
            raise _status(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.",
                          [{**info, "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}])
        return claims

    def _lookup(self, project, location, ring, name, version, op, email):
        path = f"projects/{project}/locations/{location}/keyRings/{ring}/cryptoKeys/{name}"
        with self.lock:
            entry = self.keys.get(name) if (project, location, ring) == (self.project, self.location, self.ring) else None
            if entry is None:
                self.counters.inc("not_found")
                raise _status(404, "NOT_FOUND", f"CryptoKey {path} not found.")
            n = int(version) if version else entry["primary"]
            ver = entry["versions"].get(n)
        if ver is None:
            self.counters.inc("not_found")
            raise _status(404, "NOT_FOUND", f"CryptoKeyVersion {path}/cryptoKeyVersions/{version} not found.")
        if (name, op) in self.denies or (name, "*") in self.denies:
            self.counters.inc("permission_denied")
            perm = "useToEncrypt" if op == "encrypt" else "useToDecrypt"
            raise _status(403, "PERMISSION_DENIED",
                          f"Permission 'cloudkms.cryptoKeyVersions.{perm}' denied on resource '{path}' "
                          "(or it may not exist).",
                          [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                            "domain": "cloudkms.googleapis.com",
                            "metadata": {"permission": f"cloudkms.cryptoKeyVersions.{perm}", "resource": path}}])
        return path, n, ver

    def _b64_field(self, doc: dict, field: str) -> bytes:
        value = doc.get(field)
        if not isinstance(value, str) or not value:
            raise _status(400, "INVALID_ARGUMENT", f"{field}: field is required")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _status(400, "INVALID_ARGUMENT",
                          f'Invalid value at \'{field}\' (TYPE_BYTES), Base64 decoding failed for "{value[:40]}"')

    def _not_enabled(self, path, n):
        self.counters.inc("failed_precondition")
        raise _status(400, "FAILED_PRECONDITION",
                      f"{path}/cryptoKeyVersions/{n} is not enabled, current state is: DISABLED.")

    def encrypt(self, req, project, location, ring, name, version):
        self.counters.inc("encrypt_requests")
        claims = self._authorize(req, "Encrypt")
        path, n, ver = self._lookup(project, location, ring, name, version, "encrypt", claims.get("sub"))
        doc = req.json_body()
        plaintext = self._b64_field(doc, "plaintext")
        aad = base64.b64decode(doc.get("additionalAuthenticatedData") or "")
        if len(plaintext) > 65536:
            raise _status(400, "INVALID_ARGUMENT", "The plaintext must be at most 64 KiB.")
        if not ver["enabled"]:
            self._not_enabled(path, n)
        nonce = os.urandom(12)
        ct = MAGIC + struct.pack(">I", n) + nonce + AESGCM(ver["key"]).encrypt(nonce, plaintext, path.encode() + b"\0" + aad)
        self.counters.inc("encrypt_ok")
        return 200, {"name": f"{path}/cryptoKeyVersions/{n}", "ciphertext": base64.b64encode(ct).decode(),
                     "ciphertextCrc32c": str(_crc32c(ct)), "verifiedPlaintextCrc32c": False,
                     "verifiedAdditionalAuthenticatedDataCrc32c": False, "protectionLevel": "SOFTWARE"}

    def decrypt(self, req, project, location, ring, name, version):
        self.counters.inc("decrypt_requests")
        claims = self._authorize(req, "Decrypt")
        path, _, _ = self._lookup(project, location, ring, name, version, "decrypt", claims.get("sub"))
        doc = req.json_body()
        ct = self._b64_field(doc, "ciphertext")
        aad = base64.b64decode(doc.get("additionalAuthenticatedData") or "")
        invalid = _status(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
        if len(ct) < 8 + 12 + 16 or ct[:4] != MAGIC:
            self.counters.inc("decrypt_failed")
            raise invalid
        n = struct.unpack(">I", ct[4:8])[0]
        with self.lock:
            ver = self.keys[name]["versions"].get(n)
        if ver is None:
            self.counters.inc("decrypt_failed")
            raise invalid
        if not ver["enabled"]:
            self._not_enabled(path, n)
        try:
            pt = AESGCM(ver["key"]).decrypt(ct[8:20], ct[20:], path.encode() + b"\0" + aad)
        except Exception:
            self.counters.inc("decrypt_failed")
            raise invalid
        self.counters.inc("decrypt_ok")
        return 200, {"plaintext": base64.b64encode(pt).decode(), "plaintextCrc32c": str(_crc32c(pt)),
                     "usedPrimary": n == self.keys[name]["primary"], "protectionLevel": "SOFTWARE"}

    def bad_json_body(self):
        return {"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}

    def not_found(self, req, method, path):
        self.counters.inc("unknown_path")
        if path.startswith("/computeMetadata/"):
            return 404, {"error": "not found"}
        return 404, {"error": {"code": 404, "message": f"The requested URL {path} was not found on this server.",
                               "status": "NOT_FOUND"}}

    # --- control ----------------------------------------------------------------------

    def control(self, req, what):
        doc = req.json_body() if req.command == "POST" else {}
        name = doc.get("name")
        if what == "state":
            with self.lock:
                keys = {k: {"primary": e["primary"],
                            "versions": {str(n): {"enabled": v["enabled"]} for n, v in e["versions"].items()}}
                        for k, e in self.keys.items()}
            return 200, {"keys": keys, "keyPath": self.key_path("{name}"), "denies": sorted(map(list, self.denies)),
                         "counters": self.counters.snapshot()}
        if what == "keys":
            return 200, {"name": name, "version": str(self.create_version(name))}
        if what in ("deny", "allow"):
            (self.denies.add if what == "deny" else self.denies.discard)((name, doc.get("op", "*")))
            return 200, {"ok": True}
        if what in ("disable", "enable"):
            with self.lock:
                if name not in self.keys:
                    return 404, {"error": f"no key {name}"}
                for n, v in self.keys[name]["versions"].items():
                    if not doc.get("version") or str(n) == str(doc["version"]):
                        v["enabled"] = what == "enable"
            return 200, {"ok": True}
        if what == "revoke":
            self.tokens.revoke_all()
            return 200, {"ok": True}
        if what == "reset":
            self.denies.clear()
            self.counters.clear()
            return 200, {"ok": True}
        return 404, {"error": f"unknown control {what}"}


_KEY = r"/v1/projects/([^/]+)/locations/([^/]+)/keyRings/([^/]+)/cryptoKeys/([^/:]+)(?:/cryptoKeyVersions/(\d+))?"
_KEY_ONLY = r"/v1/projects/([^/]+)/locations/([^/]+)/keyRings/([^/]+)/cryptoKeys/([^/:]+)()"
OAUTH_ROUTES = [route("POST", r"/token", "token")]
KMS_ROUTES = [
    route("POST", _KEY + ":encrypt", "encrypt"),
    route("POST", _KEY_ONLY + ":decrypt", "decrypt"),
    route("POST", r"/__ks/(\w+)", "control"),
    route("GET", r"/__ks/(state)", "control"),
]
METADATA_ROUTES = [route("GET", r"/computeMetadata/v1/instance/service-accounts/default/token", "metadata_token")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    args = p.parse_args()
    cfg = json.loads(open(args.config).read())
    app = Gcp(cfg)
    kms_http.serve(app, OAUTH_ROUTES, cfg["oauthPort"], cfg["cert"], cfg["key"])
    kms_http.serve(app, KMS_ROUTES, cfg["kmsPort"], cfg["cert"], cfg["key"])
    kms_http.serve(app, METADATA_ROUTES, cfg["metadataPort"])
    print(f"gcp stand-in: oauth {cfg['oauthPort']}, kms {cfg['kmsPort']}, metadata {cfg['metadataPort']}", file=sys.stderr)
    kms_http.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
