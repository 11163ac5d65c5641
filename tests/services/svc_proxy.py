"""Test-world plug-in: the fault and latency proxy (fault_proxy.py) in front of the KMS stand-ins.

Starts after the KMS stand-ins and puts one listener in front of each of their
endpoints that is running. Every upstream starts with no faults; tests set them
through the control endpoint (see fault_proxy.py) and read its counters.

Upstream names and the env var of each proxied endpoint (same form as the direct one):
    aws             KS_PROXY_AWS_ENDPOINT              -> KS_AWS_ENDPOINT
    azure           KS_PROXY_AZURE_VAULT_ENDPOINT      -> KS_AZURE_VAULT_ENDPOINT
                    (also KS_PROXY_AZURE_ENDPOINT)
    azure-identity  KS_PROXY_AZURE_IDENTITY_ENDPOINT   -> KS_AZURE_IDENTITY_ENDPOINT
    gcp             KS_PROXY_GCP_KMS_ENDPOINT          -> KS_GCP_KMS_ENDPOINT
    gcp-oauth       KS_PROXY_GCP_ENDPOINT              -> KS_GCP_ENDPOINT
    kmip            KS_PROXY_KMIP_ENDPOINT             -> KS_KMIP_ENDPOINT
Faults from the start: set KS_PROXY_FAULTS before `up` to a JSON object
{upstream or "*": settings} (settings as POST /faults takes them), e.g.
    KS_PROXY_FAULTS='{"aws": {"delay_ms": 50}}' tests/services/up
Also exports KS_PROXY_CONTROL (http://127.0.0.1:PORT) and KS_PROXY_UPSTREAMS (names, comma-separated).
"""

from __future__ import annotations

import json
import os

NAME = "proxy"
ORDER = 40

# upstream name -> (kind, env var of the target, env vars to export for the proxied endpoint)
UPSTREAMS = {
    "aws": ("aws", "KS_AWS_ENDPOINT", ["KS_PROXY_AWS_ENDPOINT"]),
    "azure": ("azure", "KS_AZURE_VAULT_ENDPOINT", ["KS_PROXY_AZURE_VAULT_ENDPOINT", "KS_PROXY_AZURE_ENDPOINT"]),
    "azure-identity": ("azure", "KS_AZURE_IDENTITY_ENDPOINT", ["KS_PROXY_AZURE_IDENTITY_ENDPOINT"]),
    "gcp": ("gcp", "KS_GCP_KMS_ENDPOINT", ["KS_PROXY_GCP_KMS_ENDPOINT"]),
    "gcp-oauth": ("gcp", "KS_GCP_ENDPOINT", ["KS_PROXY_GCP_ENDPOINT"]),
    "kmip": ("kmip", "KS_KMIP_ENDPOINT", ["KS_PROXY_KMIP_ENDPOINT"]),
}


def start(ctx) -> dict[str, str]:
    cert = ctx.ca.issue("proxy", kind="server")
    upstreams, env = {}, {}
    for name, (kind, target_var, export_vars) in UPSTREAMS.items():
        target = ctx.env.get(target_var)
        if not target:
            continue
        port = ctx.free_port()
        upstreams[name] = {"listen": port, "target": target, "kind": kind}
        for var in export_vars:
            env[var] = f"127.0.0.1:{port}"
    control_port = ctx.free_port()
    faults = json.loads(os.environ.get("KS_PROXY_FAULTS") or "{}")
    cfg = {"controlPort": control_port, "upstreams": upstreams, "cert": str(cert.cert), "key": str(cert.key),
           "ca": str(ctx.ca_file), "faults": faults}
    path = ctx.data_dir / "proxy.json"
    path.write_text(json.dumps(cfg))
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "fault_proxy.py"), "--config", str(path)])
    ctx.wait_port(control_port, proc)
    for u in upstreams.values():
        ctx.wait_port(u["listen"], proc)
    env["KS_PROXY_CONTROL"] = f"http://127.0.0.1:{control_port}"
    env["KS_PROXY_UPSTREAMS"] = ",".join(upstreams) or "none"
    return env
