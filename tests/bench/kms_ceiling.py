#!/usr/bin/env python3
"""The raw ceiling: how many KMS requests per second the AWS stand-in serves at all.

    kms_ceiling.py [--seconds S] [--concurrency 8,16,32,64] [--endpoint host:port]
                   [--modes fresh,keepalive] [--json]

A plain concurrent load, independent of keyshift and libmongocrypt: one AWS KMS Encrypt
request (a 96-byte plaintext, as a DEK) is signed once with botocore's SigV4 signer and
then replayed, byte for byte, by asyncio workers over TLS (the test CA verified). The
replay needs no signing and no SDK, but a new TLS connection still costs this Python
client about as much CPU as it costs the stand-in (~1 ms each), on the same two cores:
the ceiling is the machine's, with this client, not the stand-in's alone (keyshift's
Rust client is cheaper and can exceed it). Mode "fresh" (the ceiling): every request on
a new TLS connection with `Connection: close`, as libmongocrypt (so keyshift and every
driver) sends them. Mode "keepalive" (--modes): connections reused, which the stand-in
allows and libmongocrypt never does; it shows what TLS setup costs.

Each point runs S seconds after a 1 s warm-up and counts complete HTTP 200 replies. The
stand-in's own counters (/__ks/state) are read before and after as a cross-check, with
its process CPU time: each point also reports the stand-in's CPU milliseconds per request.
The world comes from $KS_ENV_FILE (else tests/services/run/env); the endpoint defaults
to the stand-in itself (KS_AWS_ENDPOINT); pass KS_PROXY_AWS_ENDPOINT's value to measure
through the fault proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_world() -> dict[str, str]:
    path = Path(os.environ.get("KS_ENV_FILE", ROOT / "tests" / "services" / "run" / "env"))
    if not path.exists():
        sys.exit(f"kms_ceiling: no test world ({path} missing); run tests/services/up first")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def signed_encrypt(world: dict[str, str], endpoint: str) -> bytes:
    """One SigV4-signed Encrypt request as raw HTTP/1.1 bytes (without a Connection header)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"KeyId": world["KS_AWS_KEY_ARN"],
                       "Plaintext": base64.b64encode(os.urandom(96)).decode()}).encode()
    req = AWSRequest(method="POST", url=f"https://{endpoint}/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt"})
    creds = Credentials(world["KS_AWS_ACCESS_KEY_ID"], world["KS_AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(creds, "kms", world["KS_AWS_REGION"]).add_auth(req)
    head = f"POST / HTTP/1.1\r\nHost: {endpoint}\r\n"
    for k, v in req.headers.items():
        if k.lower() != "host":
            head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"%s\r\n" + body  # %s: where the Connection header goes


async def read_reply(reader: asyncio.StreamReader) -> int:
    """Reads one HTTP reply; returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    await reader.readexactly(length)
    return status


async def load(host: str, port: int, ctx: ssl.SSLContext, template: bytes, mode: str,
               concurrency: int, seconds: float) -> dict:
    """mode "fresh": a new TLS connection per request, `Connection: close` (as libmongocrypt);
    "keepalive": one connection per worker, reused for every request (no handshakes)."""
    keep = mode == "keepalive"
    request = template.replace(b"%s", b"" if keep else b"Connection: close\r\n", 1)
    counts = {"ok": 0, "bad": 0, "errors": 0}
    measuring = False
    stop_at = time.monotonic() + 1.0 + seconds

    async def worker():
        nonlocal measuring
        conn = None
        while time.monotonic() < stop_at:
            try:
                if conn is None:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection(host, port, ssl=ctx, server_hostname="127.0.0.1"), 30)
                reader, writer = conn
                writer.write(request)
                await asyncio.wait_for(writer.drain(), 30)
                status = await asyncio.wait_for(read_reply(reader), 30)
                if measuring:
                    counts["ok" if status == 200 else "bad"] += 1
                if not keep:
                    writer.close()
                    conn = None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError, ValueError):
                if measuring:
                    counts["errors"] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    async def clock():
        nonlocal measuring
        await asyncio.sleep(1.0)  # warm-up
        counts.update(ok=0, bad=0, errors=0)
        measuring = True

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await clock()
    t0 = time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    return {"mode": mode, "concurrency": concurrency, "seconds": round(elapsed, 2),
            "ok": counts["ok"], "bad": counts["bad"], "errors": counts["errors"],
            "rps": round(counts["ok"] / elapsed, 1)}


def stand_in_state(world: dict[str, str]) -> dict:
    """The stand-in's /__ks/state: {"counters", "denies", "cpuSeconds" (its process CPU time)}."""
    ctx = ssl.create_default_context(cafile=world["KS_CA_FILE"])
    with urllib.request.urlopen(world["KS_AWS_CONTROL_URL"] + "/state", context=ctx, timeout=10) as r:
        return json.load(r)


def stand_in_counters(world: dict[str, str]) -> dict:
    return stand_in_state(world)["counters"]


def measure(world: dict[str, str], endpoint: str | None = None, seconds: float = 5.0,
            concurrencies=(8, 16, 32, 64), modes=("fresh",)) -> dict:
    endpoint = endpoint or world["KS_AWS_ENDPOINT"]
    host, port = endpoint.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=world["KS_CA_FILE"])
    template = signed_encrypt(world, endpoint)
    points = []
    first = before = stand_in_state(world)
    for mode in modes:
        for c in concurrencies:
            points.append(asyncio.run(load(host, int(port), ctx, template, mode, c, seconds)))
            after = stand_in_state(world)
            # the stand-in's own CPU per request served (warm-up included on both sides)
            n = after["counters"].get("Encrypt", 0) - before["counters"].get("Encrypt", 0)
            points[-1]["stand_in_cpu_ms_per_request"] = round(
                (after["cpuSeconds"] - before["cpuSeconds"]) * 1000 / max(n, 1), 3)
            before = after
            print(f"  ceiling {mode:9} concurrency {c:3}: {points[-1]['rps']:7.1f} req/s"
                  f" ({points[-1]['bad']} non-200, {points[-1]['errors']} errors;"
                  f" stand-in CPU {points[-1]['stand_in_cpu_ms_per_request']} ms/request)", file=sys.stderr)
    served = before["counters"].get("Encrypt", 0) - first["counters"].get("Encrypt", 0)
    best = {m: max((p for p in points if p["mode"] == m), key=lambda p: p["rps"]) for m in modes}
    return {"endpoint": endpoint, "points": points, "best": best,
            "ceiling_rps": max(p["rps"] for p in points if p["mode"] == "fresh") if "fresh" in modes else None,
            "stand_in_encrypts_counted": served}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", default="8,16,32,64")
    p.add_argument("--endpoint", help="host:port (default: the stand-in, KS_AWS_ENDPOINT)")
    p.add_argument("--modes", default="fresh", help="fresh (a TLS connection per request, as "
                   "libmongocrypt), keepalive (connections reused: the stand-in without TLS setup)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    world = read_world()
    result = measure(world, args.endpoint, args.seconds,
                     tuple(int(c) for c in args.concurrency.split(",")), tuple(args.modes.split(",")))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"ceiling at {result['endpoint']}: {result['ceiling_rps']} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
