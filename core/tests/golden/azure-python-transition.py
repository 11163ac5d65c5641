# keyshift transition stage: reads keys under `local`, `azure:prod` while they move to `azure:prod`.
# Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
#
# MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
# of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
# END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
# application builds today, with auto_encryption_opts(**your_options) and
# client_encryption(key_vault_client), and keep everything else it sets there as it is:
# its schema_map / encrypted_fields_map, bypass setting and crypt_shared / mongocryptd
# options.
# An application that encrypts automatically keeps doing so: never add
# bypass_auto_encryption=True to it. That turns automatic encryption off, and its new
# writes of sensitive fields would reach the server in plaintext.
#
# Requires PyMongo 4.2+ with pymongocrypt 1.3.1+ (pip install "pymongo[encryption]").
# Needs libmongocrypt 1.5.2+, which the pymongocrypt 1.3.1+ wheels bundle (one you load
# yourself with PYMONGOCRYPT_LIB must be 1.5.2+ too).
# Named KMS providers (`azure:prod`): PyMongo 4.7+ with pymongocrypt 1.9+ (libmongocrypt
# 1.9+).
# If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
# Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
# File paths are as keyshift.toml gives them: relative ones are relative to its directory.
# Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
# API: https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption.html
#      https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption_options.html
import base64
import os

from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption
from pymongo.encryption_options import AutoEncryptionOpts

# ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionOpts and ClientEncryption ----
KEY_VAULT_NAMESPACE = "encryption.__keyVault"


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _read_text(path):
    return _read_bytes(path).decode().strip()


def _local_key(raw):
    """The local master key: 96 raw bytes, or their base64 text."""
    return raw if len(raw) == 96 else base64.b64decode(raw.strip())


def _gcp_private_key(text):
    """A GCP service account key as libmongocrypt wants it: the base64 of its DER.

    PEM (what `gcloud iam service-accounts keys create` puts in its JSON) loses its
    armour lines; base64 text is kept as it is.
    """
    if "-----BEGIN" not in text:
        return text.strip()
    return "".join(line.strip() for line in text.splitlines() if not line.startswith("-----"))


def kms_providers():
    return {
        "local": {
            "key": _local_key(_read_bytes("master-key.txt")),
        },
        "azure:prod": {
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "clientId": "00001111-aaaa-2222-bbbb-3333cccc4444",
            "clientSecret": os.environ["AZURE_CLIENT_SECRET"],
        },
    }


def kms_tls_options():
    return {
    }


def auto_encryption_opts(**app_options):
    """Your application's AutoEncryptionOpts with keyshift's KMS settings merged in.

    Pass every other option exactly as your application passes it today: schema_map or
    encrypted_fields_map, bypass_auto_encryption (only if it already sets it),
    key_vault_client, crypt_shared_lib_path, mongocryptd_*. keyshift supplies only
    kms_providers, key_vault_namespace and kms_tls_options.
    """
    return AutoEncryptionOpts(
        kms_providers(),
        KEY_VAULT_NAMESPACE,
        kms_tls_options=kms_tls_options(),
        **app_options,
    )


def client_encryption(key_vault_client, codec_options=CodecOptions(uuid_representation=STANDARD)):
    """A ClientEncryption with the same KMS settings: new DEKs, explicit encrypt and decrypt."""
    return ClientEncryption(
        kms_providers(),
        KEY_VAULT_NAMESPACE,
        key_vault_client,
        codec_options,
        kms_tls_options=kms_tls_options(),
    )
# ---- END keyshift KMS settings ----


TARGET_PROVIDER = "azure:prod"
TARGET_MASTER_KEY = {
    "keyVaultEndpoint": "my-vault.vault.azure.net",
    "keyName": "ks-cmk",
}


def create_data_key(client_encryption, key_alt_names=None):
    """A new DEK under the target master key; returns its _id."""
    return client_encryption.create_data_key(
        TARGET_PROVIDER, master_key=TARGET_MASTER_KEY, key_alt_names=key_alt_names
    )


def connection_string():
    return os.environ["MONGODB_URI"]


def encrypted_client(*, schema_map, encrypted_fields_map=None, uri=None, **app_options):
    """A whole client with AUTOMATIC encryption, as an application that encrypts automatically has.

    Fields your application's rules name are encrypted on every write and decrypted on
    every read. keyshift does not know those rules, so they are required arguments:
    pass your application's own schema_map (CSFLE) or encrypted_fields_map (Queryable
    Encryption), or schema_map=None only if it relies on the server's $jsonSchema
    validators. Pass its crypt_shared or mongocryptd options in app_options, as today.
    An application that encrypts explicitly with ClientEncryption.encrypt and already sets
    bypass_auto_encryption=True passes that in app_options too; nothing here sets it.
    """
    opts = auto_encryption_opts(
        schema_map=schema_map, encrypted_fields_map=encrypted_fields_map, **app_options
    )
    return MongoClient(uri or connection_string(), auto_encryption_opts=opts)
