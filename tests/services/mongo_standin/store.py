"""Storage: databases, collections, documents and unique indexes, all in memory.

Documents are stored exactly as decoded from the wire and are never modified in place:
an update stores a new document (see update.py). So a reply can encode a stored document
without copying it, and every BSON type survives untouched. The bytes encoded when a
document is stored (for the 16 MiB check) are kept beside it, so a find without a
projection sends them as they are instead of encoding the document again.

Each collection keeps its documents in a dict keyed by the _id's equality key, in insert
order (the natural order of a collection scan). Unique indexes keep a hash map from
index key to _id, maintained on every write, so uniqueness costs O(1) per write rather
than a collection scan; partial (partialFilterExpression) and sparse indexes index only
the documents they cover, and array fields are multikey, as in mongod. Non-unique
indexes are recorded for listIndexes and do not change query results.

The caller holds Store.lock around every operation.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import uuid

import bson
from bson import Binary, Int64, ObjectId, Regex

from . import query
from .errors import CommandError
from .schema import check_validator, validator_matches
from .values import MISSING, hkey, path_values, render, sort_key

MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
_UNDEFINED_KEY = ("undefined",)
# _id types that are neither operator documents, arrays nor regexes (exact types).
_PLAIN_ID_TYPES = (int, str, ObjectId, Binary, bytes, Int64)
_INDEX_OPTIONS = {"key", "name", "unique", "sparse", "partialFilterExpression", "background", "v",
                  "expireAfterSeconds", "hidden", "collation", "weights", "default_language",
                  "language_override", "textIndexVersion", "2dsphereIndexVersion", "bits", "min",
                  "max", "wildcardProjection", "ns"}


class Index:
    """One index; unique ones keep the map from key to _id that enforces uniqueness."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        self.fields = list(spec["key"].items())
        self.is_id = self.name == "_id_"
        self.unique = bool(spec.get("unique")) and not self.is_id
        self.sparse = bool(spec.get("sparse"))
        self.partial = spec.get("partialFilterExpression")
        self.entries: dict[tuple, object] = {}

    def keys_for(self, doc: dict | None) -> dict[tuple, tuple]:
        """{equality key: raw values} of the entries doc has in this index."""
        if doc is None or (self.partial is not None and not query.matches(self.partial, doc)):
            return {}
        per_field = []
        present = False
        for path, _ in self.fields:
            vals = path_values(doc, path.split("."), expand_last=True)
            if vals:
                present = True
            else:
                vals = [None]
            per_field.append({(_UNDEFINED_KEY if isinstance(v, list) and not v else hkey(v)): v for v in vals})
        if self.sparse and not present:
            return {}
        out = {}
        for combo in itertools.product(*(list(f.items()) for f in per_field)):
            out[tuple(k for k, _ in combo)] = tuple(v for _, v in combo)
        return out

    def dup_error(self, ns: str, raw: tuple, build: bool = False) -> CommandError:
        key_value = {path: v for (path, _), v in zip(self.fields, raw)}
        msg = "E11000 duplicate key error collection: %s index: %s dup key: { %s }" % (
            ns, self.name, ", ".join("%s: %s" % (p, render(v)) for p, v in key_value.items()))
        if build:
            msg = "Index build failed: %s" % msg
        return CommandError(11000, msg, keyPattern=dict(self.spec["key"]), keyValue=key_value)


class Collection:
    def __init__(self, db: str, name: str, options: dict | None = None):
        self.db = db
        self.name = name
        self.options = dict(options or {})
        self.uuid = Binary(uuid.uuid4().bytes, 4)
        self.docs: dict = {}
        # The BSON bytes of each stored document (encoded anyway, for the size check, when
        # it was stored), so reads need not encode it again: id(doc) -> (doc, bytes).
        self._raw: dict[int, tuple[dict, bytes]] = {}
        self.indexes: dict[str, Index] = {"_id_": Index({"v": 2, "key": {"_id": 1}, "name": "_id_"})}
        # The _id index's order, built on the first sort by _id, then kept up to date:
        # sort keys ascending and, beside them, the documents' equality keys.
        self._order: tuple[list, list] | None = None

    @property
    def ns(self) -> str:
        return "%s.%s" % (self.db, self.name)

    # --- reads ---------------------------------------------------------------------

    def _candidate_ids(self, flt: dict) -> tuple[list, bool]:
        """(ids worth looking at for flt, whether they all match for sure): one lookup
        for an _id equality or $in; exact when _id is the filter's only condition."""
        if flt and "_id" in flt:
            want = flt["_id"]
            if type(want) in _PLAIN_ID_TYPES:  # one equality: one lookup
                k = hkey(want)
                return ([k] if k in self.docs else []), len(flt) == 1
            is_ops = isinstance(want, dict) and want and next(iter(want)).startswith("$")
            if not is_ops:
                values = [want]
            elif set(want) == {"$eq"}:
                values = [want["$eq"]]
            elif set(want) == {"$in"} and isinstance(want["$in"], list) and not any(
                    isinstance(v, (Regex, list, dict)) or hasattr(v, "pattern") for v in want["$in"]):
                values = sorted(want["$in"], key=sort_key)
            else:
                return list(self.docs), False
            out, seen = [], set()
            for v in values:
                k = hkey(v)
                if k in self.docs and k not in seen:
                    seen.add(k)
                    out.append(k)
            return out, len(flt) == 1
        return list(self.docs), not flt

    def id_lookup(self, flt: dict) -> bool:
        """Does flt pick documents by _id equality or $in (a few hash lookups)?"""
        want = flt.get("_id", MISSING) if flt else MISSING
        if want is MISSING:
            return False
        if not (isinstance(want, dict) and want and next(iter(want)).startswith("$")):
            return True
        return set(want) in ({"$eq"}, {"$in"})

    def scan(self, flt: dict):
        """Matching documents, lazily, as a collection scan sees them: each document is
        read (and matched) in its state when the scan reaches it."""
        ids, exact = self._candidate_ids(flt)
        for k in ids:
            doc = self.docs.get(k)
            if doc is not None and (exact or query.matches(flt, doc)):
                yield doc

    def _id_order(self) -> tuple[list, list]:
        if self._order is None:
            pairs = sorted(((sort_key(d["_id"]), k) for k, d in self.docs.items()), key=lambda p: p[0])
            self._order = ([p[0] for p in pairs], [p[1] for p in pairs])
        return self._order

    def _order_add(self, doc: dict, idk) -> None:
        if self._order is not None:
            keys, ids = self._order
            sk = sort_key(doc["_id"])
            i = bisect.bisect_left(keys, sk)
            keys.insert(i, sk)
            ids.insert(i, idk)

    def _order_remove(self, doc: dict, idk) -> None:
        if self._order is not None:
            keys, ids = self._order
            i = bisect.bisect_left(keys, sort_key(doc["_id"]))
            if i < len(ids) and ids[i] == idk:
                del keys[i], ids[i]
            else:  # cannot happen; rebuild rather than trust a broken order
                self._order = None

    def scan_by_id(self, flt: dict, descending: bool = False):
        """Matching documents in _id order, lazily, as an _id index scan sees them: only
        the index range that top-level _id bounds ($gt/$gte/$lt/$lte, also inside a
        top-level $and) allow is walked, and each document is matched when reached."""
        keys, ids = self._id_order()
        lo, hi, bound_types = 0, len(keys), set()
        conds = [flt.get("_id")] + [c.get("_id") for c in flt.get("$and", []) if isinstance(c, dict)]
        for cond in conds:
            if not (isinstance(cond, dict) and cond and next(iter(cond)).startswith("$")):
                continue
            for op, v in cond.items():
                if op in ("$gt", "$gte", "$lt", "$lte") and not isinstance(v, (list, dict, Regex)):
                    sk = sort_key(v)
                    bound_types.add(sk[0])
                    if op == "$gt":
                        lo = max(lo, bisect.bisect_right(keys, sk))
                    elif op == "$gte":
                        lo = max(lo, bisect.bisect_left(keys, sk))
                    elif op == "$lt":
                        hi = min(hi, bisect.bisect_left(keys, sk))
                    else:
                        hi = min(hi, bisect.bisect_right(keys, sk))
        # Exact without the matcher: the filter is only _id bounds of one ordinary type
        # (type bracketing keeps other types out; NaN, null, MinKey/MaxKey go the slow way).
        only_bounds = (set(flt) == {"_id"} and isinstance(flt["_id"], dict) and flt["_id"]
                       and set(flt["_id"]) <= {"$gt", "$gte", "$lt", "$lte"} and len(bound_types) == 1
                       and next(iter(bound_types)) not in (1, 2, 100))
        rank = next(iter(bound_types)) if only_bounds else None
        window = list(zip(keys[lo:hi], ids[lo:hi])) if lo < hi else []
        if descending:
            window.reverse()
        for sk, k in window:
            doc = self.docs.get(k)
            if doc is None:
                continue
            if not flt or (rank is not None and sk[0] == rank and sk != (3, 0)) or query.matches(flt, doc):
                yield doc

    def find_all(self, flt: dict, sort=None) -> list:
        docs = list(self.scan(flt))
        return query.sort_docs(docs, sort) if sort else docs

    # --- writes --------------------------------------------------------------------

    def raw_of(self, doc: dict) -> bytes | None:
        """The BSON bytes of doc if it is (or was) stored here and they are at hand."""
        hit = self._raw.get(id(doc))
        return hit[1] if hit is not None and hit[0] is doc else None

    def _check_storable(self, doc: dict) -> bytes:
        """doc's BSON bytes, after checking it may be stored."""
        idv = doc.get("_id", MISSING)
        if type(idv) not in _PLAIN_ID_TYPES:
            if isinstance(idv, list):
                raise CommandError(2, "can't use an array for _id")
            if isinstance(idv, Regex) or hasattr(idv, "pattern"):
                raise CommandError(2, "can't use a regex for _id")
        raw = bson.encode(doc)
        size = len(raw)
        if size > MAX_BSON_OBJECT_SIZE:
            raise CommandError(10334, "object to insert too large. size in bytes: %d, max size: %d" % (size, MAX_BSON_OBJECT_SIZE))
        return raw

    def _validate(self, new: dict, old: dict | None, bypass: bool) -> None:
        validator = self.options.get("validator")
        if not validator or bypass:
            return
        level = self.options.get("validationLevel", "strict")
        action = self.options.get("validationAction", "error")
        if level == "off":
            return
        if level == "moderate" and old is not None and not validator_matches(validator, old):
            return
        if validator_matches(validator, new):
            return
        if action == "warn":
            print("validation warning: document %s in %s fails the validator" % (render(new.get("_id")), self.ns), flush=True)
            return
        raise CommandError(121, "Document failed validation",
                           errInfo={"failingDocumentId": new.get("_id"), "details": {"operatorName": "$jsonSchema" if "$jsonSchema" in validator else "$and"}})

    def _reindex(self, idk, old: dict | None, new: dict | None) -> None:
        """Check then apply the unique index changes of replacing old by new."""
        plans = []
        for idx in self.indexes.values():
            if not idx.unique:
                continue
            old_keys = idx.keys_for(old)
            new_keys = idx.keys_for(new)
            for k, raw in new_keys.items():
                if k not in old_keys:
                    owner = idx.entries.get(k)
                    if owner is not None and owner != idk:
                        raise idx.dup_error(self.ns, raw)
            plans.append((idx, old_keys, new_keys))
        for idx, old_keys, new_keys in plans:
            for k in old_keys:
                if k not in new_keys and idx.entries.get(k) == idk:
                    del idx.entries[k]
            for k in new_keys:
                idx.entries[k] = idk

    def insert(self, doc: dict, bypass_validation: bool = False) -> dict:
        if "_id" not in doc:
            doc = {"_id": ObjectId(), **doc}
        elif next(iter(doc)) != "_id":
            doc = {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
        raw = self._check_storable(doc)
        self._validate(doc, None, bypass_validation)
        idk = hkey(doc["_id"])
        if idk in self.docs:
            raise self.indexes["_id_"].dup_error(self.ns, (doc["_id"],))
        self._reindex(idk, None, doc)
        self.docs[idk] = doc
        self._raw[id(doc)] = (doc, raw)
        self._order_add(doc, idk)
        return doc

    def replace(self, old: dict, new: dict, bypass_validation: bool = False) -> None:
        """Store new in place of old (same _id)."""
        raw = self._check_storable(new)
        self._validate(new, old, bypass_validation)
        idk = hkey(old["_id"])
        self._reindex(idk, old, new)
        self._raw.pop(id(self.docs.get(idk, old)), None)
        self.docs[idk] = new
        self._raw[id(new)] = (new, raw)

    def remove(self, doc: dict) -> None:
        idk = hkey(doc["_id"])
        if idk in self.docs:
            self._reindex(idk, self.docs[idk], None)
            self._order_remove(self.docs[idk], idk)
            self._raw.pop(id(self.docs[idk]), None)
            del self.docs[idk]

    # --- indexes -------------------------------------------------------------------

    def add_index(self, spec: dict) -> bool:
        """Create an index from a createIndexes spec; False if it already exists."""
        if not isinstance(spec, dict) or not isinstance(spec.get("key"), dict) or not spec["key"]:
            raise CommandError(9, "The 'key' field must be a non-empty object")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise CommandError(9, "The 'name' field must be a non-empty string")
        unknown = set(spec) - _INDEX_OPTIONS
        if unknown:
            raise CommandError(197, "The field '%s' is not valid for an index specification. Specification: %s" % (sorted(unknown)[0], render(spec)))
        if spec.get("collation") not in (None, {"locale": "simple"}):
            raise CommandError(238, "mongod stand-in does not implement index collations")
        if "partialFilterExpression" in spec:
            pfe = spec["partialFilterExpression"]
            if not isinstance(pfe, dict):
                raise CommandError(14, "'partialFilterExpression' for an index must be a document")
            query.matches(pfe, {})
        clean = {"v": 2, "key": spec["key"], "name": name}
        for opt in ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "hidden"):
            if opt in spec and not (opt in ("unique", "sparse", "hidden") and not spec[opt]):
                clean[opt] = spec[opt]
        same_options = {k: v for k, v in clean.items() if k not in ("v", "name")}
        for idx in self.indexes.values():
            other_options = {k: v for k, v in idx.spec.items() if k not in ("v", "name")}
            same_key = list(idx.spec["key"].items()) == list(clean["key"].items())
            if idx.name == name:
                if same_key and other_options == same_options:
                    return False
                raise CommandError(86, "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: %s, existing index: %s" % (render(clean), render(idx.spec)))
            if same_key and idx.spec.get("partialFilterExpression") == clean.get("partialFilterExpression"):
                if other_options == same_options:
                    raise CommandError(85, "Index already exists with a different name: %s" % idx.name)
                raise CommandError(85, "An equivalent index already exists with the same name but different options. Requested index: %s, existing index: %s" % (render(clean), render(idx.spec)))
        index = Index(clean)
        if index.unique:
            for idk, doc in self.docs.items():
                for k, raw in index.keys_for(doc).items():
                    owner = index.entries.get(k)
                    if owner is not None and owner != idk:
                        raise index.dup_error(self.ns, raw, build=True)
                    index.entries[k] = idk
        self.indexes[name] = index
        return True

    def listing(self, name_only: bool = False) -> dict:
        """This collection as listCollections shows it."""
        if name_only:
            return {"name": self.name, "type": "collection"}
        return {"name": self.name, "type": "collection", "options": dict(self.options),
                "info": {"readOnly": False, "uuid": self.uuid},
                "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}


_CREATE_OPTIONS = {"validator", "validationLevel", "validationAction", "encryptedFields", "clusteredIndex"}
_UNSUPPORTED_CREATE = {"capped", "size", "max", "timeseries",
                       "viewOn", "pipeline", "changeStreamPreAndPostImages", "storageEngine",
                       "indexOptionDefaults", "expireAfterSeconds", "collation"}


def check_collection_options(options: dict) -> dict:
    """The validator options of create/collMod, checked; anything else is refused."""
    for k in options:
        if k in _UNSUPPORTED_CREATE:
            raise CommandError(238, "mongod stand-in does not implement the collection option '%s'" % k)
    if "validator" in options:
        check_validator(options["validator"])
    if "clusteredIndex" in options:
        options = {**options, "clusteredIndex": _clustered_index(options["clusteredIndex"])}
    if "encryptedFields" in options:
        options = {**options, "encryptedFields": _encrypted_fields(options["encryptedFields"])}
    if options.get("validationLevel", "strict") not in ("off", "strict", "moderate"):
        raise CommandError(2, "Enumeration value '%s' for field 'validationLevel' is not a valid value." % options["validationLevel"])
    if options.get("validationAction", "error") not in ("error", "warn"):
        raise CommandError(2, "Enumeration value '%s' for field 'validationAction' is not a valid value." % options["validationAction"])
    return {k: v for k, v in options.items() if k in _CREATE_OPTIONS}


def _clustered_index(spec) -> dict:
    """A clustered index on _id (the only kind; what drivers create for Queryable
    Encryption's esc/ecoc collections), as listCollections shows it. Storage is the same:
    the stand-in keeps every collection's _id order anyway."""
    if isinstance(spec, bool) and spec:
        return {"v": 2, "key": {"_id": 1}, "name": "_id_", "unique": True}
    if not isinstance(spec, dict) or spec.get("key") != {"_id": 1} or spec.get("unique") is not True:
        raise CommandError(5979702, "The clusteredIndex option must be {key: {_id: 1}, unique: true}")
    unknown = set(spec) - {"key", "unique", "name", "v"}
    if unknown:
        raise CommandError(40415, "BSON field 'clusteredIndex.%s' is an unknown field." % sorted(unknown)[0])
    return {"v": 2, "key": {"_id": 1}, "name": spec.get("name", "_id_"), "unique": True}


def _encrypted_fields(ef) -> dict:
    """Queryable Encryption's encryptedFields, kept so listCollections reports it (the
    stand-in does not run QE's server side: no ESC/ECOC upkeep, no __safeContent__)."""
    if not isinstance(ef, dict) or not isinstance(ef.get("fields"), list):
        raise CommandError(14, "BSON field 'encryptedFields.fields' is missing or not an array")
    for f in ef["fields"]:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str) or not isinstance(f.get("keyId"), Binary) \
                or f["keyId"].subtype != 4:
            raise CommandError(14, "encryptedFields.fields entries need a string 'path' and a UUID 'keyId'")
    return ef


def check_names(db: str, coll: str | None = None) -> None:
    if not isinstance(db, str) or not db or any(c in db for c in '/\\. "$\x00'):
        raise CommandError(73, "Invalid database name: '%s'" % db)
    if coll is not None:
        if not isinstance(coll, str) or not coll or "$" in coll or "\x00" in coll or coll.startswith("."):
            raise CommandError(73, "Invalid namespace specified '%s.%s'" % (db, coll))


class Store:
    """Every database of the stand-in."""

    def __init__(self):
        self.lock = threading.RLock()
        self.dbs: dict[str, dict[str, Collection]] = {}

    def get(self, db: str, coll: str) -> Collection | None:
        return self.dbs.get(db, {}).get(coll)

    def get_or_create(self, db: str, coll: str) -> tuple[Collection, bool]:
        check_names(db, coll)
        existing = self.get(db, coll)
        if existing is not None:
            return existing, False
        c = self.dbs.setdefault(db, {})[coll] = Collection(db, coll)
        return c, True

    def create(self, db: str, coll: str, options: dict) -> None:
        check_names(db, coll)
        options = check_collection_options(options)
        existing = self.get(db, coll)
        if existing is not None:
            if existing.options == options:
                return
            raise CommandError(48, "Collection %s.%s already exists." % (db, coll))
        self.dbs.setdefault(db, {})[coll] = Collection(db, coll, options)

    def drop(self, db: str, coll: str) -> Collection | None:
        c = self.dbs.get(db, {}).pop(coll, None)
        if c is not None:
            c.docs = {}  # open cursors on it find nothing more
            c._raw = {}
            if not self.dbs[db]:
                del self.dbs[db]
        return c

    def drop_db(self, db: str) -> None:
        for c in self.dbs.pop(db, {}).values():
            c.docs = {}
            c._raw = {}
