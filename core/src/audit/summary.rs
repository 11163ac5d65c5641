//! What a log says, run by run, for `keyshift audit show`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One run of a command, as its records tell it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The run id.
    pub run: String,
    /// The command (from its `start` record).
    pub command: String,
    /// `user@host` (from its `start` record).
    pub who: String,
    /// When it started.
    pub started: String,
    /// When it ended (empty: no `end` record: still running, or killed).
    pub ended: String,
    /// `ok`, `failed`, or `interrupted` when there is no `end` record.
    pub outcome: String,
    /// The error of a failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Key records by outcome.
    pub keys: BTreeMap<String, u64>,
    /// Keys not moved (refused, not proven, changed meanwhile, missing): id and why.
    pub attention: Vec<(String, String)>,
    /// The target masterKey of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
}

/// Outcomes that need a person's attention.
const ATTENTION: [&str; 4] = ["refused", "notProven", "changedMeanwhile", "missing"];

/// Runs in order of their first record. Lines that are not records are skipped (verify
/// the log first: a summary of a broken chain proves nothing).
pub fn summary(text: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for line in text.lines() {
        let Ok(Value::Object(r)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let text_of = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let id = text_of("run");
        let index = match runs.iter().position(|x| x.run == id) {
            Some(i) => i,
            None => {
                runs.push(Run {
                    run: id.clone(),
                    outcome: "interrupted".into(),
                    started: text_of("at"),
                    ..Run::default()
                });
                runs.len() - 1
            }
        };
        let run = &mut runs[index];
        match r.get("type").and_then(Value::as_str) {
            Some("start") => {
                run.command = text_of("command");
                let who = r.get("who");
                let field = |k: &str| {
                    who.and_then(|w| w.get(k))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                };
                run.who = format!("{}@{}", field("user"), field("host"));
                run.started = text_of("at");
                run.target = r.get("target").filter(|t| !t.is_null()).cloned();
            }
            Some("key") => {
                let outcome = text_of("outcome");
                if ATTENTION.contains(&outcome.as_str()) {
                    let why = r
                        .get("why")
                        .and_then(Value::as_str)
                        .unwrap_or(outcome.as_str());
                    run.attention.push((text_of("id"), why.to_string()));
                }
                *run.keys.entry(outcome).or_default() += 1;
            }
            Some("end") => {
                run.ended = text_of("at");
                run.outcome = text_of("outcome");
                run.error = r.get("error").and_then(Value::as_str).map(str::to_string);
            }
            _ => {}
        }
    }
    runs
}
