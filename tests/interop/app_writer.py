#!/usr/bin/env python3
"""An application with a stale schemaMap: it keeps inserting documents encrypted with
the OLD data keys while `keyshift rotate` runs, until told to stop.

    app_writer.py --dir DIR --out FILE [--collection customers] [--start-id N]
                  [--id-type int|str] [--interval SECONDS] [--max N]

DIR is a seed directory (tests/services/seed.py). The writer holds only the local
provider (the old master key, as the application did before the move) and encrypts
explicitly with old key ids, as an application whose schemaMap still names them
would: ssn and email deterministically with the seed's keys 0 and 1, notes randomly
with key (n mod keys). It inserts one document at a time into DB.COLLECTION and,
only after the insert is acknowledged, appends what it wrote to FILE: one line per
encrypted value in expected-all.jsonl's format ({collection, _id, path, plaintext,
keyId, algorithm}), so tests/interop/rotate_check.py --written FILE can check that
every one of them ended up under a new key and readable.

SIGTERM or SIGINT: finish the current insert, fsync FILE, print {"written": n} and
exit 0. --max N stops by itself after N documents. Ids start at --start-id (default
1,000,000, above what the seeder uses) and count up; --id-type str makes them
strings ("app-0001000000"), which a partitioned rotate puts in partition 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import tomllib
import uuid
from pathlib import Path

from bson import json_util
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption

CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"

stop = False


def _stop(signum, frame):
    global stop
    stop = True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--collection", default="customers")
    p.add_argument("--start-id", type=int, default=1_000_000)
    p.add_argument("--id-type", choices=["int", "str"], default="int")
    p.add_argument("--interval", type=float, default=0.005, help="pause between inserts (seconds)")
    p.add_argument("--max", type=int, help="stop after this many documents")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    seed = json.loads((args.dir / "seed.json").read_text())
    toml = tomllib.loads((args.dir / "keyshift.toml").read_text())
    env = dict(line.split("=", 1) for line in (args.dir / "keyshift.env").read_text().splitlines() if "=" in line)
    uri = toml["keyVault"]["uri"]
    uri = env[uri[4:]] if uri.startswith("env:") else uri
    keys = [uuid.UUID(k) for k in seed["allKeyIds"]]
    client = MongoClient(uri, uuidRepresentation="standard", serverSelectionTimeoutMS=20000)
    coll = client[seed["db"]].get_collection(args.collection, codec_options=CODEC)
    local = {"local": {"key": (args.dir / "master-key.bin").read_bytes()}}
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = os.fdopen(fd, "a")
    written = attempts = 0
    with ClientEncryption(local, seed["keyVault"], client, CODEC) as ce:
        while not stop and (args.max is None or written < args.max):
            n = args.start_id + attempts
            attempts += 1
            _id = n if args.id_type == "int" else f"app-{n:010d}"
            values = [("ssn", f"900-{n % 100:02d}-{n % 10000:04d}", keys[0], DETERMINISTIC),
                      ("email", f"late{n}@example.com", keys[1 % len(keys)], DETERMINISTIC),
                      ("notes", f"written by the app during the rotation, #{n}", keys[n % len(keys)], RANDOM)]
            doc = {"_id": _id, "name": f"Late customer {n}", "tenant": None}
            for path, plain, key, alg in values:
                doc[path] = ce.encrypt(plain, alg, key_id=key)
            try:
                coll.insert_one(doc)
            except Exception as e:  # noqa: BLE001 — a transient failure: say so, try the next id
                print(f"app_writer: insert {_id} failed: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
                time.sleep(0.2)
                continue
            for path, plain, key, alg in values:
                out.write(json_util.dumps({"collection": args.collection, "_id": _id, "path": path,
                                           "plaintext": plain, "keyId": str(key), "algorithm": alg}) + "\n")
            out.flush()
            written += 1
            if args.interval:
                time.sleep(args.interval)
    out.flush()
    os.fsync(out.fileno())
    out.close()
    client.close()
    print(json.dumps({"written": written, "failed": attempts - written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
