// keyshift final stage: `azure:prod` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
// API: https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/M_MongoDB_Driver_Encryption_ClientEncryptionOptions__ctor.htm
//      https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/T_MongoDB_Driver_Encryption_ClientEncryption.htm
//      https://mongodb.github.io/mongo-csharp-driver/2.21/apidocs/html/T_MongoDB_Driver_Encryption_AutoEncryptionOptions.htm
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
    public const string KeyVaultNamespace = "encryption.__keyVault";
    public const string TargetProvider = "azure:prod";

    static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($"{name} is not set");

    static string ReadText(string path) => File.ReadAllText(path).Trim();

    // The local master key: 96 raw bytes, or their base64 text.
    static byte[] LocalKey(byte[] raw) =>
        raw.Length == 96 ? raw : Convert.FromBase64String(Encoding.UTF8.GetString(raw).Trim());

    public static Dictionary<string, IReadOnlyDictionary<string, object>> KmsProviders() => new()
    {
        ["azure:prod"] = new Dictionary<string, object>
        {
            ["tenantId"] = "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ["clientId"] = "00001111-aaaa-2222-bbbb-3333cccc4444",
            ["clientSecret"] = Env("AZURE_CLIENT_SECRET"),
        },
    };

    public static Dictionary<string, SslSettings> TlsOptions()
    {
        var options = new Dictionary<string, SslSettings>();
        return options;
    }

    public static BsonDocument TargetMasterKey() => new BsonDocument
    {
        { "keyVaultEndpoint", "my-vault.vault.azure.net" },
        { "keyName", "ks-cmk" },
    };

    // A MongoClient that decrypts fields whose DEKs are under any provider above.
    public static MongoClient EncryptedClient(string uri)
    {
        var settings = MongoClientSettings.FromConnectionString(uri);
        settings.AutoEncryptionOptions = new AutoEncryptionOptions(
            CollectionNamespace.FromFullName(KeyVaultNamespace),
            KmsProviders(),
            bypassAutoEncryption: true,
            tlsOptions: TlsOptions());
        return new MongoClient(settings);
    }

    // A new DEK under the target master key; returns its _id.
    public static Guid CreateDataKey(IMongoClient keyVaultClient, IEnumerable<string> keyAltNames)
    {
        var options = new ClientEncryptionOptions(
            keyVaultClient,
            CollectionNamespace.FromFullName(KeyVaultNamespace),
            KmsProviders(),
            TlsOptions());
        using var clientEncryption = new ClientEncryption(options);
        var dataKeyOptions = new DataKeyOptions(alternateKeyNames: keyAltNames, masterKey: TargetMasterKey());
        return clientEncryption.CreateDataKey(TargetProvider, dataKeyOptions, CancellationToken.None);
    }
}
