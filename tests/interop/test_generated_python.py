"""The Python that `keyshift snippet` generates, run by PyMongo against the test world.

- transition stage: with half the keys moved to AWS (by PyMongo's own
  rewrap_many_data_key) and half still under the local key, the generated client
  decrypts every seeded sample — keys under either provider;
- final stage: once every key is under AWS, the generated client — AWS only — decrypts
  every sample, and its create_data_key makes a new DEK under the target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "tests" / "services"
sys.path.insert(0, str(SERVICES))

from kms_oracle import world_providers  # noqa: E402

KEYSHIFT = Path(os.environ.get("KEYSHIFT_BIN", ROOT / "target" / "debug" / "keyshift"))
CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)

# Runs in the config's directory (the snippet reads master-key.bin relative to it) with
# the seeded secrets in the environment, as an application would.
RUNNER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, ".")
    import generated
    expected = json.load(open("expected.json"))
    seed = json.load(open("seed.json"))
    # Reads only: an application that encrypts explicitly keeps bypass_auto_encryption=True
    # in its own options (test_snippets.py runs the automatically encrypting client).
    from pymongo import MongoClient
    client = MongoClient(
        generated.connection_string(),
        auto_encryption_opts=generated.auto_encryption_opts(bypass_auto_encryption=True),
    )
    db = client[seed["db"]]
    for e in expected:
        doc = db[e["collection"]].find_one({"_id": e["_id"]})
        assert doc[e["field"]] == e["plaintext"], (e["collection"], e["_id"], e["field"])
    out = {"decrypted": len(expected)}
    if len(sys.argv) > 1 and sys.argv[1] == "create":
        ce = generated.client_encryption(MongoClient(generated.connection_string()))
        key_id = generated.create_data_key(ce, key_alt_names=["made-by-generated-code"])
        out["newKey"] = str(key_id)
    print(json.dumps(out))
    """
)


def _env(out: Path) -> dict[str, str]:
    env = dict(os.environ)
    for line in (out / "keyshift.env").read_text().splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def _snippet(out: Path, stage: str) -> None:
    code = subprocess.run(
        [str(KEYSHIFT), "snippet", "--lang", "python", "--stage", stage],
        cwd=out, env=_env(out), capture_output=True, text=True, check=True,
    ).stdout
    (out / "generated.py").write_text(code)


def _run(out: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *args], cwd=out, env=_env(out), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture()
def seeded(world, tmp_path):
    if not KEYSHIFT.exists():
        pytest.skip(f"{KEYSHIFT} is not built (cargo build -p keyshift)")
    out = tmp_path / "deploy"
    ns = f"gen_{os.getpid()}_{tmp_path.name}"
    subprocess.run(
        [sys.executable, str(SERVICES / "seed.py"), "--out", str(out), "--keys", "8", "--docs", "8",
         "--target", "aws", "--key-vault", f"{ns}_kv.__keyVault", "--db", ns],
        check=True, capture_output=True,
    )
    return out


def _move(world, out: Path, only_some: bool) -> None:
    """Rewraps keys local -> aws with PyMongo itself (every other key, or all)."""
    seed = json.loads((out / "seed.json").read_text())
    providers, tls, keys = world_providers(world)
    client = MongoClient(_env(out)["MONGODB_URI"], uuidRepresentation="standard")
    kv_db, kv_coll = seed["keyVault"].split(".", 1)
    ids = [d["_id"] for d in client[kv_db].get_collection(kv_coll, codec_options=CODEC).find({}, {"_id": 1}).sort("_id")]
    # rewrap_many_data_key encodes its filter with default codec options: pass Binary.
    chosen = [Binary.from_uuid(u) for u in (ids[::2] if only_some else ids)]
    local = (out / "master-key.bin").read_bytes()
    with ClientEncryption({"local": {"key": local}, "aws": providers["aws"]}, seed["keyVault"], client, CODEC,
                          kms_tls_options={"aws": tls["aws"]}) as ce:
        master = {k: v for k, v in keys["aws"].items()}
        result = ce.rewrap_many_data_key({"_id": {"$in": chosen}}, provider="aws", master_key=master)
        assert result.bulk_write_result.modified_count == len(chosen)


def _providers(out: Path) -> dict[str, int]:
    seed = json.loads((out / "seed.json").read_text())
    kv_db, kv_coll = seed["keyVault"].split(".", 1)
    client = MongoClient(_env(out)["MONGODB_URI"])
    counts: dict[str, int] = {}
    for k in client[kv_db][kv_coll].find({}, {"masterKey.provider": 1}):
        counts[k["masterKey"]["provider"]] = counts.get(k["masterKey"]["provider"], 0) + 1
    return counts


def test_transition_stage_reads_keys_under_either_provider(world, seeded):
    _move(world, seeded, only_some=True)
    assert _providers(seeded) == {"local": 4, "aws": 4}
    _snippet(seeded, "transition")
    assert _run(seeded)["decrypted"] > 0


def test_final_stage_reads_with_the_target_only_and_makes_new_keys_under_it(world, seeded):
    _move(world, seeded, only_some=False)
    _snippet(seeded, "final")
    code = (seeded / "generated.py").read_text()
    assert '"local"' not in code, "the final stage must not configure the local key"
    result = _run(seeded, "create")
    assert result["decrypted"] > 0 and result["newKey"]
    seed = json.loads((seeded / "seed.json").read_text())
    kv_db, kv_coll = seed["keyVault"].split(".", 1)
    client = MongoClient(_env(seeded)["MONGODB_URI"])
    made = client[kv_db][kv_coll].find_one({"keyAltNames": "made-by-generated-code"})
    assert made["masterKey"]["provider"] == "aws"
