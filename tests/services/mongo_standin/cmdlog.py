"""The command record: what every command asked for, so tests can judge how a client
talks to a deployment (key vault reads with readConcern majority from the primary,
writes with writeConcern majority, retryable writes with a txnNumber, who was logged in),
not only what it wrote.

Each received command appends one small list to a bounded deque (the last LIMIT
commands); nothing is copied or encoded until `{ksCommandLog: 1}` asks for them, so
recording costs about a microsecond per command. The outcome (ok, code) is filled in
when the reply is ready, with `returned`: how many documents a cursor reply (find,
aggregate, getMore) carried back, and `projection`: the fields a find asked for (a
getMore carries its find's), so a test can tell reading whole key documents from
reading only their ids.
"""

from __future__ import annotations

import itertools
from collections import deque

from bson import Int64

from .errors import CommandError

LIMIT = 200_000
MAX_RETURNED = 50_000  # one reply stays far below 16 MiB

# record layout (a list, for speed)
SEQ, NAME, DB, NS, RC, WC, RP, LSID, TXN, USER, CONN, OK, CODE, RETURNED, PROJECTION = range(15)
CURSORS = 10_000  # open cursors whose find's projection a getMore takes


def namespace(name: str, db: str, cmd: dict) -> str | None:
    """The namespace a command targets, or None when it targets no collection."""
    if name == "getMore":
        coll = cmd.get("collection")
    else:
        coll = cmd.get(name)
    return "%s.%s" % (db, coll) if isinstance(coll, str) else None


class CommandLog:
    def __init__(self, limit: int = LIMIT):
        self.records: deque = deque(maxlen=limit)
        self._seq = itertools.count(1)
        self._projections: dict = {}

    def record(self, conn, db: str, name: str, cmd: dict) -> list:
        if name == "find":
            projection = cmd.get("projection")
        elif name == "getMore":
            projection = self._projections.get(cmd.get("getMore"))
        else:
            projection = None
        rec = [next(self._seq), name, db, namespace(name, db, cmd), cmd.get("readConcern"),
               cmd.get("writeConcern"), cmd.get("$readPreference"), "lsid" in cmd, cmd.get("txnNumber"),
               conn.user, conn.id, None, None, None, projection]
        self.records.append(rec)
        return rec

    def finish(self, rec: list, reply) -> None:
        if isinstance(reply, dict):
            ok = reply.get("ok")
            rec[OK] = 1 if ok else 0
            rec[CODE] = reply.get("code")
            cursor = reply.get("cursor")
            if isinstance(cursor, dict):  # find, aggregate, getMore: documents sent back
                batch = cursor.get("firstBatch", cursor.get("nextBatch"))
                rec[RETURNED] = len(batch) if isinstance(batch, list) else None
                if rec[NAME] == "find" and rec[PROJECTION] is not None and cursor.get("id"):
                    if len(self._projections) >= CURSORS:
                        self._projections.clear()
                    self._projections[cursor.get("id")] = rec[PROJECTION]

    def command(self, cmd: dict) -> dict:
        """{ksCommandLog: 1, ns?, db?, commands?: [names], since?: seq, limit?} or {ksCommandLog: 1, clear: true}"""
        if cmd.get("clear"):
            n = len(self.records)
            self.records.clear()
            return {"cleared": n, "ok": 1.0}
        ns, db, names = cmd.get("ns"), cmd.get("db"), cmd.get("commands")
        since = int(cmd.get("since", 0))
        limit = int(cmd.get("limit", MAX_RETURNED))
        if ns is not None and not isinstance(ns, str) or db is not None and not isinstance(db, str):
            raise CommandError(14, "ksCommandLog: 'ns' and 'db' must be strings")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise CommandError(14, "ksCommandLog: 'commands' must be an array of command names")
        if not 0 < limit <= MAX_RETURNED:
            raise CommandError(2, "ksCommandLog: 'limit' must be between 1 and %d" % MAX_RETURNED)
        names = set(names) if names is not None else None
        picked = [r for r in list(self.records)
                  if r[SEQ] > since and (ns is None or r[NS] == ns) and (db is None or r[DB] == db)
                  and (names is None or r[NAME] in names)]
        truncated = len(picked) > limit
        picked = picked[-limit:]
        last = self.records[-1][SEQ] if self.records else 0
        out = [{"seq": Int64(r[SEQ]), "command": r[NAME], "db": r[DB], "ns": r[NS], "readConcern": r[RC],
                "writeConcern": r[WC], "readPreference": r[RP], "lsid": r[LSID], "txnNumber": r[TXN],
                "user": r[USER], "connectionId": r[CONN], "ok": r[OK], "code": r[CODE],
                "returned": r[RETURNED], "projection": r[PROJECTION]} for r in picked]
        return {"commands": out, "truncated": truncated, "lastSeq": Int64(last), "ok": 1.0}
