//! C# (MongoDB.Driver 3.x with MongoDB.Driver.Encryption).
//!
//! API, from the C# driver reference and source:
//! - `new ClientEncryptionOptions(keyVaultClient, keyVaultNamespace, kmsProviders,
//!   tlsOptions)`:
//!   <https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver.Encryption/MongoDB.Driver.Encryption.ClientEncryptionOptions.html>
//! - `ClientEncryption.CreateDataKey(kmsProvider, DataKeyOptions, CancellationToken)`
//!   and `new DataKeyOptions(alternateKeyNames:, masterKey:)`:
//!   <https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver.Encryption/MongoDB.Driver.Encryption.ClientEncryption.html>
//! - `AutoEncryptionOptions.With(keyVaultNamespace:, kmsProviders:, tlsOptions:)`, and
//!   `MongoClientSettings.Extensions.AddAutoEncryption()` (3.x: automatic encryption lives
//!   in MongoDB.Driver.Encryption):
//!   <https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver/MongoDB.Driver.Encryption.AutoEncryptionOptions.html>
//!
//! KMS TLS: the client certificate comes from `X509Certificate2.CreateFromPemFile`, or
//! `CreateFromEncryptedPemFile` with the key's password. The driver refuses a server
//! certificate validation callback for KMS connections ("Insecure TLS options
//! prohibited") and takes no CA file, so a private CA has to be in the machine's trust
//! store; the snippet says so where it applies.

use super::{Lang, Setup, Source, TLS_PASSWORD, notes, quote};

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("Env({})", quote(n)),
        Source::File(p) => format!("ReadText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("LocalKey(File.ReadAllBytes({}))", quote(p)),
        Source::LocalKeyEnv(n) => format!("LocalKey(Encoding.UTF8.GetBytes(Env({})))", quote(n)),
        Source::GcpKeyFile(p) => format!("GcpPrivateKey(ReadText({}))", quote(p)),
        Source::GcpKeyEnv(n) => format!("GcpPrivateKey(Env({}))", quote(n)),
    }
}

const HELPERS: &str = r#"    static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($"{name} is not set");

    static string ReadText(string path) => File.ReadAllText(path).Trim();

    // The local master key: 96 raw bytes, or their base64 text.
    static byte[] LocalKey(byte[] raw) =>
        raw.Length == 96 ? raw : Convert.FromBase64String(Encoding.UTF8.GetString(raw).Trim());

    // A GCP service account key as libmongocrypt wants it: the base64 of its DER. PEM loses its
    // armour lines; base64 text is kept as it is.
    static string GcpPrivateKey(string text)
    {
        if (!text.Contains("-----BEGIN"))
        {
            return text.Trim();
        }
        var base64 = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("-----"))
            {
                base64.Append(line.Trim());
            }
        }
        return base64.ToString();
    }

    // A client certificate with its private key from PEM; exported to PKCS#12 and reloaded,
    // because SslStream on Windows cannot use the ephemeral key a PEM import gives.
    static X509Certificate2 ClientCertificate(string path, string password)
    {
        using var pem = password == null
            ? X509Certificate2.CreateFromPemFile(path)
            : X509Certificate2.CreateFromEncryptedPemFile(path, password);
        return new X509Certificate2(pem.Export(X509ContentType.Pkcs12));
    }

"#;

/// Renders the C# class.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Csharp, "//"));
    o.push_str("// API: https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver.Encryption/MongoDB.Driver.Encryption.ClientEncryptionOptions.html\n");
    o.push_str("//      https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver.Encryption/MongoDB.Driver.Encryption.ClientEncryption.html\n");
    o.push_str("//      https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver/MongoDB.Driver.Encryption.AutoEncryptionOptions.html\n");
    o.push_str("using System;\nusing System.Collections.Generic;\nusing System.IO;\nusing System.Security.Cryptography.X509Certificates;\nusing System.Text;\nusing System.Threading;\nusing MongoDB.Bson;\nusing MongoDB.Driver;\nusing MongoDB.Driver.Encryption;\n\n");
    o.push_str("public static class KeyshiftEncryption\n{\n");
    o.push_str("    // ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionOptions and ClientEncryptionOptions ----\n");
    o.push_str(&format!(
        "    public const string KeyVaultNamespace = {};\n\n",
        quote(&s.namespace)
    ));
    o.push_str(HELPERS);
    o.push_str("    public static Dictionary<string, IReadOnlyDictionary<string, object>> KmsProviders() => new()\n    {\n");
    for p in &s.providers {
        o.push_str(&format!(
            "        [{}] = new Dictionary<string, object>\n        {{\n",
            quote(&p.name)
        ));
        for (k, v) in &p.fields {
            o.push_str(&format!("            [{}] = {},\n", quote(k), expr(v)));
        }
        o.push_str("        },\n");
    }
    o.push_str("    };\n\n");
    o.push_str("    // KMS TLS per provider.\n    public static Dictionary<string, SslSettings> TlsOptions()\n    {\n        var options = new Dictionary<string, SslSettings>();\n");
    for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
        let get = |key: &str| p.tls.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if let Some(c) = get("tlsCAFile") {
            o.push_str(&format!(
                "        // {}: trust the CA in {} on this machine (its trust store): the driver takes no\n        // CA file and refuses a certificate validation callback for KMS connections.\n",
                p.name,
                expr(c)
            ));
        }
        o.push_str(&format!(
            "        options[{}] = new SslSettings\n        {{\n",
            quote(&p.name)
        ));
        if let Some(c) = get("tlsCertificateKeyFile") {
            let password = get(TLS_PASSWORD).map_or("null".to_string(), expr);
            o.push_str(&format!(
                "            ClientCertificates = new[] {{ ClientCertificate({}, {password}) }},\n",
                expr(c)
            ));
        }
        o.push_str("        };\n");
    }
    o.push_str("        return options;\n    }\n\n");
    o.push_str("    // Your application's AutoEncryptionOptions with keyshift's KMS settings merged in. Build\n    // them as it does today (schemaMap or encryptedFieldsMap, bypassAutoEncryption only if it\n    // already sets it, keyVaultClient, extraOptions for crypt_shared or mongocryptd), then pass\n    // them through here: keyshift replaces only keyVaultNamespace, kmsProviders and tlsOptions.\n");
    o.push_str("    public static AutoEncryptionOptions WithKms(AutoEncryptionOptions appOptions) =>\n        appOptions.With(\n            keyVaultNamespace: CollectionNamespace.FromFullName(KeyVaultNamespace),\n            kmsProviders: KmsProviders(),\n            tlsOptions: TlsOptions());\n\n");
    o.push_str("    // The same KMS settings for ClientEncryption: new DEKs, explicit encrypt and decrypt.\n    public static ClientEncryptionOptions ClientEncryptionOptions(IMongoClient keyVaultClient) =>\n        new ClientEncryptionOptions(\n            keyVaultClient,\n            CollectionNamespace.FromFullName(KeyVaultNamespace),\n            KmsProviders(),\n            TlsOptions());\n");
    o.push_str("    // ---- END keyshift KMS settings ----\n\n");
    o.push_str(&format!(
        "    public const string TargetProvider = {};\n\n",
        quote(&s.target)
    ));
    o.push_str("    public static BsonDocument TargetMasterKey() => new BsonDocument\n    {\n");
    for (k, v) in &s.master_key {
        o.push_str(&format!("        {{ {}, {} }},\n", quote(k), expr(v)));
    }
    o.push_str("    };\n\n");
    o.push_str("    // A new DEK under the target master key; returns its _id.\n    public static Guid CreateDataKey(IMongoClient keyVaultClient, IEnumerable<string> keyAltNames)\n    {\n        using var clientEncryption = new ClientEncryption(ClientEncryptionOptions(keyVaultClient));\n");
    if s.master_key.is_empty() {
        o.push_str(
            "        var dataKeyOptions = new DataKeyOptions(alternateKeyNames: keyAltNames);\n",
        );
    } else {
        o.push_str("        var dataKeyOptions = new DataKeyOptions(alternateKeyNames: keyAltNames, masterKey: TargetMasterKey());\n");
    }
    o.push_str("        return clientEncryption.CreateDataKey(TargetProvider, dataKeyOptions, CancellationToken.None);\n    }\n\n");
    o.push_str("    // A whole client with AUTOMATIC encryption, as an application that encrypts automatically\n    // has: fields its rules name are encrypted on every write and decrypted on every read.\n    // keyshift does not know those rules, so they are required: pass your application's own\n    // schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or an empty schemaMap\n    // only if it relies on the server's $jsonSchema validators. An application that encrypts\n    // explicitly and already sets bypassAutoEncryption: true keeps doing so in its own options\n    // passed to WithKms; nothing here sets it. Driver 3.x: call\n    // MongoClientSettings.Extensions.AddAutoEncryption() once at startup, before this (an\n    // application that encrypts automatically does so today).\n");
    o.push_str("    public static MongoClient EncryptedClient(\n        string uri,\n        IReadOnlyDictionary<string, BsonDocument> appSchemaMap,\n        IReadOnlyDictionary<string, BsonDocument> appEncryptedFieldsMap)\n    {\n        if (appSchemaMap == null && appEncryptedFieldsMap == null)\n        {\n            throw new ArgumentException(\n                \"pass your application's schemaMap or encryptedFieldsMap (an empty schemaMap when it relies on the server's validators)\");\n        }\n        var settings = MongoClientSettings.FromConnectionString(uri);\n        settings.AutoEncryptionOptions = WithKms(new AutoEncryptionOptions(\n            CollectionNamespace.FromFullName(KeyVaultNamespace),\n            KmsProviders(),\n            schemaMap: appSchemaMap,\n            encryptedFieldsMap: appEncryptedFieldsMap));\n        return new MongoClient(settings);\n    }\n}\n");
    o
}
