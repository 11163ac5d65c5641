//! keyshift-wasm: the browser guide's window onto keyshift-core.
//!
//! What it is for: exporting core's functions to JavaScript with wasm-bindgen, taking
//! and returning plain JS values, so the guide judges input exactly as `keyshift check`
//! does.
//!
//! What it is not: a place for logic. Every decision lives in keyshift-core; a function
//! here only converts arguments and results.
//!
//! Conventions for every export:
//! - a configuration argument is either a plain JS object shaped like keyshift.toml (the
//!   form the guide keeps) or a string holding the same document as JSON;
//! - results are plain JS objects and arrays (never `Map`), field names as in core's
//!   serde output (camelCase);
//! - a failure the user can fix (no target yet, unknown language) is thrown as a JS
//!   `Error` whose message is core's text.

use keyshift_core::generate::{self, Lang, Stage};
use keyshift_core::{Parsed, check_json, check_toml, check_value};
use serde::Serialize;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

/// The guide's footer line: product and version, from core.
#[wasm_bindgen]
pub fn version() -> String {
    keyshift_core::version::banner(None)
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsValue::from(js_error(&e.to_string())))
}

fn js_error(message: &str) -> wasm_bindgen::JsError {
    wasm_bindgen::JsError::new(message)
}

fn err(message: &str) -> JsValue {
    JsValue::from(js_error(message))
}

/// Parses and validates a configuration argument: an object, JSON text, or (for
/// [`validate`] only) keyshift.toml text.
fn check(input: &JsValue, toml_allowed: bool) -> Result<Parsed, JsValue> {
    if let Some(text) = input.as_string() {
        let json_like = text.trim_start().starts_with('{');
        return Ok(if json_like || !toml_allowed {
            check_json(&text)
        } else {
            check_toml(&text)
        });
    }
    let value: serde_json::Value = serde_wasm_bindgen::from_value(input.clone())
        .map_err(|e| err(&format!("the configuration is not a plain object: {e}")))?;
    Ok(check_value(&value))
}

/// Validates a configuration (object, JSON text or keyshift.toml text):
/// `{config, diagnostics}` where `config` is the model as the input allows and
/// `diagnostics` every finding, sorted, with the codes and texts of `keyshift check`.
#[wasm_bindgen]
pub fn validate(input: JsValue) -> Result<JsValue, JsValue> {
    to_js(&check(&input, true)?)
}

/// Parses keyshift.toml text: `{config, diagnostics}`, as [`validate`] does.
#[wasm_bindgen(js_name = parseToml)]
pub fn parse_toml(text: &str) -> Result<JsValue, JsValue> {
    to_js(&check_toml(text))
}

/// Driver code for a language (`python`, `node`, `java`, `go`, `csharp`, `rust`,
/// `mongosh`) and stage (`transition`, `final`): `{lang, stage, filename, code}`.
/// Throws when the configuration has no usable target yet.
#[wasm_bindgen]
pub fn generate(config: JsValue, lang: &str, stage: &str) -> Result<JsValue, JsValue> {
    let lang = Lang::parse(lang).ok_or_else(|| err(&format!("unknown language `{lang}`")))?;
    let stage = match stage {
        "transition" => Stage::Transition,
        "final" => Stage::Final,
        other => return Err(err(&format!("unknown stage `{other}`"))),
    };
    let parsed = check(&config, false)?;
    let snippet = generate::snippet(&parsed.config, lang, stage).map_err(|e| err(&e))?;
    to_js(&snippet)
}

/// The least-privilege policy for the target key, or `null` when there is no remote
/// target yet.
#[wasm_bindgen]
pub fn policy(config: JsValue) -> Result<JsValue, JsValue> {
    let parsed = check(&config, false)?;
    to_js(&keyshift_core::policy::policy(&parsed.config))
}

/// The plan (mode, summary, steps with commands, rollback, risks), without a key vault
/// inventory: what `keyshift plan` prints before it has looked at the key vault.
/// `lang` (optional, e.g. "python"): the snippet commands name it instead of `LANG`.
#[wasm_bindgen]
pub fn plan(config: JsValue, lang: Option<String>) -> Result<JsValue, JsValue> {
    let parsed = check(&config, false)?;
    let lang = lang
        .as_deref()
        .and_then(keyshift_core::generate::Lang::parse);
    to_js(&keyshift_core::plan::plan_for(&parsed.config, None, lang))
}

/// keyshift.toml text for a configuration.
#[wasm_bindgen(js_name = toToml)]
pub fn to_toml(config: JsValue) -> Result<String, JsValue> {
    let parsed = check(&config, false)?;
    parsed.config.to_toml().map_err(|e| err(&e))
}

/// The languages and stages [`generate`] accepts, in the order the guide shows them.
#[wasm_bindgen]
pub fn languages() -> Vec<String> {
    Lang::ALL.iter().map(|l| l.as_str().to_string()).collect()
}
