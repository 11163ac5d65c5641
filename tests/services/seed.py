#!/usr/bin/env python3
"""Seed the running test world with a realistic CSFLE deployment, and write keyshift's config.

    seed.py --out DIR [--keys N] [--docs M] [--target aws|azure|gcp|kmip] [--via-proxy]
            [--key-vault DB.COLL] [--db NAME] [--drop] [--kmip-delegated]
            [--fields F] [--nested] [--expected-all] [--rotate] [--mongodb-uri-var VAR]

What it builds, with the official tools (libmongocrypt through pymongocrypt for every
cryptographic operation, PyMongo for every write) against the world in
tests/services/run/env (or $KS_ENV_FILE):

- a fresh 96-byte local master key, DIR/master-key.bin (raw bytes, mode 0600);
- N data keys under it in the key vault (default encryption.__keyVault), every fourth
  with a keyAltName ("tenant-00000", ...), and the key vault's unique partial index on
  keyAltNames, as drivers' docs recommend;
- M documents split over two collections of DB (default "app"):
    customers {name, tenant, ssn (det, key 0), email (det, key 1), medical (random,
               by the tenant's keyAltName), notes (random, key i mod N)}
    orders    {customer, amount, card (det, key 2), memo (random, key i mod N)}
  with a $jsonSchema validator on each collection naming the DEKs of its schema fields;
- DIR/keyshift.toml in the DESIGN.md format: the key vault, the local provider, the
  target provider (--target) pointing at its stand-in (or at the fault proxy with
  --via-proxy), tlsOptions with the test CA; every secret as an env: reference;
- DIR/keyshift.env (mode 0600): KEY=VALUE lines with the referenced secrets;
- DIR/seed.json: what was made (namespaces, counts, key ids, target), no secrets;
- DIR/expected.json (mode 0600): a few (collection, _id, field, plaintext) samples a test
  can decrypt to prove the data survived.

Options for the rotate tests and benchmark (issue 9); without them nothing above changes:
- --fields F: as many documents as it takes for F encrypted values (overrides --docs);
  100,000 take seconds (values are encrypted in memory and inserted in batches).
- --nested: encrypted values below the top level too: customers.address.zip
  (deterministic) and customers.history.N.note (random, in an array of documents).
- --expected-all: DIR/expected-all.jsonl (mode 0600, test data): one line per encrypted
  value, {collection, _id, path, plaintext, keyId, algorithm, ciphertext}, in extended
  JSON (bson.json_util), so a checker can decrypt and compare every value.
- --rotate: keyshift.toml gets a [rotate] section naming both collections.
- --mongodb-uri-var VAR: seed the deployment the world's VAR names (default
  KS_MONGODB_URI; e.g. KS_MONGODB_AUTH_URI for the authenticating replica set, or
  KS_MONGODB_SRV_URI for the mongodb+srv:// one, run under tests/services/with-dns).
seed.json also lists every DEK id ("allKeyIds") so a checker knows the old keys.

Keys and values are made in memory (kms_oracle.MemVault: libmongocrypt with a dict key
vault) and written in batches with insert_many, so 2,000 keys take seconds. At the end
PyMongo's ClientEncryption reads a sample back from the database and decrypts it.
The key vault must be empty (or pass --drop): keys under another master key would make
the deployment inconsistent.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from uuid import UUID

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bson import json_util  # noqa: E402
from bson.binary import Binary, UuidRepresentation  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.encryption import ClientEncryption  # noqa: E402

from kms_oracle import DETERMINISTIC, RANDOM, MemVault, world_providers  # noqa: E402

CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
BATCH = 1000


def read_world() -> dict[str, str]:
    path = Path(os.environ.get("KS_ENV_FILE", HERE / "run" / "env"))
    if not path.exists():
        sys.exit(f"seed: no test world ({path} missing); run tests/services/up first")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


URI_VAR = "KS_MONGODB_URI"


def mongo_uri(world: dict[str, str]) -> str:
    uri = world[URI_VAR]
    if ("tls=true" in uri.lower() or "ssl=true" in uri.lower()) and "tlscafile" not in uri.lower():
        uri += ("&" if "?" in uri else "?") + f"tlsCAFile={world['KS_CA_FILE']}"
    return uri


# --------------------------------------------------------------------------- keyshift.toml


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def _section(name: str, fields: dict) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items()) + "\n"


def render_config(world: dict[str, str], target: str, key_vault: str, via_proxy: bool,
                  kmip_delegated: bool, rotate: list[str] | None = None) -> tuple[str, dict[str, str]]:
    """(keyshift.toml text, env file values)."""
    providers, tls, keys = world_providers(world, via_proxy)
    if target not in providers:
        sys.exit(f"seed: the world has no {target} stand-in")
    env = {"MONGODB_URI": mongo_uri(world)}
    out = ["# keyshift.toml written by tests/services/seed.py for the keyshift test world.\n"
           "# Secrets are env: references; their values are in keyshift.env beside this file.\n\n"]
    out.append(_section("keyVault", {"uri": "env:MONGODB_URI", "namespace": key_vault}))
    out.append(_section("kmsProviders.local", {"key": "file:master-key.bin"}))
    p = providers[target]
    if target == "aws":
        env["AWS_ACCESS_KEY_ID"] = p["accessKeyId"]
        env["AWS_SECRET_ACCESS_KEY"] = p["secretAccessKey"]
        fields = {"accessKeyId": "env:AWS_ACCESS_KEY_ID", "secretAccessKey": "env:AWS_SECRET_ACCESS_KEY"}
    elif target == "azure":
        env["AZURE_CLIENT_SECRET"] = p["clientSecret"]
        fields = {"tenantId": p["tenantId"], "clientId": p["clientId"], "clientSecret": "env:AZURE_CLIENT_SECRET",
                  "identityPlatformEndpoint": p["identityPlatformEndpoint"]}
    elif target == "gcp":
        env["GCP_PRIVATE_KEY"] = p["privateKey"]
        fields = {"email": p["email"], "privateKey": "env:GCP_PRIVATE_KEY", "endpoint": p["endpoint"]}
    else:
        fields = {"endpoint": p["endpoint"]}
    out.append(_section(f"kmsProviders.{target}", fields))
    tls_fields = {"tlsCAFile": tls[target]["tlsCAFile"]}
    if tls[target].get("tlsCertificateKeyFile"):
        tls_fields["tlsCertificateKeyFile"] = tls[target]["tlsCertificateKeyFile"]
    out.append(_section(f"tlsOptions.{target}", tls_fields))
    master_key = dict(keys[target])
    if target == "kmip" and kmip_delegated:
        master_key["delegated"] = True
    out.append(f"[target]\nprovider = \"{target}\"\nmasterKey = {_toml_value(master_key)}\n\n")
    out.append(_section("rewrap", {"batchSize": 256, "concurrency": 16, "backupDir": "keyshift-backups"}))
    if rotate:
        out.append("[rotate]\ncollections = [" + ", ".join(json.dumps(ns) for ns in rotate) + "]\n")
        # the seeded key vault serves no other deployment
        out.append("\n[retire]\nallDeploymentsListed = true\n")
    return "".join(out), env


# --------------------------------------------------------------------------- data


def schema(props: dict) -> dict:
    return {"$jsonSchema": {"bsonType": "object", "properties": props}}


def enc(key_id, bson_type: str, algorithm: str) -> dict:
    return {"encrypt": {"keyId": key_id if isinstance(key_id, str) else [key_id], "bsonType": bson_type,
                        "algorithm": algorithm}}


def seed(args) -> dict:
    global URI_VAR
    world = read_world()
    URI_VAR = args.mongodb_uri_var
    if URI_VAR not in world:
        sys.exit(f"seed: the world has no MongoDB stand-in ({URI_VAR})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    master = os.urandom(96)
    write_private(out / "master-key.bin", master)
    client = MongoClient(mongo_uri(world), uuidRepresentation="standard", serverSelectionTimeoutMS=20000)
    kv_db, kv_coll = args.key_vault.split(".", 1)
    key_vault = client[kv_db].get_collection(kv_coll, codec_options=CODEC)
    app = client[args.db]
    if args.drop:
        key_vault.drop()
        app.drop_collection("customers")
        app.drop_collection("orders")
    elif key_vault.estimated_document_count() or key_vault.find_one({}):
        sys.exit(f"seed: key vault {args.key_vault} is not empty (use --drop, or another --key-vault)")
    try:
        key_vault.create_index("keyAltNames", unique=True,
                               partialFilterExpression={"keyAltNames": {"$exists": True}})
    except Exception as e:  # the stand-in may not know partial indexes: not essential
        print(f"seed: note: keyAltNames index not created: {e}", file=sys.stderr)

    # --- data keys (libmongocrypt, in memory), then insert_many
    vault = MemVault({"local": {"key": master}})
    key_ids, alt_names, alt_keys = [], [], {}
    for i in range(args.keys):
        names = [f"tenant-{i:05d}"] if i % 4 == 0 else None
        key_ids.append(vault.create_data_key("local", alt_names=names))
        if names:
            alt_names.append(names[0])
            alt_keys[names[0]] = key_ids[-1]
    docs = list(vault.keys.values())
    for i in range(0, len(docs), BATCH):
        key_vault.insert_many(docs[i:i + BATCH], ordered=False)
    n = len(key_ids)

    def kid(i: int) -> Binary:
        return Binary(key_ids[i % n].bytes, 4)

    # --- collections with $jsonSchema validators naming the DEKs
    customers_schema = schema({
        "ssn": enc(kid(0), "string", DETERMINISTIC),
        "email": enc(kid(1), "string", DETERMINISTIC),
        "medical": enc("/tenant", "object", RANDOM),
    })
    orders_schema = schema({"card": enc(kid(2), "string", DETERMINISTIC)})
    for name, validator in (("customers", customers_schema), ("orders", orders_schema)):
        try:
            app.create_collection(name, validator=validator)
        except Exception as e:
            if "already exists" not in str(e):
                raise
            app.command("collMod", name, validator=validator)

    # --- documents
    n_customers = (args.docs + 1) // 2
    n_orders = args.docs // 2
    expected = []
    every = open_expected_all(out) if args.expected_all else None

    def record(coll: str, _id, path: str, plaintext, key, algorithm: str, ciphertext: Binary) -> None:
        if every is not None:
            every.write(json_util.dumps({"collection": coll, "_id": _id, "path": path, "plaintext": plaintext,
                                         "keyId": str(key) if key is not None else None, "algorithm": algorithm,
                                         "ciphertext": ciphertext}, json_options=json_util.RELAXED_JSON_OPTIONS) + "\n")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    customers = app.get_collection("customers", codec_options=CODEC)
    orders = app.get_collection("orders", codec_options=CODEC)
    batch = []
    for i in range(n_customers):
        tenant = alt_names[i % len(alt_names)] if alt_names else None
        plain = {"ssn": f"{100 + i % 900:03d}-{i % 100:02d}-{i % 10000:04d}", "email": f"user{i}@example.com",
                 "medical": {"blood": "AB+" if i % 3 else "O-", "allergies": ["pollen"] * (i % 3)},
                 "notes": f"customer {i} prefers email"}
        medical_key = alt_keys[tenant] if tenant else key_ids[0]
        doc = {"_id": i, "name": f"Customer {i}", "tenant": tenant, "since": now,
               "ssn": vault.encrypt(plain["ssn"], key_ids[0], True),
               "email": vault.encrypt(plain["email"], key_ids[1 % n], True),
               "medical": vault.encrypt(plain["medical"], None, False, key_alt_name=tenant) if tenant else
               vault.encrypt(plain["medical"], key_ids[0], False),
               "notes": vault.encrypt(plain["notes"], key_ids[i % n], False)}
        for f, key, alg in (("ssn", key_ids[0], DETERMINISTIC), ("email", key_ids[1 % n], DETERMINISTIC),
                            ("medical", medical_key, RANDOM), ("notes", key_ids[i % n], RANDOM)):
            record("customers", i, f, plain[f], key, alg, doc[f])
        if args.nested:
            zip_code = f"{10000 + i % 90000:05d}"
            doc["address"] = {"city": "Springfield", "zip": vault.encrypt(zip_code, key_ids[3 % n], True)}
            record("customers", i, "address.zip", zip_code, key_ids[3 % n], DETERMINISTIC, doc["address"]["zip"])
            doc["history"] = []
            for j in range(i % 3):
                note = f"visit {j} of customer {i}"
                key = key_ids[(i + j) % n]
                doc["history"].append({"at": now, "note": vault.encrypt(note, key, False)})
                record("customers", i, f"history.{j}.note", note, key, RANDOM, doc["history"][j]["note"])
        batch.append(doc)
        if i < 3 or i == n_customers - 1:
            expected += [{"collection": "customers", "_id": i, "field": f, "plaintext": plain[f]}
                         for f in ("ssn", "email", "medical", "notes")]
        if len(batch) >= BATCH:
            customers.insert_many(batch, ordered=False)
            batch = []
    if batch:
        customers.insert_many(batch, ordered=False)
    batch = []
    for i in range(n_orders):
        plain = {"card": f"4111-1111-1111-{i % 10000:04d}", "memo": f"order {i}: gift wrap"}
        batch.append({"_id": i, "customer": i % max(n_customers, 1), "amount": (i * 37) % 10000 / 100,
                      "card": vault.encrypt(plain["card"], key_ids[2 % n], True),
                      "memo": vault.encrypt(plain["memo"], key_ids[i % n], False)})
        record("orders", i, "card", plain["card"], key_ids[2 % n], DETERMINISTIC, batch[-1]["card"])
        record("orders", i, "memo", plain["memo"], key_ids[i % n], RANDOM, batch[-1]["memo"])
        if i < 3 or i == n_orders - 1:
            expected += [{"collection": "orders", "_id": i, "field": f, "plaintext": plain[f]} for f in ("card", "memo")]
        if len(batch) >= BATCH:
            orders.insert_many(batch, ordered=False)
            batch = []
    if batch:
        orders.insert_many(batch, ordered=False)
    if every is not None:
        every.flush()
        os.fsync(every.fileno())
        every.close()

    # --- the official driver reads a sample back from the database
    with ClientEncryption({"local": {"key": master}}, args.key_vault, client, CODEC) as ce:
        for e in expected[:8]:
            doc = app.get_collection(e["collection"], codec_options=CODEC).find_one({"_id": e["_id"]})
            value = ce.decrypt(doc[e["field"]])
            if value != e["plaintext"]:
                sys.exit(f"seed: read-back mismatch in {e['collection']} {e['_id']} {e['field']}")
    stored = key_vault.count_documents({})
    if stored != n:
        sys.exit(f"seed: key vault holds {stored} keys, expected {n}")

    # --- config and manifest
    rotate = [f"{args.db}.customers", f"{args.db}.orders"] if args.rotate else None
    toml, env = render_config(world, args.target, args.key_vault, args.via_proxy, args.kmip_delegated, rotate)
    (out / "keyshift.toml").write_text(toml)
    write_private(out / "keyshift.env", "".join(f"{k}={v}\n" for k, v in env.items()).encode())
    write_private(out / "expected.json", (json.dumps(expected, indent=1, default=str) + "\n").encode())
    manifest = {
        "keyVault": args.key_vault, "db": args.db, "collections": {"customers": n_customers, "orders": n_orders},
        "keys": n, "keyAltNames": len(alt_names), "keyIds": [str(k) for k in key_ids[:10]],
        "allKeyIds": [str(k) for k in key_ids], "nested": args.nested,
        "encryptedValues": encrypted_values(n_customers, n_orders, args.nested),
        "target": args.target, "viaProxy": args.via_proxy,
        "files": {"config": "keyshift.toml", "env": "keyshift.env", "localKey": "master-key.bin",
                  "expected": "expected.json", **({"expectedAll": "expected-all.jsonl"} if args.expected_all else {})},
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "seed.json").write_text(json.dumps(manifest, indent=1) + "\n")
    client.close()
    return manifest


def encrypted_values(n_customers: int, n_orders: int, nested: bool) -> int:
    """How many encrypted values the documents hold."""
    per_customer = 4 + (1 if nested else 0)
    history = sum(i % 3 for i in range(n_customers)) if nested else 0
    return n_customers * per_customer + history + n_orders * 2


def docs_for_fields(fields: int, nested: bool) -> int:
    """The fewest documents (over both collections) holding at least `fields` values."""
    lo, hi = 0, max(2, fields)
    while lo < hi:
        mid = (lo + hi) // 2
        if encrypted_values((mid + 1) // 2, mid // 2, nested) >= fields:
            hi = mid
        else:
            lo = mid + 1
    return lo


def open_expected_all(out: Path):
    fd = os.open(out / "expected-all.jsonl", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", buffering=1 << 20)


def read_expected_all(path: Path):
    """The lines of expected-all.jsonl, decoded (UUID key ids, Binary ciphertexts)."""
    with open(path) as f:
        for line in f:
            e = json_util.loads(line)
            if e.get("keyId"):
                e["keyId"] = UUID(e["keyId"])
            yield e


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="directory for keyshift.toml, keyshift.env, the local key")
    p.add_argument("--keys", type=int, default=20, help="number of DEKs (default 20)")
    p.add_argument("--docs", type=int, default=100, help="documents over both collections (default 100)")
    p.add_argument("--target", choices=["aws", "azure", "gcp", "kmip"], default="aws")
    p.add_argument("--via-proxy", action="store_true", help="target endpoints through the fault proxy")
    p.add_argument("--kmip-delegated", action="store_true", help="with --target kmip: {delegated = true}")
    p.add_argument("--key-vault", default="encryption.__keyVault", help="key vault namespace")
    p.add_argument("--db", default="app", help="database for the two data collections")
    p.add_argument("--drop", action="store_true", help="drop the key vault and collections first")
    p.add_argument("--fields", type=int, help="seed enough documents for this many encrypted values (overrides --docs)")
    p.add_argument("--nested", action="store_true", help="also encrypted values in sub-documents and arrays")
    p.add_argument("--expected-all", action="store_true", help="write expected-all.jsonl: every encrypted value")
    p.add_argument("--rotate", action="store_true", help="add a [rotate] section naming both collections")
    p.add_argument("--mongodb-uri-var", default="KS_MONGODB_URI",
                   help="the world variable naming the deployment to seed (default KS_MONGODB_URI)")
    args = p.parse_args(argv)
    if args.keys < 1:
        p.error("--keys must be at least 1")
    if args.fields is not None:
        if args.fields < 1:
            p.error("--fields must be at least 1")
        args.docs = docs_for_fields(args.fields, args.nested)
    manifest = seed(args)
    print(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
