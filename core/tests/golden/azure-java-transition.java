// keyshift transition stage: reads keys under `local`, `azure:prod` while they move to `azure:prod`.
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
    public static final String TARGET_PROVIDER = "azure:prod";

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
        Map<String, Object> local = new HashMap<>();
        local.put("key", localKey(Files.readAllBytes(Path.of("master-key.txt"))));
        providers.put("local", local);
        Map<String, Object> azureProd = new HashMap<>();
        azureProd.put("tenantId", "72f988bf-86f1-41af-91ab-2d7cd011db47");
        azureProd.put("clientId", "00001111-aaaa-2222-bbbb-3333cccc4444");
        azureProd.put("clientSecret", env("AZURE_CLIENT_SECRET"));
        providers.put("azure:prod", azureProd);
        return providers;
    }

    public static BsonDocument targetMasterKey() throws IOException {
        return new BsonDocument()
                .append("keyVaultEndpoint", new BsonString("my-vault.vault.azure.net"))
                .append("keyName", new BsonString("ks-cmk"));
    }

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
