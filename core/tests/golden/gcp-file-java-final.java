// keyshift final stage: `gcp` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//
// MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
// of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
// END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
// application builds today, with withKms(AutoEncryptionSettings.builder()) and
// withKms(ClientEncryptionSettings.builder()), and keep everything else it sets there as
// it is: its schemaMap / encryptedFieldsMap, bypass setting and crypt_shared / mongocryptd
// options.
// An application that encrypts automatically keeps doing so: never add
// .bypassAutoEncryption(true) to it. That turns automatic encryption off, and its new
// writes of sensitive fields would reach the server in plaintext.
//
// Requires mongodb-driver-sync 4.7.0+ with org.mongodb:mongodb-crypt (1.6.1+ before driver
// 5.2; from 5.2 on, the driver's own version), Java 11+.
// Needs libmongocrypt 1.5.2+, inside org.mongodb:mongodb-crypt (1.6.1+ carries the fix;
// from driver 5.2 on it is built from libmongocrypt 1.11).
// If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
// Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
// File paths are as keyshift.toml gives them: relative ones are relative to its directory.
// Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
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
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Cipher;
import javax.crypto.EncryptedPrivateKeyInfo;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.bson.BsonBinary;
import org.bson.BsonBoolean;
import org.bson.BsonDocument;
import org.bson.BsonString;

public final class KeyshiftEncryption {
    // ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionSettings and ClientEncryptionSettings ----
    public static final String KEY_VAULT_NAMESPACE = "encryption.__keyVault";

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

    /** A GCP service account key as libmongocrypt wants it: the base64 of its DER (PEM loses its armour). */
    static String gcpPrivateKey(String text) {
        if (!text.contains("-----BEGIN")) {
            return text.trim();
        }
        StringBuilder base64 = new StringBuilder();
        for (String line : text.split("\\R")) {
            if (!line.startsWith("-----")) {
                base64.append(line.trim());
            }
        }
        return base64.toString();
    }

    public static Map<String, Map<String, Object>> kmsProviders() throws IOException {
        Map<String, Map<String, Object>> providers = new HashMap<>();
        Map<String, Object> gcp = new HashMap<>();
        gcp.put("email", "keyshift@my-project.iam.gserviceaccount.com");
        gcp.put("privateKey", gcpPrivateKey(readText("gcp-service-account.pem")));
        providers.put("gcp", gcp);
        return providers;
    }

    /** KMS TLS per provider, from the PEM files keyshift.toml names. */
    public static Map<String, SSLContext> kmsSslContexts() throws IOException, GeneralSecurityException {
        Map<String, SSLContext> contexts = new HashMap<>();
        return contexts;
    }

    /**
     * Your application's AutoEncryptionSettings builder with keyshift's KMS settings merged in.
     * Keep chaining every option it sets today (schemaMap or encryptedFieldsMap,
     * bypassAutoEncryption only if it already sets it, keyVaultMongoClientSettings, extraOptions
     * for crypt_shared or mongocryptd); keyshift supplies keyVaultNamespace, kmsProviders and
     * kmsProviderSslContextMap.
     */
    public static AutoEncryptionSettings.Builder withKms(AutoEncryptionSettings.Builder appSettings)
            throws IOException, GeneralSecurityException {
        return appSettings
                .keyVaultNamespace(KEY_VAULT_NAMESPACE)
                .kmsProviders(kmsProviders())
                .kmsProviderSslContextMap(kmsSslContexts());
    }

    /** The same KMS settings for ClientEncryption: new DEKs, explicit encrypt and decrypt. */
    public static ClientEncryptionSettings.Builder withKms(ClientEncryptionSettings.Builder appSettings)
            throws IOException, GeneralSecurityException {
        return appSettings
                .keyVaultNamespace(KEY_VAULT_NAMESPACE)
                .kmsProviders(kmsProviders())
                .kmsProviderSslContextMap(kmsSslContexts());
    }

    /** KMS TLS from PEM files, with the JDK alone: the Java driver takes an SSLContext per KMS provider. */
    static final class Pem {
        private static final Pattern BLOCK =
                Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");
        private static final char[] STORE_PASSWORD = "keyshift-in-memory".toCharArray();

        private Pem() {}

        /** Every PEM block of a file: its label and its DER bytes. */
        static List<Map.Entry<String, byte[]>> blocks(String path) throws IOException {
            List<Map.Entry<String, byte[]>> blocks = new ArrayList<>();
            Matcher m = BLOCK.matcher(Files.readString(Path.of(path)));
            while (m.find()) {
                blocks.add(Map.entry(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
            }
            return blocks;
        }

        static List<Certificate> certificates(String path) throws IOException, GeneralSecurityException {
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            List<Certificate> certificates = new ArrayList<>();
            for (Map.Entry<String, byte[]> block : blocks(path)) {
                if (block.getKey().equals("CERTIFICATE")) {
                    certificates.add(factory.generateCertificate(new ByteArrayInputStream(block.getValue())));
                }
            }
            if (certificates.isEmpty()) {
                throw new GeneralSecurityException(path + " holds no PEM certificate");
            }
            return certificates;
        }

        /** The PKCS#8 private key of a PEM file; an encrypted one ("ENCRYPTED PRIVATE KEY") is opened with password. */
        static PrivateKey privateKey(String path, char[] password) throws IOException, GeneralSecurityException {
            for (Map.Entry<String, byte[]> block : blocks(path)) {
                PKCS8EncodedKeySpec spec;
                if (block.getKey().equals("PRIVATE KEY")) {
                    spec = new PKCS8EncodedKeySpec(block.getValue());
                } else if (block.getKey().equals("ENCRYPTED PRIVATE KEY")) {
                    if (password == null) {
                        throw new GeneralSecurityException(path + ": the private key is encrypted and no tlsCertificateKeyFilePassword is set");
                    }
                    EncryptedPrivateKeyInfo info = new EncryptedPrivateKeyInfo(block.getValue());
                    // PBES2 keys name their scheme in the parameters, e.g. PBEWithHmacSHA256AndAES_256.
                    String algorithm = info.getAlgParameters() != null ? info.getAlgParameters().toString() : info.getAlgName();
                    Cipher cipher = Cipher.getInstance(algorithm);
                    cipher.init(Cipher.DECRYPT_MODE,
                            SecretKeyFactory.getInstance(algorithm).generateSecret(new PBEKeySpec(password)),
                            info.getAlgParameters());
                    spec = info.getKeySpec(cipher);
                } else if (block.getKey().endsWith("PRIVATE KEY")) {
                    throw new GeneralSecurityException(path + ": a " + block.getKey()
                            + " is not PKCS#8; convert it with: openssl pkcs8 -topk8 -in KEY -out KEY.pk8");
                } else {
                    continue;
                }
                for (String type : new String[] {"RSA", "EC", "EdDSA", "RSASSA-PSS"}) {
                    try {
                        return KeyFactory.getInstance(type).generatePrivate(spec);
                    } catch (InvalidKeySpecException | NoSuchAlgorithmException notThisType) {
                        // try the next key type
                    }
                }
                throw new GeneralSecurityException(path + ": unsupported private key type");
            }
            throw new GeneralSecurityException(path + " holds no PEM private key");
        }

        /**
         * An SSLContext that trusts the certificates in caFile (null: the JVM's trust store) and
         * presents the certificate chain and private key in certificateKeyFile (null: none).
         */
        static SSLContext sslContext(String caFile, String certificateKeyFile, char[] password)
                throws IOException, GeneralSecurityException {
            TrustManagerFactory trust = null;
            if (caFile != null) {
                KeyStore store = KeyStore.getInstance("PKCS12");
                store.load(null, null);
                int i = 0;
                for (Certificate ca : certificates(caFile)) {
                    store.setCertificateEntry("ca" + i++, ca);
                }
                trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                trust.init(store);
            }
            KeyManagerFactory keys = null;
            if (certificateKeyFile != null) {
                KeyStore store = KeyStore.getInstance("PKCS12");
                store.load(null, null);
                store.setKeyEntry("client", privateKey(certificateKeyFile, password), STORE_PASSWORD,
                        certificates(certificateKeyFile).toArray(new Certificate[0]));
                keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                keys.init(store, STORE_PASSWORD);
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys == null ? null : keys.getKeyManagers(), trust == null ? null : trust.getTrustManagers(), null);
            return context;
        }
    }
    // ---- END keyshift KMS settings ----

    public static final String TARGET_PROVIDER = "gcp";

    public static BsonDocument targetMasterKey() throws IOException {
        return new BsonDocument()
                .append("projectId", new BsonString("my-project"))
                .append("location", new BsonString("global"))
                .append("keyRing", new BsonString("ks-ring"))
                .append("keyName", new BsonString("ks-key"));
    }

    /** A new DEK under the target master key; returns its _id. */
    public static BsonBinary createDataKey(String uri, List<String> keyAltNames)
            throws IOException, GeneralSecurityException {
        ClientEncryptionSettings settings = withKms(ClientEncryptionSettings.builder())
                .keyVaultMongoClientSettings(MongoClientSettings.builder()
                        .applyConnectionString(new ConnectionString(uri))
                        .build())
                .build();
        try (ClientEncryption clientEncryption = ClientEncryptions.create(settings)) {
            return clientEncryption.createDataKey(TARGET_PROVIDER,
                    new DataKeyOptions().masterKey(targetMasterKey()).keyAltNames(keyAltNames));
        }
    }

    /**
     * A whole client with AUTOMATIC encryption, as an application that encrypts automatically
     * has: fields its rules name are encrypted on every write and decrypted on every read.
     * keyshift does not know those rules, so they are required: pass your application's own
     * schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or an empty schemaMap only
     * if it relies on the server's $jsonSchema validators. Its crypt_shared or mongocryptd
     * settings go through withKms as above. An application that encrypts explicitly and already
     * sets bypassAutoEncryption(true) keeps doing so in its own builder; nothing here sets it.
     */
    public static MongoClient encryptedClient(String uri, Map<String, BsonDocument> appSchemaMap,
            Map<String, BsonDocument> appEncryptedFieldsMap) throws IOException, GeneralSecurityException {
        if (appSchemaMap == null && appEncryptedFieldsMap == null) {
            throw new IllegalArgumentException("pass your application's schemaMap or encryptedFieldsMap"
                    + " (an empty schemaMap when it relies on the server's validators)");
        }
        AutoEncryptionSettings.Builder auto = withKms(AutoEncryptionSettings.builder());
        if (appSchemaMap != null) {
            auto.schemaMap(appSchemaMap);
        }
        if (appEncryptedFieldsMap != null) {
            auto.encryptedFieldsMap(appEncryptedFieldsMap);
        }
        return MongoClients.create(MongoClientSettings.builder()
                .applyConnectionString(new ConnectionString(uri))
                .autoEncryptionSettings(auto.build())
                .build());
    }
}
