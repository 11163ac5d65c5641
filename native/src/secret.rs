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

/// A BSON document holding secrets (libmongocrypt's kmsProviders): redacted when
/// printed, and every string and binary value in it (at any depth) is zeroed when it
/// is dropped. The encodings handed to libmongocrypt are libmongocrypt's to keep.
#[derive(Clone)]
pub struct SecretDoc(bson::Document);

impl Drop for SecretDoc {
    fn drop(&mut self) {
        wipe_document(&mut self.0);
    }
}

/// Zeroes every string, binary and JavaScript value of `doc` in place, at any depth.
/// (Keys are names, not secrets, and stay.)
pub fn wipe_document(doc: &mut bson::Document) {
    for (_, value) in doc.iter_mut() {
        wipe_value(value);
    }
}

fn wipe_value(value: &mut bson::Bson) {
    use bson::Bson;
    match value {
        Bson::String(s) | Bson::JavaScriptCode(s) | Bson::Symbol(s) => s.zeroize(),
        Bson::Binary(b) => b.bytes.zeroize(),
        Bson::Document(d) => wipe_document(d),
        Bson::Array(items) => items.iter_mut().for_each(wipe_value),
        _ => {}
    }
}

impl SecretDoc {
    /// Wraps a document that holds credentials or key material.
    pub fn new(doc: bson::Document) -> Self {
        SecretDoc(doc)
    }

    /// The document, for libmongocrypt.
    pub fn expose(&self) -> &bson::Document {
        &self.0
    }

    /// Only the provider `master_key` names (its `provider` field): what proves a new
    /// wrapping, so nothing but the target can unwrap it.
    pub fn only_provider_of(&self, master_key: &bson::Document) -> Result<SecretDoc, String> {
        let name = master_key
            .get_str("provider")
            .map_err(|_| "the target master key names no provider".to_string())?;
        let creds = self.0.get(name).cloned().ok_or_else(|| {
            format!("the target provider {name:?} is not among the configured kmsProviders")
        })?;
        Ok(SecretDoc(bson::doc! { name: creds }))
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
    fn wiping_a_document_zeroes_every_string_and_binary_at_any_depth() {
        let mut d = bson::doc! {
            "local": {"key": bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: vec![0xAB; 96],
            }},
            "aws": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI"},
            "list": ["hunter2", {"deep": "secret"}],
            "port": 5696,
        };
        wipe_document(&mut d);
        let key = d
            .get_document("local")
            .unwrap()
            .get_binary_generic("key")
            .unwrap();
        assert!(key.is_empty() || key.iter().all(|b| *b == 0), "{key:?}");
        let shown = format!("{d}");
        for secret in ["AKIAEXAMPLE", "wJalr", "hunter2", "secret\""] {
            assert!(!shown.contains(secret), "{secret} survived: {shown}");
        }
        assert_eq!(d.get_i32("port").unwrap(), 5696);
    }

    #[test]
    fn secret_documents_show_only_provider_names() {
        let d = SecretDoc::new(bson::doc! {"aws": {"secretAccessKey": "wJalrXUtnFEMI"}});
        let shown = format!("{d:?}");
        assert!(shown.contains("aws") && !shown.contains("wJalr"), "{shown}");
    }
}
