//! Secret references: `env:NAME` and `file:PATH`.
//!
//! Secrets are never written into keyshift.toml; a secret field names where the secret
//! is. Core only interprets the reference text — reading the variable or the file is the
//! native shell's job (core does no I/O).

use serde::Serialize;

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file path (relative paths are relative to the config file).
    File(String),
}

/// Why a secret field's text is not a usable reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// Not a reference at all: a literal secret (or a typo'd prefix).
    Literal,
    /// `env:` or `file:` with a bad remainder; the text says what is wrong.
    Malformed(String),
}

impl SecretRef {
    /// Parses `env:NAME` / `file:PATH`.
    ///
    /// Prefixes are case-sensitive, so `ENV:X` is reported as malformed rather than
    /// silently taken as a literal: it is almost always a typo.
    pub fn parse(text: &str) -> Result<SecretRef, SecretError> {
        let Some((prefix, rest)) = text.split_once(':') else {
            return Err(SecretError::Literal);
        };
        match prefix {
            "env" => {
                if is_env_name(rest) {
                    Ok(SecretRef::Env(rest.to_string()))
                } else if rest.is_empty() {
                    Err(SecretError::Malformed(
                        "`env:` names no environment variable".into(),
                    ))
                } else {
                    Err(SecretError::Malformed(
                        "an environment variable name has only letters, digits and `_` and does not start with a digit".into(),
                    ))
                }
            }
            "file" => {
                if rest.trim().is_empty() {
                    Err(SecretError::Malformed("`file:` names no path".into()))
                } else if rest.trim() != rest {
                    Err(SecretError::Malformed(
                        "the path starts or ends with spaces".into(),
                    ))
                } else {
                    Ok(SecretRef::File(rest.to_string()))
                }
            }
            p if p.eq_ignore_ascii_case("env") || p.eq_ignore_ascii_case("file") => Err(
                SecretError::Malformed(format!("prefix `{p}:` must be lowercase")),
            ),
            _ => Err(SecretError::Literal),
        }
    }

    /// The reference text (`env:NAME` / `file:PATH`).
    pub fn to_text(&self) -> String {
        match self {
            SecretRef::Env(n) => format!("env:{n}"),
            SecretRef::File(p) => format!("file:{p}"),
        }
    }
}

/// POSIX-portable environment variable name.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let cases: &[(&str, Result<SecretRef, SecretError>)] = &[
            ("env:AWS_KEY", Ok(SecretRef::Env("AWS_KEY".into()))),
            ("env:_x1", Ok(SecretRef::Env("_x1".into()))),
            (
                "file:master-key.txt",
                Ok(SecretRef::File("master-key.txt".into())),
            ),
            (
                "file:/etc/ks/key",
                Ok(SecretRef::File("/etc/ks/key".into())),
            ),
            ("AKIAIOSFODNN7EXAMPLE", Err(SecretError::Literal)),
            ("mongodb://u:p@h", Err(SecretError::Literal)),
            ("", Err(SecretError::Literal)),
        ];
        for (text, want) in cases {
            assert_eq!(&SecretRef::parse(text), want, "{text}");
        }
        for bad in [
            "env:", "env:1X", "env:A-B", "file:", "file: x", "ENV:X", "File:x",
        ] {
            assert!(
                matches!(SecretRef::parse(bad), Err(SecretError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn to_text_round_trips() {
        for t in ["env:A", "file:a/b c"] {
            assert_eq!(SecretRef::parse(t).unwrap().to_text(), t);
        }
    }
}
