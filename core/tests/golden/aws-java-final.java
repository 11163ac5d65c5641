// keyshift final stage: `aws` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
// API: https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/ClientEncryptionSettings.Builder.html
//      https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-sync/com/mongodb/client/vault/ClientEncryption.html
//      https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/AutoEncryptionSettings.Builder.html
import com.mongodb.AutoEncryptionSettings;
import com.mongodb.ClientEncryptionSettings;
import com.mongodb.ConnectionString;
import com.mongodb.MongoClientSettings;
import com.mongodb.client.MongoClient;
import com.mongodb.client.MongoClients;
import com.mongodb.client.model.vault.DataKeyOptions;
import com.mongodb.client.vault.ClientEncryption;
import com.mongodb.client.vault.ClientEncryptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bson.BsonBinary;
import org.bson.BsonBoolean;
import org.bson.BsonDocument;
import org.bson.BsonString;

public final class KeyshiftEncryption {
    public static final String KEY_VAULT_NAMESPACE = "encryption.__keyVault";
    public static final String TARGET_PROVIDER = "aws";

    static String env(String name) {
        String value = System.getenv(name);
        if (value == null) {
            throw new IllegalStateException(name + " is not set");
        }
        return value;
    }

    static String readText(String path) throws IOException {
        return Files.readString(Path.of(path)).trim();
    }

    /** The local master key: 96 raw bytes, or their base64 text. */
    static byte[] localKey(byte[] raw) {
        return raw.length == 96 ? raw : Base64.getDecoder().decode(new String(raw, StandardCharsets.UTF_8).trim());
    }

    public static Map<String, Map<String, Object>> kmsProviders() throws IOException {
        Map<String, Map<String, Object>> providers = new HashMap<>();
        Map<String, Object> aws = new HashMap<>();
        aws.put("accessKeyId", env("AWS_ACCESS_KEY_ID"));
        aws.put("secretAccessKey", env("AWS_SECRET_ACCESS_KEY"));
        providers.put("aws", aws);
        return providers;
    }

    public static BsonDocument targetMasterKey() throws IOException {
        return new BsonDocument()
                .append("region", new BsonString("us-east-1"))
                .append("key", new BsonString("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"));
    }

    // KMS TLS: build an SSLContext per provider from these PEM files and pass
    // Map.of(name, sslContext) to .kmsProviderSslContextMap(...) on both builders below:
    //   aws tlsCAFile: "ca.pem"

    /** A MongoClient that decrypts fields whose DEKs are under any provider above. */
    public static MongoClient encryptedClient(String uri) throws IOException {
        AutoEncryptionSettings auto = AutoEncryptionSettings.builder()
                .keyVaultNamespace(KEY_VAULT_NAMESPACE)
                .kmsProviders(kmsProviders())
                .bypassAutoEncryption(true)
                .build();
        return MongoClients.create(MongoClientSettings.builder()
                .applyConnectionString(new ConnectionString(uri))
                .autoEncryptionSettings(auto)
                .build());
    }

    /** A new DEK under the target master key; returns its _id. */
    public static BsonBinary createDataKey(String uri, List<String> keyAltNames) throws IOException {
        ClientEncryptionSettings settings = ClientEncryptionSettings.builder()
                .keyVaultMongoClientSettings(MongoClientSettings.builder()
                        .applyConnectionString(new ConnectionString(uri))
                        .build())
                .keyVaultNamespace(KEY_VAULT_NAMESPACE)
                .kmsProviders(kmsProviders())
                .build();
        try (ClientEncryption clientEncryption = ClientEncryptions.create(settings)) {
            return clientEncryption.createDataKey(TARGET_PROVIDER,
                    new DataKeyOptions().masterKey(targetMasterKey()).keyAltNames(keyAltNames));
        }
    }
}
