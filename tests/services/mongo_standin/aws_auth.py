"""MONGODB-AWS, server side: the driver signs an STS GetCallerIdentity request with its AWS
credentials and mongod has STS check the signature. Here the stand-in is STS too: it
recomputes the SigV4 signature with the secret it knows for the access key id.

Conversation (driver auth spec): client-first {r: 32-byte nonce, p: 110 ('n')}; server
{s: 64-byte nonce beginning with the client's, h: "sts.amazonaws.com"}; client-final
{a: Authorization header, d: X-Amz-Date, t?: session token}. The implied request is
POST / with body "Action=GetCallerIdentity&Version=2011-06-15" and headers Content-Type,
Content-Length, Host (h), X-Amz-Date (d), X-MongoDB-Server-Nonce (base64 of s),
X-MongoDB-GS2-CB-Flag "n", X-Amz-Security-Token (t) when present. Refused with 18
AuthenticationFailed: unknown key id, wrong secret (signature), a session token missing,
wrong or not expected, a nonce or GS2 flag left out of SignedHeaders, a scope for
another region or service, a date more than 15 minutes off.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import re

import bson
from bson import Binary

from .scram import auth_failed

STS_HOST = "sts.amazonaws.com"
REGION = "us-east-1"
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
REQUIRED_SIGNED = ("host", "x-amz-date", "x-mongodb-gs2-cb-flag", "x-mongodb-server-nonce")
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


class AwsConversation:
    def __init__(self, lookup):
        self.lookup = lookup  # access key id -> {"secret", "token" (or None), "arn"} | None
        self.user = None
        self.done = False

    def start(self, payload: bytes) -> bytes:
        first = bson.decode(payload)
        nonce = first.get("r")
        if not isinstance(nonce, bytes) or len(nonce) != 32 or first.get("p") != 110:
            raise auth_failed()
        self.server_nonce = bytes(nonce) + os.urandom(32)
        return bson.encode({"s": Binary(self.server_nonce), "h": STS_HOST})

    def finish(self, payload: bytes) -> bytes:
        final = bson.decode(payload)
        header, date, token = final.get("a"), final.get("d"), final.get("t")
        if not isinstance(header, str) or not isinstance(date, str):
            raise auth_failed()
        m = _AUTH.match(header)
        if m is None:
            raise auth_failed()
        akid, day, region, service, signed, signature = m.groups()
        cred = self.lookup(akid)
        if cred is None or token != cred.get("token"):
            raise auth_failed()
        try:
            when = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise auth_failed() from None
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs((now - when).total_seconds()) > 15 * 60 or day != date[:8] or (region, service) != (REGION, "sts"):
            raise auth_failed()
        values = {
            "content-length": str(len(BODY)),
            "content-type": "application/x-www-form-urlencoded",
            "host": STS_HOST,
            "x-amz-date": date,
            "x-mongodb-gs2-cb-flag": "n",
            "x-mongodb-server-nonce": base64.b64encode(self.server_nonce).decode(),
        }
        if token is not None:
            values["x-amz-security-token"] = token
        names = signed.split(";")
        required = REQUIRED_SIGNED + (("x-amz-security-token",) if token is not None else ())
        if names != sorted(names) or any(n not in values for n in names) or any(r not in names for r in required):
            raise auth_failed()
        canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (n, values[n]) for n in names), signed,
                               hashlib.sha256(BODY).hexdigest()])
        scope = "%s/%s/%s/aws4_request" % (day, region, service)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + cred["secret"]).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise auth_failed()
        self.user = cred["arn"]
        self.done = True
        return b""
