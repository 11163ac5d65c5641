"""Proves the authenticating MongoDB stand-in (replica set ks1) with PyMongo: nothing but
the handshake runs unauthenticated; SCRAM-SHA-256 and SCRAM-SHA-1 log in with the right
password and fail with a wrong one; MONGODB-AWS (pymongo-auth-aws, boto3's credential
chain) logs in with the static AWS credentials, with temporary ones and their session
token (from the environment, IMDSv2 or the ECS endpoint of the AWS stand-in), and fails
with a wrong secret or a missing token. The command record names who ran each command.

    KS_RUN_DIR=/tmp/w tests/services/up --only aws,mongodb-auth
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from urllib.parse import quote

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure


@pytest.fixture(scope="module")
def env(world):
    if "KS_MONGODB_AUTH_URI" not in world:
        pytest.skip("this world has no authenticating MongoDB stand-in (mongodb-auth)")
    return world


@pytest.fixture(scope="module")
def admin(env):
    c = MongoClient(env["KS_MONGODB_AUTH_URI"], serverSelectionTimeoutMS=5000)
    yield c
    c.close()


def _uri(env, user=None, password=None, mechanism=None) -> str:
    base = "127.0.0.1:%s/?tls=true&tlsCAFile=%s&replicaSet=ks1" % (env["KS_MONGODB_AUTH_PORT"], env["KS_CA_FILE"])
    creds = "%s:%s@" % (quote(user, safe=""), quote(password, safe="")) if user else ""
    return "mongodb://%s%s%s" % (creds, base, "&authMechanism=" + mechanism if mechanism else "")


def _last(admin, ns: str, command: str) -> dict:
    return admin.admin.command({"ksCommandLog": 1, "ns": ns, "commands": [command]})["commands"][-1]


def test_unauthenticated_connections_only_shake_hands(env):
    c = MongoClient(_uri(env), serverSelectionTimeoutMS=5000)
    hello = c.admin.command("hello")
    assert hello["setName"] == "ks1" and hello["isWritablePrimary"] is True
    assert c.admin.command("ping")["ok"] == 1.0
    for cmd in ({"find": "t"}, {"insert": "t", "documents": [{}]}, {"listDatabases": 1}):
        with pytest.raises(OperationFailure) as e:
            c.auth_probe.command(cmd) if "listDatabases" not in cmd else c.admin.command(cmd)
        assert e.value.code == 13 and e.value.details["codeName"] == "Unauthorized"
        assert e.value.details["errmsg"] == "command %s requires authentication" % next(iter(cmd))
    c.close()


def test_scram_sha_256_by_default_with_the_exported_uri(env, admin):
    admin.auth_scram.t.insert_one({"x": 1})
    assert admin.auth_scram.t.find_one({}, {"_id": 0}) == {"x": 1}
    rec = _last(admin, "auth_scram.t", "insert")
    assert rec["user"] == {"user": env["KS_MONGODB_AUTH_USER"], "db": "admin", "mechanism": "SCRAM-SHA-256"}
    hello = admin.admin.command({"hello": 1, "saslSupportedMechs": "admin.keyshift"})
    assert sorted(hello["saslSupportedMechs"]) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    assert "saslSupportedMechs" not in admin.admin.command({"hello": 1, "saslSupportedMechs": "admin.nobody"})
    admin.drop_database("auth_scram")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_scram_right_and_wrong_password(env, admin, mechanism):
    good = MongoClient(_uri(env, env["KS_MONGODB_AUTH_USER"], env["KS_MONGODB_AUTH_PASSWORD"], mechanism),
                       serverSelectionTimeoutMS=5000)
    good.auth_mech.t.insert_one({"m": mechanism})
    assert _last(admin, "auth_mech.t", "insert")["user"]["mechanism"] == mechanism
    good.close()
    for user, password in ((env["KS_MONGODB_AUTH_USER"], env["KS_MONGODB_AUTH_PASSWORD"] + "x"),
                           ("nobody", env["KS_MONGODB_AUTH_PASSWORD"])):
        bad = MongoClient(_uri(env, user, password, mechanism), serverSelectionTimeoutMS=5000)
        with pytest.raises(OperationFailure) as e:
            bad.auth_mech.t.find_one()
        assert e.value.code == 18 and e.value.details["codeName"] == "AuthenticationFailed"
        bad.close()
    admin.drop_database("auth_mech")


def test_speculative_authentication_saves_a_round_trip(env, admin):
    since = admin.admin.command({"ksCommandLog": 1, "limit": 1})["lastSeq"]
    c = MongoClient(env["KS_MONGODB_AUTH_URI"], serverSelectionTimeoutMS=5000)
    c.admin.command("ping")
    c.close()
    names = [r["command"] for r in admin.admin.command({"ksCommandLog": 1, "since": since,
                                                        "commands": ["saslStart", "saslContinue"]})["commands"]]
    assert names and "saslStart" not in names  # the hello's speculativeAuthenticate started it


# --- MONGODB-AWS (each login in a fresh process: boto3's credential chain reads its env) ----

_PROBE = """
import json, sys
from pymongo import MongoClient
c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
try:
    c.auth_aws.t.insert_one({"who": sys.argv[2]})
    print(json.dumps({"ok": True}))
except Exception as e:
    print(json.dumps({"ok": False, "code": getattr(e, "code", None), "error": type(e).__name__}))
"""


@pytest.fixture(scope="module")
def aws_env(env):
    if "KS_AWS_ACCESS_KEY_ID" not in env or "KS_AWS_IMDS_ENDPOINT" not in env:
        pytest.skip("no AWS stand-in in this world")
    return env


def _aws_login(env, label: str, aws_env: dict) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                  "AWS_EC2_METADATA_DISABLED": "true"})  # never ask 169.254.169.254
    clean.update(aws_env)
    out = subprocess.run([sys.executable, "-c", _PROBE, env["KS_MONGODB_AUTH_AWS_URI"], label],
                         env=clean, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _temporary_credentials(env) -> dict:
    base = env["KS_AWS_IMDS_ENDPOINT"]
    token = urllib.request.urlopen(urllib.request.Request(
        base + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})).read().decode()
    role = urllib.request.urlopen(urllib.request.Request(
        base + "/latest/meta-data/iam/security-credentials/", headers={"X-aws-ec2-metadata-token": token})).read().decode()
    return json.loads(urllib.request.urlopen(urllib.request.Request(
        base + "/latest/meta-data/iam/security-credentials/" + role, headers={"X-aws-ec2-metadata-token": token})).read())


def _last_aws_user(admin, label: str):
    doc = admin.auth_aws.t.find_one({"who": label})
    assert doc is not None
    return _last(admin, "auth_aws.t", "insert")["user"]


def test_mongodb_aws_with_static_credentials(aws_env, admin):
    env = aws_env
    r = _aws_login(env, "static", {"AWS_ACCESS_KEY_ID": env["KS_AWS_ACCESS_KEY_ID"],
                                   "AWS_SECRET_ACCESS_KEY": env["KS_AWS_SECRET_ACCESS_KEY"]})
    assert r == {"ok": True}
    assert _last_aws_user(admin, "static") == {"user": env["KS_MONGODB_AUTH_AWS_ARN"], "db": "$external",
                                              "mechanism": "MONGODB-AWS"}


def test_mongodb_aws_refuses_a_wrong_secret_or_unknown_key(aws_env):
    env = aws_env
    r = _aws_login(env, "bad", {"AWS_ACCESS_KEY_ID": env["KS_AWS_ACCESS_KEY_ID"],
                                "AWS_SECRET_ACCESS_KEY": env["KS_AWS_SECRET_ACCESS_KEY"] + "x"})
    assert r == {"ok": False, "code": 18, "error": "OperationFailure"}
    r = _aws_login(env, "bad", {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000",
                                "AWS_SECRET_ACCESS_KEY": env["KS_AWS_SECRET_ACCESS_KEY"]})
    assert r["code"] == 18


def test_mongodb_aws_with_temporary_credentials_and_session_token(aws_env, admin):
    env = aws_env
    t = _temporary_credentials(env)
    r = _aws_login(env, "temporary", {"AWS_ACCESS_KEY_ID": t["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": t["SecretAccessKey"],
                                      "AWS_SESSION_TOKEN": t["Token"]})
    assert r == {"ok": True}
    assert _last_aws_user(admin, "temporary")["user"] == env["KS_MONGODB_AUTH_AWS_ROLE_ARN"]
    r = _aws_login(env, "no-token", {"AWS_ACCESS_KEY_ID": t["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": t["SecretAccessKey"]})
    assert r["code"] == 18
    r = _aws_login(env, "wrong-token", {"AWS_ACCESS_KEY_ID": t["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": t["SecretAccessKey"],
                                        "AWS_SESSION_TOKEN": t["Token"][:-2]})
    assert r["code"] == 18


@pytest.mark.parametrize("source", ["imds", "ecs"])
def test_mongodb_aws_from_the_credential_chain(aws_env, admin, source):
    env = aws_env
    if source == "imds":
        chain = {"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": env["KS_AWS_IMDS_ENDPOINT"]}
    else:
        chain = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": env["KS_AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                 "AWS_CONTAINER_AUTHORIZATION_TOKEN": env["KS_AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
    assert _aws_login(env, source, chain) == {"ok": True}
    assert _last_aws_user(admin, source)["user"] == env["KS_MONGODB_AUTH_AWS_ROLE_ARN"]


def test_sigv4_checks_beyond_the_secret():
    """In-process: what STS would refuse although the secret is right."""
    import bson
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from mongo_standin.aws_auth import AwsConversation
    from mongo_standin.errors import CommandError

    known = {"AKIDX": {"secret": "s3cret", "token": None, "arn": "arn:aws:iam::1:user/x"}}

    def attempt(drop=(), region="us-east-1", host=None, date=None):
        convo = AwsConversation(known.get)
        first = bson.decode(convo.start(bson.encode({"r": bson.Binary(os.urandom(32)), "p": 110})))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "43",
                   "Host": host or first["h"], "X-MongoDB-Server-Nonce": __import__("base64").b64encode(first["s"]).decode(),
                   "X-MongoDB-GS2-CB-Flag": "n"}
        for h in drop:
            headers.pop(h)
        req = AWSRequest(method="POST", url="/", data="Action=GetCallerIdentity&Version=2011-06-15", headers=headers)
        signer = SigV4Auth(Credentials("AKIDX", "s3cret"), "sts", region)
        if date:
            from unittest import mock

            with mock.patch("botocore.auth.get_current_datetime", return_value=date):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
        try:
            convo.finish(bson.encode({"a": req.headers["Authorization"], "d": req.headers["X-Amz-Date"]}))
            return convo.user
        except CommandError as e:
            return e.code

    assert attempt() == "arn:aws:iam::1:user/x"
    assert attempt(drop=["X-MongoDB-Server-Nonce"]) == 18
    assert attempt(drop=["X-MongoDB-GS2-CB-Flag"]) == 18
    assert attempt(region="eu-west-1") == 18
    assert attempt(host="sts.example.com") == 18
    import datetime

    assert attempt(date=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)) == 18  # 15 minutes at most
