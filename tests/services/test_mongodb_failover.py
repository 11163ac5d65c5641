"""Proves the MongoDB stand-in's failover knobs with PyMongo: a primary stepping down
(`ksStepDown`, count-based) refuses writes and primary reads as mongod does, drivers
retry a retryable write onto the re-elected primary and it lands exactly once; a
writeConcernError leaves the write applied but unacknowledged as durable.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import uuid

import bson
import pytest
from bson import Int64, ObjectId
from pymongo import MongoClient, ReadPreference
from pymongo.errors import NotPrimaryError, OperationFailure, WriteConcernError


@pytest.fixture(scope="module")
def admin(world):
    c = MongoClient(world["KS_MONGODB_DIRECT_URI"], serverSelectionTimeoutMS=5000)
    yield c.admin
    c.close()


@pytest.fixture
def db(admin, request):
    client = admin.client
    name = "fo_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]
    client.drop_database(name)
    yield client[name]
    admin.command({"ksStepDown": 1, "hellos": 0})  # whatever happened: primary again
    admin.command("configureFailPoint", "failCommand", mode="off")
    client.drop_database(name)


def _op_msg(world, doc: dict) -> dict:
    """One OP_MSG command on a fresh TLS connection, exactly as given."""
    ctx = ssl.create_default_context(cafile=world["KS_CA_FILE"])
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(doc)
    with socket.create_connection(("127.0.0.1", int(world["KS_MONGODB_PORT"])), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body)
            data = b""
            while len(data) < 4 or len(data) < struct.unpack("<i", data[:4])[0]:
                chunk = s.recv(65536)
                assert chunk, "connection closed"
                data += chunk
    return bson.decode(data[21:])


def _log(admin, since, **filters) -> list[dict]:
    return admin.command({"ksCommandLog": 1, "since": since, **filters})["commands"]


def test_secondary_refuses_writes_and_primary_reads(world, admin, db):
    db.c.insert_one({"_id": 1})
    before = admin.command("hello")
    r = admin.command({"ksStepDown": 1, "hellos": 1000})
    assert r["primary"] is False and r["hellosLeft"] == 1000
    hello = admin.command("hello")
    assert hello["isWritablePrimary"] is False and hello["secondary"] is True
    assert "primary" not in hello and "electionId" not in hello and hello["setName"] == "ks0"
    assert hello["topologyVersion"]["counter"] > before["topologyVersion"]["counter"]
    with pytest.raises(NotPrimaryError) as e:
        db.c.update_one({"_id": 1}, {"$set": {"x": 1}})
    assert e.value.details["code"] == 10107 and e.value.details["codeName"] == "NotWritablePrimary"
    assert e.value.details["errmsg"] == "not primary"
    assert e.value.details["topologyVersion"] == hello["topologyVersion"]
    # PyMongo sends a txnNumber only while it still takes the member for the primary
    sent = _log(admin, 0, ns=db.name + ".c", commands=["update"])[-1]
    labels = ["RetryableWriteError"] if sent["txnNumber"] is not None else None
    assert e.value.details.get("errorLabels") == labels
    r = _op_msg(world, {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$set": {"x": 1}}}], "$db": db.name,
                        "lsid": {"id": bson.Binary(uuid.uuid4().bytes, 4)}, "txnNumber": Int64(1)})
    assert (r["code"], r["errorLabels"]) == (10107, ["RetryableWriteError"])  # a retryable write's error
    # PyMongo adds primaryPreferred on a direct connection, so send a find with none
    r = _op_msg(world, {"find": "c", "filter": {}, "$db": db.name})
    assert (r["ok"], r["code"], r["codeName"]) == (0.0, 13435, "NotPrimaryNoSecondaryOk")
    assert r["errmsg"] == "not primary and secondaryOk=false" and "errorLabels" not in r
    r = _op_msg(world, {"find": "c", "filter": {}, "$db": db.name, "$readPreference": {"mode": "primary"}})
    assert r["code"] == 13435
    assert db.get_collection("c", read_preference=ReadPreference.SECONDARY_PREFERRED).find_one({"_id": 1}) == {"_id": 1}
    assert admin.command("ping")["ok"] == 1.0
    r = admin.command({"ksStepDown": 1, "hellos": 0})  # an election at once
    assert r["primary"] is True and r["term"] > Int64(1)
    after = admin.command("hello")
    assert after["isWritablePrimary"] is True and after["primary"] == after["me"]
    assert after["electionId"] > before["electionId"] and isinstance(after["electionId"], ObjectId)
    assert db.c.find_one({"_id": 1, "x": 1}) is None  # the refused write never ran


def test_step_down_ends_after_the_counted_hellos():
    # in-process: any client's monitor would also spend the counted hellos
    from mongo_standin.replset import Member

    m = Member("ks9", "127.0.0.1:1")
    first = m.election_id()
    m.step_down(3)
    seen = [m.hello_fields() for _ in range(4)]
    assert [h["isWritablePrimary"] for h in seen] == [False, False, False, True]
    assert "primary" not in seen[2] and seen[3]["primary"] == "127.0.0.1:1"
    assert seen[3]["electionId"] > first
    assert seen[3]["topologyVersion"]["counter"] == seen[0]["topologyVersion"]["counter"] + 1
    m.arm("update", 1)
    m.trigger("find")
    assert m.primary and m.armed == ("update", 1)
    m.trigger("update")
    assert not m.primary and m.armed is None and m.refuse("insert", {}).code == 10107


@pytest.mark.parametrize("monitoring", ["stream", "poll"])
def test_retryable_write_during_step_down_lands_exactly_once(world, admin, db, monitoring):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=20000, heartbeatFrequencyMS=500,
                    serverMonitoringMode=monitoring)
    coll = c[db.name].c
    coll.insert_one({"_id": 1, "n": 0})
    election = admin.command("hello")["electionId"]
    since = admin.command({"ksCommandLog": 1, "limit": 1})["lastSeq"]
    admin.command({"ksStepDown": 1, "hellos": 2, "atCommand": "update"})
    assert coll.update_one({"_id": 1}, {"$inc": {"n": 1}}).modified_count == 1
    assert coll.find_one({"_id": 1})["n"] == 1
    updates = _log(admin, since, ns=db.name + ".c", commands=["update"])
    assert [(u["ok"], u["code"]) for u in updates] == [(0, 10107), (1, None)]
    assert updates[0]["txnNumber"] == updates[1]["txnNumber"]  # the driver's retry
    assert admin.command("hello")["electionId"] > election
    c.close()


def test_non_retryable_write_during_step_down_fails(world, admin, db):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=20000, heartbeatFrequencyMS=500,
                    retryWrites=False)
    coll = c[db.name].c
    coll.insert_one({"_id": 1, "n": 0})
    admin.command({"ksStepDown": 1, "hellos": 2, "atCommand": "update"})
    with pytest.raises(NotPrimaryError):
        coll.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert coll.find_one({"_id": 1})["n"] == 0  # waits for the new primary, nothing applied
    c.close()


def test_write_concern_error_leaves_the_write_applied(world, admin, db):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000)
    coll = c[db.name].get_collection("c")
    coll.insert_one({"_id": 1, "n": 0})
    wce = {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
           "errInfo": {"wtimeout": True, "writeConcern": {"w": "majority", "wtimeout": 100, "provenance": "clientSupplied"}}}
    admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                  data={"failCommands": ["update"], "writeConcernError": wce})
    with pytest.raises(WriteConcernError) as e:
        coll.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert e.value.code == 64 and e.value.details["errInfo"]["wtimeout"] is True
    assert coll.find_one({"_id": 1})["n"] == 1  # applied locally, durability not acknowledged
    coll.update_one({"_id": 1}, {"$inc": {"n": 1}})  # times: 1 has expired
    assert coll.find_one({"_id": 1})["n"] == 2
    c.close()


@pytest.mark.parametrize("code,name", [(91, "ShutdownInProgress"), (189, "PrimarySteppedDown")])
def test_retryable_write_concern_error_is_retried_without_a_second_write(world, admin, db, code, name):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000)
    coll = c[db.name].c
    coll.insert_one({"_id": 1, "n": 0})
    since = admin.command({"ksCommandLog": 1, "limit": 1})["lastSeq"]
    admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                  data={"failCommands": ["update"], "writeConcernError": {"code": code, "codeName": name, "errmsg": "x"}})
    coll.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert coll.find_one({"_id": 1})["n"] == 1  # the retry got the recorded reply, no second $inc
    assert len(_log(admin, since, ns=db.name + ".c", commands=["update"])) == 2
    plain = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000, retryWrites=False)
    admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                  data={"failCommands": ["update"], "writeConcernError": {"code": code, "codeName": name, "errmsg": "x"}})
    with pytest.raises(WriteConcernError) as e:
        plain[db.name].c.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert e.value.code == code
    assert coll.find_one({"_id": 1})["n"] == 2
    plain.close()
    c.close()


def test_error_code_fail_points_with_times(world, admin, db):
    c = MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000, retryWrites=False)
    coll = c[db.name].c
    coll.insert_one({"_id": 1})
    admin.command("configureFailPoint", "failCommand", mode={"times": 2},
                  data={"failCommands": ["insert"], "errorCode": 91})
    for _ in range(2):
        with pytest.raises(NotPrimaryError) as e:
            coll.insert_one({})
        assert e.value.details["codeName"] == "ShutdownInProgress"
    coll.insert_one({"_id": 2})
    assert coll.count_documents({}) == 2
    with pytest.raises(OperationFailure) as e:
        c[db.name].command({"ksStepDown": 1})
    assert e.value.code == 13  # admin only
    c.close()
