// keyshift transition stage: reads keys under `local`, `azure:prod` while they move to `azure:prod`.
// Generated from keyshift.toml. Run with: mongosh --nodb --file THIS_FILE
// API: https://www.mongodb.com/docs/manual/reference/method/Mongo/
//      https://www.mongodb.com/docs/manual/reference/method/KeyVault.createKey/
const fs = require('fs');

const keyVaultNamespace = "encryption.__keyVault";

function requireEnv(name) {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

function readText(path) {
  return fs.readFileSync(path, 'utf8').trim();
}

// The local master key: 96 raw bytes, or their base64 text.
function localKey(raw) {
  return raw.length === 96 ? raw : Buffer.from(raw.toString('utf8').trim(), 'base64');
}

const kmsProviders = {
  "local": {
    "key": localKey(fs.readFileSync("master-key.txt")),
  },
  "azure:prod": {
    "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "clientId": "00001111-aaaa-2222-bbbb-3333cccc4444",
    "clientSecret": requireEnv("AZURE_CLIENT_SECRET"),
  },
};

const tlsOptions = {
};

const targetProvider = "azure:prod";
const targetMasterKey = {
  "keyVaultEndpoint": "my-vault.vault.azure.net",
  "keyName": "ks-cmk",
};

const encryptedClient = Mongo(requireEnv("MONGODB_URI"), {
  keyVaultNamespace,
  kmsProviders,
  tlsOptions,
  bypassAutoEncryption: true,
});

// Reads through encryptedClient decrypt fields whose DEKs are under any provider above.
const keyVault = encryptedClient.getKeyVault();

// A new DEK under the target master key (uncomment, and name it):
// keyVault.createKey(targetProvider, targetMasterKey, ['my-key']);
