"""Collection validators: query-operator validators and a subset of $jsonSchema.

A validator given to create or collMod is checked up front: a $jsonSchema keyword
outside the subset below is refused (code 238) rather than silently not enforced.
Subset: bsonType, type, required, properties, additionalProperties (bool or schema),
items (one schema), enum, minItems, maxItems, minLength, maxLength, minimum, maximum,
title, description, and the CSFLE keywords: `encrypt` (the value must be BSON binary
subtype 6 holding a CSFLE blob, deterministic or random: first byte 1 or 2, as mongod
checks) and `encryptMetadata` (accepted; it only carries defaults for drivers).
A validator's schema is compiled once into nested checks (`_compile`) that answer what
`schema_matches` answers; every write is validated against the whole new document.
"""

from __future__ import annotations

from bson.binary import Binary

from . import query
from .errors import CommandError, not_implemented
from .values import hkey, is_number, sort_key, type_name

_KEYWORDS = {"bsonType", "type", "required", "properties", "additionalProperties", "items", "enum",
             "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "title",
             "description", "encrypt", "encryptMetadata"}
_JSON_TYPES = {"object": {"object"}, "array": {"array"}, "string": {"string"}, "boolean": {"bool"},
               "null": {"null"}, "number": {"int", "long", "double", "decimal"}}


def check_schema(schema, where: str = "$jsonSchema") -> None:
    if not isinstance(schema, dict):
        raise CommandError(14, "%s must be an object" % where)
    for kw, arg in schema.items():
        if kw not in _KEYWORDS:
            raise not_implemented("the $jsonSchema keyword '%s'" % kw)
        if kw == "properties":
            if not isinstance(arg, dict):
                raise CommandError(14, "$jsonSchema keyword 'properties' must be an object")
            for name, sub in arg.items():
                check_schema(sub, "%s.properties.%s" % (where, name))
        elif kw == "items" or (kw == "additionalProperties" and isinstance(arg, dict)):
            check_schema(arg, "%s.%s" % (where, kw))
        elif kw == "type":
            for t in arg if isinstance(arg, list) else [arg]:
                if t not in _JSON_TYPES:
                    raise CommandError(9, "Unknown $jsonSchema type: %s" % t)
        elif kw in ("encrypt", "encryptMetadata") and not isinstance(arg, dict):
            raise CommandError(14, "$jsonSchema keyword '%s' must be an object" % kw)


def _type_ok(value, wanted: set[str]) -> bool:
    t = type_name(value)
    return t in wanted or ("number" in wanted and is_number(value))


def _is_fle_blob(value) -> bool:
    # Binary subtype 6 whose first byte names a CSFLE blob (1 deterministic, 2 random).
    return isinstance(value, Binary) and value.subtype == 6 and len(value) > 17 and value[0] in (1, 2)


def schema_matches(schema: dict, value) -> bool:
    for kw, arg in schema.items():
        if kw == "encrypt":
            if not _is_fle_blob(value):
                return False
        elif kw == "bsonType":
            if not _type_ok(value, set(arg if isinstance(arg, list) else [arg])):
                return False
        elif kw == "type":
            wanted = set()
            for t in arg if isinstance(arg, list) else [arg]:
                wanted |= _JSON_TYPES[t]
            if not _type_ok(value, wanted):
                return False
        elif kw == "enum":
            if hkey(value) not in {hkey(x) for x in arg}:
                return False
        elif isinstance(value, dict):
            if kw == "required" and any(f not in value for f in arg):
                return False
            if kw == "properties":
                for name, sub in arg.items():
                    if name in value and not schema_matches(sub, value[name]):
                        return False
            if kw == "additionalProperties":
                extra = [k for k in value if k not in schema.get("properties", {})]
                if arg is False and extra:
                    return False
                if isinstance(arg, dict) and not all(schema_matches(arg, value[k]) for k in extra):
                    return False
        elif isinstance(value, list):
            if kw == "items" and not all(schema_matches(arg, x) for x in value):
                return False
            if kw == "minItems" and len(value) < arg:
                return False
            if kw == "maxItems" and len(value) > arg:
                return False
        elif isinstance(value, str):
            if kw == "minLength" and len(value) < arg:
                return False
            if kw == "maxLength" and len(value) > arg:
                return False
        elif is_number(value):
            if kw == "minimum" and sort_key(value) < sort_key(arg):
                return False
            if kw == "maximum" and sort_key(value) > sort_key(arg):
                return False
    return True


_compiled: dict[int, tuple[dict, object]] = {}


def _all_of(checks: list):
    if len(checks) == 1:
        return checks[0]
    checks = tuple(checks)

    def check(v):
        for c in checks:
            if not c(v):
                return False
        return True
    return check


def _properties(subs: tuple):
    def check(v):
        if isinstance(v, dict):
            for name, f in subs:
                if name in v and not f(v[name]):
                    return False
        return True
    return check


def _type_check(wanted: set):
    if "object" in wanted:  # the common case first: a plain document is an "object"
        return lambda v: type(v) is dict or _type_ok(v, wanted)
    return lambda v: _type_ok(v, wanted)


def _compile(schema: dict):
    """A function value -> bool giving what schema_matches(schema, value) gives, built
    once per schema; None when an argument has a shape schema_matches would trip over
    at run time (then it runs instead, errors and all)."""
    checks = []
    for kw, arg in schema.items():
        if kw == "encrypt":
            checks.append(_is_fle_blob)
        elif kw in ("bsonType", "type"):
            names = arg if isinstance(arg, list) else [arg]
            if not all(isinstance(n, str) for n in names) or (kw == "type" and not all(n in _JSON_TYPES for n in names)):
                return None
            wanted = set(names) if kw == "bsonType" else set().union(*(_JSON_TYPES[n] for n in names))
            checks.append(_type_check(wanted))
        elif kw == "enum":
            if not isinstance(arg, list):
                return None
            keys = {hkey(x) for x in arg}
            checks.append(lambda v, k=keys: hkey(v) in k)
        elif kw == "required":
            if not isinstance(arg, list) or not all(isinstance(f, str) for f in arg):
                return None
            checks.append(lambda v, a=tuple(arg): not isinstance(v, dict) or all(f in v for f in a))
        elif kw == "properties":
            if not isinstance(arg, dict):
                return None
            subs = []
            for name, sub in arg.items():
                f = _compile(sub) if isinstance(sub, dict) else None
                if f is None:
                    return None
                subs.append((name, f))
            checks.append(_properties(tuple(subs)))
        elif kw == "additionalProperties":
            props = schema.get("properties", {})
            if not isinstance(props, dict):
                return None
            if arg is False:
                checks.append(lambda v, p=props: not isinstance(v, dict) or all(k in p for k in v))
            elif isinstance(arg, dict):
                f = _compile(arg)
                if f is None:
                    return None
                checks.append(lambda v, p=props, f=f: not isinstance(v, dict) or all(f(v[k]) for k in v if k not in p))
        elif kw == "items":
            f = _compile(arg) if isinstance(arg, dict) else None
            if f is None:
                return None
            checks.append(lambda v, f=f: not isinstance(v, list) or all(f(x) for x in v))
        elif kw in ("minItems", "maxItems", "minLength", "maxLength"):
            if not isinstance(arg, (int, float)):
                return None
            kind = list if kw.endswith("Items") else str
            if kw.startswith("min"):
                checks.append(lambda v, n=arg, t=kind: not isinstance(v, t) or not len(v) < n)
            else:
                checks.append(lambda v, n=arg, t=kind: not isinstance(v, t) or not len(v) > n)
        elif kw in ("minimum", "maximum"):
            bound = sort_key(arg)
            if kw == "minimum":
                checks.append(lambda v, b=bound: not is_number(v) or not sort_key(v) < b)
            else:
                checks.append(lambda v, b=bound: not is_number(v) or not sort_key(v) > b)
        elif kw not in ("title", "description", "encryptMetadata"):
            return None
    if not checks:
        return lambda v: True
    return _all_of(checks)


def _schema_check(schema: dict):
    hit = _compiled.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_compiled) > 64:
            _compiled.clear()
        f = _compile(schema)
        hit = _compiled[id(schema)] = (schema, f if f is not None else (lambda v: schema_matches(schema, v)))
    return hit[1]


def check_validator(validator) -> None:
    """Refuse, at create/collMod time, a validator the stand-in could not enforce."""
    if not isinstance(validator, dict):
        raise CommandError(14, "'validator' option must be an object")
    rest = {k: v for k, v in validator.items() if k != "$jsonSchema"}
    if "$jsonSchema" in validator:
        check_schema(validator["$jsonSchema"])
    if "$jsonSchema" in repr(rest):
        raise not_implemented("$jsonSchema nested inside other validator operators")
    query.matches(rest, {})  # surfaces unknown or unsupported operators now


def validator_matches(validator: dict, doc: dict) -> bool:
    if "$jsonSchema" in validator and not _schema_check(validator["$jsonSchema"])(doc):
        return False
    if len(validator) == 1 and "$jsonSchema" in validator:
        return True  # nothing else to match
    rest = {k: v for k, v in validator.items() if k != "$jsonSchema"}
    return query.matches(rest, doc)
