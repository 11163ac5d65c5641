"""Test-world plug-in: the KMIP stand-in (PyKMIP server, kms_kmip.py) over TLS 1.2.

The server has an ECDSA P-256 certificate (see kms_kmip.py for why) and requires a
client certificate; the client's bundle (key + certificate PEM, the form libmongocrypt's
tlsCertificateKeyFile and PyMongo's kms_tls_options expect) is exported.

Exports:
    KS_KMIP_ENDPOINT          127.0.0.1:PORT
    KS_KMIP_CA_FILE           CA that signed the server certificate
    KS_KMIP_CLIENT_CERT       client key + certificate bundle (PEM)
    KS_KMIP_CLIENT_CERT_PEM   client certificate alone
    KS_KMIP_CLIENT_KEY_PEM    client private key alone (PKCS#8, 0600)
"""

from __future__ import annotations

NAME = "kmip"
ORDER = 23


def start(ctx) -> dict[str, str]:
    server = ctx.ca.issue("kmip", kind="server", key_type="ecdsa")
    client = ctx.ca.issue("kmip-client", kind="client")
    port = ctx.free_port()
    proc = ctx.spawn(
        NAME,
        [ctx.python, str(ctx.services_dir / "kms_kmip.py"), "--port", str(port),
         "--cert", str(server.cert), "--key", str(server.key), "--ca", str(ctx.ca_file),
         "--data", str(ctx.data_dir / "kmip")],
    )
    ctx.wait_port(port, proc)
    return {
        "KS_KMIP_ENDPOINT": f"127.0.0.1:{port}",
        "KS_KMIP_CA_FILE": str(ctx.ca_file),
        "KS_KMIP_CLIENT_CERT": str(client.bundle),
        "KS_KMIP_CLIENT_CERT_PEM": str(client.cert),
        "KS_KMIP_CLIENT_KEY_PEM": str(client.key),
    }
