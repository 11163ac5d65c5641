// keyshift final stage: `kmip` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//
// MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
// of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
// END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
// application builds today, with WithKMS(yourAutoEncryptionOptions) and
// ClientEncryptionOptions(), and keep everything else it sets there as it is: its
// SetSchemaMap / SetEncryptedFieldsMap, bypass setting and crypt_shared / mongocryptd
// options.
// An application that encrypts automatically keeps doing so: never add
// SetBypassAutoEncryption(true) to it. That turns automatic encryption off, and its new
// writes of sensitive fields would reach the server in plaintext.
//
// Requires go.mongodb.org/mongo-driver 1.10.0+ (the v1 API used here), built with -tags
// cse against libmongocrypt 1.5.2+.
// Needs libmongocrypt 1.5.2+ on the machines that build and run it.
// KMIP: go.mongodb.org/mongo-driver 1.8.0+.
// KMIP delegated: libmongocrypt 1.10.0+ (the driver passes masterKey through).
// If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
// Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
// File paths are as keyshift.toml gives them: relative ones are relative to its directory.
// Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
// Written for the v1 API; for go.mongodb.org/mongo-driver/v2 use its import paths,
// mongo.Connect(opts) and bson.Binary.
// API: https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo/options
//      https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo#ClientEncryption
package keyshift

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"os"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionOptions and ClientEncryptionOptions ----
const KeyVaultNamespace = "encryption.__keyVault"

func mustEnv(name string) string {
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

// KmsProviders returns the kmsProviders for this stage.
func KmsProviders() map[string]map[string]interface{} {
	return map[string]map[string]interface{}{
		"kmip": {
			"endpoint": "kmip.example.com:5696",
		},
	}
}

// TLSConfigs returns the KMS TLS configuration per provider.
func TLSConfigs() (map[string]*tls.Config, error) {
	configs := map[string]*tls.Config{}
	if cfg, err := options.BuildTLSConfig(map[string]interface{}{
		"tlsCAFile": "ca.pem",
		"tlsCertificateKeyFile": "client.pem",
	}); err != nil {
		return nil, err
	} else {
		configs["kmip"] = cfg
	}
	return configs, nil
}

// WithKMS merges keyshift's KMS settings into your application's AutoEncryptionOptions and
// returns them. Keep setting everything else as your application does today (SetSchemaMap or
// SetEncryptedFieldsMap, SetBypassAutoEncryption only if it already sets it,
// SetKeyVaultClientOptions, SetExtraOptions for crypt_shared or mongocryptd); keyshift sets
// the key vault namespace, the kmsProviders and the KMS TLS configuration.
func WithKMS(appOpts *options.AutoEncryptionOptions) (*options.AutoEncryptionOptions, error) {
	tlsConfigs, err := TLSConfigs()
	if err != nil {
		return nil, err
	}
	return appOpts.
		SetKeyVaultNamespace(KeyVaultNamespace).
		SetKmsProviders(KmsProviders()).
		SetTLSConfig(tlsConfigs), nil
}

// ClientEncryptionOptions returns the same KMS settings for mongo.NewClientEncryption: new
// DEKs, explicit encrypt and decrypt.
func ClientEncryptionOptions() (*options.ClientEncryptionOptions, error) {
	tlsConfigs, err := TLSConfigs()
	if err != nil {
		return nil, err
	}
	return options.ClientEncryption().
		SetKeyVaultNamespace(KeyVaultNamespace).
		SetKmsProviders(KmsProviders()).
		SetTLSConfig(tlsConfigs), nil
}

// ---- END keyshift KMS settings ----

const TargetProvider = "kmip"

// TargetMasterKey is the masterKey new DEKs are created under.
func TargetMasterKey() bson.M {
	return bson.M{
		"keyId": "1",
		"delegated": false,
	}
}

// ConnectionString returns the key vault's connection string.
func ConnectionString() string {
	return mustEnv("MONGODB_URI")
}

// CreateDataKey creates a DEK under the target master key and returns its _id.
func CreateDataKey(ctx context.Context, keyVaultClient *mongo.Client, keyAltNames []string) (primitive.Binary, error) {
	ceOpts, err := ClientEncryptionOptions()
	if err != nil {
		return primitive.Binary{}, err
	}
	clientEncryption, err := mongo.NewClientEncryption(keyVaultClient, ceOpts)
	if err != nil {
		return primitive.Binary{}, err
	}
	defer clientEncryption.Close(ctx)
	return clientEncryption.CreateDataKey(ctx, TargetProvider, options.DataKey().SetMasterKey(TargetMasterKey()).SetKeyAltNames(keyAltNames))
}

// EncryptedClient is a whole client with AUTOMATIC encryption, as an application that
// encrypts automatically has: fields its rules name are encrypted on every write and decrypted
// on every read. keyshift does not know those rules, so they are required: pass your
// application's own schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or an
// empty schemaMap only if it relies on the server's $jsonSchema validators. An application
// that encrypts explicitly and already calls SetBypassAutoEncryption(true) keeps doing so in
// its own options passed to WithKMS; nothing here sets it.
func EncryptedClient(ctx context.Context, uri string, appSchemaMap, appEncryptedFieldsMap map[string]interface{}) (*mongo.Client, error) {
	if appSchemaMap == nil && appEncryptedFieldsMap == nil {
		return nil, errors.New("pass your application's schemaMap or encryptedFieldsMap (an empty schemaMap when it relies on the server's validators)")
	}
	appOpts := options.AutoEncryption()
	if appSchemaMap != nil {
		appOpts.SetSchemaMap(appSchemaMap)
	}
	if appEncryptedFieldsMap != nil {
		appOpts.SetEncryptedFieldsMap(appEncryptedFieldsMap)
	}
	autoOpts, err := WithKMS(appOpts)
	if err != nil {
		return nil, err
	}
	return mongo.Connect(ctx, options.Client().ApplyURI(uri).SetAutoEncryptionOptions(autoOpts))
}
