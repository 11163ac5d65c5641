//! Node.js (`mongodb` package, v6).
//!
//! API, from the Node.js driver reference:
//! - `new ClientEncryption(client, { keyVaultNamespace, kmsProviders, tlsOptions })` and
//!   `clientEncryption.createDataKey(provider, { masterKey, keyAltNames })`:
//!   <https://mongodb.github.io/node-mongodb-native/6.8/classes/ClientEncryption.html>
//! - `new MongoClient(uri, { autoEncryption: { keyVaultNamespace, kmsProviders,
//!   tlsOptions, bypassAutoEncryption } })`:
//!   <https://mongodb.github.io/node-mongodb-native/6.8/interfaces/AutoEncryptionOptions.html>

use super::{Setup, Source, header, quote};

pub(crate) fn js_expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("requireEnv({})", quote(n)),
        Source::File(p) => format!("readText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("localKey(fs.readFileSync({}))", quote(p)),
        Source::LocalKeyEnv(n) => format!("localKey(Buffer.from(requireEnv({})))", quote(n)),
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

/// Helpers and constants shared by the Node.js and mongosh snippets.
pub(crate) fn js_common(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str("const fs = require('fs');\n\n");
    o.push_str(&format!(
        "const keyVaultNamespace = {};\n\n",
        quote(&s.namespace)
    ));
    o.push_str("function requireEnv(name) {\n  const value = process.env[name];\n  if (value === undefined) throw new Error(`${name} is not set`);\n  return value;\n}\n\n");
    o.push_str("function readText(path) {\n  return fs.readFileSync(path, 'utf8').trim();\n}\n\n");
    o.push_str("// The local master key: 96 raw bytes, or their base64 text.\nfunction localKey(raw) {\n  return raw.length === 96 ? raw : Buffer.from(raw.toString('utf8').trim(), 'base64');\n}\n\n");
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
    o.push_str(&format!("const targetProvider = {};\n", quote(&s.target)));
    o.push_str(&format!(
        "const targetMasterKey = {};\n\n",
        js_object(&s.master_key, "")
    ));
    o
}

/// Renders the Node.js module.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&format!("// {}\n", header(s)));
    o.push_str("// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.\n");
    o.push_str(
        "// API: https://mongodb.github.io/node-mongodb-native/6.8/classes/ClientEncryption.html\n",
    );
    o.push_str("//      https://mongodb.github.io/node-mongodb-native/6.8/interfaces/AutoEncryptionOptions.html\n");
    o.push_str("'use strict';\n\nconst { MongoClient, ClientEncryption } = require('mongodb');\n");
    o.push_str(&js_common(s));
    o.push_str(&format!(
        "function connectionString() {{\n  return {};\n}}\n\n",
        js_expr(&s.uri)
    ));
    o.push_str("// A MongoClient that decrypts fields whose DEKs are under any provider above.\nfunction encryptedClient(uri = connectionString()) {\n  return new MongoClient(uri, {\n    autoEncryption: { keyVaultNamespace, kmsProviders, tlsOptions, bypassAutoEncryption: true },\n  });\n}\n\n");
    o.push_str("// A new DEK under the target master key; resolves to its _id.\nasync function createDataKey(keyVaultClient, keyAltNames = []) {\n  const clientEncryption = new ClientEncryption(keyVaultClient, { keyVaultNamespace, kmsProviders, tlsOptions });\n");
    if s.master_key.is_empty() {
        o.push_str(
            "  return clientEncryption.createDataKey(targetProvider, { keyAltNames });\n}\n\n",
        );
    } else {
        o.push_str("  return clientEncryption.createDataKey(targetProvider, { masterKey: targetMasterKey, keyAltNames });\n}\n\n");
    }
    o.push_str("module.exports = { keyVaultNamespace, kmsProviders, tlsOptions, encryptedClient, createDataKey };\n");
    o
}
