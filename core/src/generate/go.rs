//! Go (mongo-go-driver v1).
//!
//! API, from the Go driver reference:
//! - `options.ClientEncryption().SetKeyVaultNamespace(..).SetKmsProviders(..)
//!   .SetTLSConfig(..)`, `options.DataKey().SetMasterKey(..).SetKeyAltNames(..)`,
//!   `options.AutoEncryption()...SetBypassAutoEncryption(true)`,
//!   `options.BuildTLSConfig(map[string]interface{})`:
//!   <https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo/options>
//! - `mongo.NewClientEncryption(keyVaultClient, opts)` and
//!   `(*ClientEncryption).CreateDataKey(ctx, kmsProvider, opts)`:
//!   <https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo#ClientEncryption>

use super::{Setup, Source, header, quote};

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("mustEnv({})", quote(n)),
        Source::File(p) => format!("mustReadText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("mustLocalKeyFile({})", quote(p)),
        Source::LocalKeyEnv(n) => format!("mustLocalKey([]byte(mustEnv({})))", quote(n)),
    }
}

fn map(fields: &[(String, Source)], indent: &str) -> String {
    let mut out = String::from("{");
    if fields.is_empty() {
        out.push('}');
        return out;
    }
    out.push('\n');
    for (k, v) in fields {
        out.push_str(&format!("{indent}\t{}: {},\n", quote(k), expr(v)));
    }
    out.push_str(indent);
    out.push('}');
    out
}

/// Renders the Go file.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&format!("// {}\n", header(s)));
    o.push_str("// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.\n");
    o.push_str("// API: https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo/options\n");
    o.push_str("//      https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo#ClientEncryption\n");
    o.push_str("package keyshift\n\nimport (\n\t\"context\"\n\t\"crypto/tls\"\n\t\"encoding/base64\"\n\t\"os\"\n\t\"strings\"\n\n\t\"go.mongodb.org/mongo-driver/bson\"\n\t\"go.mongodb.org/mongo-driver/bson/primitive\"\n\t\"go.mongodb.org/mongo-driver/mongo\"\n\t\"go.mongodb.org/mongo-driver/mongo/options\"\n)\n\n");
    o.push_str(&format!(
        "const KeyVaultNamespace = {}\n",
        quote(&s.namespace)
    ));
    o.push_str(&format!("const TargetProvider = {}\n\n", quote(&s.target)));
    o.push_str("func mustEnv(name string) string {\n\tv, ok := os.LookupEnv(name)\n\tif !ok {\n\t\tpanic(name + \" is not set\")\n\t}\n\treturn v\n}\n\n");
    o.push_str("func mustReadText(path string) string {\n\tb, err := os.ReadFile(path)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\treturn strings.TrimSpace(string(b))\n}\n\n");
    o.push_str("// mustLocalKey accepts the local master key as 96 raw bytes or their base64 text.\nfunc mustLocalKey(raw []byte) []byte {\n\tif len(raw) == 96 {\n\t\treturn raw\n\t}\n\tkey, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\treturn key\n}\n\n");
    o.push_str("func mustLocalKeyFile(path string) []byte {\n\tb, err := os.ReadFile(path)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\treturn mustLocalKey(b)\n}\n\n");
    o.push_str("// KmsProviders returns the kmsProviders for this stage.\nfunc KmsProviders() map[string]map[string]interface{} {\n\treturn map[string]map[string]interface{}{\n");
    for p in &s.providers {
        o.push_str(&format!(
            "\t\t{}: {},\n",
            quote(&p.name),
            map(&p.fields, "\t\t")
        ));
    }
    o.push_str("\t}\n}\n\n");
    o.push_str("// TLSConfigs returns the KMS TLS configuration per provider.\nfunc TLSConfigs() (map[string]*tls.Config, error) {\n\tconfigs := map[string]*tls.Config{}\n");
    for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
        o.push_str(&format!("\tif cfg, err := options.BuildTLSConfig(map[string]interface{{}}{}); err != nil {{\n\t\treturn nil, err\n\t}} else {{\n\t\tconfigs[{}] = cfg\n\t}}\n", map(&p.tls, "\t"), quote(&p.name)));
    }
    o.push_str("\treturn configs, nil\n}\n\n");
    o.push_str(&format!("// TargetMasterKey is the masterKey new DEKs are created under.\nfunc TargetMasterKey() bson.M {{\n\treturn bson.M{}\n}}\n\n", map(&s.master_key, "\t")));
    o.push_str(&format!("// ConnectionString returns the key vault's connection string.\nfunc ConnectionString() string {{\n\treturn {}\n}}\n\n", expr(&s.uri)));
    o.push_str("// EncryptedClient decrypts fields whose DEKs are under any provider above.\nfunc EncryptedClient(ctx context.Context, uri string) (*mongo.Client, error) {\n\ttlsConfigs, err := TLSConfigs()\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\tautoOpts := options.AutoEncryption().\n\t\tSetKeyVaultNamespace(KeyVaultNamespace).\n\t\tSetKmsProviders(KmsProviders()).\n\t\tSetTLSConfig(tlsConfigs).\n\t\tSetBypassAutoEncryption(true)\n\treturn mongo.Connect(ctx, options.Client().ApplyURI(uri).SetAutoEncryptionOptions(autoOpts))\n}\n\n");
    o.push_str("// CreateDataKey creates a DEK under the target master key and returns its _id.\nfunc CreateDataKey(ctx context.Context, keyVaultClient *mongo.Client, keyAltNames []string) (primitive.Binary, error) {\n\ttlsConfigs, err := TLSConfigs()\n\tif err != nil {\n\t\treturn primitive.Binary{}, err\n\t}\n\tceOpts := options.ClientEncryption().\n\t\tSetKeyVaultNamespace(KeyVaultNamespace).\n\t\tSetKmsProviders(KmsProviders()).\n\t\tSetTLSConfig(tlsConfigs)\n\tclientEncryption, err := mongo.NewClientEncryption(keyVaultClient, ceOpts)\n\tif err != nil {\n\t\treturn primitive.Binary{}, err\n\t}\n\tdefer clientEncryption.Close(ctx)\n");
    if s.master_key.is_empty() {
        o.push_str("\treturn clientEncryption.CreateDataKey(ctx, TargetProvider, options.DataKey().SetKeyAltNames(keyAltNames))\n}\n");
    } else {
        o.push_str("\treturn clientEncryption.CreateDataKey(ctx, TargetProvider, options.DataKey().SetMasterKey(TargetMasterKey()).SetKeyAltNames(keyAltNames))\n}\n");
    }
    o
}
