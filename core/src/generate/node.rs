//! Node.js (`mongodb` package, v6 and later).
//!
//! API, from the Node.js driver reference:
//! - `new ClientEncryption(client, { keyVaultNamespace, kmsProviders, tlsOptions })` and
//!   `clientEncryption.createDataKey(provider, { masterKey, keyAltNames })`:
//!   <https://mongodb.github.io/node-mongodb-native/6.8/classes/ClientEncryption.html>
//! - `new MongoClient(uri, { autoEncryption: { keyVaultNamespace, kmsProviders,
//!   tlsOptions, schemaMap, encryptedFieldsMap, bypassAutoEncryption, extraOptions } })`:
//!   <https://mongodb.github.io/node-mongodb-native/6.8/interfaces/AutoEncryptionOptions.html>
//!
//! The merge point is `autoEncryptionOptions(appOptions)`: the application's own
//! autoEncryption object comes back with keyshift's three KMS settings.

use super::{Lang, Setup, Source, notes, quote};

pub(crate) fn js_expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("requireEnv({})", quote(n)),
        Source::File(p) => format!("readText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("localKey(fs.readFileSync({}))", quote(p)),
        Source::LocalKeyEnv(n) => format!("localKey(Buffer.from(requireEnv({})))", quote(n)),
        Source::GcpKeyFile(p) => format!("gcpPrivateKey(readText({}))", quote(p)),
        Source::GcpKeyEnv(n) => format!("gcpPrivateKey(requireEnv({}))", quote(n)),
    }
}

pub(crate) fn js_object(fields: &[(String, Source)], indent: &str) -> String {
    if fields.is_empty() {
        return "{}".to_string();
    }
    let mut out = String::from("{\n");
    for (k, v) in fields {
        out.push_str(&format!("{indent}  {}: {},\n", quote(k), js_expr(v)));
    }
    out.push_str(indent);
    out.push('}');
    out
}

/// The KMS settings block shared by the Node.js and mongosh snippets, from its BEGIN
/// marker to the merge function; the caller adds anything else and the END marker.
pub(crate) fn js_common(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str("const fs = require('fs');\n\n");
    o.push_str("// ---- BEGIN keyshift KMS settings: merge into your autoEncryption options and ClientEncryption ----\n");
    o.push_str(&format!(
        "const keyVaultNamespace = {};\n\n",
        quote(&s.namespace)
    ));
    o.push_str("function requireEnv(name) {\n  const value = process.env[name];\n  if (value === undefined) throw new Error(`${name} is not set`);\n  return value;\n}\n\n");
    o.push_str("function readText(path) {\n  return fs.readFileSync(path, 'utf8').trim();\n}\n\n");
    o.push_str("// The local master key: 96 raw bytes, or their base64 text.\nfunction localKey(raw) {\n  return raw.length === 96 ? raw : Buffer.from(raw.toString('utf8').trim(), 'base64');\n}\n\n");
    o.push_str("// A GCP service account key as libmongocrypt wants it: the base64 of its DER. PEM loses\n// its armour lines; base64 text is kept as it is.\nfunction gcpPrivateKey(text) {\n  if (!text.includes('-----BEGIN')) return text.trim();\n  return text\n    .split(/\\r?\\n/)\n    .filter((line) => !line.startsWith('-----'))\n    .map((line) => line.trim())\n    .join('');\n}\n\n");
    o.push_str("const kmsProviders = {\n");
    for p in &s.providers {
        o.push_str(&format!(
            "  {}: {},\n",
            quote(&p.name),
            js_object(&p.fields, "  ")
        ));
    }
    o.push_str("};\n\nconst tlsOptions = {\n");
    for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
        o.push_str(&format!(
            "  {}: {},\n",
            quote(&p.name),
            js_object(&p.tls, "  ")
        ));
    }
    o.push_str("};\n\n");
    o.push_str("// Your application's autoEncryption options with keyshift's KMS settings merged in. Pass\n// every option it sets today: schemaMap or encryptedFieldsMap, bypassAutoEncryption only if\n// it already sets it, keyVaultClient, extraOptions (crypt_shared, mongocryptd). keyshift\n// supplies keyVaultNamespace, kmsProviders and tlsOptions.\nfunction autoEncryptionOptions(appOptions = {}) {\n  return { ...appOptions, keyVaultNamespace, kmsProviders, tlsOptions };\n}\n");
    o
}

/// The target provider and master key constants.
pub(crate) fn js_target(s: &Setup) -> String {
    format!(
        "const targetProvider = {};\nconst targetMasterKey = {};\n\n",
        quote(&s.target),
        js_object(&s.master_key, "")
    )
}

/// Renders the Node.js module.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Node, "//"));
    o.push_str(
        "// API: https://mongodb.github.io/node-mongodb-native/6.8/classes/ClientEncryption.html\n",
    );
    o.push_str("//      https://mongodb.github.io/node-mongodb-native/6.8/interfaces/AutoEncryptionOptions.html\n");
    o.push_str("'use strict';\n\nconst { MongoClient, ClientEncryption } = require('mongodb');\n");
    o.push_str(&js_common(s));
    o.push_str("\n// The same KMS settings for new ClientEncryption(keyVaultClient, options): new DEKs,\n// explicit encrypt and decrypt.\nfunction clientEncryptionOptions(appOptions = {}) {\n  return { ...appOptions, keyVaultNamespace, kmsProviders, tlsOptions };\n}\n");
    o.push_str("// ---- END keyshift KMS settings ----\n\n");
    o.push_str(&js_target(s));
    o.push_str("// A new DEK under the target master key; resolves to its _id.\nasync function createDataKey(keyVaultClient, keyAltNames = []) {\n  const clientEncryption = new ClientEncryption(keyVaultClient, clientEncryptionOptions());\n");
    if s.master_key.is_empty() {
        o.push_str(
            "  return clientEncryption.createDataKey(targetProvider, { keyAltNames });\n}\n\n",
        );
    } else {
        o.push_str("  return clientEncryption.createDataKey(targetProvider, { masterKey: targetMasterKey, keyAltNames });\n}\n\n");
    }
    o.push_str(&format!(
        "function connectionString() {{\n  return {};\n}}\n\n",
        js_expr(&s.uri)
    ));
    o.push_str("// A whole client with AUTOMATIC encryption, as an application that encrypts automatically\n// has: fields its rules name are encrypted on every write and decrypted on every read.\n// keyshift does not know those rules, so they are required: pass your application's own\n// schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or schemaMap: null only if\n// it relies on the server's $jsonSchema validators. An application that encrypts explicitly\n// and already sets bypassAutoEncryption: true passes it in appOptions; nothing here sets it.\n");
    o.push_str("function encryptedClient({ schemaMap, encryptedFieldsMap, uri = connectionString(), ...appOptions } = {}) {\n  if (schemaMap === undefined && encryptedFieldsMap === undefined) {\n    throw new Error(\n      \"encryptedClient needs your application's schemaMap or encryptedFieldsMap (schemaMap: null for the server's validators)\"\n    );\n  }\n  const rules = {};\n  if (schemaMap) rules.schemaMap = schemaMap;\n  if (encryptedFieldsMap) rules.encryptedFieldsMap = encryptedFieldsMap;\n  return new MongoClient(uri, { autoEncryption: autoEncryptionOptions({ ...appOptions, ...rules }) });\n}\n\n");
    o.push_str("module.exports = {\n  keyVaultNamespace,\n  kmsProviders,\n  tlsOptions,\n  autoEncryptionOptions,\n  clientEncryptionOptions,\n  createDataKey,\n  encryptedClient,\n};\n");
    o
}
