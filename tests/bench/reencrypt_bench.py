#!/usr/bin/env python3
"""Re-encryption benchmark (issue 9): `keyshift rotate` against a PyMongo script doing
the same rotation, on the test world.

    reencrypt_bench.py [--fields 100000] [--keys 20] [--keyshift PATH] [--json PATH]
                       [--sample 2000] [--skip-pymongo] [--skip-keyshift] [--keep]
    reencrypt_bench.py --quick            (= --fields 5000 --sample 500)

`make bench-rotate` runs it on a world of its own. Steps:

1. seed.py seeds F encrypted values under 20 local DEKs (--fields F --expected-all
   --rotate --target aws) into database A and key vault A; the data, validators and
   key vault are copied to database B / key vault B, so both runs start identical.
2. (a) PyMongo (the oracle's driver, in a child process) rotates copy A as a careful
   script would: for each old DEK create a new DEK under the AWS stand-in's key
   (ClientEncryption.create_data_key; its _id then set to the contract's replacement
   id so the same checker judges both), collMod the validators, then find every
   document (sorted by _id, batches of 1000), decrypt each value under an old key,
   encrypt it with the new DEK and the same algorithm, and bulk-update (compare-and-
   swap on _id and the old ciphertexts, ordered=false, 1000 statements per batch).
   (b) `keyshift rotate --yes` (release build, proofs on, shipped defaults) rotates
   copy B.
3. Reported per tool: values re-encrypted per second (values / wall seconds of the
   whole process: connect, key creation, validators, scan, writes), peak RSS (the
   child's VmHWM from /proc, polled every 20 ms), CPU seconds; and the ratio. Both
   copies are then judged by tests/interop/rotate_check.py --before-retire --sample S.

The pieces are importable: pymongo_rotate(DIR) and pymongo_retire(DIR, BACKUP_DIR)
are a straightforward reference implementation of the rotate contract in PyMongo,
which tests/interop/test_rotate_check.py uses to prove the checker.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVICES = ROOT / "tests" / "services"
INTEROP = ROOT / "tests" / "interop"
sys.path.insert(0, str(SERVICES))
sys.path.insert(0, str(INTEROP))

from bson import json_util  # noqa: E402
from bson.binary import Binary, UuidRepresentation  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from pymongo import MongoClient, UpdateOne  # noqa: E402

import rotate_check as rc  # noqa: E402
from rewrap_bench import loadavg, read_world, seed_env, vm_hwm_kib  # noqa: E402

PY = sys.executable
CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
ALGORITHM = {1: rc.DETERMINISTIC, 2: rc.RANDOM}


# --- the reference rotation in PyMongo ---------------------------------------------------


def _providers(w: rc.World) -> tuple[dict, dict]:
    """Local (the old master key) and the target, as PyMongo wants them."""
    kms, tls = w.target_providers()
    kms["local"] = {"key": (w.dir / "master-key.bin").read_bytes()}
    return kms, tls


def _rewrite_schema(node, mapping: dict[bytes, bytes]):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("encrypt", "encryptMetadata") and isinstance(v, dict) and isinstance(v.get("keyId"), list):
                v = {**v, "keyId": [Binary(mapping.get(rc.as_bytes(x), rc.as_bytes(x)), 4)
                                    if isinstance(x, (Binary, uuid.UUID)) else x for x in v["keyId"]]}
            out[k] = _rewrite_schema(v, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite_schema(v, mapping) for v in node]
    return node


def pymongo_rotate(seed_dir: Path, batch: int = 1000) -> dict:
    """Rotate every seeded DEK of seed_dir's world and re-encrypt every value; counts."""
    from pymongo.encryption import ClientEncryption

    w = rc.World(seed_dir)
    client = w.client()
    kv_db, kv_coll = w.seed["keyVault"].split(".", 1)
    vault = client[kv_db].get_collection(kv_coll, codec_options=CODEC)
    kms, tls = _providers(w)
    master_key = {k: w.resolve(v) for k, v in w.target_key.items()}
    stats = {"keysCreated": 0, "reencrypted": 0, "scanned": 0, "changedMeanwhile": 0}
    with ClientEncryption(kms, w.seed["keyVault"], client, CODEC, kms_tls_options=tls or None) as ce:
        mapping = {}
        for old in w.old:
            new = rc.replacement_id(old)
            mapping[old] = new
            if vault.find_one({"_id": Binary(new, 4)}) is None:
                made = ce.create_data_key(w.target, master_key=master_key or None)
                doc = vault.find_one({"_id": made})
                doc["_id"] = uuid.UUID(bytes=new)
                vault.insert_one(doc)
                vault.delete_one({"_id": made})
                stats["keysCreated"] += 1
        db = client[w.seed["db"]]
        for info in db.list_collections():
            validator = info.get("options", {}).get("validator")
            if validator:
                rewritten = _rewrite_schema(validator, mapping)
                if rewritten != validator:
                    db.command("collMod", info["name"], validator=rewritten)
        for name in ("customers", "orders"):
            coll = db.get_collection(name, codec_options=CODEC)
            ops = []
            for d in coll.find({}, sort=[("_id", 1)], batch_size=batch):
                stats["scanned"] += 1
                flt, new_values = {"_id": d["_id"]}, {}
                for path, v in rc.walk(d):
                    kind, kid = rc.header(v)
                    if kid is None or kid not in mapping:
                        continue
                    plain = ce.decrypt(v)
                    new_values[path] = ce.encrypt(plain, ALGORITHM[kind], key_id=Binary(mapping[kid], 4))
                    flt[path] = v
                if new_values:
                    ops.append(UpdateOne(flt, {"$set": new_values}))
                    stats["reencrypted"] += len(new_values)
                if len(ops) >= batch:
                    r = coll.bulk_write(ops, ordered=False)
                    stats["changedMeanwhile"] += len(ops) - r.matched_count
                    ops = []
            if ops:
                r = coll.bulk_write(ops, ordered=False)
                stats["changedMeanwhile"] += len(ops) - r.matched_count
    client.close()
    return stats


def pymongo_retire(seed_dir: Path, backup_dir: Path) -> dict:
    """Back up the old DEKs (rewrap's backup format, retire-RUN.jsonl, 0600, fsynced),
    move their keyAltNames to the replacements, delete them."""
    w = rc.World(seed_dir)
    client = w.client()
    kv_db, kv_coll = w.seed["keyVault"].split(".", 1)
    vault = client[kv_db].get_collection(kv_coll, codec_options=CODEC)
    old_docs = [d for d in vault.find({"_id": {"$in": [Binary(o, 4) for o in w.old]}})]
    backup_dir.mkdir(parents=True, exist_ok=True)
    run = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
    path = backup_dir / f"retire-{run}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    opts = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, uuid_representation=UuidRepresentation.STANDARD)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"keyshiftBackup": 1, "keyVault": w.seed["keyVault"],
                            "target": json.loads(json_util.dumps({"provider": w.target, **w.target_key}, json_options=opts)),
                            "runId": run}) + "\n")
        for d in old_docs:
            f.write(json_util.dumps(d, json_options=opts) + "\n")
        f.flush()
        os.fsync(f.fileno())
    for d in old_docs:
        new = Binary(rc.replacement_id(rc.as_bytes(d["_id"])), 4)
        names = d.get("keyAltNames") or []
        if names:
            vault.update_one({"_id": d["_id"], "keyMaterial": d["keyMaterial"]}, {"$unset": {"keyAltNames": ""}})
            vault.update_one({"_id": new}, {"$addToSet": {"keyAltNames": {"$each": names}}})
        vault.delete_one({"_id": d["_id"], "keyMaterial": d["keyMaterial"]})
    client.close()
    return {"retired": len(old_docs), "backup": str(path)}


# --- copies ------------------------------------------------------------------------------


def copy_world(client: MongoClient, src: Path, dst: Path, db: str, key_vault: str) -> Path:
    """A second identical deployment: the key vault, collections (with validators) and
    the seed directory's files, renamed to db / key_vault."""
    w = rc.World(src)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    s_db, s_kv = w.seed["db"], w.seed["keyVault"]
    pairs = [((s_db, info["name"]), (db, info["name"])) for info in client[s_db].list_collections()
             if f"{s_db}.{info['name']}" != s_kv]
    pairs.append((tuple(s_kv.split(".", 1)), tuple(key_vault.split(".", 1))))
    client.drop_database(db)
    client[key_vault.split(".", 1)[0]].drop_collection(key_vault.split(".", 1)[1])
    for (sd, sc), (dd, dc) in pairs:
        info = next(client[sd].list_collections(filter={"name": sc}))
        client[dd].create_collection(dc, **info.get("options", {}))
        for ix in client[sd][sc].list_indexes():
            if ix["name"] != "_id_":
                spec = {k: v for k, v in ix.items() if k not in ("v", "ns")}
                client[dd].command("createIndexes", dc, indexes=[spec])
        batch = []
        for d in client[sd][sc].find({}, batch_size=5000):
            batch.append(d)
            if len(batch) >= 5000:
                client[dd][dc].insert_many(batch, ordered=False)
                batch = []
        if batch:
            client[dd][dc].insert_many(batch, ordered=False)
    seed = dict(w.seed, db=db, keyVault=key_vault)
    (dst / "seed.json").write_text(json.dumps(seed, indent=1) + "\n")
    toml = (dst / "keyshift.toml").read_text()
    toml = re.sub(r'(?m)^namespace = .*$', f'namespace = "{key_vault}"', toml)
    toml = re.sub(r'(?m)^collections = .*$', f'collections = ["{db}.customers", "{db}.orders"]', toml)
    (dst / "keyshift.toml").write_text(toml)
    return dst


def shipped_config(seed_dir: Path) -> Path:
    """keyshift.toml as shipped: absolute key path and backupDir, no batchSize/concurrency."""
    text = (seed_dir / "keyshift.toml").read_text()
    text = text.replace('"file:master-key.bin"', json.dumps(f"file:{seed_dir / 'master-key.bin'}"))
    text = re.sub(r'(?m)^(batchSize|concurrency) = .*\n', "", text)
    text = re.sub(r'(?m)^backupDir = .*$', f'backupDir = "{seed_dir / "keyshift-backups"}"', text)
    path = seed_dir / "keyshift.run.toml"
    path.write_text(text)
    return path


# --- measuring ---------------------------------------------------------------------------


def measured(argv: list[str], cwd: Path, env: dict, log: Path) -> dict:
    """Run argv to completion: wall seconds, peak RSS (VmHWM polled), CPU, exit code."""
    with open(log, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        hwm = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, vm_hwm_kib(proc.pid))
            time.sleep(0.02)
        seconds = time.monotonic() - t0
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(hwm / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "exit": os.waitstatus_to_exitcode(status)}


def judged(seed_dir: Path, sample: int) -> dict:
    p = subprocess.run([PY, str(INTEROP / "rotate_check.py"), "--dir", str(seed_dir), "--before-retire",
                        "--sample", str(sample)], capture_output=True, text=True)
    if p.returncode != 0:
        return {"ok": False, "detail": p.stderr.strip().splitlines()[:10]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fields", type=int, default=100_000)
    p.add_argument("--keys", type=int, default=20)
    p.add_argument("--sample", type=int, default=2000, help="values rotate_check decrypts per copy")
    p.add_argument("--quick", action="store_true", help="--fields 5000 --sample 500")
    p.add_argument("--keyshift", default=str(ROOT / "target" / "release" / "keyshift"))
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--skip-pymongo", action="store_true")
    p.add_argument("--skip-keyshift", action="store_true")
    p.add_argument("--keep", action="store_true", help="leave the seeded databases in place")
    p.add_argument("--work", type=Path, help="working directory (default $KS_RUN_DIR/bench-rotate)")
    args = p.parse_args(argv)
    if args.quick:
        args.fields, args.sample = 5000, 500
    world = read_world()
    work = args.work or Path(world.get("KS_RUN_DIR", "/tmp")) / "bench-rotate"
    work.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    a_dir, b_dir = work / "a", work / "b"
    if a_dir.exists():
        shutil.rmtree(a_dir)
    t0 = time.monotonic()
    seed = subprocess.run([PY, str(SERVICES / "seed.py"), "--out", str(a_dir), "--fields", str(args.fields),
                           "--keys", str(args.keys), "--expected-all", "--rotate", "--target", "aws",
                           "--key-vault", f"rbA_{tag}.__keyVault", "--db", f"rbA_{tag}"],
                          capture_output=True, text=True)
    if seed.returncode != 0:
        sys.exit(f"bench: seeding failed:\n{seed.stderr[-2000:]}")
    values = json.loads(seed.stdout)["encryptedValues"]
    client = MongoClient(seed_env(a_dir)["MONGODB_URI"], uuidRepresentation="standard")
    copy_world(client, a_dir, b_dir, f"rbB_{tag}", f"rbB_{tag}.__keyVault")
    print(f"bench: seeded {values} encrypted values twice in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    results = {"fields": values, "keys": args.keys, "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "cpus": os.cpu_count()}
    def timed(tool: str, argv: list[str], seed_dir: Path, cwd: Path) -> None:
        log = work / f"{tool}.log"
        load0 = loadavg()
        r = measured(argv, cwd, seed_env(seed_dir), log)
        if r["exit"] != 0:
            sys.exit(f"bench: {tool} failed (exit {r['exit']}):\n{log.read_text()[-2000:]}")
        r.update(fields_per_s=round(values / r["seconds"], 1), load_before=load0, load_after=loadavg(),
                 check=judged(seed_dir, args.sample))
        results[tool] = r
        print(f"bench: {tool} {r}", file=sys.stderr)

    if not args.skip_pymongo:
        timed("pymongo", [PY, str(Path(__file__)), "--_pymongo", str(a_dir)], a_dir, work)
    if not args.skip_keyshift:
        config = shipped_config(b_dir)
        timed("keyshift", [str(Path(args.keyshift).resolve()), "rotate", "--config", str(config), "--yes"], b_dir, b_dir)
    if "pymongo" in results and "keyshift" in results:
        results["ratio"] = round(results["keyshift"]["fields_per_s"] / results["pymongo"]["fields_per_s"], 2)
    if not args.keep:
        for d in (f"rbA_{tag}", f"rbB_{tag}"):
            client.drop_database(d)
    client.close()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    ok = all(results[t]["check"].get("ok") for t in ("pymongo", "keyshift") if t in results)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_pymongo":
        print(json.dumps(pymongo_rotate(Path(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
