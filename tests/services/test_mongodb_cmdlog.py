"""Proves the MongoDB stand-in's command record (`{ksCommandLog: 1}`) with PyMongo: each
command shows the read and write concerns, read preference, session and txnNumber it
was sent with (null when absent), the namespace it targets (getMore and killCursors
included), its outcome, and clearing empties it.
"""

from __future__ import annotations

import re

import pytest
from bson import Int64
from pymongo import MongoClient, ReadPreference
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern


@pytest.fixture(scope="module")
def client(world):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    name = "log_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)


def _log(client, **filters) -> list[dict]:
    return client.admin.command({"ksCommandLog": 1, **filters})["commands"]


def test_concerns_read_preference_and_sessions_are_recorded(client, db):
    db.c.insert_many([{"_id": i} for i in range(3)])
    majority = db.get_collection("c", read_concern=ReadConcern("majority"))
    durable = db.get_collection("c", write_concern=WriteConcern(w="majority", j=True))
    anywhere = db.get_collection("c", read_preference=ReadPreference.SECONDARY_PREFERRED)
    since = client.admin.command({"ksCommandLog": 1, "limit": 1})["lastSeq"]
    majority.find_one({"_id": 1})
    durable.update_one({"_id": 1}, {"$set": {"x": 1}})
    db.c.find_one({"_id": 2})
    anywhere.find_one({"_id": 0})
    recs = _log(client, ns=db.name + ".c", since=since)
    assert [r["command"] for r in recs] == ["find", "update", "find", "find"]
    rc_find, update, plain, secondary = recs
    assert rc_find["readConcern"] == {"level": "majority"} and rc_find["writeConcern"] is None
    assert update["writeConcern"] == {"w": "majority", "j": True} and update["readConcern"] is None
    assert isinstance(update["txnNumber"], Int64) and update["lsid"] is True
    assert plain["readConcern"] is None and plain["writeConcern"] is None and plain["readPreference"] is None
    assert plain["txnNumber"] is None and plain["lsid"] is True  # implicit session
    assert secondary["readPreference"] == {"mode": "secondaryPreferred"}
    for r in recs:
        assert r["db"] == db.name and r["ok"] == 1 and r["code"] is None and r["user"] is None
        assert isinstance(r["seq"], Int64) and r["seq"] > since and isinstance(r["connectionId"], int)
    assert [r["seq"] for r in recs] == sorted(r["seq"] for r in recs)


def test_cursor_commands_map_to_their_namespace(client, db):
    db.c.insert_many([{"_id": i} for i in range(10)])
    since = client.admin.command({"ksCommandLog": 1, "limit": 1})["lastSeq"]
    cursor = db.c.find({}, batch_size=3)
    next(cursor), next(cursor), next(cursor), next(cursor)
    cursor.close()
    records = _log(client, ns=db.name + ".c", since=since)
    assert [r["command"] for r in records] == ["find", "getMore", "killCursors"]
    # How many documents each cursor reply carried (PyMongo's own count agrees).
    assert [r["returned"] for r in records] == [3, 3, None]
    assert [r["projection"] for r in records] == [None, None, None]
    # A find's projection is recorded, and its getMores carry it.
    since = client.admin.command({"ksCommandLog": 1, "limit": 1})["lastSeq"]
    list(db.c.find({}, {"_id": 1}, batch_size=4))
    records = _log(client, ns=db.name + ".c", since=since)
    assert [r["command"] for r in records] == ["find", "getMore", "getMore"]
    assert [r["projection"] for r in records] == [{"_id": 1}] * 3
    other = _log(client, ns=db.name + ".other", since=since)
    assert other == []


def test_failures_filters_and_clear(client, db):
    with pytest.raises(OperationFailure):
        db.command("frobnicate")
    recs = _log(client, db=db.name, commands=["frobnicate"])
    assert recs[-1]["ok"] == 0 and recs[-1]["code"] == 59 and recs[-1]["ns"] is None
    assert all(r["command"] == "frobnicate" for r in recs)
    assert client.admin.command({"ksCommandLog": 1, "clear": True})["cleared"] >= 1
    assert _log(client, db=db.name) == []
    client.admin.command("ping")
    recs = _log(client)
    assert [r["command"] for r in recs if r["command"] != "hello"][-1:] == ["ping"]
    assert all(r["command"] != "ksCommandLog" for r in recs)  # the record does not record itself
    with pytest.raises(OperationFailure) as e:
        db.command({"ksCommandLog": 1})
    assert e.value.code == 13  # admin only
