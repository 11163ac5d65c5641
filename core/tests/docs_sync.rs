//! docs/config.md lists every diagnostic code and every field; this test fails when
//! code and documentation drift apart.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // tests read fixtures (core/clippy.toml)

use keyshift_core::config::parse::FIELDS;
use keyshift_core::diagnostic::codes;

const DOC: &str = include_str!("../../docs/config.md");

/// Every source file of core, to catch codes used outside `codes`.
fn sources() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut out,
    );
    out
}

/// `KS-XXX-NNN` literals in a text.
fn code_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\"KS-") {
        let tail = &rest[i + 1..];
        if let Some(end) = tail.find('"') {
            out.push(tail[..end].to_string());
        }
        rest = &rest[i + 4..];
    }
    out
}

#[test]
fn every_code_is_documented() {
    for (code, _) in codes::ALL {
        assert!(
            DOC.contains(&format!("`{code}`")),
            "{code} missing from docs/config.md"
        );
    }
}

#[test]
fn every_code_literal_is_registered() {
    let registered: Vec<&str> = codes::ALL.iter().map(|(c, _)| *c).collect();
    for src in sources() {
        for lit in code_literals(&src) {
            assert!(
                registered.contains(&lit.as_str()),
                "{lit} is not in codes::ALL"
            );
        }
    }
}

#[test]
fn documented_codes_exist() {
    let registered: Vec<&str> = codes::ALL.iter().map(|(c, _)| *c).collect();
    for line in DOC.lines().filter(|l| l.starts_with("| `KS-")) {
        let code = line.split('`').nth(1).unwrap();
        assert!(
            registered.contains(&code),
            "docs list {code}, which the code does not have"
        );
    }
}

#[test]
fn every_field_is_documented() {
    for (section, fields) in FIELDS {
        for f in *fields {
            if section.is_empty() {
                assert!(
                    DOC.contains(&format!("[{f}")),
                    "section [{f}] missing from docs/config.md"
                );
                continue;
            }
            assert!(
                DOC.contains(&format!("`{f}`")),
                "field {section}.{f} missing from docs/config.md"
            );
        }
    }
}

#[test]
fn the_documented_example_is_valid() {
    let start = DOC.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let end = start + DOC[start..].find("```").expect("closing fence");
    let parsed = keyshift_core::check_toml(&DOC[start..end]);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
}
