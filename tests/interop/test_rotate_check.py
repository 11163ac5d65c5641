"""Proves the rotate judges (issue 9) before they judge keyshift: rotate_check.py must
pass a correct rotation and fail, precisely, every way a rotation can go wrong;
app_writer.py must record exactly what it wrote; seed.py's rotate options must hold.

The correct rotation is tests/bench/reencrypt_bench.py's PyMongo reference
(pymongo_rotate / pymongo_retire: the rotate contract done with the official driver).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from bson import json_util
from bson.binary import Binary
from pymongo.encryption import ClientEncryption

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "bench"))
sys.path.insert(0, str(TESTS / "interop"))

import reencrypt_bench as bench  # noqa: E402
import rotate_check as rc  # noqa: E402

pytestmark = pytest.mark.timeout(300)
SEED = TESTS / "services" / "seed.py"
CHECK = TESTS / "interop" / "rotate_check.py"
WRITER = TESTS / "interop" / "app_writer.py"


def _env(world) -> dict:
    return {**os.environ, "KS_ENV_FILE": os.environ.get("KS_ENV_FILE", str(Path(world["KS_RUN_DIR"]) / "env"))}


def check(world, d: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), "--dir", str(d), *map(str, extra)],
                          capture_output=True, text=True, timeout=240, env=_env(world))


@pytest.fixture
def seeded(world, tmp_path):
    if "KS_MONGODB_URI" not in world:
        pytest.skip("this world has no MongoDB stand-in")
    tag = uuid.uuid4().hex[:10]
    out = tmp_path / "seeded"
    p = subprocess.run([sys.executable, str(SEED), "--out", str(out), "--keys", "6", "--docs", "40", "--nested",
                        "--expected-all", "--rotate", "--key-vault", f"rc_{tag}.__keyVault", "--db", f"rcapp_{tag}"],
                       capture_output=True, text=True, timeout=180, env=_env(world))
    assert p.returncode == 0, p.stderr
    w = rc.World(out)
    yield out
    client = w.client()
    client.drop_database(f"rc_{tag}")
    client.drop_database(f"rcapp_{tag}")
    client.close()


def test_seed_writes_every_value_and_rotate_config(seeded):
    manifest = json.loads((seeded / "seed.json").read_text())
    lines = (seeded / "expected-all.jsonl").read_text().splitlines()
    assert stat.S_IMODE((seeded / "expected-all.jsonl").stat().st_mode) == 0o600
    assert len(lines) == manifest["encryptedValues"] == 20 * 5 + sum(i % 3 for i in range(20)) + 20 * 2
    assert len(manifest["allKeyIds"]) == 6
    paths = {json.loads(line)["path"] for line in lines}
    assert {"ssn", "email", "medical", "notes", "card", "memo", "address.zip", "history.0.note",
            "history.1.note"} == paths
    assert f'collections = ["{manifest["db"]}.customers", "{manifest["db"]}.orders"]' in \
        (seeded / "keyshift.toml").read_text()


def test_seed_fields_sizes_the_world():
    sys.path.insert(0, str(TESTS / "services"))
    import seed

    for fields, nested in ((100_000, False), (5000, True), (7, False)):
        docs = seed.docs_for_fields(fields, nested)
        assert seed.encrypted_values((docs + 1) // 2, docs // 2, nested) >= fields
        assert seed.encrypted_values(docs // 2, (docs - 1) // 2, nested) < fields


def test_replacement_ids_follow_the_contract():
    old = bytes(range(16))
    new = rc.replacement_id(old)
    assert new[6] >> 4 == 8 and new[8] >> 6 == 0b10 and rc.is_replacement(new)
    assert not rc.is_replacement(old) and not rc.is_replacement(uuid.uuid4().bytes)
    assert rc.replacement_id(old) == new and rc.replacement_id(new) != new


def test_a_correct_rotation_passes_and_each_fault_fails_precisely(world, seeded):
    before = check(world, seeded, "--before-retire")
    assert before.returncode == 1 and "no replacement" in before.stderr and "still under old key" in before.stderr

    stats = bench.pymongo_rotate(seeded)
    assert stats["reencrypted"] == json.loads((seeded / "seed.json").read_text())["encryptedValues"]
    r = check(world, seeded, "--before-retire")
    assert r.returncode == 0, r.stderr
    r = check(world, seeded)
    assert r.returncode == 1 and "still in the key vault after retire" in r.stderr
    assert "is in no retire-*.jsonl" in r.stderr

    backups = seeded / "keyshift-backups"
    bench.pymongo_retire(seeded, backups)
    r = check(world, seeded)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["ok"] and summary["counts"]["backed-up keys proven"] == 6

    w = rc.World(seeded)
    client = w.client()
    db = client[w.seed["db"]]
    entries = [json_util.loads(line) for line in (seeded / "expected-all.jsonl").read_text().splitlines()]
    first = next(e for e in entries if e["collection"] == "customers" and e["path"] == "ssn")
    current = db.customers.find_one({"_id": first["_id"]})["ssn"]
    kms, tls = w.target_providers()
    with ClientEncryption(kms, w.seed["keyVault"], client, bench.CODEC, kms_tls_options=tls) as ce:
        new_key = Binary(rc.replacement_id(uuid.UUID(first["keyId"]).bytes), 4)
        faults = [
            # a value written back under the old key (its original ciphertext)
            ({"ssn": first["ciphertext"]}, ["still under old key", "FAIL scan "]),
            # the right key, the wrong plaintext
            ({"ssn": ce.encrypt("000-00-0000", rc.DETERMINISTIC, key_id=new_key)}, ["decrypts to a different value"]),
            # deterministic turned random
            ({"ssn": ce.encrypt(first["plaintext"], rc.RANDOM, key_id=new_key)}, ["blob type 2, seeded with 1"]),
            # the value gone
            ({"ssn": "plain"}, ["not an encrypted value"]),
        ]
        for change, messages in faults:
            db.customers.update_one({"_id": first["_id"]}, {"$set": change}, bypass_document_validation=True)
            r = check(world, seeded)
            assert r.returncode == 1, change
            for m in messages:
                assert m in r.stderr, (m, r.stderr)
            db.customers.update_one({"_id": first["_id"]}, {"$set": {"ssn": current}})
    assert check(world, seeded).returncode == 0

    # a validator naming an old key
    info = next(db.list_collections(filter={"name": "orders"}))
    good = info["options"]["validator"]
    bad = json.loads(json.dumps(good, default=str))
    old_validator = {"$jsonSchema": {"bsonType": "object", "properties": {"card": {"encrypt": {
        "keyId": [Binary(w.old[2], 4)], "bsonType": "string", "algorithm": rc.DETERMINISTIC}}}}}
    assert bad
    db.command("collMod", "orders", validator=old_validator)
    r = check(world, seeded)
    assert r.returncode == 1 and f"names old key {rc.uid(w.old[2])}" in r.stderr
    db.command("collMod", "orders", validator=good)

    # a backup readable by others, then no backup at all
    backup = next(backups.glob("retire-*.jsonl"))
    backup.chmod(0o644)
    r = check(world, seeded)
    assert r.returncode == 1 and "expected 0600" in r.stderr
    backup.rename(backups / "elsewhere.jsonl.bak")
    r = check(world, seeded)
    assert r.returncode == 1 and "is in no retire-*.jsonl" in r.stderr
    assert "000-00-0000" not in r.stderr + r.stdout and first["plaintext"] not in r.stderr + r.stdout
    client.close()


def test_app_writer_records_only_what_it_wrote_and_a_rotation_catches_it(world, seeded, tmp_path):
    out = tmp_path / "written.jsonl"
    proc = subprocess.Popen([sys.executable, str(WRITER), "--dir", str(seeded), "--out", str(out),
                             "--interval", "0.01"], stdout=subprocess.PIPE, text=True, env=_env(world))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 15):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    result = json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1])
    assert proc.returncode == 0 and result["written"] >= 5
    lines = [json_util.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 * result["written"] and stat.S_IMODE(out.stat().st_mode) == 0o600
    w = rc.World(seeded)
    client = w.client()
    ids = {e["_id"] for e in lines}
    assert client[w.seed["db"]].customers.count_documents({"_id": {"$in": sorted(ids)}}) == len(ids)
    stale = client[w.seed["db"]].customers.find_one({"_id": min(ids)})
    assert rc.header(stale["ssn"])[1] == w.old[0]
    client.close()

    bench.pymongo_rotate(seeded)
    bench.pymongo_retire(seeded, seeded / "keyshift-backups")
    r = check(world, seeded, "--written", out)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["written values decrypted"] == len(lines)
    # a value the application claims to have written but that is not there is caught
    with open(out, "a") as f:
        f.write(json_util.dumps({"collection": "customers", "_id": 99_999_999, "path": "ssn", "plaintext": "x",
                                 "keyId": str(uuid.UUID(bytes=w.old[0])), "algorithm": rc.DETERMINISTIC}) + "\n")
    r = check(world, seeded, "--written", out)
    assert r.returncode == 1 and "_id=99999999 ssn: document missing" in r.stderr
