//! keyshift.toml: the model ([`model`]), its parser ([`parse`]) and secret references
//! ([`secret`]).

pub mod locate;
pub mod model;
pub mod parse;
pub mod secret;
mod walk;

pub use locate::line_of_path;
pub use model::*;
pub use parse::{Parsed, from_value, parse_json, parse_toml};
pub use secret::{SecretError, SecretRef};
