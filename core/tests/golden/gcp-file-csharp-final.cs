// keyshift final stage: `gcp` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//
// MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
// of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
// END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
// application builds today, with WithKms(yourAutoEncryptionOptions) and
// ClientEncryptionOptions(keyVaultClient), and keep everything else it sets there as it
// is: its schemaMap / encryptedFieldsMap, bypass setting and crypt_shared / mongocryptd
// options.
// An application that encrypts automatically keeps doing so: never add
// bypassAutoEncryption: true to it. That turns automatic encryption off, and its new
// writes of sensitive fields would reach the server in plaintext.
//
// Requires MongoDB.Driver and MongoDB.Driver.Encryption 3.0.0+ on .NET 5+; on Linux,
// libmongocrypt installed and LIBMONGOCRYPT_PATH set to it.
// Needs libmongocrypt 1.5.2+ (on Linux, the one LIBMONGOCRYPT_PATH names).
// If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
// Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
// File paths are as keyshift.toml gives them: relative ones are relative to its directory.
// Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
// API: https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver.Encryption/MongoDB.Driver.Encryption.ClientEncryptionOptions.html
//      https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver.Encryption/MongoDB.Driver.Encryption.ClientEncryption.html
//      https://mongodb.github.io/mongo-csharp-driver/3.0.0/api/MongoDB.Driver/MongoDB.Driver.Encryption.AutoEncryptionOptions.html
using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using MongoDB.Bson;
using MongoDB.Driver;
using MongoDB.Driver.Encryption;

public static class KeyshiftEncryption
{
    // ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionOptions and ClientEncryptionOptions ----
    public const string KeyVaultNamespace = "encryption.__keyVault";

    static string Env(string name) =>
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

    public static Dictionary<string, IReadOnlyDictionary<string, object>> KmsProviders() => new()
    {
        ["gcp"] = new Dictionary<string, object>
        {
            ["email"] = "keyshift@my-project.iam.gserviceaccount.com",
            ["privateKey"] = GcpPrivateKey(ReadText("gcp-service-account.pem")),
        },
    };

    // KMS TLS per provider.
    public static Dictionary<string, SslSettings> TlsOptions()
    {
        var options = new Dictionary<string, SslSettings>();
        return options;
    }

    // Your application's AutoEncryptionOptions with keyshift's KMS settings merged in. Build
    // them as it does today (schemaMap or encryptedFieldsMap, bypassAutoEncryption only if it
    // already sets it, keyVaultClient, extraOptions for crypt_shared or mongocryptd), then pass
    // them through here: keyshift replaces only keyVaultNamespace, kmsProviders and tlsOptions.
    public static AutoEncryptionOptions WithKms(AutoEncryptionOptions appOptions) =>
        appOptions.With(
            keyVaultNamespace: CollectionNamespace.FromFullName(KeyVaultNamespace),
            kmsProviders: KmsProviders(),
            tlsOptions: TlsOptions());

    // The same KMS settings for ClientEncryption: new DEKs, explicit encrypt and decrypt.
    public static ClientEncryptionOptions ClientEncryptionOptions(IMongoClient keyVaultClient) =>
        new ClientEncryptionOptions(
            keyVaultClient,
            CollectionNamespace.FromFullName(KeyVaultNamespace),
            KmsProviders(),
            TlsOptions());
    // ---- END keyshift KMS settings ----

    public const string TargetProvider = "gcp";

    public static BsonDocument TargetMasterKey() => new BsonDocument
    {
        { "projectId", "my-project" },
        { "location", "global" },
        { "keyRing", "ks-ring" },
        { "keyName", "ks-key" },
    };

    // A new DEK under the target master key; returns its _id.
    public static Guid CreateDataKey(IMongoClient keyVaultClient, IEnumerable<string> keyAltNames)
    {
        using var clientEncryption = new ClientEncryption(ClientEncryptionOptions(keyVaultClient));
        var dataKeyOptions = new DataKeyOptions(alternateKeyNames: keyAltNames, masterKey: TargetMasterKey());
        return clientEncryption.CreateDataKey(TargetProvider, dataKeyOptions, CancellationToken.None);
    }

    // A whole client with AUTOMATIC encryption, as an application that encrypts automatically
    // has: fields its rules name are encrypted on every write and decrypted on every read.
    // keyshift does not know those rules, so they are required: pass your application's own
    // schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or an empty schemaMap
    // only if it relies on the server's $jsonSchema validators. An application that encrypts
    // explicitly and already sets bypassAutoEncryption: true keeps doing so in its own options
    // passed to WithKms; nothing here sets it. Driver 3.x: call
    // MongoClientSettings.Extensions.AddAutoEncryption() once at startup, before this (an
    // application that encrypts automatically does so today).
    public static MongoClient EncryptedClient(
        string uri,
        IReadOnlyDictionary<string, BsonDocument> appSchemaMap,
        IReadOnlyDictionary<string, BsonDocument> appEncryptedFieldsMap)
    {
        if (appSchemaMap == null && appEncryptedFieldsMap == null)
        {
            throw new ArgumentException(
                "pass your application's schemaMap or encryptedFieldsMap (an empty schemaMap when it relies on the server's validators)");
        }
        var settings = MongoClientSettings.FromConnectionString(uri);
        settings.AutoEncryptionOptions = WithKms(new AutoEncryptionOptions(
            CollectionNamespace.FromFullName(KeyVaultNamespace),
            KmsProviders(),
            schemaMap: appSchemaMap,
            encryptedFieldsMap: appEncryptedFieldsMap));
        return new MongoClient(settings);
    }
}
