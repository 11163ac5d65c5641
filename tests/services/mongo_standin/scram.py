"""SCRAM-SHA-1 and SCRAM-SHA-256, server side (RFC 5802, RFC 7677), as mongod runs them.

mongod stores per user and mechanism only a salt, an iteration count, StoredKey and
ServerKey; so does this (computed once at start). The client proof is really verified:
ClientKey = proof XOR HMAC(StoredKey, AuthMessage) must hash to StoredKey. SCRAM-SHA-1
hashes mongod's legacy password digest (hex MD5 of "user:mongo:password") instead of the
password itself; SCRAM-SHA-256 takes the SASLprep'd password. Iterations are mongod's
defaults (10,000 and 15,000).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from .errors import CommandError

MECHANISMS = {  # name -> (hashlib name, iterations, salt length)
    "SCRAM-SHA-1": ("sha1", 10_000, 16),
    "SCRAM-SHA-256": ("sha256", 15_000, 28),
}


def auth_failed() -> CommandError:
    return CommandError(18, "Authentication failed.")


class ScramCredentials:
    """What mongod keeps for one user: per mechanism (salt, iterations, StoredKey, ServerKey)."""

    def __init__(self, user: str, password: str):
        from pymongo.saslprep import saslprep

        self.keys = {}
        for mech, (name, iterations, salt_len) in MECHANISMS.items():
            if mech == "SCRAM-SHA-1":
                secret = hashlib.md5(("%s:mongo:%s" % (user, password)).encode()).hexdigest().encode()
            else:
                secret = saslprep(password).encode("utf-8")
            salt = os.urandom(salt_len)
            salted = hashlib.pbkdf2_hmac(name, secret, salt, iterations)
            client_key = hmac.new(salted, b"Client Key", name).digest()
            server_key = hmac.new(salted, b"Server Key", name).digest()
            self.keys[mech] = (salt, iterations, hashlib.new(name, client_key).digest(), server_key)


def _attributes(message: bytes) -> dict[bytes, bytes]:
    out = {}
    for part in message.split(b","):
        if len(part) < 2 or part[1:2] != b"=":
            raise auth_failed()
        out[part[:1]] = part[2:]
    return out


def _sasl_name(raw: bytes) -> str:
    if b"=" in raw.replace(b"=2C", b"").replace(b"=3D", b""):
        raise auth_failed()
    return raw.replace(b"=2C", b",").replace(b"=3D", b"=").decode("utf-8")


class ScramConversation:
    """One SCRAM exchange: start() takes client-first, finish() takes client-final."""

    def __init__(self, mechanism: str, lookup):
        self.mechanism = mechanism
        self.lookup = lookup  # user name -> ScramCredentials | None
        self.user = None
        self.done = False

    def start(self, payload: bytes) -> bytes:
        if not payload.startswith(b"n,"):
            raise CommandError(2, "SCRAM: channel binding is not supported (gs2 header must be 'n,')")
        gs2_end = payload.index(b",", 2) + 1
        self.gs2 = payload[:gs2_end]
        self.client_first_bare = payload[gs2_end:]
        attrs = _attributes(self.client_first_bare)
        if b"n" not in attrs or b"r" not in attrs or b"m" in attrs:
            raise auth_failed()
        self.user = _sasl_name(attrs[b"n"])
        creds = self.lookup(self.user)
        # an unknown user still gets a challenge (mongod does not reveal who exists)
        salt, iterations, self.stored_key, self.server_key = (
            creds.keys[self.mechanism] if creds else (os.urandom(16), MECHANISMS[self.mechanism][1], None, None))
        self.nonce = attrs[b"r"] + base64.b64encode(os.urandom(24))
        self.server_first = b"r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(salt), iterations)
        return self.server_first

    def finish(self, payload: bytes) -> bytes:
        name = MECHANISMS[self.mechanism][0]
        without_proof, _, proof_part = payload.rpartition(b",p=")
        attrs = _attributes(without_proof)
        if attrs.get(b"c") != base64.b64encode(self.gs2) or attrs.get(b"r") != self.nonce or self.stored_key is None:
            raise auth_failed()
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            raise auth_failed() from None
        auth_message = b",".join((self.client_first_bare, self.server_first, without_proof))
        signature = hmac.new(self.stored_key, auth_message, name).digest()
        if len(proof) != len(signature):
            raise auth_failed()
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(name, client_key).digest(), self.stored_key):
            raise auth_failed()
        self.done = True
        return b"v=" + base64.b64encode(hmac.new(self.server_key, auth_message, name).digest())
