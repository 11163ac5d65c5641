"""Test-world plug-in: the Google Cloud KMS stand-in (kms_gcp.py).

One process, three listeners: the OAuth token endpoint (TLS), Cloud KMS (TLS) and the
GCE metadata server (plain HTTP, like the real metadata.google.internal). A service
account key pair is made here; the stand-in gets only the public key and verifies the
JWTs clients sign with the private key. Keys created at start: KS_GCP_KEY_NAME
(version 1) and KS_GCP_KEY_NAME_2.

Exports:
    KS_GCP_EMAIL                  service account email
    KS_GCP_PRIVATE_KEY            base64 of the PKCS#8 DER private key (libmongocrypt's privateKey)
    KS_GCP_PRIVATE_KEY_FILE       the same key, PEM (PKCS#8, 0600)
    KS_GCP_ENDPOINT               127.0.0.1:PORT  OAuth token endpoint (kmsProviders.gcp.endpoint)
    KS_GCP_KMS_ENDPOINT           127.0.0.1:PORT  Cloud KMS (masterKey.endpoint)
    KS_GCP_PROJECT_ID, KS_GCP_LOCATION, KS_GCP_KEY_RING, KS_GCP_KEY_NAME, KS_GCP_KEY_VERSION, KS_GCP_KEY_NAME_2
    KS_GCP_CONTROL_URL            https://127.0.0.1:PORT/__ks (see kms_gcp.py)
    KS_GCP_METADATA_HOST          127.0.0.1:PORT  (the value for GCE_METADATA_HOST)
    KS_GCP_METADATA_URL           http://127.0.0.1:PORT/computeMetadata/v1/instance/service-accounts/default/token
"""

from __future__ import annotations

import base64
import json
import os

NAME = "gcp"
ORDER = 22

EMAIL = "keyshift-test@keyshift-test.iam.gserviceaccount.com"
METADATA_EMAIL = "123456789012-compute@developer.gserviceaccount.com"


def _write_private(path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def start(ctx) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    cert = ctx.ca.issue("gcp", kind="server")
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = sa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    pem = sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    pub = sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    pem_path = ctx.data_dir / "gcp-service-account.pem"
    _write_private(pem_path, pem)
    oauth_port, kms_port, md_port = ctx.free_port(), ctx.free_port(), ctx.free_port()
    cfg = {
        "serviceAccounts": {EMAIL: pub},
        "metadataAccount": METADATA_EMAIL,
        "projectId": "keyshift-test",
        "location": "global",
        "keyRing": "keyshift-ring",
        "keys": ["keyshift-key", "keyshift-key-2"],
        "oauthPort": oauth_port,
        "kmsPort": kms_port,
        "metadataPort": md_port,
        "cert": str(cert.cert),
        "key": str(cert.key),
    }
    path = ctx.data_dir / "gcp.json"
    _write_private(path, json.dumps(cfg).encode())
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "kms_gcp.py"), "--config", str(path)])
    for port in (oauth_port, kms_port, md_port):
        ctx.wait_port(port, proc)
    return {
        "KS_GCP_EMAIL": EMAIL,
        "KS_GCP_PRIVATE_KEY": base64.b64encode(der).decode(),
        "KS_GCP_PRIVATE_KEY_FILE": str(pem_path),
        "KS_GCP_ENDPOINT": f"127.0.0.1:{oauth_port}",
        "KS_GCP_KMS_ENDPOINT": f"127.0.0.1:{kms_port}",
        "KS_GCP_PROJECT_ID": cfg["projectId"],
        "KS_GCP_LOCATION": cfg["location"],
        "KS_GCP_KEY_RING": cfg["keyRing"],
        "KS_GCP_KEY_NAME": "keyshift-key",
        "KS_GCP_KEY_VERSION": "1",
        "KS_GCP_KEY_NAME_2": "keyshift-key-2",
        "KS_GCP_CONTROL_URL": f"https://127.0.0.1:{kms_port}/__ks",
        "KS_GCP_METADATA_HOST": f"127.0.0.1:{md_port}",
        "KS_GCP_METADATA_URL": f"http://127.0.0.1:{md_port}/computeMetadata/v1/instance/service-accounts/default/token",
    }
