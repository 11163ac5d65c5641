"""Update documents: operators, replacement, pipelines, upsert seeds.

`apply_update(old, update, ...)` returns a new document and never touches `old`: stored
documents are immutable, which is what lets open cursors and the unique indexes keep
references to them. Operators: $set $unset $inc $mul $min $max $rename $setOnInsert
$currentDate $push ($each $position $slice $sort) $addToSet ($each) $pull $pullAll $pop,
on dotted paths with the positional `$`, `$[]` and `$[<identifier>]` with arrayFilters.
Numbers keep MongoDB's types ($inc on an Int64 gives an Int64; int32 overflow widens).
The new document shares every value it does not change with `old`: when the update's
paths are concrete (no `$`, `$[]`, `$[id]`), only the documents and arrays on those paths
are copied; a `$set` of top-level fields (compare-and-swap updates) is one shallow copy.
"""

from __future__ import annotations

import copy
import time

from bson import ObjectId, Timestamp

from . import query
from .errors import CommandError, not_implemented
from .values import (MISSING, ValueError_, arith, hkey, is_number, now_date, render, sort_key,
                     type_name, zero_like)

_OPERATORS = ("$set", "$unset", "$inc", "$mul", "$min", "$max", "$rename", "$setOnInsert",
              "$currentDate", "$push", "$addToSet", "$pull", "$pullAll", "$pop")


def kind(update) -> str:
    """'pipeline', 'operators' or 'replacement'."""
    if isinstance(update, list):
        return "pipeline"
    if not isinstance(update, dict):
        raise CommandError(14, "Update argument must be either an object or an array")
    keys = list(update)
    if keys and keys[0].startswith("$"):
        return "operators"
    for k in keys:
        if k.startswith("$"):
            raise CommandError(52, "The dollar ($) prefixed field '%s' in '%s' is not valid for storage." % (k, k))
    return "replacement"


class _Ctx:
    """What path resolution needs: the query (for `$`) and the array filters."""

    def __init__(self, query_filter: dict, array_filters, doc_id):
        self.query = query_filter or {}
        self.doc_id = doc_id
        self.filters: dict[str, dict] = {}
        self.used: set[str] = set()
        for flt in array_filters or []:
            if not isinstance(flt, dict) or not flt:
                raise CommandError(9, "Cannot use an expression without a top-level field name in arrayFilters")
            idents = {k.split(".")[0] for k in flt}
            if len(idents) != 1:
                raise CommandError(9, "Error parsing array filter :: caused by :: Expected a single top-level field name, found '%s' and '%s'" % tuple(sorted(idents)[:2]))
            ident = idents.pop()
            if ident in self.filters:
                raise CommandError(9, "Found multiple array filters with the same top-level field name %s" % ident)
            self.filters[ident] = flt

    def note_path(self, path: str) -> None:
        """Check the $[identifier]s of an update path against the array filters."""
        if "$[" not in path:
            return
        for part in path.split("."):
            if part.startswith("$[") and part.endswith("]") and part != "$[]":
                ident = part[2:-1]
                if ident not in self.filters:
                    raise CommandError(2, "No array filter found for identifier '%s' in path '%s'" % (ident, path))
                self.used.add(ident)

    def filter_match(self, ident: str, elem) -> bool:
        return query.matches(self.filters[ident], {ident: elem})

    def positional(self, prefix: str, array: list) -> int:
        """Index of the first element of `array` (at `prefix`) the query matched."""
        conds = []

        def collect(flt):
            for k, v in flt.items():
                if k == "$and" and isinstance(v, list):
                    for sub in v:
                        collect(sub)
                elif k == prefix:
                    conds.append((None, v))
                elif k.startswith(prefix + "."):
                    conds.append((k[len(prefix) + 1:], v))

        collect(self.query)
        if conds:
            for i, elem in enumerate(array):
                ok = True
                for sub, cond in conds:
                    if sub is None:
                        if isinstance(cond, dict) and "$elemMatch" in cond:
                            ok = query.matches(cond["$elemMatch"], elem) if isinstance(elem, dict) else query.matches({"v": cond["$elemMatch"]}, {"v": elem})
                        else:
                            ok = query.matches({"v": cond}, {"v": elem})
                    else:
                        ok = isinstance(elem, dict) and query.matches({sub: cond}, elem)
                    if not ok:
                        break
                if ok:
                    return i
        raise CommandError(2, "The positional operator did not find the match needed from the query.")


def _targets(node, parts: list[str], create: bool, ctx: _Ctx, done: list[str]) -> list:
    """(container, key) pairs a dotted path designates in node, expanding `$`, `$[]`,
    `$[id]`. With create, missing intermediate documents are made."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if head == "$[]":
            keys = list(range(len(node)))
        elif head.startswith("$[") and head.endswith("]"):
            ident = head[2:-1]
            keys = [i for i, e in enumerate(node) if ctx.filter_match(ident, e)]
        elif head == "$":
            keys = [ctx.positional(".".join(done), node)]
        elif head.isdigit():
            i = int(head)
            if i >= len(node):
                if not create:
                    return []
                node.extend([None] * (i + 1 - len(node)))
                if rest:
                    node[i] = {}
            keys = [i]
        else:
            if not create:
                return []
            raise CommandError(28, "Cannot create field '%s' in element {%s: %s}" % (head, done[-1] if done else "", render(node)))
    elif isinstance(node, dict):
        if head.startswith("$"):
            if head == "$":
                raise CommandError(2, "The positional operator did not find the match needed from the query.")
            raise CommandError(2, "Cannot apply array updates to non-array element %s: %s" % (done[-1] if done else "", render(node)))
        keys = [head]
    else:
        if not create:
            return []
        raise CommandError(28, "Cannot create field '%s' in element {%s: %s}" % (head, done[-1] if done else "", render(node)))
    if not rest:
        return [(node, k) for k in keys]
    out = []
    for k in keys:
        has = (k < len(node)) if isinstance(node, list) else (k in node)
        child = node[k] if has else MISSING
        if child is MISSING:
            if not create:
                continue
            node[k] = child = {}
        elif child is None and create and isinstance(node, list):
            node[k] = child = {}
        out.extend(_targets(child, rest, create, ctx, done + [str(k)]))
    return out


def _path_order(item):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in item[0].split(".")]


def _get(container, key):
    if isinstance(container, list):
        return container[key] if key < len(container) else MISSING
    return container.get(key, MISSING)


def _check_conflicts(update: dict) -> None:
    paths = []
    for op, fields in update.items():
        for path, val in fields.items():
            paths.append(path)
            if op == "$rename" and isinstance(val, str):
                paths.append(val)
    if len(set(paths)) == len(paths) and not any("." in p for p in paths):
        return  # distinct top-level fields: none is a prefix of another
    split = [p.split(".") for p in paths]
    for i, a in enumerate(split):
        for b in split[i + 1:]:
            n = min(len(a), len(b))
            if a[:n] == b[:n]:
                shorter = ".".join(a if len(a) <= len(b) else b)
                raise CommandError(40, "Updating the path '%s' would create a conflict at '%s'" % (".".join(b), shorter))


def _numeric_op(op, container, key, operand, doc_id):
    name = "increment" if op == "$inc" else "multiply"
    if not is_number(operand):
        raise CommandError(14, "Cannot %s with non-numeric argument: {%s: %s}" % (name, key, render(operand)))
    cur = _get(container, key)
    if cur is MISSING:
        container[key] = operand if op == "$inc" else zero_like(operand)
        return
    if not is_number(cur):
        raise CommandError(14, "Cannot apply %s to a value of non-numeric type. {_id: %s} has the field '%s' of non-numeric type %s"
                           % (op, render(doc_id), key, type_name(cur)))
    try:
        container[key] = arith(cur, operand, "+" if op == "$inc" else "*")
    except ValueError_ as e:
        raise CommandError(e.code, "Failed to apply %s operations to current value (%s) for document {_id: %s}: %s" % (op, render(cur), render(doc_id), e.errmsg))


def _array_at(container, key, path, doc_id, create=True):
    cur = _get(container, key)
    if cur is MISSING:
        if not create:
            return None
        container[key] = cur = []
    if not isinstance(cur, list):
        raise CommandError(2, "The field '%s' must be an array but is of type %s in document {_id: %s}" % (path, type_name(cur), render(doc_id)))
    return cur


def _push(container, key, path, value, doc_id, add_to_set):
    arr = _array_at(container, key, path, doc_id)
    if isinstance(value, dict) and "$each" in value:
        each = value["$each"]
        if not isinstance(each, list):
            raise CommandError(2, "The argument to $each in %s must be an array but it was of type: %s" % ("$addToSet" if add_to_set else "$push", type_name(each)))
        mods = set(value) - {"$each"}
        if add_to_set and mods:
            raise CommandError(2, "Found unexpected fields after $each in $addToSet: %s" % render(value))
        if mods - {"$position", "$slice", "$sort"}:
            raise CommandError(2, "Unrecognized clause in $push: %s" % sorted(mods)[0])
    else:
        each, mods = [value], set()
    if add_to_set:
        seen = {hkey(x) for x in arr}
        for x in each:
            k = hkey(x)
            if k not in seen:
                seen.add(k)
                arr.append(x)
        return
    pos = value.get("$position") if "$position" in mods else None
    if pos is None:
        arr.extend(each)
    else:
        pos = int(pos)
        if pos < 0:
            pos = max(0, len(arr) + pos)
        arr[pos:pos] = each
    if "$sort" in mods:
        spec = value["$sort"]
        if isinstance(spec, dict):
            arr[:] = query.sort_docs(arr, spec)
        else:
            arr.sort(key=sort_key, reverse=float(str(spec)) < 0)
    if "$slice" in mods:
        n = int(value["$slice"])
        arr[:] = arr[n:] if n < 0 else arr[:n]


def _pull(container, key, path, cond, doc_id):
    arr = _array_at(container, key, path, doc_id, create=False)
    if arr is None:
        return
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        def hit(e):
            return query.matches({"v": cond}, {"v": e})
    elif isinstance(cond, dict):
        def hit(e):
            return isinstance(e, dict) and query.matches(cond, e)
    else:
        want = hkey(cond)

        def hit(e):
            return hkey(e) == want
    arr[:] = [e for e in arr if not hit(e)]


def _current_date(container, key, spec):
    if spec is True or (isinstance(spec, dict) and spec.get("$type") == "date"):
        container[key] = now_date()
    elif isinstance(spec, dict) and spec.get("$type") == "timestamp":
        container[key] = Timestamp(int(time.time()), 1)
    elif spec is False:
        container[key] = now_date()
    else:
        raise CommandError(2, "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}")


def _apply_operators(doc: dict, update: dict, ctx: _Ctx, is_insert: bool) -> None:
    for op, fields in update.items():
        if op not in _OPERATORS:
            raise CommandError(9, "Unknown modifier: %s. Expected a valid update modifier or pipeline-style update specified as an array" % op)
        if not isinstance(fields, dict):
            raise CommandError(9, "Modifiers operate on fields but we found type %s instead. For example: {$mod: {<field>: ...}} not {%s: %s}" % (type_name(fields), op, render(fields)))
    _check_conflicts(update)
    for fields in update.values():
        for path in fields:
            ctx.note_path(path)
    unused = set(ctx.filters) - ctx.used
    if unused:
        raise CommandError(9, "The array filter for identifier '%s' was not used in the update %s" % (sorted(unused)[0], render(update)))
    doc_id = doc.get("_id")
    for op, fields in update.items():
        if op == "$setOnInsert" and not is_insert:
            continue
        # mongod (5.0+) applies an operator's fields in lexicographic order, numeric
        # names numerically: new fields appear in that order.
        for path, value in sorted(fields.items(), key=_path_order) if len(fields) > 1 else fields.items():
            parts = path.split(".")
            if any(p == "" for p in parts):
                raise CommandError(56, "An empty update path is not valid.")
            if op == "$rename":
                if not isinstance(value, str):
                    raise CommandError(2, "The 'to' field for $rename must be a string: %s: %s" % (path, render(value)))
                src = _targets(doc, parts, False, ctx, [])
                if not src:
                    continue
                (c, k), = src[:1]
                moved = _get(c, k)
                if moved is MISSING:
                    continue
                if isinstance(c, list):
                    raise CommandError(2, "The source field cannot be an array element, '%s' in doc with _id: %s has an array field called '%s'" % (path, render(doc_id), parts[-2]))
                del c[k]
                for c2, k2 in _targets(doc, value.split("."), True, ctx, []):
                    c2[k2] = moved
                continue
            create = op not in ("$unset", "$pull", "$pullAll", "$pop")
            for container, key in _targets(doc, parts, create, ctx, []):
                if op in ("$set", "$setOnInsert"):
                    container[key] = value
                elif op == "$unset":
                    if isinstance(container, list):
                        if key < len(container):
                            container[key] = None
                    else:
                        container.pop(key, None)
                elif op in ("$inc", "$mul"):
                    _numeric_op(op, container, key, value, doc_id)
                elif op in ("$min", "$max"):
                    cur = _get(container, key)
                    if cur is MISSING or (sort_key(value) < sort_key(cur) if op == "$min" else sort_key(value) > sort_key(cur)):
                        container[key] = value
                elif op == "$currentDate":
                    _current_date(container, key, value)
                elif op in ("$push", "$addToSet"):
                    _push(container, key, path, value, doc_id, op == "$addToSet")
                elif op == "$pull":
                    _pull(container, key, path, value, doc_id)
                elif op == "$pullAll":
                    if not isinstance(value, list):
                        raise CommandError(2, "$pullAll requires an array argument but was given a %s" % type_name(value))
                    arr = _array_at(container, key, path, doc_id, create=False)
                    if arr is not None:
                        drop = {hkey(x) for x in value}
                        arr[:] = [e for e in arr if hkey(e) not in drop]
                elif op == "$pop":
                    arr = _array_at(container, key, path, doc_id, create=False)
                    if not is_number(value) or float(str(value)) not in (1.0, -1.0):
                        raise CommandError(9, "$pop expects 1 or -1, found: %s" % render(value))
                    if arr:
                        arr.pop(0 if float(str(value)) < 0 else -1)


def _apply_pipeline(doc: dict, pipeline: list) -> dict:
    allowed = {"$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith"}
    for stage in pipeline:
        name = next(iter(stage), None) if isinstance(stage, dict) else None
        if name not in allowed:
            raise CommandError(72, "Invalid pipeline stage in update: %s" % name)
        if name == "$replaceWith":
            raise not_implemented("$replaceWith in pipeline updates")
    out = query.run_pipeline([doc], pipeline)
    if len(out) != 1:
        raise CommandError(2, "update pipeline did not produce exactly one document")
    return out[0]


def apply_update(old: dict, update, query_filter: dict, array_filters=None, is_insert: bool = False) -> dict:
    """The document `old` becomes under `update` (old itself is left as it was)."""
    k = kind(update)
    old_id = old.get("_id", MISSING)
    if k == "replacement":
        if array_filters:
            raise CommandError(72, "arrayFilters may not be specified for replacement updates")
        new = {}
        if old_id is not MISSING:
            new["_id"] = old_id
        for f, v in update.items():
            if f == "_id":
                if old_id is not MISSING and hkey(v) != hkey(old_id) and not is_insert:
                    raise CommandError(66, "After applying the update, the (immutable) field '_id' was found to have been altered to _id: %s" % render(v))
            new[f] = v
        if "_id" in update and (old_id is MISSING or is_insert):
            new = {"_id": update["_id"], **{f: v for f, v in new.items() if f != "_id"}}
        return new
    if k == "pipeline":
        if array_filters:
            raise CommandError(72, "arrayFilters may not be specified for pipeline-style updates")
        new = _apply_pipeline(old, update)
    else:
        if not _concrete_paths(update, array_filters):
            new = _copy_tree(old)
        elif _top_level_set(update):
            new = dict(old)
            fields = update["$set"]
            if len(fields) > 1:
                # _path_order; without all-digit names that is plain string order
                fields = sorted(fields.items(), key=_path_order if any(p.isdigit() for p in fields) else None)
            else:
                fields = fields.items()
            for path, value in fields:
                new[path] = value
            update = None
        else:
            new = _copy_paths(old, update)
        if update is not None:
            _apply_operators(new, update, _Ctx(query_filter, array_filters, old_id if old_id is not MISSING else None), is_insert)
    new_id = new.get("_id", MISSING)
    if old_id is not MISSING and new_id is not old_id and (new_id is MISSING or hkey(new_id) != hkey(old_id)) and not is_insert:
        raise CommandError(66, "Performing an update on the path '_id' would modify the immutable field '_id'")
    return new


def _concrete_paths(update: dict, array_filters) -> bool:
    """Does every path of an operator update name its place without `$`, `$[]` or
    `$[id]` (so the documents and arrays it can touch are known up front)?"""
    if array_filters:
        return False
    for op, fields in update.items():
        if not isinstance(fields, dict):
            return False
        for path, value in fields.items():
            if "$" in path or (op == "$rename" and (not isinstance(value, str) or "$" in value)):
                return False
    return True


def _top_level_set(update: dict) -> bool:
    """Is update one $set of top-level fields (concrete, non-empty names without dots)?
    What _apply_operators does then is only: assign them in _path_order (no conflicts are
    possible between distinct top-level names, nothing is created on the way)."""
    if len(update) != 1 or "$set" not in update:
        return False
    return all(path and "." not in path for path in update["$set"])


def _copy_paths(old: dict, update: dict) -> dict:
    """A copy of `old` that the operators of `update` may change in place: the top-level
    document and every document or array on (and at the end of) an update path are new;
    everything else is shared with `old`, which stays as it was. (Only for concrete
    paths; `$rename` targets count as paths.)"""
    new = dict(old)
    fresh = {id(new)}
    for op, fields in update.items():
        for path, value in fields.items():
            paths = (path, value) if op == "$rename" else (path,)
            for p in paths:
                if "." not in p:
                    child = new.get(p)
                    if isinstance(child, (dict, list)) and id(child) not in fresh:
                        new[p] = child = child.copy()
                        fresh.add(id(child))
                    continue
                node = new
                for part in p.split("."):
                    if isinstance(node, dict):
                        if part not in node:
                            break
                        key = part
                    elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                        key = int(part)
                    else:
                        break
                    child = node[key]
                    if not isinstance(child, (dict, list)):
                        break
                    if id(child) not in fresh:
                        node[key] = child = child.copy()
                        fresh.add(id(child))
                    node = child
    return new


def _copy_tree(value):
    """A copy of a stored document that update operators may change in place: every
    document and array is new; immutable BSON values (str, numbers, Binary, ObjectId,
    dates, ...) are shared, which deepcopy would rebuild one by one."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    if isinstance(value, (str, int, float, bytes, bool)) or value is None:
        return value
    return copy.deepcopy(value)


def upsert_seed(query_filter: dict) -> dict:
    """The document an upsert starts from: the query's equality conditions."""
    seed: dict = {}

    def put(path, value):
        cur = seed
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
            if not isinstance(cur, dict):
                return
        cur[parts[-1]] = value

    def take(flt):
        for k, v in flt.items():
            if k == "$and" and isinstance(v, list):
                for sub in v:
                    if isinstance(sub, dict):
                        take(sub)
            elif k.startswith("$"):
                continue
            elif isinstance(v, dict) and v and next(iter(v)).startswith("$"):
                if set(v) == {"$eq"}:
                    put(k, v["$eq"])
            else:
                put(k, v)

    take(query_filter or {})
    return seed


def upsert_document(query_filter: dict, update, array_filters=None) -> dict:
    """The document an upsert inserts, _id first (an ObjectId when the query names none)."""
    seed = upsert_seed(query_filter)
    if kind(update) == "replacement":
        doc = apply_update({"_id": seed["_id"]} if "_id" in seed else {}, update, query_filter, None, True)
    else:
        doc = apply_update(seed, update, query_filter, array_filters, True)
    if "_id" not in doc:
        return {"_id": ObjectId(), **doc}
    if next(iter(doc)) != "_id":
        return {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    return doc
