#!/usr/bin/env python3
"""Rewrap to each KMS, keyshift against PyMongo's rewrap_many_data_key, at one latency.

    providers_bench.py --keyshift PATH [--keys N] [--rtt-ms MS] [--targets azure,gcp,aws]

Run on a test world with those stand-ins and the fault proxy up (tests/services/up).
For each target: N local DEKs seeded (seed.py --via-proxy, so the target endpoints,
its OAuth endpoint included, are the proxy's), copied to two key vaults; one moved by
PyMongo (sequential, a fresh connection per request), the other by `keyshift rewrap
--yes` (proof on, shipped defaults). Every proxy upstream holds each flight rtt/2
(a round trip per flight, as a network). Reported: keys/s, the ratio, and the target
upstream's connections and round trips (the proxy's counters) per key.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "services"))

import rewrap_bench as rb  # noqa: E402

UPSTREAMS = {"aws": ["aws"], "azure": ["azure", "azure-identity"], "gcp": ["gcp", "gcp-oauth"]}


def seed(world, client, target: str, n: int) -> Path:
    out = rb.bench_dir(world) / f"seed-{target}-{n}"
    ns = f"ksbench_{target}_{n}.src"
    subprocess.run([rb.PY, str(rb.SERVICES / "seed.py"), "--out", str(out), "--keys", str(n), "--docs", "10",
                    "--target", target, "--via-proxy", "--key-vault", ns, "--db", f"ksbench_{target}_app",
                    "--drop"], check=True, stdout=subprocess.DEVNULL)
    return out


def copy(client, src: str, dst: str) -> None:
    from bson.raw_bson import RawBSONDocument

    sdb, scoll = src.split(".")
    ddb, dcoll = dst.split(".")
    docs = list(client[sdb].get_collection(scoll, codec_options=client.codec_options.with_options(
        document_class=RawBSONDocument)).find({}))
    client[ddb].drop_collection(dcoll)
    client[ddb][dcoll].insert_many(docs, ordered=False)


def counters(world, target: str) -> dict[str, int]:
    c = rb.proxy(world, "GET", "/counters")
    return {k: sum(c.get(u, {}).get(k, 0) for u in UPSTREAMS[target]) for k in ("connections", "round_trips")}


def pymongo_child(seed_dir: str, ns: str, target: str) -> int:
    from bson.binary import UuidRepresentation
    from bson.codec_options import CodecOptions
    from pymongo.encryption import ClientEncryption

    from kms_oracle import world_providers

    world = rb.read_world()
    providers, tls, keys = world_providers(world, via_proxy=True)
    client = rb.mongo(world)
    master = (Path(seed_dir) / "master-key.bin").read_bytes()
    codec = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
    with ClientEncryption({"local": {"key": master}, target: providers[target]}, ns, client, codec,
                          kms_tls_options={target: tls[target]}) as ce:
        t0 = time.monotonic()
        result = ce.rewrap_many_data_key({}, provider=target, master_key=keys[target])
        seconds = time.monotonic() - t0
    print(json.dumps({"seconds": seconds, "modified": result.bulk_write_result.modified_count}))
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_pymongo":
        return pymongo_child(*sys.argv[2:5])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keyshift", required=True)
    p.add_argument("--keys", type=int, default=300)
    p.add_argument("--rtt-ms", type=int, default=50)
    p.add_argument("--targets", default="azure,gcp,aws")
    args = p.parse_args()
    world = rb.read_world()
    client = rb.mongo(world)
    rb.proxy(world, "POST", "/faults", {"upstream": "*", "replace": True, "rtt_ms": args.rtt_ms})
    rows = []
    try:
        for target in args.targets.split(","):
            seed_dir = seed(world, client, target, args.keys)
            src = f"ksbench_{target}_{args.keys}.src"
            row = {"target": target, "keys": args.keys, "rtt_ms": args.rtt_ms}
            for tool in ("pymongo", "keyshift"):
                ns = f"ksbench_{target}_{args.keys}.{tool}"
                copy(client, src, ns)
                before = counters(world, target)
                t0 = time.monotonic()
                if tool == "pymongo":
                    out = subprocess.run([rb.PY, __file__, "_pymongo", str(seed_dir), ns, target], check=True,
                                         capture_output=True, text=True).stdout
                    seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
                else:
                    run_dir = rb.bench_dir(world) / "runs" / f"{target}-{args.rtt_ms}"
                    config = rb.run_config(seed_dir, run_dir, ns, None, None)
                    subprocess.run([args.keyshift, "rewrap", "--config", str(config), "--yes"], cwd=run_dir,
                                   env=rb.seed_env(seed_dir), check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    seconds = time.monotonic() - t0
                after = counters(world, target)
                moved = client[ns.split(".")[0]][ns.split(".")[1]].count_documents({"masterKey.provider": target})
                if moved != args.keys:
                    sys.exit(f"bench: {tool} moved {moved} of {args.keys} keys to {target}")
                row[tool] = {"keys_per_s": round(args.keys / seconds, 1),
                             "connections_per_key": round((after["connections"] - before["connections"]) / args.keys, 3),
                             "round_trips_per_key": round((after["round_trips"] - before["round_trips"]) / args.keys, 2)}
                client[ns.split(".")[0]].drop_collection(ns.split(".")[1])
                print(f"{target} {tool}: {row[tool]}", file=sys.stderr)
            row["ratio"] = round(row["keyshift"]["keys_per_s"] / row["pymongo"]["keys_per_s"], 1)
            rows.append(row)
    finally:
        rb.proxy(world, "POST", "/clear", {})
    print(f"local -> target at {args.rtt_ms} ms round trips, {args.keys} keys, proof on")
    print(f"{'target':>7} | {'PyMongo keys/s':>14} {'RT/key':>7} | {'keyshift keys/s':>15} {'RT/key':>7} "
          f"{'conns/key':>9} | ratio")
    for r in rows:
        py, ks = r["pymongo"], r["keyshift"]
        print(f"{r['target']:>7} | {py['keys_per_s']:14.1f} {py['round_trips_per_key']:7.2f} | "
              f"{ks['keys_per_s']:15.1f} {ks['round_trips_per_key']:7.2f} {ks['connections_per_key']:9.3f} | "
              f"{r['ratio']}x")
    (rb.bench_dir(world) / "providers.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
