// keyshift transition stage: reads keys under `local`, `kmip` while they move to `kmip`.
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
  "kmip": {
    "endpoint": "kmip.example.com:5696",
  },
};

const tlsOptions = {
  "kmip": {
    "tlsCAFile": "ca.pem",
    "tlsCertificateKeyFile": "client.pem",
  },
};

const targetProvider = "kmip";
const targetMasterKey = {
  "keyId": "1",
  "delegated": false,
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
