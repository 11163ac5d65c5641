//! mongosh.
//!
//! API, from the MongoDB manual (mongosh methods):
//! - `Mongo(host, autoEncryptionOpts)` with `keyVaultNamespace`, `kmsProviders`,
//!   `tlsOptions`, `bypassAutoEncryption`:
//!   <https://www.mongodb.com/docs/manual/reference/method/Mongo/>
//! - `Mongo.getKeyVault()` and `KeyVault.createKey(kmsProvider, customerMasterKey,
//!   keyAltNames)`: <https://www.mongodb.com/docs/manual/reference/method/KeyVault.createKey/>

use super::node::{js_common, js_expr};
use super::{Setup, header, quote};

/// Renders the mongosh script (`mongosh --nodb --file FILE`).
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&format!("// {}\n", header(s)));
    o.push_str("// Generated from keyshift.toml. Run with: mongosh --nodb --file THIS_FILE\n");
    o.push_str("// API: https://www.mongodb.com/docs/manual/reference/method/Mongo/\n");
    o.push_str(
        "//      https://www.mongodb.com/docs/manual/reference/method/KeyVault.createKey/\n",
    );
    o.push_str(&js_common(s));
    o.push_str(&format!(
        "const encryptedClient = Mongo({}, {{\n  keyVaultNamespace,\n  kmsProviders,\n  tlsOptions,\n  bypassAutoEncryption: true,\n}});\n\n",
        js_expr(&s.uri)
    ));
    o.push_str("// Reads through encryptedClient decrypt fields whose DEKs are under any provider above.\n");
    o.push_str("const keyVault = encryptedClient.getKeyVault();\n\n");
    o.push_str("// A new DEK under the target master key (uncomment, and name it):\n");
    if s.master_key.is_empty() {
        o.push_str(&format!(
            "// keyVault.createKey({}, ['my-key']);\n",
            quote(&s.target)
        ));
    } else {
        o.push_str("// keyVault.createKey(targetProvider, targetMasterKey, ['my-key']);\n");
    }
    o
}
