// keyshift final stage: `aws` only; deploy after `keyshift verify` passes.
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
  "aws": {
    "accessKeyId": requireEnv("AWS_ACCESS_KEY_ID"),
    "secretAccessKey": requireEnv("AWS_SECRET_ACCESS_KEY"),
  },
};

const tlsOptions = {
  "aws": {
    "tlsCAFile": "ca.pem",
  },
};

const targetProvider = "aws";
const targetMasterKey = {
  "region": "us-east-1",
  "key": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
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
