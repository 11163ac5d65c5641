// keyshift final stage: `gcp` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//
// MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
// of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
// END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
// application builds today, with autoEncryptionOptions(yourOptions) and
// clientEncryptionOptions(yourOptions), and keep everything else it sets there as it is:
// its schemaMap / encryptedFieldsMap, bypass setting and crypt_shared / mongocryptd
// options.
// An application that encrypts automatically keeps doing so: never add
// bypassAutoEncryption: true to it. That turns automatic encryption off, and its new
// writes of sensitive fields would reach the server in plaintext.
//
// Requires mongodb 6.0.0+ with the mongodb-client-encryption of the same major version
// (6.x for mongodb 6, 7.x for mongodb 7).
// Needs libmongocrypt 1.5.2+: mongodb-client-encryption 6.x builds in a later one (6.1.0:
// libmongocrypt 1.11.0).
// On-demand credentials (`gcp`): AWS needs @aws-sdk/credential-providers, GCP needs
// gcp-metadata (optional peer dependencies of mongodb 6); Azure is built in.
// If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
// Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
// Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
// API: https://mongodb.github.io/node-mongodb-native/6.8/classes/ClientEncryption.html
//      https://mongodb.github.io/node-mongodb-native/6.8/interfaces/AutoEncryptionOptions.html
'use strict';

const { MongoClient, ClientEncryption } = require('mongodb');
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
  "gcp": {},
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

// The same KMS settings for new ClientEncryption(keyVaultClient, options): new DEKs,
// explicit encrypt and decrypt.
function clientEncryptionOptions(appOptions = {}) {
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

// A new DEK under the target master key; resolves to its _id.
async function createDataKey(keyVaultClient, keyAltNames = []) {
  const clientEncryption = new ClientEncryption(keyVaultClient, clientEncryptionOptions());
  return clientEncryption.createDataKey(targetProvider, { masterKey: targetMasterKey, keyAltNames });
}

function connectionString() {
  return requireEnv("MONGODB_URI");
}

// A whole client with AUTOMATIC encryption, as an application that encrypts automatically
// has: fields its rules name are encrypted on every write and decrypted on every read.
// keyshift does not know those rules, so they are required: pass your application's own
// schemaMap (CSFLE) or encryptedFieldsMap (Queryable Encryption), or schemaMap: null only if
// it relies on the server's $jsonSchema validators. An application that encrypts explicitly
// and already sets bypassAutoEncryption: true passes it in appOptions; nothing here sets it.
function encryptedClient({ schemaMap, encryptedFieldsMap, uri = connectionString(), ...appOptions } = {}) {
  if (schemaMap === undefined && encryptedFieldsMap === undefined) {
    throw new Error(
      "encryptedClient needs your application's schemaMap or encryptedFieldsMap (schemaMap: null for the server's validators)"
    );
  }
  const rules = {};
  if (schemaMap) rules.schemaMap = schemaMap;
  if (encryptedFieldsMap) rules.encryptedFieldsMap = encryptedFieldsMap;
  return new MongoClient(uri, { autoEncryption: autoEncryptionOptions({ ...appOptions, ...rules }) });
}

module.exports = {
  keyVaultNamespace,
  kmsProviders,
  tlsOptions,
  autoEncryptionOptions,
  clientEncryptionOptions,
  createDataKey,
  encryptedClient,
};
