"""Launcher plug-in: an Atlas-like cluster reached by a `mongodb+srv://` seedlist — a third
MongoDB stand-in, replica set "ks2", that calls itself node0.cluster0.keyshift.test:PORT
in hello, holds a certificate for that name and requires authentication (the same users
and AWS credentials as mongodb-auth). It registers its DNS records (SRV, TXT, A) with
the dns plug-in, which starts after it and serves them.

Env it exports:
    KS_MONGODB_SRV_HOST     cluster0.keyshift.test (the seedlist name)
    KS_MONGODB_SRV_NODE     node0.cluster0.keyshift.test:PORT (what hello advertises)
    KS_MONGODB_SRV_PORT     PORT (on 127.0.0.1)
    KS_MONGODB_SRV_REPLSET  ks2
    KS_MONGODB_SRV_URI      mongodb+srv://keyshift:PERCENT-ENCODED-PASSWORD@cluster0.keyshift.test/?tlsCAFile=CA
                            (TXT adds replicaSet=ks2&authSource=admin; +srv implies tls=true;
                            resolvable only under tests/services/with-dns)
"""

from __future__ import annotations

from urllib.parse import quote

import svc_mongodb_auth

NAME = "mongodb-srv"
ORDER = 30  # after mongodb-auth (its users file), before dns (40)
REPLSET = "ks2"
ZONE = "keyshift.test"
CLUSTER = "cluster0." + ZONE
NODE = "node0." + CLUSTER


def start(ctx) -> dict[str, str]:
    cert = ctx.ca.issue("mongod-srv", dns_names=(NODE, "localhost"))
    port = ctx.free_port()
    users, password = svc_mongodb_auth.secrets_file(ctx)
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "mongod_standin.py"), "--port", str(port),
                            "--cert", str(cert.cert), "--key", str(cert.key), "--replset", REPLSET,
                            "--advertise", "%s:%d" % (NODE, port), "--auth", users])
    ctx.wait_port(port, proc)
    records = getattr(ctx, "dns_records", [])
    records += [
        {"name": "_mongodb._tcp." + CLUSTER, "type": "SRV", "priority": 0, "weight": 0, "port": port, "target": NODE},
        {"name": CLUSTER, "type": "TXT", "text": "replicaSet=%s&authSource=admin" % REPLSET},
        {"name": NODE, "type": "A", "address": "127.0.0.1"},
    ]
    ctx.dns_records = records
    return {
        "KS_MONGODB_SRV_HOST": CLUSTER,
        "KS_MONGODB_SRV_NODE": "%s:%d" % (NODE, port),
        "KS_MONGODB_SRV_PORT": str(port),
        "KS_MONGODB_SRV_REPLSET": REPLSET,
        "KS_MONGODB_SRV_URI": "mongodb+srv://%s:%s@%s/?tlsCAFile=%s" % (
            svc_mongodb_auth.USER, quote(password, safe=""), CLUSTER, ctx.ca_file),
    }
