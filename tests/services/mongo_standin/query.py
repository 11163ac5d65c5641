"""Queries: filter matching (mongomock's matcher), projection, sort, aggregation.

mongomock decides whether a document matches a filter and runs most aggregation
stages. Everything it raises is turned into a MongoDB-shaped error: NotImplementedError
(or a crash inside mongomock) becomes code 238 NotImplemented, its OperationFailure a
BadValue, so an unsupported query fails loudly instead of answering wrongly.

mongomock compares values with Python's == and its own ordering, which differs from
MongoDB's: 3 != Decimal128("3"), {a:1,b:2} == {b:2,a:1}, Decimal128 cannot be ordered.
So equality filters are rewritten to $eq, and $eq/$ne/$in/$nin and the ordering behind
$gt/$lt/$min/$max/sort are replaced by BSON semantics (values.hkey / values.sort_key).
Sorting and find projection are done here.
"""

from __future__ import annotations

import copy
import datetime
import re

import mongomock
from mongomock import aggregate as mm_aggregate
from mongomock import filtering

from .errors import CommandError, not_implemented
from bson import Binary, Decimal128, Int64, ObjectId

from .values import MISSING, field_sort_key, hkey, is_number, path_values, sort_key, type_name

# --- mongomock, with MongoDB's equality and ordering ---------------------------------------


def _bson_compare(op, a, b, can_compare_types=True):
    """BSON comparison order; across types only if can_compare_types (type bracketing)."""
    ka, kb = sort_key(a), sort_key(b)
    if ka[0] != kb[0]:
        return can_compare_types and op(ka[0], kb[0])
    return op(ka, kb)


def _eq(doc_val, want) -> bool:
    if doc_val is filtering.NOTHING:
        return want is None
    k = hkey(want)
    if hkey(doc_val) == k:
        return True
    return isinstance(doc_val, list) and any(hkey(e) == k for e in doc_val)


def _in(doc_val, wanted) -> bool:
    if not isinstance(wanted, (list, tuple)):
        raise mongomock.OperationFailure("$in needs an array")
    regexes = [w for w in wanted if isinstance(w, filtering._RE_TYPES)]
    keys = {hkey(w) for w in wanted if not isinstance(w, filtering._RE_TYPES)}
    if doc_val is filtering.NOTHING:
        return hkey(None) in keys
    cands = [doc_val] + (doc_val if isinstance(doc_val, list) else [])
    if any(hkey(c) in keys for c in cands):
        return True
    return any(filtering._regex(doc_val, r) for r in regexes)


def _group_extreme(values, pick):
    vals = [v for v in values if v is not None]
    return pick(vals, key=sort_key) if vals else None


_TYPE_CODES = {1: "double", 2: "string", 3: "object", 4: "array", 5: "binData", 7: "objectId",
               8: "bool", 9: "date", 10: "null", 11: "regex", 13: "javascript", 16: "int",
               17: "timestamp", 18: "long", 19: "decimal", -1: "minKey", 127: "maxKey"}


def _type(doc_val, wanted) -> bool:
    """$type by BSON type (mongomock calls Int64(5) an "int" and knows no type codes)."""
    aliases = set()
    for w in wanted if isinstance(wanted, list) else [wanted]:
        alias = _TYPE_CODES.get(int(w)) if is_number(w) else w
        if alias not in set(_TYPE_CODES.values()) | {"number"}:
            raise mongomock.OperationFailure("Unknown type name alias: %s" % w)
        aliases.add(alias)
    if doc_val is filtering.NOTHING:
        return False

    def hit(v):
        t = type_name(v)
        return t in aliases or ("number" in aliases and is_number(v))

    return hit(doc_val) or (isinstance(doc_val, list) and any(hit(e) for e in doc_val))


filtering.bson_compare = _bson_compare
_ops = filtering._filterer_inst._operator_map
_ops["$eq"] = _eq
_ops["$ne"] = lambda doc_val, want: not _eq(doc_val, want)
_ops["$in"] = _in
_ops["$nin"] = lambda doc_val, wanted: not _in(doc_val, wanted)
_ops["$type"] = _type
mm_aggregate._GROUPING_OPERATOR_MAP["$min"] = lambda values: _group_extreme(values, min)
mm_aggregate._GROUPING_OPERATOR_MAP["$max"] = lambda values: _group_extreme(values, max)


def _is_operator_doc(v) -> bool:
    return isinstance(v, dict) and bool(v) and next(iter(v)).startswith("$")


def _rewrite(flt: dict) -> dict:
    """{field: value} -> {field: {$eq: value}}, so equality goes through _eq."""
    out = {}
    for k, v in flt.items():
        if k in ("$and", "$or", "$nor") and isinstance(v, list):
            out[k] = [_rewrite(x) if isinstance(x, dict) else x for x in v]
        elif k.startswith("$"):
            out[k] = v
        elif isinstance(v, (re.Pattern, filtering._RE_TYPES)):
            out[k] = v
        elif _is_operator_doc(v):
            if isinstance(v.get("$elemMatch"), dict) and not _is_operator_doc(v["$elemMatch"]):
                v = {**v, "$elemMatch": _rewrite(v["$elemMatch"])}
            out[k] = v
        else:
            out[k] = {"$eq": v}
    return out


_rewritten: dict[int, tuple[dict, dict]] = {}


def _prepared(flt: dict) -> dict:
    hit = _rewritten.get(id(flt))
    if hit is not None and hit[0] is flt:
        return hit[1]
    if len(_rewritten) > 256:
        _rewritten.clear()
    out = _rewrite(flt)
    _rewritten[id(flt)] = (flt, out)
    return out


def _mm_errors(fn, *args):
    try:
        return fn(*args)
    except CommandError:
        raise
    except NotImplementedError as e:
        raise not_implemented("this query feature (mongomock: %s)" % e) from None
    except mongomock.OperationFailure as e:
        raise CommandError(e.code or 2, str(e)) from None
    except (TypeError, ValueError, KeyError, AssertionError, AttributeError) as e:
        raise not_implemented("this query feature (mongomock failed: %r)" % e) from None


def check_filter(flt, field: str = "filter") -> dict:
    if flt is None:
        return {}
    if not isinstance(flt, dict):
        raise CommandError(14, "BSON field '%s' is the wrong type '%s', expected type 'object'" % (field, type(flt).__name__))
    return flt


_SCALARS = (str, int, float, bytes, Decimal128, ObjectId, datetime.datetime)
# Types whose BSON equality, between two values of exactly that type, is Python's ==
# (Binary: subtype and bytes, compared below; not dates: BSON compares milliseconds).
_SAME_TYPE_EQ = (str, int, bool, float, bytes, Int64, ObjectId)
_EXACT_SCALARS = frozenset({str, int, bool, bytes, Binary, Int64, ObjectId, datetime.datetime, Decimal128})
_equalities: dict[int, tuple[dict, list | None]] = {}


def _plain_equalities(flt: dict) -> list | None:
    """[(path, path parts, value, [equality key or None])] when flt is only {path:
    scalar} conditions (what a compare-and-swap update sends), else None. Equality keys
    are made when first needed."""
    hit = _equalities.get(id(flt))
    if hit is not None and hit[0] is flt:
        return hit[1]
    out: list | None = []
    for k, v in flt.items():
        t = type(v)
        if k.startswith("$") or not (t in _EXACT_SCALARS or (isinstance(v, _SCALARS) and not (isinstance(v, float) and v != v))):
            out = None
            break
        out.append((k, k.split(".") if "." in k else [k], v, [None]))
    if len(_equalities) > 256:
        _equalities.clear()
    _equalities[id(flt)] = (flt, out)
    return out


def _path_equals(doc: dict, parts: list, key) -> bool:
    for v in path_values(doc, parts):
        if hkey(v) == key or (isinstance(v, list) and any(hkey(e) == key for e in v)):
            return True
    return False


def _plain_matches(plain: list, doc) -> bool:
    for path, parts, want, key in plain:
        if len(parts) == 1 and isinstance(doc, dict):
            # A top-level field holding a value of the wanted type (so not an array):
            # equal or not, without equality keys.
            v = doc.get(path, MISSING)
            t = type(v)
            if t is type(want):
                if t is Binary:
                    if v.subtype != want.subtype or not bytes.__eq__(v, want):
                        return False
                    continue
                if t in _SAME_TYPE_EQ:
                    if v != want:
                        return False
                    continue
        if key[0] is None:
            key[0] = hkey(want)
        if not _path_equals(doc, parts, key[0]):
            return False
    return True


def matches(flt: dict, doc: dict) -> bool:
    """Does doc match the query filter flt?"""
    if not flt:
        return True
    plain = _plain_equalities(flt)
    if plain is not None:  # the same answer as the matcher, without it
        return _plain_matches(plain, doc)
    return _mm_errors(filtering.filter_applies, _prepared(flt), doc)


# --- sort ---------------------------------------------------------------------------


def check_sort(spec) -> list[tuple[str, bool]]:
    """[(path, descending)] from a sort document."""
    if not spec:
        return []
    if not isinstance(spec, dict):
        raise CommandError(14, "Expected field sort to be of type object")
    out = []
    for path, direction in spec.items():
        if isinstance(direction, dict):
            raise not_implemented("$meta sort")
        if not is_number(direction) or float(str(direction)) not in (1.0, -1.0):
            raise CommandError(15974, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
        out.append((path, float(str(direction)) < 0))
    return out


def sort_docs(docs: list, spec) -> list:
    keys = check_sort(spec) if not isinstance(spec, list) else spec
    out = list(docs)
    for path, descending in reversed(keys):
        out.sort(key=lambda d: field_sort_key(d, path, descending), reverse=descending)
    return out


# --- projection ------------------------------------------------------------------------


class Projection:
    """A find projection: inclusion or exclusion of (dotted) fields, _id on by default."""

    def __init__(self, spec: dict):
        if not isinstance(spec, dict):
            raise CommandError(14, "Expected field projection to be of type object")
        self.include_id = True
        self.mode = None  # "include" | "exclude"
        self.tree: dict = {}
        for path, flag in spec.items():
            if isinstance(flag, (dict, list, str)) or "$" in path:
                raise not_implemented("projection operators and expressions (%s)" % path)
            on = bool(flag)
            if path == "_id":
                self.include_id = on
                continue
            mode = "include" if on else "exclude"
            if self.mode and self.mode != mode:
                if mode == "exclude":
                    raise CommandError(31254, "Cannot do exclusion on field %s in inclusion projection" % path)
                raise CommandError(31253, "Cannot do inclusion on field %s in exclusion projection" % path)
            self.mode = mode
            node = self.tree
            parts = path.split(".")
            for part in parts[:-1]:
                nxt = node.get(part)
                if nxt is True:
                    raise CommandError(31249, "Path collision at %s" % path)
                node = node.setdefault(part, {})
            if isinstance(node.get(parts[-1]), dict):
                raise CommandError(31250, "Path collision at %s" % path)
            node[parts[-1]] = True
        if self.mode is None:
            self.mode = "exclude"

    def apply(self, doc: dict) -> dict:
        if self.mode == "include":
            out = {}
            if self.include_id and "_id" in doc:
                out["_id"] = doc["_id"]
            out.update(_include(doc, self.tree))
            if not self.include_id:
                out.pop("_id", None)
            return out
        out = _exclude(doc, self.tree)
        if not self.include_id:
            out.pop("_id", None)
        return out


def _include(value, tree):
    if isinstance(value, list):
        return [_include(e, tree) for e in value if isinstance(e, (dict, list))]
    out = {}
    for key, val in value.items():
        sub = tree.get(key)
        if sub is True:
            out[key] = val
        elif sub is not None and isinstance(val, (dict, list)):
            out[key] = _include(val, sub)
    return out


def _exclude(value, tree):
    if isinstance(value, list):
        return [_exclude(e, tree) if isinstance(e, (dict, list)) else e for e in value]
    out = {}
    for key, val in value.items():
        sub = tree.get(key)
        if sub is True:
            continue
        if sub is not None and isinstance(val, (dict, list)):
            out[key] = _exclude(val, sub)
        else:
            out[key] = val
    return out


def projection(spec) -> Projection | None:
    return Projection(spec) if spec else None


# --- aggregation -----------------------------------------------------------------------

# Stages mongomock runs (on deep copies: some of its stages alter their input in place).
_MONGOMOCK_STAGES = {"$group", "$project", "$addFields", "$set", "$unwind", "$replaceRoot",
                     "$bucket", "$facet", "$sample"}
_KNOWN_STAGES = _MONGOMOCK_STAGES | {
    "$match", "$sort", "$limit", "$skip", "$count", "$unset", "$lookup", "$graphLookup", "$out",
    "$merge", "$unionWith", "$replaceWith", "$sortByCount", "$bucketAuto", "$collStats",
    "$currentOp", "$geoNear", "$indexStats", "$listSessions", "$planCacheStats", "$redact",
    "$search", "$densify", "$fill", "$setWindowFields", "$documents", "$changeStream",
}


def _is_count_group(arg) -> bool:
    """{$group: {_id: <constant>, n: {$sum: 1}, ...}}: counting, as drivers' count_documents does."""
    if not isinstance(arg, dict) or "_id" not in arg or len(arg) < 2:
        return False
    gid = arg["_id"]
    if isinstance(gid, (dict, list)) or (isinstance(gid, str) and gid.startswith("$")):
        return False
    return all(v == {"$sum": 1} and type(v["$sum"]) is int for f, v in arg.items() if f != "_id")


def _int_value(n: int):
    """An int32 while it fits, else an Int64 ($sum's result type over int32 ones)."""
    from bson import Int64

    return n if n < 2**31 else Int64(n)


def run_pipeline(docs: list, pipeline) -> list:
    """Run an aggregation pipeline over docs (which are never modified)."""
    if not isinstance(pipeline, list):
        raise CommandError(14, "'pipeline' option must be specified as an array")
    owned = False
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise CommandError(40323, "A pipeline stage specification object must contain exactly one field.")
        name, arg = next(iter(stage.items()))
        if name not in _KNOWN_STAGES:
            raise CommandError(40324, "Unrecognized pipeline stage name: '%s'" % name)
        if name == "$match":
            flt = check_filter(arg, "$match")
            docs = [d for d in docs if matches(flt, d)]
        elif name == "$sort":
            docs = sort_docs(docs, arg)
        elif name in ("$limit", "$skip"):
            if not is_number(arg) or int(str(arg).split(".")[0]) < 0 or (name == "$limit" and int(arg) == 0):
                raise CommandError(15958, "invalid argument to %s stage" % name)
            docs = docs[: int(arg)] if name == "$limit" else docs[int(arg):]
        elif name == "$count":
            if not isinstance(arg, str) or not arg or arg.startswith("$") or "." in arg:
                raise CommandError(40156, "the count field must be a non-empty string without '$' or '.'")
            docs = [{arg: len(docs)}]
            owned = True
        elif name == "$unset":
            fields = [arg] if isinstance(arg, str) else arg
            if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                raise CommandError(31002, "$unset specification must be a string or an array of strings")
            proj = Projection({f: 0 for f in fields})
            docs = [proj.apply(d) for d in docs]
            owned = True
        elif name == "$group" and _is_count_group(arg):
            # what count_documents sends: no copies of the documents, just their number
            docs = [{"_id": arg["_id"], **{f: _int_value(len(docs)) for f in arg if f != "_id"}}] if docs else []
            owned = True
        elif name in _MONGOMOCK_STAGES:
            if not owned:
                docs = copy.deepcopy(docs)
            docs = list(_mm_errors(mm_aggregate.process_pipeline, docs, None, [stage], None))
            owned = True
        else:
            raise not_implemented("the %s aggregation stage" % name)
    return docs
