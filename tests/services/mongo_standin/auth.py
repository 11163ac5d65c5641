"""Authentication as mongod requires it (`--auth`): every command but the handshake, the
SASL conversation, ping and buildInfo needs an authenticated connection (13
Unauthorized otherwise). Mechanisms: SCRAM-SHA-256 and SCRAM-SHA-1 for users of a
database (scram.py), MONGODB-AWS on `$external` (aws_auth.py). `hello` answers
`saslSupportedMechs` and runs a `speculativeAuthenticate` saslStart, as mongod 4.4+.

Users and AWS credentials come from a JSON file (mode 0600, written by the launcher
plug-in; never logged):
    {"users": [{"user": "keyshift", "db": "admin", "password": "..."}],
     "aws": [{"accessKeyId": "...", "secretAccessKey": "...", "sessionToken": null | "...",
              "arn": "arn:aws:iam::123456789012:user/..."}]}
Every authenticated user may run every command (no roles or privileges).
"""

from __future__ import annotations

import json
from pathlib import Path

from bson import Binary

from .aws_auth import AwsConversation
from .errors import CommandError
from .scram import MECHANISMS, ScramConversation, ScramCredentials


class Authenticator:
    UNAUTHENTICATED = frozenset({"hello", "isMaster", "ismaster", "saslStart", "saslContinue", "ping",
                                 "buildInfo", "buildinfo", "ksCommandLog"})

    def __init__(self, users: dict, aws: dict):
        self.users = users  # (db, user) -> ScramCredentials
        self.aws = aws      # access key id -> {"secret", "token", "arn"}

    @classmethod
    def from_file(cls, path: str | Path) -> "Authenticator":
        spec = json.loads(Path(path).read_text())
        users = {(u["db"], u["user"]): ScramCredentials(u["user"], u["password"]) for u in spec.get("users", [])}
        aws = {a["accessKeyId"]: {"secret": a["secretAccessKey"], "token": a.get("sessionToken"), "arn": a["arn"]}
               for a in spec.get("aws", [])}
        return cls(users, aws)

    # --- hello ------------------------------------------------------------------------

    def hello_fields(self, conn, cmd: dict) -> dict:
        out = {}
        mechs = cmd.get("saslSupportedMechs")
        if isinstance(mechs, str) and "." in mechs:
            db, user = mechs.split(".", 1)
            if (db, user) in self.users:
                out["saslSupportedMechs"] = sorted(MECHANISMS)
        spec = cmd.get("speculativeAuthenticate")
        if isinstance(spec, dict) and spec.get("saslStart") and isinstance(spec.get("db"), str):
            try:
                reply = self.sasl_start(conn, spec["db"], spec)
            except CommandError:
                conn.sasl = None  # mongod answers without it; the driver then runs saslStart
            else:
                reply.pop("ok")
                out["speculativeAuthenticate"] = reply
        return out

    # --- SASL -------------------------------------------------------------------------

    def sasl_start(self, conn, db: str, cmd: dict) -> dict:
        mech = cmd.get("mechanism")
        if mech in MECHANISMS:
            convo = ScramConversation(mech, lambda user: self.users.get((db, user)))
        elif mech == "MONGODB-AWS":
            if db != "$external":
                raise CommandError(2, "MONGODB-AWS authentication must use the $external database")
            convo = AwsConversation(self.aws.get)
        else:
            raise CommandError(2, "Received authentication for mechanism %s which is not enabled" % mech)
        payload = _payload(cmd)
        convo.skip_empty = bool((cmd.get("options") or {}).get("skipEmptyExchange"))
        convo.db = db
        out = convo.start(payload)
        conn.sasl = convo
        return {"conversationId": 1, "done": False, "payload": Binary(out), "ok": 1.0}

    def sasl_continue(self, conn, db: str, cmd: dict) -> dict:
        convo = conn.sasl
        if convo is None or cmd.get("conversationId") != 1:
            raise CommandError(17, "No SASL session state found")
        if convo.done:  # the empty third exchange (no skipEmptyExchange)
            conn.sasl = None
            self._login(conn, convo)
            return {"conversationId": 1, "done": True, "payload": Binary(b""), "ok": 1.0}
        try:
            out = convo.finish(_payload(cmd))
        except CommandError:
            conn.sasl = None
            mech = "MONGODB-AWS" if isinstance(convo, AwsConversation) else convo.mechanism
            print("auth: %s failed on conn%d" % (mech, conn.id), flush=True)
            raise
        done = convo.skip_empty or isinstance(convo, AwsConversation)
        if done:
            conn.sasl = None
            self._login(conn, convo)
        return {"conversationId": 1, "done": done, "payload": Binary(out), "ok": 1.0}

    @staticmethod
    def _login(conn, convo) -> None:
        mech = "MONGODB-AWS" if isinstance(convo, AwsConversation) else convo.mechanism
        conn.user = {"user": convo.user, "db": convo.db, "mechanism": mech}


def _payload(cmd: dict) -> bytes:
    p = cmd.get("payload")
    if isinstance(p, (bytes, Binary)):
        return bytes(p)
    if isinstance(p, str):  # mongosh may send a string
        return p.encode("utf-8")
    raise CommandError(14, "saslStart/saslContinue 'payload' must be binary data")
