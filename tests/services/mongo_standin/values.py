"""BSON value semantics: equality keys, comparison order, paths, numeric arithmetic.

Values are what `bson.decode` gives with `CODEC_OPTIONS` below: int (int32), Int64,
float, Decimal128, str, bytes (binary subtype 0), Binary (every other subtype, 4 and 6
included), dict, list, datetime (naive UTC) or DatetimeMS, ObjectId, bool, None,
Timestamp, Regex, Code, MinKey, MaxKey, DBRef. Nothing here converts a value to another
type: the only values created are the results of arithmetic, which follow MongoDB's
type rules (int32 + int32 overflowing gives Int64, anything + Int64 gives Int64, ...).
"""

from __future__ import annotations

import calendar
import datetime
import decimal
import re

import bson
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import create_decimal128_context

# How requests are decoded: plain dicts (ordered), every binary subtype kept as Binary
# (UNSPECIFIED uuid representation), dates outside Python's range kept as DatetimeMS.
CODEC_OPTIONS = CodecOptions(
    document_class=dict,
    tz_aware=False,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

MISSING = object()  # a path that leads nowhere (distinct from an explicit null)

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DEC_CTX = create_decimal128_context()


class ValueError_(Exception):
    """A value-level failure (bad operand type, overflow); the caller maps it to a code."""

    def __init__(self, code: int, errmsg: str):
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg


def is_number(v) -> bool:
    return isinstance(v, (int, float, Decimal128)) and not isinstance(v, bool)


def type_name(v) -> str:
    """MongoDB's $type alias of a value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Int64):
        return "long"
    if isinstance(v, int):
        return "int" if _INT32_MIN <= v <= _INT32_MAX else "long"
    if isinstance(v, float):
        return "double"
    if isinstance(v, Decimal128):
        return "decimal"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, (bytes, Binary)):
        return "binData"
    if isinstance(v, ObjectId):
        return "objectId"
    if isinstance(v, (datetime.datetime, DatetimeMS)):
        return "date"
    if isinstance(v, Timestamp):
        return "timestamp"
    if isinstance(v, (Regex, re.Pattern)):
        return "regex"
    if isinstance(v, Code):
        return "javascript"
    if isinstance(v, MinKey):
        return "minKey"
    if isinstance(v, MaxKey):
        return "maxKey"
    if isinstance(v, DBRef):
        return "object"
    return type(v).__name__


def _dec(v: Decimal128) -> decimal.Decimal:
    return v.to_decimal()


def _date_ms(v) -> int:
    if isinstance(v, DatetimeMS):
        return int(v)
    if v.tzinfo is not None:
        v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return calendar.timegm(v.timetuple()) * 1000 + v.microsecond // 1000


def hkey(v):
    """A hashable key with MongoDB's equality: numbers compare by value across types,
    everything else by type and content (binary subtype included)."""
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (8, v)
    if isinstance(v, (int, float)):
        if v != v:  # NaN
            return (1, "nan")
        return (1, int(v) if isinstance(v, int) else v)
    if isinstance(v, Decimal128):
        d = _dec(v)
        return (1, "nan") if d.is_nan() else (1, d)
    if isinstance(v, str):
        return (2, v)
    if isinstance(v, dict):
        return (3, tuple((k, hkey(x)) for k, x in v.items()))
    if isinstance(v, list):
        return (4, tuple(hkey(x) for x in v))
    if isinstance(v, Binary):
        return (5, v.subtype, bytes(v))
    if isinstance(v, bytes):
        return (5, 0, v)
    if isinstance(v, ObjectId):
        return (7, v.binary)
    if isinstance(v, (datetime.datetime, DatetimeMS)):
        return (9, _date_ms(v))
    if isinstance(v, Timestamp):
        return (10, v.time, v.inc)
    if isinstance(v, Regex):
        return (11, v.pattern, v.flags)
    if isinstance(v, re.Pattern):
        return (11, v.pattern, v.flags)
    if isinstance(v, DBRef):
        return (3, hkey(v.as_doc()))
    if isinstance(v, MinKey):
        return (-1,)
    if isinstance(v, MaxKey):
        return (100,)
    return (50, type(v).__name__, repr(v))


def same_bson(a, b) -> bool:
    """Would a and b encode to the same BSON bytes? Without encoding whole documents:
    values shared by identity (what update copies keep) are the same, documents and
    arrays compare element by element, common leaves by type and content, and anything
    else by its own encoding (so -0.0 differs from 0.0, True from 1, as in BSON)."""
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is dict:
        if len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if ka != kb or (va is not vb and not same_bson(va, vb)):
                return False
        return True
    if ta is list:
        return len(a) == len(b) and all(same_bson(x, y) for x, y in zip(a, b))
    if ta is Binary:
        return bytes.__eq__(a, b) and a.subtype == b.subtype
    if ta is str or ta is bytes or ta is int or ta is Int64:
        return a == b
    return bson.encode({"": a}) == bson.encode({"": b})


def values_equal(a, b) -> bool:
    return hkey(a) == hkey(b)


def sort_key(v):
    """A key ordering values as MongoDB's BSON comparison order does."""
    if v is MISSING or v is None:
        return (2,)
    if isinstance(v, MinKey):
        return (1,)
    if isinstance(v, MaxKey):
        return (100,)
    if isinstance(v, bool):
        return (9, v)
    if isinstance(v, (int, float)):
        return (3, 0) if v != v else (3, 1, v)
    if isinstance(v, Decimal128):
        d = _dec(v)
        return (3, 0) if d.is_nan() else (3, 1, d)
    if isinstance(v, str):
        return (4, v)
    if isinstance(v, DBRef):
        v = v.as_doc()
    if isinstance(v, dict):
        return (5, tuple((sort_key(x)[0], k, sort_key(x)) for k, x in v.items()))
    if isinstance(v, list):
        return (6, tuple(sort_key(x) for x in v))
    if isinstance(v, Binary):
        return (7, len(v), v.subtype, bytes(v))
    if isinstance(v, bytes):
        return (7, len(v), 0, v)
    if isinstance(v, ObjectId):
        return (8, v.binary)
    if isinstance(v, (datetime.datetime, DatetimeMS)):
        return (10, _date_ms(v))
    if isinstance(v, Timestamp):
        return (11, v.time, v.inc)
    if isinstance(v, (Regex, re.Pattern)):
        return (12, v.pattern, int(v.flags))
    return (50, type(v).__name__, repr(v))


def field_sort_key(doc, path: str, descending: bool):
    """Sort key of a document for one sort field: arrays sort by their smallest element
    ascending and their largest descending, as MongoDB does."""
    vals = path_values(doc, path.split("."), expand_last=True)
    if not vals:
        return (2,)
    keys = [(1.5,) if isinstance(x, list) else sort_key(x) for x in vals]
    return max(keys) if descending else min(keys)


def path_values(value, parts: list[str], expand_last: bool = False) -> list:
    """Every value at a dotted path, descending through arrays like a query does.
    With expand_last, an array found at the end contributes its elements (multikey)."""
    if not parts:
        if expand_last and isinstance(value, list):
            return list(value) if value else [[]]
        return [value]
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        if head in value:
            return path_values(value[head], rest, expand_last)
        return []
    if isinstance(value, list):
        out = []
        if head.isdigit() and int(head) < len(value):
            out.extend(path_values(value[int(head)], rest, expand_last))
        for elem in value:
            if isinstance(elem, dict):
                out.extend(path_values(elem, parts, expand_last))
        return out
    return []


def get_path(doc, path: str):
    """The single value at a dotted path (no array expansion except numeric parts)."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
    return cur


def set_path(doc: dict, path: str, value) -> None:
    """Set a dotted path in a plain document, creating sub-documents as needed."""
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def _int_result(r: int, long: bool):
    if long or not (_INT32_MIN <= r <= _INT32_MAX):
        if not (_INT64_MIN <= r <= _INT64_MAX):
            raise ValueError_(2, "integer overflow")
        return Int64(r)
    return r


def arith(a, b, op: str):
    """a + b or a * b with MongoDB's result type: decimal > double > long > int."""
    if isinstance(a, Decimal128) or isinstance(b, Decimal128):
        da = _dec(a) if isinstance(a, Decimal128) else decimal.Decimal(repr(a) if isinstance(a, float) else a)
        db = _dec(b) if isinstance(b, Decimal128) else decimal.Decimal(repr(b) if isinstance(b, float) else b)
        r = _DEC_CTX.add(da, db) if op == "+" else _DEC_CTX.multiply(da, db)
        return Decimal128(r)
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b) if op == "+" else float(a) * float(b)
    r = int(a) + int(b) if op == "+" else int(a) * int(b)
    long = any(isinstance(x, Int64) or not (_INT32_MIN <= x <= _INT32_MAX) for x in (a, b))
    return _int_result(r, long)


def zero_like(v):
    """The zero of v's numeric type ($mul on a missing field)."""
    if isinstance(v, Decimal128):
        return Decimal128("0")
    if isinstance(v, float):
        return 0.0
    if isinstance(v, Int64):
        return Int64(0)
    return 0


def now_date() -> datetime.datetime:
    """The current time as BSON stores it: naive UTC, millisecond precision."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def render(v) -> str:
    """A short shell-like rendering of a value for error messages."""
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, dict):
        return "{ " + ", ".join("%s: %s" % (k, render(x)) for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[ " + ", ".join(render(x) for x in v) + " ]"
    if isinstance(v, Binary):
        return "BinData(%d, %s)" % (v.subtype, bytes(v).hex().upper())
    if isinstance(v, bytes):
        return "BinData(0, %s)" % v.hex().upper()
    if isinstance(v, ObjectId):
        return "ObjectId('%s')" % v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
