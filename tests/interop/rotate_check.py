#!/usr/bin/env python3
"""The oracle's judgement of `keyshift rotate` + `keyshift retire` on a seeded world.

    rotate_check.py --dir DIR [--backup-dir DIR] [--written FILE ...] [--sample N]
                    [--before-retire] [--seed S] [--json]

DIR is a directory written by tests/services/seed.py with --expected-all (its
seed.json, keyshift.toml, keyshift.env, master-key.bin, expected-all.jsonl). The old
DEKs are every key the seeder made (seed.json allKeyIds); the replacement of each is
the id the rotate contract derives from it (replacement_id below, the same formula as
keyshift_core::rotate::ids). Checked, with the official PyMongo + libmongocrypt:

1. Every seeded encrypted value (or a random --sample of N) is still in its document,
   is BSON binary subtype 6 whose header (byte 0: 1 deterministic / 2 random, bytes
   1..17: the DEK id) names the replacement of the key it was seeded with, keeps its
   algorithm, and decrypts to the seeded plaintext with a ClientEncryption holding ONLY
   the target provider of keyshift.toml. Values listed in --written files (what
   tests/interop/app_writer.py wrote with an old key during a run) are judged the same.
2. A full scan of every collection of the seeded database finds no subtype 6 value,
   at any depth, whose header names an old DEK.
3. Every `encrypt.keyId` / `encryptMetadata.keyId` in the collections' $jsonSchema
   validators is a replacement, none an old key; the seeded validators name exactly the
   replacements of the keys they named.
4. The key vault holds each replacement, under the target master key, with the old
   key's keyAltNames; after retire (the default) no old DEK is left.
5. After retire, every old DEK is in a retire backup (`retire-*.jsonl` in --backup-dir,
   default DIR/keyshift-backups; rewrap's format: a header line with keyshiftBackup,
   then key documents in canonical extended JSON), mode 0600, wrapped by the local
   master key and usable: the backed-up keys, with DIR/master-key.bin, decrypt one
   original ciphertext of each old key to its plaintext.

With --before-retire the state right after rotate is judged: old keys still in the
vault (not required gone), backups not required. Exit 0 when everything holds (a
summary on stdout), 1 with one precise line per failure (the first 30) otherwise.
Nothing secret is printed: no plaintext, no key material, only ids, paths and counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import stat
import sys
import tomllib
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "services"))

from bson import json_util  # noqa: E402
from bson.binary import Binary, UuidRepresentation  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.encryption import ClientEncryption  # noqa: E402

CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
BLOB_TYPE = {DETERMINISTIC: 1, RANDOM: 2}
MAX_SHOWN = 30


# --- the rotate contract's pure parts, independently ---------------------------------------


def replacement_id(old: bytes) -> bytes:
    """SHA-256("keyshift rotate v1\\0" || old)[:16], version 8, RFC 4122 variant, then
    bytes 12..16 = SHA-256("keyshift rotate tag\\0" || id[:12])[:4]."""
    h = bytearray(hashlib.sha256(b"keyshift rotate v1\0" + old).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    h[12:16] = hashlib.sha256(b"keyshift rotate tag\0" + bytes(h[:12])).digest()[:4]
    return bytes(h)


def is_replacement(kid: bytes) -> bool:
    return len(kid) == 16 and kid[6] >> 4 == 8 and kid[12:] == hashlib.sha256(
        b"keyshift rotate tag\0" + kid[:12]).digest()[:4]


def header(value) -> tuple[int, bytes | None]:
    """(blob type, DEK id for FLE1 blobs) of a subtype 6 payload."""
    b = bytes(value)
    if not b:
        return -1, None
    if b[0] in (1, 2) and len(b) >= 18:
        return b[0], b[1:17]
    return b[0], None


def uid(b: bytes) -> str:
    return str(uuid.UUID(bytes=bytes(b)))


def as_bytes(v) -> bytes:
    return v.bytes if isinstance(v, uuid.UUID) else bytes(v)


# --- the seeded world ----------------------------------------------------------------


class World:
    def __init__(self, d: Path):
        self.dir = d
        self.seed = json.loads((d / "seed.json").read_text())
        if "allKeyIds" not in self.seed:
            sys.exit(f"rotate_check: {d}/seed.json has no allKeyIds (seed with a current seed.py)")
        if not (d / "expected-all.jsonl").exists():
            sys.exit(f"rotate_check: {d}/expected-all.jsonl missing (seed with --expected-all)")
        self.toml = tomllib.loads((d / "keyshift.toml").read_text())
        self.env = dict(line.split("=", 1) for line in (d / "keyshift.env").read_text().splitlines() if "=" in line)
        self.old = [uuid.UUID(k).bytes for k in self.seed["allKeyIds"]]
        self.old_set = set(self.old)
        self.target = self.toml["target"]["provider"]
        self.target_key = dict(self.toml["target"].get("masterKey", {}))

    def resolve(self, v):
        if isinstance(v, str) and v.startswith("env:"):
            name = v[4:]
            return self.env.get(name) or os.environ[name]
        if isinstance(v, str) and v.startswith("file:"):
            p = Path(v[5:])
            return (p if p.is_absolute() else self.dir / p).read_bytes()
        return v

    def target_providers(self) -> tuple[dict, dict]:
        """(kms_providers, kms_tls_options) holding only the target provider."""
        fields = {k: self.resolve(v) for k, v in self.toml["kmsProviders"][self.target].items()}
        tls = {k: str(self.resolve(v)) for k, v in self.toml.get("tlsOptions", {}).get(self.target, {}).items()}
        return {self.target: fields}, ({self.target: tls} if tls else {})

    def client(self) -> MongoClient:
        return MongoClient(self.resolve(self.toml["keyVault"]["uri"]), uuidRepresentation="standard",
                           serverSelectionTimeoutMS=20000)


def value_at(doc, path: str):
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def walk(value, path=""):
    """(path, value) of every subtype 6 binary at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}.{i}")
    elif isinstance(value, Binary) and value.subtype == 6:
        yield path, value


def schema_key_ids(node) -> list[bytes]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("encrypt", "encryptMetadata") and isinstance(v, dict) and isinstance(v.get("keyId"), list):
                out += [as_bytes(x) for x in v["keyId"] if isinstance(x, (Binary, uuid.UUID))]
            out += schema_key_ids(v)
    elif isinstance(node, list):
        for v in node:
            out += schema_key_ids(v)
    return out


def load_lines(path: Path, torn_ok: bool = False):
    """Extended JSON lines; with torn_ok a line that does not parse (the torn tail of a
    file whose writer was killed) is skipped, as a person restoring from it would."""
    opts = json_util.JSONOptions(uuid_representation=UuidRepresentation.STANDARD)
    with open(path) as f:
        for line in f:
            if line.strip():
                try:
                    yield json_util.loads(line, json_options=opts)
                except ValueError:
                    if not torn_ok:
                        raise


# --- the judgement -------------------------------------------------------------------


class Judge:
    def __init__(self):
        self.failures: list[str] = []
        self.counts: dict[str, int] = {}

    def fail(self, msg: str) -> None:
        self.failures.append(msg)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def check_values(w: World, j: Judge, client, ce, entries: list[dict], origin: str) -> None:
    db = client[w.seed["db"]]
    by_coll: dict[str, list[dict]] = {}
    for e in entries:
        by_coll.setdefault(e["collection"], []).append(e)
    for coll_name, es in by_coll.items():
        coll = client.get_database(coll_name.split(".", 1)[0]) if "." in coll_name else db
        name = coll_name.split(".", 1)[1] if "." in coll_name else coll_name
        c = coll.get_collection(name, codec_options=CODEC)
        ids = list({json.dumps(json_util.dumps(e["_id"])): e["_id"] for e in es}.values())
        docs = {}
        for i in range(0, len(ids), 1000):
            for d in c.find({"_id": {"$in": ids[i:i + 1000]}}):
                docs[json_util.dumps(d["_id"])] = d
        for e in es:
            where = f"{origin} {coll_name} _id={json_util.dumps(e['_id'])} {e['path']}"
            d = docs.get(json_util.dumps(e["_id"]))
            if d is None:
                j.fail(f"{where}: document missing")
                continue
            v = value_at(d, e["path"])
            if not (isinstance(v, Binary) and v.subtype == 6):
                j.fail(f"{where}: not an encrypted value (found {type(v).__name__})")
                continue
            kind, kid = header(v)
            old = as_bytes(e["keyId"]) if e.get("keyId") else None
            want_type = BLOB_TYPE.get(e.get("algorithm"))
            if want_type is not None and kind != want_type:
                j.fail(f"{where}: blob type {kind}, seeded with {want_type} ({e['algorithm'].split('-')[-1]})")
            if old is not None and kid is not None:
                if kid in w.old_set:
                    j.fail(f"{where}: still under old key {uid(kid)}")
                    continue
                elif kid != replacement_id(old):
                    j.fail(f"{where}: under {uid(kid)}, expected the replacement {uid(replacement_id(old))} of {uid(old)}")
            try:
                got = ce.decrypt(v)
            except Exception as ex:  # noqa: BLE001 — reported, not raised
                j.fail(f"{where}: the target provider alone cannot decrypt it: {type(ex).__name__}: {str(ex)[:160]}")
                continue
            if json_util.dumps(got) != json_util.dumps(e["plaintext"]):
                j.fail(f"{where}: decrypts to a different value than seeded")
                continue
            j.count(f"{origin} values decrypted")


def check_scan(w: World, j: Judge, client) -> None:
    db = client[w.seed["db"]]
    for name in sorted(db.list_collection_names()):
        if name.startswith("system.") or name.startswith("enxcol_."):
            continue
        stale, shown = 0, 0
        for d in db.get_collection(name, codec_options=CODEC).find({}, batch_size=1000):
            for path, v in walk(d):
                j.count("values scanned")
                _, kid = header(v)
                if kid is not None and kid in w.old_set:
                    stale += 1
                    if shown < 5:
                        shown += 1
                        j.fail(f"scan {w.seed['db']}.{name} _id={json_util.dumps(d['_id'])} {path}: under old key {uid(kid)}")
        if stale > shown:
            j.fail(f"scan {w.seed['db']}.{name}: {stale} values in all under old keys")


def check_validators(w: World, j: Judge, client) -> None:
    db = client[w.seed["db"]]
    seeded = {"customers": {w.old[0], w.old[1 % len(w.old)]}, "orders": {w.old[2 % len(w.old)]}}
    for info in db.list_collections():
        validator = info.get("options", {}).get("validator")
        if not validator:
            continue
        ids = schema_key_ids(validator)
        for kid in ids:
            if kid in w.old_set:
                j.fail(f"validator {w.seed['db']}.{info['name']}: names old key {uid(kid)}")
            elif not is_replacement(kid):
                j.fail(f"validator {w.seed['db']}.{info['name']}: names {uid(kid)}, not a replacement key")
        if info["name"] in seeded:
            want = {replacement_id(k) for k in seeded[info["name"]]}
            if set(ids) != want:
                j.fail(f"validator {w.seed['db']}.{info['name']}: names {sorted(uid(k) for k in set(ids))}, "
                       f"expected {sorted(uid(k) for k in want)}")
            else:
                j.count("validators rewritten")


def check_vault(w: World, j: Judge, client, before_retire: bool) -> dict[bytes, dict]:
    kv_db, kv_coll = w.seed["keyVault"].split(".", 1)
    keys = {as_bytes(k["_id"]): k for k in client[kv_db].get_collection(kv_coll, codec_options=CODEC).find({})}
    seeded_alt = {w.old[i]: [f"tenant-{i:05d}"] for i in range(0, len(w.old), 4)}
    for old in w.old:
        new = replacement_id(old)
        k = keys.get(new)
        if k is None:
            j.fail(f"vault: no replacement {uid(new)} for old key {uid(old)}")
            continue
        mk = k.get("masterKey", {})
        if mk.get("provider") != w.target or any(
                str(mk.get(f)) != str(v) for f, v in w.target_key.items() if f != "endpoint"):
            j.fail(f"vault: replacement {uid(new)} is not under the target master key ({mk.get('provider')})")
        if old in keys and not before_retire:
            j.fail(f"vault: old key {uid(old)} is still in the key vault after retire")
        if not before_retire:
            names = sorted(k.get("keyAltNames") or [])
            if names != sorted(seeded_alt.get(old, [])):
                j.fail(f"vault: replacement {uid(new)} has keyAltNames {names}, expected {seeded_alt.get(old, [])}")
        j.count("replacements in the vault")
    return keys


def check_backups(w: World, j: Judge, backup_dir: Path, entries: list[dict]) -> None:
    files = sorted(backup_dir.glob("*.jsonl")) if backup_dir.is_dir() else []
    found: dict[bytes, tuple[Path, dict]] = {}
    for f in files:
        mode = stat.S_IMODE(f.stat().st_mode)
        if mode & 0o077:
            j.fail(f"backup {f.name}: mode {oct(mode)}, expected 0600")
        lines = load_lines(f, torn_ok=True)
        head = next(lines, None)
        if not isinstance(head, dict) or "keyshiftBackup" not in head:
            j.count("torn or foreign backup files skipped")  # e.g. killed while writing its header
            continue
        for doc in lines:
            kid = as_bytes(doc.get("_id", b""))
            if kid in w.old_set and f.name.startswith("retire-"):
                found.setdefault(kid, (f, doc))
    for old in w.old:
        if old not in found:
            j.fail(f"backup: old key {uid(old)} is in no retire-*.jsonl in {backup_dir}")
            continue
        f, doc = found[old]
        if doc.get("masterKey", {}).get("provider") != "local" or not isinstance(doc.get("keyMaterial"), (bytes, Binary)):
            j.fail(f"backup {f.name}: old key {uid(old)} is not the local-wrapped key document")
    if not found:
        return
    # usable: the backed-up keys decrypt one original ciphertext per old key
    from kms_oracle import MemVault

    vault = MemVault({"local": {"key": (w.dir / "master-key.bin").read_bytes()}})
    for kid, (_, doc) in found.items():
        vault.keys[kid] = doc
    proved = set()
    for e in entries:
        kid = as_bytes(e["keyId"]) if e.get("keyId") else None
        if kid is None or kid in proved or kid not in found or e.get("ciphertext") is None:
            continue
        try:
            ok = json_util.dumps(vault.decrypt(e["ciphertext"])) == json_util.dumps(e["plaintext"])
        except Exception as ex:  # noqa: BLE001
            j.fail(f"backup: old key {uid(kid)} from the backup cannot decrypt its original data: {type(ex).__name__}")
            continue
        if not ok:
            j.fail(f"backup: old key {uid(kid)} from the backup decrypts its original data wrongly")
        proved.add(kid)
    j.count("backed-up keys proven", len(proved))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, type=Path, help="the seed directory")
    p.add_argument("--backup-dir", type=Path, help="keyshift's backupDir (default DIR/keyshift-backups)")
    p.add_argument("--written", type=Path, action="append", default=[],
                   help="values an application wrote during the run (app_writer.py --out)")
    p.add_argument("--sample", type=int, help="decrypt a random sample of N seeded values, not all")
    p.add_argument("--seed", type=int, default=0, help="RNG seed for --sample")
    p.add_argument("--before-retire", action="store_true", help="judge the state after rotate, before retire")
    args = p.parse_args(argv)
    w = World(args.dir)
    j = Judge()
    entries = list(load_lines(args.dir / "expected-all.jsonl"))
    for e in entries:
        if e.get("keyId"):
            e["keyId"] = uuid.UUID(e["keyId"])
    client = w.client()
    kms, tls = w.target_providers()
    to_check = entries
    if args.sample is not None and args.sample < len(entries):
        to_check = random.Random(args.seed).sample(entries, args.sample)
    with ClientEncryption(kms, w.seed["keyVault"], client, CODEC, kms_tls_options=tls or None) as ce:
        check_vault(w, j, client, args.before_retire)
        check_values(w, j, client, ce, to_check, "seeded")
        for f in args.written:
            written = list(load_lines(f))
            for e in written:
                if e.get("keyId"):
                    e["keyId"] = uuid.UUID(e["keyId"])
            if not written:
                j.fail(f"{f}: the application wrote nothing")
            check_values(w, j, client, ce, written, "written")
    check_scan(w, j, client)
    check_validators(w, j, client)
    if not args.before_retire:
        check_backups(w, j, args.backup_dir or args.dir / "keyshift-backups", entries)
    client.close()
    if j.failures:
        for msg in j.failures[:MAX_SHOWN]:
            print(f"rotate_check: FAIL {msg}", file=sys.stderr)
        if len(j.failures) > MAX_SHOWN:
            print(f"rotate_check: ... and {len(j.failures) - MAX_SHOWN} more failures", file=sys.stderr)
        print(json.dumps({"ok": False, "failures": len(j.failures), "counts": j.counts}))
        return 1
    print(json.dumps({"ok": True, "oldKeys": len(w.old), "counts": j.counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
