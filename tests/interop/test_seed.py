"""The seeder (tests/services/seed.py) builds a deployment the oracle can migrate.

For each target: seed a small deployment into its own namespaces, check the files it
writes (modes, references instead of secrets), then follow keyshift.toml with the
official driver: rewrap every key to the configured target and decrypt the expected
samples with a ClientEncryption holding only the target provider.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption

pytestmark = pytest.mark.timeout(240)

SEED = Path(__file__).resolve().parents[1] / "services" / "seed.py"
CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


def _resolve(value, env: dict[str, str], base: Path):
    if isinstance(value, str) and value.startswith("env:"):
        return env[value[4:]]
    if isinstance(value, str) and value.startswith("file:"):
        return (base / value[5:]).read_bytes()
    return value


@pytest.mark.parametrize("target", ["aws", "azure", "gcp", "kmip"])
def test_seed_then_rewrap_with_its_config(world, tmp_path, target):
    if "KS_MONGODB_URI" not in world:
        pytest.skip("this world has no MongoDB stand-in")
    tag = uuid.uuid4().hex[:10]
    out = tmp_path / "seeded"
    key_vault, db = f"seed_{tag}.__keyVault", f"seedapp_{tag}"
    env_file = Path(world["KS_RUN_DIR"]) / "env"
    proc = subprocess.run(
        [sys.executable, str(SEED), "--out", str(out), "--keys", "9", "--docs", "30", "--target", target,
         "--key-vault", key_vault, "--db", db],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "KS_ENV_FILE": os.environ.get("KS_ENV_FILE", str(env_file))},
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["keys"] == 9 and manifest["collections"] == {"customers": 15, "orders": 15}

    for name in ("master-key.bin", "keyshift.env", "expected.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert len((out / "master-key.bin").read_bytes()) == 96
    env = dict(line.split("=", 1) for line in (out / "keyshift.env").read_text().splitlines())
    toml_text = (out / "keyshift.toml").read_text()
    for secret in env.values():  # every secret is a reference, never a literal
        assert secret not in toml_text
    cfg = tomllib.loads(toml_text)
    assert cfg["target"]["provider"] == target and cfg["keyVault"]["namespace"] == key_vault
    assert cfg["kmsProviders"]["local"]["key"] == "file:master-key.bin"

    client = MongoClient(env["MONGODB_URI"], uuidRepresentation="standard")
    try:
        app = client[db]
        assert app.customers.count_documents({}) == 15 and app.orders.count_documents({}) == 15
        colls = {c["name"]: c for c in app.list_collections()}
        props = colls["customers"]["options"]["validator"]["$jsonSchema"]["properties"]
        assert props["ssn"]["encrypt"]["algorithm"].endswith("Deterministic")
        kv_db, kv_coll = key_vault.split(".", 1)
        assert client[kv_db][kv_coll].count_documents({"keyAltNames": {"$exists": True}}) == 3

        providers = {p: {k: _resolve(v, env, out) for k, v in fields.items()}
                     for p, fields in cfg["kmsProviders"].items()}
        tls = cfg.get("tlsOptions", {})
        with ClientEncryption(providers, key_vault, client, CODEC, kms_tls_options=tls) as ce:
            result = ce.rewrap_many_data_key({}, provider=target, master_key=cfg["target"]["masterKey"])
            assert result.bulk_write_result.modified_count == 9
        only_target = {target: providers[target]}
        expected = json.loads((out / "expected.json").read_text())
        with ClientEncryption(only_target, key_vault, client, CODEC, kms_tls_options=tls) as ce:
            for e in expected:
                doc = app.get_collection(e["collection"], codec_options=CODEC).find_one({"_id": e["_id"]})
                assert ce.decrypt(doc[e["field"]]) == e["plaintext"], e
    finally:
        client.drop_database(db)
        client.drop_database(key_vault.split(".", 1)[0])
        client.close()


def test_seed_refuses_a_non_empty_key_vault(world, tmp_path):
    if "KS_MONGODB_URI" not in world:
        pytest.skip("this world has no MongoDB stand-in")
    tag = uuid.uuid4().hex[:10]
    args = [sys.executable, str(SEED), "--keys", "2", "--docs", "2", "--key-vault", f"seedr_{tag}.kv",
            "--db", f"seedrapp_{tag}"]
    env = {**os.environ, "KS_ENV_FILE": os.environ.get("KS_ENV_FILE", str(Path(world["KS_RUN_DIR"]) / "env"))}
    try:
        first = subprocess.run(args + ["--out", str(tmp_path / "a")], capture_output=True, text=True, env=env, timeout=120)
        assert first.returncode == 0, first.stderr
        again = subprocess.run(args + ["--out", str(tmp_path / "b")], capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode != 0 and "not empty" in again.stderr
        dropped = subprocess.run(args + ["--out", str(tmp_path / "c"), "--drop"], capture_output=True, text=True,
                                 env=env, timeout=120)
        assert dropped.returncode == 0, dropped.stderr
    finally:
        uri = world["KS_MONGODB_URI"]
        client = MongoClient(uri, tlsCAFile=world["KS_CA_FILE"]) if "tls=true" in uri and "tlsCAFile" not in uri \
            else MongoClient(uri)
        client.drop_database(f"seedr_{tag}")
        client.drop_database(f"seedrapp_{tag}")
        client.close()
