"""Proves the MongoDB wire stand-in with the oracle driver: PyMongo over TLS (and
pymongocrypt for the encryption smoke test) against the running test world.

    tests/services/up --only mongodb
    .venv/bin/pytest -c tests/pytest.ini tests/services/test_mongodb_standin.py
    tests/services/down
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import ssl
import struct
import threading
import time
import uuid

import bson
import pytest
from bson import (Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex,
                  Timestamp)
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, ReturnDocument, UpdateOne, monitoring
from pymongo.errors import (AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure,
                            ServerSelectionTimeoutError, WriteError)

RAW = CodecOptions(document_class=RawBSONDocument)


class Commands(monitoring.CommandListener):
    """Records the names of the commands a client sends."""

    def __init__(self):
        self.names: list[str] = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def _client(world, **kw) -> MongoClient:
    return MongoClient(world["KS_MONGODB_URI"], serverSelectionTimeoutMS=5000, **kw)


@pytest.fixture(scope="module")
def client(world):
    c = _client(world)
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    name = "t_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)


@pytest.fixture
def failpoint_off(client):
    yield
    client.admin.command("configureFailPoint", "failCommand", mode="off")


# --- connection and handshake ----------------------------------------------------------


def test_tls_is_required(world):
    plain = MongoClient(f"mongodb://127.0.0.1:{world['KS_MONGODB_PORT']}/?directConnection=true",
                        serverSelectionTimeoutMS=1500)
    with pytest.raises(ServerSelectionTimeoutError):
        plain.admin.command("ping")
    plain.close()


def test_hello_and_legacy_hello(world, client):
    for name in ("hello", "isMaster", "ismaster"):
        r = client.admin.command(name)
        assert r["ok"] == 1.0 and isinstance(r["ok"], float)
        assert r["maxWireVersion"] == 21 and r["minWireVersion"] == 0
        assert r["maxBsonObjectSize"] == 16 * 1024 * 1024
        assert r["maxMessageSizeBytes"] == 48_000_000
        assert r["maxWriteBatchSize"] == 100_000
        assert r["logicalSessionTimeoutMinutes"] == 30
        assert isinstance(r["localTime"], datetime.datetime)
        assert isinstance(r["connectionId"], int)
        assert "msg" not in r  # not a mongos
        assert r["setName"] == world["KS_MONGODB_REPLSET"] and r["setVersion"] == 1
        me = "127.0.0.1:%s" % world["KS_MONGODB_PORT"]
        assert r["hosts"] == [me] and r["me"] == me and r["primary"] == me
        assert r["secondary"] is False and isinstance(r["electionId"], ObjectId)
        assert isinstance(r["topologyVersion"]["processId"], ObjectId)
        assert isinstance(r["topologyVersion"]["counter"], Int64)
        assert isinstance(r["lastWrite"]["lastWriteDate"], datetime.datetime)
        assert isinstance(r["lastWrite"]["opTime"]["ts"], Timestamp)
        assert isinstance(r["$clusterTime"]["clusterTime"], Timestamp) and isinstance(r["operationTime"], Timestamp)
        if name == "hello":
            assert r["isWritablePrimary"] is True
        else:
            assert r["ismaster"] is True and "isWritablePrimary" not in r


def test_legacy_op_query_handshake(world):
    """Drivers may open with OP_QUERY isMaster on admin.$cmd; the reply is an OP_REPLY."""
    ctx = ssl.create_default_context(cafile=world["KS_CA_FILE"])
    with socket.create_connection(("127.0.0.1", int(world["KS_MONGODB_PORT"])), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1)
            body += bson.encode({"isMaster": 1, "helloOk": True})
            s.sendall(struct.pack("<iiii", 16 + len(body), 7, 0, 2004) + body)
            header = _read(s, 16)
            length, _, response_to, opcode = struct.unpack("<iiii", header)
            rest = _read(s, length - 16)
    assert (opcode, response_to) == (1, 7)
    _flags, _cursor, _start, n = struct.unpack("<iqii", rest[:20])
    reply = bson.decode(rest[20:])
    assert n == 1 and reply["ismaster"] is True and reply["maxWireVersion"] == 21 and reply["helloOk"] is True


def _read(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_ping_build_info_end_sessions(client):
    assert client.admin.command("ping")["ok"] == 1.0
    info = client.admin.command("buildInfo")
    assert info["version"] == "7.0.0" and info["versionArray"][:3] == [7, 0, 0]
    assert client.admin.command("endSessions", [])["ok"] == 1.0


def test_unknown_command_is_mongodb_shaped(client):
    with pytest.raises(OperationFailure) as e:
        client.admin.command("frobnicate")
    assert e.value.code == 59
    assert e.value.details["codeName"] == "CommandNotFound"
    assert e.value.details["ok"] == 0
    assert e.value.details["errmsg"] == "no such command: 'frobnicate'"


def test_multi_document_transactions_are_refused(client, db):
    db.c.insert_one({"_id": 1})
    with client.start_session() as s:
        with pytest.raises(OperationFailure) as e:
            with s.start_transaction():
                db.c.insert_one({"_id": 2}, session=s)
    assert e.value.code == 238 and "multi-document transactions" in str(e.value)
    assert db.c.count_documents({}) == 1
    with pytest.raises(OperationFailure) as e:
        db.command({"find": "c", "txnNumber": Int64(1)})  # a read is no retryable write
    assert e.value.code == 50768


# --- BSON fidelity ------------------------------------------------------------------------


def _every_type() -> dict:
    return {
        "_id": Binary(uuid.uuid4().bytes, 4),
        "ciphertext": Binary(b"\x01" + os.urandom(80), 6),
        "uuid_std": Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD),
        "uuid_legacy": Binary(os.urandom(16), 3),
        "bin0": b"\x00\x01\x02",
        "bin_user": Binary(b"xyz", 128),
        "int64_small": Int64(5),
        "int64_big": Int64(2**40),
        "int32": 7,
        "double": 1.5,
        "decimal": Decimal128("1234.5600"),
        "date": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
        "date_far": datetime.datetime(1, 1, 1),
        "oid": ObjectId(),
        "ts": Timestamp(1700000000, 3),
        "regex": Regex("^a.c$", "i"),
        "code": Code("function () {}"),
        "minkey": MinKey(),
        "maxkey": MaxKey(),
        "dbref": DBRef("coll", ObjectId(), "db"),
        "bool": True,
        "null": None,
        "str": "h\u00e9llo \u2603",
        "nested": [[1, [Int64(2), {"x": Binary(b"q", 6), "y": [Decimal128("0.1")]}]], {"a": {"b": {"c": Int64(-1)}}}, []],
        "empty": {},
    }


def test_every_bson_type_round_trips_byte_for_byte(db):
    docs = [_every_type() for _ in range(3)]
    db.c.insert_one(docs[0])
    db.c.insert_many(docs[1:])  # document sequence (OP_MSG payload type 1)
    raw = db.get_collection("c", codec_options=RAW)
    got = {bytes(d["_id"]): d.raw for d in raw.find()}
    for d in docs:
        assert got[bytes(d["_id"])] == bson.encode(d)
    back = db.c.find_one({"_id": docs[0]["_id"]})
    assert type(back["int64_small"]) is Int64 and type(back["int32"]) is int
    assert back["ciphertext"].subtype == 6 and back["_id"].subtype == 4
    assert back["nested"][0][1][1]["x"].subtype == 6


def test_types_survive_projection_aggregate_and_find_and_modify(db):
    d = _every_type()
    db.c.insert_one(d)
    p = db.c.find_one({}, {"ciphertext": 1, "int64_small": 1, "nested": 1})
    assert p["ciphertext"] == d["ciphertext"] and p["ciphertext"].subtype == 6
    assert type(p["int64_small"]) is Int64 and p["nested"] == d["nested"]
    a = list(db.c.aggregate([{"$match": {"int64_small": 5}}, {"$project": {"ciphertext": 1, "int64_big": 1}}]))
    assert a[0]["ciphertext"].subtype == 6 and type(a[0]["int64_big"]) is Int64
    r = db.c.find_one_and_update({"_id": d["_id"]}, {"$set": {"touched": True}}, return_document=ReturnDocument.AFTER)
    raw = db.get_collection("c", codec_options=RAW).find_one({"_id": d["_id"]}, {"touched": 0})
    assert raw.raw == bson.encode(d) and r["touched"] is True


def test_updates_keep_numeric_types(db):
    db.c.insert_one({"_id": 1, "l": Int64(10), "i": 2**31 - 1, "s": 1, "d": Decimal128("1.5"), "f": 1.0,
                     "keep": Binary(b"k", 6), "str": "x"})
    db.c.update_one({"_id": 1}, {"$inc": {"l": 1, "i": 1, "s": 1, "d": Decimal128("0.25"), "f": 1, "new": Int64(3)}})
    d = db.c.find_one({"_id": 1})
    assert type(d["l"]) is Int64 and d["l"] == 11
    assert type(d["i"]) is Int64 and d["i"] == 2**31  # int32 overflow widens to long
    assert type(d["s"]) is int and d["s"] == 2
    assert d["d"] == Decimal128("1.75")
    assert type(d["f"]) is float and d["f"] == 2.0
    assert type(d["new"]) is Int64
    assert d["keep"].subtype == 6
    db.c.update_one({"_id": 1}, {"$mul": {"l": 2, "s": 1.5, "missing": Int64(4)}})
    d = db.c.find_one({"_id": 1})
    assert type(d["l"]) is Int64 and d["l"] == 22 and d["s"] == 3.0 and type(d["missing"]) is Int64
    with pytest.raises(WriteError) as e:
        db.c.update_one({"_id": 1}, {"$inc": {"str": 1}})
    assert e.value.code == 14


def test_equality_and_order_follow_bson_not_python(db):
    db.c.insert_many([{"_id": 1, "v": 3}, {"_id": 2, "v": Decimal128("3")}, {"_id": 3, "v": Int64(3)},
                      {"_id": 4, "v": 3.5}, {"_id": 5, "v": "3"}, {"_id": 6, "m": {"a": 1, "b": 2}},
                      {"_id": 7, "m": {"b": 2, "a": 1}}, {"_id": 8, "b": Binary(b"x", 6)}, {"_id": 9, "b": b"x"},
                      {"_id": 10, "v": True}])

    def ids(flt, **kw):
        return [d["_id"] for d in db.c.find(flt, **kw)]

    assert ids({"v": 3}) == [1, 2, 3]  # numbers compare by value across types, not with true
    assert ids({"v": {"$gt": Decimal128("3")}}) == [4]  # type bracketing: "3" and true are not numbers
    assert ids({"v": {"$in": [Decimal128("3.5"), "3"]}}) == [4, 5]
    assert ids({"v": {"$exists": True}}, sort=[("v", -1), ("_id", 1)]) == [10, 5, 4, 1, 2, 3]
    assert ids({"m": {"a": 1, "b": 2}}) == [6]  # embedded documents: field order matters
    assert ids({"b": Binary(b"x", 6)}) == [8] and ids({"b": b"x"}) == [9]  # binary subtype matters
    assert ids({"b": {"$ne": Binary(b"x", 6)}, "_id": {"$gte": 8}}) == [9, 10]
    assert ids({"v": {"$type": "long"}}) == [3] and ids({"v": {"$type": 16}}) == [1]
    assert ids({"v": {"$type": ["decimal", "string"]}}) == [2, 5] and ids({"b": {"$type": "binData"}}) == [8, 9]


# --- find and cursors -------------------------------------------------------------------


def test_find_filter_projection_sort_skip_limit(db):
    db.c.insert_many([{"_id": i, "g": i % 3, "v": 10 - i, "tags": ["t%d" % (i % 2)], "sub": {"a": i, "b": -i}} for i in range(10)])
    assert [d["_id"] for d in db.c.find({"g": 1})] == [1, 4, 7]
    assert [d["_id"] for d in db.c.find({"tags": "t1", "_id": {"$in": [1, 2, 3, 5]}})] == [1, 3, 5]
    assert [d["_id"] for d in db.c.find({"$or": [{"_id": 0}, {"sub.a": {"$gt": 7}}]})] == [0, 8, 9]
    assert [d["_id"] for d in db.c.find().sort([("g", -1), ("v", 1)])] == [8, 5, 2, 7, 4, 1, 9, 6, 3, 0]
    assert [d["_id"] for d in db.c.find().sort("_id", 1).skip(3).limit(2)] == [3, 4]
    assert db.c.find_one({"_id": 2}, {"sub.a": 1, "_id": 0}) == {"sub": {"a": 2}}
    assert db.c.find_one({"_id": 2}, {"sub": 0, "tags": 0}) == {"_id": 2, "g": 2, "v": 8}
    with pytest.raises(OperationFailure):
        db.c.find_one({}, {"a": 1, "b": 0})


def test_find_command_batches_and_int64_cursor_ids(db):
    db.c.insert_many([{"_id": i} for i in range(150)])
    r = db.command({"find": "c"})
    assert len(r["cursor"]["firstBatch"]) == 101  # default first batch
    cid = r["cursor"]["id"]
    assert type(cid) is Int64 and cid != 0 and r["cursor"]["ns"] == db.name + ".c"
    more = db.command({"getMore": cid, "collection": "c"})
    assert len(more["cursor"]["nextBatch"]) == 49 and more["cursor"]["id"] == 0
    assert type(more["cursor"]["id"]) is Int64

    r = db.command({"find": "c", "batchSize": 10, "singleBatch": True})
    assert len(r["cursor"]["firstBatch"]) == 10 and r["cursor"]["id"] == 0
    r = db.command({"find": "c", "batchSize": 0})
    assert r["cursor"]["firstBatch"] == [] and r["cursor"]["id"] != 0
    r2 = db.command({"getMore": r["cursor"]["id"], "collection": "c", "batchSize": 20})
    assert [d["_id"] for d in r2["cursor"]["nextBatch"]] == list(range(20))
    k = db.command({"killCursors": "c", "cursors": [r["cursor"]["id"], Int64(12345)]})
    assert k["cursorsKilled"] == [r["cursor"]["id"]] and k["cursorsNotFound"] == [12345]
    with pytest.raises(OperationFailure) as e:
        db.command({"getMore": r["cursor"]["id"], "collection": "c"})
    assert e.value.code == 43
    r = db.command({"find": "c", "limit": 5, "batchSize": 3})
    assert len(r["cursor"]["firstBatch"]) == 3
    assert len(db.command({"getMore": r["cursor"]["id"], "collection": "c"})["cursor"]["nextBatch"]) == 2


def test_batches_stay_under_16_mib(db):
    blob = os.urandom(5 * 1024 * 1024)
    for i in range(5):
        db.c.insert_one({"_id": i, "blob": Binary(blob, 6)})
    r = db.command({"find": "c", "batchSize": 100})
    assert len(r["cursor"]["firstBatch"]) == 3
    more = db.command({"getMore": r["cursor"]["id"], "collection": "c"})
    assert len(more["cursor"]["nextBatch"]) == 2 and more["cursor"]["id"] == 0
    assert more["cursor"]["nextBatch"][0]["blob"].subtype == 6


def test_ten_thousand_documents_in_batches_of_100(world, db):
    db.c.insert_many([{"_id": i, "km": Binary(os.urandom(96), 0), "n": Int64(i)} for i in range(10_000)])
    listener = Commands()
    c = _client(world, event_listeners=[listener])
    started = time.monotonic()
    got = [d["_id"] for d in c[db.name].c.find({}, batch_size=100)]
    elapsed = time.monotonic() - started
    c.close()
    assert got == list(range(10_000))
    assert listener.names.count("find") == 1 and listener.names.count("getMore") == 99
    assert elapsed < 20, elapsed


def test_two_thousand_compare_and_swap_updates(db):
    db.kv.create_index("keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}})
    docs = [{"_id": Binary(uuid.uuid4().bytes, 4), "keyMaterial": Binary(os.urandom(96), 0),
             "masterKey": {"provider": "local"}, "keyAltNames": ["k%d" % i]} for i in range(2000)]
    db.kv.insert_many(docs)
    started = time.monotonic()
    for d in docs[:1000]:
        r = db.kv.update_one({"_id": d["_id"], "keyMaterial": d["keyMaterial"]},
                             {"$set": {"keyMaterial": Binary(os.urandom(96), 0), "masterKey": {"provider": "local:new"}},
                              "$currentDate": {"updateDate": True}})
        assert r.modified_count == 1
    ops = [UpdateOne({"_id": d["_id"], "keyMaterial": d["keyMaterial"]},
                     {"$set": {"masterKey": {"provider": "local:new"}}}) for d in docs[1000:]]
    assert db.kv.bulk_write(ops).modified_count == 1000
    elapsed = time.monotonic() - started
    assert db.kv.count_documents({"masterKey.provider": "local:new"}) == 2000
    # a stale compare-and-swap matches nothing
    assert db.kv.update_one({"_id": docs[0]["_id"], "keyMaterial": docs[0]["keyMaterial"]},
                            {"$set": {"x": 1}}).matched_count == 0
    assert elapsed < 30, elapsed


# --- writes ---------------------------------------------------------------------------


def test_insert_duplicate_id_write_errors(db):
    db.c.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as e:
        db.c.insert_many([{"_id": 2}, {"_id": 1}, {"_id": 3}])
    err = e.value.details["writeErrors"][0]
    assert err["index"] == 1 and err["code"] == 11000 and "E11000" in err["errmsg"]
    assert e.value.details["nInserted"] == 1
    with pytest.raises(BulkWriteError) as e:
        db.c.insert_many([{"_id": 1}, {"_id": 4}], ordered=False)
    assert e.value.details["nInserted"] == 1
    assert sorted(d["_id"] for d in db.c.find()) == [1, 2, 4]
    oid_doc = {"x": 1}
    db.c.insert_one(oid_doc)
    assert isinstance(oid_doc["_id"], ObjectId) and db.c.find_one({"x": 1})["_id"] == oid_doc["_id"]


def test_update_operators_and_counts(db):
    db.c.insert_many([{"_id": 1, "a": 1, "arr": [1, 2, 3], "s": ["x"]}, {"_id": 2, "a": 1}, {"_id": 3, "a": 2}])
    r = db.c.update_many({"a": 1}, {"$set": {"b.c": 5}})
    assert (r.matched_count, r.modified_count) == (2, 2)
    r = db.c.update_many({"a": 1}, {"$set": {"b.c": 5}})
    assert (r.matched_count, r.modified_count) == (2, 0)  # no-op
    r = db.c.update_one({"a": 1}, {"$set": {"z": 1}})
    assert (r.matched_count, r.modified_count) == (1, 1) and db.c.count_documents({"z": 1}) == 1
    db.c.update_one({"_id": 1}, {"$unset": {"b": ""}, "$push": {"arr": {"$each": [9, 0], "$sort": 1, "$slice": -4}},
                                 "$addToSet": {"s": {"$each": ["x", "y"]}}})
    d = db.c.find_one({"_id": 1})
    assert "b" not in d and d["arr"] == [1, 2, 3, 9] and d["s"] == ["x", "y"]
    db.c.update_one({"_id": 1}, {"$pull": {"arr": {"$gte": 3}}, "$max": {"a": 7}, "$rename": {"s": "tags"}})
    d = db.c.find_one({"_id": 1})
    assert d["arr"] == [1, 2] and d["a"] == 7 and d["tags"] == ["x", "y"] and "s" not in d
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(seconds=5)
    db.c.update_one({"_id": 3}, {"$set": {"zz": 1, "b": 1, "10": 1, "9": 1}})
    assert list(db.c.find_one({"_id": 3})) == ["_id", "a", "9", "10", "b", "zz"]  # mongod's field order
    db.c.update_one({"_id": 2}, {"$currentDate": {"updated": True, "ts": {"$type": "timestamp"}}})
    d = db.c.find_one({"_id": 2})
    assert isinstance(d["updated"], datetime.datetime) and d["updated"] > before and isinstance(d["ts"], Timestamp)
    with pytest.raises(WriteError) as e:
        db.c.update_one({"_id": 2}, {"$set": {"a": 1}, "$inc": {"a": 1}})
    assert e.value.code == 40
    with pytest.raises(WriteError) as e:
        db.c.update_one({"_id": 2}, {"$set": {"_id": 99}})
    assert e.value.code == 66


def test_upserts(db):
    r = db.c.update_one({"a": 1, "b.c": 2}, {"$set": {"x": 1}, "$setOnInsert": {"created": True}}, upsert=True)
    assert r.matched_count == 0 and r.modified_count == 0 and isinstance(r.upserted_id, ObjectId)
    d = db.c.find_one({"_id": r.upserted_id})
    assert d == {"_id": r.upserted_id, "a": 1, "b": {"c": 2}, "x": 1, "created": True}
    r = db.c.update_one({"a": 1}, {"$set": {"x": 2}, "$setOnInsert": {"created": False}}, upsert=True)
    assert r.upserted_id is None and r.modified_count == 1 and db.c.find_one({"a": 1})["created"] is True
    raw = db.command({"update": "c", "updates": [
        {"q": {"_id": "u1"}, "u": {"$inc": {"n": 1}}, "upsert": True},
        {"q": {"_id": "u1"}, "u": {"$inc": {"n": 1}}, "upsert": True},
        {"q": {"_id": "u2"}, "u": {"v": 1}, "upsert": True}]})
    assert raw["n"] == 3 and raw["nModified"] == 1
    assert raw["upserted"] == [{"index": 0, "_id": "u1"}, {"index": 2, "_id": "u2"}]
    assert db.c.find_one({"_id": "u1"})["n"] == 2 and db.c.find_one({"_id": "u2"}) == {"_id": "u2", "v": 1}


def test_array_filters_and_positional(db):
    db.c.insert_one({"_id": 1, "grades": [{"score": 70}, {"score": 85}, {"score": 90}], "items": [{"sku": "a"}, {"sku": "b"}]})
    db.c.update_one({"_id": 1}, {"$set": {"grades.$[g].top": True}}, array_filters=[{"g.score": {"$gte": 85}}])
    assert [g.get("top") for g in db.c.find_one()["grades"]] == [None, True, True]
    db.c.update_one({"_id": 1, "items.sku": "b"}, {"$set": {"items.$.qty": 5}})
    assert db.c.find_one()["items"] == [{"sku": "a"}, {"sku": "b", "qty": 5}]
    db.c.update_one({"_id": 1}, {"$inc": {"grades.$[].score": Int64(1)}})
    assert [g["score"] for g in db.c.find_one()["grades"]] == [71, 86, 91]
    with pytest.raises(WriteError) as e:
        db.c.update_one({"_id": 1}, {"$set": {"grades.$[nope].x": 1}})
    assert e.value.code == 2
    with pytest.raises(WriteError) as e:
        db.c.update_one({"_id": 1}, {"$set": {"a": 1}}, array_filters=[{"unused.x": 1}])
    assert e.value.code == 9


def test_replacement_keeps_id(db):
    db.c.insert_one({"_id": 1, "a": 1})
    assert db.c.replace_one({"_id": 1}, {"b": 2}).modified_count == 1
    assert db.c.find_one() == {"_id": 1, "b": 2}
    with pytest.raises(WriteError) as e:
        db.c.replace_one({"_id": 1}, {"_id": 2, "b": 3})
    assert e.value.code == 66


def test_delete_limits(db):
    db.c.insert_many([{"a": 1} for _ in range(5)])
    assert db.c.delete_one({"a": 1}).deleted_count == 1
    assert db.c.delete_many({"a": 1}).deleted_count == 4
    assert db.c.delete_many({"a": 1}).deleted_count == 0
    assert db.nope.delete_many({}).deleted_count == 0


def test_find_and_modify(db):
    db.c.insert_many([{"_id": i, "v": i} for i in range(5)])
    before = db.c.find_one_and_update({"v": {"$gte": 2}}, {"$inc": {"v": 10}}, sort=[("v", -1)])
    assert before == {"_id": 4, "v": 4}
    after = db.c.find_one_and_update({"_id": 3}, {"$inc": {"v": 10}}, projection={"_id": 0}, return_document=ReturnDocument.AFTER)
    assert after == {"v": 13}
    assert db.c.find_one_and_update({"_id": 99}, {"$set": {"v": 1}}) is None
    up = db.c.find_one_and_update({"_id": 99}, {"$set": {"v": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    assert up == {"_id": 99, "v": 1}
    raw = db.command({"findAndModify": "c", "query": {"_id": 100}, "update": {"$set": {"v": 2}}, "upsert": True})
    assert raw["value"] is None and raw["lastErrorObject"] == {"n": 1, "updatedExisting": False, "upserted": 100}
    assert db.c.find_one_and_delete({"_id": 0}) == {"_id": 0, "v": 0}
    assert db.c.find_one_and_replace({"_id": 1}, {"w": 1}, return_document=ReturnDocument.AFTER) == {"_id": 1, "w": 1}
    assert db.c.count_documents({}) == 6


# --- aggregate, count, distinct ------------------------------------------------------------


def test_aggregate_stages_and_cursor(db):
    db.c.insert_many([{"_id": i, "g": "ab"[i % 2], "n": i} for i in range(10)])
    out = list(db.c.aggregate([{"$match": {"n": {"$gte": 2}}}, {"$group": {"_id": "$g", "total": {"$sum": "$n"}, "c": {"$sum": 1}}},
                                {"$sort": {"_id": 1}}]))
    assert out == [{"_id": "a", "total": 20, "c": 4}, {"_id": "b", "total": 24, "c": 4}]
    out = list(db.c.aggregate([{"$sort": {"n": -1}}, {"$limit": 3}, {"$project": {"_id": 0, "n": 1}}]))
    assert out == [{"n": 9}, {"n": 8}, {"n": 7}]
    assert list(db.c.aggregate([{"$match": {"g": "a"}}, {"$count": "k"}])) == [{"k": 5}]
    r = db.command({"aggregate": "c", "pipeline": [{"$sort": {"n": 1}}], "cursor": {"batchSize": 4}})
    assert len(r["cursor"]["firstBatch"]) == 4 and type(r["cursor"]["id"]) is Int64
    assert len(db.command({"getMore": r["cursor"]["id"], "collection": "c"})["cursor"]["nextBatch"]) == 6
    with pytest.raises(OperationFailure) as e:
        list(db.c.aggregate([{"$frob": {}}]))
    assert e.value.code == 40324
    with pytest.raises(OperationFailure) as e:
        list(db.c.aggregate([{"$lookup": {"from": "x", "localField": "a", "foreignField": "b", "as": "y"}}]))
    assert e.value.code == 238


def test_count_and_distinct(db):
    db.c.insert_many([{"t": ["a", "b"], "k": 1}, {"t": ["b", "c"], "k": 2}, {"t": "d", "k": 2}, {"k": 3}])
    assert db.c.count_documents({"k": 2}) == 2
    assert db.c.estimated_document_count() == 4
    assert db.command({"count": "c", "query": {"k": {"$gte": 2}}, "skip": 1, "limit": 5})["n"] == 2
    assert db.c.distinct("t") == ["a", "b", "c", "d"]
    assert db.c.distinct("k", {"t": "b"}) == [1, 2]
    assert db.command({"count": "missing"})["n"] == 0


# --- collections, databases, validators ---------------------------------------------------


def test_create_list_collections_and_validators(db):
    validator = {"$jsonSchema": {"bsonType": "object", "required": ["keyMaterial"],
                                 "properties": {"keyMaterial": {"bsonType": "binData"}}}}
    db.create_collection("kv", validator=validator)
    info = db.command({"listCollections": 1, "filter": {"name": "kv"}})["cursor"]["firstBatch"]
    assert len(info) == 1 and info[0]["options"]["validator"] == validator
    assert info[0]["type"] == "collection" and info[0]["info"]["uuid"].subtype == 4
    with pytest.raises(WriteError) as e:
        db.kv.insert_one({"keyMaterial": "not binary"})
    assert e.value.code == 121
    db.kv.insert_one({"keyMaterial": Binary(b"k", 0)})
    db.kv.with_options().insert_one({"x": 1}, bypass_document_validation=True)
    new_validator = {"masterKey.provider": {"$in": ["local", "aws"]}}
    db.command({"collMod": "kv", "validator": new_validator, "validationLevel": "strict"})
    info = db.command({"listCollections": 1, "filter": {"name": "kv"}})["cursor"]["firstBatch"][0]
    assert info["options"]["validator"] == new_validator and info["options"]["validationLevel"] == "strict"
    with pytest.raises(WriteError):
        db.kv.insert_one({"masterKey": {"provider": "gcp"}})
    db.kv.insert_one({"masterKey": {"provider": "aws"}})
    with pytest.raises(OperationFailure) as e:
        db.command({"collMod": "absent", "validator": {}})
    assert e.value.code == 26
    with pytest.raises(OperationFailure) as e:
        db.command({"create": "kv", "validator": {"a": 1}})
    assert e.value.code == 48
    with pytest.raises(OperationFailure) as e:
        db.create_collection("bad", validator={"$jsonSchema": {"oneOf": []}})
    assert e.value.code == 238
    db.other.insert_one({})
    assert sorted(db.list_collection_names()) == ["kv", "other"]
    names = db.command({"listCollections": 1, "nameOnly": True})["cursor"]["firstBatch"]
    assert sorted(n["name"] for n in names) == ["kv", "other"] and "options" not in names[0]


def test_drop_and_databases(client, db):
    db.c.insert_one({})
    assert db.name in client.list_database_names()
    entry = [d for d in client.admin.command("listDatabases")["databases"] if d["name"] == db.name][0]
    assert entry["empty"] is False and type(entry["sizeOnDisk"]) is Int64
    r = db.command("drop", "c")
    assert r["ns"] == db.name + ".c" and r["nIndexesWas"] == 1
    assert db.command("drop", "c")["ok"] == 1.0  # 7.0: dropping a missing collection succeeds
    db.d.insert_one({})
    r = client[db.name].command("dropDatabase")
    assert (r["dropped"], r["ok"]) == (db.name, 1.0)
    assert db.name not in client.list_database_names()


# --- indexes --------------------------------------------------------------------------------


def test_unique_partial_index_on_key_alt_names(db):
    name = db.kv.create_index("keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}})
    assert name == "keyAltNames_1"
    idx = {i["name"]: i for i in db.kv.list_indexes()}
    assert idx["keyAltNames_1"]["unique"] is True
    assert idx["keyAltNames_1"]["partialFilterExpression"] == {"keyAltNames": {"$exists": True}}
    assert idx["_id_"]["key"] == {"_id": 1}
    db.kv.insert_many([{"_id": 1}, {"_id": 2}])  # no keyAltNames: outside the partial index
    db.kv.insert_one({"_id": 3, "keyAltNames": ["a", "b"]})
    with pytest.raises(DuplicateKeyError) as e:
        db.kv.insert_one({"_id": 4, "keyAltNames": ["c", "b"]})
    assert e.value.code == 11000
    assert e.value.details["keyPattern"] == {"keyAltNames": 1} and e.value.details["keyValue"] == {"keyAltNames": "b"}
    assert "E11000 duplicate key error collection: %s.kv index: keyAltNames_1" % db.name in e.value.details["errmsg"]
    db.kv.insert_one({"_id": 4, "keyAltNames": ["c"]})
    with pytest.raises(DuplicateKeyError):
        db.kv.update_one({"_id": 4}, {"$addToSet": {"keyAltNames": "a"}})
    with pytest.raises(DuplicateKeyError):
        db.kv.find_one_and_update({"_id": 1}, {"$set": {"keyAltNames": ["a"]}})
    assert db.kv.find_one({"_id": 4})["keyAltNames"] == ["c"]  # rejected write left nothing behind
    db.kv.update_one({"_id": 3}, {"$pull": {"keyAltNames": "a"}})
    db.kv.update_one({"_id": 4}, {"$addToSet": {"keyAltNames": "a"}})  # "a" is free again
    db.kv.delete_one({"_id": 3})
    db.kv.insert_one({"_id": 5, "keyAltNames": ["b"]})
    # building a unique index over existing duplicates fails
    db.dups.insert_many([{"k": 1}, {"k": 1}])
    with pytest.raises(OperationFailure) as e:
        db.dups.create_index("k", unique=True)
    assert e.value.code == 11000
    # an existing index: same spec is a no-op, same name with another spec a conflict
    assert db.command({"createIndexes": "kv", "indexes": [{"key": {"keyAltNames": 1}, "name": "keyAltNames_1", "unique": True,
                       "partialFilterExpression": {"keyAltNames": {"$exists": True}}}]})["note"] == "all indexes already exist"
    with pytest.raises(OperationFailure) as e:
        db.kv.create_index("keyAltNames", name="keyAltNames_1")
    assert e.value.code in (85, 86)
    db.kv.drop_index("keyAltNames_1")
    db.kv.insert_one({"_id": 6, "keyAltNames": ["b"]})  # no longer unique
    with pytest.raises(OperationFailure) as e:
        db.kv.drop_index("keyAltNames_1")
    assert e.value.code == 27
    with pytest.raises(OperationFailure) as e:
        db.command({"listIndexes": "absent"})
    assert e.value.code == 26


# --- fail point -----------------------------------------------------------------------------


def test_fail_point_close_connection_then_expires(world, db, failpoint_off):
    c = _client(world, retryReads=False, retryWrites=False)
    coll = c[db.name].c
    coll.insert_one({"_id": 1})
    r = c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                        data={"failCommands": ["find"], "closeConnection": True})
    assert r["ok"] == 1.0
    with pytest.raises(AutoReconnect):
        coll.find_one({"_id": 1})
    assert coll.find_one({"_id": 1}) == {"_id": 1}  # times: 1 has expired
    c.close()


def test_fail_point_drops_connection_mid_cursor(world, db, failpoint_off):
    c = _client(world, retryReads=False)
    coll = c[db.name].c
    coll.insert_many([{"_id": i} for i in range(300)])
    c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                    data={"failCommands": ["getMore"], "closeConnection": True})
    seen = []
    with pytest.raises(AutoReconnect):
        for d in coll.find({}, batch_size=100):
            seen.append(d["_id"])
    assert seen == list(range(100))
    assert len(list(coll.find({}, batch_size=100))) == 300
    c.close()


def test_fail_point_extension_drops_the_reply_after_the_write(world, db, failpoint_off):
    """closeConnectionAfterCommand (stand-in extension): the write happened, its
    acknowledgement is lost, as when the network fails between the two."""
    c = _client(world, retryWrites=False)
    coll = c[db.name].c
    coll.insert_one({"_id": 1, "v": 0})
    c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                    data={"failCommands": ["update"], "closeConnectionAfterCommand": True})
    with pytest.raises(AutoReconnect):
        coll.update_one({"_id": 1}, {"$set": {"v": 1}})
    assert coll.find_one({"_id": 1})["v"] == 1
    c.close()


def test_fail_point_error_code_block_and_modes(world, db, failpoint_off):
    c = _client(world, retryWrites=False)
    coll = c[db.name].c
    c.admin.command("configureFailPoint", "failCommand", mode="alwaysOn",
                    data={"failCommands": ["insert"], "errorCode": 50, "errorLabels": ["X"]})
    for _ in range(2):
        with pytest.raises(OperationFailure) as e:
            coll.insert_one({})
        assert e.value.code == 50 and e.value.details["codeName"] == "MaxTimeMSExpired"
        assert e.value.details["errorLabels"] == ["X"]
    r = c.admin.command("configureFailPoint", "failCommand", mode="off")
    assert r["count"] == 2
    coll.insert_one({})
    c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                    data={"failCommands": ["ping"], "blockConnection": True, "blockTimeMS": 300})
    started = time.monotonic()
    c.admin.command("ping")
    assert time.monotonic() - started >= 0.3
    c.admin.command("configureFailPoint", "failCommand", mode={"activationProbability": 0.0},
                    data={"failCommands": ["insert"], "closeConnection": True})
    coll.insert_one({})
    with pytest.raises(OperationFailure) as e:
        c[db.name].command("configureFailPoint", "failCommand", mode="off")
    assert e.value.code == 13  # admin only
    c.close()


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_clients(world, db):
    errors = []

    def work(t):
        try:
            c = _client(world)
            coll = c[db.name].c
            for i in range(100):
                coll.insert_one({"t": t, "i": i})
                coll.update_one({"t": t, "i": i}, {"$inc": {"n": 1}})
            c.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert db.c.count_documents({"n": 1}) == 400


# --- client-side field level encryption (pymongocrypt) -------------------------------------------


def test_client_encryption_and_rewrap_to_named_local_provider(client, db):
    from pymongo.encryption import Algorithm, ClientEncryption
    from pymongo.errors import EncryptionError

    opts = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
    old_key, new_key = os.urandom(96), os.urandom(96)
    key_vault = db.name + ".__keyVault"
    db["__keyVault"].create_index("keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}})
    ce = ClientEncryption({"local": {"key": old_key}, "local:new": {"key": new_key}}, key_vault, client, opts)
    key_id = ce.create_data_key("local", key_alt_names=["smoke"])
    assert key_id.subtype == 4
    with pytest.raises(Exception):
        ce.create_data_key("local", key_alt_names=["smoke"])  # unique keyAltNames
    det = ce.encrypt("secret", Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, key_id=key_id)
    rnd = ce.encrypt(Int64(42), Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_alt_name="smoke")
    assert det.subtype == 6 and rnd.subtype == 6
    db.data.insert_one({"_id": 1, "det": det, "rnd": rnd})
    doc = db.data.find_one({"det": det})  # deterministic ciphertext is queryable
    assert doc["det"] == det and doc["det"].subtype == 6 and doc["rnd"].subtype == 6
    assert ce.decrypt(doc["det"]) == "secret"
    value = ce.decrypt(doc["rnd"])
    assert value == 42 and type(value) is Int64

    result = ce.rewrap_many_data_key({}, provider="local:new")
    assert result.bulk_write_result.modified_count == 1
    key_doc = db["__keyVault"].find_one({"_id": key_id})
    assert key_doc["masterKey"]["provider"] == "local:new" and key_doc["keyAltNames"] == ["smoke"]
    assert isinstance(key_doc["updateDate"], datetime.datetime)
    ce.close()

    only_new = ClientEncryption({"local:new": {"key": new_key}}, key_vault, client, opts)
    assert only_new.decrypt(doc["det"]) == "secret" and only_new.decrypt(doc["rnd"]) == 42
    only_new.close()
    only_old = ClientEncryption({"local": {"key": old_key}}, key_vault, client, opts)
    with pytest.raises(EncryptionError):
        only_old.decrypt(doc["det"])
    only_old.close()


# --- what keyshift rotate relies on (issue 9) ---------------------------------------------
# Expected answers follow mongod's documented semantics: comparison operators match only
# values of the same BSON type bracket (numbers together), an _id sort orders by BSON
# comparison order, and a dotted equality path with a numeric part indexes into arrays.


def _fle(key: bytes, n: int, blob_type: int = 2) -> Binary:
    return Binary(bytes([blob_type]) + key + bytes([2]) + n.to_bytes(8, "big") * 4, 6)


def test_id_ordered_scans_ranges_and_pages(db):
    ids = list(range(40)) + [Int64(100), 7.5, "a", "m", "z", ObjectId(), Binary(b"\x01" * 16, 4)]
    db.c.insert_many([{"_id": i, "v": n} for n, i in enumerate(reversed(ids))])

    def got(flt, **kw):
        return [d["_id"] for d in db.c.find(flt, sort=[("_id", kw.pop("direction", 1))], **kw)]

    numbers = sorted(i for i in ids if isinstance(i, (int, float)))
    assert got({})[:len(numbers)] == numbers and got({})[len(numbers):len(numbers) + 3] == ["a", "m", "z"]
    assert got({}, direction=-1) == list(reversed(got({})))
    assert got({}, skip=5, limit=3) == [5, 6, 7]
    # type bracketing: a numeric bound never matches strings, a string bound never numbers
    assert got({"_id": {"$gt": 35}}) == [36, 37, 38, 39, 100]
    assert got({"_id": {"$lt": "n"}}) == ["a", "m"]
    assert got({"_id": {"$gte": 7, "$lt": 9}}) == [7, 7.5, 8]
    assert got({"_id": {"$gte": 7, "$lte": 9}}, direction=-1) == [9, 8, 7.5, 7]
    assert got({"$and": [{"_id": {"$gte": 10, "$lt": 20}}, {"_id": {"$gt": 15}}]}, limit=2) == [16, 17]
    v_of = {n: v for v, n in enumerate(reversed(ids)) if isinstance(n, (int, float))}
    assert got({"_id": {"$gt": 3, "$lt": 30}, "v": {"$lt": 20}}) == [i for i in numbers if 3 < i < 30 and v_of[i] < 20]
    # keyset paging over the whole range sees every document once, in order
    seen, last = [], None
    while True:
        page = got({} if last is None else {"_id": {"$gt": last}}, limit=4)
        if not page or not isinstance(page[-1], (int, float)):
            seen += page
            break
        seen += page
        last = page[-1]
    assert seen[:len(numbers)] == numbers
    # what a partition's "other types" clause needs: $type, $not, $or on _id
    others = got({"_id": {"$not": {"$type": "number"}}})
    assert others[:3] == ["a", "m", "z"] and len(others) == 5
    assert got({"$or": [{"_id": {"$lt": 2}}, {"_id": {"$not": {"$type": "number"}}}]})[:4] == [0, 1, "a", "m"]
    assert db.c.count_documents({"_id": {"$type": "string"}}) == 3
    # the order follows inserts and deletes made after it was first used
    db.c.insert_one({"_id": 8.5})
    db.c.delete_one({"_id": 8})
    assert got({"_id": {"$gte": 7, "$lt": 9}}) == [7, 7.5, 8.5]
    assert db.c.count_documents({}) == len(ids)
    assert db.c.count_documents({"_id": {"$gte": 10}}) == 31


def test_compare_and_swap_of_encrypted_values_on_dotted_and_array_paths(db):
    old, new = uuid.uuid4().bytes, uuid.uuid4().bytes
    docs = [{"_id": i, "ssn": _fle(old, i, 1), "a": [{"b": _fle(old, i)}, {"b": _fle(old, i + 1000)}],
             "n": {"m": {"x": _fle(old, i)}}} for i in range(300)]
    db.c.insert_many(docs)
    ops = [UpdateOne({"_id": d["_id"], "ssn": d["ssn"], "a.1.b": d["a"][1]["b"], "n.m.x": d["n"]["m"]["x"]},
                     {"$set": {"ssn": _fle(new, i, 1), "a.1.b": _fle(new, i), "n.m.x": _fle(new, i)}})
           for i, d in enumerate(docs)]
    db.c.update_one({"_id": 7}, {"$set": {"n.m.x": _fle(old, 9999)}})  # changed meanwhile
    r = db.c.bulk_write(ops, ordered=False)
    assert (r.matched_count, r.modified_count) == (299, 299)
    d = db.c.find_one({"_id": 3})
    assert d["ssn"] == _fle(new, 3, 1) and d["a"][1]["b"] == _fle(new, 3) and d["n"]["m"]["x"] == _fle(new, 3)
    assert d["a"][0]["b"] == _fle(old, 3) and d["ssn"].subtype == 6
    assert db.c.find_one({"_id": 7})["ssn"] == _fle(old, 7, 1)  # the miss wrote nothing
    # the same statements again all miss (a rerun after success)
    assert db.c.bulk_write(ops, ordered=False).matched_count == 0
    # an array index that matches another element's value does not match
    assert db.c.count_documents({"_id": 4, "a.0.b": _fle(old, 1004)}) == 0
    assert db.c.count_documents({"_id": 4, "a.b": _fle(old, 4)}) == 1


def test_validator_collmod_rewrites_encrypt_key_ids(db):
    def schema(key):
        return {"$jsonSchema": {"bsonType": "object", "properties": {"ssn": {"encrypt": {
            "keyId": [Binary(key, 4)], "bsonType": "string",
            "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"}}}}}

    old, new = uuid.uuid4().bytes, uuid.uuid4().bytes
    db.create_collection("c", validator=schema(old))
    db.c.insert_one({"_id": 1, "ssn": _fle(old, 1, 1)})
    db.command("collMod", "c", validator=schema(new))
    info = next(db.list_collections(filter={"name": "c"}))
    assert info["options"]["validator"] == schema(new)
    with pytest.raises(WriteError) as e:
        db.c.insert_one({"_id": 2, "ssn": "plaintext"})
    assert e.value.code == 121
    db.c.update_one({"_id": 1, "ssn": _fle(old, 1, 1)}, {"$set": {"ssn": _fle(new, 1, 1)}})


def test_queryable_encryption_collection_options_are_listed(db):
    key = Binary(uuid.uuid4().bytes, 4)
    fields = {"fields": [{"path": "ssn", "bsonType": "string", "keyId": key, "queries": {"queryType": "equality"}}]}
    db.create_collection("qe", encryptedFields=fields)  # PyMongo also makes the esc/ecoc collections
    infos = {i["name"]: i["options"] for i in db.list_collections()}
    assert infos["qe"]["encryptedFields"] == fields
    clustered = {"v": 2, "key": {"_id": 1}, "name": "_id_", "unique": True}
    assert infos["enxcol_.qe.esc"] == {"clusteredIndex": clustered}
    assert infos["enxcol_.qe.ecoc"] == {"clusteredIndex": clustered}
    assert list(db.list_collections(filter={"options.encryptedFields": {"$exists": True}}))[0]["name"] == "qe"
    with pytest.raises(OperationFailure):
        db.create_collection("bad", clusteredIndex={"key": {"x": 1}, "unique": True})
    with pytest.raises(OperationFailure):
        db.create_collection("bad2", encryptedFields={"fields": [{"path": "a", "keyId": "not a uuid"}]})


def test_rotate_sized_scans_and_updates_are_cheap(db):
    """The shared bottleneck of the rotate benchmark: per found document and per update
    statement at 30,000 documents (numbers printed; bounds generous for a loaded box)."""
    key, new = uuid.uuid4().bytes, uuid.uuid4().bytes
    docs = [{"_id": i, "a": _fle(key, i), "b": _fle(key, i, 1)} for i in range(30000)]
    for s in range(0, len(docs), 5000):
        db.c.insert_many(docs[s:s + 5000], ordered=False)
    started = time.monotonic()
    last, found = -1, 0
    while True:
        page = list(db.c.find({"_id": {"$gt": last}}, sort=[("_id", 1)], limit=1000, batch_size=1000))
        if not page:
            break
        found += len(page)
        last = page[-1]["_id"]
    per_doc = (time.monotonic() - started) / found
    ops = [UpdateOne({"_id": d["_id"], "a": d["a"], "b": d["b"]}, {"$set": {"a": _fle(new, 1), "b": _fle(new, 1, 1)}})
           for d in docs[:5000]]
    started = time.monotonic()
    for s in range(0, len(ops), 1000):
        assert db.c.bulk_write(ops[s:s + 1000], ordered=False).modified_count == 1000
    per_update = (time.monotonic() - started) / len(ops)
    print(f"stand-in at 30,000 docs: {per_doc * 1e6:.0f} us per found document, {per_update * 1e6:.0f} us per update")
    assert found == 30000
    assert per_doc < 200e-6 and per_update < 1000e-6, (per_doc, per_update)
