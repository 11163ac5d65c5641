//! Rewriting the DEK ids a `$jsonSchema` names (validators and schemaMap entries).
//!
//! Input and output are canonical extended JSON (`serde_json::Value`): a key id is
//! `{"$binary": {"base64": .., "subType": "04"}}` (the legacy `{"$binary": .., "$type":
//! "04"}` and relaxed `{"$uuid": ..}` forms are read too, and written back in the form
//! they came in). Key ids sit in `encrypt.keyId` (a field's schema) and
//! `encryptMetadata.keyId` (inherited by the fields below it), at any depth reached
//! through `properties`, `patternProperties`, `additionalProperties`, `items` (a schema
//! or an array of them), `additionalItems`, `not`, `anyOf`, `allOf` and `oneOf`. A whole
//! validator (`{"$jsonSchema": ..}`) is accepted as well as its `$jsonSchema` value.
//!
//! A `keyId` that is a JSON pointer string (`"/tenant"`: the key alt name is read from
//! the document) names no key by id; it is left alone and reported, because whether it
//! resolves to a new key depends on where the keyAltNames are (retire moves them).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::ids::{is_replacement, parse_uuid, replacement_id, uuid_string};

/// The result of [`rewrite_key_ids`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    /// The schema with every old key id replaced.
    pub schema: Value,
    /// Each distinct (old, new) pair replaced, in the order the schema was walked.
    pub replaced: Vec<([u8; 16], [u8; 16])>,
    /// JSON-pointer `keyId`s found (left as they were), in order of appearance.
    pub pointers: Vec<String>,
}

impl Rewrite {
    /// Whether the schema changed (a collMod is needed).
    pub fn changed(&self) -> bool {
        !self.replaced.is_empty()
    }
}

/// Replaces every key id `is_old` accepts by its [`replacement_id`]. Ids that already
/// are replacements are never replaced again.
pub fn rewrite_key_ids(schema: &Value, is_old: impl Fn(&[u8; 16]) -> bool) -> Rewrite {
    let mut out = Rewrite {
        schema: schema.clone(),
        replaced: Vec::new(),
        pointers: Vec::new(),
    };
    let mut visit = |key_id: &mut Value, pointers: &mut Vec<String>| match key_id {
        Value::String(p) => pointers.push(p.clone()),
        Value::Array(ids) => {
            for id in ids.iter_mut() {
                let Some(old) = uuid_of(id) else { continue };
                if is_replacement(&old) || !is_old(&old) {
                    continue;
                }
                let new = replacement_id(&old);
                *id = same_form(id, &new);
                if !out.replaced.contains(&(old, new)) {
                    out.replaced.push((old, new));
                }
            }
        }
        _ => {}
    };
    walk_schema(&mut out.schema, &mut |k, p| visit(k, p), &mut out.pointers);
    out
}

/// Every key id the schema names (distinct, in the order the schema is walked).
pub fn key_ids_in(schema: &Value) -> Vec<[u8; 16]> {
    let mut copy = schema.clone();
    let mut ids = Vec::new();
    let mut ignored = Vec::new();
    walk_schema(
        &mut copy,
        &mut |key_id, _| {
            if let Value::Array(list) = key_id {
                for id in list.iter().filter_map(uuid_of) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        },
        &mut ignored,
    );
    ids
}

/// Keywords whose value is a schema.
/// (`$jsonSchema` too, so a whole validator document can be passed as well.)
const SCHEMA_KEYWORDS: &[&str] = &[
    "$jsonSchema",
    "additionalProperties",
    "additionalItems",
    "not",
    "items",
];
/// Keywords whose value is a map of name to schema.
const MAP_KEYWORDS: &[&str] = &["properties", "patternProperties"];
/// Keywords whose value is an array of schemas (also `items` in its tuple form).
const LIST_KEYWORDS: &[&str] = &["anyOf", "allOf", "oneOf", "items"];

type Visit<'a> = dyn FnMut(&mut Value, &mut Vec<String>) + 'a;

fn walk_schema(schema: &mut Value, visit: &mut Visit<'_>, pointers: &mut Vec<String>) {
    let Value::Object(obj) = schema else { return };
    for kw in ["encryptMetadata", "encrypt"] {
        if let Some(Value::Object(spec)) = obj.get_mut(kw)
            && let Some(key_id) = spec.get_mut("keyId")
        {
            visit(key_id, pointers);
        }
    }
    for (kw, value) in obj.iter_mut() {
        let kw = kw.as_str();
        match value {
            Value::Object(map) if MAP_KEYWORDS.contains(&kw) => {
                for sub in map.values_mut() {
                    walk_schema(sub, visit, pointers);
                }
            }
            Value::Object(_) if SCHEMA_KEYWORDS.contains(&kw) => {
                walk_schema(value, visit, pointers);
            }
            Value::Array(list) if LIST_KEYWORDS.contains(&kw) => {
                for sub in list.iter_mut() {
                    walk_schema(sub, visit, pointers);
                }
            }
            _ => {}
        }
    }
}

/// The UUID in an extended JSON binary subtype 4 (or `$uuid`) value.
pub fn uuid_of(value: &Value) -> Option<[u8; 16]> {
    let obj = value.as_object()?;
    if let Some(Value::String(text)) = obj.get("$uuid") {
        return parse_uuid(text);
    }
    let (b64, subtype) = match obj.get("$binary")? {
        Value::Object(bin) => (bin.get("base64")?.as_str()?, bin.get("subType")?.as_str()?),
        Value::String(b64) => (b64.as_str(), obj.get("$type")?.as_str()?),
        _ => return None,
    };
    if !subtype.eq_ignore_ascii_case("04") && subtype != "4" {
        return None;
    }
    STANDARD.decode(b64).ok()?.try_into().ok()
}

/// A key id as canonical extended JSON (binary subtype 4).
pub fn uuid_value(id: &[u8; 16]) -> Value {
    json!({"$binary": {"base64": STANDARD.encode(id), "subType": "04"}})
}

/// `id` in the same extended JSON form as `like`.
fn same_form(like: &Value, id: &[u8; 16]) -> Value {
    let Some(obj) = like.as_object() else {
        return uuid_value(id);
    };
    if obj.contains_key("$uuid") {
        return json!({"$uuid": uuid_string(id)});
    }
    if let Some(Value::String(_)) = obj.get("$binary") {
        let mut m = Map::new();
        m.insert("$binary".into(), Value::String(STANDARD.encode(id)));
        m.insert(
            "$type".into(),
            obj.get("$type").cloned().unwrap_or("04".into()),
        );
        return Value::Object(m);
    }
    uuid_value(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 16] = [0xA1; 16];
    const B: [u8; 16] = [0xB2; 16];
    const C: [u8; 16] = [0xC3; 16];

    fn enc(id: &[u8; 16], alg: &str) -> Value {
        json!({"encrypt": {"keyId": [uuid_value(id)], "bsonType": "string", "algorithm": alg}})
    }

    fn ab(id: &[u8; 16]) -> bool {
        *id == A || *id == B
    }

    #[test]
    fn rewrites_top_level_and_nested_fields() {
        let schema = json!({
            "bsonType": "object",
            "encryptMetadata": {"keyId": [uuid_value(&A)]},
            "properties": {
                "ssn": enc(&A, "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"),
                "card": enc(&C, "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"),
                "medical": {"encrypt": {"keyId": "/tenant", "bsonType": "object",
                    "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Random"}},
                "address": {"bsonType": "object", "properties": {
                    "street": enc(&B, "AEAD_AES_256_CBC_HMAC_SHA_512-Random")}},
                "phones": {"bsonType": "array", "items": {"bsonType": "object",
                    "encryptMetadata": {"keyId": [uuid_value(&B), uuid_value(&C)]},
                    "properties": {"n": {"encrypt": {"bsonType": "string"}}}}},
                "tuple": {"items": [enc(&A, "x"), enc(&C, "x")]},
                "extra": {"patternProperties": {"^x_": enc(&B, "x")},
                    "additionalProperties": enc(&A, "x")},
                "choice": {"anyOf": [enc(&B, "x")]},
            }
        });
        let r = rewrite_key_ids(&schema, ab);
        let (na, nb) = (replacement_id(&A), replacement_id(&B));
        assert_eq!(r.replaced, vec![(A, na), (B, nb)]);
        assert_eq!(r.pointers, vec!["/tenant".to_string()]);
        assert!(r.changed());
        let mut ids = key_ids_in(&r.schema);
        ids.sort();
        let mut want = vec![na, nb, C];
        want.sort();
        assert_eq!(ids, want);
        let s = &r.schema;
        assert_eq!(s["encryptMetadata"]["keyId"][0], uuid_value(&na));
        assert_eq!(s["properties"]["card"], schema["properties"]["card"]);
        assert_eq!(s["properties"]["medical"], schema["properties"]["medical"]);
        assert_eq!(
            s["properties"]["phones"]["items"]["encryptMetadata"]["keyId"],
            json!([uuid_value(&nb), uuid_value(&C)])
        );
        assert_eq!(
            s["properties"]["extra"]["additionalProperties"]["encrypt"]["keyId"][0],
            uuid_value(&na)
        );
        assert_eq!(
            s["properties"]["extra"]["patternProperties"]["^x_"]["encrypt"]["keyId"][0],
            uuid_value(&nb)
        );
        assert_eq!(
            s["properties"]["choice"]["anyOf"][0]["encrypt"]["keyId"][0],
            uuid_value(&nb)
        );
        // Everything but key ids is untouched.
        assert_eq!(
            s["properties"]["ssn"]["encrypt"]["algorithm"],
            "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
        );
        // Rewriting again changes nothing: replacements are never replaced.
        let again = rewrite_key_ids(&r.schema, |id| ab(id) || is_replacement(id));
        assert!(!again.changed());
        assert_eq!(again.schema, r.schema);
    }

    #[test]
    fn reads_and_keeps_other_extended_json_forms() {
        let legacy = json!({"$binary": STANDARD.encode(A), "$type": "04"});
        let relaxed = json!({"$uuid": uuid_string(&A)});
        let schema = json!({"properties": {
            "a": {"encrypt": {"keyId": [legacy]}},
            "b": {"encrypt": {"keyId": [relaxed]}},
        }});
        assert_eq!(key_ids_in(&schema), vec![A]);
        let r = rewrite_key_ids(&schema, ab);
        let na = replacement_id(&A);
        assert_eq!(
            r.schema["properties"]["a"]["encrypt"]["keyId"][0],
            json!({"$binary": STANDARD.encode(na), "$type": "04"})
        );
        assert_eq!(
            r.schema["properties"]["b"]["encrypt"]["keyId"][0],
            json!({"$uuid": uuid_string(&na)})
        );
    }

    #[test]
    fn ignores_what_is_not_a_key_id() {
        let schema = json!({
            "properties": {
                // A field literally named "encrypt" is a property, not an encrypt spec.
                "encrypt": {"bsonType": "object", "properties": {
                    "keyId": {"bsonType": "binData"}}},
                "wrongSubtype": {"encrypt": {"keyId": [
                    {"$binary": {"base64": STANDARD.encode(A), "subType": "03"}}]}},
                "short": {"encrypt": {"keyId": [
                    {"$binary": {"base64": "AAAA", "subType": "04"}}]}},
                "bad64": {"encrypt": {"keyId": [
                    {"$binary": {"base64": "!!", "subType": "04"}}]}},
                "number": {"encrypt": {"keyId": 5}},
            },
            "description": {"encrypt": {"keyId": [uuid_value(&A)]}},
        });
        assert!(key_ids_in(&schema).is_empty());
        let r = rewrite_key_ids(&schema, |_| true);
        assert!(!r.changed());
        assert_eq!(r.schema, schema);
        assert!(key_ids_in(&json!("not a schema")).is_empty());
        assert!(key_ids_in(&json!([1, 2])).is_empty());
    }
}
