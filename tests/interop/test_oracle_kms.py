"""The oracle against every KMS stand-in: official PyMongo + pymongocrypt (libmongocrypt 1.21).

For each target (aws, azure, gcp, kmip plain and delegated, a named local provider),
exactly what keyshift will do, done by the reference implementation:

1. a key vault on the MongoDB stand-in, local DEKs (some with keyAltNames), values
   encrypted deterministic and random and stored in a collection;
2. `rewrap_many_data_key` to the target with a ClientEncryption that has both providers;
3. a ClientEncryption with *only* the target provider decrypts every stored value, and
   deterministic encryption still gives the same ciphertext (the DEKs did not change);
   the old local-only client can no longer unwrap them.

Then once more through the fault proxy at 20% transient faults (libmongocrypt's KMS
retry is on: pymongocrypt enables it), and with on-demand credentials from the cloud
metadata stand-ins (GCE metadata server, Azure IMDS).
"""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import Algorithm, ClientEncryption
from pymongo.errors import EncryptionError

from kms_oracle import world_providers

pytestmark = pytest.mark.timeout(180)

CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
DET = Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic
RND = Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random
VALUES = ["a secret string", 42, {"nested": ["doc", 1.5]}, "ünïcødé", b"\x00raw\xffbytes"]


@pytest.fixture(scope="module")
def client(world):
    if "KS_MONGODB_URI" not in world:
        pytest.skip("this world has no MongoDB stand-in (KS_MONGODB_URI)")
    uri = world["KS_MONGODB_URI"]
    kwargs = {"uuidRepresentation": "standard", "serverSelectionTimeoutMS": 20000}
    if "tlsCAFile" not in uri and ("tls=true" in uri.lower() or "ssl=true" in uri.lower()):
        kwargs["tlsCAFile"] = world["KS_CA_FILE"]
    c = MongoClient(uri, **kwargs)
    yield c
    c.close()


class Deployment:
    """A fresh key vault + data collection with local DEKs and encrypted values."""

    def __init__(self, client: MongoClient, n_keys: int = 3):
        tag = uuid.uuid4().hex[:12]
        self.client = client
        self.db = f"ks_oracle_{tag}"
        self.key_vault = f"{self.db}.__keyVault"
        self.local = {"local": {"key": os.urandom(96)}}
        self.coll = client[self.db].get_collection("people", codec_options=CODEC)
        with ClientEncryption(self.local, self.key_vault, client, CODEC) as ce:
            self.key_ids = [ce.create_data_key("local", key_alt_names=[f"alt-{tag}-{i}"] if i % 2 else None)
                            for i in range(n_keys)]
            docs = []
            for i, key_id in enumerate(self.key_ids):
                for j, value in enumerate(VALUES):
                    docs.append({"_id": f"{i}-{j}", "key": i, "plain": value,
                                 "det": ce.encrypt(value, DET, key_id=key_id) if not isinstance(value, dict) else None,
                                 "rnd": ce.encrypt(value, RND, key_id=key_id)})
            self.coll.insert_many(docs)

    def key_docs(self) -> list[dict]:
        db, coll = self.key_vault.split(".", 1)
        return list(self.client[db].get_collection(coll, codec_options=CODEC).find({}))

    def check_readable(self, ce: ClientEncryption) -> None:
        n = 0
        for doc in self.coll.find({}):
            for field in ("det", "rnd"):
                if doc[field] is None:
                    continue
                assert isinstance(doc[field], Binary) and doc[field].subtype == 6
                assert ce.decrypt(doc[field]) == doc["plain"], (doc["_id"], field)
                n += 1
            if doc["det"] is not None:  # same DEK, same deterministic ciphertext
                assert ce.encrypt(doc["plain"], DET, key_id=self.key_ids[doc["key"]]) == doc["det"]
        assert n == len(self.key_ids) * (2 * len(VALUES) - 1)

    def drop(self) -> None:
        self.client.drop_database(self.db)


@pytest.fixture()
def deployment(client):
    d = Deployment(client)
    yield d
    d.drop()


def _target(world, name: str, via_proxy: bool = False):
    """(provider name, its kmsProviders entry, master key, tls options for it)."""
    providers, tls, keys = world_providers(world, via_proxy)
    if name == "local:new":
        return "local:new", {"key": os.urandom(96)}, None, {}
    if name == "kmip-delegated":
        return "kmip", providers["kmip"], {"delegated": True}, {"kmip": tls["kmip"]}
    if name not in providers:
        pytest.skip(f"this world has no {name} stand-in")
    return name, providers[name], keys[name], {name: tls[name]}


def _rewrap_and_check(world, d: Deployment, provider, creds, master_key, tls) -> None:
    both = {**d.local, provider: creds}
    with ClientEncryption(both, d.key_vault, d.client, CODEC, kms_tls_options=tls) as ce:
        result = ce.rewrap_many_data_key({}, provider=provider, master_key=master_key)
        assert result.bulk_write_result.modified_count == len(d.key_ids)
    for key in d.key_docs():
        assert key["masterKey"]["provider"] == provider
        if master_key:
            for field, value in master_key.items():
                assert key["masterKey"][field] == value
    only_new = {provider: creds}
    with ClientEncryption(only_new, d.key_vault, d.client, CODEC, kms_tls_options=tls) as ce:
        d.check_readable(ce)
    with ClientEncryption(d.local, d.key_vault, d.client, CODEC) as ce:
        with pytest.raises(EncryptionError):
            ce.decrypt(d.coll.find_one({"_id": "0-0"})["rnd"])


@pytest.mark.parametrize("target", ["aws", "azure", "gcp", "kmip", "kmip-delegated", "local:new"])
def test_rewrap_local_to(world, deployment, target):
    provider, creds, master_key, tls = _target(world, target)
    _rewrap_and_check(world, deployment, provider, creds, master_key, tls)


def test_rewrap_kms_to_kms(world, deployment):
    """aws -> gcp: the old provider is a KMS too (the transition stage between two KMS keys)."""
    providers, tls, keys = world_providers(world)
    with ClientEncryption({**deployment.local, "aws": providers["aws"]}, deployment.key_vault, deployment.client,
                          CODEC, kms_tls_options={"aws": tls["aws"]}) as ce:
        ce.rewrap_many_data_key({}, provider="aws", master_key=keys["aws"])
    deployment.local = {"aws": providers["aws"]}
    _rewrap_and_check(world, deployment, "gcp", providers["gcp"], keys["gcp"],
                      {"aws": tls["aws"], "gcp": tls["gcp"]})


# --------------------------------------------------------------------------- fault proxy


@pytest.fixture()
def faults(world):
    ctl = world.get("KS_PROXY_CONTROL")
    if not ctl:
        pytest.skip("this world has no fault proxy")

    def set_faults(doc):
        r = httpx.post(ctl + "/faults", json=doc, timeout=10)
        assert r.status_code == 200, r.text

    httpx.post(ctl + "/clear", json={}, timeout=10)
    yield set_faults, lambda: httpx.get(ctl + "/counters", timeout=10).json()
    httpx.post(ctl + "/clear", json={}, timeout=10)


@pytest.mark.parametrize("target", ["aws", "azure", "gcp"])
def test_rewrap_through_proxy_with_transient_faults(world, client, faults, target):
    """20% of KMS connections fail transiently; libmongocrypt's retries carry the rewrap through.

    max_consecutive=2 keeps every request within libmongocrypt's retry budget (it gives
    up after 3 failed attempts); AWS gets no throttling fault because libmongocrypt does
    not retry AWS's 400 ThrottlingException (keyshift must: see FIDELITY-kms.md).
    """
    set_faults, counters = faults
    d = Deployment(client, n_keys=8)
    try:
        mix = ({"reset": 0.06, "http500": 0.05, "http503": 0.05, "reset_after": 0.04} if target == "aws" else
               {"reset": 0.05, "http500": 0.04, "http503": 0.04, "throttle": 0.04, "reset_after": 0.03})
        upstreams = {"aws": ["aws"], "azure": ["azure", "azure-identity"], "gcp": ["gcp", "gcp-oauth"]}[target]
        for i, up in enumerate(upstreams):
            set_faults({"upstream": up, "replace": True, "max_consecutive": 2, "seed": 20 + i, "delay_ms": 5, **mix})
        before = counters()
        provider, creds, master_key, tls = _target(world, target, via_proxy=True)
        _rewrap_and_check(world, d, provider, creds, master_key, tls)
        after = counters()
        injected = sum(after[up][f] - before[up][f] for up in upstreams
                       for f in ("reset", "http500", "http503", "throttle", "reset_after"))
        total = sum(after[up]["connections"] - before[up]["connections"] for up in upstreams)
        assert total >= 16 and injected >= 1, (injected, total)
    finally:
        d.drop()


# --------------------------------------------------------------------------- on-demand credentials


def test_on_demand_gcp_credentials_from_metadata_server(world, deployment, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", world["KS_GCP_METADATA_HOST"])
    _, _, master_key, tls = _target(world, "gcp")
    _rewrap_and_check(world, deployment, "gcp", {}, master_key, tls)


def test_on_demand_azure_credentials_from_imds(world, deployment, monkeypatch):
    """PyMongo asks IMDS at the fixed 169.254.169.254; the request is redirected to the stand-in."""
    import pymongocrypt.synchronous.credentials as creds_mod

    real_get = httpx.Client.get
    seen = []

    def get(self, url, *args, **kwargs):
        url = str(url)
        if url.startswith("http://169.254.169.254/"):
            seen.append(url)
            url = url.replace("http://169.254.169.254", f"http://{world['KS_AZURE_IMDS_ENDPOINT']}", 1)
        return real_get(self, url, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "get", get)
    monkeypatch.setattr(creds_mod, "_azure_creds_cache", None)
    _, _, master_key, tls = _target(world, "azure")
    _rewrap_and_check(world, deployment, "azure", {}, master_key, tls)
    assert seen and "resource=https://vault.azure.net" in seen[0]
