"""The demo's last word: PyMongo, holding only the target provider, decrypts every
sample the seeder recorded (DIR/expected.json). Exit 1 on the first mismatch.

    demo_check.py DIR        (DIR written by tests/services/seed.py)
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from bson.binary import UuidRepresentation  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.encryption import ClientEncryption  # noqa: E402

from kms_oracle import world_providers  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1])
    seed = json.loads((out / "seed.json").read_text())
    expected = json.loads((out / "expected.json").read_text())
    env = dict(line.split("=", 1) for line in (out / "keyshift.env").read_text().splitlines() if "=" in line)
    default = Path(__file__).resolve().parents[1] / "services" / "run" / "env"
    world_file = Path(os.environ.get("KS_ENV_FILE", default))
    world = dict(line.split("=", 1) for line in world_file.read_text().splitlines() if "=" in line)
    providers, tls, _ = world_providers(world)
    target = seed["target"]
    codec = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
    client = MongoClient(env["MONGODB_URI"])
    ce = ClientEncryption({target: providers[target]}, seed["keyVault"], client, codec,
                          kms_tls_options={target: tls[target]})
    for e in expected:
        doc = client[seed["db"]].get_collection(e["collection"], codec_options=codec).find_one({"_id": e["_id"]})
        if ce.decrypt(doc[e["field"]]) != e["plaintext"]:
            print(f"MISMATCH {e['collection']} {e['_id']} {e['field']}", file=sys.stderr)
            return 1
    print(f"oracle: {len(expected)} seeded values decrypted with only the {target} provider", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
