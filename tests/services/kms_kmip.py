"""KMIP stand-in: a PyKMIP KmipServer over TLS 1.2 with client-certificate auth.

Run by svc_kmip.py as its own process:

    python kms_kmip.py --port P --cert kmip.pem --key kmip.key --ca ca.pem --data DIR

No configuration file: every setting is passed in. The server always asks for a
client certificate (PyKMIP's TLS1.2 suite), so clients must present one issued by the
test CA with the clientAuth EKU. The server certificate must be ECDSA P-256: PyKMIP's
TLS1.2 suite offers only CBC suites for RSA certificates, which rustls does not
implement; with ECDSA it negotiates ECDHE-ECDSA-AES-GCM.

libmongocrypt uses it two ways, both served by stock PyKMIP:
  {}                  Register a 96-byte SecretData, Activate, Get (the key leaves the server)
  {"delegated": true} Create an AES-256 key, Activate, Encrypt / Decrypt (AES-CBC, random IV)

Objects live in a SQLite file under DIR, for the lifetime of the run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from kmip.services.server import KmipServer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--data", required=True)
    args = p.parse_args()
    os.makedirs(args.data, exist_ok=True)
    server = KmipServer(
        hostname="127.0.0.1",
        port=args.port,
        certificate_path=args.cert,
        key_path=args.key,
        ca_path=args.ca,
        auth_suite="TLS1.2",
        config_path=None,
        log_path=os.path.join(args.data, "kmip-server.log"),
        policy_path=None,
        enable_tls_client_auth=True,
        logging_level=logging.INFO,
        database_path=os.path.join(args.data, "kmip.sqlite"),
    )
    # KmipServer installs its own SIGTERM/SIGINT handlers in serve(): they stop the
    # listener and the session threads, then serve() returns.
    with server:
        server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
