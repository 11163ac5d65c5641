"""Launcher plug-in: a second MongoDB stand-in that requires authentication, replica set
"ks1" — what Atlas and secured self-managed deployments are (SCRAM or MONGODB-AWS), and
a second cluster for tests where a key vault lives in another deployment than the data.

Started after the AWS stand-in so it can accept AWS's credentials for MONGODB-AWS: the
static pair and the temporary ones (with their session token) that the AWS plug-in's
metadata endpoints hand out. Users and credentials reach the server in a 0600 JSON file
(run/secrets/mongodb-auth.json), never on its command line or in its log.

Env it exports:
    KS_MONGODB_AUTH_HOST      127.0.0.1
    KS_MONGODB_AUTH_PORT      the port
    KS_MONGODB_AUTH_REPLSET   ks1
    KS_MONGODB_AUTH_USER      keyshift (a user of the admin database)
    KS_MONGODB_AUTH_PASSWORD  generated per run (contains URI-reserved characters)
    KS_MONGODB_AUTH_URI       mongodb://keyshift:PERCENT-ENCODED-PASSWORD@127.0.0.1:PORT/?tls=true&tlsCAFile=CA&replicaSet=ks1&authSource=admin
    KS_MONGODB_AUTH_AWS_URI   mongodb://127.0.0.1:PORT/?tls=true&tlsCAFile=CA&replicaSet=ks1&authMechanism=MONGODB-AWS
                              (credentials from the AWS environment: AWS_ACCESS_KEY_ID ..., or IMDS/ECS)
    KS_MONGODB_AUTH_AWS_ARN       the user a static-credential login is recorded as
    KS_MONGODB_AUTH_AWS_ROLE_ARN  the user a temporary-credential login is recorded as
"""

from __future__ import annotations

import json
import os
import secrets
from urllib.parse import quote

NAME = "mongodb-auth"
ORDER = 25  # after aws (20)
REPLSET = "ks1"
USER = "keyshift"
ACCOUNT = "123456789012"


def secrets_file(ctx) -> tuple[str, str]:
    """(path of the 0600 users/credentials file, the SCRAM password); shared with the
    SRV cluster plug-in, which serves the same users. Written once per run."""
    path = ctx.run_dir / "secrets" / "mongodb-auth.json"
    if path.exists():
        return str(path), json.loads(path.read_text())["users"][0]["password"]
    password = secrets.token_urlsafe(18) + "@:/%"
    aws = getattr(ctx, "aws_credentials", None)
    if aws is None:  # aws stand-in not started (--only): its static pair still signs
        import svc_aws

        aws = {"static": {"accessKeyId": svc_aws.ACCESS_KEY_ID, "secretAccessKey": svc_aws.SECRET_ACCESS_KEY}}
    creds = [{**aws["static"], "sessionToken": None, "arn": "arn:aws:iam::%s:user/keyshift-test" % ACCOUNT}]
    if "temporary" in aws:
        creds.append({**aws["temporary"], "arn": "arn:aws:iam::%s:role/%s" % (ACCOUNT, aws["role"])})
    spec = {"users": [{"user": USER, "db": "admin", "password": password}], "aws": creds}
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    return str(path), password


def start(ctx) -> dict[str, str]:
    cert = ctx.ca.issue("mongod-auth")
    port = ctx.free_port()
    users, password = secrets_file(ctx)
    proc = ctx.spawn(NAME, [ctx.python, str(ctx.services_dir / "mongod_standin.py"), "--port", str(port),
                            "--cert", str(cert.cert), "--key", str(cert.key), "--replset", REPLSET, "--auth", users])
    ctx.wait_port(port, proc)
    base = "127.0.0.1:%d/?tls=true&tlsCAFile=%s&replicaSet=%s" % (port, ctx.ca_file, REPLSET)
    aws = getattr(ctx, "aws_credentials", {})
    return {
        "KS_MONGODB_AUTH_HOST": "127.0.0.1",
        "KS_MONGODB_AUTH_PORT": str(port),
        "KS_MONGODB_AUTH_REPLSET": REPLSET,
        "KS_MONGODB_AUTH_USER": USER,
        "KS_MONGODB_AUTH_PASSWORD": password,
        "KS_MONGODB_AUTH_URI": "mongodb://%s:%s@%s&authSource=admin" % (USER, quote(password, safe=""), base),
        "KS_MONGODB_AUTH_AWS_URI": "mongodb://%s&authMechanism=MONGODB-AWS" % base,
        "KS_MONGODB_AUTH_AWS_ARN": "arn:aws:iam::%s:user/keyshift-test" % ACCOUNT,
        "KS_MONGODB_AUTH_AWS_ROLE_ARN": "arn:aws:iam::%s:role/%s" % (ACCOUNT, aws.get("role", "keyshift-test-role")),
    }
