//! Java (sync driver, `mongodb-driver-sync`).
//!
//! API, from the Java driver reference:
//! - `ClientEncryptionSettings.builder().keyVaultMongoClientSettings(..)
//!   .keyVaultNamespace(..).kmsProviders(..).kmsProviderSslContextMap(..)`:
//!   <https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/ClientEncryptionSettings.Builder.html>
//! - `ClientEncryptions.create(settings)`, `ClientEncryption.createDataKey(kmsProvider,
//!   DataKeyOptions)`, `DataKeyOptions.masterKey(BsonDocument).keyAltNames(List)`:
//!   <https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-sync/com/mongodb/client/vault/ClientEncryption.html>
//! - `AutoEncryptionSettings.builder()...bypassAutoEncryption(true)`:
//!   <https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/AutoEncryptionSettings.Builder.html>

use super::{Setup, Source, header, quote};

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("env({})", quote(n)),
        Source::File(p) => format!("readText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("localKey(Files.readAllBytes(Path.of({})))", quote(p)),
        Source::LocalKeyEnv(n) => format!(
            "localKey(env({}).getBytes(StandardCharsets.UTF_8))",
            quote(n)
        ),
    }
}

fn bson(s: &Source) -> String {
    match s {
        Source::Bool(b) => format!("BsonBoolean.valueOf({b})"),
        other => format!("new BsonString({})", expr(other)),
    }
}

/// Renders the Java class.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&format!("// {}\n", header(s)));
    o.push_str("// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.\n");
    o.push_str("// API: https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/ClientEncryptionSettings.Builder.html\n");
    o.push_str("//      https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-sync/com/mongodb/client/vault/ClientEncryption.html\n");
    o.push_str("//      https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/AutoEncryptionSettings.Builder.html\n");
    o.push_str("import com.mongodb.AutoEncryptionSettings;\nimport com.mongodb.ClientEncryptionSettings;\nimport com.mongodb.ConnectionString;\nimport com.mongodb.MongoClientSettings;\nimport com.mongodb.client.MongoClient;\nimport com.mongodb.client.MongoClients;\nimport com.mongodb.client.model.vault.DataKeyOptions;\nimport com.mongodb.client.vault.ClientEncryption;\nimport com.mongodb.client.vault.ClientEncryptions;\nimport java.io.IOException;\nimport java.nio.charset.StandardCharsets;\nimport java.nio.file.Files;\nimport java.nio.file.Path;\nimport java.util.Base64;\nimport java.util.HashMap;\nimport java.util.List;\nimport java.util.Map;\nimport org.bson.BsonBinary;\nimport org.bson.BsonBoolean;\nimport org.bson.BsonDocument;\nimport org.bson.BsonString;\n\n");
    o.push_str("public final class KeyshiftEncryption {\n");
    o.push_str(&format!(
        "    public static final String KEY_VAULT_NAMESPACE = {};\n",
        quote(&s.namespace)
    ));
    o.push_str(&format!(
        "    public static final String TARGET_PROVIDER = {};\n\n",
        quote(&s.target)
    ));
    o.push_str("    static String env(String name) {\n        String value = System.getenv(name);\n        if (value == null) {\n            throw new IllegalStateException(name + \" is not set\");\n        }\n        return value;\n    }\n\n");
    o.push_str("    static String readText(String path) throws IOException {\n        return Files.readString(Path.of(path)).trim();\n    }\n\n");
    o.push_str("    /** The local master key: 96 raw bytes, or their base64 text. */\n    static byte[] localKey(byte[] raw) {\n        return raw.length == 96 ? raw : Base64.getDecoder().decode(new String(raw, StandardCharsets.UTF_8).trim());\n    }\n\n");
    o.push_str("    public static Map<String, Map<String, Object>> kmsProviders() throws IOException {\n        Map<String, Map<String, Object>> providers = new HashMap<>();\n");
    for p in &s.providers {
        o.push_str(&format!(
            "        Map<String, Object> {} = new HashMap<>();\n",
            ident(&p.name)
        ));
        for (k, v) in &p.fields {
            o.push_str(&format!(
                "        {}.put({}, {});\n",
                ident(&p.name),
                quote(k),
                expr(v)
            ));
        }
        o.push_str(&format!(
            "        providers.put({}, {});\n",
            quote(&p.name),
            ident(&p.name)
        ));
    }
    o.push_str("        return providers;\n    }\n\n");
    o.push_str("    public static BsonDocument targetMasterKey() throws IOException {\n        return new BsonDocument()");
    for (k, v) in &s.master_key {
        o.push_str(&format!(
            "\n                .append({}, {})",
            quote(k),
            bson(v)
        ));
    }
    o.push_str(";\n    }\n\n");
    if s.has_tls() {
        o.push_str("    // KMS TLS: build an SSLContext per provider from these PEM files and pass\n    // Map.of(name, sslContext) to .kmsProviderSslContextMap(...) on both builders below:\n");
        for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
            for (k, v) in &p.tls {
                o.push_str(&format!("    //   {} {}: {}\n", p.name, k, expr(v)));
            }
        }
        o.push('\n');
    }
    o.push_str(
        "    /** A MongoClient that decrypts fields whose DEKs are under any provider above. */\n",
    );
    o.push_str("    public static MongoClient encryptedClient(String uri) throws IOException {\n        AutoEncryptionSettings auto = AutoEncryptionSettings.builder()\n                .keyVaultNamespace(KEY_VAULT_NAMESPACE)\n                .kmsProviders(kmsProviders())\n                .bypassAutoEncryption(true)\n                .build();\n        return MongoClients.create(MongoClientSettings.builder()\n                .applyConnectionString(new ConnectionString(uri))\n                .autoEncryptionSettings(auto)\n                .build());\n    }\n\n");
    o.push_str("    /** A new DEK under the target master key; returns its _id. */\n");
    o.push_str("    public static BsonBinary createDataKey(String uri, List<String> keyAltNames) throws IOException {\n        ClientEncryptionSettings settings = ClientEncryptionSettings.builder()\n                .keyVaultMongoClientSettings(MongoClientSettings.builder()\n                        .applyConnectionString(new ConnectionString(uri))\n                        .build())\n                .keyVaultNamespace(KEY_VAULT_NAMESPACE)\n                .kmsProviders(kmsProviders())\n                .build();\n        try (ClientEncryption clientEncryption = ClientEncryptions.create(settings)) {\n");
    if s.master_key.is_empty() {
        o.push_str("            return clientEncryption.createDataKey(TARGET_PROVIDER, new DataKeyOptions().keyAltNames(keyAltNames));\n");
    } else {
        o.push_str("            return clientEncryption.createDataKey(TARGET_PROVIDER,\n                    new DataKeyOptions().masterKey(targetMasterKey()).keyAltNames(keyAltNames));\n");
    }
    o.push_str("        }\n    }\n}\n");
    o
}

/// A Java identifier for a provider name (`aws:prod` → `awsProd`).
fn ident(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    out
}
