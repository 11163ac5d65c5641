// keyshift transition stage: reads keys under `local`, `gcp` while they move to `gcp`.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//
// MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
// of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
// END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
// application builds today, with autoEncryptionOptions(yourOptions) and Mongo(uri,
// autoEncryptionOptions(...)).getKeyVault(), and keep everything else it sets there as it
// is: its schemaMap / encryptedFieldsMap, bypass setting and crypt_shared / mongocryptd
// options.
// An application that encrypts automatically keeps doing so: never add
// bypassAutoEncryption: true to it. That turns automatic encryption off, and its new
// writes of sensitive fields would reach the server in plaintext.
//
// Requires mongosh 2.0.0+ (it bundles mongodb 6 and mongodb-client-encryption 6).
// Needs libmongocrypt 1.5.2+: mongosh 2.x carries it in its bundled
// mongodb-client-encryption 6.
// If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
// Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
// File paths are as keyshift.toml gives them: relative ones are relative to its directory.
// Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
// Run with: mongosh --nodb --file THIS_FILE
// API: https://www.mongodb.com/docs/manual/reference/method/Mongo/
//      https://www.mongodb.com/docs/manual/reference/method/KeyVault.createKey/
const fs = require('fs');

// ---- BEGIN keyshift KMS settings: merge into your autoEncryption options and ClientEncryption ----
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

// A GCP service account key as libmongocrypt wants it: the base64 of its DER. PEM loses
// its armour lines; base64 text is kept as it is.
function gcpPrivateKey(text) {
  if (!text.includes('-----BEGIN')) return text.trim();
  return text
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('-----'))
    .map((line) => line.trim())
    .join('');
}

const kmsProviders = {
  "local": {
    "key": localKey(fs.readFileSync("master-key.txt")),
  },
  "gcp": {
    "email": "keyshift@my-project.iam.gserviceaccount.com",
    "privateKey": gcpPrivateKey(readText("gcp-service-account.pem")),
  },
};

const tlsOptions = {
};

// Your application's autoEncryption options with keyshift's KMS settings merged in. Pass
// every option it sets today: schemaMap or encryptedFieldsMap, bypassAutoEncryption only if
// it already sets it, keyVaultClient, extraOptions (crypt_shared, mongocryptd). keyshift
// supplies keyVaultNamespace, kmsProviders and tlsOptions.
function autoEncryptionOptions(appOptions = {}) {
  return { ...appOptions, keyVaultNamespace, kmsProviders, tlsOptions };
}
// ---- END keyshift KMS settings ----

const targetProvider = "gcp";
const targetMasterKey = {
  "projectId": "my-project",
  "location": "global",
  "keyRing": "ks-ring",
  "keyName": "ks-key",
};

const uri = requireEnv("MONGODB_URI");

// Key management only: explicitEncryptionOnly turns automatic encryption off on this
// connection (it never encrypts or decrypts documents by itself), so it is not for writing
// your application's data. It creates DEKs and runs explicit encrypt and decrypt.
const keyManagement = Mongo(uri, autoEncryptionOptions({ explicitEncryptionOnly: true }));
const keyVault = keyManagement.getKeyVault();

// A new DEK under the target master key (uncomment, and name it):
// keyVault.createKey(targetProvider, targetMasterKey, ['my-key']);

// Your application's data from the shell: AUTOMATIC encryption with your application's own
// rules, as it has them (keyshift does not know them). Needs crypt_shared or mongocryptd, as
// your application does. Fill in its schemaMap (CSFLE) or encryptedFieldsMap (Queryable
// Encryption), then uncomment:
// const appSchemaMap = { 'db.collection': { /* its $jsonSchema with encrypt */ } };
// const app = Mongo(uri, autoEncryptionOptions({ schemaMap: appSchemaMap }));
