"""Replica-set membership: what makes the stand-in a one-member replica set.

Real deployments (Atlas, self-managed) are replica sets, and drivers behave differently
against one: they discover the set from `hello` (setName, hosts, primary, me), send
retryable writes (`txnNumber`), gossip `$clusterTime`, stream awaitable `hello`s
(topologyVersion + maxAwaitTimeMS), and react to a primary stepping down. This module
holds that state; commands.py consults it.

Failover is a knob, never a timer: `step_down(hellos=H)` makes the member secondary for
its next H `hello` replies (whoever asks: handshakes, monitors, RTT probes); then it is
elected again with a higher term (a new electionId) and a new topologyVersion. While
secondary it refuses writes with NotWritablePrimary (10107) and primary reads with
NotPrimaryNoSecondaryOk (13435), as mongod does. `arm(command, hellos=H)` steps down
when the next such command arrives, before it runs, so that command is refused: a test
can make "the primary steps down under this write" happen without racing the driver's
monitor. Awaitable hellos wait for a topology change (or maxAwaitTimeMS), as mongod's
do, so a streaming monitor never spins.
"""

from __future__ import annotations

import datetime
import threading
import time

from bson import Int64, ObjectId, Timestamp

from .errors import CommandError

# Commands mongod refuses on a secondary (kNever) and the read commands it serves only
# with a non-primary read preference (kOptIn); everything else (hello, ping, buildInfo,
# endSessions, getMore, killCursors, the stand-in's knobs, ...) runs on any member.
WRITE_COMMANDS = frozenset({
    "insert", "update", "delete", "findAndModify", "findandmodify", "create", "drop",
    "dropDatabase", "createIndexes", "dropIndexes", "deleteIndexes", "collMod"})
READ_COMMANDS = frozenset({
    "find", "aggregate", "count", "distinct", "listCollections", "listIndexes", "listDatabases"})
# Commands a txnNumber makes retryable (outside a transaction).
RETRYABLE_WRITES = frozenset({"insert", "update", "delete", "findAndModify", "findandmodify"})
# Error codes mongod labels RetryableWriteError on a retryable write (and drivers retry).
RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
# "not primary" and shutdown errors: mongod 4.4+ attaches its topologyVersion to them, so
# a driver can tell an error older than what it already knows (and ignore it).
STATE_CHANGE_CODES = frozenset({91, 189, 10058, 10107, 11600, 11602, 13435, 13436})


class Member:
    """One replica-set member's view: name, role, term, topology version, clock."""

    def __init__(self, set_name: str, me: str):
        self.set_name = set_name
        self.me = me
        self.process_id = ObjectId()
        self.counter = 0          # topologyVersion.counter
        self.term = 1             # election term: electionId and opTime.t
        self.primary = True
        self.hellos_left = 0      # while secondary: hello replies still to give as one
        self.armed: tuple[str, int] | None = None  # (command, hellos): step down when it arrives
        self.changed = threading.Condition()
        self._clock_secs = int(time.time())
        self._clock_inc = 0
        self.last_write = self.cluster_time()

    # --- clock ------------------------------------------------------------------------

    def cluster_time(self) -> Timestamp:
        return Timestamp(self._clock_secs, self._clock_inc)

    def tick(self) -> Timestamp:
        """Advance the clock for a write (called under the store lock)."""
        now = int(time.time())
        if now > self._clock_secs:
            self._clock_secs, self._clock_inc = now, 1
        else:
            self._clock_inc += 1
        self.last_write = Timestamp(self._clock_secs, self._clock_inc)
        return self.last_write

    def gossip(self, reply: dict) -> None:
        """$clusterTime and operationTime, as every replica-set reply carries."""
        ts = self.cluster_time()
        reply["$clusterTime"] = {"clusterTime": ts, "signature": {"hash": b"\x00" * 20, "keyId": Int64(0)}}
        reply["operationTime"] = ts

    # --- role ---------------------------------------------------------------------------

    def topology_version(self) -> dict:
        return {"processId": self.process_id, "counter": Int64(self.counter)}

    def election_id(self) -> ObjectId:
        return ObjectId("7fffffff%016x" % self.term)  # mongod's form: max timestamp + term

    def step_down(self, hellos: int) -> dict:
        """Secondary for the next `hellos` hello replies; 0 is an immediate re-election
        that also disarms a step-down armed on a command (a test's reset)."""
        with self.changed:
            if hellos <= 0:
                self.armed = None
            self._step_down(hellos)
            return self.state()

    def arm(self, command: str, hellos: int) -> dict:
        with self.changed:
            self.armed = (command, hellos)
            return self.state()

    def trigger(self, name: str) -> None:
        """Step down now if armed for this command (called before it runs)."""
        with self.changed:
            if self.armed is not None and self.armed[0] == name:
                hellos = self.armed[1]
                self.armed = None
                self._step_down(hellos)

    def _step_down(self, hellos: int) -> None:
        self.primary = False
        self.hellos_left = hellos
        self.counter += 1
        print("replset %s: stepped down (secondary for %d hellos)" % (self.set_name, hellos), flush=True)
        self._maybe_elected()
        self.changed.notify_all()

    def state(self) -> dict:
        return {"setName": self.set_name, "primary": self.primary, "term": Int64(self.term),
                "electionId": self.election_id(), "topologyVersion": self.topology_version(),
                "hellosLeft": max(0, self.hellos_left), "armed": self.armed[0] if self.armed else None}

    def _maybe_elected(self) -> None:
        if not self.primary and self.hellos_left <= 0:
            self.primary = True
            self.term += 1
            self.counter += 1
            print("replset %s: primary again, term %d" % (self.set_name, self.term), flush=True)
            self.changed.notify_all()

    def refuse(self, name: str, cmd: dict) -> CommandError | None:
        """The error a secondary gives this command, or None (primary, or allowed)."""
        if self.primary:
            return None
        if name in WRITE_COMMANDS:
            err = CommandError(10107, "not primary")
        elif name in READ_COMMANDS and not _secondary_ok(cmd):
            err = CommandError(13435, "not primary and secondaryOk=false")
        else:
            return None
        err.extra["topologyVersion"] = self.topology_version()
        return err

    # --- hello ----------------------------------------------------------------------------

    def await_change(self, cmd: dict) -> None:
        """Hold an awaitable hello until the topology changes or maxAwaitTimeMS passes."""
        tv, max_ms = cmd.get("topologyVersion"), cmd.get("maxAwaitTimeMS")
        if not isinstance(tv, dict) or max_ms is None:
            return
        if tv.get("processId") != self.process_id or int(tv.get("counter", -1)) != self.counter:
            return  # the client's view is stale: answer at once
        with self.changed:
            self.changed.wait_for(lambda: self.counter != int(tv["counter"]), float(max_ms) / 1000.0)

    def hello_fields(self) -> dict:
        """The replica-set fields of a hello reply (counts a secondary's hello)."""
        with self.changed:
            primary = self.primary
            fields = {
                "topologyVersion": self.topology_version(),
                "hosts": [self.me],
                "setName": self.set_name,
                "setVersion": 1,
                "isWritablePrimary": primary,
                "secondary": not primary,
            }
            if primary:
                fields["primary"] = self.me
            fields["me"] = self.me
            if primary:
                fields["electionId"] = self.election_id()
            if not primary:
                self.hellos_left -= 1
                self._maybe_elected()
        op = {"ts": self.last_write, "t": Int64(self.term)}
        when = datetime.datetime.fromtimestamp(self.last_write.time, datetime.timezone.utc)
        fields["lastWrite"] = {"opTime": op, "lastWriteDate": when, "majorityOpTime": op, "majorityWriteDate": when}
        return fields


def _secondary_ok(cmd: dict) -> bool:
    rp = cmd.get("$readPreference")
    return isinstance(rp, dict) and rp.get("mode", "primary") != "primary"
