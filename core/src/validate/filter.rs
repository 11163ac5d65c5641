//! `rewrap.filter`: the query operators it uses must be ones MongoDB knows, so a typo
//! (`$exist`, `$regx`) is caught offline with a suggestion instead of by the server
//! at run time.
//!
//! The walk follows query structure: field names hold values or operator documents;
//! logical operators hold arrays of queries; `$not` and `$elemMatch` hold queries.
//! Extended JSON type wrappers (`{"$binary": ...}`, `{"$oid": ...}`) are values, not
//! operators. `$expr`, `$where`, `$jsonSchema` and `$text` take their own languages and
//! are not looked into.

use serde_json::Value;

/// Query operators MongoDB accepts in a find filter.
pub const QUERY_OPERATORS: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$not",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$type",
    "$regex",
    "$options",
    "$elemMatch",
    "$size",
    "$all",
    "$mod",
    "$expr",
    "$where",
    "$comment",
    "$jsonSchema",
    "$text",
    "$bitsAllSet",
    "$bitsAnySet",
    "$bitsAllClear",
    "$bitsAnyClear",
    "$geoWithin",
    "$geoIntersects",
    "$near",
    "$nearSphere",
    "$sampleRate",
];

/// Extended JSON type wrappers (canonical, relaxed and legacy forms).
const EXTENDED_JSON: &[&str] = &[
    "$binary",
    "$uuid",
    "$oid",
    "$date",
    "$numberLong",
    "$numberInt",
    "$numberDouble",
    "$numberDecimal",
    "$regularExpression",
    "$timestamp",
    "$minKey",
    "$maxKey",
    "$symbol",
    "$code",
    "$scope",
    "$dbPointer",
    "$undefined",
    "$ref",
    "$id",
    "$db",
];

/// Operators whose argument is another language (not walked).
const OPAQUE: &[&str] = &["$expr", "$where", "$jsonSchema", "$text", "$comment"];

/// Operators whose argument is an array of queries.
const LOGICAL: &[&str] = &["$and", "$or", "$nor"];

/// Unknown operators in `filter`: (where, operator), `where` a dotted path of field
/// names (empty at the top level).
pub fn unknown_operators(filter: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    query(filter, "", &mut out);
    out
}

fn is_extended_json(map: &serde_json::Map<String, Value>) -> bool {
    map.keys()
        .next()
        .is_some_and(|k| EXTENDED_JSON.contains(&k.as_str()))
}

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

/// A query document: field names and top-level operators.
fn query(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = v else {
        return;
    };
    for (k, val) in map {
        if !k.starts_with('$') {
            condition(val, &join(at, k), out);
        } else if LOGICAL.contains(&k.as_str()) {
            for q in val.as_array().into_iter().flatten() {
                query(q, at, out);
            }
        } else if !QUERY_OPERATORS.contains(&k.as_str()) {
            out.push((at.to_string(), k.clone()));
        }
    }
}

/// What a field is compared with: a value, or a document of operators.
fn condition(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = v else {
        return;
    };
    if is_extended_json(map) || !map.keys().any(|k| k.starts_with('$')) {
        return; // a value (documents compare whole)
    }
    for (k, val) in map {
        match k.as_str() {
            "$not" => condition(val, at, out),
            "$elemMatch" => {
                // Either a query on the elements' fields or operators on the elements.
                query(val, at, out);
                if let Value::Object(m) = val {
                    for (ek, ev) in m.iter().filter(|(ek, _)| ek.starts_with('$')) {
                        if !QUERY_OPERATORS.contains(&ek.as_str()) {
                            continue; // already reported by query()
                        }
                        condition(ev, at, out);
                    }
                }
            }
            op if OPAQUE.contains(&op) => {}
            op if QUERY_OPERATORS.contains(&op) => {}
            op if op.starts_with('$') => out.push((at.to_string(), op.to_string())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unknown(v: Value) -> Vec<String> {
        unknown_operators(&v)
            .into_iter()
            .map(|(_, op)| op)
            .collect()
    }

    #[test]
    fn known_queries_pass() {
        for q in [
            json!({}),
            json!({"masterKey.provider": "local"}),
            json!({"masterKey.provider": {"$in": ["local", "aws"]}, "status": {"$ne": 1}}),
            json!({"$or": [{"keyAltNames": {"$exists": false}}, {"keyAltNames": {"$size": 0}}]}),
            json!({"_id": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "04"}}}),
            json!({"creationDate": {"$lt": {"$date": "2026-01-01T00:00:00Z"}}}),
            json!({"keyAltNames": {"$elemMatch": {"$regex": "^tenant-"}}}),
            json!({"masterKey": {"provider": "local"}}),
            json!({"$expr": {"$eq": ["$status", {"$literal": 0}]}}),
            json!({"status": {"$not": {"$gt": 0}}}),
        ] {
            assert!(unknown(q.clone()).is_empty(), "{q}");
        }
    }

    #[test]
    fn typos_are_found_where_they_are() {
        let found = unknown_operators(&json!({"keyAltNames": {"$exist": true}}));
        assert_eq!(
            found,
            vec![("keyAltNames".to_string(), "$exist".to_string())]
        );
        assert_eq!(unknown(json!({"$orr": []})), vec!["$orr"]);
        assert_eq!(
            unknown(json!({"$and": [{"a": {"$gtt": 1}}, {"b": {"$not": {"$regx": "x"}}}]})),
            vec!["$gtt", "$regx"]
        );
    }
}
