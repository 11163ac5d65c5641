//! C# (MongoDB.Driver).
//!
//! API, from the C# driver reference:
//! - `new ClientEncryptionOptions(keyVaultClient, keyVaultNamespace, kmsProviders,
//!   tlsOptions)`:
//!   <https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/M_MongoDB_Driver_Encryption_ClientEncryptionOptions__ctor.htm>
//! - `ClientEncryption.CreateDataKey(kmsProvider, DataKeyOptions, CancellationToken)`
//!   and `new DataKeyOptions(alternateKeyNames:, masterKey:)`:
//!   <https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/T_MongoDB_Driver_Encryption_ClientEncryption.htm>
//! - `new AutoEncryptionOptions(keyVaultNamespace, kmsProviders, bypassAutoEncryption:,
//!   tlsOptions:)`:
//!   <https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/T_MongoDB_Driver_Encryption_AutoEncryptionOptions.htm>

use super::{Setup, Source, header, quote};

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("Env({})", quote(n)),
        Source::File(p) => format!("ReadText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("LocalKey(File.ReadAllBytes({}))", quote(p)),
        Source::LocalKeyEnv(n) => format!("LocalKey(Encoding.UTF8.GetBytes(Env({})))", quote(n)),
    }
}

/// Renders the C# class.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&format!("// {}\n", header(s)));
    o.push_str("// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.\n");
    o.push_str("// API: https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/M_MongoDB_Driver_Encryption_ClientEncryptionOptions__ctor.htm\n");
    o.push_str("//      https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/T_MongoDB_Driver_Encryption_ClientEncryption.htm\n");
    o.push_str("//      https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/T_MongoDB_Driver_Encryption_AutoEncryptionOptions.htm\n");
    o.push_str("using System;\nusing System.Collections.Generic;\nusing System.IO;\nusing System.Security.Cryptography.X509Certificates;\nusing System.Text;\nusing System.Threading;\nusing MongoDB.Bson;\nusing MongoDB.Driver;\nusing MongoDB.Driver.Encryption;\n\n");
    o.push_str("public static class KeyshiftEncryption\n{\n");
    o.push_str(&format!(
        "    public const string KeyVaultNamespace = {};\n",
        quote(&s.namespace)
    ));
    o.push_str(&format!(
        "    public const string TargetProvider = {};\n\n",
        quote(&s.target)
    ));
    o.push_str("    static string Env(string name) =>\n        Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($\"{name} is not set\");\n\n");
    o.push_str("    static string ReadText(string path) => File.ReadAllText(path).Trim();\n\n");
    o.push_str("    // The local master key: 96 raw bytes, or their base64 text.\n    static byte[] LocalKey(byte[] raw) =>\n        raw.Length == 96 ? raw : Convert.FromBase64String(Encoding.UTF8.GetString(raw).Trim());\n\n");
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
    o.push_str("    public static Dictionary<string, SslSettings> TlsOptions()\n    {\n        var options = new Dictionary<string, SslSettings>();\n");
    for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
        let cert = p.tls.iter().find(|(k, _)| k == "tlsCertificateKeyFile");
        let ca = p.tls.iter().find(|(k, _)| k == "tlsCAFile");
        o.push_str(&format!(
            "        options[{}] = new SslSettings\n        {{\n",
            quote(&p.name)
        ));
        if let Some((_, c)) = cert {
            o.push_str(&format!("            ClientCertificates = new[] {{ X509Certificate2.CreateFromPemFile({}) }},\n", expr(c)));
        }
        o.push_str("        };\n");
        if let Some((_, c)) = ca {
            o.push_str(&format!(
                "        // Trust the CA in {} for {} (add it to the machine's trust store).\n",
                expr(c),
                p.name
            ));
        }
    }
    o.push_str("        return options;\n    }\n\n");
    o.push_str("    public static BsonDocument TargetMasterKey() => new BsonDocument\n    {\n");
    for (k, v) in &s.master_key {
        o.push_str(&format!("        {{ {}, {} }},\n", quote(k), expr(v)));
    }
    o.push_str("    };\n\n");
    o.push_str("    // A MongoClient that decrypts fields whose DEKs are under any provider above.\n    public static MongoClient EncryptedClient(string uri)\n    {\n        var settings = MongoClientSettings.FromConnectionString(uri);\n        settings.AutoEncryptionOptions = new AutoEncryptionOptions(\n            CollectionNamespace.FromFullName(KeyVaultNamespace),\n            KmsProviders(),\n            bypassAutoEncryption: true,\n            tlsOptions: TlsOptions());\n        return new MongoClient(settings);\n    }\n\n");
    o.push_str("    // A new DEK under the target master key; returns its _id.\n    public static Guid CreateDataKey(IMongoClient keyVaultClient, IEnumerable<string> keyAltNames)\n    {\n        var options = new ClientEncryptionOptions(\n            keyVaultClient,\n            CollectionNamespace.FromFullName(KeyVaultNamespace),\n            KmsProviders(),\n            TlsOptions());\n        using var clientEncryption = new ClientEncryption(options);\n");
    if s.master_key.is_empty() {
        o.push_str(
            "        var dataKeyOptions = new DataKeyOptions(alternateKeyNames: keyAltNames);\n",
        );
    } else {
        o.push_str("        var dataKeyOptions = new DataKeyOptions(alternateKeyNames: keyAltNames, masterKey: TargetMasterKey());\n");
    }
    o.push_str("        return clientEncryption.CreateDataKey(TargetProvider, dataKeyOptions, CancellationToken.None);\n    }\n}\n");
    o
}
