#!/usr/bin/env python3
"""Profile the MongoDB stand-in under the rotate benchmark's load.

    standin_profile.py [--docs 30000] [--batch 1000] [--profile OUT.pstats] [--top 40]

Runs the stand-in (tests/services/mongod_standin.py's StandinServer, TLS included) in
this process and drives it from a PyMongo child process with the shapes `keyshift
rotate` sends: documents like seed.py's customers (four BinData 6 fields of realistic
sizes, a $jsonSchema validator with `encrypt` keywords), then a find sorted by _id in
batches, and bulk updates (ordered: false) of compare-and-swap statements
`{q: {_id, path: old...}, u: {$set: {path: new...}}}`.

Reported: the driver's wall seconds per phase, and the stand-in's own CPU per command
(thread CPU time: receive + TLS + decode, then execute + encode + send), per document
or statement. With --profile, every connection thread runs under cProfile (slower) and
the merged statistics are saved and the top entries printed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICES = HERE.parent / "services"
sys.path.insert(0, str(SERVICES))

# --- the driver (child process) -----------------------------------------------------------


def drive(uri: str, docs: int, batch: int) -> dict:
    import datetime

    from bson import Binary
    from pymongo import MongoClient, UpdateOne

    key = [os.urandom(16) for _ in range(4)]

    def blob(kind: int, k: bytes, bson_type: int, n: int) -> Binary:
        return Binary(bytes([kind]) + k + bytes([bson_type]) + os.urandom(n), 6)

    fields = (("ssn", 1, 2, 80), ("email", 1, 2, 80), ("medical", 2, 3, 112), ("notes", 2, 2, 96))
    validator = {"$jsonSchema": {"bsonType": "object", "properties": {
        "ssn": {"encrypt": {"keyId": [Binary(key[0], 4)], "bsonType": "string",
                            "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"}},
        "email": {"encrypt": {"keyId": [Binary(key[1], 4)], "bsonType": "string",
                              "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"}},
        "medical": {"encrypt": {"keyId": "/tenant", "bsonType": "object",
                                "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Random"}}}}}
    client = MongoClient(uri, uuidRepresentation="standard")
    db = client.app
    db.drop_collection("customers")
    db.create_collection("customers", validator=validator)
    coll = db.customers
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    out = {}
    t = time.perf_counter()
    for start in range(0, docs, batch):
        coll.insert_many([{"_id": i, "name": "Customer %d" % i, "tenant": "tenant-%05d" % (i % 5), "since": now,
                           **{f: blob(kind, key[j], bt, n) for j, (f, kind, bt, n) in enumerate(fields)}}
                          for i in range(start, min(docs, start + batch))], ordered=False)
    out["insert"] = time.perf_counter() - t

    t = time.perf_counter()
    scanned, statements, matched = 0, 0, 0
    t_find = t_update = 0.0
    ops: list = []
    t0 = time.perf_counter()
    for d in coll.find({}, sort=[("_id", 1)], batch_size=batch):
        scanned += 1
        flt, new = {"_id": d["_id"]}, {}
        for j, (f, kind, bt, n) in enumerate(fields):
            flt[f] = d[f]
            new[f] = blob(kind, key[j][::-1], bt, n)
        ops.append(UpdateOne(flt, {"$set": new}))
        if len(ops) >= batch:
            t1 = time.perf_counter()
            t_find += t1 - t0
            r = coll.bulk_write(ops, ordered=False)
            t0 = time.perf_counter()
            t_update += t0 - t1
            statements += len(ops)
            matched += r.matched_count
            ops = []
    t_find += time.perf_counter() - t0
    if ops:
        t1 = time.perf_counter()
        r = coll.bulk_write(ops, ordered=False)
        t_update += time.perf_counter() - t1
        statements += len(ops)
        matched += r.matched_count
    out.update(rotate=time.perf_counter() - t, find_wall=t_find, update_wall=t_update,
               scanned=scanned, statements=statements, matched=matched)
    client.close()
    return out


# --- the stand-in (this process) ------------------------------------------------------------


def serve_and_drive(args) -> None:
    import mongod_standin as ms
    import pki
    from mongo_standin.commands import Engine

    tmp = Path(tempfile.mkdtemp(prefix="standin-profile-"))
    ca = pki.CA.create(tmp / "pki")
    cert = ca.issue("mongod")

    cpu = defaultdict(lambda: [0, 0.0, 0.0])  # name -> [count, receive cpu, execute+reply cpu]
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    local = threading.local()

    class Measured(ms.StandinServer):
        def _receive(self, sock):
            now = time.thread_time()
            last = getattr(local, "last", None)
            if last is not None:  # the previous request's execute + reply
                with lock:
                    cpu[last[0]][2] += now - last[1]
            req = super()._receive(sock)
            done = time.thread_time()
            if req is not None:
                doc = getattr(req, "doc", None) or {}
                name = next(iter(doc), "?")
                with lock:
                    cpu[name][0] += 1
                    cpu[name][1] += done - now
                local.last = (name, done)
            return req

        def _server_loop(self, client, addr):
            local.last = None
            if not args.profile:
                return super()._server_loop(client, addr)
            prof = cProfile.Profile()
            with lock:
                profiles.append(prof)
            prof.enable()
            try:
                return super()._server_loop(client, addr)
            finally:
                prof.disable()

    getattr(ms, "tune_gc", lambda: None)()  # as the stand-in's main() does (if it has it)
    engine = Engine()
    server = Measured(engine, 0, str(cert.cert), str(cert.key))
    port = server.run()
    uri = "mongodb://127.0.0.1:%d/?tls=true&tlsCAFile=%s&directConnection=true" % (port, ca.cert_path)
    proc = subprocess.run([sys.executable, __file__, "--drive", uri, "--docs", str(args.docs), "--batch", str(args.batch)],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit("driver failed:\n" + proc.stderr)
    out = json.loads(proc.stdout)
    time.sleep(0.2)
    print("driver wall: insert %.2fs, rotate %.2fs (find+getMore %.2fs, update %.2fs); scanned %d, statements %d, matched %d"
          % (out["insert"], out["rotate"], out["find_wall"], out["update_wall"], out["scanned"], out["statements"], out["matched"]))
    per = {"insert": args.docs, "find": args.docs, "getMore": args.docs, "update": out["statements"]}
    print("%-12s %7s %10s %10s %12s" % ("command", "count", "recv cpu", "exec cpu", "us/doc|stmt"))
    for name, (n, rc, ec) in sorted(cpu.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        unit = per.get(name)
        per_unit = "%.1f" % ((rc + ec) / unit * 1e6) if unit else ""
        print("%-12s %7d %9.3fs %9.3fs %12s" % (name, n, rc, ec, per_unit))
    f, g = cpu.get("find", [0, 0, 0]), cpu.get("getMore", [0, 0, 0])
    print("read (find+getMore): %.1f us/doc; update: %.1f us/statement" % (
        (f[1] + f[2] + g[1] + g[2]) / args.docs * 1e6,
        sum(cpu.get("update", [0, 0, 0])[1:]) / max(1, out["statements"]) * 1e6))
    if args.profile and profiles:
        stats = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            stats.add(p)
        stats.dump_stats(args.profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=30000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--profile", help="run under cProfile and save the merged stats here")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--drive", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.drive:
        print(json.dumps(drive(args.drive, args.docs, args.batch)))
        return 0
    serve_and_drive(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
