"""Test-world plug-in: KMS-like TLS endpoints with certificates a client must refuse.

Exports host:port endpoints (masterKey.endpoint form) and the directory of attempt
counters (bad_tls.py):
    KS_BAD_TLS_EXPIRED      signed by the world's CA, validity ended yesterday
    KS_BAD_TLS_WRONG_HOST   signed by the world's CA for elsewhere.example only
    KS_BAD_TLS_UNTRUSTED    valid for 127.0.0.1, signed by a CA nobody trusts
    KS_BAD_TLS_COUNTS       DIR: KIND.count holds the connections each one accepted
"""

from __future__ import annotations

import pki

NAME = "bad-tls"
ORDER = 60


def start(ctx) -> dict[str, str]:
    expired = ctx.ca.issue("bad-tls-expired", expired=True)
    wrong = ctx.ca.issue("bad-tls-wrong-host", dns_names=("elsewhere.example",), ip_addresses=())
    stranger = pki.CA.create(ctx.run_dir / "pki-untrusted", name="a CA nobody trusts")
    untrusted = stranger.issue("bad-tls-untrusted")
    counts = ctx.run_dir / "bad-tls"
    listeners, env = [], {"KS_BAD_TLS_COUNTS": str(counts)}
    for kind, issued in (("expired", expired), ("wrong-host", wrong), ("untrusted", untrusted)):
        port = ctx.free_port()
        listeners += ["--listen", f"{kind}={port}:{issued.cert}:{issued.key}"]
        env[f"KS_BAD_TLS_{kind.upper().replace('-', '_')}"] = f"127.0.0.1:{port}"
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "bad_tls.py"), "--counts", str(counts), *listeners])
    for kind in ("EXPIRED", "WRONG_HOST", "UNTRUSTED"):
        ctx.wait_port(int(env[f"KS_BAD_TLS_{kind}"].rsplit(":", 1)[1]), proc)
    return env
