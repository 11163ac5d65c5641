// keyshift transition stage: reads keys under `local`, `aws` while they move to `aws`.
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
  "local": {
    "key": localKey(fs.readFileSync("master-key.txt")),
  },
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
