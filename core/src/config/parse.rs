//! Parsing keyshift.toml (or the same document as JSON) into the [`Config`] model.
//!
//! Both formats go through one path: text → `serde_json::Value` → a structural walk that
//! builds the lenient model and reports unknown fields (with "did you mean"), wrong
//! types and missing fields as diagnostics. A hand-written walk rather than
//! `#[derive(Deserialize)]` because serde stops at the first error, and a guide that
//! validates as the user types must report every problem at once, each with its path.
//!
//! Parsing never panics, whatever the input: syntax errors become a `KS-CFG-001`
//! diagnostic with the best path we can recover from the error position.

use serde_json::{Map, Value};

use super::model::Config;
pub use super::walk::FIELDS;
use super::walk::Walker;
use crate::diagnostic::{Diagnostic, codes, pointer};

/// A parsed configuration and what the parser found wrong with its shape. Serializes
/// as `{"config": ..., "diagnostics": [...]}` for the browser.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Parsed {
    /// The model, as complete as the input allows.
    pub config: Config,
    /// Structural diagnostics (syntax, unknown fields, types, missing fields).
    pub diagnostics: Vec<Diagnostic>,
}

/// Deepest bracket nesting accepted before parsing: keyshift.toml is at most four
/// levels deep, and refusing absurd nesting up front keeps the parsers' recursion (and so
/// the stack, in the browser too) bounded on hostile input.
const MAX_NESTING: usize = 32;

/// Parses keyshift.toml text.
pub fn parse_toml(text: &str) -> Parsed {
    if let Some(d) = nesting_guard(text) {
        return failed(d);
    }
    match toml::from_str::<toml::Table>(text) {
        Ok(table) => from_value(&toml_to_json(toml::Value::Table(table))),
        Err(e) => {
            let (path, line) = match e.span() {
                Some(span) => (toml_path_at(text, span.start), line_of(text, span.start)),
                None => (String::new(), None),
            };
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            let bad_line = e
                .span()
                .and_then(|span| {
                    let start = text.get(..span.start)?.rfind('\n').map_or(0, |i| i + 1);
                    text.get(start..)?.lines().next()
                })
                .unwrap_or("");
            // The commonest slip: a named provider in a table header without quotes.
            let hint = if bad_line.trim_start().starts_with('[') && bad_line.contains(':') {
                "Quote named providers in table headers: [kmsProviders.\"aws:prod\"]."
            } else {
                "Fix the TOML syntax at that line; strings need double quotes, tables are [section] headers."
            };
            failed(Diagnostic::error(
                codes::SYNTAX,
                path,
                format!("keyshift.toml is not valid TOML{at}: {}", e.message()),
                hint,
            ))
        }
    }
}

/// Parses the configuration as JSON text (the browser's form).
pub fn parse_json(text: &str) -> Parsed {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => from_value(&v),
        Err(e) => failed(Diagnostic::error(
            codes::SYNTAX,
            "",
            format!(
                "the configuration is not valid JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                e
            ),
            "Fix the JSON syntax at that position.",
        )),
    }
}

/// Builds the model from a JSON value (an object shaped like keyshift.toml).
pub fn from_value(value: &Value) -> Parsed {
    let (config, diagnostics) = Walker::run(value);
    Parsed {
        config,
        diagnostics,
    }
}

fn failed(d: Diagnostic) -> Parsed {
    Parsed {
        config: Config::default(),
        diagnostics: vec![d],
    }
}

/// Rejects nesting deeper than [`MAX_NESTING`] before any recursive parser sees it.
/// Counts brackets outside of quoted strings; good enough to bound depth.
fn nesting_guard(text: &str) -> Option<Diagnostic> {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q || c == '\n' {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    (max > MAX_NESTING).then(|| {
        Diagnostic::error(
            codes::SYNTAX,
            "",
            format!("the configuration nests brackets {max} deep; keyshift.toml needs at most 4"),
            "Remove the extra nesting.",
        )
    })
}

fn line_of(text: &str, offset: usize) -> Option<usize> {
    text.get(..offset)
        .map(|before| before.matches('\n').count() + 1)
}

/// Best-effort JSON pointer for a TOML error position: the last `[table]` header before
/// the error, plus the key on the error's line when it has one.
fn toml_path_at(text: &str, offset: usize) -> String {
    let Some(before) = text.get(..offset) else {
        return String::new();
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let mut segments: Vec<String> = Vec::new();
    for l in before[..line_start].lines() {
        let t = l.trim();
        if t.starts_with('[')
            && !t.starts_with("[[")
            && let Some(end) = t.rfind(']')
        {
            segments = split_dotted(&t[1..end]);
        }
    }
    let t = line.trim();
    if t.starts_with('[') {
        if let Some(end) = t.rfind(']') {
            segments = split_dotted(&t[1..end]);
        }
    } else if let Some(eq) = t.find('=') {
        segments.extend(split_dotted(&t[..eq]));
    }
    pointer(&segments)
}

/// Splits a TOML dotted key (`kmsProviders."aws:prod"`) into its parts.
pub(super) fn split_dotted(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in key.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '.' => out.push(std::mem::take(&mut cur).trim().to_string()),
            None => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// TOML value → JSON value. Date-times become `{"$datetime": "..."}` so that a
/// date-time where a string belongs is reported as the wrong type.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::from(f.to_string())),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            let mut m = Map::new();
            m.insert("$datetime".into(), Value::String(d.to_string()));
            Value::Object(m)
        }
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_error_path_points_at_the_key() {
        let text =
            "[keyVault]\nuri = \"env:X\"\n\n[kmsProviders.\"aws:prod\"]\naccessKeyId = env:X\n";
        let p = parse_toml(text);
        assert_eq!(p.diagnostics.len(), 1);
        let d = &p.diagnostics[0];
        assert_eq!(d.code, codes::SYNTAX);
        assert_eq!(d.path, "/kmsProviders/aws:prod/accessKeyId");
        assert!(d.message.contains("line 5"), "{}", d.message);
    }

    #[test]
    fn unquoted_named_provider_header_gets_a_hint() {
        let p = parse_toml("[kmsProviders.aws:prod]\n");
        assert_eq!(p.diagnostics[0].code, codes::SYNTAX);
        assert!(
            p.diagnostics[0].hint.contains("\"aws:prod\""),
            "{:?}",
            p.diagnostics[0]
        );
    }

    #[test]
    fn dash_named_provider_gets_a_colon_hint() {
        let p = from_value(&serde_json::json!({"kmsProviders": {"aws-prod": {}}}));
        let d = p
            .diagnostics
            .iter()
            .find(|d| d.code == codes::PRV_UNKNOWN_TYPE)
            .unwrap();
        assert!(d.hint.contains("`aws:prod`"), "{}", d.hint);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let text = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let p = parse_toml(&text);
        assert_eq!(p.diagnostics[0].code, codes::SYNTAX);
    }

    #[test]
    fn split_dotted_handles_quotes() {
        assert_eq!(
            split_dotted("kmsProviders.\"aws:prod\""),
            vec!["kmsProviders", "aws:prod"]
        );
        assert_eq!(split_dotted(" a . 'b.c' "), vec!["a", "b.c"]);
    }
}
