// keyshift transition stage: reads keys under `local`, `gcp` while they move to `gcp`.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
// API: https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo/options
//      https://pkg.go.dev/go.mongodb.org/mongo-driver/mongo#ClientEncryption
package keyshift

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"os"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

const KeyVaultNamespace = "encryption.__keyVault"
const TargetProvider = "gcp"

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

// KmsProviders returns the kmsProviders for this stage.
func KmsProviders() map[string]map[string]interface{} {
	return map[string]map[string]interface{}{
		"local": {
			"key": mustLocalKeyFile("master-key.txt"),
		},
		"gcp": {},
	}
}

// TLSConfigs returns the KMS TLS configuration per provider.
func TLSConfigs() (map[string]*tls.Config, error) {
	configs := map[string]*tls.Config{}
	return configs, nil
}

// TargetMasterKey is the masterKey new DEKs are created under.
func TargetMasterKey() bson.M {
	return bson.M{
		"projectId": "my-project",
		"location": "global",
		"keyRing": "ks-ring",
		"keyName": "ks-key",
	}
}

// ConnectionString returns the key vault's connection string.
func ConnectionString() string {
	return mustEnv("MONGODB_URI")
}

// EncryptedClient decrypts fields whose DEKs are under any provider above.
func EncryptedClient(ctx context.Context, uri string) (*mongo.Client, error) {
	tlsConfigs, err := TLSConfigs()
	if err != nil {
		return nil, err
	}
	autoOpts := options.AutoEncryption().
		SetKeyVaultNamespace(KeyVaultNamespace).
		SetKmsProviders(KmsProviders()).
		SetTLSConfig(tlsConfigs).
		SetBypassAutoEncryption(true)
	return mongo.Connect(ctx, options.Client().ApplyURI(uri).SetAutoEncryptionOptions(autoOpts))
}

// CreateDataKey creates a DEK under the target master key and returns its _id.
func CreateDataKey(ctx context.Context, keyVaultClient *mongo.Client, keyAltNames []string) (primitive.Binary, error) {
	tlsConfigs, err := TLSConfigs()
	if err != nil {
		return primitive.Binary{}, err
	}
	ceOpts := options.ClientEncryption().
		SetKeyVaultNamespace(KeyVaultNamespace).
		SetKmsProviders(KmsProviders()).
		SetTLSConfig(tlsConfigs)
	clientEncryption, err := mongo.NewClientEncryption(keyVaultClient, ceOpts)
	if err != nil {
		return primitive.Binary{}, err
	}
	defer clientEncryption.Close(ctx)
	return clientEncryption.CreateDataKey(ctx, TargetProvider, options.DataKey().SetMasterKey(TargetMasterKey()).SetKeyAltNames(keyAltNames))
}
