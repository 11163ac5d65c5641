//! Secret values (master keys, credentials, DEK-bearing documents) that cannot leak by
//! accident: `Debug` and `Display` print `[redacted]`, and the bytes are zeroized when
//! dropped where the type allows it. Reading the value takes an explicit `expose()`.

use zeroize::Zeroize;

/// A value that must never reach output, logs, errors or panics.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value, for the one place that must use it (libmongocrypt, a KMS request).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

/// A BSON document holding secrets (libmongocrypt's kmsProviders). BSON documents
/// cannot be zeroized in place, so this only guarantees redaction.
#[derive(Clone)]
pub struct SecretDoc(bson::Document);

impl SecretDoc {
    /// Wraps a document that holds credentials or key material.
    pub fn new(doc: bson::Document) -> Self {
        SecretDoc(doc)
    }

    /// The document, for libmongocrypt.
    pub fn expose(&self) -> &bson::Document {
        &self.0
    }
}

impl std::fmt::Debug for SecretDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.0.keys().collect();
        write!(f, "SecretDoc({names:?}: [redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new(String::from("hunter2-very-secret"));
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn secret_documents_show_only_provider_names() {
        let d = SecretDoc::new(bson::doc! {"aws": {"secretAccessKey": "wJalrXUtnFEMI"}});
        let shown = format!("{d:?}");
        assert!(shown.contains("aws") && !shown.contains("wJalr"), "{shown}");
    }
}
