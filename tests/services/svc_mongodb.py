"""Launcher plug-in: the MongoDB wire stand-in (mongod_standin.py) over TLS, as the one
member of replica set "ks0" (what Atlas and self-managed deployments are: drivers
discover the set, send retryable writes and follow failovers only against a replica set).

Env it exports:
    KS_MONGODB_HOST        127.0.0.1
    KS_MONGODB_PORT        the port
    KS_MONGODB_REPLSET     ks0
    KS_MONGODB_URI         mongodb://127.0.0.1:PORT/?tls=true&tlsCAFile=CA&replicaSet=ks0
    KS_MONGODB_DIRECT_URI  mongodb://127.0.0.1:PORT/?tls=true&tlsCAFile=CA&directConnection=true

Set KS_MONGODB_DROP_RATE (a probability) before `up` to start the server with the
failCommand fail point dropping connections at that rate (KS_MONGODB_DROP_COMMANDS, a
comma-separated list, narrows which commands; KS_MONGODB_DROP_AFTER_EXECUTE=1 drops
after the command ran instead of before). KS_MONGODB_VERBOSE=1 logs every command.
"""

from __future__ import annotations

import os

NAME = "mongodb"
ORDER = 10
REPLSET = "ks0"


def start(ctx) -> dict[str, str]:
    cert = ctx.ca.issue("mongod")
    port = ctx.free_port()
    argv = [ctx.python, str(ctx.services_dir / "mongod_standin.py"),
            "--port", str(port), "--cert", str(cert.cert), "--key", str(cert.key), "--replset", REPLSET]
    if os.environ.get("KS_MONGODB_DROP_RATE"):
        argv += ["--drop-rate", os.environ["KS_MONGODB_DROP_RATE"]]
    if os.environ.get("KS_MONGODB_DROP_COMMANDS"):
        argv += ["--drop-commands", os.environ["KS_MONGODB_DROP_COMMANDS"]]
    if os.environ.get("KS_MONGODB_DROP_AFTER_EXECUTE"):
        argv += ["--drop-after-execute"]
    if os.environ.get("KS_MONGODB_VERBOSE"):
        argv += ["--verbose"]
    proc = ctx.spawn("mongodb", argv)
    ctx.wait_port(port, proc)
    return {
        "KS_MONGODB_HOST": "127.0.0.1",
        "KS_MONGODB_PORT": str(port),
        "KS_MONGODB_REPLSET": REPLSET,
        "KS_MONGODB_URI": "mongodb://127.0.0.1:%d/?tls=true&tlsCAFile=%s&replicaSet=%s" % (port, ctx.ca_file, REPLSET),
        "KS_MONGODB_DIRECT_URI": "mongodb://127.0.0.1:%d/?tls=true&tlsCAFile=%s&directConnection=true" % (port, ctx.ca_file),
    }
