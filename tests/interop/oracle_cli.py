"""The oracle as a command: official PyMongo + pymongocrypt, driven by Rust tests.

Rust integration tests run this to cross-check keyshift against the reference
implementation, both ways:

    oracle_cli.py decrypt --uri URI --key-vault DB.COLL --local-key-file F --coll DB.COLL --id ID...
        decrypts every encrypted field of each document (--id repeats); prints each as
        canonical extended JSON, one line per document, in the order asked.
    oracle_cli.py encrypt --uri URI --key-vault DB.COLL --local-key-file F --coll DB.COLL
        creates a local DEK, encrypts sample values (deterministic and random), inserts
        one document; prints {"_id", "keyId", "plain"} as canonical extended JSON.

The local key file holds the 96 raw bytes. `--provider NAME` (repeatable: aws, azure,
gcp, kmip, or named like aws:prod) adds that stand-in's credentials and TLS options from the test world's env
file; with `--provider` and no `--local-key-file`, the oracle holds only those providers,
which is how a test proves a key really moved. Nothing secret is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bson import Binary, Decimal128, Int64, json_util
from bson.codec_options import CodecOptions
from bson.binary import UUID_SUBTYPE, UuidRepresentation
from pymongo import MongoClient
from pymongo.encryption import Algorithm, ClientEncryption

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
from kms_oracle import world_providers  # noqa: E402

CANONICAL = json_util.JSONOptions(
    json_mode=json_util.JSONMode.CANONICAL, uuid_representation=UuidRepresentation.STANDARD
)
CODEC = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


def _world() -> dict[str, str]:
    path = Path(os.environ.get("KS_ENV_FILE", Path(__file__).resolve().parents[1] / "services/run/env"))
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _client_encryption(args) -> tuple[MongoClient, ClientEncryption]:
    client = MongoClient(args.uri, uuidRepresentation="standard")
    providers, tls = {}, {}
    if args.local_key_file:
        key = open(args.local_key_file, "rb").read()
        if len(key) != 96:
            sys.exit(f"local key file must hold 96 bytes, has {len(key)}")
        providers["local"] = {"key": key}
    if args.provider:
        all_providers, all_tls, _ = world_providers(_world())
        for name in args.provider:
            kind = name.split(":", 1)[0]  # a named provider ("aws:prod") is its type's stand-in
            providers[name] = all_providers[kind]
            tls[name] = all_tls[kind]
    if not providers:
        sys.exit("give --local-key-file or --provider")
    ce = ClientEncryption(providers, args.key_vault, client, CODEC, kms_tls_options=tls or None)
    return client, ce


def _coll(client: MongoClient, ns: str):
    db, coll = ns.split(".", 1)
    return client[db].get_collection(coll, codec_options=CODEC)


def _decrypt_all(ce: ClientEncryption, value):
    if isinstance(value, Binary) and value.subtype == 6:
        return ce.decrypt(value)
    if isinstance(value, dict):
        return {k: _decrypt_all(ce, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypt_all(ce, v) for v in value]
    return value


def decrypt(args) -> int:
    client, ce = _client_encryption(args)
    for raw_id in args.id or []:
        doc = _coll(client, args.coll).find_one({"_id": json_util.loads(raw_id)})
        if doc is None:
            sys.exit(f"no document with _id {raw_id} in {args.coll}")
        print(json_util.dumps(_decrypt_all(ce, doc), json_options=CANONICAL))
    return 0


def encrypt(args) -> int:
    client, ce = _client_encryption(args)
    key_id = ce.create_data_key("local", key_alt_names=["oracle-made"])
    plain = {
        "name": "Ada Lovelace",
        "ssn": "123-45-6789",
        "count": Int64(2**40 + 7),
        "amount": Decimal128("12345.6789"),
        "tags": ["a", {"b": [1, 2, 3]}],
    }
    doc = {
        "name": ce.encrypt(plain["name"], Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, key_id),
        "ssn": ce.encrypt(plain["ssn"], Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id),
        "count": ce.encrypt(plain["count"], Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, key_id),
        "amount": ce.encrypt(plain["amount"], Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id),
        "tags": ce.encrypt(plain["tags"], Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id),
    }
    inserted = _coll(client, args.coll).insert_one(doc).inserted_id
    out = {"_id": inserted, "keyId": Binary(key_id, UUID_SUBTYPE), "plain": plain}
    print(json_util.dumps(out, json_options=CANONICAL))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["decrypt", "encrypt"])
    p.add_argument("--uri", required=True)
    p.add_argument("--key-vault", required=True)
    p.add_argument("--local-key-file")
    p.add_argument("--provider", action="append",
                   help="aws, azure, gcp, kmip, or a named one such as aws:prod (repeat)")
    p.add_argument("--coll", required=True)
    p.add_argument("--id", action="append", help="extended JSON of a document's _id (decrypt; repeat)")
    args = p.parse_args()
    return decrypt(args) if args.command == "decrypt" else encrypt(args)


if __name__ == "__main__":
    sys.exit(main())
