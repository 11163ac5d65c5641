//! Go (mongo-go-driver, v1 API).
//!
//! API, from the Go driver reference:
//! - `options.ClientEncryption().SetKeyVaultNamespace(..).SetKmsProviders(..)
//!   .SetTLSConfig(..)`, `options.DataKey().SetMasterKey(..).SetKeyAltNames(..)`,
//!   `options.AutoEncryption()...SetSchemaMap(..).SetEncryptedFieldsMap(..)`,
//!   `options.BuildTLSConfig(map[string]interface{})`:
//!   <https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo/options>
//! - `mongo.NewClientEncryption(keyVaultClient, opts)` and
//!   `(*ClientEncryption).CreateDataKey(ctx, kmsProvider, opts)`:
//!   <https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo#ClientEncryption>
//!
//! The merge point is `WithKMS(appOpts)`: it sets the three KMS settings on the
//! application's own `*options.AutoEncryptionOptions` and returns it.

use super::{Lang, Setup, Source, notes, quote};

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("mustEnv({})", quote(n)),
        Source::File(p) => format!("mustReadText({})", quote(p)),
        Source::LocalKeyFile(p) => format!("mustLocalKeyFile({})", quote(p)),
        Source::LocalKeyEnv(n) => format!("mustLocalKey([]byte(mustEnv({})))", quote(n)),
        Source::GcpKeyFile(p) => format!("gcpPrivateKey(mustReadText({}))", quote(p)),
        Source::GcpKeyEnv(n) => format!("gcpPrivateKey(mustEnv({}))", quote(n)),
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

const HELPERS: &str = r#"func mustEnv(name string) string {
	v, ok := os.LookupEnv(name)
	if !ok {
		panic(name + " is not set")
	}
	return v
}

func mustReadText(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}

// mustLocalKey accepts the local master key as 96 raw bytes or their base64 text.
func mustLocalKey(raw []byte) []byte {
	if len(raw) == 96 {
		return raw
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		panic(err)
	}
	return key
}

func mustLocalKeyFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return mustLocalKey(b)
}

// gcpPrivateKey returns a GCP service account key as libmongocrypt wants it: the base64 of
// its DER. PEM loses its armour lines; base64 text is kept as it is.
func gcpPrivateKey(text string) string {
	if !strings.Contains(text, "-----BEGIN") {
		return strings.TrimSpace(text)
	}
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "-----") {
			b.WriteString(strings.TrimSpace(line))
		}
	}
	return b.String()
}

"#;

/// Renders the Go file.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Go, "//"));
    o.push_str("// Written for the v1 API; for go.mongodb.org/mongo-driver/v2 use its import paths,\n// mongo.Connect(opts) and bson.Binary.\n");
    o.push_str("// API: https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo/options\n");
    o.push_str("//      https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo#ClientEncryption\n");
    o.push_str("package keyshift\n\nimport (\n\t\"context\"\n\t\"crypto/tls\"\n\t\"encoding/base64\"\n\t\"errors\"\n\t\"os\"\n\t\"strings\"\n\n\t\"go.mongodb.org/mongo-driver/bson\"\n\t\"go.mongodb.org/mongo-driver/bson/primitive\"\n\t\"go.mongodb.org/mongo-driver/mongo\"\n\t\"go.mongodb.org/mongo-driver/mongo/options\"\n)\n\n");
    o.push_str("// ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionOptions and ClientEncryptionOptions ----\n");
    o.push_str(&format!(
        "const KeyVaultNamespace = {}\n\n",
        quote(&s.namespace)
    ));
    o.push_str(HELPERS);
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
    o.push_str("// WithKMS merges keyshift's KMS settings into your application's AutoEncryptionOptions and\n// returns them. Keep setting everything else as your application does today (SetSchemaMap or\n// SetEncryptedFieldsMap, SetBypassAutoEncryption only if it already sets it,\n// SetKeyVaultClientOptions, SetExtraOptions for crypt_shared or mongocryptd); keyshift sets\n// the key vault namespace, the kmsProviders and the KMS TLS configuration.\nfunc WithKMS(appOpts *options.AutoEncryptionOptions) (*options.AutoEncryptionOptions, error) {\n\ttlsConfigs, err := TLSConfigs()\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\treturn appOpts.\n\t\tSetKeyVaultNamespace(KeyVaultNamespace).\n\t\tSetKmsProviders(KmsProviders()).\n\t\tSetTLSConfig(tlsConfigs), nil\n}\n\n");
    o.push_str("// ClientEncryptionOptions returns the same KMS settings for mongo.NewClientEncryption: new\n// DEKs, explicit encrypt and decrypt.\nfunc ClientEncryptionOptions() (*options.ClientEncryptionOptions, error) {\n\ttlsConfigs, err := TLSConfigs()\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\treturn options.ClientEncryption().\n\t\tSetKeyVaultNamespace(KeyVaultNamespace).\n\t\tSetKmsProviders(KmsProviders()).\n\t\tSetTLSConfig(tlsConfigs), nil\n}\n\n");
    o.push_str("// ---- END keyshift KMS settings ----\n\n");
    o.push_str(&format!("const TargetProvider = {}\n\n", quote(&s.target)));
    o.push_str(&format!("// TargetMasterKey is the masterKey new DEKs are created under.\nfunc TargetMasterKey() bson.M {{\n\treturn bson.M{}\n}}\n\n", map(&s.master_key, "\t")));
    o.push_str(&format!("// ConnectionString returns the key vault's connection string.\nfunc ConnectionString() string {{\n\treturn {}\n}}\n\n", expr(&s.uri)));
    o.push_str("// CreateDataKey creates a DEK under the target master key and returns its _id.\nfunc CreateDataKey(ctx context.Context, keyVaultClient *mongo.Client, keyAltNames []string) (primitive.Binary, error) {\n\tceOpts, err := ClientEncryptionOptions()\n\tif err != nil {\n\t\treturn primitive.Binary{}, err\n\t}\n\tclientEncryption, err := mongo.NewClientEncryption(keyVaultClient, ceOpts)\n\tif err != nil {\n\t\treturn primitive.Binary{}, err\n\t}\n\tdefer clientEncryption.Close(ctx)\n");
    if s.master_key.is_empty() {
        o.push_str("\treturn clientEncryption.CreateDataKey(ctx, TargetProvider, options.DataKey().SetKeyAltNames(keyAltNames))\n}\n\n");
    } else {
        o.push_str("\treturn clientEncryption.CreateDataKey(ctx, TargetProvider, options.DataKey().SetMasterKey(TargetMasterKey()).SetKeyAltNames(keyAltNames))\n}\n\n");
    }
    o.push_str("// EncryptedClient is a whole client with AUTOMATIC encryption, as an application that\n// encrypts automatically has: fields its rules name are encrypted on every write and decrypted\n// on every read. keyshift does not know those rules, so they are required: pass your\n// application's own schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or an\n// empty schemaMap only if it relies on the server's $jsonSchema validators. An application\n// that encrypts explicitly and already calls SetBypassAutoEncryption(true) keeps doing so in\n// its own options passed to WithKMS; nothing here sets it.\n");
    o.push_str("func EncryptedClient(ctx context.Context, uri string, appSchemaMap, appEncryptedFieldsMap map[string]interface{}) (*mongo.Client, error) {\n\tif appSchemaMap == nil && appEncryptedFieldsMap == nil {\n\t\treturn nil, errors.New(\"pass your application's schemaMap or encryptedFieldsMap (an empty schemaMap when it relies on the server's validators)\")\n\t}\n\tappOpts := options.AutoEncryption()\n\tif appSchemaMap != nil {\n\t\tappOpts.SetSchemaMap(appSchemaMap)\n\t}\n\tif appEncryptedFieldsMap != nil {\n\t\tappOpts.SetEncryptedFieldsMap(appEncryptedFieldsMap)\n\t}\n\tautoOpts, err := WithKMS(appOpts)\n\tif err != nil {\n\t\treturn nil, err\n\t}\n\treturn mongo.Connect(ctx, options.Client().ApplyURI(uri).SetAutoEncryptionOptions(autoOpts))\n}\n");
    o
}
