//! Java (sync driver, `mongodb-driver-sync`).
//!
//! API, from the Java driver reference:
//! - `ClientEncryptionSettings.builder().keyVaultMongoClientSettings(..)
//!   .keyVaultNamespace(..).kmsProviders(..).kmsProviderSslContextMap(..)`:
//!   <https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/ClientEncryptionSettings.Builder.html>
//! - `ClientEncryptions.create(settings)`, `ClientEncryption.createDataKey(kmsProvider,
//!   DataKeyOptions)`, `DataKeyOptions.masterKey(BsonDocument).keyAltNames(List)`:
//!   <https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-sync/com/mongodb/client/vault/ClientEncryption.html>
//! - `AutoEncryptionSettings.builder()...schemaMap(..).encryptedFieldsMap(..)
//!   .kmsProviderSslContextMap(..)`:
//!   <https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/AutoEncryptionSettings.Builder.html>
//!
//! The Java driver takes KMS TLS as an `SSLContext` per provider, so the snippet builds
//! them from the PEM files (CA bundle; client certificate chain and PKCS#8 key, plain or
//! encrypted) with the JDK alone, in the nested class `Pem`. The merge point is
//! `withKms(builder)` for both settings builders: the application keeps chaining its own
//! options.

use super::{Lang, Setup, Source, TLS_PASSWORD, notes, quote};

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
        Source::GcpKeyFile(p) => format!("gcpPrivateKey(readText({}))", quote(p)),
        Source::GcpKeyEnv(n) => format!("gcpPrivateKey(env({}))", quote(n)),
    }
}

fn bson(s: &Source) -> String {
    match s {
        Source::Bool(b) => format!("BsonBoolean.valueOf({b})"),
        other => format!("new BsonString({})", expr(other)),
    }
}

const IMPORTS: &str = r#"import com.mongodb.AutoEncryptionSettings;
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

"#;

const HELPERS: &str = r#"    static String env(String name) {
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

"#;

/// KMS TLS from PEM files with the JDK alone (no BouncyCastle): the driver wants an
/// SSLContext per provider.
const PEM: &str = r#"    /** KMS TLS from PEM files, with the JDK alone: the Java driver takes an SSLContext per KMS provider. */
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
"#;

/// Renders the Java class.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Java, "//"));
    o.push_str("// API: https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/ClientEncryptionSettings.Builder.html\n");
    o.push_str("//      https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-sync/com/mongodb/client/vault/ClientEncryption.html\n");
    o.push_str("//      https://mongodb.github.io/mongo-java-driver/5.1/apidocs/driver-core/com/mongodb/AutoEncryptionSettings.Builder.html\n");
    o.push_str(IMPORTS);
    o.push_str("public final class KeyshiftEncryption {\n");
    o.push_str("    // ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionSettings and ClientEncryptionSettings ----\n");
    o.push_str(&format!(
        "    public static final String KEY_VAULT_NAMESPACE = {};\n\n",
        quote(&s.namespace)
    ));
    o.push_str(HELPERS);
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
    o.push_str("    /** KMS TLS per provider, from the PEM files keyshift.toml names. */\n    public static Map<String, SSLContext> kmsSslContexts() throws IOException, GeneralSecurityException {\n        Map<String, SSLContext> contexts = new HashMap<>();\n");
    for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
        let get = |key: &str| p.tls.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let ca = get("tlsCAFile").map_or("null".to_string(), expr);
        let cert = get("tlsCertificateKeyFile").map_or("null".to_string(), expr);
        let password =
            get(TLS_PASSWORD).map_or("null".to_string(), |v| format!("{}.toCharArray()", expr(v)));
        o.push_str(&format!(
            "        contexts.put({}, Pem.sslContext({ca}, {cert}, {password}));\n",
            quote(&p.name)
        ));
    }
    o.push_str("        return contexts;\n    }\n\n");
    o.push_str("    /**\n     * Your application's AutoEncryptionSettings builder with keyshift's KMS settings merged in.\n     * Keep chaining every option it sets today (schemaMap or encryptedFieldsMap,\n     * bypassAutoEncryption only if it already sets it, keyVaultMongoClientSettings, extraOptions\n     * for crypt_shared or mongocryptd); keyshift supplies keyVaultNamespace, kmsProviders and\n     * kmsProviderSslContextMap.\n     */\n");
    o.push_str("    public static AutoEncryptionSettings.Builder withKms(AutoEncryptionSettings.Builder appSettings)\n            throws IOException, GeneralSecurityException {\n        return appSettings\n                .keyVaultNamespace(KEY_VAULT_NAMESPACE)\n                .kmsProviders(kmsProviders())\n                .kmsProviderSslContextMap(kmsSslContexts());\n    }\n\n");
    o.push_str("    /** The same KMS settings for ClientEncryption: new DEKs, explicit encrypt and decrypt. */\n    public static ClientEncryptionSettings.Builder withKms(ClientEncryptionSettings.Builder appSettings)\n            throws IOException, GeneralSecurityException {\n        return appSettings\n                .keyVaultNamespace(KEY_VAULT_NAMESPACE)\n                .kmsProviders(kmsProviders())\n                .kmsProviderSslContextMap(kmsSslContexts());\n    }\n\n");
    o.push_str(PEM);
    o.push_str("    // ---- END keyshift KMS settings ----\n\n");
    o.push_str(&format!(
        "    public static final String TARGET_PROVIDER = {};\n\n",
        quote(&s.target)
    ));
    o.push_str("    public static BsonDocument targetMasterKey() throws IOException {\n        return new BsonDocument()");
    for (k, v) in &s.master_key {
        o.push_str(&format!(
            "\n                .append({}, {})",
            quote(k),
            bson(v)
        ));
    }
    o.push_str(";\n    }\n\n");
    o.push_str("    /** A new DEK under the target master key; returns its _id. */\n");
    o.push_str("    public static BsonBinary createDataKey(String uri, List<String> keyAltNames)\n            throws IOException, GeneralSecurityException {\n        ClientEncryptionSettings settings = withKms(ClientEncryptionSettings.builder())\n                .keyVaultMongoClientSettings(MongoClientSettings.builder()\n                        .applyConnectionString(new ConnectionString(uri))\n                        .build())\n                .build();\n        try (ClientEncryption clientEncryption = ClientEncryptions.create(settings)) {\n");
    if s.master_key.is_empty() {
        o.push_str("            return clientEncryption.createDataKey(TARGET_PROVIDER, new DataKeyOptions().keyAltNames(keyAltNames));\n");
    } else {
        o.push_str("            return clientEncryption.createDataKey(TARGET_PROVIDER,\n                    new DataKeyOptions().masterKey(targetMasterKey()).keyAltNames(keyAltNames));\n");
    }
    o.push_str("        }\n    }\n\n");
    o.push_str("    /**\n     * A whole client with AUTOMATIC encryption, as an application that encrypts automatically\n     * has: fields its rules name are encrypted on every write and decrypted on every read.\n     * keyshift does not know those rules, so they are required: pass your application's own\n     * schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or an empty schemaMap only\n     * if it relies on the server's $jsonSchema validators. Its crypt_shared or mongocryptd\n     * settings go through withKms as above. An application that encrypts explicitly and already\n     * sets bypassAutoEncryption(true) keeps doing so in its own builder; nothing here sets it.\n     */\n");
    o.push_str("    public static MongoClient encryptedClient(String uri, Map<String, BsonDocument> appSchemaMap,\n            Map<String, BsonDocument> appEncryptedFieldsMap) throws IOException, GeneralSecurityException {\n        if (appSchemaMap == null && appEncryptedFieldsMap == null) {\n            throw new IllegalArgumentException(\"pass your application's schemaMap or encryptedFieldsMap\"\n                    + \" (an empty schemaMap when it relies on the server's validators)\");\n        }\n        AutoEncryptionSettings.Builder auto = withKms(AutoEncryptionSettings.builder());\n        if (appSchemaMap != null) {\n            auto.schemaMap(appSchemaMap);\n        }\n        if (appEncryptedFieldsMap != null) {\n            auto.encryptedFieldsMap(appEncryptedFieldsMap);\n        }\n        return MongoClients.create(MongoClientSettings.builder()\n                .applyConnectionString(new ConnectionString(uri))\n                .autoEncryptionSettings(auto.build())\n                .build());\n    }\n}\n");
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
