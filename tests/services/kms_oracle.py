"""libmongocrypt (pymongocrypt) driven directly, with an in-memory key vault.

The oracle proper (tests/interop/test_oracle_kms.py) runs PyMongo's ClientEncryption
against the MongoDB stand-in. This helper runs the same libmongocrypt state machine
without any database, so the KMS stand-ins can be proven against libmongocrypt on
their own, and so a test can see the exact bytes libmongocrypt sends to a KMS
(`MemVault.requests`). Its KMS I/O mirrors PyMongo's `_EncryptionIO.kms_request`:
TLS per provider, `usleep` back-off, `fail()` on network errors so libmongocrypt retries.

    vault = MemVault({"local": {"key": key96}, "aws": {...}}, tls={"aws": ca_file})
    key_id = vault.create_data_key("local")
    ct = vault.encrypt("secret", key_id, deterministic=True)
    vault.rewrap({}, "aws", {"region": ..., "key": ..., "endpoint": ...})
    assert vault.decrypt(ct) == "secret"
"""

from __future__ import annotations

import socket
import ssl
import time
import uuid

import bson
from bson.binary import Binary
from bson.codec_options import CodecOptions
from pymongocrypt.errors import MongoCryptError
from pymongocrypt.options import MongoCryptOptions
from pymongocrypt.synchronous.explicit_encrypter import ExplicitEncrypter
from pymongocrypt.synchronous.state_machine import MongoCryptCallback

_OPTS = CodecOptions(uuid_representation=4)
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"


def _matches(doc: dict, flt: dict) -> bool:
    """The subset of MongoDB filters libmongocrypt and these tests use."""
    for k, cond in flt.items():
        if k == "$or":
            if not any(_matches(doc, c) for c in cond):
                return False
            continue
        if k == "$and":
            if not all(_matches(doc, c) for c in cond):
                return False
            continue
        value = doc
        for part in k.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values = value if isinstance(value, list) else [value]
        if isinstance(cond, dict) and any(c.startswith("$") for c in cond):
            for op, arg in cond.items():
                if op == "$in":
                    ok = any(v in arg for v in values)
                elif op == "$ne":
                    ok = all(v != arg for v in values)
                elif op == "$exists":
                    ok = (value is not None) == bool(arg)
                else:
                    raise ValueError(f"unsupported operator {op}")
                if not ok:
                    return False
        elif cond not in values and cond != value:
            return False
    return True


class MemVault(MongoCryptCallback):
    """A libmongocrypt client whose key vault is a dict; records KMS traffic."""

    def __init__(self, kms_providers: dict, tls: dict[str, str | dict] | None = None, timeout: float = 10.0):
        self.keys: dict[bytes, dict] = {}
        self.kms_providers = kms_providers
        self.requests: list[tuple[str, str, bytes]] = []  # (provider, endpoint, request bytes)
        self.replies: list[bytes] = []
        self.timeout = timeout
        self._ssl = {}
        for provider, opt in (tls or {}).items():
            if isinstance(opt, str):
                opt = {"ca": opt}
            ctx = ssl.create_default_context(cafile=opt["ca"])
            if opt.get("cert"):
                ctx.load_cert_chain(opt["cert"])
            self._ssl[provider] = ctx
        self._encrypter = ExplicitEncrypter(self, MongoCryptOptions(kms_providers))

    # --- MongoCryptCallback ----------------------------------------------------------

    def kms_request(self, kms_context) -> None:
        endpoint = kms_context.endpoint
        host, _, port = endpoint.partition(":")
        ctx = self._ssl.get(kms_context.kms_provider) or ssl.create_default_context()
        message = kms_context.message
        self.requests.append((kms_context.kms_provider, endpoint, bytes(message)))
        if kms_context.usleep:
            time.sleep(kms_context.usleep / 1e6)
        reply = b""
        try:
            with socket.create_connection((host, int(port or 443)), timeout=self.timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as conn:
                    conn.sendall(message)
                    while kms_context.bytes_needed > 0:
                        data = conn.recv(kms_context.bytes_needed)
                        if not data:
                            raise OSError("KMS connection closed")
                        reply += data
                        kms_context.feed(data)
        except MongoCryptError:
            raise
        except (OSError, ssl.SSLError) as exc:
            if isinstance(exc, socket.timeout):
                raise
            kms_context.fail()  # raises MongoCryptError when out of retries
        finally:
            self.replies.append(reply)

    def collection_info(self, database, filter):
        return None

    def mark_command(self, database, cmd):
        raise NotImplementedError("no automatic encryption here")

    def fetch_keys(self, filter):
        flt = bson.decode(filter, _OPTS)
        ors = flt.get("$or") if set(flt) == {"$or"} else None
        if ors and all(set(c) <= {"_id", "keyAltNames"} and len(c) == 1 and set(next(iter(c.values()))) == {"$in"}
                       for c in ors):
            # libmongocrypt's own key lookup: index it instead of scanning every key
            ids, names = set(), set()
            for c in ors:
                ((field, cond),) = c.items()
                (ids if field == "_id" else names).update(
                    v.bytes if isinstance(v, uuid.UUID) else v for v in cond["$in"])
            hits = [self.keys[i] for i in ids if i in self.keys]
            if names:
                hits += [d for d in self.keys.values() if names & set(d.get("keyAltNames") or [])]
            docs = hits
        else:
            docs = [d for d in list(self.keys.values()) if _matches(d, flt)]
        for doc in docs:
            yield bson.encode(doc, codec_options=_OPTS)

    def insert_data_key(self, data_key):
        doc = bson.decode(data_key, _OPTS)
        self.keys[doc["_id"].bytes if isinstance(doc["_id"], uuid.UUID) else bytes(doc["_id"])] = doc
        return doc["_id"]

    def bson_encode(self, doc):
        return bson.encode(doc, codec_options=_OPTS)

    def close(self):
        pass

    # --- ClientEncryption-like API ------------------------------------------------------

    def create_data_key(self, provider: str, master_key: dict | None = None, alt_names=None) -> uuid.UUID:
        return self._encrypter.create_data_key(provider, master_key, alt_names)

    def encrypt(self, value, key_id=None, deterministic: bool = True, key_alt_name: str | None = None) -> Binary:
        kid = None if key_id is None else key_id.bytes if isinstance(key_id, uuid.UUID) else bytes(key_id)
        out = self._encrypter.encrypt(self.bson_encode({"v": value}), DETERMINISTIC if deterministic else RANDOM,
                                      key_id=kid, key_alt_name=key_alt_name)
        return bson.decode(out, _OPTS)["v"]

    def decrypt(self, ciphertext: Binary):
        return bson.decode(self._encrypter.decrypt(self.bson_encode({"v": ciphertext})), _OPTS)["v"]

    def rewrap(self, flt: dict, provider: str, master_key: dict | None = None) -> int:
        """rewrap_many_data_key; applies the new keyMaterial/masterKey; returns the count."""
        out = self._encrypter.rewrap_many_data_key(
            flt, provider, master_key
        )
        if out is None:
            return 0
        docs = bson.decode(out, _OPTS)["v"]
        for d in docs:
            key = self.keys[d["_id"].bytes if isinstance(d["_id"], uuid.UUID) else bytes(d["_id"])]
            key["keyMaterial"] = d["keyMaterial"]
            key["masterKey"] = d["masterKey"]
        return len(docs)

    def with_providers(self, kms_providers: dict, tls=None) -> "MemVault":
        """A new client over the same key documents with other providers."""
        other = MemVault(kms_providers, tls, self.timeout)
        other.keys = self.keys
        return other

    def close_all(self):
        self._encrypter.close()


# --- the test world's providers, as libmongocrypt / PyMongo want them ----------------------


def world_providers(world: dict[str, str], via_proxy: bool = False) -> tuple[dict, dict, dict]:
    """(kms_providers, kms_tls_options, master_keys) for aws, azure, gcp, kmip from the env file.

    kms_tls_options values are dicts in PyMongo's form ({"tlsCAFile", "tlsCertificateKeyFile"}).
    With via_proxy, endpoints point at the fault proxy instead of the stand-ins.
    """

    def ep(name: str) -> str:
        return world[f"KS_PROXY_{name}"] if via_proxy else world[f"KS_{name}"]

    ca = world["KS_CA_FILE"]
    providers, tls, keys = {}, {}, {}
    if "KS_AWS_ENDPOINT" in world:
        providers["aws"] = {"accessKeyId": world["KS_AWS_ACCESS_KEY_ID"],
                            "secretAccessKey": world["KS_AWS_SECRET_ACCESS_KEY"]}
        tls["aws"] = {"tlsCAFile": ca}
        keys["aws"] = {"region": world["KS_AWS_REGION"], "key": world["KS_AWS_KEY_ARN"], "endpoint": ep("AWS_ENDPOINT")}
    if "KS_AZURE_VAULT_ENDPOINT" in world:
        providers["azure"] = {"tenantId": world["KS_AZURE_TENANT_ID"], "clientId": world["KS_AZURE_CLIENT_ID"],
                              "clientSecret": world["KS_AZURE_CLIENT_SECRET"],
                              "identityPlatformEndpoint": ep("AZURE_IDENTITY_ENDPOINT")}
        tls["azure"] = {"tlsCAFile": ca}
        keys["azure"] = {"keyVaultEndpoint": ep("AZURE_VAULT_ENDPOINT"), "keyName": world["KS_AZURE_KEY_NAME"],
                         "keyVersion": world["KS_AZURE_KEY_VERSION"]}
    if "KS_GCP_KMS_ENDPOINT" in world:
        providers["gcp"] = {"email": world["KS_GCP_EMAIL"], "privateKey": world["KS_GCP_PRIVATE_KEY"],
                            "endpoint": ep("GCP_ENDPOINT")}
        tls["gcp"] = {"tlsCAFile": ca}
        keys["gcp"] = {"projectId": world["KS_GCP_PROJECT_ID"], "location": world["KS_GCP_LOCATION"],
                       "keyRing": world["KS_GCP_KEY_RING"], "keyName": world["KS_GCP_KEY_NAME"],
                       "keyVersion": world["KS_GCP_KEY_VERSION"], "endpoint": ep("GCP_KMS_ENDPOINT")}
    if "KS_KMIP_ENDPOINT" in world:
        providers["kmip"] = {"endpoint": ep("KMIP_ENDPOINT")}
        tls["kmip"] = {"tlsCAFile": world["KS_KMIP_CA_FILE"], "tlsCertificateKeyFile": world["KS_KMIP_CLIENT_CERT"]}
        keys["kmip"] = {}
    return providers, tls, keys


def memvault_tls(tls: dict) -> dict:
    """PyMongo-form kms_tls_options -> MemVault's form."""
    return {p: {"ca": o["tlsCAFile"], "cert": o.get("tlsCertificateKeyFile")} for p, o in tls.items()}
