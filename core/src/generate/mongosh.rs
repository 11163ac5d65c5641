//! mongosh.
//!
//! API, from the MongoDB manual (mongosh methods) and mongosh's source:
//! - `Mongo(host, autoEncryptionOpts)` with `keyVaultNamespace`, `kmsProviders`,
//!   `tlsOptions`, `schemaMap`, `encryptedFieldsMap`, `bypassAutoEncryption` and mongosh's
//!   own `explicitEncryptionOnly` (no automatic encryption or decryption on that
//!   connection; key vault and explicit encryption only):
//!   <https://www.mongodb.com/docs/manual/reference/method/Mongo/>
//! - `Mongo.getKeyVault()` and `KeyVault.createKey(kmsProvider, customerMasterKey,
//!   keyAltNames)`: <https://www.mongodb.com/docs/manual/reference/method/KeyVault.createKey/>

use super::node::{js_common, js_expr, js_target};
use super::{Lang, Setup, notes, quote};

/// Renders the mongosh script (`mongosh --nodb --file FILE`).
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Mongosh, "//"));
    o.push_str("// Run with: mongosh --nodb --file THIS_FILE\n");
    o.push_str("// API: https://www.mongodb.com/docs/manual/reference/method/Mongo/\n");
    o.push_str(
        "//      https://www.mongodb.com/docs/manual/reference/method/KeyVault.createKey/\n",
    );
    o.push_str(&js_common(s));
    o.push_str("// ---- END keyshift KMS settings ----\n\n");
    o.push_str(&js_target(s));
    o.push_str(&format!("const uri = {};\n\n", js_expr(&s.uri)));
    o.push_str("// Key management only: explicitEncryptionOnly turns automatic encryption off on this\n// connection (it never encrypts or decrypts documents by itself), so it is not for writing\n// your application's data. It creates DEKs and runs explicit encrypt and decrypt.\n");
    o.push_str("const keyManagement = Mongo(uri, autoEncryptionOptions({ explicitEncryptionOnly: true }));\nconst keyVault = keyManagement.getKeyVault();\n\n");
    o.push_str("// A new DEK under the target master key (uncomment, and name it):\n");
    if s.master_key.is_empty() {
        o.push_str(&format!(
            "// keyVault.createKey({}, ['my-key']);\n\n",
            quote(&s.target)
        ));
    } else {
        o.push_str("// keyVault.createKey(targetProvider, targetMasterKey, ['my-key']);\n\n");
    }
    o.push_str("// Your application's data from the shell: AUTOMATIC encryption with your application's own\n// rules, as it has them (keyshift does not know them). Needs crypt_shared or mongocryptd, as\n// your application does. Fill in its schemaMap (CSFLE) or encryptedFieldsMap (Queryable\n// Encryption), then uncomment:\n");
    o.push_str("// const appSchemaMap = { 'db.collection': { /* its $jsonSchema with encrypt */ } };\n// const app = Mongo(uri, autoEncryptionOptions({ schemaMap: appSchemaMap }));\n");
    o
}
