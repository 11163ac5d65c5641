"""Retryable writes: the (lsid, txnNumber) -> reply table mongod keeps per session.

A driver retries a write whose reply it did not get (network error, NotWritablePrimary,
a RetryableWriteError label) with the same lsid and txnNumber. mongod answers such a
retry from what it recorded instead of writing again, so the write lands exactly once;
this table does the same for whole commands. Only the newest txnNumber of a session is
kept (an older one gets 225 TransactionTooOld, as on mongod), and only the most recently
used MAX_SESSIONS sessions (mongod expires sessions after 30 idle minutes instead).
"""

from __future__ import annotations

from collections import OrderedDict

from .errors import CommandError

MAX_SESSIONS = 10_000


class RetryableWrites:
    def __init__(self, max_sessions: int = MAX_SESSIONS):
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[bytes, tuple[int, dict | None]] = OrderedDict()

    @staticmethod
    def key(cmd: dict) -> bytes:
        lsid = cmd.get("lsid")
        if not isinstance(lsid, dict) or "id" not in lsid:
            raise CommandError(50768, "Transaction number requires a session ID to also be specified")
        return bytes(lsid["id"])

    def lookup(self, sid: bytes, txn: int) -> dict | None:
        """The stored reply of a retried write, or None to execute it (call under the store lock)."""
        seen = self.sessions.get(sid)
        if seen is None:
            return None
        self.sessions.move_to_end(sid)
        if txn < seen[0]:
            raise CommandError(225, "Retryable write with txnNumber %d is prohibited on session %s because a "
                               "newer retryable write with txnNumber %d has already started on this session."
                               % (txn, sid.hex(), seen[0]))
        if txn == seen[0] and seen[1] is not None:
            return seen[1]
        return None

    def store(self, sid: bytes, txn: int, reply: dict) -> None:
        self.sessions[sid] = (txn, reply)
        self.sessions.move_to_end(sid)
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)
