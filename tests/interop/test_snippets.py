"""The Python that `keyshift snippet` generates, run as an application would run it.

For every target the test world has (aws, azure, gcp — with its key from the
environment as base64 DER, from a PEM file, and as PEM text in the environment —
and kmip) and both stages:

1. seed a CSFLE deployment under a local master key (tests/services/seed.py) and move
   its keys with the reference implementation, PyMongo's rewrap_many_data_key: every
   other key for the transition stage (so both providers are needed), all of them for
   the final stage;
2. ask the keyshift binary for the snippet (`keyshift snippet --lang python --stage S`)
   and run it in a separate process from the deployment's directory, with its secrets
   in the environment: the application builds its client with the snippet's
   `encrypted_client`, passing its own rules (the schema_map matching the seeded
   collections' validators) and its own query analysis settings (mongocryptd_uri), as
   a user merging the snippet would;
3. prove that through that client the seeded data decrypts; that a new document's
   sensitive fields reach the server ENCRYPTED (read back with a plain client: BSON
   binary subtype 6 under the schema's DEK, no plaintext in the stored bytes); that the
   snippet's ClientEncryption creates a DEK under the target, and that an application
   encrypting explicitly (its own bypass_auto_encryption=True through
   auto_encryption_opts) writes with that DEK.

Automatic encryption needs query analysis (mongocryptd or crypt_shared), which these
machines do not have. `QueryAnalysis` below stands in for mongocryptd: a wire-protocol
server that answers libmongocrypt's marking requests for top-level fields of a
$jsonSchema (deterministic and random, keyId by UUID or by "/field" keyAltName), in the
format libmongocrypt parses (its src/mongocrypt-marking.c; reply shape as its
test/data/dollardb/preserved_fle1/mongocryptd-reply.json). The cryptography stays
libmongocrypt's: the stand-in only says which fields to encrypt with which key.

`test_a_client_that_bypasses_automatic_encryption_writes_plaintext` shows why the old
snippets (bypassAutoEncryption and no schemaMap) were dangerous.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import bson
import mockupdb
import pytest
from bson import json_util
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "tests" / "services"
sys.path.insert(0, str(SERVICES))

from kms_oracle import DETERMINISTIC, RANDOM, world_providers  # noqa: E402

pytestmark = pytest.mark.timeout(240)

KEYSHIFT = Path(os.environ.get("KEYSHIFT_BIN", ROOT / "target" / "debug" / "keyshift"))
CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)

# (name, seed --target, how the GCP key reaches the snippet)
CASES = [
    ("aws", "aws", None),
    ("azure", "azure", None),
    ("gcp", "gcp", None),  # env: base64 of the DER, as seed.py writes it
    ("gcp-pem-file", "gcp", "pem-file"),  # privateKey = "file:…pem", the crash
    ("gcp-pem-env", "gcp", "pem-env"),  # the PEM text in the environment
    ("kmip", "kmip", None),
]


# --------------------------------------------------------------------------- query analysis


class QueryAnalysis:
    """A mongocryptd stand-in on 127.0.0.1: marks the fields a $jsonSchema encrypts.

    libmongocrypt sends it each command with `jsonSchema` and `isRemoteSchema` appended;
    it answers {hasEncryptionPlaceholders, schemaRequiresEncryption, result}, where
    result is the command without those two fields and with each value to encrypt
    replaced by a marking: BSON binary subtype 6 holding 0x00 (FLE1 placeholder) and
    {a: 1 deterministic | 2 random, ki: key UUID | ka: keyAltName, v: value}. Only
    insert documents' top-level fields are marked: all these tests write.
    """

    ALGORITHMS = {DETERMINISTIC: 1, RANDOM: 2}

    def __init__(self):
        self.marked: list[str] = []
        self.server = mockupdb.MockupDB(auto_ismaster=None)
        self.server.autoresponds(self._answer)
        self.server.run()
        self.uri = f"mongodb://127.0.0.1:{self.server.port}"
        self._lock = threading.Lock()

    def close(self):
        self.server.stop()

    def _marking(self, spec: dict, doc: dict, value) -> Binary:
        key_id = spec["keyId"]
        placeholder = {"a": self.ALGORITHMS[spec["algorithm"]]}
        if isinstance(key_id, str):  # "/field": the keyAltName is that field's value
            placeholder["ka"] = doc[key_id.lstrip("/")]
        else:
            placeholder["ki"] = key_id[0]
        placeholder["v"] = value
        return Binary(b"\x00" + bson.encode(placeholder), 6)

    def _answer(self, request):
        cmd = dict(request.doc)
        name = request.command_name.lower() if request.command_name else ""
        if name in ("hello", "ismaster"):
            return request.ok(ismaster=True, isWritablePrimary=True, iscryptd=True, minWireVersion=0,
                              maxWireVersion=21, maxBsonObjectSize=16 * 1024 * 1024,
                              maxMessageSizeBytes=48000000, maxWriteBatchSize=100000)
        if "jsonSchema" not in cmd:
            return request.ok()
        schema = cmd.pop("jsonSchema")
        cmd.pop("isRemoteSchema", None)
        cmd.pop("$db", None)
        props = schema.get("properties", {})
        marked = False
        if name == "insert":
            docs = []
            for doc in cmd.get("documents", []):
                doc = dict(doc)
                for field, spec in props.items():
                    if "encrypt" in spec and field in doc:
                        doc[field] = self._marking(spec["encrypt"], doc, doc[field])
                        marked = True
                        with self._lock:
                            self.marked.append(f"{cmd['insert']}.{field}")
                docs.append(doc)
            cmd["documents"] = docs
        return request.replies({"hasEncryptionPlaceholders": marked,
                                "schemaRequiresEncryption": bool(props), "result": cmd, "ok": 1})


@pytest.fixture(scope="module")
def query_analysis():
    qa = QueryAnalysis()
    yield qa
    qa.close()


# --------------------------------------------------------------------------- deployment


def _env(out: Path) -> dict[str, str]:
    env = dict(os.environ)
    for line in (out / "keyshift.env").read_text().splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def _seed(out: Path, target: str) -> dict:
    ns = f"snip_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        [sys.executable, str(SERVICES / "seed.py"), "--out", str(out), "--keys", "6", "--docs", "8",
         "--target", target, "--key-vault", f"{ns}_kv.__keyVault", "--db", ns],
        check=True, capture_output=True,
    )
    return json.loads((out / "seed.json").read_text())


def _gcp_key_as(world: dict[str, str], out: Path, how: str) -> None:
    """Points keyshift.toml's GCP privateKey at the PEM: a file reference or PEM text."""
    pem_path = world["KS_GCP_PRIVATE_KEY_FILE"]
    toml = (out / "keyshift.toml").read_text()
    assert 'privateKey = "env:GCP_PRIVATE_KEY"' in toml
    if how == "pem-file":
        toml = toml.replace('privateKey = "env:GCP_PRIVATE_KEY"', f'privateKey = "file:{pem_path}"')
        (out / "keyshift.toml").write_text(toml)
    else:
        pem = Path(pem_path).read_text()
        assert pem.startswith("-----BEGIN PRIVATE KEY-----")
        # keyshift.env is KEY=VALUE per line: the PEM goes in a file the runner exports.
        (out / "gcp-pem-env.txt").write_text(pem)


def _move(world: dict[str, str], out: Path, seed: dict, target: str, keys: list[str]) -> None:
    """Rewraps the given DEKs local -> target with PyMongo itself (the reference)."""
    providers, tls, master_keys = world_providers(world)
    client = MongoClient(_env(out)["MONGODB_URI"], uuidRepresentation="standard")
    chosen = [Binary.from_uuid(uuid.UUID(k)) for k in keys]
    local = (out / "master-key.bin").read_bytes()
    with ClientEncryption({"local": {"key": local}, target: providers[target]}, seed["keyVault"], client, CODEC,
                          kms_tls_options={target: tls[target]}) as ce:
        result = ce.rewrap_many_data_key({"_id": {"$in": chosen}}, provider=target,
                                         master_key=master_keys[target] or None)
        assert result.bulk_write_result.modified_count == len(chosen)
    client.close()


def _snippet(out: Path, stage: str) -> str:
    if not KEYSHIFT.exists():
        pytest.skip(f"{KEYSHIFT} is not built (cargo build -p keyshift, or set KEYSHIFT_BIN)")
    done = subprocess.run(
        [str(KEYSHIFT), "snippet", "--lang", "python", "--stage", stage],
        cwd=out, env=_env(out), capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    (out / "generated.py").write_text(done.stdout)
    return done.stdout


def _schema_map(seed: dict) -> dict:
    """The application's own schema_map: the rules of the seeded collections' validators."""
    kid = [Binary.from_uuid(uuid.UUID(k)) for k in seed["keyIds"]]

    def enc(key, bson_type, algorithm):
        return {"encrypt": {"keyId": key if isinstance(key, str) else [key], "bsonType": bson_type,
                            "algorithm": algorithm}}

    db = seed["db"]
    return {
        f"{db}.customers": {"bsonType": "object", "properties": {
            "ssn": enc(kid[0], "string", DETERMINISTIC),
            "email": enc(kid[1], "string", DETERMINISTIC),
            "medical": enc("/tenant", "object", RANDOM),
        }},
        f"{db}.orders": {"bsonType": "object", "properties": {"card": enc(kid[2], "string", DETERMINISTIC)}},
    }


# The application: builds its client from the snippet with its own rules and settings.
APPLICATION = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from bson import json_util
    from bson.binary import Binary
    from pymongo import MongoClient
    from pymongo.encryption import Algorithm

    if Path("gcp-pem-env.txt").exists():  # the PEM text itself in the environment
        os.environ["GCP_PRIVATE_KEY"] = Path("gcp-pem-env.txt").read_text()
    sys.path.insert(0, ".")
    import generated

    app = json_util.loads(Path("app.json").read_text())
    seed = json.loads(Path("seed.json").read_text())
    expected = json.loads(Path("expected.json").read_text())

    client = generated.encrypted_client(
        schema_map=app["schema_map"],
        mongocryptd_uri=app["mongocryptd_uri"],
        mongocryptd_bypass_spawn=True,
    )
    db = client[seed["db"]]
    for e in expected:
        doc = db[e["collection"]].find_one({"_id": e["_id"]})
        assert doc[e["field"]] == e["plaintext"], (e["collection"], e["_id"], e["field"])

    new = app["new"]
    db.customers.insert_one(new["customer"])
    db.orders.insert_one(new["order"])
    back = db.customers.find_one({"_id": new["customer"]["_id"]})
    assert {k: back[k] for k in ("ssn", "email", "medical")} == {
        k: new["customer"][k] for k in ("ssn", "email", "medical")}

    key_vault_client = MongoClient(generated.connection_string())
    ce = generated.client_encryption(key_vault_client)
    key_id = generated.create_data_key(ce, key_alt_names=[app["alt_name"]])

    # An application that encrypts explicitly keeps its own bypass_auto_encryption=True.
    explicit = MongoClient(
        generated.connection_string(),
        auto_encryption_opts=generated.auto_encryption_opts(bypass_auto_encryption=True),
    )
    value = ce.encrypt(new["explicit"], Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, key_id=key_id)
    explicit[seed["db"]].notes.insert_one({"_id": new["customer"]["_id"], "note": value})
    read = explicit[seed["db"]].notes.find_one({"_id": new["customer"]["_id"]})
    assert read["note"] == new["explicit"]
    print(json.dumps({"decrypted": len(expected), "newKey": str(key_id.as_uuid())}))
    """
)


def _run_application(out: Path, app: dict) -> dict:
    (out / "app.json").write_text(json_util.dumps(app, json_options=json_util.CANONICAL_JSON_OPTIONS))
    done = subprocess.run([sys.executable, "-c", APPLICATION], cwd=out, env=_env(out),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _providers_of(client: MongoClient, seed: dict) -> dict[str, str]:
    kv_db, kv_coll = seed["keyVault"].split(".", 1)
    return {str(k["_id"]): k["masterKey"]["provider"]
            for k in client[kv_db][kv_coll].find({}, {"masterKey.provider": 1})}


def _key_of(ciphertext: Binary) -> str:
    """The DEK id inside a CSFLE ciphertext (subtype 6: 1 byte algorithm, 16 bytes key id)."""
    return str(uuid.UUID(bytes=bytes(ciphertext)[1:17]))


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("stage", ["transition", "final"])
@pytest.mark.parametrize("case,target,gcp_key", CASES, ids=[c[0] for c in CASES])
def test_generated_python_runs_in_the_application(world, tmp_path, query_analysis, case, target, gcp_key,
                                                  stage):
    providers, _, _ = world_providers(world)
    if target not in providers:
        pytest.skip(f"this world has no {target} stand-in")
    out = tmp_path / "deploy"
    seed = _seed(out, target)
    if gcp_key:
        _gcp_key_as(world, out, gcp_key)
    # transition: keys 0 and 2 (ssn, card) under the target, key 1 (email) still local
    moved = seed["allKeyIds"][::2] if stage == "transition" else seed["allKeyIds"]
    _move(world, out, seed, target, moved)

    code = _snippet(out, stage)
    assert "bypass_auto_encryption=True," not in code
    assert ('"local": {' in code) == (stage == "transition")
    if case == "gcp-pem-file":
        assert f'_gcp_private_key(_read_text("{world["KS_GCP_PRIVATE_KEY_FILE"]}"))' in code

    plain = MongoClient(_env(out)["MONGODB_URI"], uuidRepresentation="standard")
    before = _providers_of(plain, seed)
    assert {before[k] for k in seed["keyIds"][:3]} == ({target, "local"} if stage == "transition" else {target})

    tag = uuid.uuid4().hex[:8]
    customer = {"_id": f"snippet-{tag}", "name": "New Customer", "tenant": "tenant-00000",
                "ssn": f"999-{tag[:2]}-0001", "email": f"new-{tag}@example.com",
                "medical": {"blood": "B+", "allergies": ["nuts"]}}
    order = {"_id": f"snippet-{tag}", "customer": customer["_id"], "amount": 12.5,
             "card": f"4000-0000-0000-{tag[:4]}"}
    marked_before = len(query_analysis.marked)
    result = _run_application(out, {
        "schema_map": _schema_map(seed), "mongocryptd_uri": query_analysis.uri,
        "new": {"customer": customer, "order": order, "explicit": f"explicit note {tag}"},
        "alt_name": f"made-by-snippet-{tag}",
    })
    assert result["decrypted"] > 0

    # Through automatic encryption, with the application's rules: the stand-in marked the
    # four schema fields, and libmongocrypt encrypted them with the schema's DEKs.
    db = plain[seed["db"]]
    assert sorted(query_analysis.marked[marked_before:]) == [
        "customers.email", "customers.medical", "customers.ssn", "orders.card"]
    stored = db.customers.find_one({"_id": customer["_id"]})
    raw = bson.encode(db.customers.find_one({"_id": customer["_id"]}))
    for field in ("ssn", "email", "medical"):
        assert isinstance(stored[field], Binary) and stored[field].subtype == 6, (field, stored[field])
    assert stored["name"] == "New Customer"  # not in the schema: stays as written
    for secret in (customer["ssn"].encode(), customer["email"].encode(), b"nuts"):
        assert secret not in raw
    assert _key_of(stored["ssn"]) == seed["keyIds"][0]
    assert _key_of(stored["email"]) == seed["keyIds"][1]
    card = db.orders.find_one({"_id": order["_id"]})["card"]
    assert isinstance(card, Binary) and card.subtype == 6 and _key_of(card) == seed["keyIds"][2]

    # The snippet's ClientEncryption made a DEK under the target, and the explicit write used it.
    after = _providers_of(plain, seed)
    assert after[result["newKey"]] == target
    kv_db, kv_coll = seed["keyVault"].split(".", 1)
    made = plain[kv_db][kv_coll].find_one({"keyAltNames": f"made-by-snippet-{tag}"})
    assert made["masterKey"]["provider"] == target
    note = db.notes.find_one({"_id": customer["_id"]})["note"]
    assert isinstance(note, Binary) and note.subtype == 6 and _key_of(note) == result["newKey"]
    plain.close()


def test_a_client_that_bypasses_automatic_encryption_writes_plaintext(world, tmp_path):
    """What the old snippets built for every application: reads decrypt, writes do not encrypt."""
    providers, _, _ = world_providers(world)
    if "aws" not in providers:
        pytest.skip("this world has no aws stand-in")
    out = tmp_path / "deploy"
    seed = _seed(out, "aws")
    _snippet(out, "transition")
    script = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, ".")
        import generated
        from pymongo import MongoClient
        seed = json.load(open("seed.json"))
        old_style = MongoClient(
            generated.connection_string(),
            auto_encryption_opts=generated.auto_encryption_opts(bypass_auto_encryption=True),
        )
        old_style[seed["db"]].people.insert_one({"_id": "old-style", "ssn": "123-45-6789"})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=out, env=_env(out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    stored = MongoClient(_env(out)["MONGODB_URI"])[seed["db"]].people.find_one({"_id": "old-style"})
    assert stored["ssn"] == "123-45-6789"  # in plaintext on the server
