"""Azure Key Vault stand-in: identity platform token endpoint, key vault wrap/unwrap, IMDS.

Run by svc_azure.py as its own process:

    python kms_azure.py --config azure.json

Three listeners, all on 127.0.0.1:
- identity platform (TLS), what libmongocrypt's `identityPlatformEndpoint` points at:
    POST /{tenantId}/oauth2/v2.0/token   form client_id, client_secret, scope, grant_type
    -> {"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":...}
  Errors as Microsoft Entra ID answers them: unknown tenant 400 invalid_request
  (AADSTS90002), unknown client 400 unauthorized_client (AADSTS700016), wrong secret
  401 invalid_client (AADSTS7000215), bad scope 400 invalid_scope (AADSTS70011), other
  grant 400 unsupported_grant_type (AADSTS70003); body {"error", "error_description",
  "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}.
- key vault (TLS), what `keyVaultEndpoint` points at:
    POST /keys/{name}[/{version}]/wrapkey?api-version=7.x     {"alg":"RSA-OAEP-256","value":b64url}
    POST /keys/{name}[/{version}]/unwrapkey?api-version=7.x   -> {"kid":..., "value": b64url}
  Real RSA-OAEP-256 under RSA-2048 keys held here. Errors as Key Vault answers:
  401 {"error":{"code":"Unauthorized","message":"AKV10000: ..."}} with a
  WWW-Authenticate challenge (no/invalid/expired token, wrong audience); 404 KeyNotFound;
  400 BadParameter (bad alg, bad value, undecryptable ciphertext); 403 Forbidden with
  innererror AccessDenied (a denied operation) or KeyDisabled (a disabled key).
- IMDS (plain HTTP, like the real link-local endpoint):
    GET /metadata/identity/oauth2/token?api-version=...&resource=https://vault.azure.net
    header Metadata: true -> {"access_token", "expires_in": "86399" (a string, as IMDS
    does), "expires_on", "not_before", "resource", "token_type", "client_id"}.
  Its tokens are accepted by the key vault listener.

Control endpoint on the key vault listener (JSON, no token needed):
    POST /__ks/keys     {"name"}                 create a key, or a new version -> {"name","version"}
    POST /__ks/deny     {"name", "op": "wrapkey"|"unwrapkey"|"*"}
    POST /__ks/allow    {"name", "op"}
    POST /__ks/disable  {"name", "version"?}     (no version: every version)
    POST /__ks/enable   {"name", "version"?}
    POST /__ks/revoke   {}                        every token issued so far becomes expired
    POST /__ks/reset    {}                        drop denies, zero counters
    GET  /__ks/state                              -> {"keys", "denies", "counters"}
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import threading
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import kms_http
from kms_http import Counters, HttpError, Tokens, b64url, b64url_decode, route

VAULT_RESOURCE = "https://vault.azure.net"
OAEP256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


class Azure:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.tenant = cfg["tenantId"]
        self.clients = {cfg["clientId"]: cfg["clientSecret"]}
        self.managed_identity_client_id = cfg.get("managedIdentityClientId", str(uuid.uuid4()))
        # Key Vault's resource id. libmongocrypt derives the token scope from the vault
        # host (everything after its first dot: "x.vault.azure.net" -> vault.azure.net),
        # so a vault at 127.0.0.1:PORT asks for "https://0.0.1/.default"; the stand-in
        # treats that as its own resource id as well.
        self.resources = [VAULT_RESOURCE] + cfg.get("extraResources", ["https://0.0.1"])
        self.tokens = Tokens(f"https://sts.windows.net/{self.tenant}/")
        self.counters = Counters()
        self.lock = threading.Lock()
        self.keys: dict[str, list[dict]] = {}  # name -> versions, newest last
        self.denies: set[tuple[str, str]] = set()
        for name in cfg.get("keys", []):
            self.create_key(name)

    def create_key(self, name: str, version: str | None = None) -> str:
        version = version or uuid.uuid4().hex
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self.lock:
            self.keys.setdefault(name, []).append({"version": version, "key": priv, "enabled": True})
        return version

    # --- identity platform ------------------------------------------------------------

    def _aad_error(self, status: int, error: str, code: int, text: str):
        trace = str(uuid.uuid4())
        corr = str(uuid.uuid4())
        raise HttpError(status, {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {_now_iso()}",
            "error_codes": [code],
            "timestamp": _now_iso(),
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        })

    def token(self, req, tenant):
        self.counters.inc("token_requests")
        form = req.form()
        if tenant != self.tenant:
            self.counters.inc("token_rejected")
            self._aad_error(400, "invalid_request", 90002,
                            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                            "and are signing into the correct cloud. Check with your subscription administrator, "
                            "this may happen if there are no active subscriptions for the tenant.")
        if form.get("grant_type") != "client_credentials":
            self.counters.inc("token_rejected")
            self._aad_error(400, "unsupported_grant_type", 70003,
                            "The app requested an unsupported grant type "
                            f"'{form.get('grant_type', '')}'.")
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            self.counters.inc("token_rejected")
            self._aad_error(400, "unauthorized_client", 700016,
                            f"Application with identifier '{client_id}' was not found in the directory "
                            f"'{self.tenant}'. This can happen if the application has not been installed by the "
                            "administrator of the tenant or consented to by any user in the tenant. You may "
                            "have sent your authentication request to the wrong tenant.")
        if form.get("client_secret") != self.clients[client_id]:
            self.counters.inc("token_rejected")
            self._aad_error(401, "invalid_client", 7000215,
                            "Invalid client secret provided. Ensure the secret being sent in the request is the "
                            "client secret value, not the client secret ID, for a secret added to app "
                            f"'{client_id}'.")
        scope = form.get("scope", "")
        resource = scope[: -len("/.default")] if scope.endswith("/.default") else None
        if resource not in self.resources:
            self.counters.inc("token_rejected")
            self._aad_error(400, "invalid_scope", 70011,
                            f"The provided request must include a 'scope' input parameter. The provided value "
                            f"for the input parameter 'scope' is not valid. The scope {scope} is not valid.")
        self.counters.inc("tokens_issued")
        tok = self.tokens.issue(3599, aud=resource, appid=client_id, tid=self.tenant)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok}

    # --- IMDS ---------------------------------------------------------------------------

    def imds_token(self, req):
        self.counters.inc("imds_requests")
        if req.headers.get("Metadata", "").lower() != "true":
            raise HttpError(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        q = req.query()
        if not q.get("api-version"):
            raise HttpError(400, {"error": "invalid_request", "error_description": "Required query variable 'api-version' is missing"})
        resource = q.get("resource", "")
        if resource.rstrip("/") not in self.resources:
            raise HttpError(400, {"error": "invalid_resource",
                                  "error_description": f"AADSTS500011: The resource principal named {resource} "
                                                       f"was not found in the tenant named {self.tenant}."})
        now = int(time.time())
        tok = self.tokens.issue(86399, aud=resource.rstrip("/"), appid=self.managed_identity_client_id, tid=self.tenant)
        self.counters.inc("imds_tokens_issued")
        return 200, {
            "access_token": tok,
            "client_id": self.managed_identity_client_id,
            "expires_in": "86399",
            "expires_on": str(now + 86399),
            "ext_expires_in": "86399",
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        }

    # --- key vault ----------------------------------------------------------------------

    def _kv_error(self, status: int, code: str, message: str, inner: str | None = None, headers=None):
        err = {"code": code, "message": message}
        if inner:
            err["innererror"] = {"code": inner}
        raise HttpError(status, {"error": err}, headers)

    def _unauthorized(self, message: str):
        self.counters.inc("unauthorized")
        self._kv_error(401, "Unauthorized", message, headers={
            "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{self.tenant}", '
                                f'resource="{VAULT_RESOURCE}"'})

    def _authorize(self, req) -> dict:
        tok = req.bearer()
        if not tok:
            self._unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        claims, why = self.tokens.check(tok)
        if why == "expired":
            self._unauthorized("[TokenExpired] Error validating token: 'S2S12086'.")
        if claims is None:
            self._unauthorized("AKV10022: Invalid token: the signature or format of the access token is not valid.")
        if claims.get("aud") not in self.resources:
            self._unauthorized(f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {claims.get('aud')}.")
        return claims

    def _find(self, name: str, version: str | None, op: str, host: str) -> dict:
        with self.lock:
            versions = self.keys.get(name)
            entry = None
            if versions:
                entry = versions[-1] if not version else next((v for v in versions if v["version"] == version), None)
        if entry is None:
            self.counters.inc("key_not_found")
            ident = f"{name}/{version}" if version else name
            self._kv_error(404, "KeyNotFound",
                           f"A key with (name/id) {ident} was not found in this key vault. If you recently deleted "
                           "this key you may be able to recover it using the correct recovery command. For help "
                           "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")
        if (name, op) in self.denies or (name, "*") in self.denies:
            self.counters.inc("forbidden")
            perm = "wrap key" if op == "wrapkey" else "unwrap key"
            self._kv_error(403, "Forbidden",
                           f"The user, group or application 'appid={self.cfg['clientId']};iss=https://sts.windows.net/"
                           f"{self.tenant}/' does not have keys {perm} permission on key vault '{host};location=eastus'. "
                           "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                           inner="AccessDenied")
        if not entry["enabled"]:
            self.counters.inc("forbidden")
            self._kv_error(403, "Forbidden", f"Operation {'wrapKey' if op == 'wrapkey' else 'unwrapKey'} is not allowed on a disabled key.",
                           inner="KeyDisabled")
        return entry

    def keyop(self, req, name, version, op):
        self.counters.inc(f"{op}_requests")
        self._authorize(req)
        if not req.query().get("api-version"):
            self._kv_error(400, "BadParameter", "The request URI contains an invalid or missing api-version.")
        host = req.headers.get("Host", "")
        entry = self._find(name, version or None, op, host)
        doc = req.json_body()
        if doc.get("alg") != "RSA-OAEP-256":
            self._kv_error(400, "BadParameter", f"Invalid algorithm: {doc.get('alg')!r}.")
        try:
            value = b64url_decode(doc.get("value") or "")
        except Exception:
            value = b""
        if not value:
            self._kv_error(400, "BadParameter", "Property 'value' is required and must be base64url encoded.")
        key = entry["key"]
        if op == "wrapkey":
            out = key.public_key().encrypt(value, OAEP256)
        else:
            try:
                out = key.decrypt(value, OAEP256)
            except Exception:
                self.counters.inc("unwrap_failed")
                self._kv_error(400, "BadParameter", "The parameter is incorrect.\r\n")
        self.counters.inc(f"{op}_ok")
        return 200, {"kid": f"https://{host}/keys/{name}/{entry['version']}", "value": b64url(out)}

    def bad_json_body(self):
        return {"error": {"code": "BadParameter", "message": "The request body is not valid JSON."}}

    def not_found(self, req, method, path):
        self.counters.inc("unknown_path")
        return 404, {"error": {"code": "NotFound", "message": f"The requested resource {path} was not found."}}

    # --- control ----------------------------------------------------------------------

    def control(self, req, what):
        doc = req.json_body() if req.command == "POST" else {}
        name = doc.get("name")
        if what == "state":
            with self.lock:
                keys = {n: [{"version": v["version"], "enabled": v["enabled"]} for v in vs] for n, vs in self.keys.items()}
            return 200, {"keys": keys, "denies": sorted(map(list, self.denies)), "counters": self.counters.snapshot()}
        if what == "keys":
            return 200, {"name": name, "version": self.create_key(name)}
        if what in ("deny", "allow"):
            (self.denies.add if what == "deny" else self.denies.discard)((name, doc.get("op", "*")))
            return 200, {"ok": True}
        if what in ("disable", "enable"):
            with self.lock:
                if name not in self.keys:
                    return 404, {"error": f"no key {name}"}
                for v in self.keys[name]:
                    if not doc.get("version") or v["version"] == doc["version"]:
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


IDENTITY_ROUTES = [route("POST", r"/([^/]+)/oauth2/v2\.0/token", "token")]
VAULT_ROUTES = [
    route("POST", r"/keys/([^/]+)/([^/]*)/(wrapkey|unwrapkey)", "keyop"),
    route("POST", r"/keys/([^/]+)()/(wrapkey|unwrapkey)", "keyop"),
    route("POST", r"/__ks/(\w+)", "control"),
    route("GET", r"/__ks/(state)", "control"),
]
IMDS_ROUTES = [route("GET", r"/metadata/identity/oauth2/token", "imds_token")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    args = p.parse_args()
    cfg = json.loads(open(args.config).read())
    app = Azure(cfg)
    kms_http.serve(app, IDENTITY_ROUTES, cfg["identityPort"], cfg["cert"], cfg["key"])
    kms_http.serve(app, VAULT_ROUTES, cfg["vaultPort"], cfg["cert"], cfg["key"])
    kms_http.serve(app, IMDS_ROUTES, cfg["imdsPort"])
    print(f"azure stand-in: identity {cfg['identityPort']}, vault {cfg['vaultPort']}, imds {cfg['imdsPort']}", file=sys.stderr)
    kms_http.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
