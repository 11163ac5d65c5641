"""Proves the MongoDB stand-in is a replica-set member the way drivers see one: PyMongo
discovers set "ks0" from the seed, streams awaitable hellos, sends retryable writes,
and a retried write (same lsid and txnNumber) lands exactly once.

    KS_RUN_DIR=/tmp/w tests/services/up --only mongodb
    KS_ENV_FILE=/tmp/w/env .venv/bin/pytest -c tests/pytest.ini tests/services/test_mongodb_replset.py
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from bson import Binary, Int64
from pymongo import MongoClient, monitoring
from pymongo.errors import NotPrimaryError, OperationFailure


class Commands(monitoring.CommandListener):
    """Keeps every command a client sends."""

    def __init__(self):
        self.started_events: list = []

    def started(self, event):
        self.started_events.append(event)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture(scope="module")
def client(world):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    name = "rs_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)
    client.admin.command("configureFailPoint", "failCommand", mode="off")


def test_driver_discovers_the_replica_set(world, client):
    client.admin.command("ping")
    td = client.topology_description
    assert td.topology_type_name == "ReplicaSetWithPrimary"
    assert td.replica_set_name == world["KS_MONGODB_REPLSET"] == "ks0"
    (sd,) = td.server_descriptions().values()
    assert sd.server_type_name == "RSPrimary"
    assert sd.address == ("127.0.0.1", int(world["KS_MONGODB_PORT"]))
    assert sd.topology_version is not None  # so drivers stream awaitable hellos


def test_direct_uri_still_works(world):
    c = MongoClient(world["KS_MONGODB_DIRECT_URI"], serverSelectionTimeoutMS=5000)
    assert c.admin.command("ping")["ok"] == 1.0
    assert c.topology_description.topology_type_name == "Single"
    c.close()


def test_awaitable_hello_waits_for_a_change_or_max_await(client):
    tv = client.admin.command("hello")["topologyVersion"]
    started = time.monotonic()
    r = client.admin.command({"hello": 1, "topologyVersion": tv, "maxAwaitTimeMS": 300})
    assert time.monotonic() - started >= 0.3
    assert r["topologyVersion"] == tv
    stale = {"processId": tv["processId"], "counter": Int64(tv["counter"] - 1)}
    started = time.monotonic()
    client.admin.command({"hello": 1, "topologyVersion": stale, "maxAwaitTimeMS": 5000})
    assert time.monotonic() - started < 2.5  # a stale view is answered at once


def test_writes_carry_txn_numbers_and_reads_do_not(world, db):
    events = Commands()
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000, event_listeners=[events])
    coll = c[db.name].c
    coll.insert_one({"_id": 1})
    coll.update_one({"_id": 1}, {"$set": {"a": 1}})
    coll.find_one({"_id": 1})
    by_name = {e.command_name: e.command for e in events.started_events}
    assert isinstance(by_name["insert"]["txnNumber"], Int64) and "lsid" in by_name["insert"]
    assert by_name["update"]["txnNumber"] > by_name["insert"]["txnNumber"]
    assert "txnNumber" not in by_name["find"] and "$clusterTime" in by_name["find"]
    c.close()


def test_lost_reply_is_retried_and_lands_once(world, db):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000)
    coll = c[db.name].c
    coll.insert_one({"_id": 1, "n": 0})
    for command in ("update", "insert", "findAndModify"):
        c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                        data={"failCommands": [command], "closeConnectionAfterCommand": True})
        if command == "update":
            assert coll.update_one({"_id": 1}, {"$inc": {"n": 1}}).modified_count == 1
        elif command == "insert":
            coll.insert_one({"_id": 2})  # executed twice it would be a duplicate key
        else:
            assert coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 10}})["n"] == 1
    assert coll.find_one({"_id": 1})["n"] == 11
    assert coll.count_documents({}) == 2
    c.close()


def test_retried_txn_number_returns_the_first_reply(db):
    lsid = {"id": Binary(uuid.uuid4().bytes, 4)}
    cmd = {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}, "upsert": True}],
           "lsid": lsid, "txnNumber": Int64(5)}
    first = db.command(dict(cmd))
    again = db.command(dict(cmd))
    assert first["upserted"] == again["upserted"] and again["n"] == 1
    assert db.c.find_one({"_id": 1})["n"] == 1
    nxt = db.command({**cmd, "txnNumber": Int64(6)})
    assert nxt["nModified"] == 1 and db.c.find_one({"_id": 1})["n"] == 2
    with pytest.raises(OperationFailure) as e:
        db.command({**cmd, "txnNumber": Int64(5)})
    assert e.value.code == 225  # TransactionTooOld


@pytest.mark.parametrize("code", [91, 189, 10107, 11602])
def test_retryable_error_codes_are_labelled_and_retried(world, db, code):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000)
    coll = c[db.name].c
    coll.insert_one({"_id": 1, "n": 0})
    c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                    data={"failCommands": ["update"], "errorCode": code})
    coll.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert coll.find_one({"_id": 1})["n"] == 1
    c.close()
    plain = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000, retryWrites=False)
    plain.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                        data={"failCommands": ["update"], "errorCode": code})
    with pytest.raises((OperationFailure, NotPrimaryError)) as e:
        plain[db.name].c.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert e.value.details["code"] == code and "errorLabels" not in e.value.details  # no txnNumber, no label
    plain.close()
