#!/usr/bin/env python3
"""Rewrap benchmark: keyshift against PyMongo's rewrap_many_data_key, on the test world.

    rewrap_bench.py [--keys N] [--latencies 0,20,50] [--rss-keys 1000,100000] [--quick]
                    [--keyshift PATH] [--json PATH] [--skip-pymongo] [--skip-rss]
                    [--skip-ceiling] [--batch-size B] [--concurrency C]

`make bench` runs it (after a release build) on a world it starts and stops itself. In
one run it measures:

1. The raw ceiling (kms_ceiling.py): KMS requests/s the AWS stand-in serves to a plain
   concurrent load, directly and through the fault proxy (and, for information, over
   kept-alive connections). Measured again (32 and 64 in flight) right before
   keyshift's 0 ms run, which it is compared with.
2. For each added latency (the fault proxy's rtt_ms on the aws upstream: a network
   round trip on every flight, so a fresh TLS connection costs 3 round trips and a
   kept-alive one 1; --latency-model connection restores the older model, delay_ms
   once per connection): N local DEKs seeded once (seed.py
   --via-proxy, so the target endpoint is the proxy), copied to two identical key
   vaults, one rewrapped by PyMongo's ClientEncryption.rewrap_many_data_key (the
   oracle, sequential KMS requests), the other by `keyshift rewrap --yes` (release
   build, proof on, the shipped defaults for batchSize and concurrency). Both move
   every key to the AWS stand-in's key through the proxy.
   Reported: keys/s (keys / wall seconds; PyMongo timed around the call alone, keyshift
   as a whole process: connect, backup, rewrap, proofs, writes), the ratio, target-KMS
   requests (the stand-in's Encrypt and Decrypt counters) and requests/s, keyshift's
   peak RSS (its VmHWM from /proc, polled every 20 ms until it exits).
3. keyshift's peak RSS rewrapping vaults of each --rss-keys size, moved to the AWS
   stand-in through the proxy with 0 ms added (--rss-target aws, the default: 100,000
   keys take some 5 minutes at a few hundred keys/s), or with --rss-target local to a
   fresh local key: the same engine (backup, batches, rewrap contexts, proofs,
   compare-and-swap writes) without KMS round trips.
   Each run also records the stand-in's CPU seconds (/__ks/state cpuSeconds).

Seeded vaults are cached per size under $KS_RUN_DIR/bench (re-seeded when missing);
every measured run works on a fresh copy. The machine's load average is recorded
before and after each measurement: on shared machines numbers are noisy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVICES = ROOT / "tests" / "services"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SERVICES))

import kms_ceiling  # noqa: E402

PY = sys.executable


# --------------------------------------------------------------------------- the world


def read_world() -> dict[str, str]:
    return kms_ceiling.read_world()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def proxy(world: dict[str, str], method: str, path: str, doc: dict | None = None) -> dict:
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(world["KS_PROXY_CONTROL"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


LATENCY_MODEL = "rtt"


def set_latency(world: dict[str, str], ms: int) -> None:
    knob = "rtt_ms" if LATENCY_MODEL == "rtt" else "delay_ms"
    proxy(world, "POST", "/faults", {"upstream": "aws", knob: ms, "replace": True})


def kms_counts(world: dict[str, str]) -> dict[str, int]:
    """Target-KMS requests so far: the stand-in's Encrypt/Decrypt and the proxy's connections."""
    state = kms_ceiling.stand_in_state(world)
    c = state["counters"]
    counters = proxy(world, "GET", "/counters").get("aws", {})
    return {"Encrypt": c.get("Encrypt", 0), "Decrypt": c.get("Decrypt", 0), "ReEncrypt": c.get("ReEncrypt", 0),
            "proxy_connections": counters.get("connections", 0), "round_trips": counters.get("round_trips", 0),
            "stand_in_cpu_s": state["cpuSeconds"]}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    d = {k: after[k] - before.get(k, 0) for k in after}
    d["stand_in_cpu_s"] = round(d["stand_in_cpu_s"], 2)
    d["kms_requests"] = d["Encrypt"] + d["Decrypt"] + d["ReEncrypt"]
    d["round_trips_per_request"] = round(d["round_trips"] / d["kms_requests"], 2) if d["kms_requests"] else None
    return d


def mongo(world: dict[str, str]):
    from pymongo import MongoClient

    from seed import mongo_uri

    return MongoClient(mongo_uri(world), uuidRepresentation="standard", serverSelectionTimeoutMS=20000)


# --------------------------------------------------------------------------- key vaults


def bench_dir(world: dict[str, str]) -> Path:
    base = Path(world.get("KS_RUN_DIR") or SERVICES / "run") / "bench"
    base.mkdir(parents=True, exist_ok=True)
    return base


def seeded(world: dict[str, str], client, n: int) -> Path:
    """The seed directory of an n-key vault under a local key (seeded if missing)."""
    out = bench_dir(world) / f"seed-{n}"
    ns = f"ksbench_{n}.src"
    db, coll = ns.split(".")
    manifest = out / "seed.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("keys") == n:
        kv = client[db][coll]
        if kv.count_documents({"masterKey.provider": "local"}) == n == kv.count_documents({}):
            return out
    print(f"seeding {n} keys into {ns} ...", file=sys.stderr)
    t0 = time.monotonic()
    subprocess.run([PY, str(SERVICES / "seed.py"), "--out", str(out), "--keys", str(n), "--docs", "10",
                    "--target", "aws", "--via-proxy", "--key-vault", ns, "--db", f"ksbench_{n}_app",
                    "--drop"], check=True, stdout=subprocess.DEVNULL)
    print(f"  seeded in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return out


def copy_vault(client, n: int, dst: str) -> None:
    """A fresh copy of the n-key source vault at dst (same documents, byte for byte)."""
    from bson.raw_bson import RawBSONDocument

    sdb, scoll = f"ksbench_{n}.src".split(".")
    ddb, dcoll = dst.split(".")
    src = client[sdb].get_collection(scoll, codec_options=client.codec_options.with_options(
        document_class=RawBSONDocument))
    client[ddb].drop_collection(dcoll)
    target = client[ddb][dcoll]
    batch = []
    for doc in src.find({}, batch_size=1000):
        batch.append(doc)
        if len(batch) == 1000:
            target.insert_many(batch, ordered=False)
            batch = []
    if batch:
        target.insert_many(batch, ordered=False)
    if target.count_documents({}) != n:
        sys.exit(f"bench: copying {n} keys to {dst} failed")


def drop_vault(client, ns: str) -> None:
    db, coll = ns.split(".")
    client[db].drop_collection(coll)


def moved(client, ns: str, provider: str = "aws") -> int:
    db, coll = ns.split(".")
    return client[db][coll].count_documents({"masterKey.provider": provider})


# --------------------------------------------------------------------------- the runs


def local_target(run_dir: Path) -> str:
    """keyshift.toml sections for a local-key target (`local:bench`, a fresh key)."""
    key = run_dir / "new-master-key.bin"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(96))
    return (f'[kmsProviders."local:bench"]\nkey = {json.dumps(f"file:{key}")}\n\n'
            '[target]\nprovider = "local:bench"\n\n')


def run_config(seed_dir: Path, run_dir: Path, ns: str, batch_size: int | None, concurrency: int | None,
               target: str = "aws", edit=None) -> Path:
    """keyshift.toml for one run: the seeded one, on namespace ns, with keyshift's defaults
    for batchSize and concurrency (the seeder writes its own; as shipped means neither).
    target "local": to a fresh local key instead of the AWS stand-in (no KMS I/O)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    text = (seed_dir / "keyshift.toml").read_text()
    if target == "local":
        text = re.sub(r"(?s)\[target\].*?(?=\[rewrap\])", lambda _: local_target(run_dir), text)
    text = re.sub(r'(?m)^namespace = .*$', f'namespace = "{ns}"', text)
    text = text.replace('"file:master-key.bin"', json.dumps(f"file:{seed_dir / 'master-key.bin'}"))
    text = re.sub(r'(?m)^(batchSize|concurrency) = .*\n', "", text)
    text = re.sub(r'(?m)^backupDir = .*$', f'backupDir = "{run_dir / "backups"}"', text)
    extra = ""
    if batch_size:
        extra += f"batchSize = {batch_size}\n"
    if concurrency:
        extra += f"concurrency = {concurrency}\n"
    text = text.replace("[rewrap]\n", "[rewrap]\n" + extra)
    if edit:
        text = edit(text)
    path = run_dir / "keyshift.toml"
    path.write_text(text)
    return path


def seed_env(seed_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for line in (seed_dir / "keyshift.env").read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def run_keyshift(world: dict[str, str], keyshift: str, seed_dir: Path, ns: str, n: int, label: str,
                 batch_size: int | None, concurrency: int | None, client, target: str = "aws",
                 edit=None) -> dict:
    run_dir = bench_dir(world) / "runs" / label
    config = run_config(seed_dir, run_dir, ns, batch_size, concurrency, target, edit)
    log = open(run_dir / "keyshift.log", "wb")
    before, load0 = kms_counts(world), loadavg()
    t0 = time.monotonic()
    proc = subprocess.Popen([keyshift, "rewrap", "--config", str(config), "--yes"], cwd=run_dir,
                            env=seed_env(seed_dir), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    # Peak RSS: the child's own VmHWM, polled until it exits. Not ru_maxrss: Linux
    # carries the parent's high-water mark across fork and exec into the child's, so
    # it would report this (larger) Python process instead.
    hwm_kib = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        hwm_kib = max(hwm_kib, vm_hwm_kib(proc.pid))
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    requests = delta(kms_counts(world), before)
    done = moved(client, ns, "local:bench" if target == "local" else "aws")
    if proc.returncode != 0 or done != n:
        tail = (run_dir / "keyshift.log").read_text(errors="replace")[-2000:]
        sys.exit(f"bench: keyshift run {label} failed (exit {proc.returncode}, {done}/{n} moved):\n{tail}")
    return {"tool": "keyshift", "target": target, "keys": n, "seconds": round(seconds, 2), "keys_per_s": round(n / seconds, 1),
            "kms": requests, "kms_per_s": round(requests["kms_requests"] / seconds, 1),
            "peak_rss_mib": round(hwm_kib / 1024, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "load_before": load0, "load_after": loadavg()}


def vm_hwm_kib(pid: int) -> int:
    """A live process's peak resident set (VmHWM), in KiB; 0 once it is gone."""
    try:
        m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


def run_pymongo(world: dict[str, str], seed_dir: Path, ns: str, n: int, key_arn: str | None = None) -> dict:
    before, load0 = kms_counts(world), loadavg()
    extra = [key_arn] if key_arn else []
    out = subprocess.run([PY, str(Path(__file__)), "_pymongo", str(seed_dir), ns, *extra], check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    requests = delta(kms_counts(world), before)
    if r["modified"] != n:
        sys.exit(f"bench: PyMongo rewrapped {r['modified']} of {n} keys")
    seconds = r["seconds"]
    return {"tool": "pymongo", "keys": n, "seconds": seconds, "keys_per_s": round(n / seconds, 1),
            "kms": requests, "kms_per_s": round(requests["kms_requests"] / seconds, 1),
            "load_before": load0, "load_after": loadavg()}


def pymongo_child(seed_dir: str, ns: str, key_arn: str | None = None) -> int:
    """In a child process: PyMongo's rewrap_many_data_key of every key in ns to AWS (the
    world's key, or key_arn)."""
    from bson.codec_options import CodecOptions
    from bson.binary import UuidRepresentation
    from pymongo.encryption import ClientEncryption

    from kms_oracle import world_providers

    world = read_world()
    providers, tls, keys = world_providers(world, via_proxy=True)
    master = (Path(seed_dir) / "master-key.bin").read_bytes()
    client = mongo(world)
    codec = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
    with ClientEncryption({"local": {"key": master}, "aws": providers["aws"]}, ns, client, codec,
                          kms_tls_options={"aws": tls["aws"]}) as ce:
        t0 = time.monotonic()
        master_key = dict(keys["aws"], key=key_arn) if key_arn else keys["aws"]
        result = ce.rewrap_many_data_key({}, provider="aws", master_key=master_key)
        seconds = time.monotonic() - t0
    modified = result.bulk_write_result.modified_count if result.bulk_write_result else 0
    client.close()
    print(json.dumps({"seconds": round(seconds, 2), "modified": modified}))
    return 0


def create_aws_key(world: dict[str, str]) -> str:
    ctx = kms_ceiling.ssl.create_default_context(cafile=world["KS_CA_FILE"])
    req = urllib.request.Request(world["KS_AWS_CONTROL_URL"] + "/create", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.load(r)["arn"]


def aws_to_aws(world: dict[str, str], keyshift: str, seed_dir: Path, n: int, args, client) -> list[dict]:
    """AWS key A -> AWS key B at --aws-to-aws ms: by ReEncrypt (as shipped), by Decrypt +
    Encrypt through libmongocrypt (awsReEncrypt = false), and PyMongo's rewrap (Decrypt +
    Encrypt, sequential). Each on a fresh copy first moved, unmeasured, local -> A."""
    ms = args.aws_to_aws
    key_a = world["KS_AWS_KEY_ARN"]
    rows = []
    for mode in ("reencrypt", "decrypt+encrypt", "pymongo"):
        ns = f"ksbench_{n}.a2a_{mode.replace('+', '_')}"
        copy_vault(client, n, ns)
        set_latency(world, 0)
        run_keyshift(world, keyshift, seed_dir, ns, n, f"a2a-setup-{mode}", args.batch_size, args.concurrency,
                     client)
        key_b = create_aws_key(world)
        set_latency(world, ms)
        print(f"{ms} ms: AWS -> AWS ({mode}) of {n} keys ...", file=sys.stderr)
        if mode == "pymongo":
            r = run_pymongo(world, seed_dir, ns, n, key_b)
        else:
            def edit(text: str, off=(mode != "reencrypt")) -> str:
                text = text.replace(key_a, key_b)
                return text.replace("[rewrap]\n", "[rewrap]\nawsReEncrypt = false\n") if off else text
            r = run_keyshift(world, keyshift, seed_dir, ns, n, f"a2a-{mode}-{ms}ms", args.batch_size,
                             args.concurrency, client, edit=edit)
        r["mode"], r["delay_ms"] = mode, ms
        print(f"  {r['keys_per_s']} keys/s, {r['kms']['kms_requests'] / n:.2f} requests per key", file=sys.stderr)
        drop_vault(client, ns)
        rows.append(r)
    return rows


# --------------------------------------------------------------------------- report


def fmt_table(results: dict) -> str:
    lines = []
    c = results.get("ceiling")
    if c:
        lines.append(f"KMS ceiling (plain load, fresh TLS connection per request): "
                     f"{c['direct']['ceiling_rps']} req/s direct, {c['via_proxy']['ceiling_rps']} req/s "
                     f"through the proxy (load {c['load_before']} -> {c['load_after']})")
        if c.get("direct_keepalive"):
            lines.append(f"  (with connections kept alive, not as libmongocrypt makes them: "
                         f"{c['direct_keepalive']['points'][0]['rps']} req/s direct)")
    if results.get("latency"):
        lines.append("")
        lines.append(f"{'latency':>8} | {'PyMongo keys/s':>14} {'req/s':>7} | {'keyshift keys/s':>15} "
                     f"{'req/s':>7} {'req/key':>7} {'RT/req':>6} {'RSS MiB':>7} | {'ratio':>6} | load")
        for row in results["latency"]:
            py, ks = row.get("pymongo"), row["keyshift"]
            ratio = f"{ks['keys_per_s'] / py['keys_per_s']:.1f}x" if py else "-"
            pys = f"{py['keys_per_s']:14.1f} {py['kms_per_s']:7.1f}" if py else f"{'-':>14} {'-':>7}"
            rt = ks["kms"].get("round_trips_per_request")
            rts = f"{rt:6.2f}" if rt is not None else f"{'-':>6}"
            lines.append(f"{row['delay_ms']:>6}ms | {pys} | {ks['keys_per_s']:15.1f} {ks['kms_per_s']:7.1f} "
                         f"{ks['kms']['kms_requests'] / ks['keys']:7.2f} {rts} {ks['peak_rss_mib']:7.1f} | {ratio:>6} | "
                         f"{ks['load_before'][0]:.1f}-{ks['load_after'][0]:.1f}")
        if c:
            zero = [r for r in results["latency"] if r["delay_ms"] == 0]
            if zero:
                ks = zero[0]["keyshift"]
                lines.append(f"at 0 ms keyshift's KMS request rate is {ks['kms_per_s'] / c['ceiling_rps']:.0%} "
                             f"of the ceiling ({ks['kms_per_s']} of {c['ceiling_rps']} req/s)")
                again = zero[0].get("ceiling_before")
                if again:
                    d, v = again["direct"]["ceiling_rps"], again["via_proxy"]["ceiling_rps"]
                    lines.append(f"  and of the ceiling measured again just before it: {ks['kms_per_s'] / d:.0%} "
                                 f"of {d} req/s direct, {ks['kms_per_s'] / v:.0%} of {v} through the proxy")
    if results.get("aws_to_aws"):
        lines.append("")
        lines.append(f"AWS -> AWS at {results['aws_to_aws'][0]['delay_ms']} ms: "
                     f"{'mode':>16} | {'keys/s':>8} | {'requests/key':>12} | {'RT/request':>10}")
        for r in results["aws_to_aws"]:
            k = r["kms"]
            per = "/".join(f"{k[a] / r['keys']:.2f} {a}" for a in ("ReEncrypt", "Encrypt", "Decrypt") if k[a])
            rt = k.get("round_trips_per_request")
            lines.append(f"{'':>17} {r['mode']:>16} | {r['keys_per_s']:8.1f} | {per} | {rt}")
    if results.get("rss"):
        lines.append("")
        for r in results["rss"]:
            lines.append(f"peak RSS, {r['keys']:>7} keys to {r['target']}: {r['peak_rss_mib']:6.1f} MiB "
                         f"({r['keys_per_s']} keys/s, {r['seconds']} s, load {r['load_before'][0]:.1f})")
        if len(results["rss"]) >= 2:
            lo, hi = results["rss"][0], results["rss"][-1]
            lines.append(f"ratio {hi['keys']} / {lo['keys']} keys: {hi['peak_rss_mib'] / lo['peak_rss_mib']:.2f}x")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_pymongo":
        return pymongo_child(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=2000)
    p.add_argument("--latencies", default="0,20,50", help="added KMS latency per request, ms")
    p.add_argument("--rss-keys", default="1000,100000", help="vault sizes for the peak-RSS comparison")
    p.add_argument("--quick", action="store_true", help="small run: 300 keys, 0 and 50 ms, RSS 500 vs 5000")
    p.add_argument("--keyshift", default=str(ROOT / "target" / "release" / "keyshift"))
    p.add_argument("--json", help="write the results here (default: $KS_RUN_DIR/bench/results.json)")
    p.add_argument("--skip-pymongo", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--rss-target", choices=["local", "aws"], default="aws",
                   help="target of the peak-RSS runs (default aws; local: no KMS I/O, see above)")
    p.add_argument("--skip-ceiling", action="store_true")
    p.add_argument("--ceiling-seconds", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, help="override keyshift's default (tuning)")
    p.add_argument("--concurrency", type=int, help="override keyshift's default (tuning)")
    p.add_argument("--aws-to-aws", type=int, metavar="MS",
                   help="also measure AWS -> AWS moves at MS ms: ReEncrypt, Decrypt+Encrypt, PyMongo")
    p.add_argument("--latency-model", choices=["rtt", "connection"], default="rtt",
                   help="rtt: a round trip per flight (as a network); connection: delay_ms once per connection")
    args = p.parse_args()
    global LATENCY_MODEL
    LATENCY_MODEL = args.latency_model
    if args.quick:
        args.keys, args.latencies, args.rss_keys, args.ceiling_seconds = 300, "0,50", "500,5000", 3.0
    world = read_world()
    keyshift = args.keyshift
    if not os.access(keyshift, os.X_OK):
        sys.exit(f"bench: no keyshift binary at {keyshift} (cargo build --release -p keyshift)")
    version = subprocess.run([keyshift, "--version"], capture_output=True, text=True).stdout.strip()
    results: dict = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine(), "keyshift": version, "keys": args.keys,
                     "overrides": {"batchSize": args.batch_size, "concurrency": args.concurrency},
                     "load_start": loadavg()}
    print(f"keyshift {version}; {results['machine']['cores']} cores; load {results['load_start']}", file=sys.stderr)
    client = mongo(world)
    set_latency(world, 0)

    if not args.skip_ceiling:
        print("ceiling ...", file=sys.stderr)
        load0 = loadavg()
        conc = (8, 16, 32, 64)
        results["ceiling"] = {
            "direct": kms_ceiling.measure(world, world["KS_AWS_ENDPOINT"], args.ceiling_seconds, conc),
            "via_proxy": kms_ceiling.measure(world, world["KS_PROXY_AWS_ENDPOINT"], args.ceiling_seconds, conc),
            # not the ceiling (no client here reuses connections): what TLS setup costs
            "direct_keepalive": kms_ceiling.measure(world, world["KS_AWS_ENDPOINT"], args.ceiling_seconds,
                                                    (32,), ("keepalive",)),
            "load_before": load0, "load_after": loadavg()}
        results["ceiling"]["ceiling_rps"] = max(results["ceiling"]["direct"]["ceiling_rps"],
                                                results["ceiling"]["via_proxy"]["ceiling_rps"])

    n = args.keys
    seed_dir = seeded(world, client, n)
    results["latency"] = []
    for ms in (int(x) for x in args.latencies.split(",")):
        set_latency(world, ms)
        row: dict = {"delay_ms": ms, "latency_model": LATENCY_MODEL}
        if not args.skip_pymongo:
            ns = f"ksbench_{n}.pymongo_{ms}"
            copy_vault(client, n, ns)
            print(f"{ms} ms: PyMongo rewrap_many_data_key of {n} keys ...", file=sys.stderr)
            row["pymongo"] = run_pymongo(world, seed_dir, ns, n)
            drop_vault(client, ns)
            print(f"  {row['pymongo']['keys_per_s']} keys/s", file=sys.stderr)
        ns = f"ksbench_{n}.keyshift_{ms}"
        copy_vault(client, n, ns)
        if ms == 0 and not args.skip_ceiling:
            # the ceiling again, right before the run it is compared with: on a shared
            # machine the one from minutes ago may have seen a different load
            load0 = loadavg()
            row["ceiling_before"] = {
                "direct": kms_ceiling.measure(world, world["KS_AWS_ENDPOINT"], args.ceiling_seconds, (32, 64)),
                "via_proxy": kms_ceiling.measure(world, world["KS_PROXY_AWS_ENDPOINT"], args.ceiling_seconds,
                                                 (32, 64)),
                "load_before": load0, "load_after": loadavg()}
        print(f"{ms} ms: keyshift rewrap of {n} keys ...", file=sys.stderr)
        row["keyshift"] = run_keyshift(world, keyshift, seed_dir, ns, n, f"keyshift-{n}-{ms}ms",
                                       args.batch_size, args.concurrency, client)
        drop_vault(client, ns)
        print(f"  {row['keyshift']['keys_per_s']} keys/s, {row['keyshift']['kms_per_s']} KMS req/s",
              file=sys.stderr)
        results["latency"].append(row)
    set_latency(world, 0)

    if args.aws_to_aws is not None:
        results["aws_to_aws"] = aws_to_aws(world, keyshift, seed_dir, n, args, client)
        set_latency(world, 0)

    if not args.skip_rss:
        results["rss"] = []
        for size in (int(x) for x in args.rss_keys.split(",")):
            sdir = seeded(world, client, size)
            ns = f"ksbench_{size}.rss"
            copy_vault(client, size, ns)
            print(f"peak RSS: keyshift rewrap of {size} keys ...", file=sys.stderr)
            r = run_keyshift(world, keyshift, sdir, ns, size, f"rss-{size}", args.batch_size, args.concurrency,
                             client, args.rss_target)
            drop_vault(client, ns)
            print(f"  {r['peak_rss_mib']} MiB in {r['seconds']} s", file=sys.stderr)
            results["rss"].append(r)

    results["load_end"] = loadavg()
    out = Path(args.json) if args.json else bench_dir(world) / "results.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(fmt_table(results))
    print(f"\n(load average {results['load_start']} at start, {results['load_end']} at end; results in {out})")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
