"""MongoDB-shaped errors: a numeric code, its codeName and a message.

`CommandError` fails the whole command ({ok: 0, errmsg, code, codeName}); handlers of
write commands catch it per statement and report it under writeErrors instead, as
mongod does.
"""

from __future__ import annotations

CODE_NAMES = {
    1: "InternalError",
    2: "BadValue",
    9: "FailedToParse",
    13: "Unauthorized",
    18: "AuthenticationFailed",
    14: "TypeMismatch",
    20: "IllegalOperation",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    28: "PathNotViable",
    40: "ConflictingUpdateOperators",
    43: "CursorNotFound",
    48: "NamespaceExists",
    59: "CommandNotFound",
    64: "WriteConcernFailed",
    66: "ImmutableField",
    67: "CannotCreateIndex",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    85: "IndexOptionsConflict",
    76: "NoReplicationEnabled",
    86: "IndexKeySpecsConflict",
    91: "ShutdownInProgress",
    121: "DocumentValidationFailure",
    225: "TransactionTooOld",
    238: "NotImplemented",
    10334: "BSONObjectTooLarge",
    11000: "DuplicateKey",
    11600: "InterruptedAtShutdown",
    50: "MaxTimeMSExpired",
    89: "NetworkTimeout",
    6: "HostUnreachable",
    7: "HostNotFound",
    189: "PrimarySteppedDown",
    262: "ExceededTimeLimit",
    10107: "NotWritablePrimary",
    13435: "NotPrimaryNoSecondaryOk",
    13436: "NotPrimaryOrSecondary",
    11602: "InterruptedDueToReplStateChange",
}


def code_name(code: int) -> str:
    return CODE_NAMES.get(code, "Location%d" % code)


class CommandError(Exception):
    """A failed command or write statement, with extra reply fields (keyPattern, ...)."""

    def __init__(self, code: int, errmsg: str, **extra):
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg
        self.extra = extra

    def reply(self) -> dict:
        doc = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": code_name(self.code)}
        doc.update(self.extra)
        return doc

    def write_error(self, index: int) -> dict:
        doc = {"index": index, "code": self.code, "codeName": code_name(self.code), "errmsg": self.errmsg}
        doc.update(self.extra)
        return doc


def not_implemented(what: str) -> CommandError:
    """The stand-in refuses what it cannot do faithfully rather than answer wrongly."""
    return CommandError(238, "mongod stand-in does not implement %s" % what)
