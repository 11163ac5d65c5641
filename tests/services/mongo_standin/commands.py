"""The command layer: what each database command does, cursors, and the failCommand
fail point. `Engine.execute(conn, db, command)` returns the reply document (or CLOSE to
drop the connection); the wire layer (mongod_standin.py) only moves bytes.

Replies are shaped like mongod 7.0's: {ok: 1.0, ...} or {ok: 0.0, errmsg, code,
codeName}; write commands report per-statement failures under writeErrors with ok 1.
Cursor ids are Int64; find/aggregate first batches default to 101 documents, getMore
batches are bounded only by batchSize and 16 MiB. A command the stand-in does not know
is refused with code 59 CommandNotFound, never answered with a guess.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
import traceback

import bson
from bson import Int64
from bson.raw_bson import RawBSONDocument

from . import query, update as upd
from .cmdlog import CommandLog
from .errors import CommandError, code_name, not_implemented
from .replset import RETRYABLE_CODES, RETRYABLE_WRITES, STATE_CHANGE_CODES, WRITE_COMMANDS, Member
from .sessions import RetryableWrites
from .store import MAX_BSON_OBJECT_SIZE, Collection, Store, check_collection_options, check_names
from .values import MISSING, hkey, is_number, path_values, render, same_bson

MAX_MESSAGE_SIZE = 48_000_000
MAX_WRITE_BATCH = 100_000
MAX_BATCH_BYTES = MAX_BSON_OBJECT_SIZE - 64 * 1024  # room for the reply envelope
DEFAULT_FIRST_BATCH = 101
CURSOR_IDLE_TIMEOUT = 600.0
CLOSE = object()  # execute() result: drop the connection without replying
# Fields any command may carry that the stand-in accepts and ignores.
GENERIC_FIELDS = {"$db", "lsid", "$readPreference", "$clusterTime", "writeConcern", "readConcern",
                  "comment", "maxTimeMS", "apiVersion", "apiStrict", "apiDeprecationErrors", "$audit",
                  "$client", "mayBypassWriteBlocking"}

HELLO = frozenset({"hello", "isMaster", "ismaster"})
SASL = frozenset({"saslStart", "saslContinue"})

VERSION = "7.0.0"
_STARTED = time.time()


class Conn:
    """Per-connection state the commands can see."""

    _ids = iter(range(1, 1 << 31))
    _ids_lock = threading.Lock()

    def __init__(self, peer: str):
        with Conn._ids_lock:
            self.id = next(Conn._ids)
        self.peer = peer
        self.app_name: str | None = None
        self.user: dict | None = None     # {user, db, mechanism} once authenticated
        self.sasl = None                   # an authentication conversation in progress


class Cursor:
    """An open server cursor: a document source, the projection, what is left to send."""

    def __init__(self, ns: str, source, proj: query.Projection | None = None, limit: int = 0, raw_of=None):
        self.id = 0
        self.raw_of = raw_of  # stored documents' BSON bytes, when the collection has them
        self.ns = ns
        self.source = iter(source)
        self.proj = proj
        self.remaining = limit or None
        self.pending: bytes | None = None
        self.exhausted = False
        self.touched = time.monotonic()

    def _next_raw(self) -> bytes | None:
        if self.pending is not None:
            raw, self.pending = self.pending, None
            return raw
        if self.exhausted or self.remaining == 0:
            self.exhausted = True
            return None
        doc = next(self.source, MISSING)
        if doc is MISSING:
            self.exhausted = True
            return None
        raw = None
        if self.proj is not None:
            doc = self.proj.apply(doc)
        elif self.raw_of is not None:
            raw = self.raw_of(doc)
        if self.remaining is not None:
            self.remaining -= 1
        return raw if raw is not None else bson.encode(doc)

    def batch(self, size: int | None) -> list:
        """Up to `size` documents (None: no count limit) within MAX_BATCH_BYTES."""
        out, used = [], 0
        while size is None or len(out) < size:
            raw = self._next_raw()
            if raw is None:
                break
            if out and used + len(raw) > MAX_BATCH_BYTES:
                self.pending = raw
                break
            out.append(RawBSONDocument(raw))
            used += len(raw)
        if self.pending is None and not self.exhausted and size != 0:
            self.pending = self._next_raw()  # look ahead, so an exhausted cursor reports id 0
        self.touched = time.monotonic()
        return out

    @property
    def done(self) -> bool:
        return self.exhausted and self.pending is None


class FailPoint:
    """MongoDB's failCommand fail point (configureFailPoint).

    data: failCommands, closeConnection, errorCode, errorLabels, blockConnection,
    blockTimeMS, writeConcernError, appName as in mongod; plus one stand-in extension,
    closeConnectionAfterCommand: run the command, then drop the connection instead of
    replying (a write that happened but whose acknowledgement was lost)."""

    def __init__(self):
        self.mode = "off"
        self.remaining = 0
        self.skip = 0
        self.probability = 1.0
        self.data: dict = {}
        self.entered = 0
        self.lock = threading.Lock()

    def configure(self, mode, data) -> int:
        with self.lock:
            return self._configure(mode, data)

    def _configure(self, mode, data) -> int:
        before = self.entered
        if mode == "off":
            self.mode = "off"
        elif mode == "alwaysOn":
            self.mode = "on"
        elif isinstance(mode, dict) and "times" in mode:
            self.mode, self.remaining = "times", int(mode["times"])
            if self.remaining <= 0:
                self.mode = "off"
        elif isinstance(mode, dict) and "skip" in mode:
            self.mode, self.skip = "skip", int(mode["skip"])
        elif isinstance(mode, dict) and "activationProbability" in mode:
            p = float(mode["activationProbability"])
            if not 0.0 <= p <= 1.0:
                raise CommandError(2, "activationProbability must be between 0 and 1")
            self.mode, self.probability = "random", p
        else:
            raise CommandError(2, "'mode' must be 'alwaysOn', 'off', or an object with 'times', 'skip' or 'activationProbability'")
        if data is not None:
            if not isinstance(data, dict):
                raise CommandError(14, "'data' must be an object")
            if not isinstance(data.get("failCommands", []), list):
                raise CommandError(14, "'failCommands' must be an array of command names")
            self.data = data
        self.entered = 0
        return before

    def check(self, command: str, conn: Conn) -> dict | None:
        """The fail point's data if it fires for this command, else None."""
        with self.lock:
            return self._check(command, conn)

    def _check(self, command: str, conn: Conn) -> dict | None:
        if self.mode == "off" or command not in self.data.get("failCommands", []):
            return None
        app = self.data.get("appName")
        if app is not None and app != conn.app_name:
            return None
        if self.mode == "times":
            self.remaining -= 1
            if self.remaining <= 0:
                self.mode = "off"
        elif self.mode == "skip":
            if self.skip > 0:
                self.skip -= 1
                return None
        elif self.mode == "random" and random.random() >= self.probability:
            return None
        self.entered += 1
        return self.data


def _int_arg(cmd: dict, field: str, default=None, minimum: int | None = 0):
    v = cmd.get(field)
    if v is None:
        return default
    if not is_number(v) or isinstance(v, bool):
        raise CommandError(14, "BSON field '%s' is the wrong type '%s', expected a number" % (field, type(v).__name__))
    v = int(float(str(v)))
    if minimum is not None and v < minimum:
        raise CommandError(2, "BSON field '%s' value must be >= %d, actual value '%d'" % (field, minimum, v))
    return v


def _collection_name(cmd: dict, name: str) -> str:
    coll = cmd[name]
    if not isinstance(coll, str):
        raise CommandError(73, "collection name has invalid type %s" % type(coll).__name__)
    return coll


def _check_collation(cmd: dict) -> None:
    c = cmd.get("collation")
    if c is not None and c != {"locale": "simple"}:
        raise not_implemented("collations")


def _statements(cmd: dict, field: str) -> list:
    stmts = cmd.get(field)
    if not isinstance(stmts, list):
        raise CommandError(9, "BSON field '%s' is missing but a required field" % field)
    if len(stmts) > MAX_WRITE_BATCH:
        raise CommandError(2, "Write batch sizes must be between 1 and %d. Got %d operations." % (MAX_WRITE_BATCH, len(stmts)))
    return stmts


class Engine:
    """The stand-in's state: the store, open cursors, the fail point, the command record,
    and (when configured) replica-set membership and authentication."""

    def __init__(self, verbose: bool = False, member: Member | None = None, auth=None):
        self.store = Store()
        self.cursors: dict[int, Cursor] = {}
        self.failpoint = FailPoint()
        self.verbose = verbose
        self.member = member              # None: a standalone mongod
        self.auth = auth                  # None: no authentication (auth.Authenticator)
        self.retryable = RetryableWrites()
        self.log = CommandLog()
        self.handlers = {
            "hello": self.cmd_hello, "isMaster": self.cmd_hello, "ismaster": self.cmd_hello,
            "ping": self.cmd_ping, "buildInfo": self.cmd_build_info, "buildinfo": self.cmd_build_info,
            "endSessions": self.cmd_ping, "configureFailPoint": self.cmd_configure_fail_point,
            "insert": self.cmd_insert, "update": self.cmd_update, "delete": self.cmd_delete,
            "find": self.cmd_find, "getMore": self.cmd_get_more, "killCursors": self.cmd_kill_cursors,
            "findAndModify": self.cmd_find_and_modify, "findandmodify": self.cmd_find_and_modify,
            "aggregate": self.cmd_aggregate, "count": self.cmd_count, "distinct": self.cmd_distinct,
            "listCollections": self.cmd_list_collections, "listDatabases": self.cmd_list_databases,
            "create": self.cmd_create, "drop": self.cmd_drop, "dropDatabase": self.cmd_drop_database,
            "createIndexes": self.cmd_create_indexes, "listIndexes": self.cmd_list_indexes,
            "dropIndexes": self.cmd_drop_indexes, "deleteIndexes": self.cmd_drop_indexes,
            "collMod": self.cmd_coll_mod,
            "ksCommandLog": self.cmd_ks_command_log, "ksStepDown": self.cmd_ks_step_down,
        }
        if auth is not None:
            self.handlers.update(saslStart=auth.sasl_start, saslContinue=auth.sasl_continue)

    # --- dispatch -------------------------------------------------------------------

    def execute(self, conn: Conn, db: str, cmd: dict):
        """Run one command; the reply document, or CLOSE."""
        if "$query" in cmd and isinstance(cmd["$query"], dict):  # legacy OP_QUERY wrapping
            cmd = cmd["$query"]
        if not cmd:
            return CommandError(59, "no such command: ''").reply()
        name = next(iter(cmd))
        rec = self.log.record(conn, db, name, cmd) if name != "ksCommandLog" else None
        reply = self._execute(conn, db, name, cmd)
        if rec is not None:
            self.log.finish(rec, reply)
        if self.verbose and reply is not CLOSE:
            print("conn%d %s.%s -> ok=%s" % (conn.id, db, name, reply.get("ok")), flush=True)
        return reply

    def _execute(self, conn: Conn, db: str, name: str, cmd: dict):
        if self.auth is not None and conn.user is None and name not in self.auth.UNAUTHENTICATED:
            return CommandError(13, "command %s requires authentication" % name).reply()
        member = self.member
        txn = cmd.get("txnNumber")
        fired = self.failpoint.check(name, conn) if name != "configureFailPoint" else None
        if fired is not None:
            if fired.get("blockConnection"):
                time.sleep(float(fired.get("blockTimeMS", 0)) / 1000.0)
            if fired.get("closeConnection") and not fired.get("closeConnectionAfterCommand"):
                print("failCommand: closing connection %d on %s" % (conn.id, name), flush=True)
                return CLOSE
            if "errorCode" in fired:
                code = int(fired["errorCode"])
                reply = {"ok": 0.0, "errmsg": "Failing command via 'failCommand' failpoint", "code": code, "codeName": code_name(code)}
                labels = fired.get("errorLabels")
                if labels is None and member is not None and txn is not None and name in RETRYABLE_WRITES and code in RETRYABLE_CODES:
                    labels = ["RetryableWriteError"]  # as mongod labels a retryable write's error
                if labels is not None:
                    reply["errorLabels"] = labels
                if member is not None:
                    if code in STATE_CHANGE_CODES:
                        reply["topologyVersion"] = member.topology_version()
                    member.gossip(reply)
                return reply
        handler = self.handlers.get(name)
        if handler is None:
            return CommandError(59, "no such command: '%s'" % name).reply()
        stored = None
        try:
            if "startTransaction" in cmd or "autocommit" in cmd:
                raise not_implemented("multi-document transactions (startTransaction/autocommit)")
            if txn is not None:
                if member is None:
                    raise CommandError(20, "Transaction numbers are only allowed on a replica set member or mongos")
                if name not in RETRYABLE_WRITES:
                    raise CommandError(50768, "txnNumber may only be provided for multi-document transactions and "
                                       "retryable write commands. autocommit:false was not provided, and %s is not a "
                                       "retryable write command." % name)
            if member is not None:
                if member.armed is not None:
                    member.trigger(name)
                refused = member.refuse(name, cmd)
                if refused is not None:
                    raise refused
            if not (db == "$external" and name in SASL):
                check_names(db)
            if name in HELLO:
                reply = handler(conn, db, cmd)  # may wait (awaitable hello): outside the lock
            else:
                with self.store.lock:
                    if txn is not None:
                        sid = RetryableWrites.key(cmd)
                        stored = self.retryable.lookup(sid, int(txn))
                    if stored is not None:
                        reply = dict(stored)
                    else:
                        reply = handler(conn, db, cmd)
                        if member is not None and name in WRITE_COMMANDS:
                            member.tick()
                        if txn is not None and reply.get("ok"):
                            self.retryable.store(sid, int(txn), dict(reply))
        except CommandError as e:
            reply = e.reply()
            if member is not None and txn is not None and e.code in RETRYABLE_CODES:
                reply["errorLabels"] = ["RetryableWriteError"]
        except Exception as e:  # a bug in the stand-in: say so, loudly
            traceback.print_exc()
            reply = {"ok": 0.0, "errmsg": "mongod stand-in internal error in %s: %r" % (name, e), "code": 1, "codeName": "InternalError"}
        if fired is not None and "writeConcernError" in fired and reply.get("ok"):
            # the write was applied; its durability is not acknowledged
            wce = fired["writeConcernError"]
            wce_code = wce.get("code") if isinstance(wce, dict) else None
            if member is not None and wce_code in STATE_CHANGE_CODES and "topologyVersion" not in wce:
                wce = {**wce, "topologyVersion": member.topology_version()}  # as mongod 4.4+
            reply["writeConcernError"] = wce
            if (member is not None and txn is not None and "errorLabels" not in fired and wce_code in RETRYABLE_CODES):
                reply["errorLabels"] = ["RetryableWriteError"]
            elif "errorLabels" in fired:
                reply["errorLabels"] = fired["errorLabels"]
        if member is not None:
            member.gossip(reply)
        if fired is not None and fired.get("closeConnectionAfterCommand"):
            # stand-in extension: the command took effect, its reply is lost
            print("failCommand: closing connection %d after %s ran" % (conn.id, name), flush=True)
            return CLOSE
        return reply

    # --- the stand-in's own admin commands ----------------------------------------------

    def cmd_ks_command_log(self, conn, db, cmd):
        if db != "admin":
            raise CommandError(13, "ksCommandLog may only be run against the admin database.")
        return self.log.command(cmd)

    def cmd_ks_step_down(self, conn, db, cmd):
        if db != "admin":
            raise CommandError(13, "ksStepDown may only be run against the admin database.")
        if self.member is None:
            raise CommandError(76, "ksStepDown: not running with --replSet")
        hellos = _int_arg(cmd, "hellos", 1)
        at = cmd.get("atCommand")
        if at is not None and not isinstance(at, str):
            raise CommandError(14, "ksStepDown: 'atCommand' must be a command name")
        state = self.member.arm(at, hellos) if at else self.member.step_down(hellos)
        return {**state, "ok": 1.0}

    # --- cursors --------------------------------------------------------------------

    def _open_cursor(self, cursor: Cursor, first_batch_size: int | None, single_batch: bool = False) -> dict:
        batch = cursor.batch(first_batch_size)
        if cursor.done or single_batch:
            cid = 0
        else:
            self._reap_cursors()
            cid = random.randint(1, (1 << 62))
            while cid in self.cursors:
                cid = random.randint(1, (1 << 62))
            cursor.id = cid
            self.cursors[cid] = cursor
        return {"cursor": {"firstBatch": batch, "id": Int64(cid), "ns": cursor.ns}, "ok": 1.0}

    def _reap_cursors(self) -> None:
        now = time.monotonic()
        for cid in [c for c, cur in self.cursors.items() if now - cur.touched > CURSOR_IDLE_TIMEOUT]:
            del self.cursors[cid]

    def _cursor_batch_size(self, cmd: dict, options_field: str | None = None) -> int:
        src = cmd.get(options_field, {}) if options_field else cmd
        if options_field and not isinstance(src, dict):
            raise CommandError(14, "'%s' must be an object" % options_field)
        size = _int_arg(src, "batchSize", None)
        return DEFAULT_FIRST_BATCH if size is None else size

    def cmd_get_more(self, conn, db, cmd):
        cid = cmd["getMore"]
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise CommandError(14, "Field 'getMore' must be of type long in: %s" % render(cmd))
        coll = cmd.get("collection")
        if not isinstance(coll, str):
            raise CommandError(14, "Field 'collection' must be of type string in: %s" % render(cmd))
        cursor = self.cursors.get(int(cid))
        if cursor is None:
            raise CommandError(43, "cursor id %d not found" % cid)
        ns = "%s.%s" % (db, coll)
        if cursor.ns != ns:
            raise CommandError(13, "Requested getMore on namespace '%s', but cursor belongs to a different namespace %s" % (ns, cursor.ns))
        size = _int_arg(cmd, "batchSize", None, minimum=0) or None
        batch = cursor.batch(size)
        if cursor.done:
            del self.cursors[int(cid)]
            cid = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cid), "ns": cursor.ns}, "ok": 1.0}

    def cmd_kill_cursors(self, conn, db, cmd):
        ids = cmd.get("cursors")
        if not isinstance(ids, list):
            raise CommandError(14, "Field 'cursors' must be of type array")
        killed, missing = [], []
        for cid in ids:
            if self.cursors.pop(int(cid), None) is not None:
                killed.append(Int64(cid))
            else:
                missing.append(Int64(cid))
        return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0}

    # --- handshake and server commands --------------------------------------------------

    def cmd_hello(self, conn, db, cmd):
        client = cmd.get("client")
        if isinstance(client, dict):
            app = client.get("application")
            if isinstance(app, dict) and isinstance(app.get("name"), str):
                conn.app_name = app["name"]
        name = next(iter(cmd))
        member = self.member
        if member is not None:
            member.await_change(cmd)
        reply = {"helloOk": True, "isWritablePrimary": True}
        if member is not None:
            reply.update(member.hello_fields())
        reply.update({
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": MAX_WRITE_BATCH,
            "localTime": datetime.datetime.now(datetime.timezone.utc),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": conn.id,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "readOnly": False,
        })
        if self.auth is not None:
            reply.update(self.auth.hello_fields(conn, cmd))
        reply["ok"] = 1.0
        if name != "hello":
            reply = {"ismaster": reply["isWritablePrimary"], **{k: v for k, v in reply.items() if k != "isWritablePrimary"}}
        return reply

    def cmd_ping(self, conn, db, cmd):
        return {"ok": 1.0}

    def cmd_build_info(self, conn, db, cmd):
        return {"version": VERSION, "gitVersion": "mongod-standin", "versionArray": [7, 0, 0, 0],
                "bits": 64, "debug": False, "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
                "storageEngines": ["inMemory"], "modules": [], "ok": 1.0}

    def cmd_configure_fail_point(self, conn, db, cmd):
        if db != "admin":
            raise CommandError(13, "configureFailPoint may only be run against the admin database.")
        if cmd["configureFailPoint"] != "failCommand":
            raise CommandError(2, "mongod stand-in implements only the failCommand fail point, not %r" % cmd["configureFailPoint"])
        if "mode" not in cmd:
            raise CommandError(9, "Missing required 'mode' field for configureFailPoint")
        count = self.failpoint.configure(cmd["mode"], cmd.get("data"))
        print("configureFailPoint failCommand mode=%r data=%r" % (cmd["mode"], cmd.get("data")), flush=True)
        return {"count": count, "ok": 1.0}

    # --- reads ----------------------------------------------------------------------

    def cmd_find(self, conn, db, cmd):
        name = _collection_name(cmd, "find")
        check_names(db, name)
        _check_collation(cmd)
        flt = query.check_filter(cmd.get("filter"))
        proj = query.projection(cmd.get("projection"))
        sort = query.check_sort(cmd.get("sort"))
        skip = _int_arg(cmd, "skip", 0)
        limit = _int_arg(cmd, "limit", 0, minimum=None)
        single = bool(cmd.get("singleBatch"))
        if limit < 0:
            limit, single = -limit, True
        batch_size = self._cursor_batch_size(cmd)
        if "let" in cmd:
            raise not_implemented("'let' variables")
        coll = self.store.get(db, name)
        if coll is None:
            source = iter(())
        elif sort and not (len(sort) == 1 and sort[0][0] == "_id" and not coll.id_lookup(flt)):
            source = iter(coll.find_all(flt, sort)[skip:])
        else:
            # unsorted, or sorted by _id alone: an _id index scan, lazy like mongod's
            source = coll.scan_by_id(flt, sort[0][1]) if sort else coll.scan(flt)
            for _ in range(skip):
                if next(source, MISSING) is MISSING:
                    break
        first = batch_size if not limit else min(batch_size, limit)
        raw_of = coll.raw_of if coll is not None else None
        return self._open_cursor(Cursor("%s.%s" % (db, name), source, proj, limit, raw_of), first, single)

    def cmd_count(self, conn, db, cmd):
        name = _collection_name(cmd, "count")
        _check_collation(cmd)
        flt = query.check_filter(cmd.get("query"), "query")
        skip = _int_arg(cmd, "skip", 0)
        limit = abs(_int_arg(cmd, "limit", 0, minimum=None))
        coll = self.store.get(db, name)
        n = 0 if coll is None else sum(1 for _ in coll.scan(flt))
        n = max(0, n - skip)
        if limit:
            n = min(n, limit)
        return {"n": n, "ok": 1.0}

    def cmd_distinct(self, conn, db, cmd):
        name = _collection_name(cmd, "distinct")
        _check_collation(cmd)
        key = cmd.get("key")
        if not isinstance(key, str):
            raise CommandError(14, "BSON field 'distinct.key' is missing or not a string")
        flt = query.check_filter(cmd.get("query"), "query")
        coll = self.store.get(db, name)
        values, seen = [], set()
        for doc in coll.scan(flt) if coll else ():
            for v in path_values(doc, key.split("."), expand_last=True):
                if isinstance(v, list) and not v:
                    continue
                k = hkey(v)
                if k not in seen:
                    seen.add(k)
                    values.append(v)
        return {"values": values, "ok": 1.0}

    def cmd_aggregate(self, conn, db, cmd):
        target = cmd["aggregate"]
        if not isinstance(target, str):
            raise not_implemented("database-level aggregate ({aggregate: 1})")
        _check_collation(cmd)
        if cmd.get("explain"):
            raise not_implemented("aggregate explain")
        if "let" in cmd:
            raise not_implemented("'let' variables")
        if "cursor" not in cmd:
            raise CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument")
        pipeline = cmd.get("pipeline")
        batch_size = self._cursor_batch_size(cmd, "cursor")
        coll = self.store.get(db, target)
        docs = []
        if coll is not None:
            if isinstance(pipeline, list) and pipeline and isinstance(pipeline[0], dict) and "$match" in pipeline[0]:
                docs = list(coll.scan(query.check_filter(pipeline[0]["$match"], "$match")))
                pipeline = pipeline[1:]
            else:
                docs = list(coll.docs.values())
        result = query.run_pipeline(docs, pipeline)
        return self._open_cursor(Cursor("%s.%s" % (db, target), result), batch_size)

    # --- writes ---------------------------------------------------------------------

    @staticmethod
    def _write_reply(n: int, errors: list, **extra) -> dict:
        reply = {"n": n, **extra}
        if errors:
            reply["writeErrors"] = errors
        reply["ok"] = 1.0
        return reply

    def cmd_insert(self, conn, db, cmd):
        name = _collection_name(cmd, "insert")
        docs = _statements(cmd, "documents")
        ordered = cmd.get("ordered", True)
        bypass = bool(cmd.get("bypassDocumentValidation"))
        coll, _ = self.store.get_or_create(db, name)
        n, errors = 0, []
        for i, doc in enumerate(docs):
            try:
                if not isinstance(doc, dict):
                    raise CommandError(14, "document to insert must be an object")
                coll.insert(doc, bypass)
                n += 1
            except CommandError as e:
                errors.append(e.write_error(i))
                if ordered:
                    break
        return self._write_reply(n, errors)

    def _update_one_statement(self, coll: Collection, stmt: dict, bypass: bool) -> tuple[int, int, object]:
        """(matched, modified, upserted _id or MISSING) for one update statement."""
        if not isinstance(stmt, dict) or "q" not in stmt or "u" not in stmt:
            raise CommandError(9, "update statements need 'q' and 'u'")
        _check_collation(stmt)
        flt = query.check_filter(stmt["q"], "q")
        u = stmt["u"]
        multi = bool(stmt.get("multi"))
        array_filters = stmt.get("arrayFilters")
        if array_filters is not None and not isinstance(array_filters, list):
            raise CommandError(14, "arrayFilters must be an array")
        if multi and upd.kind(u) == "replacement":
            raise CommandError(9, "multi update is not supported for replacement-style update")
        sort = stmt.get("sort")
        matched = modified = 0
        targets = coll.find_all(flt, sort) if sort else coll.scan(flt)
        for old in targets:
            new = upd.apply_update(old, u, flt, array_filters)
            matched += 1
            if not same_bson(new, old):
                coll.replace(old, new, bypass)
                modified += 1
            if not multi:
                break
        if matched == 0 and stmt.get("upsert"):
            doc = coll.insert(upd.upsert_document(flt, u, array_filters), bypass)
            return 1, 0, doc["_id"]
        return matched, modified, MISSING

    def cmd_update(self, conn, db, cmd):
        name = _collection_name(cmd, "update")
        stmts = _statements(cmd, "updates")
        ordered = cmd.get("ordered", True)
        bypass = bool(cmd.get("bypassDocumentValidation"))
        if "let" in cmd:
            raise not_implemented("'let' variables")
        coll, _ = self.store.get_or_create(db, name)
        n = n_modified = 0
        upserted, errors = [], []
        for i, stmt in enumerate(stmts):
            try:
                matched, modified, up_id = self._update_one_statement(coll, stmt, bypass)
            except CommandError as e:
                errors.append(e.write_error(i))
                if ordered:
                    break
                continue
            n += matched
            n_modified += modified
            if up_id is not MISSING:
                upserted.append({"index": i, "_id": up_id})
        extra = {"nModified": n_modified}
        if upserted:
            extra["upserted"] = upserted
        return self._write_reply(n, errors, **extra)

    def cmd_delete(self, conn, db, cmd):
        name = _collection_name(cmd, "delete")
        stmts = _statements(cmd, "deletes")
        ordered = cmd.get("ordered", True)
        coll = self.store.get(db, name)
        n, errors = 0, []
        for i, stmt in enumerate(stmts):
            try:
                if not isinstance(stmt, dict) or "q" not in stmt or "limit" not in stmt:
                    raise CommandError(9, "delete statements need 'q' and 'limit'")
                _check_collation(stmt)
                flt = query.check_filter(stmt["q"], "q")
                limit = _int_arg(stmt, "limit", 0)
                if limit not in (0, 1):
                    raise CommandError(9, "The limit field in delete objects must be 0 or 1. Got %d" % limit)
                if coll is None:
                    continue
                if limit == 0:
                    victims = list(coll.scan(flt))
                else:
                    first = next(coll.scan(flt), None)
                    victims = [] if first is None else [first]
                for doc in victims:
                    coll.remove(doc)
                    n += 1
            except CommandError as e:
                errors.append(e.write_error(i))
                if ordered:
                    break
        return self._write_reply(n, errors)

    def cmd_find_and_modify(self, conn, db, cmd):
        name = _collection_name(cmd, next(iter(cmd)))
        _check_collation(cmd)
        flt = query.check_filter(cmd.get("query"), "query")
        sort = cmd.get("sort")
        remove = bool(cmd.get("remove"))
        u = cmd.get("update")
        want_new = bool(cmd.get("new"))
        upsert = bool(cmd.get("upsert"))
        bypass = bool(cmd.get("bypassDocumentValidation"))
        array_filters = cmd.get("arrayFilters")
        proj = query.projection(cmd.get("fields"))
        if remove == (u is not None):
            raise CommandError(9, "Either an update or remove=true must be specified")
        if remove and (want_new or upsert):
            raise CommandError(9, "Cannot specify both an update and remove=true" if want_new else "Cannot specify both upsert=true and remove=true")
        if "let" in cmd:
            raise not_implemented("'let' variables")
        coll, _ = self.store.get_or_create(db, name) if (upsert or self.store.get(db, name)) else (None, False)
        old = None
        if coll is not None:
            old = next(iter(coll.find_all(flt, sort)), None) if sort else next(coll.scan(flt), None)
        last = {"n": 0, "updatedExisting": False}
        value = None
        if old is not None and remove:
            coll.remove(old)
            last = {"n": 1}
            value = old
        elif old is not None:
            new = upd.apply_update(old, u, flt, array_filters)
            if not same_bson(new, old):
                coll.replace(old, new, bypass)
            last = {"n": 1, "updatedExisting": True}
            value = new if want_new else old
        elif upsert:
            doc = coll.insert(upd.upsert_document(flt, u, array_filters), bypass)
            last = {"n": 1, "updatedExisting": False, "upserted": doc["_id"]}
            value = doc if want_new else None
        elif remove:
            last = {"n": 0}
        if value is not None and proj is not None:
            value = proj.apply(value)
        return {"lastErrorObject": last, "value": value, "ok": 1.0}

    # --- collections and databases ----------------------------------------------------

    def cmd_create(self, conn, db, cmd):
        name = _collection_name(cmd, "create")
        opts = {k: v for k, v in cmd.items() if k != "create" and k not in GENERIC_FIELDS}
        self.store.create(db, name, opts)
        return {"ok": 1.0}

    def cmd_coll_mod(self, conn, db, cmd):
        name = _collection_name(cmd, "collMod")
        coll = self.store.get(db, name)
        if coll is None:
            raise CommandError(26, "ns does not exist: %s.%s" % (db, name))
        changes = {k: v for k, v in cmd.items() if k in ("validator", "validationLevel", "validationAction")}
        others = [k for k in cmd if k not in changes and k != "collMod" and k not in GENERIC_FIELDS]
        if others:
            raise not_implemented("collMod option '%s'" % others[0])
        merged = {**coll.options, **changes}
        if merged.get("validator") == {}:
            merged.pop("validator")
        coll.options = check_collection_options(merged)
        return {"ok": 1.0}

    def cmd_drop(self, conn, db, cmd):
        name = _collection_name(cmd, "drop")
        coll = self.store.drop(db, name)
        if coll is None:
            return {"ok": 1.0}
        return {"nIndexesWas": len(coll.indexes), "ns": coll.ns, "ok": 1.0}

    def cmd_drop_database(self, conn, db, cmd):
        self.store.drop_db(db)
        return {"dropped": db, "ok": 1.0}

    def cmd_list_collections(self, conn, db, cmd):
        flt = query.check_filter(cmd.get("filter"))
        name_only = bool(cmd.get("nameOnly"))
        batch_size = self._cursor_batch_size(cmd, "cursor")
        out = []
        for coll in self.store.dbs.get(db, {}).values():
            full = coll.listing()
            if query.matches(flt, full):
                out.append(coll.listing(name_only))
        return self._open_cursor(Cursor("%s.$cmd.listCollections" % db, out), batch_size)

    def cmd_list_databases(self, conn, db, cmd):
        if db != "admin":
            raise CommandError(13, "listDatabases may only be run against the admin database.")
        flt = query.check_filter(cmd.get("filter"))
        name_only = bool(cmd.get("nameOnly"))
        out, total = [], 0
        for name, colls in self.store.dbs.items():
            if not colls:
                continue
            size = sum(len(bson.encode(d)) for c in colls.values() for d in c.docs.values()) if not name_only else 0
            entry = {"name": name, "sizeOnDisk": Int64(size), "empty": size == 0}
            if query.matches(flt, entry):
                out.append({"name": name} if name_only else entry)
                total += size
        reply = {"databases": out}
        if not name_only:
            reply.update(totalSize=Int64(total), totalSizeMb=Int64(total // (1024 * 1024)))
        reply["ok"] = 1.0
        return reply

    # --- indexes --------------------------------------------------------------------

    def cmd_create_indexes(self, conn, db, cmd):
        name = _collection_name(cmd, "createIndexes")
        specs = cmd.get("indexes")
        if not isinstance(specs, list) or not specs:
            raise CommandError(2, "Must specify at least one index to create")
        coll, created = self.store.get_or_create(db, name)
        before = len(coll.indexes)
        added = 0
        for spec in specs:
            if coll.add_index(spec):
                added += 1
        reply = {"numIndexesBefore": before, "numIndexesAfter": len(coll.indexes), "createdCollectionAutomatically": created}
        if not added:
            reply["note"] = "all indexes already exist"
        reply["ok"] = 1.0
        return reply

    def cmd_list_indexes(self, conn, db, cmd):
        name = _collection_name(cmd, "listIndexes")
        coll = self.store.get(db, name)
        if coll is None:
            raise CommandError(26, "ns does not exist: %s.%s" % (db, name))
        batch_size = self._cursor_batch_size(cmd, "cursor")
        specs = [dict(idx.spec) for idx in coll.indexes.values()]
        return self._open_cursor(Cursor("%s.%s" % (db, name), specs), batch_size)

    def cmd_drop_indexes(self, conn, db, cmd):
        name = _collection_name(cmd, next(iter(cmd)))
        coll = self.store.get(db, name)
        if coll is None:
            raise CommandError(26, "ns not found %s.%s" % (db, name))
        which = cmd.get("index")
        was = len(coll.indexes)
        if which == "*":
            for n in [n for n in coll.indexes if n != "_id_"]:
                del coll.indexes[n]
            return {"nIndexesWas": was, "ok": 1.0}
        if isinstance(which, str):
            names = [which]
        elif isinstance(which, list) and all(isinstance(n, str) for n in which):
            names = which
        elif isinstance(which, dict):
            names = [n for n, idx in coll.indexes.items() if list(idx.spec["key"].items()) == list(which.items())]
            if not names:
                raise CommandError(27, "can't find index with key: %s" % render(which))
        else:
            raise CommandError(14, "dropIndexes 'index' must be a string, an array of strings or an object")
        for n in names:
            if n == "_id_":
                raise CommandError(72, "cannot drop _id index")
            if n not in coll.indexes:
                raise CommandError(27, "index not found with name [%s]" % n)
        for n in names:
            del coll.indexes[n]
        return {"nIndexesWas": was, "ok": 1.0}

