"""Test-world plug-in: the Azure Key Vault stand-in (kms_azure.py).

One process, three listeners: the identity platform token endpoint (TLS), the key
vault (TLS) and IMDS (plain HTTP, like the real link-local 169.254.169.254). Two keys
are created at start: KS_AZURE_KEY_NAME (its version exported) and KS_AZURE_KEY_NAME_2.

Exports:
    KS_AZURE_TENANT_ID, KS_AZURE_CLIENT_ID, KS_AZURE_CLIENT_SECRET
    KS_AZURE_IDENTITY_ENDPOINT    127.0.0.1:PORT  (kmsProviders.azure.identityPlatformEndpoint)
    KS_AZURE_VAULT_ENDPOINT       127.0.0.1:PORT  (masterKey.keyVaultEndpoint)
    KS_AZURE_KEY_NAME, KS_AZURE_KEY_VERSION, KS_AZURE_KEY_NAME_2
    KS_AZURE_CONTROL_URL          https://127.0.0.1:PORT/__ks (see kms_azure.py)
    KS_AZURE_IMDS_ENDPOINT        127.0.0.1:PORT
    KS_AZURE_IMDS_URL             http://127.0.0.1:PORT/metadata/identity/oauth2/token
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import urllib.request
import uuid

NAME = "azure"
ORDER = 21


def start(ctx) -> dict[str, str]:
    cert = ctx.ca.issue("azure", kind="server")
    identity_port, vault_port, imds_port = ctx.free_port(), ctx.free_port(), ctx.free_port()
    cfg = {
        "tenantId": str(uuid.uuid4()),
        "clientId": str(uuid.uuid4()),
        "clientSecret": "ks~" + secrets.token_urlsafe(24).replace("-", "_"),
        "managedIdentityClientId": str(uuid.uuid4()),
        "keys": ["keyshift-test", "keyshift-test-2"],
        "identityPort": identity_port,
        "vaultPort": vault_port,
        "imdsPort": imds_port,
        "cert": str(cert.cert),
        "key": str(cert.key),
    }
    path = ctx.data_dir / "azure.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "kms_azure.py"), "--config", str(path)])
    for port in (identity_port, vault_port, imds_port):
        ctx.wait_port(port, proc)
    control = f"https://127.0.0.1:{vault_port}/__ks"
    tls = ssl.create_default_context(cafile=str(ctx.ca_file))
    with urllib.request.urlopen(f"{control}/state", context=tls, timeout=10) as r:
        state = json.load(r)
    return {
        "KS_AZURE_TENANT_ID": cfg["tenantId"],
        "KS_AZURE_CLIENT_ID": cfg["clientId"],
        "KS_AZURE_CLIENT_SECRET": cfg["clientSecret"],
        "KS_AZURE_IDENTITY_ENDPOINT": f"127.0.0.1:{identity_port}",
        "KS_AZURE_VAULT_ENDPOINT": f"127.0.0.1:{vault_port}",
        "KS_AZURE_KEY_NAME": "keyshift-test",
        "KS_AZURE_KEY_VERSION": state["keys"]["keyshift-test"][-1]["version"],
        "KS_AZURE_KEY_NAME_2": "keyshift-test-2",
        "KS_AZURE_CONTROL_URL": control,
        "KS_AZURE_IMDS_ENDPOINT": f"127.0.0.1:{imds_port}",
        "KS_AZURE_IMDS_URL": f"http://127.0.0.1:{imds_port}/metadata/identity/oauth2/token",
    }
