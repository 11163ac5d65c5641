// keyshift final stage: `azure:prod` only; deploy after `keyshift verify` passes.
// Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
// API: https://mongodb.github.io/node-mongodb-native/6.8/classes/ClientEncryption.html
//      https://mongodb.github.io/node-mongodb-native/6.8/interfaces/AutoEncryptionOptions.html
'use strict';

const { MongoClient, ClientEncryption } = require('mongodb');
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

function connectionString() {
  return requireEnv("MONGODB_URI");
}

// A MongoClient that decrypts fields whose DEKs are under any provider above.
function encryptedClient(uri = connectionString()) {
  return new MongoClient(uri, {
    autoEncryption: { keyVaultNamespace, kmsProviders, tlsOptions, bypassAutoEncryption: true },
  });
}

// A new DEK under the target master key; resolves to its _id.
async function createDataKey(keyVaultClient, keyAltNames = []) {
  const clientEncryption = new ClientEncryption(keyVaultClient, { keyVaultNamespace, kmsProviders, tlsOptions });
  return clientEncryption.createDataKey(targetProvider, { masterKey: targetMasterKey, keyAltNames });
}

module.exports = { keyVaultNamespace, kmsProviders, tlsOptions, encryptedClient, createDataKey };
