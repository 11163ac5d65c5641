//! The product's identity, shared by the CLI banner and the browser guide footer.

/// The product name as users see it.
pub const PRODUCT: &str = "keyshift";

/// keyshift's own version (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The one-line banner: product, version, and the libmongocrypt version when the
/// caller has one (the browser guide does not link libmongocrypt).
pub fn banner(libmongocrypt: Option<&str>) -> String {
    match libmongocrypt {
        Some(v) => format!("{PRODUCT} {VERSION} (libmongocrypt {v})"),
        None => format!("{PRODUCT} {VERSION}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_names_libmongocrypt_when_known() {
        assert_eq!(
            banner(Some("1.21.2")),
            format!("keyshift {VERSION} (libmongocrypt 1.21.2)")
        );
    }

    #[test]
    fn banner_without_libmongocrypt_is_just_the_version() {
        assert_eq!(banner(None), format!("keyshift {VERSION}"));
    }
}
