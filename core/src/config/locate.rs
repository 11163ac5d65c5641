//! From a diagnostic's JSON pointer back to a line of keyshift.toml, so the CLI can
//! print `keyshift.toml:12` next to a message. Best effort and text-only: it follows
//! `[table]` headers and `key = value` lines, and for a field inside an inline table or
//! a missing field it answers the line of the nearest enclosing key or section.

use super::parse::split_dotted;
use crate::diagnostic::pointer;

/// The 1-based line of keyshift.toml that `path` (a JSON pointer) refers to, or of its
/// nearest enclosing key or table; `None` when nothing in the text matches.
pub fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let mut current: Vec<String> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (matched length, line)
    let mut consider = |segments: &[String], line: usize| {
        let p = pointer(segments);
        let matches = path == p || path.starts_with(&format!("{p}/"));
        if matches && best.is_none_or(|(len, _)| p.len() > len) {
            best = Some((p.len(), line));
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with("[[") {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if let Some(end) = rest.rfind(']') {
                current = split_dotted(&rest[..end]);
                consider(&current, i + 1);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some(eq) = line.find('=') {
            let mut full = current.clone();
            full.extend(split_dotted(&line[..eq]));
            consider(&full, i + 1);
        }
    }
    best.map(|(_, line)| line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[keyVault]\nuri = \"env:X\"\n\n[kmsProviders.\"aws:prod\"]\naccessKeyId = \"env:A\"\n\n[target]\nprovider = \"aws:prod\"\nmasterKey = { region = \"us-east-1\" }\n";

    #[test]
    fn finds_keys_tables_and_enclosing_lines() {
        assert_eq!(line_of_path(TEXT, "/keyVault/uri"), Some(2));
        assert_eq!(
            line_of_path(TEXT, "/kmsProviders/aws:prod/accessKeyId"),
            Some(5)
        );
        assert_eq!(
            line_of_path(TEXT, "/kmsProviders/aws:prod/secretAccessKey"),
            Some(4)
        );
        assert_eq!(line_of_path(TEXT, "/target/masterKey/region"), Some(9));
        assert_eq!(line_of_path(TEXT, "/keyVault"), Some(1));
        assert_eq!(line_of_path(TEXT, "/rewrap"), None);
    }
}
